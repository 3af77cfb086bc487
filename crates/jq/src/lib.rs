//! jq expressions over `serde_json` values: Stage selector keys, `*From` expressions and
//! `kwokctl scale --param` assignments.
//!
//! Expressions are compiled once by [jaq](https://github.com/01mf02/jaq) (`jaq-core`, `jaq-std`,
//! `jaq-json`), so the whole jq language works: `map`, `select`, `to_entries`, `test`, `//`,
//! `ascii_downcase`, path assignment (`.a.b = "x"`, `|=`) and so on. An expression jaq cannot
//! parse or compile is rejected when it is loaded.
//!
//! Running jaq means converting the input to jaq's own value type. Most expressions a Stage uses
//! start with a plain path (`.status.phase`, `.metadata.annotations["x"]`,
//! `.status.conditions.[] | select(...)`), so the leading path is walked directly on the
//! `serde_json` value and only what it reaches is handed to jaq; an expression that is nothing but
//! a plain path never touches jaq at run time (see [`Query::eval`]).
//!
//! Like jq, an expression produces a stream of values. An evaluation error (for example indexing
//! a string, or `error`/`halt`) produces no values at all, which is how upstream treats errors.

mod convert;
mod path;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Vars, data};
use jaq_json::Val;
use serde_json::Value;

use self::path::Step;

type Data = data::JustLut<Val>;
type Filter = jaq_core::compile::Filter<jaq_core::Native<Data>>;

/// A compiled jq expression.
#[derive(Clone)]
pub struct Query {
    source: String,
    /// Walked on the `serde_json` input first.
    prefix: Vec<Step>,
    /// Run by jaq on each value the prefix reaches; `None` when the prefix is the whole expression.
    rest: Option<Arc<Filter>>,
    /// The whole expression, for updates. Kept from parsing when it is also `rest`; otherwise
    /// parsing only checks it and the first update compiles it again (Stage selectors never
    /// update, and each compiled filter carries jaq's standard library).
    whole: OnceLock<Arc<Filter>>,
    /// A plain-path assignment: the path and the right-hand side.
    assign: Option<(Vec<Step>, Arc<Filter>)>,
}

impl fmt::Debug for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Query({:?})", self.source)
    }
}

impl PartialEq for Query {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Query {
    /// Compiles an expression; the error says what jaq did not understand.
    pub fn parse(source: &str) -> Result<Query, String> {
        // The whole expression is always compiled, so that the split below never accepts what
        // jq would reject.
        let checked = compiled(source)?;
        let (prefix, rest) = path::split(source);
        let whole = OnceLock::new();
        let rest = match rest {
            None => None,
            Some(r) if r.len() == source.len() => {
                let _ = whole.set(checked.clone());
                Some(checked)
            }
            Some(r) => Some(compiled(r)?),
        };
        let assign = match path::assignment(source) {
            Some((steps, rhs)) => Some((steps, compiled(rhs)?)),
            None => None,
        };
        Ok(Query {
            source: source.to_string(),
            prefix,
            rest,
            whole,
            assign,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The object fields the expression reads below, when it reads only under one path
    /// (`["status", "conditions"]` for `.status.conditions.[] | select(...) | .status`): the
    /// fields its leading plain part walks before anything else. `None` when it may read
    /// anything (no leading field, as `.`, `[.a, .b]` or `.a as $x | .b`).
    pub fn reads_under(&self) -> Option<Vec<&str>> {
        let fields: Vec<&str> = self
            .prefix
            .iter()
            .map_while(|step| match step {
                Step::Field(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        (!fields.is_empty()).then_some(fields)
    }

    /// Whether the expression is a plain path, evaluated without jaq.
    pub fn is_plain_path(&self) -> bool {
        self.rest.is_none()
    }

    /// Runs the expression; an evaluation error yields no values.
    pub fn eval<'a>(&self, input: &'a Value) -> Vec<Cow<'a, Value>> {
        let Some(reached) = path::walk(&self.prefix, input) else {
            return Vec::new();
        };
        let Some(rest) = &self.rest else {
            return reached;
        };
        let mut out = Vec::new();
        for v in reached {
            match run(rest, &v) {
                Some(values) => out.extend(values.into_iter().map(Cow::Owned)),
                None => return Vec::new(),
            }
        }
        out
    }

    /// The first non-null result.
    pub fn first(&self, input: &Value) -> Option<Value> {
        self.eval(input)
            .into_iter()
            .find(|v| !v.is_null())
            .map(Cow::into_owned)
    }

    /// Runs the expression on `input` and keeps the first result as the new value of `input`:
    /// `.a.b = "x"` or `.spec.replicas |= . + 1` update it. Errors say what jq said.
    ///
    /// A plain-path assignment (`.a.b[1]."c.d" = <expr>`) sets the value itself, creating objects
    /// and arrays on the way as jq does (jaq refuses to index null with a number).
    pub fn update(&self, input: &mut Value) -> Result<(), String> {
        if let Some((steps, rhs)) = &self.assign {
            let value = run_checked(rhs, input)?
                .into_iter()
                .next()
                .ok_or_else(|| format!("jq expression {:?} produced no value", self.source))?;
            return path::set(input, steps, value);
        }
        let whole = match self.whole.get() {
            Some(whole) => whole.clone(),
            None => {
                let whole = compiled(&self.source)?;
                let _ = self.whole.set(whole.clone());
                whole
            }
        };
        let mut out = run_checked(&whole, input)?;
        if out.is_empty() {
            return Err(format!("jq expression {:?} produced no value", self.source));
        }
        *input = out.swap_remove(0);
        Ok(())
    }
}

/// The first field a path expression starts with: `nodeName` for `.nodeName = "x"` or
/// `.["nodeName"] |= 1`.
pub fn leading_field(source: &str) -> Option<String> {
    match path::leading(source).first() {
        Some(Step::Field(k)) => Some(k.clone()),
        _ => None,
    }
}

/// The string form a selector compares with `values`: strings as they are, booleans and
/// numbers as JSON prints them; other values have none.
pub fn comparable(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The compiled filter of `source`, shared with every other query of the same text alive: the
/// default Stages repeat a handful of expressions, and each compiled filter carries jaq's
/// standard library (tens of KiB). An entry goes with the last query holding it.
fn compiled(source: &str) -> Result<Arc<Filter>, String> {
    static SHARED: Mutex<Option<HashMap<String, Weak<Filter>>>> = Mutex::new(None);
    let lookup = |shared: &Option<HashMap<String, Weak<Filter>>>| {
        shared.as_ref()?.get(source).and_then(Weak::upgrade)
    };
    if let Some(filter) = lookup(&SHARED.lock().unwrap_or_else(PoisonError::into_inner)) {
        return Ok(filter);
    }
    let filter = Arc::new(compile(source)?);
    let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(other) = lookup(&shared) {
        return Ok(other);
    }
    let map = shared.get_or_insert_with(HashMap::new);
    map.retain(|_, filter| filter.strong_count() > 0);
    map.insert(source.to_owned(), Arc::downgrade(&filter));
    Ok(filter)
}

fn compile(source: &str) -> Result<Filter, String> {
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs());
    let funs = jaq_core::funs()
        .chain(jaq_std::funs())
        .chain(jaq_json::funs());
    let arena = Arena::default();
    let program = File {
        code: source,
        path: (),
    };
    let modules = Loader::new(defs)
        .load(&arena, program)
        .map_err(|errs| load_error(source, errs))?;
    jaq_core::Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errs| {
            let names: Vec<String> = errs
                .into_iter()
                .flat_map(|(_, e)| e)
                .map(|(name, kind)| format!("{} {name}", kind.as_str()))
                .collect();
            format!(
                "invalid jq expression {source:?}: undefined {}",
                names.join(", ")
            )
        })
}

fn load_error(source: &str, errs: jaq_core::load::Errors<&str, ()>) -> String {
    use jaq_core::load::Error;
    let at = |found: &str| source.len().saturating_sub(found.len());
    let parts: Vec<String> = errs
        .into_iter()
        .flat_map(|(_, e)| match e {
            Error::Io(v) => v.into_iter().map(|(p, m)| format!("{p}: {m}")).collect(),
            Error::Lex(v) => v
                .into_iter()
                .map(|(exp, found)| format!("expected {} at offset {}", exp.as_str(), at(found)))
                .collect::<Vec<_>>(),
            Error::Parse(v) => v
                .into_iter()
                .map(|(exp, found)| format!("expected {} at offset {}", exp.as_str(), at(found)))
                .collect(),
        })
        .collect();
    format!("invalid jq expression {source:?}: {}", parts.join("; "))
}

/// Runs `filter`; `None` when it fails.
fn run(filter: &Filter, input: &Value) -> Option<Vec<Value>> {
    run_checked(filter, input).ok()
}

fn run_checked(filter: &Filter, input: &Value) -> Result<Vec<Value>, String> {
    let ctx = Ctx::<Data>::new(&filter.lut, Vars::new([]));
    let mut out = Vec::new();
    for v in filter.id.run((ctx, convert::to_val(input))) {
        match v {
            Ok(v) => out.push(convert::from_val(&v)),
            Err(e) => {
                return Err(match e.get_err() {
                    Ok(err) => err.to_string(),
                    Err(_) => "halt".to_string(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
