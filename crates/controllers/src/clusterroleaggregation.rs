//! ClusterRole aggregation, as kube-controller-manager's `clusterrole-aggregation` controller
//! does it: a ClusterRole with an `aggregationRule` gets as its rules those of every other
//! ClusterRole its `clusterRoleSelectors` match (in name order, each rule once), rewritten
//! whenever any ClusterRole changes. This is how `admin`, `edit` and `view` take in the
//! permissions of `aggregate-to-*` roles that operators install for their CRDs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, ListParams, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::informer::selector_matches;

/// Changes arriving within this window are handled together.
const SETTLE: Duration = Duration::from_millis(50);

pub struct ClusterRoleAggregation {
    cluster: Arc<dyn Cluster>,
}

fn resource() -> Resource {
    Resource::new(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
    )
}

impl ClusterRoleAggregation {
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self { cluster }
    }

    /// Runs until the cluster stops answering.
    pub async fn run(self) {
        let mut roles: BTreeMap<String, Arc<Value>> = BTreeMap::new();
        let mut events =
            client::watch_resuming(self.cluster.clone(), resource(), ListParams::default());
        while let Some(ev) = events.next().await {
            apply(&mut roles, ev);
            // Take in whatever else arrived meanwhile before recomputing.
            while let Ok(Some(ev)) = tokio::time::timeout(SETTLE, events.next()).await {
                apply(&mut roles, ev);
            }
            for (name, rules) in stale_aggregates(&roles) {
                let patch = client::Patch::Merge(json!({"rules": rules}));
                let r = resource();
                if let Err(e) = self.cluster.patch(&r, None, &name, &patch, None).await {
                    tracing::debug!(role = %name, error = %e, "aggregate cluster role");
                }
            }
        }
    }
}

fn apply(roles: &mut BTreeMap<String, Arc<Value>>, ev: WatchEvent) {
    let name_of = |o: &Value| o["metadata"]["name"].as_str().unwrap_or("").to_string();
    match ev {
        WatchEvent::Added(o) | WatchEvent::Modified(o) => {
            roles.insert(name_of(&o), o);
        }
        WatchEvent::Deleted(o) => {
            roles.remove(&name_of(&o));
        }
        WatchEvent::Bookmark(_) | WatchEvent::Error(_) => {}
    }
}

/// The aggregated roles whose rules differ from what their selectors gather, with the rules
/// they should have.
pub fn stale_aggregates(roles: &BTreeMap<String, Arc<Value>>) -> Vec<(String, Vec<Value>)> {
    let empty = Map::new();
    let mut stale = Vec::new();
    for (name, role) in roles {
        let Some(selectors) = role["aggregationRule"]["clusterRoleSelectors"].as_array() else {
            continue;
        };
        let mut rules: Vec<Value> = Vec::new();
        for (other_name, other) in roles {
            if other_name == name {
                continue;
            }
            let labels = other["metadata"]["labels"].as_object().unwrap_or(&empty);
            if !selectors.iter().any(|s| selector_matches(Some(s), labels)) {
                continue;
            }
            for rule in other["rules"].as_array().into_iter().flatten() {
                if !rules.contains(rule) {
                    rules.push(rule.clone());
                }
            }
        }
        let current = role["rules"].as_array().cloned().unwrap_or_default();
        if current != rules {
            stale.push((name.clone(), rules));
        }
    }
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(
        name: &str,
        labels: Value,
        rules: Value,
        aggregation: Option<Value>,
    ) -> (String, Arc<Value>) {
        let mut o = json!({"metadata": {"name": name, "labels": labels}, "rules": rules});
        if let Some(a) = aggregation {
            o["aggregationRule"] = a;
        }
        (name.to_string(), Arc::new(o))
    }

    #[test]
    fn aggregated_roles_gather_matching_rules_once() {
        let get_pods = json!({"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]});
        let list_crs =
            json!({"verbs": ["list"], "apiGroups": ["example.com"], "resources": ["widgets"]});
        let selector = json!({"clusterRoleSelectors": [{"matchLabels": {"rbac.example.com/aggregate-to-view": "true"}}]});
        let label = json!({"rbac.example.com/aggregate-to-view": "true"});
        let roles: BTreeMap<_, _> = [
            role("view", json!({}), json!([]), Some(selector.clone())),
            role("a", label.clone(), json!([get_pods]), None),
            role("b", label.clone(), json!([get_pods, list_crs]), None),
            role(
                "unrelated",
                json!({}),
                json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]),
                None,
            ),
        ]
        .into_iter()
        .collect();
        let stale = stale_aggregates(&roles);
        assert_eq!(
            stale,
            vec![("view".to_string(), vec![get_pods.clone(), list_crs.clone()])]
        );

        let mut settled = roles.clone();
        settled.insert(
            "view".into(),
            Arc::new(json!({"metadata": {"name": "view"}, "aggregationRule": selector, "rules": [get_pods, list_crs]})),
        );
        assert!(stale_aggregates(&settled).is_empty());
    }
}
