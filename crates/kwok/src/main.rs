//! The `kwok` binary: without a subcommand it is upstream's `kwok` controller (the node and
//! pod simulator, against any cluster reached through a kubeconfig); `kwok apiserver` serves the
//! embedded Kubernetes API server (with `--simulate`, the simulator runs inside it);
//! `kwok controller-manager` runs the built-in controllers against any API server; `kwok bench`,
//! `kwok bench-sim`, `kwok bench-metrics` and `kwok bench-streams` measure them.

mod bench;
mod bench_admission;
mod bench_metrics;
mod bench_rbac;
mod bench_sim;
mod bench_streams;
mod controller;
mod controller_manager;
mod idle;

// The server's work is allocation-heavy JSON handling; mimalloc keeps that cheap across threads.
// It is built without transparent huge pages (the workspace's `no_thp`): with them every 2 MiB
// the heap touches is resident, and an idle cluster held 60-70 MiB instead of about 10. Memory
// it keeps after a burst is handed back once the process is idle (`idle.rs`).
// `--features system-allocator` leaves the C allocator in place, for heap profilers such as
// heaptrack that hook malloc.
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use store::{EtcdOptions, EtcdStore, EtcdTls, LocalStore, Options, SyncMode};

#[derive(Parser)]
#[command(
    name = "kwok",
    version,
    about = "kwok simulates Kubernetes nodes and pods, and serves the embedded cluster",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// Log verbosity: 0 = info, 1 = debug, 2+ = trace.
    #[arg(short = 'v', long = "v", global = true, default_value_t = 0)]
    verbosity: u8,
    #[command(flatten)]
    controller: controller::ControllerArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Kubernetes API over HTTPS, with objects stored in a data directory or etcd.
    Apiserver(Box<ApiserverArgs>),
    /// Run the built-in controllers against an API server reached through a kubeconfig.
    ControllerManager(controller_manager::ControllerManagerArgs),
    /// Measure the API server and print the figures.
    Bench(bench::BenchArgs),
    /// Measure the simulator (nodes Ready, pods Running, heartbeats) and print the figures.
    BenchSim(bench_sim::BenchSimArgs),
    /// Measure `kubectl top` and the Metric endpoints of a simulated cluster.
    BenchMetrics(bench_metrics::BenchMetricsArgs),
    /// Measure followed logs and port-forward connections under load and print the figures.
    BenchStreams(bench_streams::BenchStreamsArgs),
    /// Measure what authentication and RBAC cost a request and print the figures.
    BenchRbac(bench_rbac::BenchRbacArgs),
    /// Measure what admission webhooks and validating admission policies add to a create and print the figures.
    BenchAdmission(bench_admission::BenchAdmissionArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum StorageSync {
    /// Acknowledge a write after it is synced to disk.
    Always,
    /// Acknowledge a write once queued; faster, and a machine crash can lose recent writes.
    None,
}

#[derive(clap::Args)]
struct ApiserverArgs {
    /// Where objects are stored. Without it, objects live in memory only.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HTTPS port.
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,
    /// Serving certificate (PEM). Generated into <data-dir>/pki when not given.
    #[arg(long, requires_all = ["tls_private_key_file", "client_ca_file"])]
    tls_cert_file: Option<PathBuf>,
    /// Serving key (PEM).
    #[arg(long)]
    tls_private_key_file: Option<PathBuf>,
    /// CA that signs client certificates (PEM).
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Private key (PKCS#8 PEM, ECDSA P-256 or RSA) that signs service-account tokens; an ECDSA
    /// P-256 key is generated when missing.
    /// Defaults to <data-dir>/pki/sa.key, or a key kept in memory without --data-dir.
    #[arg(long)]
    service_account_signing_key_file: Option<PathBuf>,
    /// CA key (PEM) that signs approved CertificateSigningRequests, with --client-ca-file as
    /// its certificate. Defaults to `ca.key` beside the client CA, when it is there.
    #[arg(long)]
    cluster_signing_key_file: Option<PathBuf>,
    /// The `iss` of service-account tokens and the OIDC discovery document.
    #[arg(long, default_value = apiserver::authn::tokens::DEFAULT_ISSUER)]
    service_account_issuer: String,
    /// Authorizers, in order: `RBAC` (with `Node`, which no simulated kubelet needs) enforces
    /// roles and bindings; `AlwaysAllow` lets every authenticated request through.
    #[arg(long, default_value = "Node,RBAC", value_parser = parse_authorization_mode)]
    authorization_mode: AuthorizationMode,
    /// When a write counts as durable.
    #[arg(long, value_enum, default_value_t = StorageSync::Always)]
    storage_sync: StorageSync,
    /// Start even if the data directory's write-ahead log is damaged: first copy the snapshot
    /// and log files to <data-dir>/store/repair-<UTC time>/, then cut the log at the first bad
    /// record (that record and every later write are dropped). Without damage it changes
    /// nothing; an incomplete final write is cut off with or without it.
    #[arg(long, default_value_t = false, conflicts_with = "etcd_servers")]
    repair_wal: bool,
    /// Seconds of watch history kept (resume window for watches).
    #[arg(long, default_value_t = 300)]
    watch_history_seconds: u64,
    /// At most this many events of watch history are kept...
    #[arg(long, default_value_t = 1_000_000)]
    watch_history_events: usize,
    /// ...and at most this many MiB of their values (the bound that wins under a sustained
    /// write load: 256 MiB holds about 100,000 pod writes).
    #[arg(long, default_value_t = 256)]
    watch_history_mib: usize,
    /// etcd client URLs (comma-separated). With them, objects are stored in etcd instead of
    /// the data directory.
    #[arg(long, value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// Key prefix of every object in etcd.
    #[arg(long, default_value = "/registry")]
    etcd_prefix: String,
    /// CA bundle that signs etcd's serving certificate (PEM).
    #[arg(long)]
    etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd (PEM).
    #[arg(long, requires = "etcd_keyfile")]
    etcd_certfile: Option<PathBuf>,
    /// Client key for etcd (PEM).
    #[arg(long, requires = "etcd_certfile")]
    etcd_keyfile: Option<PathBuf>,
    /// How often etcd's history is compacted (`5m`, `300s`, `0` never).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    etcd_compaction_interval: std::time::Duration,
    /// How long an Event is kept after its last write (`0` keeps them forever).
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    event_ttl: std::time::Duration,
    /// Run the node and pod simulator in-process, with the default Stages, on every node.
    #[arg(long, default_value_t = false)]
    simulate: bool,
    /// With --simulate, also serve the simulator's kubelet surface (health, metrics, logs, exec,
    /// attach, port-forward, Metric paths) over HTTP on this address, as `kwok --server-address`.
    #[arg(long, requires = "simulate")]
    server_address: Option<String>,
    /// A config file for the in-process simulator: its Stages replace the default ones, and
    /// its Logs, Exec, PortForward, ... objects say what simulated pods answer.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Built-in controllers to run in-process, as kube-controller-manager takes them: `*` for
    /// all, `foo` to enable and `-foo` to disable one (`*,-daemonset`); empty for none. Names:
    /// garbage-collector, scheduler, serviceaccount, horizontalpodautoscaling,
    /// clusterrole-aggregation, replicaset,
    /// replicationcontroller, deployment, job, statefulset, daemonset, cronjob, endpoint, endpointslice, nodelifecycle,
    /// resourcequota, persistentvolume-binder.
    #[arg(long, default_value = "*")]
    controllers: String,
    /// Serve the resource metrics API (metrics.k8s.io: `kubectl top`, autoscalers) from the
    /// simulated usage, as metrics-server would.
    #[arg(long, default_value_t = false, requires = "simulate")]
    enable_metrics: bool,
    /// How often horizontal pod autoscalers are synced.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// How often the resource metrics are sampled.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    metrics_resolution: std::time::Duration,
    #[command(flatten)]
    node_monitor: controller_manager::NodeMonitorArgs,
    /// With --simulate, the kinds the simulator reads from the API instead of --config
    /// (Stage, Logs, ClusterExec, ...), as `kwok --enable-crds`.
    #[arg(long, value_delimiter = ',', requires = "simulate")]
    enable_crds: Vec<String>,
    /// With --simulate, the duration of node Leases in seconds (0: no Leases); default 40, or
    /// the config's KwokConfiguration.
    #[arg(long, requires = "simulate")]
    node_lease_duration_seconds: Option<u64>,
    /// A `KubeSchedulerConfiguration` file for the in-process scheduler, as kube-scheduler's
    /// `--config`: profiles, plugins and their weights and arguments.
    #[arg(long)]
    scheduler_config: Option<PathBuf>,
    #[command(flatten)]
    kube: KubeApiserverArgs,
}

/// kube-apiserver's flags for what is served and how requests are recorded.
#[derive(clap::Args)]
struct KubeApiserverArgs {
    /// Audit policy (audit.k8s.io/v1 Policy). Without it nothing is audited.
    #[arg(long)]
    audit_policy_file: Option<PathBuf>,
    /// Where audit events are written, one JSON object per line; `-` is stdout.
    #[arg(long)]
    audit_log_path: Option<String>,
    /// Format of the audit log; only `json`.
    #[arg(long, default_value = "json", value_parser = ["json"])]
    audit_log_format: String,
    /// Accepted for kube-apiserver compatibility; the log is not rotated.
    #[arg(long, hide = true)]
    audit_log_maxsize: Option<u64>,
    /// Accepted for kube-apiserver compatibility; the log is not rotated.
    #[arg(long, hide = true)]
    audit_log_maxbackup: Option<u64>,
    /// Accepted for kube-apiserver compatibility; the log is not rotated.
    #[arg(long, hide = true)]
    audit_log_maxage: Option<u64>,
    /// Feature gates, `Name=true|false,...` (kube-apiserver 1.33's gates).
    #[arg(long, default_value = "")]
    feature_gates: String,
    /// Group-versions to serve or not: `batch/v1=false`, `api/all=false,apps/v1=true`,
    /// `api/ga`, `api/beta`, `api/alpha`.
    #[arg(long, default_value = "")]
    runtime_config: String,
    /// The Kubernetes version to act as, v1.27 to v1.33 (`/version`, and the built-in
    /// resources that version served).
    #[arg(long)]
    kube_version: Option<String>,
    /// Plain-HTTP port serving the same API, every request acting as `kwok-admin` in
    /// `system:masters`; 0 is off.
    #[arg(long, default_value_t = 0)]
    insecure_port: u16,
    /// Address of the plain-HTTP port.
    #[arg(long, default_value = "127.0.0.1")]
    insecure_bind_address: IpAddr,
    /// Admission plugins to enable besides the defaults (kube-apiserver's names).
    #[arg(long, value_delimiter = ',')]
    enable_admission_plugins: Vec<String>,
    /// Admission plugins to turn off: Priority, DefaultStorageClass, DefaultIngressClass,
    /// MutatingAdmissionWebhook, ValidatingAdmissionWebhook and ValidatingAdmissionPolicy take
    /// effect; other known names are accepted.
    #[arg(long, value_delimiter = ',')]
    disable_admission_plugins: Vec<String>,
    /// Accepted for kube-apiserver compatibility; requests are not limited.
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: u64,
    /// Accepted for kube-apiserver compatibility; requests are not limited.
    #[arg(long, default_value_t = 200)]
    max_mutating_requests_inflight: u64,
    /// Accepted for kube-apiserver compatibility; the flowcontrol objects are served, requests
    /// are not queued.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    enable_priority_and_fairness: bool,
}

impl KubeApiserverArgs {
    /// The served API: version, runtime config and feature gates, with kube's messages.
    fn surface(&self) -> anyhow::Result<apiserver::surface::Surface> {
        let mut surface = apiserver::surface::Surface {
            gates: apiserver::featuregates::FeatureGates::parse(&self.feature_gates)
                .map_err(anyhow::Error::msg)?,
            ..Default::default()
        };
        if let Some(version) = &self.kube_version {
            surface
                .set_kube_version(version)
                .map_err(anyhow::Error::msg)?;
        }
        surface
            .set_runtime_config(&self.runtime_config)
            .map_err(|e| anyhow::anyhow!("--runtime-config: {e}"))?;
        Ok(surface)
    }

    /// The auditor, when both a policy and a log path are given.
    fn auditor(&self) -> anyhow::Result<Option<Arc<apiserver::audit::Auditor>>> {
        match (&self.audit_policy_file, &self.audit_log_path) {
            (Some(policy), Some(path)) => Ok(Some(apiserver::audit::Auditor::open(policy, path)?)),
            _ => Ok(None),
        }
    }
}

/// Controllers and the resource each one needs, which kube-controller-manager skips when the
/// server does not serve it (`--runtime-config`, `--kube-version`).
const CONTROLLER_RESOURCES: &[(&str, &str, &str, &str)] = &[
    ("job", "batch", "v1", "jobs"),
    ("cronjob", "batch", "v1", "cronjobs"),
    ("deployment", "apps", "v1", "deployments"),
    ("replicaset", "apps", "v1", "replicasets"),
    ("statefulset", "apps", "v1", "statefulsets"),
    ("daemonset", "apps", "v1", "daemonsets"),
    (
        "horizontalpodautoscaling",
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
    ),
    ("endpointslice", "discovery.k8s.io", "v1", "endpointslices"),
];

/// The selection without the controllers whose resource is not served.
fn without_unserved(
    selection: controllers::Selection,
    text: &str,
    registry: &apiserver::Registry,
) -> anyhow::Result<controllers::Selection> {
    let skipped: Vec<&str> = CONTROLLER_RESOURCES
        .iter()
        .filter(|(name, group, version, plural)| {
            selection.enabled(name) && registry.find(group, version, plural).is_none()
        })
        .map(|(name, ..)| *name)
        .collect();
    if skipped.is_empty() {
        return Ok(selection);
    }
    tracing::info!(controllers = %skipped.join(","), "skipping controllers whose resources are not served");
    let text = format!("{text},-{}", skipped.join(",-"));
    controllers::Selection::parse(&text).map_err(|e| anyhow::anyhow!("--controllers: {e}"))
}

/// A duration as kube components write them: `90s`, `5m`, `1h`, `1m30s`, or plain seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(seconds));
    }
    if let Some(ms) = text.strip_suffix("ms").and_then(|n| n.parse::<u64>().ok()) {
        return Ok(std::time::Duration::from_millis(ms));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(format!("invalid duration {text:?}")),
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("invalid duration {text:?}"))?;
        total = n
            .checked_mul(unit)
            .and_then(|d| total.checked_add(d))
            .ok_or_else(|| format!("invalid duration {text:?}: out of range"))?;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("invalid duration {text:?}: missing unit"));
    }
    Ok(std::time::Duration::from_secs(total))
}

fn init_logging(verbosity: u8) {
    let default = match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KWOK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthorizationMode {
    Rbac,
    AlwaysAllow,
}

fn parse_authorization_mode(s: &str) -> Result<AuthorizationMode, String> {
    let mut mode = None;
    for part in s.split(',').map(str::trim) {
        match part {
            "RBAC" => mode = mode.or(Some(AuthorizationMode::Rbac)),
            "AlwaysAllow" => mode = mode.or(Some(AuthorizationMode::AlwaysAllow)),
            "Node" => {}
            other => {
                return Err(format!(
                    "authorization-mode {other:?} is not supported (want Node, RBAC or AlwaysAllow)"
                ));
            }
        }
    }
    mode.ok_or_else(|| "authorization-mode needs RBAC or AlwaysAllow".to_string())
}

/// The PEM of the service-account signing key: the file given (made when missing), else
/// `<data-dir>/pki/sa.key`, else a fresh key for this run only.
fn service_account_key(args: &ApiserverArgs) -> anyhow::Result<String> {
    let path = match (&args.service_account_signing_key_file, &args.data_dir) {
        (Some(file), _) => file.clone(),
        (None, Some(dir)) => pki::PkiPaths::new(dir.join("pki")).service_account_key(),
        (None, None) => return Ok(pki::generate_service_account_key()?),
    };
    if path.exists() {
        return std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()));
    }
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    let pem = pki::ensure_service_account_key(dir)?;
    let made = pki::PkiPaths::new(dir).service_account_key();
    if made != path {
        std::fs::rename(&made, &path).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(pem)
}

async fn run_apiserver(args: ApiserverArgs) -> anyhow::Result<()> {
    let surface = args.kube.surface()?;
    let auditor = args.kube.auditor()?;
    let scheduler = controller_manager::load_scheduler_config(args.scheduler_config.as_deref())?;
    let (cert, key, ca) = match (
        &args.tls_cert_file,
        &args.tls_private_key_file,
        &args.client_ca_file,
    ) {
        (Some(c), Some(k), Some(ca)) => (c.clone(), k.clone(), ca.clone()),
        _ => {
            let dir = args
                .data_dir
                .as_ref()
                .map(|d| d.join("pki"))
                .context("--tls-cert-file, --tls-private-key-file and --client-ca-file are required without --data-dir")?;
            let paths = pki::ensure(&dir, &[])?;
            tracing::info!(dir = %dir.display(), "using generated certificates");
            (paths.serving_cert(), paths.serving_key(), paths.ca_cert())
        }
    };
    let tls = apiserver::tls_config_from_files(&cert, &key, &ca)?;
    let (store, local_store): (Arc<dyn store::Store>, Option<Arc<LocalStore>>) = if args
        .etcd_servers
        .is_empty()
    {
        let local = LocalStore::open(Options {
            data_dir: args.data_dir.as_ref().map(|d| d.join("store")),
            sync: match args.storage_sync {
                StorageSync::Always => SyncMode::Always,
                StorageSync::None => SyncMode::None,
            },
            history_window: std::time::Duration::from_secs(args.watch_history_seconds),
            history_max_events: args.watch_history_events.max(1),
            history_max_bytes: args.watch_history_mib.max(1) << 20,
            repair_wal: args.repair_wal,
            ..Options::default()
        })
        .context("open the store")?;
        (local.clone(), Some(local))
    } else {
        let etcd = EtcdStore::connect(
            EtcdOptions {
                endpoints: args.etcd_servers.clone(),
                prefix: args.etcd_prefix.clone(),
                tls: EtcdTls {
                    ca_file: args.etcd_cafile.clone(),
                    cert_file: args.etcd_certfile.clone(),
                    key_file: args.etcd_keyfile.clone(),
                },
                compaction_interval: (!args.etcd_compaction_interval.is_zero())
                    .then_some(args.etcd_compaction_interval),
                ..EtcdOptions::default()
            },
            Arc::new(apiserver::stamp_resource_version),
        )
        .await
        .context("connect to etcd")?;
        tracing::info!(servers = %args.etcd_servers.join(","), prefix = %args.etcd_prefix, "storing objects in etcd");
        (apiserver::metrics::timed_etcd(etcd), None)
    };
    let addr = SocketAddr::new(args.bind_address, args.secure_port);
    let listener = apiserver::bind(addr).await?;
    let local = listener.local_addr()?;
    let server = apiserver::ApiServer::new(store.clone(), local.to_string()).await?;
    server
        .set_admission_plugins(
            &args.kube.enable_admission_plugins,
            &args.kube.disable_admission_plugins,
        )
        .map_err(anyhow::Error::msg)?;
    server.registry.set_surface(surface);
    if let Some(auditor) = auditor {
        server.set_auditor(auditor);
    }
    server.set_service_account_key(&service_account_key(&args)?, &args.service_account_issuer)?;
    server.set_always_allow(args.authorization_mode == AuthorizationMode::AlwaysAllow);
    if let Ok(pem) = std::fs::read_to_string(&ca) {
        server.set_cluster_ca(&pem);
        let key_file = args
            .cluster_signing_key_file
            .clone()
            .unwrap_or_else(|| ca.with_file_name("ca.key"));
        if let Ok(key) = std::fs::read_to_string(&key_file) {
            server.set_cluster_signer(&pem, &key);
        }
    }
    let selection = controllers::Selection::parse(&args.controllers)
        .map_err(|e| anyhow::anyhow!("--controllers: {e}"))?;
    let selection = without_unserved(selection, &args.controllers, &server.registry)?;
    let served = |registry: &apiserver::Registry| -> Vec<client::Resource> {
        registry
            .types()
            .into_iter()
            .filter(|r| r.is_stored())
            .map(|r| client::Resource::new(r.group, r.version, r.plural, r.kind, r.namespaced))
            .collect()
    };
    let rediscover: controllers::gc::Discover = {
        let registry = server.registry.clone();
        Arc::new(move || {
            let types = served(&registry);
            Box::pin(async move { types })
        })
    };
    controller_manager::start_controllers(
        Arc::new(client::LocalCluster::new(server.registry.clone())),
        served(&server.registry),
        rediscover,
        std::fs::read_to_string(&ca).ok(),
        &selection,
        controller_manager::ControllerSettings {
            hpa_sync_period: args.horizontal_pod_autoscaler_sync_period,
            node_monitor: args.node_monitor.monitor(),
            scheduler,
        },
    );
    let local_cluster: Arc<dyn client::Cluster> =
        Arc::new(client::LocalCluster::new(server.registry.clone()));
    controllers::eventttl::start(local_cluster.clone(), args.event_ttl);
    kwok::metrics::install_checks(&server.registry);
    kwok::simkinds::crds::install(&*local_cluster, kwok::simkinds::crds::simulation_kinds())
        .await
        .map_err(|e| anyhow::anyhow!("install the simulation kinds: {e}"))?;
    if args.simulate {
        let (mut opts, file_server_address) = controller::embedded_options(
            args.config.as_deref(),
            &args.enable_crds,
            args.node_lease_duration_seconds,
        )?;
        if opts.enable_crds.iter().any(|k| k == "Stage") {
            // Stages come from the API: serve their kind, as kwokctl installs the CRD upstream.
            kwok::simkinds::crds::install(
                &*local_cluster,
                kwok::simkinds::crds::find("Stage").into_iter(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("install the Stage kind: {e}"))?;
        }
        if opts.identity.is_empty()
            && let Some(dir) = &args.data_dir
        {
            opts.identity = kwok::sim::lasting_identity(dir)
                .with_context(|| format!("keep the simulator's identity in {}", dir.display()))?;
        }
        if args.enable_metrics {
            let defaults = kwok::metrics::defaults_for(&opts.simulations);
            opts.simulations.extend(defaults);
        }
        let sim = kwok::Simulator::start(local_cluster.clone(), opts)
            .await
            .map_err(|e| anyhow::anyhow!("start the simulator: {e}"))?;
        let kubelet = kwok::kubelet::Kubelet::start(local_cluster.clone(), &sim);
        server.set_kubelet_connector(Arc::new(kwok::kubelet::InProcess::new(&kubelet)));
        if args.enable_metrics {
            let metrics = kwok::metrics::Metrics::start(
                local_cluster.clone(),
                kubelet.simulations.clone(),
                args.metrics_resolution
                    .max(std::time::Duration::from_millis(100)),
                &sim.env.opts.simulations,
            );
            server.registry.set_metrics_source(metrics.resource.clone());
            kubelet.enable_metrics(metrics);
            tracing::info!(resolution = ?args.metrics_resolution, "serving the resource metrics API");
        }
        if let Some(address) = args.server_address.clone().or(file_server_address) {
            tokio::spawn(async move {
                if let Err(e) = kubelet.serve(&address).await {
                    tracing::error!("{e:#}");
                    std::process::exit(1);
                }
            });
        }
        tracing::info!("simulating nodes and pods in-process");
    }
    if args.kube.insecure_port != 0 {
        let addr = SocketAddr::new(args.kube.insecure_bind_address, args.kube.insecure_port);
        let insecure = apiserver::bind(addr).await?;
        tracing::info!(address = %addr, "serving the Kubernetes API over plain HTTP as kwok-admin");
        let server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = server
                .serve_insecure(insecure, std::future::pending())
                .await
            {
                tracing::error!("insecure port: {e:#}");
            }
        });
    }
    tracing::info!(address = %local, "serving the Kubernetes API");
    server.serve_tls(listener, tls, shutdown_signal()).await?;
    tracing::info!("shutting down");
    drop(store);
    if let Some(local) = local_store {
        local.close();
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbosity);
    apiserver::connections::raise_open_file_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let _entered = runtime.enter();
        idle::spawn_trimmer();
    }
    let result = runtime.block_on(async {
        match cli.command {
            Some(Command::Apiserver(args)) => run_apiserver(*args).await,
            Some(Command::ControllerManager(args)) => {
                controller_manager::run(args, shutdown_signal()).await
            }
            Some(Command::Bench(args)) => bench::run(args).await,
            Some(Command::BenchSim(args)) => bench_sim::run(args).await,
            Some(Command::BenchMetrics(args)) => bench_metrics::run(args).await,
            Some(Command::BenchStreams(args)) => bench_streams::run(args).await,
            Some(Command::BenchRbac(args)) => bench_rbac::run(args).await,
            Some(Command::BenchAdmission(args)) => bench_admission::run(args).await,
            None => controller::run(cli.controller, shutdown_signal()).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_and_huge_ones_are_refused() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h5m3s"), Ok(Duration::from_secs(3903)));
        assert!(parse_duration("5").is_ok() && parse_duration("5x").is_err());
        let huge = parse_duration("99999999999999999999h").unwrap_err();
        assert!(huge.contains("invalid duration"), "{huge}");
        let overflow = parse_duration("9999999999999999h").unwrap_err();
        assert!(overflow.contains("out of range"), "{overflow}");
    }
}
