//! The garbage collector: deletes objects whose owners are gone, and carries out foreground and
//! orphan deletion, following `metadata.ownerReferences` as kube-controller-manager does.
//!
//! It watches every listed type, keeps a graph of owners and dependents keyed by UID, and acts
//! through the cluster API only. An owner that seems absent is confirmed with a live read before
//! its dependents are deleted, so a watch that lags never costs an object.

use client::JsonAt;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams, ListParams, Patch, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const FOREGROUND: &str = "foregroundDeletion";
const ORPHAN: &str = "orphan";

#[derive(Debug, Clone)]
struct OwnerRef {
    uid: String,
    api_version: String,
    kind: String,
    name: String,
    block: bool,
}

#[derive(Debug, Clone)]
struct Node {
    kind_index: usize,
    namespace: Option<String>,
    name: String,
    owners: Vec<OwnerRef>,
    deleting: bool,
    finalizers: Vec<String>,
}

/// The owner/dependent graph.
#[derive(Default)]
struct Graph {
    nodes: HashMap<String, Node>,
    dependents: HashMap<String, HashSet<String>>,
}

impl Graph {
    fn upsert(&mut self, uid: String, node: Node) {
        self.remove(&uid);
        for owner in &node.owners {
            self.dependents
                .entry(owner.uid.clone())
                .or_default()
                .insert(uid.clone());
        }
        self.nodes.insert(uid, node);
    }

    fn remove(&mut self, uid: &str) -> Option<Node> {
        let old = self.nodes.remove(uid)?;
        for owner in &old.owners {
            if let Some(set) = self.dependents.get_mut(&owner.uid) {
                set.remove(uid);
                if set.is_empty() {
                    self.dependents.remove(&owner.uid);
                }
            }
        }
        Some(old)
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents
            .get(uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

fn node_of(kind_index: usize, obj: &Value) -> Option<(String, Node)> {
    let meta = obj.get("metadata")?;
    let uid = meta.get("uid")?.as_str()?.to_string();
    let owners = meta
        .get("ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some(OwnerRef {
                uid: o.get("uid")?.as_str()?.to_string(),
                api_version: o.get("apiVersion")?.as_str()?.to_string(),
                kind: o.get("kind")?.as_str()?.to_string(),
                name: o.get("name")?.as_str()?.to_string(),
                block: o.get("blockOwnerDeletion") == Some(&json!(true)),
            })
        })
        .collect();
    let finalizers = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Some((
        uid,
        Node {
            kind_index,
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .map(String::from),
            name: meta.get("name")?.as_str()?.to_string(),
            owners,
            deleting: meta.get("deletionTimestamp").is_some_and(|d| !d.is_null()),
            finalizers,
        },
    ))
}

/// Lists the cluster's resource types, for a collector that follows types added later
/// (custom resources).
pub type Discover =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Vec<Resource>> + Send + Sync>;

/// What kube-controller-manager's garbage collector leaves alone by default
/// (`DefaultIgnoredResources`): Events, by far the most numerous objects of a busy cluster, which
/// expire by their TTL instead; their owner references are not followed.
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];

fn followed(r: &Resource) -> bool {
    !IGNORED
        .iter()
        .any(|(group, plural)| r.group == *group && r.plural == *plural)
}

/// How often the types are listed again.
const DISCOVERY_PERIOD: Duration = Duration::from_secs(5);

/// The garbage collector over a set of resource types.
pub struct GarbageCollector {
    cluster: Arc<dyn Cluster>,
    types: Vec<Resource>,
    discover: Option<Discover>,
}

enum Input {
    Upsert(usize, Arc<Value>),
    Delete(Arc<Value>),
    Types(Vec<Resource>),
}

impl GarbageCollector {
    pub fn new(cluster: Arc<dyn Cluster>, types: Vec<Resource>) -> Self {
        Self {
            cluster,
            types: types.into_iter().filter(followed).collect(),
            discover: None,
        }
    }

    /// Also follows the types `discover` lists from time to time.
    pub fn with_discovery(mut self, discover: Discover) -> Self {
        self.discover = Some(discover);
        self
    }

    /// Runs until the cluster stops answering or the task is dropped.
    pub async fn run(mut self) {
        let (tx, mut rx) = mpsc::channel::<Input>(4096);
        for (i, r) in self.types.iter().enumerate() {
            tokio::spawn(follow(self.cluster.clone(), r.clone(), i, tx.clone()));
        }
        let follow_tx = tx.clone();
        if let Some(discover) = self.discover.clone() {
            let tx = tx.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(DISCOVERY_PERIOD).await;
                    if tx.send(Input::Types(discover().await)).await.is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let mut graph = Graph::default();
        let mut queue: VecDeque<String> = VecDeque::new();
        let mut queued: HashSet<String> = HashSet::new();
        // Owners may arrive after their dependents while the initial lists stream in; give the
        // watches a moment before acting on references that look dangling.
        let settle = tokio::time::Instant::now() + Duration::from_millis(500);
        loop {
            let input = if queue.is_empty() || tokio::time::Instant::now() < settle {
                tokio::select! {
                    input = rx.recv() => match input { Some(i) => Some(i), None => return },
                    _ = tokio::time::sleep_until(settle), if !queue.is_empty() => None,
                }
            } else {
                rx.try_recv().ok()
            };
            if let Some(input) = input {
                if let Input::Types(types) = input {
                    for r in types.into_iter().filter(followed) {
                        let known = self
                            .types
                            .iter()
                            .any(|t| t.api_version() == r.api_version() && t.plural == r.plural);
                        if !known {
                            let index = self.types.len();
                            self.types.push(r.clone());
                            tokio::spawn(follow(self.cluster.clone(), r, index, follow_tx.clone()));
                        }
                    }
                    continue;
                }
                let touched = apply_input(&mut graph, input);
                for uid in touched {
                    if queued.insert(uid.clone()) {
                        queue.push_back(uid);
                    }
                }
                continue;
            }
            if let Some(uid) = queue.pop_front() {
                queued.remove(&uid);
                self.check(&graph, &uid).await;
            }
        }
    }

    fn resource_for(&self, api_version: &str, kind: &str) -> Option<&Resource> {
        self.types
            .iter()
            .find(|r| r.kind == kind && r.api_version() == api_version)
    }

    /// Whether an owner still exists (the graph first, then a live read).
    async fn owner_exists(&self, graph: &Graph, owner: &OwnerRef, namespace: Option<&str>) -> bool {
        if graph.nodes.contains_key(&owner.uid) {
            return true;
        }
        let Some(r) = self.resource_for(&owner.api_version, &owner.kind) else {
            // A kind this collector cannot see is assumed present.
            return true;
        };
        let ns = if r.namespaced { namespace } else { None };
        match self.cluster.get(r, ns, &owner.name).await {
            Ok(obj) => obj.at("/metadata/uid").and_then(Value::as_str) == Some(owner.uid.as_str()),
            Err(e) if e.is_not_found() => false,
            Err(_) => true,
        }
    }

    async fn check(&self, graph: &Graph, uid: &str) {
        let Some(node) = graph.nodes.get(uid) else {
            return;
        };
        let r = &self.types[node.kind_index];
        let ns = node.namespace.as_deref();
        if node.deleting && node.finalizers.iter().any(|f| f == ORPHAN) {
            for dep_uid in graph.dependents_of(uid) {
                let Some(dep) = graph.nodes.get(&dep_uid) else {
                    continue;
                };
                let patch =
                    json!({"metadata": {"ownerReferences": [{"uid": uid, "$patch": "delete"}]}});
                let dep_r = &self.types[dep.kind_index];
                if let Err(e) = self
                    .cluster
                    .patch(
                        dep_r,
                        dep.namespace.as_deref(),
                        &dep.name,
                        &Patch::Strategic(patch),
                        None,
                    )
                    .await
                    && !e.is_not_found()
                {
                    tracing::warn!(object = %dep.name, error = %e, "orphan dependent");
                    return;
                }
            }
            self.remove_finalizer(r, ns, &node.name, ORPHAN).await;
            return;
        }
        if node.deleting && node.finalizers.iter().any(|f| f == FOREGROUND) {
            let mut blocking = 0;
            for dep_uid in graph.dependents_of(uid) {
                let Some(dep) = graph.nodes.get(&dep_uid) else {
                    continue;
                };
                if dep.owners.iter().any(|o| o.uid == uid && o.block) {
                    blocking += 1;
                }
                if !dep.deleting {
                    let params = DeleteParams {
                        propagation_policy: Some("Foreground".into()),
                        ..Default::default()
                    };
                    let dep_r = &self.types[dep.kind_index];
                    if let Err(e) = self
                        .cluster
                        .delete(dep_r, dep.namespace.as_deref(), &dep.name, &params)
                        .await
                        && !e.is_not_found()
                    {
                        tracing::warn!(object = %dep.name, error = %e, "delete dependent");
                    }
                }
            }
            if blocking == 0 {
                self.remove_finalizer(r, ns, &node.name, FOREGROUND).await;
            }
            return;
        }
        if node.owners.is_empty() || node.deleting {
            return;
        }
        let mut absent = Vec::new();
        for owner in &node.owners {
            if !self.owner_exists(graph, owner, ns).await {
                absent.push(owner.uid.clone());
            }
        }
        if absent.is_empty() {
            return;
        }
        if absent.len() == node.owners.len() {
            // The graph may lag behind a change that just released the object (an orphaning
            // owner removes its reference, then goes away): decide on the object as it is now,
            // and delete only that version of it.
            let live = match self.cluster.get(r, ns, &node.name).await {
                Ok(live) => live,
                Err(e) if e.is_not_found() => return,
                Err(e) => {
                    tracing::warn!(kind = %r.kind, name = %node.name, error = %e, "collect");
                    return;
                }
            };
            let live_owners: Vec<&str> = live
                .at("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|o| o.get("uid").and_then(Value::as_str))
                .collect();
            if live_owners.is_empty() || live_owners.iter().any(|o| !absent.iter().any(|a| a == o))
            {
                return;
            }
            let params = DeleteParams {
                propagation_policy: Some("Background".into()),
                precondition_uid: Some(uid.to_string()),
                precondition_resource_version: live
                    .at("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(String::from),
                ..Default::default()
            };
            match self.cluster.delete(r, ns, &node.name, &params).await {
                Ok(_) => tracing::debug!(kind = %r.kind, name = %node.name, "collected"),
                Err(e) if e.is_not_found() || e.is_conflict() => {}
                Err(e) => tracing::warn!(kind = %r.kind, name = %node.name, error = %e, "collect"),
            }
        } else {
            let refs: Vec<Value> = absent
                .iter()
                .map(|u| json!({"uid": u, "$patch": "delete"}))
                .collect();
            let patch = json!({"metadata": {"ownerReferences": refs}});
            if let Err(e) = self
                .cluster
                .patch(r, ns, &node.name, &Patch::Strategic(patch), None)
                .await
                && !e.is_not_found()
            {
                tracing::warn!(kind = %r.kind, name = %node.name, error = %e, "drop dangling owner references");
            }
        }
    }

    async fn remove_finalizer(&self, r: &Resource, ns: Option<&str>, name: &str, finalizer: &str) {
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": [finalizer]}});
        if let Err(e) = self
            .cluster
            .patch(r, ns, name, &Patch::Strategic(patch), None)
            .await
            && !e.is_not_found()
        {
            tracing::warn!(kind = %r.kind, %name, error = %e, "remove finalizer");
        }
    }
}

/// Updates the graph; returns the UIDs to check.
fn apply_input(graph: &mut Graph, input: Input) -> Vec<String> {
    match input {
        Input::Types(_) => Vec::new(),
        Input::Upsert(i, obj) => {
            let Some((uid, node)) = node_of(i, &obj) else {
                return Vec::new();
            };
            let interesting = !node.owners.is_empty()
                || (node.deleting
                    && node
                        .finalizers
                        .iter()
                        .any(|f| f == FOREGROUND || f == ORPHAN));
            graph.upsert(uid.clone(), node);
            // A foreground owner waits on its dependents: re-check it when one changes.
            let mut touched: Vec<String> = graph.nodes[&uid]
                .owners
                .iter()
                .map(|o| o.uid.clone())
                .collect();
            if interesting {
                touched.push(uid);
            }
            touched
        }
        Input::Delete(obj) => {
            let Some(uid) = obj.at("/metadata/uid").and_then(Value::as_str) else {
                return Vec::new();
            };
            let old = graph.remove(uid);
            let mut touched = graph.dependents_of(uid);
            if let Some(old) = old {
                touched.extend(old.owners.into_iter().map(|o| o.uid));
            }
            touched
        }
    }
}

/// Lists and watches one type, resuming after disconnects, feeding the collector.
async fn follow(cluster: Arc<dyn Cluster>, r: Resource, index: usize, tx: mpsc::Sender<Input>) {
    let params = ListParams {
        metadata_only: true,
        ..ListParams::default()
    };
    let mut events = client::watch_resuming(cluster, r, params);
    while let Some(ev) = events.next().await {
        let input = match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) => Input::Upsert(index, o),
            WatchEvent::Deleted(o) => Input::Delete(o),
            WatchEvent::Bookmark(_) | WatchEvent::Error(_) => continue,
        };
        if tx.send(input).await.is_err() {
            return;
        }
    }
}
