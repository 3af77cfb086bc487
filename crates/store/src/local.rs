//! The embedded backend: keys in memory, history for watches, a write-ahead log for durability.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::wal::{self, Log, LogStats};
use crate::{
    Encoder, Error, Event, EventKind, KeyFilter, KeyValue, Memo, RangeResult, Result, Revision,
    Store, Watch,
};

/// How writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// A write is acknowledged after its log record is synced to disk (group commit).
    Always,
    /// A write is acknowledged once queued; the log is written without syncing. Fast, and a
    /// crash of the machine (not just the process) can lose recent writes.
    None,
}

/// Settings of a [`LocalStore`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Where the log and snapshots live; `None` keeps everything in memory only.
    pub data_dir: Option<PathBuf>,
    pub sync: SyncMode,
    /// History is kept for at least this long...
    pub history_window: Duration,
    /// ...but never more than this many events...
    pub history_max_events: usize,
    /// ...nor more than this many bytes of values: under a sustained write load the history
    /// would otherwise hold a copy of every object several times over.
    pub history_max_bytes: usize,
    /// Events a watcher may fall behind before it is dropped.
    pub watch_buffer: usize,
    /// Log bytes since the last snapshot that trigger a new snapshot (at least twice the
    /// snapshot's size).
    pub snapshot_after_bytes: u64,
    /// Start even if the log is damaged: copy the snapshot and log files to
    /// `<data_dir>/repair-<UTC time>/`, then cut the log at the first bad record (that record
    /// and every later one are dropped). Without damage this changes nothing. Without it, damage
    /// other than an incomplete final record makes [`LocalStore::open`] fail.
    pub repair_wal: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            data_dir: None,
            sync: SyncMode::Always,
            history_window: Duration::from_secs(300),
            history_max_events: 1_000_000,
            history_max_bytes: 256 << 20,
            watch_buffer: 100_000,
            snapshot_after_bytes: 256 << 20,
            repair_wal: false,
        }
    }
}

struct Watcher {
    filter: KeyFilter,
    tx: mpsc::Sender<Event>,
}

struct State {
    revision: Revision,
    compacted: Revision,
    data: BTreeMap<Arc<str>, KeyValue>,
    history: VecDeque<(Instant, Event)>,
    /// Bytes of the values in `history`.
    history_bytes: usize,
    watchers: Vec<Watcher>,
}

/// The embedded store. See the crate documentation.
pub struct LocalStore {
    state: RwLock<State>,
    log: Option<Log>,
    options: Options,
    revision: AtomicI64,
    compacted: AtomicI64,
    log_bytes: AtomicU64,
    snapshot_bytes: Arc<AtomicU64>,
    snapshotting: Arc<AtomicBool>,
}

impl LocalStore {
    /// Opens (or creates) the store, recovering every acknowledged write from `data_dir`.
    pub fn open(options: Options) -> Result<Arc<Self>> {
        let mut state = State {
            revision: 1,
            compacted: 1,
            data: BTreeMap::new(),
            history: VecDeque::new(),
            history_bytes: 0,
            watchers: Vec::new(),
        };
        let mut log = None;
        let (mut log_bytes, mut snapshot_bytes) = (0, 0);
        if let Some(dir) = &options.data_dir {
            let recovered = wal::recover(dir, options.repair_wal)?;
            // An empty store starts at revision 1, like etcd.
            state.revision = recovered.revision.max(1);
            state.compacted = recovered.snapshot_revision.max(1);
            for kv in recovered.data {
                state.data.insert(kv.key.clone(), kv);
            }
            let now = Instant::now();
            state.history = recovered.events.into_iter().map(|e| (now, e)).collect();
            state.history_bytes = state.history.iter().map(|(_, e)| e.kv.value.len()).sum();
            while state.history_bytes > options.history_max_bytes
                && let Some((_, front)) = state.history.pop_front()
            {
                state.history_bytes -= front.kv.value.len();
                state.compacted = state.compacted.max(front.revision());
            }
            log_bytes = recovered.log_bytes;
            snapshot_bytes = recovered.snapshot_bytes;
            log = Some(Log::start(
                dir,
                state.revision + 1,
                options.sync == SyncMode::Always,
            )?);
            tracing::info!(
                dir = %dir.display(),
                keys = state.data.len(),
                revision = state.revision,
                "store recovered"
            );
        }
        let store = Arc::new(Self {
            revision: AtomicI64::new(state.revision),
            compacted: AtomicI64::new(state.compacted),
            state: RwLock::new(state),
            log,
            options,
            log_bytes: AtomicU64::new(log_bytes),
            snapshot_bytes: Arc::new(AtomicU64::new(snapshot_bytes)),
            snapshotting: Arc::new(AtomicBool::new(false)),
        });
        Ok(store)
    }

    /// An in-memory store with default settings.
    pub fn in_memory() -> Arc<Self> {
        Self::open(Options::default()).expect("an in-memory store cannot fail to open")
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.state.read().unwrap().data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records written to the log and `fdatasync` calls made since the store opened; `None`
    /// for an in-memory store. Records per sync show how well group commit amortises syncs.
    pub fn log_stats(&self) -> Option<LogStats> {
        self.log.as_ref().map(Log::stats)
    }

    /// Flushes the log and stops its thread. Later writes fail.
    pub fn close(&self) {
        if let Some(log) = &self.log {
            log.close();
        }
    }

    /// Applies one write under the state lock: assigns the revision, records history, notifies
    /// watchers and queues the log record. Returns the log sequence to wait for.
    fn commit(&self, st: &mut State, event: Event) -> Option<u64> {
        let rev = event.kv.mod_revision;
        st.revision = rev;
        self.revision.store(rev, Ordering::Release);
        let seq = self.log.as_ref().map(|log| {
            let before = self.log_bytes.load(Ordering::Relaxed);
            self.log_bytes.store(
                before + 16 + event.kv.key.len() as u64 + event.kv.value.len() as u64,
                Ordering::Relaxed,
            );
            log.append(&event)
        });
        if !st.watchers.is_empty() {
            let live = Event {
                memo: Some(Memo::default()),
                ..event.clone()
            };
            st.watchers.retain(|w| {
                if !w.filter.matches(&live.kv.key) {
                    return true;
                }
                // A watcher that cannot keep up is dropped; its stream ends and the client resumes.
                w.tx.try_send(live.clone()).is_ok()
            });
        }
        let now = Instant::now();
        st.history_bytes += event.kv.value.len();
        st.history.push_back((now, event));
        while let Some((at, front)) = st.history.front() {
            let too_many = st.history.len() > self.options.history_max_events
                || st.history_bytes > self.options.history_max_bytes;
            let too_old = now.duration_since(*at) > self.options.history_window;
            if !(too_many || too_old) {
                break;
            }
            st.compacted = front.revision();
            st.history_bytes -= front.kv.value.len();
            st.history.pop_front();
        }
        self.compacted.store(st.compacted, Ordering::Release);
        seq
    }

    async fn durable(&self, seq: Option<u64>) -> Result<()> {
        if let (Some(log), Some(seq)) = (&self.log, seq) {
            log.wait(seq).await.map_err(Error::Io)?;
        }
        self.maybe_snapshot();
        Ok(())
    }

    fn maybe_snapshot(&self) {
        let Some(dir) = &self.options.data_dir else {
            return;
        };
        let threshold = self
            .options
            .snapshot_after_bytes
            .max(2 * self.snapshot_bytes.load(Ordering::Relaxed));
        if self.log_bytes.load(Ordering::Relaxed) < threshold
            || self.snapshotting.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let (revision, data) = {
            let st = self.state.read().unwrap();
            if let Some(log) = &self.log {
                log.rotate(st.revision + 1);
            }
            let data: Vec<KeyValue> = st.data.values().cloned().collect();
            (st.revision, data)
        };
        self.log_bytes.store(0, Ordering::Relaxed);
        let dir = dir.clone();
        let flag = self.snapshotting.clone();
        let size_out = self.snapshot_bytes.clone();
        let spawned = std::thread::Builder::new()
            .name("store-snapshot".into())
            .spawn(move || {
                match wal::write_snapshot(&dir, revision, &data) {
                    Ok(size) => {
                        size_out.store(size, Ordering::Relaxed);
                        tracing::debug!(revision, size, "snapshot written");
                    }
                    Err(err) => tracing::error!(error = %err, "snapshot failed"),
                }
                flag.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.snapshotting.store(false, Ordering::Release);
        }
    }

    fn range_now(
        st: &State,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        count: Count,
    ) -> (Vec<KeyValue>, usize) {
        let lower = match start_after {
            Some(k) if k >= prefix => Bound::Excluded(k),
            _ => Bound::Included(prefix),
        };
        let iter = st
            .data
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v);
        collect_page(iter, limit, count)
    }

    fn range_counting(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
        count: Count,
    ) -> Result<RangeResult> {
        let st = self.state.read().unwrap();
        let (kvs, remaining, at) = match revision {
            Some(rev) if rev > st.revision => {
                return Err(Error::FutureRevision {
                    requested: rev,
                    current: st.revision,
                });
            }
            Some(rev) if rev < st.compacted => {
                return Err(Error::Compacted {
                    requested: rev,
                    compacted: st.compacted,
                });
            }
            Some(rev) if rev < st.revision => {
                let (kvs, remaining) = Self::range_at(&st, prefix, start_after, limit, rev, count);
                (kvs, remaining, rev)
            }
            _ => {
                let (kvs, remaining) = Self::range_now(&st, prefix, start_after, limit, count);
                (kvs, remaining, st.revision)
            }
        };
        Ok(RangeResult {
            kvs,
            revision: at,
            remaining,
        })
    }

    fn range_at(
        st: &State,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Revision,
        count: Count,
    ) -> (Vec<KeyValue>, usize) {
        let lower = match start_after {
            Some(k) if k >= prefix => Bound::Excluded(k),
            _ => Bound::Included(prefix),
        };
        let in_range = |k: &str| {
            k.starts_with(prefix)
                && match lower {
                    Bound::Excluded(s) => k > s,
                    _ => true,
                }
        };
        // The value of each key changed after `revision` is the `prev` of its first later event.
        let mut overlay: HashMap<Arc<str>, Option<&KeyValue>> = HashMap::new();
        let first_later = st
            .history
            .partition_point(|(_, e)| e.revision() <= revision);
        for (_, ev) in st.history.range(first_later..) {
            if in_range(&ev.kv.key) && !overlay.contains_key(&ev.kv.key) {
                overlay.insert(ev.kv.key.clone(), ev.prev.as_ref());
            }
        }
        let mut past: Vec<&KeyValue> = overlay.values().filter_map(|v| *v).collect();
        past.sort_unstable_by(|a, b| a.key.cmp(&b.key));
        let current = st
            .data
            .range::<str, _>((lower, Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| !overlay.contains_key(*k))
            .map(|(_, v)| v);
        collect_page(MergeByKey::new(current, past.into_iter()), limit, count)
    }
}

/// Two iterators of values in key order, merged in key order.
struct MergeByKey<'a, A: Iterator<Item = &'a KeyValue>, B: Iterator<Item = &'a KeyValue>> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<'a, A: Iterator<Item = &'a KeyValue>, B: Iterator<Item = &'a KeyValue>> MergeByKey<'a, A, B> {
    fn new(a: A, b: B) -> Self {
        MergeByKey {
            a: a.peekable(),
            b: b.peekable(),
        }
    }
}

impl<'a, A: Iterator<Item = &'a KeyValue>, B: Iterator<Item = &'a KeyValue>> Iterator
    for MergeByKey<'a, A, B>
{
    type Item = &'a KeyValue;

    fn next(&mut self) -> Option<&'a KeyValue> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) if y.key < x.key => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// The first `limit` values (all when 0), cloned, and how many follow them.
/// How [`collect_page`] reports the keys after a page.
#[derive(Clone, Copy)]
enum Count {
    /// Exactly.
    All,
    /// 1 when there are any.
    Any,
}

fn collect_page<'a>(
    iter: impl Iterator<Item = &'a KeyValue>,
    limit: usize,
    count: Count,
) -> (Vec<KeyValue>, usize) {
    if limit == 0 {
        return (iter.cloned().collect(), 0);
    }
    let mut iter = iter;
    let page: Vec<KeyValue> = iter.by_ref().take(limit).cloned().collect();
    let remaining = match count {
        Count::All => iter.count(),
        Count::Any => usize::from(iter.next().is_some()),
    };
    (page, remaining)
}

impl Drop for LocalStore {
    fn drop(&mut self) {
        self.close();
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    fn current_revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        self.compacted.load(Ordering::Acquire)
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        Ok(self.state.read().unwrap().data.get(key).cloned())
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        self.range_counting(prefix, start_after, limit, revision, Count::All)
    }

    async fn range_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        self.range_counting(prefix, start_after, limit, revision, Count::Any)
    }

    async fn count(&self, prefix: &str) -> Result<usize> {
        let st = self.state.read().unwrap();
        Ok(st
            .data
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .count())
    }

    async fn create(&self, key: &str, encode: Encoder<'_>) -> Result<KeyValue> {
        let (kv, seq) = {
            let mut st = self.state.write().unwrap();
            if let Some(current) = st.data.get(key) {
                return Err(Error::AlreadyExists {
                    current: Box::new(current.clone()),
                });
            }
            let rev = st.revision + 1;
            let value = encode(rev);
            crate::check_value_size(&value)?;
            let kv = KeyValue {
                key: Arc::from(key),
                value,
                create_revision: rev,
                mod_revision: rev,
            };
            st.data.insert(kv.key.clone(), kv.clone());
            let seq = self.commit(
                &mut st,
                Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev: None,
                    memo: None,
                },
            );
            (kv, seq)
        };
        self.durable(seq).await?;
        Ok(kv)
    }

    async fn update(&self, key: &str, expected: Revision, encode: Encoder<'_>) -> Result<KeyValue> {
        let (kv, seq) = {
            let mut st = self.state.write().unwrap();
            let Some(current) = st.data.get(key) else {
                return Err(Error::NotFound);
            };
            if current.mod_revision != expected {
                return Err(Error::Conflict {
                    expected,
                    current: Box::new(current.clone()),
                });
            }
            let rev = st.revision + 1;
            let value = encode(rev);
            crate::check_value_size(&value)?;
            let kv = KeyValue {
                key: current.key.clone(),
                value,
                create_revision: current.create_revision,
                mod_revision: rev,
            };
            let prev = st.data.insert(kv.key.clone(), kv.clone());
            let seq = self.commit(
                &mut st,
                Event {
                    kind: EventKind::Put,
                    kv: kv.clone(),
                    prev,
                    memo: None,
                },
            );
            (kv, seq)
        };
        self.durable(seq).await?;
        Ok(kv)
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
        tombstone: Option<Encoder<'_>>,
    ) -> Result<KeyValue> {
        let (kv, seq) = {
            let mut st = self.state.write().unwrap();
            let Some(current) = st.data.get(key) else {
                return Err(Error::NotFound);
            };
            if let Some(expected) = expected
                && current.mod_revision != expected
            {
                return Err(Error::Conflict {
                    expected,
                    current: Box::new(current.clone()),
                });
            }
            let rev = st.revision + 1;
            let prev = st.data.remove(key).expect("checked above");
            let value: Bytes = match tombstone {
                Some(encode) => encode(rev),
                None => prev.value.clone(),
            };
            let kv = KeyValue {
                key: prev.key.clone(),
                value,
                create_revision: prev.create_revision,
                mod_revision: rev,
            };
            let seq = self.commit(
                &mut st,
                Event {
                    kind: EventKind::Delete,
                    kv: kv.clone(),
                    prev: Some(prev),
                    memo: None,
                },
            );
            (kv, seq)
        };
        self.durable(seq).await?;
        Ok(kv)
    }

    async fn watch(&self, filter: KeyFilter, after: Revision) -> Result<Watch> {
        let mut st = self.state.write().unwrap();
        if after < st.compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted: st.compacted,
            });
        }
        if after > st.revision {
            return Err(Error::FutureRevision {
                requested: after,
                current: st.revision,
            });
        }
        let first = st.history.partition_point(|(_, e)| e.revision() <= after);
        let backlog: VecDeque<Event> = st
            .history
            .range(first..)
            .filter(|(_, e)| filter.matches(&e.kv.key))
            .map(|(_, e)| e.clone())
            .collect();
        let (tx, rx) = mpsc::channel(self.options.watch_buffer.max(1));
        st.watchers.push(Watcher { filter, tx });
        Ok(Watch::new(backlog, rx))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let mut st = self.state.write().unwrap();
        if revision > st.revision {
            return Err(Error::FutureRevision {
                requested: revision,
                current: st.revision,
            });
        }
        while let Some((_, front)) = st.history.front() {
            if front.revision() > revision {
                break;
            }
            st.history_bytes -= front.kv.value.len();
            st.history.pop_front();
        }
        st.compacted = st.compacted.max(revision);
        self.compacted.store(st.compacted, Ordering::Release);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
