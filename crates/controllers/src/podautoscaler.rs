//! The horizontal pod autoscaler (`autoscaling/v2` HorizontalPodAutoscalers), as
//! kube-controller-manager's `horizontalpodautoscaling` controller: every sync period each
//! autoscaler reads its target's scale (Deployments, ReplicaSets, StatefulSets and
//! ReplicationControllers), the resource metrics of the target's pods from `metrics.k8s.io`
//! (`Resource` metrics with `Utilization` of the pods' requests or `AverageValue`), proposes a
//! replica count (unchanged within the 0.1 tolerance), stabilizes it over the behavior's windows,
//! limits the rate by the behavior's policies, keeps it within min and max, writes the target's
//! `scale` subresource and reports `currentMetrics` and the conditions `AbleToScale`,
//! `ScalingActive` and `ScalingLimited`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{Cluster, JsonAt, ListParams, Patch, Resource};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::informer::{
    is_deleting, name, namespace, now, phase, record_event, set_condition, timestamp,
};
use crate::scheduler::quantity::parse_milli_i64;

/// kube-controller-manager's `--horizontal-pod-autoscaler-sync-period` default.
pub const DEFAULT_SYNC_PERIOD: Duration = Duration::from_secs(15);

/// kube-controller-manager's `--horizontal-pod-autoscaler-tolerance`.
const TOLERANCE: f64 = 0.1;

/// The kinds an autoscaler can scale, by `apiVersion` group and kind.
const SCALABLE: &[(&str, &str, &str)] = &[
    ("apps", "Deployment", "deployments"),
    ("apps", "ReplicaSet", "replicasets"),
    ("apps", "StatefulSet", "statefulsets"),
    ("", "ReplicationController", "replicationcontrollers"),
];

fn autoscalers() -> Resource {
    Resource::new(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
    )
}

fn pod_metrics() -> Resource {
    Resource::new("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", true)
}

/// A recommendation or a scale change, with when it was made.
#[derive(Clone, Copy)]
struct Timed {
    at: Timestamp,
    replicas: i64,
}

/// What the controller remembers of one autoscaler between syncs.
#[derive(Default)]
struct History {
    recommendations: Vec<Timed>,
    /// Scale changes: `replicas` is the change (positive up, negative down).
    events: Vec<Timed>,
}

/// The controller.
pub struct PodAutoscaler {
    cluster: Arc<dyn Cluster>,
    sync_period: Duration,
    history: Mutex<HashMap<String, History>>,
}

/// Why no replica count could be computed.
struct MetricError {
    reason: &'static str,
    message: String,
}

/// One metric's proposal.
struct Proposal {
    replicas: i64,
    status: Value,
    description: String,
}

impl PodAutoscaler {
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self {
            cluster,
            sync_period: DEFAULT_SYNC_PERIOD,
            history: Mutex::default(),
        }
    }

    pub fn with_sync_period(mut self, period: Duration) -> Self {
        self.sync_period = period.max(Duration::from_millis(100));
        self
    }

    /// Syncs every autoscaler each period, for as long as the process runs.
    pub async fn run(self) {
        let mut tick = tokio::time::interval(self.sync_period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let list = match client::list_all(
                &*self.cluster,
                &autoscalers(),
                None,
                &ListParams::default(),
            )
            .await
            {
                Ok(l) => l.items,
                Err(e) => {
                    tracing::debug!(error = %e, "list horizontal pod autoscalers");
                    continue;
                }
            };
            for hpa in list.iter().filter(|h| !is_deleting(h)) {
                if let Err(e) = self.sync(hpa).await {
                    tracing::debug!(hpa = name(hpa), error = %e, "sync horizontal pod autoscaler");
                }
            }
            self.forget_missing(&list);
        }
    }

    fn forget_missing(&self, list: &[Value]) {
        let keys: std::collections::HashSet<String> = list.iter().map(key).collect();
        self.history.lock().unwrap().retain(|k, _| keys.contains(k));
    }

    async fn sync(&self, hpa: &Value) -> client::Result<()> {
        let ns = namespace(hpa);
        let mut conditions = crate::informer::conditions_of(hpa);
        let Some((resource, target_name)) = target_of(hpa) else {
            let message = "the HPA controller was unable to get the target's current scale: no matches for the target kind".to_string();
            set_condition(
                &mut conditions,
                "AbleToScale",
                "False",
                "FailedGetScale",
                &message,
                false,
            );
            return self.write_status(hpa, status_of(hpa), conditions).await;
        };
        let target = match self.cluster.get(&resource, Some(ns), &target_name).await {
            Ok(t) => t,
            Err(e) => {
                let message = format!(
                    "the HPA controller was unable to get the target's current scale: {}",
                    e.message
                );
                set_condition(
                    &mut conditions,
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    &message,
                    false,
                );
                return self.write_status(hpa, status_of(hpa), conditions).await;
            }
        };
        let current = target
            .at("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let min = hpa
            .at("/spec/minReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let max = hpa
            .at("/spec/maxReplicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let mut status = status_of(hpa);
        status["currentReplicas"] = json!(current);
        if current == 0 && min != 0 {
            set_condition(
                &mut conditions,
                "ScalingActive",
                "False",
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
                false,
            );
            status["desiredReplicas"] = json!(0);
            return self.write_status(hpa, status, conditions).await;
        }
        let proposal = self.propose(hpa, &target, current).await;
        let (desired, rescale_reason) = match proposal {
            Ok(proposals) => {
                status["currentMetrics"] =
                    Value::Array(proposals.iter().map(|p| p.status.clone()).collect());
                let best = proposals.iter().max_by_key(|p| p.replicas);
                let description = best.map(|p| p.description.clone()).unwrap_or_default();
                let proposed = best.map_or(current, |p| p.replicas);
                set_condition(
                    &mut conditions,
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    &format!(
                        "the HPA was able to successfully calculate a replica count from {description}"
                    ),
                    false,
                );
                (
                    self.normalize(hpa, current, proposed, min, max, &mut conditions),
                    description,
                )
            }
            Err(e) => {
                set_condition(
                    &mut conditions,
                    "ScalingActive",
                    "False",
                    e.reason,
                    &e.message,
                    false,
                );
                status["desiredReplicas"] = json!(current);
                return self.write_status(hpa, status, conditions).await;
            }
        };
        status["desiredReplicas"] = json!(desired);
        if desired != current {
            let patch = Patch::Merge(json!({"spec": {"replicas": desired}}));
            if let Err(e) = self
                .cluster
                .patch(&resource, Some(ns), &target_name, &patch, Some("scale"))
                .await
            {
                let message = format!(
                    "the HPA controller was unable to update the target scale: {}",
                    e.message
                );
                set_condition(
                    &mut conditions,
                    "AbleToScale",
                    "False",
                    "FailedUpdateScale",
                    &message,
                    false,
                );
                return self.write_status(hpa, status, conditions).await;
            }
            self.remember_event(hpa, desired - current);
            status["lastScaleTime"] = json!(timestamp(now()));
            set_condition(
                &mut conditions,
                "AbleToScale",
                "True",
                "SucceededRescale",
                &format!("the HPA controller was able to update the target scale to {desired}"),
                false,
            );
            let direction = if desired > current { "above" } else { "below" };
            let message =
                format!("New size: {desired}; reason: {rescale_reason} {direction} target");
            record_event(
                &*self.cluster,
                hpa,
                ("autoscaling/v2", "HorizontalPodAutoscaler"),
                "horizontal-pod-autoscaler",
                "Normal",
                "SuccessfulRescale",
                &message,
            )
            .await;
        }
        self.write_status(hpa, status, conditions).await
    }

    async fn write_status(
        &self,
        hpa: &Value,
        mut status: Value,
        conditions: Vec<Value>,
    ) -> client::Result<()> {
        status["conditions"] = Value::Array(conditions);
        if let Some(g) = hpa.at("/metadata/generation") {
            status["observedGeneration"] = g.clone();
        }
        if hpa.get("status") == Some(&status) {
            return Ok(());
        }
        let mut next = hpa.clone();
        next["status"] = status;
        self.cluster
            .update_status(&autoscalers(), Some(namespace(hpa)), &next)
            .await
            .map(drop)
    }

    /// One proposal per metric of the spec (the default is 80% CPU utilization).
    async fn propose(
        &self,
        hpa: &Value,
        target: &Value,
        current: i64,
    ) -> Result<Vec<Proposal>, MetricError> {
        let default = vec![
            json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}),
        ];
        let metrics = hpa
            .at("/spec/metrics")
            .and_then(Value::as_array)
            .filter(|m| !m.is_empty())
            .cloned()
            .unwrap_or(default);
        let selector = target
            .at("/spec/selector")
            .map(selector_string)
            .ok_or_else(|| MetricError {
                reason: "InvalidSelector",
                message: "the HPA target's scale is missing a selector".into(),
            })?;
        let pods = self.pods(namespace(hpa), &selector).await?;
        let usage = self.usage(namespace(hpa), &selector).await?;
        let mut out = Vec::new();
        for metric in &metrics {
            match metric.get("type").and_then(Value::as_str) {
                Some("Resource") => out.push(resource_proposal(metric, &pods, &usage, current)?),
                Some(other) => {
                    return Err(MetricError {
                        reason: "InvalidMetricSourceType",
                        message: format!(
                            "the HPA was unable to compute the replica count: unsupported metric source type {other:?}"
                        ),
                    });
                }
                None => {}
            }
        }
        Ok(out)
    }

    async fn pods(&self, ns: &str, selector: &str) -> Result<Vec<Value>, MetricError> {
        let params = ListParams {
            label_selector: Some(selector.to_string()),
            ..Default::default()
        };
        client::list_all(&*self.cluster, &Resource::pods(), Some(ns), &params)
            .await
            .map(|l| {
                l.items
                    .into_iter()
                    .filter(|p| !is_deleting(p) && phase(p) != "Failed" && phase(p) != "Succeeded")
                    .collect()
            })
            .map_err(|e| MetricError {
                reason: "FailedGetResourceMetric",
                message: format!(
                    "the HPA was unable to compute the replica count: unable to get pods: {}",
                    e.message
                ),
            })
    }

    /// Pod name → resource → usage in thousandths.
    async fn usage(
        &self,
        ns: &str,
        selector: &str,
    ) -> Result<HashMap<String, HashMap<String, i64>>, MetricError> {
        let params = ListParams {
            label_selector: Some(selector.to_string()),
            ..Default::default()
        };
        let list = self.cluster.list(&pod_metrics(), Some(ns), &params).await.map_err(|e| MetricError {
            reason: "FailedGetResourceMetric",
            message: format!("the HPA was unable to compute the replica count: unable to get metrics for resource: unable to fetch metrics from resource metrics API: {}", e.message),
        })?;
        let mut out: HashMap<String, HashMap<String, i64>> = HashMap::new();
        for item in &list.items {
            let per_pod = out.entry(name(item).to_string()).or_default();
            for c in item
                .get("containers")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for (resource, q) in c
                    .get("usage")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    let v = q.as_str().and_then(parse_milli_i64).unwrap_or(0);
                    *per_pod.entry(resource.clone()).or_default() += v;
                }
            }
        }
        Ok(out)
    }

    fn remember_event(&self, hpa: &Value, change: i64) {
        let mut history = self.history.lock().unwrap();
        history.entry(key(hpa)).or_default().events.push(Timed {
            at: now(),
            replicas: change,
        });
    }

    /// Stabilization, rate limits and bounds, as kube-controller-manager applies a behavior.
    fn normalize(
        &self,
        hpa: &Value,
        current: i64,
        proposed: i64,
        min: i64,
        max: i64,
        conditions: &mut Vec<Value>,
    ) -> i64 {
        let behavior = Behavior::of(hpa);
        let now = now();
        let mut history = self.history.lock().unwrap();
        let h = history.entry(key(hpa)).or_default();
        let longest = behavior
            .up
            .window
            .max(behavior.down.window)
            .max(behavior.up.longest_period())
            .max(behavior.down.longest_period());
        let cutoff = |secs: i64| now - jiff::SignedDuration::from_secs(secs);
        h.recommendations.retain(|r| r.at > cutoff(longest));
        h.events.retain(|e| e.at > cutoff(longest));
        let (mut up, mut down) = (proposed, proposed);
        for r in &h.recommendations {
            if r.at > cutoff(behavior.up.window) {
                up = up.min(r.replicas);
            }
            if r.at > cutoff(behavior.down.window) {
                down = down.max(r.replicas);
            }
        }
        h.recommendations.push(Timed {
            at: now,
            replicas: proposed,
        });
        let stabilized = current.max(up).min(down);
        let (reason, message) = match proposed.cmp(&stabilized) {
            std::cmp::Ordering::Greater => (
                "ScaleUpStabilized",
                "recent recommendations were lower than current one, applying the lowest recent recommendation",
            ),
            std::cmp::Ordering::Less => (
                "ScaleDownStabilized",
                "recent recommendations were higher than current one, applying the highest recent recommendation",
            ),
            std::cmp::Ordering::Equal => {
                ("ReadyForNewScale", "recommended size matches current size")
            }
        };
        set_condition(conditions, "AbleToScale", "True", reason, message, false);
        let changed_since = |period: i64, up_direction: bool| -> i64 {
            h.events
                .iter()
                .filter(|e| e.at > cutoff(period) && (e.replicas > 0) == up_direction)
                .map(|e| e.replicas)
                .sum()
        };
        let (limited, limit_reason) = if stabilized > current {
            let limit = behavior.up.limit(current, |p| changed_since(p, true), true);
            (stabilized.min(limit), "ScaleUpLimit")
        } else if stabilized < current {
            let limit = behavior
                .down
                .limit(current, |p| changed_since(p, false), false);
            (stabilized.max(limit), "ScaleDownLimit")
        } else {
            (stabilized, "")
        };
        let bounded = limited.clamp(min.min(max), max);
        if bounded > limited {
            set_condition(
                conditions,
                "ScalingLimited",
                "True",
                "TooFewReplicas",
                "the desired replica count is less than the minimum replica count",
                false,
            );
        } else if bounded < limited {
            set_condition(
                conditions,
                "ScalingLimited",
                "True",
                "TooManyReplicas",
                "the desired replica count is more than the maximum replica count",
                false,
            );
        } else if limited != stabilized {
            let message = if limit_reason == "ScaleUpLimit" {
                "the desired replica count is increasing faster than the maximum scale rate"
            } else {
                "the desired replica count is decreasing faster than the maximum scale rate"
            };
            set_condition(
                conditions,
                "ScalingLimited",
                "True",
                limit_reason,
                message,
                false,
            );
        } else {
            set_condition(
                conditions,
                "ScalingLimited",
                "False",
                "DesiredWithinRange",
                "the desired count is within the acceptable range",
                false,
            );
        }
        bounded
    }
}

fn key(hpa: &Value) -> String {
    format!("{}/{}", namespace(hpa), name(hpa))
}

fn status_of(hpa: &Value) -> Value {
    let mut status = hpa
        .get("status")
        .cloned()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({}));
    if status.get("desiredReplicas").is_none() {
        status["desiredReplicas"] = json!(0);
    }
    status
}

fn target_of(hpa: &Value) -> Option<(Resource, String)> {
    let api_version = hpa
        .at("/spec/scaleTargetRef/apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = hpa
        .at("/spec/scaleTargetRef/kind")
        .and_then(Value::as_str)?;
    let target = hpa
        .at("/spec/scaleTargetRef/name")
        .and_then(Value::as_str)?;
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (group, _, plural) = SCALABLE
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)?;
    let version = if version.is_empty() { "v1" } else { version };
    Some((
        Resource::new(group, version, plural, kind, true),
        target.to_string(),
    ))
}

/// A label selector object as the string a list request takes.
pub fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    for e in selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let k = e.get("key").and_then(Value::as_str).unwrap_or("");
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(
            match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => format!("{k} in ({})", values.join(",")),
                "NotIn" => format!("{k} notin ({})", values.join(",")),
                "Exists" => k.to_string(),
                _ => format!("!{k}"),
            },
        );
    }
    parts.join(",")
}

/// Requests of a resource of a pod in thousandths; `None` when a container has none.
fn pod_request(pod: &Value, resource: &str) -> Result<i64, String> {
    let mut total = 0;
    for c in pod
        .at("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let request = c
            .at(&format!("/resources/requests/{resource}"))
            .and_then(|q| match q {
                Value::String(s) => parse_milli_i64(s),
                Value::Number(n) => parse_milli_i64(&n.to_string()),
                _ => None,
            })
            .ok_or_else(|| {
                format!(
                    "missing request for {resource} in container {} of Pod {}",
                    c.get("name").and_then(Value::as_str).unwrap_or(""),
                    name(pod)
                )
            })?;
        total += request;
    }
    Ok(total)
}

/// kube-controller-manager's replica count for one `Resource` metric.
fn resource_proposal(
    metric: &Value,
    pods: &[Value],
    usage: &HashMap<String, HashMap<String, i64>>,
    current: i64,
) -> Result<Proposal, MetricError> {
    let resource = metric
        .at("/resource/name")
        .and_then(Value::as_str)
        .unwrap_or("cpu");
    let target = metric.at("/resource/target").cloned().unwrap_or_default();
    let failed = |message: String| MetricError {
        reason: "FailedGetResourceMetric",
        message: format!(
            "the HPA was unable to compute the replica count: failed to get {resource} utilization: {message}"
        ),
    };
    let measured: Vec<(&Value, i64)> = pods
        .iter()
        .filter_map(|p| {
            usage
                .get(name(p))
                .and_then(|u| u.get(resource))
                .map(|u| (p, *u))
        })
        .collect();
    if measured.is_empty() {
        return Err(failed(
            "unable to get metrics for resource: no metrics returned from resource metrics API"
                .into(),
        ));
    }
    let total_usage: i64 = measured.iter().map(|(_, u)| u).sum();
    let count = measured.len() as i64;
    let target_type = target
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("Utilization");
    let (ratio, current_status, description) = if target_type == "AverageValue" {
        let wanted = target
            .get("averageValue")
            .and_then(Value::as_str)
            .and_then(parse_milli_i64)
            .filter(|v| *v > 0)
            .ok_or_else(|| failed("invalid averageValue".into()))?;
        let average = total_usage / count;
        (
            average as f64 / wanted as f64,
            json!({"averageValue": milli_quantity(average, resource)}),
            format!("{resource} resource"),
        )
    } else {
        let wanted = target
            .get("averageUtilization")
            .and_then(Value::as_i64)
            .unwrap_or(80)
            .max(1);
        let mut requests = 0;
        for (p, _) in &measured {
            requests += pod_request(p, resource).map_err(&failed)?;
        }
        if requests == 0 {
            return Err(failed(format!("missing request for {resource}")));
        }
        let utilization = (total_usage * 100) / requests;
        (
            utilization as f64 / wanted as f64,
            json!({"averageUtilization": utilization, "averageValue": milli_quantity(total_usage / count, resource)}),
            format!("{resource} resource utilization (percentage of request)"),
        )
    };
    let replicas = if (1.0 - ratio).abs() <= TOLERANCE {
        current
    } else {
        (ratio * count as f64).ceil() as i64
    };
    Ok(Proposal {
        replicas,
        status: json!({"type": "Resource", "resource": {"name": resource, "current": current_status}}),
        description,
    })
}

/// A value in thousandths as a quantity: `250m`, or whole units when they divide.
fn milli_quantity(milli: i64, _resource: &str) -> String {
    if milli % 1000 == 0 {
        (milli / 1000).to_string()
    } else {
        format!("{milli}m")
    }
}

/// One direction of a behavior.
struct Rules {
    window: i64,
    select: String,
    /// (type, value, period seconds).
    policies: Vec<(String, i64, i64)>,
}

impl Rules {
    fn of(
        v: Option<&Value>,
        default_window: i64,
        default_policies: Vec<(String, i64, i64)>,
    ) -> Rules {
        let window = v
            .and_then(|r| r.get("stabilizationWindowSeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(default_window);
        let select = v
            .and_then(|r| r.get("selectPolicy"))
            .and_then(Value::as_str)
            .unwrap_or("Max")
            .to_string();
        let policies = v
            .and_then(|r| r.get("policies"))
            .and_then(Value::as_array)
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p.get("type")
                                .and_then(Value::as_str)
                                .unwrap_or("Pods")
                                .to_string(),
                            p.get("value").and_then(Value::as_i64).unwrap_or(1),
                            p.get("periodSeconds").and_then(Value::as_i64).unwrap_or(15),
                        )
                    })
                    .collect()
            })
            .unwrap_or(default_policies);
        Rules {
            window,
            select,
            policies,
        }
    }

    fn longest_period(&self) -> i64 {
        self.policies.iter().map(|p| p.2).max().unwrap_or(0)
    }

    /// The furthest the replicas may go in this direction now, given the changes made within
    /// each policy's period.
    fn limit(&self, current: i64, changed_since: impl Fn(i64) -> i64, up: bool) -> i64 {
        if self.select == "Disabled" {
            return current;
        }
        let limits = self.policies.iter().map(|(kind, value, period)| {
            let start = current - changed_since(*period);
            match (kind.as_str(), up) {
                ("Percent", true) => (start as f64 * (1.0 + *value as f64 / 100.0)).ceil() as i64,
                ("Percent", false) => (start as f64 * (1.0 - *value as f64 / 100.0)).ceil() as i64,
                (_, true) => start + value,
                (_, false) => start - value,
            }
        });
        let pick_larger = (self.select == "Max") == up;
        let limit = if pick_larger {
            limits.max()
        } else {
            limits.min()
        };
        limit.unwrap_or(current)
    }
}

/// `spec.behavior` with kube-controller-manager's defaults.
struct Behavior {
    up: Rules,
    down: Rules,
}

impl Behavior {
    fn of(hpa: &Value) -> Behavior {
        let up_defaults = vec![("Percent".into(), 100, 15), ("Pods".into(), 4, 15)];
        let down_defaults = vec![("Percent".into(), 100, 15)];
        Behavior {
            up: Rules::of(hpa.at("/spec/behavior/scaleUp"), 0, up_defaults),
            down: Rules::of(hpa.at("/spec/behavior/scaleDown"), 300, down_defaults),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(n: &str, cpu_request: &str) -> Value {
        json!({"metadata": {"name": n}, "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu_request}}}]}})
    }

    fn usage(entries: &[(&str, i64)]) -> HashMap<String, HashMap<String, i64>> {
        entries
            .iter()
            .map(|(n, cpu)| (n.to_string(), HashMap::from([("cpu".to_string(), *cpu)])))
            .collect()
    }

    #[test]
    fn utilization_proposals_follow_kube_controller_manager() {
        let metric = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}});
        let pods = vec![pod("a", "100m"), pod("b", "100m")];
        // 100% against 50%: double.
        let p = resource_proposal(&metric, &pods, &usage(&[("a", 100), ("b", 100)]), 2)
            .ok()
            .unwrap();
        assert_eq!(p.replicas, 4);
        assert_eq!(p.status["resource"]["current"]["averageUtilization"], 100);
        // 54% is within the tolerance of 50%.
        let p = resource_proposal(&metric, &pods, &usage(&[("a", 54), ("b", 54)]), 2)
            .ok()
            .unwrap();
        assert_eq!(p.replicas, 2);
        // 10%: scale down to one.
        let p = resource_proposal(&metric, &pods, &usage(&[("a", 10), ("b", 10)]), 2)
            .ok()
            .unwrap();
        assert_eq!(p.replicas, 1);
    }

    #[test]
    fn average_value_and_missing_requests() {
        let metric = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "100m"}}});
        let pods = vec![pod("a", "1")];
        let p = resource_proposal(&metric, &pods, &usage(&[("a", 300)]), 1)
            .ok()
            .unwrap();
        assert_eq!(p.replicas, 3);
        let utilization = json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}});
        let bare =
            vec![json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c"}]}})];
        let err = resource_proposal(&utilization, &bare, &usage(&[("a", 300)]), 1)
            .err()
            .unwrap();
        assert!(
            err.message
                .contains("missing request for cpu in container c of Pod a"),
            "{}",
            err.message
        );
    }

    #[test]
    fn default_policies_limit_scale_up() {
        let b = Behavior::of(&json!({}));
        // Max of 100% and 4 pods from 2 replicas: 4 vs 6 → 6.
        assert_eq!(b.up.limit(2, |_| 0, true), 6);
        // Down by 100% allowed at once.
        assert_eq!(b.down.limit(5, |_| 0, false), 0);
        assert_eq!(
            selector_string(&json!({"matchLabels": {"app": "web"}})),
            "app=web"
        );
    }
}
