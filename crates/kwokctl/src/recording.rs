//! Recordings: upstream KWOK's `ResourcePatch` documents (apiVersion
//! `action.kwok.x-k8s.io/v1alpha1`) that follow a `k8s` snapshot in the file written by
//! `snapshot export --record`, and the time rewriting both directions use.
//!
//! Each document names a resource (`group`, `version`, `resource`), a target object (`name`,
//! `namespace`), the time since recording began (`durationNanosecond`), and a `method`: `create`
//! with the whole object as `template`, `patch` with a strategic merge patch from the previous
//! state (a JSON merge patch for custom resources), or `delete`. Timestamps anywhere in the file
//! are written relative to the recording's start as `$(time-offset-nanosecond N)` and turned
//! back into absolute times, relative to the replay's start, when it is played.

use std::collections::HashMap;
use std::io::Write;
use std::time::Instant;

use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The apiVersion of upstream's recording documents.
pub const API_VERSION: &str = "action.kwok.x-k8s.io/v1alpha1";
/// The kind of upstream's recording documents.
pub const KIND: &str = "ResourcePatch";

const OFFSET_PREFIX: &str = "$(time-offset-nanosecond ";

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcePatch {
    pub api_version: String,
    pub kind: String,
    pub resource: GroupVersionResource,
    pub target: Target,
    pub duration_nanosecond: i64,
    pub method: Method,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupVersionResource {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    pub version: String,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Target {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Create,
    Patch,
    Delete,
}

impl ResourcePatch {
    /// Whether a parsed document is a recorded change.
    pub fn is_patch(doc: &Value) -> bool {
        doc["kind"] == KIND && doc["apiVersion"] == API_VERSION
    }

    /// The object this change applies to; changes of one object must be applied in order.
    pub fn object_key(&self) -> (&GroupVersionResource, &Target) {
        (&self.resource, &self.target)
    }
}

impl GroupVersionResource {
    /// Built-in groups take strategic merge patches; custom resources JSON merge patches.
    pub fn strategic(&self) -> bool {
        self.group.is_empty() || !self.group.contains('.') || self.group.ends_with(".k8s.io")
    }

    /// The collection path in `namespace` (empty: cluster-scoped or all namespaces).
    pub fn collection(&self, namespace: &str) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        if namespace.is_empty() {
            format!("{base}/{}", self.resource)
        } else {
            format!("{base}/namespaces/{namespace}/{}", self.resource)
        }
    }

    /// The group-version (`v1`, `apps/v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Lists whose elements strategic merge patches merge by a key, by field name, as the
/// Kubernetes API declares them for the fields a recording usually touches. Other lists are
/// replaced whole.
const MERGE_KEYS: &[(&str, &str)] = &[
    ("conditions", "type"),
    ("containers", "name"),
    ("initContainers", "name"),
    ("ephemeralContainers", "name"),
    ("volumes", "name"),
    ("env", "name"),
    ("volumeMounts", "mountPath"),
    ("imagePullSecrets", "name"),
    ("ownerReferences", "uid"),
    ("addresses", "type"),
];

/// The patch from `old` to `new`: `None` when they are equal. With `strategic`, lists of
/// [`MERGE_KEYS`] are patched element by element and removed finalizers listed in
/// `$deleteFromPrimitiveList/finalizers`; otherwise (and for other lists) a changed list is
/// replaced whole, as in a JSON merge patch.
pub fn diff(old: &Value, new: &Value, strategic: bool) -> Option<Value> {
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        return (old != new).then(|| new.clone());
    };
    let mut out = Map::new();
    for (k, nv) in n {
        match o.get(k) {
            None => {
                out.insert(k.clone(), nv.clone());
            }
            Some(ov) if ov == nv => {}
            Some(ov) => {
                if let Some(d) = diff_field(k, ov, nv, strategic, &mut out) {
                    out.insert(k.clone(), d);
                }
            }
        }
    }
    for k in o.keys().filter(|k| !n.contains_key(*k)) {
        out.insert(k.clone(), Value::Null);
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn diff_field(
    key: &str,
    old: &Value,
    new: &Value,
    strategic: bool,
    out: &mut Map<String, Value>,
) -> Option<Value> {
    match (old, new) {
        (Value::Object(_), Value::Object(_)) => diff(old, new, strategic),
        (Value::Array(o), Value::Array(n)) if strategic => {
            if key == "finalizers" {
                let removed: Vec<Value> = o.iter().filter(|v| !n.contains(v)).cloned().collect();
                if !removed.is_empty() {
                    out.insert(
                        "$deleteFromPrimitiveList/finalizers".into(),
                        Value::Array(removed),
                    );
                }
                let added: Vec<Value> = n.iter().filter(|v| !o.contains(v)).cloned().collect();
                return (!added.is_empty()).then_some(Value::Array(added));
            }
            match MERGE_KEYS.iter().find(|(k, _)| *k == key) {
                Some((_, merge_key)) if keyed(o, merge_key) && keyed(n, merge_key) => {
                    Some(diff_keyed(o, n, merge_key))
                }
                _ => Some(new.clone()),
            }
        }
        _ => Some(new.clone()),
    }
}

fn keyed(items: &[Value], key: &str) -> bool {
    items.iter().all(|i| i.get(key).is_some())
}

fn diff_keyed(old: &[Value], new: &[Value], key: &str) -> Value {
    let mut out = Vec::new();
    for n in new {
        match old.iter().find(|o| o.get(key) == n.get(key)) {
            Some(o) => {
                if let Some(Value::Object(mut d)) = diff(o, n, true) {
                    d.insert(key.to_string(), n[key].clone());
                    out.push(Value::Object(d));
                }
            }
            None => out.push(n.clone()),
        }
    }
    for o in old
        .iter()
        .filter(|o| !new.iter().any(|n| n.get(key) == o.get(key)))
    {
        out.push(serde_json::json!({key: o[key].clone(), "$patch": "delete"}));
    }
    Value::Array(out)
}

/// A synthetic recording of `pods` pod lifecycles on one node, 2 ms apart: each pod created,
/// bound 100 ms later, Running 200 ms after that and deleted 5 s after its creation (the
/// benchmark's replay and its test).
pub fn pod_lifecycles(pods: usize) -> String {
    const MS: u64 = 1_000_000;
    let api = "action.kwok.x-k8s.io/v1alpha1";
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-0"},
        "status": {"allocatable": {"cpu": "100k", "memory": "1000Ti", "pods": "1M"}}});
    let mut changes = Vec::new();
    for i in 0..pods {
        let name = format!("pod-{i:06}");
        let t0 = i as u64 * 2 * MS;
        let change = |t: u64, method: &str, template: Option<Value>| {
            let mut c = json!({"apiVersion": api, "kind": "ResourcePatch",
                "resource": {"version": "v1", "resource": "pods"},
                "target": {"name": name, "namespace": "default"},
                "durationNanosecond": t, "method": method});
            if let Some(t) = template {
                c["template"] = t;
            }
            (t, c)
        };
        changes.push(change(
            t0,
            "create",
            Some(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "uid": format!("u{i}")},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Pending"}})),
        ));
        changes.push(change(
            t0 + 100 * MS,
            "patch",
            Some(json!({"spec": {"nodeName": "node-0"}})),
        ));
        changes.push(change(
            t0 + 300 * MS,
            "patch",
            Some(json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}})),
        ));
        changes.push(change(t0 + 5000 * MS, "delete", None));
    }
    changes.sort_by_key(|(t, _)| *t);
    let mut text = format!("---\n{node}\n");
    for (_, c) in changes {
        text.push_str(&format!("---\n{c}\n"));
    }
    text
}

/// Parses a multi-document YAML stream of any length, one document at a time (the YAML parser
/// limits how many documents one call may hold). Documents are split at `---` lines; one that
/// is a JSON object is read as JSON, which is faster.
pub fn documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    let mut doc = String::new();
    let mut line_no = 0;
    let mut start = 1;
    for line in text.split_inclusive('\n') {
        line_no += 1;
        if line.trim_end() == "---" {
            push_document(&doc, start, &mut out)?;
            doc.clear();
            start = line_no + 1;
        } else {
            doc.push_str(line);
        }
    }
    push_document(&doc, start, &mut out)?;
    Ok(out)
}

fn push_document(text: &str, line: usize, out: &mut Vec<Value>) -> anyhow::Result<()> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.lines().all(|l| l.trim_start().starts_with('#')) {
        return Ok(());
    }
    let value: Value = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).map_err(|e| anyhow!("document at line {line}: {e}"))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| anyhow!("document at line {line}: {e}"))?
    };
    if !value.is_null() {
        out.push(value);
    }
    Ok(())
}

/// Whether `s` looks like an RFC 3339 timestamp (`2006-01-02T15:04:05[.frac](Z|±hh:mm)`).
fn looks_like_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b[i].is_ascii_digit());
    b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
}

/// Rewrites every timestamp string in `v` as an offset from `base`.
pub fn to_relative(v: &mut Value, base: jiff::Timestamp) {
    walk_strings(v, &mut |s| {
        if !looks_like_time(s) {
            return None;
        }
        let t: jiff::Timestamp = s.parse().ok()?;
        let offset = t.as_nanosecond() - base.as_nanosecond();
        Some(format!("{OFFSET_PREFIX}{offset})"))
    });
}

/// Turns every `$(time-offset-nanosecond N)` in `v` into the time `base + N` (RFC 3339, in
/// microseconds, UTC).
pub fn from_relative(v: &mut Value, base: jiff::Timestamp) {
    walk_strings(v, &mut |s| {
        let n: i128 = s
            .strip_prefix(OFFSET_PREFIX)?
            .strip_suffix(')')?
            .trim()
            .parse()
            .ok()?;
        let t = jiff::Timestamp::from_nanosecond(base.as_nanosecond() + n).ok()?;
        Some(format!(
            "{}.{:06}Z",
            t.strftime("%Y-%m-%dT%H:%M:%S"),
            t.subsec_microsecond()
        ))
    });
}

fn walk_strings(v: &mut Value, f: &mut impl FnMut(&str) -> Option<String>) {
    match v {
        Value::String(s) => {
            if let Some(new) = f(s) {
                *s = new;
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|i| walk_strings(i, f)),
        Value::Object(m) => m.values_mut().for_each(|i| walk_strings(i, f)),
        _ => {}
    }
}

/// The identity of a tracked object.
type ObjectKey = (GroupVersionResource, String, String);

/// Turns watch events into [`ResourcePatch`] documents on `out`, keeping the last state of each
/// object to compute patches from.
pub struct Recorder<W: Write> {
    out: W,
    /// The export's start: timestamps are written relative to it.
    base: jiff::Timestamp,
    /// The recording's start: `durationNanosecond` counts from it.
    start: Instant,
    tracks: HashMap<ObjectKey, Value>,
    /// Changes written.
    pub count: usize,
}

impl<W: Write> Recorder<W> {
    pub fn new(out: W, base: jiff::Timestamp) -> Self {
        Self {
            out,
            base,
            start: Instant::now(),
            tracks: HashMap::new(),
            count: 0,
        }
    }

    /// Starts the clock of `durationNanosecond`.
    pub fn start_now(&mut self) {
        self.start = Instant::now();
    }

    /// Remembers an object of the exported snapshot, so its first change is a patch.
    pub fn track(&mut self, gvr: &GroupVersionResource, obj: &Value) {
        let mut obj = obj.clone();
        clean(&mut obj);
        self.tracks.insert(key_of(gvr, &obj), obj);
    }

    /// The tracked objects of one resource (to find those deleted while a watch was down).
    pub fn tracked(&self, gvr: &GroupVersionResource) -> Vec<(String, String)> {
        self.tracks
            .keys()
            .filter(|(g, _, _)| g == gvr)
            .map(|(_, ns, name)| (ns.clone(), name.clone()))
            .collect()
    }

    /// Writes a snapshot object (timestamps made relative).
    pub fn write_object(&mut self, obj: &Value) -> anyhow::Result<()> {
        let mut obj = obj.clone();
        to_relative(&mut obj, self.base);
        self.write_doc(&obj)
    }

    /// Records one watch event (`ADDED`, `MODIFIED`, `DELETED`); others are ignored.
    pub fn event(
        &mut self,
        gvr: &GroupVersionResource,
        kind: &str,
        mut obj: Value,
    ) -> anyhow::Result<()> {
        clean(&mut obj);
        let key = key_of(gvr, &obj);
        let (method, template) = match kind {
            "ADDED" | "MODIFIED" => match self.tracks.get(&key) {
                None => (Method::Create, Some(obj.clone())),
                Some(old) => match diff(old, &obj, gvr.strategic()) {
                    Some(patch) => (Method::Patch, Some(patch)),
                    None => return Ok(()),
                },
            },
            "DELETED" => {
                if self.tracks.remove(&key).is_none() {
                    return Ok(());
                }
                (Method::Delete, None)
            }
            _ => return Ok(()),
        };
        if method != Method::Delete {
            self.tracks.insert(key.clone(), obj);
        }
        let duration = i64::try_from(self.start.elapsed().as_nanos()).unwrap_or(i64::MAX);
        let patch = ResourcePatch {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            resource: gvr.clone(),
            target: Target {
                name: key.2,
                namespace: key.1,
            },
            duration_nanosecond: duration,
            method,
            template,
        };
        let mut doc = serde_json::to_value(&patch)?;
        to_relative(&mut doc, self.base);
        self.write_doc(&doc)?;
        self.count += 1;
        Ok(())
    }

    fn write_doc(&mut self, doc: &Value) -> anyhow::Result<()> {
        let text = serde_saphyr::to_string(doc).map_err(|e| anyhow!("render YAML: {e}"))?;
        self.out.write_all(b"---\n")?;
        self.out.write_all(text.as_bytes())?;
        if !text.ends_with('\n') {
            self.out.write_all(b"\n")?;
        }
        self.out.flush()?;
        Ok(())
    }
}

/// Drops what changes on every write or only matters to the server.
fn clean(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
        meta.remove("selfLink");
    }
}

fn key_of(gvr: &GroupVersionResource, obj: &Value) -> ObjectKey {
    let meta = &obj["metadata"];
    let s = |k: &str| meta[k].as_str().unwrap_or("").to_string();
    (gvr.clone(), s("namespace"), s("name"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_lifecycle_patches() {
        let old = json!({"metadata": {"name": "p", "finalizers": ["a", "b"]},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"phase": "Pending", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "c", "state": {"waiting": {}}}]}});
        let new = json!({"metadata": {"name": "p", "finalizers": ["a"]},
            "spec": {"containers": [{"name": "c", "image": "x"}], "nodeName": "n"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "state": {"running": {}}}]}});
        let d = diff(&old, &new, true).unwrap();
        assert_eq!(
            d,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]},
                "spec": {"nodeName": "n"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [{"name": "c", "state": {"running": {}}}]}})
        );
        assert_eq!(diff(&old, &old, true), None);
        let merge = diff(&old, &new, false).unwrap();
        assert_eq!(merge["metadata"]["finalizers"], json!(["a"]));
    }

    #[test]
    fn times_round_trip_through_offsets() {
        let base: jiff::Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let mut v = json!({"t": "2024-01-01T00:00:01Z", "n": "2024-01-01", "x": 1});
        to_relative(&mut v, base);
        assert_eq!(v["t"], "$(time-offset-nanosecond 1000000000)");
        assert_eq!(v["n"], "2024-01-01");
        let later: jiff::Timestamp = "2025-06-01T10:00:00Z".parse().unwrap();
        from_relative(&mut v, later);
        assert_eq!(v["t"], "2025-06-01T10:00:01.000000Z");
    }

    #[test]
    fn long_streams_parse_document_by_document() {
        let mut text = String::from("# recording\n");
        for i in 0..3000 {
            text.push_str(&format!(
                "---\nkind: A\nn: {i}\n---\n{{\"kind\": \"B\", \"n\": {i}}}\n"
            ));
        }
        let docs = documents(&text).unwrap();
        assert_eq!(docs.len(), 6000);
        assert_eq!(docs[5999], json!({"kind": "B", "n": 2999}));
        assert!(
            documents("a: [")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
    }

    #[test]
    fn snapshots_restore_the_objects_of_a_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.yaml");
        let text = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  creationTimestamp: $(time-offset-nanosecond -5)\n---\napiVersion: {API_VERSION}\nkind: {KIND}\nresource: {{version: v1, resource: configmaps}}\ntarget: {{name: a}}\ndurationNanosecond: 1\nmethod: delete\n"
        );
        std::fs::write(&path, text).unwrap();
        let docs = crate::snapshot::read_k8s(&path).unwrap();
        assert_eq!(docs.len(), 1);
        let time = docs[0]["metadata"]["creationTimestamp"].as_str().unwrap();
        assert!(looks_like_time(time), "{time}");
    }

    #[test]
    fn upstream_documents_parse() {
        let doc = json!({"apiVersion": API_VERSION, "kind": KIND,
            "resource": {"version": "v1", "resource": "pods"},
            "target": {"name": "p", "namespace": "default"},
            "durationNanosecond": 5, "method": "delete"});
        assert!(ResourcePatch::is_patch(&doc));
        let p: ResourcePatch = serde_json::from_value(doc).unwrap();
        assert_eq!(p.method, Method::Delete);
        assert_eq!(
            p.resource.collection("default"),
            "/api/v1/namespaces/default/pods"
        );
    }
}
