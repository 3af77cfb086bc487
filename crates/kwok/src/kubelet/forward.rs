//! `/portForward/{ns}/{pod}[/{uid}]`: each connection the client forwards goes where the pod's
//! `PortForward` entry for that port says: a TCP address, or a command whose stdin and stdout
//! are the connection. A pod without entries is refused before the upgrade; the session ends
//! when the pod is deleted.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use streams::Service;
use streams::portforward::{self, Forwarded};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Kubelet, Refusal, query_pairs, upgrade};
use crate::simkinds::Forward;

/// The `ports` of the request (`ports=80,443` or repeated).
fn requested_ports(query: &[(String, String)]) -> Vec<u16> {
    query
        .iter()
        .filter(|(k, _)| k == "ports")
        .flat_map(|(_, v)| v.split(','))
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// The entry for a port: the first listing it, or listing none.
fn entry_for(forwards: &[Forward], port: u16) -> Option<&Forward> {
    forwards
        .iter()
        .find(|f| f.ports.is_empty() || f.ports.contains(&i32::from(port)))
}

/// `GET|POST /portForward/...`.
pub async fn port_forward(
    State(kubelet): State<Arc<Kubelet>>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    let (namespace, pod) = (get("namespace"), get("pod"));
    let forwards = kubelet.simulations.forwards.all_for_pod(&namespace, &pod);
    if forwards.is_empty() {
        return Refusal(
            StatusCode::NOT_FOUND,
            format!("no port-forward configured for pod \"{namespace}/{pod}\""),
        )
        .into_response();
    }
    let ports = requested_ports(&query_pairs(query));
    upgrade(req, Service::PortForward, move |io, transport| async move {
        let mut connections = portforward::accept(io, transport, &ports).await;
        let forwards = Arc::new(forwards);
        let serve = async {
            while let Some(connection) = connections.recv().await {
                tokio::spawn(forward(forwards.clone(), connection));
            }
        };
        // The session ends with the pod, as it would with a real one.
        tokio::select! {
            _ = serve => {}
            _ = kubelet.until_gone(&namespace, &pod) => {}
        }
    })
}

async fn forward(forwards: Arc<Vec<Forward>>, connection: Forwarded) {
    let port = connection.port;
    let Some(entry) = entry_for(&forwards, port) else {
        let message = format!("port {port} is not forwarded: no PortForward entry lists it");
        connection.errors.report(&message).await;
        return;
    };
    let result = if !entry.command.is_empty() {
        to_command(&entry.command, connection.stream).await
    } else if let Some(target) = &entry.target {
        let address = if target.address.is_empty() {
            "127.0.0.1"
        } else {
            &target.address
        };
        to_address(address, target.port, connection.stream).await
    } else {
        Err(std::io::Error::other(
            "the PortForward entry has neither target nor command",
        ))
    };
    if let Err(e) = result {
        let message = format!("error forwarding port {port}: {e}");
        connection.errors.report(&message).await;
    }
}

async fn to_address(
    address: &str,
    port: i32,
    stream: tokio::io::DuplexStream,
) -> std::io::Result<()> {
    let port =
        u16::try_from(port).map_err(|_| std::io::Error::other("target port out of range"))?;
    let tcp = tokio::net::TcpStream::connect((address, port)).await?;
    let (read, write) = tcp.into_split();
    splice(stream, read, write).await;
    Ok(())
}

async fn to_command(command: &[String], stream: tokio::io::DuplexStream) -> std::io::Result<()> {
    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    if let (Some(stdin), Some(stdout)) = (stdin, stdout) {
        splice(stream, stdout, stdin).await;
    }
    let _ = child.kill().await;
    Ok(())
}

/// Copies both ways; done once the pod's side has nothing more to say (the client's side may
/// still be sending, which then goes nowhere).
async fn splice(
    stream: tokio::io::DuplexStream,
    mut from_pod: impl AsyncRead + Unpin,
    mut to_pod: impl AsyncWrite + Unpin + Send + 'static,
) {
    let (mut from_client, mut to_client) = tokio::io::split(stream);
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_client, &mut to_pod).await;
        let _ = to_pod.shutdown().await;
    });
    let _ = tokio::io::copy(&mut from_pod, &mut to_client).await;
    let _ = to_client.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_their_entries() {
        let pairs = vec![
            ("ports".to_string(), "80,8080".to_string()),
            ("ports".to_string(), "9".to_string()),
        ];
        assert_eq!(requested_ports(&pairs), vec![80, 8080, 9]);
        let forwards = vec![
            Forward {
                ports: vec![80],
                ..Default::default()
            },
            Forward::default(),
        ];
        assert_eq!(entry_for(&forwards, 80).unwrap().ports, vec![80]);
        assert!(entry_for(&forwards, 81).unwrap().ports.is_empty());
        assert!(entry_for(&forwards[..1], 81).is_none());
    }
}
