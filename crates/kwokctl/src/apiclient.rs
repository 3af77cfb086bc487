//! The blocking HTTPS client for the Kubernetes API: JSON bodies, client-certificate or
//! bearer-token authentication from a kubeconfig, CA verification, and discovery of resource
//! names. It is built from a kubeconfig (the cluster's own `kubeconfig.yaml`, or any user's
//! kubeconfig for `snapshot export`) and knows nothing else about Kubernetes objects.
//!
//! HTTP is `ureq` 3 (blocking, HTTP/1.1, rustls): its agent is shared by the worker threads of
//! `kwokctl scale` and keeps a pool of keep-alive connections. It was chosen over the
//! hyper-util/hyper-rustls client already in the workspace because that one is asynchronous and
//! would make kwokctl carry a tokio runtime for what are plain blocking calls; ureq adds a handful
//! of small crates and reuses the workspace's rustls with the ring provider.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use serde_json::Value;
use ureq::tls::{Certificate, ClientCert, PrivateKey, RootCerts, TlsConfig};

/// How long one read or write on a connection may take.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle keep-alive connections kept for the server (one per worker thread of `kwokctl scale`).
const POOL_SIZE: usize = 128;
/// What a metadata-only list asks for, with whole objects as the fallback.
const METADATA_LIST_ACCEPT: &str =
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Response {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// The server's message for an error status.
    pub fn message(&self) -> String {
        let json = self.json();
        match json.get("message").and_then(Value::as_str) {
            Some(m) => format!("{} {m}", self.status),
            None => format!(
                "{} {}",
                self.status,
                String::from_utf8_lossy(&self.body).trim()
            ),
        }
    }
}

/// Where and how to connect.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    /// `https://host:port`, without a trailing slash.
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
    headers: Vec<(String, String)>,
    discovery: Mutex<HashMap<String, Vec<ApiResource>>>,
    preferred: Mutex<Option<Vec<String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({})", self.inner.base)
    }
}

/// One resource type from discovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    /// `v1` or `<group>/<version>`.
    pub api_version: String,
    pub kind: String,
    /// The plural name used in paths.
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
}

impl ApiResource {
    pub fn group(&self) -> &str {
        match self.api_version.split_once('/') {
            Some((g, _)) => g,
            None => "",
        }
    }

    /// The collection path, in `namespace` when given (and the resource is namespaced).
    pub fn collection(&self, namespace: Option<&str>) -> String {
        let base = if self.api_version.contains('/') {
            format!("/apis/{}", self.api_version)
        } else {
            format!("/api/{}", self.api_version)
        };
        match namespace {
            Some(ns) if self.namespaced => format!("{base}/namespaces/{ns}/{}", self.plural),
            _ => format!("{base}/{}", self.plural),
        }
    }

    /// The path of one object.
    pub fn item(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}/{name}", self.collection(namespace))
    }
}

/// Credentials and endpoint taken from a kubeconfig.
#[derive(Debug, Default, Clone)]
pub struct Endpoint {
    pub server: String,
    pub ca_pem: Option<Vec<u8>>,
    pub insecure: bool,
    pub cert_pem: Option<Vec<u8>>,
    pub key_pem: Option<Vec<u8>>,
    pub token: Option<String>,
    /// Headers sent with every request, e.g. `Impersonate-User`.
    pub headers: Vec<(String, String)>,
}

impl Endpoint {
    /// Reads the current context of the kubeconfig at `path` (or `context` when given).
    pub fn from_kubeconfig(path: &Path, context: Option<&str>) -> anyhow::Result<Self> {
        Self::from_loaded_kubeconfig(path, &crate::kubeconfig::load(path)?, context)
    }

    /// [`Endpoint::from_kubeconfig`] for `doc`, the kubeconfig already read from `path`: for
    /// callers that take many contexts from one file.
    pub fn from_loaded_kubeconfig(
        path: &Path,
        doc: &Value,
        context: Option<&str>,
    ) -> anyhow::Result<Self> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_doc(doc, &base, context)
            .with_context(|| format!("kubeconfig {}", path.display()))
    }

    /// Reads a parsed kubeconfig; relative file paths are resolved against `base`.
    pub fn from_doc(doc: &Value, base: &Path, context: Option<&str>) -> anyhow::Result<Self> {
        let context = match context {
            Some(c) => c.to_string(),
            None => doc
                .get("current-context")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .ok_or_else(|| anyhow!("no current-context"))?
                .to_string(),
        };
        let find = |list: &str, name: &str| -> Option<Value> {
            doc.get(list)?
                .as_array()?
                .iter()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
                .cloned()
        };
        let ctx = find("contexts", &context)
            .and_then(|c| c.get("context").cloned())
            .ok_or_else(|| anyhow!("context {context:?} not found"))?;
        let cluster_name = ctx.get("cluster").and_then(Value::as_str).unwrap_or("");
        let cluster = find("clusters", cluster_name)
            .and_then(|c| c.get("cluster").cloned())
            .ok_or_else(|| anyhow!("cluster {cluster_name:?} not found"))?;
        let user = ctx
            .get("user")
            .and_then(Value::as_str)
            .and_then(|u| find("users", u))
            .and_then(|u| u.get("user").cloned())
            .unwrap_or(Value::Null);
        let read =
            |data_key: &str, file_key: &str, obj: &Value| -> anyhow::Result<Option<Vec<u8>>> {
                if let Some(data) = obj.get(data_key).and_then(Value::as_str) {
                    return base64::engine::general_purpose::STANDARD
                        .decode(data.trim())
                        .map(Some)
                        .with_context(|| format!("decode {data_key}"));
                }
                if let Some(file) = obj.get(file_key).and_then(Value::as_str) {
                    let mut p = PathBuf::from(file);
                    if p.is_relative() {
                        p = base.join(p);
                    }
                    return std::fs::read(&p)
                        .map(Some)
                        .with_context(|| format!("read {}", p.display()));
                }
                Ok(None)
            };
        let token = match user.get("token").and_then(Value::as_str) {
            Some(t) => Some(t.to_string()),
            None => match user.get("tokenFile").and_then(Value::as_str) {
                Some(f) => Some(
                    std::fs::read_to_string(f)
                        .with_context(|| format!("read {f}"))?
                        .trim()
                        .to_string(),
                ),
                None => None,
            },
        };
        Ok(Self {
            server: cluster
                .get("server")
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("cluster {cluster_name:?} has no server"))?
                .to_string(),
            ca_pem: read(
                "certificate-authority-data",
                "certificate-authority",
                &cluster,
            )?,
            insecure: cluster
                .get("insecure-skip-tls-verify")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            cert_pem: read("client-certificate-data", "client-certificate", &user)?,
            key_pem: read("client-key-data", "client-key", &user)?,
            token,
            headers: Vec::new(),
        })
    }
}

impl Endpoint {
    /// Acts as `user` and `groups` (kubectl's `--as`, `--as-group`); empty values add nothing.
    pub fn impersonate(&mut self, user: &str, groups: &[String]) {
        if !user.is_empty() {
            self.headers
                .push(("Impersonate-User".into(), user.to_string()));
        }
        for g in groups.iter().filter(|g| !g.is_empty()) {
            self.headers.push(("Impersonate-Group".into(), g.clone()));
        }
    }
}

/// Splits `https://host:port[/...]` into host and port.
pub fn parse_server(server: &str) -> anyhow::Result<(String, u16)> {
    let rest = server
        .strip_prefix("https://")
        .ok_or_else(|| anyhow!("server {server:?}: only https:// servers are supported"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if let Some(v6) = authority.strip_prefix('[') {
        let (host, tail) = v6
            .split_once(']')
            .ok_or_else(|| anyhow!("server {server:?}: bad IPv6 address"))?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().context("port")?,
            None => 443,
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), port.parse().context("port")?)),
        None => Ok((authority.to_string(), 443)),
    }
}

impl Client {
    /// A client for the cluster described by a kubeconfig file.
    pub fn from_kubeconfig(path: &Path) -> anyhow::Result<Self> {
        Self::new(&Endpoint::from_kubeconfig(path, None)?)
    }

    pub fn new(endpoint: &Endpoint) -> anyhow::Result<Self> {
        let (host, port) = parse_server(&endpoint.server)?;
        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let config = ureq::Agent::config_builder()
            .tls_config(tls_config(endpoint)?)
            .http_status_as_error(false)
            .user_agent(format!("kwokctl/{}", crate::VERSION))
            .accept("application/json")
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(IO_TIMEOUT))
            .timeout_per_write(Some(IO_TIMEOUT))
            .max_idle_connections(POOL_SIZE)
            .max_idle_connections_per_host(POOL_SIZE)
            .max_idle_age(Duration::from_secs(60))
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                base: format!("https://{host_part}:{port}"),
                agent: config.into(),
                token: endpoint.token.clone(),
                headers: endpoint.headers.clone(),
                discovery: Mutex::new(HashMap::new()),
                preferred: Mutex::new(None),
            }),
        })
    }

    fn build(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> anyhow::Result<ureq::http::Request<Vec<u8>>> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.inner.base));
        if let Some(token) = &self.inner.token {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        for (name, value) in &self.inner.headers {
            req = req.header(name, value);
        }
        if body.is_some() {
            req = req.header("Content-Type", content_type);
        }
        req.body(body.unwrap_or_default())
            .with_context(|| format!("{method} {path}"))
    }

    /// Sends one request; `body` is JSON. A request that fails at the transport level (for
    /// example on a pooled connection the server has just closed) is retried once.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        let body = match body {
            Some(v) => Some(serde_json::to_vec(v)?),
            None => None,
        };
        self.send(method, path, body.as_deref(), "application/json")
    }

    /// Sends one request with a body of the given content type (a patch type, for example),
    /// retried once as [`Client::request`] is.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> anyhow::Result<Response> {
        self.send_accepting(method, path, body, content_type, None)
    }

    /// [`Client::send`] with an `Accept` header of its own instead of JSON's.
    fn send_accepting(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
        accept: Option<&str>,
    ) -> anyhow::Result<Response> {
        let accept = accept
            .map(ureq::http::HeaderValue::from_str)
            .transpose()
            .context("Accept header")?;
        let send = || -> Result<Response, ureq::Error> {
            let mut req = self
                .build(method, path, body.map(<[u8]>::to_vec), content_type)
                .map_err(|e| ureq::Error::Other(e.into()))?;
            if let Some(accept) = &accept {
                req.headers_mut().insert("Accept", accept.clone());
            }
            let resp = self.inner.agent.run(req)?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .with_config()
                .limit(u64::MAX)
                .read_to_vec()?;
            Ok(Response { status, body })
        };
        match send() {
            Err(ureq::Error::Io(_) | ureq::Error::ConnectionFailed) => send(),
            other => other,
        }
        .with_context(|| format!("{method} {path}"))
    }

    /// Starts a `GET` whose body is read as it arrives (a watch): the status and a reader of
    /// the body, line by line. No read timeout applies.
    pub fn get_stream(&self, path: &str) -> anyhow::Result<(u16, Box<dyn BufRead + Send>)> {
        let req = self.build("GET", path, None, "")?;
        let req = self
            .inner
            .agent
            .configure_request(req)
            .timeout_per_read(None)
            .build();
        let resp = self
            .inner
            .agent
            .run(req)
            .with_context(|| format!("GET {path}"))?;
        let status = resp.status().as_u16();
        let reader: Box<dyn Read + Send> = Box::new(resp.into_body().into_reader());
        Ok((status, Box::new(BufReader::new(reader))))
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Response> {
        self.request("GET", path, None)
    }

    /// `GET` that must succeed; returns the JSON body.
    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        self.get_json_accepting(path, None)
    }

    /// [`Client::get_json`] with an `Accept` header of its own instead of JSON's.
    fn get_json_accepting(&self, path: &str, accept: Option<&str>) -> anyhow::Result<Value> {
        let resp = self.send_accepting("GET", path, None, "", accept)?;
        if !resp.ok() {
            bail!("GET {path}: {}", resp.message());
        }
        Ok(resp.json())
    }

    /// The resources of one group-version (`v1` or `<group>/<version>`), cached.
    pub fn resources(&self, api_version: &str) -> anyhow::Result<Vec<ApiResource>> {
        if let Some(found) = self.inner.discovery.lock().expect("cache").get(api_version) {
            return Ok(found.clone());
        }
        let path = if api_version.contains('/') {
            format!("/apis/{api_version}")
        } else {
            format!("/api/{api_version}")
        };
        let resp = self.get(&path)?;
        let list = if resp.status == 404 {
            Vec::new()
        } else if resp.ok() {
            parse_resource_list(api_version, &resp.json())
        } else {
            bail!("GET {path}: {}", resp.message());
        };
        self.inner
            .discovery
            .lock()
            .expect("cache")
            .insert(api_version.to_string(), list.clone());
        Ok(list)
    }

    /// The resource serving `kind` in `api_version`.
    pub fn resource_for_kind(&self, api_version: &str, kind: &str) -> anyhow::Result<ApiResource> {
        self.resources(api_version)?
            .into_iter()
            .find(|r| r.kind == kind)
            .ok_or_else(|| anyhow!("the server has no resource for kind {kind:?} in {api_version}"))
    }

    /// Every preferred group-version: `v1` first, then each group's preferred version (cached).
    pub fn preferred_versions(&self) -> anyhow::Result<Vec<String>> {
        if let Some(found) = self.inner.preferred.lock().expect("cache").as_ref() {
            return Ok(found.clone());
        }
        let mut out = vec!["v1".to_string()];
        let groups = self.get_json("/apis")?;
        for group in groups
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(v) = group
                .get("preferredVersion")
                .and_then(|p| p.get("groupVersion"))
                .and_then(Value::as_str)
            {
                out.push(v.to_string());
            }
        }
        *self.inner.preferred.lock().expect("cache") = Some(out.clone());
        Ok(out)
    }

    /// Resolves a kubectl-style resource word (`pod`, `deployment.apps`, `clusterroles.rbac.authorization.k8s.io`).
    pub fn resolve(&self, word: &str) -> anyhow::Result<Option<ApiResource>> {
        let (name, group) = match word.split_once('.') {
            Some((n, g)) => (n.to_ascii_lowercase(), g.to_string()),
            None => (word.to_ascii_lowercase(), String::new()),
        };
        for gv in self.preferred_versions()? {
            let gv_group = gv.split_once('/').map(|(g, _)| g).unwrap_or("");
            if gv_group != group {
                continue;
            }
            for r in self.resources(&gv)? {
                if r.plural.contains('/') {
                    continue;
                }
                if r.plural == name
                    || r.singular == name
                    || r.kind.to_ascii_lowercase() == name
                    || r.short_names.iter().any(|s| s == &name)
                {
                    return Ok(Some(r));
                }
            }
        }
        Ok(None)
    }

    /// Lists every object of `resource` (all namespaces), `page` at a time, following `continue`.
    /// Items get their `apiVersion` and `kind` filled in.
    pub fn list_all(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        page: usize,
    ) -> anyhow::Result<Vec<Value>> {
        self.list_pages(resource, namespace, label_selector, page, None)
    }

    /// Lists the metadata of every object of `resource` (`PartialObjectMetadata`, as
    /// `kubectl get -o name` and metadata informers ask for it), so that listing a million
    /// pods does not hold a million whole pods. Items are `meta.k8s.io/v1`
    /// `PartialObjectMetadata`; a server that cannot send them sends whole objects.
    pub fn list_all_metadata(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        page: usize,
    ) -> anyhow::Result<Vec<Value>> {
        self.list_pages(
            resource,
            namespace,
            label_selector,
            page,
            Some(METADATA_LIST_ACCEPT),
        )
    }

    fn list_pages(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        page: usize,
        accept: Option<&str>,
    ) -> anyhow::Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = form_query(&[("limit", page.to_string())]);
            if let Some(sel) = label_selector {
                query.push('&');
                query.push_str(&form_query(&[("labelSelector", sel.to_string())]));
            }
            if let Some(t) = &token {
                query.push('&');
                query.push_str(&form_query(&[("continue", t.clone())]));
            }
            let path = format!("{}?{query}", resource.collection(namespace));
            let mut list = self.get_json_accepting(&path, accept)?;
            if let Some(array) = list.get_mut("items").and_then(Value::as_array_mut) {
                for mut item in array.drain(..) {
                    if accept.is_none()
                        && let Some(obj) = item.as_object_mut()
                    {
                        obj.insert("apiVersion".into(), resource.api_version.clone().into());
                        obj.insert("kind".into(), resource.kind.clone().into());
                    }
                    items.push(item);
                }
            }
            token = list
                .pointer("/metadata/continue")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_string);
            if token.is_none() {
                return Ok(items);
            }
        }
    }
}

/// Trust the kubeconfig's CA (or nothing, with `insecure-skip-tls-verify`) and present its
/// client certificate when it has one.
fn tls_config(endpoint: &Endpoint) -> anyhow::Result<TlsConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = TlsConfig::builder().unversioned_rustls_crypto_provider(provider);
    if endpoint.insecure {
        tls = tls.disable_verification(true);
    } else {
        let ca = endpoint.ca_pem.as_ref().ok_or_else(|| {
            anyhow!("no certificate-authority in the kubeconfig (set insecure-skip-tls-verify to connect without one)")
        })?;
        let roots = pem_certs(ca).context("parse certificate authority")?;
        if roots.is_empty() {
            bail!("parse certificate authority: no certificate found");
        }
        tls = tls.root_certs(RootCerts::Specific(Arc::new(roots)));
    }
    if let (Some(cert), Some(key)) = (&endpoint.cert_pem, &endpoint.key_pem) {
        let chain = pem_certs(cert).context("parse client certificate")?;
        let key = PrivateKey::from_pem(key).context("parse client key")?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(tls.build())
}

fn pem_certs(pem: &[u8]) -> anyhow::Result<Vec<Certificate<'static>>> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        if let ureq::tls::PemItem::Certificate(c) = item? {
            out.push(c);
        }
    }
    Ok(out)
}

/// Percent-encodes query parameters.
pub fn form_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_resource_list(api_version: &str, doc: &Value) -> Vec<ApiResource> {
    doc.get("resources")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some(ApiResource {
                api_version: api_version.to_string(),
                kind: r.get("kind")?.as_str()?.to_string(),
                plural: r.get("name")?.as_str()?.to_string(),
                singular: r
                    .get("singularName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                namespaced: r
                    .get("namespaced")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                short_names: r
                    .get("shortNames")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Runs `work` over `items` on `workers` threads; results come back in input order.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    work: impl Fn(&T) -> R + Sync,
    progress: impl Fn() + Sync,
) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = workers.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items.len() {
                        break;
                    }
                    let r = work(&items[i]);
                    results.lock().expect("results")[i] = Some(r);
                    progress();
                }
            });
        }
    });
    results
        .into_inner()
        .expect("results")
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        assert_eq!(
            parse_server("https://127.0.0.1:6443").unwrap(),
            ("127.0.0.1".into(), 6443)
        );
        assert_eq!(
            parse_server("https://example.com").unwrap(),
            ("example.com".into(), 443)
        );
        assert_eq!(
            parse_server("https://[::1]:8443/x").unwrap(),
            ("::1".into(), 8443)
        );
        assert!(parse_server("http://x").is_err());
    }

    #[test]
    fn kubeconfig_with_embedded_data_and_token() {
        let doc = serde_json::json!({
            "current-context": "c",
            "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
            "clusters": [{"name": "k", "cluster": {"server": "https://h:1", "insecure-skip-tls-verify": true}}],
            "users": [{"name": "u", "user": {"token": "abc", "client-key-data": "aGk="}}],
        });
        let e = Endpoint::from_doc(&doc, Path::new("/"), None).unwrap();
        assert_eq!(e.server, "https://h:1");
        assert!(e.insecure);
        assert_eq!(e.token.as_deref(), Some("abc"));
        assert_eq!(e.key_pem.as_deref(), Some(&b"hi"[..]));
        assert!(Client::new(&e).is_ok());
    }

    #[test]
    fn query_encoding() {
        assert_eq!(
            form_query(&[("labelSelector", "a.b/c=d".into())]),
            "labelSelector=a.b%2Fc%3Dd"
        );
    }
}
