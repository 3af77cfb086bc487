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

pub use apiserver::objects::JsonAt;
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
    /// Events after `params.resource_version` (or the current state first when it is unset).
    async fn watch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<WatchStream>;
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

/// Lists every page.
pub async fn list_all(
    cluster: &dyn Cluster,
    r: &Resource,
    namespace: Option<&str>,
    params: &ListParams,
) -> Result<ObjectList> {
    let mut params = params.clone();
    if params.limit.is_none() {
        params.limit = Some(500);
    }
    let mut items = Vec::new();
    loop {
        let page = cluster.list(r, namespace, &params).await?;
        items.extend(page.items);
        // In-process pages are ready at once; let the runtime serve others between them.
        tokio::task::yield_now().await;
        match page.continue_token {
            Some(token) if !token.is_empty() => params.continue_token = Some(token),
            _ => {
                return Ok(ObjectList {
                    items,
                    resource_version: page.resource_version,
                    continue_token: None,
                });
            }
        }
    }
}

/// Watches `r` for as long as the stream is polled, reconnecting after the server ends a watch:
/// it resumes from the last revision seen (objects and bookmarks), and after 410 Gone starts
/// over, getting the current objects again as `Added`. Yields object events only.
pub fn watch_resuming(
    cluster: std::sync::Arc<dyn Cluster>,
    r: Resource,
    params: ListParams,
) -> WatchStream {
    struct State {
        cluster: std::sync::Arc<dyn Cluster>,
        r: Resource,
        params: ListParams,
        stream: Option<WatchStream>,
    }
    let state = State {
        cluster,
        r,
        params: ListParams {
            allow_bookmarks: true,
            timeout_seconds: params.timeout_seconds.or(Some(600)),
            ..params
        },
        stream: None,
    };
    let events = futures::stream::unfold(state, |mut st| async move {
        use futures::StreamExt;
        loop {
            let Some(stream) = st.stream.as_mut() else {
                match st.cluster.watch(&st.r, None, &st.params).await {
                    Ok(s) => st.stream = Some(s),
                    Err(e) => {
                        if e.is_gone() {
                            st.params.resource_version = None;
                        }
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
                continue;
            };
            let revision_of = |o: &Value| {
                o.at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(String::from)
            };
            match stream.next().await {
                Some(WatchEvent::Bookmark(rv)) => st.params.resource_version = Some(rv),
                Some(WatchEvent::Error(e)) => {
                    if e.is_gone() {
                        st.params.resource_version = None;
                    }
                    st.stream = None;
                }
                None => st.stream = None,
                Some(
                    ev @ (WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)),
                ) => {
                    if let WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) =
                        &ev
                    {
                        st.params.resource_version = revision_of(o);
                    }
                    return Some((ev, st));
                }
            }
        }
    });
    Box::pin(events)
}
