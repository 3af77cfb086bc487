//! The in-process implementation: calls the embedded API server's registry directly.

use apiserver::objects::{JsonAt, Projection};
use std::sync::Arc;

use apiserver::Registry;
use apiserver::errors::ApiError;
use apiserver::patch::PatchType;
use apiserver::resources::ResourceType;
use apiserver::rest::{self, Part, WriteOptions};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    Cluster, DeleteParams, EncodedList, EncodedObject, EncodedWatchEvent, EncodedWatchStream,
    Error, ListParams, ObjectList, Patch, Resource, Result, WatchEvent, WatchStream,
};

/// A cluster reached in-process, through the same registry that serves HTTP requests.
///
/// Watch events share one decoded object per write among every in-process watcher, and leave
/// out `metadata.managedFields` (as kube-controller-manager's informers drop them); gets and
/// lists return objects whole.
#[derive(Clone)]
pub struct LocalCluster {
    registry: Arc<Registry>,
}

impl LocalCluster {
    /// Patches; returns the stored object as the server encodes its answer.
    async fn patched(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
    ) -> Result<bytes::Bytes> {
        let t = lookup(&self.registry, r)?;
        let (patch_type, body) = match patch {
            Patch::Merge(v) => (PatchType::Merge, v),
            Patch::Json(v) => (PatchType::Json, v),
            Patch::Strategic(v) => (PatchType::Strategic, v),
        };
        let part = match subresource {
            Some("status") => Part::Status,
            None => Part::Main,
            Some("scale") => {
                let body = body.clone();
                let mut compute = |scale: &Value| -> apiserver::ApiResult<Value> {
                    Ok(match patch_type {
                        PatchType::Json => apiserver::patch::json_patch(scale, &body)?,
                        _ => apiserver::patch::merge_patch(scale, &body)?,
                    })
                };
                let scale = self
                    .registry
                    .update_scale(t, namespace, name, &WriteOptions::default(), &mut compute)
                    .await
                    .map_err(api_error)?;
                return Ok(scale);
            }
            Some(other) => {
                return Err(Error {
                    code: 404,
                    reason: "NotFound".into(),
                    message: format!("subresource {other} cannot be patched in-process"),
                });
            }
        };
        let w = self
            .registry
            .patch(
                t,
                namespace,
                name,
                patch_type,
                body.clone(),
                part,
                &WriteOptions::default(),
            )
            .await
            .map_err(api_error)?;
        Ok(w.body)
    }

    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }

    async fn list_page(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<rest::ListPage> {
        let t = lookup(&self.registry, r)?;
        self.registry
            .list(t, namespace, &list_options(params))
            .await
            .map_err(api_error)
    }

    async fn start_watch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<apiserver::watchqueue::Receiver> {
        // Give the scheduler a turn: while the runtime shuts down, the task that feeds a new
        // watch is dropped at once, so the watch ends as it starts, and a follower that
        // watches again straight away would otherwise spin inside one poll and hold up the
        // shutdown for good.
        tokio::task::yield_now().await;
        let t = lookup(&self.registry, r)?;
        apiserver::watch::start(
            self.registry.clone(),
            t,
            namespace.map(String::from),
            list_options(params),
            true,
        )
        .await
        .map_err(api_error)
    }
}

pub(crate) fn api_error(e: ApiError) -> Error {
    Error {
        code: e.code,
        reason: e.reason.to_string(),
        message: e.message,
    }
}

/// What [`ListParams::metadata_only`] keeps: `PartialObjectMetadata`'s fields.
static METADATA: std::sync::LazyLock<Projection> = std::sync::LazyLock::new(|| {
    let mut p = Projection::default();
    p.keep(["apiVersion"]);
    p.keep(["kind"]);
    for field in [
        "name",
        "generateName",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
    ] {
        p.keep(["metadata", field]);
    }
    p
});

/// Decodes a stored object for a follower: without `managedFields`, or only its metadata.
fn decode_for(bytes: &[u8], metadata_only: bool) -> Result<Value> {
    let decoded = if metadata_only {
        METADATA.decode(bytes)
    } else {
        apiserver::objects::decode_without_managed_fields(bytes)
    };
    decoded.map_err(api_error)
}

/// A list decoded through [`ListParams::projection`]. Its field selector is tested here, on the
/// projected objects, rather than by the registry, which would decode each object once more
/// to test it (a selector naming one object stays with the registry, which gets just that).
struct ProjectedList {
    params: ListParams,
    projection: Projection,
    fields: Option<(apiserver::selectors::FieldSelector, &'static ResourceType)>,
}

impl ProjectedList {
    fn keeps(&self, object: &Value) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|(selector, t)| selector.matches(t, object))
    }
}

impl LocalCluster {
    fn projected_list(&self, r: &Resource, params: &ListParams) -> Result<Option<ProjectedList>> {
        let Some(projection) = &params.projection else {
            return Ok(None);
        };
        let mut list = ProjectedList {
            params: params.clone(),
            projection: (**projection).clone(),
            fields: None,
        };
        let raw = params.field_selector.as_deref().unwrap_or_default();
        let selector = apiserver::selectors::FieldSelector::parse(raw)
            .map_err(|e| api_error(ApiError::bad_request(e)))?;
        if selector.is_empty() || selector.exact_name().is_some() {
            return Ok(Some(list));
        }
        let t = lookup(&self.registry, r)?;
        selector
            .check(t, params.label_selector.as_deref().unwrap_or_default(), raw)
            .map_err(|e| api_error(ApiError::bad_request(e)))?;
        selector.project(t, &mut list.projection);
        list.params.field_selector = None;
        list.fields = Some((selector, t));
        Ok(Some(list))
    }
}

fn decode(bytes: &Bytes) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::transport(format!("decode object: {e}")))
}

fn lookup(registry: &Registry, r: &Resource) -> Result<&'static ResourceType> {
    registry
        .find(&r.group, &r.version, &r.plural)
        .ok_or_else(|| Error {
            code: 404,
            reason: "NotFound".into(),
            message: format!(
                "the server could not find the requested resource ({})",
                r.plural
            ),
        })
}

fn list_options(params: &ListParams) -> rest::ListOptions {
    rest::ListOptions {
        label_selector: params.label_selector.clone().unwrap_or_default(),
        field_selector: params.field_selector.clone().unwrap_or_default(),
        limit: params.limit.unwrap_or(0),
        continue_token: params.continue_token.clone().unwrap_or_default(),
        resource_version: params.resource_version.clone().unwrap_or_default(),
        resource_version_match: String::new(),
        timeout_seconds: params.timeout_seconds,
        allow_bookmarks: params.allow_bookmarks,
        send_initial_events: None,
        skip_remaining_count: true,
    }
}

fn delete_options(params: &DeleteParams) -> rest::DeleteOptions {
    rest::DeleteOptions {
        grace_period_seconds: params.grace_period_seconds,
        propagation_policy: params.propagation_policy.clone(),
        precondition_uid: params.precondition_uid.clone(),
        precondition_resource_version: params.precondition_resource_version.clone(),
        dry_run: false,
        user: None,
    }
}

fn name_of(object: &Value) -> String {
    object
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[async_trait::async_trait]
impl Cluster for LocalCluster {
    async fn get(&self, r: &Resource, namespace: Option<&str>, name: &str) -> Result<Value> {
        let t = lookup(&self.registry, r)?;
        decode(
            &self
                .registry
                .get(t, namespace, name)
                .await
                .map_err(api_error)?,
        )
    }

    async fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList> {
        let page = self.list_page(r, namespace, params).await?;
        let decode_item = |bytes: &Bytes| {
            if params.metadata_only {
                decode_for(bytes, true)
            } else {
                decode(bytes)
            }
        };
        let items = page.items.iter().map(decode_item).collect::<Result<_>>()?;
        Ok(ObjectList {
            items,
            resource_version: page.resource_version.to_string(),
            continue_token: page.continue_token,
        })
    }

    async fn list_encoded(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<EncodedList> {
        let projected = self.projected_list(r, params)?;
        let list_params = projected.as_ref().map_or(params, |p| &p.params);
        let page = self.list_page(r, namespace, list_params).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for json in page.items {
            let object = match &projected {
                Some(p) => p.projection.decode(&json).map_err(api_error)?,
                None => decode_for(&json, params.metadata_only)?,
            };
            if projected.as_ref().is_none_or(|p| p.keeps(&object)) {
                items.push(EncodedObject {
                    object,
                    json: Some(json),
                });
            }
        }
        Ok(EncodedList {
            items,
            resource_version: page.resource_version.to_string(),
            continue_token: page.continue_token,
        })
    }

    async fn watch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<WatchStream> {
        let rx = self.start_watch(r, namespace, params).await?;
        let metadata_only = params.metadata_only;
        let stream = futures::stream::unfold(rx, move |mut rx| async move {
            let ev = rx.recv().await?;
            Some((watch_event(ev, metadata_only).event, rx))
        });
        Ok(stream.boxed())
    }

    async fn watch_encoded(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<EncodedWatchStream> {
        let rx = self.start_watch(r, namespace, params).await?;
        let metadata_only = params.metadata_only;
        let stream = futures::stream::unfold(rx, move |mut rx| async move {
            let ev = rx.recv().await?;
            Some((watch_event(ev, metadata_only), rx))
        });
        Ok(stream.boxed())
    }

    async fn create(&self, r: &Resource, namespace: Option<&str>, object: &Value) -> Result<Value> {
        let t = lookup(&self.registry, r)?;
        let w = self
            .registry
            .create(t, namespace, object.clone(), &WriteOptions::default())
            .await
            .map_err(api_error)?;
        decode(&w.body)
    }

    async fn update(&self, r: &Resource, namespace: Option<&str>, object: &Value) -> Result<Value> {
        let t = lookup(&self.registry, r)?;
        let w = self
            .registry
            .update(
                t,
                namespace,
                &name_of(object),
                object.clone(),
                Part::Main,
                &WriteOptions::default(),
            )
            .await
            .map_err(api_error)?;
        decode(&w.body)
    }

    async fn update_status(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value> {
        let t = lookup(&self.registry, r)?;
        let w = self
            .registry
            .update(
                t,
                namespace,
                &name_of(object),
                object.clone(),
                Part::Status,
                &WriteOptions::default(),
            )
            .await
            .map_err(api_error)?;
        decode(&w.body)
    }

    async fn patch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
    ) -> Result<Value> {
        decode(&self.patched(r, namespace, name, patch, subresource).await?)
    }

    async fn patch_as_without_answer(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
        _user: Option<&str>,
    ) -> Result<()> {
        self.patched(r, namespace, name, patch, subresource)
            .await
            .map(drop)
    }

    async fn delete(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Value> {
        let t = lookup(&self.registry, r)?;
        let opts = delete_options(params);
        decode(
            &self
                .registry
                .delete(t, namespace, name, &opts)
                .await
                .map_err(api_error)?,
        )
    }

    async fn delete_without_answer(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<()> {
        let t = lookup(&self.registry, r)?;
        self.registry
            .delete(t, namespace, name, &delete_options(params))
            .await
            .map(drop)
            .map_err(api_error)
    }

    async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<()> {
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        self.registry
            .bind(namespace, pod, &binding)
            .await
            .map_err(api_error)
    }
}

/// A watch event of the embedded server as the client hands it out, with the stored JSON.
fn watch_event(ev: apiserver::watch::WatchEvent, metadata_only: bool) -> EncodedWatchEvent {
    let decoded = match ev.decoded {
        Some(obj) => Ok(obj),
        None => decode_for(&ev.object, metadata_only).map(Arc::new),
    };
    let event = match decoded {
        Err(e) => WatchEvent::Error(e),
        Ok(obj) => match ev.kind {
            "ADDED" => WatchEvent::Added(obj),
            "MODIFIED" => WatchEvent::Modified(obj),
            "DELETED" => WatchEvent::Deleted(obj),
            "BOOKMARK" => WatchEvent::Bookmark(
                obj.at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            ),
            _ => WatchEvent::Error(Error {
                code: obj.get("code").and_then(Value::as_u64).unwrap_or(500) as u16,
                reason: obj
                    .get("reason")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                message: obj
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            }),
        },
    };
    let json = matches!(
        event,
        WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_)
    )
    .then_some(ev.object);
    EncodedWatchEvent { event, json }
}
