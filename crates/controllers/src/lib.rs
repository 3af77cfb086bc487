//! The cluster's built-in controllers, reaching the cluster only through [`client::Cluster`]:
//! the garbage collector, which makes `ownerReferences` and the `Foreground` and `Orphan`
//! deletion policies work, the scheduler, which binds pods to nodes, and the workload
//! controllers (ReplicaSet, Deployment, Job) over one shared informer cache, and the namespace
//! defaults (the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap).

pub mod daemonset;
pub mod deployment;
pub mod gc;
mod history;
mod informer;
pub mod job;
pub mod replicaset;
pub mod scheduler;
pub mod selection;
pub mod serviceaccounts;
pub mod statefulset;
pub mod workloads;

pub use gc::GarbageCollector;
pub use scheduler::Scheduler;
pub use selection::Selection;
pub use serviceaccounts::NamespaceDefaults;
pub use workloads::{WORKLOAD_CONTROLLERS, Workloads};
