//! `kwokctl create cluster`.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::cli::CreateClusterArgs;
use crate::cluster_options;
use crate::config::{Component, KwokctlConfiguration, OptionFlags, Options, Port, resolve_options};
use crate::context::Context;
use crate::duration;
use crate::kubeconfig::{self, ClusterEntry};
use crate::lock::lock_cluster;
use crate::paths::{ClusterPaths, Workdir, context_name};
use crate::runtime::{
    self, Cluster, ComponentStatus, ExitedEarly, LoadError, RuntimeKind, StartOptions, StopMode,
    binary,
};

/// The component name of the embedded cluster process, as upstream names the API server.
pub const APISERVER: &str = "kube-apiserver";

/// How many fresh ports to try when a randomly chosen one turns out to be taken.
const PORT_ATTEMPTS: usize = 3;

pub fn create_cluster(ctx: &Context, args: &CreateClusterArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let timeout = duration::parse(&args.timeout).map_err(anyhow::Error::msg)?;
    let wait = duration::parse(&args.wait).map_err(anyhow::Error::msg)?;
    let start_options = StartOptions::with_timeout(timeout);
    let from_files = ctx.config.kwokctl_configuration()?;
    let flags = OptionFlags {
        runtime: args.runtime.clone(),
        kube_apiserver_port: args.kube_apiserver_port,
        kwok_controller_binary: args.kwok_controller_binary.clone(),
        etcd_binary: args.etcd_binary.clone(),
        kube_apiserver_binary: args.kube_apiserver_binary.clone(),
        kube_controller_manager_binary: args.kube_controller_manager_binary.clone(),
        kube_scheduler_binary: args.kube_scheduler_binary.clone(),
        etcd_port: args.etcd_port,
        controller_port: args.controller_port,
        kube_authorization: args.kube_authorization,
        etcd_prefix: args.etcd_prefix.clone(),
        enable: args.enable.clone(),
        disable: args.disable.clone(),
        disable_kube_scheduler: args.disable_kube_scheduler,
        disable_kube_controller_manager: args.disable_kube_controller_manager,
        enable_metrics_server: args.enable_metrics_server,
        cluster: args.cluster.clone(),
    };
    let mut options = resolve_options(&from_files.options, &ctx.env, &flags);
    crate::addons::enable_by_port(&mut options);
    let runtime_name = choose_runtime(&options.runtime, &options.runtimes)?;
    options
        .check_components(&runtime_name)
        .map_err(anyhow::Error::msg)?;
    cluster_options::check(&options).map_err(anyhow::Error::msg)?;
    cluster_options::check_files(&options, &ctx.env).map_err(anyhow::Error::msg)?;
    let other_documents = cluster_documents(ctx, &options);
    let kubeconfig_path = ctx
        .env
        .kubeconfig_path(args.kubeconfig.as_deref())
        .map_err(anyhow::Error::msg)?;
    let extra_args = parse_extra_args(&args.extra_args)?;
    let paths = ctx.cluster_paths();
    let name = ctx.name.as_str();

    if ctx.dry_run {
        let programs = Programs::resolve(ctx, &runtime_name, &options)
            .unwrap_or_else(|_| Programs::placeholder(&runtime_name));
        let mut config = KwokctlConfiguration {
            options: options.clone(),
            ..Default::default()
        };
        lay_out(ctx, &mut config, &paths, &programs, &options, &extra_args)?;
        print_plan(&paths, &config, &kubeconfig_path, name);
        return Ok(());
    }

    let _lock = lock_cluster(&ctx.workdir, name)?;
    let mut auto_port = false;
    // How a new cluster's components were laid out, to lay them out again on other ports.
    let mut layout: Option<(Programs, Options)> = None;
    let mut cluster = match Cluster::load(name, &paths) {
        Ok(existing) => {
            tracing::info!(cluster = name, "Cluster already exists");
            if is_ready(ctx, &existing) {
                tracing::info!(cluster = name, "Cluster is already ready");
                return Ok(());
            }
            tracing::info!(cluster = name, "Cluster is not ready yet, continue it");
            let existing_runtime = existing.runtime_name().to_string();
            if !matches!(
                RuntimeKind::parse(&existing_runtime),
                Some(RuntimeKind::Embedded | RuntimeKind::Binary)
            ) {
                bail!(
                    "cluster {name:?} uses runtime {existing_runtime:?}, which `create cluster` does not support yet; use `kwokctl start cluster` or delete it"
                );
            }
            existing
        }
        Err(LoadError::Invalid(e)) => {
            return Err(e.context(format!(
                "cluster {name:?} exists but its config cannot be read; delete it with `kwokctl delete cluster --name {name} --force`"
            )));
        }
        Err(LoadError::NotFound) => {
            remove_leftovers(&paths)?;
            let programs = Programs::resolve(ctx, &runtime_name, &options)
                .map_err(|e| anyhow::anyhow!("runtime {runtime_name} not available: {e}"))?;
            auto_port = programs.has_free_ports(&options);
            let mut config = KwokctlConfiguration {
                options: options.clone(),
                ..from_files
            };
            config.kind = crate::config::KWOKCTL_CONFIGURATION.to_string();
            config.api_version = crate::config::API_VERSION.to_string();
            config.options.runtime = runtime_name.clone();
            lay_out(ctx, &mut config, &paths, &programs, &options, &extra_args)?;
            layout = Some((programs, options.clone()));
            config
                .extra
                .insert("status".into(), json!({ "version": crate::VERSION }));
            let cluster = Cluster {
                name: name.to_string(),
                paths: paths.clone(),
                config,
                other_documents,
            };
            cluster.save().inspect_err(|_| {
                tracing::error!(cluster = name, "Failed to save config");
            })?;
            tracing::info!(cluster = name, "Cluster is creating");
            if let Err(err) = install(&cluster).and_then(|()| {
                cluster_options::copy_files(&cluster.config.options, &paths, &ctx.env)
            }) {
                tracing::error!(cluster = name, err = %format!("{err:#}"), "Failed to setup config");
                match runtime::remove_dir(&paths.dir) {
                    Ok(()) => tracing::info!(cluster = name, "Cluster is cleaned up"),
                    Err(e) => {
                        tracing::error!(cluster = name, err = %format!("{e:#}"), "Failed to clean up cluster")
                    }
                }
                return Err(err);
            }
            tracing::info!(cluster = name, elapsed = %duration::human(started.elapsed()), "Cluster is created");
            cluster
        }
    };
    install(&cluster)?;

    let start = Instant::now();
    tracing::info!(cluster = name, "Cluster is starting");
    let mut attempt = 1;
    loop {
        let rt = runtime::for_cluster(ctx, &cluster);
        match rt.start(&cluster, start_options) {
            Ok(()) => break,
            Err(err) if auto_port && attempt < PORT_ATTEMPTS && err.is::<ExitedEarly>() => {
                let Some((programs, fixed)) = &layout else {
                    return Err(err.context(format!("failed to start cluster {name:?}")));
                };
                attempt += 1;
                tracing::warn!(cluster = name, err = %err, "Cluster process exited, retrying on other ports");
                rt.stop(&cluster, StopMode::Kill)?;
                // A fresh etcd member on the new ports, not one bootstrapped on the old ones.
                runtime::remove_dir(&paths.etcd())?;
                lay_out(
                    ctx,
                    &mut cluster.config,
                    &paths,
                    programs,
                    fixed,
                    &extra_args,
                )?;
                cluster.save()?;
                install(&cluster)?;
            }
            Err(err) => {
                return Err(err.context(format!("failed to start cluster {name:?}")));
            }
        }
    }
    tracing::info!(cluster = name, elapsed = %duration::human(start.elapsed()), "Cluster is started");

    kubeconfig::add_context(&kubeconfig_path, &cluster_entry(&cluster)).with_context(|| {
        format!(
            "cluster {name:?} is running, but context {} could not be added to {} (`kwokctl --name {name} get kubeconfig` prints its kubeconfig)",
            context_name(name),
            kubeconfig_path.display()
        )
    })?;

    if !wait.is_zero() {
        let waiting = Instant::now();
        tracing::info!(cluster = name, "Waiting for cluster to be ready");
        if wait_ready(ctx, &cluster, waiting + wait) {
            tracing::info!(cluster = name, elapsed = %duration::human(waiting.elapsed()), "Cluster is ready");
        } else {
            tracing::error!(cluster = name, "Failed to wait for cluster to be ready");
        }
    }

    if std::io::stdout().is_terminal() {
        println!(
            "You can now use your cluster with:\n\n\tkubectl cluster-info --context {}\n\nThanks for using kwok!",
            context_name(name)
        );
    }
    Ok(())
}

/// Picks the runtime of a new cluster. `embedded` and `binary` can create clusters so far.
fn choose_runtime(runtime: &str, runtimes: &[String]) -> anyhow::Result<String> {
    let check = |name: &str| -> Result<String, String> {
        match RuntimeKind::parse(name) {
            None => Err(format!("runtime {name:?} not found")),
            Some(RuntimeKind::Embedded | RuntimeKind::Binary) => Ok(name.to_string()),
            Some(_) => Err(format!(
                "runtime {name:?} is not supported yet by `create cluster` (supported: embedded, binary)"
            )),
        }
    };
    if !runtime.is_empty() {
        return check(runtime).map_err(anyhow::Error::msg);
    }
    let mut errors = Vec::new();
    for name in runtimes {
        match check(name) {
            Ok(found) => return Ok(found),
            Err(e) => errors.push(e),
        }
    }
    bail!("runtime {runtimes:?} not available: {errors:?}")
}

/// `component=key=value` (or `component=key` for a bare flag) → per-component arguments.
fn parse_extra_args(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    raw.iter()
        .map(|item| {
            let (component, rest) = item
                .split_once('=')
                .filter(|(c, r)| !c.is_empty() && !r.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!("invalid --extra-args {item:?}: want component=key=value")
                })?;
            let arg = match rest.split_once('=') {
                Some((key, value)) => format!("--{key}={value}"),
                None => format!("--{rest}"),
            };
            Ok((component.to_string(), arg))
        })
        .collect()
}

/// The single component of an embedded cluster: `kwok apiserver`, serving on `port`. The
/// components a user disables (`--disable kube-scheduler`, `kube-controller-manager`,
/// `kwok-controller`) are the parts of that process left off.
pub fn embedded_component(
    paths: &ClusterPaths,
    port: u16,
    binary: &str,
    extra_args: &[(String, String)],
    options: &crate::config::Options,
) -> Component {
    let pki = pki::PkiPaths::new(paths.pki());
    let mut args: Vec<String> = vec![
        "apiserver".into(),
        "--data-dir".into(),
        paths.data().display().to_string(),
        "--secure-port".into(),
        port.to_string(),
        "--bind-address".into(),
        "127.0.0.1".into(),
        "--tls-cert-file".into(),
        pki.serving_cert().display().to_string(),
        "--tls-private-key-file".into(),
        pki.serving_key().display().to_string(),
        "--client-ca-file".into(),
        pki.ca_cert().display().to_string(),
        "--service-account-signing-key-file".into(),
        pki.service_account_key().display().to_string(),
    ];
    if options.kube_authorization == Some(false) {
        args.push("--authorization-mode=AlwaysAllow".into());
    }
    match (
        options.is_disabled("kube-scheduler"),
        options.is_disabled("kube-controller-manager"),
    ) {
        (false, false) => {}
        (true, false) => args.push("--controllers=*,-scheduler".into()),
        (false, true) => args.push("--controllers=scheduler".into()),
        (true, true) => args.push("--controllers=".into()),
    }
    if !options.is_disabled("kwok-controller") {
        // The embedded cluster simulates its nodes and pods in-process, as kwok-controller would,
        // with the Stages and simulation objects of the cluster's config.
        args.push("--simulate".into());
        args.push("--config".into());
        args.push(paths.config().display().to_string());
        if options.is_enabled(crate::config::METRICS_SERVER)
            && !options.is_disabled(crate::config::METRICS_SERVER)
        {
            // metrics-server's part, served by the same process from the simulated usage.
            args.push("--enable-metrics".into());
        }
    }
    if options.kwok_controller_port != 0 && !options.is_disabled("kwok-controller") {
        // The in-process simulator's kubelet surface, on the host port asked for.
        args.push("--server-address".into());
        args.push(format!("127.0.0.1:{}", options.kwok_controller_port));
    }
    args.extend(embedded_option_args(paths, options));
    args.extend(
        extra_args
            .iter()
            .filter(|(component, _)| component == APISERVER)
            .map(|(_, arg)| arg.clone()),
    );
    Component {
        name: APISERVER.into(),
        binary: binary.into(),
        args,
        work_dir: paths.dir.display().to_string(),
        ports: vec![Port {
            name: "https".into(),
            port: u32::from(port),
            host_port: u32::from(port),
            protocol: "TCP".into(),
        }],
        ..Default::default()
    }
}

/// The arguments of the embedded process that the options of [`cluster_options`] call for,
/// each only for the parts of the process that run.
fn embedded_option_args(paths: &ClusterPaths, options: &Options) -> Vec<String> {
    let mut args = cluster_options::apiserver_args(options, paths, cluster_options::Server::Kwok);
    if !options.is_disabled("kube-controller-manager") {
        args.extend(cluster_options::node_monitor_args(options));
    }
    if !options.is_disabled("kube-scheduler") {
        args.extend(cluster_options::scheduler_config_args(
            options,
            paths,
            "scheduler-config",
        ));
    }
    if !options.is_disabled("kwok-controller") {
        args.extend(cluster_options::simulator_args(options));
    }
    args
}

/// The documents a new cluster's `kwok.yaml` carries beside its `KwokctlConfiguration`: those
/// of the config files, where a later document of the same kind and name replaces an earlier
/// one, and without the kinds the simulator reads from the API (`--enable-crds`).
fn cluster_documents(ctx: &Context, options: &Options) -> Vec<serde_json::Value> {
    crate::config::dedupe_documents(ctx.config.other_documents())
        .into_iter()
        .filter(|doc| {
            let kind = doc
                .get("kind")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("");
            cluster_options::keeps_document(options, kind)
        })
        .collect()
}

/// The programs that run a new cluster's components.
enum Programs {
    Embedded(PathBuf),
    Binary(binary::Programs),
}

impl Programs {
    /// Finds the programs of runtime `runtime`; the error says what is missing.
    fn resolve(ctx: &Context, runtime: &str, options: &Options) -> Result<Self, String> {
        if RuntimeKind::parse(runtime) == Some(RuntimeKind::Binary) {
            binary::resolve_programs(ctx, options).map(Programs::Binary)
        } else {
            ctx.kwok_binary(Some(&options.kwok_controller_binary))
                .map(Programs::Embedded)
        }
    }

    /// Bare program names, for a dry run on a machine without them.
    fn placeholder(runtime: &str) -> Self {
        if RuntimeKind::parse(runtime) == Some(RuntimeKind::Binary) {
            Programs::Binary(binary::Programs {
                etcd: "etcd".into(),
                kwok: "kwok".into(),
                kube_apiserver: None,
                kube_controller_manager: None,
                kube_scheduler: None,
            })
        } else {
            Programs::Embedded("kwok".into())
        }
    }

    /// Whether some port is left to choose (and so may be chosen again when taken).
    fn has_free_ports(&self, options: &Options) -> bool {
        match self {
            Programs::Embedded(_) => options.kube_apiserver_port == 0,
            Programs::Binary(_) => {
                let ports = binary::Ports::assign(options, &[0; binary::PORT_COUNT]);
                [
                    ports.etcd,
                    ports.etcd_peer,
                    ports.kube_apiserver,
                    ports.kwok_controller,
                    ports.kube_controller_manager,
                    ports.kube_scheduler,
                ]
                .contains(&0)
            }
        }
    }
}

/// Chooses the ports `fixed` leaves open and sets the components of a new cluster.
fn lay_out(
    ctx: &Context,
    config: &mut KwokctlConfiguration,
    paths: &ClusterPaths,
    programs: &Programs,
    fixed: &Options,
    extra_args: &[(String, String)],
) -> anyhow::Result<()> {
    match programs {
        Programs::Embedded(binary) => {
            let port = match fixed.kube_apiserver_port {
                0 => allocate_ports(&ctx.workdir, &ctx.name, 1)?[0],
                p => u16::try_from(p).map_err(|_| {
                    anyhow::anyhow!("--kube-apiserver-port {p} is out of range (1-65535)")
                })?,
            };
            config.options.kube_apiserver_port = u32::from(port);
            crate::addons::embedded_controller_port(ctx, &mut config.options, fixed, &[port])?;
            config.components = vec![embedded_component(
                paths,
                port,
                &binary.display().to_string(),
                extra_args,
                &config.options,
            )];
        }
        Programs::Binary(programs) => {
            for (flag, port) in [
                ("--kube-apiserver-port", fixed.kube_apiserver_port),
                ("--etcd-port", fixed.etcd_port),
            ] {
                if u16::try_from(port).is_err() {
                    bail!("{flag} {port} is out of range (1-65535)");
                }
            }
            let free = allocate_ports(&ctx.workdir, &ctx.name, binary::PORT_COUNT)?;
            let ports = binary::Ports::assign(fixed, &free);
            ports.record(&mut config.options);
            config.components =
                binary::components(paths, &config.options, programs, &ports, extra_args);
        }
    }
    crate::addons::lay_out(ctx, config, paths, fixed)
}

/// Creates what a cluster needs before it starts; safe to repeat on a half-created cluster.
fn install(cluster: &Cluster) -> anyhow::Result<()> {
    let paths = &cluster.paths;
    let data = if RuntimeKind::parse(cluster.runtime_name()) == Some(RuntimeKind::Binary) {
        paths.etcd()
    } else {
        paths.data()
    };
    for dir in [paths.logs(), paths.pids(), data] {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    }
    pki::ensure(&paths.pki(), &[]).context("generate PKI")?;
    pki::ensure_service_account_key(&paths.pki()).context("generate PKI")?;
    let doc = kubeconfig::standalone(&cluster_entry(cluster));
    let text = kubeconfig::render(&doc)?;
    std::fs::write(paths.kubeconfig(), text)
        .with_context(|| format!("write {}", paths.kubeconfig().display()))?;
    crate::addons::install(&cluster.config, paths)
}

/// The kubeconfig entry of a cluster.
pub fn cluster_entry(cluster: &Cluster) -> ClusterEntry {
    let pki = pki::PkiPaths::new(cluster.paths.pki());
    ClusterEntry {
        name: context_name(&cluster.name),
        server: format!(
            "https://127.0.0.1:{}",
            cluster.apiserver_port().unwrap_or_default()
        ),
        certificate_authority: pki.ca_cert(),
        client_certificate: pki.admin_cert(),
        client_key: pki.admin_key(),
    }
}

/// True when every component runs and the API server answers `/readyz`.
pub fn is_ready(ctx: &Context, cluster: &Cluster) -> bool {
    let rt = runtime::for_cluster(ctx, cluster);
    let components = rt.components(cluster);
    !components.is_empty()
        && components
            .iter()
            .all(|(_, status)| *status == ComponentStatus::Ready)
        && cluster.serves(std::time::Duration::from_secs(1))
}

/// Polls readiness every half second until `deadline`.
pub fn wait_ready(ctx: &Context, cluster: &Cluster, deadline: Instant) -> bool {
    loop {
        if is_ready(ctx, cluster) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// A folder without `kwok.yaml` is what an interrupted delete leaves; clear it so the new cluster
/// does not inherit old data or processes.
fn remove_leftovers(paths: &ClusterPaths) -> anyhow::Result<()> {
    if !paths.dir.exists() {
        return Ok(());
    }
    let looks_like_ours = ["pids", "logs", "pki", "data", "etcd", "kubeconfig.yaml"]
        .iter()
        .any(|entry| paths.dir.join(entry).exists());
    if !looks_like_ours {
        return Ok(());
    }
    tracing::warn!(dir = %paths.dir.display(), "Found leftovers of a cluster without a config file, removing them");
    runtime::stop_recorded_processes(paths, StopMode::Kill)?;
    runtime::remove_dir(&paths.dir)
}

/// Chooses `count` distinct free local ports that no other cluster of this workdir has recorded.
pub fn allocate_ports(
    workdir: &Workdir,
    except_cluster: &str,
    count: usize,
) -> anyhow::Result<Vec<u16>> {
    let mut taken = BTreeSet::new();
    for name in super::list_clusters(workdir).unwrap_or_default() {
        if name == except_cluster {
            continue;
        }
        let config = workdir.cluster(&name).config();
        if let Ok(text) = std::fs::read_to_string(config) {
            taken.extend(recorded_ports(&text));
        }
    }
    // Every listener stays open until all are chosen, so the ports differ.
    let mut listeners = Vec::with_capacity(count);
    let mut ports = Vec::with_capacity(count);
    let candidates = port_candidates();
    let start = {
        use std::hash::{BuildHasher, Hasher};
        std::hash::RandomState::new().build_hasher().finish() as usize
    };
    for i in 0..candidates.len() {
        if ports.len() == count {
            return Ok(ports);
        }
        let port = candidates[(start + i) % candidates.len()];
        if taken.contains(&port) {
            continue;
        }
        // Binding all interfaces fails as well when the port is held on the loopback only.
        let Ok(listener) = TcpListener::bind(("0.0.0.0", port)) else {
            continue;
        };
        ports.push(port);
        listeners.push(listener);
    }
    if ports.len() == count {
        return Ok(ports);
    }
    bail!("no free port found")
}

/// Every port another cluster's config records: the value of every key that ends in `port` or
/// `Port` (`kubeApiserverPort`, `kwokControllerPort`, `etcdPeerPort`, a component's `port` and
/// `hostPort`, ...). Read as text rather than parsed, because creating the thousandth cluster
/// reads 999 configs; a number under some other key that ends in "port" only costs a candidate.
fn recorded_ports(config: &str) -> impl Iterator<Item = u16> + '_ {
    config.lines().filter_map(|line| {
        let (key, value) = line.trim_start().trim_start_matches("- ").split_once(':')?;
        let key = key.trim().trim_matches('"');
        if !(key.ends_with("port") || key.ends_with("Port")) {
            return None;
        }
        value
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
    })
}

/// Ports a cluster may be given: 10000–32767 outside the kernel's ephemeral range, so that no
/// outgoing connection can hold a stopped cluster's port when it starts again. Upstream kwokctl
/// picks below 32767 for the same reason; the pick is random here so that clusters created at
/// once in different workdirs rarely reach for the same port.
fn port_candidates() -> Vec<u16> {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut bounds = text.split_whitespace().map(str::parse::<u16>);
            Some((bounds.next()?.ok()?, bounds.next()?.ok()?))
        })
        .unwrap_or((32768, 60999));
    (10000..=32767)
        .filter(|p| !(ephemeral.0..=ephemeral.1).contains(p))
        .collect()
}

/// Prints what `create cluster` would do, in upstream's order: folders and PKI, copied files,
/// the kubeconfig, the config, the context, then each component's start.
fn print_plan(
    paths: &ClusterPaths,
    config: &KwokctlConfiguration,
    kubeconfig_path: &Path,
    name: &str,
) {
    use crate::dryrun::say;
    let components = &config.components;
    let data = if components.iter().any(|c| c.name == binary::ETCD) {
        paths.etcd()
    } else {
        paths.data()
    };
    for dir in [paths.dir.clone(), paths.pids(), paths.logs(), paths.pki()] {
        say(format!("mkdir -p {}", dir.display()));
    }
    say(format!("# Generate PKI to {}", paths.pki().display()));
    say(format!("mkdir -p {}", data.display()));
    for (source, destination) in cluster_options::files_to_copy(&config.options, paths) {
        say(format!("cp {source} {}", destination.display()));
    }
    say(format!(
        "# Write kubeconfig to {}",
        paths.kubeconfig().display()
    ));
    say(format!(
        "# Save cluster config to {}",
        paths.config().display()
    ));
    say(format!(
        "# Add context {} to {}",
        context_name(name),
        kubeconfig_path.display()
    ));
    crate::addons::print_files(config, paths);
    let ordered = runtime::start_order(components).unwrap_or_else(|_| components.iter().collect());
    for component in ordered {
        crate::dryrun::fork(
            &paths.dir,
            Path::new(&component.binary),
            &component.args,
            &paths.log_file(&component.name),
            &paths.pid_file(&component.name),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_ports_are_read_from_any_port_key() {
        let config = "components:\n- args:\n  - --secure-port\n  - \"20156\"\n  ports:\n  - hostPort: 20157\n    name: https\n    port: \"20158\"\noptions:\n  kubeApiserverPort: 20159\n  kwokControllerPort: 0\n  etcdPeerPort: 20160\n  nodeLeaseDurationSeconds: 200\n  report: 7\n";
        let mut ports: Vec<u16> = recorded_ports(config).collect();
        ports.sort_unstable();
        assert_eq!(ports, [7, 20157, 20158, 20159, 20160]);
    }

    #[test]
    fn extra_args_become_flags() {
        let parsed = parse_extra_args(&[
            "kube-apiserver=storage-sync=none".into(),
            "kube-apiserver=verbose".into(),
        ])
        .unwrap();
        assert_eq!(
            parsed[0],
            ("kube-apiserver".into(), "--storage-sync=none".into())
        );
        assert_eq!(parsed[1], ("kube-apiserver".into(), "--verbose".into()));
        assert!(parse_extra_args(&["nonsense".into()]).is_err());
    }

    #[test]
    fn embedded_component_follows_the_kwok_interface() {
        let paths = ClusterPaths::new("/w/clusters/a");
        let c = embedded_component(&paths, 4321, "/bin/kwok", &[], &Default::default());
        assert_eq!(c.name, "kube-apiserver");
        assert_eq!(c.args[0], "apiserver");
        let joined = c.args.join(" ");
        assert!(joined.contains("--data-dir /w/clusters/a/data"));
        assert!(joined.contains("--secure-port 4321"));
        assert!(joined.contains("--tls-cert-file /w/clusters/a/pki/apiserver.crt"));
        assert!(joined.contains("--tls-private-key-file /w/clusters/a/pki/apiserver.key"));
        assert!(joined.contains("--client-ca-file /w/clusters/a/pki/ca.crt"));
    }

    #[test]
    fn disabled_components_are_left_off_the_embedded_process() {
        let paths = ClusterPaths::new("/w/clusters/a");
        let args = |disable: &[&str]| {
            let options = crate::config::Options {
                disable: disable.iter().map(|d| d.to_string()).collect(),
                ..Default::default()
            };
            embedded_component(&paths, 1, "/bin/kwok", &[], &options).args
        };
        assert!(args(&[]).contains(&"--simulate".to_string()));
        assert!(!args(&[]).iter().any(|a| a.starts_with("--controllers")));
        assert!(args(&["kube-scheduler"]).contains(&"--controllers=*,-scheduler".to_string()));
        assert!(
            args(&["kube-controller-manager"]).contains(&"--controllers=scheduler".to_string())
        );
        assert!(
            args(&["kube-scheduler", "kube-controller-manager"])
                .contains(&"--controllers=".to_string())
        );
        assert!(!args(&["kwok-controller"]).contains(&"--simulate".to_string()));
    }

    #[test]
    fn metrics_server_turns_on_the_metrics_api() {
        let paths = ClusterPaths::new("/w/clusters/a");
        let with = |options: crate::config::Options| {
            embedded_component(&paths, 1, "/bin/kwok", &[], &options).args
        };
        let enabled = crate::config::Options {
            enable: vec!["metrics-server".into()],
            ..Default::default()
        };
        assert!(with(enabled.clone()).contains(&"--enable-metrics".to_string()));
        let deprecated = crate::config::Options {
            enable_metrics_server: true,
            ..Default::default()
        };
        assert!(with(deprecated).contains(&"--enable-metrics".to_string()));
        assert!(!with(Default::default()).contains(&"--enable-metrics".to_string()));
        assert!(enabled.check_components("embedded").is_ok());
        assert!(
            enabled
                .check_components("binary")
                .unwrap_err()
                .contains("embedded runtime only")
        );
        let unknown = crate::config::Options {
            enable: vec!["grafana".into()],
            ..Default::default()
        };
        assert_eq!(
            unknown.check_components("embedded").unwrap_err(),
            "unknown component \"grafana\" for --enable: known components are metrics-server, prometheus, jaeger, kueue, kueueviz, jobset, lws, scheduler-plugins, descheduler, node-readiness-controller"
        );
        let etcd = crate::config::Options {
            disable: vec!["etcd".into()],
            ..Default::default()
        };
        assert_eq!(
            etcd.check_components("embedded").unwrap_err(),
            "etcd must be enabled"
        );
    }
}
