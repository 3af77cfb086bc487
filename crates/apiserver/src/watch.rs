//! Watch streams: events from the store, filtered by selectors, as kube-apiserver sends them
//! (ADDED / MODIFIED / DELETED, BOOKMARK, ERROR), including initial events and the
//! `k8s.io/initial-events-end` bookmark.

use std::sync::Arc;
use std::time::Duration;

use crate::errors::{ApiError, ApiResult, Cause};
use crate::objects;
use crate::resources::ResourceType;
use crate::rest::{ListOptions, Registry};
use crate::watchqueue::{self, Receiver, SendError, Sender};
use bytes::Bytes;
use serde_json::{Value, json};
use store::{EventKind, KeyFilter};

/// One watch event, with the object as stored JSON.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub kind: &'static str,
    pub object: Bytes,
    /// `object` decoded, for watches started with `keep_decoded` (in-process clients); every
    /// such watch of the same write shares one decoded object. It carries no
    /// `metadata.managedFields`, as the informers of kube-controller-manager drop them.
    pub decoded: Option<Arc<Value>>,
}

impl WatchEvent {
    fn error(err: &ApiError) -> Self {
        WatchEvent {
            kind: "ERROR",
            object: Bytes::from(serde_json::to_vec(&err.to_status()).expect("serialises")),
            decoded: None,
        }
    }
}

/// The object of a stored value decoded once for every in-process watcher the write reaches
/// (through the event's memo), or on its own when the event has none (replays, initial lists).
fn shared_decode(bytes: &Bytes, memo: Option<&store::Memo>) -> ApiResult<Arc<Value>> {
    let decode = || objects::decode_without_managed_fields(bytes).map(Arc::new);
    let Some(memo) = memo else { return decode() };
    if let Some(done) = memo.get() {
        return done.clone().downcast::<Value>().or_else(|_| decode());
    }
    let value = decode()?;
    let shared = memo.get_or_init(|| value.clone());
    Ok(shared.clone().downcast::<Value>().unwrap_or(value))
}

fn bookmark(r: &ResourceType, revision: i64, initial_end: bool) -> WatchEvent {
    let mut meta = json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj = json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": meta});
    WatchEvent {
        kind: "BOOKMARK",
        object: Bytes::from(serde_json::to_vec(&obj).expect("serialises")),
        decoded: None,
    }
}

/// Starts a watch and returns its events. The stream ends after the timeout, when the client
/// goes away (the receiver is dropped), or when the client falls behind its queue's bound
/// ([`watchqueue::CLIENT_LIMITS`]; in-process watches have [`watchqueue::IN_PROCESS_LIMITS`]).
///
/// With `keep_decoded`, objects the watch decodes to match selectors are handed over in
/// [`WatchEvent::decoded`].
pub async fn start(
    registry: Arc<Registry>,
    r: &'static ResourceType,
    namespace: Option<String>,
    opts: ListOptions,
    keep_decoded: bool,
) -> ApiResult<Receiver> {
    let plan = registry.plan_list(r, &opts)?;
    let send_initial = opts.send_initial_events;
    if send_initial.is_some() {
        let mut causes = Vec::new();
        if opts.resource_version_match != "NotOlderThan" {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if send_initial == Some(true) && !opts.allow_bookmarks {
            causes.push(Cause::forbidden(
                "allowWatchBookmarks",
                "sendInitialEvents requires setting allowWatchBookmarks to true",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid_options("ListOptions", causes));
        }
    } else if !opts.resource_version_match.is_empty() {
        return Err(ApiError::invalid_options(
            "ListOptions",
            vec![Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            )],
        ));
    }
    let rv = objects::parse_resource_version(&opts.resource_version)?;
    let store = registry.store().clone();
    let prefix = Registry::list_prefix(r, namespace.as_deref());
    let filter = match plan.fields.exact_name() {
        Some(name) if r.namespaced && namespace.is_some() => {
            KeyFilter::Exact(r.key(namespace.as_deref(), name))
        }
        Some(name) if !r.namespaced => KeyFilter::Exact(r.key(None, name)),
        _ => KeyFilter::Prefix(prefix.clone()),
    };
    let with_initial = match send_initial {
        Some(v) => v,
        None => rv.is_none_or(|v| v == 0),
    };
    let timeout = Duration::from_secs(opts.timeout_seconds.unwrap_or_else(|| {
        use rand::Rng;
        1800 + rand::rng().random_range(0..1800)
    }));
    let (tx, rx) = watchqueue::queue(if keep_decoded {
        watchqueue::IN_PROCESS_LIMITS
    } else {
        watchqueue::CLIENT_LIMITS
    });
    // Only selectors that the key filter does not already answer need the object decoded.
    let exact_key = matches!(filter, KeyFilter::Exact(_));
    let name_only = exact_key && plan.fields.requirements.len() == 1;
    let needs_decode = !plan.labels.is_empty() || !(plan.fields.is_empty() || name_only);
    let projection = plan.projection(r);
    let matches = move |obj: &Value| plan.matches(r, obj);
    let matcher = Matcher {
        needs_decode,
        projection,
        matches,
        // Converted custom resources are not what was decoded; only built-in kinds hand over.
        keep_decoded: keep_decoded && r.custom.is_none(),
    };
    // Find the starting point now, so a bad resourceVersion fails the request itself.
    let mut initial = Vec::new();
    let start_rev = if with_initial {
        let page_rev = store.latest_revision().await?;
        if let Some(v) = rv
            && v > page_rev
        {
            return Err(ApiError::too_new_resource_version());
        }
        page_rev
    } else {
        rv.unwrap_or(0)
    };
    let watch = match store.watch(filter.clone(), start_rev).await {
        Ok(w) => Some(w),
        Err(store::Error::Compacted {
            requested,
            compacted,
        }) => {
            let err = ApiError::expired(format!(
                "too old resource version: {requested} ({compacted})"
            ));
            initial.push(WatchEvent::error(&err));
            None
        }
        Err(store::Error::FutureRevision { .. }) => {
            initial.push(WatchEvent::error(&ApiError::too_new_resource_version()));
            None
        }
        Err(e) => return Err(e.into()),
    };
    let registry2 = registry.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + timeout;
        for ev in initial {
            let _ = tx.send(ev).await;
        }
        let Some(mut watch) = watch else { return };
        if with_initial {
            // Everything up to start_rev, read at exactly that revision.
            let mut start_after: Option<String> = None;
            loop {
                let page = match registry2
                    .store()
                    .range_page(&prefix, start_after.as_deref(), 1000, Some(start_rev))
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        let _ = tx.send(WatchEvent::error(&ApiError::from(e))).await;
                        return;
                    }
                };
                let done = page.remaining == 0;
                start_after = page.kvs.last().map(|kv| kv.key.to_string());
                for kv in page.kvs {
                    if !filter.matches(&kv.key) {
                        continue;
                    }
                    let (accepted, decoded) = matcher.check(&kv.value, None);
                    if !accepted {
                        continue;
                    }
                    let object = match registry2.present_converted(r, kv.value).await {
                        Ok(object) => object,
                        Err(e) => {
                            let _ = tx.send(WatchEvent::error(&e)).await;
                            return;
                        }
                    };
                    if tx
                        .send(WatchEvent {
                            kind: "ADDED",
                            object,
                            decoded,
                        })
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if done || start_after.is_none() {
                    break;
                }
            }
            if send_initial == Some(true) && tx.send(bookmark(r, start_rev, true)).await.is_err() {
                return;
            }
        }
        let mut bookmark_timer = tokio::time::interval(Duration::from_secs(60));
        bookmark_timer.tick().await;
        loop {
            // Events replayed from history are in memory already and wait for the client;
            // live ones are taken at once, so a client that stops reading overflows its queue.
            let paced = watch.replaying();
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
                _ = bookmark_timer.tick(), if opts.allow_bookmarks => {
                    // Everything up to this revision is already queued in `watch`.
                    let revision = watch
                        .progress()
                        .unwrap_or_else(|| registry2.store().current_revision());
                    loop {
                        let paced = watch.replaying();
                        let Some(ev) = watch.try_next() else { break };
                        if !forward(&registry2, &tx, r, ev, &matcher, paced).await { return; }
                    }
                    if tx.send(bookmark(r, revision, false)).await.is_err() { return; }
                }
                ev = watch.next() => {
                    let Some(ev) = ev else { return };
                    if !forward(&registry2, &tx, r, ev, &matcher, paced).await { return; }
                }
            }
        }
    });
    Ok(rx)
}

/// Decides whether a stored object passes the watch's selectors, decoding it only when a
/// selector needs to look inside.
struct Matcher<F> {
    needs_decode: bool,
    /// What the selectors read, decoded when the object itself is not handed over.
    projection: crate::objects::Projection,
    matches: F,
    keep_decoded: bool,
}

impl<F: Fn(&Value) -> bool> Matcher<F> {
    fn accepts(&self, bytes: &[u8]) -> bool {
        !self.needs_decode
            || self
                .projection
                .decode(bytes)
                .is_ok_and(|obj| (self.matches)(&obj))
    }

    /// Whether the object matches, and the object decoded when the watch hands it over.
    fn check(&self, bytes: &Bytes, memo: Option<&store::Memo>) -> (bool, Option<Arc<Value>>) {
        // Without a memo (the initial state, replays from history) nothing is shared: the
        // client decodes as it reads, so a queue of thousands of initial events holds their
        // JSON, not decoded objects many times that size.
        if !self.keep_decoded || (memo.is_none() && !self.needs_decode) {
            return (self.accepts(bytes), None);
        }
        match shared_decode(bytes, memo) {
            Ok(obj) if !self.needs_decode || (self.matches)(&obj) => (true, Some(obj)),
            _ => (false, None),
        }
    }
}

/// Sends one store event as the watch event a client of this selector sees, waiting for room
/// when `paced`. Returns false when the watch is over: the client is gone or fell behind.
async fn forward<F: Fn(&Value) -> bool + Send>(
    registry: &Registry,
    tx: &Sender,
    r: &ResourceType,
    ev: store::Event,
    matcher: &Matcher<F>,
    paced: bool,
) -> bool {
    let (now_matches, decoded) = matcher.check(&ev.kv.value, ev.memo.as_ref());
    let before = ev.prev.as_ref().map(|prev| matcher.accepts(&prev.value));
    let kind = match (ev.kind, before, now_matches) {
        (EventKind::Delete, Some(true), _) => "DELETED",
        (EventKind::Delete, None, true) => "DELETED",
        (EventKind::Delete, _, _) => return true,
        (EventKind::Put, None | Some(false), true) => "ADDED",
        (EventKind::Put, Some(true), true) => "MODIFIED",
        (EventKind::Put, Some(true), false) => "DELETED",
        (EventKind::Put, _, false) => return true,
    };
    // A deletion reported because the object stopped matching carries its new state.
    let object = match registry.present_converted(r, ev.kv.value).await {
        Ok(object) => object,
        Err(e) => {
            let _ = tx.send(WatchEvent::error(&e)).await;
            return false;
        }
    };
    let event = WatchEvent {
        kind,
        object,
        decoded,
    };
    let sent = if paced {
        tx.send(event).await
    } else {
        tx.try_send(event)
    };
    match sent {
        Ok(()) => true,
        Err(SendError::Gone) => false,
        Err(SendError::Overflow) => {
            tracing::info!(
                resource = r.plural,
                "closing a watch whose client fell behind; it resumes from its last resourceVersion"
            );
            false
        }
    }
}
