//! Add-ons: the optional components `create cluster --enable` takes (and `--prometheus-port` /
//! `--jaeger-port` switch on). This module owns which add-ons exist and how the `embedded` and
//! `binary` runtimes provide each (in the cluster process, as a host program, or not at all),
//! the add-on options of `kwok.yaml` (`prometheusPort`, `prometheusBinary`, `jaegerPort`,
//! `jaegerBinary`, `jaegerOtlpGrpcPort`), the add-on components started beside the cluster's
//! own (`prometheus`, `jaeger`), the `prometheus.yaml` that scrapes every component, and when
//! an add-on counts as ready.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::config::{Component, KwokctlConfiguration, METRICS_SERVER, Options, Port};
use crate::context::Context;
use crate::paths::ClusterPaths;
use crate::runtime::{RuntimeKind, binary};

pub const PROMETHEUS: &str = "prometheus";
pub const JAEGER: &str = "jaeger";

/// The file prometheus reads its scrape jobs from, in the cluster folder.
pub const PROMETHEUS_CONFIG: &str = "prometheus.yaml";
/// prometheus's time-series database, in the cluster folder.
pub const PROMETHEUS_DATA: &str = "prometheus";

/// How often prometheus asks the kwok controller for the Metric endpoints (prometheus's default
/// is 60 s; new nodes should show up sooner).
const DISCOVERY_REFRESH: &str = "10s";

/// How the embedded and binary runtimes provide an add-on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provision {
    /// Served by the embedded cluster process itself.
    InProcess,
    /// A host program, found on `PATH` under one of these names (first match wins).
    Program(&'static [&'static str]),
    /// Upstream ships it as a container image only.
    Image,
}

struct Addon {
    name: &'static str,
    provision: Provision,
}

/// Every add-on upstream's `--enable` knows, in upstream's order.
const ADDONS: &[Addon] = &[
    Addon {
        name: METRICS_SERVER,
        provision: Provision::InProcess,
    },
    Addon {
        name: PROMETHEUS,
        provision: Provision::Program(&["prometheus"]),
    },
    Addon {
        name: JAEGER,
        provision: Provision::Program(&["jaeger-all-in-one", "jaeger"]),
    },
    Addon {
        name: "kueue",
        provision: Provision::Image,
    },
    Addon {
        name: "kueueviz",
        provision: Provision::Image,
    },
    Addon {
        name: "jobset",
        provision: Provision::Image,
    },
    Addon {
        name: "lws",
        provision: Provision::Image,
    },
    Addon {
        name: "scheduler-plugins",
        provision: Provision::Image,
    },
    Addon {
        name: "descheduler",
        provision: Provision::Image,
    },
    Addon {
        name: "node-readiness-controller",
        provision: Provision::Image,
    },
];

/// The names `--enable` takes.
pub fn names() -> Vec<&'static str> {
    ADDONS.iter().map(|a| a.name).collect()
}

/// Add-ons that run as their own process (and so can be disabled by name).
pub const PROCESS_ADDONS: &[&str] = &[PROMETHEUS, JAEGER];

/// Whether `component` is an add-on started as its own host process.
pub fn is_process(component: &str) -> bool {
    PROCESS_ADDONS.contains(&component)
}

fn find(name: &str) -> Option<&'static Addon> {
    ADDONS.iter().find(|a| a.name == name)
}

/// Whether add-on `name` is switched on and not switched off.
pub fn enabled(options: &Options, name: &str) -> bool {
    options.is_enabled(name) && !options.is_disabled(name)
}

/// Refuses `--enable` names the runtime cannot provide, saying what is missing.
pub fn check_enabled(options: &Options, runtime: &str) -> Result<(), String> {
    for name in &options.enable {
        let Some(addon) = find(name) else {
            return Err(format!(
                "unknown component {name:?} for --enable: known components are {}",
                names().join(", ")
            ));
        };
        if options.is_disabled(name) {
            continue;
        }
        if addon.provision == Provision::Image {
            return Err(format!(
                "component {name:?} cannot be enabled on the {runtime} runtime: it runs from its container image, which needs a container runtime (docker, podman, nerdctl or kind) and the image; the embedded and binary runtimes run no containers"
            ));
        }
    }
    if enabled(options, METRICS_SERVER) && runtime != crate::runtime::DEFAULT_RUNTIME {
        return Err(format!(
            "component \"{METRICS_SERVER}\" is served by the embedded runtime only, not by {runtime:?}"
        ));
    }
    Ok(())
}

/// The add-on options of a `KwokctlConfiguration`: the ports and binaries live among the typed
/// cluster options (upstream's keys), jaeger's OTLP port among the others.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddonOptions {
    pub prometheus_port: u32,
    pub prometheus_binary: String,
    pub jaeger_port: u32,
    pub jaeger_binary: String,
    pub jaeger_otlp_grpc_port: u32,
}

/// Where jaeger's OTLP gRPC port is recorded in `options`.
const JAEGER_OTLP_GRPC_PORT: &str = "jaegerOtlpGrpcPort";

impl AddonOptions {
    /// Reads them from `options` (a missing or malformed OTLP port counts as unset).
    pub fn of(options: &Options) -> Self {
        let c = &options.cluster;
        Self {
            prometheus_port: c.prometheus_port,
            prometheus_binary: c.prometheus_binary.clone(),
            jaeger_port: c.jaeger_port,
            jaeger_binary: c.jaeger_binary.clone(),
            jaeger_otlp_grpc_port: options
                .extra
                .get(JAEGER_OTLP_GRPC_PORT)
                .and_then(Value::as_u64)
                .and_then(|p| u32::try_from(p).ok())
                .unwrap_or(0),
        }
    }

    /// Writes them into `options`.
    pub fn record(&self, options: &mut Options) {
        let c = &mut options.cluster;
        c.prometheus_port = self.prometheus_port;
        c.prometheus_binary = self.prometheus_binary.clone();
        c.jaeger_port = self.jaeger_port;
        c.jaeger_binary = self.jaeger_binary.clone();
        if self.jaeger_otlp_grpc_port == 0 {
            options.extra.remove(JAEGER_OTLP_GRPC_PORT);
        } else {
            options.extra.insert(
                JAEGER_OTLP_GRPC_PORT.into(),
                self.jaeger_otlp_grpc_port.into(),
            );
        }
    }
}

/// Enables prometheus and jaeger when their port is set (by flag, `KWOK_*_PORT` or config), as
/// upstream does.
pub fn enable_by_port(options: &mut Options) {
    let addon = AddonOptions::of(options);
    for (name, port) in [
        (PROMETHEUS, addon.prometheus_port),
        (JAEGER, addon.jaeger_port),
    ] {
        if port != 0 && !options.enable.iter().any(|e| e == name) {
            options.enable.push(name.to_string());
        }
    }
}

/// The program of a process add-on: its `*Binary` option (a local path), else the first of its
/// names on `PATH`. The error names the missing binary and how to provide it.
pub fn program(ctx: &Context, options: &Options, name: &str) -> Result<PathBuf, String> {
    let Some(Provision::Program(candidates)) = find(name).map(|a| a.provision) else {
        return Err(format!("component {name:?} is not a program"));
    };
    let addon = AddonOptions::of(options);
    let configured = match name {
        PROMETHEUS => &addon.prometheus_binary,
        _ => &addon.jaeger_binary,
    };
    if let Some(path) = binary::local_path(ctx, name, configured)? {
        return Ok(path);
    }
    candidates
        .iter()
        .find_map(|c| ctx.find_in_path(c))
        .ok_or_else(|| {
            format!(
                "{name} binary not found: pass --{name}-binary, set KWOK_{}_BINARY, or put {} on PATH",
                name.to_uppercase(),
                candidates.join(" or ")
            )
        })
}

/// Gives an embedded cluster with prometheus the simulator's kubelet surface on a host port
/// (`kwokControllerPort`), so its `/metrics` and Metric endpoints can be scraped. Any port a
/// user fixed wins; `taken` are ports already chosen for this cluster.
pub fn embedded_controller_port(
    ctx: &Context,
    options: &mut Options,
    fixed: &Options,
    taken: &[u16],
) -> anyhow::Result<()> {
    if !enabled(options, PROMETHEUS) || options.is_disabled(binary::KWOK_CONTROLLER) {
        return Ok(());
    }
    options.kwok_controller_port = match fixed.kwok_controller_port {
        0 => u32::from(free_ports(ctx, 1, taken)?[0]),
        p => p,
    };
    Ok(())
}

/// `count` free ports that are not in `taken`.
fn free_ports(ctx: &Context, count: usize, taken: &[u16]) -> anyhow::Result<Vec<u16>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    let free =
        crate::commands::create::allocate_ports(&ctx.workdir, &ctx.name, count + taken.len())?;
    Ok(free
        .into_iter()
        .filter(|p| !taken.contains(p))
        .take(count)
        .collect())
}

/// Every port the components of `config` use, and the embedded simulator's port.
fn used_ports(config: &KwokctlConfiguration) -> Vec<u16> {
    let mut ports: Vec<u16> = config
        .components
        .iter()
        .flat_map(|c| &c.ports)
        .flat_map(|p| [p.port, p.host_port])
        .chain([config.options.kwok_controller_port])
        .filter_map(|p| u16::try_from(p).ok().filter(|p| *p != 0))
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Appends the enabled process add-ons to `config.components`, choosing the ports `fixed`
/// leaves open. A dry run on a machine without the programs shows their bare names.
pub fn lay_out(
    ctx: &Context,
    config: &mut KwokctlConfiguration,
    paths: &ClusterPaths,
    fixed: &Options,
) -> anyhow::Result<()> {
    let wanted: Vec<&str> = PROCESS_ADDONS
        .iter()
        .copied()
        .filter(|name| enabled(&config.options, name))
        .collect();
    if wanted.is_empty() {
        return Ok(());
    }
    let fixed_ports = AddonOptions::of(fixed);
    let mut chosen = AddonOptions::of(&config.options);
    chosen.prometheus_port = fixed_ports.prometheus_port;
    chosen.jaeger_port = fixed_ports.jaeger_port;
    chosen.jaeger_otlp_grpc_port = fixed_ports.jaeger_otlp_grpc_port;
    let mut slots: Vec<&mut u32> = Vec::new();
    if wanted.contains(&PROMETHEUS) {
        slots.push(&mut chosen.prometheus_port);
    }
    if wanted.contains(&JAEGER) {
        slots.push(&mut chosen.jaeger_port);
        slots.push(&mut chosen.jaeger_otlp_grpc_port);
    }
    let open: Vec<&mut u32> = slots.into_iter().filter(|p| **p == 0).collect();
    let mut free = free_ports(ctx, open.len(), &used_ports(config))?.into_iter();
    for slot in open {
        *slot = u32::from(free.next().context("no free port found")?);
    }
    for (name, port) in [
        (PROMETHEUS, chosen.prometheus_port),
        (JAEGER, chosen.jaeger_port),
        (JAEGER, chosen.jaeger_otlp_grpc_port),
    ] {
        if wanted.contains(&name) && u16::try_from(port).is_err() {
            anyhow::bail!("--{name}-port {port} is out of range (1-65535)");
        }
    }
    chosen.record(&mut config.options);
    for name in wanted {
        let program = match program(ctx, &config.options, name) {
            Ok(path) => path,
            Err(_) if ctx.dry_run => PathBuf::from(name),
            Err(e) => anyhow::bail!(e),
        };
        let component = match name {
            PROMETHEUS => prometheus_component(paths, config, &program, &chosen),
            _ => jaeger_component(paths, &program, &chosen),
        };
        config.components.push(component);
    }
    Ok(())
}

fn port(name: &str, port: u32) -> Port {
    Port {
        name: name.into(),
        port,
        host_port: port,
        protocol: "TCP".into(),
    }
}

fn prometheus_component(
    paths: &ClusterPaths,
    config: &KwokctlConfiguration,
    program: &Path,
    ports: &AddonOptions,
) -> Component {
    // Upstream's links; the ones the cluster does not have are left out.
    let links = [
        binary::ETCD,
        binary::KUBE_APISERVER,
        binary::KWOK_CONTROLLER,
        binary::KUBE_CONTROLLER_MANAGER,
        binary::KUBE_SCHEDULER,
    ]
    .into_iter()
    .filter(|l| config.component(l).is_some())
    .map(String::from)
    .collect();
    Component {
        name: PROMETHEUS.into(),
        links,
        binary: program.display().to_string(),
        args: vec![
            format!(
                "--config.file={}",
                paths.dir.join(PROMETHEUS_CONFIG).display()
            ),
            format!("--web.listen-address=127.0.0.1:{}", ports.prometheus_port),
            format!(
                "--storage.tsdb.path={}",
                paths.dir.join(PROMETHEUS_DATA).display()
            ),
        ],
        work_dir: paths.dir.display().to_string(),
        ports: vec![port("http", ports.prometheus_port)],
        ..Default::default()
    }
}

fn jaeger_component(paths: &ClusterPaths, program: &Path, ports: &AddonOptions) -> Component {
    Component {
        name: JAEGER.into(),
        binary: program.display().to_string(),
        args: vec![
            "--collector.otlp.enabled=true".into(),
            format!(
                "--query.http-server.host-port=127.0.0.1:{}",
                ports.jaeger_port
            ),
            format!(
                "--collector.otlp.grpc.host-port=127.0.0.1:{}",
                ports.jaeger_otlp_grpc_port
            ),
        ],
        work_dir: paths.dir.display().to_string(),
        ports: vec![
            port("http", ports.jaeger_port),
            port("otlp-grpc", ports.jaeger_otlp_grpc_port),
        ],
        ..Default::default()
    }
}

/// Whether a running add-on answers: prometheus `/-/ready`, jaeger its query UI. `None` for
/// components that are not process add-ons.
pub fn ready(component: &Component) -> Option<bool> {
    let path = match component.name.as_str() {
        PROMETHEUS => "/-/ready",
        JAEGER => "/",
        _ => return None,
    };
    let port = binary::host_port(component)?;
    Some(crate::probe::http_status(port, path, Duration::from_millis(500)).ok() == Some(200))
}

/// How prometheus reaches one scrape target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    /// HTTPS verified with the cluster CA, as the admin user.
    HttpsClusterCa,
    /// HTTPS to upstream components with their own self-signed serving certificates.
    HttpsSelfSigned,
}

/// One static scrape job: `<job>` on `127.0.0.1:<port>/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    job: String,
    scheme: Scheme,
    port: u16,
}

/// The scheme of a component's `/metrics`, by component name. Components served by `kwok`
/// without a port of their own (kube-controller-manager, kube-scheduler) have no job.
const SCRAPES: &[(&str, Scheme)] = &[
    (PROMETHEUS, Scheme::Http),
    (binary::ETCD, Scheme::Http),
    (binary::KUBE_APISERVER, Scheme::HttpsClusterCa),
    (binary::KUBE_CONTROLLER_MANAGER, Scheme::HttpsSelfSigned),
    (binary::KUBE_SCHEDULER, Scheme::HttpsSelfSigned),
    (binary::KWOK_CONTROLLER, Scheme::Http),
];

/// The static targets of a cluster, one job per component, named after it as upstream does.
fn targets(config: &KwokctlConfiguration) -> Vec<Target> {
    let mut out = Vec::new();
    for component in &config.components {
        let Some((_, scheme)) = SCRAPES.iter().find(|(n, _)| *n == component.name) else {
            continue;
        };
        let port = match component.name.as_str() {
            binary::ETCD => binary::etcd_port(&config.options, &config.components),
            binary::KUBE_APISERVER => u16::try_from(config.options.kube_apiserver_port)
                .ok()
                .filter(|p| *p != 0)
                .or_else(|| binary::host_port(component)),
            _ => binary::host_port(component),
        };
        if let Some(port) = port {
            out.push(Target {
                job: component.name.clone(),
                scheme: *scheme,
                port,
            });
        }
    }
    if let Some(port) = embedded_controller(config) {
        out.push(Target {
            job: binary::KWOK_CONTROLLER.into(),
            scheme: Scheme::Http,
            port,
        });
    }
    out
}

/// The embedded simulator's kubelet surface port, when it has one.
fn embedded_controller(config: &KwokctlConfiguration) -> Option<u16> {
    let embedded = RuntimeKind::parse(&config.options.runtime) == Some(RuntimeKind::Embedded);
    if !embedded || config.options.is_disabled(binary::KWOK_CONTROLLER) {
        return None;
    }
    u16::try_from(config.options.kwok_controller_port)
        .ok()
        .filter(|p| *p != 0)
}

/// The port of the kwok controller's `/discovery/prometheus`, if the cluster has one.
fn discovery_port(config: &KwokctlConfiguration) -> Option<u16> {
    embedded_controller(config).or_else(|| {
        config
            .component(binary::KWOK_CONTROLLER)
            .and_then(binary::host_port)
    })
}

fn scrape_job(target: &Target, pki: &pki::PkiPaths) -> Value {
    let path = |p: PathBuf| p.display().to_string();
    let mut job = json!({
        "job_name": target.job,
        "scheme": if target.scheme == Scheme::Http { "http" } else { "https" },
        "honor_timestamps": true,
        "metrics_path": "/metrics",
        "follow_redirects": true,
        "enable_http2": true,
        "static_configs": [{"targets": [format!("127.0.0.1:{}", target.port)]}],
    });
    let tls = match target.scheme {
        Scheme::Http => return job,
        Scheme::HttpsClusterCa => json!({"ca_file": path(pki.ca_cert())}),
        Scheme::HttpsSelfSigned => json!({"insecure_skip_verify": true}),
    };
    job["tls_config"] = tls;
    job["tls_config"]["cert_file"] = json!(path(pki.admin_cert()));
    job["tls_config"]["key_file"] = json!(path(pki.admin_key()));
    job
}

/// The prometheus configuration of a cluster: a job per component with a `/metrics` endpoint,
/// and `kwok-controller-metrics-discovery`, the kwok Metric endpoints found through the
/// controller's `/discovery/prometheus` (one target per Metric path and node).
pub fn prometheus_config(config: &KwokctlConfiguration, paths: &ClusterPaths) -> Value {
    let pki = pki::PkiPaths::new(paths.pki());
    let mut jobs: Vec<Value> = targets(config)
        .iter()
        .map(|t| scrape_job(t, &pki))
        .collect();
    if let Some(port) = discovery_port(config) {
        jobs.push(json!({
            "job_name": format!("{}-metrics-discovery", binary::KWOK_CONTROLLER),
            "http_sd_configs": [{
                "url": format!("http://127.0.0.1:{port}/discovery/prometheus"),
                "refresh_interval": DISCOVERY_REFRESH,
            }],
            // Every Metric target shares the controller's address: keep their series apart by
            // path, and name the node of per-node paths.
            "relabel_configs": [
                {"source_labels": ["__metrics_path__"], "target_label": "metrics_path"},
                {
                    "source_labels": ["__metrics_path__"],
                    "regex": "/metrics/nodes/([^/]+)/.*",
                    "target_label": "node",
                },
            ],
        }));
    }
    json!({
        "global": {
            "scrape_interval": "15s",
            "scrape_timeout": "10s",
            "evaluation_interval": "15s",
        },
        "scrape_configs": jobs,
    })
}

fn prometheus_config_text(config: &KwokctlConfiguration, paths: &ClusterPaths) -> String {
    crate::config::render_documents(&[prometheus_config(config, paths)]).unwrap_or_default()
}

/// Writes the files the cluster's add-ons read (`prometheus.yaml`, the data folder); safe to
/// repeat.
pub fn install(config: &KwokctlConfiguration, paths: &ClusterPaths) -> anyhow::Result<()> {
    if config.component(PROMETHEUS).is_none() {
        return Ok(());
    }
    let data = paths.dir.join(PROMETHEUS_DATA);
    std::fs::create_dir_all(&data).with_context(|| format!("create {}", data.display()))?;
    let file = paths.dir.join(PROMETHEUS_CONFIG);
    std::fs::write(&file, prometheus_config_text(config, paths))
        .with_context(|| format!("write {}", file.display()))
}

/// Prints what [`install`] would write, for `--dry-run`.
pub fn print_files(config: &KwokctlConfiguration, paths: &ClusterPaths) {
    if config.component(PROMETHEUS).is_none() {
        return;
    }
    crate::dryrun::say(format!(
        "mkdir -p {}",
        paths.dir.join(PROMETHEUS_DATA).display()
    ));
    crate::dryrun::say(format!(
        "cat <<EOF >{}\n{}EOF",
        paths.dir.join(PROMETHEUS_CONFIG).display(),
        prometheus_config_text(config, paths)
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(enable: &[&str]) -> Options {
        Options {
            enable: enable.iter().map(|e| e.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn image_only_addons_are_refused_with_what_is_missing() {
        for name in [
            "kueue",
            "kueueviz",
            "jobset",
            "lws",
            "scheduler-plugins",
            "descheduler",
            "node-readiness-controller",
        ] {
            let err = check_enabled(&options(&[name]), "embedded").unwrap_err();
            assert!(err.contains(&format!("component {name:?}")), "{err}");
            assert!(err.contains("needs a container runtime"), "{err}");
        }
        assert!(check_enabled(&options(&[PROMETHEUS, JAEGER]), "binary").is_ok());
        let err = check_enabled(&options(&["grafana"]), "embedded").unwrap_err();
        assert!(
            err.starts_with("unknown component \"grafana\" for --enable: known components are metrics-server, prometheus, jaeger, kueue"),
            "{err}"
        );
        let mut disabled = options(&["kueue"]);
        disabled.disable = vec!["kueue".into()];
        assert!(check_enabled(&disabled, "embedded").is_ok());
    }

    #[test]
    fn ports_enable_their_addon_and_round_trip_through_the_options() {
        let env = crate::paths::Env::from_pairs([
            ("KWOK_JAEGER_PORT", "16686"),
            ("KWOK_PROMETHEUS_PORT", "1"),
        ]);
        let flags = crate::config::OptionFlags {
            cluster: crate::cluster_options::ClusterFlags {
                prometheus_port: Some(9090),
                artifacts: crate::cluster_options::ArtifactFlags {
                    prometheus_binary: Some("/opt/prometheus".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Default::default()
        };
        let mut options = crate::config::resolve_options(&Options::default(), &env, &flags);
        enable_by_port(&mut options);
        assert_eq!(options.enable, [PROMETHEUS, JAEGER]);
        let addon = AddonOptions::of(&options);
        assert_eq!(addon.prometheus_port, 9090, "the flag wins over the env");
        assert_eq!(addon.jaeger_port, 16686);
        assert_eq!(addon.prometheus_binary, "/opt/prometheus");
        let value = serde_json::to_value(&options).unwrap();
        assert_eq!(value["prometheusPort"], 9090);
        assert!(value.get("jaegerBinary").is_none());
        let mut untouched = crate::config::resolve_options(
            &Options::default(),
            &crate::paths::Env::default(),
            &Default::default(),
        );
        enable_by_port(&mut untouched);
        assert!(untouched.enable.is_empty());
    }

    fn component(name: &str, port: u16) -> Component {
        Component {
            name: name.into(),
            ports: if port == 0 {
                Vec::new()
            } else {
                vec![super::port("http", u32::from(port))]
            },
            ..Default::default()
        }
    }

    fn jobs(config: &KwokctlConfiguration) -> Vec<String> {
        let paths = ClusterPaths::new("/w/clusters/a");
        prometheus_config(config, &paths)["scrape_configs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["job_name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn binary_cluster_jobs_are_named_after_components() {
        let mut config = KwokctlConfiguration::new();
        config.options.runtime = "binary".into();
        config.options.kube_apiserver_port = 2003;
        config.components = vec![
            component(binary::ETCD, 2001),
            component(binary::KUBE_APISERVER, 2003),
            component(binary::KUBE_CONTROLLER_MANAGER, 0),
            component(binary::KUBE_SCHEDULER, 2006),
            component(binary::KWOK_CONTROLLER, 2004),
            component(PROMETHEUS, 9090),
        ];
        assert_eq!(
            jobs(&config),
            [
                "etcd",
                "kube-apiserver",
                "kube-scheduler",
                "kwok-controller",
                "prometheus",
                "kwok-controller-metrics-discovery"
            ]
        );
        let paths = ClusterPaths::new("/w/clusters/a");
        let doc = prometheus_config(&config, &paths);
        let apiserver = &doc["scrape_configs"][1];
        assert_eq!(apiserver["scheme"], "https");
        assert_eq!(
            apiserver["static_configs"][0]["targets"][0],
            "127.0.0.1:2003"
        );
        assert_eq!(
            apiserver["tls_config"]["ca_file"],
            "/w/clusters/a/pki/ca.crt"
        );
        assert_eq!(
            apiserver["tls_config"]["cert_file"],
            "/w/clusters/a/pki/admin.crt"
        );
        assert_eq!(
            doc["scrape_configs"][2]["tls_config"]["insecure_skip_verify"],
            true
        );
        assert_eq!(
            doc["scrape_configs"][5]["http_sd_configs"][0]["url"],
            "http://127.0.0.1:2004/discovery/prometheus"
        );
    }

    #[test]
    fn embedded_cluster_scrapes_the_simulator_port() {
        let mut config = KwokctlConfiguration::new();
        config.options.runtime = "embedded".into();
        config.options.kube_apiserver_port = 2003;
        config.components = vec![
            component(binary::KUBE_APISERVER, 2003),
            component(PROMETHEUS, 9090),
        ];
        assert_eq!(jobs(&config), ["kube-apiserver", "prometheus"]);
        config.options.kwok_controller_port = 2004;
        assert_eq!(
            jobs(&config),
            [
                "kube-apiserver",
                "prometheus",
                "kwok-controller",
                "kwok-controller-metrics-discovery"
            ]
        );
        config.options.disable = vec![binary::KWOK_CONTROLLER.into()];
        assert_eq!(jobs(&config), ["kube-apiserver", "prometheus"]);
    }
}
