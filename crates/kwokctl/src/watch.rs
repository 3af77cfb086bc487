//! Watches over the blocking API client: one `GET ...?watch=1` per stream on its own connection,
//! read as newline-separated JSON watch events out of the chunked response body.

use std::io::{BufRead, Read, Write};

use anyhow::{Context as _, anyhow, bail};
use serde_json::Value;

use crate::apiclient::{Client, Response, form_query};

/// How long the server keeps one watch open before it ends it and the caller starts the next.
pub const WATCH_SECONDS: u64 = 45;

/// One open watch: the events of one collection from a resource version on.
pub struct Watch {
    reader: Box<dyn BufRead + Send>,
    pending: Vec<u8>,
    done: bool,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Watch({} bytes pending)", self.pending.len())
    }
}

/// Why a watch could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The resource version is older than the server's history: list again.
    #[error("resource version expired")]
    Expired,
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl Client {
    /// Opens a watch on `collection` (a path without query) from `resource_version`, with
    /// bookmarks, ended by the server after [`WATCH_SECONDS`].
    pub fn watch(&self, collection: &str, resource_version: &str) -> Result<Watch, WatchError> {
        let query = form_query(&[
            ("watch", "1".into()),
            ("allowWatchBookmarks", "true".into()),
            ("resourceVersion", resource_version.to_string()),
            ("timeoutSeconds", WATCH_SECONDS.to_string()),
        ]);
        let path = format!("{collection}?{query}");
        let mut conn = self.connect().map_err(WatchError::Other)?;
        let head = format!("{}\r\n", self.head("GET", &path));
        conn.get_mut()
            .write_all(head.as_bytes())
            .and_then(|()| conn.get_mut().flush())
            .map_err(|e| WatchError::Other(anyhow!("GET {path}: {e}")))?;
        let (status, chunked) = read_head(&mut conn).map_err(WatchError::Other)?;
        if status == 410 {
            return Err(WatchError::Expired);
        }
        if status != 200 {
            let mut body = Vec::new();
            let _ = conn.take(64 * 1024).read_to_end(&mut body);
            let resp = Response { status, body };
            return Err(WatchError::Other(anyhow!("GET {path}: {}", resp.message())));
        }
        if !chunked {
            return Err(WatchError::Other(anyhow!(
                "GET {path}: the watch answer is not chunked"
            )));
        }
        Ok(Watch {
            reader: Box::new(conn),
            pending: Vec::new(),
            done: false,
        })
    }
}

impl Watch {
    /// The next event (`{"type": ..., "object": ...}`), or `None` when the server ended the
    /// watch.
    pub fn next_event(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            if let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=end).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line)
                    .map(Some)
                    .context("decode watch event");
            }
            if self.done || !self.read_chunk()? {
                self.done = true;
                return Ok(None);
            }
        }
    }

    /// Appends one chunk of the body; false at its end.
    fn read_chunk(&mut self) -> anyhow::Result<bool> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(false);
        }
        let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
            .context("chunk size")?;
        if size == 0 {
            return Ok(false);
        }
        let start = self.pending.len();
        self.pending.resize(start + size, 0);
        self.reader.read_exact(&mut self.pending[start..])?;
        line.clear();
        self.reader.read_line(&mut line)?;
        Ok(true)
    }
}

/// Reads the status line and headers; returns the status and whether the body is chunked.
fn read_head<R: BufRead>(conn: &mut R) -> anyhow::Result<(u16, bool)> {
    let mut line = String::new();
    if conn.read_line(&mut line)? == 0 {
        bail!("connection closed");
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("bad status line {line:?}"))?
        .parse()
        .context("status code")?;
    let mut chunked = false;
    loop {
        line.clear();
        if conn.read_line(&mut line)? == 0 {
            bail!("connection closed in headers");
        }
        let header = line.trim_end();
        if header.is_empty() {
            return Ok((status, chunked));
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("transfer-encoding")
        {
            chunked = value.trim().eq_ignore_ascii_case("chunked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn events_split_across_chunks() {
        let body = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n4\r\n1}\n{\r\n7\r\n\"b\":2}\n\r\n0\r\n\r\n";
        let mut cursor = Cursor::new(body.to_vec());
        let (status, chunked) = read_head(&mut cursor).unwrap();
        assert_eq!((status, chunked), (200, true));
        let mut w = Watch {
            reader: Box::new(cursor),
            pending: Vec::new(),
            done: false,
        };
        assert_eq!(w.next_event().unwrap().unwrap()["a"], 1);
        assert_eq!(w.next_event().unwrap().unwrap()["b"], 2);
        assert!(w.next_event().unwrap().is_none());
    }
}
