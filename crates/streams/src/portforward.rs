//! The port-forward protocol: every connection the client forwards arrives as a
//! [`Forwarded`] byte stream for one port of the pod, with a way to report an error on it.
//!
//! Over SPDY (`portforward.k8s.io`, directly or inside a WebSocket) the client opens two
//! streams per connection, `error` and `data`, carrying the same `port` and `requestID`
//! headers; the connection starts when both are there. Over WebSocket channels the ports come
//! from the request's `ports` query, one connection each, on channels `2i` (data) and `2i + 1`
//! (error); the first message of each channel carries its port, two bytes little-endian.

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{
    AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf,
};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::channel;
use crate::negotiate::{Channels, Transport};
use crate::spdy;

const BUFFER: usize = 64 * 1024;

/// Most connections whose second stream has not arrived yet.
const MAX_PENDING: usize = 1024;

/// One forwarded connection.
pub struct Forwarded {
    pub port: u16,
    /// The client's bytes in, the pod's bytes out; shutting down the write side ends the
    /// client's side.
    pub stream: DuplexStream,
    pub errors: ErrorReporter,
}

/// Reports an error of one forwarded connection to the client. Dropping it ends the error
/// stream (clients wait for that end before they close the connection).
pub struct ErrorReporter(Reporter);

enum Reporter {
    Spdy(spdy::StreamWriter),
    WebSocket(mpsc::Sender<Message>, Channels, u8),
}

impl ErrorReporter {
    pub async fn report(&self, message: &str) {
        match &self.0 {
            Reporter::Spdy(w) => {
                w.write(message.as_bytes()).await;
            }
            Reporter::WebSocket(tx, channels, ch) => {
                let _ = tx
                    .send(channel::encode(*channels, *ch, message.as_bytes()))
                    .await;
            }
        }
    }
}

impl Drop for ErrorReporter {
    fn drop(&mut self) {
        if let Reporter::Spdy(w) = &self.0 {
            w.close_soon();
        }
    }
}

/// Starts the protocol on a switched connection; `ports` are the request's `ports` (used by
/// the WebSocket channel protocol only). Connections arrive until the client disconnects;
/// dropping the receiver ends the session.
pub async fn accept<IO>(io: IO, transport: Transport, ports: &[u16]) -> mpsc::Receiver<Forwarded>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(16);
    match transport {
        Transport::Spdy(_) => {
            tokio::spawn(spdy_session(spdy::Connection::start(io), tx));
        }
        Transport::SpdyOverWebSocket => {
            let inner = crate::tunnel::bytes(io).await;
            tokio::spawn(spdy_session(spdy::Connection::start(inner), tx));
        }
        Transport::WebSocket(channels) => websocket(io, channels, ports, tx).await,
    }
    rx
}

/// The two streams of one forwarded connection, as they arrive.
#[derive(Default)]
struct Pair {
    error: Option<spdy::Stream>,
    data: Option<spdy::Stream>,
}

async fn spdy_session(mut conn: spdy::Connection, out: mpsc::Sender<Forwarded>) {
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    loop {
        // The session ends when the client goes, or when the caller stops taking connections.
        let stream = tokio::select! {
            s = conn.streams.recv() => s,
            _ = out.closed() => None,
        };
        let Some(stream) = stream else { break };
        let request = stream.header("requestid").unwrap_or("").to_string();
        if pairs.len() >= MAX_PENDING && !pairs.contains_key(&request) {
            tracing::debug!("too many half-opened port-forward connections, stream dropped");
            continue;
        }
        let pair = pairs.entry(request.clone()).or_default();
        match stream.header("streamtype") {
            Some("error") => pair.error = Some(stream),
            Some("data") => pair.data = Some(stream),
            _ => continue,
        }
        if pair.error.is_none() || pair.data.is_none() {
            continue;
        }
        let Pair {
            error: Some(error),
            data: Some(data),
        } = pairs.remove(&request).expect("just filled")
        else {
            continue;
        };
        let port = data
            .header("port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let (ours, theirs) = tokio::io::duplex(BUFFER);
        let (read, write) = tokio::io::split(ours);
        tokio::spawn(spdy_in(data.data, write));
        tokio::spawn(spdy_out(read, data.writer));
        let forwarded = Forwarded {
            port,
            stream: theirs,
            errors: ErrorReporter(Reporter::Spdy(error.writer)),
        };
        if out.send(forwarded).await.is_err() {
            break;
        }
    }
    conn.shutdown().await;
}

async fn spdy_in(mut data: mpsc::Receiver<Bytes>, mut write: WriteHalf<DuplexStream>) {
    while let Some(chunk) = data.recv().await {
        if write.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = write.shutdown().await;
}

async fn spdy_out(mut read: ReadHalf<DuplexStream>, writer: spdy::StreamWriter) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        match read.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if !writer.write(&buf[..n]).await {
                    return;
                }
            }
        }
    }
    writer.close().await;
}

fn port_prefix(channels: Channels, ch: u8, port: u16) -> Message {
    let mut data = BytesMut::with_capacity(2);
    data.put_u16_le(port);
    channel::encode(channels, ch, &data)
}

async fn websocket<IO>(io: IO, channels: Channels, ports: &[u16], out: mpsc::Sender<Forwarded>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, stream) = ws.split();
    let (messages_tx, mut messages_rx) = mpsc::channel::<Message>(64);
    let mut inputs = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let (data_ch, error_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let _ = messages_tx
            .send(port_prefix(channels, data_ch, *port))
            .await;
        let _ = messages_tx
            .send(port_prefix(channels, error_ch, *port))
            .await;
        let (ours, theirs) = tokio::io::duplex(BUFFER);
        let (read, write) = tokio::io::split(ours);
        inputs.push(write);
        tokio::spawn(websocket_out(read, messages_tx.clone(), channels, data_ch));
        let forwarded = Forwarded {
            port: *port,
            stream: theirs,
            errors: ErrorReporter(Reporter::WebSocket(messages_tx.clone(), channels, error_ch)),
        };
        let _ = out.send(forwarded).await;
    }
    drop(messages_tx);
    tokio::spawn(websocket_in(stream, channels, inputs));
    tokio::spawn(async move {
        loop {
            // The session ends when every connection is done, or when the caller stops
            // taking connections.
            let message = tokio::select! {
                m = messages_rx.recv() => m,
                _ = out.closed() => None,
            };
            let Some(message) = message else { break };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
}

async fn websocket_out(
    mut read: ReadHalf<DuplexStream>,
    messages: mpsc::Sender<Message>,
    channels: Channels,
    ch: u8,
) {
    let mut buf = vec![0u8; BUFFER];
    while let Ok(n) = read.read(&mut buf).await {
        if n == 0
            || messages
                .send(channel::encode(channels, ch, &buf[..n]))
                .await
                .is_err()
        {
            break;
        }
    }
}

async fn websocket_in<IO>(
    mut stream: futures::stream::SplitStream<WebSocketStream<IO>>,
    channels: Channels,
    mut inputs: Vec<WriteHalf<DuplexStream>>,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(Ok(message)) = stream.next().await {
        if matches!(message, Message::Close(_)) {
            break;
        }
        let Some((ch, data)) = channel::decode(channels, message) else {
            continue;
        };
        let index = usize::from(ch / 2);
        if ch % 2 == 0
            && let Some(input) = inputs.get_mut(index)
        {
            let _ = input.write_all(&data).await;
        }
    }
    for mut input in inputs {
        let _ = input.shutdown().await;
    }
}
