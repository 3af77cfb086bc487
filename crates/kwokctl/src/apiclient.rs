//! A small blocking HTTPS client for the Kubernetes API: JSON bodies, HTTP/1.1 keep-alive, a pool
//! of connections shared by worker threads, client-certificate or bearer-token authentication.
//!
//! It is built from a kubeconfig (the cluster's own `kubeconfig.yaml`, or any user's kubeconfig
//! for `snapshot export`), and deliberately knows nothing about Kubernetes objects beyond
//! discovery of resource names.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// How long one request may take.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

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
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    tls: Arc<ClientConfig>,
    token: Option<String>,
    headers: Vec<(String, String)>,
    idle: Mutex<Vec<BufReader<Tls>>>,
    discovery: Mutex<HashMap<String, Vec<ApiResource>>>,
    preferred: Mutex<Option<Vec<String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}:{})", self.inner.host, self.inner.port)
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
        let doc = crate::kubeconfig::load(path)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::from_doc(&doc, &base, context)
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS versions")?;
        let builder = if endpoint.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(pki::accept_any_server(provider))
        } else {
            let ca = endpoint.ca_pem.as_ref().ok_or_else(|| {
                anyhow!("no certificate-authority in the kubeconfig (set insecure-skip-tls-verify to connect without one)")
            })?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                roots
                    .add(cert.context("parse certificate authority")?)
                    .context("trust certificate authority")?;
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match (&endpoint.cert_pem, &endpoint.key_pem) {
            (Some(cert), Some(key)) => {
                let chain = CertificateDer::pem_slice_iter(cert)
                    .collect::<Result<Vec<_>, _>>()
                    .context("parse client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(key).context("parse client key")?;
                builder
                    .with_client_auth_cert(chain, key)
                    .context("client certificate")?
            }
            _ => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name =
            ServerName::try_from(host.clone()).map_err(|e| anyhow!("server name {host:?}: {e}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                host,
                port,
                server_name,
                tls: Arc::new(config),
                token: endpoint.token.clone(),
                headers: endpoint.headers.clone(),
                idle: Mutex::new(Vec::new()),
                discovery: Mutex::new(HashMap::new()),
                preferred: Mutex::new(None),
            }),
        })
    }

    pub(crate) fn connect(&self) -> anyhow::Result<BufReader<Tls>> {
        let inner = &self.inner;
        let addr = (inner.host.as_str(), inner.port)
            .to_socket_addrs()
            .with_context(|| format!("resolve {}", inner.host))?
            .next()
            .ok_or_else(|| anyhow!("no address for {}", inner.host))?;
        let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .with_context(|| format!("connect {addr}"))?;
        socket.set_read_timeout(Some(IO_TIMEOUT))?;
        socket.set_write_timeout(Some(IO_TIMEOUT))?;
        socket.set_nodelay(true)?;
        let conn = ClientConnection::new(inner.tls.clone(), inner.server_name.clone())?;
        Ok(BufReader::with_capacity(
            64 * 1024,
            StreamOwned::new(conn, socket),
        ))
    }

    /// Sends one request; `body` is JSON. A request on a reused connection that fails before any
    /// answer is retried once on a fresh connection.
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

    /// Sends one request with a body of the given content type (a patch type, for example).
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> anyhow::Result<Response> {
        let pooled = self.inner.idle.lock().expect("pool").pop();
        if let Some(mut conn) = pooled
            && let Ok((resp, keep)) = self.exchange(&mut conn, method, path, body, content_type)
        {
            if keep {
                self.inner.idle.lock().expect("pool").push(conn);
            }
            return Ok(resp);
        }
        let mut conn = self.connect()?;
        let (resp, keep) = self
            .exchange(&mut conn, method, path, body, content_type)
            .with_context(|| format!("{method} {path}"))?;
        if keep {
            self.inner.idle.lock().expect("pool").push(conn);
        }
        Ok(resp)
    }

    fn exchange(
        &self,
        conn: &mut BufReader<Tls>,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> anyhow::Result<(Response, bool)> {
        let mut head = self.head(method, path);
        match body {
            Some(b) => head.push_str(&format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
                b.len()
            )),
            None => head.push_str("\r\n"),
        }
        let mut out = head.into_bytes();
        if let Some(b) = body {
            out.extend_from_slice(b);
        }
        {
            let stream = conn.get_mut();
            stream.write_all(&out)?;
            stream.flush()?;
        }
        read_response(conn)
    }

    /// The request line and the headers every request carries, without the final blank line.
    pub(crate) fn head(&self, method: &str, path: &str) -> String {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}:{}\r\nUser-Agent: kwokctl/{}\r\nAccept: application/json\r\n",
            self.inner.host,
            self.inner.port,
            crate::VERSION
        );
        if let Some(token) = &self.inner.token {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (name, value) in &self.inner.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head
    }

    pub fn get(&self, path: &str) -> anyhow::Result<Response> {
        self.request("GET", path, None)
    }

    /// `GET` that must succeed; returns the JSON body.
    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let resp = self.get(path)?;
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
            let mut list = self.get_json(&path)?;
            if let Some(array) = list.get_mut("items").and_then(Value::as_array_mut) {
                for mut item in array.drain(..) {
                    if let Some(obj) = item.as_object_mut() {
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

/// Reads one response; the flag says whether the connection may be reused.
pub(crate) fn read_response<R: BufRead>(conn: &mut R) -> anyhow::Result<(Response, bool)> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("bad status line {line:?}"))?
        .parse()
        .context("status code")?;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut keep = line.starts_with("HTTP/1.1");
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            bail!("connection closed in headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = Some(value.parse().context("content-length")?),
                "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
                "connection" => {
                    if value.eq_ignore_ascii_case("close") {
                        keep = false;
                    } else if value.eq_ignore_ascii_case("keep-alive") {
                        keep = true;
                    }
                }
                _ => {}
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .context("chunk size")?;
            if size == 0 {
                // trailers until an empty line
                loop {
                    line.clear();
                    if conn.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            conn.read_exact(&mut body[start..])?;
            line.clear();
            conn.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        body.resize(n, 0);
        conn.read_exact(&mut body)?;
    } else if status != 204 && status != 304 {
        conn.read_to_end(&mut body)?;
        keep = false;
    }
    Ok((Response { status, body }, keep))
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
    use std::io::Cursor;

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
    fn responses_with_length_and_chunks() {
        let mut c = Cursor::new(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}".to_vec());
        let (r, keep) = read_response(&mut c).unwrap();
        assert_eq!((r.status, r.body.as_slice(), keep), (201, &b"{}"[..], true));
        let mut c = Cursor::new(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                .to_vec(),
        );
        let (r, _) = read_response(&mut c).unwrap();
        assert_eq!(r.body, b"abcde");
        let mut c = Cursor::new(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_vec(),
        );
        assert!(!read_response(&mut c).unwrap().1);
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
