//! The simulation kinds of `kwok.x-k8s.io/v1alpha1` besides Stage: what a simulated pod
//! answers to `logs`, `attach`, `exec` and `port-forward`, and its resource usage.
//!
//! A namespaced object (`Logs`, `Exec`, ...) configures the pod of the same namespace and name;
//! a cluster object (`ClusterLogs`, ...) configures the pods its selector matches (empty lists
//! match everything). Within an object, an entry naming the container wins over an entry that
//! names none. Objects come from config documents (`--config`, `kwokctl create cluster -c`) and
//! from the API, where every cluster serves these kinds.

pub mod crds;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use client::{Cluster, JsonAt, ListParams, WatchEvent};
use futures::StreamExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Which pods a cluster-scoped object applies to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectSelector {
    #[serde(default)]
    pub match_namespaces: Vec<String>,
    #[serde(default)]
    pub match_names: Vec<String>,
}

impl ObjectSelector {
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        let any_or = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        any_or(&self.match_namespaces, namespace) && any_or(&self.match_names, name)
    }
}

/// `Logs` and `ClusterLogs` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Log {
    #[serde(default)]
    pub containers: Vec<String>,
    pub logs_file: Option<String>,
    pub previous_logs_file: Option<String>,
    pub follow: Option<bool>,
}

/// `Attach` and `ClusterAttach` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachTarget {
    #[serde(default)]
    pub containers: Vec<String>,
    pub logs_file: Option<String>,
}

/// `Exec` and `ClusterExec` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecTarget {
    #[serde(default)]
    pub containers: Vec<String>,
    pub local: Option<ExecLocal>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecLocal {
    #[serde(default)]
    pub work_dir: String,
    #[serde(default)]
    pub envs: Vec<EnvVar>,
    pub security_context: Option<SecurityContext>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnvVar {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext {
    pub run_as_user: Option<i64>,
    pub run_as_group: Option<i64>,
}

/// `PortForward` and `ClusterPortForward` entries: ports (none = all) and where they lead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Forward {
    #[serde(default)]
    pub ports: Vec<i32>,
    pub target: Option<ForwardTarget>,
    #[serde(default)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ForwardTarget {
    pub port: i32,
    pub address: String,
}

/// `ResourceUsage` and `ClusterResourceUsage` entries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageEntry {
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub usage: BTreeMap<String, UsageValue>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct UsageValue {
    /// A quantity (string or number).
    pub value: Option<Value>,
    /// CEL, evaluated with `node`, `pod` and `container`.
    pub expression: Option<String>,
}

/// An entry of one of the kinds, with the containers it is for.
pub trait Entry: DeserializeOwned + Clone + Send + Sync + 'static {
    /// The spec field holding the entries.
    const FIELD: &'static str;
    fn containers(&self) -> &[String];
}

macro_rules! entry {
    ($t:ty, $field:literal) => {
        impl Entry for $t {
            const FIELD: &'static str = $field;
            fn containers(&self) -> &[String] {
                &self.containers
            }
        }
    };
}

entry!(Log, "logs");
entry!(AttachTarget, "attaches");
entry!(ExecTarget, "execs");
entry!(UsageEntry, "usages");

impl Entry for Forward {
    const FIELD: &'static str = "forwards";
    fn containers(&self) -> &[String] {
        &[]
    }
}

/// Why no entry applies to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The pod's own object has no entry for the container.
    Container,
    /// No object applies to the pod.
    Pod,
}

/// The objects of one namespaced kind and its cluster kind.
struct Objects<T> {
    /// `(namespace, name)` of the pod → entries.
    per_pod: BTreeMap<(String, String), Vec<T>>,
    /// Object name → selector and entries, in name order.
    cluster: BTreeMap<String, (ObjectSelector, Vec<T>)>,
}

impl<T> Default for Objects<T> {
    fn default() -> Self {
        Self {
            per_pod: BTreeMap::new(),
            cluster: BTreeMap::new(),
        }
    }
}

/// The entry of `entries` for `container`: the one naming it, else the first naming none.
fn entry_for<'e, T: Entry>(entries: &'e [T], container: &str) -> Option<&'e T> {
    entries
        .iter()
        .find(|e| e.containers().iter().any(|c| c == container))
        .or_else(|| entries.iter().find(|e| e.containers().is_empty()))
}

/// The objects of one kind pair, kept current.
pub struct Rules<T> {
    objects: RwLock<Objects<T>>,
}

impl<T: Entry> Default for Rules<T> {
    fn default() -> Self {
        Self {
            objects: RwLock::new(Objects::default()),
        }
    }
}

impl<T: Entry> Rules<T> {
    /// The entry for a container of a pod.
    pub fn find(&self, namespace: &str, pod: &str, container: &str) -> Result<T, Missing> {
        let objects = self.objects.read().unwrap();
        if let Some(entries) = objects
            .per_pod
            .get(&(namespace.to_string(), pod.to_string()))
        {
            return entry_for(entries, container)
                .cloned()
                .ok_or(Missing::Container);
        }
        objects
            .cluster
            .values()
            .filter(|(selector, _)| selector.matches(namespace, pod))
            .find_map(|(_, entries)| entry_for(entries, container))
            .cloned()
            .ok_or(Missing::Pod)
    }

    /// Every entry that applies to a pod: its own object's, else the matching cluster ones'.
    pub fn all_for_pod(&self, namespace: &str, pod: &str) -> Vec<T> {
        let objects = self.objects.read().unwrap();
        if let Some(entries) = objects
            .per_pod
            .get(&(namespace.to_string(), pod.to_string()))
        {
            return entries.clone();
        }
        objects
            .cluster
            .values()
            .filter(|(selector, _)| selector.matches(namespace, pod))
            .flat_map(|(_, entries)| entries.iter().cloned())
            .collect()
    }

    /// Adds or replaces an object (`kind` namespaced or cluster-scoped), from its JSON.
    pub fn put(&self, object: &Value) -> Result<(), String> {
        let name = object
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let entries: Vec<T> = match object.at(&format!("/spec/{}", T::FIELD)) {
            None | Some(Value::Null) => Vec::new(),
            Some(list) => {
                serde_json::from_value(list.clone()).map_err(|e| format!("{name}: {e}"))?
            }
        };
        let mut objects = self.objects.write().unwrap();
        match object.at("/metadata/namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() => {
                objects
                    .per_pod
                    .insert((ns.to_string(), name.to_string()), entries);
            }
            _ => {
                let selector = match object.at("/spec/selector") {
                    None | Some(Value::Null) => ObjectSelector::default(),
                    Some(s) => serde_json::from_value(s.clone())
                        .map_err(|e| format!("{name}: selector: {e}"))?,
                };
                objects
                    .cluster
                    .insert(name.to_string(), (selector, entries));
            }
        }
        Ok(())
    }

    pub fn remove(&self, object: &Value) {
        let name = object
            .at("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut objects = self.objects.write().unwrap();
        match object.at("/metadata/namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() => {
                objects.per_pod.remove(&(ns.to_string(), name.to_string()));
            }
            _ => {
                objects.cluster.remove(name);
            }
        }
    }
}

/// Every simulation object the kubelet-like server consults.
#[derive(Default)]
pub struct Simulations {
    pub logs: Rules<Log>,
    pub attaches: Rules<AttachTarget>,
    pub execs: Rules<ExecTarget>,
    pub forwards: Rules<Forward>,
    pub usages: Rules<UsageEntry>,
}

impl Simulations {
    /// Takes an object of any of the kinds; other documents are ignored. Relative file paths
    /// are made absolute against `base` (where the config file was read, as upstream expands
    /// them).
    pub fn put(&self, object: &Value) -> Result<(), String> {
        match self.kind_of(object) {
            Some(Kind::Logs) => self.logs.put(object),
            Some(Kind::Attach) => self.attaches.put(object),
            Some(Kind::Exec) => self.execs.put(object),
            Some(Kind::Forward) => self.forwards.put(object),
            Some(Kind::Usage) => self.usages.put(object),
            None => Ok(()),
        }
    }

    pub fn remove(&self, object: &Value) {
        match self.kind_of(object) {
            Some(Kind::Logs) => self.logs.remove(object),
            Some(Kind::Attach) => self.attaches.remove(object),
            Some(Kind::Exec) => self.execs.remove(object),
            Some(Kind::Forward) => self.forwards.remove(object),
            Some(Kind::Usage) => self.usages.remove(object),
            None => {}
        }
    }

    fn kind_of(&self, object: &Value) -> Option<Kind> {
        let kind = object.get("kind").and_then(Value::as_str)?;
        KIND_TABLE
            .iter()
            .find(|(names, _)| names.contains(&kind))
            .map(|(_, k)| *k)
    }

    /// Follows the objects of every simulation kind in the cluster, for as long as the process
    /// runs.
    pub fn follow(self: &Arc<Self>, cluster: Arc<dyn Cluster>) {
        for kind in crds::simulation_kinds().filter(|k| k.kind != "Metric") {
            let sims = self.clone();
            let stream =
                client::watch_resuming(cluster.clone(), kind.resource(), ListParams::default());
            tokio::spawn(async move {
                let mut stream = stream;
                while let Some(event) = stream.next().await {
                    match event {
                        WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                            if let Err(e) = sims.put(&o) {
                                tracing::warn!(kind = kind.kind, error = %e, "invalid simulation object, ignored");
                            }
                        }
                        WatchEvent::Deleted(o) => sims.remove(&o),
                        _ => {}
                    }
                }
            });
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Logs,
    Attach,
    Exec,
    Forward,
    Usage,
}

const KIND_TABLE: &[(&[&str], Kind)] = &[
    (&["Logs", "ClusterLogs"], Kind::Logs),
    (&["Attach", "ClusterAttach"], Kind::Attach),
    (&["Exec", "ClusterExec"], Kind::Exec),
    (&["PortForward", "ClusterPortForward"], Kind::Forward),
    (&["ResourceUsage", "ClusterResourceUsage"], Kind::Usage),
];

/// Makes a relative path absolute against `base`, and expands a leading `~`.
pub fn expand_path(path: &str, base: &std::path::Path) -> String {
    if let Some(rest) = path.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return std::path::Path::new(&home).join(rest).display().to_string();
    }
    let p = std::path::Path::new(path);
    if p.is_absolute() || path.is_empty() {
        path.to_string()
    } else {
        base.join(p).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_pods_own_object_wins_and_a_named_container_beats_the_default() {
        let sims = Simulations::default();
        sims.put(&json!({"kind": "ClusterLogs", "metadata": {"name": "all"},
            "spec": {"logs": [{"logsFile": "/all.log"}]}}))
            .unwrap();
        sims.put(&json!({"kind": "ClusterLogs", "metadata": {"name": "ns-a"},
            "spec": {"selector": {"matchNamespaces": ["a"]}, "logs": [{"containers": ["x"], "logsFile": "/a-x.log"}]}}))
            .unwrap();
        sims.put(&json!({"kind": "Logs", "metadata": {"name": "p", "namespace": "b"},
            "spec": {"logs": [{"containers": ["c"], "logsFile": "/p-c.log"}, {"logsFile": "/p.log"}]}}))
            .unwrap();
        let file =
            |ns: &str, pod: &str, c: &str| sims.logs.find(ns, pod, c).map(|l| l.logs_file.unwrap());
        assert_eq!(file("b", "p", "c").unwrap(), "/p-c.log");
        assert_eq!(file("b", "p", "other").unwrap(), "/p.log");
        assert_eq!(file("b", "q", "c").unwrap(), "/all.log");
        // Cluster objects apply in name order: "all" before "ns-a".
        assert_eq!(file("a", "q", "x").unwrap(), "/all.log");
        sims.remove(&json!({"kind": "ClusterLogs", "metadata": {"name": "all"}}));
        assert_eq!(file("a", "q", "x").unwrap(), "/a-x.log");
        assert_eq!(file("a", "q", "y"), Err(Missing::Pod));
        sims.put(
            &json!({"kind": "Logs", "metadata": {"name": "r", "namespace": "a"},
            "spec": {"logs": [{"containers": ["only"], "logsFile": "/r.log"}]}}),
        )
        .unwrap();
        assert_eq!(file("a", "r", "x"), Err(Missing::Container));
    }

    #[test]
    fn bad_objects_are_refused_with_their_name() {
        let sims = Simulations::default();
        let err = sims
            .put(
                &json!({"kind": "Exec", "metadata": {"name": "e", "namespace": "d"},
                "spec": {"execs": [{"local": {"envs": [{"value": "no name"}]}}]}}),
            )
            .unwrap_err();
        assert!(err.starts_with("e: "), "{err}");
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        let base = std::path::Path::new("/work/dir");
        assert_eq!(expand_path("./logs.log", base), "/work/dir/./logs.log");
        assert_eq!(expand_path("/abs.log", base), "/abs.log");
    }
}
