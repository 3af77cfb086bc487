//! A revisioned key-value store with etcd's model, for the API server.
//!
//! One global, strictly increasing revision counts every write. Each key remembers the revision
//! that created it and the revision of its last write. Writes are compare-and-swap on that
//! revision. Watches start from any revision still inside the retained history window and fail
//! with [`Error::Compacted`] before it. Values are opaque bytes; the store never looks inside.
//!
//! The [`Store`] trait is shaped after etcd's KV and Watch APIs so that an etcd backend can
//! implement it one-to-one. [`LocalStore`] is the embedded backend: all keys in memory, every
//! write appended to a write-ahead log in a data directory with group commit (one `fsync` for all
//! writes that arrive while the previous sync runs), and periodic snapshots that bound the log.
//! [`EtcdStore`] is the same interface on an etcd cluster.

mod etcd;
mod local;
mod wal;

use std::sync::Arc;

use bytes::Bytes;

pub use etcd::{EtcdOptions, EtcdStore, EtcdTls, Stamp, UNKNOWN_REVISION};
pub use local::{LocalStore, Options, SyncMode};
pub use wal::LogStats;

/// The store's revision: a global write counter, starting at 1 for an empty store.
pub type Revision = i64;

/// One key and its current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: Arc<str>,
    pub value: Bytes,
    /// Revision of the write that created the key.
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
}

/// What a watch event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Put,
    Delete,
}

/// One change, as a watcher sees it.
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    /// For a put: the new value. For a delete: the tombstone (the value given to `delete`, or the
    /// last value) with `mod_revision` set to the delete's revision.
    pub kv: KeyValue,
    /// The value before this write, if the key existed.
    pub prev: Option<KeyValue>,
    /// Shared by every watcher the write is delivered to as it happens (not by replays from
    /// history): a place for what readers derive from `kv.value`, such as the decoded object,
    /// so that it is derived once however many watchers there are.
    pub memo: Option<Memo>,
}

/// See [`Event::memo`].
pub type Memo = Arc<std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>>;

impl Event {
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// The result of [`Store::range`].
#[derive(Debug, Clone)]
pub struct RangeResult {
    pub kvs: Vec<KeyValue>,
    /// The revision the range was read at.
    pub revision: Revision,
    /// How many matching keys follow the last one returned.
    pub remaining: usize,
}

/// Store errors.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("key already exists")]
    AlreadyExists { current: Box<KeyValue> },
    #[error("key not found")]
    NotFound,
    #[error("revision mismatch: expected {expected}, current {}", current.mod_revision)]
    Conflict {
        expected: Revision,
        current: Box<KeyValue>,
    },
    #[error("required revision {requested} has been compacted (oldest available {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    #[error("required revision {requested} is a future revision (current {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    /// A value larger than the store takes (`limit` bytes); nothing was written.
    #[error("value of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("storage failure: {0}")]
    Io(Arc<std::io::Error>),
    #[error("store is closed")]
    Closed,
    #[error("storage failure: {0}")]
    Backend(String),
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        Error::Io(Arc::new(err))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The largest value a store takes: kube-apiserver's request limit, which leaves room for JSON
/// objects whose protobuf form fits etcd's default 1.5 MiB request limit.
pub const MAX_VALUE_BYTES: usize = 3 * 1024 * 1024;

/// Reads a data directory's snapshot and write-ahead log as [`LocalStore::open`] does, without
/// starting a store, and returns the revision they reach and the number of live keys. Damage is
/// an [`std::io::ErrorKind::InvalidData`] error unless `repair` is set; an incomplete final
/// write is cut off either way.
pub fn recover_data_dir(dir: &std::path::Path, repair: bool) -> std::io::Result<(Revision, usize)> {
    let recovered = wal::recover(dir, repair)?;
    Ok((recovered.revision, recovered.data.len()))
}

/// Refuses a value over [`MAX_VALUE_BYTES`].
pub fn check_value_size(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge {
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// Builds the value to store once the write's revision is known, so that the value can carry
/// its own revision (the object's `resourceVersion`) without being encoded twice.
pub type Encoder<'a> = &'a mut (dyn FnMut(Revision) -> Bytes + Send);

/// Which keys a watch follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFilter {
    /// Every key that starts with the string.
    Prefix(String),
    /// Exactly one key.
    Exact(String),
}

impl KeyFilter {
    pub fn matches(&self, key: &str) -> bool {
        match self {
            KeyFilter::Prefix(p) => key.starts_with(p.as_str()),
            KeyFilter::Exact(k) => key == k,
        }
    }
}

/// A live stream of events, in revision order. It ends (returns `None`) when the store drops the
/// watcher, which happens when the watcher falls too far behind; the caller then resumes from the
/// last revision it saw.
pub struct Watch {
    backlog: std::collections::VecDeque<Event>,
    rx: tokio::sync::mpsc::Receiver<Event>,
    progress: Option<Arc<std::sync::atomic::AtomicI64>>,
}

impl Watch {
    pub(crate) fn new(
        backlog: std::collections::VecDeque<Event>,
        rx: tokio::sync::mpsc::Receiver<Event>,
    ) -> Self {
        Self {
            backlog,
            rx,
            progress: None,
        }
    }

    /// Makes [`Watch::progress`] report a revision the producer keeps current.
    pub(crate) fn with_progress(mut self, progress: Arc<std::sync::atomic::AtomicI64>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// For stores whose watches are delivered remotely: a revision such that every event up
    /// to it has been queued on this watch (so after draining it, a bookmark may report it).
    /// `None` means the store's current revision serves that purpose.
    pub fn progress(&self) -> Option<Revision> {
        self.progress
            .as_ref()
            .map(|p| p.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Whether the next events come from history (already kept in memory, so a consumer may
    /// take them at its own pace) rather than from live writes.
    pub fn replaying(&self) -> bool {
        !self.backlog.is_empty()
    }

    /// The next event, or `None` when the watch has ended.
    pub async fn next(&mut self) -> Option<Event> {
        if let Some(ev) = self.backlog.pop_front() {
            return Some(ev);
        }
        self.rx.recv().await
    }

    /// The next event if one is ready now.
    pub fn try_next(&mut self) -> Option<Event> {
        if let Some(ev) = self.backlog.pop_front() {
            return Some(ev);
        }
        self.rx.try_recv().ok()
    }
}

/// The store interface: etcd's KV and Watch, narrowed to what the API server uses.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// The revision of the latest write.
    fn current_revision(&self) -> Revision;

    /// The oldest revision a watch or historical range can start from.
    fn compacted_revision(&self) -> Revision;

    /// The revision of the latest write, asked of the store itself: for a shared store, writes
    /// by other servers count too.
    async fn latest_revision(&self) -> Result<Revision> {
        Ok(self.current_revision())
    }

    /// One key at the current revision.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// Keys starting with `prefix`, in key order, after `start_after` (exclusive) if given, at most
    /// `limit` of them (0 = all), read at `revision` (None = current).
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult>;

    /// [`Store::range`] for readers that only ask whether more keys follow: `remaining` may be
    /// 1 for "at least one". Stores that count in memory skip counting the rest of a large
    /// range for every page of it.
    async fn range_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        self.range(prefix, start_after, limit, revision).await
    }

    /// Counts keys starting with `prefix` at the current revision.
    async fn count(&self, prefix: &str) -> Result<usize>;

    /// Creates `key`; fails with [`Error::AlreadyExists`] if it exists.
    async fn create(&self, key: &str, encode: Encoder<'_>) -> Result<KeyValue>;

    /// Replaces `key` if its `mod_revision` equals `expected`, else [`Error::Conflict`].
    async fn update(&self, key: &str, expected: Revision, encode: Encoder<'_>) -> Result<KeyValue>;

    /// Deletes `key` if its `mod_revision` equals `expected` (when given). `tombstone` builds the
    /// value watchers see for the deletion; without it they see the last value. Returns the
    /// deletion event's key-value.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
        tombstone: Option<Encoder<'_>>,
    ) -> Result<KeyValue>;

    /// Events for keys matching `filter` with revision greater than `after`.
    async fn watch(&self, filter: KeyFilter, after: Revision) -> Result<Watch>;

    /// Forgets history up to `revision`.
    async fn compact(&self, revision: Revision) -> Result<()>;
}
