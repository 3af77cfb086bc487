//! Choosing the transport and protocol version of an upgrade request, as a kubelet does, and
//! the `101 Switching Protocols` answer that confirms it.
//!
//! WebSocket clients list subprotocols in `Sec-WebSocket-Protocol`; the first one the server
//! knows, in the client's order, wins. SPDY clients list versions in `X-Stream-Protocol-Version`;
//! the server's preference wins there (the newest both know).

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// What the upgraded connection is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// `exec` and `attach`.
    RemoteCommand,
    /// `port-forward`.
    PortForward,
}

/// Kubernetes' channel protocol over WebSocket: its version and whether messages are base64
/// text instead of binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    pub version: u8,
    pub base64: bool,
}

/// The transport and protocol version of a switched connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    WebSocket(Channels),
    /// SPDY/3.1; for remote commands the channel protocol version (1 = `channel.k8s.io` ...
    /// 4 = `v4.channel.k8s.io`).
    Spdy(u8),
    /// SPDY/3.1 frames inside WebSocket binary messages.
    SpdyOverWebSocket,
}

/// A negotiated upgrade: the transport, and the answer to send before switching.
#[derive(Debug)]
pub struct Handshake {
    pub transport: Transport,
    pub response: Response<()>,
}

/// Why an upgrade was refused, as a kubelet answers it: a status and a plain-text message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

const fn ws(version: u8, base64: bool) -> Transport {
    Transport::WebSocket(Channels { version, base64 })
}

/// WebSocket subprotocols of exec and attach. The empty name stands for a client naming none.
const REMOTE_COMMAND_WEBSOCKET: &[(&str, Transport)] = &[
    ("v5.channel.k8s.io", ws(5, false)),
    ("v4.channel.k8s.io", ws(4, false)),
    ("v4.base64.channel.k8s.io", ws(4, true)),
    ("v3.channel.k8s.io", ws(3, false)),
    ("v2.channel.k8s.io", ws(2, false)),
    ("channel.k8s.io", ws(1, false)),
    ("base64.channel.k8s.io", ws(1, true)),
    ("", ws(1, false)),
];

/// SPDY versions of exec and attach, the server's preference first.
const REMOTE_COMMAND_SPDY: &[(&str, Transport)] = &[
    ("v4.channel.k8s.io", Transport::Spdy(4)),
    ("v3.channel.k8s.io", Transport::Spdy(3)),
    ("v2.channel.k8s.io", Transport::Spdy(2)),
    ("channel.k8s.io", Transport::Spdy(1)),
];

/// WebSocket subprotocols of port-forward.
const PORT_FORWARD_WEBSOCKET: &[(&str, Transport)] = &[
    ("SPDY/3.1+portforward.k8s.io", Transport::SpdyOverWebSocket),
    ("v4.channel.k8s.io", ws(4, false)),
    ("v4.base64.channel.k8s.io", ws(4, true)),
    ("", ws(4, false)),
];

/// SPDY versions of port-forward.
const PORT_FORWARD_SPDY: &[(&str, Transport)] = &[("portforward.k8s.io", Transport::Spdy(1))];

/// Every value of a header, comma-separated lists split.
fn header_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn mentions(headers: &HeaderMap, name: header::HeaderName, wanted: &str) -> bool {
    header_values(headers, name.as_str())
        .iter()
        .any(|v| v.eq_ignore_ascii_case(wanted))
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

fn no_common_protocol(client: &[String], server: &[(&str, Transport)]) -> Refusal {
    let server: Vec<&str> = server
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| !n.is_empty())
        .collect();
    refuse(
        StatusCode::FORBIDDEN,
        format!(
            "unable to upgrade: unable to negotiate protocol: client supports {client:?}, server accepts {server:?}"
        ),
    )
}

/// Picks the transport of an upgrade request for `service`, or says why not.
pub fn negotiate(headers: &HeaderMap, service: Service) -> Result<Handshake, Refusal> {
    if !mentions(headers, header::CONNECTION, "upgrade") {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: missing upgrade headers in request",
        ));
    }
    if mentions(headers, header::UPGRADE, "websocket") {
        websocket(headers, service)
    } else if mentions(headers, header::UPGRADE, "SPDY/3.1") {
        spdy(headers, service)
    } else {
        Err(refuse(
            StatusCode::BAD_REQUEST,
            "unable to upgrade: the Upgrade header names neither websocket nor SPDY/3.1",
        ))
    }
}

fn websocket(headers: &HeaderMap, service: Service) -> Result<Handshake, Refusal> {
    let table = match service {
        Service::RemoteCommand => REMOTE_COMMAND_WEBSOCKET,
        Service::PortForward => PORT_FORWARD_WEBSOCKET,
    };
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key"))?;
    let mut offered = header_values(headers, "sec-websocket-protocol");
    if offered.is_empty() {
        offered.push(String::new());
    }
    let (name, transport) = offered
        .iter()
        .find_map(|o| table.iter().find(|(n, _)| n == o))
        .ok_or_else(|| no_common_protocol(&offered, table))?;
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        );
    if !name.is_empty() {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, *name);
    }
    Ok(Handshake {
        transport: *transport,
        response: response.body(()).expect("valid headers"),
    })
}

fn spdy(headers: &HeaderMap, service: Service) -> Result<Handshake, Refusal> {
    let table = match service {
        Service::RemoteCommand => REMOTE_COMMAND_SPDY,
        Service::PortForward => PORT_FORWARD_SPDY,
    };
    let offered = header_values(headers, "x-stream-protocol-version");
    let chosen = if offered.is_empty() {
        // A client naming no version speaks the oldest one.
        table.last()
    } else {
        table.iter().find(|(n, _)| offered.iter().any(|o| o == n))
    };
    let (name, transport) = chosen.ok_or_else(|| no_common_protocol(&offered, table))?;
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1");
    if !offered.is_empty() {
        response = response.header("X-Stream-Protocol-Version", HeaderValue::from_static(name));
    }
    Ok(Handshake {
        transport: *transport,
        response: response.body(()).expect("valid headers"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        map
    }

    #[test]
    fn websocket_takes_the_clients_first_known_subprotocol() {
        let h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            (
                "sec-websocket-protocol",
                "v9.channel.k8s.io, v5.channel.k8s.io, v4.channel.k8s.io",
            ),
        ]);
        let hs = negotiate(&h, Service::RemoteCommand).unwrap();
        assert_eq!(hs.transport, ws(5, false));
        assert_eq!(
            hs.response.headers()["sec-websocket-protocol"],
            "v5.channel.k8s.io"
        );
        // RFC 6455's example key and answer.
        assert_eq!(
            hs.response.headers()["sec-websocket-accept"],
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn spdy_takes_the_newest_version_both_know() {
        let h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "channel.k8s.io"),
            ("x-stream-protocol-version", "v3.channel.k8s.io"),
        ]);
        let hs = negotiate(&h, Service::RemoteCommand).unwrap();
        assert_eq!(hs.transport, Transport::Spdy(3));
        assert_eq!(
            hs.response.headers()["x-stream-protocol-version"],
            "v3.channel.k8s.io"
        );
    }

    #[test]
    fn port_forward_over_a_websocket_tunnel_and_refusals() {
        let h = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "a2V5"),
            ("sec-websocket-protocol", "SPDY/3.1+portforward.k8s.io"),
        ]);
        assert_eq!(
            negotiate(&h, Service::PortForward).unwrap().transport,
            Transport::SpdyOverWebSocket
        );
        let unknown = headers(&[
            ("connection", "Upgrade"),
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v9.channel.k8s.io"),
        ]);
        let refusal = negotiate(&unknown, Service::RemoteCommand).unwrap_err();
        assert_eq!(refusal.status, StatusCode::FORBIDDEN);
        let plain = headers(&[]);
        assert_eq!(
            negotiate(&plain, Service::RemoteCommand)
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
    }
}
