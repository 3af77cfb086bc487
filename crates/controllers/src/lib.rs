//! The cluster's built-in controllers, reaching the cluster only through [`client::Cluster`]:
//! the garbage collector, which makes `ownerReferences` and the `Foreground` and `Orphan`
//! deletion policies work, the scheduler, which binds pods to nodes, the controllers over one
//! shared informer cache (ReplicaSet, ReplicationController, Deployment, Job, StatefulSet,
//! DaemonSet, CronJob, Endpoints, EndpointSlice, node lifecycle, ResourceQuota, the
//! PersistentVolume binder), the horizontal pod autoscaler, and the
//! namespace defaults (the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap), and
//! the expiry of Events after `--event-ttl`, which kube-apiserver's storage does.
//! [`Selection`] reads which of them run from a `--controllers` value.

pub mod clusterroleaggregation;
pub mod cron;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod endpoints;
pub mod eventttl;
pub mod gc;
mod history;
mod informer;
pub mod job;
pub mod nodelifecycle;
pub mod persistentvolume;
pub mod podautoscaler;
pub mod replicaset;
pub mod resourcequota;
pub mod scheduler;
pub mod selection;
pub mod serviceaccounts;
pub mod statefulset;
pub mod workloads;

pub use clusterroleaggregation::ClusterRoleAggregation;
pub use gc::GarbageCollector;
pub use podautoscaler::PodAutoscaler;
pub use scheduler::Scheduler;
pub use selection::Selection;
pub use serviceaccounts::NamespaceDefaults;
pub use workloads::{WORKLOAD_CONTROLLERS, Workloads};
