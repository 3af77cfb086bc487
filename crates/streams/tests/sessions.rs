//! Sessions driven frame by frame from the client's side, for the protocol versions today's
//! clients no longer pick (SPDY v2, base64 WebSocket channels) and for port-forward pairing.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use streams::negotiate::Channels;
use streams::remotecommand::{self, Exit, Options};
use streams::spdy::frame::{self, Frame, HeaderReader, HeaderWriter};
use streams::{Transport, portforward};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

/// The client's end of a SPDY session.
struct SpdyClient {
    read: ReadHalf<DuplexStream>,
    write: WriteHalf<DuplexStream>,
    headers_in: HeaderReader,
    headers_out: HeaderWriter,
}

impl SpdyClient {
    fn new(io: DuplexStream) -> Self {
        let (read, write) = tokio::io::split(io);
        SpdyClient {
            read,
            write,
            headers_in: HeaderReader::default(),
            headers_out: HeaderWriter::default(),
        }
    }

    async fn send(&mut self, f: Frame) {
        let bytes = frame::encode(&f, &mut self.headers_out);
        self.write.write_all(&bytes).await.unwrap();
    }

    async fn open(&mut self, id: u32, headers: &[(&str, &str)]) {
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self.send(Frame::SynStream {
            stream_id: id,
            headers,
            fin: false,
        })
        .await;
    }

    async fn data(&mut self, id: u32, data: &[u8], fin: bool) {
        self.send(Frame::Data {
            stream_id: id,
            data: Bytes::copy_from_slice(data),
            fin,
        })
        .await;
    }

    /// Every frame until the server ends the connection.
    async fn frames(mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        let read = async {
            while let Some(f) = frame::read(&mut self.read, &mut self.headers_in)
                .await
                .unwrap()
            {
                let end = matches!(f, Frame::GoAway { .. });
                frames.push(f);
                if end {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the session ends");
        frames
    }
}

/// The data sent on a stream, and whether it was closed.
fn sent_on(frames: &[Frame], id: u32) -> (Vec<u8>, bool) {
    let mut data = Vec::new();
    let mut closed = false;
    for f in frames {
        if let Frame::Data {
            stream_id,
            data: d,
            fin,
        } = f
            && *stream_id == id
        {
            data.extend_from_slice(d);
            closed |= fin;
        }
    }
    (data, closed)
}

#[tokio::test]
async fn a_spdy_v2_session_echoes_stdin_and_reports_the_exit_code_in_text() {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let opts = Options {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let server = tokio::spawn(remotecommand::accept(server_io, Transport::Spdy(2), opts));
    let mut client = SpdyClient::new(client_io);
    for (id, kind) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")] {
        client.open(id, &[("streamtype", kind)]).await;
    }
    client.data(3, b"echo me", true).await;
    let session = server.await.unwrap().unwrap();
    let mut stdin = session.stdin.unwrap();
    let mut input = Vec::new();
    while let Some(chunk) = stdin.recv().await {
        input.extend_from_slice(&chunk);
    }
    assert_eq!(input, b"echo me");
    session.output.stdout(Bytes::from(input)).await;
    session.output.stderr(Bytes::from_static(b"warn")).await;
    let finished = tokio::spawn(session.output.finish(Exit::Code(2)));
    let frames = client.frames().await;
    finished.await.unwrap();
    let replies = frames
        .iter()
        .filter(|f| matches!(f, Frame::SynReply { .. }))
        .count();
    assert_eq!(replies, 4);
    assert_eq!(sent_on(&frames, 5), (b"echo me".to_vec(), true));
    assert_eq!(sent_on(&frames, 7), (b"warn".to_vec(), true));
    let (error, closed) = sent_on(&frames, 1);
    assert!(closed);
    assert_eq!(
        String::from_utf8(error).unwrap(),
        "command terminated with non-zero exit code: exit status 2"
    );
}

#[tokio::test]
async fn spdy_port_forward_pairs_streams_by_request_id() {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let mut connections = portforward::accept(server_io, Transport::Spdy(1), &[]).await;
    let mut client = SpdyClient::new(client_io);
    for (id, kind, request) in [
        (1, "error", "0"),
        (3, "error", "1"),
        (5, "data", "1"),
        (7, "data", "0"),
    ] {
        let port = if request == "0" { "80" } else { "443" };
        client
            .open(
                id,
                &[("streamtype", kind), ("port", port), ("requestid", request)],
            )
            .await;
    }
    client.data(5, b"to 443", true).await;
    let mut first = connections.recv().await.unwrap();
    assert_eq!(first.port, 443);
    let mut got = String::new();
    first.stream.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "to 443");
    first.stream.write_all(b"from 443").await.unwrap();
    first.errors.report("something broke").await;
    drop(first);
    let second = connections.recv().await.unwrap();
    assert_eq!(second.port, 80);
    drop(second);
    client.send(Frame::GoAway { last_stream_id: 7 }).await;
    let frames = client.frames().await;
    assert_eq!(sent_on(&frames, 5), (b"from 443".to_vec(), true));
    assert_eq!(sent_on(&frames, 3), (b"something broke".to_vec(), true));
    assert_eq!(sent_on(&frames, 7), (Vec::new(), true));
}

#[tokio::test]
async fn base64_websocket_channels_carry_a_session() {
    let (server_io, client_io) = tokio::io::duplex(1 << 16);
    let opts = Options {
        stdin: false,
        stdout: true,
        stderr: true,
        tty: false,
    };
    let channels = Channels {
        version: 4,
        base64: true,
    };
    let server = tokio::spawn(remotecommand::accept(
        server_io,
        Transport::WebSocket(channels),
        opts,
    ));
    let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let session = server.await.unwrap().unwrap();
    session.output.stdout(Bytes::from_static(b"hi")).await;
    let finished = tokio::spawn(session.output.finish(Exit::Success));
    let mut texts = Vec::new();
    while let Some(Ok(message)) = client.next().await {
        match message {
            Message::Text(t) => texts.push(t.to_string()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    let _ = client.close(None).await;
    finished.await.unwrap();
    // The empty opening message on stdout, the output, then a Success status on channel 3.
    assert_eq!(texts[0], "1");
    assert_eq!(texts[1], "1aGk=");
    assert!(texts[2].starts_with('3'), "{texts:?}");
    let status =
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &texts[2][1..]).unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status).unwrap();
    assert_eq!(status["status"], "Success");
}
