//! The resource metrics API's data (`NodeMetrics`, `PodMetrics`), sampled as metrics-server
//! samples kubelets: every `resolution` the usage of each running pod's containers and each
//! node's sum are taken from the [`UsageModel`], and the API answers from the latest sample.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use apiserver::resourcemetrics::MetricsSource;
use client::JsonAt;
use serde_json::{Map, Value, json};

use super::quantity::{format_cpu, format_memory};
use super::usage::{UsageModel, container_names};

const API_VERSION: &str = "metrics.k8s.io/v1beta1";

#[derive(Default)]
struct Sample {
    nodes: Vec<Arc<Value>>,
    /// Namespace → pod metrics in name order.
    pods: BTreeMap<String, Vec<Arc<Value>>>,
}

/// The latest sample of every node's and pod's usage.
pub struct ResourceMetrics {
    model: Arc<UsageModel>,
    resolution: Duration,
    sample: RwLock<Sample>,
}

fn labels(obj: &Value) -> Value {
    obj.at("/metadata/labels")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()))
}

fn metadata(obj: &Value, now: &str) -> Value {
    let mut meta = json!({
        "name": obj.at("/metadata/name").cloned().unwrap_or_default(),
        "creationTimestamp": now,
        "labels": labels(obj),
    });
    if let Some(ns) = obj.at("/metadata/namespace") {
        meta["namespace"] = ns.clone();
    }
    meta
}

fn usage(cpu: f64, memory: f64) -> Value {
    json!({"cpu": format_cpu(cpu), "memory": format_memory(memory)})
}

/// `15s`, as metrics-server writes its window.
fn window(resolution: Duration) -> String {
    format!("{}s", resolution.as_secs_f64())
}

impl ResourceMetrics {
    /// Samples every `resolution` for as long as the process runs.
    pub fn start(model: Arc<UsageModel>, resolution: Duration) -> Arc<Self> {
        let this = Arc::new(Self {
            model,
            resolution,
            sample: RwLock::default(),
        });
        let sampler = this.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sampler.resolution);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let s = sampler.clone();
                let taken = tokio::task::spawn_blocking(move || s.take()).await;
                if let Ok(sample) = taken {
                    *sampler.sample.write().unwrap() = sample;
                }
            }
        });
        this
    }

    /// Takes one sample now.
    fn take(&self) -> Sample {
        let now = jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
            .to_string();
        let window = window(self.resolution);
        let mut per_node: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        let mut pods: BTreeMap<String, Vec<Arc<Value>>> = BTreeMap::new();
        let running = self.model.index.running_pods();
        let uids = running
            .iter()
            .filter_map(|p| {
                p.at("/metadata/uid")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .collect();
        self.model.retain_pods(&uids);
        for pod in running {
            let (metrics, cpu, memory) =
                super::usage::conversion_scope(|| self.pod_metrics(&pod, &now, &window));
            let node = pod
                .at("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            let sums = per_node.entry(node.to_string()).or_default();
            sums.0 += cpu;
            sums.1 += memory;
            let ns = pod
                .at("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("");
            pods.entry(ns.to_string())
                .or_default()
                .push(Arc::new(metrics));
        }
        let nodes = self
            .model
            .index
            .nodes()
            .iter()
            .map(|node| {
                let name = node
                    .at("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let (cpu, memory) = per_node.get(name).copied().unwrap_or_default();
                Arc::new(json!({
                    "kind": "NodeMetrics",
                    "apiVersion": API_VERSION,
                    "metadata": metadata(node, &now),
                    "timestamp": now,
                    "window": window,
                    "usage": usage(cpu, memory),
                }))
            })
            .collect();
        Sample { nodes, pods }
    }

    /// A pod's metrics and its CPU and memory totals.
    fn pod_metrics(&self, pod: &Value, now: &str, window: &str) -> (Value, f64, f64) {
        let (mut cpu_total, mut memory_total) = (0.0, 0.0);
        let containers: Vec<Value> = container_names(pod)
            .iter()
            .map(|c| {
                let cpu = self.model.container(pod, c, "cpu");
                let memory = self.model.container(pod, c, "memory");
                cpu_total += cpu;
                memory_total += memory;
                json!({"name": c, "usage": usage(cpu, memory)})
            })
            .collect();
        let metrics = json!({
            "kind": "PodMetrics",
            "apiVersion": API_VERSION,
            "metadata": metadata(pod, now),
            "timestamp": now,
            "window": window,
            "containers": containers,
        });
        (metrics, cpu_total, memory_total)
    }
}

impl MetricsSource for ResourceMetrics {
    fn nodes(&self) -> Vec<Arc<Value>> {
        self.sample.read().unwrap().nodes.clone()
    }

    fn pods(&self, namespace: Option<&str>) -> Vec<Arc<Value>> {
        let sample = self.sample.read().unwrap();
        match namespace {
            Some(ns) => sample.pods.get(ns).cloned().unwrap_or_default(),
            None => sample.pods.values().flatten().cloned().collect(),
        }
    }
}
