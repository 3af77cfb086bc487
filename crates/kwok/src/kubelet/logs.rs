//! Container logs as the kubelet serves them (`/containerLogs/{ns}/{pod}/{container}`): a file in
//! the CRI log format (`<RFC3339Nano> stdout|stderr F|P <text>`; docker's JSON lines are read
//! too) turned into the container's output, with kubelet's options: `tailLines` (or `tail`),
//! `sinceSeconds` / `sinceTime`, `timestamps`, `limitBytes`, `previous` and `follow`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};

/// The options of one logs request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    pub follow: bool,
    pub tail_lines: Option<u64>,
    /// Only entries at or after this time.
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub limit_bytes: Option<u64>,
    pub previous: bool,
}

impl LogOptions {
    /// Reads kubelet's query parameters; a value that does not parse is an error, as kubelet
    /// answers `Unable to decode query.`.
    pub fn from_query(query: &[(String, String)]) -> Result<Self, String> {
        let mut opts = LogOptions::default();
        let mut since_seconds = None;
        let mut since_time = None;
        for (key, value) in query {
            let bad = || format!("invalid value for {key}: {value:?}");
            match key.as_str() {
                "follow" => opts.follow = parse_bool(value).ok_or_else(bad)?,
                "timestamps" => opts.timestamps = parse_bool(value).ok_or_else(bad)?,
                "previous" => opts.previous = parse_bool(value).ok_or_else(bad)?,
                "tailLines" | "tail" if value == "all" => opts.tail_lines = None,
                "tailLines" | "tail" => {
                    let n: i64 = value.parse().map_err(|_| bad())?;
                    opts.tail_lines = Some(n.max(0) as u64);
                }
                "limitBytes" => {
                    let n: i64 = value.parse().map_err(|_| bad())?;
                    opts.limit_bytes = Some(n.max(0) as u64);
                }
                "sinceSeconds" => {
                    let n: i64 = value.parse().map_err(|_| bad())?;
                    since_seconds = Some(n.max(0));
                }
                "sinceTime" => {
                    since_time = Some(value.parse::<jiff::Timestamp>().map_err(|_| bad())?)
                }
                _ => {}
            }
        }
        let now = jiff::Timestamp::now();
        let from_seconds =
            since_seconds.and_then(|s| now.checked_sub(jiff::SignedDuration::from_secs(s)).ok());
        opts.since = match (from_seconds, since_time) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(opts)
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "" | "true" | "1" | "True" | "TRUE" | "t" | "T" => Some(true),
        "false" | "0" | "False" | "FALSE" | "f" | "F" => Some(false),
        _ => None,
    }
}

/// One entry of a log file.
#[derive(Debug, Clone, PartialEq)]
struct Entry {
    time: jiff::Timestamp,
    /// The text, with the line's end when the entry completes a line.
    text: String,
}

/// Parses a CRI line (`<time> <stream> <P|F> <text>`) or a docker JSON line. `None` for lines
/// in neither format, which kubelet skips too.
fn parse_line(line: &str) -> Option<Entry> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if line.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        return Some(Entry {
            time: v.get("time")?.as_str()?.parse().ok()?,
            text: v.get("log")?.as_str()?.to_string(),
        });
    }
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?.parse().ok()?;
    let stream = parts.next()?;
    if stream != "stdout" && stream != "stderr" {
        return None;
    }
    let (tag, text) = match (parts.next()?, parts.next()) {
        ("P", text) => ("P", text.unwrap_or("")),
        ("F", text) => ("F", text.unwrap_or("")),
        _ => return None,
    };
    let mut text = text.to_string();
    if tag == "F" {
        text.push('\n');
    }
    Some(Entry { time, text })
}

/// kubelet writes timestamps with nine fractional digits.
fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

/// Renders entries as the client sees them, counting bytes against `limitBytes`.
struct Renderer {
    opts: LogOptions,
    written: u64,
}

impl Renderer {
    /// The bytes for `entry`, or `None` once the limit has been reached.
    fn render(&mut self, entry: &Entry) -> Option<Option<Bytes>> {
        if let Some(limit) = self.opts.limit_bytes
            && self.written >= limit
        {
            return None;
        }
        if self.opts.since.is_some_and(|since| entry.time < since) {
            return Some(None);
        }
        let mut out = String::new();
        if self.opts.timestamps {
            out.push_str(&format_time(entry.time));
            out.push(' ');
        }
        out.push_str(&entry.text);
        let mut bytes = out.into_bytes();
        if let Some(limit) = self.opts.limit_bytes {
            bytes.truncate((limit - self.written) as usize);
        }
        self.written += bytes.len() as u64;
        Some(Some(Bytes::from(bytes)))
    }
}

/// Polling interval of a followed file: a line appended reaches the client within it (one
/// read a poll, so 100 followers cost 5,000 small reads a second).
const FOLLOW_POLL: Duration = Duration::from_millis(20);

/// Streams a log file. `alive` is asked between polls of a followed file; the stream ends once
/// it says the container is gone.
pub fn stream<F, Fut>(
    path: PathBuf,
    opts: LogOptions,
    alive: F,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    async_stream(path, opts, alive)
}

fn async_stream<F, Fut>(
    path: PathBuf,
    opts: LogOptions,
    alive: F,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> + Send
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    tokio::spawn(async move {
        if let Err(e) = pump(&path, opts, alive, &tx).await {
            let _ = tx.send(Err(e)).await;
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}

/// Reads the file into `tx`: the tail first, then (following) whatever is appended.
async fn pump<F, Fut>(
    path: &PathBuf,
    opts: LogOptions,
    alive: F,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let follow = opts.follow;
    let tail = opts.tail_lines;
    let mut renderer = Renderer { opts, written: 0 };
    let file = tokio::fs::File::open(path).await?;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    // The tail: the last N entries already in the file.
    let mut backlog: VecDeque<Entry> = VecDeque::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await?;
        if n == 0 || !line.ends_with('\n') {
            // A line being written: read it again once it is complete.
            let back = n as i64;
            reader.seek(std::io::SeekFrom::Current(-back)).await?;
            break;
        }
        if let Some(entry) = parse_line(&line) {
            backlog.push_back(entry);
            if tail.is_some_and(|t| backlog.len() as u64 > t) {
                backlog.pop_front();
            }
        }
        if tail.is_none() {
            for entry in backlog.drain(..) {
                if !send(&mut renderer, &entry, tx).await {
                    return Ok(());
                }
            }
        }
    }
    for entry in backlog.drain(..) {
        if !send(&mut renderer, &entry, tx).await {
            return Ok(());
        }
    }
    if !follow {
        return Ok(());
    }
    let mut since_check = std::time::Instant::now();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).await?;
        if n > 0 && line.ends_with('\n') {
            if let Some(entry) = parse_line(&line)
                && !send(&mut renderer, &entry, tx).await
            {
                return Ok(());
            }
            continue;
        }
        if n > 0 {
            // A partial line: read it again whole once its end is written.
            reader.seek(std::io::SeekFrom::Current(-(n as i64))).await?;
        }
        if tx.is_closed() {
            return Ok(());
        }
        if since_check.elapsed() >= Duration::from_secs(1) {
            if !alive().await {
                return Ok(());
            }
            since_check = std::time::Instant::now();
        }
        tokio::time::sleep(FOLLOW_POLL).await;
    }
}

/// Sends one entry; false when the stream is over (client gone or limit reached).
async fn send(
    renderer: &mut Renderer,
    entry: &Entry,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> bool {
    match renderer.render(entry) {
        None => false,
        Some(None) => true,
        Some(Some(bytes)) => tx.send(Ok(bytes)).await.is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    async fn read_all(path: PathBuf, opts: LogOptions) -> String {
        let chunks: Vec<_> = stream(path, opts, || async { true }).collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    const FILE: &str = "2016-10-06T00:00:00Z stdout F one\n\
2016-10-06T00:00:01.5Z stderr F two\n\
not a log line\n\
2016-10-06T00:00:02Z stdout P thr\n\
2016-10-06T00:00:02Z stdout F ee\n\
{\"log\":\"four\\n\",\"stream\":\"stdout\",\"time\":\"2016-10-06T00:00:03Z\"}\n";

    #[tokio::test]
    async fn entries_tail_since_timestamps_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, FILE).unwrap();
        assert_eq!(
            read_all(path.clone(), LogOptions::default()).await,
            "one\ntwo\nthree\nfour\n"
        );
        let opts = LogOptions::from_query(&query(&[("tailLines", "2")])).unwrap();
        assert_eq!(read_all(path.clone(), opts).await, "ee\nfour\n");
        let opts =
            LogOptions::from_query(&query(&[("sinceTime", "2016-10-06T00:00:01Z")])).unwrap();
        assert_eq!(read_all(path.clone(), opts).await, "two\nthree\nfour\n");
        let opts =
            LogOptions::from_query(&query(&[("timestamps", "true"), ("tail", "1")])).unwrap();
        assert_eq!(
            read_all(path.clone(), opts).await,
            "2016-10-06T00:00:03.000000000Z four\n"
        );
        let opts = LogOptions::from_query(&query(&[("limitBytes", "6")])).unwrap();
        assert_eq!(read_all(path.clone(), opts).await, "one\ntw");
        assert!(LogOptions::from_query(&query(&[("tailLines", "x")])).is_err());
    }

    #[tokio::test]
    async fn following_sees_appended_lines_and_ends_when_the_container_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        std::fs::write(&path, "2016-10-06T00:00:00Z stdout F first\n").unwrap();
        let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let flag = alive.clone();
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut s = Box::pin(stream(path.clone(), opts, move || {
            let flag = flag.clone();
            async move { flag.load(std::sync::atomic::Ordering::Relaxed) }
        }));
        let first = s.next().await.unwrap().unwrap();
        assert_eq!(first, "first\n");
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"2016-10-06T00:00:01Z stdout F sec").unwrap();
        f.flush().unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        f.write_all(b"ond\n").unwrap();
        let second = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(second, "second\n");
        alive.store(false, std::sync::atomic::Ordering::Relaxed);
        let end = tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap();
        assert!(end.is_none(), "the stream ends with the container");
    }
}
