//! Shared machinery of the workload controllers: one list+watch per kind feeding an in-memory
//! cache, event handlers that turn changes into keys, a work queue of keys with rate-limited
//! retries, creation/deletion expectations, and small helpers on object JSON (selectors, owner
//! references, pod readiness, timestamps).

use client::JsonAt;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use client::{Cluster, EncodedWatchEvent, ListParams, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The kinds the workload controllers follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Pod,
    ReplicaSet,
    Deployment,
    Job,
    ReplicationController,
    StatefulSet,
    DaemonSet,
    ControllerRevision,
    CronJob,
    Node,
    Service,
    Endpoints,
    EndpointSlice,
    PersistentVolumeClaim,
    PersistentVolume,
    ResourceQuota,
    ConfigMap,
    Secret,
    Lease,
}

/// How many kinds there are.
const KINDS: usize = Kind::Lease as usize + 1;

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    pub fn resource(self) -> Resource {
        match self {
            Kind::Pod => Resource::pods(),
            Kind::ReplicaSet => Resource::new("apps", "v1", "replicasets", "ReplicaSet", true),
            Kind::Deployment => Resource::new("apps", "v1", "deployments", "Deployment", true),
            Kind::Job => Resource::new("batch", "v1", "jobs", "Job", true),
            Kind::ReplicationController => Resource::new(
                "",
                "v1",
                "replicationcontrollers",
                "ReplicationController",
                true,
            ),
            Kind::StatefulSet => Resource::new("apps", "v1", "statefulsets", "StatefulSet", true),
            Kind::DaemonSet => Resource::new("apps", "v1", "daemonsets", "DaemonSet", true),
            Kind::ControllerRevision => Resource::new(
                "apps",
                "v1",
                "controllerrevisions",
                "ControllerRevision",
                true,
            ),
            Kind::CronJob => Resource::new("batch", "v1", "cronjobs", "CronJob", true),
            Kind::Node => Resource::nodes(),
            Kind::Service => Resource::new("", "v1", "services", "Service", true),
            Kind::Endpoints => Resource::new("", "v1", "endpoints", "Endpoints", true),
            Kind::EndpointSlice => Resource::new(
                "discovery.k8s.io",
                "v1",
                "endpointslices",
                "EndpointSlice",
                true,
            ),
            Kind::PersistentVolumeClaim => Resource::new(
                "",
                "v1",
                "persistentvolumeclaims",
                "PersistentVolumeClaim",
                true,
            ),
            Kind::PersistentVolume => {
                Resource::new("", "v1", "persistentvolumes", "PersistentVolume", false)
            }
            Kind::ResourceQuota => Resource::new("", "v1", "resourcequotas", "ResourceQuota", true),
            Kind::ConfigMap => Resource::new("", "v1", "configmaps", "ConfigMap", true),
            Kind::Secret => Resource::new("", "v1", "secrets", "Secret", true),
            Kind::Lease => Resource::leases(),
        }
    }
}

/// A change seen by an informer.
pub struct Event {
    pub kind: Kind,
    pub old: Option<Arc<Value>>,
    pub new: Option<Arc<Value>>,
}

/// One cached object. Pods, the kind with by far the most objects, are kept as their JSON and
/// decoded when asked for: a decoded pod takes about eight times the memory of its JSON, and
/// the controllers read most pods only as they change, from the event. In-process the JSON is
/// the store's own value, shared rather than copied.
enum Stored {
    Decoded(Arc<Value>),
    Json(Bytes),
}

impl Stored {
    fn new(kind: Kind, obj: Arc<Value>, json: Option<Bytes>) -> Stored {
        match (kind, json) {
            (Kind::Pod, Some(json)) => Stored::Json(json),
            (Kind::Pod, None) => match serde_json::to_vec(&*obj) {
                Ok(json) => Stored::Json(Bytes::from(json)),
                Err(_) => Stored::Decoded(obj),
            },
            _ => Stored::Decoded(obj),
        }
    }

    fn value(&self) -> Arc<Value> {
        match self {
            Stored::Decoded(v) => v.clone(),
            Stored::Json(json) => {
                let mut obj: Value = serde_json::from_slice(json).unwrap_or(Value::Null);
                client::without_managed_fields(&mut obj);
                Arc::new(obj)
            }
        }
    }
}

type Objects = HashMap<String, BTreeMap<String, Stored>>;

/// The objects of every followed kind, by namespace and name.
#[derive(Default)]
pub struct Cache {
    stores: [RwLock<Objects>; KINDS],
    synced: [AtomicBool; KINDS],
}

impl Cache {
    pub fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let store = self.stores[kind.index()].read().unwrap();
        store.get(namespace)?.get(name).map(Stored::value)
    }

    pub fn list(&self, kind: Kind, namespace: &str) -> Vec<Arc<Value>> {
        let store = self.stores[kind.index()].read().unwrap();
        store
            .get(namespace)
            .map(|m| m.values().map(Stored::value).collect())
            .unwrap_or_default()
    }

    #[cfg(test)]
    fn put(&self, kind: Kind, obj: Arc<Value>) -> Option<Arc<Value>> {
        self.put_encoded(kind, obj, None)
    }

    /// [`Cache::put`] with the object's JSON when the watch handed it out.
    fn put_encoded(&self, kind: Kind, obj: Arc<Value>, json: Option<Bytes>) -> Option<Arc<Value>> {
        let (ns, name) = (namespace(&obj).to_string(), name(&obj).to_string());
        let stored = Stored::new(kind, obj, json);
        let mut store = self.stores[kind.index()].write().unwrap();
        let old = store.entry(ns).or_default().insert(name, stored);
        drop(store);
        old.map(|o| o.value())
    }

    /// Takes an object out of the cache as it was stored.
    fn take(&self, kind: Kind, obj: &Value) -> Option<Stored> {
        let mut store = self.stores[kind.index()].write().unwrap();
        let ns = store.get_mut(namespace(obj))?;
        let old = ns.remove(name(obj));
        if ns.is_empty() {
            store.remove(namespace(obj));
        }
        old
    }

    fn remove(&self, kind: Kind, obj: &Value) -> Option<Arc<Value>> {
        self.take(kind, obj).map(|o| o.value())
    }

    /// Removes an object without decoding what was cached.
    fn discard(&self, kind: Kind, obj: &Value) {
        drop(self.take(kind, obj));
    }

    pub fn all(&self, kind: Kind) -> Vec<Arc<Value>> {
        let store = self.stores[kind.index()].read().unwrap();
        store
            .values()
            .flat_map(|m| m.values().map(Stored::value))
            .collect()
    }

    /// The keys (`namespace/name`) of every object of a kind, without decoding any.
    pub fn keys(&self, kind: Kind) -> Vec<(String, String)> {
        let store = self.stores[kind.index()].read().unwrap();
        store
            .iter()
            .flat_map(|(ns, m)| m.keys().map(move |n| (ns.clone(), n.clone())))
            .collect()
    }

    pub fn synced(&self, kinds: &[Kind]) -> bool {
        kinds
            .iter()
            .all(|k| self.synced[k.index()].load(Ordering::Acquire))
    }

    /// Waits until every kind has been listed once.
    pub async fn wait_synced(&self, kinds: &[Kind]) {
        while !self.synced(kinds) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub type Handler = Arc<dyn Fn(&Cache, &Event) + Send + Sync>;

/// Starts one list+watch task per kind, each updating the cache and calling every handler.
pub fn start_informers(
    cluster: Arc<dyn Cluster>,
    cache: Arc<Cache>,
    kinds: &[Kind],
    handlers: Vec<Handler>,
) {
    let handlers = Arc::new(handlers);
    for &kind in kinds {
        tokio::spawn(follow(
            cluster.clone(),
            cache.clone(),
            kind,
            handlers.clone(),
        ));
    }
}

fn dispatch(cache: &Cache, handlers: &[Handler], event: Event) {
    for h in handlers {
        h(cache, &event);
    }
}

/// Lists a kind into the cache page by page, dispatching what changed; returns the keys
/// listed and the list's revision, or `None` when the list failed.
async fn list_into_cache(
    cluster: &dyn Cluster,
    cache: &Cache,
    kind: Kind,
    handlers: &[Handler],
) -> Option<(HashSet<(String, String)>, String)> {
    let r = kind.resource();
    let mut pager = client::Pager::new(cluster, &r, None, &ListParams::default());
    let mut seen = HashSet::new();
    loop {
        let page = match pager.next_page_encoded().await {
            Ok(Some(page)) => page,
            Ok(None) => return Some((seen, pager.resource_version)),
            Err(e) => {
                tracing::warn!(kind = ?kind, error = %e, "list");
                return None;
            }
        };
        for client::EncodedObject { object, json } in page {
            let item = Arc::new(object);
            seen.insert((namespace(&item).to_string(), name(&item).to_string()));
            let old = cache.put_encoded(kind, item.clone(), json);
            if old.as_ref().map(|o| resource_version_of(o)) != Some(resource_version_of(&item)) {
                dispatch(
                    cache,
                    handlers,
                    Event {
                        kind,
                        old,
                        new: Some(item),
                    },
                );
            }
        }
    }
}

async fn follow(
    cluster: Arc<dyn Cluster>,
    cache: Arc<Cache>,
    kind: Kind,
    handlers: Arc<Vec<Handler>>,
) {
    let r = kind.resource();
    let mut resource_version: Option<String> = None;
    loop {
        if resource_version.is_none() {
            let Some((seen, listed_at)) = list_into_cache(&*cluster, &cache, kind, &handlers).await
            else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            for (ns, n) in cache.keys(kind) {
                if !seen.contains(&(ns.clone(), n.clone())) {
                    let key = json!({"metadata": {"namespace": ns, "name": n}});
                    let Some(stale) = cache.remove(kind, &key) else {
                        continue;
                    };
                    dispatch(
                        &cache,
                        &handlers,
                        Event {
                            kind,
                            old: Some(stale),
                            new: None,
                        },
                    );
                }
            }
            cache.synced[kind.index()].store(true, Ordering::Release);
            resource_version = Some(listed_at);
        }
        let params = ListParams {
            resource_version: resource_version.clone(),
            allow_bookmarks: true,
            timeout_seconds: Some(600),
            ..Default::default()
        };
        let mut stream = match cluster.watch_encoded(&r, None, &params).await {
            Ok(s) => s,
            Err(e) => {
                if e.is_gone() {
                    resource_version = None;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        while let Some(EncodedWatchEvent { event: ev, json }) = stream.next().await {
            let event = match ev {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    resource_version = Some(resource_version_of(&o).to_string());
                    let old = cache.put_encoded(kind, o.clone(), json);
                    Event {
                        kind,
                        old,
                        new: Some(o),
                    }
                }
                WatchEvent::Deleted(o) => {
                    resource_version = Some(resource_version_of(&o).to_string());
                    // Handlers see the object as the deletion left it, as client-go's do.
                    cache.discard(kind, &o);
                    Event {
                        kind,
                        old: Some(o),
                        new: None,
                    }
                }
                WatchEvent::Bookmark(rv) => {
                    resource_version = Some(rv);
                    continue;
                }
                WatchEvent::Error(e) => {
                    if e.is_gone() {
                        resource_version = None;
                    }
                    break;
                }
            };
            dispatch(&cache, &handlers, event);
        }
    }
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<String>,
    queued: HashSet<String>,
    active: HashSet<String>,
    dirty: HashSet<String>,
    delayed: BinaryHeap<Reverse<(Instant, String)>>,
    failures: HashMap<String, u32>,
}

impl QueueState {
    fn push(&mut self, key: String) -> bool {
        if self.active.contains(&key) {
            self.dirty.insert(key);
            false
        } else if self.queued.insert(key.clone()) {
            self.ready.push_back(key);
            true
        } else {
            false
        }
    }
}

/// Keys to reconcile: each key is queued at most once and handled by one worker at a time; a
/// key added while it is being handled is handled again afterwards.
#[derive(Default)]
pub struct WorkQueue {
    state: Mutex<QueueState>,
    notify: Notify,
}

impl WorkQueue {
    pub fn add(&self, key: String) {
        if self.state.lock().unwrap().push(key) {
            self.notify.notify_one();
        }
    }

    pub fn add_after(&self, key: String, delay: Duration) {
        if delay.is_zero() {
            return self.add(key);
        }
        self.state
            .lock()
            .unwrap()
            .delayed
            .push(Reverse((Instant::now() + delay, key)));
        self.notify.notify_one();
    }

    /// Requeues after a delay that doubles with each consecutive failure (5 ms up to 30 s).
    pub fn retry(&self, key: String) {
        let n = {
            let mut s = self.state.lock().unwrap();
            let n = s.failures.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        let delay =
            Duration::from_millis(5u64.saturating_mul(1 << n.min(13))).min(Duration::from_secs(30));
        self.add_after(key, delay);
    }

    pub fn forget(&self, key: &str) {
        self.state.lock().unwrap().failures.remove(key);
    }

    /// The next key to handle; call [`WorkQueue::done`] when finished with it.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            let wake = {
                let mut s = self.state.lock().unwrap();
                let now = Instant::now();
                while let Some(Reverse((at, _))) = s.delayed.peek() {
                    if *at > now {
                        break;
                    }
                    let Reverse((_, key)) = s.delayed.pop().unwrap();
                    s.push(key);
                }
                if let Some(key) = s.ready.pop_front() {
                    s.queued.remove(&key);
                    s.active.insert(key.clone());
                    return key;
                }
                s.delayed.peek().map(|Reverse((at, _))| *at)
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    pub fn done(&self, key: &str) {
        let mut s = self.state.lock().unwrap();
        s.active.remove(key);
        if s.dirty.remove(key) && s.push(key.to_string()) {
            drop(s);
            self.notify.notify_one();
        }
    }
}

/// What a sync asks for: nothing more, or another look after a delay.
pub type SyncResult = Result<Option<Duration>, client::Error>;

/// Runs `workers` loops taking keys from the queue and syncing them.
pub fn spawn_workers<F, Fut>(queue: Arc<WorkQueue>, workers: usize, name: &'static str, sync: F)
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = SyncResult> + Send + 'static,
{
    for _ in 0..workers {
        let queue = queue.clone();
        let sync = sync.clone();
        tokio::spawn(async move {
            loop {
                let key = queue.next().await;
                let result = sync(key.clone()).await;
                queue.done(&key);
                match result {
                    Ok(None) => queue.forget(&key),
                    Ok(Some(after)) => {
                        queue.forget(&key);
                        queue.add_after(key, after);
                    }
                    Err(e) => {
                        if e.is_conflict() {
                            tracing::debug!(controller = name, %key, error = %e, "conflict, requeue");
                        } else {
                            tracing::warn!(controller = name, %key, error = %e, "sync failed");
                        }
                        queue.retry(key);
                    }
                }
            }
        });
    }
}

/// Pod creations and deletions a controller has asked for and not yet seen in its cache.
#[derive(Default)]
pub struct Expectations {
    map: Mutex<HashMap<String, (i64, i64, std::time::Instant)>>,
}

const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);

impl Expectations {
    pub fn expect(&self, key: &str, adds: i64, dels: i64) {
        self.map
            .lock()
            .unwrap()
            .insert(key.to_string(), (adds, dels, std::time::Instant::now()));
    }

    /// Adds to what is expected (a satisfied or expired record starts over).
    pub fn raise(&self, key: &str, adds: i64, dels: i64) {
        let mut map = self.map.lock().unwrap();
        let now = std::time::Instant::now();
        let e = map.entry(key.to_string()).or_insert((0, 0, now));
        if (e.0 <= 0 && e.1 <= 0) || e.2.elapsed() > EXPECTATIONS_TIMEOUT {
            *e = (0, 0, now);
        }
        e.0 += adds;
        e.1 += dels;
        e.2 = now;
    }

    pub fn observed(&self, key: &str, adds: i64, dels: i64) {
        if let Some(e) = self.map.lock().unwrap().get_mut(key) {
            e.0 -= adds;
            e.1 -= dels;
        }
    }

    /// Whether the cache has caught up with earlier requests (or they are too old to wait for).
    pub fn satisfied(&self, key: &str) -> bool {
        match self.map.lock().unwrap().get(key) {
            None => true,
            Some((a, d, at)) => (*a <= 0 && *d <= 0) || at.elapsed() > EXPECTATIONS_TIMEOUT,
        }
    }

    pub fn forget(&self, key: &str) {
        self.map.lock().unwrap().remove(key);
    }
}

/// Feeds pod creations/deletions of pods controlled by `owner_kind` into the expectations.
pub fn observe_pod_expectations(event: &Event, owner_kind: &str, exp: &Expectations) {
    let (old, new) = (event.old.as_deref(), event.new.as_deref());
    match (old, new) {
        (None, Some(pod)) => {
            if let Some(key) = controller_key(pod, owner_kind) {
                exp.observed(&key, 1, 0);
                if is_deleting(pod) {
                    exp.observed(&key, 0, 1);
                }
            }
        }
        (Some(old), Some(new)) if !is_deleting(old) && is_deleting(new) => {
            if let Some(key) = controller_key(new, owner_kind) {
                exp.observed(&key, 0, 1);
            }
        }
        (Some(old), None) if !is_deleting(old) => {
            if let Some(key) = controller_key(old, owner_kind) {
                exp.observed(&key, 0, 1);
            }
        }
        _ => {}
    }
}

// ---- object helpers ----

pub fn namespace(obj: &Value) -> &str {
    obj.at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn name(obj: &Value) -> &str {
    obj.at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn uid(obj: &Value) -> &str {
    obj.at("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn resource_version_of(obj: &Value) -> &str {
    obj.at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub fn key_of(obj: &Value) -> String {
    format!("{}/{}", namespace(obj), name(obj))
}

pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.at("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

pub fn generation(obj: &Value) -> i64 {
    obj.at("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn labels(obj: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    obj.at("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

pub fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.at("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

pub fn int_at(obj: &Value, pointer: &str) -> Option<i64> {
    obj.at(pointer).and_then(Value::as_i64)
}

pub fn creation(obj: &Value) -> &str {
    obj.at("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The owner reference with `controller: true`.
pub fn controller_ref(obj: &Value) -> Option<&Value> {
    obj.at("/metadata/ownerReferences")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r.get("controller") == Some(&json!(true)))
}

/// `namespace/name` of the controller of `obj` when it is of `kind`.
pub fn controller_key(obj: &Value, kind: &str) -> Option<String> {
    let r = controller_ref(obj)?;
    if r.get("kind").and_then(Value::as_str) != Some(kind) {
        return None;
    }
    Some(format!(
        "{}/{}",
        namespace(obj),
        r.get("name").and_then(Value::as_str)?
    ))
}

pub fn controller_uid(obj: &Value) -> Option<&str> {
    controller_ref(obj)?.get("uid").and_then(Value::as_str)
}

/// An owner reference naming `owner` as the controller.
pub fn owner_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": name(owner),
        "uid": uid(owner),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Makes the owner in `owner_ref` the controller of `object` of type `r`: one strategic-merge
/// patch, guarded by the object's uid so a recreated namesake is left alone. `None` when the
/// object is gone.
pub async fn adopt(
    cluster: &dyn Cluster,
    r: &Resource,
    object: &Value,
    owner_ref: Value,
) -> client::Result<Option<Value>> {
    let patch = json!({"metadata": {"ownerReferences": [owner_ref], "uid": uid(object)}});
    patch_owner_references(cluster, r, object, patch).await
}

/// Removes the owner reference to `owner_uid` from `object` of type `r`, as a controller
/// releases what its selector no longer matches.
pub async fn release(
    cluster: &dyn Cluster,
    r: &Resource,
    object: &Value,
    owner_uid: &str,
) -> client::Result<()> {
    let patch = json!({"metadata": {
        "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
        "uid": uid(object),
    }});
    patch_owner_references(cluster, r, object, patch)
        .await
        .map(|_| ())
}

async fn patch_owner_references(
    cluster: &dyn Cluster,
    r: &Resource,
    object: &Value,
    patch: Value,
) -> client::Result<Option<Value>> {
    let ns = Some(namespace(object)).filter(|ns| !ns.is_empty());
    match cluster
        .patch(r, ns, name(object), &client::Patch::Strategic(patch), None)
        .await
    {
        Ok(patched) => Ok(Some(patched)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a label selector (`matchLabels`/`matchExpressions`) matches the labels. A missing or
/// empty selector matches nothing, as controllers treat it.
pub fn selector_matches(selector: Option<&Value>, labels: &Map<String, Value>) -> bool {
    let Some(sel) = selector.and_then(Value::as_object) else {
        return false;
    };
    let match_labels = sel.get("matchLabels").and_then(Value::as_object);
    let exprs = sel.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && exprs.is_none_or(|e| e.is_empty()) {
        return false;
    }
    if let Some(m) = match_labels {
        for (k, v) in m {
            if labels.get(k) != Some(v) {
                return false;
            }
        }
    }
    for e in exprs.into_iter().flatten() {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have = labels.get(key).and_then(Value::as_str);
        let ok = match e
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default()
        {
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => have.is_none_or(|h| !values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

pub fn phase(pod: &Value) -> &str {
    pod.at("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Not finished and not being deleted.
pub fn is_pod_active(pod: &Value) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_deleting(pod)
}

fn ready_condition(pod: &Value) -> Option<&Value> {
    pod.at("/status/conditions")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("type") == Some(&json!("Ready")))
}

pub fn is_pod_ready(pod: &Value) -> bool {
    ready_condition(pod).is_some_and(|c| c.get("status") == Some(&json!("True")))
}

/// Whether the pod has been ready for `min_ready` seconds; otherwise, when it is ready, how long
/// until it will be.
pub fn pod_available(
    pod: &Value,
    min_ready: i64,
    now: jiff::Timestamp,
) -> (bool, Option<Duration>) {
    if !is_pod_ready(pod) {
        return (false, None);
    }
    if min_ready <= 0 {
        return (true, None);
    }
    let since = ready_condition(pod)
        .and_then(|c| c.get("lastTransitionTime"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok());
    let Some(since) = since else {
        return (true, None);
    };
    let elapsed = now.as_second() - since.as_second();
    if elapsed >= min_ready {
        (true, None)
    } else {
        (
            false,
            Some(Duration::from_secs((min_ready - elapsed) as u64) + Duration::from_millis(50)),
        )
    }
}

pub fn now() -> jiff::Timestamp {
    jiff::Timestamp::now()
}

/// RFC 3339 at second precision, as Kubernetes writes times.
pub fn timestamp(t: jiff::Timestamp) -> String {
    jiff::Timestamp::from_second(t.as_second())
        .map(|t| t.to_string())
        .unwrap_or_default()
}

pub fn parse_time(s: &str) -> Option<jiff::Timestamp> {
    s.parse().ok()
}

/// Records an Event about `obj` (failures are only logged).
pub async fn record_event(
    cluster: &dyn Cluster,
    obj: &Value,
    (api_version, obj_kind): (&str, &str),
    component: &str,
    kind: &str,
    reason: &str,
    message: &str,
) {
    use std::sync::atomic::AtomicU64;
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let now = timestamp(now());
    let ns = namespace(obj);
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": format!("{}.{:x}", name(obj), nanos.wrapping_add(seq)),
            "namespace": ns,
        },
        "involvedObject": {
            "apiVersion": api_version,
            "kind": obj_kind,
            "namespace": ns,
            "name": name(obj),
            "uid": uid(obj),
            "resourceVersion": resource_version_of(obj),
        },
        "reason": reason,
        "message": message,
        "type": kind,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": component,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    });
    if let Err(e) = cluster.create(&Resource::events(), Some(ns), &event).await {
        tracing::debug!(error = %e, "record event");
    }
}

/// A pod from a template: the template's labels and annotations plus the extra ones, its spec,
/// controlled by `owner`.
pub fn pod_from_template(
    template: &Value,
    namespace: &str,
    generate_name: &str,
    owner: Value,
    extra_labels: &Map<String, Value>,
    extra_annotations: &Map<String, Value>,
) -> Value {
    let mut labels = template
        .at("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.extend(extra_labels.clone());
    let mut annotations = template
        .at("/metadata/annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.extend(extra_annotations.clone());
    let mut meta = json!({
        "generateName": generate_name,
        "namespace": namespace,
        "ownerReferences": [owner],
    });
    if !labels.is_empty() {
        meta["labels"] = Value::Object(labels);
    }
    if !annotations.is_empty() {
        meta["annotations"] = Value::Object(annotations);
    }
    if let Some(f) = template.at("/metadata/finalizers") {
        meta["finalizers"] = f.clone();
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Orders pods so that the ones to delete first come first: unscheduled, then pending, then
/// not ready, then the most recently ready, then the newest.
pub fn deletion_order(a: &Value, b: &Value) -> std::cmp::Ordering {
    fn rank(p: &Value) -> (u8, u8, u8) {
        let assigned = p
            .at("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = match phase(p) {
            "Pending" | "" => 0,
            "Unknown" => 1,
            _ => 2,
        };
        (assigned as u8, phase, is_pod_ready(p) as u8)
    }
    rank(a)
        .cmp(&rank(b))
        .then_with(|| creation(b).cmp(creation(a)))
        .then_with(|| name(b).cmp(name(a)))
}

/// Sets a status condition: unchanged when status and reason match; the transition time is kept
/// when only the reason or message changes. Returns whether anything changed.
pub fn set_condition(
    conditions: &mut Vec<Value>,
    kind: &str,
    status: &str,
    reason: &str,
    message: &str,
    update_time: bool,
) -> bool {
    let now = timestamp(now());
    let pos = conditions
        .iter()
        .position(|c| c.get("type").and_then(Value::as_str) == Some(kind));
    let mut cond = json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
    });
    if update_time {
        cond["lastUpdateTime"] = json!(now);
    }
    match pos {
        Some(i) => {
            let old = &conditions[i];
            if old.get("status") == Some(&json!(status))
                && old.get("reason") == Some(&json!(reason))
            {
                return false;
            }
            if old.get("status") == Some(&json!(status))
                && let Some(t) = old.get("lastTransitionTime")
            {
                cond["lastTransitionTime"] = t.clone();
            }
            conditions[i] = cond;
        }
        None => conditions.push(cond),
    }
    true
}

pub fn conditions_of(obj: &Value) -> Vec<Value> {
    obj.at("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub fn has_condition(obj: &Value, kind: &str) -> bool {
    conditions_of(obj)
        .iter()
        .any(|c| c.get("type") == Some(&json!(kind)) && c.get("status") == Some(&json!("True")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_pods_come_back_as_they_went_in() {
        let cache = Cache::default();
        let pod = Arc::new(
            json!({"metadata": {"namespace": "a", "name": "p", "resourceVersion": "1"},
            "spec": {"nodeName": "n"}}),
        );
        assert!(cache.put(Kind::Pod, pod.clone()).is_none());
        assert_eq!(cache.get(Kind::Pod, "a", "p").as_deref(), Some(&*pod));
        let next =
            Arc::new(json!({"metadata": {"namespace": "a", "name": "p", "resourceVersion": "2"}}));
        assert_eq!(cache.put(Kind::Pod, next.clone()).as_deref(), Some(&*pod));
        assert_eq!(cache.list(Kind::Pod, "a"), vec![next.clone()]);
        assert_eq!(
            cache.keys(Kind::Pod),
            vec![("a".to_string(), "p".to_string())]
        );
        assert_eq!(cache.remove(Kind::Pod, &next).as_deref(), Some(&*next));
        assert!(cache.all(Kind::Pod).is_empty());
    }

    #[test]
    fn pods_cached_from_the_stores_json_read_back_without_field_ownership() {
        let cache = Cache::default();
        let stored = json!({"metadata": {"namespace": "ns", "name": "p", "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl"}]}, "spec": {"nodeName": "n"}});
        let json = Bytes::from(serde_json::to_vec(&stored).unwrap());
        let mut seen = stored.clone();
        client::without_managed_fields(&mut seen);
        cache.put_encoded(Kind::Pod, Arc::new(seen.clone()), Some(json.clone()));
        assert_eq!(cache.get(Kind::Pod, "ns", "p").as_deref(), Some(&seen));
        let Stored::Json(kept) = cache.take(Kind::Pod, &seen).unwrap() else {
            panic!("a pod is kept encoded");
        };
        assert_eq!(
            kept.as_ptr(),
            json.as_ptr(),
            "the bytes are shared, not copied"
        );
    }

    #[test]
    fn selectors() {
        let l = json!({"app": "web", "tier": "fe"});
        let l = l.as_object().unwrap();
        assert!(selector_matches(
            Some(&json!({"matchLabels": {"app": "web"}})),
            l
        ));
        assert!(!selector_matches(
            Some(&json!({"matchLabels": {"app": "db"}})),
            l
        ));
        assert!(!selector_matches(Some(&json!({})), l));
        assert!(selector_matches(
            Some(
                &json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["fe", "be"]}]})
            ),
            l
        ));
        assert!(!selector_matches(
            Some(&json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})),
            l
        ));
    }

    #[test]
    fn deletion_prefers_unscheduled_pending_unready_newest() {
        let pod = |name: &str, node: Option<&str>, phase: &str, ready: bool, created: &str| {
            let mut p = json!({"metadata": {"name": name, "creationTimestamp": created},
                "spec": {}, "status": {"phase": phase, "conditions": [
                    {"type": "Ready", "status": if ready { "True" } else { "False" }}]}});
            if let Some(n) = node {
                p["spec"]["nodeName"] = json!(n);
            }
            p
        };
        let mut pods = [
            pod(
                "old-ready",
                Some("n"),
                "Running",
                true,
                "2024-01-01T00:00:00Z",
            ),
            pod(
                "new-ready",
                Some("n"),
                "Running",
                true,
                "2024-01-02T00:00:00Z",
            ),
            pod(
                "unready",
                Some("n"),
                "Running",
                false,
                "2024-01-01T00:00:00Z",
            ),
            pod(
                "pending",
                Some("n"),
                "Pending",
                false,
                "2024-01-01T00:00:00Z",
            ),
            pod(
                "unscheduled",
                None,
                "Pending",
                false,
                "2024-01-01T00:00:00Z",
            ),
        ];
        pods.sort_by(deletion_order);
        let names: Vec<&str> = pods.iter().map(name).collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "unready",
                "new-ready",
                "old-ready"
            ]
        );
    }

    #[test]
    fn expectations_wait_for_observations() {
        let e = Expectations::default();
        assert!(e.satisfied("k"));
        e.expect("k", 2, 0);
        assert!(!e.satisfied("k"));
        e.observed("k", 1, 0);
        assert!(!e.satisfied("k"));
        e.observed("k", 1, 0);
        assert!(e.satisfied("k"));
        e.raise("k", 0, 1);
        assert!(!e.satisfied("k"));
        e.observed("k", 0, 1);
        assert!(e.satisfied("k"));
    }

    #[tokio::test]
    async fn queue_dedups_and_requeues_dirty_keys() {
        let q = WorkQueue::default();
        q.add("a".into());
        q.add("a".into());
        q.add("b".into());
        let k = q.next().await;
        assert_eq!(k, "a");
        q.add("a".into());
        assert_eq!(q.next().await, "b");
        q.done("b");
        q.done("a");
        assert_eq!(q.next().await, "a");
    }
}
