//! Write-ahead log segments, snapshots, group commit and recovery.
//!
//! Layout of a data directory:
//! * `snapshot`: every live key at one revision (written to `snapshot.tmp`, synced, renamed).
//! * `wal-<first revision, 20 digits>.log`: the writes after that, in revision order.
//! * `repair-<UTC time>/`: copies of the files above, made by a repair before it cut the log.
//!
//! Every record is framed as `len: u32 LE | crc32(payload): u32 LE | payload`. A snapshot starts
//! with a magic, its revision and its record count, then holds one record per key.
//!
//! Only an incomplete final record (a write that was never acknowledged) is cut off silently: a
//! damaged record in the newest segment counts as that only if no valid record follows it.
//! Any other damage, a gap between the snapshot and the segments, and a damaged or truncated
//! snapshot stop recovery with an error naming the file and byte offset. With `repair`, a
//! damaged log is copied aside and cut at the first bad record instead.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Event, EventKind, KeyValue, Revision};

const OP_PUT: u8 = 1;
const OP_DELETE: u8 = 2;
/// Snapshots written before the record count was added to the header.
const SNAPSHOT_MAGIC_V1: &[u8; 8] = b"KWOKSNP1";
/// `magic | revision: i64 LE | record count: u64 LE | records`.
const SNAPSHOT_MAGIC: &[u8; 8] = b"KWOKSNP2";
const SNAPSHOT_NAME: &str = "snapshot";
/// The smallest payload: op, two revisions, two lengths.
const MIN_PAYLOAD: usize = 1 + 8 + 8 + 4 + 4;
/// The smallest frame: header and the smallest payload.
const MIN_FRAME: usize = 8 + MIN_PAYLOAD;
/// Longer length fields are damage, not records.
const MAX_PAYLOAD: usize = 1 << 30;
/// The flag that repairs a damaged log, named in error messages.
const REPAIR_FLAG: &str = "--repair-wal";

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

/// Why the record at some offset could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// The file ends inside the frame header.
    ShortHeader {
        available: usize,
    },
    /// The length field cannot be a record's.
    BadLength(usize),
    /// The file ends inside the payload.
    ShortPayload {
        len: usize,
        available: usize,
    },
    Checksum,
    /// The checksum matches but the payload is not a record.
    Unparsable,
}

impl Damage {
    /// Whether the file simply ends inside the record.
    fn is_cut_short(self) -> bool {
        matches!(
            self,
            Damage::ShortHeader { .. } | Damage::ShortPayload { .. }
        )
    }
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::ShortHeader { available } => write!(
                f,
                "the file ends {available} bytes into the 8-byte record header"
            ),
            Damage::BadLength(len) => write!(f, "the record length {len} is impossible"),
            Damage::ShortPayload { len, available } => write!(
                f,
                "the file ends {available} bytes into a record of {len} bytes"
            ),
            Damage::Checksum => write!(f, "the record's checksum does not match"),
            Damage::Unparsable => write!(f, "the record's payload is not a valid record"),
        }
    }
}

enum ReadOutcome {
    /// A record and the length of its frame.
    Record(Record, u64),
    End,
    Damaged(Damage),
}

/// Fills `buf` as far as the reader goes; returns how many bytes were read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn read_record(r: &mut impl Read) -> io::Result<ReadOutcome> {
    let mut header = [0u8; 8];
    match read_up_to(r, &mut header)? {
        0 => return Ok(ReadOutcome::End),
        8 => {}
        available => return Ok(ReadOutcome::Damaged(Damage::ShortHeader { available })),
    }
    let len = u32::from_le_bytes(header[0..4].try_into().unwrap()) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().unwrap());
    if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) {
        return Ok(ReadOutcome::Damaged(Damage::BadLength(len)));
    }
    // Read what is there rather than trusting the length field with an allocation: a damaged
    // length in a short file would otherwise reserve up to MAX_PAYLOAD bytes.
    let mut payload = Vec::with_capacity(len.min(1 << 20));
    r.by_ref().take(len as u64).read_to_end(&mut payload)?;
    let available = payload.len();
    if available < len {
        return Ok(ReadOutcome::Damaged(Damage::ShortPayload {
            len,
            available,
        }));
    }
    if crc32fast::hash(&payload) != crc {
        return Ok(ReadOutcome::Damaged(Damage::Checksum));
    }
    match parse_payload(payload) {
        Some(rec) => Ok(ReadOutcome::Record(rec, 8 + len as u64)),
        None => Ok(ReadOutcome::Damaged(Damage::Unparsable)),
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

/// The first complete, valid record in `tail` at or after byte 1, as `(offset, revision)`.
///
/// `tail` starts at a damaged record that follows a record of revision `last`. A frame only
/// counts if its length fits, its payload parses, its checksum matches and its revision is one
/// the log could hold there: above `last`, and at most one more than the number of records
/// that fit between the damaged record and it.
fn find_valid_record(tail: &[u8], last: Revision) -> Option<(usize, Revision)> {
    let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let i64_at = |b: &[u8], at: usize| i64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    for start in 1..tail.len() {
        if tail.len() - start < MIN_FRAME {
            break;
        }
        let len = u32_at(tail, start) as usize;
        if !(MIN_PAYLOAD..=MAX_PAYLOAD).contains(&len) || tail.len() - start - 8 < len {
            continue;
        }
        let payload = &tail[start + 8..start + 8 + len];
        if payload[0] != OP_PUT && payload[0] != OP_DELETE {
            continue;
        }
        let revision = i64_at(payload, 1);
        let highest = last.saturating_add(1 + (start / MIN_FRAME) as i64);
        if revision <= last || revision > highest {
            continue;
        }
        let created = i64_at(payload, 9);
        if created < 1 || created > revision {
            continue;
        }
        let key_len = u32_at(payload, 17) as usize;
        if key_len > len - MIN_PAYLOAD {
            continue;
        }
        let value_len = u32_at(payload, 21 + key_len) as usize;
        if MIN_PAYLOAD + key_len + value_len != len
            || crc32fast::hash(payload) != u32_at(tail, start + 4)
            || parse_payload(payload.to_vec()).is_none()
        {
            continue;
        }
        return Some((start, revision));
    }
    None
}

/// The bytes of `path` from `offset` on.
fn read_from(path: &Path, offset: u64) -> io::Result<Vec<u8>> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut out = Vec::new();
    file.read_to_end(&mut out)?;
    Ok(out)
}

/// How many records can be read one after the other from `offset` of `path`.
fn count_records(path: &Path, offset: u64) -> io::Result<u64> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut count = 0;
    while let ReadOutcome::Record(..) = read_record(&mut r)? {
        count += 1;
    }
    Ok(count)
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

/// `err` with `path` in front, for I/O errors that would not name the file.
fn with_path(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
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

/// The state rebuilt so far.
struct Replay {
    data: BTreeMap<Arc<str>, KeyValue>,
    events: Vec<Event>,
    revision: Revision,
}

impl Replay {
    /// Applies the record of revision `self.revision + 1`.
    fn apply(&mut self, rec: Record) {
        self.revision = rec.kv.mod_revision;
        let event = if rec.op == OP_PUT {
            let prev = self.data.insert(rec.kv.key.clone(), rec.kv.clone());
            Event {
                kind: EventKind::Put,
                kv: rec.kv,
                prev,
                memo: None,
            }
        } else {
            let prev = self.data.remove(&rec.kv.key);
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
        self.events.push(event);
    }
}

fn snapshot_error(path: &Path, problem: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "snapshot {} {problem}. {REPAIR_FLAG} does not repair a snapshot: restore the data \
             directory from a backup, or move it away to start with an empty store",
            path.display()
        ),
    )
}

/// Loads the snapshot at `path` into `data`; returns its revision.
fn read_snapshot(path: &Path, data: &mut BTreeMap<Arc<str>, KeyValue>) -> io::Result<Revision> {
    let file = File::open(path).map_err(|e| with_path(path, e))?;
    let size = file.metadata().map_err(|e| with_path(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; 24];
    let available = read_up_to(&mut r, &mut header[..8])?;
    let count = match &header[..8] {
        _ if available < 8 => None,
        magic if magic == SNAPSHOT_MAGIC => Some(()),
        magic if magic == SNAPSHOT_MAGIC_V1 => None,
        _ => {
            return Err(snapshot_error(
                path,
                "is not a snapshot of this store (it does not start with KWOKSNP2 or KWOKSNP1)"
                    .into(),
            ));
        }
    };
    let header_len = if count.is_some() { 24 } else { 16 };
    let available = available + read_up_to(&mut r, &mut header[8..header_len])?;
    if available < header_len {
        return Err(snapshot_error(
            path,
            format!(
                "is truncated: it has {size} bytes, its header alone takes {header_len} \
                 (magic, revision{})",
                if count.is_some() {
                    ", record count"
                } else {
                    ""
                }
            ),
        ));
    }
    let revision = i64::from_le_bytes(header[8..16].try_into().unwrap());
    let count = count.map(|()| u64::from_le_bytes(header[16..24].try_into().unwrap()));
    let mut offset = header_len as u64;
    let mut records = 0u64;
    loop {
        if count == Some(records) {
            if read_up_to(&mut r, &mut [0u8; 1]).map_err(|e| with_path(path, e))? > 0 {
                return Err(snapshot_error(
                    path,
                    format!(
                        "is corrupt: unexpected data at byte offset {offset} after all of its \
                         {records} records"
                    ),
                ));
            }
            break;
        }
        match read_record(&mut r).map_err(|e| with_path(path, e))? {
            ReadOutcome::Record(rec, len) => {
                data.insert(rec.kv.key.clone(), rec.kv);
                offset += len;
                records += 1;
            }
            ReadOutcome::End => {
                if let Some(count) = count {
                    return Err(snapshot_error(
                        path,
                        format!(
                            "is truncated: it ends at byte offset {offset} after {records} of \
                             its {count} records"
                        ),
                    ));
                }
                break;
            }
            ReadOutcome::Damaged(damage) => {
                let what = if damage.is_cut_short() {
                    "truncated"
                } else {
                    "corrupt"
                };
                let expected = match count {
                    Some(count) => format!(" (record {} of {count})", records + 1),
                    None => String::new(),
                };
                return Err(snapshot_error(
                    path,
                    format!("is {what} at byte offset {offset}{expected}: {damage}"),
                ));
            }
        }
    }
    Ok(revision)
}

/// The first place in the log that recovery cannot replay.
struct Problem {
    /// Index of the segment in the sorted list.
    segment: usize,
    /// Byte offset in that segment where the log is cut by a repair.
    offset: u64,
    kind: ProblemKind,
}

enum ProblemKind {
    /// The record at `offset` is damaged; `next_valid` is the first valid record after it in
    /// the same segment, as `(offset, revision)`.
    Damaged {
        damage: Damage,
        next_valid: Option<(u64, Revision)>,
    },
    /// The record at `offset` is intact but does not carry the next revision.
    OutOfOrder { found: Revision },
    /// The segment starts after a gap: the revisions from the last good one up to its first are
    /// in no file. `before` says what ends at the last good revision.
    Missing { first: Revision, before: String },
}

impl Problem {
    fn error(&self, dir: &Path, segments: &[(Revision, PathBuf)], last: Revision) -> io::Error {
        let path = segments[self.segment].1.display();
        let offset = self.offset;
        let later = segments.len() - self.segment - 1;
        let mut msg = match &self.kind {
            ProblemKind::Missing { first, before } => format!(
                "write-ahead log segment missing in {}: {before} ends at revision {last}, but \
                 the next segment {path} starts at revision {first}, so revisions {}..={} are \
                 in no file",
                dir.display(),
                last + 1,
                first - 1
            ),
            ProblemKind::Damaged { damage, next_valid } => {
                let mut msg =
                    format!("write-ahead log {path} is corrupt at byte offset {offset}: {damage}");
                if let Some((at, revision)) = next_valid {
                    msg.push_str(&format!(
                        "; a valid record (revision {revision}) follows at byte offset {at}, so \
                         this is damage, not an interrupted write"
                    ));
                }
                msg
            }
            ProblemKind::OutOfOrder { found } => format!(
                "write-ahead log {path} is corrupt at byte offset {offset}: the record there \
                 has revision {found} where {} was expected",
                last + 1
            ),
        };
        if later > 0 {
            msg.push_str(&format!(
                "; {later} newer segment{} follow{} it",
                if later == 1 { "" } else { "s" },
                if later == 1 { "s" } else { "" }
            ));
        }
        let cut = if matches!(self.kind, ProblemKind::Missing { .. }) {
            format!("drops {path}")
        } else {
            format!("cuts {path} at byte offset {offset}")
        };
        msg.push_str(&format!(
            ". The last good revision is {last}. Refusing to start rather than drop acknowledged \
             writes. To start with the writes up to revision {last}, start once with \
             {REPAIR_FLAG}: it copies the snapshot and log files to {}/repair-<UTC time>/, then \
             {cut}{}",
            dir.display(),
            if later > 0 {
                " and removes the newer segments"
            } else {
                ""
            }
        ));
        io::Error::new(io::ErrorKind::InvalidData, msg)
    }
}

/// How reading one segment ended.
enum SegmentEnd {
    /// Every record was read; the segment's length.
    Clean(u64),
    /// An incomplete final record starts at `offset` of a segment `len` bytes long.
    Torn {
        offset: u64,
        len: u64,
    },
    Problem(u64, ProblemKind),
}

/// Replays the segment at `path` (named after revision `first`). In the newest segment a damaged
/// record followed by no valid record is an incomplete final write.
fn replay_segment(
    path: &Path,
    first: Revision,
    newest: bool,
    replay: &mut Replay,
) -> io::Result<SegmentEnd> {
    let file = File::open(path).map_err(|e| with_path(path, e))?;
    let len = file.metadata().map_err(|e| with_path(path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut offset = 0u64;
    // The revision of the last record read from this segment.
    let mut last_read = first - 1;
    loop {
        match read_record(&mut r).map_err(|e| with_path(path, e))? {
            ReadOutcome::End => return Ok(SegmentEnd::Clean(offset)),
            ReadOutcome::Record(rec, frame) => {
                let revision = rec.kv.mod_revision;
                if revision > replay.revision {
                    if revision != replay.revision + 1 {
                        return Ok(SegmentEnd::Problem(
                            offset,
                            ProblemKind::OutOfOrder { found: revision },
                        ));
                    }
                    replay.apply(rec);
                }
                last_read = revision;
                offset += frame;
            }
            ReadOutcome::Damaged(damage) => {
                let tail = read_from(path, offset).map_err(|e| with_path(path, e))?;
                let next_valid = find_valid_record(&tail, last_read)
                    .map(|(at, revision)| (offset + at as u64, revision));
                if newest && next_valid.is_none() {
                    return Ok(SegmentEnd::Torn { offset, len });
                }
                return Ok(SegmentEnd::Problem(
                    offset,
                    ProblemKind::Damaged { damage, next_valid },
                ));
            }
        }
    }
}

/// Reads the snapshot and log segments of `dir`, cutting off an incomplete final record of the
/// newest segment. Any other damage is an error, unless `repair` is set: then the snapshot and
/// segments are copied to `repair-<UTC time>/` and the log is cut at the first bad record.
pub(crate) fn recover(dir: &Path, repair: bool) -> io::Result<Recovered> {
    fs::create_dir_all(dir)?;
    let _ = fs::remove_file(dir.join("snapshot.tmp"));
    let mut replay = Replay {
        data: BTreeMap::new(),
        events: Vec::new(),
        revision: 0,
    };
    let mut snapshot_revision = 0;
    let mut snapshot_bytes = 0;
    let snapshot_path = dir.join(SNAPSHOT_NAME);
    if snapshot_path.exists() {
        snapshot_bytes = fs::metadata(&snapshot_path)?.len();
        snapshot_revision = read_snapshot(&snapshot_path, &mut replay.data)?;
    }
    // An empty store is at revision 1, like etcd; the first write is revision 2.
    replay.revision = snapshot_revision.max(1);
    let segments = list_segments(dir)?;
    // A segment followed by one that starts at or before the revision after the snapshot holds
    // nothing newer than the snapshot: it was left behind by an interrupted cleanup.
    let first_needed = segments
        .iter()
        .rposition(|(first, _)| *first <= replay.revision + 1)
        .unwrap_or(0);
    let mut before = if snapshot_path.exists() {
        format!("the snapshot (revision {snapshot_revision})")
    } else {
        "the store (there is no snapshot)".to_string()
    };
    let mut log_bytes = 0;
    let mut problem = None;
    for (i, (first, path)) in segments.iter().enumerate().skip(first_needed) {
        if *first > replay.revision + 1 {
            problem = Some(Problem {
                segment: i,
                offset: 0,
                kind: ProblemKind::Missing {
                    first: *first,
                    before,
                },
            });
            break;
        }
        match replay_segment(path, *first, i + 1 == segments.len(), &mut replay)? {
            SegmentEnd::Clean(len) => log_bytes += len,
            SegmentEnd::Torn { offset, len } => {
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    bytes = len - offset,
                    revision = replay.revision,
                    "cutting off an incomplete write at the end of the log"
                );
                let file = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| with_path(path, e))?;
                file.set_len(offset)?;
                file.sync_all()?;
                log_bytes += offset;
            }
            SegmentEnd::Problem(offset, kind) => {
                problem = Some(Problem {
                    segment: i,
                    offset,
                    kind,
                });
                break;
            }
        }
        before = format!("segment {}", path.display());
    }
    if let Some(problem) = problem {
        if !repair {
            return Err(problem.error(dir, &segments, replay.revision));
        }
        log_bytes += problem.offset;
        repair_log(dir, &segments, &problem, replay.revision)?;
    }
    Ok(Recovered {
        data: replay.data.into_values().collect(),
        snapshot_revision,
        events: replay.events,
        revision: replay.revision,
        log_bytes,
        snapshot_bytes,
    })
}

/// Copies the snapshot and every segment of `dir` into a new `repair-<UTC time>` folder in it.
fn copy_for_investigation(dir: &Path, segments: &[(Revision, PathBuf)]) -> io::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let mut copy = dir.join(format!("repair-{stamp}"));
    let mut n = 1;
    loop {
        match fs::create_dir(&copy) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                n += 1;
                copy = dir.join(format!("repair-{stamp}-{n}"));
            }
            Err(e) => return Err(with_path(&copy, e)),
        }
    }
    let snapshot = dir.join(SNAPSHOT_NAME);
    let files = snapshot
        .exists()
        .then_some(&snapshot)
        .into_iter()
        .chain(segments.iter().map(|(_, path)| path));
    for from in files {
        let to = copy.join(from.file_name().expect("a file in the data directory"));
        fs::copy(from, &to).map_err(|e| with_path(&to, e))?;
        File::open(&to)?.sync_all()?;
    }
    sync_dir(&copy)?;
    sync_dir(dir)?;
    Ok(copy)
}

/// Cuts the log at `problem`: the bad record and everything after it, in its segment and in
/// every later one, go, after a copy of everything is made.
fn repair_log(
    dir: &Path,
    segments: &[(Revision, PathBuf)],
    problem: &Problem,
    last: Revision,
) -> io::Result<()> {
    let copy = copy_for_investigation(dir, segments)?;
    let path = &segments[problem.segment].1;
    let len = fs::metadata(path).map_err(|e| with_path(path, e))?.len();
    let mut bytes = len - problem.offset;
    // Records still readable in what is dropped (the damaged one is not counted).
    let mut records = match problem.kind {
        ProblemKind::Damaged {
            next_valid: Some((at, _)),
            ..
        } => count_records(path, at)?,
        ProblemKind::Damaged { .. } => 0,
        _ => count_records(path, problem.offset)?,
    };
    if problem.offset == 0 {
        fs::remove_file(path).map_err(|e| with_path(path, e))?;
    } else {
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| with_path(path, e))?;
        file.set_len(problem.offset)?;
        file.sync_all()?;
    }
    for (_, later) in &segments[problem.segment + 1..] {
        bytes += fs::metadata(later).map_err(|e| with_path(later, e))?.len();
        records += count_records(later, 0)?;
        fs::remove_file(later).map_err(|e| with_path(later, e))?;
    }
    sync_dir(dir)?;
    tracing::warn!(
        path = %path.display(),
        offset = problem.offset,
        bytes_dropped = bytes,
        readable_records_dropped = records,
        segments_removed = segments.len() - problem.segment - 1,
        revision = last,
        copy = %copy.display(),
        "repaired the write-ahead log: cut it at the first bad record; the files as they were \
         are in the copy"
    );
    Ok(())
}

/// Writes a snapshot of `data` at `revision` and removes the segments it covers.
pub(crate) fn write_snapshot(dir: &Path, revision: Revision, data: &[KeyValue]) -> io::Result<u64> {
    let tmp = dir.join("snapshot.tmp");
    let file = File::create(&tmp)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(SNAPSHOT_MAGIC)?;
    w.write_all(&revision.to_le_bytes())?;
    w.write_all(&(data.len() as u64).to_le_bytes())?;
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

/// How long after a sync woke its writers the next sync may wait for them to append again (see
/// [`Pending::expected`]). It bounds the delay a write can get from waiting for others, and
/// while writers keep coming back it leaves about this long between syncs.
const MAX_LINGER: Duration = Duration::from_millis(1);

struct Pending {
    chunks: VecDeque<Chunk>,
    /// Whether the syncer sleeps on the condition variable with nothing queued (only then does
    /// an append need to wake it).
    idle: bool,
    /// Sequence number of the last appended record.
    appended: u64,
    /// Appends still expected before the next sync: the number of writers the last sync woke,
    /// less one for every append since. Writers that wait for their write and then write
    /// again come back soon after being woken, so the syncer waits for that many appends (until
    /// [`MAX_LINGER`] after the wake-up) and covers them with one sync, instead of syncing the
    /// first few alone while the others are still on their way. A lone writer brings it to
    /// zero with its own append, so its sync starts at once.
    expected: u64,
    /// Whether the syncer waits for `expected` to reach zero (then the append that brings it
    /// there wakes it).
    lingering: bool,
    closing: bool,
}

/// What the log has done since it started, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Records written to the log files.
    pub records: u64,
    /// `fdatasync` calls on log segments (0 without fsync).
    pub syncs: u64,
}

#[derive(Default)]
struct Counters {
    records: AtomicU64,
    syncs: AtomicU64,
}

/// The durable side of the store: a background thread that writes and syncs what writers append.
pub(crate) struct Log {
    pending: Arc<(Mutex<Pending>, Condvar)>,
    synced: Arc<Synced>,
    counters: Arc<Counters>,
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
    /// Marks the log durable up to `seq` (or failed) and wakes the writers waiting for it;
    /// `woken` is told how many before the first is woken.
    fn advance(&self, seq: u64, error: Option<Arc<io::Error>>, woken: impl FnOnce(usize)) {
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
        woken(done.len());
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
                expected: 0,
                lingering: false,
                closing: false,
            }),
            Condvar::new(),
        ));
        let synced = Arc::new(Synced::default());
        let counters = Arc::new(Counters::default());
        let file = open_segment(dir, first_revision)?;
        let thread_pending = pending.clone();
        let thread_synced = synced.clone();
        let thread_counters = counters.clone();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("store-wal".into())
            .spawn(move || {
                run_syncer(
                    dir,
                    file,
                    thread_pending,
                    thread_synced,
                    thread_counters,
                    fsync,
                )
            })?;
        Ok(Self {
            pending,
            synced,
            counters,
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
        p.expected = p.expected.saturating_sub(1);
        let seq = p.appended;
        if p.idle || (p.lingering && p.expected == 0) {
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

    /// Records written and syncs made so far.
    pub fn stats(&self) -> LogStats {
        LogStats {
            records: self.counters.records.load(Ordering::Relaxed),
            syncs: self.counters.syncs.load(Ordering::Relaxed),
        }
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

/// Waits (with `p` released) until the appends [`Pending::expected`] counts have come, the log
/// closes, or `deadline` passes; then forgets the rest of them.
fn wait_for_expected<'a>(
    mut p: MutexGuard<'a, Pending>,
    cond: &Condvar,
    deadline: Instant,
) -> MutexGuard<'a, Pending> {
    p.lingering = true;
    while p.expected > 0 && !p.closing {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        p = cond.wait_timeout(p, deadline - now).unwrap().0;
    }
    p.lingering = false;
    p.expected = 0;
    p
}

fn run_syncer(
    dir: PathBuf,
    mut file: File,
    pending: Arc<(Mutex<Pending>, Condvar)>,
    synced: Arc<Synced>,
    counters: Arc<Counters>,
    fsync: bool,
) {
    let (lock, cond) = &*pending;
    let mut failed: Option<Arc<io::Error>> = None;
    let mut written = 0;
    // When the last sync woke its writers.
    let mut woke_at = Instant::now();
    loop {
        let (chunks, appended, closing) = {
            let mut p = lock.lock().unwrap();
            while p.chunks.is_empty() && !p.closing {
                p.idle = true;
                p = cond.wait(p).unwrap();
                p.idle = false;
            }
            p = wait_for_expected(p, cond, woke_at + MAX_LINGER);
            (std::mem::take(&mut p.chunks), p.appended, p.closing)
        };
        if failed.is_none() {
            let result = (|| -> io::Result<()> {
                for chunk in chunks {
                    match chunk {
                        Chunk::Data(buf) => file.write_all(&buf)?,
                        Chunk::Rotate(first) => {
                            file.sync_data()?;
                            counters.syncs.fetch_add(1, Ordering::Relaxed);
                            file = open_segment(&dir, first)?;
                        }
                    }
                }
                if fsync {
                    file.sync_data()?;
                    counters.syncs.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })();
            match result {
                Ok(()) => {
                    counters
                        .records
                        .fetch_add(appended - written, Ordering::Relaxed);
                    written = appended;
                }
                Err(err) => {
                    tracing::error!(error = %err, "write-ahead log failed; further writes are refused");
                    failed = Some(Arc::new(err));
                }
            }
        }
        synced.advance(appended, failed.clone(), |woken| {
            if fsync && failed.is_none() {
                lock.lock().unwrap().expected = woken as u64;
            }
        });
        woke_at = Instant::now();
        if closing {
            let p = lock.lock().unwrap();
            if p.chunks.is_empty() {
                let _ = file.sync_data();
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
