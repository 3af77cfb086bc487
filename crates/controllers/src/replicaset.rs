//! The ReplicaSet controller: keeps `spec.replicas` active pods that match the selector and are
//! controlled by the ReplicaSet, adopting matching orphans and releasing pods that stop matching,
//! and reports the counts in the status.

use client::JsonAt;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams};
use serde_json::{Map, Value, json};

use crate::informer::{
    Cache, Event, Expectations, Handler, Kind, SyncResult, WorkQueue, controller_key,
    controller_uid, deletion_order, generation, int_at, is_deleting, is_pod_active, is_pod_ready,
    key_of, labels, name, now, observe_pod_expectations, owner_ref, pod_available,
    pod_from_template, selector_matches, split_key, uid,
};

/// Pods created in one go at most; the batch grows 1, 2, 4, ... while creates succeed.
const BURST: usize = 500;

/// Which of the two replica-keeping kinds a controller manages: they differ only in their API
/// group and in the shape of their selector.
#[derive(Clone, Copy)]
pub(crate) struct Flavor {
    pub kind: Kind,
    pub kind_name: &'static str,
    pub api_version: &'static str,
}

pub(crate) const REPLICA_SET: Flavor = Flavor {
    kind: Kind::ReplicaSet,
    kind_name: "ReplicaSet",
    api_version: "apps/v1",
};

pub(crate) const REPLICATION_CONTROLLER: Flavor = Flavor {
    kind: Kind::ReplicationController,
    kind_name: "ReplicationController",
    api_version: "v1",
};

impl Flavor {
    /// The selector as a label selector: a ReplicationController's is a plain map of labels
    /// (its template's labels when unset).
    fn selector(&self, obj: &Value) -> Option<Value> {
        if self.kind == Kind::ReplicaSet {
            return obj.at("/spec/selector").cloned();
        }
        let map = obj
            .at("/spec/selector")
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
            .or_else(|| {
                obj.at("/spec/template/metadata/labels")
                    .and_then(Value::as_object)
            })?;
        Some(json!({"matchLabels": map}))
    }
}

pub(crate) struct ReplicaSetController {
    pub flavor: Flavor,
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
    pub expectations: Arc<Expectations>,
}

/// Maps changes of ReplicaSets and pods to the ReplicaSets to sync.
pub(crate) fn handler(
    flavor: Flavor,
    queue: Arc<WorkQueue>,
    expectations: Arc<Expectations>,
) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| match ev.kind {
        k if k == flavor.kind => {
            if let Some(o) = ev.new.as_deref().or(ev.old.as_deref()) {
                queue.add(key_of(o));
            }
        }
        Kind::Pod => {
            observe_pod_expectations(ev, flavor.kind_name, &expectations);
            let mut keys = HashSet::new();
            for pod in [ev.old.as_deref(), ev.new.as_deref()].into_iter().flatten() {
                if let Some(k) = controller_key(pod, flavor.kind_name) {
                    keys.insert(k);
                } else if crate::informer::controller_ref(pod).is_none() && ev.new.is_some() {
                    let l = labels(pod);
                    for rs in cache.list(flavor.kind, crate::informer::namespace(pod)) {
                        if selector_matches(flavor.selector(&rs).as_ref(), l) {
                            keys.insert(key_of(&rs));
                        }
                    }
                }
            }
            for k in keys {
                queue.add(k);
            }
        }
        _ => {}
    })
}

/// Whether the pod carries every label of the template with the same value.
fn fully_labeled(pod: &Value, template_labels: &Map<String, Value>) -> bool {
    let l = labels(pod);
    template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
}

impl ReplicaSetController {
    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, rs_name) = split_key(&key);
        let Some(rs) = self.cache.get(self.flavor.kind, ns, rs_name) else {
            self.expectations.forget(&key);
            return Ok(None);
        };
        let satisfied = self.expectations.satisfied(&key);
        let rs_uid = uid(&rs).to_string();
        let selector = self.flavor.selector(&rs);
        let selector = selector.as_ref();
        let deleting = is_deleting(&rs);
        let mut owned: Vec<Arc<Value>> = Vec::new();
        for pod in self.cache.list(Kind::Pod, ns) {
            if !is_pod_active(&pod) {
                continue;
            }
            match controller_uid(&pod) {
                Some(u) if u == rs_uid => {
                    if deleting || selector_matches(selector, labels(&pod)) {
                        owned.push(pod.clone());
                    } else {
                        self.release(&pod, &rs_uid).await?;
                    }
                }
                Some(_) => {}
                None if !deleting && selector_matches(selector, labels(&pod)) => {
                    if let Some(p) = self.adopt(&rs, &pod).await? {
                        owned.push(Arc::new(p));
                    }
                }
                None => {}
            }
        }
        let manage = if satisfied && !deleting {
            self.manage(&rs, &key, &owned).await
        } else {
            Ok(())
        };
        let requeue = self.update_status(&rs, &owned).await?;
        manage?;
        Ok(requeue)
    }

    async fn event(&self, rs: &Value, reason: &str, message: &str) {
        let component = if self.flavor.kind == Kind::ReplicaSet {
            "replicaset-controller"
        } else {
            "replication-controller"
        };
        crate::informer::record_event(
            &*self.cluster,
            rs,
            (self.flavor.api_version, self.flavor.kind_name),
            component,
            "Normal",
            reason,
            message,
        )
        .await;
    }

    async fn adopt(&self, rs: &Value, pod: &Value) -> client::Result<Option<Value>> {
        let owner = owner_ref(rs, self.flavor.api_version, self.flavor.kind_name);
        crate::informer::adopt(&*self.cluster, &Kind::Pod.resource(), pod, owner).await
    }

    async fn release(&self, pod: &Value, owner_uid: &str) -> client::Result<()> {
        crate::informer::release(&*self.cluster, &Kind::Pod.resource(), pod, owner_uid).await
    }

    async fn manage(&self, rs: &Value, key: &str, owned: &[Arc<Value>]) -> client::Result<()> {
        let want = int_at(rs, "/spec/replicas").unwrap_or(1).max(0) as usize;
        let ns = crate::informer::namespace(rs);
        let pods = Kind::Pod.resource();
        if owned.len() < want {
            let count = (want - owned.len()).min(BURST);
            self.expectations.expect(key, count as i64, 0);
            let template = rs.at("/spec/template").cloned().unwrap_or_default();
            let pod = pod_from_template(
                &template,
                ns,
                &format!("{}-", name(rs)),
                owner_ref(rs, self.flavor.api_version, self.flavor.kind_name),
                &Map::new(),
                &Map::new(),
            );
            let mut remaining = count;
            let mut batch = 1;
            while remaining > 0 {
                let n = batch.min(remaining);
                let results = futures::future::join_all((0..n).map(|_| async {
                    let created = self.cluster.create(&pods, Some(ns), &pod).await?;
                    self.event(
                        rs,
                        "SuccessfulCreate",
                        &format!("Created pod: {}", name(&created)),
                    )
                    .await;
                    Ok::<_, client::Error>(created)
                }))
                .await;
                remaining -= n;
                let failed: Vec<client::Error> =
                    results.into_iter().filter_map(Result::err).collect();
                if !failed.is_empty() {
                    // Pods never asked for, and failed creates, will not be observed.
                    self.expectations
                        .observed(key, (remaining + failed.len()) as i64, 0);
                    return Err(failed.into_iter().next().unwrap());
                }
                batch *= 2;
            }
        } else if owned.len() > want {
            let surplus = owned.len() - want;
            let mut victims: Vec<&Value> = owned.iter().map(|p| &**p).collect();
            victims.sort_by(|a, b| deletion_order(a, b));
            victims.truncate(surplus);
            self.expectations.expect(key, 0, surplus as i64);
            let params = DeleteParams::default();
            let results = futures::future::join_all(victims.iter().map(|p| async {
                let deleted = self
                    .cluster
                    .delete(&pods, Some(ns), name(p), &params)
                    .await?;
                self.event(rs, "SuccessfulDelete", &format!("Deleted pod: {}", name(p)))
                    .await;
                Ok::<_, client::Error>(deleted)
            }))
            .await;
            let mut first_err = None;
            for r in results {
                match r {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => self.expectations.observed(key, 0, 1),
                    Err(e) => {
                        self.expectations.observed(key, 0, 1);
                        first_err.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        Ok(())
    }

    async fn update_status(
        &self,
        rs: &Value,
        owned: &[Arc<Value>],
    ) -> client::Result<Option<Duration>> {
        let min_ready = int_at(rs, "/spec/minReadySeconds").unwrap_or(0);
        let template_labels = rs
            .at("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let now = now();
        let mut ready = 0;
        let mut available = 0;
        let mut labeled = 0;
        let mut requeue: Option<Duration> = None;
        for p in owned {
            if fully_labeled(p, &template_labels) {
                labeled += 1;
            }
            if is_pod_ready(p) {
                ready += 1;
            }
            let (avail, wait) = pod_available(p, min_ready, now);
            if avail {
                available += 1;
            }
            if let Some(w) = wait {
                requeue = Some(requeue.map_or(w, |r| r.min(w)));
            }
        }
        let mut status = Map::new();
        status.insert("replicas".into(), json!(owned.len()));
        if labeled > 0 {
            status.insert("fullyLabeledReplicas".into(), json!(labeled));
        }
        if ready > 0 {
            status.insert("readyReplicas".into(), json!(ready));
        }
        if available > 0 {
            status.insert("availableReplicas".into(), json!(available));
        }
        status.insert("observedGeneration".into(), json!(generation(rs)));
        if let Some(c) = rs.at("/status/conditions") {
            status.insert("conditions".into(), c.clone());
        }
        let status = Value::Object(status);
        if rs.get("status") != Some(&status) {
            let mut next = rs.clone();
            next["status"] = status;
            match self
                .cluster
                .update_status(
                    &self.flavor.kind.resource(),
                    Some(crate::informer::namespace(rs)),
                    &next,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(requeue)
    }
}
