//! Write-ahead log segments, snapshots, group commit and recovery.
//!
//! Layout of a data directory:
//! * `snapshot`: every live key at one revision (written to `snapshot.tmp`, synced, renamed).
//! * `wal-<first revision, 20 digits>.log`: the writes after that, in revision order.
//!
//! Every record is framed as `len: u32 LE | crc32(payload): u32 LE | payload`. A torn or corrupt
//! record at the end of the newest segment is a write that was never acknowledged; recovery cuts
//! it off. Corruption anywhere else is reported, never skipped silently.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, Revision};

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
const SNAPSHOT_MAGIC: &[u8; 8] = b"KWOKSNP1";
const SNAPSHOT_NAME: &str = "snapshot";

/// Appends one record's frame for `event` to `out`.
pub(crate) fn encode_event(out: &mut Vec<u8>, event: &Event) {
    let op = match event.kind {
        EventKind::Put => OP_PUT,
        EventKind::Delete => OP_DELETE,
    };
    encode_record(out, op, &event.kv);
}

fn encode_record(out: &mut Vec<u8>, op: u8, kv: &KeyValue) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    out.push(op);
    out.extend_from_slice(&kv.mod_revision.to_le_bytes());
    out.extend_from_slice(&kv.create_revision.to_le_bytes());
    out.extend_from_slice(&(kv.key.len() as u32).to_le_bytes());
    out.extend_from_slice(kv.key.as_bytes());
    out.extend_from_slice(&(kv.value.len() as u32).to_le_bytes());
    out.extend_from_slice(&kv.value);
    let payload_len = out.len() - start - 8;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&(payload_len as u32).to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

struct Record {
    op: u8,
    kv: KeyValue,
}

enum ReadOutcome {
    Record(Record),
    End,
    /// A torn or corrupt record starting at this offset.
    Corrupt,
}

fn read_exact_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn read_record(r: &mut impl Read) -> io::Result<(ReadOutcome, u64)> {
    let mut header = [0u8; 8];
    let mut first = [0u8; 1];
    if !read_exact_or_eof(r, &mut first)? {
        return Ok((ReadOutcome::End, 0));
    }
    header[0] = first[0];
    if !read_exact_or_eof(r, &mut header[1..])? {
        return Ok((ReadOutcome::Corrupt, 0));
    }
    let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    if len > 1 << 30 {
        return Ok((ReadOutcome::Corrupt, 0));
    }
    let mut payload = vec![0u8; len];
    if !read_exact_or_eof(r, &mut payload)? || crc32fast::hash(&payload) != crc {
        return Ok((ReadOutcome::Corrupt, 0));
    }
    match parse_payload(payload) {
        Some(rec) => Ok((ReadOutcome::Record(rec), 8 + len as u64)),
        None => Ok((ReadOutcome::Corrupt, 0)),
    }
}

fn parse_payload(payload: Vec<u8>) -> Option<Record> {
    let mut p = 0usize;
    let take = |p: &mut usize, n: usize| -> Option<std::ops::Range<usize>> {
        let r = *p..p.checked_add(n)?;
        if r.end > payload.len() {
            return None;
        }
        *p = r.end;
        Some(r)
    };
    let op = payload[take(&mut p, 1)?][0];
    let mod_revision = i64::from_le_bytes(payload[take(&mut p, 8)?].try_into().ok()?);
    let create_revision = i64::from_le_bytes(payload[take(&mut p, 8)?].try_into().ok()?);
    let key_len = u32::from_le_bytes(payload[take(&mut p, 4)?].try_into().ok()?) as usize;
    let key_range = take(&mut p, key_len)?;
    let key: Arc<str> = Arc::from(std::str::from_utf8(&payload[key_range]).ok()?);
    let value_len = u32::from_le_bytes(payload[take(&mut p, 4)?].try_into().ok()?) as usize;
    let value_range = take(&mut p, value_len)?;
    if p != payload.len() || !(op == OP_PUT || op == OP_DELETE) {
        return None;
    }
    let value = Bytes::from(payload).slice(value_range);
    Some(Record {
        op,
        kv: KeyValue {
            key,
            value,
            create_revision,
            mod_revision,
        },
    })
}

fn segment_name(first_revision: Revision) -> String {
    format!("wal-{first_revision:020}.log")
}

fn list_segments(dir: &Path) -> io::Result<Vec<(Revision, PathBuf)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(rev) = name
            .strip_prefix("wal-")
            .and_then(|s| s.strip_suffix(".log"))
            .and_then(|s| s.parse::<Revision>().ok())
        {
            out.push((rev, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// What recovery found in a data directory.
pub(crate) struct Recovered {
    /// Live keys at `revision`.
    pub data: Vec<KeyValue>,
    /// Revision of the snapshot (the oldest revision history can start from).
    pub snapshot_revision: Revision,
    /// The writes replayed from the log after the snapshot, in order.
    pub events: Vec<Event>,
    pub revision: Revision,
    pub log_bytes: u64,
    pub snapshot_bytes: u64,
}

/// Reads the snapshot and log segments of `dir`, cutting off a torn tail of the newest segment.
pub(crate) fn recover(dir: &Path) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    let _ = fs::remove_file(dir.join("snapshot.tmp"));
    let mut data: std::collections::BTreeMap<Arc<str>, KeyValue> = Default::default();
    let mut snapshot_revision = 0;
    let mut snapshot_bytes = 0;
    let snapshot_path = dir.join(SNAPSHOT_NAME);
    if snapshot_path.exists() {
        let file = File::open(&snapshot_path)?;
        snapshot_bytes = file.metadata()?.len();
        let mut r = BufReader::with_capacity(1 << 20, file);
        let mut magic = [0u8; 8];
        let mut rev = [0u8; 8];
        if !read_exact_or_eof(&mut r, &mut magic)?
            || &magic != SNAPSHOT_MAGIC
            || !read_exact_or_eof(&mut r, &mut rev)?
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a snapshot", snapshot_path.display()),
            ));
        }
        snapshot_revision = i64::from_le_bytes(rev);
        loop {
            match read_record(&mut r)?.0 {
                ReadOutcome::Record(rec) => {
                    data.insert(rec.kv.key.clone(), rec.kv);
                }
                ReadOutcome::End => break,
                ReadOutcome::Corrupt => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is corrupt", snapshot_path.display()),
                    ));
                }
            }
        }
    }
    // An empty store is at revision 1, like etcd; the first write is revision 2.
    let mut revision = snapshot_revision.max(1);
    let mut events = Vec::new();
    let mut log_bytes = 0;
    let segments = list_segments(dir)?;
    let last = segments.len().saturating_sub(1);
    for (i, (_, path)) in segments.iter().enumerate() {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let mut r = BufReader::with_capacity(1 << 20, &file);
        let mut offset = 0u64;
        loop {
            let (outcome, len) = read_record(&mut r)?;
            match outcome {
                ReadOutcome::End => break,
                ReadOutcome::Corrupt if i == last => {
                    tracing::warn!(
                        path = %path.display(),
                        offset,
                        "cutting off an incomplete write at the end of the log"
                    );
                    file.set_len(offset)?;
                    file.sync_all()?;
                    break;
                }
                ReadOutcome::Corrupt => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is corrupt at offset {offset}", path.display()),
                    ));
                }
                ReadOutcome::Record(rec) => {
                    offset += len;
                    if rec.kv.mod_revision <= revision {
                        continue;
                    }
                    if rec.kv.mod_revision != revision + 1 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!(
                                "{}: revision {} follows {revision}",
                                path.display(),
                                rec.kv.mod_revision
                            ),
                        ));
                    }
                    revision = rec.kv.mod_revision;
                    let event = if rec.op == OP_PUT {
                        let prev = data.insert(rec.kv.key.clone(), rec.kv.clone());
                        Event {
                            kind: EventKind::Put,
                            kv: rec.kv,
                            prev,
                            memo: None,
                        }
                    } else {
                        let prev = data.remove(&rec.kv.key);
                        let mut kv = rec.kv;
                        if kv.value.is_empty()
                            && let Some(p) = &prev
                        {
                            kv.value = p.value.clone();
                        }
                        Event {
                            kind: EventKind::Delete,
                            kv,
                            prev,
                            memo: None,
                        }
                    };
                    events.push(event);
                }
            }
        }
        log_bytes += offset;
    }
    Ok(Recovered {
        data: data.into_values().collect(),
        snapshot_revision,
        events,
        revision,
        log_bytes,
        snapshot_bytes,
    })
}

/// Writes a snapshot of `data` at `revision` and removes the segments it covers.
pub(crate) fn write_snapshot(dir: &Path, revision: Revision, data: &[KeyValue]) -> io::Result<u64> {
    let tmp = dir.join("snapshot.tmp");
    let file = File::create(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(SNAPSHOT_MAGIC)?;
    w.write_all(&revision.to_le_bytes())?;
    let mut buf = Vec::with_capacity(4096);
    for kv in data {
        buf.clear();
        encode_record(&mut buf, OP_PUT, kv);
        w.write_all(&buf)?;
    }
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    drop(file);
    fs::rename(&tmp, dir.join(SNAPSHOT_NAME))?;
    sync_dir(dir)?;
    for (first, path) in list_segments(dir)? {
        if first <= revision {
            // A segment starting at or before the snapshot may still hold later writes only if
            // it is the active one; the caller rotated before snapshotting, so it is not.
            fs::remove_file(path)?;
        }
    }
    Ok(size)
}

enum Chunk {
    Data(Vec<u8>),
    /// Close the current segment and continue in a new one starting at this revision.
    Rotate(Revision),
}

struct Pending {
    chunks: VecDeque<Chunk>,
    /// Whether the syncer sleeps on the condition variable (only then does it need a wake-up).
    idle: bool,
    /// Sequence number of the last appended record.
    appended: u64,
    closing: bool,
}

/// The durable side of the store: a background thread that writes and syncs what writers append.
pub(crate) struct Log {
    pending: Arc<(Mutex<Pending>, Condvar)>,
    synced: Arc<Synced>,
    thread: Mutex<Option<JoinHandle<()>>>,
    fsync: bool,
}

type Waiter = tokio::sync::oneshot::Sender<Result<(), Arc<io::Error>>>;

/// How far the log is durable, and the writers waiting for more. Each writer is woken exactly
/// once, when its own record is synced.
#[derive(Default)]
pub(crate) struct Synced {
    state: Mutex<SyncedState>,
}

#[derive(Default)]
struct SyncedState {
    seq: u64,
    error: Option<Arc<io::Error>>,
    waiters: Vec<(u64, Waiter)>,
}

impl Synced {
    fn advance(&self, seq: u64, error: Option<Arc<io::Error>>) {
        let mut st = self.state.lock().unwrap();
        if error.is_none() {
            st.seq = seq;
        }
        st.error = error;
        let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut st.waiters)
            .into_iter()
            .partition(|(s, _)| *s <= st.seq || st.error.is_some());
        st.waiters = waiting;
        let outcome = match &st.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        drop(st);
        for (s, tx) in done {
            let _ = tx.send(if s <= seq { Ok(()) } else { outcome.clone() });
        }
    }
}

impl Log {
    /// Starts a log whose next segment begins at `first_revision`.
    pub fn start(dir: &Path, first_revision: Revision, fsync: bool) -> io::Result<Self> {
        let pending = Arc::new((
            Mutex::new(Pending {
                chunks: VecDeque::new(),
                idle: false,
                appended: 0,
                closing: false,
            }),
            Condvar::new(),
        ));
        let synced = Arc::new(Synced::default());
        let file = open_segment(dir, first_revision)?;
        let thread_pending = pending.clone();
        let thread_synced = synced.clone();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("store-wal".into())
            .spawn(move || run_syncer(dir, file, thread_pending, thread_synced, fsync))?;
        Ok(Self {
            pending,
            synced,
            thread: Mutex::new(Some(thread)),
            fsync,
        })
    }

    /// Queues a record; returns its sequence number for [`Log::wait`].
    pub fn append(&self, event: &Event) -> u64 {
        let (lock, cond) = &*self.pending;
        let mut p = lock.lock().unwrap();
        match p.chunks.back_mut() {
            Some(Chunk::Data(buf)) => encode_event(buf, event),
            _ => {
                let mut buf = Vec::with_capacity(64 * 1024);
                encode_event(&mut buf, event);
                p.chunks.push_back(Chunk::Data(buf));
            }
        }
        p.appended += 1;
        let seq = p.appended;
        if p.idle {
            cond.notify_one();
        }
        seq
    }

    /// Queues a switch to a new segment starting at `first_revision`.
    pub fn rotate(&self, first_revision: Revision) {
        let (lock, cond) = &*self.pending;
        let mut p = lock.lock().unwrap();
        p.chunks.push_back(Chunk::Rotate(first_revision));
        cond.notify_one();
    }

    /// Waits until record `seq` is durable (or written, without fsync).
    pub async fn wait(&self, seq: u64) -> Result<(), Arc<io::Error>> {
        if !self.fsync {
            return Ok(());
        }
        let rx = {
            let mut st = self.synced.state.lock().unwrap();
            if st.seq >= seq {
                return Ok(());
            }
            if let Some(e) = &st.error {
                return Err(e.clone());
            }
            let (tx, rx) = tokio::sync::oneshot::channel();
            st.waiters.push((seq, tx));
            rx
        };
        rx.await
            .unwrap_or_else(|_| Err(Arc::new(io::Error::other("write-ahead log stopped"))))
    }

    /// Flushes everything queued and stops the background thread.
    pub fn close(&self) {
        {
            let (lock, cond) = &*self.pending;
            lock.lock().unwrap().closing = true;
            cond.notify_one();
        }
        if let Some(thread) = self.thread.lock().unwrap().take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.close();
    }
}

fn open_segment(dir: &Path, first_revision: Revision) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(segment_name(first_revision)))?;
    sync_dir(dir)?;
    Ok(file)
}

fn run_syncer(
    dir: PathBuf,
    mut file: File,
    pending: Arc<(Mutex<Pending>, Condvar)>,
    synced: Arc<Synced>,
    fsync: bool,
) {
    let (lock, cond) = &*pending;
    let mut failed: Option<Arc<io::Error>> = None;
    loop {
        let (chunks, appended, closing) = {
            let mut p = lock.lock().unwrap();
            while p.chunks.is_empty() && !p.closing {
                p.idle = true;
                p = cond.wait(p).unwrap();
                p.idle = false;
            }
            (std::mem::take(&mut p.chunks), p.appended, p.closing)
        };
        if failed.is_none() {
            let result = (|| -> io::Result<()> {
                for chunk in chunks {
                    match chunk {
                        Chunk::Data(buf) => file.write_all(&buf)?,
                        Chunk::Rotate(first) => {
                            file.sync_data()?;
                            file = open_segment(&dir, first)?;
                        }
                    }
                }
                if fsync {
                    file.sync_data()?;
                }
                Ok(())
            })();
            if let Err(err) = result {
                tracing::error!(error = %err, "write-ahead log failed; further writes are refused");
                failed = Some(Arc::new(err));
            }
        }
        synced.advance(appended, failed.clone());
        if closing {
            let p = lock.lock().unwrap();
            if p.chunks.is_empty() {
                let _ = file.sync_data();
                return;
            }
        }
    }
}
