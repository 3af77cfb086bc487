//! The remote-command protocol of `exec` and `attach`: the client's stdin and terminal sizes
//! in, stdout and stderr out, and at the end the command's outcome on the error channel.
//!
//! [`accept`] takes a switched connection and returns a [`Session`] whatever the transport:
//! WebSocket channels (version 5 lets the client close stdin) or SPDY streams named
//! `stdin`, `stdout`, `stderr`, `error` and `resize` (the session starts once the client has
//! opened the ones the request asked for, as a kubelet waits for them). From version 4 on the
//! outcome is a `metav1.Status`, the exit code in a `NonZeroExitCode` failure; before, an error
//! message in plain text.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, frame::coding::CloseCode};

use crate::channel::{self, CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT};
use crate::negotiate::{Channels, Transport};
use crate::spdy;

/// How long a client may take to open the streams of a SPDY session, as a kubelet allows.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to answer a WebSocket close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Which streams the request asked for (kubelet's `input`, `output`, `error`, `tty`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A terminal size sent by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct TerminalSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// How the command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    Success,
    /// Exited with this code (not 0).
    Code(i32),
    /// Could not run, or was ended: the message the client shows.
    Failed(String),
}

impl Exit {
    /// The error channel's content for protocol `version`, if any.
    fn report(&self, version: u8) -> Option<Vec<u8>> {
        let status = match self {
            Exit::Success if version >= 4 => json!({"metadata": {}, "status": "Success"}),
            Exit::Success => return None,
            Exit::Code(code) if version >= 4 => json!({
                "metadata": {},
                "status": "Failure",
                "message": format!("command terminated with non-zero exit code: exit status {code}"),
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
            }),
            Exit::Code(code) => {
                return Some(
                    format!("command terminated with non-zero exit code: exit status {code}")
                        .into_bytes(),
                );
            }
            Exit::Failed(message) if version >= 4 => json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": format!("Internal error occurred: {message}"),
                "reason": "InternalError",
                "details": {"causes": [{"message": message}]},
                "code": 500,
            }),
            Exit::Failed(message) => return Some(message.clone().into_bytes()),
        };
        Some(status.to_string().into_bytes())
    }
}

/// A switched connection of a remote command.
pub struct Session {
    /// The client's input, when asked for; ends when the client closes it.
    pub stdin: Option<mpsc::Receiver<Bytes>>,
    /// Terminal sizes, for `tty` sessions.
    pub resize: mpsc::Receiver<TerminalSize>,
    pub output: Output,
}

enum Event {
    Stdout(Bytes),
    Stderr(Bytes),
    Finish(Exit, oneshot::Sender<()>),
}

/// Sends output to the client, then the outcome.
pub struct Output {
    events: mpsc::Sender<Event>,
    /// Turns true once the client's side of the connection has ended.
    gone: watch::Receiver<bool>,
}

impl Output {
    /// Returns once the client has gone away (closed or lost the connection).
    pub async fn client_gone(&self) {
        let mut gone = self.gone.clone();
        let _ = gone.wait_for(|g| *g).await;
    }

    /// Sends to stdout; false once the client is gone.
    pub async fn stdout(&self, data: Bytes) -> bool {
        self.events.send(Event::Stdout(data)).await.is_ok()
    }

    /// Sends to stderr (to stdout on a terminal, which has one output); false once the client
    /// is gone.
    pub async fn stderr(&self, data: Bytes) -> bool {
        self.events.send(Event::Stderr(data)).await.is_ok()
    }

    /// Sends the outcome and closes the connection, once what was sent before is out.
    pub async fn finish(self, exit: Exit) {
        let (done, wait) = oneshot::channel();
        if self.events.send(Event::Finish(exit, done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts the protocol on a switched connection.
pub async fn accept<IO>(io: IO, transport: Transport, opts: Options) -> io::Result<Session>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match transport {
        Transport::WebSocket(channels) => Ok(websocket(io, channels, opts).await),
        Transport::Spdy(version) => spdy_session(io, version, opts).await,
        Transport::SpdyOverWebSocket => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "SPDY over WebSocket carries port-forward only",
        )),
    }
}

/// Reads JSON terminal sizes from a byte stream (one after another, as Go's encoder writes
/// them) or from messages.
fn sizes_in(buffer: &mut Vec<u8>, data: &[u8]) -> Vec<TerminalSize> {
    buffer.extend_from_slice(data);
    let mut sizes = Vec::new();
    let mut values = serde_json::Deserializer::from_slice(buffer).into_iter::<TerminalSize>();
    let mut used = 0;
    while let Some(Ok(size)) = values.next() {
        sizes.push(size);
        used = values.byte_offset();
    }
    buffer.drain(..used);
    sizes
}

async fn websocket<IO>(io: IO, channels: Channels, opts: Options) -> Session
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (sink, stream) = ws.split();
    let (stdin_tx, stdin_rx) = mpsc::channel(16);
    let (resize_tx, resize_rx) = mpsc::channel(4);
    let (events_tx, events_rx) = mpsc::channel(16);
    let closing = Arc::new(Notify::new());
    let (gone_tx, gone_rx) = watch::channel(false);
    let reader = ws_read(
        stream,
        channels,
        opts.stdin.then_some(stdin_tx),
        resize_tx,
        closing.clone(),
    );
    tokio::spawn(async move {
        reader.await;
        let _ = gone_tx.send(true);
    });
    tokio::spawn(ws_write(sink, channels, opts, events_rx, closing));
    Session {
        stdin: opts.stdin.then_some(stdin_rx),
        resize: resize_rx,
        output: Output {
            events: events_tx,
            gone: gone_rx,
        },
    }
}

type WsRead<IO> = futures::stream::SplitStream<WebSocketStream<IO>>;
type WsWrite<IO> = futures::stream::SplitSink<WebSocketStream<IO>, Message>;

async fn ws_read<IO>(
    mut stream: WsRead<IO>,
    channels: Channels,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    resize: mpsc::Sender<TerminalSize>,
    closing: Arc<Notify>,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut pending = Vec::new();
    let grace = async {
        closing.notified().await;
        tokio::time::sleep(CLOSE_GRACE).await;
    };
    tokio::pin!(grace);
    loop {
        let message = tokio::select! {
            m = stream.next() => m,
            _ = &mut grace => break,
        };
        let Some(Ok(message)) = message else { break };
        let Some((ch, data)) = channel::decode(channels, message) else {
            continue;
        };
        match ch {
            STDIN => {
                if let Some(tx) = &stdin
                    && !data.is_empty()
                    && tx.send(data).await.is_err()
                {
                    stdin = None;
                }
            }
            RESIZE => {
                for size in sizes_in(&mut pending, &data) {
                    let _ = resize.try_send(size);
                }
            }
            CLOSE if channels.version >= 5 && data.first() == Some(&STDIN) => stdin = None,
            _ => {}
        }
    }
}

async fn ws_write<IO>(
    mut sink: WsWrite<IO>,
    channels: Channels,
    opts: Options,
    mut events: mpsc::Receiver<Event>,
    closing: Arc<Notify>,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    // An empty message on the first channel written tells the client the session is up.
    let first = if opts.stdout {
        STDOUT
    } else if opts.stderr {
        STDERR
    } else {
        ERROR
    };
    if sink
        .send(channel::encode(channels, first, &[]))
        .await
        .is_err()
    {
        return;
    }
    while let Some(event) = events.recv().await {
        let (ch, data, done) = match event {
            Event::Stdout(d) => (STDOUT, d, None),
            Event::Stderr(d) => (if opts.tty { STDOUT } else { STDERR }, d, None),
            Event::Finish(exit, done) => {
                let report = exit.report(channels.version).unwrap_or_default();
                (ERROR, Bytes::from(report), Some(done))
            }
        };
        if (!data.is_empty() || done.is_none())
            && sink
                .send(channel::encode(channels, ch, &data))
                .await
                .is_err()
        {
            break;
        }
        if let Some(done) = done {
            let close = CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            };
            let _ = sink.send(Message::Close(Some(close))).await;
            let _ = sink.close().await;
            let _ = done.send(());
            break;
        }
    }
    closing.notify_one();
}

/// The SPDY streams of a session, by their `streamtype`.
const STREAM_TYPES: &[(&str, u8)] = &[
    ("error", ERROR),
    ("stdin", STDIN),
    ("stdout", STDOUT),
    ("stderr", STDERR),
    ("resize", RESIZE),
];

/// The streams a kubelet waits for before it starts the command.
fn expected_streams(version: u8, opts: Options) -> Vec<u8> {
    let mut kinds = vec![ERROR];
    if opts.stdin {
        kinds.push(STDIN);
    }
    if opts.stdout {
        kinds.push(STDOUT);
    }
    if opts.stderr && !opts.tty {
        kinds.push(STDERR);
    }
    if opts.tty && version >= 3 {
        kinds.push(RESIZE);
    }
    kinds
}

async fn spdy_session<IO>(io: IO, version: u8, opts: Options) -> io::Result<Session>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = spdy::Connection::start(io);
    let expected = expected_streams(version, opts);
    let mut streams: HashMap<u8, spdy::Stream> = HashMap::new();
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while !expected.iter().all(|k| streams.contains_key(k)) {
        let stream = tokio::select! {
            s = conn.streams.recv() => s.ok_or_else(spdy::ended_early)?,
            _ = &mut deadline => {
                conn.shutdown().await;
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out waiting for the client's streams"));
            }
        };
        let kind = stream.header("streamtype").and_then(|t| {
            STREAM_TYPES
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(t))
        });
        if let Some((_, kind)) = kind {
            streams.insert(*kind, stream);
        }
    }
    let (resize_tx, resize_rx) = mpsc::channel(4);
    if let Some(resize) = streams.remove(&RESIZE) {
        tokio::spawn(spdy_sizes(resize.data, resize_tx));
    }
    let stdin = streams.remove(&STDIN).map(|s| s.data);
    // Only stdin and resize carry the client's data; streams opened later are not used.
    let writers = streams.into_iter().map(|(k, s)| (k, s.writer)).collect();
    let mut later = std::mem::replace(&mut conn.streams, mpsc::channel(1).1);
    tokio::spawn(async move { while later.recv().await.is_some() {} });
    let (events_tx, events_rx) = mpsc::channel(16);
    let gone = conn.closed();
    tokio::spawn(spdy_write(conn, writers, version, events_rx));
    Ok(Session {
        stdin,
        resize: resize_rx,
        output: Output {
            events: events_tx,
            gone,
        },
    })
}

async fn spdy_sizes(mut data: mpsc::Receiver<Bytes>, sizes: mpsc::Sender<TerminalSize>) {
    let mut pending = Vec::new();
    while let Some(chunk) = data.recv().await {
        for size in sizes_in(&mut pending, &chunk) {
            let _ = sizes.try_send(size);
        }
    }
}

async fn spdy_write(
    conn: spdy::Connection,
    writers: HashMap<u8, spdy::StreamWriter>,
    version: u8,
    mut events: mpsc::Receiver<Event>,
) {
    let writer = |kind: u8| writers.get(&kind).cloned();
    let (stdout, stderr, error) = (writer(STDOUT), writer(STDERR), writer(ERROR));
    let mut finished = None;
    while let Some(event) = events.recv().await {
        match event {
            Event::Stdout(d) => {
                if let Some(w) = &stdout {
                    w.write(&d).await;
                }
            }
            Event::Stderr(d) => {
                if let Some(w) = stderr.as_ref().or(stdout.as_ref()) {
                    w.write(&d).await;
                }
            }
            Event::Finish(exit, done) => {
                finished = Some((exit, done));
                break;
            }
        }
    }
    for w in [&stdout, &stderr].into_iter().flatten() {
        w.close().await;
    }
    if let Some(w) = &error {
        if let Some(report) = finished.as_ref().and_then(|(e, _)| e.report(version)) {
            w.write(&report).await;
        }
        w.close().await;
    }
    conn.shutdown().await;
    if let Some((_, done)) = finished {
        let _ = done.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outcome_is_a_status_from_version_4() {
        let code: serde_json::Value =
            serde_json::from_slice(&Exit::Code(3).report(4).unwrap()).unwrap();
        assert_eq!(code["reason"], "NonZeroExitCode");
        assert_eq!(code["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(code["details"]["causes"][0]["message"], "3");
        assert_eq!(Exit::Success.report(3), None);
        assert!(
            String::from_utf8(Exit::Code(2).report(2).unwrap())
                .unwrap()
                .contains("exit status 2")
        );
    }

    #[test]
    fn terminal_sizes_are_read_across_chunks() {
        let mut pending = Vec::new();
        assert_eq!(sizes_in(&mut pending, br#"{"Width":80,"He"#), vec![]);
        assert_eq!(
            sizes_in(&mut pending, b"ight\":24}\n{\"Width\":100,\"Height\":40}\n"),
            vec![
                TerminalSize {
                    width: 80,
                    height: 24
                },
                TerminalSize {
                    width: 100,
                    height: 40
                }
            ]
        );
        assert!(pending.iter().all(|b| b.is_ascii_whitespace()));
    }

    #[test]
    fn a_terminal_session_waits_for_resize_and_not_stderr() {
        let tty = Options {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: true,
        };
        assert_eq!(expected_streams(4, tty), vec![ERROR, STDIN, STDOUT, RESIZE]);
        assert_eq!(expected_streams(2, tty), vec![ERROR, STDIN, STDOUT]);
    }
}
