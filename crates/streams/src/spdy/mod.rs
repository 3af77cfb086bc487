//! The server side of a SPDY/3.1 session, as Kubernetes clients use it: the client opens
//! streams (SYN_STREAM) named by their headers, and both sides send data on them.
//!
//! [`Connection::start`] runs a reader and a writer task over the switched connection. Each
//! stream the client opens is answered (SYN_REPLY) and handed out as a [`Stream`]: its headers,
//! its incoming data (ending at the client's FIN or RST) and a [`StreamWriter`]. Pings are
//! answered; received data is acknowledged with WINDOW_UPDATE so that clients keeping flow
//! control go on sending. Outgoing data is not held back by windows: Kubernetes' SPDY clients
//! do not limit it either.

pub mod frame;

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Notify, mpsc, watch};

use frame::{Frame, HeaderReader, HeaderWriter, Headers};

/// Largest DATA frame sent.
const MAX_DATA: usize = 32 * 1024;

/// How long the client may take to close the connection after GOAWAY.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// What the writer task sends.
enum Out {
    Frame(Frame),
    /// GOAWAY, then the end of the connection.
    Shutdown,
}

/// A stream the client opened.
pub struct Stream {
    pub id: u32,
    pub headers: Headers,
    /// The client's data, in order; ends with its FIN or RST, or the connection's end.
    pub data: mpsc::Receiver<Bytes>,
    pub writer: StreamWriter,
}

impl Stream {
    /// The first value of a header (names are lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends data on one stream.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
}

impl StreamWriter {
    /// Sends `data`; false once the connection is gone.
    pub async fn write(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(MAX_DATA) {
            let frame = Frame::Data {
                stream_id: self.id,
                data: Bytes::copy_from_slice(chunk),
                fin: false,
            };
            if self.out.send(Out::Frame(frame)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Ends this side of the stream (FIN).
    pub async fn close(&self) {
        let frame = Frame::Data {
            stream_id: self.id,
            data: Bytes::new(),
            fin: true,
        };
        let _ = self.out.send(Out::Frame(frame)).await;
    }

    /// Ends this side of the stream without waiting for room in the send queue.
    pub fn close_soon(&self) {
        let writer = self.clone();
        tokio::spawn(async move { writer.close().await });
    }
}

/// A running session.
pub struct Connection {
    /// Streams as the client opens them.
    pub streams: mpsc::Receiver<Stream>,
    out: mpsc::Sender<Out>,
    closed: watch::Receiver<bool>,
}

impl Connection {
    pub fn start<IO>(io: IO) -> Connection
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (read, write) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(64);
        let (streams_tx, streams_rx) = mpsc::channel(16);
        let closing = Arc::new(Notify::new());
        let (closed_tx, closed_rx) = watch::channel(false);
        tokio::spawn(write_loop(write, out_rx, closing.clone()));
        let reader_out = out_tx.clone();
        tokio::spawn(async move {
            read_loop(read, reader_out, streams_tx, closing).await;
            let _ = closed_tx.send(true);
        });
        Connection {
            streams: streams_rx,
            out: out_tx,
            closed: closed_rx,
        }
    }

    /// Turns true once the client's side of the connection has ended.
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closed.clone()
    }

    /// Says GOAWAY and ends the connection once what was queued before is sent.
    pub async fn shutdown(&self) {
        let _ = self.out.send(Out::Shutdown).await;
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut out: mpsc::Receiver<Out>,
    closing: Arc<Notify>,
) {
    let mut headers = HeaderWriter::default();
    let mut last_stream = 0;
    while let Some(item) = out.recv().await {
        let frame = match item {
            Out::Frame(f) => f,
            Out::Shutdown => break,
        };
        if let Frame::SynReply { stream_id, .. } = &frame {
            last_stream = *stream_id;
        }
        if w.write_all(&frame::encode(&frame, &mut headers))
            .await
            .is_err()
        {
            closing.notify_one();
            return;
        }
    }
    let goaway = Frame::GoAway {
        last_stream_id: last_stream,
    };
    let _ = w.write_all(&frame::encode(&goaway, &mut headers)).await;
    let _ = w.flush().await;
    let _ = w.shutdown().await;
    closing.notify_one();
}

/// Per-stream senders of the client's data.
type Inbound = HashMap<u32, mpsc::Sender<Bytes>>;

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    out: mpsc::Sender<Out>,
    streams: mpsc::Sender<Stream>,
    closing: Arc<Notify>,
) {
    let mut headers = HeaderReader::default();
    let mut inbound = Inbound::new();
    let grace = async {
        closing.notified().await;
        tokio::time::sleep(CLOSE_GRACE).await;
    };
    tokio::pin!(grace);
    loop {
        let frame = tokio::select! {
            f = frame::read(&mut r, &mut headers) => f,
            _ = &mut grace => break,
        };
        match frame {
            Ok(Some(f)) => {
                if !handle(f, &out, &streams, &mut inbound).await {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "SPDY connection ended");
                break;
            }
        }
    }
}

/// Acts on one frame; false when the session is over.
async fn handle(
    f: Frame,
    out: &mpsc::Sender<Out>,
    streams: &mpsc::Sender<Stream>,
    inbound: &mut Inbound,
) -> bool {
    let send = |f: Frame| out.send(Out::Frame(f));
    match f {
        Frame::SynStream {
            stream_id,
            headers,
            fin,
        } => {
            let (tx, rx) = mpsc::channel(64);
            if !fin {
                inbound.insert(stream_id, tx);
            }
            let reply = Frame::SynReply {
                stream_id,
                headers: Vec::new(),
                fin: false,
            };
            if send(reply).await.is_err() {
                return false;
            }
            let stream = Stream {
                id: stream_id,
                headers,
                data: rx,
                writer: StreamWriter {
                    id: stream_id,
                    out: out.clone(),
                },
            };
            if let Err(refused) = streams.send(stream).await {
                inbound.remove(&refused.0.id);
                let rst = Frame::RstStream {
                    stream_id,
                    status: frame::RST_CANCEL,
                };
                let _ = send(rst).await;
            }
        }
        Frame::Data {
            stream_id,
            data,
            fin,
        } => {
            let len = data.len() as u32;
            if let Some(tx) = inbound.get(&stream_id)
                && !data.is_empty()
                && tx.send(data).await.is_err()
            {
                inbound.remove(&stream_id);
            }
            if fin {
                inbound.remove(&stream_id);
            } else if len > 0 {
                let _ = send(Frame::WindowUpdate {
                    stream_id,
                    delta: len,
                })
                .await;
            }
        }
        Frame::RstStream { stream_id, .. } => {
            inbound.remove(&stream_id);
        }
        Frame::Ping(id) => {
            let _ = send(Frame::Ping(id)).await;
        }
        Frame::GoAway { .. } => return false,
        Frame::SynReply { .. }
        | Frame::Headers { .. }
        | Frame::WindowUpdate { .. }
        | Frame::Ignored => {}
    }
    true
}

/// An error for a session that ended before the client opened the streams it needed.
pub fn ended_early() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the connection ended before its streams were opened",
    )
}
