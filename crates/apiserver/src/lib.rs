//! A Kubernetes-compatible API server.
//!
//! It owns the REST surface that kubectl, client-go style informers and other clients speak:
//! discovery (legacy and aggregated), the verbs on every built-in resource type, watch streams,
//! patches, tables, OpenAPI documents, and HTTPS with authentication (client certificates,
//! service-account tokens, impersonation) and RBAC authorization. Objects
//! live in a [`store::Store`], as JSON that carries its own resourceVersion (stamped on read when
//! the store keeps objects without it, as etcd does).
//!
//! [`rest::Registry`] holds the transport-free logic, so in-process clients share one code path
//! with HTTP requests. [`ApiServer::serve_tls`] puts it on the network.

mod access;
mod admission;
mod aggregator;
pub mod audit;
pub mod authn;
mod builtins;
pub mod celcost;
pub mod certificates;
mod componentstatus;
pub mod connections;
mod conversion;
pub mod crd;
pub mod defaults;
pub mod discovery;
mod duplicates;
pub mod errors;
pub mod featuregates;
pub mod fieldmanager;
mod follow;
mod health;
mod http;
pub mod kubeletclient;
pub mod metrics;
pub mod nodeproxy;
pub mod objects;
pub mod patch;
mod printers;
mod protobuf;
pub mod rbac;
pub mod resourcemetrics;
pub mod resources;
pub mod rest;
pub mod selectors;
mod services;
pub mod surface;
pub mod table;
mod upstream;
pub mod validation;
pub mod watch;
pub mod watchqueue;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub use duplicates::duplicate_fields;
pub use errors::{ApiError, ApiResult};
pub use http::decode_body;
pub use objects::stamp_resource_version;
pub use rest::Registry;

/// The Kubernetes version whose API behaviour this server implements.
pub const KUBERNETES_VERSION: (&str, &str, &str) = ("1", "33", "v1.33.1");

/// What the connection a request came on proved: the user of its verified client
/// certificate, if any. Connections without one are bounded until a request on them
/// authenticates with a token, which releases `ticket`.
#[derive(Clone, Default)]
pub struct Peer {
    pub user: Option<authn::UserInfo>,
    /// The client's address, for the audit log's `sourceIPs`.
    pub addr: Option<std::net::IpAddr>,
    pub(crate) ticket: Option<Arc<connections::Ticket>>,
}

/// The API server: a registry plus what it serves around it.
pub struct ApiServer {
    pub registry: Arc<Registry>,
    pub(crate) address: String,
    openapi: Arc<openapi::OpenApi>,
    cleaning: Mutex<std::collections::HashSet<String>>,
    /// How requests reach the kubelets of nodes (`pods/log`, ...).
    pub(crate) kubelets: std::sync::RwLock<nodeproxy::Connector>,
    pub authorizer: Arc<rbac::Authorizer>,
    /// Issues and checks service-account tokens, once a signing key is set.
    tokens: std::sync::RwLock<Option<Arc<authn::tokens::Tokens>>>,
    token_cache: access::TokenCache,
    /// The cluster CA certificate (PEM), for the `ca.crt` of token Secrets.
    cluster_ca: std::sync::RwLock<Option<String>>,
    /// The CA that signs approved CertificateSigningRequests.
    signer: std::sync::RwLock<Option<pki::CertPem>>,
    /// APIServices served by other servers.
    pub(crate) aggregator: aggregator::Aggregator,
    /// The series served at `/metrics`.
    pub(crate) metrics: Arc<metrics::ServerMetrics>,
    /// Where requests are audited, when a policy is set.
    pub(crate) auditor: std::sync::OnceLock<Arc<audit::Auditor>>,
}

impl ApiServer {
    /// Builds the server on a store and creates the objects every cluster starts with.
    /// `address` is where clients reach it (`host:port`), as discovery reports.
    pub async fn new(store: Arc<dyn store::Store>, address: String) -> anyhow::Result<Arc<Self>> {
        let openapi = Arc::new(build_openapi());
        let registry = Arc::new(Registry::new(store, openapi.clone()));
        let server = Arc::new(Self {
            registry,
            address,
            openapi,
            cleaning: Mutex::new(Default::default()),
            kubelets: std::sync::RwLock::new(Arc::new(kubeletclient::NetworkKubelets::default())),
            authorizer: rbac::Authorizer::new(),
            tokens: std::sync::RwLock::new(None),
            token_cache: Default::default(),
            cluster_ca: std::sync::RwLock::new(None),
            signer: std::sync::RwLock::new(None),
            aggregator: Default::default(),
            metrics: Arc::new(metrics::ServerMetrics::new()),
            auditor: std::sync::OnceLock::new(),
        });
        server.install_namespace_lifecycle();
        server.bootstrap().await?;
        server.bootstrap_rbac().await?;
        server.bootstrap_builtins().await?;
        authn::legacy::follow(&server);
        certificates::follow(&server);
        server.registry.admission.reload(&server.registry).await;
        admission::follow(&server);
        aggregator::follow(&server);
        Ok(server)
    }

    /// Signs and checks service-account tokens with this PKCS#8 RSA key, for `issuer`.
    pub fn set_service_account_key(&self, pem: &str, issuer: &str) -> anyhow::Result<()> {
        let tokens = authn::tokens::Tokens::from_pem(pem, issuer)?;
        *self.tokens.write().unwrap() = Some(Arc::new(tokens));
        Ok(())
    }

    /// The cluster CA certificate (PEM) handed to token Secrets.
    pub fn set_cluster_ca(&self, pem: &str) {
        *self.cluster_ca.write().unwrap() = Some(pem.to_string());
    }

    pub(crate) fn cluster_ca(&self) -> Option<String> {
        self.cluster_ca.read().unwrap().clone()
    }

    pub(crate) fn tokens(&self) -> Option<Arc<authn::tokens::Tokens>> {
        self.tokens.read().unwrap().clone()
    }

    /// Checks `--enable-admission-plugins` and `--disable-admission-plugins` and turns the
    /// disabled plugins off, with kube-apiserver's messages for unknown names.
    pub fn set_admission_plugins(
        &self,
        enable: &[String],
        disable: &[String],
    ) -> Result<(), String> {
        let off = admission::plugins::parse(enable, disable)?;
        self.registry.admission.plugins.set_off(off);
        Ok(())
    }

    /// Audits requests from now on, as the auditor's policy says.
    pub fn set_auditor(&self, auditor: Arc<audit::Auditor>) {
        let _ = self.auditor.set(auditor);
    }

    /// Turns RBAC off (`--authorization-mode=AlwaysAllow`) or on again.
    pub fn set_always_allow(&self, on: bool) {
        self.authorizer
            .always_allow
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Creates the bootstrap roles and bindings that are missing, loads the policy, and
    /// follows it from then on.
    async fn bootstrap_rbac(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut objects = Vec::new();
        for doc in rbac::BOOTSTRAP.split("\n---\n") {
            let Ok(object) = serde_saphyr::from_str::<Value>(doc) else {
                continue;
            };
            let Some(kind) = object["kind"].as_str().map(String::from) else {
                continue;
            };
            let plural = rbac::Kind::ALL
                .into_iter()
                .find(|k| format!("{k:?}") == kind)
                .map(rbac::Kind::plural)
                .context("bootstrap policy: unknown kind")?;
            let r = resources::find("rbac.authorization.k8s.io", "v1", plural).expect("built in");
            objects.push((r, kind, object));
        }
        // Written together, so that the store syncs them in few commits.
        let writes = objects
            .into_iter()
            .map(|(r, kind, object)| self.create_rbac_default(r, kind, object));
        futures::future::try_join_all(writes).await?;
        for kind in rbac::Kind::ALL {
            rbac::follow::load(&self.registry, &self.authorizer, kind).await;
        }
        rbac::follow(&self.registry, &self.authorizer);
        Ok(())
    }

    /// Creates one bootstrap policy object unless it exists.
    async fn create_rbac_default(
        &self,
        r: &'static resources::ResourceType,
        kind: String,
        object: Value,
    ) -> anyhow::Result<()> {
        let ns = object["metadata"]["namespace"].as_str().map(String::from);
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if self.registry.get(r, ns.as_deref(), &name).await.is_ok() {
            return Ok(());
        }
        match self
            .registry
            .create(r, ns.as_deref(), object, &rest::WriteOptions::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => anyhow::bail!("bootstrap {kind} {name}: {}", e.message),
        }
    }

    /// Sets how requests reach the kubelets of nodes.
    pub fn set_kubelet_connector(&self, connector: nodeproxy::Connector) {
        *self.kubelets.write().unwrap() = connector;
    }

    pub fn version_info(&self) -> Value {
        let surface = self.registry.surface();
        json!({
            "major": "1",
            "minor": surface.minor.to_string(),
            "gitVersion": surface.git_version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", other => other }),
        })
    }

    pub(crate) fn openapi_v2(&self) -> Bytes {
        self.registry.sync_openapi();
        self.openapi.v2_document()
    }

    pub(crate) fn openapi_v3_index(&self) -> Bytes {
        self.registry.sync_openapi();
        self.openapi.v3_index()
    }

    /// A group-version document and its current hash.
    pub(crate) fn openapi_v3(&self, path: &str) -> Option<(Bytes, String)> {
        self.registry.sync_openapi();
        self.openapi.v3_document_and_hash(path)
    }

    fn install_namespace_lifecycle(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let hook: rest::NamespaceHook = Arc::new(move |name: String| {
            if let Some(server) = weak.upgrade() {
                server.clean_namespace(name);
            }
        });
        *self.registry.namespace_terminating.lock().unwrap() = Some(hook);
    }

    /// Deletes a terminating namespace's content, then the namespace, retrying while
    /// finalizers hold objects.
    fn clean_namespace(self: &Arc<Self>, name: String) {
        if !self.cleaning.lock().unwrap().insert(name.clone()) {
            return;
        }
        let server = self.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            let mut delay = Duration::from_millis(50);
            loop {
                match server.registry.finish_namespace(&name).await {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(namespace = %name, error = %e.message, "namespace cleanup")
                    }
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            server.cleaning.lock().unwrap().remove(&name);
        });
    }

    async fn bootstrap(self: &Arc<Self>) -> anyhow::Result<()> {
        let ns = resources::find("", "v1", "namespaces").expect("built in");
        let opts = rest::WriteOptions::default();
        for name in resources::SYSTEM_NAMESPACES {
            if self.registry.get(ns, None, name).await.is_err() {
                let body =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
                match self.registry.create(ns, None, body, &opts).await {
                    Ok(_) => {}
                    Err(e) if e.code == 409 => {}
                    Err(e) => anyhow::bail!("create namespace {name}: {}", e.message),
                }
            }
        }
        let svc = resources::find("", "v1", "services").expect("built in");
        if self
            .registry
            .get(svc, Some("default"), "kubernetes")
            .await
            .is_err()
        {
            let body = json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                    "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
                    "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]},
            });
            match self
                .registry
                .create(svc, Some("default"), body, &opts)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => anyhow::bail!("create service kubernetes: {}", e.message),
            }
        }
        self.registry
            .load_custom_types()
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        // Resume namespaces that were terminating when the server stopped.
        let page = self
            .registry
            .list(ns, None, &rest::ListOptions::default())
            .await
            .map_err(|e| anyhow::anyhow!(e.message))?;
        for item in page.items {
            let obj = objects::decode(&item).map_err(|e| anyhow::anyhow!(e.message))?;
            if objects::is_deleting(&obj) {
                self.clean_namespace(objects::meta_str(&obj, "name").unwrap_or("").to_string());
            }
        }
        Ok(())
    }

    /// Serves HTTPS on `listener` until `shutdown` resolves.
    pub async fn serve_tls(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        let unverified = connections::Unverified::for_open_file_limit();
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = listener.accept() => match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let server = self.clone();
            let ticket = unverified.enter();
            tokio::spawn(async move {
                let handshake =
                    tokio::time::timeout(connections::HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
                let tls = tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    },
                    _ = ticket.evicted() => {
                        tracing::debug!(%peer, "closed during its TLS handshake to make room");
                        return;
                    }
                };
                let user = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| authn::user_from_certificate(c));
                if user.is_some() {
                    drop(ticket);
                    let identity = Peer {
                        user,
                        addr: Some(peer.ip()),
                        ticket: None,
                    };
                    server.serve_connection(tls, identity).await;
                } else {
                    // Connections without a certificate stay bounded until a token proves
                    // who they are.
                    let ticket = Arc::new(ticket);
                    let identity = Peer {
                        user: None,
                        addr: Some(peer.ip()),
                        ticket: Some(ticket.clone()),
                    };
                    tokio::select! {
                        _ = server.serve_connection(tls, identity) => {}
                        _ = ticket.evicted() => {
                            tracing::debug!(%peer, "anonymous connection closed to make room");
                        }
                    }
                }
            });
        }
    }

    /// Serves plain HTTP on `listener`, trusting every request as authenticated. Only for
    /// benchmarks and tests on loopback; clusters always use [`ApiServer::serve_tls`].
    pub async fn serve_insecure(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let (tcp, remote) = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = listener.accept() => accepted?,
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            let peer = Peer {
                user: Some(authn::UserInfo::superuser()),
                addr: Some(remote.ip()),
                ticket: None,
            };
            tokio::spawn(async move { server.serve_connection(tcp, peer).await });
        }
    }

    async fn serve_connection<IO>(self: Arc<Self>, io: IO, peer: Peer)
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let server = self.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let server = server.clone();
                let mut req = req.map(axum::body::Body::new);
                req.extensions_mut().insert(peer.clone());
                http::handle(server, req)
            });
        let mut builder =
            hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
        builder
            .http1()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(connections::HEADER_READ_TIMEOUT);
        builder
            .http2()
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(connections::HTTP2_KEEPALIVE)
            .keep_alive_timeout(connections::HTTP2_KEEPALIVE);
        if let Err(e) = builder
            .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service)
            .await
        {
            tracing::debug!(error = %e, "connection ended");
        }
    }
}

/// The OpenAPI documents and merge rules of the built-in kinds.
pub fn build_openapi() -> openapi::OpenApi {
    let types: Vec<openapi::ResourceType<'_>> = resources::RESOURCES
        .iter()
        .map(|r| openapi::ResourceType {
            group: r.group,
            version: r.version,
            kind: r.kind,
            plural: r.plural,
            namespaced: r.namespaced,
            subresources: r.subresources,
            verbs: r.verbs(),
        })
        .collect();
    openapi::OpenApi::new(&types)
}

/// Builds the TLS configuration: the serving certificate, and client certificates verified
/// against `client_ca` (optional, so health endpoints stay open without one).
pub fn tls_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .context("read serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).context("read serving key")?;
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(client_ca_pem) {
        roots
            .add(ca.context("read client CA")?)
            .context("add client CA")?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .context("client certificate verifier")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .context("serving certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reads the TLS files of `paths`.
pub fn tls_config_from_files(
    cert: &Path,
    key: &Path,
    client_ca: &Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("read {}", p.display()));
    tls_config(&read(cert)?, &read(key)?, &read(client_ca)?)
}

/// Binds a listener, with a clear error when the port is taken. A port in use is tried again
/// for a second: a process killed a moment ago holds its sockets until its last thread is gone,
/// which can be after its pid is.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match TcpListener::bind(addr).await {
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            other => return other.with_context(|| format!("listen on {addr}")),
        }
    }
}
