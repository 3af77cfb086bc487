//! The leading plain part of a jq expression and how it is walked on a `serde_json` value without
//! converting it: paths (`.a.b`, `."a.b"`, `.["a"]`, `.[0]`, `.[]`) and equality selections
//! (`select(.type == "Ready")`, `!=`, with a string, boolean or null literal), joined by `|`.
//! That is what Stage selectors run on every object (`.status.conditions.[] | select( .type ==
//! "Ready" ) | .status`), so it stays off jaq's value conversion.
//!
//! An expression splits into `prefix | rest` only at a top-level `|` (not `|=`): pipe binds
//! loosest in jq, so `P | R` is exactly "run R on each output of P". A segment that is anything
//! else (`.a == 1`, `.a // 1`, `.a as $x`, `.a?` ...) and all that follows go to jaq.

use std::borrow::Cow;

use serde_json::Value;

/// One step of a plain path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Field(String),
    Index(i64),
    Iterate,
    /// `select(PATH == LITERAL)` (or `!=` when `equal` is false).
    Select {
        path: Vec<Step>,
        literal: Value,
        equal: bool,
    },
}

/// The leading plain part and what follows its `|` (`None` when the plain part is the whole
/// expression; the whole source when there is no usable prefix).
pub fn split(source: &str) -> (Vec<Step>, Option<&str>) {
    let text = source.trim();
    if text == "." {
        return (Vec::new(), None);
    }
    let mut prefix = Vec::new();
    let mut at = 0;
    loop {
        let segment = text[at..].trim_start();
        let start = text.len() - segment.len();
        let parsed = select(segment).or_else(|| {
            let (steps, used) = steps(segment);
            (!steps.is_empty()).then_some((steps, used))
        });
        let Some((steps, used)) = parsed else {
            return rest_from(prefix, source, text, start);
        };
        let after = segment[used..].trim_start();
        if after.is_empty() {
            prefix.extend(steps);
            return (prefix, None);
        }
        match after.strip_prefix('|') {
            Some(rest) if !rest.starts_with('=') && !rest.trim().is_empty() => {
                prefix.extend(steps);
                at = text.len() - rest.len();
            }
            _ => return rest_from(prefix, source, text, start),
        }
    }
}

/// `prefix | <text from start>`, or the whole source for jaq when there is no prefix.
fn rest_from<'a>(
    prefix: Vec<Step>,
    source: &'a str,
    text: &'a str,
    start: usize,
) -> (Vec<Step>, Option<&'a str>) {
    if prefix.is_empty() {
        (prefix, Some(source))
    } else {
        (prefix, Some(&text[start..]))
    }
}

/// `select(PATH == LITERAL)` / `select(PATH != LITERAL)` at the start of `text`, with a string,
/// boolean or null literal (numbers compare by value in jq, so they go to jaq).
fn select(text: &str) -> Option<(Vec<Step>, usize)> {
    let inner = text
        .strip_prefix("select")?
        .trim_start()
        .strip_prefix('(')?;
    let body = inner.trim_start();
    let (path, used) = steps(body);
    if path.is_empty() {
        return None;
    }
    let op = body[used..].trim_start();
    let (equal, literal_text) = match (op.strip_prefix("=="), op.strip_prefix("!=")) {
        (Some(rest), _) => (true, rest),
        (_, Some(rest)) => (false, rest),
        _ => return None,
    };
    let literal_text = literal_text.trim_start();
    let mut values = serde_json::Deserializer::from_str(literal_text).into_iter::<Value>();
    let literal = values.next()?.ok()?;
    if !matches!(literal, Value::String(_) | Value::Bool(_) | Value::Null) {
        return None;
    }
    let close = literal_text[values.byte_offset()..].trim_start();
    let after = close.strip_prefix(')')?;
    Some((
        vec![Step::Select {
            path,
            literal,
            equal,
        }],
        text.len() - after.len(),
    ))
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
            Step::Iterate | Step::Select { .. } => {
                return Err("cannot assign through .[] or select".into());
            }
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
        (
            Step::Select {
                path,
                literal,
                equal,
            },
            v,
        ) => {
            for found in walk(path, v)? {
                if (*found == *literal) == *equal {
                    out.push(v);
                }
            }
        }
        _ => return None,
    }
    Some(())
}
