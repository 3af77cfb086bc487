//! Events expire: kube-apiserver stores every Event with a lease of `--event-ttl` (1h by
//! default) renewed on each write, so an Event not written for that long disappears. Without it
//! a cluster that keeps creating pods keeps every event ever recorded and grows without end.
//!
//! This task follows the Events and keeps each one's expiry in an index ordered by time; when
//! the earliest is due it deletes that Event, on the condition that it was not written since.
//! Created Events, and those found at start (after a restart), expire `ttl` after their latest
//! timestamp, at most `ttl` from now; an update renews the expiry to `ttl` from the update.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams, JsonAt, ListParams, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;

use crate::informer::parse_time;

/// Where an Event lives: namespace and name.
type EventKey = (String, String);

/// The fields of an Event that say when it was last written, newest meaning latest.
const WRITE_TIMES: &[&str] = &[
    "/metadata/creationTimestamp",
    "/lastTimestamp",
    "/eventTime",
    "/series/lastObservedTime",
];

/// Expired Events waiting for their delete, and deletes in flight at once.
const DELETES_QUEUED: usize = 4096;
const DELETES_AT_ONCE: usize = 64;

/// Each known Event's expiry and the revision it was seen at, and the same expiries in order.
#[derive(Default)]
struct Expiries {
    by_key: HashMap<EventKey, (Instant, String)>,
    by_time: BTreeSet<(Instant, EventKey)>,
}

impl Expiries {
    fn set(&mut self, key: EventKey, at: Instant, revision: String) {
        self.forget(&key);
        self.by_time.insert((at, key.clone()));
        self.by_key.insert(key, (at, revision));
    }

    fn forget(&mut self, key: &EventKey) {
        if let Some((at, _)) = self.by_key.remove(key) {
            self.by_time.remove(&(at, key.clone()));
        }
    }

    fn next_due(&self) -> Option<Instant> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// Takes the Events due by `now`, with the revision each was seen at.
    fn take_due(&mut self, now: Instant) -> Vec<(EventKey, String)> {
        let mut due = Vec::new();
        while let Some((at, key)) = self.by_time.first().cloned() {
            if at > now {
                break;
            }
            self.by_time.pop_first();
            if let Some((_, revision)) = self.by_key.remove(&key) {
                due.push((key, revision));
            }
        }
        due
    }
}

/// Starts deleting Events `ttl` after their last write. A zero `ttl` keeps them forever.
pub fn start(cluster: Arc<dyn Cluster>, ttl: Duration) {
    if ttl.is_zero() {
        return;
    }
    tokio::spawn(run(cluster, ttl));
}

async fn run(cluster: Arc<dyn Cluster>, ttl: Duration) {
    let (due_tx, due_rx) = tokio::sync::mpsc::channel(DELETES_QUEUED);
    tokio::spawn(delete_all(cluster.clone(), due_rx));
    // Without a resourceVersion the watch starts with every stored Event as Added, and again
    // after 410 Gone: Added ones expire by their timestamps, so a restart renews nothing.
    let mut events = client::watch_resuming(cluster, Resource::events(), ListParams::default());
    let mut expiries = Expiries::default();
    loop {
        let due = expiries
            .next_due()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            event = events.next() => match event {
                Some(event) => note(&mut expiries, event, ttl),
                None => return,
            },
            () = tokio::time::sleep_until(due) => {
                for expired in expiries.take_due(Instant::now()) {
                    if due_tx.send(expired).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Deletes what comes due, many at once, so that the store commits them together and
/// expiry keeps up with a cluster writing thousands of Events a second.
async fn delete_all(
    cluster: Arc<dyn Cluster>,
    mut due: tokio::sync::mpsc::Receiver<(EventKey, String)>,
) {
    futures::stream::poll_fn(|cx| due.poll_recv(cx))
        .for_each_concurrent(DELETES_AT_ONCE, |(key, revision)| {
            let cluster = cluster.clone();
            async move { delete(&*cluster, key, revision).await }
        })
        .await;
}

/// A write seen: a new Event expires by its timestamps, a rewritten one `ttl` from now.
fn note(expiries: &mut Expiries, event: WatchEvent, ttl: Duration) {
    match event {
        WatchEvent::Added(object) => {
            if let Some((key, revision)) = key_and_revision(&object) {
                expiries.set(key, expiry_of_stored(&object, ttl), revision);
            }
        }
        WatchEvent::Modified(object) => {
            if let Some((key, revision)) = key_and_revision(&object) {
                expiries.set(key, Instant::now() + ttl, revision);
            }
        }
        WatchEvent::Deleted(object) => {
            if let Some((key, _)) = key_and_revision(&object) {
                expiries.forget(&key);
            }
        }
        WatchEvent::Bookmark(_) | WatchEvent::Error(_) => {}
    }
}

fn key_and_revision(object: &Value) -> Option<(EventKey, String)> {
    let text = |path: &str| object.at(path).and_then(Value::as_str).map(String::from);
    Some((
        (text("/metadata/namespace")?, text("/metadata/name")?),
        text("/metadata/resourceVersion")?,
    ))
}

/// A created or found Event: `ttl` after its latest timestamp, never later than `ttl` from now.
fn expiry_of_stored(object: &Value, ttl: Duration) -> Instant {
    let now = Instant::now();
    let written = WRITE_TIMES
        .iter()
        .filter_map(|path| object.at(path).and_then(Value::as_str).and_then(parse_time))
        .max();
    let age = written
        .map(|t| jiff::Timestamp::now().duration_since(t))
        .and_then(|age| Duration::try_from(age).ok())
        .unwrap_or_default();
    now + ttl.saturating_sub(age)
}

async fn delete(cluster: &dyn Cluster, (namespace, name): EventKey, revision: String) {
    let params = DeleteParams {
        precondition_resource_version: Some(revision),
        ..DeleteParams::default()
    };
    let result = cluster
        .delete_without_answer(&Resource::events(), Some(&namespace), &name, &params)
        .await;
    // Gone already, or written since (the watch then brings its new expiry): nothing to do.
    if let Err(e) = result
        && !e.is_not_found()
        && !e.is_conflict()
    {
        tracing::warn!(%namespace, %name, error = %e, "expire event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, revision: &str, last: &str) -> Value {
        json!({"metadata": {"namespace": "default", "name": name, "resourceVersion": revision,
            "creationTimestamp": "2020-01-01T00:00:00Z"}, "lastTimestamp": last})
    }

    #[test]
    fn a_stored_event_expires_ttl_after_its_latest_timestamp() {
        let ttl = Duration::from_secs(3600);
        let now = Instant::now();
        let old = event("old", "1", "2020-01-01T00:00:00Z");
        assert!(expiry_of_stored(&old, ttl) <= now + Duration::from_secs(1));
        let fresh = event(
            "new",
            "2",
            &crate::informer::timestamp(jiff::Timestamp::now()),
        );
        let later = expiry_of_stored(&fresh, ttl);
        assert!(later > now + ttl - Duration::from_secs(5) && later <= Instant::now() + ttl);
    }

    #[test]
    fn an_update_renews_the_expiry_and_a_delete_forgets_it() {
        let mut expiries = Expiries::default();
        let ttl = Duration::from_secs(60);
        let first = Arc::new(event("e", "1", "2020-01-01T00:00:00Z"));
        note(&mut expiries, WatchEvent::Added(first), ttl);
        assert_eq!(
            expiries.take_due(Instant::now()).len(),
            1,
            "old: due at once"
        );
        let second = Arc::new(event("e", "2", "2020-01-01T00:00:00Z"));
        note(&mut expiries, WatchEvent::Modified(second.clone()), ttl);
        assert!(
            expiries
                .take_due(Instant::now() + Duration::from_secs(30))
                .is_empty()
        );
        let due = expiries.take_due(Instant::now() + ttl + Duration::from_secs(1));
        assert_eq!(due, vec![(("default".into(), "e".into()), "2".into())]);
        note(&mut expiries, WatchEvent::Modified(second.clone()), ttl);
        note(&mut expiries, WatchEvent::Deleted(second), ttl);
        assert!(expiries.next_due().is_none());
    }
}
