//! The simulator: managed nodes, their leases, the pods bound to them, and Stages for any kind.
//!
//! [`Simulator::start`] validates the [`Options`], compiles the Stages (files, the built-in set,
//! or `Stage` objects from the API with `--enable-crds=Stage`), and starts one
//! [`Controller`] per staged kind. Nodes and pods get dedicated hooks:
//!
//! * a node is managed when the management flags select it; its addresses and pod CIDRs are
//!   remembered for the pod templates, and its lease is kept when leases are on;
//! * a pod is played only once its node is managed; pods seen before their node are parked by
//!   key and listed again (`spec.nodeName=<node>`) when the node shows up;
//! * pod IPs come from the node's `podCIDR(s)` (or `--cidr`) and are released on deletion.

use client::JsonAt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use client::{Cluster, ListParams, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::config::Options;
use crate::engine::{Controller, Hooks, Metrics, key_of};
use crate::ipam::{AllocateError, Ipam};
use crate::leases::Leases;
use crate::selector::LabelSelector;
use crate::stage::template::Funcs;
use crate::stage::types::{ResourceRef, Stage};
use crate::stage::{self, CompiledStage};

/// What the simulator knows of a managed node.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub ips: Vec<String>,
    pub cidrs: Vec<String>,
}

/// Shared state the templates read: managed nodes and the IP pools.
pub struct Env {
    pub opts: Options,
    pub nodes: RwLock<HashMap<String, NodeInfo>>,
    pub ipam: Mutex<Ipam>,
}

impl Env {
    fn node_ips(&self, node: &str) -> Vec<String> {
        let ips = self
            .nodes
            .read()
            .expect("nodes lock")
            .get(node)
            .map(|n| n.ips.clone())
            .unwrap_or_default();
        if ips.is_empty() && !self.opts.node_ip.is_empty() {
            vec![self.opts.node_ip.clone()]
        } else {
            ips
        }
    }

    fn cidrs(&self, node: &str) -> Vec<String> {
        let cidrs = self
            .nodes
            .read()
            .expect("nodes lock")
            .get(node)
            .map(|n| n.cidrs.clone())
            .unwrap_or_default();
        if cidrs.is_empty() {
            vec![self.opts.cidr.clone()]
        } else {
            cidrs
        }
    }
}

impl Funcs for Env {
    fn node_ip(&self) -> String {
        self.opts.node_ip.clone()
    }
    fn node_name(&self) -> String {
        self.opts.node_name.clone()
    }
    fn node_port(&self) -> i64 {
        self.opts.node_port
    }
    fn pod_ip(&self, key: &str) -> String {
        self.ipam
            .lock()
            .expect("ipam lock")
            .allocate(&self.opts.cidr, key)
            .map(|ip| ip.to_string())
            .unwrap_or_default()
    }
    fn node_ips_with(&self, node: &str) -> Vec<String> {
        self.node_ips(node)
    }
    fn pod_ips_with(
        &self,
        node: &str,
        host_network: bool,
        _uid: &str,
        name: &str,
        namespace: &str,
    ) -> Vec<String> {
        if host_network {
            return self.node_ips(node).into_iter().take(1).collect();
        }
        let key = format!("{namespace}/{name}");
        let mut ipam = self.ipam.lock().expect("ipam lock");
        let mut out = Vec::new();
        for cidr in self.cidrs(node) {
            match ipam.allocate(&cidr, &key) {
                Ok(ip) => out.push(ip.to_string()),
                // Upstream's pool runs past the end of the CIDR; here the pods of a full
                // CIDR get no address from it, said once until an address comes back.
                Err(AllocateError::Exhausted { first: true, .. }) => tracing::warn!(
                    node,
                    cidr,
                    pod = %key,
                    "no free pod address left in the pod CIDR: pods get none from it until some are deleted"
                ),
                Err(e @ AllocateError::Exhausted { .. }) => {
                    tracing::debug!(pod = %key, "allocate a pod IP: {e}")
                }
                Err(e) => tracing::warn!(pod = %key, "allocate a pod IP: {e}"),
            }
        }
        out
    }
}

fn node_info(node: &Value) -> NodeInfo {
    let mut ips = Vec::new();
    if let Some(addresses) = node.at("/status/addresses").and_then(Value::as_array) {
        for kind in ["InternalIP", "ExternalIP"] {
            for a in addresses {
                if a.get("type").and_then(Value::as_str) == Some(kind)
                    && let Some(ip) = a.get("address").and_then(Value::as_str)
                    && !ips.iter().any(|x| x == ip)
                {
                    ips.push(ip.to_string());
                }
            }
        }
    }
    let mut cidrs: Vec<String> = node
        .at("/spec/podCIDRs")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if cidrs.is_empty()
        && let Some(c) = node.at("/spec/podCIDR").and_then(Value::as_str)
        && !c.is_empty()
    {
        cidrs.push(c.to_string());
    }
    NodeInfo { ips, cidrs }
}

struct NodeHooks {
    env: Arc<Env>,
    annotations: Option<LabelSelector>,
    leases: Option<Arc<Leases>>,
    new_nodes: mpsc::UnboundedSender<String>,
    metrics: Arc<Metrics>,
}

impl NodeHooks {
    fn drop_node(&self, name: &str) {
        if self
            .env
            .nodes
            .write()
            .expect("nodes lock")
            .remove(name)
            .is_some()
        {
            self.metrics.managed_nodes.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(l) = &self.leases {
            l.remove(name);
        }
    }
}

impl Hooks for NodeHooks {
    fn admit(&self, node: &Value) -> bool {
        match &self.annotations {
            None => true,
            Some(sel) => sel.matches(node.at("/metadata/annotations")),
        }
    }

    fn observed(&self, node: &Value) {
        let name = key_of(node);
        let info = node_info(node);
        let added = self
            .env
            .nodes
            .write()
            .expect("nodes lock")
            .insert(name.clone(), info)
            .is_none();
        if added {
            self.metrics.managed_nodes.fetch_add(1, Ordering::Relaxed);
            if let Some(l) = &self.leases {
                let uid = node
                    .at("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                l.add(&name, uid);
            }
            let _ = self.new_nodes.send(name);
        }
    }

    fn deleted(&self, node: &Value) {
        self.drop_node(&key_of(node));
    }

    fn rejected(&self, node: &Value) {
        self.drop_node(&key_of(node));
    }
}

struct PodHooks {
    env: Arc<Env>,
    /// Pods seen before their node was managed: node -> pod keys.
    parked: Mutex<HashMap<String, HashSet<String>>>,
}

fn node_of(pod: &Value) -> &str {
    pod.at("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl PodHooks {
    fn unpark(&self, pod: &Value) {
        let node = node_of(pod);
        let mut parked = self.parked.lock().expect("parked lock");
        if let Some(set) = parked.get_mut(node) {
            set.remove(&key_of(pod));
            if set.is_empty() {
                parked.remove(node);
            }
        }
    }

    /// The keys of the pods parked for `node`, forgotten here.
    fn take_parked(&self, node: &str) -> HashSet<String> {
        self.parked
            .lock()
            .expect("parked lock")
            .remove(node)
            .unwrap_or_default()
    }
}

impl Hooks for PodHooks {
    fn admit(&self, pod: &Value) -> bool {
        let node = node_of(pod);
        !node.is_empty()
            && self
                .env
                .nodes
                .read()
                .expect("nodes lock")
                .contains_key(node)
    }

    fn observed(&self, pod: &Value) {
        self.unpark(pod);
        if pod.at("/spec/hostNetwork").and_then(Value::as_bool) == Some(true) {
            return;
        }
        let ips: Vec<&str> = match pod.at("/status/podIPs").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .filter_map(|v| v.get("ip").and_then(Value::as_str))
                .collect(),
            None => pod
                .at("/status/podIP")
                .and_then(Value::as_str)
                .into_iter()
                .collect(),
        };
        if ips.is_empty() {
            return;
        }
        let key = key_of(pod);
        let cidrs = self.env.cidrs(node_of(pod));
        let mut ipam = self.env.ipam.lock().expect("ipam lock");
        for cidr in &cidrs {
            for ip in &ips {
                ipam.mark_used(cidr, &key, ip);
            }
        }
    }

    fn deleted(&self, pod: &Value) {
        self.unpark(pod);
        self.env
            .ipam
            .lock()
            .expect("ipam lock")
            .release(&key_of(pod));
    }

    fn reads(&self, projection: &mut client::Projection) -> bool {
        for path in [
            ["spec", "nodeName"],
            ["spec", "hostNetwork"],
            ["status", "podIPs"],
            ["status", "podIP"],
        ] {
            projection.keep(path);
        }
        true
    }

    fn rejected(&self, pod: &Value) {
        let node = node_of(pod);
        if !node.is_empty() {
            self.parked
                .lock()
                .expect("parked lock")
                .entry(node.to_string())
                .or_default()
                .insert(key_of(pod));
        }
    }
}

struct Generic;
impl Hooks for Generic {
    fn reads(&self, _projection: &mut client::Projection) -> bool {
        true
    }
}

/// The REST resource a Stage's `resourceRef` names. Built-in kinds are known; for others the
/// plural is guessed from the kind (`Foo` -> `foos`, `Policy` -> `policies`).
pub fn resource_for(r: &ResourceRef) -> Resource {
    let (group, version) = match r.api_group.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), r.api_group.clone()),
    };
    let known: &[(&str, &str, bool)] = &[
        ("Pod", "pods", true),
        ("Node", "nodes", false),
        ("Namespace", "namespaces", false),
        ("PersistentVolume", "persistentvolumes", false),
        ("PersistentVolumeClaim", "persistentvolumeclaims", true),
        ("Endpoints", "endpoints", true),
        ("Ingress", "ingresses", true),
        ("StorageClass", "storageclasses", false),
        ("Stage", "stages", false),
    ];
    if let Some((_, plural, namespaced)) = known.iter().find(|(k, _, _)| *k == r.kind) {
        return Resource::new(&group, &version, plural, &r.kind, *namespaced);
    }
    let lower = r.kind.to_lowercase();
    let plural = if let Some(stem) = lower.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else if lower.ends_with('s') || lower.ends_with("x") || lower.ends_with("ch") {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    };
    Resource::new(&group, &version, &plural, &r.kind, true)
}

fn kind_key(r: &ResourceRef) -> (String, String) {
    (r.api_group.clone(), r.kind.clone())
}

/// The Stage resource (`--enable-crds=Stage`).
pub fn stage_resource() -> Resource {
    Resource::new("kwok.x-k8s.io", "v1alpha1", "stages", "Stage", false)
}

/// The Stages of one kind.
type StageGroup = (ResourceRef, Vec<Arc<CompiledStage>>);

/// A running simulator.
pub struct Simulator {
    cluster: Arc<dyn Cluster>,
    pub env: Arc<Env>,
    pub metrics: Arc<Metrics>,
    controllers: Mutex<HashMap<(String, String), Arc<Controller>>>,
    node_hooks: Arc<NodeHooks>,
    pod_hooks: Arc<PodHooks>,
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "kwok".into())
}

/// The lease holder identity of the simulator of a cluster kept in `data_dir`: read from its
/// `simulator-identity` file, or made (`<hostname>_<random>`) and written there the first
/// time. A restarted cluster thus still holds its nodes' leases, instead of waiting for them to
/// expire before it may renew them.
pub fn lasting_identity(data_dir: &std::path::Path) -> std::io::Result<String> {
    let path = data_dir.join("simulator-identity");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let identity = format!("{}_{:016x}", hostname(), rand::random::<u64>());
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(&path, format!("{identity}\n"))?;
    Ok(identity)
}

impl Simulator {
    /// Validates the options, compiles the Stages and starts every controller in the
    /// background. Invalid Stages are logged and skipped.
    pub async fn start(cluster: Arc<dyn Cluster>, opts: Options) -> Result<Arc<Simulator>, String> {
        opts.validate()?;
        let metrics = Arc::new(Metrics::default());
        let env = Arc::new(Env {
            opts: opts.clone(),
            nodes: RwLock::new(HashMap::new()),
            ipam: Mutex::new(Ipam::default()),
        });
        let annotations = if opts.manage_nodes_with_annotation_selector.is_empty() {
            None
        } else {
            Some(
                LabelSelector::parse(&opts.manage_nodes_with_annotation_selector)
                    .map_err(|e| format!("--manage-nodes-with-annotation-selector: {e}"))?,
            )
        };
        if !opts.manage_nodes_with_label_selector.is_empty() {
            LabelSelector::parse(&opts.manage_nodes_with_label_selector)
                .map_err(|e| format!("--manage-nodes-with-label-selector: {e}"))?;
        }
        let identity = if opts.identity.is_empty() {
            format!("{}_{:016x}", hostname(), rand::random::<u64>())
        } else {
            opts.identity.clone()
        };
        let leases = (opts.node_lease_duration_seconds > 0).then(|| {
            Leases::new(
                cluster.clone(),
                opts.node_lease_duration_seconds,
                identity.clone(),
                metrics.clone(),
                opts.parallelism,
            )
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let node_hooks = Arc::new(NodeHooks {
            env: env.clone(),
            annotations,
            leases: leases.clone(),
            new_nodes: tx,
            metrics: metrics.clone(),
        });
        let pod_hooks = Arc::new(PodHooks {
            env: env.clone(),
            parked: Mutex::new(HashMap::new()),
        });
        let sim = Arc::new(Simulator {
            cluster: cluster.clone(),
            env,
            metrics,
            controllers: Mutex::new(HashMap::new()),
            node_hooks,
            pod_hooks,
        });
        if !opts.manage_single_node.is_empty() {
            tracing::info!(node = %opts.manage_single_node, "Watch single node");
        } else if opts.manage_all_nodes {
            tracing::info!("Watch all nodes");
        } else {
            tracing::info!(
                annotation = %opts.manage_nodes_with_annotation_selector,
                label = %opts.manage_nodes_with_label_selector,
                "Watch nodes"
            );
        }
        // Nodes and pods are always watched: pods need to know the managed nodes.
        let node_ref = ResourceRef {
            api_group: "v1".into(),
            kind: "Node".into(),
        };
        let pod_ref = ResourceRef {
            api_group: "v1".into(),
            kind: "Pod".into(),
        };
        sim.controller(&node_ref);
        let pods = sim.controller(&pod_ref);
        if let Some(l) = leases {
            tokio::spawn(l.run());
        }
        tokio::spawn(resync_pods(
            cluster.clone(),
            pods,
            sim.pod_hooks.clone(),
            rx,
            opts.clone(),
        ));

        let from_api = opts.enable_crds.iter().any(|c| c == "Stage");
        if from_api {
            tokio::spawn(sim.clone().watch_stages());
        } else {
            let stages = if opts.stages.is_empty() {
                stage::defaults::default_stages(opts.node_lease_duration_seconds > 0)
            } else {
                opts.stages.clone()
            };
            let (nodes, pods) = sim.load_stages(&stages);
            if nodes == 0 {
                tracing::warn!("No node stages found");
            }
            if pods == 0 {
                tracing::warn!("No pod stages found");
            }
            if nodes + pods == 0 && sim.controllers.lock().expect("controllers lock").len() <= 2 {
                return Err("no stages found".into());
            }
        }
        Ok(sim)
    }

    /// The controller of a kind, started on first use.
    fn controller(self: &Arc<Self>, r: &ResourceRef) -> Arc<Controller> {
        let mut controllers = self.controllers.lock().expect("controllers lock");
        if let Some(c) = controllers.get(&kind_key(r)) {
            return c.clone();
        }
        let opts = &self.env.opts;
        let resource = resource_for(r);
        let (params, hooks): (ListParams, Arc<dyn Hooks>) =
            match (r.api_group.as_str(), r.kind.as_str()) {
                ("v1", "Node") => {
                    let mut p = ListParams::default();
                    if !opts.manage_single_node.is_empty() {
                        p.field_selector =
                            Some(format!("metadata.name={}", opts.manage_single_node));
                    } else if !opts.manage_nodes_with_label_selector.is_empty() {
                        p.label_selector = Some(opts.manage_nodes_with_label_selector.clone());
                    }
                    (p, self.node_hooks.clone())
                }
                ("v1", "Pod") => {
                    let p = ListParams {
                        field_selector: Some(if opts.manage_single_node.is_empty() {
                            "spec.nodeName!=".into()
                        } else {
                            format!("spec.nodeName={}", opts.manage_single_node)
                        }),
                        ..Default::default()
                    };
                    (p, self.pod_hooks.clone())
                }
                _ => (ListParams::default(), Arc::new(Generic)),
            };
        let c = Controller::new(
            self.cluster.clone(),
            resource,
            params,
            hooks,
            self.env.clone(),
            self.metrics.clone(),
            opts.parallelism,
        );
        controllers.insert(kind_key(r), c.clone());
        tokio::spawn(c.clone().run());
        c
    }

    /// Compiles Stages and hands them to the controllers of their kinds. Returns the numbers of
    /// node and pod stages loaded.
    pub fn load_stages(self: &Arc<Self>, stages: &[Stage]) -> (usize, usize) {
        let mut groups: HashMap<(String, String), StageGroup> = HashMap::new();
        for s in stages {
            match stage::compile(s) {
                Ok(c) => {
                    tracing::debug!(stage = %c.name, kind = %c.resource.kind, "loaded stage");
                    groups
                        .entry(kind_key(&c.resource))
                        .or_insert_with(|| (c.resource.clone(), Vec::new()))
                        .1
                        .push(Arc::new(c));
                }
                Err(e) => {
                    self.metrics.stage_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("invalid stage, skipped: {e}");
                }
            }
        }
        let count = |kind: &str| {
            groups
                .get(&("v1".to_string(), kind.to_string()))
                .map(|g| g.1.len())
                .unwrap_or(0)
        };
        let counts = (count("Node"), count("Pod"));
        // Kinds that lost all their stages get an empty set.
        let existing: Vec<(String, String)> = self
            .controllers
            .lock()
            .expect("controllers lock")
            .keys()
            .cloned()
            .collect();
        for k in existing {
            if !groups.contains_key(&k)
                && let Some(c) = self.controllers.lock().expect("controllers lock").get(&k)
            {
                c.set_stages(Vec::new());
            }
        }
        for (_, (r, list)) in groups {
            self.controller(&r).set_stages(list);
        }
        counts
    }

    /// The valid Stages among `Stage` objects; the others are logged and counted.
    fn parse_stages(&self, items: Vec<Value>) -> Vec<Stage> {
        let mut stages = Vec::new();
        for item in items {
            let name = item
                .at("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            match Stage::from_value(item) {
                Ok(s) => stages.push(s),
                Err(e) => {
                    self.metrics.stage_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::error!("invalid stage, skipped: stage {name:?}: {e}");
                }
            }
        }
        stages
    }

    /// Keeps the Stages in sync with the `Stage` objects of the cluster.
    async fn watch_stages(self: Arc<Self>) {
        let r = stage_resource();
        let mut backoff = Duration::from_secs(1);
        // The Stages last loaded, by name and resourceVersion: a watch that times out lists
        // them again, and reloading the same Stages would match every object again and
        // restart every pending delay (a 10-minute heartbeat would never come).
        let mut loaded: Option<Vec<(String, String)>> = None;
        loop {
            let list =
                match client::list_all(&*self.cluster, &r, None, &ListParams::default()).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "list Stages from the API; retrying");
                        if loaded.is_none() {
                            // Nodes are managed (and their leases held) meanwhile, without Stages;
                            // once: setting them again would make every controller list again.
                            self.load_stages(&[]);
                            loaded = Some(Vec::new());
                        }
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        continue;
                    }
                };
            backoff = Duration::from_secs(1);
            let versions: Vec<(String, String)> = list
                .items
                .iter()
                .map(|item| {
                    let text = |p: &str| item.at(p).and_then(Value::as_str).unwrap_or_default();
                    let (name, rv) = (text("/metadata/name"), text("/metadata/resourceVersion"));
                    (name.to_string(), rv.to_string())
                })
                .collect();
            if loaded.as_ref() != Some(&versions) {
                loaded = Some(versions);
                let stages = self.parse_stages(list.items);
                tracing::info!(count = stages.len(), "loaded Stages from the API");
                self.load_stages(&stages);
            }
            let params = ListParams {
                resource_version: Some(list.resource_version),
                timeout_seconds: Some(290),
                ..Default::default()
            };
            let Ok(mut stream) = self.cluster.watch(&r, None, &params).await else {
                tokio::time::sleep(backoff).await;
                continue;
            };
            // Any change: list again and reload (Stages are few).
            loop {
                match stream.next().await {
                    Some(WatchEvent::Bookmark(_)) => continue,
                    Some(WatchEvent::Error(_)) | None => break,
                    Some(_) => {
                        // Let a burst of changes settle.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                }
            }
        }
    }

    /// The controller of a kind, if it runs.
    pub fn controller_of(&self, api_group: &str, kind: &str) -> Option<Arc<Controller>> {
        self.controllers
            .lock()
            .expect("controllers lock")
            .get(&(api_group.to_string(), kind.to_string()))
            .cloned()
    }

    /// Managed nodes.
    pub fn managed_nodes(&self) -> usize {
        self.env.nodes.read().expect("nodes lock").len()
    }
}

/// Fetches again, one by one, the pods of newly managed nodes that were seen before their
/// node. A get per parked pod rather than a list by `spec.nodeName`: when a cluster restarts,
/// thousands of nodes become managed at once, and a list per node would read every pod of
/// the cluster each time.
async fn resync_pods(
    cluster: Arc<dyn Cluster>,
    pods: Arc<Controller>,
    hooks: Arc<PodHooks>,
    mut rx: mpsc::UnboundedReceiver<String>,
    _opts: Options,
) {
    let r = Resource::pods();
    while let Some(node) = rx.recv().await {
        for (i, key) in hooks.take_parked(&node).into_iter().enumerate() {
            let (namespace, name) = key.split_once('/').unwrap_or(("", &key));
            match cluster.get(&r, Some(namespace), name).await {
                Ok(pod) => pods.handle(Arc::new(pod)),
                Err(e) if e.is_not_found() => {}
                Err(e) => tracing::warn!(node, pod = key, error = %e, "get a parked pod"),
            }
            if i % 256 == 255 {
                tokio::task::yield_now().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plural_guesses() {
        let r = |api: &str, kind: &str| {
            resource_for(&ResourceRef {
                api_group: api.into(),
                kind: kind.into(),
            })
        };
        assert_eq!(r("v1", "Pod").path(Some("d")), "/api/v1/namespaces/d/pods");
        assert_eq!(
            r("apps/v1", "Deployment").path(None),
            "/apis/apps/v1/deployments"
        );
        assert_eq!(r("x.io/v1", "Policy").plural, "policies");
        assert_eq!(r("x.io/v1", "Gateway").plural, "gateways");
        assert_eq!(r("x.io/v1", "Class").plural, "classes");
    }

    #[test]
    fn lasting_identity_is_kept_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = lasting_identity(&data).unwrap();
        assert!(first.contains('_'), "{first}");
        assert_eq!(lasting_identity(&data).unwrap(), first);
        let other = dir.path().join("other");
        assert_ne!(lasting_identity(&other).unwrap(), first);
    }

    #[test]
    fn node_info_prefers_internal_ip() {
        let node = serde_json::json!({
            "spec": {"podCIDR": "10.244.3.0/24"},
            "status": {"addresses": [
                {"type": "Hostname", "address": "n"},
                {"type": "ExternalIP", "address": "1.1.1.1"},
                {"type": "InternalIP", "address": "10.0.0.5"}]}});
        let info = node_info(&node);
        assert_eq!(info.ips, ["10.0.0.5", "1.1.1.1"]);
        assert_eq!(info.cidrs, ["10.244.3.0/24"]);
    }
}
