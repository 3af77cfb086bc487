//! Reaching a node's kubelet over the network, as kube-apiserver does: the node's address of
//! the first preferred type (Hostname, InternalDNS, InternalIP, ExternalDNS, ExternalIP) and its
//! `daemonEndpoints.kubeletEndpoint.Port`; HTTPS without verifying the kubelet's certificate
//! (kube-apiserver's default), falling back to plain HTTP for kubelet-like servers without TLS.
//! Upgraded connections (exec, attach, port-forward) are spliced through once both sides have
//! switched protocols.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpStream;

use crate::errors::{ApiError, ApiResult};
use crate::nodeproxy::KubeletConnector;
use crate::objects::JsonAt;

/// kube-apiserver's `--kubelet-preferred-address-types` default.
const PREFERRED_ADDRESS_TYPES: &[&str] = &[
    "Hostname",
    "InternalDNS",
    "InternalIP",
    "ExternalDNS",
    "ExternalIP",
];

/// The kubelet port of nodes that do not advertise one.
const DEFAULT_KUBELET_PORT: u64 = 10250;

/// Longest wait for a kubelet to accept a connection and answer the headers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Kubelets reached over the network.
pub struct NetworkKubelets {
    tls: tokio_rustls::TlsConnector,
}

impl Default for NetworkKubelets {
    fn default() -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .dangerous()
            .with_custom_certificate_verifier(pki::accept_any_server(provider))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }
}

/// `host:port` of a node's kubelet.
pub fn kubelet_address(node: &Value) -> Option<(String, u16)> {
    let addresses = node.at("/status/addresses").and_then(Value::as_array)?;
    let host = PREFERRED_ADDRESS_TYPES.iter().find_map(|wanted| {
        addresses.iter().find_map(|a| {
            (a.get("type").and_then(Value::as_str) == Some(*wanted))
                .then(|| a.get("address").and_then(Value::as_str))
                .flatten()
                .filter(|s| !s.is_empty())
        })
    })?;
    let port = node
        .at("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Some((host.to_string(), u16::try_from(port).ok()?))
}

fn unreachable(node: &Value, why: impl std::fmt::Display) -> ApiError {
    let name = node
        .at("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ApiError::new(
        502,
        "BadGateway",
        format!("error dialing backend for node {name:?}: {why}"),
    )
}

type Sender = hyper::client::conn::http1::SendRequest<Body>;

impl NetworkKubelets {
    /// An HTTP/1 connection to the kubelet: TLS when it speaks TLS, plain otherwise.
    async fn connect(&self, node: &Value) -> ApiResult<Sender> {
        let (host, port) =
            kubelet_address(node).ok_or_else(|| unreachable(node, "the node has no address"))?;
        let dial = || async {
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port)))
                .await
                .map_err(|_| unreachable(node, "timed out"))?
                .map_err(|e| unreachable(node, e))
        };
        let tcp = dial().await?;
        let server_name =
            rustls::pki_types::ServerName::try_from(host.clone()).unwrap_or_else(|_| {
                rustls::pki_types::ServerName::try_from("kubelet").expect("valid name")
            });
        match tokio::time::timeout(CONNECT_TIMEOUT, self.tls.connect(server_name, tcp)).await {
            Ok(Ok(tls)) => handshake(hyper_util::rt::TokioIo::new(tls)).await,
            // Not TLS (or a failed handshake): the kubelet-like server may speak plain HTTP.
            _ => handshake(hyper_util::rt::TokioIo::new(dial().await?)).await,
        }
        .map_err(|e| unreachable(node, e))
    }
}

async fn handshake<IO>(io: IO) -> Result<Sender, hyper::Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet connection ended");
        }
    });
    Ok(sender)
}

#[async_trait::async_trait]
impl KubeletConnector for NetworkKubelets {
    async fn send(&self, node: &Value, mut req: Request<Body>) -> ApiResult<Response<Body>> {
        let client_upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
        let mut sender = self.connect(node).await?;
        let (host, port) = kubelet_address(node).expect("checked by connect");
        req.headers_mut().insert(
            axum::http::header::HOST,
            format!("{host}:{port}")
                .parse()
                .map_err(ApiError::internal)?,
        );
        let mut resp = sender
            .send_request(req)
            .await
            .map_err(|e| unreachable(node, e))?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS
            && let Some(client) = client_upgrade
        {
            let backend = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                let (Ok(client), Ok(backend)) = (client.await, backend.await) else {
                    return;
                };
                let mut client = hyper_util::rt::TokioIo::new(client);
                let mut backend = hyper_util::rt::TokioIo::new(backend);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
            });
        }
        Ok(resp.map(Body::new))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_preferred_address_and_the_advertised_port() {
        let node = json!({"status": {
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "localhost"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10247}},
        }});
        assert_eq!(kubelet_address(&node), Some(("localhost".into(), 10247)));
        let node =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}]}});
        assert_eq!(kubelet_address(&node), Some(("10.0.0.1".into(), 10250)));
        assert_eq!(kubelet_address(&json!({"status": {}})), None);
    }
}
