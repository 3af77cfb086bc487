//! Node lifecycle: a node whose kubelet (here: the simulator) stopped posting status and renewing
//! its Lease for longer than the grace period gets its conditions set to `Unknown`; nodes get the
//! `node.kubernetes.io/*` taints their conditions call for (`not-ready` and `unreachable` as
//! `NoSchedule` and `NoExecute`, the pressure conditions and `spec.unschedulable` as
//! `NoSchedule`), removed when the condition clears; and pods on a node with `NoExecute` taints
//! are deleted unless they tolerate them, after the shortest `tolerationSeconds` that applies.

use client::JsonAt;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::{Cluster, DeleteParams};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::informer::{
    Cache, Event, Handler, Kind, SyncResult, WorkQueue, is_deleting, key_of, name, namespace, now,
    parse_time, split_key, timestamp, uid,
};
use crate::scheduler::model::{Taint, Toleration};

pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
const UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const LEASE_NAMESPACE: &str = "kube-node-lease";

/// How long a node may go without a heartbeat before it counts as unreachable.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(40);
/// How often heartbeats are checked.
pub const DEFAULT_MONITOR_PERIOD: Duration = Duration::from_secs(5);

/// kube-controller-manager's `--node-monitor-grace-period` and `--node-monitor-period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Monitor {
    pub grace: Duration,
    pub period: Duration,
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            grace: DEFAULT_GRACE,
            period: DEFAULT_MONITOR_PERIOD,
        }
    }
}

/// The taint keys this controller owns, with the condition (type, status) that calls for each.
const CONDITION_TAINTS: &[(&str, &str, &str, &[&str])] = &[
    ("Ready", "False", NOT_READY, &["NoSchedule", "NoExecute"]),
    (
        "Ready",
        "Unknown",
        UNREACHABLE,
        &["NoSchedule", "NoExecute"],
    ),
    (
        "MemoryPressure",
        "True",
        "node.kubernetes.io/memory-pressure",
        &["NoSchedule"],
    ),
    (
        "DiskPressure",
        "True",
        "node.kubernetes.io/disk-pressure",
        &["NoSchedule"],
    ),
    (
        "PIDPressure",
        "True",
        "node.kubernetes.io/pid-pressure",
        &["NoSchedule"],
    ),
    (
        "NetworkUnavailable",
        "True",
        "node.kubernetes.io/network-unavailable",
        &["NoSchedule"],
    ),
];

fn condition_status<'a>(node: &'a Value, kind: &str) -> Option<&'a str> {
    node.at("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))?
        .get("status")?
        .as_str()
}

fn managed(taint: &Value) -> bool {
    let key = taint.get("key").and_then(Value::as_str).unwrap_or_default();
    key == UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k, _)| *k == key)
}

/// The node's taints as its conditions call for: others kept, ours added or removed; a taint
/// that stays keeps its `timeAdded`.
pub fn wanted_taints(node: &Value, now: Timestamp) -> Vec<Value> {
    let current: Vec<Value> = node
        .at("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut wanted: Vec<(&str, &str)> = Vec::new();
    for (condition, status, key, effects) in CONDITION_TAINTS {
        if condition_status(node, condition) == Some(status) {
            wanted.extend(effects.iter().map(|e| (*key, *e)));
        }
    }
    if node.at("/spec/unschedulable") == Some(&json!(true)) {
        wanted.push((UNSCHEDULABLE, "NoSchedule"));
    }
    let same = |t: &Value, (key, effect): (&str, &str)| {
        t.get("key").and_then(Value::as_str) == Some(key)
            && t.get("effect").and_then(Value::as_str) == Some(effect)
    };
    let mut out: Vec<Value> = current
        .iter()
        .filter(|t| !managed(t) || wanted.iter().any(|w| same(t, *w)))
        .cloned()
        .collect();
    for w in wanted {
        if !out.iter().any(|t| same(t, w)) {
            let mut taint = json!({"key": w.0, "effect": w.1});
            if w.1 == "NoExecute" {
                taint["timeAdded"] = json!(timestamp(now));
            }
            out.push(taint);
        }
    }
    out
}

/// What an eviction check decided for a pod.
#[derive(Debug, PartialEq)]
pub enum Eviction {
    Keep,
    Now,
    After(Duration),
}

/// Whether a pod must leave a node with these taints: at once when a `NoExecute` taint is not
/// tolerated, after the shortest `tolerationSeconds` of the tolerations used (counted from the
/// taint's `timeAdded`), or never.
pub fn eviction(pod: &Value, taints: &[Value], now: Timestamp) -> Eviction {
    let tolerations: Vec<(Toleration, Option<i64>)> = pod
        .at("/spec/tolerations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|t| {
            (
                Toleration::parse(t),
                t.get("tolerationSeconds").and_then(Value::as_i64),
            )
        })
        .collect();
    let mut deadline: Option<Timestamp> = None;
    for t in taints {
        if t.get("effect").and_then(Value::as_str) != Some("NoExecute") {
            continue;
        }
        let g = |k: &str| {
            t.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let taint = Taint {
            key: g("key"),
            value: g("value"),
            effect: g("effect"),
        };
        let used: Vec<Option<i64>> = tolerations
            .iter()
            .filter(|(tol, _)| tol.tolerates(&taint))
            .map(|(_, secs)| *secs)
            .collect();
        if used.is_empty() {
            return Eviction::Now;
        }
        let Some(secs) = used.iter().flatten().min() else {
            continue;
        };
        let added = t
            .get("timeAdded")
            .and_then(Value::as_str)
            .and_then(parse_time)
            .unwrap_or(now);
        let at = added
            .checked_add(jiff::SignedDuration::from_secs((*secs).max(0)))
            .unwrap_or(added);
        deadline = Some(deadline.map_or(at, |d| d.min(at)));
    }
    match deadline {
        None => Eviction::Keep,
        Some(at) if at <= now => Eviction::Now,
        Some(at) => Eviction::After(Duration::from_millis(
            (at.as_millisecond() - now.as_millisecond()) as u64,
        )),
    }
}

fn no_execute_taints(node: &Value) -> Vec<Value> {
    node.at("/spec/taints")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("effect").and_then(Value::as_str) == Some("NoExecute"))
        .cloned()
        .collect()
}

fn node_of(pod: &Value) -> Option<&str> {
    pod.at("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

pub(crate) struct NodeLifecycleController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
    pub grace: Duration,
    pub period: Duration,
    /// Per node: the last heartbeat seen (status and lease) and when it changed.
    pub heartbeats: Mutex<HashMap<String, (String, Instant)>>,
}

/// Maps node and pod changes to nodes whose taints to check and pods whose eviction to check.
pub(crate) fn handler(nodes: Arc<WorkQueue>, pods: Arc<WorkQueue>) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| match ev.kind {
        Kind::Node => {
            let Some(node) = ev.new.as_deref() else {
                return;
            };
            nodes.add(name(node).to_string());
            let taints_changed =
                ev.old.as_deref().map(no_execute_taints) != Some(no_execute_taints(node));
            if taints_changed && !no_execute_taints(node).is_empty() {
                for pod in cache.all(Kind::Pod) {
                    if node_of(&pod) == Some(name(node)) {
                        pods.add(key_of(&pod));
                    }
                }
            }
        }
        Kind::Pod => {
            if let Some(pod) = ev.new.as_deref()
                && let Some(n) = node_of(pod)
                && !is_deleting(pod)
                && cache
                    .get(Kind::Node, "", n)
                    .is_some_and(|node| !no_execute_taints(&node).is_empty())
            {
                pods.add(key_of(pod));
            }
        }
        _ => {}
    })
}

impl NodeLifecycleController {
    fn heartbeat(&self, node: &Value) -> String {
        let ready = node
            .at("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            });
        let field = |k: &str| {
            ready
                .and_then(|c| c.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        let lease = self
            .cache
            .get(Kind::Lease, LEASE_NAMESPACE, name(node))
            .and_then(|l| {
                l.at("/spec/renewTime")
                    .and_then(Value::as_str)
                    .map(String::from)
            })
            .unwrap_or_default();
        format!(
            "{}|{}|{}|{lease}",
            field("lastHeartbeatTime"),
            field("status"),
            field("lastTransitionTime")
        )
    }

    /// Every few seconds, queues the nodes whose heartbeat is older than the grace period.
    pub async fn monitor(self: Arc<Self>, nodes: Arc<WorkQueue>) {
        loop {
            let all = self.cache.all(Kind::Node);
            let stale: Vec<String> = {
                let mut beats = self.heartbeats.lock().unwrap();
                let names: HashSet<&str> = all.iter().map(|n| name(n)).collect();
                beats.retain(|n, _| names.contains(n.as_str()));
                let now = Instant::now();
                all.iter()
                    .filter(|node| {
                        let beat = self.heartbeat(node);
                        let entry = beats
                            .entry(name(node).to_string())
                            .or_insert_with(|| (beat.clone(), now));
                        if entry.0 != beat {
                            *entry = (beat, now);
                        }
                        now.duration_since(entry.1) > self.grace
                            && condition_status(node, "Ready") != Some("Unknown")
                    })
                    .map(|n| name(n).to_string())
                    .collect()
            };
            for n in stale {
                nodes.add(n);
            }
            tokio::time::sleep(self.period).await;
        }
    }

    fn is_stale(&self, node: &Value) -> bool {
        let beats = self.heartbeats.lock().unwrap();
        beats
            .get(name(node))
            .is_some_and(|(beat, at)| *beat == self.heartbeat(node) && at.elapsed() > self.grace)
    }

    pub async fn sync_node(self: Arc<Self>, key: String) -> SyncResult {
        let Some(node) = self.cache.get(Kind::Node, "", &key) else {
            return Ok(None);
        };
        let nodes = Kind::Node.resource();
        if self.is_stale(&node) && condition_status(&node, "Ready") != Some("Unknown") {
            let mut next = (*node).clone();
            let now = timestamp(now());
            let mut conditions: Vec<Value> = next
                .at("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if !conditions
                .iter()
                .any(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            {
                conditions.push(json!({
                    "type": "Ready", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": now, "lastTransitionTime": now,
                }));
            }
            for c in conditions.iter_mut() {
                let kind = c.get("type").and_then(Value::as_str).unwrap_or_default();
                if matches!(
                    kind,
                    "Ready" | "MemoryPressure" | "DiskPressure" | "PIDPressure"
                ) && c.get("status").and_then(Value::as_str) != Some("Unknown")
                {
                    c["status"] = json!("Unknown");
                    c["reason"] = json!("NodeStatusUnknown");
                    c["message"] = json!("Kubelet stopped posting node status.");
                    c["lastTransitionTime"] = json!(now);
                }
            }
            next["status"]["conditions"] = Value::Array(conditions);
            self.cluster.update_status(&nodes, None, &next).await?;
            // The taints follow when the change comes back through the watch.
            return Ok(None);
        }
        let wanted = wanted_taints(&node, now());
        let current = node
            .at("/spec/taints")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if wanted != current {
            let mut next = (*node).clone();
            if wanted.is_empty() {
                if let Some(spec) = next.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.remove("taints");
                }
            } else {
                next["spec"]["taints"] = Value::Array(wanted);
            }
            match self.cluster.update(&nodes, None, &next).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    pub async fn sync_pod(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, pod_name) = split_key(&key);
        let Some(pod) = self.cache.get(Kind::Pod, ns, pod_name) else {
            return Ok(None);
        };
        if is_deleting(&pod) {
            return Ok(None);
        }
        let Some(node) = node_of(&pod).and_then(|n| self.cache.get(Kind::Node, "", n)) else {
            return Ok(None);
        };
        match eviction(&pod, &no_execute_taints(&node), now()) {
            Eviction::Keep => Ok(None),
            Eviction::After(wait) => Ok(Some(wait + Duration::from_millis(50))),
            Eviction::Now => {
                crate::informer::record_event(
                    &*self.cluster,
                    &pod,
                    ("v1", "Pod"),
                    "taint-eviction-controller",
                    "Normal",
                    "TaintManagerEviction",
                    &format!(
                        "Marking for deletion Pod {}/{}",
                        namespace(&pod),
                        name(&pod)
                    ),
                )
                .await;
                let params = DeleteParams {
                    precondition_uid: Some(uid(&pod).to_string()),
                    ..Default::default()
                };
                match self
                    .cluster
                    .delete(&Kind::Pod.resource(), Some(ns), pod_name, &params)
                    .await
                {
                    Ok(_) => Ok(None),
                    Err(e) if e.is_not_found() || e.is_conflict() => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn node(conditions: Value, taints: Value) -> Value {
        json!({"metadata": {"name": "n"}, "spec": {"taints": taints},
            "status": {"conditions": conditions}})
    }

    #[test]
    fn conditions_become_taints_and_back() {
        let now = ts("2024-01-01T00:00:00Z");
        let other = json!({"key": "dedicated", "value": "x", "effect": "NoSchedule"});
        let n = node(
            json!([{"type": "Ready", "status": "False"}]),
            json!([other]),
        );
        let t = wanted_taints(&n, now);
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], other);
        assert!(t.iter().any(|t| t["key"] == NOT_READY
            && t["effect"] == "NoExecute"
            && t["timeAdded"] == "2024-01-01T00:00:00Z"));
        // Once Ready again, ours go and the others stay.
        let ready = node(
            json!([{"type": "Ready", "status": "True"}]),
            Value::Array(t.clone()),
        );
        assert_eq!(wanted_taints(&ready, now), vec![other.clone()]);
        // Unknown means unreachable; a kept taint keeps its time.
        let unknown = node(json!([{"type": "Ready", "status": "Unknown"}]), json!([]));
        let t = wanted_taints(&unknown, now);
        assert!(t.iter().all(|t| t["key"] == UNREACHABLE));
        let again = node(
            json!([{"type": "Ready", "status": "Unknown"}]),
            Value::Array(t.clone()),
        );
        assert_eq!(wanted_taints(&again, ts("2024-01-02T00:00:00Z")), t);
        let pressure = node(
            json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True"}]),
            json!([]),
        );
        assert_eq!(
            wanted_taints(&pressure, now),
            vec![json!({"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"})]
        );
    }

    #[test]
    fn pods_leave_after_their_toleration() {
        let now = ts("2024-01-01T00:00:10Z");
        let taints = [json!({"key": NOT_READY, "effect": "NoExecute",
            "timeAdded": "2024-01-01T00:00:00Z"})];
        let pod = |tolerations: Value| json!({"spec": {"tolerations": tolerations}});
        assert_eq!(eviction(&pod(json!([])), &taints, now), Eviction::Now);
        let forever = pod(json!([{"key": NOT_READY, "operator": "Exists", "effect": "NoExecute"}]));
        assert_eq!(eviction(&forever, &taints, now), Eviction::Keep);
        let short = pod(
            json!([{"key": NOT_READY, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 5}]),
        );
        assert_eq!(eviction(&short, &taints, now), Eviction::Now);
        let long = pod(
            json!([{"key": NOT_READY, "operator": "Exists", "effect": "NoExecute",
            "tolerationSeconds": 300}]),
        );
        assert_eq!(
            eviction(&long, &taints, now),
            Eviction::After(Duration::from_secs(290))
        );
        let ignores_no_schedule = [json!({"key": "x", "effect": "NoSchedule"})];
        assert_eq!(
            eviction(&pod(json!([])), &ignores_no_schedule, now),
            Eviction::Keep
        );
    }
}
