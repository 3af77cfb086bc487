//! Choosing a node: filters, scores and preemption over the cache, with kube-scheduler's
//! observable rules and messages.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use super::model::{Cache, NodeInfo, PodInfo, Resources, Usage, tolerated};
use super::profile::Profile;

/// Why a node cannot take the pod.
#[derive(Debug, Clone, Default)]
pub struct NodeFailure {
    pub reasons: Vec<String>,
    /// Preemption cannot help (taints, affinity to nodes, missing labels...).
    pub unresolvable: bool,
    /// Only resources are short: preemption may help.
    pub resources_only: bool,
}

/// Why no node can take the pod.
#[derive(Debug, Clone, Default)]
pub struct FitError {
    pub total: usize,
    pub failures: Vec<(String, NodeFailure)>,
}

impl FitError {
    /// `0/3 nodes are available: 1 node(s) had ..., 2 Insufficient cpu.`
    pub fn message(&self) -> String {
        if self.total == 0 {
            return "no nodes available to schedule pods".into();
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, f) in &self.failures {
            for r in &f.reasons {
                *counts.entry(r.as_str()).or_default() += 1;
            }
        }
        format!(
            "0/{} nodes are available: {}.",
            self.total,
            summarize(counts)
        )
    }
}

fn summarize(counts: BTreeMap<&str, usize>) -> String {
    let mut parts: Vec<String> = counts
        .into_iter()
        .map(|(r, n)| format!("{n} {r}"))
        .collect();
    parts.sort();
    parts.join(", ")
}

pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";

/// The preemption part of a message.
pub fn preemption_message(total: usize, not_helpful: usize, no_victims: usize) -> String {
    let mut counts = BTreeMap::new();
    if not_helpful > 0 {
        counts.insert(NOT_HELPFUL, not_helpful);
    }
    if no_victims > 0 {
        counts.insert(NO_VICTIMS, no_victims);
    }
    format!(
        "preemption: 0/{total} nodes are available: {}.",
        summarize(counts)
    )
}

struct SpreadState {
    /// Matching pods per domain value, over the nodes the pod may use.
    counts: HashMap<String, i64>,
    min: i64,
}

/// What the filters and scores need, computed once per pod.
#[derive(Default)]
pub struct PreState {
    spread: Vec<SpreadState>,
    /// Per required affinity term: the domain values holding a matching pod.
    affinity: Vec<HashSet<String>>,
    affinity_exempt: bool,
    /// Per required anti-affinity term: the domain values holding a matching pod.
    anti: Vec<HashSet<String>>,
    /// (topology key, value) pairs where an existing pod's anti-affinity forbids this pod.
    existing_anti: HashSet<(String, String)>,
    /// Per (topology key, value): the preferred (anti-)affinity weight.
    preferred: HashMap<(String, String), i64>,
}

fn domain<'a>(node: &'a NodeInfo, key: &str) -> Option<&'a str> {
    node.labels.get(key)
}

fn node_affinity_ok(pod: &PodInfo, node: &NodeInfo) -> bool {
    pod.node_selector
        .iter()
        .all(|(k, v)| node.labels.get(k) == Some(v))
        && pod
            .required_terms
            .as_ref()
            .is_none_or(|terms| terms.iter().any(|t| t.matches(node)))
}

impl PreState {
    pub fn compute(cache: &Cache, pod: &PodInfo) -> PreState {
        let mut pre = PreState::default();
        for c in &pod.spread {
            let mut counts: HashMap<String, i64> = HashMap::new();
            for node in cache.slots().iter().map(|s| &s.info) {
                let Some(value) = domain(node, &c.topology_key) else {
                    continue;
                };
                if !node_affinity_ok(pod, node) {
                    continue;
                }
                let n = cache
                    .pods_on(&node.name)
                    .filter(|p| {
                        p.namespace == pod.namespace
                            && !p.deleting
                            && c.selector.as_ref().is_some_and(|s| s.matches(&p.labels))
                    })
                    .count() as i64;
                *counts.entry(value.to_string()).or_default() += n;
            }
            let mut min = counts.values().copied().min().unwrap_or(0);
            if c.min_domains.is_some_and(|m| (counts.len() as i64) < m) {
                min = 0;
            }
            pre.spread.push(SpreadState { counts, min });
        }
        let needs_scan = !pod.affinity.is_empty()
            || !pod.anti_affinity.is_empty()
            || !pod.preferred_affinity.is_empty()
            || !pod.preferred_anti_affinity.is_empty();
        pre.affinity = vec![HashSet::new(); pod.affinity.len()];
        pre.anti = vec![HashSet::new(); pod.anti_affinity.len()];
        if needs_scan {
            let mut any_match = false;
            for (node, usage) in cache
                .slots()
                .iter()
                .filter_map(|s| Some((&s.info, s.usage.as_ref()?)))
            {
                for key in &usage.pods {
                    let Some(p) = cache.pods.get(key) else {
                        continue;
                    };
                    for (i, t) in pod.affinity.iter().enumerate() {
                        if t.matches(p) {
                            any_match = true;
                            if let Some(v) = domain(node, &t.topology_key) {
                                pre.affinity[i].insert(v.to_string());
                            }
                        }
                    }
                    for (i, t) in pod.anti_affinity.iter().enumerate() {
                        if t.matches(p)
                            && let Some(v) = domain(node, &t.topology_key)
                        {
                            pre.anti[i].insert(v.to_string());
                        }
                    }
                    for (sign, terms) in [
                        (1, &pod.preferred_affinity),
                        (-1, &pod.preferred_anti_affinity),
                    ] {
                        for (w, t) in terms {
                            if t.matches(p)
                                && let Some(v) = domain(node, &t.topology_key)
                            {
                                *pre.preferred
                                    .entry((t.topology_key.clone(), v.to_string()))
                                    .or_default() += sign * w;
                            }
                        }
                    }
                }
            }
            // The first pod of a group that selects itself may go anywhere.
            pre.affinity_exempt = !any_match && pod.affinity.iter().all(|t| t.matches(pod));
        }
        for key in &cache.with_anti_affinity {
            let Some(p) = cache.pods.get(key) else {
                continue;
            };
            let Some(node) = p.node_name.as_deref().and_then(|n| cache.node(n)) else {
                continue;
            };
            for t in &p.anti_affinity {
                if t.matches(pod)
                    && let Some(v) = domain(node, &t.topology_key)
                {
                    pre.existing_anti
                        .insert((t.topology_key.clone(), v.to_string()));
                }
            }
        }
        pre
    }
}

/// Runs every filter on one node; `requested` is what the node has already given out.
pub fn filter(
    profile: &Profile,
    pod: &PodInfo,
    pre: &PreState,
    node: &NodeInfo,
    requested: &Resources,
) -> Result<(), NodeFailure> {
    let mut f = NodeFailure::default();
    let on = &profile.filters;
    if on.unschedulable
        && node.unschedulable
        && !pod.tolerations.iter().any(|t| {
            t.tolerates(&super::model::Taint {
                key: "node.kubernetes.io/unschedulable".into(),
                value: String::new(),
                effect: "NoSchedule".into(),
            })
        })
    {
        f.reasons.push("node(s) were unschedulable".into());
        f.unresolvable = true;
        return Err(f);
    }
    if on.node_affinity && !node_affinity_ok(pod, node) {
        f.reasons
            .push("node(s) didn't match Pod's node affinity/selector".into());
        f.unresolvable = true;
        return Err(f);
    }
    if on.taints
        && let Some(t) = node.taints.iter().find(|t| {
            (t.effect == "NoSchedule" || t.effect == "NoExecute") && !tolerated(&pod.tolerations, t)
        })
    {
        f.reasons.push(format!(
            "node(s) had untolerated taint {{{}: {}}}",
            t.key, t.value
        ));
        f.unresolvable = true;
        return Err(f);
    }
    if on.resources {
        resources_fit(pod, node, requested)?;
    }
    let affinity =
        !pod.affinity.is_empty() || !pod.anti_affinity.is_empty() || !pre.existing_anti.is_empty();
    if on.pod_affinity && affinity {
        pod_affinity_fits(pod, pre, node)?;
    }
    if on.spread && !pod.spread.is_empty() {
        spread_fits(pod, pre, node)?;
    }
    Ok(())
}

/// NodeResourcesFit's filter.
fn resources_fit(pod: &PodInfo, node: &NodeInfo, requested: &Resources) -> Result<(), NodeFailure> {
    let mut f = NodeFailure::default();
    let alloc = &node.allocatable;
    if requested.pods + 1 > alloc.pods {
        f.reasons.push("Too many pods".into());
    }
    let r = &pod.requests;
    if r.cpu > 0 && requested.cpu + r.cpu > alloc.cpu {
        f.reasons.push("Insufficient cpu".into());
    }
    if r.memory > 0 && requested.memory + r.memory > alloc.memory {
        f.reasons.push("Insufficient memory".into());
    }
    for (name, amount) in &r.other {
        if *amount > 0 && requested.get(name) + amount > alloc.get(name) {
            f.reasons.push(format!("Insufficient {name}"));
        }
    }
    if !f.reasons.is_empty() {
        f.resources_only = true;
        return Err(f);
    }
    Ok(())
}

/// InterPodAffinity's filter.
fn pod_affinity_fits(pod: &PodInfo, pre: &PreState, node: &NodeInfo) -> Result<(), NodeFailure> {
    let mut f = NodeFailure::default();
    if !pre.affinity_exempt {
        for (i, t) in pod.affinity.iter().enumerate() {
            if !domain(node, &t.topology_key).is_some_and(|v| pre.affinity[i].contains(v)) {
                f.reasons
                    .push("node(s) didn't match pod affinity rules".into());
                f.unresolvable = true;
                return Err(f);
            }
        }
    }
    for (i, t) in pod.anti_affinity.iter().enumerate() {
        if domain(node, &t.topology_key).is_some_and(|v| pre.anti[i].contains(v)) {
            f.reasons
                .push("node(s) didn't match pod anti-affinity rules".into());
            return Err(f);
        }
    }
    if !pre.existing_anti.is_empty()
        && node
            .labels
            .iter()
            .any(|(k, v)| pre.existing_anti.contains(&(k.to_string(), v.to_string())))
    {
        f.reasons
            .push("node(s) didn't satisfy existing pods anti-affinity rules".into());
        return Err(f);
    }
    Ok(())
}

/// PodTopologySpread's filter.
fn spread_fits(pod: &PodInfo, pre: &PreState, node: &NodeInfo) -> Result<(), NodeFailure> {
    let mut f = NodeFailure::default();
    for (c, s) in pod.spread.iter().zip(&pre.spread) {
        if !c.hard {
            continue;
        }
        let Some(v) = domain(node, &c.topology_key) else {
            f.reasons.push(
                "node(s) didn't match pod topology spread constraints (missing required label)"
                    .into(),
            );
            f.unresolvable = true;
            return Err(f);
        };
        let self_match = c.selector.as_ref().is_some_and(|s| s.matches(&pod.labels)) as i64;
        let count = s.counts.get(v).copied().unwrap_or(0);
        if count + self_match - s.min > c.max_skew {
            f.reasons
                .push("node(s) didn't match pod topology spread constraints".into());
            return Err(f);
        }
    }
    Ok(())
}

/// Normalizes raw scores to 0..=100 (higher raw is better unless `reverse`).
fn normalize(raw: &[i64], reverse: bool) -> Vec<i64> {
    let (min, max) = (
        raw.iter().copied().min().unwrap_or(0),
        raw.iter().copied().max().unwrap_or(0),
    );
    raw.iter()
        .map(|&r| {
            if max == min {
                100
            } else if reverse {
                (max - r) * 100 / (max - min)
            } else {
                (r - min) * 100 / (max - min)
            }
        })
        .collect()
}

/// Scores feasible nodes: each plugin's 0..=100 score times its weight in the profile.
pub fn score(
    profile: &Profile,
    pod: &PodInfo,
    pre: &PreState,
    candidates: &[(&NodeInfo, Option<&Usage>)],
) -> Vec<i64> {
    let w = &profile.weights;
    let pod_score_requests = pod.score_requests();
    let nodes: Vec<&NodeInfo> = candidates.iter().map(|(n, _)| *n).collect();
    let mut total: Vec<i64> = candidates
        .iter()
        .map(|&(n, usage)| {
            let fit = match w.fit {
                0 => 0,
                _ if profile.default_scoring => least_allocated(pod_score_requests, n, usage),
                _ => profile.scoring.score(pod, n, usage),
            };
            let balanced = match w.balanced {
                0 => 0,
                _ => balanced_allocation(pod, n, usage),
            };
            w.fit * fit + w.balanced * balanced
        })
        .collect();
    let mut add = |raw: Vec<i64>, reverse: bool, weight: i64, skip_flat: bool| {
        if skip_flat && raw.iter().all(|&r| r == 0) {
            return;
        }
        for (t, s) in total.iter_mut().zip(normalize(&raw, reverse)) {
            *t += weight * s;
        }
    };
    if w.node_affinity > 0 && !pod.preferred_terms.is_empty() {
        let raw = nodes
            .iter()
            .map(|n| {
                pod.preferred_terms
                    .iter()
                    .filter(|(_, t)| t.matches(n))
                    .map(|(w, _)| *w)
                    .sum()
            })
            .collect();
        add(raw, false, w.node_affinity, true);
    }
    if w.taints > 0 {
        let raw = nodes
            .iter()
            .map(|n| {
                n.taints
                    .iter()
                    .filter(|t| t.effect == "PreferNoSchedule" && !tolerated(&pod.tolerations, t))
                    .count() as i64
            })
            .collect();
        add(raw, true, w.taints, true);
    }
    if w.pod_affinity > 0 && !pre.preferred.is_empty() {
        let raw = nodes
            .iter()
            .map(|n| {
                n.labels
                    .iter()
                    .filter_map(|(k, v)| pre.preferred.get(&(k.to_string(), v.to_string())))
                    .sum()
            })
            .collect();
        add(raw, false, w.pod_affinity, false);
    }
    if w.spread > 0 && pod.spread.iter().any(|c| !c.hard) {
        let raw = nodes
            .iter()
            .map(|n| {
                pod.spread
                    .iter()
                    .zip(&pre.spread)
                    .filter(|(c, _)| !c.hard)
                    .map(|(c, s)| {
                        domain(n, &c.topology_key)
                            .map_or(1000, |v| s.counts.get(v).copied().unwrap_or(0))
                    })
                    .sum()
            })
            .collect();
        add(raw, true, w.spread, false);
    }
    total
}

fn fraction(used: i64, alloc: i64) -> f64 {
    if alloc <= 0 {
        1.0
    } else {
        ((used as f64) / (alloc as f64)).min(1.0)
    }
}

/// NodeResourcesFit's default score: least allocated cpu and memory, equally weighted; `pc`
/// and `pm` are the pod's cpu and memory as scoring counts them.
fn least_allocated((pc, pm): (i64, i64), n: &NodeInfo, usage: Option<&Usage>) -> i64 {
    let (uc, um) = usage.map_or((0, 0), |u| (u.score_cpu, u.score_memory));
    let fc = fraction(uc + pc, n.allocatable.cpu);
    let fm = fraction(um + pm, n.allocatable.memory);
    (((1.0 - fc) + (1.0 - fm)) * 50.0) as i64
}

/// NodeResourcesBalancedAllocation: how evenly cpu and memory would be used. It looks at
/// actual requests, not the defaults for pods without any.
fn balanced_allocation(pod: &PodInfo, n: &NodeInfo, usage: Option<&Usage>) -> i64 {
    let (rc, rm) = usage.map_or((0, 0), |u| (u.requested.cpu, u.requested.memory));
    let bc = fraction(rc + pod.requests.cpu, n.allocatable.cpu);
    let bm = fraction(rm + pod.requests.memory, n.allocatable.memory);
    ((1.0 - (bc - bm).abs() / 2.0) * 100.0) as i64
}

/// How many feasible nodes to find before scoring (kube-scheduler's adaptive percentage).
/// A `percentage` other than 0 replaces the adaptive share, still with at least 100 nodes.
pub fn nodes_to_find(all: usize, percentage: u32) -> usize {
    if all < 100 || percentage >= 100 {
        return all;
    }
    let pct = match percentage {
        0 => (50 - (all as i64) / 125).max(5) as usize,
        p => p as usize,
    };
    (all * pct / 100).max(100)
}

/// A small, fast random source for breaking ties.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Picks a node for the pod, or says why none fits. `start` rotates the sampling start.
pub fn schedule(
    profile: &Profile,
    cache: &Cache,
    pod: &PodInfo,
    start: &mut usize,
    rng: &mut Rng,
) -> Result<String, FitError> {
    let all = cache.node_count();
    let pre = PreState::compute(cache, pod);
    let empty = Resources::default();
    let want = nodes_to_find(all, profile.percentage);
    let mut feasible: Vec<(&NodeInfo, Option<&Usage>)> = Vec::new();
    let mut failures = Vec::new();
    // Room kept for nominated pods of at least this pod's priority.
    let own_key = pod.key();
    let mut reserved: HashMap<&str, Resources> = HashMap::new();
    for (key, (node, priority, requests)) in &cache.nominations {
        if *key != own_key && *priority >= pod.priority {
            reserved.entry(node.as_str()).or_default().add(requests, 1);
        }
    }
    let mut seen = 0;
    while seen < all && feasible.len() < want {
        let slot = cache.slot((*start + seen) % all);
        seen += 1;
        let (node, usage) = (&slot.info, slot.usage.as_ref());
        let name = &node.name;
        let mut requested = usage.map_or(&empty, |u| &u.requested);
        let with_reserved;
        if let Some(r) = (!reserved.is_empty())
            .then(|| reserved.get(name.as_str()))
            .flatten()
        {
            let mut sum = requested.clone();
            sum.add(r, 1);
            with_reserved = sum;
            requested = &with_reserved;
        }
        match filter(profile, pod, &pre, node, requested) {
            Ok(()) => feasible.push((node, usage)),
            Err(f) => failures.push((name.clone(), f)),
        }
    }
    if all > 0 {
        *start = (*start + seen) % all;
    }
    if feasible.is_empty() {
        return Err(FitError {
            total: all,
            failures,
        });
    }
    if feasible.len() == 1 {
        return Ok(feasible[0].0.name.clone());
    }
    let scores = score(profile, pod, &pre, &feasible);
    let mut best = 0;
    let mut ties = 0u64;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
            ties = 1;
        } else if *s == scores[best] {
            ties += 1;
            if rng.below(ties) == 0 {
                best = i;
            }
        }
    }
    Ok(feasible[best].0.name.clone())
}

/// A preemption plan: delete `victims` so the pod fits on `node`.
#[derive(Debug, Clone)]
pub struct Preemption {
    pub node: String,
    pub victims: Vec<Arc<PodInfo>>,
}

/// Finds lower-priority pods whose removal lets the pod fit, on the nodes where only
/// resources are short. Picks the node whose most important victim matters least, then the
/// fewest victims. Returns the plan or the preemption message.
pub fn preempt(
    profile: &Profile,
    cache: &Cache,
    pod: &PodInfo,
    err: &FitError,
) -> Result<Preemption, String> {
    if pod.preempt_never {
        return Err("preemption: not eligible due to preemptionPolicy=Never.".into());
    }
    let pre = PreState::compute(cache, pod);
    let mut not_helpful = 0;
    let mut no_victims = 0;
    let mut best: Option<(i32, usize, Preemption)> = None;
    for (name, failure) in &err.failures {
        if failure.unresolvable {
            not_helpful += 1;
            continue;
        }
        let Some(node) = cache.node(name) else {
            not_helpful += 1;
            continue;
        };
        let usage = cache.usage(name);
        let mut requested = usage.map(|u| u.requested.clone()).unwrap_or_default();
        let mut candidates: Vec<Arc<PodInfo>> = cache
            .pods_on(name)
            .filter(|p| p.priority < pod.priority && !p.deleting)
            .cloned()
            .collect();
        if !failure.resources_only || candidates.is_empty() {
            no_victims += 1;
            continue;
        }
        for v in &candidates {
            requested.add(&v.requests, -1);
        }
        if filter(profile, pod, &pre, node, &requested).is_err() {
            no_victims += 1;
            continue;
        }
        // Keep as many as possible, the most important first.
        candidates.sort_by_key(|c| std::cmp::Reverse(c.priority));
        let mut victims = Vec::new();
        for v in candidates {
            requested.add(&v.requests, 1);
            if filter(profile, pod, &pre, node, &requested).is_err() {
                requested.add(&v.requests, -1);
                victims.push(v);
            }
        }
        let top = victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let better = best
            .as_ref()
            .is_none_or(|(p, n, _)| (top, victims.len()) < (*p, *n));
        if better {
            best = Some((
                top,
                victims.len(),
                Preemption {
                    node: name.clone(),
                    victims,
                },
            ));
        }
    }
    match best {
        Some((_, _, plan)) => Ok(plan),
        None => Err(preemption_message(err.total, not_helpful, no_victims)),
    }
}

/// Whether a pod nominated to a node should wait for victims still terminating there.
pub fn waiting_for_victims(cache: &Cache, pod: &PodInfo, node: &str) -> bool {
    cache
        .pods_on(node)
        .any(|p| p.deleting && p.priority < pod.priority)
}

#[cfg(test)]
mod tests {
    use super::super::model::{Cache, NodeInfo, PodInfo};
    use super::*;
    use serde_json::{Value, json};

    fn dflt() -> Profile {
        Profile::default_named("default-scheduler")
    }

    fn node(name: &str, extra: Value) -> NodeInfo {
        let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}});
        merge(&mut n, extra);
        NodeInfo::parse(&n).unwrap()
    }

    fn pod(name: &str, extra: Value) -> PodInfo {
        let mut p = json!({"metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c"}]}});
        merge(&mut p, extra);
        PodInfo::parse(&p).unwrap()
    }

    fn merge(a: &mut Value, b: Value) {
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (a, b) => *a = b,
        }
    }

    fn check(cache: &Cache, p: &PodInfo, n: &str) -> Result<(), NodeFailure> {
        let pre = PreState::compute(cache, p);
        let empty = Resources::default();
        let req = cache.usage(n).map_or(&empty, |u| &u.requested);
        filter(&dflt(), p, &pre, cache.node(n).unwrap(), req)
    }

    fn reason(r: Result<(), NodeFailure>) -> String {
        r.err().map(|f| f.reasons.join("; ")).unwrap_or_default()
    }

    #[test]
    fn node_filters() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", json!({"metadata": {"labels": {"disk": "ssd"}}})));
        cache.upsert_node(node("b", json!({"spec": {"unschedulable": true}})));
        cache.upsert_node(node(
            "c",
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
        ));
        let plain = pod("p", json!({}));
        assert!(check(&cache, &plain, "a").is_ok());
        assert_eq!(
            reason(check(&cache, &plain, "b")),
            "node(s) were unschedulable"
        );
        assert_eq!(
            reason(check(&cache, &plain, "c")),
            "node(s) had untolerated taint {k: v}"
        );
        let tolerant = pod(
            "t",
            json!({"spec": {"tolerations": [{"key": "k", "operator": "Exists"}]}}),
        );
        assert!(check(&cache, &tolerant, "c").is_ok());
        let ssd = pod("s", json!({"spec": {"nodeSelector": {"disk": "ssd"}}}));
        assert!(check(&cache, &ssd, "a").is_ok());
        assert_eq!(
            reason(check(&cache, &ssd, "c")),
            "node(s) didn't match Pod's node affinity/selector"
        );
        let affinity = pod(
            "na",
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]}}}}}),
        );
        assert!(check(&cache, &affinity, "a").is_err());
        assert!(check(&cache, &affinity, "c").is_err()); // tainted
    }

    #[test]
    fn resources_fit() {
        let mut cache = Cache::default();
        cache.upsert_node(node(
            "a",
            json!({"status": {"allocatable": {"pods": "2", "example.com/gpu": "1"}}}),
        ));
        let big = pod(
            "big",
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests":
                {"cpu": "5", "memory": "9Gi", "example.com/gpu": "2"}}}]}}),
        );
        assert_eq!(
            reason(check(&cache, &big, "a")),
            "Insufficient cpu; Insufficient memory; Insufficient example.com/gpu"
        );
        for i in 0..2 {
            let mut p = pod(&format!("r{i}"), json!({}));
            p.node_name = Some("a".into());
            cache.upsert_pod(p);
        }
        assert_eq!(
            reason(check(&cache, &pod("x", json!({})), "a")),
            "Too many pods"
        );
    }

    #[test]
    fn pod_affinity_and_anti_affinity() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", json!({"metadata": {"labels": {"zone": "z1"}}})));
        cache.upsert_node(node("b", json!({"metadata": {"labels": {"zone": "z2"}}})));
        let mut web = pod(
            "web",
            json!({"metadata": {"labels": {"app": "web"}}, "spec": {"affinity": {"podAntiAffinity":
                {"requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector":
                {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}}}),
        );
        assert!(check(&cache, &web, "a").is_ok());
        web.node_name = Some("a".into());
        cache.upsert_pod(web.clone());
        let mut web2 = web.clone();
        web2.name = "web2".into();
        web2.node_name = None;
        assert_eq!(
            reason(check(&cache, &web2, "a")),
            "node(s) didn't match pod anti-affinity rules"
        );
        assert!(check(&cache, &web2, "b").is_ok());
        // Symmetry: a plain pod labelled app=web is kept away by the existing pod's rule.
        let plain = pod("plain", json!({"metadata": {"labels": {"app": "web"}}}));
        assert_eq!(
            reason(check(&cache, &plain, "a")),
            "node(s) didn't satisfy existing pods anti-affinity rules"
        );
        let near = pod(
            "near",
            json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                [{"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "zone"}]}}}}),
        );
        assert!(check(&cache, &near, "a").is_ok());
        assert_eq!(
            reason(check(&cache, &near, "b")),
            "node(s) didn't match pod affinity rules"
        );
    }

    #[test]
    fn topology_spread() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", json!({"metadata": {"labels": {"zone": "z1"}}})));
        cache.upsert_node(node("b", json!({"metadata": {"labels": {"zone": "z2"}}})));
        cache.upsert_node(node("c", json!({})));
        let spec = json!({"metadata": {"labels": {"app": "s"}}, "spec": {"topologySpreadConstraints":
            [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
              "labelSelector": {"matchLabels": {"app": "s"}}}]}});
        let mut first = pod("s0", spec.clone());
        first.node_name = Some("a".into());
        cache.upsert_pod(first);
        let next = pod("s1", spec);
        assert_eq!(
            reason(check(&cache, &next, "a")),
            "node(s) didn't match pod topology spread constraints"
        );
        assert!(check(&cache, &next, "b").is_ok());
        assert!(check(&cache, &next, "c").unwrap_err().unresolvable);
    }

    #[test]
    fn least_allocated_prefers_empty_nodes_and_message_format() {
        let mut cache = Cache::default();
        cache.upsert_node(node("busy", json!({})));
        cache.upsert_node(node("idle", json!({})));
        let mut p = pod(
            "x",
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "3"}}}]}}),
        );
        p.node_name = Some("busy".into());
        cache.upsert_pod(p);
        let q = pod("y", json!({}));
        let pre = PreState::compute(&cache, &q);
        let nodes = vec![
            (cache.node("busy").unwrap(), cache.usage("busy")),
            (cache.node("idle").unwrap(), cache.usage("idle")),
        ];
        let s = score(&dflt(), &q, &pre, &nodes);
        assert!(s[1] > s[0], "{s:?}");
        let mut rng = Rng::new(7);
        let mut start = 0;
        assert_eq!(
            schedule(&dflt(), &cache, &q, &mut start, &mut rng).unwrap(),
            "idle"
        );

        let err = FitError {
            total: 3,
            failures: vec![
                (
                    "a".into(),
                    NodeFailure {
                        reasons: vec![
                            "node(s) had untolerated taint {node.kubernetes.io/not-ready: }".into(),
                        ],
                        unresolvable: true,
                        resources_only: false,
                    },
                ),
                (
                    "b".into(),
                    NodeFailure {
                        reasons: vec!["Insufficient cpu".into()],
                        unresolvable: false,
                        resources_only: true,
                    },
                ),
                (
                    "c".into(),
                    NodeFailure {
                        reasons: vec!["Insufficient cpu".into()],
                        unresolvable: false,
                        resources_only: true,
                    },
                ),
            ],
        };
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 2 Insufficient cpu."
        );
        assert_eq!(
            preemption_message(3, 1, 2),
            "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn ties_are_broken_randomly() {
        let mut cache = Cache::default();
        for n in ["a", "b", "c"] {
            cache.upsert_node(node(n, json!({})));
        }
        let q = pod("y", json!({}));
        let mut rng = Rng::new(42);
        let mut seen = HashSet::new();
        for _ in 0..50 {
            let mut start = 0;
            seen.insert(schedule(&dflt(), &cache, &q, &mut start, &mut rng).unwrap());
        }
        assert_eq!(seen.len(), 3);
    }

    #[test]
    fn preemption_picks_lowest_priority_victims() {
        let mut cache = Cache::default();
        cache.upsert_node(node("a", json!({})));
        for (name, prio) in [("low", 1), ("mid", 5)] {
            let mut p = pod(
                name,
                json!({"spec": {"priority": prio, "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
            );
            p.node_name = Some("a".into());
            cache.upsert_pod(p);
        }
        let high = pod(
            "high",
            json!({"spec": {"priority": 10, "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let mut rng = Rng::new(1);
        let err = schedule(&dflt(), &cache, &high, &mut 0, &mut rng).unwrap_err();
        let plan = preempt(&dflt(), &cache, &high, &err).unwrap();
        assert_eq!(plan.node, "a");
        let names: Vec<&str> = plan.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, vec!["low"]);
        let zero = pod(
            "zero",
            json!({"spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let err = schedule(&dflt(), &cache, &zero, &mut 0, &mut rng).unwrap_err();
        assert_eq!(
            preempt(&dflt(), &cache, &zero, &err).unwrap_err(),
            "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
        );
    }
}

#[cfg(test)]
mod timing {
    use super::super::model::{Cache, NodeInfo, PodInfo};
    use super::*;
    use serde_json::json;

    fn dflt() -> Profile {
        Profile::default_named("default-scheduler")
    }

    /// `cargo test --release -p controllers --lib timing -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn decisions_per_second_on_2000_nodes() {
        let mut cache = Cache::default();
        for i in 0..2000 {
            cache.upsert_node(
                NodeInfo::parse(&json!({"metadata": {"name": format!("n{i}")},
                    "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"}}}))
                .unwrap(),
            );
        }
        let template = json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]}});
        let mut rng = Rng::new(3);
        let mut start = 0;
        let n = 20_000;
        let profile = dflt();
        let t = std::time::Instant::now();
        for i in 0..n {
            let mut p = PodInfo::parse(&template).unwrap();
            p.name = format!("p{i}");
            let node = schedule(&profile, &cache, &p, &mut start, &mut rng).unwrap();
            p.node_name = Some(node);
            cache.upsert_pod(p);
        }
        let e = t.elapsed();
        println!(
            "{n} decisions on 2000 nodes in {e:?} ({:.0}/s)",
            n as f64 / e.as_secs_f64()
        );
    }
}
