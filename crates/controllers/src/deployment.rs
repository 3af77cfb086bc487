//! The Deployment controller: owns one ReplicaSet per pod template (named after the template's
//! hash), moves replicas from old ReplicaSets to the new one by the RollingUpdate or Recreate
//! strategy, scales, keeps `revisionHistoryLimit` old ReplicaSets, and reports progress in the
//! status and conditions the way `kubectl rollout status` reads them.

use client::JsonAt;
use std::collections::HashSet;
use std::sync::Arc;

use client::{Cluster, DeleteParams};
use serde_json::{Map, Value, json};

use crate::informer::{
    Cache, Event, Handler, Kind, SyncResult, WorkQueue, adopt, annotation, conditions_of,
    controller_key, controller_ref, controller_uid, creation, generation, int_at, is_deleting,
    key_of, labels, name, namespace, now, owner_ref, parse_time, release, selector_matches,
    set_condition, split_key, timestamp, uid,
};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const HASH_LABEL: &str = "pod-template-hash";

pub(crate) struct DeploymentController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
}

/// Maps changes of Deployments, ReplicaSets and pods to the Deployments to sync.
pub(crate) fn handler(queue: Arc<WorkQueue>) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| {
        let mut keys = HashSet::new();
        match ev.kind {
            Kind::Deployment => {
                if let Some(o) = ev.new.as_deref().or(ev.old.as_deref()) {
                    keys.insert(key_of(o));
                }
            }
            Kind::ReplicaSet => {
                for rs in [ev.old.as_deref(), ev.new.as_deref()].into_iter().flatten() {
                    if let Some(k) = controller_key(rs, "Deployment") {
                        keys.insert(k);
                    } else if controller_ref(rs).is_none() && ev.new.is_some() {
                        let l = labels(rs);
                        for d in cache.list(Kind::Deployment, namespace(rs)) {
                            if selector_matches(d.at("/spec/selector"), l) {
                                keys.insert(key_of(&d));
                            }
                        }
                    }
                }
            }
            Kind::Pod => {
                // Recreate waits for the old pods to go away.
                let gone = match (ev.old.as_deref(), ev.new.as_deref()) {
                    (Some(_), None) => true,
                    (Some(o), Some(n)) => crate::informer::phase(o) != crate::informer::phase(n),
                    _ => false,
                };
                if gone
                    && let Some(pod) = ev.old.as_deref()
                    && let Some(rs_key) = controller_key(pod, "ReplicaSet")
                {
                    let (ns, rs_name) = split_key(&rs_key);
                    if let Some(rs) = cache.get(Kind::ReplicaSet, ns, rs_name)
                        && let Some(k) = controller_key(&rs, "Deployment")
                    {
                        keys.insert(k);
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

/// FNV-1a, 32 bits.
fn fnv32a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in bytes {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

/// Serializes with object keys sorted, so equal templates hash equally.
fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                canonical(&m[*k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The `pod-template-hash` of a template: a hash of its content (and the collision count),
/// written with an alphabet of consonants and digits that cannot spell words.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut text = String::new();
    canonical(template, &mut text);
    if let Some(c) = collision_count {
        text.push_str(&c.to_string());
    }
    fnv32a(text.as_bytes())
        .to_string()
        .bytes()
        .map(|b| ALPHANUMS[b as usize % ALPHANUMS.len()] as char)
        .collect()
}

fn without_hash(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(l) = t
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        l.remove(HASH_LABEL);
        if l.is_empty()
            && let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.remove("labels");
        }
    }
    if let Some(m) = t.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("creationTimestamp");
        if m.is_empty() {
            t.as_object_mut().unwrap().remove("metadata");
        }
    }
    t
}

fn templates_equal(rs_template: Option<&Value>, d_template: Option<&Value>) -> bool {
    match (rs_template, d_template) {
        (Some(a), Some(b)) => without_hash(a) == without_hash(b),
        _ => false,
    }
}

/// An int-or-percent against a total: percentages round up or down as asked.
pub fn resolve_int_or_percent(v: Option<&Value>, total: i64, round_up: bool) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => {
            if let Some(p) = s.strip_suffix('%') {
                let p: i64 = p.trim().parse().unwrap_or(0);
                if round_up {
                    (p * total + 99) / 100
                } else {
                    p * total / 100
                }
            } else {
                s.parse().unwrap_or(0)
            }
        }
        _ => 0,
    }
}

fn replicas(obj: &Value) -> i64 {
    int_at(obj, "/spec/replicas").unwrap_or(1)
}

fn status_int(obj: &Value, field: &str) -> i64 {
    obj.at(&format!("/status/{field}"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

fn revision(rs: &Value) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn is_recreate(d: &Value) -> bool {
    d.at("/spec/strategy/type").and_then(Value::as_str) == Some("Recreate")
}

/// (maxSurge, maxUnavailable) of a deployment, resolved against its replicas.
fn fenceposts(d: &Value) -> (i64, i64) {
    if is_recreate(d) {
        return (0, 0);
    }
    let want = replicas(d);
    let ru = d.at("/spec/strategy/rollingUpdate");
    let surge = resolve_int_or_percent(
        ru.and_then(|r| r.get("maxSurge")).or(Some(&json!("25%"))),
        want,
        true,
    );
    let mut unavailable = resolve_int_or_percent(
        ru.and_then(|r| r.get("maxUnavailable"))
            .or(Some(&json!("25%"))),
        want,
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    (surge, unavailable.min(want))
}

/// What one sync learned about the new ReplicaSet, for the Progressing condition.
#[derive(Default)]
struct Outcome {
    created: bool,
    found: bool,
}

impl DeploymentController {
    pub async fn sync(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, d_name) = split_key(&key);
        let Some(d) = self.cache.get(Kind::Deployment, ns, d_name) else {
            return Ok(None);
        };
        let mut d = (*d).clone();
        if d.at("/spec/selector")
            .and_then(Value::as_object)
            .is_none_or(|s| s.is_empty())
        {
            return Ok(None);
        }
        let mut all = self.claim(&d).await?;
        let mut outcome = Outcome::default();
        if is_deleting(&d) {
            self.sync_status(&d, &all, None, &outcome).await?;
            return Ok(None);
        }
        let paused = d.at("/spec/paused") == Some(&json!(true));
        let new_idx = find_new(&d, &all);
        if paused || self.is_scaling_event(&d, &all) {
            let new_idx = self
                .new_replicaset(&mut d, &mut all, new_idx, false, &mut outcome)
                .await?;
            self.scale(&d, &mut all, new_idx).await?;
            if paused && new_idx.is_none_or(|i| replicas(&all[i]) == replicas(&d)) {
                self.cleanup(&d, &all, new_idx).await?;
            }
            self.sync_status(&d, &all, new_idx, &outcome).await?;
            return Ok(deadline_wait(&d));
        }
        if is_recreate(&d) {
            self.recreate(&mut d, &mut all, new_idx, &mut outcome)
                .await?;
        } else {
            self.rolling(&mut d, &mut all, new_idx, &mut outcome)
                .await?;
        }
        Ok(deadline_wait(&d))
    }

    /// The ReplicaSets this deployment controls, after adopting matching orphans and releasing
    /// those that stopped matching.
    async fn claim(&self, d: &Value) -> client::Result<Vec<Value>> {
        let ns = namespace(d);
        let d_uid = uid(d);
        let selector = d.at("/spec/selector");
        let mut out = Vec::new();
        let rs_res = Kind::ReplicaSet.resource();
        for rs in self.cache.list(Kind::ReplicaSet, ns) {
            let matches = selector_matches(selector, labels(&rs));
            match controller_uid(&rs) {
                Some(u) if u == d_uid => {
                    if matches {
                        out.push((*rs).clone());
                    } else if !is_deleting(d) {
                        release(&*self.cluster, &rs_res, &rs, d_uid).await?;
                    }
                }
                Some(_) => {}
                None if matches && !is_deleting(d) && !is_deleting(&rs) => {
                    let owner = owner_ref(d, "apps/v1", "Deployment");
                    if let Some(adopted) = adopt(&*self.cluster, &rs_res, &rs, owner).await? {
                        out.push(adopted);
                    }
                }
                None => {}
            }
        }
        out.sort_by(|a, b| creation(a).cmp(creation(b)).then(name(a).cmp(name(b))));
        Ok(out)
    }

    fn is_scaling_event(&self, d: &Value, all: &[Value]) -> bool {
        let want = replicas(d);
        all.iter().filter(|rs| replicas(rs) > 0).any(|rs| {
            annotation(rs, DESIRED_REPLICAS)
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|v| v != want)
        })
    }

    /// Finds (or, with `create`, creates) the ReplicaSet of the current template, bringing its
    /// revision and annotations up to date; returns its index in `all`.
    async fn new_replicaset(
        &self,
        d: &mut Value,
        all: &mut Vec<Value>,
        existing: Option<usize>,
        create: bool,
        outcome: &mut Outcome,
    ) -> client::Result<Option<usize>> {
        let ns = namespace(d).to_string();
        let max_old = all
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != existing)
            .map(|(_, rs)| revision(rs))
            .max()
            .unwrap_or(0);
        let want = replicas(d);
        let (surge, _) = fenceposts(d);
        let rs_res = Kind::ReplicaSet.resource();
        let idx = if let Some(i) = existing {
            let rs = &all[i];
            let mut next = rs.clone();
            let mut changed = false;
            if revision(rs) <= max_old {
                set_annotation(&mut next, REVISION, &(max_old + 1).to_string());
                changed = true;
            }
            let min_ready = d.at("/spec/minReadySeconds").cloned();
            if next.at("/spec/minReadySeconds") != min_ready.as_ref() {
                match min_ready {
                    Some(m) => next["spec"]["minReadySeconds"] = m,
                    None => {
                        next["spec"]
                            .as_object_mut()
                            .unwrap()
                            .remove("minReadySeconds");
                    }
                }
                changed = true;
            }
            if annotation(rs, DESIRED_REPLICAS).is_none() || annotation(rs, MAX_REPLICAS).is_none()
            {
                set_annotation(&mut next, DESIRED_REPLICAS, &want.to_string());
                set_annotation(&mut next, MAX_REPLICAS, &(want + surge).to_string());
                changed = true;
            }
            if changed {
                all[i] = self.cluster.update(&rs_res, Some(&ns), &next).await?;
            }
            if !conditions_of(d)
                .iter()
                .any(|c| c.get("type") == Some(&json!("Progressing")))
            {
                outcome.found = true;
            }
            i
        } else if create {
            let collision = int_at(d, "/status/collisionCount");
            let template = d.at("/spec/template").cloned().unwrap_or_default();
            let hash = template_hash(&template, collision);
            let mut template = template;
            template["metadata"]["labels"][HASH_LABEL] = json!(hash);
            let mut selector = d.at("/spec/selector").cloned().unwrap_or_default();
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let mut rs_labels = template.at("/metadata/labels").cloned().unwrap_or_default();
            rs_labels[HASH_LABEL] = json!(hash);
            let mut annotations = Map::new();
            if let Some(a) = d.at("/metadata/annotations").and_then(Value::as_object) {
                for (k, v) in a {
                    if k != "kubectl.kubernetes.io/last-applied-configuration"
                        && k != REVISION
                        && k != "deployment.kubernetes.io/revision-history"
                    {
                        annotations.insert(k.clone(), v.clone());
                    }
                }
            }
            annotations.insert(REVISION.into(), json!((max_old + 1).to_string()));
            annotations.insert(DESIRED_REPLICAS.into(), json!(want.to_string()));
            annotations.insert(MAX_REPLICAS.into(), json!((want + surge).to_string()));
            let initial = if is_recreate(d) {
                want
            } else {
                let current: i64 = all.iter().map(replicas).sum();
                (want + surge - current).max(0).min(want)
            };
            let mut spec = json!({
                "replicas": initial,
                "selector": selector,
                "template": template,
            });
            if let Some(m) = d.at("/spec/minReadySeconds") {
                spec["minReadySeconds"] = m.clone();
            }
            let rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": format!("{}-{}", name(d), hash),
                    "namespace": ns,
                    "labels": rs_labels,
                    "annotations": annotations,
                    "ownerReferences": [owner_ref(d, "apps/v1", "Deployment")],
                },
                "spec": spec,
            });
            match self.cluster.create(&rs_res, Some(&ns), &rs).await {
                Ok(created) => {
                    if initial > 0 {
                        self.event(
                            d,
                            "Normal",
                            "ScalingReplicaSet",
                            &format!(
                                "Scaled up replica set {} from 0 to {initial}",
                                name(&created)
                            ),
                        )
                        .await;
                    }
                    outcome.created = true;
                    all.push(created);
                    all.len() - 1
                }
                Err(e) if e.reason == "AlreadyExists" => {
                    let live = self
                        .cluster
                        .get(&rs_res, Some(&ns), &format!("{}-{}", name(d), hash))
                        .await?;
                    let ours = controller_uid(&live) == Some(uid(d))
                        && templates_equal(live.at("/spec/template"), d.at("/spec/template"));
                    if !ours {
                        // A different template hashed to the same name: try the next hash.
                        let mut next = d.clone();
                        next["status"]["collisionCount"] = json!(collision.unwrap_or(0) + 1);
                        self.cluster
                            .update_status(&Kind::Deployment.resource(), Some(&ns), &next)
                            .await?;
                    }
                    return Err(e);
                }
                Err(e) => return Err(e),
            }
        } else {
            return Ok(None);
        };
        let rev = annotation(&all[idx], REVISION).unwrap_or("0").to_string();
        if annotation(d, REVISION) != Some(rev.as_str()) {
            let mut next = d.clone();
            set_annotation(&mut next, REVISION, &rev);
            *d = self
                .cluster
                .update(&Kind::Deployment.resource(), Some(&ns), &next)
                .await?;
        }
        Ok(Some(idx))
    }

    async fn event(&self, d: &Value, kind: &str, reason: &str, message: &str) {
        crate::informer::record_event(
            &*self.cluster,
            d,
            ("apps/v1", "Deployment"),
            "deployment-controller",
            kind,
            reason,
            message,
        )
        .await;
    }

    /// Sets a ReplicaSet's size and the deployment's sizes in its annotations; returns whether
    /// the size changed.
    async fn scale_rs(&self, d: &Value, rs: &mut Value, to: i64) -> client::Result<bool> {
        let want = replicas(d);
        let (surge, _) = fenceposts(d);
        let desired = want.to_string();
        let max = (want + surge).to_string();
        let resize = replicas(rs) != to;
        if !resize
            && annotation(rs, DESIRED_REPLICAS) == Some(desired.as_str())
            && annotation(rs, MAX_REPLICAS) == Some(max.as_str())
        {
            return Ok(false);
        }
        let from = replicas(rs);
        let mut next = rs.clone();
        next["spec"]["replicas"] = json!(to);
        set_annotation(&mut next, DESIRED_REPLICAS, &desired);
        set_annotation(&mut next, MAX_REPLICAS, &max);
        *rs = self
            .cluster
            .update(&Kind::ReplicaSet.resource(), Some(namespace(rs)), &next)
            .await?;
        if resize {
            let direction = if to > from { "up" } else { "down" };
            self.event(
                d,
                "Normal",
                "ScalingReplicaSet",
                &format!(
                    "Scaled {direction} replica set {} from {from} to {to}",
                    name(rs)
                ),
            )
            .await;
        }
        Ok(resize)
    }

    /// Scaling without a rollout: one active ReplicaSet takes the new size; several share the
    /// change in proportion to their sizes.
    async fn scale(
        &self,
        d: &Value,
        all: &mut [Value],
        new_idx: Option<usize>,
    ) -> client::Result<()> {
        let want = replicas(d);
        let active: Vec<usize> = (0..all.len()).filter(|i| replicas(&all[*i]) > 0).collect();
        if active.len() <= 1 {
            let target = active
                .first()
                .copied()
                .or(new_idx)
                .or(all.len().checked_sub(1));
            if let Some(t) = target {
                self.scale_rs(d, &mut all[t], want).await?;
            }
            return Ok(());
        }
        if let Some(n) = new_idx
            && replicas(&all[n]) == want
            && status_int(&all[n], "availableReplicas") >= want
        {
            for i in active {
                if i != n {
                    self.scale_rs(d, &mut all[i], 0).await?;
                }
            }
            return Ok(());
        }
        let (surge, _) = fenceposts(d);
        let allowed = want + surge;
        let current: i64 = active.iter().map(|i| replicas(&all[*i])).sum();
        let diff = allowed - current;
        let mut sizes: Vec<(usize, i64)> =
            active.iter().map(|i| (*i, replicas(&all[*i]))).collect();
        if diff != 0 {
            // Largest first, newest first among equals.
            sizes.sort_by(|a, b| b.1.cmp(&a.1).then(b.0.cmp(&a.0)));
            let mut left = diff;
            let mut targets: Vec<(usize, i64)> = Vec::new();
            for (i, size) in &sizes {
                let share = if current > 0 {
                    size * diff / current
                } else {
                    0
                };
                let share = if diff > 0 {
                    share.min(left)
                } else {
                    share.max(left)
                };
                left -= share;
                targets.push((*i, (size + share).max(0)));
            }
            if left != 0
                && let Some(first) = targets.first_mut()
            {
                first.1 = (first.1 + left).max(0);
            }
            sizes = targets;
        }
        for (i, to) in sizes {
            self.scale_rs(d, &mut all[i], to).await?;
        }
        Ok(())
    }

    async fn rolling(
        &self,
        d: &mut Value,
        all: &mut Vec<Value>,
        new_idx: Option<usize>,
        outcome: &mut Outcome,
    ) -> client::Result<()> {
        let new_idx = self
            .new_replicaset(d, all, new_idx, true, outcome)
            .await?
            .expect("created");
        let want = replicas(d);
        let (surge, unavailable) = fenceposts(d);
        // Scale the new ReplicaSet up within the surge.
        let new_size = replicas(&all[new_idx]);
        let target = if new_size > want {
            want
        } else {
            let current: i64 = all.iter().map(replicas).sum();
            let room = (want + surge - current).max(0);
            new_size + room.min(want - new_size)
        };
        let mut scaled = false;
        if target != new_size {
            scaled = self.scale_rs(d, &mut all[new_idx], target).await?;
        }
        if !scaled {
            scaled = self.scale_down_old(d, all, new_idx, unavailable).await?;
        }
        let status = self.sync_status(d, all, Some(new_idx), outcome).await?;
        if !scaled && complete(d, &status) {
            self.cleanup(d, all, Some(new_idx)).await?;
        }
        Ok(())
    }

    async fn scale_down_old(
        &self,
        d: &Value,
        all: &mut [Value],
        new_idx: usize,
        max_unavailable: i64,
    ) -> client::Result<bool> {
        let olds: Vec<usize> = (0..all.len())
            .filter(|i| *i != new_idx && replicas(&all[*i]) > 0)
            .collect();
        if olds.is_empty() {
            return Ok(false);
        }
        let want = replicas(d);
        let all_pods: i64 = all.iter().map(replicas).sum();
        let min_available = want - max_unavailable;
        let new_unavailable =
            replicas(&all[new_idx]) - status_int(&all[new_idx], "availableReplicas");
        let mut max_down = all_pods - min_available - new_unavailable;
        if max_down <= 0 {
            return Ok(false);
        }
        let mut total = 0;
        // Unhealthy old replicas go first, oldest ReplicaSets first.
        for &i in &olds {
            if max_down <= 0 {
                break;
            }
            let size = replicas(&all[i]);
            let unhealthy = (size - status_int(&all[i], "availableReplicas")).max(0);
            let down = unhealthy.min(max_down);
            if down > 0 {
                self.scale_rs(d, &mut all[i], size - down).await?;
                max_down -= down;
                total += down;
            }
        }
        // Then available ones, keeping the minimum available.
        let available: i64 = all
            .iter()
            .map(|rs| status_int(rs, "availableReplicas"))
            .sum();
        let mut budget = (available - min_available).min(max_down.max(0));
        for &i in &olds {
            if budget <= 0 {
                break;
            }
            let size = replicas(&all[i]);
            let down = size.min(budget);
            if down > 0 {
                self.scale_rs(d, &mut all[i], size - down).await?;
                budget -= down;
                total += down;
            }
        }
        Ok(total > 0)
    }

    async fn recreate(
        &self,
        d: &mut Value,
        all: &mut Vec<Value>,
        new_idx: Option<usize>,
        outcome: &mut Outcome,
    ) -> client::Result<()> {
        let mut scaled = false;
        for (i, rs) in all.iter_mut().enumerate() {
            if Some(i) != new_idx && replicas(rs) > 0 {
                scaled |= self.scale_rs(d, rs, 0).await?;
            }
        }
        if scaled {
            self.sync_status(d, all, new_idx, outcome).await?;
            return Ok(());
        }
        let old_uids: HashSet<&str> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != new_idx)
            .map(|(_, rs)| uid(rs))
            .collect();
        let old_running = self.cache.list(Kind::Pod, namespace(d)).iter().any(|p| {
            controller_uid(p).is_some_and(|u| old_uids.contains(u))
                && !matches!(crate::informer::phase(p), "Succeeded" | "Failed")
        });
        if old_running {
            self.sync_status(d, all, new_idx, outcome).await?;
            return Ok(());
        }
        let new_idx = self
            .new_replicaset(d, all, new_idx, true, outcome)
            .await?
            .expect("created");
        let want = replicas(d);
        self.scale_rs(d, &mut all[new_idx], want).await?;
        let status = self.sync_status(d, all, Some(new_idx), outcome).await?;
        if complete(d, &status) {
            self.cleanup(d, all, Some(new_idx)).await?;
        }
        Ok(())
    }

    /// Deletes the oldest unused ReplicaSets beyond `revisionHistoryLimit`.
    async fn cleanup(
        &self,
        d: &Value,
        all: &[Value],
        new_idx: Option<usize>,
    ) -> client::Result<()> {
        let Some(limit) = int_at(d, "/spec/revisionHistoryLimit") else {
            return Ok(());
        };
        let mut unused: Vec<&Value> = all
            .iter()
            .enumerate()
            .filter(|(i, rs)| {
                Some(*i) != new_idx
                    && replicas(rs) == 0
                    && status_int(rs, "replicas") == 0
                    && !is_deleting(rs)
            })
            .map(|(_, rs)| rs)
            .collect();
        if unused.len() as i64 <= limit {
            return Ok(());
        }
        unused.sort_by(|a, b| {
            revision(a)
                .cmp(&revision(b))
                .then(creation(a).cmp(creation(b)))
        });
        let excess = unused.len() - limit.max(0) as usize;
        for rs in unused.into_iter().take(excess) {
            let params = DeleteParams {
                precondition_uid: Some(uid(rs).to_string()),
                ..Default::default()
            };
            match self
                .cluster
                .delete(
                    &Kind::ReplicaSet.resource(),
                    Some(namespace(rs)),
                    name(rs),
                    &params,
                )
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes the status computed from the ReplicaSets; returns it.
    async fn sync_status(
        &self,
        d: &Value,
        all: &[Value],
        new_idx: Option<usize>,
        outcome: &Outcome,
    ) -> client::Result<Value> {
        let want = replicas(d);
        let (_, max_unavailable) = fenceposts(d);
        let sum = |f: &str| -> i64 { all.iter().map(|rs| status_int(rs, f)).sum() };
        let total = sum("replicas");
        let updated = new_idx.map_or(0, |i| status_int(&all[i], "replicas"));
        let ready = sum("readyReplicas");
        let available = sum("availableReplicas");
        let mut status = Map::new();
        status.insert("observedGeneration".into(), json!(generation(d)));
        status.insert("replicas".into(), json!(total));
        status.insert("updatedReplicas".into(), json!(updated));
        status.insert("readyReplicas".into(), json!(ready));
        status.insert("availableReplicas".into(), json!(available));
        // Unavailable counts against the ReplicaSets' sizes, so a surge shows up in it.
        let sized: i64 = all.iter().map(replicas).sum();
        status.insert(
            "unavailableReplicas".into(),
            json!((sized - available).max(0)),
        );
        if let Some(c) = d.at("/status/collisionCount") {
            status.insert("collisionCount".into(), c.clone());
        }
        // Zero counts are left out, as upstream's JSON omits them.
        for f in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ] {
            if status.get(f) == Some(&json!(0)) {
                status.remove(f);
            }
        }
        let mut conditions = conditions_of(d);
        if available >= want - max_unavailable {
            set_condition(
                &mut conditions,
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                true,
            );
        } else {
            set_condition(
                &mut conditions,
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                true,
            );
        }
        let probe = Value::Object(status.clone());
        let paused = d.at("/spec/paused") == Some(&json!(true));
        let progressing_reason = conditions
            .iter()
            .find(|c| c.get("type") == Some(&json!("Progressing")))
            .and_then(|c| c.get("reason"))
            .and_then(Value::as_str)
            .map(String::from);
        if paused {
            set_condition(
                &mut conditions,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                true,
            );
        } else if progressing_reason.as_deref() == Some("DeploymentPaused") {
            set_condition(
                &mut conditions,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                true,
            );
        } else if let Some(i) = new_idx {
            let rs_name = name(&all[i]);
            if outcome.created {
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    &format!("Created new replica set \"{rs_name}\""),
                    true,
                );
            } else if complete(d, &probe) {
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    true,
                );
            } else if outcome.found {
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    &format!("Found new replica set \"{rs_name}\""),
                    true,
                );
            } else if progressed(d, &probe) {
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &format!("ReplicaSet \"{rs_name}\" is progressing."),
                    true,
                );
                // Progress restarts the deadline.
                if let Some(c) = conditions
                    .iter_mut()
                    .find(|c| c.get("type") == Some(&json!("Progressing")))
                {
                    c["lastUpdateTime"] = json!(timestamp(now()));
                }
            } else if deadline_passed(d) {
                set_condition(
                    &mut conditions,
                    "Progressing",
                    "False",
                    "ProgressDeadlineExceeded",
                    &format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                    true,
                );
            }
        }
        // Available first, Progressing second, as upstream lists them.
        conditions.sort_by_key(|c| match c.get("type").and_then(Value::as_str) {
            Some("Available") => 0,
            Some("Progressing") => 1,
            _ => 2,
        });
        status.insert("conditions".into(), Value::Array(conditions));
        let status = Value::Object(status);
        if d.get("status") != Some(&status) {
            let mut next = d.clone();
            next["status"] = status.clone();
            match self
                .cluster
                .update_status(&Kind::Deployment.resource(), Some(namespace(d)), &next)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(status)
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    if !obj["metadata"]["annotations"].is_object() {
        obj["metadata"]["annotations"] = json!({});
    }
    obj["metadata"]["annotations"][key] = json!(value);
}

/// The ReplicaSet whose template equals the deployment's (oldest first when several do).
fn find_new(d: &Value, all: &[Value]) -> Option<usize> {
    all.iter().position(|rs| {
        !is_deleting(rs) && templates_equal(rs.at("/spec/template"), d.at("/spec/template"))
    })
}

/// Every replica updated and available, and nothing else left.
fn complete(d: &Value, status: &Value) -> bool {
    let want = replicas(d);
    let get = |f: &str| status.get(f).and_then(Value::as_i64).unwrap_or(0);
    get("updatedReplicas") == want
        && get("replicas") == want
        && get("availableReplicas") == want
        && get("observedGeneration") >= generation(d)
}

/// How long until the rollout's progress deadline passes, while it is progressing.
fn deadline_wait(d: &Value) -> Option<std::time::Duration> {
    if d.at("/spec/paused") == Some(&json!(true)) {
        return None;
    }
    let deadline = int_at(d, "/spec/progressDeadlineSeconds")?;
    let cond = conditions_of(d)
        .into_iter()
        .find(|c| c.get("type") == Some(&json!("Progressing")))?;
    if cond.get("status") != Some(&json!("True"))
        || cond.get("reason") == Some(&json!("NewReplicaSetAvailable"))
    {
        return None;
    }
    let since = cond
        .get("lastUpdateTime")
        .and_then(Value::as_str)
        .and_then(parse_time)?;
    let left = (since.as_second() + deadline - now().as_second()).max(0);
    Some(std::time::Duration::from_secs(left as u64 + 1))
}

/// Whether a progressing rollout has made no progress for `progressDeadlineSeconds`.
fn deadline_passed(d: &Value) -> bool {
    deadline_wait(d).is_some_and(|w| w.as_secs() <= 1) && {
        let deadline = int_at(d, "/spec/progressDeadlineSeconds").unwrap_or(i64::MAX);
        conditions_of(d)
            .iter()
            .find(|c| c.get("type") == Some(&json!("Progressing")))
            .and_then(|c| c.get("lastUpdateTime"))
            .and_then(Value::as_str)
            .and_then(parse_time)
            .is_some_and(|t| now().as_second() - t.as_second() >= deadline)
    }
}

/// Whether the new status shows progress over the recorded one.
fn progressed(d: &Value, new: &Value) -> bool {
    let old = d.get("status").cloned().unwrap_or_default();
    let get = |v: &Value, f: &str| v.get(f).and_then(Value::as_i64).unwrap_or(0);
    let old_olds = get(&old, "replicas") - get(&old, "updatedReplicas");
    let new_olds = get(new, "replicas") - get(new, "updatedReplicas");
    get(new, "updatedReplicas") > get(&old, "updatedReplicas")
        || new_olds < old_olds
        || get(new, "readyReplicas") > get(&old, "readyReplicas")
        || get(new, "availableReplicas") > get(&old, "availableReplicas")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_as_upstream() {
        assert_eq!(resolve_int_or_percent(Some(&json!("25%")), 3, true), 1);
        assert_eq!(resolve_int_or_percent(Some(&json!("25%")), 3, false), 0);
        assert_eq!(resolve_int_or_percent(Some(&json!(2)), 3, false), 2);
    }

    #[test]
    fn hashes_are_stable_and_safe() {
        let t = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "n", "image": "nginx"}]}});
        let h = template_hash(&t, None);
        assert_eq!(h, template_hash(&t, None));
        assert_ne!(h, template_hash(&t, Some(1)));
        assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        assert!(!h.is_empty() && h.len() <= 10);
    }
}
