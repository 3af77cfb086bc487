//! The etcd backend: the [`Store`] trait on etcd's v3 gRPC API, one call per trait method.
//!
//! Revisions are etcd's revisions. Creates, updates and deletes are transactions that compare
//! the key's create or mod revision; on a failed comparison the same transaction reads the
//! current value so the caller gets it with the error. Watches are etcd watches with the
//! previous value attached. Keys are the API server's keys with their leading `/registry`
//! replaced by the configured prefix.
//!
//! etcd cannot know a value's revision before it writes it, so values are stored without it:
//! writers are asked for the value with [`UNKNOWN_REVISION`], and every value read back is
//! passed through a [`Stamp`] function that records its revision in it (for the API server,
//! `metadata.resourceVersion`), as kube-apiserver does.

mod proto;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::{
    Encoder, Error, Event, EventKind, KeyFilter, KeyValue, RangeResult, Result, Revision, Store,
    Watch,
};
use proto::{compare, request_op, response_op, watch_request};

/// The revision writers are asked to encode when the store learns it only after the write.
pub const UNKNOWN_REVISION: Revision = 0;

/// Records a value's revision in it after it is read from the store.
pub type Stamp = Arc<dyn Fn(&[u8], Revision) -> Bytes + Send + Sync>;

/// The key prefix the API server uses; it is replaced by [`EtcdOptions::prefix`] in etcd.
const API_PREFIX: &str = "/registry";
/// Keys read per request when a range asks for everything.
const RANGE_PAGE: i64 = 10_000;
/// Events buffered per watch before the reader waits for the consumer.
const WATCH_BUFFER: usize = 4096;
const MAX_MESSAGE: usize = 1 << 30;

/// TLS material for etcd client connections.
#[derive(Debug, Clone, Default)]
pub struct EtcdTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// How to reach etcd.
#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs, `http://host:port` or `https://host:port`.
    pub endpoints: Vec<String>,
    /// Key prefix in etcd (kube-apiserver's `--etcd-prefix`).
    pub prefix: String,
    pub tls: EtcdTls,
    /// How often history is compacted (kube-apiserver's `--etcd-compaction-interval`); each
    /// compaction keeps at least one interval of history. `None` never compacts.
    pub compaction_interval: Option<Duration>,
    /// How long to keep trying to reach etcd at start.
    pub connect_timeout: Duration,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: API_PREFIX.into(),
            tls: EtcdTls::default(),
            compaction_interval: Some(Duration::from_secs(300)),
            connect_timeout: Duration::from_secs(30),
        }
    }
}

/// The [`Store`] on an etcd cluster.
pub struct EtcdStore {
    channel: Channel,
    codec: Arc<Codec>,
    revision: AtomicI64,
    compacted: AtomicI64,
}

impl EtcdStore {
    /// Connects to etcd, waiting up to `connect_timeout` for it to answer.
    pub async fn connect(options: EtcdOptions, stamp: Stamp) -> Result<Arc<Self>> {
        let channel = channel(&options)?;
        let store = Arc::new(Self {
            channel,
            codec: Arc::new(Codec {
                prefix: options.prefix.trim_end_matches('/').to_string(),
                stamp,
            }),
            revision: AtomicI64::new(0),
            compacted: AtomicI64::new(0),
        });
        let deadline = tokio::time::Instant::now() + options.connect_timeout;
        loop {
            match store.latest_revision().await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    let detail = match e {
                        Error::Backend(message) => message,
                        other => other.to_string(),
                    };
                    return Err(Error::Backend(format!(
                        "cannot reach etcd at {}: {detail}",
                        options.endpoints.join(",")
                    )));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "waiting for etcd");
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
        }
        if let Some(interval) = options.compaction_interval {
            tokio::spawn(compact_periodically(Arc::downgrade(&store), interval));
        }
        Ok(store)
    }

    /// An unconditional put, outside the [`Store`] interface: for tools and benchmarks that
    /// measure etcd itself through the same connection. Returns the write's revision.
    pub async fn put(&self, key: &str, value: Bytes) -> Result<Revision> {
        let response: proto::PutResponse = self
            .call(
                "/etcdserverpb.KV/Put",
                proto::PutRequest {
                    key: self.codec.etcd_key(key),
                    value,
                    ..Default::default()
                },
                None,
            )
            .await?;
        Ok(self.observe(response.header.as_ref()))
    }

    fn observe(&self, header: Option<&proto::ResponseHeader>) -> Revision {
        let revision = header.map_or(0, |h| h.revision);
        self.revision.fetch_max(revision, Ordering::AcqRel);
        revision
    }

    /// A ready gRPC client on the shared connection.
    async fn grpc(&self) -> Result<tonic::client::Grpc<Channel>> {
        let mut grpc = tonic::client::Grpc::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE);
        grpc.ready()
            .await
            .map_err(|e| Error::Backend(format!("etcd: {e}")))?;
        Ok(grpc)
    }

    /// One unary call; `requested` is the revision the request reads at, for its errors.
    async fn call<Req, Resp>(
        &self,
        path: &'static str,
        request: Req,
        requested: Option<Revision>,
    ) -> Result<Resp>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
        let response = self
            .grpc()
            .await?
            .unary(
                tonic::Request::new(request),
                PathAndQuery::from_static(path),
                codec,
            )
            .await
            .map_err(|s| self.status_error(s, requested))?;
        Ok(response.into_inner())
    }

    fn status_error(&self, status: tonic::Status, requested: Option<Revision>) -> Error {
        let message = status.message();
        if message.contains("required revision has been compacted") {
            let compacted = self.compacted.load(Ordering::Acquire);
            return Error::Compacted {
                requested: requested.unwrap_or(0),
                compacted: compacted.max(requested.unwrap_or(0) + 1),
            };
        }
        if message.contains("required revision is a future revision") {
            return Error::FutureRevision {
                requested: requested.unwrap_or(0),
                current: self.current_revision(),
            };
        }
        if message.contains("request is too large")
            || message.contains("received message larger than max")
        {
            // etcd's own request limit (`--max-request-bytes`) is smaller than ours.
            return Error::TooLarge {
                size: 0,
                limit: crate::MAX_VALUE_BYTES,
            };
        }
        Error::Backend(format!("etcd: {message}"))
    }

    async fn range_raw(&self, request: proto::RangeRequest) -> Result<proto::RangeResponse> {
        let requested = (request.revision > 0).then_some(request.revision);
        let response: proto::RangeResponse = self
            .call("/etcdserverpb.KV/Range", request, requested)
            .await?;
        self.observe(response.header.as_ref());
        Ok(response)
    }

    async fn txn(&self, request: proto::TxnRequest) -> Result<proto::TxnResponse> {
        let response: proto::TxnResponse = self.call("/etcdserverpb.KV/Txn", request, None).await?;
        self.observe(response.header.as_ref());
        Ok(response)
    }

    /// The current value read by a failed transaction's `failure` branch.
    fn failure_value(&self, response: proto::TxnResponse) -> Option<KeyValue> {
        response
            .responses
            .into_iter()
            .find_map(|op| match op.response {
                Some(response_op::Response::Range(r)) => {
                    r.kvs.into_iter().next().map(|kv| self.codec.current(kv))
                }
                _ => None,
            })
    }

    async fn open_watch(
        &self,
        key: Vec<u8>,
        range_end: Vec<u8>,
        after: Revision,
    ) -> Result<tonic::Streaming<proto::WatchResponse>> {
        let create = proto::WatchRequest {
            request_union: Some(watch_request::RequestUnion::CreateRequest(
                proto::WatchCreateRequest {
                    key,
                    range_end,
                    start_revision: after + 1,
                    progress_notify: true,
                    prev_kv: true,
                },
            )),
        };
        // The request side stays open: etcd ends a watch stream whose client stops sending.
        let requests =
            futures::StreamExt::chain(futures::stream::iter([create]), futures::stream::pending());
        let codec = tonic_prost::ProstCodec::<proto::WatchRequest, proto::WatchResponse>::default();
        let response = self
            .grpc()
            .await?
            .streaming(
                tonic::Request::new(requests),
                PathAndQuery::from_static("/etcdserverpb.Watch/Watch"),
                codec,
            )
            .await
            .map_err(|s| self.status_error(s, Some(after)))?;
        Ok(response.into_inner())
    }
}

/// Maps keys between the API server and etcd and stamps values read back.
struct Codec {
    prefix: String,
    stamp: Stamp,
}

impl Codec {
    fn etcd_key(&self, key: &str) -> Vec<u8> {
        let rest = key.strip_prefix(API_PREFIX).unwrap_or(key);
        let mut out = Vec::with_capacity(self.prefix.len() + rest.len());
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(rest.as_bytes());
        out
    }

    fn api_key(&self, key: &[u8]) -> Arc<str> {
        let key = String::from_utf8_lossy(key);
        let rest = key.strip_prefix(self.prefix.as_str()).unwrap_or(&key);
        format!("{API_PREFIX}{rest}").into()
    }

    /// A stored key-value as callers see it: API key, value stamped with `revision`.
    fn convert(&self, kv: proto::KeyValue, revision: Revision) -> KeyValue {
        KeyValue {
            key: self.api_key(&kv.key),
            value: (self.stamp)(&kv.value, revision),
            create_revision: kv.create_revision,
            mod_revision: revision,
        }
    }

    fn current(&self, kv: proto::KeyValue) -> KeyValue {
        let revision = kv.mod_revision;
        self.convert(kv, revision)
    }

    fn event(&self, ev: proto::Event) -> Option<Event> {
        let kv = ev.kv?;
        let revision = kv.mod_revision;
        let prev = ev.prev_kv.map(|p| self.current(p));
        if ev.r#type == proto::EventType::Delete as i32 {
            // etcd reports a deletion with an empty value: watchers see the last value instead.
            let last = prev.clone()?;
            Some(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    value: (self.stamp)(&last.value, revision),
                    mod_revision: revision,
                    ..last
                },
                prev,
                memo: None,
            })
        } else {
            Some(Event {
                kind: EventKind::Put,
                kv: self.convert(kv, revision),
                prev,
                memo: None,
            })
        }
    }
}

fn channel(options: &EtcdOptions) -> Result<Channel> {
    let tls = tls_config(&options.tls)?;
    let mut endpoints = Vec::new();
    for url in &options.endpoints {
        let mut endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::Backend(format!("invalid etcd endpoint {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .keep_alive_while_idle(true)
            .http2_keep_alive_interval(Duration::from_secs(30));
        if url.starts_with("https://") {
            endpoint = endpoint
                .tls_config(tls.clone().unwrap_or_default())
                .map_err(|e| Error::Backend(format!("etcd TLS for {url}: {e}")))?;
        }
        endpoints.push(endpoint);
    }
    match endpoints.len() {
        0 => Err(Error::Backend("no etcd endpoints given".into())),
        1 => Ok(endpoints.remove(0).connect_lazy()),
        _ => Ok(Channel::balance_list(endpoints.into_iter())),
    }
}

fn tls_config(tls: &EtcdTls) -> Result<Option<ClientTlsConfig>> {
    let read = |path: &PathBuf| {
        std::fs::read(path)
            .map_err(|e| Error::Backend(format!("read etcd TLS file {}: {e}", path.display())))
    };
    if tls.ca_file.is_none() && tls.cert_file.is_none() {
        return Ok(None);
    }
    let mut config = ClientTlsConfig::new();
    if let Some(ca) = &tls.ca_file {
        config = config.ca_certificate(Certificate::from_pem(read(ca)?));
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            config = config.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => {
            return Err(Error::Backend(
                "etcd client certificate and key must be given together".into(),
            ));
        }
    }
    Ok(Some(config))
}

/// The smallest key greater than every key that starts with `prefix`.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn compare_create(key: &[u8], revision: Revision) -> proto::Compare {
    proto::Compare {
        result: proto::CompareResult::Equal as i32,
        target: proto::CompareTarget::Create as i32,
        key: key.to_vec(),
        target_union: Some(compare::TargetUnion::CreateRevision(revision)),
    }
}

fn compare_mod(key: &[u8], revision: Revision) -> proto::Compare {
    proto::Compare {
        result: proto::CompareResult::Equal as i32,
        target: proto::CompareTarget::Mod as i32,
        key: key.to_vec(),
        target_union: Some(compare::TargetUnion::ModRevision(revision)),
    }
}

fn read_key(key: &[u8]) -> proto::RequestOp {
    proto::RequestOp {
        request: Some(request_op::Request::Range(proto::RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })),
    }
}

/// A put in a transaction; `prev_kv` returns the value it replaces.
fn put(key: &[u8], value: Bytes, prev_kv: bool) -> proto::RequestOp {
    proto::RequestOp {
        request: Some(request_op::Request::Put(proto::PutRequest {
            key: key.to_vec(),
            value,
            prev_kv,
            ..Default::default()
        })),
    }
}

/// Compacts, every `interval`, the history older than the revision seen one interval earlier,
/// so at least one interval of history stays available to watchers.
async fn compact_periodically(store: Weak<EtcdStore>, interval: Duration) {
    let mut previous: Option<Revision> = None;
    loop {
        tokio::time::sleep(interval).await;
        let Some(store) = store.upgrade() else { return };
        let latest = match store.latest_revision().await {
            Ok(rev) => rev,
            Err(e) => {
                tracing::warn!(error = %e, "etcd compaction skipped");
                continue;
            }
        };
        if let Some(target) = previous.filter(|&rev| rev > store.compacted_revision()) {
            match store.compact(target).await {
                Ok(()) => tracing::debug!(revision = target, "compacted etcd history"),
                Err(e) => tracing::warn!(error = %e, "etcd compaction failed"),
            }
        }
        previous = Some(latest);
    }
}

#[async_trait::async_trait]
impl Store for EtcdStore {
    fn current_revision(&self) -> Revision {
        self.revision.load(Ordering::Acquire)
    }

    fn compacted_revision(&self) -> Revision {
        self.compacted.load(Ordering::Acquire)
    }

    async fn latest_revision(&self) -> Result<Revision> {
        let response = self
            .range_raw(proto::RangeRequest {
                key: self.codec.prefix.as_bytes().to_vec(),
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(response.header.map_or(0, |h| h.revision))
    }

    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let response = self
            .range_raw(proto::RangeRequest {
                key: self.codec.etcd_key(key),
                ..Default::default()
            })
            .await?;
        Ok(response
            .kvs
            .into_iter()
            .next()
            .map(|kv| self.codec.current(kv)))
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> Result<RangeResult> {
        let etcd_prefix = self.codec.etcd_key(prefix);
        let range_end = prefix_end(&etcd_prefix);
        let mut key = match start_after {
            Some(after) => {
                let mut k = self.codec.etcd_key(after);
                k.push(0);
                k
            }
            None => etcd_prefix,
        };
        let mut at = revision.unwrap_or(0);
        let mut kvs = Vec::new();
        loop {
            let page = if limit == 0 {
                RANGE_PAGE
            } else {
                (limit - kvs.len()).min(RANGE_PAGE as usize) as i64
            };
            let response = self
                .range_raw(proto::RangeRequest {
                    key: key.clone(),
                    range_end: range_end.clone(),
                    limit: page,
                    revision: at,
                    ..Default::default()
                })
                .await?;
            if at == 0 {
                at = response.header.as_ref().map_or(0, |h| h.revision);
            }
            let returned = response.kvs.len();
            let remaining = (response.count as usize).saturating_sub(returned);
            if let Some(last) = response.kvs.last() {
                key = last.key.clone();
                key.push(0);
            }
            kvs.extend(response.kvs.into_iter().map(|kv| self.codec.current(kv)));
            if !response.more || returned == 0 || (limit > 0 && kvs.len() >= limit) {
                return Ok(RangeResult {
                    kvs,
                    revision: at,
                    remaining,
                });
            }
        }
    }

    async fn count(&self, prefix: &str) -> Result<usize> {
        let key = self.codec.etcd_key(prefix);
        let response = self
            .range_raw(proto::RangeRequest {
                range_end: prefix_end(&key),
                key,
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(response.count as usize)
    }

    async fn create(&self, key: &str, encode: Encoder<'_>) -> Result<KeyValue> {
        let etcd_key = self.codec.etcd_key(key);
        let value = encode(UNKNOWN_REVISION);
        crate::check_value_size(&value)?;
        let response = self
            .txn(proto::TxnRequest {
                compare: vec![compare_create(&etcd_key, 0)],
                success: vec![put(&etcd_key, value.clone(), false)],
                failure: vec![read_key(&etcd_key)],
            })
            .await?;
        if !response.succeeded {
            return match self.failure_value(response) {
                Some(current) => Err(Error::AlreadyExists {
                    current: Box::new(current),
                }),
                None => Err(Error::Backend(format!(
                    "etcd: create of {key} failed without a current value"
                ))),
            };
        }
        let revision = response.header.map_or(0, |h| h.revision);
        Ok(KeyValue {
            key: key.into(),
            value: (self.codec.stamp)(&value, revision),
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(&self, key: &str, expected: Revision, encode: Encoder<'_>) -> Result<KeyValue> {
        let etcd_key = self.codec.etcd_key(key);
        let value = encode(UNKNOWN_REVISION);
        crate::check_value_size(&value)?;
        let response = self
            .txn(proto::TxnRequest {
                compare: vec![compare_mod(&etcd_key, expected)],
                success: vec![put(&etcd_key, value.clone(), true)],
                failure: vec![read_key(&etcd_key)],
            })
            .await?;
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        if !response.succeeded {
            return match self.failure_value(response) {
                Some(current) => Err(Error::Conflict {
                    expected,
                    current: Box::new(current),
                }),
                None => Err(Error::NotFound),
            };
        }
        let create_revision = response
            .responses
            .into_iter()
            .find_map(|op| match op.response {
                Some(response_op::Response::Put(p)) => p.prev_kv.map(|kv| kv.create_revision),
                _ => None,
            })
            .unwrap_or(revision);
        Ok(KeyValue {
            key: key.into(),
            value: (self.codec.stamp)(&value, revision),
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
        _tombstone: Option<Encoder<'_>>,
    ) -> Result<KeyValue> {
        let etcd_key = self.codec.etcd_key(key);
        let delete = proto::RequestOp {
            request: Some(request_op::Request::DeleteRange(
                proto::DeleteRangeRequest {
                    key: etcd_key.clone(),
                    prev_kv: true,
                    ..Default::default()
                },
            )),
        };
        let response = self
            .txn(proto::TxnRequest {
                compare: expected
                    .map(|rev| vec![compare_mod(&etcd_key, rev)])
                    .unwrap_or_default(),
                success: vec![delete],
                failure: vec![read_key(&etcd_key)],
            })
            .await?;
        let revision = response.header.as_ref().map_or(0, |h| h.revision);
        if !response.succeeded {
            return match self.failure_value(response) {
                Some(current) => Err(Error::Conflict {
                    expected: expected.unwrap_or(0),
                    current: Box::new(current),
                }),
                None => Err(Error::NotFound),
            };
        }
        let last = response
            .responses
            .into_iter()
            .find_map(|op| match op.response {
                Some(response_op::Response::DeleteRange(d)) => d.prev_kvs.into_iter().next(),
                _ => None,
            })
            .ok_or(Error::NotFound)?;
        Ok(self.codec.convert(last, revision))
    }

    async fn watch(&self, filter: KeyFilter, after: Revision) -> Result<Watch> {
        let (key, range_end) = match &filter {
            KeyFilter::Prefix(p) => {
                let key = self.codec.etcd_key(p);
                let end = prefix_end(&key);
                (key, end)
            }
            KeyFilter::Exact(k) => (self.codec.etcd_key(k), Vec::new()),
        };
        // etcd reports a compacted start only after the watch is created; a read at the start
        // revision answers at once, and also refuses a revision from the future.
        if after > 0 {
            self.range_raw(proto::RangeRequest {
                key: key.clone(),
                count_only: true,
                revision: after,
                ..Default::default()
            })
            .await
            .map_err(|e| match e {
                Error::Compacted { compacted, .. } => {
                    self.compacted.fetch_max(compacted, Ordering::AcqRel);
                    Error::Compacted {
                        requested: after,
                        compacted: self.compacted_revision(),
                    }
                }
                other => other,
            })?;
        }
        let mut stream = self.open_watch(key, range_end, after).await?;
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let progress = Arc::new(AtomicI64::new(after));
        let watch = Watch::new(VecDeque::new(), rx).with_progress(progress.clone());
        let codec = self.codec.clone();
        tokio::spawn(async move {
            loop {
                let response = match stream.message().await {
                    Ok(Some(r)) => r,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "etcd watch ended");
                        return;
                    }
                };
                if response.canceled || response.compact_revision > 0 {
                    return;
                }
                let progress_notify = response.events.is_empty() && !response.created;
                let mut last = None;
                for ev in response.events {
                    let Some(event) = codec.event(ev) else {
                        continue;
                    };
                    last = Some(event.revision());
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
                if let Some(rev) = last {
                    progress.fetch_max(rev, Ordering::AcqRel);
                } else if progress_notify && let Some(h) = &response.header {
                    progress.fetch_max(h.revision, Ordering::AcqRel);
                }
            }
        });
        Ok(watch)
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let result: Result<proto::CompactionResponse> = self
            .call(
                "/etcdserverpb.KV/Compact",
                proto::CompactionRequest {
                    revision,
                    physical: false,
                },
                Some(revision),
            )
            .await;
        match result {
            Ok(_) | Err(Error::Compacted { .. }) => {
                self.compacted.fetch_max(revision, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_next_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(b"a\xff"), b"b".to_vec());
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }
}
