//! Stage templates: Go `text/template` (through `gotmpl`) executed on the object's JSON.
//!
//! The functions upstream KWOK offers are registered on every template: `Quote`, `Now`,
//! `StartTime`, `YAML`, `Version`, `NodeConditions`, the node helpers `NodeIP`, `NodeName`,
//! `NodePort`, the pod helpers `PodIP`, `NodeIPWith`, `NodeIPsWith`, `PodIPWith`, `PodIPsWith`,
//! and a subset of sprig's (`default`, `quote`, `toJson`, `upper`, `lower`, `trim`, `empty`,
//! `ternary`, `hasKey`, `list`, `dict`, `add`, `sub`, `int`, `toString`, `contains`, `hasPrefix`,
//! `hasSuffix`, `replace`, `join`, `now`).
//!
//! Functions that depend on the cluster (IPs, node names) ask the [`Funcs`] the engine installs
//! for the duration of one render; templates are parsed once and shared.
//! The rendered text is YAML; [`Template::render`] turns it into JSON.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use gotmpl::Value as T;
use serde_json::Value;

/// What templates ask of the simulator.
pub trait Funcs: Send + Sync {
    /// `--node-ip`.
    fn node_ip(&self) -> String;
    /// `--node-name`.
    fn node_name(&self) -> String;
    /// `--node-port`.
    fn node_port(&self) -> i64;
    /// A pod IP from `--cidr` for the object being rendered.
    fn pod_ip(&self, key: &str) -> String;
    /// The node's IPs (InternalIP first), falling back to `--node-ip`.
    fn node_ips_with(&self, node: &str) -> Vec<String>;
    /// The pod's IPs, one per CIDR of its node; host-network pods get the node's IPs.
    fn pod_ips_with(
        &self,
        node: &str,
        host_network: bool,
        uid: &str,
        name: &str,
        namespace: &str,
    ) -> Vec<String>;
}

/// Funcs without a cluster: empty addresses. Used when validating Stages.
pub struct NoFuncs;

impl Funcs for NoFuncs {
    fn node_ip(&self) -> String {
        String::new()
    }
    fn node_name(&self) -> String {
        String::new()
    }
    fn node_port(&self) -> i64 {
        0
    }
    fn pod_ip(&self, _: &str) -> String {
        String::new()
    }
    fn node_ips_with(&self, _: &str) -> Vec<String> {
        Vec::new()
    }
    fn pod_ips_with(&self, _: &str, _: bool, _: &str, _: &str, _: &str) -> Vec<String> {
        Vec::new()
    }
}

struct Current {
    funcs: Arc<dyn Funcs>,
    key: String,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

static START_TIME: LazyLock<String> = LazyLock::new(now);

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn with_current<R>(f: impl FnOnce(&Current) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

/// A parsed template.
pub struct Template {
    inner: gotmpl::Template,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Template")
    }
}

impl Template {
    /// Parses `source`; the error is gotmpl's message.
    pub fn parse(source: &str) -> Result<Template, String> {
        check_functions(source)?;
        let inner = gotmpl::Template::new("stage")
            .funcs(FUNCS.clone())
            .parse(source)
            .map_err(|e| e.to_string())?;
        Ok(Template { inner })
    }

    /// Executes the template on `object` and returns the text.
    pub fn execute(
        &self,
        object: &Value,
        funcs: Arc<dyn Funcs>,
        key: &str,
    ) -> Result<String, String> {
        let data = to_tmpl(object);
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                funcs,
                key: key.to_string(),
            })
        });
        let out = self.inner.execute_to_string(&data);
        CURRENT.with(|c| *c.borrow_mut() = None);
        out.map_err(|e| e.to_string())
    }

    /// Executes the template and parses the output as YAML (empty output is `null`).
    pub fn render(
        &self,
        object: &Value,
        funcs: Arc<dyn Funcs>,
        key: &str,
    ) -> Result<Value, String> {
        let text = self.execute(object, funcs, key)?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_saphyr::from_str::<Value>(&text)
            .map_err(|e| format!("the rendered template is not valid YAML: {e}\n{text}"))
    }
}

const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    "nil", "true", "false", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "print",
    "println", "printf", "len", "index", "slice", "call", "html", "js", "urlquery",
];

/// Rejects calls of functions that do not exist (Go rejects them when parsing; gotmpl only
/// when executing).
fn check_functions(source: &str) -> Result<(), String> {
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after.find("}}").unwrap_or(after.len());
        let action: Vec<char> = after[..end].chars().collect();
        let mut i = 0;
        while i < action.len() {
            let c = action[i];
            if c == '"' || c == '`' || c == '\'' {
                let quote = c;
                i += 1;
                while i < action.len() && action[i] != quote {
                    if action[i] == '\\' && quote != '`' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            if c.is_alphabetic() || c == '_' {
                let start = i;
                while i < action.len() && (action[i].is_alphanumeric() || action[i] == '_') {
                    i += 1;
                }
                let prev = if start == 0 { ' ' } else { action[start - 1] };
                if prev != '.' && prev != '$' && !prev.is_alphanumeric() {
                    let word: String = action[start..i].iter().collect();
                    if !KEYWORDS.contains(&word.as_str()) && !FUNCS.contains_key(&word) {
                        return Err(format!("function {word:?} not defined"));
                    }
                }
                continue;
            }
            if c == '/' && action.get(i + 1) == Some(&'*') {
                // A comment: skip to its end.
                while i + 1 < action.len() && !(action[i] == '*' && action[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            i += 1;
        }
        rest = &after[end.min(after.len())..];
    }
    Ok(())
}

/// Converts JSON to a template value.
pub fn to_tmpl(v: &Value) -> T {
    match v {
        Value::Null => T::Nil,
        Value::Bool(b) => T::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => T::Int(i),
            None => match n.as_u64() {
                Some(u) => T::Uint(u),
                None => T::Float(n.as_f64().unwrap_or(0.0)),
            },
        },
        Value::String(s) => T::String(s.as_str().into()),
        Value::Array(a) => T::List(a.iter().map(to_tmpl).collect::<Vec<_>>().into()),
        Value::Object(m) => T::Map(Arc::new(
            m.iter()
                .map(|(k, v)| (Arc::<str>::from(k.as_str()), to_tmpl(v)))
                .collect(),
        )),
    }
}

/// Converts a template value back to JSON.
pub fn to_json(v: &T) -> Value {
    match v {
        T::Nil => Value::Null,
        T::Bool(b) => Value::Bool(*b),
        T::Int(i) => Value::from(*i),
        T::Uint(u) => Value::from(*u),
        T::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        T::String(s) => Value::String(s.to_string()),
        T::List(l) => Value::Array(l.iter().map(to_json).collect()),
        T::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        T::Function(_) => Value::Null,
        #[allow(unreachable_patterns)]
        _ => Value::Null,
    }
}

/// Block-style YAML for `v`, each line indented by `indent` levels of two spaces.
pub fn to_yaml(v: &Value, indent: usize) -> String {
    let mut out = String::new();
    emit(v, indent, &mut out);
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Object(m) if m.is_empty() => Some("{}".into()),
        Value::Array(a) if a.is_empty() => Some("[]".into()),
        Value::Object(_) | Value::Array(_) => None,
        other => Some(other.to_string()),
    }
}

fn emit(v: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = Value::String(k.clone()).to_string();
                match scalar(v) {
                    Some(s) => out.push_str(&format!("{pad}{key}: {s}\n")),
                    None => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        emit(v, indent + 1, out);
                    }
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                match scalar(item) {
                    Some(s) => out.push_str(&format!("{pad}- {s}\n")),
                    None => {
                        let mut inner = String::new();
                        emit(item, indent + 1, &mut inner);
                        let inner_pad = "  ".repeat(indent + 1);
                        let rest = inner.strip_prefix(&inner_pad).unwrap_or(&inner);
                        out.push_str(&format!("{pad}- {rest}"));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

fn arg_str(args: &[T], i: usize) -> String {
    match args.get(i) {
        None | Some(T::Nil) => String::new(),
        Some(v) => v.to_string(),
    }
}

fn strings(v: Vec<String>) -> T {
    T::List(
        v.into_iter()
            .map(|s| T::String(s.into()))
            .collect::<Vec<_>>()
            .into(),
    )
}

fn is_empty(v: &T) -> bool {
    !gotmpl::is_true(v)
}

fn node_conditions() -> T {
    let conditions = [
        (
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status",
        ),
        (
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
        ),
        (
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
        ),
        (
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
        ),
        (
            "NetworkUnavailable",
            "False",
            "RouteCreated",
            "RouteController created a route",
        ),
    ];
    to_tmpl(&Value::Array(
        conditions
            .iter()
            .map(|(t, s, r, m)| serde_json::json!({"type": t, "status": s, "reason": r, "message": m}))
            .collect(),
    ))
}

type F = gotmpl::ValueFunc;

fn f(func: impl Fn(&[T]) -> gotmpl::Result<T> + Send + Sync + 'static) -> F {
    Arc::new(func)
}

fn num(v: Option<&T>) -> f64 {
    match v {
        Some(T::Int(i)) => *i as f64,
        Some(T::Uint(u)) => *u as f64,
        Some(T::Float(f)) => *f,
        Some(T::String(s)) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn number(x: f64) -> T {
    if x.fract() == 0.0 && x.abs() < 9e15 {
        T::Int(x as i64)
    } else {
        T::Float(x)
    }
}

static FUNCS: LazyLock<gotmpl::FuncMap> = LazyLock::new(|| {
    let mut m: BTreeMap<String, F> = BTreeMap::new();
    m.insert(
        "Quote".into(),
        f(|a| {
            let v = a.first().map(to_json).unwrap_or(Value::Null);
            Ok(T::String(
                match v {
                    Value::String(s) => Value::String(s).to_string(),
                    Value::Null => "\"\"".to_string(),
                    other => Value::String(other.to_string()).to_string(),
                }
                .into(),
            ))
        }),
    );
    m.insert("Now".into(), f(|_| Ok(T::String(now().into()))));
    m.insert("now".into(), f(|_| Ok(T::String(now().into()))));
    m.insert(
        "StartTime".into(),
        f(|_| Ok(T::String(START_TIME.as_str().into()))),
    );
    m.insert(
        "Version".into(),
        f(|_| Ok(T::String(env!("CARGO_PKG_VERSION").into()))),
    );
    m.insert(
        "YAML".into(),
        f(|a| {
            let v = a.first().map(to_json).unwrap_or(Value::Null);
            let indent = a.get(1).and_then(T::as_int).unwrap_or(0).max(0) as usize;
            Ok(T::String(to_yaml(&v, indent).into()))
        }),
    );
    m.insert("NodeConditions".into(), f(|_| Ok(node_conditions())));
    m.insert(
        "NodeIP".into(),
        f(|_| {
            Ok(T::String(
                with_current(|c| c.funcs.node_ip())
                    .unwrap_or_default()
                    .into(),
            ))
        }),
    );
    m.insert(
        "NodeName".into(),
        f(|_| {
            Ok(T::String(
                with_current(|c| c.funcs.node_name())
                    .unwrap_or_default()
                    .into(),
            ))
        }),
    );
    m.insert(
        "NodePort".into(),
        f(|_| Ok(T::Int(with_current(|c| c.funcs.node_port()).unwrap_or(0)))),
    );
    m.insert(
        "PodIP".into(),
        f(|_| {
            Ok(T::String(
                with_current(|c| c.funcs.pod_ip(&c.key))
                    .unwrap_or_default()
                    .into(),
            ))
        }),
    );
    m.insert(
        "NodeIPWith".into(),
        f(|a| {
            let node = arg_str(a, 0);
            Ok(T::String(
                with_current(|c| c.funcs.node_ips_with(&node))
                    .and_then(|v| v.into_iter().next())
                    .unwrap_or_default()
                    .into(),
            ))
        }),
    );
    m.insert(
        "NodeIPsWith".into(),
        f(|a| {
            let node = arg_str(a, 0);
            Ok(strings(
                with_current(|c| c.funcs.node_ips_with(&node)).unwrap_or_default(),
            ))
        }),
    );
    let pod_ips = |a: &[T]| -> Vec<String> {
        let node = arg_str(a, 0);
        let host = a.get(1).is_some_and(gotmpl::is_true);
        let (uid, name, ns) = (arg_str(a, 2), arg_str(a, 3), arg_str(a, 4));
        with_current(|c| c.funcs.pod_ips_with(&node, host, &uid, &name, &ns)).unwrap_or_default()
    };
    m.insert(
        "PodIPWith".into(),
        f(move |a| {
            Ok(T::String(
                pod_ips(a).into_iter().next().unwrap_or_default().into(),
            ))
        }),
    );
    m.insert("PodIPsWith".into(), f(move |a| Ok(strings(pod_ips(a)))));

    // A subset of sprig.
    m.insert(
        "default".into(),
        f(|a| {
            let d = a.first().cloned().unwrap_or(T::Nil);
            Ok(match a.get(1) {
                Some(v) if !is_empty(v) => v.clone(),
                _ => d,
            })
        }),
    );
    m.insert(
        "empty".into(),
        f(|a| Ok(T::Bool(a.first().is_none_or(is_empty)))),
    );
    m.insert(
        "quote".into(),
        f(|a| {
            Ok(T::String(
                a.iter()
                    .map(|v| Value::String(v.to_string()).to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
                    .into(),
            ))
        }),
    );
    m.insert(
        "toJson".into(),
        f(|a| {
            Ok(T::String(
                a.first()
                    .map(to_json)
                    .unwrap_or(Value::Null)
                    .to_string()
                    .into(),
            ))
        }),
    );
    m.insert(
        "toString".into(),
        f(|a| Ok(T::String(arg_str(a, 0).into()))),
    );
    m.insert(
        "upper".into(),
        f(|a| Ok(T::String(arg_str(a, 0).to_uppercase().into()))),
    );
    m.insert(
        "lower".into(),
        f(|a| Ok(T::String(arg_str(a, 0).to_lowercase().into()))),
    );
    m.insert(
        "trim".into(),
        f(|a| Ok(T::String(arg_str(a, 0).trim().into()))),
    );
    m.insert(
        "ternary".into(),
        f(|a| {
            let cond = a.get(2).is_some_and(gotmpl::is_true);
            Ok(a.get(if cond { 0 } else { 1 }).cloned().unwrap_or(T::Nil))
        }),
    );
    m.insert(
        "hasKey".into(),
        f(|a| {
            Ok(T::Bool(match a.first() {
                Some(T::Map(m)) => m.contains_key(arg_str(a, 1).as_str()),
                _ => false,
            }))
        }),
    );
    m.insert("list".into(), f(|a| Ok(T::List(a.to_vec().into()))));
    m.insert(
        "dict".into(),
        f(|a| {
            let mut m = BTreeMap::new();
            for pair in a.chunks(2) {
                m.insert(
                    Arc::<str>::from(pair[0].to_string().as_str()),
                    pair.get(1).cloned().unwrap_or(T::Nil),
                );
            }
            Ok(T::Map(Arc::new(m)))
        }),
    );
    m.insert(
        "add".into(),
        f(|a| Ok(number(a.iter().map(|v| num(Some(v))).sum()))),
    );
    m.insert(
        "sub".into(),
        f(|a| Ok(number(num(a.first()) - num(a.get(1))))),
    );
    m.insert("int".into(), f(|a| Ok(T::Int(num(a.first()) as i64))));
    m.insert(
        "contains".into(),
        f(|a| Ok(T::Bool(arg_str(a, 1).contains(&arg_str(a, 0))))),
    );
    m.insert(
        "hasPrefix".into(),
        f(|a| Ok(T::Bool(arg_str(a, 1).starts_with(&arg_str(a, 0))))),
    );
    m.insert(
        "hasSuffix".into(),
        f(|a| Ok(T::Bool(arg_str(a, 1).ends_with(&arg_str(a, 0))))),
    );
    m.insert(
        "replace".into(),
        f(|a| {
            Ok(T::String(
                arg_str(a, 2).replace(&arg_str(a, 0), &arg_str(a, 1)).into(),
            ))
        }),
    );
    m.insert(
        "join".into(),
        f(|a| {
            let sep = arg_str(a, 0);
            Ok(T::String(
                match a.get(1) {
                    Some(T::List(l)) => l
                        .iter()
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(&sep),
                    Some(other) => other.to_string(),
                    None => String::new(),
                }
                .into(),
            ))
        }),
    );
    m
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Fake;
    impl Funcs for Fake {
        fn node_ip(&self) -> String {
            "10.1.0.1".into()
        }
        fn node_name(&self) -> String {
            "host".into()
        }
        fn node_port(&self) -> i64 {
            10250
        }
        fn pod_ip(&self, key: &str) -> String {
            format!("ip-of-{key}")
        }
        fn node_ips_with(&self, node: &str) -> Vec<String> {
            vec![format!("{node}-ip")]
        }
        fn pod_ips_with(
            &self,
            node: &str,
            host: bool,
            _: &str,
            name: &str,
            _: &str,
        ) -> Vec<String> {
            vec![if host {
                format!("{node}-ip")
            } else {
                format!("{name}-ip")
            }]
        }
    }

    fn render(src: &str, obj: Value) -> Value {
        Template::parse(src)
            .unwrap()
            .render(&obj, Arc::new(Fake), "ns/p")
            .unwrap()
    }

    #[test]
    fn renders_yaml_with_functions() {
        let obj = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}});
        let out = render(
            r#"
{{ $now := Now }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
{{ end }}
hostIP: {{ NodeIPWith .spec.nodeName | Quote }}
podIP: {{ PodIPWith .spec.nodeName ( or .spec.hostNetwork false ) "" .metadata.name "" | Quote }}
other: {{ PodIP }}
phase: Running
startTime: {{ $now | Quote }}
"#,
            obj,
        );
        assert_eq!(out["containerStatuses"][0]["name"], "c");
        assert_eq!(out["containerStatuses"][0]["ready"], true);
        assert_eq!(out["hostIP"], "n1-ip");
        assert_eq!(out["podIP"], "p-ip");
        assert_eq!(out["other"], "ip-of-ns/p");
        assert!(out["startTime"].as_str().unwrap().contains('T'));
    }

    #[test]
    fn yaml_function_and_defaults() {
        let obj = json!({"status": {"allocatable": {"cpu": "4", "pods": "110"}, "addresses": [{"type": "InternalIP", "address": "1.2.3.4"}]}});
        let out = render(
            r#"
allocatable:
{{ with .status.allocatable }}
{{ YAML . 1 }}
{{ else }}
  cpu: 1k
{{ end }}
addresses:
{{ YAML .status.addresses 1 }}
capacity:
{{ with .status.capacity }}
{{ YAML . 1 }}
{{ else }}
  cpu: 1k
  memory: 1Ti
{{ end }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
{{ end }}
name: {{ default "dflt" .metadata.name }}
"#,
            obj,
        );
        assert_eq!(out["allocatable"], json!({"cpu": "4", "pods": "110"}));
        assert_eq!(out["addresses"][0]["address"], "1.2.3.4");
        assert_eq!(out["capacity"], json!({"cpu": "1k", "memory": "1Ti"}));
        assert_eq!(
            out["conditions"][0],
            json!({"type": "Ready", "status": "True"})
        );
        assert_eq!(out["conditions"].as_array().unwrap().len(), 5);
        assert_eq!(out["name"], "dflt");
    }

    #[test]
    fn yaml_round_trips() {
        let v = json!({"a": [1, {"b": "x: y", "c": []}], "d": {}, "e": null, "f": {"g": true}});
        let text = to_yaml(&v, 2);
        let back: Value = serde_saphyr::from_str(&format!("root:\n{text}")).unwrap();
        assert_eq!(back["root"], v);
    }

    #[test]
    fn bad_template_is_an_error() {
        assert!(Template::parse("{{ .a ").is_err());
        assert!(Template::parse("{{ NoSuchFunc }}").is_err());
    }
}
