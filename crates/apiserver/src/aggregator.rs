//! Aggregated APIs: an `APIService` whose `spec.service` names a Service has its group-version
//! served by that Service's server. Requests under `/apis/<group>/<version>` are proxied to it
//! (after authentication and authorization here) with the requester in `X-Remote-User`,
//! `X-Remote-Group` and `X-Remote-Extra-*`, presenting a `front-proxy-client` certificate signed
//! by the cluster CA; the group appears in discovery with the resources the server lists; and
//! the APIService's `Available` condition reports whether the server answers its discovery.
//!
//! Group-versions this server serves itself (built-in kinds, custom resources, the resource
//! metrics API) stay local even when an APIService names a Service for them, so installing
//! metrics-server's manifests does not take `kubectl top` away from the simulated pods.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::BodyExt;
use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::errors::{ApiError, ApiResult};
use crate::objects::{self, JsonAt};
use crate::resources::{self, ResourceType};
use crate::rest::{ListOptions, Part, Registry, WriteOptions};
use crate::upstream::{Trust, describe_error, resolve_service};

const GROUP: &str = "apiregistration.k8s.io";

/// How long an availability check waits for the server's discovery document.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// How often every APIService is checked again.
const RECHECK: Duration = Duration::from_secs(30);

fn apiservices() -> &'static ResourceType {
    resources::find(GROUP, "v1", "apiservices").expect("built in")
}

/// An APIService served by a Service.
pub(crate) struct Remote {
    name: String,
    group: String,
    version: String,
    namespace: String,
    service: String,
    port: u16,
    ca_bundle: Vec<u8>,
    insecure: bool,
    version_priority: i64,
    /// The server's `APIResourceList`, from the last check that reached it.
    resources: RwLock<Option<Value>>,
}

impl Remote {
    fn from_json(o: &Value) -> Option<Self> {
        let spec = o.get("spec")?;
        let service = spec.get("service").filter(|s| s.is_object())?;
        let text = |v: &Value, p: &str| v.at(p).and_then(Value::as_str).unwrap_or("").to_string();
        use base64::Engine;
        Some(Remote {
            name: text(o, "/metadata/name"),
            group: text(spec, "/group"),
            version: text(spec, "/version"),
            namespace: text(service, "/namespace"),
            service: text(service, "/name"),
            port: service
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443),
            ca_bundle: spec
                .get("caBundle")
                .and_then(Value::as_str)
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .unwrap_or_default(),
            insecure: spec.get("insecureSkipTLSVerify") == Some(&Value::Bool(true)),
            version_priority: spec
                .get("versionPriority")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            resources: RwLock::new(None),
        })
    }

    fn same_target(&self, other: &Remote) -> bool {
        (
            &self.namespace,
            &self.service,
            self.port,
            &self.ca_bundle,
            self.insecure,
        ) == (
            &other.namespace,
            &other.service,
            other.port,
            &other.ca_bundle,
            other.insecure,
        )
    }
}

/// Aggregated APIServices by group and version.
type Remotes = HashMap<(String, String), Arc<Remote>>;

/// The aggregated APIs of one server.
#[derive(Default)]
pub(crate) struct Aggregator {
    remotes: RwLock<Arc<Remotes>>,
    /// The `front-proxy-client` certificate and key presented to aggregated servers.
    front_proxy: RwLock<Option<(String, String)>>,
}

impl Aggregator {
    /// Signs the front-proxy client certificate with the cluster CA.
    pub(crate) fn set_front_proxy_ca(&self, ca: &pki::CertPem) {
        match pki::client_certificate(ca, "front-proxy-client", &[]) {
            Ok(cert) => *self.front_proxy.write().unwrap() = Some((cert.cert, cert.key)),
            Err(e) => tracing::warn!(error = %e, "no front-proxy client certificate"),
        }
    }

    /// The aggregated server of `group`/`version`, unless this server serves it itself.
    pub(crate) fn remote(
        &self,
        registry: &Registry,
        group: &str,
        version: &str,
    ) -> Option<Arc<Remote>> {
        let remotes = self.remotes.read().unwrap();
        if remotes.is_empty() {
            return None;
        }
        let remote = remotes
            .get(&(group.to_string(), version.to_string()))?
            .clone();
        let local = registry
            .types()
            .iter()
            .any(|r| r.group == group && r.version == version);
        (!local).then_some(remote)
    }

    /// The aggregated remotes not shadowed by local types, in version priority order.
    fn served(&self, registry: &Registry) -> Vec<Arc<Remote>> {
        let mut out: Vec<Arc<Remote>> = self
            .remotes
            .read()
            .unwrap()
            .values()
            .filter(|r| self.remote(registry, &r.group, &r.version).is_some())
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            (&a.group, -a.version_priority, &a.version).cmp(&(
                &b.group,
                -b.version_priority,
                &b.version,
            ))
        });
        out
    }

    /// Reads the APIServices again, keeping what was learnt of unchanged ones.
    async fn reload(&self, registry: &Registry) {
        let Ok(page) = registry
            .list(apiservices(), None, &ListOptions::default())
            .await
        else {
            return;
        };
        let previous = self.remotes.read().unwrap().clone();
        let mut remotes = HashMap::new();
        for item in &page.items {
            let Some(remote) = objects::decode(item)
                .ok()
                .as_ref()
                .and_then(Remote::from_json)
            else {
                continue;
            };
            let key = (remote.group.clone(), remote.version.clone());
            if let Some(old) = previous.get(&key).filter(|old| old.same_target(&remote)) {
                *remote.resources.write().unwrap() = old.resources.read().unwrap().clone();
            }
            remotes.insert(key, Arc::new(remote));
        }
        *self.remotes.write().unwrap() = Arc::new(remotes);
    }

    fn trust(&self, remote: &Remote) -> Trust {
        Trust {
            ca_bundle: remote.ca_bundle.clone(),
            server_name: format!("{}.{}.svc", remote.service, remote.namespace),
            insecure: remote.insecure,
            client_identity: self.front_proxy.read().unwrap().clone(),
        }
    }

    /// Sends `req` (path and query as the client sent them) to the remote's server.
    async fn send(
        &self,
        registry: &Registry,
        remote: &Remote,
        mut req: Request<Body>,
    ) -> Result<Response<hyper::body::Incoming>, (u16, &'static str, String)> {
        let address = resolve_service(registry, &remote.namespace, &remote.service, remote.port)
            .await
            .map_err(|e| (503, "MissingEndpoints", e))?;
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri = format!("https://{address}{path}")
            .parse()
            .map_err(|e| (503, "FailedDiscoveryCheck", format!("{e}")))?;
        *req.uri_mut() = uri;
        // The client may have come over HTTP/2; the backend is spoken to in HTTP/1.1.
        *req.version_mut() = axum::http::Version::HTTP_11;
        let client = registry
            .upstream
            .client(&self.trust(remote))
            .map_err(|e| (503, "FailedDiscoveryCheck", e))?;
        client
            .request(req)
            .await
            .map_err(|e| (503, "FailedDiscoveryCheck", describe_error(e)))
    }

    /// Proxies a client's request to the aggregated server, as the requester.
    pub(crate) async fn proxy(
        &self,
        registry: &Registry,
        remote: &Remote,
        req: Request<Body>,
        user: &UserInfo,
    ) -> ApiResult<Response<Body>> {
        let (mut parts, body) = req.into_parts();
        forward_identity(&mut parts.headers, user);
        let req = Request::from_parts(parts, body);
        match self.send(registry, remote, req).await {
            Ok(resp) => Ok(resp.map(Body::new)),
            Err((_, _, why)) => Err(ApiError::new(
                503,
                "ServiceUnavailable",
                format!("error trying to reach service: {why}"),
            )),
        }
    }

    /// Asks the server for its discovery document; the condition to report.
    async fn check(&self, registry: &Registry, remote: &Remote) -> (bool, &'static str, String) {
        let services = resources::find("", "v1", "services").expect("built in");
        if registry
            .get(services, Some(&remote.namespace), &remote.service)
            .await
            .is_err()
        {
            return (
                false,
                "ServiceNotFound",
                format!(
                    "service/{} in {:?} is not present",
                    remote.service, remote.namespace
                ),
            );
        }
        let path = format!("/apis/{}/{}", remote.group, remote.version);
        let req = Request::get(path.as_str())
            .header("accept", "application/json")
            .body(Body::empty())
            .expect("valid request");
        let answer = tokio::time::timeout(CHECK_TIMEOUT, async {
            let resp = self.send(registry, remote, req).await?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| (503, "FailedDiscoveryCheck", e.to_string()))?
                .to_bytes();
            if status != 200 {
                return Err((
                    503,
                    "FailedDiscoveryCheck",
                    format!("bad status from {path}: {status}"),
                ));
            }
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| (503, "FailedDiscoveryCheck", e.to_string()))
        })
        .await;
        let url = format!(
            "https://{}.{}.svc:{}{path}",
            remote.service, remote.namespace, remote.port
        );
        match answer {
            Ok(Ok(list)) => {
                *remote.resources.write().unwrap() = Some(list);
                (true, "Passed", "all checks passed".into())
            }
            Ok(Err((_, "MissingEndpoints", why))) => (false, "MissingEndpoints", why),
            Ok(Err((_, reason, why))) => (
                false,
                reason,
                format!("failing or missing response from {url}: {why}"),
            ),
            Err(_) => (
                false,
                "FailedDiscoveryCheck",
                format!("failing or missing response from {url}: context deadline exceeded"),
            ),
        }
    }

    /// Checks every aggregated APIService and writes its `Available` condition when it changed.
    async fn check_all(&self, registry: &Registry) {
        let remotes: Vec<Arc<Remote>> = self.remotes.read().unwrap().values().cloned().collect();
        for remote in remotes {
            let (available, reason, message) = self.check(registry, &remote).await;
            set_available(registry, &remote.name, available, reason, &message).await;
        }
    }

    /// Adds the aggregated groups to `/apis`.
    pub(crate) fn extend_group_list(&self, registry: &Registry, list: &mut Value) {
        let Some(groups) = list.get_mut("groups").and_then(Value::as_array_mut) else {
            return;
        };
        for (name, versions) in self.groups(registry) {
            groups.push(api_group(&name, &versions));
        }
    }

    /// `/apis/<group>` of an aggregated group.
    pub(crate) fn group(&self, registry: &Registry, name: &str) -> Option<Value> {
        let (name, versions) = self.groups(registry).into_iter().find(|(g, _)| g == name)?;
        let mut group = api_group(&name, &versions);
        group["kind"] = json!("APIGroup");
        group["apiVersion"] = json!("v1");
        Some(group)
    }

    /// Adds the aggregated groups to aggregated discovery, from what their servers last listed.
    pub(crate) fn extend_aggregated(&self, registry: &Registry, list: &mut Value) {
        let served = self.served(registry);
        let Some(items) = list.get_mut("items").and_then(Value::as_array_mut) else {
            return;
        };
        for (name, versions) in self.groups(registry) {
            let versions: Vec<Value> = versions
                .iter()
                .filter_map(|v| served.iter().find(|r| r.group == name && &r.version == v))
                .map(|remote| {
                    let resources = remote.resources.read().unwrap().clone();
                    let freshness = if resources.is_some() { "Current" } else { "Stale" };
                    json!({
                        "version": remote.version,
                        "resources": aggregated_resources(&remote.group, &remote.version, resources.as_ref()),
                        "freshness": freshness,
                    })
                })
                .collect();
            items.push(json!({"metadata": {"name": name, "creationTimestamp": null}, "versions": versions}));
        }
    }

    /// Aggregated groups and their versions, preferred first.
    fn groups(&self, registry: &Registry) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for remote in self.served(registry) {
            let local_group = registry.types().iter().any(|r| r.group == remote.group);
            if local_group {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == remote.group) {
                Some((_, versions)) => versions.push(remote.version.clone()),
                None => out.push((remote.group.clone(), vec![remote.version.clone()])),
            }
        }
        out
    }
}

fn api_group(name: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({"name": name, "versions": versions, "preferredVersion": versions[0]})
}

/// An `APIResourceList` in aggregated discovery's shape.
fn aggregated_resources(group: &str, version: &str, list: Option<&Value>) -> Vec<Value> {
    let entries: Vec<&Value> = list
        .and_then(|l| l.get("resources"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let text = |e: &Value, f: &str| e.get(f).and_then(Value::as_str).unwrap_or("").to_string();
    entries
        .iter()
        .filter(|e| !text(e, "name").contains('/'))
        .map(|e| {
            let name = text(e, "name");
            let subresources: Vec<Value> = entries
                .iter()
                .filter_map(|s| {
                    let full = text(s, "name");
                    let sub = full.strip_prefix(&format!("{name}/"))?.to_string();
                    Some(json!({
                        "subresource": sub,
                        "responseKind": {"group": group, "version": version, "kind": text(s, "kind")},
                        "verbs": s.get("verbs").cloned().unwrap_or(json!([])),
                    }))
                })
                .collect();
            let mut r = json!({
                "resource": name,
                "responseKind": {"group": group, "version": version, "kind": text(e, "kind")},
                "scope": if e.get("namespaced") == Some(&Value::Bool(true)) { "Namespaced" } else { "Cluster" },
                "singularResource": text(e, "singularName"),
                "verbs": e.get("verbs").cloned().unwrap_or(json!([])),
            });
            for field in ["shortNames", "categories"] {
                if let Some(v) = e.get(field).filter(|v| v.as_array().is_some_and(|a| !a.is_empty())) {
                    r[field] = v.clone();
                }
            }
            if !subresources.is_empty() {
                r["subresources"] = json!(subresources);
            }
            r
        })
        .collect()
}

/// Replaces the client's credentials by the front-proxy identity headers.
fn forward_identity(headers: &mut HeaderMap, user: &UserInfo) {
    let dropped: Vec<HeaderName> = headers
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k == "authorization"
                || k == "host"
                || k.starts_with("impersonate-")
                || k.starts_with("x-remote-")
        })
        .cloned()
        .collect();
    for name in dropped {
        headers.remove(name);
    }
    let mut add = |name: String, value: &str| {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
            headers.append(name, value);
        }
    };
    add("x-remote-user".into(), &user.name);
    for group in &user.groups {
        add("x-remote-group".into(), group);
    }
    for (key, values) in &user.extra {
        let escaped =
            percent_encoding::utf8_percent_encode(key, percent_encoding::NON_ALPHANUMERIC);
        for value in values {
            add(format!("x-remote-extra-{escaped}"), value);
        }
    }
}

/// Writes the `Available` condition of an APIService when it differs from what is stored.
async fn set_available(
    registry: &Registry,
    name: &str,
    available: bool,
    reason: &str,
    message: &str,
) {
    let r = apiservices();
    let Ok(body) = registry.get(r, None, name).await else {
        return;
    };
    let Ok(mut service) = objects::decode(&body) else {
        return;
    };
    let status = if available { "True" } else { "False" };
    let current = service
        .at("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Available"));
    if current
        .is_some_and(|c| c["status"] == status && c["reason"] == reason && c["message"] == message)
    {
        return;
    }
    let since = match current {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(objects::now_rfc3339()),
    };
    service["status"] = json!({"conditions": [{
        "type": "Available",
        "status": status,
        "lastTransitionTime": since,
        "reason": reason,
        "message": message,
    }]});
    let _ = registry
        .update(
            r,
            None,
            name,
            service,
            Part::Status,
            &WriteOptions::default(),
        )
        .await;
}

/// The `kube-system/extension-apiserver-authentication` ConfigMap extension servers read to
/// trust clients and this server's front proxy, created once the cluster CA is known.
/// True once it exists.
async fn publish_authentication(server: &crate::ApiServer) -> bool {
    let Some(ca) = server.cluster_ca() else {
        return false;
    };
    let configmaps = resources::find("", "v1", "configmaps").expect("built in");
    let name = "extension-apiserver-authentication";
    if server
        .registry
        .get(configmaps, Some("kube-system"), name)
        .await
        .is_ok()
    {
        return true;
    }
    let body = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "kube-system"},
        "data": {
            "client-ca-file": ca,
            "requestheader-client-ca-file": ca,
            "requestheader-allowed-names": "[\"front-proxy-client\"]",
            "requestheader-extra-headers-prefix": "[\"X-Remote-Extra-\"]",
            "requestheader-group-headers": "[\"X-Remote-Group\"]",
            "requestheader-username-headers": "[\"X-Remote-User\"]",
        },
    });
    server
        .registry
        .create(
            configmaps,
            Some("kube-system"),
            body,
            &WriteOptions::default(),
        )
        .await
        .is_ok()
}

/// Follows the APIServices for as long as the server lives: reloads them when they change and
/// checks their servers then and every [`RECHECK`].
pub(crate) fn follow(server: &Arc<crate::ApiServer>) {
    let weak = Arc::downgrade(server);
    tokio::spawn(async move {
        loop {
            let Some(server) = weak.upgrade() else { return };
            let registry = server.registry.clone();
            let opts = ListOptions::default();
            let watch =
                crate::watch::start(registry.clone(), apiservices(), None, opts, false).await;
            let mut published = publish_authentication(&server).await;
            server.aggregator.reload(&registry).await;
            server.aggregator.check_all(&registry).await;
            drop(server);
            let Ok(mut events) = watch else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            loop {
                // Until the CA is known (it is set after start), look again every second.
                let wait = if published {
                    RECHECK
                } else {
                    Duration::from_secs(1)
                };
                let event = tokio::time::timeout(wait, events.recv()).await;
                let Some(server) = weak.upgrade() else { return };
                if let Ok(None) = event {
                    break;
                }
                if !published {
                    published = publish_authentication(&server).await;
                    if event.is_err() {
                        continue;
                    }
                }
                server.aggregator.reload(&server.registry).await;
                server.aggregator.check_all(&server.registry).await;
            }
        }
    });
}
