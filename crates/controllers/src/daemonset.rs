//! The DaemonSet controller: one pod per eligible node (nodeSelector, required node affinity,
//! taints against the template's tolerations plus the ones kube adds to daemon pods), pinned to
//! its node by a required node affinity on `metadata.name` so the scheduler binds it there; pods
//! follow nodes as they come, change and go; templates roll out by `RollingUpdate`
//! (`maxUnavailable`, `maxSurge`) or `OnDelete`, with ControllerRevisions and the status
//! `kubectl rollout status daemonset` reads.

use client::JsonAt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams};
use serde_json::{Map, Value, json};

use crate::deployment::resolve_int_or_percent;
use crate::history::{self, Ensured};
use crate::informer::{
    Cache, Event, Expectations, Handler, Kind, SyncResult, WorkQueue, adopt, controller_key,
    controller_ref, controller_uid, creation, generation, int_at, is_deleting, is_pod_ready,
    key_of, labels, name, namespace, now, observe_pod_expectations, owner_ref, phase,
    pod_available, release, selector_matches, split_key, uid,
};
use crate::scheduler::model::{NodeInfo, PodInfo, Taint, tolerated};

pub const HASH_LABEL: &str = "controller-revision-hash";
pub const GENERATION_LABEL: &str = "pod-template-generation";

/// Tolerations every daemon pod gets, so that node conditions do not evict or keep it away.
const DEFAULT_TOLERATIONS: &[(&str, &str)] = &[
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

pub(crate) struct DaemonSetController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
    pub expectations: Arc<Expectations>,
}

/// Whether a node change can change which daemon pods it should run.
fn node_placement_changed(old: &Value, new: &Value) -> bool {
    old.at("/metadata/labels") != new.at("/metadata/labels")
        || old.at("/spec/taints") != new.at("/spec/taints")
}

/// Maps changes of DaemonSets, their pods and nodes to the DaemonSets to sync.
pub(crate) fn handler(queue: Arc<WorkQueue>, expectations: Arc<Expectations>) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| {
        let mut keys = HashSet::new();
        match ev.kind {
            Kind::DaemonSet => {
                if let Some(o) = ev.new.as_deref().or(ev.old.as_deref()) {
                    keys.insert(key_of(o));
                }
            }
            Kind::Pod => {
                observe_pod_expectations(ev, "DaemonSet", &expectations);
                for pod in [ev.old.as_deref(), ev.new.as_deref()].into_iter().flatten() {
                    if let Some(k) = controller_key(pod, "DaemonSet") {
                        keys.insert(k);
                    } else if controller_ref(pod).is_none() && ev.new.is_some() {
                        for ds in cache.list(Kind::DaemonSet, namespace(pod)) {
                            if selector_matches(ds.at("/spec/selector"), labels(pod)) {
                                keys.insert(key_of(&ds));
                            }
                        }
                    }
                }
            }
            Kind::Node => {
                let relevant = match (ev.old.as_deref(), ev.new.as_deref()) {
                    (Some(o), Some(n)) => node_placement_changed(o, n),
                    _ => true,
                };
                if relevant {
                    keys.extend(cache.all(Kind::DaemonSet).iter().map(|d| key_of(d)));
                }
            }
            _ => {}
        }
        for k in keys {
            queue.add(k);
        }
    })
}

/// The template's pod spec with the daemon tolerations added where not already present.
pub fn with_default_tolerations(spec: &Value) -> Value {
    let mut spec = spec.clone();
    if !spec.is_object() {
        spec = json!({});
    }
    let mut list: Vec<Value> = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (key, effect) in DEFAULT_TOLERATIONS {
        let present = list.iter().any(|t| {
            t.get("key").and_then(Value::as_str) == Some(key)
                && t.get("effect").and_then(Value::as_str) == Some(effect)
        });
        if !present {
            list.push(json!({"key": key, "operator": "Exists", "effect": effect}));
        }
    }
    if spec.get("hostNetwork") == Some(&json!(true)) {
        let key = "node.kubernetes.io/network-unavailable";
        if !list
            .iter()
            .any(|t| t.get("key").and_then(Value::as_str) == Some(key))
        {
            list.push(json!({"key": key, "operator": "Exists", "effect": "NoSchedule"}));
        }
    }
    spec["tolerations"] = Value::Array(list);
    spec
}

/// Pins a pod spec to one node: the required node affinity becomes `metadata.name In [node]`.
pub fn pin_to_node(spec: &mut Value, node: &str) {
    let term =
        json!({"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]});
    if !spec.get("affinity").is_some_and(Value::is_object) {
        spec["affinity"] = json!({});
    }
    if !spec["affinity"]
        .get("nodeAffinity")
        .is_some_and(Value::is_object)
    {
        spec["affinity"]["nodeAffinity"] = json!({});
    }
    spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] =
        json!({"nodeSelectorTerms": [term]});
}

/// The node a daemon pod is for: its `spec.nodeName`, or the node its affinity pins it to.
pub fn target_node(pod: &Value) -> Option<&str> {
    if let Some(n) = pod
        .at("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Some(n);
    }
    let terms = pod
        .at("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms")?
        .as_array()?;
    terms.iter().find_map(|t| {
        t.get("matchFields")?.as_array()?.iter().find_map(|f| {
            if f.get("key")?.as_str()? != "metadata.name" || f.get("operator")?.as_str()? != "In" {
                return None;
            }
            let values = f.get("values")?.as_array()?;
            match values.as_slice() {
                [only] => only.as_str(),
                _ => None,
            }
        })
    })
}

/// Whether a daemon pod should be started on the node, and whether one already there may stay.
pub fn placement(pod_spec_with_tolerations: &Value, node: &Value) -> (bool, bool) {
    let probe = json!({
        "metadata": {"namespace": "", "name": ""},
        "spec": pod_spec_with_tolerations,
    });
    let (Some(pod), Some(node)) = (PodInfo::parse(&probe), NodeInfo::parse(node)) else {
        return (false, false);
    };
    let fits = pod
        .node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && pod
            .required_terms
            .as_ref()
            .is_none_or(|terms| terms.iter().any(|t| t.matches(&node)));
    if !fits {
        return (false, false);
    }
    let untolerated = |effect: &str| {
        node.taints
            .iter()
            .any(|t: &Taint| t.effect == effect && !tolerated(&pod.tolerations, t))
    };
    if untolerated("NoExecute") {
        return (false, false);
    }
    (!untolerated("NoSchedule"), true)
}

/// maxSurge and maxUnavailable against the number of nodes that should run a pod.
pub fn rolling_limits(ds: &Value, desired: i64) -> (i64, i64) {
    let ru = ds.at("/spec/updateStrategy/rollingUpdate");
    let surge = resolve_int_or_percent(
        ru.and_then(|r| r.get("maxSurge")).or(Some(&json!(0))),
        desired,
        true,
    );
    let mut unavailable = resolve_int_or_percent(
        ru.and_then(|r| r.get("maxUnavailable")).or(Some(&json!(1))),
        desired,
        true,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable)
}

fn is_updated(pod: &Value, hash: &str) -> bool {
    labels(pod).get(HASH_LABEL).and_then(Value::as_str) == Some(hash)
}

/// The pods on one node and what the node calls for.
struct NodeState<'a> {
    node: &'a str,
    should_run: bool,
    should_continue: bool,
    /// Oldest first; deleting ones included.
    pods: Vec<&'a Value>,
}

impl NodeState<'_> {
    fn live(&self) -> impl Iterator<Item = &&Value> {
        self.pods.iter().filter(|p| !is_deleting(p))
    }
}

impl DaemonSetController {
    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, ds_name) = split_key(&key);
        let Some(ds) = self.cache.get(Kind::DaemonSet, ns, ds_name) else {
            self.expectations.forget(&key);
            return Ok(None);
        };
        if is_deleting(&ds)
            || ds
                .at("/spec/selector")
                .and_then(Value::as_object)
                .is_none_or(|s| s.is_empty())
        {
            return Ok(None);
        }
        let revisions = history::owned_revisions(&self.cache, &ds);
        let (revision, hash) = match history::ensure(
            &*self.cluster,
            &ds,
            ("apps/v1", "DaemonSet"),
            HASH_LABEL,
            &revisions,
        )
        .await?
        {
            Ensured::Revision(r, h) => (r, h),
            Ensured::Collision => {
                let mut next = (*ds).clone();
                next["status"]["collisionCount"] =
                    json!(int_at(&ds, "/status/collisionCount").unwrap_or(0) + 1);
                self.cluster
                    .update_status(&Kind::DaemonSet.resource(), Some(ns), &next)
                    .await?;
                return Ok(None);
            }
        };
        let pods = self.claim(&ds).await?;
        let spec = with_default_tolerations(ds.at("/spec/template/spec").unwrap_or(&Value::Null));
        let nodes = self.cache.all(Kind::Node);
        let mut by_node: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for pod in &pods {
            if let Some(n) = target_node(pod) {
                by_node.entry(n).or_default().push(pod);
            }
        }
        let mut states = Vec::new();
        for node in &nodes {
            let (should_run, should_continue) = placement(&spec, node);
            let mut on_node = by_node.remove(name(node)).unwrap_or_default();
            on_node.sort_by(|a, b| creation(a).cmp(creation(b)).then(name(a).cmp(name(b))));
            states.push(NodeState {
                node: name(node),
                should_run,
                should_continue,
                pods: on_node,
            });
        }
        // Pods whose node is gone.
        let orphaned: Vec<&Value> = by_node
            .into_values()
            .flatten()
            .filter(|p| !is_deleting(p))
            .collect();
        let mut wait = None;
        if self.expectations.satisfied(&key) {
            wait = self
                .manage(&ds, &key, &spec, &hash, &states, &orphaned)
                .await?;
        }
        let mut keep: HashSet<String> = pods
            .iter()
            .filter_map(|p| labels(p).get(HASH_LABEL).and_then(Value::as_str))
            .map(|h| format!("{}-{h}", name(&ds)))
            .collect();
        keep.insert(name(&revision).to_string());
        history::truncate(
            &*self.cluster,
            &revisions,
            &keep,
            int_at(&ds, "/spec/revisionHistoryLimit").unwrap_or(10),
        )
        .await?;
        let status_wait = self.update_status(&ds, &hash, &states).await?;
        Ok(match (wait, status_wait) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    async fn claim(&self, ds: &Value) -> client::Result<Vec<Arc<Value>>> {
        let ds_uid = uid(ds);
        let selector = ds.at("/spec/selector");
        let pods_res = Kind::Pod.resource();
        let mut owned = Vec::new();
        for pod in self.cache.list(Kind::Pod, namespace(ds)) {
            let matches = selector_matches(selector, labels(&pod));
            match controller_uid(&pod) {
                Some(u) if u == ds_uid => {
                    if matches {
                        owned.push(pod);
                    } else {
                        release(&*self.cluster, &pods_res, &pod, ds_uid).await?;
                    }
                }
                None if matches && !is_deleting(&pod) => {
                    let owner = owner_ref(ds, "apps/v1", "DaemonSet");
                    if let Some(p) = adopt(&*self.cluster, &pods_res, &pod, owner).await? {
                        owned.push(Arc::new(p));
                    }
                }
                _ => {}
            }
        }
        Ok(owned)
    }

    async fn event(&self, ds: &Value, kind: &str, reason: &str, message: &str) {
        crate::informer::record_event(
            &*self.cluster,
            ds,
            ("apps/v1", "DaemonSet"),
            "daemonset-controller",
            kind,
            reason,
            message,
        )
        .await;
    }

    /// Creates and deletes pods so each node runs what it should, then rolls out a new template.
    async fn manage(
        &self,
        ds: &Value,
        key: &str,
        spec: &Value,
        hash: &str,
        states: &[NodeState<'_>],
        orphaned: &[&Value],
    ) -> client::Result<Option<Duration>> {
        let mut create: Vec<&str> = Vec::new();
        let mut delete: Vec<&Value> = orphaned.to_vec();
        let (surge, max_unavailable) =
            rolling_limits(ds, states.iter().filter(|s| s.should_run).count() as i64);
        let rolling = ds
            .at("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        for s in states {
            if s.should_run && s.pods.is_empty() {
                create.push(s.node);
                continue;
            }
            if !s.should_continue {
                delete.extend(s.live());
                continue;
            }
            let mut running = Vec::new();
            for pod in s.live() {
                if phase(pod) == "Failed" {
                    delete.push(pod);
                } else {
                    running.push(*pod);
                }
            }
            // One pod per node; during a surge an old pod may stand next to its new one.
            let (new, old): (Vec<&Value>, Vec<&Value>) =
                running.iter().partition(|p| is_updated(p, hash));
            if new.len() > 1 {
                delete.extend(&new[1..]);
            }
            if old.len() > 1 {
                delete.extend(&old[1..]);
            }
            if !new.is_empty() && !old.is_empty() && (!rolling || surge == 0) {
                delete.push(new[0]);
            }
        }
        let mut wait = None;
        if rolling && create.is_empty() && delete.is_empty() {
            wait = self.roll(
                ds,
                hash,
                states,
                surge,
                max_unavailable,
                &mut create,
                &mut delete,
            );
        }
        if create.is_empty() && delete.is_empty() {
            return Ok(wait);
        }
        self.expectations
            .expect(key, create.len() as i64, delete.len() as i64);
        let template = ds.at("/spec/template").cloned().unwrap_or_default();
        let mut pod_labels = template
            .at("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        pod_labels.insert(HASH_LABEL.into(), json!(hash));
        pod_labels.insert(GENERATION_LABEL.into(), json!(generation(ds).to_string()));
        let ns = namespace(ds);
        let pods_res = Kind::Pod.resource();
        let mut first_err = None;
        let created = futures::future::join_all(create.iter().map(|node| {
            let mut pod_spec = spec.clone();
            pin_to_node(&mut pod_spec, node);
            let mut meta = json!({
                "generateName": format!("{}-", name(ds)),
                "namespace": ns,
                "labels": pod_labels,
                "ownerReferences": [owner_ref(ds, "apps/v1", "DaemonSet")],
            });
            if let Some(a) = template.at("/metadata/annotations") {
                meta["annotations"] = a.clone();
            }
            let pod =
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec});
            let pods_res = &pods_res;
            async move {
                let created = self.cluster.create(pods_res, Some(ns), &pod).await?;
                self.event(
                    ds,
                    "Normal",
                    "SuccessfulCreate",
                    &format!("Created pod: {}", name(&created)),
                )
                .await;
                Ok::<_, client::Error>(())
            }
        }))
        .await;
        for r in created {
            if let Err(e) = r {
                self.expectations.observed(key, 1, 0);
                first_err.get_or_insert(e);
            }
        }
        let deleted = futures::future::join_all(delete.iter().map(|pod| {
            let pods_res = &pods_res;
            // No kubelet is left to finish a pod whose node is gone.
            let params = DeleteParams {
                grace_period_seconds: orphaned.iter().any(|o| std::ptr::eq(*o, *pod)).then_some(0),
                ..Default::default()
            };
            async move {
                self.cluster
                    .delete(pods_res, Some(ns), name(pod), &params)
                    .await?;
                self.event(
                    ds,
                    "Normal",
                    "SuccessfulDelete",
                    &format!("Deleted pod: {}", name(pod)),
                )
                .await;
                Ok::<_, client::Error>(())
            }
        }))
        .await;
        for r in deleted {
            match r {
                Ok(()) => {}
                Err(e) if e.is_not_found() => self.expectations.observed(key, 0, 1),
                Err(e) => {
                    self.expectations.observed(key, 0, 1);
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(wait),
        }
    }

    /// Picks the old pods to replace now: without surge, deletes old pods while no more than
    /// `maxUnavailable` nodes lack an available pod; with surge, starts new pods beside
    /// available old ones (at most `maxSurge` at a time) and deletes an old pod once its
    /// replacement is available.
    #[allow(clippy::too_many_arguments)]
    fn roll<'a>(
        &self,
        ds: &Value,
        hash: &str,
        states: &'a [NodeState<'a>],
        surge: i64,
        max_unavailable: i64,
        create: &mut Vec<&'a str>,
        delete: &mut Vec<&'a Value>,
    ) -> Option<Duration> {
        let min_ready = int_at(ds, "/spec/minReadySeconds").unwrap_or(0);
        let now = now();
        let mut wait: Option<Duration> = None;
        let mut available = |pod: &Value| {
            let (ok, until) = pod_available(pod, min_ready, now);
            if let Some(w) = until {
                wait = Some(wait.map_or(w, |x: Duration| x.min(w)));
            }
            ok
        };
        let mut unavailable = 0;
        let mut surging = 0;
        let mut candidates = Vec::new();
        for s in states.iter().filter(|s| s.should_run) {
            let live: Vec<&Value> = s.live().copied().collect();
            let new = live.iter().find(|p| is_updated(p, hash));
            let old = live.iter().find(|p| !is_updated(p, hash));
            let node_available = live.iter().any(|p| available(p));
            if !node_available {
                unavailable += 1;
            }
            match (new, old) {
                (Some(n), Some(o)) => {
                    if available(n) {
                        delete.push(o);
                    } else {
                        surging += 1;
                    }
                }
                (None, Some(o)) => candidates.push((s.node, *o, available(o))),
                _ => {}
            }
        }
        for (node, old, old_available) in candidates {
            if !old_available {
                // Already down: replacing it costs no availability.
                delete.push(old);
            } else if surge > 0 {
                if surging < surge {
                    surging += 1;
                    create.push(node);
                }
            } else if unavailable < max_unavailable {
                unavailable += 1;
                delete.push(old);
            }
        }
        wait
    }

    async fn update_status(&self, ds: &Value, hash: &str, states: &[NodeState<'_>]) -> SyncResult {
        let min_ready = int_at(ds, "/spec/minReadySeconds").unwrap_or(0);
        let now = now();
        let (mut desired, mut current, mut misscheduled) = (0, 0, 0);
        let (mut ready, mut available, mut updated) = (0, 0, 0);
        let mut wait: Option<Duration> = None;
        for s in states {
            let live: Vec<&Value> = s.live().copied().collect();
            if s.should_run {
                desired += 1;
                if live.is_empty() {
                    continue;
                }
                current += 1;
                let pod = live
                    .iter()
                    .find(|p| is_updated(p, hash))
                    .unwrap_or(&live[0]);
                if is_pod_ready(pod) {
                    ready += 1;
                    let (ok, until) = pod_available(pod, min_ready, now);
                    if ok {
                        available += 1;
                    }
                    if let Some(w) = until {
                        wait = Some(wait.map_or(w, |x: Duration| x.min(w)));
                    }
                }
                if is_updated(pod, hash) {
                    updated += 1;
                }
            } else if !live.is_empty() {
                misscheduled += 1;
            }
        }
        let mut status = Map::new();
        status.insert("currentNumberScheduled".into(), json!(current));
        status.insert("numberMisscheduled".into(), json!(misscheduled));
        status.insert("desiredNumberScheduled".into(), json!(desired));
        status.insert("numberReady".into(), json!(ready));
        status.insert("observedGeneration".into(), json!(generation(ds)));
        if updated > 0 {
            status.insert("updatedNumberScheduled".into(), json!(updated));
        }
        if available > 0 {
            status.insert("numberAvailable".into(), json!(available));
        }
        if desired - available > 0 {
            status.insert("numberUnavailable".into(), json!(desired - available));
        }
        for field in ["collisionCount", "conditions"] {
            if let Some(v) = ds.at(&format!("/status/{field}")) {
                status.insert(field.into(), v.clone());
            }
        }
        let status = Value::Object(status);
        if ds.get("status") != Some(&status) {
            let mut next = ds.clone();
            next["status"] = status;
            match self
                .cluster
                .update_status(&Kind::DaemonSet.resource(), Some(namespace(ds)), &next)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}})
    }

    #[test]
    fn default_tolerations_cover_node_conditions() {
        let spec = with_default_tolerations(&json!({"containers": []}));
        let list = spec["tolerations"].as_array().unwrap();
        assert_eq!(list.len(), DEFAULT_TOLERATIONS.len());
        let not_ready = node(
            "n",
            json!({}),
            json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                   {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
        );
        assert_eq!(placement(&spec, &not_ready), (true, true));
        // Adding them twice changes nothing.
        assert_eq!(with_default_tolerations(&spec), spec);
    }

    #[test]
    fn selectors_affinity_and_taints_decide_placement() {
        let spec = with_default_tolerations(&json!({"nodeSelector": {"role": "edge"}}));
        assert_eq!(
            placement(&spec, &node("a", json!({"role": "edge"}), json!([]))),
            (true, true)
        );
        assert_eq!(
            placement(&spec, &node("b", json!({"role": "core"}), json!([]))),
            (false, false)
        );
        let no_schedule = node(
            "c",
            json!({"role": "edge"}),
            json!([{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]),
        );
        assert_eq!(placement(&spec, &no_schedule), (false, true));
        let no_execute = node(
            "d",
            json!({"role": "edge"}),
            json!([{"key": "dedicated", "value": "x", "effect": "NoExecute"}]),
        );
        assert_eq!(placement(&spec, &no_execute), (false, false));
        let tolerant = with_default_tolerations(&json!({
            "tolerations": [{"key": "dedicated", "operator": "Exists"}],
        }));
        assert_eq!(placement(&tolerant, &no_execute), (true, true));
        let affinity = with_default_tolerations(&json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "role", "operator": "In", "values": ["core"]}]}]}}}}));
        assert_eq!(
            placement(&affinity, &node("b", json!({"role": "core"}), json!([]))),
            (true, true)
        );
        assert_eq!(
            placement(&affinity, &node("a", json!({"role": "edge"}), json!([]))),
            (false, false)
        );
    }

    #[test]
    fn pods_are_pinned_by_node_affinity() {
        let mut spec = json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "role", "operator": "In", "values": ["core"]}]}]},
            "preferredDuringSchedulingIgnoredDuringExecution": []}}});
        pin_to_node(&mut spec, "node-7");
        let pod = json!({"spec": spec});
        assert_eq!(target_node(&pod), Some("node-7"));
        let terms = &pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"];
        assert_eq!(terms.as_array().unwrap().len(), 1);
        assert!(
            pod["spec"]["affinity"]["nodeAffinity"]
                .get("preferredDuringSchedulingIgnoredDuringExecution")
                .is_some()
        );
        let bound = json!({"spec": {"nodeName": "node-1"}});
        assert_eq!(target_node(&bound), Some("node-1"));
    }

    #[test]
    fn rolling_limits_round_up_and_never_stall() {
        let ds = |ru: Value| json!({"spec": {"updateStrategy": {"rollingUpdate": ru}}});
        assert_eq!(rolling_limits(&ds(json!({})), 10), (0, 1));
        assert_eq!(
            rolling_limits(&ds(json!({"maxUnavailable": "25%"})), 10),
            (0, 3)
        );
        assert_eq!(
            rolling_limits(&ds(json!({"maxSurge": "10%", "maxUnavailable": 0})), 10),
            (1, 0)
        );
        assert_eq!(
            rolling_limits(&ds(json!({"maxSurge": 0, "maxUnavailable": 0})), 10),
            (0, 1)
        );
    }
}
