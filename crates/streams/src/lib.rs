//! The streaming protocols of `exec`, `attach` and `port-forward`, as a kubelet speaks them to
//! kubectl, client-go, kube-rs and the Python client.
//!
//! A request arrives as an HTTP upgrade. [`negotiate`] reads its headers and picks the transport
//! and protocol version (or refuses, as a kubelet does), and gives the `101 Switching Protocols`
//! answer. Once the connection is switched, the byte stream is handed to
//! [`remotecommand::accept`] (exec and attach: stdin, stdout, stderr, the exit status and
//! terminal resizes) or [`portforward::accept`] (one byte stream per forwarded connection),
//! which return plain channels and byte streams: the caller never sees a frame.
//!
//! Transports:
//! * WebSocket with Kubernetes' channel subprotocols (`v5.channel.k8s.io` ... `channel.k8s.io`,
//!   and their base64 forms): one channel byte before each message ([`channel`]). The
//!   WebSocket itself is tokio-tungstenite's.
//! * SPDY/3.1, one SPDY stream per channel, named by its `streamType` header ([`spdy`]).
//!   Hand-written: no maintained Rust crate speaks SPDY, which browsers dropped years ago; only
//!   the framing, the zlib header blocks (flate2, with SPDY/3's dictionary) and stream
//!   bookkeeping are needed here.
//! * SPDY/3.1 carried inside WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`), as
//!   kubectl 1.30 and later forward ports.
//!
//! The crate knows no pods, processes or simulation objects: it moves bytes.

pub mod channel;
pub mod negotiate;
pub mod portforward;
pub mod remotecommand;
pub mod spdy;
mod tunnel;

pub use negotiate::{Handshake, Refusal, Service, Transport, negotiate};
