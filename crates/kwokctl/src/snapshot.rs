//! Snapshots: the `k8s` format (a YAML stream of objects read through the API, restorable into
//! any cluster) and the store archive behind `--format etcd` on the embedded runtime.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::apiclient::{ApiResource, Client};

/// The resources saved, restored and exported unless `--filter` says otherwise, in restore order.
pub const DEFAULT_FILTERS: &[&str] = &[
    "namespace",
    "node",
    "serviceaccount",
    "configmap",
    "secret",
    "limitrange",
    "runtimeclass.node.k8s.io",
    "priorityclass.scheduling.k8s.io",
    "clusterrolebindings.rbac.authorization.k8s.io",
    "clusterroles.rbac.authorization.k8s.io",
    "rolebindings.rbac.authorization.k8s.io",
    "roles.rbac.authorization.k8s.io",
    "daemonset.apps",
    "deployment.apps",
    "replicaset.apps",
    "statefulset.apps",
    "cronjob.batch",
    "job.batch",
    "persistentvolumeclaim",
    "persistentvolume",
    "pod",
    "service",
    "endpoints",
];

/// Concurrent requests while restoring.
pub const WORKERS: usize = 24;

/// The filters in effect: the given ones, or the default list.
pub fn filters(given: &[String]) -> Vec<String> {
    let given: Vec<String> = given
        .iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if given.is_empty() {
        DEFAULT_FILTERS.iter().map(|s| s.to_string()).collect()
    } else {
        given
    }
}

/// Reads every object of `filters` from the cluster, `page_size` at a time, and writes them as
/// one YAML stream to `out`. Returns the number of objects.
pub fn save_k8s(
    client: &Client,
    filters: &[String],
    page_size: usize,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut first = true;
    for filter in filters {
        let Some(resource) = client.resolve(filter)? else {
            tracing::warn!(resource = %filter, "Resource not found in the cluster, skipped");
            continue;
        };
        let items = client.list_all(&resource, None, None, page_size)?;
        for mut item in items {
            clean_for_save(&mut item);
            let text = serde_saphyr::to_string(&item).map_err(|e| anyhow!("render YAML: {e}"))?;
            if !first {
                out.write_all(b"---\n")?;
            }
            first = false;
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            count += 1;
        }
    }
    out.flush()?;
    Ok(count)
}

/// Drops what only matters to the cluster that served the object.
fn clean_for_save(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
        meta.remove("selfLink");
    }
}

/// Prepares a saved object for creation elsewhere: server-owned metadata goes.
fn clean_for_create(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "selfLink",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(key);
        }
    }
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(key)?.as_str()
}

/// What a restore did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub created: usize,
    pub existing: usize,
    pub failed: Vec<String>,
    /// Owner references that pointed to no restored object and were dropped.
    pub dropped_owner_references: usize,
}

/// Creates the objects of a `k8s` snapshot, owners before their dependents, and rewrites each
/// `ownerReferences[].uid` to the uid its owner got in this cluster.
pub fn restore_k8s(client: &Client, docs: Vec<Value>) -> anyhow::Result<RestoreReport> {
    let snapshot_uids: HashSet<String> = docs
        .iter()
        .filter_map(|d| meta_str(d, "uid").map(str::to_string))
        .collect();
    let uid_map: Mutex<HashMap<String, String>> = Mutex::new(HashMap::new());
    let report = Mutex::new(RestoreReport::default());
    let mut pending: Vec<Value> = docs
        .into_iter()
        .filter(|d| d.get("kind").is_some() && d.get("apiVersion").is_some())
        .collect();
    let mut resources: HashMap<(String, String), ApiResource> = HashMap::new();
    let mut final_round = false;
    while !pending.is_empty() {
        let (ready, later): (Vec<Value>, Vec<Value>) = {
            let map = uid_map.lock().expect("uids");
            pending.into_iter().partition(|d| {
                final_round
                    || owner_uids(d)
                        .iter()
                        .all(|u| !snapshot_uids.contains(u) || map.contains_key(u))
            })
        };
        if ready.is_empty() {
            // Owners that never got created (failed, or a cycle): restore the rest without them.
            final_round = true;
            pending = later;
            continue;
        }
        // Kinds in the order they appear; objects of one kind in parallel.
        let mut groups: Vec<((String, String), Vec<Value>)> = Vec::new();
        for d in ready {
            let key = (
                d["apiVersion"].as_str().unwrap_or("").to_string(),
                d["kind"].as_str().unwrap_or("").to_string(),
            );
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(d),
                None => groups.push((key, vec![d])),
            }
        }
        for (key, objects) in groups {
            let resource = match resources.get(&key) {
                Some(r) => r.clone(),
                None => match client.resource_for_kind(&key.0, &key.1) {
                    Ok(r) => {
                        resources.insert(key.clone(), r.clone());
                        r
                    }
                    Err(e) => {
                        let mut rep = report.lock().expect("report");
                        for o in &objects {
                            rep.failed.push(format!(
                                "{}/{}: {e:#}",
                                key.1,
                                meta_str(o, "name").unwrap_or("")
                            ));
                        }
                        continue;
                    }
                },
            };
            crate::apiclient::parallel(
                &objects,
                WORKERS,
                |obj| restore_one(client, &resource, obj, &uid_map, &report),
                || {},
            );
        }
        pending = later;
    }
    Ok(report.into_inner().expect("report"))
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn restore_one(
    client: &Client,
    resource: &ApiResource,
    original: &Value,
    uid_map: &Mutex<HashMap<String, String>>,
    report: &Mutex<RestoreReport>,
) {
    let old_uid = meta_str(original, "uid").map(str::to_string);
    let name = meta_str(original, "name").unwrap_or("").to_string();
    let namespace = meta_str(original, "namespace").map(str::to_string);
    let mut obj = original.clone();
    clean_for_create(&mut obj);
    let mut dropped = 0;
    if let Some(refs) = obj
        .pointer_mut("/metadata/ownerReferences")
        .and_then(Value::as_array_mut)
    {
        let map = uid_map.lock().expect("uids");
        refs.retain_mut(|r| {
            let uid = r.get("uid").and_then(Value::as_str).unwrap_or("");
            match map.get(uid) {
                Some(new) => {
                    r["uid"] = Value::String(new.clone());
                    true
                }
                None => {
                    dropped += 1;
                    false
                }
            }
        });
        if refs.is_empty()
            && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("ownerReferences");
        }
    }
    let ns = namespace.as_deref();
    let result = client
        .request("POST", &resource.collection(ns), Some(&obj))
        .and_then(|resp| {
            if resp.ok() {
                Ok((resp.json(), true))
            } else if resp.status == 409 {
                let existing = client.get_json(&resource.item(ns, &name))?;
                Ok((existing, false))
            } else {
                Err(anyhow!("{}", resp.message()))
            }
        });
    let mut rep = report.lock().expect("report");
    rep.dropped_owner_references += dropped;
    match result {
        Ok((created, fresh)) => {
            if fresh {
                rep.created += 1;
            } else {
                rep.existing += 1;
            }
            if let (Some(old), Some(new)) = (old_uid, meta_str(&created, "uid")) {
                uid_map.lock().expect("uids").insert(old, new.to_string());
            }
        }
        Err(e) => rep.failed.push(format!(
            "{}/{}{name}: {e:#}",
            resource.kind,
            ns.map(|n| format!("{n}/")).unwrap_or_default()
        )),
    }
}

/// Reads a `k8s` snapshot file.
pub fn read_k8s(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    // Document by document: snapshots are longer than one YAML parse may be. A recording's
    // changes (`snapshot export --record`) follow its objects and are not objects to create;
    // its relative times become times from now.
    let now = jiff::Timestamp::now();
    let docs: Vec<Value> = crate::recording::documents(&text)
        .with_context(|| format!("parse {}", path.display()))?
        .into_iter()
        .take_while(|d| !crate::recording::ResourcePatch::is_patch(d))
        .map(|mut d| {
            crate::recording::from_relative(&mut d, now);
            d
        })
        .collect();
    // A `List` document counts as its items.
    let mut out = Vec::with_capacity(docs.len());
    for d in docs {
        match d.get("items").and_then(Value::as_array) {
            Some(items) if d["kind"].as_str().is_some_and(|k| k.ends_with("List")) => {
                out.extend(items.iter().cloned())
            }
            _ => out.push(d),
        }
    }
    Ok(out)
}

const ARCHIVE_MAGIC: &str = "kwok-store-archive v1";

/// Packs the regular files of `dir` (no subfolders) into one archive file at `path`:
/// a magic line, then per file a `<name> <length>` line followed by the bytes.
pub fn pack_store(dir: &Path, path: &Path) -> anyhow::Result<usize> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("read {}", dir.display()))?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".tmp") && !n.contains(char::is_whitespace))
        .collect();
    names.sort();
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut out = std::io::BufWriter::new(file);
    writeln!(out, "{ARCHIVE_MAGIC}")?;
    for name in &names {
        let data = std::fs::read(dir.join(name))?;
        writeln!(out, "{name} {}", data.len())?;
        out.write_all(&data)?;
    }
    let file = out.into_inner().map_err(|e| anyhow!("{e}"))?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(names.len())
}

/// Unpacks an archive written by [`pack_store`] into `dir` (created; must be empty or absent).
pub fn unpack_store(path: &Path, dir: &Path) -> anyhow::Result<usize> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut input = BufReader::new(file);
    let mut line = String::new();
    input.read_line(&mut line)?;
    if line.trim_end() != ARCHIVE_MAGIC {
        bail!(
            "{} is not an etcd-format snapshot of an embedded cluster",
            path.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut count = 0;
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            break;
        }
        let (name, len) = line
            .trim_end()
            .rsplit_once(' ')
            .ok_or_else(|| anyhow!("corrupt snapshot {}", path.display()))?;
        if name.contains('/') || name.starts_with('.') || name.is_empty() {
            bail!(
                "corrupt snapshot {}: bad file name {name:?}",
                path.display()
            );
        }
        let len: u64 = len
            .parse()
            .with_context(|| format!("corrupt snapshot {}", path.display()))?;
        let mut data = Vec::new();
        (&mut input).take(len).read_to_end(&mut data)?;
        if data.len() as u64 != len {
            bail!("corrupt snapshot {}: {name} is truncated", path.display());
        }
        let target = dir.join(name);
        let mut f = std::fs::File::create(&target)?;
        f.write_all(&data)?;
        f.sync_all()?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_filters_unless_given() {
        assert_eq!(filters(&[]).len(), DEFAULT_FILTERS.len());
        assert_eq!(
            filters(&["pod".into(), " ".into()]),
            vec!["pod".to_string()]
        );
    }

    #[test]
    fn store_archive_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        std::fs::create_dir(&store).unwrap();
        std::fs::write(store.join("snapshot"), b"\x00\x01binary\n").unwrap();
        std::fs::write(store.join("wal-1.log"), b"").unwrap();
        std::fs::write(store.join("snapshot.tmp"), b"skip").unwrap();
        let archive = dir.path().join("a.db");
        assert_eq!(pack_store(&store, &archive).unwrap(), 2);
        let out = dir.path().join("out");
        assert_eq!(unpack_store(&archive, &out).unwrap(), 2);
        assert_eq!(
            std::fs::read(out.join("snapshot")).unwrap(),
            b"\x00\x01binary\n"
        );
        assert!(out.join("wal-1.log").exists());
        assert!(!out.join("snapshot.tmp").exists());
        std::fs::write(&archive, "not an archive\n").unwrap();
        assert!(unpack_store(&archive, &dir.path().join("x")).is_err());
    }

    #[test]
    fn cleaning_for_create_drops_server_fields() {
        let mut obj = serde_json::json!({"metadata": {"name": "a", "uid": "u", "resourceVersion": "5", "labels": {"x": "y"}}});
        clean_for_create(&mut obj);
        assert_eq!(
            obj,
            serde_json::json!({"metadata": {"name": "a", "labels": {"x": "y"}}})
        );
    }

    #[test]
    fn lists_in_snapshot_files_are_flattened() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(
            &p,
            "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n}\n",
        )
        .unwrap();
        let docs = read_k8s(&p).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["kind"], "Pod");
    }
}
