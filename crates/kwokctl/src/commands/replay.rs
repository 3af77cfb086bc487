//! `kwokctl snapshot replay --path F [--snapshot] [--speed X]`: restores the snapshot part of a
//! recording, then plays its `ResourcePatch` changes into the cluster in time order, scaled by
//! `--speed`. Changes run on [`WORKERS`] threads; all changes of one object go to the same
//! thread, so each object sees its changes in recorded order.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::apiclient::{Client, Response};
use crate::cli::SnapshotReplayArgs;
use crate::context::Context;
use crate::duration;
use crate::recording::{self, GroupVersionResource, Method, ResourcePatch};

/// Threads applying changes.
pub const WORKERS: usize = 48;
/// Attempts per change when the server answers with a retriable status.
const ATTEMPTS: u32 = 6;

pub fn replay(ctx: &Context, args: &SnapshotReplayArgs) -> anyhow::Result<()> {
    if args.path.is_empty() {
        bail!("path is required");
    }
    let path = PathBuf::from(&args.path);
    if !path.exists() {
        bail!("path {:?} does not exist", args.path);
    }
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        bail!(
            "invalid speed {}: must be 0 (as fast as possible) or more",
            args.speed
        );
    }
    let cluster = super::load_existing(ctx)?;
    let started = Instant::now();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let (objects, patches) = split(&text)?;
    if ctx.dry_run {
        crate::dryrun::say(format!(
            "# Restore {} objects from {}",
            objects.len(),
            path.display()
        ));
        if !args.snapshot {
            let span = patches.last().map_or(0, |p| p.duration_nanosecond);
            crate::dryrun::say(format!(
                "# Replay {} changes recorded over {} at speed {}",
                patches.len(),
                duration::human(Duration::from_nanos(u64::try_from(span).unwrap_or(0))),
                args.speed
            ));
        }
        return Ok(());
    }
    let client = Client::from_kubeconfig(&cluster.paths.kubeconfig())?;
    let base = jiff::Timestamp::now();
    if !objects.is_empty() {
        restore_objects(&client, objects, base)?;
    }
    if args.snapshot {
        return Ok(());
    }
    let report = play(&client, patches, args.speed, base)?;
    tracing::info!(
        cluster = %ctx.name,
        counter = report.applied,
        failed = report.failed.len(),
        elapsed = %duration::human(started.elapsed()),
        "Replayed resources"
    );
    if !report.failed.is_empty() {
        for f in report.failed.iter().take(10) {
            tracing::warn!(err = %f, "Failed to replay change");
        }
        bail!(
            "{} of {} changes could not be replayed",
            report.failed.len(),
            report.failed.len() + report.applied
        );
    }
    Ok(())
}

/// Splits a recording into its snapshot objects and its changes (sorted by time).
pub fn split(text: &str) -> anyhow::Result<(Vec<Value>, Vec<ResourcePatch>)> {
    let docs = recording::documents(text)?;
    let mut objects = Vec::new();
    let mut patches = Vec::new();
    for doc in docs {
        if ResourcePatch::is_patch(&doc) {
            patches.push(serde_json::from_value(doc).context("decode ResourcePatch")?);
        } else if patches.is_empty() {
            objects.push(doc);
        } else {
            tracing::warn!(
                kind = doc["kind"].as_str().unwrap_or(""),
                "Skipped object after the recorded changes"
            );
        }
    }
    patches.sort_by_key(|p: &ResourcePatch| p.duration_nanosecond);
    Ok((objects, patches))
}

fn restore_objects(
    client: &Client,
    mut objects: Vec<Value>,
    base: jiff::Timestamp,
) -> anyhow::Result<()> {
    for o in &mut objects {
        recording::from_relative(o, base);
    }
    let report = crate::snapshot::restore_k8s(client, objects)?;
    tracing::info!(
        created = report.created,
        existing = report.existing,
        failed = report.failed.len(),
        "Restored snapshot"
    );
    if !report.failed.is_empty() {
        bail!("{} objects could not be restored", report.failed.len());
    }
    Ok(())
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Report {
    pub applied: usize,
    pub failed: Vec<String>,
}

/// Shared by the workers.
struct Play<'a> {
    client: &'a Client,
    base: jiff::Timestamp,
    /// Resources with a `status` subresource.
    with_status: HashSet<GroupVersionResource>,
    /// Recorded uid → uid in this cluster, for owner references.
    uids: Mutex<HashMap<String, String>>,
}

/// Applies `patches` on [`WORKERS`] threads, each change at `start + duration / speed`
/// (`speed` 0: at once).
pub fn play(
    client: &Client,
    patches: Vec<ResourcePatch>,
    speed: f64,
    base: jiff::Timestamp,
) -> anyhow::Result<Report> {
    let mut with_status = HashSet::new();
    let gvrs: HashSet<&GroupVersionResource> = patches.iter().map(|p| &p.resource).collect();
    for gvr in gvrs {
        let subresource = format!("{}/status", gvr.resource);
        if client
            .resources(&gvr.api_version())?
            .iter()
            .any(|r| r.plural == subresource)
        {
            with_status.insert(gvr.clone());
        }
    }
    let play = Play {
        client,
        base,
        with_status,
        uids: Mutex::new(HashMap::new()),
    };
    let hasher = std::collections::hash_map::RandomState::new();
    let mut lanes: Vec<Vec<ResourcePatch>> = (0..WORKERS).map(|_| Vec::new()).collect();
    for p in patches {
        let lane = hash_of(&hasher, &p.object_key()) % WORKERS;
        lanes[lane].push(p);
    }
    let start = Instant::now();
    let report = Mutex::new(Report::default());
    std::thread::scope(|scope| {
        for lane in &lanes {
            let (play, report) = (&play, &report);
            scope.spawn(move || {
                for p in lane {
                    if speed > 0.0 {
                        let due = start
                            + Duration::from_secs_f64(
                                p.duration_nanosecond.max(0) as f64 / 1e9 / speed,
                            );
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let result = play.apply(p);
                    let mut r = report.lock().expect("report");
                    match result {
                        Ok(()) => r.applied += 1,
                        Err(e) => r.failed.push(format!(
                            "{} {} {}/{}: {e:#}",
                            serde_json::to_value(p.method)
                                .unwrap_or_default()
                                .as_str()
                                .unwrap_or(""),
                            p.resource.resource,
                            p.target.namespace,
                            p.target.name
                        )),
                    }
                }
            });
        }
    });
    Ok(report.into_inner().expect("report"))
}

fn hash_of(hasher: &impl BuildHasher, key: &impl Hash) -> usize {
    hasher.hash_one(key) as usize
}

/// Metadata the server owns; never sent back.
const SERVER_FIELDS: &[&str] = &[
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "selfLink",
    "generation",
];

impl Play<'_> {
    fn apply(&self, p: &ResourcePatch) -> anyhow::Result<()> {
        let mut template = p.template.clone();
        if let Some(t) = &mut template {
            recording::from_relative(t, self.base);
        }
        let collection = p.resource.collection(&p.target.namespace);
        let item = format!("{collection}/{}", p.target.name);
        match p.method {
            Method::Create => {
                let t = template.ok_or_else(|| anyhow!("create without a template"))?;
                self.create(p, &collection, &item, t)
            }
            Method::Patch => {
                let t = template.ok_or_else(|| anyhow!("patch without a template"))?;
                self.patch(p, &item, t)
            }
            Method::Delete => {
                let resp =
                    self.send("DELETE", &format!("{item}?gracePeriodSeconds=0"), None, "")?;
                ok_or(resp, &[404])
            }
        }
    }

    fn create(
        &self,
        p: &ResourcePatch,
        collection: &str,
        item: &str,
        mut obj: Value,
    ) -> anyhow::Result<()> {
        let old_uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_FIELDS
                .iter()
                .chain(&["deletionTimestamp", "deletionGracePeriodSeconds"])
            {
                meta.remove(*f);
            }
            self.remap_owners(meta);
        }
        let status = obj.as_object_mut().and_then(|o| o.remove("status"));
        let body = serde_json::to_vec(&obj)?;
        let resp = self.send("POST", collection, Some(&body), "application/json")?;
        if resp.status == 409 {
            return Ok(());
        }
        let created = if resp.ok() {
            resp.json()
        } else {
            return ok_or(resp, &[]);
        };
        if let (Some(old), Some(new)) = (
            old_uid,
            created.pointer("/metadata/uid").and_then(Value::as_str),
        ) {
            self.uids.lock().expect("uids").insert(old, new.to_string());
        }
        match status {
            // The server's initial status (a pod's `phase: Pending`) often is the recorded one.
            Some(status)
                if self.with_status.contains(&p.resource)
                    && !contained(&status, &created["status"]) =>
            {
                self.patch_status(item, status, "application/merge-patch+json")
            }
            _ => Ok(()),
        }
    }

    fn patch(&self, p: &ResourcePatch, item: &str, mut t: Value) -> anyhow::Result<()> {
        let content_type = if p.resource.strategic() {
            "application/strategic-merge-patch+json"
        } else {
            "application/merge-patch+json"
        };
        let obj = t
            .as_object_mut()
            .ok_or_else(|| anyhow!("patch template is not an object"))?;
        let mut deleting = false;
        if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in SERVER_FIELDS {
                meta.remove(*f);
            }
            deleting = meta
                .remove("deletionTimestamp")
                .is_some_and(|v| v.is_string());
            meta.remove("deletionGracePeriodSeconds");
            if meta.contains_key("ownerReferences") {
                self.remap_owners(meta);
            }
        }
        if p.resource.group.is_empty() && p.resource.resource == "pods" {
            let node = obj
                .get_mut("spec")
                .and_then(Value::as_object_mut)
                .and_then(|spec| spec.remove("nodeName"))
                .and_then(|n| n.as_str().map(str::to_string));
            if let Some(node) = node {
                self.bind(p, item, &node)?;
            }
        }
        if let Some(status) = obj
            .remove("status")
            .filter(|_| self.with_status.contains(&p.resource))
        {
            self.patch_status(item, status, content_type)?;
        }
        obj.retain(|_, v| !matches!(v, Value::Object(m) if m.is_empty()));
        if !obj.is_empty() {
            let body = serde_json::to_vec(&t)?;
            ok_or(self.send("PATCH", item, Some(&body), content_type)?, &[])?;
        }
        if deleting {
            ok_or(self.send("DELETE", item, None, "")?, &[404])?;
        }
        Ok(())
    }

    fn patch_status(&self, item: &str, status: Value, content_type: &str) -> anyhow::Result<()> {
        let body = serde_json::to_vec(&json!({ "status": status }))?;
        ok_or(
            self.send(
                "PATCH",
                &format!("{item}/status"),
                Some(&body),
                content_type,
            )?,
            &[],
        )
    }

    /// Binds a pod to `node` as the scheduler does; `spec.nodeName` cannot be patched.
    fn bind(&self, p: &ResourcePatch, item: &str, node: &str) -> anyhow::Result<()> {
        let binding = json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": p.target.name, "namespace": p.target.namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let body = serde_json::to_vec(&binding)?;
        ok_or(
            self.send(
                "POST",
                &format!("{item}/binding"),
                Some(&body),
                "application/json",
            )?,
            &[409],
        )
    }

    /// Points owner references at the owners' uids in this cluster; references to owners that
    /// were not replayed are dropped, so the garbage collector leaves the object alone.
    fn remap_owners(&self, meta: &mut serde_json::Map<String, Value>) {
        let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") else {
            return;
        };
        let uids = self.uids.lock().expect("uids");
        refs.retain_mut(|r| {
            let new = r["uid"].as_str().and_then(|u| uids.get(u)).cloned();
            match new {
                Some(uid) => {
                    r["uid"] = Value::String(uid);
                    true
                }
                None => false,
            }
        });
        if refs.is_empty() {
            meta.remove("ownerReferences");
        }
    }

    /// Sends a request, retrying while the answer is one that may pass (a namespace not yet
    /// created by another worker, throttling, a server error).
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> anyhow::Result<Response> {
        let mut attempt = 0;
        loop {
            let resp = self.client.send(method, path, body, content_type);
            let retry = match &resp {
                Ok(r) => {
                    matches!(r.status, 429 | 500..=599) || (r.status == 404 && method != "DELETE")
                }
                Err(_) => true,
            };
            attempt += 1;
            if !retry || attempt >= ATTEMPTS {
                return resp;
            }
            std::thread::sleep(Duration::from_millis(20 << attempt));
        }
    }
}

/// Whether every field of `part` has the same value in `whole`.
fn contained(part: &Value, whole: &Value) -> bool {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => p
            .iter()
            .all(|(k, v)| w.get(k).is_some_and(|wv| contained(v, wv))),
        _ => part == whole,
    }
}

/// Success, or one of the `tolerated` statuses; otherwise the server's message.
fn ok_or(resp: Response, tolerated: &[u16]) -> anyhow::Result<()> {
    if resp.ok() || tolerated.contains(&resp.status) {
        Ok(())
    } else {
        Err(anyhow!("{}", resp.message()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initial_status_needs_no_patch() {
        let created = json!({"phase": "Pending", "qosClass": "BestEffort"});
        assert!(contained(&json!({"phase": "Pending"}), &created));
        assert!(!contained(&json!({"phase": "Running"}), &created));
        assert!(!contained(&json!({"podIP": "1.2.3.4"}), &created));
    }

    #[test]
    fn recordings_split_into_objects_and_sorted_changes() {
        let text = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: {api}\nkind: ResourcePatch\nresource:\n  version: v1\n  resource: pods\ntarget:\n  name: p\n  namespace: a\ndurationNanosecond: 9\nmethod: delete\n---\napiVersion: {api}\nkind: ResourcePatch\nresource:\n  version: v1\n  resource: pods\ntarget:\n  name: p\n  namespace: a\ndurationNanosecond: 3\nmethod: create\ntemplate:\n  metadata:\n    name: p\n",
            api = recording::API_VERSION
        );
        let (objects, patches) = split(&text).unwrap();
        assert_eq!(objects.len(), 1);
        assert_eq!(
            patches.iter().map(|p| p.method).collect::<Vec<_>>(),
            [Method::Create, Method::Delete]
        );
    }
}
