//! The built-in controllers, started the same way whether they reach the cluster in-process
//! (`kwok apiserver`) or over HTTP (`kwok controller-manager`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Starts the selected controllers in the background against `cluster`. `types` are the
/// resource types the garbage collector follows, `discover` lists them again so that it follows
/// custom resources defined later; `root_ca` goes into every namespace's `kube-root-ca.crt`
/// ConfigMap.
pub fn start_controllers(
    cluster: Arc<dyn client::Cluster>,
    types: Vec<client::Resource>,
    discover: controllers::gc::Discover,
    root_ca: Option<String>,
    selection: &controllers::Selection,
    settings: ControllerSettings,
) {
    let ControllerSettings {
        hpa_sync_period,
        node_monitor,
        scheduler,
    } = settings;
    if selection.enabled("garbage-collector") {
        tokio::spawn(
            controllers::GarbageCollector::new(cluster.clone(), types)
                .with_discovery(discover)
                .run(),
        );
    }
    if selection.enabled("scheduler") {
        tokio::spawn(
            controllers::Scheduler::new(cluster.clone())
                .with_config(scheduler)
                .run(),
        );
    }
    if selection.enabled("serviceaccount") {
        tokio::spawn(controllers::NamespaceDefaults::new(cluster.clone(), root_ca).run());
    }
    if selection.enabled("horizontalpodautoscaling") {
        tokio::spawn(
            controllers::PodAutoscaler::new(cluster.clone())
                .with_sync_period(hpa_sync_period)
                .run(),
        );
    }
    if selection.enabled("clusterrole-aggregation") {
        tokio::spawn(controllers::ClusterRoleAggregation::new(cluster.clone()).run());
    }
    let workloads =
        controllers::Workloads::selected(cluster, selection).with_node_monitor(node_monitor);
    if !workloads.is_empty() {
        tokio::spawn(workloads.run());
    }
}

/// How the controllers are tuned: kube-controller-manager's and kube-scheduler's flags.
pub struct ControllerSettings {
    pub hpa_sync_period: Duration,
    pub node_monitor: controllers::nodelifecycle::Monitor,
    pub scheduler: controllers::scheduler::SchedulerConfig,
}

/// `kwok controller-manager`: the built-in controllers against any API server.
#[derive(clap::Args)]
pub struct ControllerManagerArgs {
    /// Path to the kubeconfig of the cluster.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Controllers to run, as kube-controller-manager takes them: `*` for all, `foo` to enable
    /// and `-foo` to disable one (`*,-scheduler`). Names as for `kwok apiserver --controllers`.
    #[arg(long, default_value = "*")]
    controllers: String,
    /// CA certificate (PEM) published in each namespace's `kube-root-ca.crt` ConfigMap.
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
    /// How often horizontal pod autoscalers are synced.
    #[arg(long, default_value = "15s", value_parser = crate::parse_duration)]
    horizontal_pod_autoscaler_sync_period: Duration,
    #[command(flatten)]
    node_monitor: NodeMonitorArgs,
    /// A `KubeSchedulerConfiguration` file for the scheduler, as kube-scheduler's `--config`.
    #[arg(long)]
    scheduler_config: Option<PathBuf>,
}

/// kube-controller-manager's node lifecycle timing, shared by `kwok controller-manager` and
/// `kwok apiserver`.
#[derive(clap::Args)]
pub struct NodeMonitorArgs {
    /// How long a node may go without a heartbeat (status or Lease) before it is marked
    /// unreachable.
    #[arg(long, default_value = "40s", value_parser = crate::parse_duration)]
    node_monitor_grace_period: Duration,
    /// How often node heartbeats are checked.
    #[arg(long, default_value = "5s", value_parser = crate::parse_duration)]
    node_monitor_period: Duration,
}

impl NodeMonitorArgs {
    pub fn monitor(&self) -> controllers::nodelifecycle::Monitor {
        controllers::nodelifecycle::Monitor {
            grace: self.node_monitor_grace_period,
            period: self.node_monitor_period.max(Duration::from_millis(100)),
        }
    }
}

/// Reads `--scheduler-config`: kube-scheduler's defaults without a file; a file it would
/// refuse is an error. What the file asks for and is not carried out is logged.
pub fn load_scheduler_config(
    path: Option<&std::path::Path>,
) -> anyhow::Result<controllers::scheduler::SchedulerConfig> {
    let Some(path) = path else {
        return Ok(Default::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("read --scheduler-config {}", path.display()))?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text)
        .map_err(|e| anyhow::anyhow!("--scheduler-config {}: {e}", path.display()))?;
    let config = controllers::scheduler::config::parse(&doc)
        .map_err(|e| anyhow::anyhow!("--scheduler-config {}: {e}", path.display()))?;
    for w in &config.warnings {
        tracing::warn!(file = %path.display(), "scheduler config: {w}");
    }
    let names: Vec<&str> = config.profiles.iter().map(|p| p.name.as_str()).collect();
    tracing::info!(profiles = %names.join(","), "scheduler config loaded");
    Ok(config)
}

/// How long the controller manager waits for the API server's discovery at start.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the controllers until `shutdown` resolves.
pub async fn run(
    args: ControllerManagerArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let selection = controllers::Selection::parse(&args.controllers)
        .map_err(|e| anyhow::anyhow!("--controllers: {e}"))?;
    let scheduler = load_scheduler_config(args.scheduler_config.as_deref())?;
    let root_ca = match &args.root_ca_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("read --root-ca-file {}", path.display()))?,
        ),
        None => None,
    };
    let cluster = client::HttpCluster::from_kubeconfig(Some(&args.kubeconfig))
        .await
        .with_context(|| format!("load kubeconfig {}", args.kubeconfig.display()))?;
    let types = if selection.enabled("garbage-collector") {
        discover(&cluster).await?
    } else {
        Vec::new()
    };
    let cluster = Arc::new(cluster);
    let rediscover: controllers::gc::Discover = {
        let cluster = cluster.clone();
        Arc::new(move || {
            let cluster = cluster.clone();
            Box::pin(async move { cluster.resources().await.unwrap_or_default() })
        })
    };
    start_controllers(
        cluster,
        types,
        rediscover,
        root_ca,
        &selection,
        ControllerSettings {
            hpa_sync_period: args.horizontal_pod_autoscaler_sync_period,
            node_monitor: args.node_monitor.monitor(),
            scheduler,
        },
    );
    tracing::info!(controllers = %args.controllers, "controllers started");
    shutdown.await;
    tracing::info!("shutting down");
    Ok(())
}

/// The server's resource types, retried while the server is not up yet.
async fn discover(cluster: &client::HttpCluster) -> anyhow::Result<Vec<client::Resource>> {
    let deadline = Instant::now() + DISCOVERY_TIMEOUT;
    loop {
        match cluster.resources().await {
            Ok(types) => return Ok(types),
            Err(e) if Instant::now() < deadline => {
                tracing::warn!(err = %e, "discovery failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(anyhow::anyhow!("discover the API server's resources: {e}")),
        }
    }
}
