//! The server's own metrics, served at `/metrics` in the Prometheus text format with the names,
//! labels and buckets of kube-apiserver 1.33: requests by verb, resource, scope and code, their
//! latency and response sizes, requests in flight, long-running requests (watches, streams),
//! stored objects per resource, etcd request latency (when the store is etcd) and the process'
//! CPU, memory and start time. Request labels come from the path alone, as kube-apiserver's
//! route labels do; counters and histograms are the `prometheus-client` crate's.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Instant;

use axum::body::{Body, HttpBody};
use axum::http::{Method, Response, header, request::Parts};
use futures::StreamExt;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry as MetricRegistry;
use store::{Encoder, KeyFilter, KeyValue, RangeResult, Result as StoreResult, Revision, Store};

use crate::resources::{self, ResourceType};
use crate::rest::Registry;

pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// kube-apiserver's buckets of `apiserver_request_duration_seconds` and
/// `etcd_request_duration_seconds`.
const DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// kube-apiserver's buckets of `apiserver_response_sizes`: 1 kB to 10 GB by tens.
const SIZE_BUCKETS: [f64; 8] = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// Subresources whose requests are long-running in kube-apiserver (as are watches): they are
/// counted in `apiserver_longrunning_requests` instead of the in-flight requests.
const LONG_RUNNING: [&str; 5] = ["attach", "exec", "log", "portforward", "proxy"];

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

fn size_histogram() -> Histogram {
    Histogram::new(SIZE_BUCKETS)
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// What a resource request addresses, as kube-apiserver labels it.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    component: &'static str,
    group: &'static str,
    resource: &'static str,
    scope: &'static str,
    subresource: &'static str,
    verb: &'static str,
    version: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Timed {
    #[prometheus(flatten)]
    route: Route,
    dry_run: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Answered {
    code: u16,
    #[prometheus(flatten)]
    timed: Timed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestKind {
    request_kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Stored {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EtcdCall {
    operation: &'static str,
    r#type: Cow<'static, str>,
}

/// Latency of store calls, process-wide as the store is: filled by [`timed_etcd`].
static ETCD_DURATIONS: LazyLock<Histograms<EtcdCall>> =
    LazyLock::new(|| Family::new_with_constructor(duration_histogram));
static ETCD_USED: AtomicBool = AtomicBool::new(false);

/// The series of one server.
pub struct ServerMetrics {
    registry: MetricRegistry,
    requests: Family<Answered, Counter>,
    durations: Histograms<Timed>,
    sizes: Histograms<Route>,
    longrunning: Family<Route, Gauge>,
    stored: Family<Stored, Gauge>,
    /// `apiserver_current_inflight_requests` of read-only and of mutating requests.
    inflight: [Gauge; 2],
}

impl Default for ServerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerMetrics {
    pub fn new() -> Self {
        let requests = Family::<Answered, Counter>::default();
        let durations: Histograms<Timed> = Family::new_with_constructor(duration_histogram);
        let sizes: Histograms<Route> = Family::new_with_constructor(size_histogram);
        let longrunning = Family::<Route, Gauge>::default();
        let stored = Family::<Stored, Gauge>::default();
        let inflight_family = Family::<RequestKind, Gauge>::default();
        let inflight = ["readOnly", "mutating"]
            .map(|kind| inflight_family.get_or_create_owned(&RequestKind { request_kind: kind }));
        let mut registry = MetricRegistry::default();
        registry.register(
            "apiserver_request",
            "[STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "[STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component",
            durations.clone(),
        );
        registry.register(
            "apiserver_response_sizes",
            "[STABLE] Response size distribution in bytes for each group, version, verb, resource, subresource, scope and component",
            sizes.clone(),
        );
        registry.register(
            "apiserver_current_inflight_requests",
            "[STABLE] Maximal number of currently used inflight request limit of this apiserver per request kind in last second",
            inflight_family,
        );
        registry.register(
            "apiserver_longrunning_requests",
            "[STABLE] Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way",
            longrunning.clone(),
        );
        registry.register(
            "apiserver_storage_objects",
            "[STABLE] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1",
            stored.clone(),
        );
        if ETCD_USED.load(Ordering::Relaxed) {
            registry.register(
                "etcd_request_duration_seconds",
                "[ALPHA] Etcd request latency in seconds for each operation and object type",
                ETCD_DURATIONS.clone(),
            );
        }
        registry.register_collector(Box::new(Process));
        Self {
            registry,
            requests,
            durations,
            sizes,
            longrunning,
            stored,
            inflight,
        }
    }

    /// Starts tracking a request if it addresses a served resource (kube-apiserver counts the
    /// requests its resource routes answer). Dropping the result without [`Tracked::end`] counts
    /// nothing but the time in flight.
    pub(crate) fn begin(self: &Arc<Self>, registry: &Registry, req: &Parts) -> Option<Tracked> {
        let (route, dry_run) = resolve(registry, req)?;
        let long_running = route.verb == "WATCH" || LONG_RUNNING.contains(&route.subresource);
        let kind = if long_running {
            self.longrunning.get_or_create(&route).inc();
            None
        } else {
            let kind = usize::from(!matches!(req.method, Method::GET | Method::HEAD));
            self.inflight[kind].inc();
            Some(kind)
        };
        Some(Tracked {
            metrics: self.clone(),
            route,
            dry_run,
            kind,
            started: Instant::now(),
            answer: None,
        })
    }

    /// The exposition of every series, after counting the stored objects.
    pub(crate) async fn render(&self, registry: &Registry) -> String {
        self.count_stored(registry).await;
        let mut out = String::with_capacity(64 << 10);
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }

    /// Sets `apiserver_storage_objects` from the store's count of each stored resource.
    async fn count_stored(&self, registry: &Registry) {
        let mut seen: HashMap<String, &'static ResourceType> = HashMap::new();
        for r in registry.types().into_iter().filter(|r| r.is_stored()) {
            seen.entry(resource_label(r)).or_insert(r);
        }
        let counts = futures::future::join_all(seen.into_iter().map(|(label, r)| async move {
            let prefix = r.key_prefix();
            let n = registry.store.count(&prefix).await;
            (label, n.map_or(-1, |n| n as i64))
        }))
        .await;
        self.stored.clear();
        for (resource, n) in counts {
            self.stored.get_or_create(&Stored { resource }).set(n);
        }
    }
}

/// The `resource` label kube-apiserver gives a stored type: `pods`, `deployments.apps`.
fn resource_label(r: &ResourceType) -> String {
    if r.group.is_empty() {
        r.plural.to_string()
    } else {
        format!("{}.{}", r.plural, r.group)
    }
}

/// A request being served; recorded when it is dropped after [`Tracked::end`].
pub(crate) struct Tracked {
    metrics: Arc<ServerMetrics>,
    route: Route,
    dry_run: &'static str,
    /// Index into `inflight`, or `None` for a long-running request.
    kind: Option<usize>,
    started: Instant,
    /// Status code and body size, once answered.
    answer: Option<(u16, Option<u64>)>,
}

impl Tracked {
    /// Records the answer. The body of a long-running answer carries the record until the
    /// stream ends, so watches are counted, and timed, when they close, as in kube-apiserver.
    pub(crate) fn end(mut self, resp: Response<Body>) -> Response<Body> {
        let size = resp.body().size_hint().exact();
        self.answer = Some((resp.status().as_u16(), size));
        if self.kind.is_some() || !resp.status().is_success() {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let stream = body.into_data_stream().map(move |chunk| {
            let _carried = &self;
            chunk
        });
        Response::from_parts(parts, Body::from_stream(stream))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let m = &self.metrics;
        match self.kind {
            Some(kind) => m.inflight[kind].dec(),
            None => m.longrunning.get_or_create(&self.route).dec(),
        };
        let Some((code, size)) = self.answer else {
            return;
        };
        let timed = Timed {
            route: self.route,
            dry_run: self.dry_run,
        };
        let seconds = self.started.elapsed().as_secs_f64();
        m.durations.get_or_create(&timed).observe(seconds);
        if let (Some(size), "GET" | "LIST") = (size, self.route.verb) {
            m.sizes.get_or_create(&self.route).observe(size as f64);
        }
        m.requests.get_or_create(&Answered { code, timed }).inc();
    }
}

/// The HTTP methods kube-apiserver reports, by name.
const VERBS: [(&Method, &str); 6] = [
    (&Method::GET, "GET"),
    (&Method::HEAD, "GET"),
    (&Method::POST, "POST"),
    (&Method::PUT, "PUT"),
    (&Method::PATCH, "PATCH"),
    (&Method::DELETE, "DELETE"),
];

/// The labels of a request to a served resource, and its `dry_run` label, from its method,
/// path, query and content type as kube-apiserver reads them: GETs of collections are `LIST`,
/// `watch=true` (or the legacy `/watch/` path) `WATCH`, server-side applies `APPLY`; the scope
/// is `resource` for a named object or a POST, else `namespace` or `cluster`.
fn resolve(registry: &Registry, req: &Parts) -> Option<(Route, &'static str)> {
    let verb = VERBS.iter().find(|(m, _)| **m == req.method)?.1;
    let mut held = [""; 8];
    let mut n = 0;
    for segment in req.uri.path().split('/').filter(|s| !s.is_empty()).take(8) {
        held[n] = segment;
        n += 1;
    }
    let (group, version, rest) = match &held[..n] {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let (legacy_watch, rest) = match rest {
        ["watch", tail @ ..] if !tail.is_empty() => (true, tail),
        _ => (false, rest),
    };
    let find = |plural: &str| registry.find(group, version, plural);
    let (r, namespaced, tail) = match rest {
        ["namespaces", _, plural, tail @ ..] => match find(plural).filter(|r| r.namespaced) {
            Some(r) => (r, true, tail),
            None => (find("namespaces")?, false, &rest[1..]),
        },
        [plural, tail @ ..] => match find(plural)? {
            r if r.namespaced && !tail.is_empty() => return None,
            r => (r, false, tail),
        },
        [] => return None,
    };
    let subresource = match tail.get(1) {
        Some(sub) => *r.subresources.iter().find(|s| *s == sub)?,
        None => "",
    };
    let scope = match (tail.is_empty(), namespaced) {
        (false, _) => "resource",
        _ if verb == "POST" => "resource",
        (true, true) => "namespace",
        (true, false) => "cluster",
    };
    let query = Query(req.uri.query().unwrap_or(""));
    let verb = match verb {
        _ if legacy_watch || query.watch() => "WATCH",
        "GET" if scope != "resource" => "LIST",
        "PATCH" if is_apply(req) => "APPLY",
        verb => verb,
    };
    let route = Route {
        component: "apiserver",
        group: r.group,
        resource: r.plural,
        scope,
        subresource,
        verb,
        version: r.version,
    };
    Some((route, query.dry_run()))
}

fn is_apply(req: &Parts) -> bool {
    req.headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/apply-patch+yaml")
}

/// The parameters of a query string the labels depend on.
struct Query<'a>(&'a str);

impl Query<'_> {
    fn values(&self, key: &str) -> impl Iterator<Item = Cow<'_, str>> {
        form_urlencoded::parse(self.0.as_bytes())
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    fn watch(&self) -> bool {
        self.0.contains("watch") && self.values("watch").any(|v| v == "true" || v == "1")
    }

    /// kube-apiserver's `dry_run` label: the values given, which may only be `All`.
    fn dry_run(&self) -> &'static str {
        if !self.0.contains("dryRun") {
            return "";
        }
        let values: Vec<_> = self.values("dryRun").collect();
        match values.as_slice() {
            [] => "",
            [v] if v == "All" => "All",
            _ => "invalid",
        }
    }
}

/// Times the calls made to `store` (an etcd store) in `etcd_request_duration_seconds`.
pub fn timed_etcd(store: Arc<dyn Store>) -> Arc<dyn Store> {
    ETCD_USED.store(true, Ordering::Relaxed);
    Arc::new(TimedStore(store))
}

struct TimedStore(Arc<dyn Store>);

fn observe(operation: &'static str, key: &str, started: Instant) {
    let call = EtcdCall {
        operation,
        r#type: object_type(key),
    };
    ETCD_DURATIONS
        .get_or_create(&call)
        .observe(started.elapsed().as_secs_f64());
}

/// Store keys whose resource is not the key's first segment, as laid out by
/// [`ResourceType::key_prefix`].
const KEY_NAMES: [(&str, &str); 5] = [
    ("minions", "nodes"),
    ("controllers", "replicationcontrollers"),
    ("services/specs", "services"),
    ("services/endpoints", "endpoints"),
    ("ingress", "ingresses.networking.k8s.io"),
];

/// The `type` label of a store key: the resource it holds (`pods`, `deployments.apps`).
fn object_type(key: &str) -> Cow<'static, str> {
    static BUILT_IN: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    let names = BUILT_IN.get_or_init(|| {
        let mut names: HashMap<&'static str, &'static str> = KEY_NAMES.into_iter().collect();
        for r in resources::RESOURCES.iter() {
            let label: &'static str = resource_label(r).leak();
            names.entry(r.plural).or_insert(label);
        }
        names
    });
    let rest = key.strip_prefix("/registry/").unwrap_or(key);
    let mut parts = rest.splitn(3, '/');
    let first = parts.next().unwrap_or("");
    let second = parts.next().unwrap_or("");
    if first.contains('.') {
        return Cow::Owned(format!("{second}.{first}"));
    }
    let two = rest.get(..first.len() + 1 + second.len()).unwrap_or("");
    match names.get(two).or_else(|| names.get(first)) {
        Some(label) => Cow::Borrowed(label),
        None => Cow::Owned(first.to_string()),
    }
}

#[async_trait::async_trait]
impl Store for TimedStore {
    fn current_revision(&self) -> Revision {
        self.0.current_revision()
    }

    fn compacted_revision(&self) -> Revision {
        self.0.compacted_revision()
    }

    async fn latest_revision(&self) -> StoreResult<Revision> {
        self.0.latest_revision().await
    }

    async fn get(&self, key: &str) -> StoreResult<Option<KeyValue>> {
        let started = Instant::now();
        let out = self.0.get(key).await;
        observe("get", key, started);
        out
    }

    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> StoreResult<RangeResult> {
        let started = Instant::now();
        let out = self.0.range(prefix, start_after, limit, revision).await;
        observe("list", prefix, started);
        out
    }

    async fn range_page(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
        revision: Option<Revision>,
    ) -> StoreResult<RangeResult> {
        let started = Instant::now();
        let out = self
            .0
            .range_page(prefix, start_after, limit, revision)
            .await;
        observe("list", prefix, started);
        out
    }

    async fn count(&self, prefix: &str) -> StoreResult<usize> {
        let started = Instant::now();
        let out = self.0.count(prefix).await;
        observe("listWithCount", prefix, started);
        out
    }

    async fn create(&self, key: &str, encode: Encoder<'_>) -> StoreResult<KeyValue> {
        let started = Instant::now();
        let out = self.0.create(key, encode).await;
        observe("create", key, started);
        out
    }

    async fn update(
        &self,
        key: &str,
        expected: Revision,
        encode: Encoder<'_>,
    ) -> StoreResult<KeyValue> {
        let started = Instant::now();
        let out = self.0.update(key, expected, encode).await;
        observe("update", key, started);
        out
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
        tombstone: Option<Encoder<'_>>,
    ) -> StoreResult<KeyValue> {
        let started = Instant::now();
        let out = self.0.delete(key, expected, tombstone).await;
        observe("delete", key, started);
        out
    }

    async fn watch(&self, filter: KeyFilter, after: Revision) -> StoreResult<store::Watch> {
        self.0.watch(filter, after).await
    }

    async fn compact(&self, revision: Revision) -> StoreResult<()> {
        self.0.compact(revision).await
    }
}

/// The process series of Prometheus' client libraries, read from `/proc/self` at each scrape.
#[derive(Debug, Default)]
struct Process;

/// CPU seconds, resident bytes and start time (seconds since the epoch) of this process.
fn process_figures() -> Option<(f64, i64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK) as f64,
            libc::sysconf(libc::_SC_PAGESIZE) as f64,
        )
    };
    let cpu = (field(14)? + field(15)?) / ticks;
    let rss = (field(24)? * page) as i64;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse::<f64>().ok())?;
    Some((cpu, rss, boot + field(22)? / ticks))
}

impl Collector for Process {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((cpu, rss, start)) = process_figures() else {
            return Ok(());
        };
        let series: [(&str, &str, MetricType, &dyn EncodeMetric); 3] = [
            (
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                MetricType::Counter,
                &ConstCounter::new(cpu),
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                MetricType::Gauge,
                &ConstGauge::new(rss),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                MetricType::Gauge,
                &ConstGauge::new(start),
            ),
        ];
        for (name, help, kind, value) in series {
            value.encode(encoder.encode_descriptor(name, help, None, kind)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_name_their_resource() {
        let cases = [
            ("/registry/pods/default/web", "pods"),
            ("/registry/minions/n1", "nodes"),
            ("/registry/services/specs/default/s", "services"),
            ("/registry/services/endpoints/default/s", "endpoints"),
            ("/registry/deployments/default/d", "deployments.apps"),
            (
                "/registry/events.k8s.io/events/default/e",
                "events.events.k8s.io",
            ),
            (
                "/registry/example.com/widgets/default/w",
                "widgets.example.com",
            ),
            ("/registry/pods/", "pods"),
        ];
        for (key, label) in cases {
            assert_eq!(object_type(key), label, "{key}");
        }
    }

    #[test]
    fn queries_give_watch_and_dry_run() {
        let cases = [
            ("", false, ""),
            ("watch=true&dryRun=All", true, "All"),
            ("watch=1", true, ""),
            ("watch=false&dryRun=Some", false, "invalid"),
            ("allowWatchBookmarks=true", false, ""),
        ];
        for (query, watch, dry_run) in cases {
            let q = Query(query);
            assert_eq!((q.watch(), q.dry_run()), (watch, dry_run), "{query}");
        }
    }

    fn labels(method: &str, uri: &str, content_type: &str) -> Option<(String, &'static str)> {
        static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
            Registry::new(
                store::LocalStore::in_memory(),
                Arc::new(crate::build_openapi()),
            )
        });
        let req = axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .header(header::CONTENT_TYPE, content_type)
            .body(())
            .unwrap();
        let (route, dry_run) = resolve(&REGISTRY, &req.into_parts().0)?;
        let Route {
            verb,
            group,
            version,
            resource,
            subresource,
            scope,
            ..
        } = route;
        let text = format!("{verb} {group}/{version} {resource}/{subresource} {scope}");
        Some((text, dry_run))
    }

    #[test]
    fn requests_are_labelled_as_kube_apiserver_labels_them() {
        let json = "application/json";
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                json,
                "LIST /v1 pods/ namespace",
            ),
            (
                "GET",
                "/api/v1/pods?watch=true",
                json,
                "WATCH /v1 pods/ cluster",
            ),
            (
                "GET",
                "/api/v1/watch/namespaces/default/pods",
                json,
                "WATCH /v1 pods/ namespace",
            ),
            (
                "GET",
                "/api/v1/namespaces/default/pods/p",
                json,
                "GET /v1 pods/ resource",
            ),
            (
                "POST",
                "/api/v1/namespaces/default/pods",
                json,
                "POST /v1 pods/ resource",
            ),
            (
                "PUT",
                "/api/v1/namespaces/default/pods/p/status",
                json,
                "PUT /v1 pods/status resource",
            ),
            (
                "DELETE",
                "/apis/apps/v1/namespaces/ns/deployments",
                json,
                "DELETE apps/v1 deployments/ namespace",
            ),
            (
                "PATCH",
                "/apis/apps/v1/namespaces/ns/deployments/d",
                "application/apply-patch+yaml",
                "APPLY apps/v1 deployments/ resource",
            ),
            ("GET", "/api/v1/nodes", json, "LIST /v1 nodes/ cluster"),
            (
                "GET",
                "/api/v1/namespaces/default",
                json,
                "GET /v1 namespaces/ resource",
            ),
            (
                "PUT",
                "/api/v1/namespaces/default/finalize",
                json,
                "PUT /v1 namespaces/finalize resource",
            ),
            (
                "GET",
                "/api/v1/nodes/n1/proxy/metrics/resource",
                json,
                "GET /v1 nodes/proxy resource",
            ),
        ];
        for (method, uri, content_type, want) in cases {
            let got = labels(method, uri, content_type).map(|(text, _)| text);
            assert_eq!(got.as_deref(), Some(want), "{method} {uri}");
        }
        let dry = labels("POST", "/api/v1/namespaces/default/pods?dryRun=All", json);
        assert_eq!(dry.map(|(_, d)| d), Some("All"));
        for uri in [
            "/api/v1/widgets",
            "/healthz",
            "/apis/apps/v1",
            "/api/v1/pods/p/bogus",
        ] {
            assert_eq!(labels("GET", uri, json), None, "{uri}");
        }
    }

    #[test]
    fn process_figures_are_read() {
        let (cpu, rss, start) = process_figures().expect("/proc is readable");
        assert!(cpu >= 0.0 && rss > 0 && start > 1.0e9);
    }
}
