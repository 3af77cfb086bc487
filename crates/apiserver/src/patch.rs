//! Patch engines: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! with the merge rules of the built-in kinds' schemas, and a first server-side apply.

use openapi::{MergeRules, SchemaNode};
use serde_json::{Map, Value};

/// The patch types a PATCH request can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchError {
    /// The patch document itself is malformed (400).
    Malformed(String),
    /// The patch is well-formed but cannot be applied to this object (422).
    Invalid(String),
    /// The patch asks for more than the server does for one request (413).
    TooLarge(String),
}

/// Most operations one JSON patch may hold, as kube-apiserver.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Most bytes the `copy` operations of one JSON patch may add, as kube-apiserver.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

/// Applies an RFC 6902 JSON patch. Operations are applied one at a time so that the bytes
/// `copy` adds and the nesting each operation creates are checked before the object grows
/// past what the server stores: a few copies of a map into itself double it each time.
pub fn json_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    let ops: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    if ops.0.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooLarge(format!(
            "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
            ops.0.len()
        )));
    }
    let mut doc = target.clone();
    let mut copied = 0usize;
    for (index, op) in ops.0.iter().enumerate() {
        check_operation(&doc, op, &mut copied)?;
        json_patch::patch(&mut doc, std::slice::from_ref(op)).map_err(|mut e| {
            e.operation = index;
            PatchError::Invalid(e.to_string())
        })?;
    }
    Ok(doc)
}

/// Refuses an operation that would copy past [`MAX_JSON_PATCH_COPY_BYTES`] in all or nest the
/// object deeper than [`crate::objects::MAX_DEPTH`].
fn check_operation(
    doc: &Value,
    op: &json_patch::PatchOperation,
    copied: &mut usize,
) -> Result<(), PatchError> {
    use json_patch::PatchOperation as Op;
    let (path, placed) = match op {
        Op::Add(add) => (&add.path, Some(&add.value)),
        Op::Replace(replace) => (&replace.path, Some(&replace.value)),
        Op::Copy(copy) => {
            let from = doc.pointer(copy.from.as_str());
            if let Some(value) = from {
                *copied = copied.saturating_add(crate::objects::encoded_len(value));
                if *copied > MAX_JSON_PATCH_COPY_BYTES {
                    return Err(PatchError::Invalid(format!(
                        "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}",
                        *copied
                    )));
                }
            }
            (&copy.path, from)
        }
        Op::Move(mv) => (&mv.path, doc.pointer(mv.from.as_str())),
        Op::Remove(_) | Op::Test(_) => return Ok(()),
    };
    let Some(value) = placed else { return Ok(()) };
    let depth = path.count() + crate::objects::depth(value);
    if depth > crate::objects::MAX_DEPTH {
        return Err(PatchError::Invalid(crate::objects::too_deep_message()));
    }
    Ok(())
}

/// Applies an RFC 7386 merge patch.
pub fn merge_patch(target: &Value, patch: &Value) -> Result<Value, PatchError> {
    if !patch.is_object() {
        return Err(PatchError::Malformed(
            "json: cannot unmarshal into Go value of type map[string]interface {}".into(),
        ));
    }
    let mut doc = target.clone();
    json_patch::merge(&mut doc, patch);
    Ok(doc)
}

/// How a list field merges in a strategic merge patch.
enum ListStrategy<'r> {
    /// Objects merged by this key.
    MergeKey(&'r str),
    /// A list of scalars merged as a set.
    MergePrimitives,
    Replace,
}

fn list_strategy(rules: Option<&MergeRules>) -> ListStrategy<'_> {
    match rules {
        Some(rules) if rules.patch_merge => match &rules.patch_merge_key {
            Some(key) => ListStrategy::MergeKey(key),
            None => ListStrategy::MergePrimitives,
        },
        _ => ListStrategy::Replace,
    }
}

/// Removes patch directives from a value that replaces (rather than merges into) a field.
fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// Applies a strategic merge patch. Lists merge as `schema` (the root of the kind's type) says;
/// where it knows nothing (the spec of a custom resource) they are replaced, as in a JSON merge
/// patch.
pub fn strategic_merge_patch(
    target: &Value,
    patch: &Value,
    schema: SchemaNode<'_>,
) -> Result<Value, PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::Malformed(
            "json: cannot unmarshal into Go value of type map[string]interface {}".into(),
        ));
    };
    let base = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    Ok(Value::Object(merge_map(base, p, Some(schema))?))
}

fn merge_map(
    mut base: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: Option<SchemaNode<'_>>,
) -> Result<Map<String, Value>, PatchError> {
    match patch.get("$patch").and_then(Value::as_str) {
        Some("replace") => {
            return match strip_directives(&Value::Object(patch.clone())) {
                Value::Object(m) => Ok(m),
                _ => unreachable!("an object stays an object"),
            };
        }
        Some("delete") => return Ok(Map::new()),
        Some("merge") | None => {}
        Some(other) => {
            return Err(PatchError::Malformed(format!(
                "unknown patch type: {other} in map"
            )));
        }
    }
    if let Some(retain) = patch.get("$retainKeys").and_then(Value::as_array) {
        let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
        base.retain(|k, _| keep.contains(&k.as_str()));
    }
    let mut orders = Vec::new();
    for (key, pv) in patch {
        if let Some(list) = key.strip_prefix("$setElementOrder/") {
            orders.push((list.to_string(), pv));
            continue;
        }
        if let Some(list) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Some(remove)) = (base.get_mut(list), pv.as_array()) {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if key.starts_with('$') {
            continue;
        }
        let (child, rules) = match schema.and_then(|node| node.child(key)) {
            Some((child, rules)) => (Some(child), rules),
            None => (None, None),
        };
        match pv {
            Value::Null => {
                base.remove(key);
            }
            Value::Object(pm) => {
                let current = match base.remove(key) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                    continue;
                }
                if rules.is_some_and(|rules| rules.patch_replace) {
                    base.insert(key.clone(), strip_directives(pv));
                    continue;
                }
                let merged = merge_map(current, pm, child)?;
                base.insert(key.clone(), Value::Object(merged));
            }
            Value::Array(items) => {
                let current = match base.remove(key) {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let merged = merge_list(current, items, child, rules)?;
                base.insert(key.clone(), Value::Array(merged));
            }
            scalar => {
                base.insert(key.clone(), scalar.clone());
            }
        }
    }
    for (list, order) in orders {
        if let (Some(Value::Array(items)), Some(order)) = (base.get_mut(&list), order.as_array()) {
            let rules = schema
                .and_then(|node| node.child(&list))
                .and_then(|(_, rules)| rules);
            reorder(items, order, rules);
        }
    }
    Ok(base)
}

fn merge_list(
    mut base: Vec<Value>,
    patch: &[Value],
    schema: Option<SchemaNode<'_>>,
    rules: Option<&MergeRules>,
) -> Result<Vec<Value>, PatchError> {
    // `$patch: replace` in a list means: the list is exactly the other elements.
    if patch
        .iter()
        .any(|v| v.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        return Ok(patch
            .iter()
            .filter(|v| v.get("$patch").is_none())
            .map(strip_directives)
            .collect());
    }
    match list_strategy(rules) {
        ListStrategy::Replace => Ok(patch.iter().map(strip_directives).collect()),
        ListStrategy::MergePrimitives => {
            for v in patch {
                if !base.contains(v) {
                    base.push(v.clone());
                }
            }
            Ok(base)
        }
        ListStrategy::MergeKey(merge_key) => {
            for pv in patch {
                let Value::Object(pm) = pv else {
                    // Not a list of objects after all: replace.
                    return Ok(patch.iter().map(strip_directives).collect());
                };
                let key_value = pm.get(merge_key);
                let pos =
                    key_value.and_then(|kv| base.iter().position(|b| b.get(merge_key) == Some(kv)));
                let delete = pm.get("$patch").and_then(Value::as_str) == Some("delete");
                match (pos, delete) {
                    (Some(i), true) => {
                        base.remove(i);
                    }
                    (None, true) => {}
                    (Some(i), false) => {
                        let current = match std::mem::take(&mut base[i]) {
                            Value::Object(m) => m,
                            _ => Map::new(),
                        };
                        let items = schema.and_then(SchemaNode::items);
                        base[i] = Value::Object(merge_map(current, pm, items)?);
                    }
                    (None, false) => {
                        if key_value.is_none() {
                            return Err(PatchError::Invalid(format!(
                                "map: {pv} does not contain declared merge key: {merge_key}"
                            )));
                        }
                        base.push(strip_directives(pv));
                    }
                }
            }
            Ok(base)
        }
    }
}

fn reorder(items: &mut [Value], order: &[Value], rules: Option<&MergeRules>) {
    let key = match list_strategy(rules) {
        ListStrategy::MergeKey(k) => Some(k),
        _ => None,
    };
    let rank = |v: &Value| -> usize {
        order
            .iter()
            .position(|o| match key {
                Some(k) => o.get(k).is_some() && o.get(k) == v.get(k),
                None => o == v,
            })
            .unwrap_or(usize::MAX)
    };
    items.sort_by_key(rank);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    static OPENAPI: std::sync::LazyLock<openapi::OpenApi> =
        std::sync::LazyLock::new(crate::build_openapi);

    fn schema(group: &str, kind: &str) -> SchemaNode<'static> {
        OPENAPI.kind_schema(group, "v1", kind)
    }

    /// A kind without a known type.
    fn untyped() -> SchemaNode<'static> {
        OPENAPI.kind_schema("example.com", "v1", "Widget")
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "nginx", "image": "nginx:1.26", "ports": [{"containerPort": 80}]}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "nginx"}],
            "containers": [{"name": "sidecar", "image": "busybox"}, {"name": "nginx", "image": "nginx:1.27"}]
        }}}});
        let out = strategic_merge_patch(&live, &patch, schema("apps", "Deployment")).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["name"], "sidecar");
        assert_eq!(cs[1]["image"], "nginx:1.27");
        assert_eq!(cs[1]["ports"][0]["containerPort"], 80);
    }

    #[test]
    fn strategic_delete_directives() {
        let live = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "j"}], "tolerations": [{"key": "k"}]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"x": null}},
            "spec": {"containers": [{"name": "a", "$patch": "delete"}], "tolerations": [{"key": "z"}]}});
        let out = strategic_merge_patch(&live, &patch, schema("", "Pod")).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(out["metadata"]["labels"], json!({"y": "2"}));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "j"}])
        );
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "z"}]));
    }

    #[test]
    fn unschedulable_null_removes_field() {
        let node = json!({"spec": {"unschedulable": true, "podCIDR": "10.0.0.0/24"}});
        let patch = json!({"spec": {"unschedulable": null}});
        let out = strategic_merge_patch(&node, &patch, schema("", "Node")).unwrap();
        assert_eq!(out, json!({"spec": {"podCIDR": "10.0.0.0/24"}}));
    }

    #[test]
    fn lists_without_a_merge_strategy_are_replaced() {
        // Taints and tolerations have no patch strategy: the patch's list is the new list,
        // even where items share a key.
        let node = json!({"spec": {"taints": [
            {"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}
        ]}});
        let patch = json!({"spec": {"taints": [{"key": "a", "effect": "NoExecute"}]}});
        let out = strategic_merge_patch(&node, &patch, schema("", "Node")).unwrap();
        assert_eq!(out["spec"]["taints"], patch["spec"]["taints"]);
    }

    #[test]
    fn nested_lists_merge_by_their_own_keys() {
        let pod = json!({
            "spec": {"containers": [{"name": "app", "image": "a", "ports": [
                {"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}
            ], "env": [{"name": "A", "value": "1"}]}]},
            "status": {"conditions": [
                {"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}
            ]}
        });
        let patch = json!({
            "spec": {"containers": [{"name": "app", "ports": [{"containerPort": 80, "name": "web"}],
                "env": [{"name": "B", "value": "2"}]}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}
        });
        let out = strategic_merge_patch(&pod, &patch, schema("", "Pod")).unwrap();
        let container = &out["spec"]["containers"][0];
        assert_eq!(container["image"], "a");
        assert_eq!(
            container["ports"],
            json!([{"containerPort": 80, "name": "web"}, {"containerPort": 443, "name": "https"}])
        );
        assert_eq!(
            container["env"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
    }

    #[test]
    fn replace_strategy_replaces_a_map() {
        // A disruption budget's selector has patch strategy `replace`.
        let budget = json!({"spec": {"selector": {"matchLabels": {"app": "a", "tier": "web"}}}});
        let patch = json!({"spec": {"selector": {"matchLabels": {"app": "b"}}}});
        let out = strategic_merge_patch(&budget, &patch, schema("policy", "PodDisruptionBudget"))
            .unwrap();
        assert_eq!(out["spec"]["selector"], patch["spec"]["selector"]);
        // Without that strategy, maps merge.
        let deployment =
            json!({"spec": {"selector": {"matchLabels": {"app": "a", "tier": "web"}}}});
        let out = strategic_merge_patch(&deployment, &patch, schema("apps", "Deployment")).unwrap();
        assert_eq!(
            out["spec"]["selector"]["matchLabels"],
            json!({"app": "b", "tier": "web"})
        );
    }

    #[test]
    fn without_a_schema_lists_are_replaced_but_metadata_merges() {
        let live = json!({"metadata": {"finalizers": ["a", "b"], "ownerReferences": [
                {"uid": "1", "name": "x"}, {"uid": "2", "name": "y"}]},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"metadata": {
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "ownerReferences": [{"$patch": "delete", "uid": "1"}]},
            "spec": {"containers": [{"name": "a", "image": "x"}]}});
        let out = strategic_merge_patch(&live, &patch, untyped()).unwrap();
        assert_eq!(out["spec"]["containers"], patch["spec"]["containers"]);
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([{"uid": "2", "name": "y"}])
        );
    }

    #[test]
    fn json_patch_errors_are_invalid() {
        let doc = json!({"a": 1});
        assert!(matches!(
            json_patch(&doc, &json!([{"op": "test", "path": "/a", "value": 2}])),
            Err(PatchError::Invalid(_))
        ));
        assert!(matches!(
            json_patch(&doc, &json!({"op": "add"})),
            Err(PatchError::Malformed(_))
        ));
        assert_eq!(
            json_patch(&doc, &json!([{"op": "add", "path": "/b", "value": [1]}])).unwrap(),
            json!({"a": 1, "b": [1]})
        );
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-z]{0,4}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map("[a-c]", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn without_nulls(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), without_nulls(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    proptest! {
        #[test]
        fn merge_patch_is_idempotent(target in arb_json(), patch in proptest::collection::btree_map("[a-c]", arb_json(), 0..3)) {
            let patch = Value::Object(patch.into_iter().collect());
            let once = merge_patch(&target, &patch).unwrap();
            let twice = merge_patch(&once, &patch).unwrap();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn merge_patch_sets_every_non_null_field(target in arb_json(), patch in proptest::collection::btree_map("[a-c]", arb_json(), 0..3)) {
            let patch = Value::Object(patch.into_iter().collect());
            let out = merge_patch(&target, &patch).unwrap();
            for (k, v) in patch.as_object().unwrap() {
                if v.is_null() {
                    prop_assert!(out.get(k).is_none());
                } else if !v.is_object() {
                    prop_assert_eq!(out.get(k), Some(&without_nulls(v)));
                }
            }
        }

        #[test]
        fn strategic_equals_merge_for_plain_maps(target in proptest::collection::btree_map("[a-c]", "[a-z]{0,3}", 0..4), patch in proptest::collection::btree_map("[a-c]", proptest::option::of("[a-z]{0,3}"), 0..4)) {
            let target = serde_json::to_value(&target).unwrap();
            let patch = serde_json::to_value(&patch).unwrap();
            prop_assert_eq!(strategic_merge_patch(&target, &patch, untyped()).unwrap(), merge_patch(&target, &patch).unwrap());
        }

        #[test]
        fn json_patch_add_then_remove_restores(key in "[a-z]{1,5}", value in arb_json()) {
            let doc = json!({"fixed": 1});
            prop_assume!(key != "fixed");
            let added = json_patch(&doc, &json!([{"op": "add", "path": format!("/{key}"), "value": value}])).unwrap();
            let removed = json_patch(&added, &json!([{"op": "remove", "path": format!("/{key}")}])).unwrap();
            prop_assert_eq!(removed, doc);
        }
    }
}
