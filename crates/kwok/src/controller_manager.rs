//! The built-in controllers, started the same way whether they reach the cluster in-process
//! (`kwok apiserver`) or over HTTP (`kwok controller-manager`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

/// Every controller `--controllers` knows, besides the workload controllers.
const OTHER_CONTROLLERS: &[&str] = &["garbage-collector", "scheduler", "serviceaccount"];

/// Which controllers to run, from a `--controllers` list: `*` for all, names to add, `-name`
/// to leave one out (`*,-scheduler`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControllerSelection {
    all: bool,
    included: Vec<String>,
    excluded: Vec<String>,
}

impl ControllerSelection {
    /// Parses a comma-separated list; an empty list selects nothing.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut selection = Self::default();
        for item in list.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let (name, excluded) = match item.strip_prefix('-') {
                Some(name) => (name, true),
                None => (item, false),
            };
            if name == "*" && !excluded {
                selection.all = true;
                continue;
            }
            if !known(name) {
                anyhow::bail!(
                    "unknown controller {name:?} in --controllers (known: {})",
                    known_names().join(", ")
                );
            }
            if excluded {
                selection.excluded.push(name.to_string());
            } else {
                selection.included.push(name.to_string());
            }
        }
        Ok(selection)
    }

    /// Whether controller `name` runs.
    pub fn enabled(&self, name: &str) -> bool {
        (self.all || self.included.iter().any(|c| c == name))
            && !self.excluded.iter().any(|c| c == name)
    }

    /// The workload controllers that run.
    fn workloads(&self) -> Vec<&'static str> {
        controllers::WORKLOAD_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| self.enabled(c))
            .collect()
    }
}

fn known(name: &str) -> bool {
    OTHER_CONTROLLERS.contains(&name) || controllers::WORKLOAD_CONTROLLERS.contains(&name)
}

fn known_names() -> Vec<&'static str> {
    OTHER_CONTROLLERS
        .iter()
        .chain(controllers::WORKLOAD_CONTROLLERS)
        .copied()
        .collect()
}

/// Starts the selected controllers in the background against `cluster`. `types` are the
/// resource types the garbage collector follows; `root_ca` goes into every namespace's
/// `kube-root-ca.crt` ConfigMap.
pub fn start_controllers(
    cluster: Arc<dyn client::Cluster>,
    types: Vec<client::Resource>,
    root_ca: Option<String>,
    selection: &ControllerSelection,
) {
    if selection.enabled("garbage-collector") {
        tokio::spawn(controllers::GarbageCollector::new(cluster.clone(), types).run());
    }
    if selection.enabled("scheduler") {
        tokio::spawn(controllers::Scheduler::new(cluster.clone()).run());
    }
    if selection.enabled("serviceaccount") {
        tokio::spawn(controllers::NamespaceDefaults::new(cluster.clone(), root_ca).run());
    }
    let workloads = controllers::Workloads::only(cluster, &selection.workloads());
    if !workloads.is_empty() {
        tokio::spawn(workloads.run());
    }
}

/// `kwok controller-manager`: the built-in controllers against any API server.
#[derive(clap::Args)]
pub struct ControllerManagerArgs {
    /// Path to the kubeconfig of the cluster.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Controllers to run: `*` for all, or a comma-separated list (`garbage-collector`,
    /// `scheduler`, `serviceaccount`, `replicaset`, `replicationcontroller`, `deployment`, `job`);
    /// `-name` leaves one out, as in `*,-scheduler`.
    #[arg(long, default_value = "*")]
    controllers: String,
    /// CA certificate (PEM) published in each namespace's `kube-root-ca.crt` ConfigMap.
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
}

/// How long the controller manager waits for the API server's discovery at start.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the controllers until `shutdown` resolves.
pub async fn run(
    args: ControllerManagerArgs,
    shutdown: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let selection = ControllerSelection::parse(&args.controllers)?;
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
    start_controllers(Arc::new(cluster), types, root_ca, &selection);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_lists() {
        let all_but = ControllerSelection::parse("*,-scheduler").unwrap();
        assert!(all_but.enabled("garbage-collector"));
        assert!(all_but.enabled("deployment"));
        assert!(!all_but.enabled("scheduler"));

        let only = ControllerSelection::parse("scheduler").unwrap();
        assert!(only.enabled("scheduler"));
        assert!(!only.enabled("job"));
        assert_eq!(only.workloads(), Vec::<&str>::new());

        let none = ControllerSelection::parse("").unwrap();
        assert!(!none.enabled("scheduler"));

        assert!(ControllerSelection::parse("*,kubelet").is_err());
        assert!(ControllerSelection::parse("-nope").is_err());
    }
}
