//! The stage engine: one controller per resource kind plays Stages on the objects it watches.
//!
//! A [`Controller`] lists and watches its kind once (one watch per kind), keeps only the last
//! seen `resourceVersion` of each admitted object, and on every new version picks the matching
//! Stage ([`crate::stage::choose`]) and schedules it in the shared timer heap after the Stage's
//! delay. A newer version of the object cancels the pending job. Due jobs run with bounded
//! parallelism: events are recorded, finalizers changed, templates rendered and patched, objects
//! deleted, all through the [`client::Cluster`] interface. A patch that would not change the
//! object is skipped. With `immediateNextStage` the result is matched again at once.

use client::JsonAt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use client::{Cluster, DeleteParams, ListParams, Patch, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::queue::DelayQueue;
use crate::stage::template::Funcs;
use crate::stage::{CompiledStage, PatchKind, Step, choose};

/// Counters exposed on `/metrics`.
#[derive(Default)]
pub struct Metrics {
    pub played: Mutex<HashMap<String, u64>>,
    pub errors: AtomicU64,
    pub leases_renewed: AtomicU64,
    pub leases_held: AtomicU64,
    pub managed_nodes: AtomicU64,
    pub stage_errors: AtomicU64,
}

impl Metrics {
    fn played(&self, stage: &str) {
        *self
            .played
            .lock()
            .expect("metrics lock")
            .entry(stage.to_string())
            .or_default() += 1;
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP kwok_stage_played_total Stages played, by stage.\n# TYPE kwok_stage_played_total counter\n");
        let played = self.played.lock().expect("metrics lock");
        let mut names: Vec<_> = played.iter().collect();
        names.sort();
        for (name, n) in names {
            out.push_str(&format!(
                "kwok_stage_played_total{{stage=\"{name}\"}} {n}\n"
            ));
        }
        for (name, help, kind, v) in [
            (
                "kwok_errors_total",
                "Failed writes to the cluster.",
                "counter",
                &self.errors,
            ),
            (
                "kwok_lease_renewals_total",
                "Node lease writes.",
                "counter",
                &self.leases_renewed,
            ),
            (
                "kwok_leases_held",
                "Node leases this simulator holds.",
                "gauge",
                &self.leases_held,
            ),
            (
                "kwok_managed_nodes",
                "Nodes this simulator manages.",
                "gauge",
                &self.managed_nodes,
            ),
            (
                "kwok_invalid_stages_total",
                "Stages rejected at load.",
                "counter",
                &self.stage_errors,
            ),
        ] {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}\n",
                v.load(Ordering::Relaxed)
            ));
        }
        out
    }
}

/// What a controller asks of the code around it.
pub trait Hooks: Send + Sync {
    /// Whether the simulator plays stages on this object.
    fn admit(&self, _object: &Value) -> bool {
        true
    }
    /// Called for each admitted object version before matching.
    fn observed(&self, _object: &Value) {}
    /// Called when an admitted object is deleted.
    fn deleted(&self, _object: &Value) {}
    /// Called when an object is not admitted.
    fn rejected(&self, _object: &Value) {}
    /// Adds to `projection` what `admit` and `observed` read; false when that may be anything.
    fn reads(&self, _projection: &mut client::Projection) -> bool {
        false
    }
}

/// Hooks that admit every object.
pub struct AdmitAll;
impl Hooks for AdmitAll {}

struct Job {
    key: String,
    object: Arc<Value>,
    stage: Arc<CompiledStage>,
    attempt: u32,
}

/// A listed object decoded only in parts: its whole JSON and the Stages the parts were picked for.
struct Partial {
    json: bytes::Bytes,
    stages: Arc<Vec<Arc<CompiledStage>>>,
}

#[derive(Default)]
struct Entry {
    rv: String,
    pending: u64,
}

/// Plays Stages on one resource kind.
pub struct Controller {
    pub resource: Resource,
    cluster: Arc<dyn Cluster>,
    stages: RwLock<Arc<Vec<Arc<CompiledStage>>>>,
    hooks: Arc<dyn Hooks>,
    funcs: Arc<dyn Funcs>,
    metrics: Arc<Metrics>,
    entries: Mutex<HashMap<String, Entry>>,
    queue: DelayQueue<Job>,
    params: ListParams,
    parallelism: usize,
    resync: tokio::sync::Notify,
    /// Whether Stages were set at least once: the first list waits for them, so that a
    /// starting simulator reads every object once rather than once without and once with them.
    stages_loaded: tokio::sync::watch::Sender<bool>,
}

/// `namespace/name` or `name`.
pub fn key_of(object: &Value) -> String {
    let name = object
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match object.at("/metadata/namespace").and_then(Value::as_str) {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

fn rv_of(object: &Value) -> &str {
    object
        .at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn namespace_of(object: &Value) -> Option<&str> {
    object
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn name_of(object: &Value) -> &str {
    object
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Whether `patch` (merge semantics) is already contained in `object`.
pub fn already_applied(object: &Value, patch: &Value) -> bool {
    match (object, patch) {
        (Value::Object(o), Value::Object(p)) => p.iter().all(|(k, pv)| match o.get(k) {
            None => pv.is_null(),
            Some(ov) => already_applied(ov, pv),
        }),
        (o, p) => o == p,
    }
}

/// Whether a failed write is worth retrying. Refusals (401, 403) are: a binding created later,
/// or a token renewed, lets the same write through.
fn retryable(e: &client::Error) -> bool {
    matches!(e.code, 0 | 401 | 403 | 429 | 500 | 503 | 504)
}

impl Controller {
    /// A controller for `resource`; `params` narrow the list/watch (label or field selectors).
    pub fn new(
        cluster: Arc<dyn Cluster>,
        resource: Resource,
        params: ListParams,
        hooks: Arc<dyn Hooks>,
        funcs: Arc<dyn Funcs>,
        metrics: Arc<Metrics>,
        parallelism: usize,
    ) -> Arc<Controller> {
        Arc::new(Controller {
            resource,
            cluster,
            stages: RwLock::new(Arc::new(Vec::new())),
            hooks,
            funcs,
            metrics,
            entries: Mutex::new(HashMap::new()),
            queue: DelayQueue::default(),
            params,
            parallelism: parallelism.max(1),
            resync: tokio::sync::Notify::new(),
            stages_loaded: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Replaces the Stages; objects are matched again against the new set. The first set
    /// starts the controller's list instead.
    pub fn set_stages(&self, stages: Vec<Arc<CompiledStage>>) {
        *self.stages.write().expect("stages lock") = Arc::new(stages);
        if self.stages_loaded.send_replace(true) {
            self.resync.notify_one();
        }
    }

    pub fn stages(&self) -> Arc<Vec<Arc<CompiledStage>>> {
        self.stages.read().expect("stages lock").clone()
    }

    /// Objects tracked.
    pub fn tracked(&self) -> usize {
        self.entries.lock().expect("entries lock").len()
    }

    /// Jobs waiting for their delay.
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Runs the watch loop and the job driver until the process ends; objects are listed once
    /// the Stages are set.
    pub async fn run(self: Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move { me.drive().await });
        let _ = self
            .stages_loaded
            .subscribe()
            .wait_for(|loaded| *loaded)
            .await;
        self.watch_loop().await;
    }

    async fn watch_loop(self: &Arc<Self>) {
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut params = self.params.clone();
            params.resource_version = None;
            let stages = self.stages();
            params.projection = self.list_projection(&stages);
            let partial = params.projection.is_some();
            // Page by page, so that only one page of decoded objects is held at a time.
            let mut pager = client::Pager::new(&*self.cluster, &self.resource, None, &params);
            let mut present: HashSet<String> = HashSet::new();
            let failed = loop {
                match pager.next_page_encoded().await {
                    Ok(Some(page)) => {
                        for client::EncodedObject { object, json } in page {
                            present.insert(key_of(&object));
                            let listed = json.filter(|_| partial).map(|json| Partial {
                                json,
                                stages: stages.clone(),
                            });
                            self.handle_parts(Arc::new(object), listed);
                        }
                    }
                    Ok(None) => break None,
                    Err(e) => break Some(e),
                }
            };
            if let Some(e) = failed {
                tracing::warn!(resource = %self.resource.plural, error = %e, "list failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
            backoff = Duration::from_millis(200);
            // Objects gone while we were not watching.
            let gone: Vec<(String, Entry)> = {
                let mut entries = self.entries.lock().expect("entries lock");
                let keys: Vec<String> = entries
                    .keys()
                    .filter(|k| !present.contains(*k))
                    .cloned()
                    .collect();
                keys.into_iter()
                    .filter_map(|k| entries.remove(&k).map(|e| (k, e)))
                    .collect()
            };
            for (key, entry) in gone {
                self.queue.cancel(entry.pending);
                self.hooks.deleted(&json!({"metadata": {"name": key}}));
            }
            let mut rv = pager.resource_version;
            'watch: loop {
                let mut params = self.params.clone();
                params.resource_version = Some(rv.clone());
                params.allow_bookmarks = true;
                params.timeout_seconds = Some(290);
                let mut stream = match self.cluster.watch(&self.resource, None, &params).await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(resource = %self.resource.plural, error = %e, "watch failed; listing again");
                        tokio::time::sleep(backoff).await;
                        break 'watch;
                    }
                };
                loop {
                    let event = tokio::select! {
                        e = stream.next() => e,
                        _ = self.resync.notified() => {
                            self.entries.lock().expect("entries lock").values_mut().for_each(|e| e.rv.clear());
                            break 'watch;
                        }
                    };
                    match event {
                        None => continue 'watch,
                        Some(WatchEvent::Added(o)) | Some(WatchEvent::Modified(o)) => {
                            rv = rv_of(&o).to_string();
                            self.handle(o);
                        }
                        Some(WatchEvent::Deleted(o)) => {
                            rv = rv_of(&o).to_string();
                            self.forget(&o);
                        }
                        Some(WatchEvent::Bookmark(b)) => {
                            if !b.is_empty() {
                                rv = b;
                            }
                        }
                        Some(WatchEvent::Error(e)) => {
                            if !e.is_gone() {
                                tracing::warn!(resource = %self.resource.plural, error = %e, "watch error; listing again");
                            }
                            break 'watch;
                        }
                    }
                }
            }
        }
    }

    /// What a list needs to decode of each object: what the hooks and the choice of a Stage
    /// read (most listed objects, found where their Stages left them, match none), or `None`
    /// for everything.
    fn list_projection(&self, stages: &[Arc<CompiledStage>]) -> Option<Arc<client::Projection>> {
        let mut projection = client::Projection::default();
        for field in ["name", "namespace", "resourceVersion"] {
            projection.keep(["metadata", field]);
        }
        let narrow = self.hooks.reads(&mut projection)
            && stages.iter().all(|s| s.reads_to_choose(&mut projection));
        narrow.then(|| Arc::new(projection))
    }

    /// Matches a new version of an object and schedules the chosen Stage.
    pub fn handle(self: &Arc<Self>, object: Arc<Value>) {
        self.handle_parts(object, None);
    }

    /// [`Controller::handle`] for an object that may be decoded only in the parts that choosing
    /// among the Stages of `partial` reads; the whole is decoded when one is chosen. Stages set
    /// since the list began are not used for it: they relist.
    fn handle_parts(self: &Arc<Self>, object: Arc<Value>, partial: Option<Partial>) {
        let key = key_of(&object);
        if !self.hooks.admit(&object) {
            self.hooks.rejected(&object);
            let removed = self.entries.lock().expect("entries lock").remove(&key);
            if let Some(e) = removed {
                self.queue.cancel(e.pending);
            }
            return;
        }
        self.hooks.observed(&object);
        let rv = rv_of(&object);
        let stages = match &partial {
            Some(partial) => partial.stages.clone(),
            None => self.stages(),
        };
        let mut entries = self.entries.lock().expect("entries lock");
        let entry = entries.entry(key.clone()).or_default();
        if !rv.is_empty() && entry.rv == rv {
            return;
        }
        entry.rv = rv.to_string();
        if entry.pending != 0 {
            self.queue.cancel(entry.pending);
            entry.pending = 0;
        }
        if let Some(stage) = choose(&stages, &object) {
            let object = match partial.map(|p| client::decode_stored(&p.json)) {
                None => object,
                Some(Ok(whole)) => Arc::new(whole),
                Some(Err(e)) => {
                    tracing::warn!(object = %key, error = %e, "decode a listed object");
                    return;
                }
            };
            let delay = stage.delay.pick(&object);
            entry.pending = self.queue.push(
                Instant::now() + delay,
                Job {
                    key,
                    object,
                    stage: stage.clone(),
                    attempt: 0,
                },
            );
        }
    }

    fn forget(&self, object: &Value) {
        let key = key_of(object);
        let removed = self.entries.lock().expect("entries lock").remove(&key);
        if let Some(e) = removed {
            self.queue.cancel(e.pending);
        }
        self.hooks.deleted(object);
    }

    async fn drive(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(self.parallelism));
        loop {
            let batch = self.queue.next_batch(1024).await;
            for job in batch {
                let permit = permits.clone().acquire_owned().await.expect("semaphore");
                let me = self.clone();
                tokio::spawn(async move {
                    me.play(job).await;
                    drop(permit);
                });
            }
        }
    }

    async fn play(self: &Arc<Self>, job: Job) {
        match self.apply(&job).await {
            Ok(Some(result)) => {
                self.metrics.played(&job.stage.name);
                if job.stage.immediate_next_stage {
                    self.handle(result);
                }
            }
            Ok(None) => self.metrics.played(&job.stage.name),
            Err(e) if retryable(&e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                let attempt = job.attempt + 1;
                let backoff =
                    Duration::from_secs(1 << attempt.min(11)).min(Duration::from_secs(1920));
                tracing::warn!(stage = %job.stage.name, object = %job.key, error = %e, ?backoff, "stage failed; retrying");
                let mut entries = self.entries.lock().expect("entries lock");
                if let Some(entry) = entries.get_mut(&job.key)
                    && entry.rv == rv_of(&job.object)
                {
                    entry.pending = self
                        .queue
                        .push(Instant::now() + backoff, Job { attempt, ..job });
                }
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(stage = %job.stage.name, object = %job.key, error = %e, "stage failed");
            }
        }
    }

    /// Runs the steps of a job; returns `Some` when it wrote the object (and did not delete it):
    /// the version last written when the Stage has an immediate next Stage (patch answers
    /// are decoded only when something reads them), else the last version it read.
    async fn apply(&self, job: &Job) -> client::Result<Option<Arc<Value>>> {
        {
            // The job may have been superseded while it waited for a permit.
            let entries = self.entries.lock().expect("entries lock");
            if !entries.contains_key(&job.key) {
                return Ok(None);
            }
        }
        let mut object = Arc::clone(&job.object);
        let mut wrote = false;
        let mut deleted = false;
        let r = &self.resource;
        let ns = namespace_of(&job.object).map(str::to_string);
        let name = name_of(&job.object).to_string();
        let steps = &job.stage.steps;
        for (i, step) in steps.iter().enumerate() {
            // The answer to a patch is read only by later steps and by the next Stage.
            let answer_read = job.stage.immediate_next_stage || i + 1 < steps.len();
            match step {
                Step::Event {
                    type_,
                    reason,
                    message,
                } => self.record_event(&object, type_, reason, message).await,
                _ if deleted => {}
                Step::Finalizers { add, remove, empty } => {
                    let current: Vec<String> = object
                        .at("/metadata/finalizers")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut next: Vec<String> = if *empty {
                        Vec::new()
                    } else {
                        current
                            .iter()
                            .filter(|f| !remove.contains(f))
                            .cloned()
                            .collect()
                    };
                    for f in add {
                        if !next.contains(f) {
                            next.push(f.clone());
                        }
                    }
                    if next != current {
                        let value = if next.is_empty() {
                            Value::Null
                        } else {
                            json!(next)
                        };
                        object = Arc::new(
                            self.cluster
                                .patch(
                                    r,
                                    ns.as_deref(),
                                    &name,
                                    &Patch::Merge(json!({"metadata": {"finalizers": value}})),
                                    None,
                                )
                                .await?,
                        );
                        wrote = true;
                    }
                }
                Step::Delete => {
                    match self
                        .cluster
                        .delete_without_answer(
                            r,
                            ns.as_deref(),
                            &name,
                            &DeleteParams {
                                grace_period_seconds: Some(0),
                                ..Default::default()
                            },
                        )
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(e),
                    }
                    deleted = true;
                }
                Step::Patch {
                    subresource,
                    root,
                    template,
                    kind,
                    apply,
                    impersonate,
                } => {
                    let rendered = match template.render(&object, self.funcs.clone(), &job.key) {
                        Ok(v) => v,
                        Err(e) => {
                            self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                            tracing::error!(stage = %job.stage.name, object = %job.key, "render the template: {e}");
                            return Ok(None);
                        }
                    };
                    if rendered.is_null() {
                        continue;
                    }
                    if *apply
                        && root.is_none()
                        && let Some(target) = ApplyTarget::of(&rendered, r, ns.as_deref())
                        && !target.is(r, ns.as_deref(), &name)
                    {
                        self.apply_elsewhere(&target, rendered, subresource.as_deref(), *kind)
                            .await?;
                        continue;
                    }
                    let kind = kind.unwrap_or(
                        if self.resource.group.is_empty()
                            && matches!(self.resource.kind.as_str(), "Pod" | "Node")
                        {
                            PatchKind::Strategic
                        } else {
                            PatchKind::Merge
                        },
                    );
                    let patch = match kind {
                        PatchKind::Json => {
                            let mut ops = rendered;
                            if let (Some(root), Some(list)) = (root, ops.as_array_mut()) {
                                for op in list {
                                    for field in ["path", "from"] {
                                        if let Some(p) = op.get(field).and_then(Value::as_str) {
                                            op[field] = json!(format!("/{root}{p}"));
                                        }
                                    }
                                }
                            }
                            Patch::Json(ops)
                        }
                        PatchKind::Merge | PatchKind::Strategic => {
                            let body = match root {
                                Some(root) => json!({ root.as_str(): rendered }),
                                None => rendered,
                            };
                            if already_applied(&object, &body) {
                                continue;
                            }
                            if kind == PatchKind::Merge {
                                Patch::Merge(body)
                            } else {
                                Patch::Strategic(body)
                            }
                        }
                    };
                    let (sub, user) = (subresource.as_deref(), impersonate.as_deref());
                    if answer_read {
                        object = Arc::new(
                            self.cluster
                                .patch_as(r, ns.as_deref(), &name, &patch, sub, user)
                                .await?,
                        );
                    } else {
                        self.cluster
                            .patch_as_without_answer(r, ns.as_deref(), &name, &patch, sub, user)
                            .await?;
                    }
                    wrote = true;
                }
            }
        }
        Ok(if wrote && !deleted {
            Some(object)
        } else {
            None
        })
    }

    /// Writes an `apply` step's object that is not the one being played: patched when it
    /// exists, created when it does not (and no subresource is named).
    async fn apply_elsewhere(
        &self,
        target: &ApplyTarget,
        object: Value,
        subresource: Option<&str>,
        kind: Option<PatchKind>,
    ) -> client::Result<()> {
        let ns = target.namespace.as_deref();
        let patch = match kind {
            Some(PatchKind::Json) => Patch::Json(object.clone()),
            Some(PatchKind::Strategic) => Patch::Strategic(object.clone()),
            _ => Patch::Merge(object.clone()),
        };
        match self
            .cluster
            .patch(&target.resource, ns, &target.name, &patch, subresource)
            .await
        {
            Err(e)
                if e.is_not_found() && subresource.is_none() && kind != Some(PatchKind::Json) =>
            {
                match self.cluster.create(&target.resource, ns, &object).await {
                    Err(e) if e.is_conflict() => Ok(()),
                    other => other.map(drop),
                }
            }
            other => other.map(drop),
        }
    }

    async fn record_event(&self, object: &Value, type_: &str, reason: &str, message: &str) {
        let now = jiff::Timestamp::now();
        let stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        let ns = namespace_of(object).unwrap_or("default").to_string();
        let name = name_of(object);
        let event = json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{name}.{:x}", now.as_nanosecond() as u64),
                "namespace": ns,
            },
            "involvedObject": {
                "apiVersion": object.get("apiVersion").cloned().unwrap_or(json!(self.resource.api_version())),
                "kind": object.get("kind").cloned().unwrap_or(json!(self.resource.kind)),
                "name": name,
                "namespace": namespace_of(object).unwrap_or_default(),
                "uid": object.at("/metadata/uid").cloned().unwrap_or(Value::Null),
                "resourceVersion": rv_of(object),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": "kwok_controller"},
            "reportingComponent": "kwok_controller",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        });
        if let Err(e) = self
            .cluster
            .create(&Resource::events(), Some(&ns), &event)
            .await
        {
            tracing::warn!(object = %key_of(object), error = %e, "record an event");
        }
    }
}

/// The object an `apply` step names by `apiVersion`, `kind` and `metadata.name`.
struct ApplyTarget {
    resource: Resource,
    namespace: Option<String>,
    name: String,
}

impl ApplyTarget {
    /// The target of a rendered object; a namespaced target without a namespace goes in the
    /// played object's namespace.
    fn of(rendered: &Value, played: &Resource, played_ns: Option<&str>) -> Option<Self> {
        let kind = rendered.get("kind").and_then(Value::as_str)?;
        let name = rendered.at("/metadata/name").and_then(Value::as_str)?;
        let api_version = rendered
            .get("apiVersion")
            .and_then(Value::as_str)
            .map(String::from)
            .unwrap_or_else(|| played.api_version());
        let resource = crate::sim::resource_for(&crate::stage::types::ResourceRef {
            api_group: api_version,
            kind: kind.to_string(),
        });
        let namespace = match rendered.at("/metadata/namespace").and_then(Value::as_str) {
            Some(ns) if resource.namespaced => Some(ns.to_string()),
            _ if resource.namespaced => played_ns.map(String::from),
            _ => None,
        };
        Some(Self {
            resource,
            namespace,
            name: name.to_string(),
        })
    }

    fn is(&self, played: &Resource, played_ns: Option<&str>, played_name: &str) -> bool {
        self.resource.kind == played.kind
            && self.resource.group == played.group
            && self.namespace.as_deref() == played_ns
            && self.name == played_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applied_check() {
        let obj = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready"}]}, "metadata": {"name": "a"}});
        assert!(already_applied(
            &obj,
            &json!({"status": {"phase": "Running"}})
        ));
        assert!(!already_applied(
            &obj,
            &json!({"status": {"phase": "Failed"}})
        ));
        assert!(already_applied(&obj, &json!({"status": {"x": null}})));
        assert!(!already_applied(
            &obj,
            &json!({"status": {"conditions": []}})
        ));
        assert_eq!(
            key_of(&json!({"metadata": {"name": "p", "namespace": "d"}})),
            "d/p"
        );
        assert_eq!(key_of(&json!({"metadata": {"name": "n"}})), "n");
    }
}
