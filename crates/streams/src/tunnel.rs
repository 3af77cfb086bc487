//! A WebSocket whose binary messages carry a byte stream (`SPDY/3.1+portforward.k8s.io`):
//! turned back into a plain byte stream, so that the SPDY session runs on it unchanged.

use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

const BUFFER: usize = 64 * 1024;

/// The byte stream inside a server-side WebSocket.
pub async fn bytes<IO>(io: IO) -> DuplexStream
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    let (mut sink, mut stream) = ws.split();
    let (ours, theirs) = tokio::io::duplex(BUFFER);
    let (mut read, mut write) = tokio::io::split(ours);
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let data = match message {
                Message::Binary(d) => d,
                Message::Close(_) => break,
                _ => continue,
            };
            if write.write_all(&data).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; BUFFER];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let message = Message::binary(bytes::Bytes::copy_from_slice(&buf[..n]));
                    if sink.send(message).await.is_err() {
                        return;
                    }
                }
            }
        }
        let _ = sink.close().await;
    });
    theirs
}
