//! Simulated resource usage: what each container of a simulated pod uses, from the
//! `ResourceUsage` and `ClusterResourceUsage` objects (a fixed `value`, or a CEL `expression`
//! over `node`, `pod` and `container`), summed per pod and per node, and integrated over time
//! for the cumulative counters (`CumulativeUsage`, seconds of CPU).
//!
//! The CEL functions of upstream's metrics environment are registered here: `Usage(pod|node,
//! resource[, container])`, `CumulativeUsage(...)`, `Quantity("...")`,
//! `StartedContainersTotal(node)` (also in receiver style, `pod.Usage("cpu")`), on top of the
//! Stage functions (`Now()`, `Rand()`, `SinceSecond()`, `UnixSecond()`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use client::{Cluster, JsonAt, ListParams, Resource, WatchEvent};
use futures::StreamExt;
use kube_cel::cel::objects::Key;
use kube_cel::cel::{Context, ExecutionError, FunctionContext, Program, Value as CelValue};
use serde_json::{Value, json};

use super::quantity;
use crate::simkinds::Simulations;

/// The default `ClusterResourceUsage` of a cluster with metrics, as upstream's
/// `usage-from-annotation`: pod annotations `kwok.x-k8s.io/usage-cpu` (default `1m`) and
/// `kwok.x-k8s.io/usage-memory` (default `1Mi`).
pub fn default_usage() -> Value {
    let from = |resource: &str, fallback: &str| {
        json!({"expression": format!(
            "has(pod.metadata.annotations) && \"kwok.x-k8s.io/usage-{resource}\" in pod.metadata.annotations ? Quantity(pod.metadata.annotations[\"kwok.x-k8s.io/usage-{resource}\"]) : Quantity(\"{fallback}\")"
        )})
    };
    json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterResourceUsage",
        "metadata": {"name": "usage-from-annotation"},
        "spec": {"usages": [{"usage": {"cpu": from("cpu", "1m"), "memory": from("memory", "1Mi")}}]},
    })
}

/// What is wrong with a `ResourceUsage` or `ClusterResourceUsage` object: `(field, value,
/// detail)` for each expression that does not compile and each value that is no quantity.
pub fn problems(object: &Value) -> Vec<(String, Value, String)> {
    let mut out = Vec::new();
    let usages = object.at("/spec/usages").and_then(Value::as_array);
    for (i, entry) in usages.into_iter().flatten().enumerate() {
        let rules = entry.get("usage").and_then(Value::as_object);
        for (resource, rule) in rules.into_iter().flatten() {
            let at = format!("spec.usages[{i}].usage[{resource}]");
            if let Some(source) = rule.get("expression").and_then(Value::as_str)
                && let Err(e) = Program::compile(source)
            {
                out.push((
                    format!("{at}.expression"),
                    json!(source),
                    format!(
                        "invalid CEL expression: {}",
                        super::first_line(&e.to_string())
                    ),
                ));
            }
            if let Some(Value::String(q)) = rule.get("value")
                && let Err(e) = quantity::parse(q)
            {
                out.push((format!("{at}.value"), json!(q), e));
            }
        }
    }
    out
}

type PodKey = (String, String);

#[derive(Default)]
struct Objects {
    pods: HashMap<PodKey, Arc<Value>>,
    by_node: HashMap<String, BTreeSet<PodKey>>,
    nodes: BTreeMap<String, Arc<Value>>,
}

/// The pods and nodes of the cluster, kept current by watches: pods by node for node sums.
#[derive(Default)]
pub struct PodIndex {
    objects: RwLock<Objects>,
}

fn key_of(obj: &Value) -> PodKey {
    let s = |p: &str| obj.at(p).and_then(Value::as_str).unwrap_or("").to_string();
    (s("/metadata/namespace"), s("/metadata/name"))
}

fn node_of(pod: &Value) -> &str {
    pod.at("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether a pod's containers run (and so use resources).
pub fn is_running(pod: &Value) -> bool {
    pod.at("/status/phase").and_then(Value::as_str) == Some("Running") && !node_of(pod).is_empty()
}

impl PodIndex {
    pub fn put_pod(&self, pod: Arc<Value>) {
        let key = key_of(&pod);
        let mut o = self.objects.write().unwrap();
        if let Some(old) = o.pods.get(&key).cloned() {
            let node = node_of(&old).to_string();
            if let Some(set) = o.by_node.get_mut(&node) {
                set.remove(&key);
            }
        }
        o.by_node
            .entry(node_of(&pod).to_string())
            .or_default()
            .insert(key.clone());
        o.pods.insert(key, pod);
    }

    pub fn remove_pod(&self, pod: &Value) {
        let key = key_of(pod);
        let mut o = self.objects.write().unwrap();
        if let Some(old) = o.pods.remove(&key) {
            let node = node_of(&old).to_string();
            if let Some(set) = o.by_node.get_mut(&node) {
                set.remove(&key);
            }
        }
    }

    pub fn put_node(&self, node: Arc<Value>) {
        let name = key_of(&node).1;
        self.objects.write().unwrap().nodes.insert(name, node);
    }

    pub fn remove_node(&self, node: &Value) {
        self.objects.write().unwrap().nodes.remove(&key_of(node).1);
    }

    pub fn pod(&self, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let key = (namespace.to_string(), name.to_string());
        self.objects.read().unwrap().pods.get(&key).cloned()
    }

    pub fn node(&self, name: &str) -> Option<Arc<Value>> {
        self.objects.read().unwrap().nodes.get(name).cloned()
    }

    /// The running pods of a node, in namespace and name order.
    pub fn pods_on(&self, node: &str) -> Vec<Arc<Value>> {
        let o = self.objects.read().unwrap();
        o.by_node
            .get(node)
            .into_iter()
            .flatten()
            .filter_map(|k| o.pods.get(k))
            .filter(|p| is_running(p))
            .cloned()
            .collect()
    }

    /// Every running pod, in namespace and name order.
    pub fn running_pods(&self) -> Vec<Arc<Value>> {
        let o = self.objects.read().unwrap();
        let mut pods: Vec<_> = o.pods.values().filter(|p| is_running(p)).cloned().collect();
        drop(o);
        pods.sort_by_cached_key(|p| key_of(p));
        pods
    }

    pub fn nodes(&self) -> Vec<Arc<Value>> {
        self.objects
            .read()
            .unwrap()
            .nodes
            .values()
            .cloned()
            .collect()
    }

    /// Follows the cluster's pods and nodes for as long as the process runs.
    pub fn follow(self: &Arc<Self>, cluster: Arc<dyn Cluster>) {
        for (r, is_pod) in [(Resource::pods(), true), (Resource::nodes(), false)] {
            let index = self.clone();
            let mut stream = client::watch_resuming(cluster.clone(), r, ListParams::default());
            tokio::spawn(async move {
                while let Some(event) = stream.next().await {
                    match (event, is_pod) {
                        (WatchEvent::Added(o) | WatchEvent::Modified(o), true) => index.put_pod(o),
                        (WatchEvent::Added(o) | WatchEvent::Modified(o), false) => {
                            index.put_node(o)
                        }
                        (WatchEvent::Deleted(o), true) => index.remove_pod(&o),
                        (WatchEvent::Deleted(o), false) => index.remove_node(&o),
                        _ => {}
                    }
                }
            });
        }
    }
}

/// One cumulative counter: what was used up to `at`, and the rate since.
struct Counter {
    total: f64,
    rate: f64,
    at: Instant,
}

/// The variables an expression may use, in the order of [`Compiled::uses`].
const VARIABLES: [&str; 3] = ["node", "pod", "container"];

/// A compiled expression, which variables it uses (only those are converted to CEL), and
/// whether its value depends on the pod and container alone.
pub struct Compiled {
    program: Program,
    uses: [bool; 3],
    pod_only: bool,
}

/// Container usage from the simulation objects, sums and cumulative counters.
pub struct UsageModel {
    pub simulations: Arc<Simulations>,
    pub index: Arc<PodIndex>,
    programs: Mutex<HashMap<String, Arc<Compiled>>>,
    counters: Mutex<HashMap<ContainerResource, Counter>>,
    /// Values of expressions that depend on the pod alone, by pod uid, container and
    /// resource, with the pod's resourceVersion they were computed at.
    settled: Mutex<HashMap<ContainerResource, (String, f64)>>,
}

/// Pod uid, container name and resource name.
type ContainerResource = (String, String, String);

/// Functions whose value changes with time or with other objects: an expression calling one
/// is evaluated every time.
const UNSETTLED_FUNCTIONS: &[&str] = &[
    "Now",
    "now",
    "Rand",
    "SinceSecond",
    "Usage",
    "CumulativeUsage",
    "StartedContainersTotal",
    "startedContainersTotal",
];

/// The containers of a pod spec, by name.
pub fn container_names(pod: &Value) -> Vec<String> {
    pod.at("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn container_spec<'p>(pod: &'p Value, name: &str) -> Option<&'p Value> {
    pod.at("/spec/containers")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

/// Seconds since the pod started (its `status.startTime`, else its creation).
fn seconds_since_start(pod: &Value) -> f64 {
    let started = pod
        .at("/status/startTime")
        .or_else(|| pod.at("/metadata/creationTimestamp"))
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    started.map_or(0.0, |t| {
        (jiff::Timestamp::now().as_millisecond() - t.as_millisecond()).max(0) as f64 / 1000.0
    })
}

impl UsageModel {
    pub fn new(simulations: Arc<Simulations>, index: Arc<PodIndex>) -> Arc<Self> {
        Arc::new(Self {
            simulations,
            index,
            programs: Mutex::default(),
            counters: Mutex::default(),
            settled: Mutex::default(),
        })
    }

    /// Compiles an expression, once per source text.
    pub fn program(&self, source: &str) -> Result<Arc<Compiled>, String> {
        if let Some(p) = self.programs.lock().unwrap().get(source) {
            return Ok(p.clone());
        }
        let program =
            Program::compile(source).map_err(|e| format!("invalid CEL {source:?}: {e}"))?;
        let references = program.references();
        let uses = VARIABLES.map(|name| references.has_variable(name));
        let pod_only = !uses[0]
            && !UNSETTLED_FUNCTIONS
                .iter()
                .any(|f| references.has_function(f));
        let compiled = Arc::new(Compiled {
            program,
            uses,
            pod_only,
        });
        self.programs
            .lock()
            .unwrap()
            .insert(source.to_string(), compiled.clone());
        Ok(compiled)
    }

    /// What one container of a pod uses of `resource` now (cores, bytes); 0 without a rule.
    pub fn container(self: &Arc<Self>, pod: &Value, container: &str, resource: &str) -> f64 {
        let (namespace, name) = key_of(pod);
        let Ok(entry) = self.simulations.usages.find(&namespace, &name, container) else {
            return 0.0;
        };
        let Some(rule) = entry.usage.get(resource) else {
            return 0.0;
        };
        if let Some(expression) = rule.expression.as_deref().filter(|e| !e.trim().is_empty()) {
            let pod_only = self.program(expression).is_ok_and(|p| p.pod_only);
            let version = pod
                .at("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let key = (
                pod.at("/metadata/uid")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                container.to_string(),
                resource.to_string(),
            );
            if pod_only
                && !version.is_empty()
                && let Some((at, value)) = self.settled.lock().unwrap().get(&key)
                && at == version
            {
                return *value;
            }
            let value = self.evaluate_usage(pod, container, resource, expression);
            if pod_only && !version.is_empty() {
                self.settled
                    .lock()
                    .unwrap()
                    .insert(key, (version.to_string(), value));
            }
            return value;
        }
        match &rule.value {
            Some(Value::String(s)) => quantity::parse(s).unwrap_or(0.0),
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0),
            _ => 0.0,
        }
    }

    /// Forgets the settled values and cumulative counters of pods other than `uids` (those
    /// deleted or stopped), which would otherwise stay for every pod that ever ran.
    pub fn retain_pods(&self, uids: &std::collections::HashSet<String>) {
        self.settled
            .lock()
            .unwrap()
            .retain(|(uid, _, _), _| uids.contains(uid));
        self.counters
            .lock()
            .unwrap()
            .retain(|(uid, _, _), _| uids.contains(uid));
    }

    fn evaluate_usage(
        self: &Arc<Self>,
        pod: &Value,
        container: &str,
        resource: &str,
        expression: &str,
    ) -> f64 {
        let node = self.index.node(node_of(pod));
        let spec = container_spec(pod, container).cloned();
        let vars = Vars {
            node: node.as_deref(),
            pod: Some(pod),
            container: spec.as_ref(),
        };
        self.number(expression, &vars).unwrap_or_else(|e| {
            let name = key_of(pod).1;
            tracing::debug!(
                pod = name,
                container,
                resource,
                "usage expression failed: {e}"
            );
            0.0
        })
    }

    /// A pod's usage: one container's, or the sum of all.
    pub fn pod(self: &Arc<Self>, pod: &Value, resource: &str, container: Option<&str>) -> f64 {
        match container {
            Some(c) => self.container(pod, c, resource),
            None => container_names(pod)
                .iter()
                .map(|c| self.container(pod, c, resource))
                .sum(),
        }
    }

    /// The sum over a node's running pods.
    pub fn node(self: &Arc<Self>, node: &str, resource: &str) -> f64 {
        self.index
            .pods_on(node)
            .iter()
            .map(|p| self.pod(p, resource, None))
            .sum()
    }

    /// What a container has used of `resource` since it started (CPU seconds for `cpu`): the
    /// integral of its usage, the usage taken as constant between two readings.
    pub fn container_cumulative(
        self: &Arc<Self>,
        pod: &Value,
        container: &str,
        resource: &str,
    ) -> f64 {
        let rate = self.container(pod, container, resource);
        let uid = pod
            .at("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let now = Instant::now();
        let mut counters = self.counters.lock().unwrap();
        let counter = counters
            .entry((uid, container.to_string(), resource.to_string()))
            .or_insert_with(|| Counter {
                total: rate * seconds_since_start(pod),
                rate,
                at: now,
            });
        counter.total += counter.rate * now.duration_since(counter.at).as_secs_f64();
        counter.rate = rate;
        counter.at = now;
        counter.total
    }

    pub fn pod_cumulative(
        self: &Arc<Self>,
        pod: &Value,
        resource: &str,
        container: Option<&str>,
    ) -> f64 {
        match container {
            Some(c) => self.container_cumulative(pod, c, resource),
            None => container_names(pod)
                .iter()
                .map(|c| self.container_cumulative(pod, c, resource))
                .sum(),
        }
    }

    pub fn node_cumulative(self: &Arc<Self>, node: &str, resource: &str) -> f64 {
        self.index
            .pods_on(node)
            .iter()
            .map(|p| self.pod_cumulative(p, resource, None))
            .sum()
    }

    /// Containers started on a node: those of its running pods.
    pub fn started_containers(&self, node: &str) -> usize {
        self.index
            .pods_on(node)
            .iter()
            .map(|p| container_names(p).len())
            .sum()
    }

    /// Evaluates an expression to a number: a CEL number, or a string read as a quantity.
    pub fn number(self: &Arc<Self>, source: &str, vars: &Vars<'_>) -> Result<f64, String> {
        match self.evaluate(source, vars)? {
            CelValue::Int(i) => Ok(i as f64),
            CelValue::UInt(u) => Ok(u as f64),
            CelValue::Float(f) => Ok(f),
            CelValue::String(s) => quantity::parse(&s),
            CelValue::Bool(b) => Ok(if b { 1.0 } else { 0.0 }),
            other => Err(format!("{source:?} is not a number: {other:?}")),
        }
    }

    /// Evaluates an expression with the variables given.
    pub fn evaluate(self: &Arc<Self>, source: &str, vars: &Vars<'_>) -> Result<CelValue, String> {
        let program = self.program(source)?;
        let _active = Active::enter(self.clone())?;
        BASE.with(|base| {
            let mut scope = base.new_inner_scope();
            let values = [vars.node, vars.pod, vars.container];
            for ((name, value), used) in VARIABLES.iter().zip(values).zip(program.uses) {
                if let Some(v) = value.filter(|_| used) {
                    scope.add_variable_from_value(*name, to_cel(v)?);
                }
            }
            program
                .program
                .execute(&scope)
                .map_err(|e| format!("{source:?}: {e}"))
        })
    }
}

thread_local! {
    /// Objects already converted to CEL within a [`conversion_scope`], by address, uid or
    /// name, and resourceVersion.
    static CONVERTED: RefCell<Option<HashMap<(usize, String), CelValue>>> = const { RefCell::new(None) };
}

/// Runs `f` with the CEL forms of objects kept for reuse: a render evaluates many expressions
/// over the same node and pods. The forms are dropped when `f` returns.
pub fn conversion_scope<R>(f: impl FnOnce() -> R) -> R {
    let outer = CONVERTED.with(|c| c.borrow().is_some());
    if !outer {
        CONVERTED.with(|c| *c.borrow_mut() = Some(HashMap::new()));
    }
    let result = f();
    if !outer {
        CONVERTED.with(|c| *c.borrow_mut() = None);
    }
    result
}

fn to_cel(v: &Value) -> Result<CelValue, String> {
    let identity = || {
        let meta = |p: &str| v.at(p).and_then(Value::as_str).unwrap_or("");
        let id = if meta("/metadata/uid").is_empty() {
            meta("/metadata/name")
        } else {
            meta("/metadata/uid")
        };
        format!("{id}/{}", meta("/metadata/resourceVersion"))
    };
    let key = (v as *const Value as usize, identity());
    if let Some(found) = CONVERTED.with(|c| c.borrow().as_ref().and_then(|m| m.get(&key).cloned()))
    {
        return Ok(found);
    }
    let converted = kube_cel::cel::to_value(v).map_err(|e| e.to_string())?;
    CONVERTED.with(|c| {
        if let Some(m) = c.borrow_mut().as_mut() {
            m.insert(key, converted.clone());
        }
    });
    Ok(converted)
}

/// The variables of an expression: which there are depends on the dimension.
#[derive(Default, Clone, Copy)]
pub struct Vars<'a> {
    pub node: Option<&'a Value>,
    pub pod: Option<&'a Value>,
    pub container: Option<&'a Value>,
}

/// How deep usage expressions may call `Usage` of themselves.
const MAX_DEPTH: usize = 4;

thread_local! {
    static BASE: Context<'static> = metrics_context();
    /// The models whose expressions are being evaluated on this thread, innermost last.
    static ACTIVE: RefCell<Vec<Arc<UsageModel>>> = const { RefCell::new(Vec::new()) };
}

struct Active;

impl Active {
    fn enter(model: Arc<UsageModel>) -> Result<Active, String> {
        ACTIVE.with(|a| {
            let mut a = a.borrow_mut();
            if a.len() >= MAX_DEPTH {
                return Err("usage expressions call each other too deeply".into());
            }
            a.push(model);
            Ok(Active)
        })
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.borrow_mut().pop());
    }
}

fn active() -> Result<Arc<UsageModel>, ExecutionError> {
    ACTIVE
        .with(|a| a.borrow().last().cloned())
        .ok_or_else(|| ExecutionError::function_error("Usage", "no usage model"))
}

/// The functions of the metrics environment, by name (old names kept as upstream keeps them).
/// A function of the metrics environment.
type CelFunction = fn(&FunctionContext) -> Result<CelValue, ExecutionError>;

const FUNCTIONS: &[(&str, CelFunction)] = &[
    ("Usage", usage_fn),
    ("CumulativeUsage", cumulative_usage_fn),
    ("Quantity", quantity_fn),
    ("StartedContainersTotal", started_containers_fn),
    ("startedContainersTotal", started_containers_fn),
];

fn metrics_context() -> Context<'static> {
    let mut ctx = crate::stage::cel::base_context();
    for (name, f) in FUNCTIONS {
        ctx.add_function(name, *f);
    }
    ctx
}

fn string_arg(args: &[CelValue], i: usize, name: &str) -> Result<Option<String>, ExecutionError> {
    match args.get(i) {
        None => Ok(None),
        Some(CelValue::String(s)) => Ok(Some(s.to_string())),
        Some(_) => Err(ExecutionError::function_error(
            name,
            "expects a string argument",
        )),
    }
}

fn metadata(v: &CelValue, field: &str) -> Option<String> {
    let CelValue::Map(m) = v else { return None };
    let CelValue::Map(meta) = m.map.get(&Key::from("metadata"))? else {
        return None;
    };
    match meta.map.get(&Key::from(field))? {
        CelValue::String(s) => Some(s.to_string()),
        _ => None,
    }
}

/// What a `Usage`-like call is about.
enum Subject {
    Pod(Arc<Value>),
    Node(String),
}

fn subject(model: &UsageModel, v: &CelValue, name: &str) -> Result<Subject, ExecutionError> {
    if let CelValue::String(node) = v {
        return Ok(Subject::Node(node.to_string()));
    }
    let object = metadata(v, "name")
        .ok_or_else(|| ExecutionError::function_error(name, "expects a pod or a node"))?;
    match metadata(v, "namespace").filter(|ns| !ns.is_empty()) {
        Some(ns) => model
            .index
            .pod(&ns, &object)
            .map(Subject::Pod)
            .ok_or_else(|| {
                ExecutionError::function_error(name, format!("pod {ns}/{object} not found"))
            }),
        None => Ok(Subject::Node(object)),
    }
}

fn usage_call(ftx: &FunctionContext, cumulative: bool) -> Result<CelValue, ExecutionError> {
    let name = if cumulative {
        "CumulativeUsage"
    } else {
        "Usage"
    };
    let args = crate::stage::cel::receiver_and_arguments(ftx)?;
    let model = active()?;
    let target = args
        .first()
        .ok_or_else(|| ExecutionError::function_error(name, "expects a pod or a node"))?;
    let resource = string_arg(&args, 1, name)?
        .ok_or_else(|| ExecutionError::function_error(name, "expects a resource name"))?;
    let container = string_arg(&args, 2, name)?;
    let value = match (subject(&model, target, name)?, cumulative) {
        (Subject::Pod(p), false) => model.pod(&p, &resource, container.as_deref()),
        (Subject::Pod(p), true) => model.pod_cumulative(&p, &resource, container.as_deref()),
        (Subject::Node(n), false) => model.node(&n, &resource),
        (Subject::Node(n), true) => model.node_cumulative(&n, &resource),
    };
    Ok(CelValue::Float(value))
}

fn usage_fn(ftx: &FunctionContext) -> Result<CelValue, ExecutionError> {
    usage_call(ftx, false)
}

fn cumulative_usage_fn(ftx: &FunctionContext) -> Result<CelValue, ExecutionError> {
    usage_call(ftx, true)
}

fn quantity_fn(ftx: &FunctionContext) -> Result<CelValue, ExecutionError> {
    let args = crate::stage::cel::receiver_and_arguments(ftx)?;
    let text = string_arg(&args, 0, "Quantity")?
        .ok_or_else(|| ExecutionError::function_error("Quantity", "expects a string"))?;
    quantity::parse(&text)
        .map(CelValue::Float)
        .map_err(|e| ExecutionError::function_error("Quantity", e))
}

fn started_containers_fn(ftx: &FunctionContext) -> Result<CelValue, ExecutionError> {
    let args = crate::stage::cel::receiver_and_arguments(ftx)?;
    let model = active()?;
    let node = match args.first() {
        Some(CelValue::String(s)) => s.to_string(),
        Some(v) => metadata(v, "name").unwrap_or_default(),
        None => String::new(),
    };
    Ok(CelValue::Int(model.started_containers(&node) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, cpu: Option<&str>) -> Value {
        let mut p = json!({"metadata": {"name": name, "namespace": "default", "uid": name},
            "spec": {"nodeName": node, "containers": [{"name": "a"}, {"name": "b"}]},
            "status": {"phase": "Running"}});
        if let Some(cpu) = cpu {
            p["metadata"]["annotations"] = json!({"kwok.x-k8s.io/usage-cpu": cpu});
        }
        p
    }

    fn model() -> Arc<UsageModel> {
        let sims = Arc::new(Simulations::default());
        sims.put(&default_usage()).unwrap();
        let index = Arc::new(PodIndex::default());
        index.put_node(Arc::new(json!({"metadata": {"name": "n1"}})));
        index.put_pod(Arc::new(pod("p1", "n1", Some("250m"))));
        index.put_pod(Arc::new(pod("p2", "n1", None)));
        UsageModel::new(sims, index)
    }

    #[test]
    fn counters_of_pods_gone_are_forgotten() {
        let m = model();
        let p1 = m.index.pod("default", "p1").unwrap();
        let p2 = m.index.pod("default", "p2").unwrap();
        m.container_cumulative(&p1, "a", "cpu");
        m.container_cumulative(&p2, "a", "cpu");
        assert_eq!(m.counters.lock().unwrap().len(), 2);
        m.retain_pods(&["p1".to_string()].into_iter().collect());
        let counters = m.counters.lock().unwrap();
        assert_eq!(
            counters.keys().map(|k| k.0.as_str()).collect::<Vec<_>>(),
            ["p1"]
        );
    }

    #[test]
    fn annotations_drive_the_default_usage() {
        let m = model();
        let p1 = m.index.pod("default", "p1").unwrap();
        assert_eq!(m.container(&p1, "a", "cpu"), 0.25);
        assert_eq!(m.pod(&p1, "cpu", None), 0.5);
        assert_eq!(m.pod(&p1, "memory", None), 2.0 * 1048576.0);
        assert!((m.node("n1", "cpu") - 0.502).abs() < 1e-9);
        assert_eq!(m.started_containers("n1"), 4);
    }

    #[test]
    fn functions_take_receivers_and_arguments() {
        let m = model();
        let p1 = m.index.pod("default", "p1").unwrap();
        let node = m.index.node("n1").unwrap();
        let vars = Vars {
            node: Some(&node),
            pod: Some(&p1),
            container: None,
        };
        assert_eq!(m.number("pod.Usage(\"cpu\", \"a\")", &vars).unwrap(), 0.25);
        assert_eq!(m.number("Usage(pod, \"cpu\")", &vars).unwrap(), 0.5);
        assert_eq!(
            m.number("StartedContainersTotal(node)", &vars).unwrap(),
            4.0
        );
        assert_eq!(m.number("Quantity(\"2Ki\")", &vars).unwrap(), 2048.0);
        assert!(m.number("CumulativeUsage(pod, \"cpu\")", &vars).unwrap() >= 0.0);
        assert!(m.number("nope(", &vars).is_err());
    }
}
