//! The HTTP implementation: the Kubernetes REST API through kube-rs, for any cluster.

use apiserver::objects::JsonAt;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    Cluster, DeleteParams, Error, ListParams, ObjectList, Patch, Resource, Result, WatchEvent,
    WatchStream,
};

/// A cluster reached over HTTP(S) with a kube-rs client (kubeconfig, TLS, auth).
#[derive(Clone)]
pub struct HttpCluster {
    client: kube::Client,
}

impl HttpCluster {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// A client from a kubeconfig file (or the default kubeconfig with `None`).
    pub async fn from_kubeconfig(path: Option<&std::path::Path>) -> Result<Self> {
        let config = match path {
            Some(p) => {
                let kubeconfig =
                    kube::config::Kubeconfig::read_from(p).map_err(Error::transport)?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                    .await
                    .map_err(Error::transport)?
            }
            None => kube::Config::infer().await.map_err(Error::transport)?,
        };
        Ok(Self::new(
            kube::Client::try_from(config).map_err(Error::transport)?,
        ))
    }

    /// The resource types the server lists in discovery that support list, watch and delete
    /// (the ones a garbage collector can follow), in the preferred version of each group.
    pub async fn resources(&self) -> Result<Vec<Resource>> {
        let mut versions = vec![(String::new(), "v1".to_string())];
        let groups = self
            .call("GET", "/apis".into(), "application/json", vec![])
            .await?;
        for group in groups
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = group.get("name").and_then(Value::as_str);
            let version = group
                .at("/preferredVersion/version")
                .and_then(Value::as_str);
            if let (Some(name), Some(version)) = (name, version) {
                versions.push((name.to_string(), version.to_string()));
            }
        }
        let mut out = Vec::new();
        for (group, version) in versions {
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            let list = self.call("GET", path, "application/json", vec![]).await?;
            for r in list
                .get("resources")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(plural), Some(kind)) = (
                    r.get("name").and_then(Value::as_str),
                    r.get("kind").and_then(Value::as_str),
                ) else {
                    continue;
                };
                let verbs: Vec<&str> = r
                    .get("verbs")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                if plural.contains('/')
                    || !["list", "watch", "delete"]
                        .iter()
                        .all(|v| verbs.contains(v))
                {
                    continue;
                }
                let namespaced = r
                    .get("namespaced")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                out.push(Resource::new(&group, &version, plural, kind, namespaced));
            }
        }
        Ok(out)
    }

    async fn send(
        &self,
        method: &str,
        path: String,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<http::Response<kube::client::Body>> {
        self.send_as(method, path, content_type, body, None).await
    }

    async fn send_as(
        &self,
        method: &str,
        path: String,
        content_type: &str,
        body: Vec<u8>,
        user: Option<&str>,
    ) -> Result<http::Response<kube::client::Body>> {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .header("accept", "application/json");
        if let Some(user) = user {
            req = req.header("impersonate-user", user);
        }
        let req = req
            .body(kube::client::Body::from(body))
            .map_err(Error::transport)?;
        self.client.send(req).await.map_err(Error::transport)
    }

    async fn call(
        &self,
        method: &str,
        path: String,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Value> {
        self.call_as(method, path, content_type, body, None).await
    }

    async fn call_as(
        &self,
        method: &str,
        path: String,
        content_type: &str,
        body: Vec<u8>,
        user: Option<&str>,
    ) -> Result<Value> {
        let resp = self.send_as(method, path, content_type, body, user).await?;
        let status = resp.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .map_err(Error::transport)?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status >= 400 {
            return Err(status_error(status, &value));
        }
        Ok(value)
    }
}

fn status_error(code: u16, status: &Value) -> Error {
    Error {
        code,
        reason: status
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("Unknown")
            .to_string(),
        message: status
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
    }
}

fn query(params: &ListParams, watch: bool) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    if let Some(s) = &params.label_selector {
        q.append_pair("labelSelector", s);
    }
    if let Some(s) = &params.field_selector {
        q.append_pair("fieldSelector", s);
    }
    if let Some(l) = params.limit
        && !watch
    {
        q.append_pair("limit", &l.to_string());
    }
    if let Some(c) = &params.continue_token {
        q.append_pair("continue", c);
    }
    if let Some(rv) = &params.resource_version {
        q.append_pair("resourceVersion", rv);
    }
    if let Some(t) = params.timeout_seconds {
        q.append_pair("timeoutSeconds", &t.to_string());
    }
    if watch {
        q.append_pair("watch", "true");
        if params.allow_bookmarks {
            q.append_pair("allowWatchBookmarks", "true");
        }
    }
    q.finish()
}

fn name_of(object: &Value) -> &str {
    object
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn watch_event(line: &[u8]) -> Option<WatchEvent> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let object = v.get("object").cloned().unwrap_or(Value::Null);
    Some(match v.get("type").and_then(Value::as_str)? {
        "ADDED" => WatchEvent::Added(std::sync::Arc::new(object)),
        "MODIFIED" => WatchEvent::Modified(std::sync::Arc::new(object)),
        "DELETED" => WatchEvent::Deleted(std::sync::Arc::new(object)),
        "BOOKMARK" => WatchEvent::Bookmark(
            object
                .at("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        _ => WatchEvent::Error(status_error(
            object.get("code").and_then(Value::as_u64).unwrap_or(500) as u16,
            &object,
        )),
    })
}

#[async_trait::async_trait]
impl Cluster for HttpCluster {
    async fn get(&self, r: &Resource, namespace: Option<&str>, name: &str) -> Result<Value> {
        self.call(
            "GET",
            format!("{}/{name}", r.path(namespace)),
            "application/json",
            vec![],
        )
        .await
    }

    async fn list(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<ObjectList> {
        let v = self
            .call(
                "GET",
                format!("{}?{}", r.path(namespace), query(params, false)),
                "application/json",
                vec![],
            )
            .await?;
        Ok(ObjectList {
            items: v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            resource_version: v
                .at("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            continue_token: v
                .at("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(String::from),
        })
    }

    async fn watch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        params: &ListParams,
    ) -> Result<WatchStream> {
        let resp = self
            .send(
                "GET",
                format!("{}?{}", r.path(namespace), query(params, true)),
                "application/json",
                vec![],
            )
            .await?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .map_err(Error::transport)?
                .to_bytes();
            return Err(status_error(
                status,
                &serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ));
        }
        let body = resp.into_body();
        let stream = futures::stream::unfold(
            (body, BytesMut::new(), std::collections::VecDeque::new()),
            |(mut body, mut buf, mut ready)| async move {
                loop {
                    if let Some(ev) = ready.pop_front() {
                        return Some((ev, (body, buf, ready)));
                    }
                    let frame = http_body_util::BodyExt::frame(&mut body).await?;
                    let Ok(frame) = frame else { return None };
                    let Ok(data): Result<Bytes, _> = frame.into_data() else {
                        continue;
                    };
                    buf.extend_from_slice(&data);
                    while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                        let line = buf.split_to(pos + 1);
                        if let Some(ev) = watch_event(&line) {
                            ready.push_back(ev);
                        }
                    }
                }
            },
        );
        Ok(stream.boxed())
    }

    async fn create(&self, r: &Resource, namespace: Option<&str>, object: &Value) -> Result<Value> {
        self.call(
            "POST",
            r.path(namespace),
            "application/json",
            serde_json::to_vec(object).map_err(Error::transport)?,
        )
        .await
    }

    async fn update(&self, r: &Resource, namespace: Option<&str>, object: &Value) -> Result<Value> {
        let path = format!("{}/{}", r.path(namespace), name_of(object));
        self.call(
            "PUT",
            path,
            "application/json",
            serde_json::to_vec(object).map_err(Error::transport)?,
        )
        .await
    }

    async fn update_status(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        object: &Value,
    ) -> Result<Value> {
        let path = format!("{}/{}/status", r.path(namespace), name_of(object));
        self.call(
            "PUT",
            path,
            "application/json",
            serde_json::to_vec(object).map_err(Error::transport)?,
        )
        .await
    }

    async fn patch(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
    ) -> Result<Value> {
        self.patch_as(r, namespace, name, patch, subresource, None)
            .await
    }

    async fn patch_as(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        patch: &Patch,
        subresource: Option<&str>,
        user: Option<&str>,
    ) -> Result<Value> {
        let (ct, body) = match patch {
            Patch::Merge(v) => ("application/merge-patch+json", v),
            Patch::Json(v) => ("application/json-patch+json", v),
            Patch::Strategic(v) => ("application/strategic-merge-patch+json", v),
        };
        let mut path = format!("{}/{name}", r.path(namespace));
        if let Some(sub) = subresource {
            path.push('/');
            path.push_str(sub);
        }
        self.call_as(
            "PATCH",
            path,
            ct,
            serde_json::to_vec(body).map_err(Error::transport)?,
            user,
        )
        .await
    }

    async fn delete(
        &self,
        r: &Resource,
        namespace: Option<&str>,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Value> {
        let mut opts = json!({"kind": "DeleteOptions", "apiVersion": "v1"});
        if let Some(g) = params.grace_period_seconds {
            opts["gracePeriodSeconds"] = json!(g);
        }
        if let Some(p) = &params.propagation_policy {
            opts["propagationPolicy"] = json!(p);
        }
        if let Some(uid) = &params.precondition_uid {
            opts["preconditions"]["uid"] = json!(uid);
        }
        if let Some(rv) = &params.precondition_resource_version {
            opts["preconditions"]["resourceVersion"] = json!(rv);
        }
        let path = format!("{}/{name}", r.path(namespace));
        self.call(
            "DELETE",
            path,
            "application/json",
            opts.to_string().into_bytes(),
        )
        .await
    }

    async fn bind(&self, namespace: &str, pod: &str, node: &str) -> Result<()> {
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let path = format!("/api/v1/namespaces/{namespace}/pods/{pod}/binding");
        self.call(
            "POST",
            path,
            "application/json",
            binding.to_string().into_bytes(),
        )
        .await?;
        Ok(())
    }
}
