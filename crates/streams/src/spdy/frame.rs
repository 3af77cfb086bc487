//! SPDY/3 frames on the wire, and the zlib-compressed name/value header blocks of
//! SYN_STREAM, SYN_REPLY and HEADERS.
//!
//! Every frame has an 8-byte head. A control frame: the control bit, version 3, type, flags
//! and a 24-bit length. A data frame: a 31-bit stream id, flags and length. Header blocks are
//! a count and length-prefixed names and values (several values of one name joined by NUL
//! bytes), compressed by one zlib stream per direction, primed with SPDY/3's dictionary and
//! flushed after each block.

use std::io;

use bytes::{BufMut, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const FLAG_FIN: u8 = 0x01;

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// RST_STREAM status: the stream is refused or cancelled.
pub const RST_CANCEL: u32 = 5;

/// Largest frame accepted from a peer.
const MAX_FRAME: usize = 16 << 20;

/// Largest header block accepted once decompressed.
const MAX_HEADERS: usize = 1 << 20;

/// Names and values of a header block, names in lower case.
pub type Headers = Vec<(String, String)>;

/// A decoded frame. Frames this side has no use for (SETTINGS) are `Ignored`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        headers: Headers,
        fin: bool,
    },
    SynReply {
        stream_id: u32,
        headers: Headers,
        fin: bool,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Ping(u32),
    GoAway {
        last_stream_id: u32,
    },
    Headers {
        stream_id: u32,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        data: Bytes,
        fin: bool,
    },
    Ignored,
}

/// The words of SPDY/3's header compression dictionary (draft 3, section 2.6.10.1), each
/// written with a 4-byte big-endian length before it.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The dictionary's tail, written as is after the words.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized",
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,",
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

fn dictionary() -> Vec<u8> {
    let mut dict = Vec::with_capacity(1423);
    for word in DICTIONARY_WORDS {
        dict.put_u32(word.len() as u32);
        dict.put_slice(word.as_bytes());
    }
    dict.put_slice(DICTIONARY_TAIL.as_bytes());
    dict
}

fn invalid(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Reads the header blocks of one direction of a session.
pub struct HeaderReader {
    zlib: Decompress,
}

impl Default for HeaderReader {
    fn default() -> Self {
        Self {
            zlib: Decompress::new(true),
        }
    }
}

impl HeaderReader {
    pub fn read(&mut self, block: &[u8]) -> io::Result<Headers> {
        let plain = self.inflate(block)?;
        parse_block(&plain)
    }

    fn inflate(&mut self, block: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(block.len() * 4 + 256);
        let start = self.zlib.total_in();
        loop {
            let used = (self.zlib.total_in() - start) as usize;
            if used >= block.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADERS {
                    return Err(invalid("header block larger than 1 MiB"));
                }
                out.reserve(4096);
            }
            let before = (self.zlib.total_in(), self.zlib.total_out());
            match self
                .zlib
                .decompress_vec(&block[used..], &mut out, FlushDecompress::Sync)
            {
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(&dictionary())
                        .map_err(|e| invalid(format!("header dictionary: {e}")))?;
                    continue;
                }
                Err(e) => return Err(invalid(format!("header block: {e}"))),
            }
            let stuck = before == (self.zlib.total_in(), self.zlib.total_out());
            if stuck && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// Writes the header blocks of one direction of a session.
pub struct HeaderWriter {
    zlib: Compress,
}

impl Default for HeaderWriter {
    fn default() -> Self {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(&dictionary())
            .expect("a fresh stream takes a dictionary");
        Self { zlib }
    }
}

impl HeaderWriter {
    pub fn write(&mut self, headers: &[(&str, &str)]) -> Vec<u8> {
        let mut plain = Vec::new();
        plain.put_u32(headers.len() as u32);
        for (name, value) in headers {
            plain.put_u32(name.len() as u32);
            plain.put_slice(name.as_bytes());
            plain.put_u32(value.len() as u32);
            plain.put_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let start = self.zlib.total_in();
        loop {
            let used = (self.zlib.total_in() - start) as usize;
            if out.len() == out.capacity() {
                out.reserve(256);
            }
            self.zlib
                .compress_vec(&plain[used..], &mut out, FlushCompress::Sync)
                .expect("deflate into memory");
            let done = (self.zlib.total_in() - start) as usize == plain.len();
            if done && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

fn parse_block(plain: &[u8]) -> io::Result<Headers> {
    let mut rest = plain;
    let mut take = |n: usize| -> io::Result<&[u8]> {
        if rest.len() < n {
            return Err(invalid("header block ends early"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = be32(take(4)?) as usize;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let n = be32(take(4)?) as usize;
        let name = String::from_utf8_lossy(take(n)?).to_ascii_lowercase();
        let n = be32(take(4)?) as usize;
        let value = String::from_utf8_lossy(take(n)?).into_owned();
        for v in value.split('\0') {
            headers.push((name.clone(), v.to_string()));
        }
    }
    Ok(headers)
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Reads one frame; `None` at a clean end of the connection.
pub async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    headers: &mut HeaderReader,
) -> io::Result<Option<Frame>> {
    let mut head = [0u8; 8];
    match r.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let flags = head[4];
    let length = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
    if length > MAX_FRAME {
        return Err(invalid(format!("frame of {length} bytes")));
    }
    let mut payload = vec![0u8; length];
    r.read_exact(&mut payload).await?;
    let fin = flags & FLAG_FIN != 0;
    if head[0] & 0x80 == 0 {
        let stream_id = be32(&head[..4]) & 0x7fff_ffff;
        return Ok(Some(Frame::Data {
            stream_id,
            data: Bytes::from(payload),
            fin,
        }));
    }
    let kind = u16::from_be_bytes([head[2], head[3]]);
    control(kind, fin, &payload, headers).map(Some)
}

fn control(kind: u16, fin: bool, p: &[u8], headers: &mut HeaderReader) -> io::Result<Frame> {
    let word = |at: usize| -> io::Result<u32> {
        p.get(at..at + 4)
            .map(be32)
            .ok_or_else(|| invalid(format!("control frame {kind} too short")))
    };
    let id = |at: usize| word(at).map(|w| w & 0x7fff_ffff);
    let block = |at: usize| p.get(at..).unwrap_or_default();
    Ok(match kind {
        SYN_STREAM => Frame::SynStream {
            stream_id: id(0)?,
            headers: headers.read(block(10))?,
            fin,
        },
        SYN_REPLY => Frame::SynReply {
            stream_id: id(0)?,
            headers: headers.read(block(4))?,
            fin,
        },
        HEADERS => Frame::Headers {
            stream_id: id(0)?,
            headers: headers.read(block(4))?,
        },
        RST_STREAM => Frame::RstStream {
            stream_id: id(0)?,
            status: word(4)?,
        },
        PING => Frame::Ping(word(0)?),
        GOAWAY => Frame::GoAway {
            last_stream_id: id(0)?,
        },
        WINDOW_UPDATE => Frame::WindowUpdate {
            stream_id: id(0)?,
            delta: id(4)?,
        },
        // SETTINGS, and frame types this side has no use for.
        _ => Frame::Ignored,
    })
}

fn control_head(buf: &mut BytesMut, kind: u16, flags: u8, length: usize) {
    buf.put_u16(0x8000 | VERSION);
    buf.put_u16(kind);
    buf.put_u8(flags);
    buf.put_uint(length as u64, 3);
}

/// Encodes a frame; header blocks go through `headers`.
pub fn encode(frame: &Frame, headers: &mut HeaderWriter) -> Bytes {
    let mut buf = BytesMut::new();
    let block = |h: &Headers, w: &mut HeaderWriter| {
        let borrowed: Vec<(&str, &str)> = h.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        w.write(&borrowed)
    };
    let fin_flag = |fin: bool| if fin { FLAG_FIN } else { 0 };
    match frame {
        Frame::Data {
            stream_id,
            data,
            fin,
        } => {
            buf.put_u32(stream_id & 0x7fff_ffff);
            buf.put_u8(fin_flag(*fin));
            buf.put_uint(data.len() as u64, 3);
            buf.put_slice(data);
        }
        Frame::SynStream {
            stream_id,
            headers: h,
            fin,
        } => {
            let nv = block(h, headers);
            control_head(&mut buf, SYN_STREAM, fin_flag(*fin), 10 + nv.len());
            buf.put_u32(*stream_id);
            buf.put_u32(0);
            buf.put_u16(0);
            buf.put_slice(&nv);
        }
        Frame::SynReply {
            stream_id,
            headers: h,
            fin,
        } => {
            let nv = block(h, headers);
            control_head(&mut buf, SYN_REPLY, fin_flag(*fin), 4 + nv.len());
            buf.put_u32(*stream_id);
            buf.put_slice(&nv);
        }
        Frame::Headers {
            stream_id,
            headers: h,
        } => {
            let nv = block(h, headers);
            control_head(&mut buf, HEADERS, 0, 4 + nv.len());
            buf.put_u32(*stream_id);
            buf.put_slice(&nv);
        }
        Frame::RstStream { stream_id, status } => {
            control_head(&mut buf, RST_STREAM, 0, 8);
            buf.put_u32(*stream_id);
            buf.put_u32(*status);
        }
        Frame::Ping(id) => {
            control_head(&mut buf, PING, 0, 4);
            buf.put_u32(*id);
        }
        Frame::GoAway { last_stream_id } => {
            control_head(&mut buf, GOAWAY, 0, 8);
            buf.put_u32(*last_stream_id);
            buf.put_u32(0);
        }
        Frame::WindowUpdate { stream_id, delta } => {
            control_head(&mut buf, WINDOW_UPDATE, 0, 8);
            buf.put_u32(*stream_id);
            buf.put_u32(*delta);
        }
        Frame::Ignored => {}
    }
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in data {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn the_dictionary_is_spdy3s() {
        let dict = dictionary();
        assert_eq!(dict.len(), 1423);
        // The checksum Go's SPDY clients put in their zlib headers.
        assert_eq!(adler32(&dict), 0xe3c6_a7c2);
    }

    #[tokio::test]
    async fn frames_round_trip_through_one_compression_context() {
        let mut writer = HeaderWriter::default();
        let mut reader = HeaderReader::default();
        let frames = [
            Frame::SynStream {
                stream_id: 1,
                headers: vec![
                    ("streamtype".into(), "error".into()),
                    ("port".into(), "8080".into()),
                ],
                fin: false,
            },
            Frame::SynStream {
                stream_id: 3,
                headers: vec![("streamtype".into(), "stdout".into())],
                fin: false,
            },
            Frame::Data {
                stream_id: 3,
                data: Bytes::from_static(b"hello"),
                fin: true,
            },
            Frame::RstStream {
                stream_id: 1,
                status: RST_CANCEL,
            },
            Frame::Ping(7),
            Frame::WindowUpdate {
                stream_id: 3,
                delta: 5,
            },
            Frame::GoAway { last_stream_id: 3 },
        ];
        let mut wire = Vec::new();
        for f in &frames {
            wire.extend_from_slice(&encode(f, &mut writer));
        }
        let mut r = &wire[..];
        for f in &frames {
            assert_eq!(read(&mut r, &mut reader).await.unwrap().as_ref(), Some(f));
        }
        assert_eq!(read(&mut r, &mut reader).await.unwrap(), None);
    }
}
