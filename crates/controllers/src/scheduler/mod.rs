//! The scheduler: binds pods whose `spec.schedulerName` names one of its profiles (by default
//! only `default-scheduler`; a `KubeSchedulerConfiguration` may give several) to nodes, with
//! kube-scheduler's default filters (node name, unschedulable, nodeSelector and node affinity,
//! taints and tolerations, resource requests, inter-pod affinity and anti-affinity, topology
//! spread), its default scores (least allocated, balanced allocation, preferred node and pod
//! affinity, PreferNoSchedule taints, ScheduleAnyway spread) and preemption of lower-priority
//! pods.
//!
//! One list+watch per kind feeds an in-memory cache of nodes and of what each node has given out
//! (pods with `spec.nodeName` that have not finished). A single loop takes pods from a priority
//! queue, picks a node, records the choice in the cache at once ("assumes" it) and binds through
//! `pods/binding` concurrently with the next decisions. A pod that fits nowhere gets
//! `PodScheduled=False` (`Unschedulable`) and a `FailedScheduling` event and waits until a node
//! is added or changes or a pod frees room.

mod algorithm;
pub mod config;
pub(crate) mod model;
mod profile;
pub(crate) mod quantity;

use client::JsonAt;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use client::{Cluster, DeleteParams, ListParams, Pager, Patch, Resource, WatchEvent};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use algorithm::Rng;
use model::{Cache, NodeInfo, PodInfo, PodKey};
use profile::Profile;

pub use config::SchedulerConfig;

pub use quantity::{parse_milli, parse_units};

/// The scheduler name pods ask for by default.
pub const DEFAULT_SCHEDULER: &str = "default-scheduler";

/// Writes (bindings, status updates, events) allowed at once.
const MAX_IN_FLIGHT: usize = 512;
/// Least time between two retries of the unschedulable pods.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Unschedulable pods are retried at least this often.
const PERIODIC_FLUSH: Duration = Duration::from_secs(30);
/// Delay before retrying a pod whose binding failed.
const BIND_RETRY: Duration = Duration::from_secs(1);

/// The scheduler over a cluster.
pub struct Scheduler {
    cluster: Arc<dyn Cluster>,
    config: SchedulerConfig,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Node,
    Pod,
}

/// A full list of one kind, parsed page by page as it was read (the decoded objects are not
/// kept: a pod's JSON value is many times the size of what the scheduler needs of it).
enum Listed {
    Nodes(Vec<NodeInfo>),
    Pods(Vec<PodInfo>),
}

impl Listed {
    fn new(kind: Kind) -> Listed {
        match kind {
            Kind::Node => Listed::Nodes(Vec::new()),
            Kind::Pod => Listed::Pods(Vec::new()),
        }
    }

    fn add(&mut self, page: &[client::EncodedObject]) {
        let objects = page.iter().map(|item| &item.object);
        match self {
            Listed::Nodes(nodes) => nodes.extend(objects.filter_map(NodeInfo::parse)),
            Listed::Pods(pods) => pods.extend(objects.filter_map(PodInfo::parse)),
        }
    }
}

enum Input {
    Reset(Listed),
    Upsert(Kind, Arc<Value>),
    Delete(Kind, Arc<Value>),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Queued,
    InFlight(String),
    Parked,
}

struct Pending {
    state: State,
    signature: u64,
    last_message: Option<String>,
    nominated: Option<String>,
    /// Failed attempts so far, and the earliest retry (kube-scheduler's backoff: 1 s
    /// doubling up to 10 s).
    attempts: u32,
    retry_after: Instant,
}

/// kube-scheduler's backoff: `initial` doubling up to `max`.
fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    initial
        .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(16)))
        .min(max)
}

enum Outcome {
    Bound {
        pod: Arc<PodInfo>,
        node: String,
        result: client::Result<()>,
    },
    Done,
}

impl Scheduler {
    /// A scheduler with kube-scheduler's default profile, named `default-scheduler`.
    pub fn new(cluster: Arc<dyn Cluster>) -> Self {
        Self {
            cluster,
            config: SchedulerConfig::default(),
        }
    }

    /// Serves pods that ask for another `spec.schedulerName`, with the default profile.
    pub fn with_name(mut self, name: &str) -> Self {
        self.config.profiles = vec![Profile::default_named(name)];
        self
    }

    /// Runs the profiles and queue settings of a `KubeSchedulerConfiguration`.
    pub fn with_config(mut self, config: SchedulerConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs until the task is dropped.
    pub async fn run(self) {
        let (tx, mut rx) = mpsc::channel::<Input>(8192);
        tokio::spawn(follow(
            self.cluster.clone(),
            Resource::nodes(),
            Kind::Node,
            tx.clone(),
        ));
        tokio::spawn(follow(
            self.cluster.clone(),
            Resource::pods(),
            Kind::Pod,
            tx.clone(),
        ));
        drop(tx);
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64);
        let mut r = Runner {
            cluster: self.cluster,
            profiles: self.config.profiles.into_iter().map(Arc::new).collect(),
            initial_backoff: self.config.initial_backoff,
            max_backoff: self.config.max_backoff,
            cache: Cache::default(),
            pending: HashMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            synced: [false, false],
            flush_at: None,
            last_flush: Instant::now(),
            parked_affinity: HashSet::new(),
            start: 0,
            rng: Rng::new(seed),
            inflight: FuturesUnordered::new(),
            event_seq: 0,
        };
        let mut burst = 0u32;
        loop {
            loop {
                match rx.try_recv() {
                    Ok(input) => r.apply(input),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
            while let Some(Some(outcome)) = r.inflight.next().now_or_never() {
                r.finish(outcome);
            }
            r.maybe_flush();
            if r.ready() && r.inflight.len() < MAX_IN_FLIGHT && !r.queue.is_empty() {
                r.schedule_next();
                burst += 1;
                if burst.is_multiple_of(64) {
                    tokio::task::yield_now().await;
                }
                continue;
            }
            let wake = r
                .flush_at
                .unwrap_or(r.last_flush + PERIODIC_FLUSH)
                .max(Instant::now());
            tokio::select! {
                input = rx.recv() => match input {
                    Some(input) => r.apply(input),
                    None => return,
                },
                Some(outcome) = r.inflight.next(), if !r.inflight.is_empty() => r.finish(outcome),
                _ = tokio::time::sleep_until(wake) => {
                    if r.flush_at.is_none() {
                        r.flush_at = Some(Instant::now());
                    }
                }
            }
        }
    }
}

struct Runner {
    cluster: Arc<dyn Cluster>,
    profiles: Vec<Arc<Profile>>,
    initial_backoff: Duration,
    max_backoff: Duration,
    cache: Cache,
    pending: HashMap<PodKey, Pending>,
    /// (priority, arrival) – higher priority first, then first come.
    queue: BinaryHeap<(i32, Reverse<u64>, PodKey)>,
    seq: u64,
    synced: [bool; 2],
    flush_at: Option<Instant>,
    last_flush: Instant,
    /// Parked pods with required pod affinity: a newly placed pod may satisfy them.
    parked_affinity: HashSet<PodKey>,
    start: usize,
    rng: Rng,
    inflight: FuturesUnordered<BoxFuture<'static, Outcome>>,
    event_seq: u64,
}

impl Runner {
    /// The profile serving pods that name `scheduler`.
    fn profile(&self, scheduler: &str) -> Option<&Arc<Profile>> {
        self.profiles.iter().find(|p| p.name == scheduler)
    }

    fn ready(&self) -> bool {
        self.synced[0] && self.synced[1]
    }

    fn enqueue(&mut self, key: PodKey, priority: i32) {
        self.seq += 1;
        self.queue.push((priority, Reverse(self.seq), key));
    }

    fn request_flush(&mut self, after: Duration) {
        let at = (Instant::now() + after).max(self.last_flush + FLUSH_INTERVAL);
        self.flush_at = Some(self.flush_at.map_or(at, |f| f.min(at)));
    }

    fn maybe_flush(&mut self) {
        if !self.ready() || self.flush_at.is_none_or(|f| f > Instant::now()) {
            return;
        }
        let now = Instant::now();
        self.flush_at = None;
        self.last_flush = now;
        let mut moved = Vec::new();
        let mut later: Option<Instant> = None;
        for (key, p) in self.pending.iter_mut() {
            if p.state == State::Parked {
                if p.retry_after <= now {
                    p.state = State::Queued;
                    moved.push(key.clone());
                } else {
                    later = Some(later.map_or(p.retry_after, |l| l.min(p.retry_after)));
                }
            }
        }
        // Pods still backing off see the change once their backoff ends.
        self.flush_at = later;
        for key in &moved {
            self.parked_affinity.remove(key);
        }
        for key in moved {
            let priority = self.cache.pods.get(&key).map_or(0, |p| p.priority);
            self.enqueue(key, priority);
        }
    }

    fn apply(&mut self, input: Input) {
        match input {
            Input::Reset(Listed::Nodes(nodes)) => {
                self.cache.clear_nodes();
                for n in nodes {
                    self.cache.upsert_node(n);
                }
                self.synced[0] = true;
                self.request_flush(Duration::ZERO);
            }
            Input::Reset(Listed::Pods(pods)) => {
                self.cache.clear_pods();
                self.pending
                    .retain(|_, p| matches!(p.state, State::InFlight(_)));
                for p in pods {
                    self.on_pod(p);
                }
                self.synced[1] = true;
                self.request_flush(Duration::ZERO);
            }
            Input::Upsert(Kind::Node, obj) => {
                if let Some(n) = NodeInfo::parse(&obj)
                    && self.cache.upsert_node(n)
                {
                    self.request_flush(Duration::ZERO);
                }
            }
            Input::Delete(Kind::Node, obj) => {
                if let Some(name) = obj.at("/metadata/name").and_then(Value::as_str) {
                    self.cache.remove_node(name);
                }
            }
            Input::Upsert(Kind::Pod, obj) => {
                if let Some(p) = PodInfo::parse(&obj) {
                    self.on_pod(p);
                }
            }
            Input::Delete(Kind::Pod, obj) => {
                let (Some(ns), Some(name)) = (
                    obj.at("/metadata/namespace").and_then(Value::as_str),
                    obj.at("/metadata/name").and_then(Value::as_str),
                ) else {
                    return;
                };
                let key = format!("{ns}/{name}");
                if self.cache.remove_pod(&key) {
                    self.request_flush(Duration::ZERO);
                }
                self.cache.nominations.remove(&key);
                if self
                    .pending
                    .get(&key)
                    .is_some_and(|p| !matches!(p.state, State::InFlight(_)))
                {
                    self.pending.remove(&key);
                }
                self.parked_affinity.remove(&key);
            }
        }
    }

    fn on_pod(&mut self, mut info: PodInfo) {
        let key = info.key();
        let wants = self.profile(&info.scheduler_name).is_some()
            && info.node_name.is_none()
            && !info.deleting
            && !info.terminal;
        let in_flight = match self.pending.get(&key).map(|p| &p.state) {
            Some(State::InFlight(node)) => Some(node.clone()),
            _ => None,
        };
        if let Some(node) = &in_flight
            && info.node_name.is_none()
        {
            // Keep the assumed placement until the binding answers.
            info.node_name = Some(node.clone());
        }
        let was_placed = self
            .cache
            .pods
            .get(&key)
            .is_some_and(|p| p.node_name.is_some());
        let placed = info.node_name.is_some() && !info.terminal;
        let (signature, priority) = (info.signature, info.priority);
        if self.cache.upsert_pod(info) {
            self.request_flush(Duration::ZERO);
        }
        if placed && !was_placed && !self.parked_affinity.is_empty() {
            self.request_flush(Duration::ZERO);
        }
        if in_flight.is_some() {
            return;
        }
        if !wants {
            self.pending.remove(&key);
            self.cache.nominations.remove(&key);
            self.parked_affinity.remove(&key);
            return;
        }
        match self.pending.get_mut(&key) {
            None => {
                self.pending.insert(
                    key.clone(),
                    Pending {
                        state: State::Queued,
                        signature,
                        last_message: None,
                        nominated: None,
                        attempts: 0,
                        retry_after: Instant::now(),
                    },
                );
                self.enqueue(key, priority);
            }
            Some(p) => {
                let changed = p.signature != signature;
                p.signature = signature;
                if changed && p.state == State::Parked {
                    p.state = State::Queued;
                    self.parked_affinity.remove(&key);
                    self.enqueue(key, priority);
                }
            }
        }
    }

    fn schedule_next(&mut self) {
        let Some((_, _, key)) = self.queue.pop() else {
            return;
        };
        if self.pending.get(&key).map(|p| &p.state) != Some(&State::Queued) {
            return;
        }
        let (Some(pod), Some(profile)) = (
            self.cache.pods.get(&key).cloned(),
            self.cache
                .pods
                .get(&key)
                .and_then(|p| self.profile(&p.scheduler_name))
                .cloned(),
        ) else {
            self.pending.remove(&key);
            return;
        };
        let defaulted = profile.with_default_spread(&pod);
        let subject = defaulted.as_ref().unwrap_or(&pod);
        match algorithm::schedule(
            &profile,
            &self.cache,
            subject,
            &mut self.start,
            &mut self.rng,
        ) {
            Ok(node) => {
                let mut assumed = (*pod).clone();
                assumed.node_name = Some(node.clone());
                self.cache.upsert_pod(assumed);
                if let Some(p) = self.pending.get_mut(&key) {
                    p.state = State::InFlight(node.clone());
                }
                let cluster = self.cluster.clone();
                self.inflight.push(
                    async move {
                        let result = cluster.bind(&pod.namespace, &pod.name, &node).await;
                        Outcome::Bound { pod, node, result }
                    }
                    .boxed(),
                );
            }
            Err(err) => {
                let mut message = err.message();
                let nominated = self
                    .pending
                    .get(&key)
                    .and_then(|p| p.nominated.clone())
                    .or_else(|| pod.nominated_node.clone());
                let mut plan = None;
                let waiting = nominated
                    .as_deref()
                    .is_some_and(|n| algorithm::waiting_for_victims(&self.cache, &pod, n));
                if !waiting && err.total > 0 && profile.preemption {
                    match algorithm::preempt(&profile, &self.cache, subject, &err) {
                        Ok(p) => plan = Some(p),
                        Err(m) => message = format!("{message} {m}"),
                    }
                }
                let Some(p) = self.pending.get_mut(&key) else {
                    return;
                };
                p.state = State::Parked;
                p.attempts += 1;
                p.retry_after =
                    Instant::now() + backoff(p.attempts, self.initial_backoff, self.max_backoff);
                if !pod.affinity.is_empty() {
                    self.parked_affinity.insert(key.clone());
                }
                if p.last_message.as_deref() != Some(message.as_str()) {
                    p.last_message = Some(message.clone());
                    self.record_failure(&pod, message);
                }
                if let Some(plan) = plan {
                    if let Some(p) = self.pending.get_mut(&key) {
                        p.nominated = Some(plan.node.clone());
                    }
                    self.cache.nominations.insert(
                        key.clone(),
                        (plan.node.clone(), pod.priority, pod.requests.clone()),
                    );
                    self.carry_out(&pod, plan);
                }
            }
        }
    }

    fn record_failure(&mut self, pod: &Arc<PodInfo>, message: String) {
        let patch = json!({"status": {"conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now_rfc3339(),
        }]}});
        let event = self.event(pod, "Warning", "FailedScheduling", "Scheduling", &message);
        let cluster = self.cluster.clone();
        let (ns, name) = (pod.namespace.clone(), pod.name.clone());
        self.inflight.push(
            async move {
                if let Err(e) = cluster
                    .patch(
                        &Resource::pods(),
                        Some(&ns),
                        &name,
                        &Patch::Strategic(patch),
                        Some("status"),
                    )
                    .await
                    && !e.is_not_found()
                {
                    tracing::warn!(pod = %name, error = %e, "record unschedulable condition");
                }
                create_event(&*cluster, &ns, event).await;
                Outcome::Done
            }
            .boxed(),
        );
    }

    /// Nominates the node and deletes the victims.
    fn carry_out(&mut self, pod: &Arc<PodInfo>, plan: algorithm::Preemption) {
        tracing::info!(pod = %pod.key(), node = %plan.node, victims = plan.victims.len(), "preempting");
        let mut events = Vec::new();
        for v in &plan.victims {
            let message = format!("Preempted by pod {} on node {}", pod.uid, plan.node);
            events.push((
                v.namespace.clone(),
                self.event(v, "Normal", "Preempted", "Preempting", &message),
            ));
            // Count the victim as leaving so a retry does not pick more victims.
            let mut leaving = (**v).clone();
            leaving.deleting = true;
            self.cache.upsert_pod(leaving);
        }
        let cluster = self.cluster.clone();
        let (ns, name) = (pod.namespace.clone(), pod.name.clone());
        let victims: Vec<(String, String)> = plan
            .victims
            .iter()
            .map(|v| (v.namespace.clone(), v.name.clone()))
            .collect();
        let node = plan.node;
        self.inflight.push(
            async move {
                let patch = json!({"status": {"nominatedNodeName": node}});
                if let Err(e) = cluster
                    .patch(
                        &Resource::pods(),
                        Some(&ns),
                        &name,
                        &Patch::Strategic(patch),
                        Some("status"),
                    )
                    .await
                {
                    tracing::debug!(pod = %name, error = %e, "nominate node");
                }
                for (vns, vname) in victims {
                    if let Err(e) = cluster
                        .delete(
                            &Resource::pods(),
                            Some(&vns),
                            &vname,
                            &DeleteParams::default(),
                        )
                        .await
                        && !e.is_not_found()
                    {
                        tracing::warn!(pod = %vname, error = %e, "delete preemption victim");
                    }
                }
                for (vns, event) in events {
                    create_event(&*cluster, &vns, event).await;
                }
                Outcome::Done
            }
            .boxed(),
        );
    }

    fn finish(&mut self, outcome: Outcome) {
        let Outcome::Bound { pod, node, result } = outcome else {
            return;
        };
        let key = pod.key();
        match result {
            Ok(()) => {
                self.pending.remove(&key);
                self.cache.nominations.remove(&key);
                let message = format!(
                    "Successfully assigned {}/{} to {node}",
                    pod.namespace, pod.name
                );
                let event = self.event(&pod, "Normal", "Scheduled", "Binding", &message);
                let cluster = self.cluster.clone();
                self.inflight.push(
                    async move {
                        create_event(&*cluster, &pod.namespace, event).await;
                        Outcome::Done
                    }
                    .boxed(),
                );
            }
            Err(e) if e.is_not_found() || e.is_conflict() => {
                // Deleted, being deleted or bound elsewhere: the watch tells the truth.
                tracing::debug!(pod = %key, error = %e, "binding refused");
                self.pending.remove(&key);
            }
            Err(e) => {
                tracing::warn!(pod = %key, %node, error = %e, "bind");
                if let Some(current) = self.cache.pods.get(&key)
                    && current.node_name.as_deref() == Some(node.as_str())
                {
                    let mut back = (**current).clone();
                    back.node_name = None;
                    self.cache.upsert_pod(back);
                }
                if let Some(p) = self.pending.get_mut(&key) {
                    p.state = State::Parked;
                }
                self.request_flush(BIND_RETRY);
            }
        }
    }

    fn event(
        &mut self,
        pod: &PodInfo,
        kind: &str,
        reason: &str,
        action: &str,
        message: &str,
    ) -> Value {
        self.event_seq += 1;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let now = now_rfc3339();
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": format!("{}.{:x}", pod.name, nanos.wrapping_add(self.event_seq)),
                "namespace": pod.namespace,
            },
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "namespace": pod.namespace,
                "name": pod.name,
                "uid": pod.uid,
                "resourceVersion": pod.resource_version,
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "action": action,
            "source": {"component": pod.scheduler_name},
            "reportingComponent": pod.scheduler_name,
            "reportingInstance": pod.scheduler_name,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        })
    }
}

async fn create_event(cluster: &dyn Cluster, namespace: &str, event: Value) {
    if let Err(e) = cluster
        .create(&Resource::events(), Some(namespace), &event)
        .await
    {
        tracing::debug!(error = %e, "record event");
    }
}

/// Lists one kind page by page, parsing each page before the next is read.
async fn list_parsed(cluster: &dyn Cluster, r: &Resource, kind: Kind) -> Option<(Listed, String)> {
    static POD_READS: std::sync::LazyLock<Arc<client::Projection>> =
        std::sync::LazyLock::new(|| Arc::new(PodInfo::reads()));
    let params = ListParams {
        projection: matches!(kind, Kind::Pod).then(|| POD_READS.clone()),
        ..Default::default()
    };
    let mut pager = Pager::new(cluster, r, None, &params);
    let mut listed = Listed::new(kind);
    loop {
        match pager.next_page_encoded().await {
            Ok(Some(page)) => listed.add(&page),
            Ok(None) => return Some((listed, pager.resource_version)),
            Err(e) => {
                tracing::warn!(kind = %r.kind, error = %e, "scheduler list");
                return None;
            }
        }
    }
}

/// Lists, then watches one kind, re-listing when the watch falls out of the history window.
async fn follow(cluster: Arc<dyn Cluster>, r: Resource, kind: Kind, tx: mpsc::Sender<Input>) {
    loop {
        let Some((listed, mut rv)) = list_parsed(&*cluster, &r, kind).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        if tx.send(Input::Reset(listed)).await.is_err() {
            return;
        }
        'watch: loop {
            let params = ListParams {
                resource_version: Some(rv.clone()),
                allow_bookmarks: true,
                timeout_seconds: Some(600),
                ..Default::default()
            };
            let mut stream = match cluster.watch(&r, None, &params).await {
                Ok(s) => s,
                Err(e) => {
                    if e.is_gone() {
                        break 'watch;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(ev) = stream.next().await {
                let input = match ev {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                        rv = revision_of(&o).unwrap_or(rv);
                        Input::Upsert(kind, o)
                    }
                    WatchEvent::Deleted(o) => {
                        rv = revision_of(&o).unwrap_or(rv);
                        Input::Delete(kind, o)
                    }
                    WatchEvent::Bookmark(v) => {
                        rv = v;
                        continue;
                    }
                    WatchEvent::Error(e) => {
                        if e.is_gone() {
                            break 'watch;
                        }
                        break;
                    }
                };
                if tx.send(input).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn revision_of(o: &Value) -> Option<String> {
    o.at("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(String::from)
}

/// The current time as `2006-01-02T15:04:05Z`.
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    format_time(secs)
}

fn format_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_time() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(1_798_372_013), "2026-12-27T11:46:53Z");
    }
}
