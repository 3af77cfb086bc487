//! Node leases in `kube-node-lease`, renewed at a quarter of their duration.
//!
//! For each managed node the simulator holds the Lease `kube-node-lease/<node>`: it creates it
//! (owned by the Node), takes it over when it has expired (counting `leaseTransitions`), and
//! renews `renewTime` every `duration / 4` with a 4% jitter. A lease held by another live holder
//! is left alone and checked again after one lease duration. All renewals share one timer heap.

use client::JsonAt;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{Cluster, Resource};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::engine::Metrics;
use crate::queue::DelayQueue;

/// The namespace of node leases.
pub const NAMESPACE: &str = "kube-node-lease";

/// A Kubernetes MicroTime for now.
pub fn micro_time_now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

struct Held {
    uid: String,
    lease: Option<Value>,
    timer: u64,
}

/// Keeps the leases of managed nodes fresh.
pub struct Leases {
    cluster: Arc<dyn Cluster>,
    duration: u64,
    identity: String,
    nodes: Mutex<HashMap<String, Held>>,
    queue: DelayQueue<String>,
    metrics: Arc<Metrics>,
    parallelism: usize,
}

impl Leases {
    pub fn new(
        cluster: Arc<dyn Cluster>,
        duration_seconds: u64,
        identity: String,
        metrics: Arc<Metrics>,
        parallelism: usize,
    ) -> Arc<Leases> {
        Arc::new(Leases {
            cluster,
            duration: duration_seconds,
            identity,
            nodes: Mutex::new(HashMap::new()),
            queue: DelayQueue::default(),
            metrics,
            parallelism: parallelism.max(1),
        })
    }

    /// Starts keeping the lease of `node` (uid for the owner reference).
    pub fn add(&self, node: &str, uid: &str) {
        let mut nodes = self.nodes.lock().expect("leases lock");
        if nodes.contains_key(node) {
            return;
        }
        let timer = self.queue.push(Instant::now(), node.to_string());
        nodes.insert(
            node.to_string(),
            Held {
                uid: uid.to_string(),
                lease: None,
                timer,
            },
        );
    }

    /// Stops keeping the lease of `node`.
    pub fn remove(&self, node: &str) {
        if let Some(h) = self.nodes.lock().expect("leases lock").remove(node) {
            self.queue.cancel(h.timer);
            if h.lease.is_some() {
                self.metrics.leases_held.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Runs the renewal loop.
    pub async fn run(self: Arc<Self>) {
        let permits = Arc::new(Semaphore::new(self.parallelism));
        loop {
            for node in self.queue.next_batch(1024).await {
                let permit = permits.clone().acquire_owned().await.expect("semaphore");
                let me = self.clone();
                tokio::spawn(async move {
                    let next = me.renew(&node).await;
                    let mut nodes = me.nodes.lock().expect("leases lock");
                    if let Some(h) = nodes.get_mut(&node) {
                        h.timer = me.queue.push(Instant::now() + next, node);
                    }
                    drop(permit);
                });
            }
        }
    }

    /// When to renew a lease just acquired: at a random point of the interval, so that leases
    /// acquired together (a burst of new nodes, a takeover of many expired leases) spread over
    /// the interval instead of renewing together ever after (each renewal's jitter spreads
    /// them only slowly), which also made a restart's first seconds busy or quiet by chance.
    fn first_interval(&self) -> Duration {
        self.interval()
            .mul_f64(rand::rng().random_range(0.05..=1.0))
    }

    fn interval(&self) -> Duration {
        let base = self.duration as f64 * 1000.0 / 4.0;
        let jitter = rand::rng().random_range(0.0..=base * 0.04);
        Duration::from_millis((base - jitter).max(1.0) as u64)
    }

    /// Renews (or acquires) the lease; returns when to come back.
    async fn renew(&self, node: &str) -> Duration {
        let r = Resource::leases();
        let (cached, uid) = {
            let nodes = self.nodes.lock().expect("leases lock");
            match nodes.get(node) {
                Some(h) => (h.lease.clone(), h.uid.clone()),
                None => return Duration::from_secs(3600),
            }
        };
        if let Some(mut lease) = cached {
            lease["spec"]["renewTime"] = json!(micro_time_now());
            match self.cluster.update(&r, Some(NAMESPACE), &lease).await {
                Ok(updated) => {
                    self.store(node, Some(updated));
                    self.metrics.leases_renewed.fetch_add(1, Ordering::Relaxed);
                    return self.interval();
                }
                Err(e) => {
                    tracing::debug!(node, error = %e, "renew the lease; acquiring again");
                    self.store(node, None);
                }
            }
        }
        match self.acquire(node, &uid).await {
            Ok(Some(Acquired::Written(lease))) => {
                self.store(node, Some(lease));
                self.metrics.leases_renewed.fetch_add(1, Ordering::Relaxed);
                self.first_interval()
            }
            Ok(Some(Acquired::StillFresh(lease, due_in))) => {
                self.store(node, Some(lease));
                due_in
            }
            Ok(None) => Duration::from_secs(self.duration.max(1)),
            Err(e) => {
                self.metrics.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node, error = %e, "acquire the node lease");
                Duration::from_secs(1)
            }
        }
    }

    fn store(&self, node: &str, lease: Option<Value>) {
        let mut nodes = self.nodes.lock().expect("leases lock");
        if let Some(h) = nodes.get_mut(node) {
            match (&h.lease, &lease) {
                (None, Some(_)) => {
                    self.metrics.leases_held.fetch_add(1, Ordering::Relaxed);
                }
                (Some(_), None) => {
                    self.metrics.leases_held.fetch_sub(1, Ordering::Relaxed);
                }
                _ => {}
            }
            h.lease = lease;
        }
    }

    /// When a lease this simulator already holds (kept from before a restart) is due for
    /// renewal, if it is not yet due: it is kept as it is until then rather than written at once,
    /// so that a restarted simulator does not write every lease in the same second.
    fn due_in(&self, lease: &Value) -> Option<Duration> {
        let spec = lease.get("spec")?;
        if spec.get("holderIdentity")?.as_str()? != self.identity
            || spec.get("leaseDurationSeconds")?.as_u64()? != self.duration
        {
            return None;
        }
        let renewed: jiff::Timestamp = spec.get("renewTime")?.as_str()?.parse().ok()?;
        let due = renewed.checked_add(self.interval()).ok()?;
        let left = jiff::Timestamp::now().duration_until(due);
        (left.is_positive()).then(|| left.unsigned_abs())
    }

    async fn acquire(&self, node: &str, uid: &str) -> client::Result<Option<Acquired>> {
        let r = Resource::leases();
        let now = micro_time_now();
        match self.cluster.get(&r, Some(NAMESPACE), node).await {
            Err(e) if e.is_not_found() => {
                let mut lease = json!({
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": node, "namespace": NAMESPACE},
                    "spec": {
                        "holderIdentity": self.identity,
                        "leaseDurationSeconds": self.duration,
                        "renewTime": now,
                        "acquireTime": now,
                    },
                });
                if !uid.is_empty() {
                    lease["metadata"]["ownerReferences"] = json!([{
                        "apiVersion": "v1", "kind": "Node", "name": node, "uid": uid,
                    }]);
                }
                match self.cluster.create(&r, Some(NAMESPACE), &lease).await {
                    Ok(l) => Ok(Some(Acquired::Written(l))),
                    Err(e) if e.is_not_found() => {
                        // The namespace is missing: create it and try again soon.
                        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}});
                        let _ = self
                            .cluster
                            .create(
                                &Resource::new("", "v1", "namespaces", "Namespace", false),
                                None,
                                &ns,
                            )
                            .await;
                        Err(e)
                    }
                    Err(e) if e.is_conflict() => Ok(None),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
            Ok(mut lease) => {
                let holder = lease
                    .at("/spec/holderIdentity")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if !holder.is_empty() && holder != self.identity && !expired(&lease) {
                    return Ok(None);
                }
                if let Some(due_in) = self.due_in(&lease) {
                    return Ok(Some(Acquired::StillFresh(lease, due_in)));
                }
                if holder != self.identity {
                    let transitions = lease
                        .at("/spec/leaseTransitions")
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    lease["spec"]["leaseTransitions"] = json!(transitions + 1);
                    lease["spec"]["holderIdentity"] = json!(self.identity);
                    lease["spec"]["acquireTime"] = json!(now);
                }
                lease["spec"]["leaseDurationSeconds"] = json!(self.duration);
                lease["spec"]["renewTime"] = json!(now);
                match self.cluster.update(&r, Some(NAMESPACE), &lease).await {
                    Ok(l) => Ok(Some(Acquired::Written(l))),
                    Err(e) if e.is_conflict() => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

/// A lease `acquire` holds: written now, or kept unwritten while it is fresh (with the time
/// until it is due).
enum Acquired {
    Written(Value),
    StillFresh(Value, Duration),
}

fn expired(lease: &Value) -> bool {
    let duration = lease
        .at("/spec/leaseDurationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let Some(renew) = lease
        .at("/spec/renewTime")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
    else {
        return true;
    };
    renew.as_second() + duration < jiff::Timestamp::now().as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Leases of 40 s held as "me", on an in-memory server.
    async fn leases_of_40s() -> Arc<Leases> {
        let server =
            apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
                .await
                .unwrap();
        let cluster = Arc::new(client::LocalCluster::new(server.registry.clone()));
        Leases::new(cluster, 40, "me".into(), Arc::default(), 1)
    }

    #[tokio::test]
    async fn a_fresh_lease_of_our_own_waits_until_it_is_due() {
        let leases = leases_of_40s().await;
        let lease = |holder: &str, renewed: jiff::Timestamp, duration: u64| {
            json!({"spec": {"holderIdentity": holder, "leaseDurationSeconds": duration,
                "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()}})
        };
        let now = jiff::Timestamp::now();
        let just = leases.due_in(&lease("me", now, 40)).unwrap();
        assert!(
            just > Duration::from_secs(8) && just <= Duration::from_secs(10),
            "{just:?}"
        );
        let ago = now - jiff::SignedDuration::from_secs(6);
        let later = leases.due_in(&lease("me", ago, 40)).unwrap();
        assert!(later <= Duration::from_secs(4), "{later:?}");
        // Due already, held by another, or of another duration: written now.
        assert!(
            leases
                .due_in(&lease("me", now - jiff::SignedDuration::from_secs(11), 40))
                .is_none()
        );
        assert!(leases.due_in(&lease("other", now, 40)).is_none());
        assert!(leases.due_in(&lease("me", now, 20)).is_none());
        assert!(
            leases
                .due_in(&json!({"spec": {"holderIdentity": "me"}}))
                .is_none()
        );
    }

    #[tokio::test]
    async fn leases_acquired_together_first_renew_spread_over_the_interval() {
        let leases = leases_of_40s().await;
        let firsts: Vec<Duration> = (0..200).map(|_| leases.first_interval()).collect();
        let (min, max) = (firsts.iter().min().unwrap(), firsts.iter().max().unwrap());
        assert!(*max <= Duration::from_secs(10), "{max:?}");
        assert!(*min >= Duration::from_millis(450), "{min:?}");
        assert!(
            *min < Duration::from_secs(3) && *max > Duration::from_secs(7),
            "{min:?} {max:?}"
        );
    }

    #[test]
    fn expiry() {
        let old = json!({"spec": {"renewTime": "2020-01-01T00:00:00.000000Z", "leaseDurationSeconds": 40}});
        assert!(expired(&old));
        let fresh = json!({"spec": {"renewTime": micro_time_now(), "leaseDurationSeconds": 40}});
        assert!(!expired(&fresh));
        assert!(expired(&json!({})));
    }
}
