//! The StatefulSet controller: pods `<set>-<ordinal>` with stable names and claims from
//! `volumeClaimTemplates`, created in ordinal order and each only after the previous one is
//! Running and Ready (`OrderedReady`), or all at once (`Parallel`); removed highest ordinal first;
//! rolled to a new template from the highest ordinal down to `partition` (`RollingUpdate`) or only
//! when deleted (`OnDelete`), with the template history in ControllerRevisions and the status
//! `kubectl rollout status statefulset` reads.

use client::JsonAt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams};
use serde_json::{Map, Value, json};

use crate::history::{self, Ensured};
use crate::informer::{
    Cache, Event, Handler, Kind, SyncResult, WorkQueue, adopt, controller_key, controller_ref,
    controller_uid, generation, int_at, is_deleting, is_pod_ready, key_of, labels, name, namespace,
    now, owner_ref, phase, pod_available, release, selector_matches, split_key, uid,
};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";
const HASH_LABEL: &str = "controller.kubernetes.io/hash";

pub(crate) struct StatefulSetController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
}

/// Maps changes of StatefulSets, their pods and revisions to the StatefulSets to sync.
pub(crate) fn handler(queue: Arc<WorkQueue>) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| {
        let mut keys = HashSet::new();
        match ev.kind {
            Kind::StatefulSet => {
                if let Some(o) = ev.new.as_deref().or(ev.old.as_deref()) {
                    keys.insert(key_of(o));
                }
            }
            Kind::Pod | Kind::ControllerRevision => {
                for obj in [ev.old.as_deref(), ev.new.as_deref()].into_iter().flatten() {
                    if let Some(k) = controller_key(obj, "StatefulSet") {
                        keys.insert(k);
                    } else if ev.kind == Kind::Pod
                        && controller_ref(obj).is_none()
                        && ev.new.is_some()
                    {
                        for set in cache.list(Kind::StatefulSet, namespace(obj)) {
                            if selector_matches(set.at("/spec/selector"), labels(obj)) {
                                keys.insert(key_of(&set));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        for k in keys {
            queue.add(k);
        }
    })
}

/// The ordinal in a pod name `<set>-<ordinal>`.
pub fn ordinal_of(set_name: &str, pod_name: &str) -> Option<i64> {
    let digits = pod_name.strip_prefix(set_name)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The claim name of a `volumeClaimTemplates` entry for one ordinal.
pub fn claim_name(template: &str, set_name: &str, ordinal: i64) -> String {
    format!("{template}-{set_name}-{ordinal}")
}

fn running_and_ready(pod: &Value) -> bool {
    phase(pod) == "Running" && is_pod_ready(pod)
}

fn finished(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn pod_revision(pod: &Value) -> &str {
    labels(pod)
        .get(REVISION_LABEL)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The pod for one ordinal, from `template`, as upstream builds it: fixed name, hostname and
/// subdomain, identity labels, and the claims in place of same-named volumes.
pub fn new_pod(set: &Value, template: &Value, ordinal: i64, revision: &str) -> Value {
    let set_name = name(set);
    let pod_name = format!("{set_name}-{ordinal}");
    let mut pod_labels = template
        .at("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    pod_labels.insert(POD_NAME_LABEL.into(), json!(pod_name));
    pod_labels.insert(POD_INDEX_LABEL.into(), json!(ordinal.to_string()));
    pod_labels.insert(REVISION_LABEL.into(), json!(revision));
    let mut meta = json!({
        "name": pod_name,
        "namespace": namespace(set),
        "labels": pod_labels,
        "ownerReferences": [owner_ref(set, "apps/v1", "StatefulSet")],
    });
    if let Some(a) = template.at("/metadata/annotations") {
        meta["annotations"] = a.clone();
    }
    let mut spec = template.get("spec").cloned().unwrap_or_else(|| json!({}));
    if !spec.is_object() {
        spec = json!({});
    }
    spec["hostname"] = json!(pod_name);
    if let Some(service) = set
        .at("/spec/serviceName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        spec["subdomain"] = json!(service);
    }
    let claims = claim_templates(set);
    if !claims.is_empty() {
        let mut volumes: Vec<Value> = spec
            .get("volumes")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for claim in claims {
            let claim_template = name(claim);
            volumes.retain(|v| v.get("name").and_then(Value::as_str) != Some(claim_template));
            volumes.push(json!({
                "name": claim_template,
                "persistentVolumeClaim": {"claimName": claim_name(claim_template, set_name, ordinal)},
            }));
        }
        spec["volumes"] = Value::Array(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

fn claim_templates(set: &Value) -> Vec<&Value> {
    set.at("/spec/volumeClaimTemplates")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The claims of one ordinal: the template's labels plus the set's `matchLabels`.
pub fn new_claims(set: &Value, ordinal: i64) -> Vec<Value> {
    let delete_with_set = set
        .at("/spec/persistentVolumeClaimRetentionPolicy/whenDeleted")
        .and_then(Value::as_str)
        == Some("Delete");
    claim_templates(set)
        .into_iter()
        .map(|t| {
            let mut claim_labels = t
                .at("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if let Some(m) = set
                .at("/spec/selector/matchLabels")
                .and_then(Value::as_object)
            {
                claim_labels.extend(m.clone());
            }
            let mut meta = json!({
                "name": claim_name(name(t), name(set), ordinal),
                "namespace": namespace(set),
            });
            if !claim_labels.is_empty() {
                meta["labels"] = Value::Object(claim_labels);
            }
            if let Some(a) = t.at("/metadata/annotations") {
                meta["annotations"] = a.clone();
            }
            if delete_with_set {
                meta["ownerReferences"] = json!([owner_ref(set, "apps/v1", "StatefulSet")]);
            }
            json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": meta,
                "spec": t.get("spec").cloned().unwrap_or_else(|| json!({})),
            })
        })
        .collect()
}

/// Counts of a set's pods, as its status reports them.
#[derive(Debug, Default, PartialEq)]
pub struct Counts {
    pub replicas: i64,
    pub ready: i64,
    pub available: i64,
    pub current: i64,
    pub updated: i64,
}

pub fn count(
    pods: &[Arc<Value>],
    current_revision: &str,
    update_revision: &str,
    min_ready: i64,
) -> (Counts, Option<Duration>) {
    let now = now();
    let mut c = Counts::default();
    let mut wait: Option<Duration> = None;
    for pod in pods {
        c.replicas += 1;
        if running_and_ready(pod) {
            c.ready += 1;
            let (available, until) = pod_available(pod, min_ready, now);
            if available {
                c.available += 1;
            }
            if let Some(w) = until {
                wait = Some(wait.map_or(w, |x| x.min(w)));
            }
        }
        if !is_deleting(pod) {
            if pod_revision(pod) == current_revision {
                c.current += 1;
            }
            if pod_revision(pod) == update_revision {
                c.updated += 1;
            }
        }
    }
    (c, wait)
}

impl StatefulSetController {
    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, set_name) = split_key(&key);
        let Some(set) = self.cache.get(Kind::StatefulSet, ns, set_name) else {
            return Ok(None);
        };
        if is_deleting(&set)
            || set
                .at("/spec/selector")
                .and_then(Value::as_object)
                .is_none_or(|s| s.is_empty())
        {
            return Ok(None);
        }
        let pods = self.claim(&set).await?;
        let revisions = history::owned_revisions(&self.cache, &set);
        let update = match history::ensure(
            &*self.cluster,
            &set,
            ("apps/v1", "StatefulSet"),
            HASH_LABEL,
            &revisions,
        )
        .await?
        {
            Ensured::Revision(r, _) => r,
            Ensured::Collision => {
                let mut next = (*set).clone();
                next["status"]["collisionCount"] =
                    json!(int_at(&set, "/status/collisionCount").unwrap_or(0) + 1);
                self.cluster
                    .update_status(&Kind::StatefulSet.resource(), Some(ns), &next)
                    .await?;
                return Ok(None);
            }
        };
        let update_name = name(&update).to_string();
        let current = set
            .at("/status/currentRevision")
            .and_then(Value::as_str)
            .and_then(|c| revisions.iter().find(|r| name(r) == c))
            .map(|r| (**r).clone())
            .unwrap_or_else(|| update.clone());
        let current_name = name(&current).to_string();
        let current_template = history::template_of(&current)
            .unwrap_or_else(|| set.at("/spec/template").cloned().unwrap_or_default());
        self.manage(
            &set,
            &pods,
            (&current_template, &current_name),
            &update_name,
        )
        .await?;
        let mut keep: HashSet<String> = pods.iter().map(|p| pod_revision(p).to_string()).collect();
        keep.insert(current_name.clone());
        keep.insert(update_name.clone());
        let mut all_revisions = revisions.clone();
        if !all_revisions.iter().any(|r| name(r) == update_name) {
            all_revisions.push(Arc::new(update.clone()));
        }
        history::truncate(
            &*self.cluster,
            &all_revisions,
            &keep,
            int_at(&set, "/spec/revisionHistoryLimit").unwrap_or(10),
        )
        .await?;
        self.update_status(&set, &pods, &current_name, &update_name)
            .await
    }

    /// The pods this set controls, after adopting orphans that match and are named as its
    /// members, and releasing pods that stopped matching.
    async fn claim(&self, set: &Value) -> client::Result<Vec<Arc<Value>>> {
        let set_uid = uid(set);
        let selector = set.at("/spec/selector");
        let pods_res = Kind::Pod.resource();
        let mut owned = Vec::new();
        for pod in self.cache.list(Kind::Pod, namespace(set)) {
            let matches = selector_matches(selector, labels(&pod));
            match controller_uid(&pod) {
                Some(u) if u == set_uid => {
                    if matches {
                        owned.push(pod);
                    } else {
                        release(&*self.cluster, &pods_res, &pod, set_uid).await?;
                    }
                }
                None if matches
                    && !is_deleting(&pod)
                    && ordinal_of(name(set), name(&pod)).is_some() =>
                {
                    let owner = owner_ref(set, "apps/v1", "StatefulSet");
                    if let Some(p) = adopt(&*self.cluster, &pods_res, &pod, owner).await? {
                        owned.push(Arc::new(p));
                    }
                }
                _ => {}
            }
        }
        Ok(owned)
    }

    async fn event(&self, set: &Value, kind: &str, reason: &str, message: &str) {
        crate::informer::record_event(
            &*self.cluster,
            set,
            ("apps/v1", "StatefulSet"),
            "statefulset-controller",
            kind,
            reason,
            message,
        )
        .await;
    }

    async fn create_pod(
        &self,
        set: &Value,
        template: &Value,
        ordinal: i64,
        revision: &str,
    ) -> client::Result<()> {
        let ns = namespace(set);
        for claim in new_claims(set, ordinal) {
            match self
                .cluster
                .create(&Kind::PersistentVolumeClaim.resource(), Some(ns), &claim)
                .await
            {
                Ok(_) => {
                    self.event(
                        set,
                        "Normal",
                        "SuccessfulCreate",
                        &format!(
                            "create Claim {} Pod {}-{ordinal} in StatefulSet {} success",
                            name(&claim),
                            name(set),
                            name(set)
                        ),
                    )
                    .await
                }
                Err(e) if e.reason == "AlreadyExists" => {}
                Err(e) => return Err(e),
            }
        }
        let pod = new_pod(set, template, ordinal, revision);
        match self
            .cluster
            .create(&Kind::Pod.resource(), Some(ns), &pod)
            .await
        {
            Ok(_) => {
                self.event(
                    set,
                    "Normal",
                    "SuccessfulCreate",
                    &format!(
                        "create Pod {} in StatefulSet {} successful",
                        name(&pod),
                        name(set)
                    ),
                )
                .await;
                Ok(())
            }
            // The cache has not seen it yet.
            Err(e) if e.reason == "AlreadyExists" => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn delete_pod(&self, set: &Value, pod: &Value) -> client::Result<()> {
        ignore_not_found(
            self.cluster
                .delete(
                    &Kind::Pod.resource(),
                    Some(namespace(pod)),
                    name(pod),
                    &DeleteParams {
                        precondition_uid: Some(uid(pod).to_string()),
                        ..Default::default()
                    },
                )
                .await,
        )?;
        self.event(
            set,
            "Normal",
            "SuccessfulDelete",
            &format!(
                "delete Pod {} in StatefulSet {} successful",
                name(pod),
                name(set)
            ),
        )
        .await;
        Ok(())
    }

    /// One step towards the wanted pods; with `OrderedReady`, it stops at the first pod that is
    /// not yet Running and Ready, and does one creation or deletion at a time.
    async fn manage(
        &self,
        set: &Value,
        pods: &[Arc<Value>],
        (current_template, current_revision): (&Value, &str),
        update_revision: &str,
    ) -> client::Result<()> {
        let replicas = int_at(set, "/spec/replicas").unwrap_or(1).max(0);
        let start = int_at(set, "/spec/ordinals/start").unwrap_or(0).max(0);
        let monotonic =
            set.at("/spec/podManagementPolicy").and_then(Value::as_str) != Some("Parallel");
        let strategy = set
            .at("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate");
        let rolling = strategy == "RollingUpdate";
        let partition = if rolling {
            int_at(set, "/spec/updateStrategy/rollingUpdate/partition")
                .unwrap_or(0)
                .max(0)
        } else {
            0
        };
        let update_template = set.at("/spec/template").cloned().unwrap_or_default();
        let mut slots: BTreeMap<i64, &Value> = BTreeMap::new();
        let mut condemned: Vec<(i64, &Value)> = Vec::new();
        for pod in pods {
            let Some(ord) = ordinal_of(name(set), name(pod)) else {
                continue;
            };
            if (start..start + replicas).contains(&ord) {
                slots.insert(ord, pod);
            } else {
                condemned.push((ord, pod));
            }
        }
        condemned.sort_by_key(|(ord, _)| std::cmp::Reverse(*ord));

        for ord in start..start + replicas {
            match slots.get(&ord) {
                None => {
                    let (template, revision) = if rolling
                        && current_revision != update_revision
                        && ord - start < partition
                    {
                        (current_template, current_revision)
                    } else {
                        (&update_template, update_revision)
                    };
                    self.create_pod(set, template, ord, revision).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(pod) if finished(pod) && !is_deleting(pod) => {
                    self.delete_pod(set, pod).await?;
                    if monotonic {
                        return Ok(());
                    }
                }
                Some(pod) if monotonic && (is_deleting(pod) || !running_and_ready(pod)) => {
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        let first_unhealthy_condemned = condemned
            .iter()
            .filter(|(_, p)| !running_and_ready(p))
            .map(|(ord, _)| *ord)
            .min();
        for (ord, pod) in &condemned {
            if is_deleting(pod) {
                if monotonic {
                    return Ok(());
                }
                continue;
            }
            if monotonic && !running_and_ready(pod) && Some(*ord) != first_unhealthy_condemned {
                return Ok(());
            }
            self.delete_pod(set, pod).await?;
            if monotonic {
                return Ok(());
            }
        }
        if !rolling {
            return Ok(());
        }
        for ord in (start + partition..start + replicas).rev() {
            let Some(pod) = slots.get(&ord) else {
                continue;
            };
            if pod_revision(pod) != update_revision && !is_deleting(pod) {
                self.delete_pod(set, pod).await?;
                return Ok(());
            }
            if !running_and_ready(pod) {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn update_status(
        &self,
        set: &Value,
        pods: &[Arc<Value>],
        current_revision: &str,
        update_revision: &str,
    ) -> SyncResult {
        let min_ready = int_at(set, "/spec/minReadySeconds").unwrap_or(0);
        let (mut counts, wait) = count(pods, current_revision, update_revision, min_ready);
        let rolling = set
            .at("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            .unwrap_or("RollingUpdate")
            == "RollingUpdate";
        let mut current_revision = current_revision;
        if rolling && counts.updated == counts.replicas && counts.ready == counts.replicas {
            counts.current = counts.updated;
            current_revision = update_revision;
        }
        let mut status = Map::new();
        status.insert("observedGeneration".into(), json!(generation(set)));
        status.insert("replicas".into(), json!(counts.replicas));
        if counts.ready > 0 {
            status.insert("readyReplicas".into(), json!(counts.ready));
        }
        if counts.current > 0 {
            status.insert("currentReplicas".into(), json!(counts.current));
        }
        if counts.updated > 0 {
            status.insert("updatedReplicas".into(), json!(counts.updated));
        }
        status.insert("availableReplicas".into(), json!(counts.available));
        status.insert("currentRevision".into(), json!(current_revision));
        status.insert("updateRevision".into(), json!(update_revision));
        status.insert(
            "collisionCount".into(),
            json!(int_at(set, "/status/collisionCount").unwrap_or(0)),
        );
        if let Some(c) = set.at("/status/conditions") {
            status.insert("conditions".into(), c.clone());
        }
        let status = Value::Object(status);
        if set.get("status") != Some(&status) {
            let mut next = set.clone();
            next["status"] = status;
            ignore_not_found(
                self.cluster
                    .update_status(&Kind::StatefulSet.resource(), Some(namespace(set)), &next)
                    .await,
            )?;
        }
        Ok(wait)
    }
}

fn ignore_not_found<T>(result: client::Result<T>) -> client::Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"]}}],
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "i"}],
                        "volumes": [{"name": "data", "emptyDir": {}}]}},
            },
        })
    }

    #[test]
    fn ordinals_parse_only_exact_member_names() {
        assert_eq!(ordinal_of("web", "web-0"), Some(0));
        assert_eq!(ordinal_of("web", "web-12"), Some(12));
        assert_eq!(ordinal_of("web", "web-x"), None);
        assert_eq!(ordinal_of("web", "web-"), None);
        assert_eq!(ordinal_of("web", "webby-1"), None);
        assert_eq!(ordinal_of("web", "web-1-2"), None);
    }

    #[test]
    fn pods_carry_identity_and_claims() {
        let s = set();
        let pod = new_pod(&s, &s["spec"]["template"], 2, "web-abc");
        assert_eq!(pod["metadata"]["name"], "web-2");
        let l = &pod["metadata"]["labels"];
        assert_eq!(l[POD_NAME_LABEL], "web-2");
        assert_eq!(l[POD_INDEX_LABEL], "2");
        assert_eq!(l[REVISION_LABEL], "web-abc");
        assert_eq!(l["app"], "web");
        assert_eq!(pod["spec"]["hostname"], "web-2");
        assert_eq!(pod["spec"]["subdomain"], "web");
        let volumes = pod["spec"]["volumes"].as_array().unwrap();
        assert_eq!(volumes.len(), 1);
        assert_eq!(
            volumes[0]["persistentVolumeClaim"]["claimName"],
            "data-web-2"
        );
        let claims = new_claims(&s, 2);
        assert_eq!(claims[0]["metadata"]["name"], "data-web-2");
        assert_eq!(claims[0]["metadata"]["labels"]["app"], "web");
        assert!(claims[0]["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn counts_follow_revisions_and_readiness() {
        let pod = |rev: &str, ready: bool| {
            Arc::new(json!({"metadata": {"labels": {REVISION_LABEL: rev}},
                "status": {"phase": "Running", "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]}}))
        };
        let pods = [pod("a", true), pod("b", true), pod("b", false)];
        let (c, _) = count(&pods, "a", "b", 0);
        assert_eq!(
            c,
            Counts {
                replicas: 3,
                ready: 2,
                available: 2,
                current: 1,
                updated: 2
            }
        );
    }
}
