//! Asks a cluster's API server whether it serves: `GET /readyz` over HTTPS, verifying the server
//! against the cluster CA and presenting the admin client certificate; and etcd whether it is
//! healthy: `GET /health` over plain HTTP.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A reusable HTTPS prober for one cluster.
#[derive(Clone)]
pub struct Prober {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prober")
    }
}

impl Prober {
    /// Builds a prober from the cluster's PEM files.
    pub fn new(ca: &Path, client_cert: &Path, client_key: &Path) -> anyhow::Result<Self> {
        let mut roots = RootCertStore::empty();
        for cert in
            CertificateDer::pem_file_iter(ca).with_context(|| format!("read {}", ca.display()))?
        {
            roots
                .add(cert.with_context(|| format!("parse {}", ca.display()))?)
                .with_context(|| format!("trust {}", ca.display()))?;
        }
        let chain = CertificateDer::pem_file_iter(client_cert)
            .with_context(|| format!("read {}", client_cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parse {}", client_cert.display()))?;
        let key = PrivateKeyDer::from_pem_file(client_key)
            .with_context(|| format!("read {}", client_key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("client certificate")?;
        Ok(Self {
            config: Arc::new(config),
        })
    }

    /// Builds a prober from a cluster's `pki/` folder.
    pub fn for_pki(pki: &pki::PkiPaths) -> anyhow::Result<Self> {
        Self::new(&pki.ca_cert(), &pki.admin_cert(), &pki.admin_key())
    }

    /// `GET <path>` on `127.0.0.1:<port>`; returns the HTTP status code.
    pub fn get_status(&self, port: u16, path: &str, timeout: Duration) -> anyhow::Result<u16> {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let socket = TcpStream::connect_timeout(&addr, timeout)?;
        socket.set_read_timeout(Some(timeout))?;
        socket.set_write_timeout(Some(timeout))?;
        socket.set_nodelay(true)?;
        let name = ServerName::try_from("127.0.0.1").expect("valid IP");
        let conn = ClientConnection::new(self.config.clone(), name)?;
        let mut tls = StreamOwned::new(conn, socket);
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes())?;
        let mut response = Vec::with_capacity(256);
        let mut buf = [0u8; 512];
        while !response.windows(2).any(|w| w == b"\r\n") {
            match tls.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(e) if response.is_empty() => return Err(e.into()),
                Err(_) => break,
            }
        }
        parse_status(&response)
    }

    /// True when `/readyz` answers 200.
    pub fn ready(&self, port: u16, timeout: Duration) -> bool {
        matches!(self.get_status(port, "/readyz", timeout), Ok(200))
    }
}

/// True when etcd on `127.0.0.1:<port>` answers `/health` with `"health":"true"`.
pub fn etcd_healthy(port: u16, timeout: Duration) -> bool {
    plain_get(port, "/health", timeout).is_ok_and(|r| is_healthy(&r))
}

/// The status code of a plain-HTTP `GET <path>` on `127.0.0.1:<port>`.
pub fn http_status(port: u16, path: &str, timeout: Duration) -> anyhow::Result<u16> {
    parse_status(&plain_get(port, path, timeout)?)
}

fn plain_get(port: u16, path: &str, timeout: Duration) -> std::io::Result<Vec<u8>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut socket = TcpStream::connect_timeout(&addr, timeout)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    socket.read_to_end(&mut response)?;
    Ok(response)
}

fn is_healthy(response: &[u8]) -> bool {
    let text = String::from_utf8_lossy(response);
    matches!(parse_status(response), Ok(200))
        && text
            .split_once("\r\n\r\n")
            .is_some_and(|(_, body)| body.replace(' ', "").contains(r#""health":"true""#))
}

fn parse_status(response: &[u8]) -> anyhow::Result<u16> {
    let line_end = response
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(response.len());
    let line = std::str::from_utf8(&response[..line_end]).context("status line")?;
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/") => {
            code.parse().context("status code")
        }
        _ => Err(anyhow!("not an HTTP response: {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::server::WebPkiClientVerifier;
    use std::net::TcpListener;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\n\r\nok").unwrap(), 200);
        assert_eq!(
            parse_status(b"HTTP/1.1 503 Service Unavailable\r\n").unwrap(),
            503
        );
        assert!(parse_status(b"garbage").is_err());
    }

    #[test]
    fn etcd_health_bodies() {
        assert!(is_healthy(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"health\":\"true\",\"reason\":\"\"}"
        ));
        assert!(!is_healthy(
            b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"health\":\"false\"}"
        ));
        assert!(!is_healthy(
            b"HTTP/1.1 200 OK\r\n\r\n{\"health\":\"false\"}"
        ));
    }

    /// A stand-in HTTPS server answering `/readyz`, requiring a client certificate.
    fn serve_once(paths: &pki::PkiPaths) -> u16 {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(paths.ca_cert()).unwrap() {
            roots.add(c.unwrap()).unwrap();
        }
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap();
        let chain = CertificateDer::pem_file_iter(paths.serving_cert())
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(paths.serving_key()).unwrap();
        let config = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_client_cert_verifier(verifier)
                .with_single_cert(chain, key)
                .unwrap(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = StreamOwned::new(conn, socket);
            let mut buf = [0u8; 1024];
            let _ = tls.read(&mut buf);
            let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            tls.conn.send_close_notify();
            let _ = tls.flush();
        });
        port
    }

    #[test]
    fn probes_a_tls_server_with_the_cluster_pki() {
        let dir = tempfile::tempdir().unwrap();
        let paths = pki::ensure(dir.path(), &[]).unwrap();
        let port = serve_once(&paths);
        let prober = Prober::for_pki(&paths).unwrap();
        assert!(prober.ready(port, Duration::from_secs(5)));
    }

    #[test]
    fn closed_port_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let paths = pki::ensure(dir.path(), &[]).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let prober = Prober::for_pki(&paths).unwrap();
        assert!(!prober.ready(port, Duration::from_millis(200)));
    }
}
