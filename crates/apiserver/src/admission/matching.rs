//! What admission webhooks and policies match on: rules of operations, groups, versions,
//! resources and scope, and label selectors on the object and its namespace.

use serde_json::Value;

use super::Attributes;
use crate::errors::ApiResult;
use crate::objects;
use crate::resources;
use crate::rest::Registry;
use crate::selectors::LabelSelector;

/// One `rules` entry of a webhook.
pub(super) struct Rule {
    operations: Vec<String>,
    groups: Vec<String>,
    versions: Vec<String>,
    resources: Vec<String>,
    scope: String,
}

impl Rule {
    pub(super) fn from_json(rule: &Value) -> Self {
        let list = |field: &str| {
            rule.get(field)
                .map(objects::string_list)
                .unwrap_or_default()
        };
        Rule {
            operations: list("operations"),
            groups: list("apiGroups"),
            versions: list("apiVersions"),
            resources: list("resources"),
            scope: rule
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("*")
                .to_string(),
        }
    }

    pub(super) fn matches(&self, a: &Attributes) -> bool {
        let any = |list: &[String], value: &str| list.iter().any(|x| x == "*" || x == value);
        let scope_ok = match self.scope.as_str() {
            "Cluster" => !a.r.namespaced,
            "Namespaced" => a.r.namespaced,
            _ => true,
        };
        scope_ok
            && any(&self.operations, a.operation.as_str())
            && any(&self.groups, a.r.group)
            && any(&self.versions, a.r.version)
            && self
                .resources
                .iter()
                .any(|pattern| resource_matches(pattern, a.r.plural, a.subresource))
    }
}

/// `pods`, `pods/status`, `pods/*`, `*`, `*/status`, `*/*` as webhook rules read them.
fn resource_matches(pattern: &str, plural: &str, subresource: &str) -> bool {
    let (resource, sub) = pattern.split_once('/').unwrap_or((pattern, ""));
    let resource_ok = resource == "*" || resource == plural;
    let sub_ok = sub == "*" || sub == subresource;
    resource_ok && sub_ok
}

/// A label selector that selects something (an empty one selects everything and is dropped).
pub(super) fn selector(value: Option<&Value>) -> Option<LabelSelector> {
    let sel = LabelSelector::from_object(value?).ok()?;
    (!sel.is_empty()).then_some(sel)
}

/// Whether a namespace selector admits the request: cluster-scoped objects other than
/// namespaces always pass, a namespace is matched by its own labels (see [`own_namespace`]),
/// anything else by the labels of its namespace.
pub(super) async fn namespace_matches(
    registry: &Registry,
    selector: Option<&LabelSelector>,
    a: &Attributes<'_>,
    object: Option<&Value>,
) -> ApiResult<bool> {
    let Some(sel) = selector else {
        return Ok(true);
    };
    if a.r.group.is_empty() && a.r.plural == "namespaces" {
        return Ok(own_namespace(a, object).is_some_and(|o| sel.matches_object(o)));
    }
    if !a.r.namespaced {
        return Ok(true);
    }
    Ok(namespace_object(registry, a.namespace)
        .await?
        .is_some_and(|ns| sel.matches_object(&ns)))
}

/// The namespace whose labels a request about a namespace is matched by, as kube-apiserver
/// picks it: the new object when one is created or updated (so a write that removes a label
/// is matched without it), the stored one for deletes and subresources.
fn own_namespace<'a>(a: &Attributes<'a>, object: Option<&'a Value>) -> Option<&'a Value> {
    match a.subresource {
        "" => object.or(a.old),
        _ => a.old.or(object),
    }
}

/// The namespace object, when it exists.
pub(super) async fn namespace_object(registry: &Registry, name: &str) -> ApiResult<Option<Value>> {
    let namespaces = resources::find("", "v1", "namespaces").expect("built in");
    match registry.get(namespaces, None, name).await {
        Ok(body) => Ok(Some(objects::decode(&body)?)),
        Err(e) if e.code == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether an object selector admits the request: the new or the old object matches.
pub(super) fn object_matches(
    selector: Option<&LabelSelector>,
    a: &Attributes<'_>,
    object: Option<&Value>,
) -> bool {
    match selector {
        None => true,
        Some(sel) => [object, a.old]
            .into_iter()
            .flatten()
            .any(|o| sel.matches_object(o)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_matched_by_their_new_labels() {
        let namespaces = resources::find("", "v1", "namespaces").unwrap();
        let old = serde_json::json!({"metadata": {"name": "a", "labels": {"x": "1"}}});
        let new = serde_json::json!({"metadata": {"name": "a"}});
        let attributes = |subresource, operation| Attributes {
            r: namespaces,
            subresource,
            operation,
            namespace: "",
            name: "a",
            old: Some(&old),
            dry_run: false,
            user: None,
            field_manager: None,
        };
        let update = attributes("", crate::admission::Operation::Update);
        assert_eq!(own_namespace(&update, Some(&new)), Some(&new));
        let delete = attributes("", crate::admission::Operation::Delete);
        assert_eq!(own_namespace(&delete, None), Some(&old));
        let status = attributes("status", crate::admission::Operation::Update);
        assert_eq!(own_namespace(&status, Some(&new)), Some(&old));
    }

    #[test]
    fn resource_patterns_cover_subresources_as_kube_apiserver() {
        assert!(resource_matches("pods", "pods", ""));
        assert!(!resource_matches("pods", "pods", "status"));
        assert!(resource_matches("pods/status", "pods", "status"));
        assert!(resource_matches("pods/*", "pods", "status"));
        assert!(resource_matches("pods/*", "pods", ""));
        assert!(resource_matches("*", "deployments", ""));
        assert!(!resource_matches("*", "deployments", "scale"));
        assert!(resource_matches("*/scale", "deployments", "scale"));
        assert!(resource_matches("*/*", "deployments", "scale"));
    }
}
