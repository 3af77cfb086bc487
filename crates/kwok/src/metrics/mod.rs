//! Simulated resource usage and what is served from it: the usage model over the
//! `ResourceUsage` kinds ([`usage`]), quantities ([`quantity`]), and the data of the resource
//! metrics API `kubectl top` and autoscalers read ([`resourceapi`]).

pub mod quantity;
pub mod resourceapi;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use client::Cluster;
use serde_json::Value;

use crate::simkinds::Simulations;
pub use resourceapi::ResourceMetrics;
pub use usage::{PodIndex, UsageModel};

/// The usage kinds: config documents of these replace the default usage.
const USAGE_KINDS: &[&str] = &["ResourceUsage", "ClusterResourceUsage"];

/// The default simulation objects of a cluster with metrics that `documents` (from the
/// config) do not replace: upstream's `usage-from-annotation`.
pub fn defaults_for(documents: &[Value]) -> Vec<Value> {
    let has = |kinds: &[&str]| {
        documents.iter().any(|d| {
            d.get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| kinds.contains(&k))
        })
    };
    let mut out = Vec::new();
    if !has(USAGE_KINDS) {
        out.push(usage::default_usage());
    }
    out
}

/// What a cluster with metrics runs.
pub struct Metrics {
    pub model: Arc<UsageModel>,
    pub resource: Arc<ResourceMetrics>,
}

impl Metrics {
    /// Follows the cluster's pods and nodes and samples their usage every `resolution`.
    pub fn start(
        cluster: Arc<dyn Cluster>,
        simulations: Arc<Simulations>,
        resolution: Duration,
    ) -> Arc<Self> {
        let index = Arc::new(PodIndex::default());
        index.follow(cluster);
        let model = UsageModel::new(simulations, index);
        let resource = ResourceMetrics::start(model.clone(), resolution);
        Arc::new(Self { model, resource })
    }
}
