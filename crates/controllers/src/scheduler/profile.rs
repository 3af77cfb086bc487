//! A scheduling profile as the algorithm reads it: which of our filters run, the weight of
//! each score (0 when off), NodeResourcesFit's scoring strategy, the share of nodes examined
//! and whether preemption runs. `KubeSchedulerConfiguration` profiles become these (see
//! `config.rs`); without a configuration there is one, kube-scheduler's default.

use super::model::{LabelSelector, NodeInfo, Op, PodInfo, Requirement, SpreadConstraint, Usage};

/// The filters of kube-scheduler's plugins that we implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filters {
    /// NodeUnschedulable.
    pub unschedulable: bool,
    /// NodeAffinity (nodeSelector and required node affinity).
    pub node_affinity: bool,
    /// TaintToleration.
    pub taints: bool,
    /// NodeResourcesFit.
    pub resources: bool,
    /// InterPodAffinity.
    pub pod_affinity: bool,
    /// PodTopologySpread.
    pub spread: bool,
}

impl Filters {
    pub const ALL: Filters = Filters {
        unschedulable: true,
        node_affinity: true,
        taints: true,
        resources: true,
        pod_affinity: true,
        spread: true,
    };
}

/// Score weights of kube-scheduler's plugins that we implement; 0 turns a score off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Weights {
    pub taints: i64,
    pub node_affinity: i64,
    pub fit: i64,
    pub balanced: i64,
    pub pod_affinity: i64,
    pub spread: i64,
}

impl Weights {
    /// kube-scheduler's default weights.
    pub const DEFAULT: Weights = Weights {
        taints: 3,
        node_affinity: 2,
        fit: 1,
        balanced: 1,
        pod_affinity: 2,
        spread: 2,
    };
}

/// How NodeResourcesFit scores a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    LeastAllocated,
    MostAllocated,
    /// (utilization 0..=100, score 0..=10) points, utilization increasing.
    RequestedToCapacityRatio(Vec<(i64, i64)>),
}

/// NodeResourcesFit's `scoringStrategy`: the strategy and the weighted resources.
#[derive(Debug, Clone, PartialEq)]
pub struct Scoring {
    pub strategy: Strategy,
    pub resources: Vec<(String, i64)>,
}

impl Default for Scoring {
    fn default() -> Self {
        Scoring {
            strategy: Strategy::LeastAllocated,
            resources: vec![("cpu".into(), 1), ("memory".into(), 1)],
        }
    }
}

impl Scoring {
    /// The 0..=100 score of a node for the pod.
    pub fn score(&self, pod: &PodInfo, node: &NodeInfo, usage: Option<&Usage>) -> i64 {
        let (mut sum, mut weights) = (0.0, 0i64);
        for (name, weight) in &self.resources {
            let alloc = node.allocatable.get(name);
            if alloc <= 0 {
                continue;
            }
            let used = requested(pod, usage, name);
            let frac = (used as f64 / alloc as f64).min(1.0);
            let s = match &self.strategy {
                Strategy::LeastAllocated => (1.0 - frac) * 100.0,
                Strategy::MostAllocated => frac * 100.0,
                Strategy::RequestedToCapacityRatio(shape) => shaped(shape, frac * 100.0) * 10.0,
            };
            sum += s * *weight as f64;
            weights += weight;
        }
        if weights == 0 {
            0
        } else {
            (sum / weights as f64) as i64
        }
    }
}

/// What the node would have given out with the pod on it (cpu and memory with the scoring
/// defaults for pods without requests, as kube-scheduler counts them).
fn requested(pod: &PodInfo, usage: Option<&Usage>, name: &str) -> i64 {
    let (pc, pm) = pod.score_requests();
    match name {
        "cpu" => usage.map_or(0, |u| u.score_cpu) + pc,
        "memory" => usage.map_or(0, |u| u.score_memory) + pm,
        _ => usage.map_or(0, |u| u.requested.get(name)) + pod.requests.get(name),
    }
}

/// The piecewise linear function through the shape's points, flat beyond its ends.
fn shaped(shape: &[(i64, i64)], utilization: f64) -> f64 {
    let Some(&(first_u, first_s)) = shape.first() else {
        return 0.0;
    };
    if utilization <= first_u as f64 {
        return first_s as f64;
    }
    for pair in shape.windows(2) {
        let ((u0, s0), (u1, s1)) = (pair[0], pair[1]);
        if utilization <= u1 as f64 {
            let t = (utilization - u0 as f64) / (u1 - u0) as f64;
            return s0 as f64 + t * (s1 - s0) as f64;
        }
    }
    shape.last().map_or(0.0, |&(_, s)| s as f64)
}

/// One profile: the pods whose `spec.schedulerName` is `name` are scheduled with it.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub filters: Filters,
    pub weights: Weights,
    pub scoring: Scoring,
    /// `percentageOfNodesToScore`; 0 for kube-scheduler's adaptive share.
    pub percentage: u32,
    /// DefaultPreemption.
    pub preemption: bool,
    /// PodTopologySpread `defaultConstraints` (`defaultingType: List`), without selectors.
    pub default_spread: Vec<SpreadConstraint>,
    /// Whether this is kube-scheduler's default profile with default arguments (the fast path).
    pub default_scoring: bool,
}

impl Profile {
    /// kube-scheduler's default profile under the given scheduler name.
    pub fn default_named(name: &str) -> Profile {
        Profile {
            name: name.into(),
            filters: Filters::ALL,
            weights: Weights::DEFAULT,
            scoring: Scoring::default(),
            percentage: 0,
            preemption: true,
            default_spread: Vec::new(),
            default_scoring: true,
        }
    }

    /// The pod with the profile's default spread constraints, when it has none of its own and
    /// a ReplicaSet, StatefulSet or ReplicationController controls it. Their selector is the
    /// pod's labels (the controller's selector matches those), not the union of the selectors
    /// of the Services and controllers that select the pod as kube-scheduler builds it.
    pub fn with_default_spread(&self, pod: &PodInfo) -> Option<PodInfo> {
        if self.default_spread.is_empty()
            || !pod.spread.is_empty()
            || !pod.replicated
            || pod.labels.is_empty()
        {
            return None;
        }
        let selector = LabelSelector {
            reqs: pod
                .labels
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.to_string(),
                    op: Op::In,
                    values: vec![v.to_string()],
                })
                .collect(),
        };
        let mut out = pod.clone();
        out.spread = self
            .default_spread
            .iter()
            .map(|c| SpreadConstraint {
                selector: Some(selector.clone()),
                ..c.clone()
            })
            .collect();
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(cpu: &str) -> NodeInfo {
        NodeInfo::parse(&json!({"metadata": {"name": "n"},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}))
        .unwrap()
    }

    fn pod(cpu: &str) -> PodInfo {
        PodInfo::parse(&json!({"metadata": {"name": "p", "namespace": "d"},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}}))
        .unwrap()
    }

    fn cpu_only(strategy: Strategy) -> Scoring {
        Scoring {
            strategy,
            resources: vec![("cpu".into(), 1)],
        }
    }

    #[test]
    fn strategies_score_a_quarter_full_node() {
        let (n, p) = (node("4"), pod("1"));
        assert_eq!(cpu_only(Strategy::LeastAllocated).score(&p, &n, None), 75);
        assert_eq!(cpu_only(Strategy::MostAllocated).score(&p, &n, None), 25);
        let ratio = Strategy::RequestedToCapacityRatio(vec![(0, 0), (100, 10)]);
        assert_eq!(cpu_only(ratio).score(&p, &n, None), 25);
        let flat_then_up = Strategy::RequestedToCapacityRatio(vec![(50, 2), (100, 10)]);
        assert_eq!(cpu_only(flat_then_up).score(&p, &n, None), 20);
        // cpu 1/4 used, memory 1/8: least allocated averages 75 and 87.5 by weight.
        let weighted = Scoring {
            strategy: Strategy::LeastAllocated,
            resources: vec![("cpu".into(), 3), ("memory".into(), 1)],
        };
        assert_eq!(weighted.score(&p, &n, None), 78);
        // A resource the node does not have is left out.
        let gpu = Scoring {
            strategy: Strategy::MostAllocated,
            resources: vec![("example.com/gpu".into(), 5), ("cpu".into(), 1)],
        };
        assert_eq!(gpu.score(&p, &n, None), 25);
    }

    #[test]
    fn default_spread_applies_to_replicated_pods_without_constraints() {
        let mut profile = Profile::default_named("x");
        profile.default_spread = vec![SpreadConstraint {
            max_skew: 1,
            topology_key: "zone".into(),
            hard: true,
            selector: None,
            min_domains: None,
        }];
        let owned = |extra: serde_json::Value| {
            let mut p = json!({"metadata": {"name": "p", "namespace": "d", "labels": {"app": "web"},
                "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": true}]},
                "spec": {"containers": [{"name": "c"}]}});
            if let Some(spec) = extra.get("spec") {
                p["spec"]["topologySpreadConstraints"] = spec.clone();
            }
            PodInfo::parse(&p).unwrap()
        };
        let p = profile.with_default_spread(&owned(json!({}))).unwrap();
        assert_eq!(p.spread.len(), 1);
        let selector = p.spread[0].selector.as_ref().unwrap();
        assert!(
            selector.matches(
                &[("app".to_string(), "web".to_string())]
                    .into_iter()
                    .collect()
            )
        );
        assert!(!selector.matches(&Default::default()));
        // Own constraints win; bare pods get none.
        let own = owned(json!({"spec": [{"maxSkew": 2, "topologyKey": "host",
            "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {}}]}));
        assert!(profile.with_default_spread(&own).is_none());
        assert!(profile.with_default_spread(&pod("1")).is_none());
        assert!(
            Profile::default_named("y")
                .with_default_spread(&owned(json!({})))
                .is_none()
        );
    }
}
