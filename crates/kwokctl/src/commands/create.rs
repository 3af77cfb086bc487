//! `kwokctl create cluster`.

use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::cli::CreateClusterArgs;
use crate::config::{Component, KwokctlConfiguration, OptionFlags, Port, resolve_options};
use crate::context::Context;
use crate::duration;
use crate::kubeconfig::{self, ClusterEntry};
use crate::lock::lock_cluster;
use crate::paths::{ClusterPaths, Workdir, context_name};
use crate::runtime::{
    self, Cluster, ComponentStatus, ExitedEarly, LoadError, RuntimeKind, StartOptions, StopMode,
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
    };
    let options = resolve_options(&from_files.options, &ctx.env, &flags);
    let runtime_name = choose_runtime(&options.runtime, &options.runtimes)?;
    let kubeconfig_path = ctx
        .env
        .kubeconfig_path(args.kubeconfig.as_deref())
        .map_err(anyhow::Error::msg)?;
    let extra_args = parse_extra_args(&args.extra_args)?;
    let paths = ctx.cluster_paths();
    let name = ctx.name.as_str();

    if ctx.dry_run {
        let binary = ctx
            .kwok_binary(Some(&options.kwok_controller_binary))
            .unwrap_or_else(|_| "kwok".into());
        let port = match options.kube_apiserver_port {
            0 => allocate_port(&ctx.workdir, name)?,
            p => u16::try_from(p).context("--kube-apiserver-port out of range")?,
        };
        let component =
            embedded_component(&paths, port, &binary.display().to_string(), &extra_args);
        print_plan(&paths, &component, &kubeconfig_path, name);
        return Ok(());
    }

    let _lock = lock_cluster(&ctx.workdir, name)?;
    let mut auto_port = false;
    let mut cluster = match Cluster::load(name, &paths) {
        Ok(existing) => {
            tracing::info!(cluster = name, "Cluster already exists");
            if is_ready(ctx, &existing) {
                tracing::info!(cluster = name, "Cluster is already ready");
                return Ok(());
            }
            tracing::info!(cluster = name, "Cluster is not ready yet, continue it");
            let existing_runtime = existing.runtime_name().to_string();
            if RuntimeKind::parse(&existing_runtime) != Some(RuntimeKind::Embedded) {
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
            let binary = ctx
                .kwok_binary(Some(&options.kwok_controller_binary))
                .map_err(|e| anyhow::anyhow!("runtime {runtime_name} not available: {e}"))?;
            let port = match options.kube_apiserver_port {
                0 => {
                    auto_port = true;
                    allocate_port(&ctx.workdir, name)?
                }
                p => u16::try_from(p).context("--kube-apiserver-port out of range")?,
            };
            let mut config = KwokctlConfiguration {
                options,
                ..from_files
            };
            config.kind = crate::config::KWOKCTL_CONFIGURATION.to_string();
            config.api_version = crate::config::API_VERSION.to_string();
            config.options.runtime = runtime_name.clone();
            config.options.kube_apiserver_port = u32::from(port);
            config.components = vec![embedded_component(
                &paths,
                port,
                &binary.display().to_string(),
                &extra_args,
            )];
            config
                .extra
                .insert("status".into(), json!({ "version": crate::VERSION }));
            let cluster = Cluster {
                name: name.to_string(),
                paths: paths.clone(),
                config,
                other_documents: ctx.config.other_documents(),
            };
            cluster.save().inspect_err(|_| {
                tracing::error!(cluster = name, "Failed to save config");
            })?;
            tracing::info!(cluster = name, "Cluster is creating");
            if let Err(err) = install(&cluster) {
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
    let rt = runtime::for_cluster(ctx, &cluster);
    let mut attempt = 1;
    loop {
        match rt.start(&cluster, start_options) {
            Ok(()) => break,
            Err(err) if auto_port && attempt < PORT_ATTEMPTS && err.is::<ExitedEarly>() => {
                attempt += 1;
                let port = allocate_port(&ctx.workdir, name)?;
                tracing::warn!(cluster = name, port, err = %err, "Cluster process exited, retrying on another port");
                set_port(&mut cluster, port);
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

/// Picks the runtime of a new cluster. Only `embedded` can create clusters so far.
fn choose_runtime(runtime: &str, runtimes: &[String]) -> anyhow::Result<String> {
    let check = |name: &str| -> Result<String, String> {
        match RuntimeKind::parse(name) {
            None => Err(format!("runtime {name:?} not found")),
            Some(RuntimeKind::Embedded) => Ok(name.to_string()),
            Some(_) => Err(format!(
                "runtime {name:?} is not supported yet by `create cluster` (supported: embedded)"
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

/// The single component of an embedded cluster: `kwok apiserver`, serving on `port`.
pub fn embedded_component(
    paths: &ClusterPaths,
    port: u16,
    binary: &str,
    extra_args: &[(String, String)],
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
        // The embedded cluster simulates its nodes and pods in-process, as kwok-controller would.
        "--simulate".into(),
    ];
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

fn set_port(cluster: &mut Cluster, port: u16) {
    cluster.config.options.kube_apiserver_port = u32::from(port);
    for component in &mut cluster.config.components {
        if let Some(i) = component.args.iter().position(|a| a == "--secure-port")
            && let Some(value) = component.args.get_mut(i + 1)
        {
            *value = port.to_string();
        }
        for p in &mut component.ports {
            p.port = u32::from(port);
            p.host_port = u32::from(port);
        }
    }
}

/// Creates what a cluster needs before it starts; safe to repeat on a half-created cluster.
fn install(cluster: &Cluster) -> anyhow::Result<()> {
    let paths = &cluster.paths;
    for dir in [paths.logs(), paths.pids(), paths.data()] {
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    }
    pki::ensure(&paths.pki(), &[]).context("generate PKI")?;
    let doc = kubeconfig::standalone(&cluster_entry(cluster));
    let text = kubeconfig::render(&doc)?;
    std::fs::write(paths.kubeconfig(), text)
        .with_context(|| format!("write {}", paths.kubeconfig().display()))?;
    Ok(())
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
    let looks_like_ours = ["pids", "logs", "pki", "data", "kubeconfig.yaml"]
        .iter()
        .any(|entry| paths.dir.join(entry).exists());
    if !looks_like_ours {
        return Ok(());
    }
    tracing::warn!(dir = %paths.dir.display(), "Found leftovers of a cluster without a config file, removing them");
    runtime::stop_recorded_processes(paths, StopMode::Kill)?;
    runtime::remove_dir(&paths.dir)
}

/// Chooses a free local port that no other cluster of this workdir has recorded.
pub fn allocate_port(workdir: &Workdir, except_cluster: &str) -> anyhow::Result<u16> {
    let mut taken = BTreeSet::new();
    for name in super::list_clusters(workdir).unwrap_or_default() {
        if name == except_cluster {
            continue;
        }
        if let Ok(cluster) = Cluster::load(&name, &workdir.cluster(&name))
            && let Some(port) = cluster.apiserver_port()
        {
            taken.insert(port);
        }
    }
    for _ in 0..64 {
        let port = TcpListener::bind("127.0.0.1:0")
            .context("find a free port")?
            .local_addr()?
            .port();
        if !taken.contains(&port) {
            return Ok(port);
        }
    }
    bail!("no free port found")
}

fn print_plan(paths: &ClusterPaths, component: &Component, kubeconfig_path: &Path, name: &str) {
    use crate::dryrun::say;
    say(format!("mkdir -p {}", paths.dir.display()));
    say(format!(
        "# Save cluster config to {}",
        paths.config().display()
    ));
    for dir in [paths.pids(), paths.logs(), paths.data()] {
        say(format!("mkdir -p {}", dir.display()));
    }
    say(format!("# Generate PKI to {}", paths.pki().display()));
    say(format!(
        "# Write kubeconfig to {}",
        paths.kubeconfig().display()
    ));
    crate::dryrun::fork(
        &paths.dir,
        Path::new(&component.binary),
        &component.args,
        &paths.log_file(&component.name),
        &paths.pid_file(&component.name),
    );
    say(format!(
        "# Add context {} to {}",
        context_name(name),
        kubeconfig_path.display()
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = embedded_component(&paths, 4321, "/bin/kwok", &[]);
        assert_eq!(c.name, "kube-apiserver");
        assert_eq!(c.args[0], "apiserver");
        let joined = c.args.join(" ");
        assert!(joined.contains("--data-dir /w/clusters/a/data"));
        assert!(joined.contains("--secure-port 4321"));
        assert!(joined.contains("--tls-cert-file /w/clusters/a/pki/apiserver.crt"));
        assert!(joined.contains("--tls-private-key-file /w/clusters/a/pki/apiserver.key"));
        assert!(joined.contains("--client-ca-file /w/clusters/a/pki/ca.crt"));
    }
}
