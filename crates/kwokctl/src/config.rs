//! Configuration: the multi-document `kwok.yaml` files, the `KwokctlConfiguration` kind, and the
//! precedence of sources (flags > `KWOK_*` env > `--config` files > `<workdir>/kwok.yaml` > defaults).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::paths::Env;

/// The API group and version of kwokctl's configuration kinds.
pub const API_VERSION: &str = "config.kwok.x-k8s.io/v1alpha1";
/// The kind that describes a cluster and kwokctl's options.
pub const KWOKCTL_CONFIGURATION: &str = "KwokctlConfiguration";
/// Where the API server keeps its objects in etcd, unless configured otherwise.
pub const DEFAULT_ETCD_PREFIX: &str = "/registry";

/// Kinds upstream accepts in configuration files; anything else is warned about.
const KNOWN_KINDS: &[&str] = &[
    "KwokConfiguration",
    "KwokctlConfiguration",
    "KwokctlResource",
    "Stage",
    "Attach",
    "ClusterAttach",
    "Exec",
    "ClusterExec",
    "Logs",
    "ClusterLogs",
    "PortForward",
    "ClusterPortForward",
    "ResourceUsage",
    "ClusterResourceUsage",
    "Metric",
];

/// A `KwokctlConfiguration`. Fields kwokctl does not use are kept verbatim in `extra`, so files
/// written by upstream KWOK round-trip.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KwokctlConfiguration {
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub options: Options,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `options` of a `KwokctlConfiguration` that kwokctl acts on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Options {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub runtime: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runtimes: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kube_apiserver_port: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kwok_controller_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etcd_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_apiserver_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_controller_manager_binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_scheduler_binary: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub etcd_port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub etcd_peer_port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kwok_controller_port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kube_controller_manager_port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub kube_scheduler_port: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub etcd_prefix: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub enable: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disable: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_kube_scheduler: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable_kube_controller_manager: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub enable_metrics_server: bool,
    /// RBAC on the API server; upstream defaults it to true (with a secure port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_authorization: Option<bool>,
    /// The options of [`crate::cluster_options`]; declared before `extra` so it takes its fields.
    #[serde(flatten)]
    pub cluster: crate::cluster_options::ClusterOptions,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Options {
    /// Whether `component` is switched off by `disable` or the older `disableKube*` options.
    pub fn is_disabled(&self, component: &str) -> bool {
        self.disable.iter().any(|d| d == component)
            || crate::cluster_options::left_out(self, component)
            || (component == "kube-scheduler" && self.disable_kube_scheduler)
            || (component == "kube-controller-manager" && self.disable_kube_controller_manager)
    }

    /// Whether an optional component is switched on by `enable` or the older
    /// `enableMetricsServer` option.
    pub fn is_enabled(&self, component: &str) -> bool {
        self.enable.iter().any(|e| e == component)
            || self.cluster.components.iter().any(|c| c == component)
            || (component == METRICS_SERVER && self.enable_metrics_server)
    }

    /// Refuses components the runtime cannot enable or disable, naming the ones it knows.
    pub fn check_components(&self, runtime: &str) -> Result<(), String> {
        for name in &self.disable {
            if let Some(message) = REQUIRED_COMPONENTS
                .iter()
                .find(|(c, _)| c == name)
                .map(|(_, m)| *m)
            {
                return Err(message.to_string());
            }
            if !DISABLEABLE_COMPONENTS.contains(&name.as_str()) {
                return Err(unknown_component("--disable", name, DISABLEABLE_COMPONENTS));
            }
        }
        crate::addons::check_enabled(self, runtime)
    }
}

/// The optional component that serves the resource metrics API.
pub const METRICS_SERVER: &str = "metrics-server";

/// Components `--disable` takes.
const DISABLEABLE_COMPONENTS: &[&str] = &[
    "kube-scheduler",
    "kube-controller-manager",
    "kwok-controller",
    METRICS_SERVER,
    crate::addons::PROMETHEUS,
    crate::addons::JAEGER,
];

/// Components every cluster needs, with upstream's refusal.
const REQUIRED_COMPONENTS: &[(&str, &str)] = &[
    ("etcd", "etcd must be enabled"),
    ("kube-apiserver", "kube-apiserver must be enabled"),
];

fn unknown_component(flag: &str, name: &str, known: &[&str]) -> String {
    format!(
        "unknown component {name:?} for {flag}: known components are {}",
        known.join(", ")
    )
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// One process or container of a cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub binary: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub work_dir: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A port of a component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub port: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_port: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub protocol: String,
}

impl KwokctlConfiguration {
    /// An empty configuration with kind and apiVersion set.
    pub fn new() -> Self {
        Self {
            kind: KWOKCTL_CONFIGURATION.to_string(),
            api_version: API_VERSION.to_string(),
            ..Default::default()
        }
    }

    /// Decodes one document.
    pub fn from_value(value: Value) -> anyhow::Result<Self> {
        serde_json::from_value(value).context("decode KwokctlConfiguration")
    }

    /// Encodes as one document.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("configuration is always representable as JSON")
    }

    /// The component named `name`.
    pub fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// True when `doc` is a document of `kind` in kwokctl's config group.
pub fn is_kind(doc: &Value, kind: &str) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some(kind)
}

/// The file fields of simulation documents: `(kinds, list in spec, fields of each entry)`.
const FILE_FIELDS: &[(&[&str], &str, &[&str])] = &[
    (
        &["Logs", "ClusterLogs"],
        "logs",
        &["logsFile", "previousLogsFile"],
    ),
    (&["Attach", "ClusterAttach"], "attaches", &["logsFile"]),
];

/// Makes the log files of a simulation document absolute (against the working directory) and
/// expands `~`, as upstream does when it reads a config, so the cluster finds them wherever it
/// runs.
fn expand_log_files(doc: &mut Value, env: &Env) {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some((_, list, fields)) = FILE_FIELDS
        .iter()
        .find(|(kinds, _, _)| kinds.contains(&kind.as_str()))
    else {
        return;
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let Some(entries) = doc
        .pointer_mut(&format!("/spec/{list}"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for entry in entries {
        for field in *fields {
            if let Some(Value::String(path)) = entry.get_mut(*field)
                && !path.is_empty()
            {
                *path = cwd.join(env.expand(path)).display().to_string();
            }
        }
    }
}

/// Parses a multi-document YAML stream of any length into JSON values, skipping empty
/// documents. The parser's limits apply to each document, not to the stream.
pub fn parse_documents(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut reader = text.as_bytes();
    let mut docs = Vec::new();
    for doc in serde_saphyr::read::<_, Value>(&mut reader) {
        let doc = doc.map_err(|e| anyhow::anyhow!("{e}"))?;
        if !doc.is_null() {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Renders documents as one YAML stream separated by `---`.
pub fn render_documents(docs: &[Value]) -> anyhow::Result<String> {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let text = serde_saphyr::to_string(doc).map_err(|e| anyhow::anyhow!("{e}"))?;
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

/// Reads and parses a configuration file.
pub fn read_documents(path: &Path) -> anyhow::Result<Vec<Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    parse_documents(&text).with_context(|| format!("parse {}", path.display()))
}

/// Merges `patch` into `base`: objects merge key by key, lists of objects that all carry a
/// `name` merge by name (as strategic merge does for `components`), anything else is replaced.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(base), Value::Object(patch)) => {
            for (key, value) in patch {
                match base.get_mut(key) {
                    Some(existing) if !value.is_null() => merge(existing, value),
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(patch))
            if is_named_list(base) && is_named_list(patch) =>
        {
            for item in patch {
                let name = item.get("name");
                match base.iter_mut().find(|b| b.get("name") == name) {
                    Some(existing) => merge(existing, item),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, patch) => *base = patch.clone(),
    }
}

/// Keeps the last of documents with the same kind and `metadata.name` (a later config file
/// replaces what an earlier one gave), in the place of the first; `KwokConfiguration`
/// documents are merged into one in load order, as upstream merges them; other unnamed
/// documents all stay.
pub fn dedupe_documents(docs: Vec<Value>) -> Vec<Value> {
    let mut merged: Option<usize> = None;
    let mut out: Vec<Value> = Vec::with_capacity(docs.len());
    for doc in dedupe_named(docs) {
        if !is_kind(&doc, "KwokConfiguration") {
            out.push(doc);
            continue;
        }
        match merged {
            Some(i) => merge(&mut out[i], &doc),
            None => {
                merged = Some(out.len());
                out.push(doc);
            }
        }
    }
    out
}

fn dedupe_named(docs: Vec<Value>) -> Vec<Value> {
    let key = |doc: &Value| -> Option<(String, String)> {
        let kind = doc.get("kind")?.as_str()?.to_string();
        let name = doc.pointer("/metadata/name")?.as_str()?.to_string();
        Some((kind, name))
    };
    let mut out: Vec<Value> = Vec::with_capacity(docs.len());
    for doc in docs {
        match key(&doc).and_then(|k| out.iter().position(|d| key(d).as_ref() == Some(&k))) {
            Some(i) => out[i] = doc,
            None => out.push(doc),
        }
    }
    out
}

fn is_named_list(items: &[Value]) -> bool {
    !items.is_empty()
        && items
            .iter()
            .all(|i| i.get("name").and_then(Value::as_str).is_some())
}

/// Every configuration document in effect: `<workdir>/kwok.yaml` first (when it exists), then the
/// `--config` files in order.
#[derive(Debug, Clone, Default)]
pub struct ConfigContext {
    pub documents: Vec<Value>,
}

impl ConfigContext {
    /// Loads the default file and the given `--config` paths (`-` reads stdin). The default file
    /// named explicitly but missing is dropped silently, as upstream does; any other missing file
    /// is an error.
    pub fn load(env: &Env, default_file: &Path, paths: &[String]) -> anyhow::Result<Self> {
        let mut documents = Vec::new();
        let mut loaded: Vec<PathBuf> = Vec::new();
        if default_file.is_file() {
            documents.extend(read_documents(default_file)?);
            loaded.push(default_file.to_path_buf());
        }
        for raw in paths.iter().filter(|p| !p.is_empty()) {
            if raw == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("read config from stdin")?;
                documents.extend(parse_documents(&text).context("parse config from stdin")?);
                continue;
            }
            let path = env.expand(raw);
            if loaded.contains(&path) {
                continue;
            }
            if path == default_file {
                continue;
            }
            if path.is_dir() {
                bail!(
                    "config {}: directories (kustomize) are not supported, pass files",
                    path.display()
                );
            }
            if !path.exists() {
                bail!("config file {} does not exist", path.display());
            }
            let mut docs = read_documents(&path)?;
            for doc in &mut docs {
                expand_log_files(doc, env);
            }
            documents.extend(docs);
            loaded.push(path);
        }
        for doc in &documents {
            let kind = doc.get("kind").and_then(Value::as_str).unwrap_or("");
            if !KNOWN_KINDS.contains(&kind) {
                tracing::warn!(kind, "Unsupported type");
            }
        }
        Ok(Self { documents })
    }

    /// All `KwokctlConfiguration` documents merged in load order.
    pub fn kwokctl_configuration(&self) -> anyhow::Result<KwokctlConfiguration> {
        let mut merged = KwokctlConfiguration::new().to_value();
        for doc in self
            .documents
            .iter()
            .filter(|d| is_kind(d, KWOKCTL_CONFIGURATION))
        {
            merge(&mut merged, doc);
        }
        KwokctlConfiguration::from_value(merged)
    }

    /// The documents of other kinds, which a new cluster's `kwok.yaml` carries along.
    pub fn other_documents(&self) -> Vec<Value> {
        self.documents
            .iter()
            .filter(|d| !is_kind(d, KWOKCTL_CONFIGURATION))
            .cloned()
            .collect()
    }

    /// The documents as `config tidy` writes them: one merged `KwokctlConfiguration` (when any)
    /// followed by the others.
    pub fn tidy_documents(&self) -> anyhow::Result<Vec<Value>> {
        let mut docs = Vec::new();
        if self
            .documents
            .iter()
            .any(|d| is_kind(d, KWOKCTL_CONFIGURATION))
        {
            docs.push(self.kwokctl_configuration()?.to_value());
        }
        docs.extend(self.other_documents());
        Ok(docs)
    }
}

/// Flags of `create cluster` that override configuration; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct OptionFlags {
    pub runtime: Option<String>,
    pub kube_apiserver_port: Option<u32>,
    pub kwok_controller_binary: Option<String>,
    pub etcd_binary: Option<String>,
    pub kube_apiserver_binary: Option<String>,
    pub kube_controller_manager_binary: Option<String>,
    pub kube_scheduler_binary: Option<String>,
    pub etcd_port: Option<u32>,
    pub controller_port: Option<u32>,
    pub etcd_prefix: Option<String>,
    pub enable: Vec<String>,
    pub disable: Vec<String>,
    pub disable_kube_scheduler: bool,
    pub disable_kube_controller_manager: bool,
    pub enable_metrics_server: bool,
    pub kube_authorization: Option<bool>,
    pub cluster: crate::cluster_options::ClusterFlags,
}

/// Applies the precedence flags > `KWOK_*` env > configuration (already merged from files) >
/// defaults to the options of a new cluster. Unparsable env values are ignored, as upstream does.
pub fn resolve_options(from_files: &Options, env: &Env, flags: &OptionFlags) -> Options {
    let mut options = from_files.clone();
    let text = |option: &mut String, var: &str, flag: &Option<String>| {
        if let Some(value) = env.kwok(var) {
            *option = value.to_string();
        }
        if let Some(value) = flag.as_deref().filter(|v| !v.is_empty()) {
            *option = value.to_string();
        }
    };
    text(&mut options.runtime, "RUNTIME", &flags.runtime);
    text(
        &mut options.kwok_controller_binary,
        "CONTROLLER_BINARY",
        &flags.kwok_controller_binary,
    );
    text(&mut options.etcd_binary, "ETCD_BINARY", &flags.etcd_binary);
    text(
        &mut options.kube_apiserver_binary,
        "KUBE_APISERVER_BINARY",
        &flags.kube_apiserver_binary,
    );
    text(
        &mut options.kube_controller_manager_binary,
        "KUBE_CONTROLLER_MANAGER_BINARY",
        &flags.kube_controller_manager_binary,
    );
    text(
        &mut options.kube_scheduler_binary,
        "KUBE_SCHEDULER_BINARY",
        &flags.kube_scheduler_binary,
    );
    text(&mut options.etcd_prefix, "ETCD_PREFIX", &flags.etcd_prefix);
    let port = |option: &mut u32, var: &str, flag: Option<u32>| {
        if let Some(value) = env.kwok(var).and_then(|p| p.parse::<u32>().ok()) {
            *option = value;
        }
        if let Some(value) = flag {
            *option = value;
        }
    };
    port(
        &mut options.kube_apiserver_port,
        "KUBE_APISERVER_PORT",
        flags.kube_apiserver_port,
    );
    port(&mut options.etcd_port, "ETCD_PORT", flags.etcd_port);
    port(
        &mut options.kwok_controller_port,
        "CONTROLLER_PORT",
        flags.controller_port,
    );
    let switch = |option: &mut bool, var: &str, flag: bool| {
        if let Some(value) = env.kwok(var).and_then(|v| v.parse::<bool>().ok()) {
            *option = value;
        }
        if flag {
            *option = true;
        }
    };
    switch(
        &mut options.disable_kube_scheduler,
        "DISABLE_KUBE_SCHEDULER",
        flags.disable_kube_scheduler,
    );
    switch(
        &mut options.disable_kube_controller_manager,
        "DISABLE_KUBE_CONTROLLER_MANAGER",
        flags.disable_kube_controller_manager,
    );
    switch(
        &mut options.enable_metrics_server,
        "ENABLE_METRICS_SERVER",
        flags.enable_metrics_server,
    );
    if let Some(value) = env
        .kwok("KUBE_AUTHORIZATION")
        .and_then(|v| v.parse::<bool>().ok())
    {
        options.kube_authorization = Some(value);
    }
    if flags.kube_authorization.is_some() {
        options.kube_authorization = flags.kube_authorization;
    }
    options.kube_authorization.get_or_insert(true);
    for component in &flags.enable {
        if !options.enable.contains(component) {
            options.enable.push(component.clone());
        }
    }
    for component in &flags.disable {
        if !options.disable.contains(component) {
            options.disable.push(component.clone());
        }
    }
    if options.etcd_prefix.is_empty() {
        options.etcd_prefix = DEFAULT_ETCD_PREFIX.to_string();
    }
    if options.runtime.is_empty() && options.runtimes.len() == 1 {
        options.runtime = options.runtimes[0].clone();
    }
    if options.runtime.is_empty() && options.runtimes.is_empty() {
        options.runtime = crate::runtime::DEFAULT_RUNTIME.to_string();
    }
    crate::cluster_options::resolve(&mut options, env, &flags.cluster);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_docker_config_round_trips() {
        let text = "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  runtime: docker\n  kubeApiserverPort: 32766\n  etcdPrefix: /registry\ncomponents:\n- name: etcd\n  image: registry.k8s.io/etcd:3.6.10-0\n  links: []\n- name: kube-apiserver\n  links: [etcd]\n  ports:\n  - name: https\n    port: 6443\n    hostPort: 32766\n    protocol: TCP\nstatus:\n  version: 0.9.0\n---\nkind: Stage\napiVersion: kwok.x-k8s.io/v1alpha1\nmetadata:\n  name: node-initialize\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        let conf = KwokctlConfiguration::from_value(docs[0].clone()).unwrap();
        assert_eq!(conf.options.runtime, "docker");
        assert_eq!(conf.options.kube_apiserver_port, 32766);
        assert_eq!(conf.components.len(), 2);
        assert_eq!(conf.options.etcd_prefix, "/registry");
        assert_eq!(conf.extra["status"]["version"], "0.9.0");
        let again = KwokctlConfiguration::from_value(
            parse_documents(&render_documents(&[conf.to_value()]).unwrap()).unwrap()[0].clone(),
        )
        .unwrap();
        assert_eq!(again, conf);
    }

    #[test]
    fn later_documents_replace_earlier_ones_of_the_same_name() {
        let docs = vec![
            serde_json::json!({"kind": "Stage", "metadata": {"name": "a"}, "spec": 1}),
            serde_json::json!({"kind": "KwokConfiguration", "options": {"cidr": "10.1.0.0/16", "nodeIP": "1.1.1.1"}}),
            serde_json::json!({"kind": "Stage", "metadata": {"name": "b"}}),
            serde_json::json!({"kind": "Logs", "metadata": {"name": "a"}}),
            serde_json::json!({"kind": "Stage", "metadata": {"name": "a"}, "spec": 2}),
            serde_json::json!({"kind": "KwokConfiguration", "options": {"cidr": "10.2.0.0/16"}}),
        ];
        let out = dedupe_documents(docs);
        assert_eq!(out.len(), 4, "{out:#?}");
        assert_eq!(out[0]["spec"], 2);
        assert_eq!(out[1]["options"]["cidr"], "10.2.0.0/16");
        assert_eq!(out[1]["options"]["nodeIP"], "1.1.1.1");
        assert_eq!(out[3]["kind"], "Logs");
    }

    #[test]
    fn streams_of_any_length_parse() {
        let text = "kind: Stage\n---\n".repeat(3000);
        assert_eq!(parse_documents(&text).unwrap().len(), 3000);
        assert!(parse_documents("a: [\n").is_err());
        assert!(parse_documents("---\n---\n").unwrap().is_empty());
    }

    #[test]
    fn merge_by_name_and_replace() {
        let mut base: Value = serde_json::json!({
            "options": {"runtime": "docker", "kubeApiserverPort": 1},
            "components": [{"name": "a", "args": ["x"]}, {"name": "b"}]
        });
        merge(
            &mut base,
            &serde_json::json!({
                "options": {"runtime": "embedded"},
                "components": [{"name": "a", "args": ["y"]}, {"name": "c"}]
            }),
        );
        assert_eq!(base["options"]["runtime"], "embedded");
        assert_eq!(base["options"]["kubeApiserverPort"], 1);
        assert_eq!(base["components"][0]["args"], serde_json::json!(["y"]));
        assert_eq!(base["components"].as_array().unwrap().len(), 3);
    }

    fn file_options(runtime: &str, port: u32) -> Options {
        Options {
            runtime: runtime.to_string(),
            kube_apiserver_port: port,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let options = resolve_options(
            &Options::default(),
            &Env::default(),
            &OptionFlags::default(),
        );
        assert_eq!(options.runtime, "embedded");
        assert_eq!(options.kube_apiserver_port, 0);
    }

    #[test]
    fn env_overrides_files() {
        let env = Env::from_pairs([
            ("KWOK_RUNTIME", "binary"),
            ("KWOK_KUBE_APISERVER_PORT", "7000"),
        ]);
        let options = resolve_options(&file_options("docker", 6000), &env, &OptionFlags::default());
        assert_eq!(options.runtime, "binary");
        assert_eq!(options.kube_apiserver_port, 7000);
    }

    #[test]
    fn flags_override_env() {
        let env = Env::from_pairs([
            ("KWOK_RUNTIME", "binary"),
            ("KWOK_KUBE_APISERVER_PORT", "7000"),
        ]);
        let flags = OptionFlags {
            runtime: Some("embedded".into()),
            kube_apiserver_port: Some(8000),
            ..Default::default()
        };
        let options = resolve_options(&file_options("docker", 6000), &env, &flags);
        assert_eq!(options.runtime, "embedded");
        assert_eq!(options.kube_apiserver_port, 8000);
    }

    #[test]
    fn empty_or_unparsable_env_is_ignored() {
        let env = Env::from_pairs([("KWOK_RUNTIME", ""), ("KWOK_KUBE_APISERVER_PORT", "nope")]);
        let options = resolve_options(&file_options("docker", 6000), &env, &OptionFlags::default());
        assert_eq!(options.runtime, "docker");
        assert_eq!(options.kube_apiserver_port, 6000);
    }

    #[test]
    fn config_files_merge_in_order_over_the_default_file() {
        let dir = tempfile::tempdir().unwrap();
        let default_file = dir.path().join("kwok.yaml");
        std::fs::write(
            &default_file,
            "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  runtime: docker\n  kubeApiserverPort: 6000\n",
        )
        .unwrap();
        let extra = dir.path().join("extra.yaml");
        std::fs::write(
            &extra,
            "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  runtime: embedded\n",
        )
        .unwrap();
        let env = Env::default();
        let ctx = ConfigContext::load(&env, &default_file, &[extra.display().to_string()]).unwrap();
        let conf = ctx.kwokctl_configuration().unwrap();
        assert_eq!(conf.options.runtime, "embedded");
        assert_eq!(conf.options.kube_apiserver_port, 6000);
        assert!(ConfigContext::load(&env, &default_file, &["/nonexistent.yaml".into()]).is_err());
    }
}
