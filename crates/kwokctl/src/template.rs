//! `KwokctlResource` templates: Go `text/template` through `gotmpl`, so `if`, `range`, `with`,
//! variables, `and`/`or`/`index`/`printf` and the rest of the language work as upstream.
//!
//! `.` is the resource's parameters. Functions, as upstream kwokctl registers them: `Name`,
//! `Namespace`, `Index` (the object being built), `AddCIDR cidr n`, `AddIP ip n`, kwok's `Quote`
//! and `YAML v [indent]`, and the sprig functions templates use (`default`, `quote`, `toJson`,
//! `toYaml`, `add`, `sub`, `int`, `toString`, `upper`, `lower`, `trim`, `empty`, `ternary`,
//! `hasKey`, `list`, `dict`, `join`, `contains`, `hasPrefix`, `hasSuffix`, `replace`). They are
//! the names kwok's Stage templates offer; kwokctl keeps its own table because it does not link
//! the simulator.
//!
//! A template is parsed once per resource; `Name`, `Namespace` and `Index` read the object a
//! worker thread is rendering from a thread-local set around each render.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use anyhow::anyhow;
use gotmpl::Value as T;
use serde_json::Value;

/// A parsed template.
pub struct Template {
    inner: gotmpl::Template,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Template")
    }
}

struct Current {
    name: String,
    namespace: String,
    index: usize,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

impl Template {
    /// Parses `source`; the error is gotmpl's message.
    pub fn parse(source: &str) -> anyhow::Result<Self> {
        check(source).map_err(|e| anyhow!("template: {e}"))?;
        let inner = gotmpl::Template::new("resource")
            .funcs(FUNCS.clone())
            .parse(source)
            .map_err(|e| anyhow!("template: {e}"))?;
        Ok(Self { inner })
    }

    /// Renders object `index` named `name` in `namespace` from `params`.
    pub fn render(
        &self,
        params: &Value,
        name: &str,
        namespace: &str,
        index: usize,
    ) -> anyhow::Result<String> {
        let data = to_tmpl(params);
        CURRENT.with(|c| {
            *c.borrow_mut() = Some(Current {
                name: name.to_string(),
                namespace: namespace.to_string(),
                index,
            })
        });
        let out = self.inner.execute_to_string(&data);
        CURRENT.with(|c| *c.borrow_mut() = None);
        out.map_err(|e| anyhow!("template: {e}"))
    }
}

/// Words Go's parser knows besides functions.
const KEYWORDS: &[&str] = &[
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
    "nil", "true", "false", "eq", "ne", "lt", "le", "gt", "ge", "and", "or", "not", "print",
    "println", "printf", "len", "index", "slice", "call", "html", "js", "urlquery",
];

/// What Go rejects when parsing and gotmpl only later or never: an `if`/`range`/`with`/`define`/
/// `block` without `end`, an `end` too many, and functions that are not defined.
fn check(source: &str) -> Result<(), String> {
    let mut depth = 0i32;
    for action in actions(source) {
        let words = words(action);
        match words.first().map(String::as_str) {
            Some("if" | "range" | "with" | "define" | "block") => depth += 1,
            Some("end") => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return Err("unexpected {{end}}".into());
        }
        if let Some(w) = words
            .iter()
            .find(|w| !KEYWORDS.contains(&w.as_str()) && !FUNCS.contains_key(*w))
        {
            return Err(format!("function {w:?} not defined"));
        }
    }
    if depth > 0 {
        return Err("unexpected EOF".into());
    }
    Ok(())
}

/// The insides of `{{ ... }}` actions, comments left out.
fn actions(source: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let end = after.find("}}").unwrap_or(after.len());
        let inner = after[..end].trim_matches(|c: char| c == '-' || c.is_whitespace());
        if !inner.starts_with("/*") {
            out.push(inner);
        }
        rest = &after[end..];
    }
    out
}

/// Bare identifiers of an action (not fields, variables or inside strings), in order.
fn words(action: &str) -> Vec<String> {
    let chars: Vec<char> = action.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '`' | '\'') {
            i += 1;
            while i < chars.len() && chars[i] != c {
                i += if chars[i] == '\\' && c != '`' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let prev = if start == 0 { ' ' } else { chars[start - 1] };
            if !matches!(prev, '.' | '$') && !prev.is_alphanumeric() {
                out.push(chars[start..i].iter().collect());
            }
        } else {
            i += 1;
        }
    }
    out
}

fn current<R>(f: impl FnOnce(&Current) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

fn to_tmpl(v: &Value) -> T {
    match v {
        Value::Null => T::Nil,
        Value::Bool(b) => T::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => T::Int(i),
            (None, Some(u)) => T::Uint(u),
            _ => T::Float(n.as_f64().unwrap_or(0.0)),
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

fn to_json(v: &T) -> Value {
    match v {
        T::Bool(b) => Value::Bool(*b),
        T::Int(i) => Value::from(*i),
        T::Uint(u) => Value::from(*u),
        T::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        T::String(s) => Value::String(s.to_string()),
        T::List(l) => Value::Array(l.iter().map(to_json).collect()),
        T::Map(m) => Value::Object(m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect()),
        _ => Value::Null,
    }
}

fn arg(a: &[T], i: usize) -> String {
    match a.get(i) {
        None | Some(T::Nil) => String::new(),
        Some(v) => v.to_string(),
    }
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

fn string(s: impl Into<String>) -> T {
    T::String(s.into().into())
}

/// Block YAML for `v`; lines after the first are indented by `indent` levels of two spaces, so
/// `key:\n  {{ YAML .map 1 }}` nests.
fn yaml(v: &Value, indent: usize) -> gotmpl::Result<String> {
    let text = match v {
        Value::Object(m) if m.is_empty() => "{}".to_string(),
        Value::Array(a) if a.is_empty() => "[]".to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Object(_) | Value::Array(_) => serde_saphyr::to_string(v)
            .map_err(|e| gotmpl::TemplateError::Exec(format!("YAML: {e}")))?,
        other => other.to_string(),
    };
    let pad = format!("\n{}", "  ".repeat(indent));
    Ok(text.trim_end().replace('\n', &pad))
}

/// `AddCIDR`/`AddIP`: the base text and a non-negative offset.
fn offset_fn(name: &'static str, add: fn(&str, u128) -> anyhow::Result<String>) -> Func {
    Arc::new(move |a: &[T]| {
        let n = num(a.get(1));
        if n < 0.0 || n.fract() != 0.0 {
            return Err(exec(format!("{name}: bad offset {}", arg(a, 1))));
        }
        add(&arg(a, 0), n as u128)
            .map(string)
            .map_err(|e| exec(format!("{name}: {e}")))
    })
}

fn exec(message: String) -> gotmpl::TemplateError {
    gotmpl::TemplateError::Exec(message)
}

type Func = gotmpl::ValueFunc;
type Plain = fn(&[T]) -> T;

fn quote_json(a: &[T]) -> T {
    string(match a.first().map(to_json).unwrap_or(Value::Null) {
        Value::String(s) => Value::String(s).to_string(),
        Value::Null => "\"\"".to_string(),
        other => Value::String(other.to_string()).to_string(),
    })
}

fn default(a: &[T]) -> T {
    match a.get(1) {
        Some(v) if gotmpl::is_true(v) => v.clone(),
        _ => a.first().cloned().unwrap_or(T::Nil),
    }
}

fn dict(a: &[T]) -> T {
    let m = a
        .chunks(2)
        .map(|p| {
            let key = Arc::<str>::from(p[0].to_string().as_str());
            (key, p.get(1).cloned().unwrap_or(T::Nil))
        })
        .collect::<BTreeMap<_, _>>();
    T::Map(Arc::new(m))
}

fn join(a: &[T]) -> T {
    string(match a.get(1) {
        Some(T::List(l)) => l
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(&arg(a, 0)),
        Some(other) => other.to_string(),
        None => String::new(),
    })
}

/// Functions that cannot fail.
const PLAIN: &[(&str, Plain)] = &[
    ("Name", |_| {
        string(current(|c| c.name.clone()).unwrap_or_default())
    }),
    ("Namespace", |_| {
        string(current(|c| c.namespace.clone()).unwrap_or_default())
    }),
    ("Index", |_| {
        T::Int(current(|c| c.index as i64).unwrap_or(0))
    }),
    ("Quote", quote_json),
    ("quote", |a| {
        string(
            a.iter()
                .map(|v| Value::String(v.to_string()).to_string())
                .collect::<Vec<_>>()
                .join(" "),
        )
    }),
    ("toJson", |a| {
        string(a.first().map(to_json).unwrap_or(Value::Null).to_string())
    }),
    ("default", default),
    ("empty", |a| {
        T::Bool(!a.first().is_some_and(gotmpl::is_true))
    }),
    ("add", |a| number(a.iter().map(|v| num(Some(v))).sum())),
    ("sub", |a| number(num(a.first()) - num(a.get(1)))),
    ("int", |a| T::Int(num(a.first()) as i64)),
    ("toString", |a| string(arg(a, 0))),
    ("upper", |a| string(arg(a, 0).to_uppercase())),
    ("lower", |a| string(arg(a, 0).to_lowercase())),
    ("trim", |a| string(arg(a, 0).trim())),
    ("ternary", |a| {
        let pick = if a.get(2).is_some_and(gotmpl::is_true) {
            0
        } else {
            1
        };
        a.get(pick).cloned().unwrap_or(T::Nil)
    }),
    ("hasKey", |a| {
        T::Bool(matches!(a.first(), Some(T::Map(m)) if m.contains_key(arg(a, 1).as_str())))
    }),
    ("list", |a| T::List(a.to_vec().into())),
    ("dict", dict),
    ("join", join),
    ("contains", |a| T::Bool(arg(a, 1).contains(&arg(a, 0)))),
    ("hasPrefix", |a| T::Bool(arg(a, 1).starts_with(&arg(a, 0)))),
    ("hasSuffix", |a| T::Bool(arg(a, 1).ends_with(&arg(a, 0)))),
    ("replace", |a| {
        string(arg(a, 2).replace(&arg(a, 0), &arg(a, 1)))
    }),
];

static FUNCS: LazyLock<gotmpl::FuncMap> = LazyLock::new(|| {
    let mut m: gotmpl::FuncMap = PLAIN
        .iter()
        .map(|(name, f)| {
            let f = *f;
            let func: Func = Arc::new(move |a: &[T]| Ok(f(a)));
            (name.to_string(), func)
        })
        .collect();
    m.insert(
        "AddCIDR".into(),
        offset_fn("AddCIDR", crate::scale::add_cidr),
    );
    m.insert("AddIP".into(), offset_fn("AddIP", crate::scale::add_ip));
    for name in ["YAML", "toYaml"] {
        let func: Func = Arc::new(|a: &[T]| {
            let v = a.first().map(to_json).unwrap_or(Value::Null);
            let indent = num(a.get(1)).max(0.0) as usize;
            yaml(&v, indent).map(string)
        });
        m.insert(name.into(), func);
    }
    m
});

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str) -> String {
        Template::parse(t)
            .unwrap()
            .render(
                &json!({"a": {"b": "x"}, "n": 3, "list": [1, 2], "cidr": "10.0.0.0/24"}),
                "obj-000001",
                "ns",
                1,
            )
            .unwrap()
    }

    #[test]
    fn terms_and_functions() {
        assert_eq!(r("name: {{ Name }}"), "name: obj-000001");
        assert_eq!(r("{{Namespace}}/{{ Index }}"), "ns/1");
        assert_eq!(r("v: {{ .a.b }}"), "v: x");
        assert_eq!(r("v: {{ Quote .n }}"), "v: \"3\"");
        assert_eq!(r("v: {{ .n | Quote }}"), "v: \"3\"");
        assert_eq!(r("v: {{ .list | toJson }}"), "v: [1,2]");
        assert_eq!(r("v: {{ AddCIDR .cidr Index }}"), "v: 10.0.1.0/24");
        assert_eq!(
            r("v: {{ AddIP \"10.0.0.1\" (add Index 1) }}"),
            "v: 10.0.0.3"
        );
        assert_eq!(r("v: {{ .missing | default \"d\" }}"), "v: d");
        assert_eq!(r("a:\n  {{- \"b\" -}}\n  c"), "a:bc");
        assert_eq!(r("m:\n  {{ YAML .a 1 }}"), "m:\n  b: x");
    }

    #[test]
    fn control_structures() {
        assert_eq!(r("{{ if .a }}yes{{ else }}no{{ end }}"), "yes");
        assert_eq!(r("{{ if .missing }}yes{{ else }}no{{ end }}"), "no");
        assert_eq!(
            r("{{ range $i, $v := .list }}[{{ $i }}={{ $v }}]{{ end }}"),
            "[0=1][1=2]"
        );
        assert_eq!(r("{{ with .a }}{{ .b }}{{ end }}"), "x");
        assert_eq!(r("{{ or Namespace \"default\" }}"), "ns");
        assert_eq!(r("{{ index .a \"b\" }}"), "x");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{ Name").is_err());
        assert!(Template::parse("{{ if .a }}x").is_err());
        assert!(
            Template::parse("{{ Bogus }}")
                .unwrap_err()
                .to_string()
                .contains("Bogus")
        );
        assert!(Template::parse("x{{ end }}").is_err());
        assert!(Template::parse("{{ \"{{ if\" }}{{/* if */}}{{ $x := 1 }}{{ $x }}").is_ok());
        let t = Template::parse("{{ AddCIDR \"nope\" 1 }}").unwrap();
        assert!(t.render(&json!({}), "n", "", 0).is_err());
    }
}
