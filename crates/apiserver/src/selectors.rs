//! Label selectors (equality and set-based) and field selectors, parsed and matched as
//! kube-apiserver does.

use crate::objects::JsonAt;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::resources::ResourceType;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelRequirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub requirements: Vec<LabelRequirement>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

/// `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`, the shape of label names and values.
fn is_qualified_part(s: &str) -> bool {
    s.chars().all(is_name_char)
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// Checks a qualified name (`prefix/name` or `name`) as label keys require.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && let Err(e) = crate::validation::dns1123_subdomain(prefix)
    {
        return Err(format!("prefix part {e}"));
    }
    if name.is_empty() {
        return Err("name part must be non-empty".into());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".into());
    }
    if !is_qualified_part(name) {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".into());
    }
    Ok(())
}

/// Checks a label value.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if !is_qualified_part(value) {
        return Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into());
    }
    Ok(())
}

struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn skip_ws(&mut self) {
        while self.s[self.pos..].starts_with(' ') {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn eat(&mut self, t: &str) -> bool {
        if self.s[self.pos..].starts_with(t) {
            self.pos += t.len();
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(c, ' ' | ',' | '(' | ')' | '=' | '!' | '<' | '>') {
                break;
            }
            self.pos += c.len_utf8();
        }
        &self.s[start..self.pos]
    }
}

impl LabelSelector {
    /// Parses the `labelSelector` query syntax.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut lx = Lexer { s, pos: 0 };
        let mut requirements = Vec::new();
        lx.skip_ws();
        if lx.peek().is_none() {
            return Ok(Self::default());
        }
        loop {
            lx.skip_ws();
            let negated = lx.eat("!");
            lx.skip_ws();
            let key = lx.word().to_string();
            if key.is_empty() {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: identifier",
                    lx.peek().map(String::from).unwrap_or_default()
                ));
            }
            validate_label_key(&key).map_err(|e| {
                format!("unable to parse requirement: key: Invalid value: {key:?}: {e}")
            })?;
            lx.skip_ws();
            let req = if negated {
                LabelRequirement::DoesNotExist(key)
            } else if lx.peek().is_none() || lx.peek() == Some(',') {
                LabelRequirement::Exists(key)
            } else if lx.eat("==") || lx.eat("=") {
                lx.skip_ws();
                let v = lx.word().to_string();
                validate_label_value(&v).map_err(|e| {
                    format!(
                        "unable to parse requirement: values[0][{key}]: Invalid value: {v:?}: {e}"
                    )
                })?;
                LabelRequirement::Equals(key, v)
            } else if lx.eat("!=") {
                lx.skip_ws();
                let v = lx.word().to_string();
                validate_label_value(&v).map_err(|e| {
                    format!(
                        "unable to parse requirement: values[0][{key}]: Invalid value: {v:?}: {e}"
                    )
                })?;
                LabelRequirement::NotEquals(key, v)
            } else if lx.eat(">") || lx.eat("<") {
                let greater = lx.s[..lx.pos].ends_with('>');
                lx.skip_ws();
                let v = lx.word();
                let n: i64 = v.parse().map_err(|_| {
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer".to_string()
                })?;
                if greater {
                    LabelRequirement::GreaterThan(key, n)
                } else {
                    LabelRequirement::LessThan(key, n)
                }
            } else {
                let op = lx.word();
                let not_in = match op {
                    "in" => false,
                    "notin" => true,
                    other => {
                        return Err(format!(
                            "unable to parse requirement: found '{other}', expected: in, notin, =, ==, !=, gt, lt"
                        ));
                    }
                };
                lx.skip_ws();
                if !lx.eat("(") {
                    return Err("unable to parse requirement: found '', expected: '('".into());
                }
                let mut values = Vec::new();
                loop {
                    lx.skip_ws();
                    let v = lx.word().to_string();
                    validate_label_value(&v).map_err(|e| {
                        format!("unable to parse requirement: values[{}][{key}]: Invalid value: {v:?}: {e}", values.len())
                    })?;
                    values.push(v);
                    lx.skip_ws();
                    if lx.eat(",") {
                        continue;
                    }
                    if lx.eat(")") {
                        break;
                    }
                    return Err(
                        "unable to parse requirement: found '', expected: ',', ')' or identifier"
                            .into(),
                    );
                }
                values.sort();
                values.dedup();
                if not_in {
                    LabelRequirement::NotIn(key, values)
                } else {
                    LabelRequirement::In(key, values)
                }
            };
            requirements.push(req);
            lx.skip_ws();
            match lx.peek() {
                None => break,
                Some(',') => {
                    lx.pos += 1;
                }
                Some(c) => {
                    return Err(format!("found '{c}', expected: ',' or 'end of string'"));
                }
            }
        }
        Ok(Self { requirements })
    }

    /// Builds a selector from a `matchLabels`/`matchExpressions` LabelSelector object.
    pub fn from_object(sel: &Value) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in m {
                requirements.push(LabelRequirement::Equals(
                    k.clone(),
                    v.as_str().unwrap_or_default().to_string(),
                ));
            }
        }
        if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                requirements.push(match op {
                    "In" => LabelRequirement::In(key, values),
                    "NotIn" => LabelRequirement::NotIn(key, values),
                    "Exists" => LabelRequirement::Exists(key),
                    "DoesNotExist" => LabelRequirement::DoesNotExist(key),
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"));
                    }
                });
            }
        }
        Ok(Self { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether a label map satisfies every requirement.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            LabelRequirement::Equals(k, v) => get(k) == Some(v.as_str()),
            LabelRequirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            LabelRequirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            LabelRequirement::NotIn(k, vs) => get(k).is_none_or(|x| !vs.iter().any(|v| v == x)),
            LabelRequirement::Exists(k) => get(k).is_some(),
            LabelRequirement::DoesNotExist(k) => get(k).is_none(),
            LabelRequirement::GreaterThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x > *n),
            LabelRequirement::LessThan(k, n) => get(k)
                .and_then(|x| x.parse::<i64>().ok())
                .is_some_and(|x| x < *n),
        })
    }

    /// Matches the labels of an object.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches(obj.at("/metadata/labels").and_then(Value::as_object))
    }
}

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    pub requirements: Vec<FieldRequirement>,
}

fn unescape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn split_unescaped(s: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

impl FieldSelector {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        for term in split_unescaped(s, ',') {
            let (field, value, negated) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                ));
            };
            requirements.push(FieldRequirement {
                field: field.trim().to_string(),
                value: unescape_field_value(value),
                negated,
            });
        }
        Ok(Self { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The single `metadata.name=x` requirement, if that is all the selector asks.
    pub fn exact_name(&self) -> Option<&str> {
        match self.requirements.as_slice() {
            [r] if r.field == "metadata.name" && !r.negated => Some(&r.value),
            _ => None,
        }
    }

    /// Checks that every field is supported for the resource.
    pub fn check(&self, r: &ResourceType, label_selector: &str, raw: &str) -> Result<(), String> {
        let allowed = supported_fields(r);
        for req in &self.requirements {
            if !allowed.contains(&req.field.as_str()) {
                let list: Vec<String> = allowed.iter().map(|f| format!("{f:?}")).collect();
                return Err(format!(
                    "Unable to find {:?} that match label selector {label_selector:?}, field selector {raw:?}: {:?} is not a known field selector: only {}",
                    r.plural,
                    req.field,
                    list.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Adds the parts of an object [`FieldSelector::matches`] reads to `p`.
    pub fn project(&self, r: &ResourceType, p: &mut crate::objects::Projection) {
        for req in &self.requirements {
            match req.field.as_str() {
                "source" if r.plural == "events" => p.keep(["source", "component"]),
                field => p.keep(field.split('.')),
            }
        }
    }

    pub fn matches(&self, r: &ResourceType, obj: &Value) -> bool {
        self.requirements.iter().all(|req| {
            let actual = field_value(r, obj, &req.field);
            (actual == req.value) != req.negated
        })
    }
}

/// Field selectors a resource supports.
pub fn supported_fields(r: &ResourceType) -> Vec<&'static str> {
    let mut fields = vec!["metadata.name", "metadata.namespace"];
    let extra: &[&str] = match (r.group, r.plural) {
        ("", "pods") => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ("", "events") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("events.k8s.io", "events") => &[
            "regarding.kind",
            "regarding.namespace",
            "regarding.name",
            "regarding.uid",
            "regarding.apiVersion",
            "regarding.resourceVersion",
            "regarding.fieldPath",
            "reason",
            "reportingController",
            "type",
        ],
        ("", "secrets") => &["type"],
        ("", "namespaces") => &["status.phase"],
        ("", "nodes") => &["spec.unschedulable"],
        ("apps", "replicasets") | ("", "replicationcontrollers") => &["status.replicas"],
        ("batch", "jobs") => &["status.successful"],
        _ => &[],
    };
    fields.extend_from_slice(extra);
    fields
}

fn scalar_string(v: Option<&Value>, default: &str) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => default.to_string(),
    }
}

/// The value of a selectable field of an object, rendered as a string.
pub fn field_value(r: &ResourceType, obj: &Value, field: &str) -> String {
    match field {
        "spec.unschedulable" | "spec.hostNetwork" => {
            let ptr = format!("/{}", field.replace('.', "/"));
            scalar_string(obj.at(&ptr), "false")
        }
        "status.replicas" | "status.successful" => {
            let ptr = format!("/{}", field.replace('.', "/"));
            scalar_string(obj.at(&ptr), "0")
        }
        "status.podIPs" => obj
            .at("/status/podIPs")
            .and_then(Value::as_array)
            .map(|ips| {
                ips.iter()
                    .filter_map(|ip| ip.get("ip").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        "source" if r.plural == "events" => scalar_string(obj.at("/source/component"), ""),
        "metadata.namespace" if !r.namespaced => String::new(),
        _ => {
            let ptr = format!("/{}", field.replace('.', "/"));
            scalar_string(obj.at(&ptr), "")
        }
    }
}

/// A label map from a selector's `Equals` requirements (used to default template labels).
pub fn equality_labels(sel: &LabelSelector) -> BTreeMap<String, String> {
    sel.requirements
        .iter()
        .filter_map(|r| match r {
            LabelRequirement::Equals(k, v) => Some((k.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn labels(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_equality_and_set_requirements() {
        let s =
            LabelSelector::parse("app=web, tier!=db,env in (prod, staging),!legacy,team").unwrap();
        assert_eq!(
            s.requirements,
            vec![
                LabelRequirement::Equals("app".into(), "web".into()),
                LabelRequirement::NotEquals("tier".into(), "db".into()),
                LabelRequirement::In("env".into(), vec!["prod".into(), "staging".into()]),
                LabelRequirement::DoesNotExist("legacy".into()),
                LabelRequirement::Exists("team".into()),
            ]
        );
        let l = labels(json!({"app": "web", "env": "prod", "team": "a"}));
        assert!(s.matches(Some(&l)));
        let l2 = labels(json!({"app": "web", "env": "dev", "team": "a"}));
        assert!(!s.matches(Some(&l2)));
    }

    #[test]
    fn not_equals_and_notin_match_missing_keys() {
        let s = LabelSelector::parse("a!=x,b notin (y)").unwrap();
        assert!(s.matches(None));
        assert!(!s.matches(Some(&labels(json!({"b": "y"})))));
    }

    #[test]
    fn rejects_bad_selectors() {
        for bad in [
            "a in x", "=b", "a=b c", "a in (b", "a b", "a=-b-", "a/b/c=d",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn field_selectors() {
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        let sel = FieldSelector::parse("spec.nodeName=n1,status.phase!=Failed").unwrap();
        assert!(sel.check(pods, "", "").is_ok());
        let pod = json!({"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        assert!(sel.matches(pods, &pod));
        let failed = json!({"spec": {"nodeName": "n1"}, "status": {"phase": "Failed"}});
        assert!(!sel.matches(pods, &failed));
        let bad = FieldSelector::parse("spec.foo=bar").unwrap();
        let err = bad.check(pods, "", "spec.foo=bar").unwrap_err();
        assert!(
            err.contains("\"spec.foo\" is not a known field selector"),
            "{err}"
        );
        let nodes = crate::resources::find("", "v1", "nodes").unwrap();
        let sel = FieldSelector::parse("spec.unschedulable=false").unwrap();
        assert!(sel.matches(nodes, &json!({"spec": {}})));
        let ev = crate::resources::find("", "v1", "events").unwrap();
        let sel =
            FieldSelector::parse("involvedObject.namespace=,involvedObject.kind=Node").unwrap();
        assert!(sel.matches(ev, &json!({"involvedObject": {"kind": "Node"}})));
    }

    fn label_value() -> impl Strategy<Value = String> {
        "[a-z0-9]([a-z0-9.-]{0,8}[a-z0-9])?"
    }

    proptest! {
        #[test]
        fn equality_selector_matches_exactly_its_value(k in "[a-z]{1,8}", v in label_value(), other in label_value()) {
            let s = LabelSelector::parse(&format!("{k}={v}")).unwrap();
            let l = labels(json!({k.clone(): other.clone()}));
            prop_assert_eq!(s.matches(Some(&l)), v == other);
            let neg = LabelSelector::parse(&format!("{k}!={v}")).unwrap();
            prop_assert_eq!(neg.matches(Some(&l)), v != other);
        }

        #[test]
        fn in_is_the_complement_of_notin_when_key_present(k in "[a-z]{1,8}", vs in proptest::collection::vec(label_value(), 1..4), x in label_value()) {
            let list = vs.join(",");
            let a = LabelSelector::parse(&format!("{k} in ({list})")).unwrap();
            let b = LabelSelector::parse(&format!("{k} notin ({list})")).unwrap();
            let l = labels(json!({k.clone(): x}));
            prop_assert_ne!(a.matches(Some(&l)), b.matches(Some(&l)));
        }

        #[test]
        fn parser_never_panics(s in ".{0,40}") {
            let _ = LabelSelector::parse(&s);
            let _ = FieldSelector::parse(&s);
        }
    }
}
