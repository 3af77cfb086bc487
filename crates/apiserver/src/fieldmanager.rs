//! Field ownership: `metadata.managedFields` and server-side apply.
//!
//! A field set is a tree of path elements as they appear in `FieldsV1`: `f:<name>` for a field of
//! a map, `k:{...}` for an element of a `list-type=map` list (its list-map-keys as a JSON object),
//! `v:<json>` for an element of a `list-type=set` list. Atomic lists, atomic maps and scalars are
//! owned as a whole, so their contents never appear in a set.
//!
//! Every write records who set what: apply requests replace the applier's `Apply` entry with the
//! fields of the applied configuration; other writes add what they changed to the writer's
//! `Update` entry and take those fields away from everyone else.

use crate::objects::JsonAt;
use std::collections::BTreeMap;

use openapi::{MergeRules, SchemaNode};

use serde_json::{Map, Value, json};

/// A set of field paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Adds a path.
    pub fn insert(&mut self, path: &[String]) {
        let mut node = self;
        for p in path {
            node = node.children.entry(p.clone()).or_default();
        }
        node.member = true;
    }

    fn node(&self, path: &[String]) -> Option<&FieldSet> {
        let mut node = self;
        for p in path {
            node = node.children.get(p)?;
        }
        Some(node)
    }

    pub fn contains(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| n.member)
    }

    /// Whether the path or anything below it is in the set.
    pub fn contains_at_or_below(&self, path: &[String]) -> bool {
        self.node(path).is_some_and(|n| !n.is_empty())
    }

    pub fn union(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (k, v) in &other.children {
            self.children.entry(k.clone()).or_default().union(v);
        }
    }

    /// The paths of `self` that are not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let child = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !child.is_empty() {
                out.children.insert(k.clone(), child);
            }
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let child = v.intersection(o);
                if !child.is_empty() {
                    out.children.insert(k.clone(), child);
                }
            }
        }
        out
    }

    /// Removes every path at or below a member of `other`.
    pub fn remove_subtrees(&mut self, other: &FieldSet) {
        if other.member {
            *self = FieldSet::default();
            return;
        }
        for (k, o) in &other.children {
            if let Some(child) = self.children.get_mut(k) {
                child.remove_subtrees(o);
                if child.is_empty() {
                    self.children.remove(k);
                }
            }
        }
    }

    /// Every path in the set, depth first.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            prefix.push(k.clone());
            v.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` form: `{}` for a member without children, `".": {}` marks a member with
    /// children.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (k, v) in &self.children {
            if !v.is_empty() {
                m.insert(k.clone(), v.to_json());
            }
        }
        Value::Object(m)
    }

    /// Reads the `FieldsV1` form.
    pub fn from_json(v: &Value) -> Option<FieldSet> {
        let m = v.as_object()?;
        let mut out = FieldSet {
            member: m.is_empty() || m.contains_key("."),
            children: BTreeMap::new(),
        };
        for (k, v) in m {
            if k == "." {
                continue;
            }
            if !(k.starts_with("f:")
                || k.starts_with("k:")
                || k.starts_with("v:")
                || k.starts_with("i:"))
            {
                return None;
            }
            out.children.insert(k.clone(), FieldSet::from_json(v)?);
        }
        Some(out)
    }
}

/// Renders a path as kube-apiserver names fields in conflicts: `.spec.containers[name="nginx"].image`.
pub fn path_string(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(name) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(name);
        } else if let Some(key) = p.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Map<String, Value>>(key) {
                Ok(m) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                Err(_) => vec![key.to_string()],
            };
            s.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = p.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        } else if let Some(i) = p.strip_prefix("i:") {
            s.push_str(&format!("[{i}]"));
        }
    }
    s
}

pub use openapi::ListType;

/// Where list and map types come from: a built-in kind's schema, or a custom resource's
/// structural schema; `metadata` always follows the built-in `ObjectMeta`.
#[derive(Debug, Clone, Copy)]
pub enum Schema<'a> {
    /// A built-in kind (see `OpenApi::kind_schema`).
    Builtin(SchemaNode<'a>),
    /// A custom resource: its structural schema (`None`: no schema, all of its lists atomic),
    /// and the schema of a kind without a known type for its `metadata`.
    Custom(Option<&'a Value>, SchemaNode<'a>),
}

/// Where the rules of a field path were found.
enum Found<'a> {
    Builtin(SchemaNode<'a>, Option<&'a MergeRules>),
    Custom(&'a Value),
    Nothing,
}

impl<'a> Schema<'a> {
    pub fn builtin(kind: SchemaNode<'a>) -> Self {
        Schema::Builtin(kind)
    }

    pub fn custom(schema: Option<&'a Value>, untyped: SchemaNode<'a>) -> Self {
        Schema::Custom(schema, untyped)
    }

    fn find(&self, names: &[String]) -> Found<'a> {
        let root = match *self {
            Schema::Builtin(root) => root,
            Schema::Custom(schema, untyped) => {
                if names.first().map(String::as_str) == Some("metadata") {
                    untyped
                } else {
                    return schema
                        .and_then(|schema| custom_node(schema, names))
                        .map_or(Found::Nothing, Found::Custom);
                }
            }
        };
        match root.walk(names) {
            Some((node, rules)) => Found::Builtin(node, rules),
            None => Found::Nothing,
        }
    }

    /// The declared type of the list at this field path.
    pub fn list_type(&self, names: &[String]) -> ListType {
        match self.find(names) {
            Found::Builtin(_, Some(rules)) => builtin_list_type(rules),
            Found::Custom(node) => node
                .as_object()
                .and_then(ListType::declared)
                .unwrap_or(ListType::Atomic),
            _ => ListType::Atomic,
        }
    }

    /// Whether the map or struct at this path is owned as a whole.
    pub fn atomic_map(&self, names: &[String]) -> bool {
        match self.find(names) {
            Found::Builtin(node, rules) => node.is_atomic() || rules.is_some_and(|r| r.map_atomic),
            Found::Custom(node) => {
                node.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
            }
            Found::Nothing => false,
        }
    }
}

/// The schema node of a field path in a custom resource schema.
fn custom_node<'a>(mut node: &'a Value, names: &[String]) -> Option<&'a Value> {
    for name in names {
        while node.get("properties").is_none() {
            match node.get("items") {
                Some(items) => node = items,
                None => break,
            }
        }
        node = match node.get("properties").and_then(|p| p.get(name)) {
            Some(n) => n,
            None => node.get("additionalProperties").filter(|a| a.is_object())?,
        };
    }
    Some(node)
}

/// A built-in list's type: its `x-kubernetes-list-type`, else what its patch strategy implies
/// (merged by a key: a map on that key; merged without one: a set), else atomic.
fn builtin_list_type(rules: &MergeRules) -> ListType {
    match (&rules.list_type, &rules.patch_merge_key) {
        (Some(list_type), _) => list_type.clone(),
        (None, Some(key)) if rules.patch_merge => ListType::Map(vec![key.clone()]),
        (None, None) if rules.patch_merge => ListType::Set,
        _ => ListType::Atomic,
    }
}

/// Defaults of list-map key fields that clients usually leave out.
fn key_default(field: &str) -> Option<Value> {
    match field {
        "protocol" => Some(json!("TCP")),
        _ => None,
    }
}

/// The `k:{...}` element of a list item, if it has every key.
fn key_element(item: &Value, keys: &[String]) -> Option<String> {
    let m = item.as_object()?;
    let mut key = Map::new();
    for k in keys {
        let v = m.get(k).cloned().or_else(|| key_default(k))?;
        if v.is_null() || v.is_object() || v.is_array() {
            return None;
        }
        key.insert(k.clone(), v);
    }
    Some(format!("k:{}", Value::Object(key)))
}

fn value_element(item: &Value) -> String {
    format!("v:{item}")
}

/// The list type to use for these items: declared keys or set semantics only hold when every
/// item fits them and no two items share a key; otherwise the list is atomic.
fn effective_list_type(schema: &Schema, names: &[String], lists: &[&[Value]]) -> ListType {
    match schema.list_type(names) {
        ListType::Map(keys) if !keys.is_empty() => {
            for items in lists {
                let mut seen = std::collections::HashSet::new();
                for item in *items {
                    match key_element(item, &keys) {
                        Some(k) if !seen.contains(&k) => {
                            seen.insert(k);
                        }
                        _ => return ListType::Atomic,
                    }
                }
            }
            ListType::Map(keys)
        }
        ListType::Set => {
            for items in lists {
                let mut seen = std::collections::HashSet::new();
                for item in *items {
                    if item.is_object() || item.is_array() || !seen.insert(item.to_string()) {
                        return ListType::Atomic;
                    }
                }
            }
            ListType::Set
        }
        _ => ListType::Atomic,
    }
}

fn field(name: &str) -> String {
    format!("f:{name}")
}

/// Which parts of an object a write may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracked {
    /// Every field (kinds without a status subresource).
    All,
    /// Everything but `status` (the main resource of kinds with a status subresource).
    NoStatus,
    /// `status` and the labels and annotations (the status subresource).
    StatusOnly,
}

const UNTRACKED_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// The part of an object whose fields are owned.
pub fn tracked_part(obj: &Value, tracked: Tracked) -> Value {
    let Some(m) = obj.as_object() else {
        return json!({});
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if tracked == Tracked::NoStatus => {}
            "metadata" => {
                let Some(meta) = v.as_object() else { continue };
                let kept: Map<String, Value> = meta
                    .iter()
                    .filter(|(k, _)| !UNTRACKED_META.contains(&k.as_str()))
                    .filter(|(k, _)| {
                        tracked != Tracked::StatusOnly
                            || matches!(k.as_str(), "labels" | "annotations")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if !kept.is_empty() {
                    out.insert(k.clone(), Value::Object(kept));
                }
            }
            "status" => {
                out.insert(k.clone(), v.clone());
            }
            _ if tracked == Tracked::StatusOnly => {}
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The fields an applied configuration sets: its leaves and list elements (maps themselves are
/// not owned, so two appliers of different labels share no field).
pub fn applied_fields(schema: &Schema, config: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    if let Some(m) = config.as_object() {
        for (k, v) in m {
            let mut names = vec![k.clone()];
            let mut path = vec![field(k)];
            collect_applied(schema, v, &mut names, &mut path, &mut out);
        }
    }
    out
}

fn collect_applied(
    schema: &Schema,
    value: &Value,
    names: &mut Vec<String>,
    path: &mut Vec<String>,
    out: &mut FieldSet,
) {
    match value {
        Value::Object(m) if !m.is_empty() && !schema.atomic_map(names) => {
            collect_applied_object(schema, m, names, path, out)
        }
        Value::Array(items) => list_fields(schema, items, names, path, out, collect_applied_object),
        _ => out.insert(path),
    }
}

/// Collects the fields inside one object (a map or a keyed list's element).
type ObjectFields =
    fn(&Schema, &Map<String, Value>, &mut Vec<String>, &mut Vec<String>, &mut FieldSet);

/// The fields of a list value: the list itself when atomic, else each element, and through
/// `object` the fields inside each element of a keyed list.
fn list_fields(
    schema: &Schema,
    items: &[Value],
    names: &mut Vec<String>,
    path: &mut Vec<String>,
    out: &mut FieldSet,
    object: ObjectFields,
) {
    match effective_list_type(schema, names, &[items]) {
        ListType::Atomic => out.insert(path),
        ListType::Set => {
            for item in items {
                path.push(value_element(item));
                out.insert(path);
                path.pop();
            }
        }
        ListType::Map(keys) => {
            for item in items {
                path.push(key_element(item, &keys).expect("checked"));
                out.insert(path);
                if let Some(m) = item.as_object() {
                    object(schema, m, names, path, out);
                }
                path.pop();
            }
        }
    }
}

fn collect_applied_object(
    schema: &Schema,
    m: &Map<String, Value>,
    names: &mut Vec<String>,
    path: &mut Vec<String>,
    out: &mut FieldSet,
) {
    for (k, v) in m {
        if v.is_null() {
            continue;
        }
        names.push(k.clone());
        path.push(field(k));
        collect_applied(schema, v, names, path, out);
        path.pop();
        names.pop();
    }
}

/// Structs that always exist in their parent, so creating them does not create an owned map.
fn value_struct(name: &str) -> bool {
    matches!(
        name,
        "metadata"
            | "spec"
            | "status"
            | "template"
            | "strategy"
            | "updateStrategy"
            | "resources"
            | "jobTemplate"
    )
}

/// What an update changed: paths added or modified, and paths removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub changed: FieldSet,
    pub removed: FieldSet,
}

/// Compares two tracked parts (see [`tracked_part`]).
pub fn compare(schema: &Schema, old: &Value, new: &Value) -> Changes {
    let mut c = Changes::default();
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    compare_objects(schema, o, n, &mut Vec::new(), &mut Vec::new(), &mut c);
    c
}

fn compare_objects(
    schema: &Schema,
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    names: &mut Vec<String>,
    path: &mut Vec<String>,
    c: &mut Changes,
) {
    for (k, nv) in n {
        names.push(k.clone());
        path.push(field(k));
        match o.get(k) {
            None => added(schema, nv, names, path, &mut c.changed),
            Some(ov) if ov != nv => compare_values(schema, ov, nv, names, path, c),
            _ => {}
        }
        path.pop();
        names.pop();
    }
    for k in o.keys() {
        if !n.contains_key(k) {
            path.push(field(k));
            c.removed.insert(path);
            path.pop();
        }
    }
}

fn compare_values(
    schema: &Schema,
    old: &Value,
    new: &Value,
    names: &mut Vec<String>,
    path: &mut Vec<String>,
    c: &mut Changes,
) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if !schema.atomic_map(names) => {
            compare_objects(schema, o, n, names, path, c);
            if n.is_empty() {
                c.changed.insert(path);
            }
        }
        (Value::Array(o), Value::Array(n)) => match effective_list_type(schema, names, &[o, n]) {
            ListType::Atomic => c.changed.insert(path),
            ListType::Set => {
                for item in n {
                    if !o.contains(item) {
                        path.push(value_element(item));
                        c.changed.insert(path);
                        path.pop();
                    }
                }
                for item in o {
                    if !n.contains(item) {
                        path.push(value_element(item));
                        c.removed.insert(path);
                        path.pop();
                    }
                }
            }
            ListType::Map(keys) => {
                let old_items: BTreeMap<String, &Value> = o
                    .iter()
                    .map(|i| (key_element(i, &keys).expect("checked"), i))
                    .collect();
                let mut new_keys = std::collections::HashSet::new();
                for item in n {
                    let k = key_element(item, &keys).expect("checked");
                    path.push(k.clone());
                    match old_items.get(&k) {
                        None => {
                            c.changed.insert(path);
                            if let Some(m) = item.as_object() {
                                added_object(schema, m, names, path, &mut c.changed);
                            }
                        }
                        Some(oi) if *oi != item => {
                            let empty = Map::new();
                            compare_objects(
                                schema,
                                oi.as_object().unwrap_or(&empty),
                                item.as_object().unwrap_or(&empty),
                                names,
                                path,
                                c,
                            );
                        }
                        _ => {}
                    }
                    path.pop();
                    new_keys.insert(k);
                }
                for k in old_items.keys() {
                    if !new_keys.contains(k) {
                        path.push(k.clone());
                        c.removed.insert(path);
                        path.pop();
                    }
                }
            }
        },
        _ => {
            // A value replaced by one of another shape: whatever was below is gone.
            if old.is_object() || old.is_array() {
                c.removed.insert(path);
            }
            added(schema, new, names, path, &mut c.changed);
        }
    }
}

/// The fields of a value that did not exist before.
fn added(
    schema: &Schema,
    value: &Value,
    names: &mut Vec<String>,
    path: &mut Vec<String>,
    out: &mut FieldSet,
) {
    match value {
        Value::Object(m) if !m.is_empty() && !schema.atomic_map(names) => {
            if !names.last().is_some_and(|n| value_struct(n)) {
                out.insert(path);
            }
            added_object(schema, m, names, path, out);
        }
        Value::Array(items) => list_fields(schema, items, names, path, out, added_object),
        _ => out.insert(path),
    }
}

fn added_object(
    schema: &Schema,
    m: &Map<String, Value>,
    names: &mut Vec<String>,
    path: &mut Vec<String>,
    out: &mut FieldSet,
) {
    for (k, v) in m {
        names.push(k.clone());
        path.push(field(k));
        added(schema, v, names, path, out);
        path.pop();
        names.pop();
    }
}

/// Merges an applied configuration into the live object: maps merge, keyed lists merge by
/// key, sets merge as sets, atomic lists and scalars are replaced.
pub fn merge(schema: &Schema, live: &Value, config: &Value) -> Value {
    merge_value(schema, Some(live), config, &mut Vec::new())
}

fn merge_value(
    schema: &Schema,
    live: Option<&Value>,
    config: &Value,
    names: &mut Vec<String>,
) -> Value {
    match (live, config) {
        (Some(Value::Object(l)), Value::Object(c))
            if names.is_empty() || !schema.atomic_map(names) =>
        {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                names.push(k.clone());
                let merged = merge_value(schema, l.get(k), cv, names);
                names.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(l)), Value::Array(c)) => {
            match effective_list_type(schema, names, &[l, c]) {
                ListType::Atomic => config.clone(),
                ListType::Set => {
                    let mut out = l.clone();
                    for item in c {
                        if !out.contains(item) {
                            out.push(item.clone());
                        }
                    }
                    Value::Array(out)
                }
                ListType::Map(keys) => {
                    let mut out = l.clone();
                    for item in c {
                        let k = key_element(item, &keys);
                        match out.iter().position(|o| key_element(o, &keys) == k) {
                            Some(i) => {
                                out[i] = merge_value(schema, Some(&out[i]), item, names);
                            }
                            None => out.push(without_nulls(item)),
                        }
                    }
                    Value::Array(out)
                }
            }
        }
        _ => without_nulls(config),
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// Whether a list item is the one a path element names.
fn element_matches(item: &Value, element: &str) -> bool {
    if let Some(key) = element.strip_prefix("k:") {
        let Ok(Value::Object(key)) = serde_json::from_str::<Value>(key) else {
            return false;
        };
        key.iter()
            .all(|(k, v)| item.get(k).cloned().or_else(|| key_default(k)).as_ref() == Some(v))
    } else if let Some(v) = element.strip_prefix("v:") {
        serde_json::from_str::<Value>(v).is_ok_and(|v| &v == item)
    } else {
        false
    }
}

fn child_mut<'v>(value: &'v mut Value, element: &str) -> Option<&'v mut Value> {
    if let Some(name) = element.strip_prefix("f:") {
        value.as_object_mut()?.get_mut(name)
    } else {
        value
            .as_array_mut()?
            .iter_mut()
            .find(|i| element_matches(i, element))
    }
}

/// Removes the field or list element at a path; returns whether it was there.
fn remove_path(value: &mut Value, path: &[String]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = value;
    for p in parents {
        match child_mut(node, p) {
            Some(n) => node = n,
            None => return false,
        }
    }
    if let Some(name) = last.strip_prefix("f:") {
        node.as_object_mut()
            .is_some_and(|m| m.remove(name).is_some())
    } else if let Some(items) = node.as_array_mut() {
        let before = items.len();
        items.retain(|i| !element_matches(i, last));
        items.len() != before
    } else {
        false
    }
}

fn value_at<'v>(value: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let mut node = value;
    for p in path {
        node = child_mut(node, p)?;
    }
    Some(node)
}

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    fn from_json(v: &Value) -> Option<Entry> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
        if let Some(t) = s("fieldsType")
            && t != "FieldsV1"
        {
            return None;
        }
        Some(Entry {
            manager: s("manager").unwrap_or_default(),
            operation: s("operation")?,
            api_version: s("apiVersion").unwrap_or_default(),
            time: s("time"),
            subresource: s("subresource").filter(|s| !s.is_empty()),
            fields: match v.get("fieldsV1") {
                Some(f) => FieldSet::from_json(f)?,
                None => FieldSet::new(),
            },
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), self.fields.to_json());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }

    fn is(&self, manager: &Manager, operation: &str) -> bool {
        self.manager == manager.name
            && self.operation == operation
            && self.subresource.as_deref() == manager.subresource
    }

    /// How conflicts name the manager: `"kubectl" using apps/v1`.
    fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.api_version.is_empty() {
            s.push_str(&format!(" using {}", self.api_version));
        }
        if self.operation == "Update"
            && let Some(t) = &self.time
        {
            s.push_str(&format!(" at {t}"));
        }
        s
    }
}

/// The entries of a `managedFields` list; None when it is malformed.
pub fn parse_entries(v: &Value) -> Option<Vec<Entry>> {
    v.as_array()?.iter().map(Entry::from_json).collect()
}

/// `[{}]`: the request to drop all managed fields.
pub fn is_reset(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|a| a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
}

fn entries_of(obj: &Value) -> Vec<Entry> {
    obj.at("/metadata/managedFields")
        .and_then(parse_entries)
        .unwrap_or_default()
}

fn store_entries(obj: &mut Value, entries: &[Entry]) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(meta) = meta else { return };
    let live: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::to_json)
        .collect();
    if live.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(live));
    }
}

/// Who writes.
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    pub name: &'a str,
    /// `group/version` of the request.
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
}

/// The manager of a write without `fieldManager`: the User-Agent's program name.
pub fn manager_from_user_agent(user_agent: &str) -> String {
    let prefix = user_agent.split('/').next().unwrap_or("");
    prefix.chars().take(128).collect()
}

/// Records a write other than apply in `next`'s managedFields: the writer's `Update` entry gains
/// what changed, every other entry loses it. `next` carries the managedFields of the request:
/// `[{}]` drops them all, a valid list replaces the stored ones, anything else keeps them.
pub fn record_update(
    schema: &Schema,
    old: Option<&Value>,
    next: &mut Value,
    manager: &Manager,
    tracked: Tracked,
    now: &str,
) {
    let requested = next
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"));
    let mut entries = match &requested {
        Some(v) if is_reset(v) => return,
        Some(v) => match parse_entries(v) {
            Some(e) if !e.is_empty() => e,
            _ => old.map(entries_of).unwrap_or_default(),
        },
        None => old.map(entries_of).unwrap_or_default(),
    };
    let before = entries.clone();
    let old_part = old.map(|o| tracked_part(o, tracked)).unwrap_or(json!({}));
    let new_part = tracked_part(next, tracked);
    let changes = compare(schema, &old_part, &new_part);
    for e in entries.iter_mut() {
        e.fields.remove_subtrees(&changes.removed);
        if !e.is(manager, "Update") {
            e.fields = e.fields.difference(&changes.changed);
        }
    }
    if !changes.changed.is_empty() {
        match entries.iter_mut().find(|e| e.is(manager, "Update")) {
            Some(e) => {
                e.fields.union(&changes.changed);
                e.time = Some(now.to_string());
                e.api_version = manager.api_version.to_string();
            }
            None => entries.push(Entry {
                manager: manager.name.to_string(),
                operation: "Update".into(),
                api_version: manager.api_version.to_string(),
                time: Some(now.to_string()),
                subresource: manager.subresource.map(String::from),
                fields: changes.changed.clone(),
            }),
        }
    }
    if entries == before
        && requested.is_none()
        && let Some(old) = old
    {
        // Nothing changed: keep the stored list exactly.
        if let Some(mf) = old.at("/metadata/managedFields").cloned() {
            next["metadata"]["managedFields"] = mf;
        }
        return;
    }
    store_entries(next, &entries);
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// `"kubectl" using apps/v1`.
    pub manager: String,
    /// `.spec.replicas`.
    pub field: String,
    /// The path as field set elements.
    pub path: Vec<String>,
}

/// kube-apiserver's message for apply conflicts.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        let c = &conflicts[0];
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            c.manager, c.field
        );
    }
    let mut by_manager: Vec<(&str, Vec<&str>)> = Vec::new();
    for c in conflicts {
        match by_manager.iter_mut().find(|(m, _)| *m == c.manager) {
            Some((_, fields)) => fields.push(&c.field),
            None => by_manager.push((&c.manager, vec![&c.field])),
        }
    }
    let parts: Vec<String> = by_manager
        .iter()
        .map(|(m, fields)| {
            let list: Vec<String> = fields.iter().map(|f| format!("- {f}")).collect();
            format!("conflicts with {m}:\n{}", list.join("\n"))
        })
        .collect();
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        parts.join("\n")
    )
}

/// The annotation client-side `kubectl apply` keeps its configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The manager kubectl uses for server-side apply, which takes over from client-side apply.
const KUBECTL: &str = "kubectl";

fn last_applied(obj: &Value) -> Option<Value> {
    let text = obj
        .at("/metadata/annotations")?
        .get(LAST_APPLIED)?
        .as_str()?;
    serde_json::from_str(text).ok()
}

/// Server-side apply as kube-apiserver serves it to kubectl: an apply by `kubectl` to an object
/// managed with client-side apply takes over the fields of the last-applied configuration
/// without conflicts, and keeps that annotation up to date so client-side apply keeps working.
#[allow(clippy::too_many_arguments)]
pub fn apply_from_kubectl(
    schema: &Schema,
    live: Option<&Value>,
    config: &Value,
    manager: &Manager,
    force: bool,
    tracked: Tracked,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let previous = live.and_then(last_applied);
    let mut result = apply(schema, live, config, manager, force, tracked, now);
    if manager.name != KUBECTL || manager.subresource.is_some() {
        return result;
    }
    if let (Err(conflicts), Some(previous)) = (&result, &previous) {
        let allowed = applied_fields(schema, &tracked_part(previous, tracked));
        let remaining: Vec<Conflict> = conflicts
            .iter()
            .filter(|c| !allowed.contains(&c.path))
            .cloned()
            .collect();
        result = if remaining.is_empty() {
            apply(schema, live, config, manager, true, tracked, now)
        } else {
            Err(remaining)
        };
    }
    if let (Ok(obj), Some(_)) = (&mut result, &previous) {
        let mut recorded = config.clone();
        if let Some(a) = recorded
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(LAST_APPLIED);
            if a.is_empty() {
                recorded["metadata"]
                    .as_object_mut()
                    .expect("metadata is a map")
                    .remove("annotations");
            }
        }
        if let Some(a) = obj
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.insert(LAST_APPLIED.into(), json!(format!("{recorded}\n")));
        }
    }
    result
}

/// Server-side apply of `config` to `live` (None: the object does not exist yet). Returns the
/// merged object with its managedFields, or the conflicts when `force` is not set.
pub fn apply(
    schema: &Schema,
    live: Option<&Value>,
    config: &Value,
    manager: &Manager,
    force: bool,
    tracked: Tracked,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let config_part = tracked_part(config, tracked);
    let applied = applied_fields(schema, &config_part);
    let mut entries = live.map(entries_of).unwrap_or_default();
    let empty = json!({});
    let live_obj = live.unwrap_or(&empty);
    let mut merged = merge(schema, live_obj, &config_part);
    let changes = compare(
        schema,
        &tracked_part(live_obj, tracked),
        &tracked_part(&merged, tracked),
    );
    let touched = {
        let mut t = changes.changed.clone();
        t.union(&changes.removed);
        t
    };
    let mut conflicts = Vec::new();
    for e in entries.iter_mut() {
        if e.is(manager, "Apply") {
            continue;
        }
        let clash = e.fields.intersection(&touched);
        if clash.is_empty() {
            continue;
        }
        if force {
            e.fields = e.fields.difference(&clash);
        } else {
            for p in clash.paths() {
                conflicts.push(Conflict {
                    manager: e.describe(),
                    field: path_string(&p),
                    path: p,
                });
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(conflicts);
    }
    // Fields this manager applied before and no longer applies go, unless someone else owns
    // them too.
    let previous = entries
        .iter()
        .find(|e| e.is(manager, "Apply"))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let mut others = FieldSet::new();
    for e in entries.iter().filter(|e| !e.is(manager, "Apply")) {
        others.union(&e.fields);
    }
    let dropped = previous.difference(&applied);
    let mut removed_paths = Vec::new();
    for p in dropped.paths() {
        if others.contains_at_or_below(&p) || applied.contains_at_or_below(&p) {
            continue;
        }
        if remove_path(&mut merged, &p) {
            removed_paths.push(p);
        }
    }
    // Maps left empty by the removal go too, unless owned.
    for p in &removed_paths {
        for len in (2..p.len()).rev() {
            let prefix = &p[..len];
            if others.contains(prefix) || applied.contains(prefix) {
                break;
            }
            let empty_map = value_at(&mut merged, prefix)
                .is_some_and(|v| v.as_object().is_some_and(Map::is_empty));
            if !empty_map || !prefix[len - 1].starts_with("f:") {
                break;
            }
            remove_path(&mut merged, prefix);
        }
    }
    let own = Entry {
        manager: manager.name.to_string(),
        operation: "Apply".into(),
        api_version: manager.api_version.to_string(),
        time: Some(now.to_string()),
        subresource: manager.subresource.map(String::from),
        fields: applied,
    };
    match entries.iter_mut().find(|e| e.is(manager, "Apply")) {
        Some(e) if e.fields == own.fields && e.api_version == own.api_version => {}
        Some(e) => *e = own,
        None => entries.push(own),
    }
    store_entries(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: &str = "2025-01-01T00:00:00Z";

    fn mgr(name: &str) -> Manager<'_> {
        Manager {
            name,
            api_version: "apps/v1",
            subresource: None,
        }
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": image,
                        "ports": [{"containerPort": 80}]}]}
                }
            }
        })
    }

    static OPENAPI: std::sync::LazyLock<openapi::OpenApi> =
        std::sync::LazyLock::new(crate::build_openapi);

    fn builtin(group: &str, kind: &str) -> Schema<'static> {
        Schema::builtin(OPENAPI.kind_schema(group, "v1", kind))
    }

    fn deployment_schema() -> Schema<'static> {
        builtin("apps", "Deployment")
    }

    fn managed(obj: &Value) -> Vec<Entry> {
        entries_of(obj)
    }

    #[test]
    fn fieldsv1_round_trip() {
        let v = json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}, "f:image": {}}}}});
        let set = FieldSet::from_json(&v).unwrap();
        assert_eq!(set.to_json(), v);
        assert!(set.contains(&["f:metadata".into(), "f:labels".into()]));
        assert!(!set.contains(&["f:spec".into()]));
        assert!(FieldSet::from_json(&json!({"x": {}})).is_none());
    }

    #[test]
    fn applied_fields_of_a_deployment() {
        let set = applied_fields(
            &deployment_schema(),
            &tracked_part(&deployment(2, "nginx"), Tracked::NoStatus),
        );
        assert_eq!(
            set.to_json(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            })
        );
    }

    #[test]
    fn apply_creates_then_conflicts_then_forces() {
        let s = deployment_schema();
        let obj = apply(
            &s,
            None,
            &deployment(2, "nginx"),
            &mgr("kubectl"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        let e = managed(&obj);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].operation, "Apply");
        // Same values from another manager: shared, no conflict.
        let shared = apply(
            &s,
            Some(&obj),
            &deployment(2, "nginx"),
            &mgr("other"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        assert_eq!(managed(&shared).len(), 2);
        // A different value conflicts.
        let err = apply(
            &s,
            Some(&obj),
            &deployment(3, "nginx"),
            &mgr("other"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].manager, "\"kubectl\" using apps/v1");
        assert_eq!(err[0].field, ".spec.replicas");
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
        );
        // Forced: taken over.
        let forced = apply(
            &s,
            Some(&obj),
            &deployment(3, "nginx"),
            &mgr("other"),
            true,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let e = managed(&forced);
        let kubectl = e.iter().find(|e| e.manager == "kubectl").unwrap();
        assert!(
            !kubectl
                .fields
                .contains(&["f:spec".into(), "f:replicas".into()])
        );
        let other = e.iter().find(|e| e.manager == "other").unwrap();
        assert!(
            other
                .fields
                .contains(&["f:spec".into(), "f:replicas".into()])
        );
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let s = deployment_schema();
        let mut cfg = deployment(2, "nginx");
        cfg["metadata"]["labels"]["tier"] = json!("front");
        cfg["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "busybox"}));
        let obj = apply(
            &s,
            None,
            &cfg,
            &mgr("kubectl"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        let obj2 = apply(
            &s,
            Some(&obj),
            &deployment(2, "nginx"),
            &mgr("kubectl"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        assert_eq!(obj2["metadata"]["labels"], json!({"app": "web"}));
        assert_eq!(
            obj2["spec"]["template"]["spec"]["containers"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        // A field also owned by someone else stays.
        let shared = apply(
            &s,
            Some(&obj),
            &cfg,
            &mgr("other"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        let obj3 = apply(
            &s,
            Some(&shared),
            &deployment(2, "nginx"),
            &mgr("kubectl"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        assert_eq!(obj3["metadata"]["labels"]["tier"], "front");
        // Dropping the whole label map removes the map.
        let mut no_labels = deployment(2, "nginx");
        no_labels["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("labels");
        let obj4 = apply(
            &s,
            Some(&obj),
            &no_labels,
            &mgr("kubectl"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        assert!(obj4["metadata"].get("labels").is_none(), "{obj4}");
    }

    #[test]
    fn updates_take_over_changed_fields() {
        let s = deployment_schema();
        let obj = apply(
            &s,
            None,
            &deployment(2, "nginx"),
            &mgr("kubectl"),
            false,
            Tracked::NoStatus,
            NOW,
        )
        .unwrap();
        let mut next = obj.clone();
        next["spec"]["replicas"] = json!(5);
        next["metadata"]["annotations"] = json!({"note": "x"});
        record_update(
            &s,
            Some(&obj),
            &mut next,
            &mgr("kubectl-edit"),
            Tracked::NoStatus,
            NOW,
        );
        let e = managed(&next);
        let edit = e.iter().find(|e| e.manager == "kubectl-edit").unwrap();
        assert_eq!(edit.operation, "Update");
        assert_eq!(
            edit.fields.to_json(),
            json!({"f:metadata": {"f:annotations": {".": {}, "f:note": {}}}, "f:spec": {"f:replicas": {}}})
        );
        let apply_entry = e.iter().find(|e| e.manager == "kubectl").unwrap();
        assert!(
            !apply_entry
                .fields
                .contains(&["f:spec".into(), "f:replicas".into()])
        );
        // Unchanged update: managedFields stay exactly.
        let mut same = next.clone();
        record_update(
            &s,
            Some(&next),
            &mut same,
            &mgr("x"),
            Tracked::NoStatus,
            "later",
        );
        assert_eq!(same, next);
        // Reset.
        let mut reset = next.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        record_update(
            &s,
            Some(&next),
            &mut reset,
            &mgr("x"),
            Tracked::NoStatus,
            NOW,
        );
        assert!(reset["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn kubectl_takes_over_from_client_side_apply() {
        let s = deployment_schema();
        let cm = |color: &str| {
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c"}, "data": {"color": color}})
        };
        let mut live = cm("blue");
        live["metadata"]["annotations"] = json!({LAST_APPLIED: cm("blue").to_string()});
        record_update(
            &s,
            None,
            &mut live,
            &mgr("kubectl-client-side-apply"),
            Tracked::All,
            NOW,
        );
        let err = apply(
            &s,
            Some(&live),
            &cm("green"),
            &mgr("kubectl"),
            false,
            Tracked::All,
            NOW,
        );
        assert!(err.is_err());
        let out = apply_from_kubectl(
            &s,
            Some(&live),
            &cm("green"),
            &mgr("kubectl"),
            false,
            Tracked::All,
            NOW,
        )
        .unwrap();
        assert_eq!(out["data"]["color"], "green");
        let recorded: Value = serde_json::from_str(
            out["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(recorded, cm("green"));
        // Other managers get the conflict.
        assert!(
            apply_from_kubectl(
                &s,
                Some(&live),
                &cm("green"),
                &mgr("other"),
                false,
                Tracked::All,
                NOW
            )
            .is_err()
        );
    }

    #[test]
    fn create_records_maps_with_dot() {
        let s = builtin("", "ConfigMap");
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"a": "b"}}, "data": {"k": "v"}});
        record_update(
            &s,
            None,
            &mut obj,
            &mgr("kubectl-create"),
            Tracked::All,
            NOW,
        );
        assert_eq!(
            managed(&obj)[0].fields.to_json(),
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
        );
    }

    #[test]
    fn list_and_map_types_come_from_the_schema() {
        let service = json!({"spec": {
            "ports": [{"port": 80, "targetPort": 8080}],
            "selector": {"app": "web"},
            "ipFamilies": ["IPv4"]
        }});
        assert_eq!(
            applied_fields(&builtin("", "Service"), &service).to_json(),
            json!({"f:spec": {
                "f:ipFamilies": {},
                "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {
                    ".": {}, "f:port": {}, "f:targetPort": {}}},
                "f:selector": {}
            }})
        );
        let node = json!({"spec": {
            "taints": [{"key": "a", "effect": "NoSchedule"}],
            "podCIDRs": ["10.0.0.0/24"]
        }});
        assert_eq!(
            applied_fields(&builtin("", "Node"), &node).to_json(),
            json!({"f:spec": {"f:podCIDRs": {"v:\"10.0.0.0/24\"": {}}, "f:taints": {}}})
        );
    }

    #[test]
    fn custom_schema_list_types() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "items": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                "items": {"type": "object", "properties": {"id": {"type": "string"}, "v": {"type": "string"}}}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "plain": {"type": "array", "items": {"type": "string"}}}}}});
        let s = Schema::custom(
            Some(&schema),
            OPENAPI.kind_schema("example.com", "v1", "Widget"),
        );
        let cfg =
            json!({"spec": {"items": [{"id": "a", "v": "1"}], "tags": ["x"], "plain": ["p"]}});
        let set = applied_fields(&s, &cfg);
        assert_eq!(
            set.to_json(),
            json!({"f:spec": {"f:items": {"k:{\"id\":\"a\"}": {".": {}, "f:id": {}, "f:v": {}}},
                "f:plain": {}, "f:tags": {"v:\"x\"": {}}}})
        );
        let live =
            json!({"spec": {"items": [{"id": "b", "v": "2"}], "tags": ["y"], "plain": ["q"]}});
        let merged = merge(&s, &live, &cfg);
        assert_eq!(
            merged,
            json!({"spec": {"items": [{"id": "b", "v": "2"}, {"id": "a", "v": "1"}], "tags": ["y", "x"], "plain": ["p"]}})
        );
    }

    #[test]
    fn path_strings() {
        assert_eq!(
            path_string(&[
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"nginx\"}".into(),
                "f:image".into()
            ]),
            ".spec.containers[name=\"nginx\"].image"
        );
        assert_eq!(
            path_string(&["f:metadata".into(), "f:finalizers".into(), "v:\"a\"".into()]),
            ".metadata.finalizers[=\"a\"]"
        );
        assert_eq!(
            manager_from_user_agent("kubectl/v1.33.1 (linux/amd64) kubernetes/abc"),
            "kubectl"
        );
    }

    fn arb_config() -> impl Strategy<Value = Value> {
        (
            0i64..4,
            proptest::collection::btree_map("[a-c]", "[x-z]", 0..3),
            proptest::collection::btree_map("[a-c]", "[x-z]{1,2}", 0..3),
            proptest::collection::vec("[a-c]", 0..3),
        )
            .prop_map(|(replicas, labels, containers, finalizers)| {
                let containers: Vec<Value> = containers
                    .into_iter()
                    .map(|(n, i)| json!({"name": n, "image": i}))
                    .collect();
                let mut fin: Vec<String> = finalizers;
                fin.sort();
                fin.dedup();
                json!({"metadata": {"labels": labels, "finalizers": fin},
                    "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}}})
            })
    }

    proptest! {
        #[test]
        fn apply_is_idempotent(live in arb_config(), cfg in arb_config()) {
            let s = deployment_schema();
            let base = apply(&s, None, &live, &mgr("a"), false, Tracked::All, NOW).unwrap();
            let once = apply(&s, Some(&base), &cfg, &mgr("a"), false, Tracked::All, NOW).unwrap();
            let twice = apply(&s, Some(&once), &cfg, &mgr("a"), false, Tracked::All, "later").unwrap();
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn second_manager_conflicts_only_on_different_values(a in arb_config(), b in arb_config()) {
            let s = deployment_schema();
            let base = apply(&s, None, &a, &mgr("a"), false, Tracked::All, NOW).unwrap();
            match apply(&s, Some(&base), &b, &mgr("b"), false, Tracked::All, NOW) {
                Ok(obj) => {
                    // Everything b applied is now in the object with b's values.
                    let merged = merge(&s, &base, &b);
                    prop_assert_eq!(obj["spec"].clone(), merged["spec"].clone());
                }
                Err(conflicts) => {
                    for c in conflicts {
                        prop_assert!(c.manager.starts_with("\"a\""));
                        if c.field == ".spec.replicas" {
                            prop_assert_ne!(&a["spec"]["replicas"], &b["spec"]["replicas"]);
                        }
                    }
                }
            }
            // The same configuration never conflicts.
            prop_assert!(apply(&s, Some(&base), &a, &mgr("b"), false, Tracked::All, NOW).is_ok());
        }
    }
}
