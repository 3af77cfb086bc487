//! Runs the cache-based controllers (`replicaset`, `replicationcontroller`, `deployment`, `job`,
//! `statefulset`, `daemonset`, `cronjob`, `endpoint`, `endpointslice`, `nodelifecycle`,
//! `resourcequota`, `persistentvolume-binder`) over one shared set of informers: one list+watch per kind feeds a cache that
//! every controller reads, and each controller works through its own queue of keys.

use std::collections::HashSet;
use std::sync::Arc;

use client::Cluster;

use crate::cronjob::{self, CronJobController};
use crate::daemonset::{self, DaemonSetController};
use crate::deployment::{self, DeploymentController};
use crate::endpoints::{self, EndpointSliceController, EndpointsController};
use crate::informer::{
    Cache, Expectations, Handler, Kind, WorkQueue, spawn_workers, start_informers,
};
use crate::job::{self, JobController};
use crate::nodelifecycle::{self, NodeLifecycleController};
use crate::persistentvolume::{self, PersistentVolumeController};
use crate::replicaset::{self, ReplicaSetController};
use crate::resourcequota::{self, ResourceQuotaController};
use crate::selection::Selection;
use crate::statefulset::{self, StatefulSetController};

/// The names `--controllers` knows these controllers by: all but the garbage collector, the
/// scheduler, the service account controller and the horizontal pod autoscaler, which keep
/// their own watches.
pub const WORKLOAD_CONTROLLERS: &[&str] = crate::selection::CONTROLLERS.split_at(5).1;

/// The workload controllers to run, sharing one cache.
pub struct Workloads {
    cluster: Arc<dyn Cluster>,
    enabled: HashSet<&'static str>,
    workers: usize,
    node_monitor: nodelifecycle::Monitor,
}

impl Workloads {
    /// All workload controllers.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self {
            cluster,
            enabled: WORKLOAD_CONTROLLERS.iter().copied().collect(),
            workers: 2,
            node_monitor: Default::default(),
        }
    }

    /// The controllers a [`Selection`] enables.
    pub fn selected(cluster: Arc<dyn Cluster>, selection: &Selection) -> Self {
        let enabled = WORKLOAD_CONTROLLERS
            .iter()
            .copied()
            .filter(|c| selection.enabled(c))
            .collect();
        Self {
            cluster,
            enabled,
            workers: 2,
            node_monitor: Default::default(),
        }
    }

    /// How the node lifecycle controller watches heartbeats.
    pub fn with_node_monitor(mut self, monitor: nodelifecycle::Monitor) -> Self {
        self.node_monitor = monitor;
        self
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
        if self.enabled.contains("statefulset") {
            kinds.extend([Kind::StatefulSet, Kind::ControllerRevision]);
            let queue = Arc::new(WorkQueue::default());
            handlers.push(statefulset::handler(queue.clone()));
            let c = Arc::new(StatefulSetController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "statefulset", move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("daemonset") {
            kinds.extend([Kind::DaemonSet, Kind::ControllerRevision, Kind::Node]);
            let queue = Arc::new(WorkQueue::default());
            let expectations = Arc::new(Expectations::default());
            handlers.push(daemonset::handler(queue.clone(), expectations.clone()));
            let c = Arc::new(DaemonSetController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
                expectations,
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "daemonset", move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("cronjob") {
            kinds.extend([Kind::CronJob, Kind::Job]);
            let queue = Arc::new(WorkQueue::default());
            handlers.push(cronjob::handler(queue.clone()));
            let c = Arc::new(CronJobController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
                clock: jiff::Timestamp::now,
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "cronjob", move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("endpoint") {
            kinds.extend([Kind::Service, Kind::Endpoints]);
            let queue = Arc::new(WorkQueue::default());
            handlers.push(endpoints::handler(queue.clone()));
            let c = Arc::new(EndpointsController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "endpoint", move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("endpointslice") {
            kinds.extend([Kind::Service, Kind::EndpointSlice]);
            let queue = Arc::new(WorkQueue::default());
            handlers.push(endpoints::handler(queue.clone()));
            let c = Arc::new(EndpointSliceController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "endpointslice", move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("nodelifecycle") {
            kinds.extend([Kind::Node, Kind::Lease]);
            let nodes = Arc::new(WorkQueue::default());
            let pods = Arc::new(WorkQueue::default());
            handlers.push(nodelifecycle::handler(nodes.clone(), pods.clone()));
            let c = Arc::new(NodeLifecycleController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
                grace: self.node_monitor.grace,
                period: self.node_monitor.period,
                heartbeats: Default::default(),
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                tokio::spawn(c.clone().monitor(nodes.clone()));
                let node_sync = c.clone();
                spawn_workers(nodes, workers, "nodelifecycle", move |k| {
                    node_sync.clone().sync_node(k)
                });
                spawn_workers(pods, workers, "taint-eviction", move |k| {
                    c.clone().sync_pod(k)
                });
            }));
        }
        if self.enabled.contains("resourcequota") {
            kinds.extend([
                Kind::ResourceQuota,
                Kind::Service,
                Kind::ConfigMap,
                Kind::Secret,
                Kind::PersistentVolumeClaim,
            ]);
            let queue = Arc::new(WorkQueue::default());
            handlers.push(resourcequota::handler(queue.clone()));
            let c = Arc::new(ResourceQuotaController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                spawn_workers(queue, workers, "resourcequota", move |k| c.clone().sync(k))
            }));
        }
        if self.enabled.contains("persistentvolume-binder") {
            kinds.extend([Kind::PersistentVolume, Kind::PersistentVolumeClaim]);
            let volumes = Arc::new(WorkQueue::default());
            let claims = Arc::new(WorkQueue::default());
            handlers.push(persistentvolume::handler(volumes.clone(), claims.clone()));
            let c = Arc::new(PersistentVolumeController {
                cluster: self.cluster.clone(),
                cache: cache.clone(),
                reported: Default::default(),
            });
            let workers = self.workers;
            starters.push(Box::new(move || {
                let volume_sync = c.clone();
                spawn_workers(volumes, workers, "persistentvolume", move |k| {
                    volume_sync.clone().sync_volume(k)
                });
                spawn_workers(claims, workers, "persistentvolumeclaim", move |k| {
                    c.clone().sync_claim(k)
                });
            }));
        }
        kinds.sort_by_key(|k| *k as usize);
        kinds.dedup();
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
