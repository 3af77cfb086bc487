//! The kwok simulator: plays the lifecycle of nodes, pods and any other kind on a Kubernetes
//! cluster, as described by `Stage` objects (`kwok.x-k8s.io/v1alpha1`).
//!
//! * [`stage`]: the Stage format, its jq selectors, delays and Go templates, the built-in sets;
//! * [`engine`]: one controller per kind that matches Stages and plays them on a timer heap;
//! * [`sim`]: node management, pods on managed nodes, IPs, and wiring of the controllers;
//! * [`leases`]: node leases in `kube-node-lease`;
//! * [`ipam`]: pod IP pools per CIDR;
//! * [`config`]: options and the `KwokConfiguration` file;
//! * [`server`]: `/healthz` and `/metrics`;
//! * [`simkinds`]: the objects that say what simulated pods answer (logs, exec, ...);
//! * [`kubelet`]: the kubelet-like server that answers for them;
//! * [`metrics`]: simulated resource usage, the resource metrics API's data and Metric endpoints.
//!
//! The simulator reaches the cluster only through [`client::Cluster`], so it runs the same
//! in-process (inside `kwok apiserver --simulate`) and against any cluster over HTTPS.

pub mod config;
pub mod engine;
pub mod ipam;
pub mod kubelet;
pub mod leases;
pub mod metrics;
pub mod queue;
pub mod selector;
pub mod server;
pub mod sim;
pub mod simkinds;
pub mod stage;

pub use config::Options;
pub use sim::Simulator;
