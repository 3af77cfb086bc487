//! What `kwokctl scale` builds: `--param` assignments, serial names, the built-in `node` and
//! `pod` resources, and `KwokctlResource` templates from the configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::template::Template;

/// The label every scaled object carries; its value is the scale name.
pub const SCALE_LABEL: &str = "kwok.x-k8s.io/kwokctl-scale";

/// The kind of the configuration documents describing scalable resources.
pub const KWOKCTL_RESOURCE: &str = "KwokctlResource";

/// `<name>-<index>` with the index zero-padded to `serial_length` digits.
pub fn serial_name(name: &str, index: usize, serial_length: usize) -> String {
    format!("{name}-{index:0serial_length$}")
}

/// The index of an object named `<name>-<digits>`, if it is one.
pub fn parse_serial(name: &str, object_name: &str) -> Option<usize> {
    let digits = object_name.strip_prefix(name)?.strip_prefix('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The objects to delete so that `keep` remain, given `(serial, creationTimestamp, name)` of each
/// existing one. The newest go first: the highest serial numbers (kwokctl hands them out in
/// order; creation times have one-second resolution and parallel creates interleave), then the
/// latest creation time. Labelled objects not named `<name>-<serial>` (serial `usize::MAX`) go
/// before all others.
pub fn surplus(mut existing: Vec<(usize, String, String)>, keep: usize) -> Vec<String> {
    existing.sort();
    if existing.len() <= keep {
        return Vec::new();
    }
    existing
        .split_off(keep)
        .into_iter()
        .map(|(_, _, name)| name)
        .collect()
}

/// A `--param` assignment: a jq expression applied to the parameters (or to each object), such
/// as `.nodeName="node-000000"`, `.containers[0].image="nginx"` or `.replicas |= . + 1`.
#[derive(Debug, Clone)]
pub struct Param {
    query: jq::Query,
    head: Option<String>,
}

impl PartialEq for Param {
    fn eq(&self, other: &Self) -> bool {
        self.query == other.query
    }
}

impl Param {
    /// Compiles `.path=value`. Besides any jq expression, `.path=text` whose text is not jq (and
    /// not JSON) assigns the text as a string, as earlier versions did.
    pub fn parse(input: &str) -> anyhow::Result<Self> {
        let text = input.trim();
        if !text.starts_with('.') {
            bail!("invalid --param {input:?}: want .path=value, e.g. .nodeName=\"node-000000\"");
        }
        let query = match jq::Query::parse(text) {
            Ok(q) => q,
            Err(e) => plain_text(text).ok_or_else(|| anyhow!("invalid --param {input:?}: {e}"))?,
        };
        if query.is_plain_path() {
            bail!("invalid --param {input:?}: missing '='");
        }
        Ok(Self {
            head: jq::leading_field(text),
            query,
        })
    }

    /// The first key of the path, if the path starts with one.
    pub fn head(&self) -> Option<&str> {
        self.head.as_deref()
    }

    /// Runs the assignment on `target`.
    pub fn apply(&self, target: &mut Value) -> anyhow::Result<()> {
        self.query
            .update(target)
            .map_err(|e| anyhow!("--param {:?}: {e}", self.query.source()))
    }
}

/// `.path=text` with the text taken as a string.
fn plain_text(text: &str) -> Option<jq::Query> {
    let (path, value) = text.split_once('=')?;
    let value = Value::String(value.trim().to_string());
    jq::Query::parse(&format!("{path} = {value}")).ok()
}

/// Where an object of a scale comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// The built-in `node` resource.
    Node,
    /// The built-in `pod` resource.
    Pod,
    /// A `KwokctlResource`: its parsed template.
    Template(Arc<Template>),
}

/// A scalable resource: default parameters plus how to build one object.
#[derive(Debug, Clone)]
pub struct Resource {
    pub name: String,
    pub parameters: Value,
    pub source: Source,
}

impl Resource {
    /// The built-in resource named `kind` (`node` or `pod`).
    pub fn builtin(kind: &str) -> Option<Self> {
        Some(match kind {
            "node" => Self {
                name: "node".into(),
                parameters: json!({
                    "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                    "capacity": {},
                    "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
                    "podCIDRs": ["10.0.0.0/24", "fd00::/64"],
                    "nodeIPs": ["192.0.2.1", "2001:db8::1"],
                }),
                source: Source::Node,
            },
            "pod" => Self {
                name: "pod".into(),
                parameters: json!({
                    "initContainers": [],
                    "containers": [{"name": "container-0", "image": "busybox"}],
                    "hostNetwork": false,
                    "nodeName": "",
                }),
                source: Source::Pod,
            },
            _ => return None,
        })
    }

    /// A `KwokctlResource` document.
    pub fn from_document(doc: &Value) -> anyhow::Result<Self> {
        let name = doc
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{KWOKCTL_RESOURCE} without metadata.name"))?
            .to_string();
        let template = match doc.get("template") {
            Some(Value::String(s)) => s.clone(),
            Some(v @ Value::Object(_)) => serde_json::to_string(v)?,
            _ => bail!("{KWOKCTL_RESOURCE} {name:?} has no template"),
        };
        let parameters = match doc.get("parameters") {
            Some(Value::String(s)) => serde_json::from_str(s)
                .or_else(|_| serde_saphyr::from_str(s).map_err(|e| anyhow!("{e}")))
                .with_context(|| format!("{KWOKCTL_RESOURCE} {name:?} parameters"))?,
            Some(v) => v.clone(),
            None => json!({}),
        };
        let template =
            Template::parse(&template).with_context(|| format!("{KWOKCTL_RESOURCE} {name:?}"))?;
        Ok(Self {
            name,
            parameters,
            source: Source::Template(Arc::new(template)),
        })
    }

    /// Applies `--param`s: to the parameters when they name one of them, otherwise they are kept
    /// for the rendered object (returned).
    pub fn apply_params(&mut self, params: &[Param]) -> anyhow::Result<Vec<Param>> {
        let mut object_params = Vec::new();
        for p in params {
            let known = p.head().is_some_and(|h| self.parameters.get(h).is_some());
            let object_field = matches!(
                p.head(),
                Some("metadata" | "spec" | "status" | "data" | "apiVersion" | "kind")
            );
            if known || !object_field {
                p.apply(&mut self.parameters)?;
            } else {
                object_params.push(p.clone());
            }
        }
        Ok(object_params)
    }

    /// Builds object `index` named `name`.
    pub fn render(&self, name: &str, namespace: &str, index: usize) -> anyhow::Result<Value> {
        match &self.source {
            Source::Node => Ok(node(&self.parameters, name, index)),
            Source::Pod => Ok(pod(&self.parameters, name, namespace)),
            Source::Template(t) => {
                let text = t.render(&self.parameters, name, namespace, index)?;
                let value: Value = serde_saphyr::from_str(&text)
                    .map_err(|e| anyhow!("{e}"))
                    .with_context(|| format!("parse the rendered template of {:?}", self.name))?;
                if !value.is_object() {
                    bail!("the template of {:?} does not render an object", self.name);
                }
                Ok(value)
            }
        }
    }
}

fn node(params: &Value, name: &str, index: usize) -> Value {
    let strings = |key: &str| -> Vec<String> {
        params
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let cidrs: Vec<String> = strings("podCIDRs")
        .iter()
        .filter_map(|c| add_cidr(c, index as u128).ok())
        .collect();
    let ips: Vec<String> = strings("nodeIPs")
        .iter()
        .filter_map(|ip| add_ip(ip, index as u128).ok())
        .collect();
    let arch = params
        .pointer("/nodeInfo/architecture")
        .and_then(Value::as_str)
        .unwrap_or("amd64");
    let os = params
        .pointer("/nodeInfo/operatingSystem")
        .and_then(Value::as_str)
        .unwrap_or("linux");
    let allocatable = params.get("allocatable").cloned().unwrap_or(json!({}));
    let capacity = match params.get("capacity") {
        Some(Value::Object(m)) if !m.is_empty() => Value::Object(m.clone()),
        _ => allocatable.clone(),
    };
    let mut spec = Map::new();
    if let Some(first) = cidrs.first() {
        spec.insert("podCIDR".into(), first.clone().into());
        spec.insert("podCIDRs".into(), json!(cidrs));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {
                "kwok.x-k8s.io/node": "fake",
                "node.alpha.kubernetes.io/ttl": "0",
                "metrics.k8s.io/resource-metrics-path": format!("/metrics/nodes/{name}/metrics/resource"),
            },
            "labels": {
                "beta.kubernetes.io/arch": arch,
                "beta.kubernetes.io/os": os,
                "kubernetes.io/arch": arch,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": os,
                "kubernetes.io/role": "agent",
                "node-role.kubernetes.io/agent": "",
                "type": "kwok",
            },
        },
        "spec": spec,
        "status": {
            "allocatable": allocatable,
            "capacity": capacity,
            "nodeInfo": params.get("nodeInfo").cloned().unwrap_or(json!({})),
            "addresses": ips.iter().map(|ip| json!({"type": "InternalIP", "address": ip})).collect::<Vec<_>>(),
            "phase": "Running",
        },
    })
}

fn pod(params: &Value, name: &str, namespace: &str) -> Value {
    let mut spec = Map::new();
    for key in ["initContainers", "containers"] {
        if let Some(Value::Array(items)) = params.get(key)
            && !items.is_empty()
        {
            spec.insert(key.into(), Value::Array(items.clone()));
        }
    }
    spec.insert(
        "hostNetwork".into(),
        params.get("hostNetwork").cloned().unwrap_or(json!(false)),
    );
    if let Some(node) = params
        .get("nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        spec.insert("nodeName".into(), node.into());
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    })
}

/// `cidr` moved forward by `n` networks of its own size: `10.0.0.0/24` + 2 = `10.0.2.0/24`.
pub fn add_cidr(cidr: &str, n: u128) -> anyhow::Result<String> {
    let (ip, prefix) = cidr
        .split_once('/')
        .ok_or_else(|| anyhow!("invalid CIDR {cidr:?}"))?;
    let prefix: u32 = prefix
        .parse()
        .with_context(|| format!("invalid CIDR {cidr:?}"))?;
    let ip: IpAddr = ip
        .parse()
        .with_context(|| format!("invalid CIDR {cidr:?}"))?;
    match ip {
        IpAddr::V4(v4) => {
            if prefix > 32 {
                bail!("invalid CIDR {cidr:?}");
            }
            let step = 1u128 << (32 - prefix);
            let v = (u32::from(v4) as u128).wrapping_add(step * n) as u32;
            Ok(format!("{}/{prefix}", Ipv4Addr::from(v)))
        }
        IpAddr::V6(v6) => {
            if prefix > 128 {
                bail!("invalid CIDR {cidr:?}");
            }
            let step = if prefix == 0 {
                0
            } else {
                1u128 << (128 - prefix)
            };
            let v = u128::from(v6).wrapping_add(step.wrapping_mul(n));
            Ok(format!("{}/{prefix}", Ipv6Addr::from(v)))
        }
    }
}

/// `ip` + `n`.
pub fn add_ip(ip: &str, n: u128) -> anyhow::Result<String> {
    let parsed: IpAddr = ip.parse().with_context(|| format!("invalid IP {ip:?}"))?;
    Ok(match parsed {
        IpAddr::V4(v4) => {
            Ipv4Addr::from((u32::from(v4) as u128).wrapping_add(n) as u32).to_string()
        }
        IpAddr::V6(v6) => Ipv6Addr::from(u128::from(v6).wrapping_add(n)).to_string(),
    })
}

/// Labels the object and names it, applying object-level `--param`s.
pub fn finish_object(
    mut obj: Value,
    scale_name: &str,
    name: &str,
    namespace: Option<&str>,
    object_params: &[Param],
) -> anyhow::Result<Value> {
    for p in object_params {
        p.apply(&mut obj)?;
    }
    let meta = obj
        .as_object_mut()
        .ok_or_else(|| anyhow!("object is not a mapping"))?
        .entry("metadata")
        .or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let meta = meta.as_object_mut().expect("object");
    meta.insert("name".into(), name.into());
    if let Some(ns) = namespace {
        meta.insert("namespace".into(), ns.into());
    } else {
        meta.remove("namespace");
    }
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels
        .as_object_mut()
        .expect("object")
        .insert(SCALE_LABEL.into(), scale_name.into());
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(serial_name("node", 0, 6), "node-000000");
        assert_eq!(serial_name("node", 42, 6), "node-000042");
        assert_eq!(serial_name("x", 1234567, 6), "x-1234567");
        assert_eq!(serial_name("p", 3, 2), "p-03");
        assert_eq!(parse_serial("node", "node-000042"), Some(42));
        assert_eq!(parse_serial("node", "node-abc"), None);
        assert_eq!(parse_serial("node", "nodes-000001"), None);
        assert_eq!(parse_serial("node", "node-"), None);
    }

    #[test]
    fn scale_down_picks_the_highest_serials() {
        let existing = vec![
            (
                1,
                "2026-01-01T00:00:02Z".to_string(),
                "n-000001".to_string(),
            ),
            (
                0,
                "2026-01-01T00:00:09Z".to_string(),
                "n-000000".to_string(),
            ),
            (
                2,
                "2026-01-01T00:00:01Z".to_string(),
                "n-000002".to_string(),
            ),
            (
                usize::MAX,
                "2026-01-01T00:00:00Z".to_string(),
                "odd".to_string(),
            ),
        ];
        assert_eq!(surplus(existing.clone(), 2), vec!["n-000002", "odd"]);
        assert_eq!(surplus(existing.clone(), 4), Vec::<String>::new());
        assert_eq!(surplus(existing, 0).len(), 4);
    }

    fn applied(param: &str) -> Value {
        let mut v = json!({"containers": [{"image": "busybox"}], "n": 2});
        Param::parse(param).unwrap().apply(&mut v).unwrap();
        v
    }

    #[test]
    fn params_parse_jq_style_paths() {
        let p = Param::parse(r#".spec.nodeName="node-000000""#).unwrap();
        assert_eq!(p.head(), Some("spec"));
        assert_eq!(
            applied(r#".spec.nodeName="node-000000""#)["spec"]["nodeName"],
            "node-000000"
        );
        assert_eq!(applied(".allocatable.cpu=64")["allocatable"]["cpu"], 64);
        assert_eq!(applied(".hostNetwork=true")["hostNetwork"], true);
        assert_eq!(applied(".image=nginx:1.25")["image"], "nginx:1.25");
        assert_eq!(
            applied(r#".containers[0].image="nginx""#)["containers"][0]["image"],
            "nginx"
        );
        assert_eq!(
            applied(r#".metadata.labels."a.b/c"="x""#)["metadata"]["labels"]["a.b/c"],
            "x"
        );
        let v = applied(r#".metadata.labels["a.b/c"]={"k":[1,2]}"#);
        assert_eq!(v["metadata"]["labels"]["a.b/c"], json!({"k": [1, 2]}));
        assert_eq!(applied(".a = 1")["a"], 1);
        // Any jq: update-assignment, functions, alternatives.
        assert_eq!(applied(".n |= . * 10")["n"], 20);
        assert_eq!(
            applied(r#".containers[0].image |= ascii_upcase"#)["containers"][0]["image"],
            "BUSYBOX"
        );
        assert_eq!(applied(r#".x = (.missing // "d")"#)["x"], "d");
        assert_eq!(
            Param::parse(r#".["nodeName"] = "x""#).unwrap().head(),
            Some("nodeName")
        );
        assert!(Param::parse("nodeName=x").is_err());
        assert!(Param::parse(".nodeName").is_err());
        assert!(Param::parse(".a | = ").is_err());
    }

    #[test]
    fn params_apply_creating_intermediate_values() {
        let mut v = json!({"a": 1});
        Param::parse(".b.c[1]=\"x\"")
            .unwrap()
            .apply(&mut v)
            .unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"c": [null, "x"]}}));
    }

    #[test]
    fn params_go_to_parameters_or_the_object() {
        let mut pod = Resource::builtin("pod").unwrap();
        let rest = pod
            .apply_params(&[
                Param::parse(r#".nodeName="n1""#).unwrap(),
                Param::parse(r#".metadata.labels.app="web""#).unwrap(),
            ])
            .unwrap();
        assert_eq!(pod.parameters["nodeName"], "n1");
        assert_eq!(rest.len(), 1);
        let obj = pod.render("pod-000000", "default", 0).unwrap();
        assert_eq!(obj["spec"]["nodeName"], "n1");
        let obj = finish_object(obj, "pod", "pod-000000", Some("default"), &rest).unwrap();
        assert_eq!(obj["metadata"]["labels"]["app"], "web");
        assert_eq!(obj["metadata"]["labels"][SCALE_LABEL], "pod");
    }

    #[test]
    fn builtin_node_template() {
        let node = Resource::builtin("node").unwrap();
        let obj = node.render("node-000003", "", 3).unwrap();
        assert_eq!(obj["kind"], "Node");
        assert_eq!(obj["metadata"]["annotations"]["kwok.x-k8s.io/node"], "fake");
        assert_eq!(obj["metadata"]["labels"]["type"], "kwok");
        assert_eq!(
            obj["metadata"]["labels"]["node-role.kubernetes.io/agent"],
            ""
        );
        assert_eq!(
            obj["spec"]["podCIDRs"],
            json!(["10.0.3.0/24", "fd00:0:0:3::/64"])
        );
        assert_eq!(obj["status"]["addresses"][0]["address"], "192.0.2.4");
        assert_eq!(obj["status"]["addresses"][1]["address"], "2001:db8::4");
        assert_eq!(obj["status"]["allocatable"]["pods"], "110");
        assert_eq!(obj["status"]["capacity"]["cpu"], "32");
    }

    #[test]
    fn builtin_pod_template() {
        let pod = Resource::builtin("pod").unwrap();
        let obj = pod.render("pod-000000", "ns", 0).unwrap();
        assert_eq!(obj["metadata"]["namespace"], "ns");
        assert_eq!(obj["spec"]["containers"][0]["name"], "container-0");
        assert_eq!(obj["spec"]["containers"][0]["image"], "busybox");
        assert!(obj["spec"].get("nodeName").is_none());
    }

    #[test]
    fn resource_from_document() {
        let doc: Value = serde_saphyr::from_str(
            "kind: KwokctlResource\napiVersion: config.kwok.x-k8s.io/v1alpha1\nmetadata:\n  name: cm\nparameters:\n  size: 3\ntemplate: |-\n  apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: {{ Name }}\n    namespace: {{ Namespace }}\n  data:\n    index: {{ Quote Index }}\n    size: {{ Quote .size }}\n",
        )
        .unwrap();
        let mut r = Resource::from_document(&doc).unwrap();
        r.apply_params(&[Param::parse(".size=7").unwrap()]).unwrap();
        let obj = r.render("cm-000002", "default", 2).unwrap();
        assert_eq!(obj["kind"], "ConfigMap");
        assert_eq!(obj["metadata"]["name"], "cm-000002");
        assert_eq!(obj["data"]["index"], "2");
        assert_eq!(obj["data"]["size"], "7");
    }

    /// An upstream-style resource: `or`, `range` over a list and a map, `if`/`else`, `index`.
    const DEPLOYMENT_LIKE: &str = r#"
kind: KwokctlResource
apiVersion: config.kwok.x-k8s.io/v1alpha1
metadata:
  name: pod-set
parameters:
  containers:
  - name: app
    image: nginx
    resources:
      requests: {cpu: 100m, memory: 64Mi}
      limits: {cpu: 200m}
  - name: side
    image: busybox
  podCIDR: 10.0.0.0/24
template: |-
  kind: Pod
  apiVersion: v1
  metadata:
    name: {{ Name }}
    namespace: {{ or Namespace "default" }}
    annotations:
      cidr: {{ AddCIDR .podCIDR Index }}
  spec:
    containers:
    {{ range $index, $container := .containers }}
    - name: {{ $container.name }}
      image: {{ $container.image }}
      {{ if $container.resources }}
      {{ $resources := $container.resources }}
      resources:
        limits:
        {{ range $key, $value := $resources.requests }}
          {{ $key }}: {{ or (index $resources.limits $key) $value }}
        {{ end }}
      {{ else }}
      env:
      - {name: INDEX, value: {{ Quote Index }}}
      {{ end }}
    {{ end }}
"#;

    #[test]
    fn resource_with_if_and_range() {
        let doc: Value = serde_saphyr::from_str(DEPLOYMENT_LIKE).unwrap();
        let mut r = Resource::from_document(&doc).unwrap();
        r.apply_params(&[Param::parse(".containers[1].image=\"alpine\"").unwrap()])
            .unwrap();
        let obj = r.render("pod-set-000002", "", 2).unwrap();
        assert_eq!(obj["metadata"]["namespace"], "default");
        assert_eq!(obj["metadata"]["annotations"]["cidr"], "10.0.2.0/24");
        let c = &obj["spec"]["containers"];
        assert_eq!(
            c[0]["resources"]["limits"],
            json!({"cpu": "200m", "memory": "64Mi"})
        );
        assert_eq!(c[1]["image"], "alpine");
        assert_eq!(c[1]["env"][0]["value"], "2");
        assert!(c[1].get("resources").is_none());
    }

    #[test]
    fn bad_templates_fail_on_load() {
        let doc = json!({"metadata": {"name": "x"}, "template": "{{ if .a }}open"});
        assert!(Resource::from_document(&doc).is_err());
    }

    #[test]
    fn cidr_and_ip_arithmetic() {
        assert_eq!(add_cidr("10.0.0.0/24", 256).unwrap(), "10.1.0.0/24");
        assert_eq!(add_cidr("fd00::/64", 1).unwrap(), "fd00:0:0:1::/64");
        assert_eq!(add_ip("192.0.2.255", 1).unwrap(), "192.0.3.0");
        assert!(add_cidr("nope", 1).is_err());
    }
}
