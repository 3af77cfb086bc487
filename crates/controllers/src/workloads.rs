//! Runs the workload controllers (`replicaset`, `replicationcontroller`, `deployment`, `job`) over one shared set of
//! informers: one list+watch per kind feeds a cache that every controller reads, and each
//! controller works through its own queue of `namespace/name` keys.

use std::collections::HashSet;
use std::sync::Arc;

use client::Cluster;

use crate::deployment::{self, DeploymentController};
use crate::informer::{
    Cache, Expectations, Handler, Kind, WorkQueue, spawn_workers, start_informers,
};
use crate::job::{self, JobController};
use crate::replicaset::{self, ReplicaSetController};

/// The names `--controllers` knows the workload controllers by.
pub const WORKLOAD_CONTROLLERS: &[&str] =
    &["replicaset", "replicationcontroller", "deployment", "job"];

/// The workload controllers to run, sharing one cache.
pub struct Workloads {
    cluster: Arc<dyn Cluster>,
    enabled: HashSet<&'static str>,
    workers: usize,
}

impl Workloads {
    /// All workload controllers.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self {
            cluster,
            enabled: WORKLOAD_CONTROLLERS.iter().copied().collect(),
            workers: 2,
        }
    }

    /// Only the named controllers (names outside [`WORKLOAD_CONTROLLERS`] are ignored; `*`
    /// enables all).
    pub fn only(cluster: Arc<dyn Cluster>, names: &[&str]) -> Self {
        let all = names.contains(&"*");
        let enabled = WORKLOAD_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| all || names.contains(c))
            .collect();
        Self {
            cluster,
            enabled,
            workers: 2,
        }
    }

    /// Whether any workload controller is selected.
    pub fn is_empty(&self) -> bool {
        self.enabled.is_empty()
    }

    /// Starts the informers and workers; returns once they run in the background.
    pub async fn start(self) {
        if self.enabled.is_empty() {
            return;
        }
        let cache = Arc::new(Cache::default());
        let mut handlers: Vec<Handler> = Vec::new();
        let mut kinds = vec![Kind::Pod];
        let mut starters: Vec<Box<dyn FnOnce() + Send>> = Vec::new();
        for (flavor, controller) in [
            (replicaset::REPLICA_SET, "replicaset"),
            (replicaset::REPLICATION_CONTROLLER, "replicationcontroller"),
        ] {
            if !self.enabled.contains(controller) {
                continue;
            }
            kinds.push(flavor.kind);
            let queue = Arc::new(WorkQueue::default());
            let expectations = Arc::new(Expectations::default());
            handlers.push(replicaset::handler(
                flavor,
                queue.clone(),
                expectations.clone(),
            ));
            let c = Arc::new(ReplicaSetController {
                flavor,
                cluster: self.cluster.clone(),
                cache: cache.clone(),
                expectations,
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, controller, move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("deployment") {
            if !kinds.contains(&Kind::ReplicaSet) {
                kinds.push(Kind::ReplicaSet);
            }
            kinds.push(Kind::Deployment);
            let queue = Arc::new(WorkQueue::default());
            handlers.push(deployment::handler(queue.clone()));
            let c = Arc::new(DeploymentController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "deployment", move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("job") {
            kinds.push(Kind::Job);
            let queue = Arc::new(WorkQueue::default());
            let expectations = Arc::new(Expectations::default());
            handlers.push(job::handler(queue.clone(), expectations.clone()));
            let c = Arc::new(JobController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
                expectations,
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "job", move |k| c.clone().sync(k))
            }));
        }
        start_informers(self.cluster.clone(), cache.clone(), &kinds, handlers);
        cache.wait_synced(&kinds).await;
        for s in starters {
            s();
        }
    }

    /// Starts the controllers and keeps running.
    pub async fn run(self) {
        self.start().await;
        std::future::pending::<()>().await;
    }
}
