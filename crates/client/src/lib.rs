//! The narrow interface through which controllers and the kwok simulator reach a cluster.
//!
//! [`Cluster`] is a handful of verbs on JSON objects. Two implementations share it:
//! [`LocalCluster`] calls the embedded API server's registry in-process (no HTTP, TLS or
//! re-parsing of requests, the same code path as HTTP requests), and [`HttpCluster`] speaks the
//! Kubernetes REST API through kube-rs, for any real cluster.

mod http_cluster;
mod local;

use std::pin::Pin;

use futures::Stream;
use serde_json::Value;

pub use apiserver::objects::{JsonAt, Projection};
pub use http_cluster::HttpCluster;
pub use local::LocalCluster;

/// A resource type, named as the REST API names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resource {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub kind: String,
    pub namespaced: bool,
}

impl Resource {
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            kind: kind.into(),
            namespaced,
        }
    }

    pub fn pods() -> Self {
        Self::new("", "v1", "pods", "Pod", true)
    }

    pub fn nodes() -> Self {
        Self::new("", "v1", "nodes", "Node", false)
    }

    pub fn leases() -> Self {
        Self::new("coordination.k8s.io", "v1", "leases", "Lease", true)
    }

    pub fn events() -> Self {
        Self::new("", "v1", "events", "Event", true)
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The REST path of the collection (namespace ignored for cluster-scoped types).
    pub fn path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }
}

/// An error from the cluster, as a Kubernetes `Status` reports it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct Error {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        self.code == 404
    }
    pub fn is_conflict(&self) -> bool {
        self.code == 409
    }
    pub fn is_gone(&self) -> bool {
        self.code == 410
    }
    pub(crate) fn transport(message: impl std::fmt::Display) -> Self {
        Error {
            code: 0,
            reason: "Transport".into(),
            message: message.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Options of list and watch.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// For watch: the revision to start after; for list: "0" allows any.
    pub resource_version: Option<String>,
    pub timeout_seconds: Option<u64>,
    pub allow_bookmarks: bool,
    /// For followers that read only `apiVersion`, `kind` and `metadata` (as kube-controller-
    /// manager's metadata informers): in-process, listed objects and the first events of a
    /// watch are decoded with nothing else (and no `managedFields`); objects may still carry
    /// more.
    pub metadata_only: bool,
    /// For lists whose reader looks at only some parts of most objects (the simulator matching
    /// Stage selectors): in-process, listed objects are decoded with only these parts, and
    /// their JSON is handed out beside them for [`decode_stored`] when the whole is needed;
    /// from other clusters objects come whole.
    pub projection: Option<std::sync::Arc<Projection>>,
}

/// The whole of an object a list handed out as JSON beside its decoded parts, without
/// `managedFields`.
pub fn decode_stored(json: &[u8]) -> Result<Value> {
    apiserver::objects::decode_without_managed_fields(json).map_err(local::api_error)
}

/// A page of objects.
#[derive(Debug, Clone)]
pub struct ObjectList {
    pub items: Vec<Value>,
    pub resource_version: String,
    pub continue_token: Option<String>,
}

/// One watch event. Objects are shared: in-process, every watcher of the same write gets the
/// same decoded object.
#[derive(Debug, Clone)]
pub enum WatchEvent {
    Added(std::sync::Arc<Value>),
    Modified(std::sync::Arc<Value>),
    Deleted(std::sync::Arc<Value>),
    /// The revision the watch has reached.
    Bookmark(String),
    Error(Error),
}

pub type WatchStream = Pin<Box<dyn Stream<Item = WatchEvent> + Send>>;

/// A watch event with the object's JSON, for caches that keep objects encoded. In-process the
/// bytes are the store's own value (shared, not copied); `None` when the cluster has no
/// encoding at hand (the cache encodes the object itself).
#[derive(Debug, Clone)]
pub struct EncodedWatchEvent {
    pub event: WatchEvent,
    pub json: Option<bytes::Bytes>,
}

pub type EncodedWatchStream = Pin<Box<dyn Stream<Item = EncodedWatchEvent> + Send>>;

/// A listed object for followers: decoded without `metadata.managedFields`, with its JSON
/// where the cluster has it without encoding (as in [`EncodedWatchEvent`]).
#[derive(Debug, Clone)]
pub struct EncodedObject {
    pub object: Value,
    pub json: Option<bytes::Bytes>,
}

/// One page of [`Cluster::list_encoded`].
#[derive(Debug, Clone)]
pub struct EncodedList {
    pub items: Vec<EncodedObject>,
    pub resource_version: String,
    pub continue_token: Option<String>,
}

/// Drops `metadata.managedFields`, which followers never read (kube-controller-manager's
/// informers drop it too).
pub fn without_managed_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// Patch bodies.
#[derive(Debug, Clone)]
pub enum Patch {
    Merge(Value),
    Json(Value),
    Strategic(Value),
}

/// Delete options.
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    /// Delete only if the object is still at this resourceVersion.
    pub precondition_resource_version: Option<String>,
}

/// The verbs controllers and the simulator use.
#[async_trait::async_trait]
pub trait Cluster: Send + Sync + 'static {
    async fn get(&self, r: &Resource, namespace: Option<&str>, name: &str) -> Result<Value>;
    async fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList>;
    /// [`Cluster::list`] for followers, which read neither field ownership nor how many items
    /// remain: in-process, objects are decoded without `managedFields`, next to the store's
    /// own JSON.
    async fn list_encoded(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<EncodedList> {
        let list = self.list(r, namespace, params).await?;
        Ok(EncodedList {
            items: list
                .items
                .into_iter()
                .map(|mut object| {
                    without_managed_fields(&mut object);
                    EncodedObject { object, json: None }
                })
                .collect(),
            resource_version: list.resource_version,
            continue_token: list.continue_token,
        })
    }
    /// Events after `params.resource_version` (or the current state first when it is unset).
    async fn watch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<WatchStream>;
    /// [`Cluster::watch`] with each object's JSON where the cluster has it without encoding.
    async fn watch_encoded(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<EncodedWatchStream> {
        use futures::StreamExt;
        let stream = self.watch(r, namespace, params).await?;
        Ok(stream
            .map(|event| EncodedWatchEvent { event, json: None })
            .boxed())
    }
    async fn create(&self, r: &Resource, namespace: Option<&str>, object: &Value) -> Result<Value>;
    /// Replaces the object (its `metadata.resourceVersion` is the precondition when set).
    async fn update(&self, r: &Resource, namespace: Option<&str>, object: &Value) -> Result<Value>;
    async fn update_status(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value>;
    async fn patch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
    ) -> Result<Value>;
    /// Patches as `user` (`Impersonate-User`), so the server authorizes and records the write
    /// as theirs. In-process there is no identity to switch: the write is made as is.
    async fn patch_as(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
        user: Option<&str>,
    ) -> Result<Value> {
        let _ = user;
        self.patch(r, namespace, name, patch, subresource).await
    }
    /// Patches like [`Cluster::patch_as`], for callers that do not read the answer (which then
    /// need not be decoded).
    async fn patch_as_without_answer(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
        user: Option<&str>,
    ) -> Result<()> {
        self.patch_as(r, namespace, name, patch, subresource, user)
            .await
            .map(drop)
    }
    /// Deletes; returns the object as the server answered (it may still exist with a
    /// deletionTimestamp).
    async fn delete(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Value>;
    /// Deletes like [`Cluster::delete`], for callers that do not read the answer (which then
    /// need not be decoded).
    async fn delete_without_answer(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<()> {
        self.delete(r, namespace, name, params).await.map(drop)
    }
    /// Binds a pod to a node through `pods/binding`.
    async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<()>;
}

/// Every object of a list, fetched in pages of 500 unless `params.limit` says otherwise.
pub async fn list_all(
    cluster: &dyn Cluster,
    r: &Resource,
    namespace: Option<&str>,
    params: &ListParams,
) -> Result<ObjectList> {
    let mut pager = Pager::new(cluster, r, namespace, params);
    let mut items = Vec::new();
    while let Some(page) = pager.next_page().await? {
        items.extend(page);
    }
    Ok(ObjectList {
        items,
        resource_version: pager.resource_version,
        continue_token: None,
    })
}

/// A list fetched one page at a time (500 objects unless `params.limit` says otherwise), so
/// that a caller can handle each page before the next is decoded: a follower that lists
/// 100,000 pods at start holds one page of decoded objects, not all of them.
pub struct Pager<'a> {
    cluster: &'a dyn Cluster,
    r: &'a Resource,
    namespace: Option<&'a str>,
    params: ListParams,
    done: bool,
    /// The revision of the list, known once the first page is in.
    pub resource_version: String,
}

impl<'a> Pager<'a> {
    pub fn new(
        cluster: &'a dyn Cluster,
        r: &'a Resource,
        namespace: Option<&'a str>,
        params: &ListParams,
    ) -> Self {
        let mut params = params.clone();
        if params.limit.is_none() {
            params.limit = Some(500);
        }
        Pager {
            cluster,
            r,
            namespace,
            params,
            done: false,
            resource_version: String::new(),
        }
    }

    /// The next page, or `None` after the last.
    pub async fn next_page(&mut self) -> Result<Option<Vec<Value>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .cluster
            .list(self.r, self.namespace, &self.params)
            .await?;
        self.advance(page.resource_version, page.continue_token)
            .await;
        Ok(Some(page.items))
    }

    /// The next page as [`Cluster::list_encoded`] gives it, or `None` after the last.
    pub async fn next_page_encoded(&mut self) -> Result<Option<Vec<EncodedObject>>> {
        if self.done {
            return Ok(None);
        }
        let page = self
            .cluster
            .list_encoded(self.r, self.namespace, &self.params)
            .await?;
        self.advance(page.resource_version, page.continue_token)
            .await;
        Ok(Some(page.items))
    }

    async fn advance(&mut self, resource_version: String, continue_token: Option<String>) {
        // In-process pages are ready at once; let the runtime serve others between them.
        tokio::task::yield_now().await;
        // Later pages are read at the first page's revision.
        if self.resource_version.is_empty() {
            self.resource_version = resource_version;
        }
        match continue_token {
            Some(token) if !token.is_empty() => self.params.continue_token = Some(token),
            _ => self.done = true,
        }
    }
}

/// Watches `r` for as long as the stream is polled, reconnecting after the server ends a watch:
/// it resumes from the last revision seen (objects and bookmarks). After 410 Gone it lists
/// again and yields the current objects as `Added` and, for objects it had seen that are gone
/// now, `Deleted` with their identity (apiVersion, kind, name, namespace, uid), so followers
/// keyed by object forget what was deleted during the gap. Yields object events only.
pub fn watch_resuming(
    cluster: std::sync::Arc<dyn Cluster>,
    r: Resource,
    params: ListParams,
) -> WatchStream {
    let state = Resuming {
        cluster,
        r,
        params: ListParams {
            allow_bookmarks: true,
            timeout_seconds: params.timeout_seconds.or(Some(600)),
            ..params
        },
        stream: None,
        known: std::collections::HashMap::new(),
        resync: false,
        pending: std::collections::VecDeque::new(),
        quiet: false,
    };
    let events = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(ev) = st.pending.pop_front() {
                return Some((ev, st));
            }
            if st.stream.is_none() {
                st.connect().await;
                st.quiet = true;
                continue;
            }
            if let Some(ev) = st.next_object_event().await {
                st.remember(&ev);
                st.quiet = false;
                return Some((ev, st));
            }
            if st.stream.is_none() && st.quiet {
                // A watch that ended without a single event: do not hammer a server that
                // closes watches as they open.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    });
    Box::pin(events)
}

/// The state of [`watch_resuming`].
struct Resuming {
    cluster: std::sync::Arc<dyn Cluster>,
    r: Resource,
    params: ListParams,
    stream: Option<WatchStream>,
    /// `namespace/name` → uid of every object yielded and not deleted since.
    known: std::collections::HashMap<String, String>,
    /// The server forgot our revision: list before watching again.
    resync: bool,
    pending: std::collections::VecDeque<WatchEvent>,
    /// No event (bookmarks included) since the stream opened.
    quiet: bool,
}

impl Resuming {
    async fn connect(&mut self) {
        if self.resync {
            match list_all(&*self.cluster, &self.r, None, &self.list_params()).await {
                Ok(list) => self.replace_known(list),
                Err(_) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
            }
            return;
        }
        match self.cluster.watch(&self.r, None, &self.params).await {
            Ok(s) => self.stream = Some(s),
            Err(e) => {
                self.note_gone(&e);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }

    fn list_params(&self) -> ListParams {
        ListParams {
            label_selector: self.params.label_selector.clone(),
            field_selector: self.params.field_selector.clone(),
            ..ListParams::default()
        }
    }

    /// After a relist: every listed object is `Added`, every known one not listed `Deleted`.
    fn replace_known(&mut self, list: ObjectList) {
        let mut listed = std::collections::HashMap::with_capacity(list.items.len());
        for mut item in list.items {
            if let Some(o) = item.as_object_mut() {
                o.entry("apiVersion").or_insert(self.r.api_version().into());
                o.entry("kind").or_insert(self.r.kind.clone().into());
            }
            if let Some((key, uid)) = identity(&item) {
                listed.insert(key, uid);
            }
            self.pending.push_back(WatchEvent::Added(item.into()));
        }
        for (key, uid) in std::mem::replace(&mut self.known, listed) {
            if !self.known.contains_key(&key) {
                let gone = self.tombstone(&key, &uid).into();
                self.pending.push_back(WatchEvent::Deleted(gone));
            }
        }
        self.params.resource_version = Some(list.resource_version);
        self.resync = false;
    }

    fn tombstone(&self, key: &str, uid: &str) -> Value {
        let (namespace, name) = key.split_once('/').unwrap_or(("", key));
        let mut metadata = serde_json::json!({"name": name, "uid": uid});
        if !namespace.is_empty() {
            metadata["namespace"] = namespace.into();
        }
        serde_json::json!({
            "apiVersion": self.r.api_version(),
            "kind": self.r.kind,
            "metadata": metadata,
        })
    }

    fn note_gone(&mut self, e: &Error) {
        if e.is_gone() {
            self.params.resource_version = None;
            self.resync = true;
        }
    }

    /// The next object event of the open stream; `None` when it ended or only moved the revision.
    async fn next_object_event(&mut self) -> Option<WatchEvent> {
        use futures::StreamExt;
        let stream = self.stream.as_mut()?;
        match stream.next().await {
            Some(WatchEvent::Bookmark(rv)) => {
                self.params.resource_version = Some(rv);
                self.quiet = false;
            }
            Some(WatchEvent::Error(e)) => {
                self.note_gone(&e);
                self.stream = None;
            }
            None => self.stream = None,
            Some(ev) => {
                if let WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) = &ev
                {
                    self.params.resource_version = o
                        .at("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                        .map(String::from);
                }
                return Some(ev);
            }
        }
        None
    }

    fn remember(&mut self, ev: &WatchEvent) {
        match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                if let Some((key, uid)) = identity(o) {
                    self.known.insert(key, uid);
                }
            }
            WatchEvent::Deleted(o) => {
                if let Some((key, _)) = identity(o) {
                    self.known.remove(&key);
                }
            }
            WatchEvent::Bookmark(_) | WatchEvent::Error(_) => {}
        }
    }
}

/// `namespace/name` and uid of an object.
fn identity(o: &Value) -> Option<(String, String)> {
    let name = o.at("/metadata/name").and_then(Value::as_str)?;
    let namespace = o
        .at("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let uid = o.at("/metadata/uid").and_then(Value::as_str).unwrap_or("");
    Some((format!("{namespace}/{name}"), uid.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn name_of(ev: &WatchEvent) -> (&'static str, String) {
        let (what, o) = match ev {
            WatchEvent::Added(o) => ("Added", o),
            WatchEvent::Modified(o) => ("Modified", o),
            WatchEvent::Deleted(o) => ("Deleted", o),
            _ => return ("other", String::new()),
        };
        (what, o["metadata"]["name"].as_str().unwrap().to_string())
    }

    /// A follower busy with its watch while the runtime shuts down must not hold the shutdown:
    /// the task feeding a new watch is dropped at once then, and watching again at once used
    /// to spin inside one poll for good.
    #[test]
    fn a_resuming_watch_lets_the_runtime_shut_down() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
        let cluster = rt.block_on(async {
            let server =
                apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
                    .await
                    .unwrap();
            let cluster: std::sync::Arc<dyn Cluster> =
                std::sync::Arc::new(LocalCluster::new(server.registry.clone()));
            for i in 0..3000 {
                let cm = json!({"metadata": {"name": format!("c{i}"), "namespace": "default"}});
                cluster.create(&cms, Some("default"), &cm).await.unwrap();
            }
            cluster
        });
        let (streaming, started) = std::sync::mpsc::channel();
        rt.spawn(async move {
            use futures::StreamExt;
            let mut events = watch_resuming(cluster, cms, ListParams::default());
            let mut seen = 0;
            while events.next().await.is_some() {
                seen += 1;
                if seen == 10 {
                    let _ = streaming.send(());
                }
            }
        });
        started.recv().unwrap();
        let shutdown = std::time::Instant::now();
        rt.shutdown_timeout(std::time::Duration::from_secs(10));
        assert!(
            shutdown.elapsed() < std::time::Duration::from_secs(5),
            "shutdown took {:?}",
            shutdown.elapsed()
        );
    }

    /// Objects deleted while the server had forgotten our revision come out as `Deleted`.
    #[tokio::test]
    async fn relist_after_gone_reports_what_vanished_in_the_gap() {
        let server =
            apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
                .await
                .unwrap();
        let cluster: std::sync::Arc<dyn Cluster> =
            std::sync::Arc::new(LocalCluster::new(server.registry.clone()));
        let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
        for name in ["a", "b"] {
            let cm = json!({"metadata": {"name": name, "namespace": "default"}});
            cluster.create(&cms, Some("default"), &cm).await.unwrap();
        }
        let mut resuming = Resuming {
            cluster: cluster.clone(),
            r: cms.clone(),
            params: ListParams::default(),
            stream: None,
            known: Default::default(),
            resync: false,
            pending: Default::default(),
            quiet: false,
        };
        resuming.connect().await;
        for _ in 0..2 {
            let ev = resuming.next_object_event().await.unwrap();
            resuming.remember(&ev);
        }
        let b_uid = resuming.known["default/b"].clone();

        resuming.stream = None;
        cluster
            .delete(&cms, Some("default"), "b", &DeleteParams::default())
            .await
            .unwrap();
        let c = json!({"metadata": {"name": "c", "namespace": "default"}});
        cluster.create(&cms, Some("default"), &c).await.unwrap();
        resuming.note_gone(&Error {
            code: 410,
            reason: "Expired".into(),
            message: "too old resource version".into(),
        });
        resuming.connect().await;

        let events: Vec<_> = resuming.pending.drain(..).collect();
        let names: Vec<_> = events.iter().map(name_of).collect();
        assert_eq!(
            names,
            [
                ("Added", "a".to_string()),
                ("Added", "c".to_string()),
                ("Deleted", "b".to_string())
            ]
        );
        let WatchEvent::Deleted(gone) = &events[2] else {
            unreachable!()
        };
        assert_eq!(gone["metadata"]["uid"], b_uid.as_str());
        assert_eq!(gone["kind"], "ConfigMap");
        let WatchEvent::Added(listed) = &events[1] else {
            unreachable!()
        };
        assert_eq!(listed["kind"], "ConfigMap");

        // The watch goes on from the list's revision: later writes arrive, nothing twice.
        resuming.connect().await;
        cluster
            .delete(&cms, Some("default"), "a", &DeleteParams::default())
            .await
            .unwrap();
        let ev = resuming.next_object_event().await.unwrap();
        assert_eq!(name_of(&ev), ("Deleted", "a".to_string()));
    }
}
