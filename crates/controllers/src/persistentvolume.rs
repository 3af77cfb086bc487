//! The PersistentVolume binder, as kube-controller-manager's `persistentvolume-binder` runs it for
//! statically provisioned volumes: a volume without a claim is `Available`; a pending claim is
//! bound to the smallest available volume that fits it (same storage class, the requested access
//! modes and volume mode, enough capacity, matching the claim's selector), or to the volume it
//! names; both then report `Bound`. A bound volume whose claim is gone is `Released` (`Retain`,
//! `Recycle`) or deleted (`Delete`, as a provisioner would). Claims of classes that bind on first
//! consumer, and claims no volume fits, stay `Pending`: nothing provisions volumes here.

use std::sync::Arc;

use client::{Cluster, JsonAt, Resource};
use serde_json::{Value, json};

use crate::informer::{
    Cache, Event, Handler, Kind, SyncResult, WorkQueue, is_deleting, key_of, name, namespace,
    record_event, selector_matches, split_key, uid,
};
use crate::scheduler::parse_units;

/// The provisioner of classes whose volumes are only ever created by hand.
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// Sends volume keys (`/<name>`) and claim keys (`<namespace>/<name>`) to their queues.
pub(crate) fn handler(volumes: Arc<WorkQueue>, claims: Arc<WorkQueue>) -> Handler {
    Arc::new(move |cache: &Cache, ev: &Event| {
        let Some(obj) = ev.new.as_deref().or(ev.old.as_deref()) else {
            return;
        };
        match ev.kind {
            Kind::PersistentVolume => {
                volumes.add(key_of(obj));
                if let Some(claim) = claim_key(obj) {
                    claims.add(claim);
                }
                // A volume that is free again may fit a pending claim.
                if obj.at("/spec/claimRef").is_none() {
                    for claim in cache.all(Kind::PersistentVolumeClaim) {
                        if claim.at("/spec/volumeName").is_none() {
                            claims.add(key_of(&claim));
                        }
                    }
                }
            }
            Kind::PersistentVolumeClaim => {
                claims.add(key_of(obj));
                if let Some(volume) = obj.at("/spec/volumeName").and_then(Value::as_str) {
                    volumes.add(format!("/{volume}"));
                }
            }
            // A scheduled pod is the first consumer its claims may wait for.
            Kind::Pod => {
                let scheduled =
                    |pod: Option<&Value>| pod.is_some_and(|p| p.at("/spec/nodeName").is_some());
                if scheduled(ev.new.as_deref()) && !scheduled(ev.old.as_deref()) {
                    for claim in claims_of(obj) {
                        claims.add(format!("{}/{claim}", namespace(obj)));
                    }
                }
            }
            _ => {}
        }
    })
}

/// The claims a pod's volumes use.
fn claims_of(pod: &Value) -> impl Iterator<Item = &str> {
    pod.at("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.at("/persistentVolumeClaim/claimName")?.as_str())
}

fn claim_key(volume: &Value) -> Option<String> {
    let claim = volume.at("/spec/claimRef")?;
    Some(format!(
        "{}/{}",
        claim.at("/namespace")?.as_str()?,
        claim.at("/name")?.as_str()?
    ))
}

/// Whether the volume's `claimRef` names this claim (by uid, once the binder has set it).
fn claimed_by(volume: &Value, key: &str, claim: &Value) -> bool {
    let bound_uid = text(volume, "/spec/claimRef/uid");
    claim_key(volume).as_deref() == Some(key) && (bound_uid.is_empty() || bound_uid == uid(claim))
}

fn text<'a>(o: &'a Value, pointer: &str) -> &'a str {
    o.at(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn volume_mode(o: &Value) -> &str {
    match text(o, "/spec/volumeMode") {
        "" => "Filesystem",
        mode => mode,
    }
}

fn storage_class(claim: &Value) -> &str {
    match claim.at("/spec/storageClassName").and_then(Value::as_str) {
        Some(class) => class,
        None => text(
            claim,
            "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
        ),
    }
}

/// Whether a claim's selector selects the volume's labels; no selector, or an empty one, selects
/// every volume.
fn selects(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let non_empty = |field: &str| {
        selector.and_then(|s| s.get(field)).is_some_and(|v| {
            v.as_object().is_some_and(|m| !m.is_empty())
                || v.as_array().is_some_and(|a| !a.is_empty())
        })
    };
    let constrained = non_empty("matchLabels") || non_empty("matchExpressions");
    let empty = serde_json::Map::new();
    let labels = labels.and_then(Value::as_object).unwrap_or(&empty);
    !constrained || selector_matches(selector, labels)
}

/// How closely a volume is checked against a claim.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Any available volume: class, selector, modes and size.
    Any,
    /// The volume the claim names: class, modes and size.
    Named,
    /// A volume pre-bound to the claim through its `claimRef`: modes and size.
    PreBound,
}

/// The volume's capacity in bytes if it can hold the claim, else `None`.
fn fits(volume: &Value, claim: &Value, how: Match) -> Option<i64> {
    if is_deleting(volume)
        || (how != Match::PreBound
            && text(volume, "/spec/storageClassName") != storage_class(claim))
    {
        return None;
    }
    if volume_mode(volume) != volume_mode(claim) {
        return None;
    }
    let offered: Vec<&Value> = volume
        .at("/spec/accessModes")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let all_modes = claim
        .at("/spec/accessModes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .all(|mode| offered.contains(&mode));
    if !all_modes
        || (how == Match::Any
            && !selects(claim.at("/spec/selector"), volume.at("/metadata/labels")))
    {
        return None;
    }
    let capacity = parse_units(text(volume, "/spec/capacity/storage"))?;
    let requested = parse_units(text(claim, "/spec/resources/requests/storage")).unwrap_or(0);
    (capacity >= requested).then_some(capacity)
}

pub struct PersistentVolumeController {
    pub cluster: Arc<dyn Cluster>,
    pub cache: Arc<Cache>,
    /// Claims (uid and reason) already told why they wait, so each reason is recorded once.
    pub reported: std::sync::Mutex<std::collections::HashSet<(String, &'static str)>>,
}

/// What a claim's storage class says, if it names one.
enum Class {
    None,
    Missing,
    Found {
        provisioner: String,
        wait_for_consumer: bool,
    },
}

fn volumes() -> Resource {
    Kind::PersistentVolume.resource()
}

fn claims() -> Resource {
    Kind::PersistentVolumeClaim.resource()
}

impl PersistentVolumeController {
    /// Brings a volume's phase in line with its claim.
    pub async fn sync_volume(self: Arc<Self>, key: String) -> SyncResult {
        let (_, volume_name) = split_key(&key);
        let Some(volume) = self.cache.get(Kind::PersistentVolume, "", volume_name) else {
            return Ok(None);
        };
        if is_deleting(&volume) {
            return Ok(None);
        }
        let phase = match claim_key(&volume) {
            None => "Available",
            Some(claim_key) => {
                let (ns, claim_name) = split_key(&claim_key);
                let claim = self.cache.get(Kind::PersistentVolumeClaim, ns, claim_name);
                let bound_uid = text(&volume, "/spec/claimRef/uid");
                match claim {
                    Some(claim) if bound_uid.is_empty() || bound_uid == uid(&claim) => {
                        if text(&claim, "/spec/volumeName") == volume_name || !bound_uid.is_empty()
                        {
                            "Bound"
                        } else {
                            // Pre-bound by its author to a claim that has not taken it yet.
                            "Available"
                        }
                    }
                    _ if bound_uid.is_empty() => "Available",
                    _ => {
                        // The cache may lag: only a claim the API server no longer has is gone.
                        let live = self.cluster.get(&claims(), Some(ns), claim_name).await;
                        match live {
                            Ok(claim) if uid(&claim) == bound_uid => return Ok(None),
                            Err(e) if !e.is_not_found() => return Err(e),
                            _ => {}
                        }
                        if text(&volume, "/spec/persistentVolumeReclaimPolicy") == "Delete" {
                            return match self
                                .cluster
                                .delete(&volumes(), None, volume_name, &Default::default())
                                .await
                            {
                                Err(e) if !e.is_not_found() => Err(e),
                                _ => Ok(None),
                            };
                        }
                        "Released"
                    }
                }
            }
        };
        self.set_phase(&volumes(), None, &volume, phase).await
    }

    /// Binds a pending claim, or keeps a bound claim's status in line with its volume.
    pub async fn sync_claim(self: Arc<Self>, key: String) -> SyncResult {
        let (ns, claim_name) = split_key(&key);
        let Some(claim) = self.cache.get(Kind::PersistentVolumeClaim, ns, claim_name) else {
            // Forget what was reported to claims that are gone.
            let live: std::collections::HashSet<String> = self
                .cache
                .all(Kind::PersistentVolumeClaim)
                .iter()
                .map(|c| uid(c).to_owned())
                .collect();
            self.reported
                .lock()
                .expect("not poisoned")
                .retain(|(claim_uid, _)| live.contains(claim_uid));
            return Ok(None);
        };
        if is_deleting(&claim) {
            return Ok(None);
        }
        let wanted = text(&claim, "/spec/volumeName");
        if !wanted.is_empty() {
            let Some(volume) = self.cache.get(Kind::PersistentVolume, "", wanted) else {
                return self.set_phase(&claims(), Some(ns), &claim, "Lost").await;
            };
            if volume.at("/spec/claimRef").is_none() {
                if fits(&volume, &claim, Match::Named).is_none() {
                    self.report(
                        &claim,
                        "Warning",
                        "VolumeMismatch",
                        format!(
                            "Cannot bind to requested volume {wanted:?}: it does not fit the claim's storage class, access modes, volume mode or size"
                        ),
                    )
                    .await;
                    return self.set_phase(&claims(), Some(ns), &claim, "Pending").await;
                }
                self.claim_volume(&volume, &claim).await?;
                return Ok(None);
            }
            if !claimed_by(&volume, &key, &claim) {
                return Ok(None);
            }
            return self.finish_claim(&claim, &volume).await;
        }
        let class = self.class_of(&claim).await?;
        if matches!(
            class,
            Class::Found {
                wait_for_consumer: true,
                ..
            }
        ) && !self.consumed(&claim)
        {
            self.report(
                &claim,
                "Normal",
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding".into(),
            )
            .await;
            return self.set_phase(&claims(), Some(ns), &claim, "Pending").await;
        }
        // The smallest volume that fits; one pre-bound to this claim wins.
        let mut best: Option<(bool, i64, Arc<Value>)> = None;
        for volume in self.cache.all(Kind::PersistentVolume) {
            let free = match volume.at("/spec/claimRef") {
                None => Some(false),
                Some(_) if claimed_by(&volume, &key, &claim) => Some(true),
                Some(_) => None,
            };
            let Some(prebound) = free else {
                continue;
            };
            let how = if prebound {
                Match::PreBound
            } else {
                Match::Any
            };
            let Some(capacity) = fits(&volume, &claim, how) else {
                continue;
            };
            let better = match &best {
                None => true,
                Some((best_prebound, best_capacity, _)) => {
                    (prebound, -capacity) > (*best_prebound, -*best_capacity)
                }
            };
            if better {
                best = Some((prebound, capacity, volume));
            }
        }
        let Some((_, _, volume)) = best else {
            let (kind, reason, message) = match &class {
                Class::None => (
                    "Normal",
                    "FailedBinding",
                    "no persistent volumes available for this claim and no storage class is set"
                        .to_string(),
                ),
                Class::Missing => (
                    "Warning",
                    "ProvisioningFailed",
                    format!(
                        "storageclass.storage.k8s.io {:?} not found",
                        storage_class(&claim)
                    ),
                ),
                Class::Found { provisioner, .. } if provisioner != NO_PROVISIONER => (
                    "Normal",
                    "ExternalProvisioning",
                    format!(
                        "Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."
                    ),
                ),
                Class::Found { .. } => (
                    "Normal",
                    "FailedBinding",
                    "no persistent volumes available for this claim".to_string(),
                ),
            };
            self.report(&claim, kind, reason, message).await;
            return self.set_phase(&claims(), Some(ns), &claim, "Pending").await;
        };
        self.reported
            .lock()
            .expect("not poisoned")
            .retain(|(claim_uid, _)| claim_uid != uid(&claim));
        let volume = self.claim_volume(&volume, &claim).await?;
        let mut bound = (*claim).clone();
        bound["spec"]["volumeName"] = json!(name(&volume));
        let annotations = bound["metadata"]
            .as_object_mut()
            .map(|meta| meta.entry("annotations").or_insert_with(|| json!({})));
        if let Some(Value::Object(annotations)) = annotations {
            annotations.insert("pv.kubernetes.io/bind-completed".into(), json!("yes"));
            annotations.insert("pv.kubernetes.io/bound-by-controller".into(), json!("yes"));
        }
        let bound = self.cluster.update(&claims(), Some(ns), &bound).await?;
        self.finish_claim(&bound, &volume).await
    }

    /// The claim's storage class.
    async fn class_of(&self, claim: &Value) -> Result<Class, client::Error> {
        let class = storage_class(claim);
        if class.is_empty() {
            return Ok(Class::None);
        }
        let classes = Resource::new(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            "StorageClass",
            false,
        );
        match self.cluster.get(&classes, None, class).await {
            Ok(found) => Ok(Class::Found {
                provisioner: text(&found, "/provisioner").to_owned(),
                wait_for_consumer: text(&found, "/volumeBindingMode") == "WaitForFirstConsumer",
            }),
            Err(e) if e.is_not_found() => Ok(Class::Missing),
            Err(e) => Err(e),
        }
    }

    /// Whether a scheduled pod uses the claim.
    fn consumed(&self, claim: &Value) -> bool {
        self.cache
            .list(Kind::Pod, namespace(claim))
            .iter()
            .any(|pod| {
                pod.at("/spec/nodeName").is_some() && claims_of(pod).any(|c| c == name(claim))
            })
    }

    /// Records why a claim waits, once per claim and reason.
    async fn report(&self, claim: &Value, kind: &str, reason: &'static str, message: String) {
        let first = self
            .reported
            .lock()
            .expect("not poisoned")
            .insert((uid(claim).to_owned(), reason));
        if first {
            record_event(
                &*self.cluster,
                claim,
                ("v1", "PersistentVolumeClaim"),
                "persistentvolume-controller",
                kind,
                reason,
                &message,
            )
            .await;
        }
    }

    /// Points a volume's `claimRef` at the claim.
    async fn claim_volume(&self, volume: &Value, claim: &Value) -> Result<Value, client::Error> {
        let mut taken = volume.clone();
        taken["spec"]["claimRef"] = json!({
            "kind": "PersistentVolumeClaim",
            "apiVersion": "v1",
            "namespace": namespace(claim),
            "name": name(claim),
            "uid": uid(claim),
            "resourceVersion": text(claim, "/metadata/resourceVersion"),
        });
        if let Some(meta) = taken["metadata"].as_object_mut() {
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(annotations) = annotations.as_object_mut() {
                annotations.insert("pv.kubernetes.io/bound-by-controller".into(), json!("yes"));
            }
        }
        let taken = self.cluster.update(&volumes(), None, &taken).await?;
        let mut status = taken.clone();
        status["status"] = json!({"phase": "Bound"});
        self.cluster.update_status(&volumes(), None, &status).await
    }

    /// Reports the claim bound, with the volume's capacity and access modes.
    async fn finish_claim(&self, claim: &Value, volume: &Value) -> SyncResult {
        let status = json!({
            "phase": "Bound",
            "accessModes": volume.at("/spec/accessModes").cloned().unwrap_or(json!([])),
            "capacity": volume.at("/spec/capacity").cloned().unwrap_or(json!({})),
        });
        if claim.get("status") == Some(&status) {
            return Ok(None);
        }
        let mut next = claim.clone();
        next["status"] = status;
        self.cluster
            .update_status(&claims(), Some(namespace(claim)), &next)
            .await?;
        Ok(None)
    }

    async fn set_phase(
        &self,
        r: &Resource,
        ns: Option<&str>,
        obj: &Value,
        phase: &str,
    ) -> SyncResult {
        if text(obj, "/status/phase") == phase {
            return Ok(None);
        }
        let mut next = obj.clone();
        next["status"]["phase"] = json!(phase);
        self.cluster.update_status(r, ns, &next).await?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume(capacity: &str, class: &str, modes: &[&str]) -> Value {
        json!({"metadata": {"name": "v", "labels": {"tier": "fast"}}, "spec": {
            "capacity": {"storage": capacity}, "storageClassName": class, "accessModes": modes}})
    }

    fn claim(request: &str, class: Option<&str>, modes: &[&str]) -> Value {
        let mut c = json!({"metadata": {"name": "c", "namespace": "ns"}, "spec": {
            "resources": {"requests": {"storage": request}}, "accessModes": modes}});
        if let Some(class) = class {
            c["spec"]["storageClassName"] = json!(class);
        }
        c
    }

    fn fits_any(volume: &Value, claim: &Value) -> Option<i64> {
        fits(volume, claim, Match::Any)
    }

    #[test]
    fn volumes_fit_claims_by_class_modes_and_size() {
        let v = volume("10Gi", "", &["ReadWriteOnce", "ReadOnlyMany"]);
        assert_eq!(
            fits_any(&v, &claim("5Gi", None, &["ReadWriteOnce"])),
            Some(10 << 30)
        );
        assert_eq!(
            fits_any(&v, &claim("5Gi", Some(""), &["ReadOnlyMany"])),
            Some(10 << 30)
        );
        assert_eq!(fits_any(&v, &claim("20Gi", None, &["ReadWriteOnce"])), None);
        assert_eq!(fits_any(&v, &claim("1Gi", None, &["ReadWriteMany"])), None);
        assert_eq!(
            fits_any(&v, &claim("1Gi", Some("fast"), &["ReadWriteOnce"])),
            None
        );
        let mut selective = claim("1Gi", None, &["ReadWriteOnce"]);
        selective["spec"]["selector"] = json!({"matchLabels": {"tier": "slow"}});
        assert_eq!(fits_any(&v, &selective), None);
        selective["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fast"]}]});
        assert!(fits_any(&v, &selective).is_some());
        selective["spec"]["selector"] = json!({"matchLabels": {}});
        assert!(fits_any(&v, &selective).is_some());
        let mut block = claim("1Gi", None, &["ReadWriteOnce"]);
        block["spec"]["volumeMode"] = json!("Block");
        assert_eq!(fits_any(&v, &block), None);
        // A volume pre-bound to the claim skips class and selector.
        let other_class = claim("1Gi", Some("fast"), &["ReadWriteOnce"]);
        assert!(fits(&v, &other_class, Match::PreBound).is_some());
        assert_eq!(fits(&v, &other_class, Match::Named), None);
    }
}
