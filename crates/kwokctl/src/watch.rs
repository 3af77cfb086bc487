//! Watches over the blocking API client: one streaming `GET ...?watch=1` per watch, read as
//! newline-separated JSON watch events.

use std::io::{BufRead, Read};

use anyhow::{Context as _, anyhow};
use serde_json::Value;

use crate::apiclient::{Client, Response, form_query};

/// How long the server keeps one watch open before it ends it and the caller starts the next.
pub const WATCH_SECONDS: u64 = 45;

/// One open watch: the events of one collection from a resource version on.
pub struct Watch {
    reader: Box<dyn BufRead + Send>,
    line: Vec<u8>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
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
        let (status, reader) = self.get_stream(&path).map_err(WatchError::Other)?;
        if status == 410 {
            return Err(WatchError::Expired);
        }
        if status != 200 {
            let mut body = Vec::new();
            let _ = reader.take(64 * 1024).read_to_end(&mut body);
            let resp = Response { status, body };
            return Err(WatchError::Other(anyhow!("GET {path}: {}", resp.message())));
        }
        Ok(Watch {
            reader,
            line: Vec::new(),
        })
    }
}

impl Watch {
    /// The next event (`{"type": ..., "object": ...}`), or `None` when the server ended the
    /// watch.
    pub fn next_event(&mut self) -> anyhow::Result<Option<Value>> {
        loop {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(None);
            }
            let line = self.line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            return serde_json::from_slice(line)
                .map(Some)
                .context("decode watch event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn events_are_lines_and_blank_lines_are_skipped() {
        let body = b"{\"a\":1}\n\n{\"b\":2}\n{\"c\":";
        let mut w = Watch {
            reader: Box::new(Cursor::new(body.to_vec())),
            line: Vec::new(),
        };
        assert_eq!(w.next_event().unwrap().unwrap()["a"], 1);
        assert_eq!(w.next_event().unwrap().unwrap()["b"], 2);
        assert!(w.next_event().is_err(), "a cut event is an error");
    }
}
