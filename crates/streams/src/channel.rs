//! Kubernetes' channel protocol over WebSocket: each message starts with the number of the
//! channel it belongs to. Binary protocols put the channel byte before the raw payload;
//! base64 protocols send text whose first character is the channel's digit, then the payload
//! in base64.
//!
//! Remote commands use channels 0 stdin, 1 stdout, 2 stderr, 3 error (the exit status), 4
//! resize; in `v5.channel.k8s.io` a message on channel 255 carrying a channel number closes
//! that channel (the client's way to end stdin). Port-forward uses channels `2i` (data) and
//! `2i + 1` (error) for the `i`-th requested port.

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use tokio_tungstenite::tungstenite::Message;

use crate::negotiate::Channels;

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// `v5.channel.k8s.io`: the payload names a channel the sender will not write to again.
pub const CLOSE: u8 = 255;

/// The message carrying `data` on `channel`.
pub fn encode(channels: Channels, channel: u8, data: &[u8]) -> Message {
    if channels.base64 {
        let mut text = String::with_capacity(1 + data.len() * 4 / 3 + 4);
        text.push(char::from(b'0' + channel));
        base64::engine::general_purpose::STANDARD.encode_string(data, &mut text);
        Message::text(text)
    } else {
        let mut buf = BytesMut::with_capacity(1 + data.len());
        buf.put_u8(channel);
        buf.put_slice(data);
        Message::binary(buf.freeze())
    }
}

/// The channel and payload of a data message; `None` for control messages and messages that
/// do not fit the protocol.
pub fn decode(channels: Channels, message: Message) -> Option<(u8, Bytes)> {
    match message {
        Message::Binary(data) if !channels.base64 && !data.is_empty() => {
            Some((data[0], data.slice(1..)))
        }
        Message::Text(text) if channels.base64 && !text.is_empty() => {
            let bytes = text.as_bytes();
            let channel = bytes[0].checked_sub(b'0')?;
            let payload = base64::engine::general_purpose::STANDARD
                .decode(&bytes[1..])
                .ok()?;
            Some((channel, Bytes::from(payload)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_base64_messages_round_trip() {
        for base64 in [false, true] {
            let channels = Channels { version: 4, base64 };
            let message = encode(channels, STDERR, b"oops\n");
            assert_eq!(
                decode(channels, message),
                Some((STDERR, Bytes::from_static(b"oops\n")))
            );
        }
        let text = encode(
            Channels {
                version: 1,
                base64: true,
            },
            STDOUT,
            b"hi",
        );
        assert_eq!(text, Message::text("1aGk="));
    }
}
