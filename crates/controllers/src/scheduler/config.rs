//! `KubeSchedulerConfiguration` (`kubescheduler.config.k8s.io/v1`; `v1beta3` is read the same
//! way): strict decoding, kube-scheduler's validation and messages, the defaults, and the merge
//! of each profile's plugins with the default ones into the [`Profile`]s the scheduler runs.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::Value;

use super::model::SpreadConstraint;
use super::profile::{Filters, Profile, Scoring, Strategy, Weights};

pub const GROUP_VERSIONS: [&str; 2] = [
    "kubescheduler.config.k8s.io/v1",
    "kubescheduler.config.k8s.io/v1beta3",
];

/// What the scheduler runs with: its profiles and queue settings.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    pub profiles: Vec<Profile>,
    /// `parallelism`: accepted; decisions are made one at a time.
    pub parallelism: i64,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Things the file asks for that are accepted but not carried out, to be logged.
    pub warnings: Vec<String>,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            profiles: vec![Profile::default_named(super::DEFAULT_SCHEDULER)],
            parallelism: 16,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            warnings: Vec::new(),
        }
    }
}

// ---- Strict decoding -------------------------------------------------------------------

/// The shape of a field, for strict decoding.
enum Shape {
    Obj(&'static [(&'static str, Shape)]),
    List(&'static Shape),
    Int,
    Str,
    Bool,
    Any,
}

use Shape::{Any, Bool, Int, List, Obj, Str};

const PLUGIN: Shape = Obj(&[("name", Str), ("weight", Int)]);
const SET: Shape = Obj(&[("enabled", List(&PLUGIN)), ("disabled", List(&PLUGIN))]);
const PLUGINS: Shape = Obj(&[
    ("preEnqueue", SET),
    ("queueSort", SET),
    ("preFilter", SET),
    ("filter", SET),
    ("postFilter", SET),
    ("preScore", SET),
    ("score", SET),
    ("reserve", SET),
    ("permit", SET),
    ("preBind", SET),
    ("bind", SET),
    ("postBind", SET),
    ("multiPoint", SET),
]);
const PROFILE: Shape = Obj(&[
    ("schedulerName", Str),
    ("percentageOfNodesToScore", Int),
    ("plugins", PLUGINS),
    ("pluginConfig", List(&Obj(&[("name", Str), ("args", Any)]))),
]);
const TOP: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("parallelism", Int),
    ("leaderElection", Any),
    ("clientConnection", Any),
    ("healthzBindAddress", Str),
    ("metricsBindAddress", Str),
    ("enableProfiling", Bool),
    ("enableContentionProfiling", Bool),
    ("percentageOfNodesToScore", Int),
    ("podInitialBackoffSeconds", Int),
    ("podMaxBackoffSeconds", Int),
    ("profiles", List(&PROFILE)),
    ("extenders", List(&Any)),
    ("delayCacheUntilActive", Bool),
]);
const RESOURCE: Shape = Obj(&[("name", Str), ("weight", Int)]);
const FIT_ARGS: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("ignoredResources", List(&Str)),
    ("ignoredResourceGroups", List(&Str)),
    (
        "scoringStrategy",
        Obj(&[
            ("type", Str),
            ("resources", List(&RESOURCE)),
            (
                "requestedToCapacityRatio",
                Obj(&[("shape", List(&Obj(&[("utilization", Int), ("score", Int)])))]),
            ),
        ]),
    ),
]);
const SPREAD_ARGS: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("defaultingType", Str),
    (
        "defaultConstraints",
        List(&Obj(&[
            ("maxSkew", Int),
            ("topologyKey", Str),
            ("whenUnsatisfiable", Str),
            ("labelSelector", Any),
            ("minDomains", Int),
            ("nodeAffinityPolicy", Str),
            ("nodeTaintsPolicy", Str),
            ("matchLabelKeys", List(&Str)),
        ])),
    ),
]);
const BALANCED_ARGS: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("resources", List(&RESOURCE)),
]);
const AFFINITY_ARGS: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("hardPodAffinityWeight", Int),
    ("ignorePreferredTermsOfExistingPods", Bool),
]);
const NODE_AFFINITY_ARGS: Shape =
    Obj(&[("apiVersion", Str), ("kind", Str), ("addedAffinity", Any)]);
const PREEMPTION_ARGS: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("minCandidateNodesPercentage", Int),
    ("minCandidateNodesAbsolute", Int),
]);
const VOLUME_ARGS: Shape = Obj(&[
    ("apiVersion", Str),
    ("kind", Str),
    ("bindTimeoutSeconds", Int),
    ("shape", List(&Any)),
]);

/// The typed arguments of the plugins that have them.
const ARGS: &[(&str, &Shape)] = &[
    ("NodeResourcesFit", &FIT_ARGS),
    ("PodTopologySpread", &SPREAD_ARGS),
    ("NodeResourcesBalancedAllocation", &BALANCED_ARGS),
    ("InterPodAffinity", &AFFINITY_ARGS),
    ("NodeAffinity", &NODE_AFFINITY_ARGS),
    ("DefaultPreemption", &PREEMPTION_ARGS),
    ("VolumeBinding", &VOLUME_ARGS),
];

struct Decoder {
    unknown: Vec<String>,
    wrong: Vec<String>,
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Decoder {
    fn check(&mut self, v: &Value, shape: &Shape, path: &str) {
        let want = match (shape, v) {
            (_, Value::Null) | (Any, _) | (Str, Value::String(_)) | (Bool, Value::Bool(_)) => {
                return;
            }
            (Int, Value::Number(n)) if n.is_i64() => return,
            (Obj(fields), Value::Object(map)) => {
                for (k, x) in map {
                    match fields.iter().find(|(name, _)| name == k) {
                        Some((_, s)) => self.check(x, s, &child(path, k)),
                        None => self.unknown.push(child(path, k)),
                    }
                }
                return;
            }
            (List(item), Value::Array(items)) => {
                for (i, x) in items.iter().enumerate() {
                    self.check(x, item, &format!("{path}[{i}]"));
                }
                return;
            }
            (Int, _) => "an integer",
            (Str, _) => "a string",
            (Bool, _) => "a boolean",
            (Obj(_), _) => "an object",
            (List(_), _) => "a list",
        };
        self.wrong.push(format!(
            "cannot decode {} into {path}: want {want}",
            json_type(v)
        ));
    }
}

/// Fails like kube-scheduler's strict decoder on unknown fields and wrong types.
fn decode_strictly(doc: &Value) -> Result<(), String> {
    let mut d = Decoder {
        unknown: Vec::new(),
        wrong: Vec::new(),
    };
    d.check(doc, &TOP, "");
    for (i, profile) in items(doc, "profiles").iter().enumerate() {
        for (j, pc) in items(profile, "pluginConfig").iter().enumerate() {
            let name = pc.get("name").and_then(Value::as_str).unwrap_or_default();
            if let (Some((_, shape)), Some(args)) =
                (ARGS.iter().find(|(n, _)| *n == name), pc.get("args"))
            {
                d.check(
                    args,
                    shape,
                    &format!("profiles[{i}].pluginConfig[{j}].args"),
                );
            }
        }
    }
    if let Some(first) = d.wrong.first() {
        return Err(first.clone());
    }
    if !d.unknown.is_empty() {
        let fields: Vec<String> = d
            .unknown
            .iter()
            .map(|f| format!("unknown field {f:?}"))
            .collect();
        return Err(format!("strict decoding error: {}", fields.join(", ")));
    }
    Ok(())
}

fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn string<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

// ---- Plugins ---------------------------------------------------------------------------

/// kube-scheduler's extension points, in the order its framework fills them, with the
/// config field and the Go interface name its messages use.
const POINTS: [(&str, &str); 12] = [
    ("preFilter", "PreFilterPlugin"),
    ("filter", "FilterPlugin"),
    ("postFilter", "PostFilterPlugin"),
    ("reserve", "ReservePlugin"),
    ("preScore", "PreScorePlugin"),
    ("score", "ScorePlugin"),
    ("preBind", "PreBindPlugin"),
    ("bind", "BindPlugin"),
    ("postBind", "PostBindPlugin"),
    ("permit", "PermitPlugin"),
    ("preEnqueue", "PreEnqueuePlugin"),
    ("queueSort", "QueueSortPlugin"),
];
const PRE_FILTER: u16 = 1;
const FILTER: u16 = 1 << 1;
const POST_FILTER: u16 = 1 << 2;
const RESERVE: u16 = 1 << 3;
const PRE_SCORE: u16 = 1 << 4;
const SCORE: u16 = 1 << 5;
const PRE_BIND: u16 = 1 << 6;
const BIND: u16 = 1 << 7;
const PRE_ENQUEUE: u16 = 1 << 10;
const QUEUE_SORT: u16 = 1 << 11;
const SCORED: u16 = PRE_FILTER | FILTER | PRE_SCORE | SCORE;

/// One in-tree plugin of kube-scheduler 1.33.
struct Plugin {
    name: &'static str,
    points: u16,
    /// Whether our scheduler carries it out.
    implemented: bool,
    /// In the default `multiPoint` set, with this weight (0: no weight given).
    default: Option<i64>,
}

const fn plugin(
    name: &'static str,
    points: u16,
    implemented: bool,
    default: Option<i64>,
) -> Plugin {
    Plugin {
        name,
        points,
        implemented,
        default,
    }
}

/// kube-scheduler 1.33's registry, the default plugins in their default order first.
const REGISTRY: &[Plugin] = &[
    plugin("SchedulingGates", PRE_ENQUEUE, false, Some(0)),
    plugin("PrioritySort", QUEUE_SORT, true, Some(0)),
    plugin("NodeUnschedulable", FILTER, true, Some(0)),
    plugin("NodeName", FILTER, true, Some(0)),
    plugin("TaintToleration", FILTER | PRE_SCORE | SCORE, true, Some(3)),
    plugin("NodeAffinity", SCORED, true, Some(2)),
    plugin("NodePorts", PRE_FILTER | FILTER, false, Some(0)),
    plugin("NodeResourcesFit", SCORED, true, Some(1)),
    plugin("VolumeRestrictions", PRE_FILTER | FILTER, false, Some(0)),
    plugin("NodeVolumeLimits", PRE_FILTER | FILTER, false, Some(0)),
    plugin("VolumeBinding", SCORED | RESERVE | PRE_BIND, false, Some(0)),
    plugin("VolumeZone", PRE_FILTER | FILTER, false, Some(0)),
    plugin("PodTopologySpread", SCORED, true, Some(2)),
    plugin("InterPodAffinity", SCORED, true, Some(2)),
    plugin("DefaultPreemption", POST_FILTER, true, Some(0)),
    plugin(
        "NodeResourcesBalancedAllocation",
        PRE_SCORE | SCORE,
        true,
        Some(1),
    ),
    plugin("ImageLocality", SCORE, false, Some(1)),
    plugin("DefaultBinder", BIND, true, Some(0)),
    plugin(
        "DynamicResources",
        PRE_ENQUEUE | PRE_FILTER | FILTER | POST_FILTER | RESERVE | PRE_BIND,
        false,
        None,
    ),
];

fn lookup(name: &str) -> Option<&'static Plugin> {
    REGISTRY.iter().find(|p| p.name == name)
}

/// A configured plugin: name and weight (0 when not given).
type Entry = (String, i64);

#[derive(Debug, Clone, Default)]
struct PluginSet {
    enabled: Vec<Entry>,
    disabled: Vec<String>,
}

impl PluginSet {
    fn read(v: Option<&Value>) -> PluginSet {
        let list = |key: &str| v.map(|v| items(v, key)).unwrap_or_default();
        PluginSet {
            enabled: list("enabled")
                .iter()
                .map(|p| {
                    (
                        string(p, "name").unwrap_or_default().to_string(),
                        int(p, "weight").unwrap_or(0),
                    )
                })
                .collect(),
            disabled: list("disabled")
                .iter()
                .map(|p| string(p, "name").unwrap_or_default().to_string())
                .collect(),
        }
    }

    fn disables(&self, name: &str) -> bool {
        self.disabled.iter().any(|d| d == name || d == "*")
    }

    /// The defaults less the disabled ones, a default enabled again replaced in place, then
    /// the other enabled plugins.
    fn merged_onto(self, defaults: &[Entry]) -> PluginSet {
        let mut used = HashSet::new();
        let mut enabled = Vec::new();
        for (name, weight) in defaults {
            if self.disables(name) {
                continue;
            }
            match self.enabled.iter().position(|(n, _)| n == name) {
                Some(i) => {
                    used.insert(i);
                    enabled.push(self.enabled[i].clone());
                }
                None => enabled.push((name.clone(), *weight)),
            }
        }
        for (i, e) in self.enabled.iter().enumerate() {
            if !used.contains(&i) {
                enabled.push(e.clone());
            }
        }
        PluginSet {
            enabled,
            disabled: self.disabled,
        }
    }
}

/// The plugins of each extension point after merging and `multiPoint` expansion.
fn expand(plugins: Option<&Value>) -> Result<Vec<Vec<Entry>>, String> {
    let defaults: Vec<Entry> = REGISTRY
        .iter()
        .filter_map(|p| p.default.map(|w| (p.name.to_string(), w)))
        .collect();
    let set = |key: &str| PluginSet::read(plugins.and_then(|p| p.get(key)));
    let multi = set("multiPoint").merged_onto(&defaults);
    let mut out = Vec::new();
    for (bit, (key, type_name)) in POINTS.iter().enumerate() {
        let point = set(key);
        let mut list: Vec<Entry> = Vec::new();
        for (name, weight) in &point.enabled {
            let plugin = lookup(name).ok_or(format!("{type_name} {name:?} does not exist"))?;
            if plugin.points & (1 << bit) == 0 {
                return Err(format!(
                    "plugin {name:?} does not extend {type_name} plugin"
                ));
            }
            if list.iter().any(|(n, _)| n == name) {
                return Err(format!(
                    "plugin {name:?} already registered as {type_name:?}"
                ));
            }
            list.push((name.clone(), *weight));
        }
        if !point.disabled.iter().any(|d| d == "*") {
            let explicit = list.len();
            for (name, weight) in &multi.enabled {
                let plugin = lookup(name).ok_or(format!("{type_name} {name:?} does not exist"))?;
                if plugin.points & (1 << bit) == 0 || point.disables(name) {
                    continue;
                }
                if list[..explicit].iter().any(|(n, _)| n == name) {
                    continue;
                }
                if list.iter().any(|(n, _)| n == name) {
                    return Err(format!(
                        "plugin {name:?} already registered as {type_name:?}"
                    ));
                }
                list.push((name.clone(), *weight));
            }
        }
        out.push(list);
    }
    Ok(out)
}

fn point(lists: &[Vec<Entry>], bit: u16) -> &[Entry] {
    &lists[bit.trailing_zeros() as usize]
}

fn has(list: &[Entry], name: &str) -> bool {
    list.iter().any(|(n, _)| n == name)
}

/// A score plugin's weight: its `score` entry's, else its `multiPoint` entry's; 0 means 1.
fn weight(list: &[Entry], name: &str) -> i64 {
    list.iter()
        .find(|(n, _)| n == name)
        .map_or(0, |(_, w)| if *w == 0 { 1 } else { *w })
}

/// Builds one profile from its merged plugin lists and arguments.
fn build(
    name: &str,
    percentage: u32,
    lists: &[Vec<Entry>],
    args: &ProfileArgs,
) -> Result<Profile, String> {
    let sorts = point(lists, QUEUE_SORT).len();
    if sorts != 1 {
        return Err(format!(
            "only one queue sort plugin required for profile with scheduler name {name:?}, but got {sorts}"
        ));
    }
    if point(lists, BIND).is_empty() {
        return Err(format!(
            "at least one bind plugin is needed for profile with scheduler name {name:?}"
        ));
    }
    let filter = point(lists, FILTER);
    let score = point(lists, SCORE);
    let scoring = args.scoring.clone().unwrap_or_default();
    Ok(Profile {
        name: name.into(),
        filters: Filters {
            unschedulable: has(filter, "NodeUnschedulable"),
            node_affinity: has(filter, "NodeAffinity"),
            taints: has(filter, "TaintToleration"),
            resources: has(filter, "NodeResourcesFit"),
            pod_affinity: has(filter, "InterPodAffinity"),
            spread: has(filter, "PodTopologySpread"),
        },
        weights: Weights {
            taints: weight(score, "TaintToleration"),
            node_affinity: weight(score, "NodeAffinity"),
            fit: weight(score, "NodeResourcesFit"),
            balanced: weight(score, "NodeResourcesBalancedAllocation"),
            pod_affinity: weight(score, "InterPodAffinity"),
            spread: weight(score, "PodTopologySpread"),
        },
        default_scoring: scoring == Scoring::default(),
        scoring,
        percentage,
        preemption: has(point(lists, POST_FILTER), "DefaultPreemption"),
        default_spread: args.default_spread.clone(),
    })
}

// ---- Validation ------------------------------------------------------------------------

/// kube's field errors.
struct Errors(Vec<String>);

impl Errors {
    fn invalid(&mut self, path: &str, value: impl std::fmt::Display, detail: &str) {
        self.0
            .push(format!("{path}: Invalid value: {value}: {detail}"));
    }
    fn required(&mut self, path: &str, detail: &str) {
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        self.0.push(format!("{path}: Required value{detail}"));
    }
    fn unsupported(&mut self, path: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        self.0.push(format!(
            "{path}: Unsupported value: {value:?}: supported values: {}",
            list.join(", ")
        ));
    }
    fn result(self) -> Result<(), String> {
        match self.0.len() {
            0 => Ok(()),
            1 => Err(self.0[0].clone()),
            _ => Err(format!("[{}]", self.0.join(", "))),
        }
    }
}

/// The arguments of one profile we carry out.
#[derive(Default)]
struct ProfileArgs {
    scoring: Option<Scoring>,
    default_spread: Vec<SpreadConstraint>,
}

const STRATEGIES: [&str; 3] = [
    "LeastAllocated",
    "MostAllocated",
    "RequestedToCapacityRatio",
];

fn fit_args(args: &Value, path: &str, errs: &mut Errors) -> Option<Scoring> {
    let s = args.get("scoringStrategy").filter(|s| !s.is_null())?;
    let path = child(path, "scoringStrategy");
    let kind = string(s, "type").unwrap_or_default();
    if !STRATEGIES.contains(&kind) {
        errs.unsupported(&child(&path, "type"), kind, &STRATEGIES);
    }
    let mut resources = Vec::new();
    for (i, r) in items(s, "resources").iter().enumerate() {
        let (name, w) = (
            string(r, "name").unwrap_or_default(),
            int(r, "weight").unwrap_or(0),
        );
        if !(1..=100).contains(&w) {
            let detail = format!("resource weight of {name} not in valid range (0, 100]");
            errs.invalid(&format!("{path}.resources[{i}].weight"), w, &detail);
        }
        resources.push((name.to_string(), w));
    }
    if resources.is_empty() {
        resources = Scoring::default().resources;
    }
    let ratio = s.get("requestedToCapacityRatio").filter(|r| !r.is_null());
    let ratio_path = child(&path, "requestedToCapacityRatio");
    let strategy = match (kind, ratio) {
        ("RequestedToCapacityRatio", None) => {
            errs.required(
                &ratio_path,
                "must be specified when type is RequestedToCapacityRatio",
            );
            Strategy::LeastAllocated
        }
        ("RequestedToCapacityRatio", Some(r)) => {
            Strategy::RequestedToCapacityRatio(shape(r, &child(&ratio_path, "shape"), errs))
        }
        (_, Some(_)) => {
            errs.0.push(format!(
                "{ratio_path}: Forbidden: must be nil when type is not RequestedToCapacityRatio"
            ));
            Strategy::LeastAllocated
        }
        ("MostAllocated", None) => Strategy::MostAllocated,
        _ => Strategy::LeastAllocated,
    };
    Some(Scoring {
        strategy,
        resources,
    })
}

fn shape(ratio: &Value, path: &str, errs: &mut Errors) -> Vec<(i64, i64)> {
    let points: Vec<(i64, i64)> = items(ratio, "shape")
        .iter()
        .map(|p| {
            (
                int(p, "utilization").unwrap_or(0),
                int(p, "score").unwrap_or(0),
            )
        })
        .collect();
    if points.is_empty() {
        errs.required(path, "at least one point must be specified");
    }
    if let Some(i) = (1..points.len()).find(|&i| points[i - 1].0 >= points[i].0) {
        let p = format!("{path}[{i}].utilization");
        errs.invalid(&p, points[i].0, "values must be sorted in increasing order");
    }
    for (i, (u, s)) in points.iter().enumerate() {
        if !(0..=100).contains(u) {
            errs.invalid(
                &format!("{path}[{i}].utilization"),
                u,
                "not in valid range [0, 100]",
            );
        }
        if !(0..=10).contains(s) {
            errs.invalid(
                &format!("{path}[{i}].score"),
                s,
                "not in valid range [0, 10]",
            );
        }
    }
    points
}

const WHEN_UNSATISFIABLE: [&str; 2] = ["DoNotSchedule", "ScheduleAnyway"];

fn spread_args(args: &Value, path: &str, errs: &mut Errors) -> Vec<SpreadConstraint> {
    let constraints = items(args, "defaultConstraints");
    let kind = string(args, "defaultingType").unwrap_or("System");
    let kind_path = child(path, "defaultingType");
    if !["System", "List"].contains(&kind) {
        errs.unsupported(&kind_path, kind, &["List", "System"]);
    } else if kind == "System" && !constraints.is_empty() {
        errs.invalid(
            &kind_path,
            format!("{kind:?}"),
            "when .defaultConstraints are not empty",
        );
    }
    let list_path = child(path, "defaultConstraints");
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = format!("{list_path}[{i}]");
        let skew = int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.invalid(&child(&p, "maxSkew"), skew, "not in valid range (0, inf)");
        }
        let key = string(c, "topologyKey").unwrap_or_default();
        if key.is_empty() {
            errs.required(&child(&p, "topologyKey"), "can not be empty");
        }
        let when = string(c, "whenUnsatisfiable").unwrap_or_default();
        if when.is_empty() {
            errs.required(&child(&p, "whenUnsatisfiable"), "can not be empty");
        } else if !WHEN_UNSATISFIABLE.contains(&when) {
            errs.unsupported(&child(&p, "whenUnsatisfiable"), when, &WHEN_UNSATISFIABLE);
        }
        if c.get("labelSelector").is_some_and(|s| !s.is_null()) {
            errs.0.push(format!(
                "{p}.labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod"
            ));
        }
        if !seen.insert((key, when)) {
            errs.0.push(format!(
                "{list_path}[{i}]: Duplicate value: \"{{{key}, {when}}}\""
            ));
        }
        out.push(SpreadConstraint {
            max_skew: skew,
            topology_key: key.to_string(),
            hard: when == "DoNotSchedule",
            selector: None,
            min_domains: int(c, "minDomains"),
        });
    }
    if kind == "List" { out } else { Vec::new() }
}

fn percentage(v: &Value, path: &str, errs: &mut Errors) -> Option<u32> {
    let p = int(v, "percentageOfNodesToScore")?;
    if !(0..=100).contains(&p) {
        errs.invalid(
            &child(path, "percentageOfNodesToScore"),
            p,
            "not in valid range [0-100]",
        );
    }
    Some(p.clamp(0, 100) as u32)
}

/// Reads each profile's plugin arguments, checking them as kube-scheduler does.
fn profile_args(
    profile: &Value,
    path: &str,
    errs: &mut Errors,
    warnings: &mut Vec<String>,
) -> ProfileArgs {
    let mut out = ProfileArgs::default();
    for (j, pc) in items(profile, "pluginConfig").iter().enumerate() {
        let name = string(pc, "name").unwrap_or_default();
        let p = format!("{path}.pluginConfig[{j}].args");
        let empty = Value::Null;
        let args = pc.get("args").unwrap_or(&empty);
        match name {
            "NodeResourcesFit" => {
                out.scoring = fit_args(args, &p, errs);
                for key in ["ignoredResources", "ignoredResourceGroups"] {
                    if !items(args, key).is_empty() {
                        warnings.push(format!("{p}.{key} is accepted but not applied"));
                    }
                }
            }
            "PodTopologySpread" => out.default_spread = spread_args(args, &p, errs),
            _ if args.is_null() => {}
            _ => warnings.push(format!(
                "{path}.pluginConfig[{j}]: the arguments of plugin {name:?} are accepted but not applied"
            )),
        }
    }
    out
}

// ---- The whole file --------------------------------------------------------------------

/// Reads a decoded `KubeSchedulerConfiguration` document.
pub fn parse(doc: &Value) -> Result<SchedulerConfig, String> {
    check_kind(doc)?;
    decode_strictly(doc)?;
    let mut errs = Errors(Vec::new());
    let mut config = SchedulerConfig::default();
    let parallelism = int(doc, "parallelism").unwrap_or(16);
    if parallelism <= 0 {
        errs.invalid(
            "parallelism",
            parallelism,
            "should be an integer value greater than zero",
        );
    }
    config.parallelism = parallelism;
    let global = percentage(doc, "", &mut errs).unwrap_or(0);
    backoff(doc, &mut config, &mut errs);
    let profiles = items(doc, "profiles");
    let empty = [Value::Object(Default::default())];
    let profiles = if profiles.is_empty() {
        &empty[..]
    } else {
        profiles
    };
    let mut names = HashSet::new();
    let mut prepared = Vec::new();
    for (i, profile) in profiles.iter().enumerate() {
        let path = format!("profiles[{i}]");
        let name = match string(profile, "schedulerName") {
            Some(n) => n,
            None if profiles.len() == 1 => super::DEFAULT_SCHEDULER,
            None => "",
        };
        if name.is_empty() {
            errs.required(&child(&path, "schedulerName"), "");
        } else if !names.insert(name) {
            errs.0
                .push(format!("{path}.schedulerName: Duplicate value: {name:?}"));
        }
        let pct = percentage(profile, &path, &mut errs).unwrap_or(global);
        let args = profile_args(profile, &path, &mut errs, &mut config.warnings);
        prepared.push((name, pct, args));
    }
    errs.result()?;
    config.profiles.clear();
    for (profile, (name, pct, args)) in profiles.iter().zip(prepared) {
        let named = |e: String| {
            format!("initializing profiles: creating profile for scheduler name {name}: {e}")
        };
        repeated_config(profile).map_err(named)?;
        let lists = expand(profile.get("plugins")).map_err(named)?;
        config
            .profiles
            .push(build(name, pct, &lists, &args).map_err(named)?);
    }
    config.warnings.extend(unimplemented(doc));
    Ok(config)
}

fn check_kind(doc: &Value) -> Result<(), String> {
    if !doc.is_object() {
        return Err("the configuration is not an object".into());
    }
    let version = string(doc, "apiVersion").ok_or("Object 'apiVersion' is missing")?;
    let kind = string(doc, "kind").ok_or("Object 'Kind' is missing")?;
    if !GROUP_VERSIONS.contains(&version) || kind != "KubeSchedulerConfiguration" {
        return Err(format!(
            "no kind {kind:?} is registered for version {version:?}"
        ));
    }
    Ok(())
}

fn backoff(doc: &Value, config: &mut SchedulerConfig, errs: &mut Errors) {
    let initial = int(doc, "podInitialBackoffSeconds").unwrap_or(1);
    let max = int(doc, "podMaxBackoffSeconds").unwrap_or(10);
    if initial <= 0 {
        errs.invalid(
            "podInitialBackoffSeconds",
            initial,
            "must be greater than 0",
        );
    }
    if max < initial {
        errs.invalid(
            "podMaxBackoffSeconds",
            max,
            "must be greater than or equal to PodInitialBackoffSeconds",
        );
    }
    config.initial_backoff = Duration::from_secs(initial.max(1) as u64);
    config.max_backoff = Duration::from_secs(max.max(initial).max(1) as u64);
}

fn repeated_config(profile: &Value) -> Result<(), String> {
    let mut seen = HashSet::new();
    for pc in items(profile, "pluginConfig") {
        let name = string(pc, "name").unwrap_or_default();
        if !seen.insert(name) {
            return Err(format!("repeated config for plugin {name}"));
        }
    }
    Ok(())
}

/// Warnings for the plugins kube-scheduler has that the file names and we do not carry out.
fn unimplemented(doc: &Value) -> Vec<String> {
    let mut named = Vec::new();
    for profile in items(doc, "profiles") {
        let plugins = profile.get("plugins");
        for key in POINTS.iter().map(|(k, _)| *k).chain(["multiPoint"]) {
            let set = PluginSet::read(plugins.and_then(|p| p.get(key)));
            named.extend(set.enabled.into_iter().map(|(n, _)| n));
        }
    }
    let mut seen = HashSet::new();
    let mut out: Vec<String> = named
        .into_iter()
        .filter(|n| lookup(n).is_some_and(|p| !p.implemented) && seen.insert(n.clone()))
        .map(|n| format!("plugin {n:?} is enabled but not implemented by this scheduler; ignored"))
        .collect();
    if !items(doc, "extenders").is_empty() {
        out.push("extenders are not supported; ignored".into());
    }
    out
}

#[cfg(test)]
mod tests;
