//! ControllerRevisions: the template history of StatefulSets and DaemonSets. Each distinct pod
//! template an owner has had is stored once, as `<owner>-<hash>` holding
//! `{"spec": {"template": {..., "$patch": "replace"}}}` and a `revision` number that grows with
//! every change (a rollback to an older template renumbers that revision as the newest).

use client::JsonAt;
use std::collections::HashSet;
use std::sync::Arc;

use client::{Cluster, DeleteParams};
use serde_json::{Map, Value, json};

use crate::deployment::template_hash;
use crate::informer::{Cache, Kind, controller_uid, int_at, name, namespace, owner_ref, uid};

/// The revisions `owner` controls, oldest first.
pub(crate) fn owned_revisions(cache: &Cache, owner: &Value) -> Vec<Arc<Value>> {
    let owner_uid = uid(owner);
    let mut list: Vec<Arc<Value>> = cache
        .list(Kind::ControllerRevision, namespace(owner))
        .into_iter()
        .filter(|r| controller_uid(r) == Some(owner_uid))
        .collect();
    list.sort_by_key(|r| (number(r), name(r).to_string()));
    list
}

/// A revision's `revision` number.
pub(crate) fn number(revision: &Value) -> i64 {
    int_at(revision, "/revision").unwrap_or(0)
}

/// The pod template a revision records.
pub(crate) fn template_of(revision: &Value) -> Option<Value> {
    let mut template = revision.at("/data/spec/template")?.clone();
    if let Some(m) = template.as_object_mut() {
        m.remove("$patch");
    }
    Some(template)
}

fn data_of(template: &Value) -> Value {
    let mut t = template.clone();
    if let Some(m) = t.as_object_mut() {
        m.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": t}})
}

/// What [`ensure`] found or made.
pub(crate) enum Ensured {
    /// The revision of the current template, and its hash.
    Revision(Value, String),
    /// Another template already has this hash's name: the owner's `collisionCount` must grow.
    Collision,
}

/// Finds the revision of `owner`'s current template, or creates it as the newest.
pub(crate) async fn ensure(
    cluster: &dyn Cluster,
    owner: &Value,
    (api_version, kind): (&str, &str),
    hash_label: &str,
    revisions: &[Arc<Value>],
) -> client::Result<Ensured> {
    let template = owner
        .at("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let collision = int_at(owner, "/status/collisionCount");
    let newest = revisions.iter().map(|r| number(r)).max().unwrap_or(0);
    let ns = namespace(owner);
    let resource = Kind::ControllerRevision.resource();
    let hash_of = |r: &Value| {
        crate::informer::labels(r)
            .get(hash_label)
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| template_hash(&template, collision))
    };
    if let Some(existing) = revisions
        .iter()
        .rev()
        .find(|r| template_of(r).as_ref() == Some(&template))
    {
        let hash = hash_of(existing);
        if number(existing) == newest {
            return Ok(Ensured::Revision((**existing).clone(), hash));
        }
        let mut renumbered = (**existing).clone();
        renumbered["revision"] = json!(newest + 1);
        let updated = cluster.update(&resource, Some(ns), &renumbered).await?;
        return Ok(Ensured::Revision(updated, hash));
    }
    let hash = template_hash(&template, collision);
    let mut labels: Map<String, Value> = template
        .at("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(hash_label.into(), json!(hash));
    let revision = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": format!("{}-{hash}", name(owner)),
            "namespace": ns,
            "labels": labels,
            "ownerReferences": [owner_ref(owner, api_version, kind)],
        },
        "data": data_of(&template),
        "revision": newest + 1,
    });
    match cluster.create(&resource, Some(ns), &revision).await {
        Ok(created) => Ok(Ensured::Revision(created, hash)),
        Err(e) if e.reason == "AlreadyExists" => {
            let live = cluster.get(&resource, Some(ns), name(&revision)).await?;
            if controller_uid(&live) == Some(uid(owner))
                && template_of(&live).as_ref() == Some(&template)
            {
                Ok(Ensured::Revision(live, hash))
            } else {
                Ok(Ensured::Collision)
            }
        }
        Err(e) => Err(e),
    }
}

/// Deletes the oldest revisions beyond `limit` that neither `keep` names nor a live pod uses.
pub(crate) async fn truncate(
    cluster: &dyn Cluster,
    revisions: &[Arc<Value>],
    keep: &HashSet<String>,
    limit: i64,
) -> client::Result<()> {
    let unused: Vec<&Arc<Value>> = revisions
        .iter()
        .filter(|r| !keep.contains(name(r)))
        .collect();
    let excess = unused.len().saturating_sub(limit.max(0) as usize);
    for r in unused.into_iter().take(excess) {
        match cluster
            .delete(
                &Kind::ControllerRevision.resource(),
                Some(namespace(r)),
                name(r),
                &DeleteParams::default(),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_round_trips_the_template() {
        let t = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": []}});
        let r = json!({"data": data_of(&t), "revision": 3});
        assert_eq!(template_of(&r), Some(t));
        assert_eq!(number(&r), 3);
        assert_eq!(r["data"]["spec"]["template"]["$patch"], "replace");
    }
}
