//! The leading plain path of a jq expression (`.a.b`, `."a.b"`, `.["a"]`, `.[0]`, `.[]`) and how
//! it is walked on a `serde_json` value without converting it.
//!
//! An expression splits into `prefix | rest` only when the prefix is followed by the end of the
//! expression or by a top-level `|` (not `|=`): pipe binds loosest in jq, so `P | R` is exactly
//! "run R on each output of P". Anything else after the path (`==`, `//`, `as`, `?`, `,` ...)
//! makes the whole expression go to jaq.

use std::borrow::Cow;

use serde_json::Value;

/// One step of a plain path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Field(String),
    Index(i64),
    Iterate,
}

/// The leading plain path and what follows its `|` (`None` when the path is the whole
/// expression; the whole source when there is no usable prefix).
pub fn split(source: &str) -> (Vec<Step>, Option<&str>) {
    let text = source.trim();
    if text == "." {
        return (Vec::new(), None);
    }
    let (steps, used) = steps(text);
    if steps.is_empty() {
        return (Vec::new(), Some(source));
    }
    let after = text[used..].trim_start();
    if after.is_empty() {
        return (steps, None);
    }
    match after.strip_prefix('|') {
        Some(rest) if !rest.starts_with('=') && !rest.trim().is_empty() => (steps, Some(rest)),
        _ => (Vec::new(), Some(source)),
    }
}

/// The plain path `source` starts with.
pub fn leading(source: &str) -> Vec<Step> {
    steps(source.trim()).0
}

/// A plain-path assignment `PATH = RHS`: its steps and the right-hand side.
pub fn assignment(source: &str) -> Option<(Vec<Step>, &str)> {
    let text = source.trim();
    let (steps, used) = steps(text);
    if steps.is_empty() || steps.contains(&Step::Iterate) {
        return None;
    }
    let rhs = text[used..].trim_start().strip_prefix('=')?;
    if rhs.starts_with('=') || rhs.trim().is_empty() {
        return None;
    }
    Some((steps, rhs))
}

/// Sets `value` at `steps` in `target`, creating objects and growing arrays on the way, as jq's
/// `PATH = value` does on null. A negative index counts from the end; one before the start fails.
pub fn set(target: &mut Value, steps: &[Step], value: Value) -> Result<(), String> {
    let mut cur = target;
    for step in steps {
        cur = match step {
            Step::Field(k) => {
                if cur.is_null() {
                    *cur = Value::Object(Default::default());
                }
                let Value::Object(m) = cur else {
                    return Err(format!("cannot index {} with {k:?}", kind(cur)));
                };
                m.entry(k.clone()).or_insert(Value::Null)
            }
            Step::Index(i) => {
                if cur.is_null() {
                    *cur = Value::Array(Vec::new());
                }
                let Value::Array(a) = cur else {
                    return Err(format!("cannot index {} with number", kind(cur)));
                };
                let idx = if *i < 0 { a.len() as i64 + i } else { *i };
                let idx = usize::try_from(idx).map_err(|_| "out of bounds negative array index")?;
                if a.len() <= idx {
                    a.resize(idx + 1, Value::Null);
                }
                &mut a[idx]
            }
            Step::Iterate => return Err("cannot assign through .[]".into()),
        };
    }
    *cur = value;
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses steps from the start of `text`; returns them and how many bytes they took.
fn steps(text: &str) -> (Vec<Step>, usize) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        let mut j = i;
        if b.get(j) == Some(&b'.') {
            j += 1;
            if let Some((name, end)) = ident(text, j).or_else(|| string(text, j)) {
                out.push(Step::Field(name));
                i = end;
                continue;
            }
        } else if out.is_empty() {
            return (out, start);
        }
        // `[...]` directly after a step, or `.[...]`.
        match bracket(text, j) {
            Some((step, end)) if j > start || !out.is_empty() => {
                out.push(step);
                i = end;
            }
            _ => return (out, start),
        }
    }
}

fn ident(text: &str, at: usize) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let first = *b.get(at)?;
    if !(first.is_ascii_alphabetic() || first == b'_') {
        return None;
    }
    let end = b[at..]
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .map_or(b.len(), |n| at + n);
    // `.a::b` is a module path, not a field.
    if text[end..].starts_with("::") {
        return None;
    }
    Some((text[at..end].to_string(), end))
}

/// A double-quoted string without escapes or interpolation.
fn string(text: &str, at: usize) -> Option<(String, usize)> {
    let rest = text.get(at..)?.strip_prefix('"')?;
    let close = rest.find(['"', '\\'])?;
    if rest.as_bytes()[close] != b'"' {
        return None;
    }
    Some((rest[..close].to_string(), at + 1 + close + 1))
}

fn bracket(text: &str, at: usize) -> Option<(Step, usize)> {
    let inner_start = at + text.get(at..)?.strip_prefix('[').map(|_| 1)?;
    let close = inner_start + text[inner_start..].find(']')?;
    let inner = text[inner_start..close].trim();
    let step = if inner.is_empty() {
        Step::Iterate
    } else if let Some((name, end)) = string(inner, 0) {
        if end != inner.len() {
            return None;
        }
        Step::Field(name)
    } else {
        let digits = inner.strip_prefix('-').unwrap_or(inner);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        Step::Index(inner.parse().ok()?)
    };
    Some((step, close + 1))
}

/// Walks `steps` from `input`; `None` when a step fails as it would in jq (a field of a
/// string, iterating a number, ...).
pub fn walk<'a>(steps: &[Step], input: &'a Value) -> Option<Vec<Cow<'a, Value>>> {
    let mut current: Vec<&'a Value> = vec![input];
    for step in steps {
        let mut next = Vec::with_capacity(current.len());
        for v in current {
            apply(step, v, &mut next)?;
        }
        current = next;
    }
    Some(current.into_iter().map(Cow::Borrowed).collect())
}

static NULL: Value = Value::Null;

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) -> Option<()> {
    match (step, v) {
        (Step::Field(k), Value::Object(m)) => out.push(m.get(k).unwrap_or(&NULL)),
        (Step::Field(_) | Step::Index(_), Value::Null) => out.push(&NULL),
        (Step::Index(i), Value::Array(a)) => {
            let idx = if *i < 0 { a.len() as i64 + i } else { *i };
            out.push(
                usize::try_from(idx)
                    .ok()
                    .and_then(|x| a.get(x))
                    .unwrap_or(&NULL),
            );
        }
        (Step::Iterate, Value::Array(a)) => out.extend(a.iter()),
        (Step::Iterate, Value::Object(m)) => out.extend(m.values()),
        _ => return None,
    }
    Some(())
}
