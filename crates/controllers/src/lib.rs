//! The cluster's built-in controllers, reaching the cluster only through [`client::Cluster`]:
//! for now the garbage collector, which makes `ownerReferences` and the `Foreground` and
//! `Orphan` deletion policies work.

pub mod gc;

pub use gc::GarbageCollector;
