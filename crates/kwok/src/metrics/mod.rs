//! Simulated resource usage and what is served from it: the usage model over the
//! `ResourceUsage` kinds ([`usage`]), quantities ([`quantity`]), and the data of the resource
//! metrics API `kubectl top` and autoscalers read ([`resourceapi`]), and the Prometheus
//! endpoints of `Metric` objects ([`endpoint`]).

pub mod endpoint;
pub mod quantity;
pub mod resourceapi;
pub mod usage;

use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, JsonAt};
use serde_json::Value;

use crate::simkinds::Simulations;
pub use endpoint::MetricEndpoints;
pub use resourceapi::ResourceMetrics;
pub use usage::{PodIndex, UsageModel};

/// The usage kinds: config documents of these replace the default usage.
const USAGE_KINDS: &[&str] = &["ResourceUsage", "ClusterResourceUsage"];

/// The default simulation objects of a cluster with metrics that `documents` (from the
/// config) do not replace: upstream's `usage-from-annotation` and `metrics-resource`.
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
    if !has(&["Metric"]) {
        out.push(endpoint::default_metric());
    }
    out
}

/// Makes the API server refuse usage and Metric objects whose CEL does not compile (or whose
/// values are no quantities), naming the field and the parser's complaint.
pub fn install_checks(registry: &apiserver::Registry) {
    let group = crate::simkinds::crds::GROUP;
    registry.add_object_check(group, "Metric", Arc::new(|o| causes(endpoint::problems(o))));
    for kind in USAGE_KINDS {
        registry.add_object_check(group, kind, Arc::new(|o| causes(usage::problems(o))));
    }
}

/// The first line of a parser's complaint (the rest draws the expression with a caret).
pub(crate) fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

fn causes(problems: Vec<(String, Value, String)>) -> Vec<apiserver::errors::Cause> {
    problems
        .into_iter()
        .map(|(field, value, detail)| apiserver::errors::Cause::invalid(field, &value, detail))
        .collect()
}

/// What a cluster with metrics runs.
pub struct Metrics {
    pub model: Arc<UsageModel>,
    pub resource: Arc<ResourceMetrics>,
    pub endpoints: Arc<MetricEndpoints>,
}

impl Metrics {
    /// Follows the cluster's pods, nodes and Metric objects (besides the Metric objects among
    /// `documents`, from the config) and samples usage every `resolution`.
    pub fn start(
        cluster: Arc<dyn Cluster>,
        simulations: Arc<Simulations>,
        resolution: Duration,
        documents: &[Value],
    ) -> Arc<Self> {
        let index = Arc::new(PodIndex::default());
        index.follow(cluster.clone());
        let model = UsageModel::new(simulations, index);
        let resource = ResourceMetrics::start(model.clone(), resolution);
        let endpoints = Arc::new(MetricEndpoints::default());
        for doc in documents
            .iter()
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some("Metric"))
        {
            if let Err(e) = endpoints.put(doc) {
                tracing::error!("invalid Metric in the config, skipped: {e}");
            }
        }
        endpoints.follow(cluster);
        Arc::new(Self {
            model,
            resource,
            endpoints,
        })
    }

    /// Names of the nodes the usage model knows.
    fn node_names(&self) -> impl Iterator<Item = String> {
        self.model.index.nodes().into_iter().filter_map(|n| {
            n.at("/metadata/name")
                .and_then(Value::as_str)
                .map(String::from)
        })
    }

    /// The text of the Metric endpoint at `path`, if one matches.
    pub fn scrape(&self, path: &str) -> Option<String> {
        let (spec, node) = self.endpoints.find(path)?;
        Some(match node {
            Some(node) => endpoint::render(&spec, &node, &self.model),
            None => self
                .node_names()
                .next()
                .map(|n| endpoint::render(&spec, &n, &self.model))
                .unwrap_or_default(),
        })
    }

    /// Prometheus `http_sd` targets of every Metric path, reached at `host`.
    pub fn discovery(&self, host: &str) -> Value {
        let nodes: Vec<String> = self.node_names().collect();
        self.endpoints.discovery(host, &nodes)
    }
}
