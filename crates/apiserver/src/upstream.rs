//! Reaching the HTTPS servers the cluster points at (admission webhooks, aggregated API
//! servers): a URL, or a Service resolved through its endpoints (the cluster's service
//! addresses are not routable from this process, so the server dials an endpoint directly, as
//! kube-apiserver does with `--enable-aggregator-routing`), over HTTPS checked against a CA
//! bundle (the system roots when there is none; or not checked, when the configuration says so)
//! and the Service's DNS name. Connections are kept alive and shared per trust settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use crate::objects::JsonAt;
use crate::resources;
use crate::rest::Registry;

pub(crate) type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, axum::body::Body>;

/// Where a server is reached.
#[derive(Debug, Clone)]
pub(crate) enum Endpoint {
    Url(String),
    Service {
        namespace: String,
        name: String,
        path: String,
        port: u16,
    },
}

impl Endpoint {
    pub(crate) fn from_client_config(config: &Value) -> Option<Self> {
        if let Some(url) = config.get("url").and_then(Value::as_str) {
            return Some(Endpoint::Url(url.to_string()));
        }
        let service = config.get("service")?;
        let text = |field: &str| service.get(field).and_then(Value::as_str).unwrap_or("");
        Some(Endpoint::Service {
            namespace: text("namespace").to_string(),
            name: text("name").to_string(),
            path: text("path").to_string(),
            port: service
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443),
        })
    }

    /// The URL as kube-apiserver names it in errors: the Service's DNS name for services.
    pub(crate) fn display_url(&self, timeout: Duration) -> String {
        let base = match self {
            Endpoint::Url(url) => url.clone(),
            Endpoint::Service {
                namespace,
                name,
                path,
                port,
            } => format!("https://{name}.{namespace}.svc:{port}{path}"),
        };
        with_timeout(&base, timeout)
    }
}

/// kube-apiserver tells the webhook its deadline in the query.
fn with_timeout(url: &str, timeout: Duration) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}timeout={}s", timeout.as_secs())
}

/// How a server's certificate is trusted, and the certificate this server presents.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) struct Trust {
    /// PEM certificates; the system roots when empty.
    pub ca_bundle: Vec<u8>,
    /// The name the certificate must carry; the URL's host when empty.
    pub server_name: String,
    /// Accept any certificate (`insecureSkipTLSVerify`).
    pub insecure: bool,
    /// A client certificate and key (PEM) to present.
    pub client_identity: Option<(String, String)>,
}

/// Shared HTTPS clients, one per trust settings.
#[derive(Default)]
pub(crate) struct Clients {
    by_trust: Mutex<HashMap<Trust, HttpsClient>>,
}

impl Clients {
    /// Posts `body` to the webhook and returns the decoded answer.
    pub(crate) async fn post(
        &self,
        registry: &Registry,
        endpoint: &Endpoint,
        ca_bundle: &[u8],
        timeout: Duration,
        body: Bytes,
    ) -> Result<Value, String> {
        let shown = endpoint.display_url(timeout);
        let (url, server_name) = match endpoint {
            Endpoint::Url(url) => (with_timeout(url, timeout), String::new()),
            Endpoint::Service {
                namespace,
                name,
                path,
                port,
            } => {
                let address = resolve_service(registry, namespace, name, *port)
                    .await
                    .map_err(|e| format!("Post \"{shown}\": {e}"))?;
                let url = with_timeout(&format!("https://{address}{path}"), timeout);
                (url, format!("{name}.{namespace}.svc"))
            }
        };
        let client = self.client(&Trust {
            ca_bundle: ca_bundle.to_vec(),
            server_name,
            insecure: false,
            client_identity: None,
        })?;
        let request = hyper::Request::post(url.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, "application/json")
            .body(axum::body::Body::from(body))
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = client.request(request).await.map_err(describe_error)?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() {
                return Err(format!(
                    "the server responded with status code {}: {}",
                    status.as_u16(),
                    String::from_utf8_lossy(&body[..body.len().min(1024)])
                ));
            }
            serde_json::from_slice::<Value>(&body)
                .map_err(|e| format!("failed to decode the AdmissionReview response: {e}"))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => Err("context deadline exceeded".into()),
        }
        .map_err(|e| format!("Post \"{shown}\": {e}"))
    }

    /// The pooled client for `trust`.
    pub(crate) fn client(&self, trust: &Trust) -> Result<HttpsClient, String> {
        let mut clients = self.by_trust.lock().unwrap();
        if let Some(client) = clients.get(trust) {
            return Ok(client.clone());
        }
        let client = build_client(trust)?;
        if clients.len() > 256 {
            clients.clear();
        }
        clients.insert(trust.clone(), client.clone());
        Ok(client)
    }
}

pub(crate) fn describe_error(e: hyper_util::client::legacy::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

fn trust_roots(ca_bundle: &[u8]) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    let system;
    let pem = if ca_bundle.is_empty() {
        system = std::fs::read("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
        &system[..]
    } else {
        ca_bundle
    };
    for cert in CertificateDer::pem_slice_iter(pem).flatten() {
        let _ = roots.add(cert);
    }
    if roots.is_empty() && !ca_bundle.is_empty() {
        return Err("unable to load root certificates: no certificates in caBundle".into());
    }
    Ok(roots)
}

fn build_client(trust: &Trust) -> Result<HttpsClient, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = if trust.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(pki::accept_any_server(provider))
    } else {
        builder.with_root_certificates(trust_roots(&trust.ca_bundle)?)
    };
    let config = match &trust.client_identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| e.to_string())?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        }
    };
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only();
    let server_name = &trust.server_name;
    let connector = if server_name.is_empty() {
        builder.enable_http1().build()
    } else {
        let name = ServerName::try_from(server_name.to_string()).map_err(|e| e.to_string())?;
        builder
            .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(name))
            .enable_http1()
            .build()
    };
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector))
}

/// `ip:port` of a ready endpoint of the Service's port `port`: from its Endpoints (which a
/// Service without a selector gets by hand), else from its EndpointSlices.
pub(crate) async fn resolve_service(
    registry: &Registry,
    namespace: &str,
    name: &str,
    port: u16,
) -> Result<String, String> {
    let services = resources::find("", "v1", "services").expect("built in");
    let service = registry
        .get(services, Some(namespace), name)
        .await
        .ok()
        .and_then(|b| crate::objects::decode(&b).ok())
        .ok_or_else(|| format!("service \"{name}\" not found"))?;
    let service_port = service
        .at("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| p.get("port").and_then(Value::as_u64) == Some(u64::from(port)))
        .ok_or_else(|| format!("service \"{name}\" has no port {port}"))?;
    let port_name = service_port
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let target = service_port.get("targetPort").cloned();
    if let Some(address) = from_endpoints(registry, namespace, name, port_name, &target).await {
        return Ok(address);
    }
    if let Some(address) = from_slices(registry, namespace, name, port_name, &target).await {
        return Ok(address);
    }
    Err(format!(
        "service \"{namespace}/{name}\" has no ready endpoints"
    ))
}

/// The endpoint port that serves the Service port named `port_name` (or its numeric target).
fn endpoint_port(ports: &[Value], port_name: &str, target: &Option<Value>) -> Option<u64> {
    let by_name = ports
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str).unwrap_or("") == port_name);
    by_name
        .or_else(|| (ports.len() == 1).then(|| &ports[0]))
        .and_then(|p| p.get("port").and_then(Value::as_u64))
        .or_else(|| target.as_ref().and_then(Value::as_u64))
}

fn host_port(ip: &str, port: u64) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

async fn from_endpoints(
    registry: &Registry,
    namespace: &str,
    name: &str,
    port_name: &str,
    target: &Option<Value>,
) -> Option<String> {
    let r = resources::find("", "v1", "endpoints").expect("built in");
    let endpoints =
        crate::objects::decode(&registry.get(r, Some(namespace), name).await.ok()?).ok()?;
    endpoints
        .get("subsets")?
        .as_array()?
        .iter()
        .find_map(|subset| {
            let ip = subset.at("/addresses/0/ip")?.as_str()?;
            let ports = subset.get("ports").and_then(Value::as_array)?;
            Some(host_port(ip, endpoint_port(ports, port_name, target)?))
        })
}

async fn from_slices(
    registry: &Registry,
    namespace: &str,
    name: &str,
    port_name: &str,
    target: &Option<Value>,
) -> Option<String> {
    let r = resources::find("discovery.k8s.io", "v1", "endpointslices").expect("built in");
    let opts = crate::rest::ListOptions {
        label_selector: format!("kubernetes.io/service-name={name}"),
        ..Default::default()
    };
    let page = registry.list(r, Some(namespace), &opts).await.ok()?;
    page.items.iter().find_map(|item| {
        let slice = crate::objects::decode(item).ok()?;
        let ports = slice.get("ports").and_then(Value::as_array)?;
        let port = endpoint_port(ports, port_name, target)?;
        slice
            .get("endpoints")?
            .as_array()?
            .iter()
            .filter(|e| e.at("/conditions/ready") != Some(&Value::Bool(false)))
            .find_map(|e| e.at("/addresses/0")?.as_str().map(|ip| host_port(ip, port)))
    })
}
