//! `Metric` objects (`kwok.x-k8s.io/v1alpha1`): Prometheus endpoints of the kubelet surface at
//! the object's `path` (`{nodeName}` stands for any managed node), each metric a counter, gauge
//! or histogram whose labels and values are CEL over `node`, and per pod or per container also
//! `pod` and `container`. The default `metrics-resource` object imitates the kubelet's
//! `/metrics/resource`, which metrics-server scrapes.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, RwLock};

use client::{Cluster, JsonAt, ListParams, WatchEvent};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use super::usage::{UsageModel, Vars};

/// A `Metric` spec.
#[derive(Debug, Clone, Deserialize)]
pub struct MetricSpec {
    pub path: String,
    #[serde(default)]
    pub metrics: Vec<MetricConfig>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricConfig {
    pub name: String,
    #[serde(default)]
    pub help: String,
    pub kind: String,
    #[serde(default)]
    pub labels: Vec<MetricLabel>,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub buckets: Vec<MetricBucket>,
    #[serde(default)]
    pub dimension: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricLabel {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MetricBucket {
    pub le: f64,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub hidden: bool,
}

const KINDS: &[&str] = &["counter", "gauge", "histogram"];
const DIMENSIONS: &[&str] = &["node", "pod", "container"];

/// Every CEL expression of a spec, with the field it sits in.
fn expressions(spec: &MetricSpec) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for (i, m) in spec.metrics.iter().enumerate() {
        let at = format!("spec.metrics[{i}]");
        if !m.value.is_empty() {
            out.push((format!("{at}.value"), m.value.as_str()));
        }
        for (j, l) in m.labels.iter().enumerate() {
            out.push((format!("{at}.labels[{j}].value"), l.value.as_str()));
        }
        for (j, b) in m.buckets.iter().enumerate() {
            if !b.value.is_empty() {
                out.push((format!("{at}.buckets[{j}].value"), b.value.as_str()));
            }
        }
    }
    out
}

/// What is wrong with a Metric object: `(field, value, detail)` for each problem.
pub fn problems(object: &Value) -> Vec<(String, Value, String)> {
    let spec: MetricSpec = match object.get("spec").cloned().map(serde_json::from_value) {
        Some(Ok(s)) => s,
        Some(Err(e)) => return vec![("spec".into(), Value::Null, e.to_string())],
        None => return vec![("spec".into(), Value::Null, "Required value".into())],
    };
    let mut out = Vec::new();
    for (i, m) in spec.metrics.iter().enumerate() {
        if !KINDS.contains(&m.kind.as_str()) {
            out.push((
                format!("spec.metrics[{i}].kind"),
                json!(m.kind),
                format!("supported values: {}", KINDS.join(", ")),
            ));
        }
        if let Some(d) = m.dimension.as_deref().filter(|d| !DIMENSIONS.contains(d)) {
            out.push((
                format!("spec.metrics[{i}].dimension"),
                json!(d),
                format!("supported values: {}", DIMENSIONS.join(", ")),
            ));
        }
    }
    for (field, source) in expressions(&spec) {
        if let Err(e) = kube_cel::cel::Program::compile(source) {
            out.push((
                field,
                json!(source),
                format!(
                    "invalid CEL expression: {}",
                    super::first_line(&e.to_string())
                ),
            ));
        }
    }
    out
}

/// The Metric objects in effect, by name.
#[derive(Default)]
pub struct MetricEndpoints {
    objects: RwLock<BTreeMap<String, Arc<MetricSpec>>>,
}

/// A request path matched against a Metric path: the node it names.
fn match_path(pattern: &str, path: &str) -> Option<Option<String>> {
    match pattern.split_once("{nodeName}") {
        None => (pattern == path).then_some(None),
        Some((before, after)) => {
            let node = path.strip_prefix(before)?.strip_suffix(after)?;
            (!node.is_empty() && !node.contains('/')).then(|| Some(node.to_string()))
        }
    }
}

impl MetricEndpoints {
    /// Adds or replaces a Metric object from its JSON.
    pub fn put(&self, object: &Value) -> Result<(), String> {
        let name = object
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if let Some((field, _, detail)) = problems(object).into_iter().next() {
            return Err(format!("{name}: {field}: {detail}"));
        }
        let spec: MetricSpec =
            serde_json::from_value(object["spec"].clone()).map_err(|e| format!("{name}: {e}"))?;
        self.objects.write().unwrap().insert(name, Arc::new(spec));
        Ok(())
    }

    pub fn remove(&self, object: &Value) {
        let name = object
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        self.objects.write().unwrap().remove(name);
    }

    /// Follows the Metric objects of the cluster for as long as the process runs.
    pub fn follow(self: &Arc<Self>, cluster: Arc<dyn Cluster>) {
        let kind = crate::simkinds::crds::find("Metric").expect("a simulation kind");
        let mut stream = client::watch_resuming(cluster, kind.resource(), ListParams::default());
        let this = self.clone();
        tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                match event {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        if let Err(e) = this.put(&o) {
                            tracing::warn!(error = %e, "invalid Metric, ignored");
                        }
                    }
                    WatchEvent::Deleted(o) => this.remove(&o),
                    _ => {}
                }
            }
        });
    }

    /// The Metric whose path matches, and the node it names.
    pub fn find(&self, path: &str) -> Option<(Arc<MetricSpec>, Option<String>)> {
        self.objects
            .read()
            .unwrap()
            .values()
            .find_map(|spec| match_path(&spec.path, path).map(|node| (spec.clone(), node)))
    }

    /// Prometheus `http_sd` targets: one per Metric path, per node for `{nodeName}` paths.
    pub fn discovery(&self, host: &str, nodes: &[String]) -> Value {
        let mut out = Vec::new();
        for (name, spec) in self.objects.read().unwrap().iter() {
            let paths: Vec<String> = if spec.path.contains("{nodeName}") {
                nodes
                    .iter()
                    .map(|n| spec.path.replace("{nodeName}", n))
                    .collect()
            } else {
                vec![spec.path.clone()]
            };
            for path in paths {
                out.push(json!({"targets": [host], "labels": {"metrics_name": name, "__metrics_path__": path}}));
            }
        }
        Value::Array(out)
    }
}

/// Renders one Metric for a node in the Prometheus text format.
pub fn render(spec: &MetricSpec, node_name: &str, model: &Arc<UsageModel>) -> String {
    let node = model
        .index
        .node(node_name)
        .map(|n| (*n).clone())
        .unwrap_or_else(|| json!({"metadata": {"name": node_name}}));
    let pods = model.index.pods_on(node_name);
    super::usage::conversion_scope(|| render_metrics(spec, &node, &pods, model))
}

fn render_metrics(
    spec: &MetricSpec,
    node: &Value,
    pods: &[Arc<Value>],
    model: &Arc<UsageModel>,
) -> String {
    let mut out = String::new();
    for metric in &spec.metrics {
        let kind = if metric.kind.is_empty() {
            "gauge"
        } else {
            metric.kind.as_str()
        };
        let _ = writeln!(out, "# HELP {} {}", metric.name, metric.help);
        let _ = writeln!(out, "# TYPE {} {kind}", metric.name);
        for vars in samples(metric, node, pods) {
            write_sample(&mut out, metric, kind, model, &vars);
        }
    }
    out
}

/// The variable sets of a metric's samples: one per node, pod or container.
fn samples<'a>(metric: &MetricConfig, node: &'a Value, pods: &'a [Arc<Value>]) -> Vec<Vars<'a>> {
    let base = Vars {
        node: Some(node),
        ..Vars::default()
    };
    match metric.dimension.as_deref().unwrap_or("node") {
        "pod" => pods
            .iter()
            .map(|p| Vars {
                pod: Some(p),
                ..base
            })
            .collect(),
        "container" => pods
            .iter()
            .flat_map(|p| {
                p.at("/spec/containers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(move |c| Vars {
                        pod: Some(p),
                        container: Some(c),
                        ..base
                    })
            })
            .collect(),
        _ => vec![base],
    }
}

fn write_sample(
    out: &mut String,
    metric: &MetricConfig,
    kind: &str,
    model: &Arc<UsageModel>,
    vars: &Vars<'_>,
) {
    let mut labels: Vec<(String, String)> = Vec::new();
    for label in &metric.labels {
        match model.evaluate(&label.value, vars) {
            Ok(kube_cel::cel::Value::String(s)) => labels.push((label.name.clone(), s.to_string())),
            Ok(other) => labels.push((label.name.clone(), format!("{other:?}"))),
            Err(e) => tracing::debug!(metric = metric.name, "label failed: {e}"),
        }
    }
    let number = |source: &str| {
        if source.is_empty() {
            return 0.0;
        }
        model.number(source, vars).unwrap_or_else(|e| {
            tracing::debug!(metric = metric.name, "value failed: {e}");
            0.0
        })
    };
    if kind != "histogram" {
        let _ = writeln!(
            out,
            "{}{} {}",
            metric.name,
            label_text(&labels, None),
            number(&metric.value)
        );
        return;
    }
    let mut buckets = metric.buckets.clone();
    buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
    let mut count = 0.0f64;
    for b in &buckets {
        count = count.max(number(&b.value));
        if !b.hidden {
            let _ = writeln!(
                out,
                "{}_bucket{} {count}",
                metric.name,
                label_text(&labels, Some(&b.le.to_string()))
            );
        }
    }
    let _ = writeln!(
        out,
        "{}_bucket{} {count}",
        metric.name,
        label_text(&labels, Some("+Inf"))
    );
    let _ = writeln!(
        out,
        "{}_sum{} {}",
        metric.name,
        label_text(&labels, None),
        number(&metric.value)
    );
    let _ = writeln!(
        out,
        "{}_count{} {count}",
        metric.name,
        label_text(&labels, None)
    );
}

fn label_text(labels: &[(String, String)], le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

/// The default `metrics-resource` Metric, the kubelet's `/metrics/resource` as upstream
/// emulates it.
pub fn default_metric() -> Value {
    let container_labels = json!([
        {"name": "container", "value": "container.name"},
        {"name": "namespace", "value": "pod.metadata.namespace"},
        {"name": "pod", "value": "pod.metadata.name"},
    ]);
    let pod_labels = json!([
        {"name": "namespace", "value": "pod.metadata.namespace"},
        {"name": "pod", "value": "pod.metadata.name"},
    ]);
    let metric = |name: &str, help: &str, kind: &str, dimension: &str, value: &str| {
        let mut m = json!({"name": name, "help": help, "kind": kind, "dimension": dimension, "value": value});
        match dimension {
            "container" => m["labels"] = container_labels.clone(),
            "pod" => m["labels"] = pod_labels.clone(),
            _ => {}
        }
        m
    };
    json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "Metric",
        "metadata": {"name": "metrics-resource"},
        "spec": {
            "path": "/metrics/nodes/{nodeName}/metrics/resource",
            "metrics": [
                metric("scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", "gauge", "node", "0"),
                metric("container_start_time_seconds", "Start time of the container since unix epoch in seconds", "gauge", "container", "pod.SinceSecond()"),
                metric("container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the container in core-seconds", "counter", "container", "pod.CumulativeUsage(\"cpu\", container.name)"),
                metric("container_memory_working_set_bytes", "Current working set of the container in bytes", "gauge", "container", "pod.Usage(\"memory\", container.name)"),
                metric("pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds", "counter", "pod", "pod.CumulativeUsage(\"cpu\")"),
                metric("pod_memory_working_set_bytes", "Current working set of the pod in bytes", "gauge", "pod", "pod.Usage(\"memory\")"),
                metric("node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds", "counter", "node", "node.CumulativeUsage(\"cpu\")"),
                metric("node_memory_working_set_bytes", "Current working set of the node in bytes", "gauge", "node", "node.Usage(\"memory\")"),
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_node() {
        let p = "/metrics/nodes/{nodeName}/metrics/resource";
        assert_eq!(
            match_path(p, "/metrics/nodes/n1/metrics/resource"),
            Some(Some("n1".into()))
        );
        assert_eq!(match_path(p, "/metrics/nodes//metrics/resource"), None);
        assert_eq!(match_path("/fixed", "/fixed"), Some(None));
    }

    #[test]
    fn bad_cel_and_kinds_are_named() {
        let bad = json!({"spec": {"path": "/m", "metrics": [{"name": "x", "kind": "summary", "value": "1 +"}]}});
        let found = problems(&bad);
        assert!(
            found.iter().any(|(f, _, _)| f == "spec.metrics[0].kind"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(f, _, d)| f == "spec.metrics[0].value" && d.starts_with("invalid CEL")),
            "{found:?}"
        );
        assert!(problems(&default_metric()).is_empty());
    }

    #[test]
    fn the_default_metric_renders_like_the_kubelet() {
        let sims = Arc::new(crate::simkinds::Simulations::default());
        sims.put(&super::super::usage::default_usage()).unwrap();
        let index = Arc::new(super::super::PodIndex::default());
        index.put_node(Arc::new(json!({"metadata": {"name": "n1"}})));
        index.put_pod(Arc::new(json!({"metadata": {"name": "p", "namespace": "d", "uid": "u",
            "annotations": {"kwok.x-k8s.io/usage-memory": "2Mi"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}, "status": {"phase": "Running"}})));
        let model = UsageModel::new(sims, index);
        let endpoints = MetricEndpoints::default();
        endpoints.put(&default_metric()).unwrap();
        let (spec, node) = endpoints
            .find("/metrics/nodes/n1/metrics/resource")
            .unwrap();
        let text = render(&spec, &node.unwrap(), &model);
        assert!(
            text.contains("# TYPE node_cpu_usage_seconds_total counter"),
            "{text}"
        );
        assert!(text.contains("container_memory_working_set_bytes{container=\"c\",namespace=\"d\",pod=\"p\"} 2097152"), "{text}");
        assert!(
            text.contains("node_memory_working_set_bytes 2097152"),
            "{text}"
        );
        assert!(text.contains("scrape_error 0"), "{text}");
    }
}
