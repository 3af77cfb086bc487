//! The scheduler's view of nodes and pods, parsed once from their JSON.

use client::JsonAt;
use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde_json::Value;

use super::quantity::{parse_milli_i64, parse_units};

/// Labels by key, sorted: a boxed slice rather than a `BTreeMap`, whose first node alone takes
/// over 500 bytes, because the scheduler keeps the labels of every pod it knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Box<[(Box<str>, Box<str>)]>);

impl Labels {
    pub fn new() -> Labels {
        Labels::default()
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    pub fn insert(&mut self, key: String, value: String) {
        let mut entries = std::mem::take(&mut self.0).into_vec();
        match entries.binary_search_by(|(k, _)| (**k).cmp(&*key)) {
            Ok(i) => entries[i].1 = value.into(),
            Err(i) => entries.insert(i, (key.into(), value.into())),
        }
        self.0 = entries.into_boxed_slice();
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (&**k, &**v))
    }
}

impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Labels {
        let mut entries: Vec<(Box<str>, Box<str>)> = iter
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|b, a| a.0 == b.0);
        Labels(entries.into_boxed_slice())
    }
}

/// `namespace/name`.
pub type PodKey = String;

/// Resource amounts: cpu in millicores, everything else in whole units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu: i64,
    pub memory: i64,
    pub pods: i64,
    /// Other resources (ephemeral-storage, extended resources, hugepages), by name.
    pub other: Vec<(String, i64)>,
}

impl Resources {
    pub fn get(&self, name: &str) -> i64 {
        match name {
            "cpu" => self.cpu,
            "memory" => self.memory,
            "pods" => self.pods,
            _ => self
                .other
                .iter()
                .find(|(k, _)| k == name)
                .map_or(0, |(_, v)| *v),
        }
    }

    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            "cpu" => self.cpu = value,
            "memory" => self.memory = value,
            "pods" => self.pods = value,
            _ => match self.other.iter_mut().find(|(k, _)| k == name) {
                Some((_, v)) => *v = value,
                None => self.other.push((name.to_string(), value)),
            },
        }
    }

    pub fn add(&mut self, o: &Resources, sign: i64) {
        self.cpu += sign * o.cpu;
        self.memory += sign * o.memory;
        self.pods += sign * o.pods;
        for (k, v) in &o.other {
            let cur = self.get(k);
            self.set(k, cur + sign * v);
        }
    }

    fn max_with(&mut self, o: &Resources) {
        self.cpu = self.cpu.max(o.cpu);
        self.memory = self.memory.max(o.memory);
        for (k, v) in &o.other {
            let cur = self.get(k);
            self.set(k, cur.max(*v));
        }
    }

    /// Parses a `{name: quantity}` map.
    pub fn parse(map: Option<&Value>) -> Resources {
        let mut r = Resources::default();
        if let Some(m) = map.and_then(Value::as_object) {
            for (k, v) in m {
                let Some(text) = quantity_text(v) else {
                    continue;
                };
                let value = if k == "cpu" {
                    parse_milli_i64(&text)
                } else {
                    parse_units(&text)
                };
                if let Some(value) = value {
                    r.set(k, value);
                }
            }
        }
        r
    }
}

fn quantity_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Requests of one container: `requests`, each missing one taken from `limits`.
fn container_requests(c: &Value) -> Resources {
    let mut r = Resources::parse(c.at("/resources/limits"));
    let req = Resources::parse(c.at("/resources/requests"));
    if let Some(m) = c.at("/resources/requests").and_then(Value::as_object) {
        for k in m.keys() {
            r.set(k, req.get(k));
        }
    }
    r.pods = 0;
    r
}

/// What a pod asks of its node: the larger of the containers' sum and each init container
/// (restartable init containers add to the sum), plus the pod overhead, plus one pod.
pub fn pod_requests(spec: &Value) -> Resources {
    let mut sum = Resources::default();
    for c in spec
        .get("containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        sum.add(&container_requests(c), 1);
    }
    let mut sidecars = Resources::default();
    let mut init_peak = Resources::default();
    for c in spec
        .get("initContainers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let r = container_requests(c);
        if c.get("restartPolicy").and_then(Value::as_str) == Some("Always") {
            sidecars.add(&r, 1);
        } else {
            let mut with_sidecars = r;
            with_sidecars.add(&sidecars, 1);
            init_peak.max_with(&with_sidecars);
        }
    }
    sum.add(&sidecars, 1);
    sum.max_with(&init_peak);
    sum.add(&Resources::parse(spec.get("overhead")), 1);
    sum.pods = 1;
    sum
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

#[derive(Debug, Clone)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    fn parse(v: &Value) -> Option<Requirement> {
        let op = match v.get("operator")?.as_str()? {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        };
        Some(Requirement {
            key: v.get("key")?.as_str()?.to_string(),
            op,
            values: strings(v.get("values")),
        })
    }

    pub fn matches(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => !value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(String::from))
        .collect()
}

fn labels_of(v: Option<&Value>) -> Labels {
    v.and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect()
}

/// A label selector (`matchLabels` and `matchExpressions`, ANDed).
#[derive(Debug, Clone, Default)]
pub struct LabelSelector {
    pub reqs: Vec<Requirement>,
}

impl LabelSelector {
    /// `None` for an absent or null selector (which selects nothing).
    pub fn parse(v: Option<&Value>) -> Option<LabelSelector> {
        let v = v.filter(|v| !v.is_null())?;
        let mut reqs: Vec<Requirement> = labels_of(v.get("matchLabels"))
            .iter()
            .map(|(key, value)| Requirement {
                key: key.to_string(),
                op: Op::In,
                values: vec![value.to_string()],
            })
            .collect();
        for e in v
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            reqs.push(Requirement::parse(e)?);
        }
        Some(LabelSelector { reqs })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.reqs.iter().all(|r| r.matches(labels.get(&r.key)))
    }
}

/// One `nodeSelectorTerms` entry: expressions on labels and fields, ANDed.
#[derive(Debug, Clone, Default)]
pub struct NodeSelectorTerm {
    pub exprs: Vec<Requirement>,
    pub fields: Vec<Requirement>,
}

impl NodeSelectorTerm {
    fn parse(v: &Value) -> NodeSelectorTerm {
        let list = |name: &str| {
            v.get(name)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Requirement::parse)
                .collect()
        };
        NodeSelectorTerm {
            exprs: list("matchExpressions"),
            fields: list("matchFields"),
        }
    }

    /// An empty term matches no node.
    pub fn matches(&self, node: &NodeInfo) -> bool {
        if self.exprs.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.exprs
            .iter()
            .all(|r| r.matches(node.labels.get(&r.key)))
            && self
                .fields
                .iter()
                .all(|r| r.key == "metadata.name" && r.matches(Some(node.name.as_str())))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

#[derive(Debug, Clone)]
pub struct Toleration {
    pub key: String,
    pub exists: bool,
    pub value: String,
    pub effect: String,
}

impl Toleration {
    /// A toleration of a pod spec (`key`, `operator`, `value`, `effect`).
    pub fn parse(t: &Value) -> Self {
        let g = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or_default();
        Toleration {
            key: g("key").to_string(),
            exists: g("operator") == "Exists",
            value: g("value").to_string(),
            effect: g("effect").to_string(),
        }
    }

    pub fn tolerates(&self, t: &Taint) -> bool {
        if !self.effect.is_empty() && self.effect != t.effect {
            return false;
        }
        if self.exists {
            return self.key.is_empty() || self.key == t.key;
        }
        self.key == t.key && self.value == t.value
    }
}

pub fn tolerated(tolerations: &[Toleration], t: &Taint) -> bool {
    tolerations.iter().any(|tol| tol.tolerates(t))
}

/// A pod (anti-)affinity term.
#[derive(Debug, Clone)]
pub struct PodAffinityTerm {
    pub selector: Option<LabelSelector>,
    /// Empty with `all_namespaces` false: the pod's own namespace.
    pub namespaces: Vec<String>,
    pub all_namespaces: bool,
    pub topology_key: String,
}

impl PodAffinityTerm {
    fn parse(v: &Value, own_namespace: &str) -> PodAffinityTerm {
        let mut namespaces = strings(v.get("namespaces"));
        let ns_selector = v.get("namespaceSelector").filter(|s| !s.is_null());
        // An empty namespaceSelector selects every namespace; namespace labels are not
        // followed, so any other selector falls back to the listed namespaces.
        let all_namespaces = ns_selector.is_some_and(|s| {
            s.get("matchLabels")
                .and_then(Value::as_object)
                .is_none_or(|m| m.is_empty())
                && s.get("matchExpressions")
                    .and_then(Value::as_array)
                    .is_none_or(|a| a.is_empty())
        });
        if namespaces.is_empty() && ns_selector.is_none() {
            namespaces.push(own_namespace.to_string());
        }
        PodAffinityTerm {
            selector: LabelSelector::parse(v.get("labelSelector")),
            namespaces,
            all_namespaces,
            topology_key: v
                .get("topologyKey")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    }

    pub fn matches(&self, pod: &PodInfo) -> bool {
        (self.all_namespaces || self.namespaces.contains(&pod.namespace))
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }
}

#[derive(Debug, Clone)]
pub struct SpreadConstraint {
    pub max_skew: i64,
    pub topology_key: String,
    pub hard: bool,
    pub selector: Option<LabelSelector>,
    pub min_domains: Option<i64>,
}

/// Whether the object's controller is a ReplicaSet, StatefulSet or ReplicationController.
fn replicated(meta: &Value) -> bool {
    const KINDS: [&str; 3] = ["ReplicaSet", "StatefulSet", "ReplicationController"];
    meta.get("ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|o| {
            o.get("controller").and_then(Value::as_bool) == Some(true)
                && o.get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|k| KINDS.contains(&k))
        })
}

/// A pod as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct PodInfo {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub resource_version: String,
    pub labels: Labels,
    pub node_name: Option<String>,
    pub scheduler_name: String,
    pub priority: i32,
    pub preempt_never: bool,
    pub terminal: bool,
    pub deleting: bool,
    pub requests: Resources,
    pub node_selector: Labels,
    pub required_terms: Option<Vec<NodeSelectorTerm>>,
    pub preferred_terms: Vec<(i64, NodeSelectorTerm)>,
    pub tolerations: Vec<Toleration>,
    pub affinity: Vec<PodAffinityTerm>,
    pub anti_affinity: Vec<PodAffinityTerm>,
    pub preferred_affinity: Vec<(i64, PodAffinityTerm)>,
    pub preferred_anti_affinity: Vec<(i64, PodAffinityTerm)>,
    pub spread: Vec<SpreadConstraint>,
    pub nominated_node: Option<String>,
    /// Controlled by a ReplicaSet, StatefulSet or ReplicationController: default topology
    /// spread constraints apply.
    pub replicated: bool,
    /// A hash of what scheduling reads (spec and labels): a change re-queues an unschedulable pod.
    pub signature: u64,
}

impl PodInfo {
    pub fn key(&self) -> PodKey {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The parts of a pod [`PodInfo::parse`] reads: lists decode only these (the rest of a
    /// pod, mostly its status, is skipped rather than built).
    pub fn reads() -> client::Projection {
        let mut projection = client::Projection::default();
        for field in [
            "namespace",
            "name",
            "uid",
            "resourceVersion",
            "labels",
            "deletionTimestamp",
            "ownerReferences",
        ] {
            projection.keep(["metadata", field]);
        }
        projection.keep(["spec"]);
        projection.keep(["status", "phase"]);
        projection.keep(["status", "nominatedNodeName"]);
        projection
    }

    pub fn parse(obj: &Value) -> Option<PodInfo> {
        let meta = obj.get("metadata")?;
        let spec = obj.get("spec")?;
        let namespace = meta.get("namespace")?.as_str()?.to_string();
        let labels = labels_of(meta.get("labels"));
        let s = |p: &str| obj.at(p).and_then(Value::as_str).unwrap_or_default();
        let phase = s("/status/phase");
        let affinity = spec.get("affinity");
        let terms = |p: &str| -> Vec<PodAffinityTerm> {
            affinity
                .and_then(|a| a.at(p))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| PodAffinityTerm::parse(t, &namespace))
                .collect()
        };
        let weighted = |p: &str| -> Vec<(i64, PodAffinityTerm)> {
            affinity
                .and_then(|a| a.at(p))
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| {
                    Some((
                        t.get("weight")?.as_i64()?,
                        PodAffinityTerm::parse(t.get("podAffinityTerm")?, &namespace),
                    ))
                })
                .collect()
        };
        let required_terms = affinity
            .and_then(|a| a.at("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution"))
            .filter(|r| !r.is_null())
            .map(|r| {
                r.get("nodeSelectorTerms")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(NodeSelectorTerm::parse)
                    .collect()
            });
        let preferred_terms = affinity
            .and_then(|a| a.at("/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| {
                Some((
                    t.get("weight")?.as_i64()?,
                    NodeSelectorTerm::parse(t.get("preference")?),
                ))
            })
            .collect();
        let tolerations = spec
            .get("tolerations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(Toleration::parse)
            .collect();
        let spread = spec
            .get("topologySpreadConstraints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| {
                Some(SpreadConstraint {
                    max_skew: c.get("maxSkew")?.as_i64()?.max(1),
                    topology_key: c.get("topologyKey")?.as_str()?.to_string(),
                    hard: c.get("whenUnsatisfiable").and_then(Value::as_str)
                        != Some("ScheduleAnyway"),
                    selector: LabelSelector::parse(c.get("labelSelector")),
                    min_domains: c.get("minDomains").and_then(Value::as_i64),
                })
            })
            .collect();
        let node_name = Some(s("/spec/nodeName"))
            .filter(|n| !n.is_empty())
            .map(String::from);
        // Only pending pods are compared; assigned ones skip the cost.
        let signature = if node_name.is_none() {
            let mut hasher = DefaultHasher::new();
            spec.to_string().hash(&mut hasher);
            labels.hash(&mut hasher);
            hasher.finish()
        } else {
            0
        };
        Some(PodInfo {
            name: meta.get("name")?.as_str()?.to_string(),
            uid: s("/metadata/uid").to_string(),
            resource_version: s("/metadata/resourceVersion").to_string(),
            node_name,
            scheduler_name: spec
                .get("schedulerName")
                .and_then(Value::as_str)
                .unwrap_or("default-scheduler")
                .to_string(),
            priority: spec.get("priority").and_then(Value::as_i64).unwrap_or(0) as i32,
            preempt_never: spec.get("preemptionPolicy").and_then(Value::as_str) == Some("Never"),
            terminal: phase == "Succeeded" || phase == "Failed",
            deleting: meta.get("deletionTimestamp").is_some_and(|d| !d.is_null()),
            requests: pod_requests(spec),
            node_selector: labels_of(spec.get("nodeSelector")),
            required_terms,
            preferred_terms,
            tolerations,
            affinity: terms("/podAffinity/requiredDuringSchedulingIgnoredDuringExecution"),
            anti_affinity: terms("/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution"),
            preferred_affinity: weighted(
                "/podAffinity/preferredDuringSchedulingIgnoredDuringExecution",
            ),
            preferred_anti_affinity: weighted(
                "/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution",
            ),
            spread,
            nominated_node: Some(s("/status/nominatedNodeName"))
                .filter(|n| !n.is_empty())
                .map(String::from),
            replicated: replicated(meta),
            signature,
            labels,
            namespace,
        })
    }

    /// cpu and memory as scoring counts them: a pod without requests counts as 100m and 200Mi.
    pub fn score_requests(&self) -> (i64, i64) {
        (
            if self.requests.cpu == 0 {
                100
            } else {
                self.requests.cpu
            },
            if self.requests.memory == 0 {
                200 << 20
            } else {
                self.requests.memory
            },
        )
    }
}

/// A node as the scheduler sees it.
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    pub name: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    pub unschedulable: bool,
    pub allocatable: Resources,
    pub signature: u64,
}

impl NodeInfo {
    pub fn parse(obj: &Value) -> Option<NodeInfo> {
        let name = obj.at("/metadata/name")?.as_str()?.to_string();
        let labels = labels_of(obj.at("/metadata/labels"));
        let taints: Vec<Taint> = obj
            .at("/spec/taints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| {
                let g = |k: &str| {
                    t.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                Taint {
                    key: g("key"),
                    value: g("value"),
                    effect: g("effect"),
                }
            })
            .collect();
        let unschedulable = obj.at("/spec/unschedulable") == Some(&Value::Bool(true));
        let status = obj.get("status");
        let allocatable = status
            .and_then(|s| s.get("allocatable"))
            .filter(|a| a.as_object().is_some_and(|m| !m.is_empty()))
            .or_else(|| status.and_then(|s| s.get("capacity")));
        let allocatable = Resources::parse(allocatable);
        let mut hasher = DefaultHasher::new();
        labels.hash(&mut hasher);
        taints.hash(&mut hasher);
        unschedulable.hash(&mut hasher);
        allocatable.cpu.hash(&mut hasher);
        allocatable.memory.hash(&mut hasher);
        allocatable.pods.hash(&mut hasher);
        allocatable.other.hash(&mut hasher);
        Some(NodeInfo {
            name,
            labels,
            taints,
            unschedulable,
            allocatable,
            signature: hasher.finish(),
        })
    }
}

/// What the pods assigned to one node use.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub requested: Resources,
    /// cpu and memory with the scoring defaults for pods without requests.
    pub score_cpu: i64,
    pub score_memory: i64,
    pub pods: HashSet<PodKey>,
}

/// A node with what its pods take: `usage` is `None` while no pod counts against it.
#[derive(Debug, Clone)]
pub struct NodeSlot {
    pub info: NodeInfo,
    pub usage: Option<Usage>,
}

/// Nodes, pods and what each node has given out. Each pod tried on thousands of nodes (in
/// large clusters) walks the nodes by slot, with their usage beside them, rather than looking
/// every node name up in maps: those lookups (hashing the name, comparing it with the key in
/// a cold bucket, twice per node) were most of the scheduler's time at 10,000 nodes. Names
/// hash with foldhash (seeded per process) rather than SipHash.
#[derive(Default)]
pub struct Cache {
    /// Nodes in a stable order, for round-robin sampling.
    slots: Vec<NodeSlot>,
    slot_of: foldhash::HashMap<String, usize>,
    /// Usage on nodes the cache does not know (yet).
    unknown_usage: foldhash::HashMap<String, Usage>,
    pub pods: HashMap<PodKey, Arc<PodInfo>>,
    /// Assigned pods with required anti-affinity terms.
    pub with_anti_affinity: HashSet<PodKey>,
    /// Pods waiting for preemption victims to leave: node, priority and requests. Pods of
    /// lower or equal priority see that room as taken.
    pub nominations: HashMap<PodKey, (String, i32, Resources)>,
}

impl Cache {
    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// The node at a position of the round-robin order (`index < node_count()`).
    pub fn slot(&self, index: usize) -> &NodeSlot {
        &self.slots[index]
    }

    pub fn slots(&self) -> &[NodeSlot] {
        &self.slots
    }

    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.slot_of.get(name).map(|&i| &self.slots[i].info)
    }

    pub fn usage(&self, node: &str) -> Option<&Usage> {
        match self.slot_of.get(node) {
            Some(&i) => self.slots[i].usage.as_ref(),
            None => self.unknown_usage.get(node),
        }
    }

    /// The usage of a node, made empty if it has none yet.
    fn usage_entry(&mut self, node: &str) -> &mut Usage {
        match self.slot_of.get(node) {
            Some(&i) => self.slots[i].usage.get_or_insert_with(Usage::default),
            None => self.unknown_usage.entry(node.to_string()).or_default(),
        }
    }

    /// Changes the usage of a node if it has one, dropping it once no pod is left.
    fn change_usage(&mut self, node: &str, change: impl FnOnce(&mut Usage)) {
        match self.slot_of.get(node) {
            Some(&i) => {
                let usage = &mut self.slots[i].usage;
                if let Some(u) = usage {
                    change(u);
                    if u.pods.is_empty() {
                        *usage = None;
                    }
                }
            }
            None => {
                if let Some(u) = self.unknown_usage.get_mut(node) {
                    change(u);
                    if u.pods.is_empty() {
                        self.unknown_usage.remove(node);
                    }
                }
            }
        }
    }

    /// Inserts or replaces a node; returns whether scheduling-relevant fields changed.
    pub fn upsert_node(&mut self, node: NodeInfo) -> bool {
        if let Some(&i) = self.slot_of.get(&node.name) {
            let slot = &mut self.slots[i];
            let changed = slot.info.signature != node.signature;
            slot.info = node;
            return changed;
        }
        let usage = self.unknown_usage.remove(&node.name);
        self.slot_of.insert(node.name.clone(), self.slots.len());
        self.slots.push(NodeSlot { info: node, usage });
        true
    }

    pub fn remove_node(&mut self, name: &str) {
        let Some(i) = self.slot_of.remove(name) else {
            return;
        };
        let gone = self.slots.swap_remove(i);
        if let Some(usage) = gone.usage {
            self.unknown_usage.insert(gone.info.name, usage);
        }
        if let Some(moved) = self.slots.get(i) {
            self.slot_of.insert(moved.info.name.clone(), i);
        }
    }

    pub fn clear_nodes(&mut self) {
        for slot in self.slots.drain(..) {
            if let Some(usage) = slot.usage {
                self.unknown_usage.insert(slot.info.name, usage);
            }
        }
        self.slot_of.clear();
    }

    pub fn clear_pods(&mut self) {
        self.pods.clear();
        self.unknown_usage.clear();
        for slot in &mut self.slots {
            slot.usage = None;
        }
        self.with_anti_affinity.clear();
    }

    /// Whether the pod uses resources on a node.
    fn counts(p: &PodInfo) -> Option<&str> {
        if p.terminal {
            return None;
        }
        p.node_name.as_deref()
    }

    /// Inserts or replaces a pod; returns whether it freed room on a node.
    pub fn upsert_pod(&mut self, pod: PodInfo) -> bool {
        let key = pod.key();
        let freed = self.remove_pod(&key);
        let pod = Arc::new(pod);
        if let Some(node) = Self::counts(&pod) {
            let u = self.usage_entry(node);
            u.requested.add(&pod.requests, 1);
            let (c, m) = pod.score_requests();
            u.score_cpu += c;
            u.score_memory += m;
            u.pods.insert(key.clone());
            if !pod.anti_affinity.is_empty() {
                self.with_anti_affinity.insert(key.clone());
            }
        }
        let still_there = Self::counts(&pod).is_some();
        self.pods.insert(key, pod);
        freed && !still_there
    }

    /// Removes a pod; returns whether it had been using room on a node.
    pub fn remove_pod(&mut self, key: &str) -> bool {
        let Some(old) = self.pods.remove(key) else {
            return false;
        };
        let Some(node) = Self::counts(&old) else {
            return false;
        };
        self.change_usage(node, |u| {
            u.requested.add(&old.requests, -1);
            let (c, m) = old.score_requests();
            u.score_cpu -= c;
            u.score_memory -= m;
            u.pods.remove(key);
        });
        self.with_anti_affinity.remove(key);
        true
    }

    /// Pods assigned to a node.
    pub fn pods_on<'a>(&'a self, node: &str) -> impl Iterator<Item = &'a Arc<PodInfo>> + 'a {
        self.usage(node)
            .into_iter()
            .flat_map(|u| u.pods.iter())
            .filter_map(|k| self.pods.get(k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_decoded_in_the_parts_parse_reads_parses_the_same() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "d", "uid": "u1", "resourceVersion": "7",
                "labels": {"app": "x"}, "annotations": {"a": "b"},
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u0", "controller": true}],
                "managedFields": [{"manager": "m"}]},
            "spec": {"schedulerName": "s", "priority": 5, "preemptionPolicy": "Never",
                "nodeSelector": {"zone": "a"},
                "containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}, "limits": {"cpu": "1"}}, "ports": [{"containerPort": 80, "hostPort": 8080}]}],
                "initContainers": [{"name": "init", "image": "i", "resources": {"requests": {"cpu": "2"}}}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]}},
                    "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 3, "podAffinityTerm": {"topologyKey": "h", "labelSelector": {"matchLabels": {"app": "x"}}}}]}},
                "tolerations": [{"key": "t", "operator": "Exists", "effect": "NoSchedule"}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": {"app": "x"}}}]},
            "status": {"phase": "Pending", "nominatedNodeName": "n1",
                "conditions": [{"type": "PodScheduled", "status": "False"}]}});
        let json = serde_json::to_vec(&pod).unwrap();
        let projected = PodInfo::reads().decode(&json).unwrap();
        assert!(
            projected["status"].get("conditions").is_none(),
            "{projected}"
        );
        assert_eq!(
            format!("{:?}", PodInfo::parse(&projected).unwrap()),
            format!("{:?}", PodInfo::parse(&pod).unwrap())
        );
        let mut bound = pod.clone();
        bound["spec"]["nodeName"] = json!("n2");
        bound["status"]["phase"] = json!("Running");
        let projected = PodInfo::reads()
            .decode(&serde_json::to_vec(&bound).unwrap())
            .unwrap();
        assert_eq!(
            format!("{:?}", PodInfo::parse(&projected).unwrap()),
            format!("{:?}", PodInfo::parse(&bound).unwrap())
        );
    }

    #[test]
    fn requests_take_limits_init_containers_and_overhead() {
        let spec = json!({
            "containers": [
                {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                {"resources": {"limits": {"cpu": "1", "example.com/gpu": "2"}}},
            ],
            "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
            "overhead": {"memory": "1Mi"},
        });
        let r = pod_requests(&spec);
        assert_eq!(r.cpu, 2000);
        assert_eq!(r.memory, 65 << 20);
        assert_eq!(r.get("example.com/gpu"), 2);
        assert_eq!(r.pods, 1);
    }

    #[test]
    fn labels_are_found_by_key_whatever_the_order_given() {
        let mut labels: Labels = [("tier", "db"), ("app", "web"), ("tier", "cache")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(labels.get("app"), Some("web"));
        assert_eq!(labels.get("tier"), Some("db"));
        assert_eq!(labels.get("zone"), None);
        labels.insert("zone".into(), "a".into());
        labels.insert("app".into(), "api".into());
        let all: Vec<_> = labels.iter().collect();
        assert_eq!(all, [("app", "api"), ("tier", "db"), ("zone", "a")]);
    }

    #[test]
    fn selectors_and_terms() {
        let sel = LabelSelector::parse(Some(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}],
        })))
        .unwrap();
        let mut labels = Labels::new();
        labels.insert("app".into(), "web".into());
        assert!(sel.matches(&labels));
        labels.insert("tier".into(), "db".into());
        assert!(!sel.matches(&labels));
        assert!(LabelSelector::parse(Some(&Value::Null)).is_none());

        let node = NodeInfo::parse(&json!({"metadata": {"name": "n1",
            "labels": {"zone": "a", "cores": "8"}}}))
        .unwrap();
        let term = NodeSelectorTerm::parse(&json!({"matchExpressions": [
            {"key": "cores", "operator": "Gt", "values": ["4"]},
            {"key": "zone", "operator": "In", "values": ["a", "b"]}]}));
        assert!(term.matches(&node));
        let fields = NodeSelectorTerm::parse(&json!({"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": ["n2"]}]}));
        assert!(!fields.matches(&node));
        assert!(!NodeSelectorTerm::default().matches(&node));
    }

    #[test]
    fn tolerations() {
        let taint = Taint {
            key: "k".into(),
            value: "v".into(),
            effect: "NoSchedule".into(),
        };
        let t = |key: &str, exists: bool, value: &str, effect: &str| Toleration {
            key: key.into(),
            exists,
            value: value.into(),
            effect: effect.into(),
        };
        assert!(t("k", false, "v", "NoSchedule").tolerates(&taint));
        assert!(t("k", false, "v", "").tolerates(&taint));
        assert!(t("k", true, "", "").tolerates(&taint));
        assert!(t("", true, "", "").tolerates(&taint));
        assert!(!t("k", false, "w", "").tolerates(&taint));
        assert!(!t("k", true, "", "NoExecute").tolerates(&taint));
    }

    #[test]
    fn cache_tracks_usage() {
        let mut cache = Cache::default();
        let pod = |node: Option<&str>, phase: &str| {
            PodInfo::parse(&json!({"metadata": {"name": "p", "namespace": "d"},
                "spec": {"nodeName": node, "containers": [{"resources": {"requests": {"cpu": "1"}}}]},
                "status": {"phase": phase}}))
            .unwrap()
        };
        assert!(!cache.upsert_pod(pod(None, "Pending")));
        assert!(!cache.upsert_pod(pod(Some("n"), "Running")));
        assert_eq!(cache.usage("n").unwrap().requested.cpu, 1000);
        assert!(cache.upsert_pod(pod(Some("n"), "Succeeded")));
        assert!(cache.usage("n").is_none());
        cache.upsert_node(NodeInfo::parse(&json!({"metadata": {"name": "a"}})).unwrap());
        cache.upsert_node(NodeInfo::parse(&json!({"metadata": {"name": "b"}})).unwrap());
        cache.remove_node("a");
        let names: Vec<&str> = cache.slots().iter().map(|s| s.info.name.as_str()).collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn usage_follows_its_node_in_and_out_of_the_cache() {
        let mut cache = Cache::default();
        let pod = |name: &str| {
            PodInfo::parse(&json!({"metadata": {"name": name, "namespace": "d"},
                "spec": {"nodeName": "n", "containers": [{"resources": {"requests": {"cpu": "1"}}}]},
                "status": {"phase": "Running"}}))
            .unwrap()
        };
        let node = |name: &str| NodeInfo::parse(&json!({"metadata": {"name": name}})).unwrap();
        cache.upsert_pod(pod("p1"));
        cache.upsert_node(node("m"));
        cache.upsert_node(node("n"));
        let cpu = |c: &Cache| c.usage("n").map(|u| u.requested.cpu);
        assert_eq!(cpu(&cache), Some(1000));
        assert!(cache.slot(1).usage.is_some() && cache.slot(0).usage.is_none());
        cache.upsert_pod(pod("p2"));
        assert_eq!(cpu(&cache), Some(2000));
        cache.remove_node("m");
        assert_eq!(cache.slot(0).info.name, "n");
        assert_eq!(cache.node("n").map(|n| n.name.as_str()), Some("n"));
        assert!(cache.node("m").is_none());
        cache.remove_node("n");
        assert_eq!(cpu(&cache), Some(2000));
        assert!(cache.remove_pod("d/p1") && cache.remove_pod("d/p2"));
        assert_eq!(cpu(&cache), None);
        cache.upsert_pod(pod("p3"));
        cache.clear_nodes();
        cache.upsert_node(node("n"));
        assert_eq!(cpu(&cache), Some(1000));
        cache.clear_pods();
        assert_eq!(cpu(&cache), None);
        assert_eq!(cache.node_count(), 1);
    }
}
