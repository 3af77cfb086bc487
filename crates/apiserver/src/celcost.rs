//! The cost of CRD validation rules (`x-kubernetes-validations`) in kube-apiserver's cost units.
//!
//! This module owns three things kube-apiserver 1.33 does with the cost of a rule:
//!
//! * the **static estimate** checked when a CRD is written: each rule's worst-case cost, from
//!   the sizes its schema allows, times the number of times the rule can run in one object,
//!   must stay within [`STATIC_RULE_LIMIT`], and all rules of a schema together within
//!   [`STATIC_CRD_LIMIT`] (`check_schema`);
//! * the **per-evaluation limit** ([`PER_CALL_LIMIT`]) and the **per-object budget**
//!   ([`RUNTIME_BUDGET`]) applied when an object is validated (`Plan::check`).
//!
//! It is written by hand because no crate implements the Kubernetes cost model: `kube-cel` has
//! only a coarse heuristic (a fixed 1000 items for every unbounded list, the first list of the
//! schema for every comprehension), which refuses rules kube-apiserver accepts and accepts rules
//! it refuses. The estimator follows cel-go's checker (`checker/cost.go` of cel-go 0.23, which
//! kube-apiserver 1.33 uses) over the parsed rule, with kube-apiserver's size estimates for the
//! schema (`SchemaDeclType`: `maxItems`, `maxProperties` and `maxLength` where set, else as many
//! elements as fit in a 3 MiB request given each element's smallest serialized size) and its
//! costs for the Kubernetes function libraries. The `cel` crate has no type checker, so the types
//! cel-go would infer are derived here from the schema and from the operators and functions used;
//! where they cannot be known, cel-go's rule for dynamic values applies (all overloads considered,
//! unknown sizes are unbounded).
//!
//! The `cel` interpreter can neither be interrupted nor metered while it runs. The runtime limits
//! are therefore checked before a rule runs, with the same estimator applied to the sizes the
//! object actually has: an upper bound of what kube-apiserver's cost tracker would charge (the
//! same figure when no comprehension stops early).

use std::collections::BTreeMap;

use kube_cel::cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use serde_json::{Value, json};

use crate::errors::Cause;

/// kube-apiserver's cost limit for one evaluation of one rule (`PerCallLimit`).
pub const PER_CALL_LIMIT: u64 = 1_000_000;
/// kube-apiserver's cost budget for all rule evaluations of one object (`RuntimeCELCostBudget`).
pub const RUNTIME_BUDGET: u64 = 10_000_000;
/// The largest estimated cost of one rule a CRD may declare (`StaticEstimatedCostLimit`).
pub const STATIC_RULE_LIMIT: u64 = 10_000_000;
/// The largest estimated cost of all rules of one schema (`StaticEstimatedCRDCostLimit`).
pub const STATIC_CRD_LIMIT: u64 = 100_000_000;
/// The request size kube-apiserver's estimates assume (`MaxRequestSizeBytes`).
const MAX_REQUEST_SIZE: u64 = 3 * 1024 * 1024;

// cel-go's unit costs (`common/cost.go`).
const LIST_CREATE_COST: u64 = 10;
const MAP_CREATE_COST: u64 = 30;
const STRUCT_CREATE_COST: u64 = 40;
const STRING_TRAVERSAL: f64 = 0.1;
const REGEX_LENGTH: f64 = 0.25;
/// The longest regular expression of a named format (`MaxNameFormatRegexSize`).
const MAX_NAME_FORMAT_REGEX: f64 = 128.0;
/// The longest format string (`MaxFormatSize`).
const MAX_FORMAT_SIZE: u64 = 64;

/// A range of sizes or costs, as cel-go's `SizeEstimate` and `CostEstimate`; arithmetic
/// saturates at `u64::MAX` like cel-go's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u64,
    pub max: u64,
}

impl Range {
    const ZERO: Range = Range::fixed(0);
    const ONE: Range = Range::fixed(1);
    const UNKNOWN: Range = Range {
        min: 0,
        max: u64::MAX,
    };

    const fn fixed(v: u64) -> Range {
        Range { min: v, max: v }
    }

    fn add(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_add(o.min),
            max: self.max.saturating_add(o.max),
        }
    }

    fn mul(self, o: Range) -> Range {
        Range {
            min: self.min.saturating_mul(o.min),
            max: self.max.saturating_mul(o.max),
        }
    }

    /// Times a cost factor, rounded up (`MultiplyByCostFactor`).
    fn factor(self, f: f64) -> Range {
        Range {
            min: times_factor(self.min, f),
            max: times_factor(self.max, f),
        }
    }

    fn union(self, o: Range) -> Range {
        Range {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
        }
    }
}

fn times_factor(x: u64, f: f64) -> u64 {
    let xf = x as f64;
    if xf > 0.0 && f > 0.0 && xf > u64::MAX as f64 / f {
        return u64::MAX;
    }
    let ceil = (xf * f).ceil();
    if ceil >= 18_446_744_073_709_551_616.0 {
        u64::MAX
    } else {
        ceil as u64
    }
}

/// What kube-apiserver declares to CEL for a schema node (`DeclType`): its kind, the most
/// elements (items, properties, bytes of a string) it may have, and its smallest serialized size.
#[derive(Debug, Clone)]
pub struct Decl {
    kind: DeclKind,
    max: u64,
    min_size: u64,
}

#[derive(Debug, Clone)]
enum DeclKind {
    /// Fields by their CEL name, with the JSON name they come from.
    Object(BTreeMap<String, (String, Decl)>),
    List(Box<Decl>),
    /// A map with string keys (`additionalProperties`).
    Map(Box<Decl>),
    Str,
    Bytes,
    Duration,
    Timestamp,
    Bool,
    Int,
    Double,
    /// `x-kubernetes-int-or-string`.
    Dyn,
}

impl Decl {
    const fn simple(kind: DeclKind, min_size: u64) -> Decl {
        Decl {
            kind,
            max: 0,
            min_size,
        }
    }

    /// The declaration of a schema node, or `None` when kube-apiserver does not expose it to
    /// CEL. `resource_root` is set for the root of a custom resource and embedded resources.
    pub fn of(schema: &Value, resource_root: bool) -> Option<Decl> {
        let m = schema.as_object()?;
        if m.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
            return Some(Decl {
                kind: DeclKind::Dyn,
                max: MAX_REQUEST_SIZE - 2,
                min_size: 1,
            });
        }
        let int = |key: &str| -> Option<u64> {
            m.get(key).and_then(Value::as_i64).map(|v| v.max(0) as u64)
        };
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        match ty {
            "array" => {
                let items = m.get("items")?;
                let item = Decl::of(items, embedded(items))?;
                let max = int("maxItems").unwrap_or((MAX_REQUEST_SIZE - 2) / (item.min_size + 1));
                Some(Decl {
                    kind: DeclKind::List(Box::new(item)),
                    max,
                    min_size: 2,
                })
            }
            "object" => {
                if let Some(ap) = m.get("additionalProperties").filter(|a| a.is_object()) {
                    let value = Decl::of(ap, embedded(ap))?;
                    let max = int("maxProperties")
                        .unwrap_or((MAX_REQUEST_SIZE - 2) / (value.min_size + 6));
                    return Some(Decl {
                        kind: DeclKind::Map(Box::new(value)),
                        max,
                        min_size: 2,
                    });
                }
                let required: Vec<&str> = m
                    .get("required")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let mut props: Vec<(&str, &Value)> = m
                    .get("properties")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.as_str(), v))
                    .collect();
                if resource_root {
                    with_type_and_object_meta(&mut props);
                }
                let mut fields = BTreeMap::new();
                let mut min_size = 2u64;
                for (name, prop) in props {
                    let Some(decl) = Decl::of(prop, embedded(prop)) else {
                        continue;
                    };
                    if required.contains(&name) && prop.get("default").is_none() {
                        min_size = min_size
                            .saturating_add(name.len() as u64)
                            .saturating_add(decl.min_size)
                            .saturating_add(4);
                    }
                    if let Some(cel_name) = escape(name) {
                        fields.insert(cel_name, (name.to_string(), decl));
                    }
                }
                Some(Decl {
                    kind: DeclKind::Object(fields),
                    max: 0,
                    min_size,
                })
            }
            "string" => {
                let per_request = || match m.get("format").and_then(Value::as_str) {
                    Some("duration") => 32,
                    Some("date") => 12,
                    Some("date-time") => 32,
                    _ => MAX_REQUEST_SIZE - 2,
                };
                let (kind, min_size, max) = match m.get("format").and_then(Value::as_str) {
                    Some("byte") => (
                        DeclKind::Bytes,
                        2,
                        int("maxLength").unwrap_or_else(per_request),
                    ),
                    Some("duration") => (DeclKind::Duration, 3, per_request()),
                    Some("date") => (DeclKind::Timestamp, 12, per_request()),
                    Some("date-time") => (DeclKind::Timestamp, 21, per_request()),
                    _ => {
                        let max = match int("maxLength") {
                            // maxLength counts characters, sizes count bytes (up to 4 each).
                            Some(l) => l.saturating_mul(4),
                            None => match m.get("enum").and_then(Value::as_array) {
                                Some(values) if !values.is_empty() => values
                                    .iter()
                                    .filter_map(Value::as_str)
                                    .map(|s| s.len() as u64)
                                    .max()
                                    .unwrap_or(0),
                                _ => per_request(),
                            },
                        };
                        (DeclKind::Str, 2, max)
                    }
                };
                Some(Decl {
                    kind,
                    max,
                    min_size,
                })
            }
            "boolean" => Some(Decl::simple(DeclKind::Bool, 4)),
            "number" => Some(Decl::simple(DeclKind::Double, 1)),
            "integer" => Some(Decl::simple(DeclKind::Int, 1)),
            _ => None,
        }
    }

    fn ty(&self) -> Ty<'_> {
        match &self.kind {
            DeclKind::Object(fields) => Ty::Object(fields),
            DeclKind::List(item) => Ty::List(Box::new(item.ty())),
            DeclKind::Map(value) => Ty::Map(Box::new(Ty::Str), Box::new(value.ty())),
            DeclKind::Str => Ty::Str,
            DeclKind::Bytes => Ty::Bytes,
            DeclKind::Duration => Ty::Duration,
            DeclKind::Timestamp => Ty::Timestamp,
            DeclKind::Bool => Ty::Bool,
            DeclKind::Int => Ty::Int,
            DeclKind::Double => Ty::Double,
            DeclKind::Dyn => Ty::Dyn,
        }
    }

    /// The declaration a path step (field name, `@items`, `@values`, `@keys`) leads to.
    fn step(&self, step: &str) -> Option<Step<'_>> {
        match (&self.kind, step) {
            (DeclKind::List(d) | DeclKind::Map(d), "@items" | "@values") => Some(Step::Decl(d)),
            (DeclKind::Map(_), "@keys") => Some(Step::Key),
            (DeclKind::Object(fields), name) if !name.starts_with('@') => {
                fields.get(name).map(|(_, d)| Step::Decl(d))
            }
            _ => None,
        }
    }
}

enum Step<'a> {
    Decl(&'a Decl),
    /// A map key: a string kube declares without a size.
    Key,
}

fn embedded(schema: &Value) -> bool {
    schema.get("x-kubernetes-embedded-resource") == Some(&json!(true))
}

/// `apiVersion`, `kind` and `metadata.name`/`generateName` are visible at the root of every
/// resource (`WithTypeAndObjectMeta`).
fn with_type_and_object_meta(props: &mut Vec<(&str, &Value)>) {
    static TYPE_META: std::sync::LazyLock<[Value; 2]> = std::sync::LazyLock::new(|| {
        [
            json!({"type": "string"}),
            json!({"type": "object", "properties": {
                "name": {"type": "string"}, "generateName": {"type": "string"}}}),
        ]
    });
    let get = |k: &str| props.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let is = |v: Option<&Value>, t: &str| {
        v.and_then(|v| v.get("type")).and_then(Value::as_str) == Some(t)
    };
    let meta = get("metadata");
    if is(get("kind"), "string")
        && is(get("apiVersion"), "string")
        && is(meta, "object")
        && is(meta.and_then(|m| m.pointer("/properties/name")), "string")
        && is(
            meta.and_then(|m| m.pointer("/properties/generateName")),
            "string",
        )
    {
        return;
    }
    props.retain(|(n, _)| !matches!(*n, "kind" | "apiVersion" | "metadata"));
    props.push(("kind", &TYPE_META[0]));
    props.push(("apiVersion", &TYPE_META[0]));
    props.push(("metadata", &TYPE_META[1]));
}

/// A property name as CEL sees it (kube-apiserver's `Escape`), or `None` when it cannot be
/// used in rules.
fn escape(name: &str) -> Option<String> {
    const RESERVED: [&str; 21] = [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/'))
    {
        return None;
    }
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '_' if chars.peek() == Some(&'_') => {
                chars.next();
                out.push_str("__underscores__");
            }
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c => out.push(c),
        }
    }
    Some(out)
}

/// The types cel-go's checker would give expressions, as far as the cost model needs them.
#[derive(Debug, Clone)]
enum Ty<'a> {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Bytes,
    Duration,
    Timestamp,
    Type,
    List(Box<Ty<'a>>),
    Map(Box<Ty<'a>>, Box<Ty<'a>>),
    Object(&'a BTreeMap<String, (String, Decl)>),
    /// Kubernetes library types: `URL`, `IP`, `CIDR`, `Quantity`, `Semver`, `Format`.
    Opaque(&'static str),
}

impl Ty<'_> {
    /// cel-go's `isScalar`: values of a fixed size.
    fn scalar(&self) -> bool {
        matches!(
            self,
            Ty::Bool | Ty::Int | Ty::Uint | Ty::Double | Ty::Duration | Ty::Timestamp
        )
    }

    fn same(&self, o: &Ty) -> bool {
        match (self, o) {
            (Ty::Opaque(a), Ty::Opaque(b)) => a == b,
            (Ty::List(a), Ty::List(b)) => a.same(b),
            (Ty::Map(a, b), Ty::Map(c, d)) => a.same(c) && b.same(d),
            (Ty::Object(a), Ty::Object(b)) => std::ptr::eq(*a, *b),
            _ => std::mem::discriminant(self) == std::mem::discriminant(o),
        }
    }
}

/// Where sizes come from: the schema (static estimate) or an object (runtime bound).
trait Sizes {
    /// The size of what a path (`self`, then field names, `@items`, `@values`, `@keys`) leads
    /// to, or `None` when the path leads nowhere known.
    fn size(&self, path: &[String]) -> Option<Range>;
    /// The size of a value nothing is known about.
    fn unknown(&self) -> Range;
}

/// Sizes from the schema: kube-apiserver's `sizeEstimator`, which walks the declaration from
/// the rule's node whatever variable the path starts with.
struct SchemaSizes<'a>(&'a Decl);

impl Sizes for SchemaSizes<'_> {
    fn size(&self, path: &[String]) -> Option<Range> {
        let mut decl = self.0;
        let mut steps = path.iter().skip(1);
        while let Some(step) = steps.next() {
            match decl.step(step)? {
                Step::Decl(d) => decl = d,
                Step::Key => {
                    return if steps.next().is_none() {
                        Some(Range::ZERO)
                    } else {
                        None
                    };
                }
            }
        }
        Some(Range {
            min: 0,
            max: decl.max,
        })
    }

    fn unknown(&self) -> Range {
        Range::UNKNOWN
    }
}

/// Sizes from an object: the largest size found at the path (characters of strings, entries
/// of lists and maps, 1 for other values, as cel-go's runtime `actualSize`).
struct ValueSizes<'a> {
    decl: &'a Decl,
    value: &'a Value,
    old: Option<&'a Value>,
    /// No value computed from the object can be larger than the object itself, but for
    /// growth the estimate itself accounts for.
    unknown: Range,
}

fn actual_size(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.chars().count() as u64,
        Value::Array(a) => a.len() as u64,
        Value::Object(m) => m.len() as u64,
        _ => 1,
    }
}

impl Sizes for ValueSizes<'_> {
    fn size(&self, path: &[String]) -> Option<Range> {
        let root = match path.first().map(String::as_str) {
            Some("oldSelf") => self.old?,
            _ => self.value,
        };
        let mut decl = self.decl;
        let mut values = vec![root];
        let mut steps = path.iter().skip(1);
        while let Some(step) = steps.next() {
            match decl.step(step)? {
                Step::Key => {
                    if steps.next().is_some() {
                        return None;
                    }
                    let max = values
                        .iter()
                        .filter_map(|v| v.as_object())
                        .flat_map(|m| m.keys())
                        .map(|k| k.chars().count() as u64)
                        .max()
                        .unwrap_or(0);
                    return Some(Range { min: 0, max });
                }
                Step::Decl(next) => {
                    let mut found = Vec::new();
                    for v in values {
                        match (step.as_str(), v) {
                            ("@items" | "@values", Value::Array(a)) => found.extend(a.iter()),
                            ("@items" | "@values", Value::Object(m)) => found.extend(m.values()),
                            (_, Value::Object(m)) => {
                                if let DeclKind::Object(fields) = &decl.kind
                                    && let Some((json_name, _)) = fields.get(step)
                                    && let Some(child) = m.get(json_name)
                                {
                                    found.push(child);
                                }
                            }
                            _ => {}
                        }
                    }
                    values = found;
                    decl = next;
                }
            }
        }
        let max = values.into_iter().map(actual_size).max().unwrap_or(0);
        Some(Range { min: 0, max })
    }

    fn unknown(&self) -> Range {
        self.unknown
    }
}

/// The sizes of the entries of a literal list or map, as cel-go tracks them.
#[derive(Debug, Clone, Copy)]
struct Entry {
    list: bool,
    key: Range,
    val: Range,
}

impl Entry {
    fn union(a: Option<Entry>, b: Option<Entry>) -> Option<Entry> {
        let (a, b) = (a?, b?);
        Some(Entry {
            list: a.list,
            key: a.key.union(b.key),
            val: a.val.union(b.val),
        })
    }
}

/// What the estimate of an expression yields.
#[derive(Debug, Clone)]
struct Info<'a> {
    cost: Range,
    ty: Ty<'a>,
    /// The path the value comes from (`self`, field names, `@items`...); empty when none.
    path: Vec<String>,
    /// The size of the value, when known.
    size: Option<Range>,
    entry: Option<Entry>,
}

impl<'a> Info<'a> {
    fn new(cost: Range, ty: Ty<'a>) -> Info<'a> {
        Info {
            cost,
            ty,
            path: Vec::new(),
            size: None,
            entry: None,
        }
    }
}

struct Local<'a> {
    name: String,
    path: Vec<String>,
    size: Option<Range>,
    entry: Option<Entry>,
    ty: Ty<'a>,
}

/// Functions called as `namespace.function(...)`.
const NAMESPACED: [&str; 7] = [
    "format.named",
    "strings.quote",
    "sets.contains",
    "sets.intersects",
    "sets.equivalent",
    "ip.isCanonical",
    "jsonpatch.escapeKey",
];

struct Estimator<'a> {
    root: &'a Decl,
    sizes: &'a dyn Sizes,
    locals: Vec<Local<'a>>,
}

/// The cost of one evaluation of `expr` on a node declared as `root`.
fn estimate(expr: &IdedExpr, root: &Decl, sizes: &dyn Sizes) -> Range {
    let mut e = Estimator {
        root,
        sizes,
        locals: Vec::new(),
    };
    e.cost(expr).cost
}

impl<'a> Estimator<'a> {
    fn local(&self, name: &str) -> Option<&Local<'a>> {
        self.locals.iter().rev().find(|l| l.name == name)
    }

    fn known(&self, info: &Info) -> Range {
        info.size.unwrap_or_else(|| self.sizes.unknown())
    }

    /// cel-go's `computeSize` for an expression that is neither a literal nor a call result:
    /// the size estimator by path, then the fixed size of scalars.
    fn derived(&self, path: &[String], ty: &Ty) -> Option<Range> {
        if !path.is_empty()
            && let Some(size) = self.sizes.size(path)
        {
            return Some(size);
        }
        ty.scalar().then_some(Range::ONE)
    }

    fn cost(&mut self, e: &IdedExpr) -> Info<'a> {
        match &e.expr {
            Expr::Literal(lit) => {
                let (ty, size) = match lit {
                    LiteralValue::String(s) => (Ty::Str, s.inner().chars().count() as u64),
                    LiteralValue::Bytes(b) => (Ty::Bytes, b.inner().len() as u64),
                    LiteralValue::Boolean(_) => (Ty::Bool, 1),
                    LiteralValue::Int(_) => (Ty::Int, 1),
                    LiteralValue::UInt(_) => (Ty::Uint, 1),
                    LiteralValue::Double(_) => (Ty::Double, 1),
                    LiteralValue::Null => (Ty::Null, 1),
                };
                Info {
                    size: Some(Range::fixed(size)),
                    ..Info::new(Range::ZERO, ty)
                }
            }
            Expr::Ident(name) => {
                let (path, ty, local_size, entry) = match self.local(name) {
                    Some(l) => (l.path.clone(), l.ty.clone(), l.size, l.entry),
                    None => {
                        let ty = if name == "self" || name == "oldSelf" {
                            self.root.ty()
                        } else {
                            Ty::Dyn
                        };
                        (vec![name.clone()], ty, None, None)
                    }
                };
                let size = self.derived(&path, &ty).or(local_size);
                Info {
                    cost: Range::ONE,
                    ty,
                    path,
                    size,
                    entry,
                }
            }
            Expr::Select(sel) => {
                let operand = self.cost(&sel.operand);
                if sel.test {
                    // kube-apiserver gives presence tests no cost of their own.
                    return Info {
                        size: Some(Range::ONE),
                        ..Info::new(operand.cost, Ty::Bool)
                    };
                }
                let (extra, ty) = match &operand.ty {
                    Ty::Object(fields) => (
                        Range::ONE,
                        fields
                            .get(&sel.field)
                            .map(|(_, d)| d.ty())
                            .unwrap_or(Ty::Dyn),
                    ),
                    Ty::Map(_, v) => (Range::ONE, (**v).clone()),
                    _ => (Range::ZERO, Ty::Dyn),
                };
                let mut path = operand.path;
                path.push(sel.field.clone());
                let size = self.derived(&path, &ty);
                Info {
                    cost: operand.cost.add(extra),
                    ty,
                    path,
                    size,
                    entry: None,
                }
            }
            Expr::Call(call) => {
                let target = call.target.as_deref();
                // `format.named(...)` and the like are global functions with a dotted name.
                if let Some(IdedExpr {
                    expr: Expr::Ident(ns),
                    ..
                }) = target
                {
                    let qualified = format!("{ns}.{}", call.func_name);
                    if self.local(ns).is_none()
                        && ns != "self"
                        && ns != "oldSelf"
                        && NAMESPACED.contains(&qualified.as_str())
                    {
                        return self.call(&qualified, None, &call.args);
                    }
                }
                self.call(&call.func_name, target, &call.args)
            }
            Expr::List(list) => {
                let mut cost = Range::fixed(LIST_CREATE_COST);
                let mut val = Range {
                    min: if list.elements.is_empty() {
                        0
                    } else {
                        u64::MAX
                    },
                    max: 0,
                };
                let mut ty = None;
                for el in &list.elements {
                    let info = self.cost(el);
                    cost = cost.add(info.cost);
                    val = val.union(self.known(&info));
                    ty.get_or_insert(info.ty);
                }
                Info {
                    size: Some(Range::fixed(list.elements.len() as u64)),
                    entry: Some(Entry {
                        list: true,
                        key: Range::ONE,
                        val,
                    }),
                    ..Info::new(cost, Ty::List(Box::new(ty.unwrap_or(Ty::Dyn))))
                }
            }
            Expr::Map(map) => {
                let mut cost = Range::fixed(MAP_CREATE_COST);
                let empty = if map.entries.is_empty() { 0 } else { u64::MAX };
                let mut key = Range { min: empty, max: 0 };
                let mut val = key;
                let mut tys = None;
                for entry in &map.entries {
                    let EntryExpr::MapEntry(entry) = &entry.expr else {
                        continue;
                    };
                    let k = self.cost(&entry.key);
                    let v = self.cost(&entry.value);
                    cost = cost.add(k.cost).add(v.cost);
                    key = key.union(self.known(&k));
                    val = val.union(self.known(&v));
                    tys.get_or_insert((k.ty, v.ty));
                }
                let (kt, vt) = tys.unwrap_or((Ty::Dyn, Ty::Dyn));
                Info {
                    size: Some(Range::fixed(map.entries.len() as u64)),
                    entry: Some(Entry {
                        list: false,
                        key,
                        val,
                    }),
                    ..Info::new(cost, Ty::Map(Box::new(kt), Box::new(vt)))
                }
            }
            Expr::Struct(s) => {
                let mut cost = Range::fixed(STRUCT_CREATE_COST);
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        cost = cost.add(self.cost(&f.value).cost);
                    }
                }
                Info::new(cost, Ty::Dyn)
            }
            Expr::Comprehension(c) => {
                let range = self.cost(&c.iter_range);
                let init = self.cost(&c.accu_init);
                let mut cost = range.cost.add(init.cost);
                self.locals.push(Local {
                    name: c.accu_var.clone(),
                    path: init.path.clone(),
                    size: init.size,
                    entry: init.entry,
                    ty: init.ty.clone(),
                });
                let list = match range.entry {
                    Some(e) => e.list,
                    None => matches!(range.ty, Ty::List(_)),
                };
                let (step_name, size) = if list {
                    ("@items", range.entry.map(|e| e.val))
                } else {
                    ("@keys", range.entry.map(|e| e.key))
                };
                let item_ty = match &range.ty {
                    Ty::List(t) => (**t).clone(),
                    Ty::Map(k, _) => (**k).clone(),
                    _ => Ty::Dyn,
                };
                let mut path = range.path.clone();
                path.push(step_name.into());
                self.locals.push(Local {
                    name: c.iter_var.clone(),
                    path,
                    size,
                    entry: None,
                    ty: item_ty,
                });
                let cond = self.cost(&c.loop_cond);
                let step = self.cost(&c.loop_step);
                self.locals.pop();
                let result = self.cost(&c.result);
                self.locals.pop();
                let count = self.known(&range);
                cost = cost
                    .add(result.cost)
                    .add(count.mul(step.cost.add(cond.cost)));
                let (size, entry) = match &c.accu_init.expr {
                    Expr::Literal(_) => (init.size, None),
                    Expr::List(_) | Expr::Map(_) => (Some(count), step.entry),
                    _ => (None, None),
                };
                let ty = match (&result.ty, &step.ty) {
                    (Ty::List(r), Ty::List(s)) if matches!(**r, Ty::Dyn) => Ty::List(s.clone()),
                    _ => result.ty,
                };
                let size = size.or_else(|| ty.scalar().then_some(Range::ONE));
                Info {
                    cost,
                    ty,
                    path: Vec::new(),
                    size,
                    entry,
                }
            }
            Expr::Unspecified => Info::new(Range::ZERO, Ty::Dyn),
        }
    }

    /// A function call: cel-go's `costCall` and `functionCost`, with kube-apiserver's
    /// estimates for its libraries.
    fn call(&mut self, name: &str, target: Option<&IdedExpr>, raw_args: &[IdedExpr]) -> Info<'a> {
        let args: Vec<Info<'a>> = raw_args.iter().map(|a| self.cost(a)).collect();
        let target = target.map(|t| self.cost(t));
        let arg_sum = args.iter().fold(Range::ZERO, |s, a| s.add(a.cost));
        let target_cost = target.as_ref().map_or(Range::ZERO, |t| t.cost);
        let arg = |i: usize| args.get(i);

        if name == "dyn" && args.len() == 1 && target.is_none() {
            return Info {
                size: args[0].size,
                entry: args[0].entry,
                ..Info::new(Range::ONE.add(arg_sum), Ty::Dyn)
            };
        }

        let mut result_size = None;
        let mut entry = None;
        let mut path = Vec::new();
        let ty = self.result_type(name, target.as_ref(), &args);
        let fixed = |c: u64| Some(Range::fixed(c));

        // Estimates by overload of cel-go's extension libraries (`sets`), then kube-apiserver's
        // library estimator (by function name), then cel-go's own.
        let library: Option<Range> = match name {
            "sets.contains" | "sets.intersects" | "sets.equivalent" if args.len() == 2 => {
                let f = if name == "sets.equivalent" { 2.0 } else { 1.0 };
                Some(
                    self.known(&args[0])
                        .mul(self.known(&args[1]))
                        .factor(f)
                        .add(Range::ONE),
                )
            }
            "isSorted" | "sum" | "max" | "min" | "indexOf" | "lastIndexOf" => {
                target.as_ref().map(|t| match &t.ty {
                    Ty::List(item) => {
                        let mut each = Range::ONE;
                        if matches!(**item, Ty::Str | Ty::Bytes) {
                            let item_size = if t.path.is_empty() {
                                None
                            } else {
                                let mut p = t.path.clone();
                                p.push("@items".into());
                                self.sizes.size(&p)
                            };
                            each = each.add(
                                item_size
                                    .unwrap_or_else(|| self.sizes.unknown())
                                    .factor(STRING_TRAVERSAL),
                            );
                        }
                        self.known(t).mul(each)
                    }
                    _ => self.known(t).factor(STRING_TRAVERSAL),
                })
            }
            "url" | "jsonpatch.escapeKey" if args.len() == 1 => {
                let sz = self.known(&args[0]);
                result_size = Some(sz);
                Some(sz.factor(STRING_TRAVERSAL))
            }
            "lowerAscii" | "upperAscii" | "substring" | "trim" => target.as_ref().map(|t| {
                let sz = self.known(t);
                result_size = Some(sz);
                sz.factor(STRING_TRAVERSAL)
            }),
            "replace" if args.len() >= 2 => target.as_ref().map(|t| {
                let sz = self.known(t);
                let from = self.known(&args[0]);
                let to = self.known(&args[1]);
                let mut count = Range::ZERO;
                let mut kept = Range::ZERO;
                if from.min == 0 {
                    count.max = if sz.max < u64::MAX {
                        sz.max + 1
                    } else {
                        sz.max
                    };
                    kept.max = sz.max;
                } else if to.max <= from.min {
                    kept.max = sz.max;
                } else {
                    count.max = (sz.max as f64 / from.min as f64).ceil() as u64;
                }
                if from.max == 0 {
                    count.min = if sz.min < u64::MAX {
                        sz.min + 1
                    } else {
                        sz.min
                    };
                    kept.min = sz.min;
                } else if from.max <= to.min {
                    kept.min = sz.min;
                } else {
                    count.min = (sz.min as f64 / from.max as f64).ceil() as u64;
                }
                result_size = Some(count.mul(to).add(kept));
                sz.factor(2.0 * STRING_TRAVERSAL)
            }),
            "split" => target.as_ref().map(|t| {
                let sz = self.known(t);
                let mut max = sz.max;
                // A literal limit bounds the number of parts (taken as unsigned, as kube does).
                if let Some(IdedExpr {
                    expr: Expr::Literal(LiteralValue::Int(i)),
                    ..
                }) = raw_args.get(1)
                {
                    max = *i.inner() as u64;
                }
                result_size = Some(Range { min: 0, max });
                sz.factor(2.0 * STRING_TRAVERSAL)
            }),
            "join" => target.as_ref().map(|t| {
                let count = self.known(t);
                let mut sz = Range::ZERO;
                if let Ty::List(_) = &t.ty {
                    let item = if t.path.is_empty() {
                        None
                    } else {
                        let mut p = t.path.clone();
                        p.push("@items".into());
                        self.sizes.size(&p)
                    };
                    sz = count.mul(item.unwrap_or_else(|| self.sizes.unknown()));
                }
                if let Some(sep) = arg(0) {
                    let seps = Range {
                        min: count.min.saturating_sub(1),
                        max: count.max.saturating_sub(1),
                    };
                    sz = sz.add(self.known(sep).mul(seps));
                }
                result_size = Some(sz);
                sz.factor(STRING_TRAVERSAL)
            }),
            "find" | "findAll" if !args.is_empty() => target.as_ref().map(|t| {
                let sz = self.known(t);
                let text = sz.add(Range::ONE).factor(STRING_TRAVERSAL);
                let regex = self.known(&args[0]).factor(REGEX_LENGTH);
                result_size = Some(Range {
                    min: 0,
                    max: sz.max,
                });
                text.mul(regex)
            }),
            "cidr" | "isIP" | "isCIDR" | "quantity" | "isQuantity" | "semver" | "isSemver"
                if !args.is_empty() =>
            {
                Some(self.known(&args[0]).factor(STRING_TRAVERSAL))
            }
            "ip" => match arg(0) {
                Some(a) if target.is_none() => Some(self.known(a).factor(STRING_TRAVERSAL)),
                _ => fixed(1),
            },
            "ip.isCanonical" if !args.is_empty() => {
                Some(self.known(&args[0]).factor(2.0 * STRING_TRAVERSAL))
            }
            "containsIP" | "containsCIDR" if target.is_some() && !args.is_empty() => {
                let ip = Range { min: 4, max: 16 };
                let mut cost = ip.add(ip).factor(STRING_TRAVERSAL);
                if name == "containsCIDR" {
                    cost = cost.add(ip.factor(STRING_TRAVERSAL)).add(Range::ONE);
                }
                if matches!(args[0].ty, Ty::Str) {
                    cost = cost.add(self.known(&args[0]).factor(STRING_TRAVERSAL));
                }
                Some(cost)
            }
            "validate" if target.is_some() && !args.is_empty() => Some(
                self.known(&args[0])
                    .factor(STRING_TRAVERSAL)
                    .factor(MAX_NAME_FORMAT_REGEX * REGEX_LENGTH),
            ),
            "masked"
            | "prefixLength"
            | "family"
            | "isUnspecified"
            | "isLoopback"
            | "isLinkLocalMulticast"
            | "isLinkLocalUnicast"
            | "isGlobalUnicast"
            | "format.named"
            | "sign"
            | "asInteger"
            | "isInteger"
            | "asApproximateFloat"
            | "isGreaterThan"
            | "isLessThan"
            | "compareTo"
            | "add"
            | "sub"
            | "major"
            | "minor"
            | "patch"
            | "getScheme"
            | "getHostname"
            | "getHost"
            | "getPort"
            | "getEscapedPath"
            | "getQuery" => fixed(1),
            "_==_" if args.len() == 2 && args[0].ty.same(&args[1].ty) => match &args[0].ty {
                Ty::Opaque("IP" | "CIDR" | "Quantity" | "Semver") => fixed(1),
                Ty::Opaque("Format") => Some(
                    Range {
                        min: 1,
                        max: MAX_FORMAT_SIZE,
                    }
                    .factor(STRING_TRAVERSAL),
                ),
                Ty::Opaque("URL") => {
                    // kube-apiserver sizes both sides by the right-hand one.
                    let size = args[1].size.map_or(Range::ONE, |s| s.union(s));
                    Some(
                        Range {
                            min: 1,
                            max: size.max,
                        }
                        .factor(STRING_TRAVERSAL),
                    )
                }
                _ => None,
            },
            _ => None,
        };

        let call_cost = match library {
            Some(c) => c.add(arg_sum),
            None => self.builtin(
                name,
                target.as_ref(),
                &args,
                arg_sum,
                &mut result_size,
                &mut entry,
                &mut path,
            ),
        };
        let size = result_size.or_else(|| self.derived(&path, &ty));
        Info {
            cost: target_cost.add(call_cost),
            ty,
            path,
            size,
            entry,
        }
    }

    /// cel-go's estimates of its standard functions; anything else costs 1.
    #[allow(clippy::too_many_arguments)]
    fn builtin(
        &self,
        name: &str,
        target: Option<&Info<'a>>,
        args: &[Info<'a>],
        arg_sum: Range,
        result_size: &mut Option<Range>,
        entry: &mut Option<Entry>,
        path: &mut Vec<String>,
    ) -> Range {
        let o1 = Range::ONE.add(arg_sum);
        let two = args.len() == 2;
        let string_like = |t: &Ty| matches!(t, Ty::Str | Ty::Bytes | Ty::Dyn);
        let sized = |a: &Info| self.known(a);
        let compare = || {
            let smallest = sized(&args[0]).max.min(sized(&args[1]).max);
            Range {
                min: u64::from(smallest > 0),
                max: smallest,
            }
            .factor(STRING_TRAVERSAL)
            .add(arg_sum)
        };
        match name {
            "_&&_" | "_||_" if two => Range {
                min: args[0].cost.min,
                max: args[0].cost.max.saturating_add(args[1].cost.max),
            },
            "_?_:_" if args.len() == 3 => {
                *result_size = Some(sized(&args[1]).union(sized(&args[2])));
                *entry = Entry::union(args[1].entry, args[2].entry);
                args[0].cost.add(args[1].cost.union(args[2].cost))
            }
            "_==_" | "_!=_" if two => compare(),
            "_<_" | "_<=_" | "_>_" | "_>=_" if two => {
                let (a, b) = (&args[0].ty, &args[1].ty);
                let strings = matches!(a, Ty::Str | Ty::Bytes) || matches!(b, Ty::Str | Ty::Bytes);
                let dynamic = matches!(a, Ty::Dyn) && matches!(b, Ty::Dyn);
                if strings {
                    compare()
                } else if dynamic {
                    compare().union(o1)
                } else {
                    o1
                }
            }
            "_+_" if two => {
                let (a, b) = (&args[0].ty, &args[1].ty);
                let sum = sized(&args[0]).add(sized(&args[1]));
                let union_entry = Entry::union(args[1].entry, args[0].entry);
                let list = matches!(a, Ty::List(_)) || matches!(b, Ty::List(_));
                let text = matches!(a, Ty::Str | Ty::Bytes) || matches!(b, Ty::Str | Ty::Bytes);
                let dynamic = matches!(a, Ty::Dyn) && matches!(b, Ty::Dyn);
                if list || text || dynamic {
                    *result_size = Some(sum);
                    if union_entry.is_some() {
                        *entry = union_entry;
                    }
                }
                if list {
                    o1
                } else if text {
                    sum.factor(STRING_TRAVERSAL).add(arg_sum)
                } else if dynamic {
                    sum.factor(STRING_TRAVERSAL).add(arg_sum).union(o1)
                } else {
                    o1
                }
            }
            "@in" if two => match &args[1].ty {
                Ty::List(_) => sized(&args[1]).add(arg_sum),
                Ty::Dyn => sized(&args[1]).add(arg_sum).union(o1),
                _ => o1,
            },
            "_[_]" if two => {
                let step = match &args[0].ty {
                    Ty::List(_) => "@items",
                    _ => "@values",
                };
                *result_size = args[0].entry.map(|e| e.val);
                path.clone_from(&args[0].path);
                path.push(step.into());
                o1
            }
            "contains" if args.len() == 1 => match target {
                Some(t) if string_like(&t.ty) => sized(t)
                    .factor(STRING_TRAVERSAL)
                    .mul(sized(&args[0]).factor(STRING_TRAVERSAL))
                    .add(arg_sum),
                _ => o1,
            },
            "startsWith" | "endsWith" if args.len() == 1 => {
                sized(&args[0]).factor(STRING_TRAVERSAL).add(arg_sum)
            }
            "matches" if args.len() == 1 && target.is_some() => {
                let text = sized(target.expect("checked"))
                    .add(Range::ONE)
                    .factor(STRING_TRAVERSAL);
                let regex = sized(&args[0]).factor(REGEX_LENGTH);
                text.mul(regex).add(arg_sum)
            }
            "format" if target.is_some_and(|t| string_like(&t.ty)) => {
                sized(target.expect("checked"))
                    .factor(STRING_TRAVERSAL)
                    .add(arg_sum)
            }
            "bytes" if args.len() == 1 && matches!(args[0].ty, Ty::Str) => {
                let sz = sized(&args[0]);
                *result_size = Some(Range {
                    min: sz.min,
                    max: sz.max.saturating_mul(4),
                });
                sz.factor(STRING_TRAVERSAL).add(arg_sum)
            }
            "string" if args.len() == 1 && matches!(args[0].ty, Ty::Bytes) => {
                let sz = sized(&args[0]);
                *result_size = Some(Range {
                    min: sz.min / 4,
                    max: sz.max,
                });
                sz.factor(STRING_TRAVERSAL).add(arg_sum)
            }
            "strings.quote" if args.len() == 1 => {
                let sz = sized(&args[0]);
                *result_size = Some(Range {
                    min: sz.min.saturating_add(2),
                    max: sz.max.saturating_mul(2).saturating_add(2),
                });
                sz.factor(STRING_TRAVERSAL).add(arg_sum)
            }
            _ => o1,
        }
    }

    /// The type of a call's result, as far as later estimates depend on it.
    fn result_type(&self, name: &str, target: Option<&Info<'a>>, args: &[Info<'a>]) -> Ty<'a> {
        let first = target.or(args.first());
        match name {
            "!_"
            | "@not_strictly_false"
            | "_==_"
            | "_!=_"
            | "_<_"
            | "_<=_"
            | "_>_"
            | "_>=_"
            | "_&&_"
            | "_||_"
            | "@in"
            | "contains"
            | "startsWith"
            | "endsWith"
            | "matches"
            | "isSorted"
            | "isIP"
            | "isCIDR"
            | "isQuantity"
            | "isSemver"
            | "isURL"
            | "isInteger"
            | "isGreaterThan"
            | "isLessThan"
            | "sets.contains"
            | "sets.intersects"
            | "sets.equivalent"
            | "ip.isCanonical"
            | "isUnspecified"
            | "isLoopback"
            | "isLinkLocalMulticast"
            | "isLinkLocalUnicast"
            | "isGlobalUnicast"
            | "containsIP"
            | "containsCIDR"
            | "hasValue" => Ty::Bool,
            "size" | "indexOf" | "lastIndexOf" | "int" | "getHours" | "getMinutes"
            | "getSeconds" | "getMilliseconds" | "getDayOfMonth" | "getDayOfWeek"
            | "getDayOfYear" | "getDate" | "getMonth" | "getFullYear" | "sign" | "asInteger"
            | "compareTo" | "major" | "minor" | "patch" | "prefixLength" | "family" => Ty::Int,
            "uint" => Ty::Uint,
            "double" | "asApproximateFloat" => Ty::Double,
            "string"
            | "lowerAscii"
            | "upperAscii"
            | "trim"
            | "substring"
            | "replace"
            | "join"
            | "charAt"
            | "format"
            | "strings.quote"
            | "find"
            | "getScheme"
            | "getHostname"
            | "getHost"
            | "getPort"
            | "getEscapedPath"
            | "reverse"
            | "jsonpatch.escapeKey" => Ty::Str,
            "split" | "findAll" => Ty::List(Box::new(Ty::Str)),
            "bytes" => Ty::Bytes,
            "duration" => Ty::Duration,
            "timestamp" => Ty::Timestamp,
            "type" => Ty::Type,
            "url" => Ty::Opaque("URL"),
            "quantity" | "add" | "sub" => Ty::Opaque("Quantity"),
            "ip" => Ty::Opaque("IP"),
            "cidr" | "masked" => Ty::Opaque("CIDR"),
            "semver" => Ty::Opaque("Semver"),
            "format.named" => Ty::Opaque("Format"),
            "getQuery" => Ty::Map(Box::new(Ty::Str), Box::new(Ty::List(Box::new(Ty::Str)))),
            "sum" | "min" | "max" => match first.map(|f| &f.ty) {
                Some(Ty::List(item)) => (**item).clone(),
                _ => Ty::Dyn,
            },
            "_[_]" => match first.map(|f| &f.ty) {
                Some(Ty::List(item)) => (**item).clone(),
                Some(Ty::Map(_, v)) => (**v).clone(),
                _ => Ty::Dyn,
            },
            "_?_:_" => match args.get(1).map(|a| &a.ty) {
                Some(Ty::Dyn) | None => args.get(2).map_or(Ty::Dyn, |a| a.ty.clone()),
                Some(t) => t.clone(),
            },
            "_+_" | "_-_" | "_*_" | "_/_" | "_%_" | "-_" => match (first, args.get(1)) {
                (Some(a), Some(b)) if matches!(a.ty, Ty::Dyn) => b.ty.clone(),
                (Some(a), _) => match (&a.ty, name) {
                    (Ty::Timestamp, "_-_")
                        if args.get(1).is_some_and(|b| matches!(b.ty, Ty::Timestamp)) =>
                    {
                        Ty::Duration
                    }
                    (Ty::Duration, "_+_")
                        if args.get(1).is_some_and(|b| matches!(b.ty, Ty::Timestamp)) =>
                    {
                        Ty::Timestamp
                    }
                    (t, _) => t.clone(),
                },
                _ => Ty::Dyn,
            },
            _ => Ty::Dyn,
        }
    }
}

/// kube-apiserver's message for an estimate over a limit (`getCostErrorMessage`).
fn over_budget(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let factor = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!(
        "{what} exceeds budget by factor of {factor} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )
}

/// The number of times data of the given smallest size can occur in one request
/// (`maxCardinality`).
fn max_cardinality(min_size: u64) -> u64 {
    MAX_REQUEST_SIZE / (min_size + 1)
}

/// The factor by which a schema node multiplies the occurrences of its children, `None` when
/// unbounded (`extractMaxElements`).
fn child_factor(schema: &Value) -> Option<u64> {
    let int = |k: &str| {
        schema
            .get(k)
            .and_then(Value::as_i64)
            .map(|v| v.max(0) as u64)
    };
    match schema.get("type").and_then(Value::as_str) {
        Some("object") if schema.get("additionalProperties").is_some() => int("maxProperties"),
        Some("array") => int("maxItems"),
        _ => Some(1),
    }
}

struct StaticCheck {
    /// Whether the limit of each rule is waived (an update leaving the schema as it was).
    unchanged: bool,
    causes: Vec<Cause>,
    total: u64,
    /// The rules costing at least 1% of the CRD limit, most expensive first (at most 4).
    expensive: Vec<(String, u64)>,
}

impl StaticCheck {
    fn observe(&mut self, field: String, cost: u64) {
        self.total = self.total.saturating_add(cost);
        if cost < STATIC_CRD_LIMIT / 100 {
            return;
        }
        self.expensive.push((field, cost));
        self.expensive.sort_by_key(|e| std::cmp::Reverse(e.1));
        self.expensive.truncate(4);
    }

    fn walk(&mut self, schema: &Value, path: &str, cardinality: Option<u64>, root: bool) {
        let Some(m) = schema.as_object() else { return };
        // Children occur as many times as this node allows per occurrence
        // (`extractMaxElements`), unbounded when a list or map does not say.
        let child = cardinality.and_then(|c| Some(c.saturating_mul(child_factor(schema)?)));
        if let Some(ap) = m.get("additionalProperties").filter(|a| a.is_object()) {
            self.walk(ap, &format!("{path}.additionalProperties"), child, false);
        }
        if let Some(props) = m.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                self.walk(v, &format!("{path}.properties[{k}]"), child, false);
            }
        }
        if let Some(items) = m.get("items").filter(|i| i.is_object()) {
            self.walk(items, &format!("{path}.items"), child, false);
        }
        let rules = m
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .filter(|r| !r.is_empty());
        let Some(rules) = rules else { return };
        let Some(decl) = Decl::of(schema, root || embedded(schema)) else {
            return;
        };
        let times = cardinality.unwrap_or_else(|| max_cardinality(decl.min_size));
        for (i, rule) in rules.iter().enumerate() {
            let field = format!("{path}.x-kubernetes-validations[{i}]");
            let text = rule.get("rule").and_then(Value::as_str).unwrap_or("");
            if text.trim().is_empty() {
                continue;
            }
            let Ok(program) = kube_cel::cel::Program::compile(text) else {
                continue;
            };
            let cost = estimate(program.expression(), &decl, &SchemaSizes(&decl)).max;
            let cost = if cost == 0 {
                0
            } else {
                cost.saturating_mul(times)
            };
            if !self.unchanged && cost > STATIC_RULE_LIMIT {
                self.causes.push(Cause::forbidden(
                    format!("{field}.rule"),
                    over_budget("estimated rule cost", cost, STATIC_RULE_LIMIT),
                ));
            }
            self.observe(format!("{field}.rule"), cost);
            let message = rule
                .get("messageExpression")
                .and_then(Value::as_str)
                .filter(|m| !m.trim().is_empty());
            if let Some(Ok(program)) = message.map(kube_cel::cel::Program::compile) {
                let cost = estimate(program.expression(), &decl, &SchemaSizes(&decl)).max;
                if !self.unchanged && cost > STATIC_RULE_LIMIT {
                    self.causes.push(Cause::forbidden(
                        format!("{field}.messageExpression"),
                        over_budget("estimated messageExpression cost", cost, STATIC_RULE_LIMIT),
                    ));
                }
                self.observe(format!("{field}.messageExpression"), cost);
            }
        }
    }
}

/// The cost checks kube-apiserver makes on the `x-kubernetes-validations` rules of a CRD
/// version's schema, at `path` (`spec.validation.openAPIV3Schema` or a version's). Rules that
/// do not compile are left to the compilation check. `unchanged` waives the limit of each rule
/// (kube-apiserver does on updates that leave a version's schema as it was), not the total.
pub fn check_schema(schema: &Value, path: &str, unchanged: bool) -> Vec<Cause> {
    let mut check = StaticCheck {
        unchanged,
        causes: Vec::new(),
        total: 0,
        expensive: Vec::new(),
    };
    check.walk(schema, path, Some(1), true);
    let mut causes = check.causes;
    if check.total > STATIC_CRD_LIMIT {
        for (field, _) in check.expensive {
            causes.push(Cause::forbidden(
                field,
                "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema",
            ));
        }
        causes.push(Cause::forbidden(
            path,
            over_budget(
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema",
                check.total,
                STATIC_CRD_LIMIT,
            ),
        ));
    }
    causes
}

/// The rules of a schema, arranged for checking an object's cost before they run.
#[derive(Debug)]
pub struct Plan {
    root: PlanNode,
}

#[derive(Debug)]
struct PlanNode {
    /// The schema's `type`, shown as the invalid value in errors.
    type_name: String,
    decl: Option<Decl>,
    rules: Vec<PlannedRule>,
    properties: Vec<(String, PlanNode)>,
    items: Option<Box<PlanNode>>,
    additional: Option<Box<PlanNode>>,
}

#[derive(Debug)]
struct PlannedRule {
    expr: IdedExpr,
    uses_old_self: bool,
    optional_old_self: bool,
    /// How kube-apiserver names the rule in errors: its message, else its text.
    label: String,
}

impl PlanNode {
    fn build(schema: &Value, root: bool) -> Option<PlanNode> {
        let m = schema.as_object()?;
        let mut rules = Vec::new();
        for rule in m
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let text = rule.get("rule").and_then(Value::as_str).unwrap_or("");
            let Ok(program) = kube_cel::cel::Program::compile(text) else {
                continue;
            };
            let message = rule.get("message").and_then(Value::as_str).unwrap_or("");
            rules.push(PlannedRule {
                uses_old_self: program.references().has_variable("oldSelf"),
                expr: program.expression().clone(),
                optional_old_self: rule.get("optionalOldSelf") == Some(&json!(true)),
                label: if message.trim().is_empty() {
                    text.trim().to_string()
                } else {
                    message.trim().to_string()
                },
            });
        }
        let properties: Vec<(String, PlanNode)> = m
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), PlanNode::build(v, false)?)))
            .collect();
        let items = m
            .get("items")
            .and_then(|i| PlanNode::build(i, false))
            .map(Box::new);
        let additional = m
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .and_then(|a| PlanNode::build(a, false))
            .map(Box::new);
        if rules.is_empty() && properties.is_empty() && items.is_none() && additional.is_none() {
            return None;
        }
        let decl = if rules.is_empty() {
            None
        } else {
            Decl::of(schema, root || embedded(schema))
        };
        Some(PlanNode {
            type_name: m
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            decl,
            rules,
            properties,
            items,
            additional,
        })
    }

    /// Charges this node's rules and its children's to `remaining`; returns the error that
    /// stops validation, if any.
    fn check(
        &self,
        value: &Value,
        old: Option<&Value>,
        path: &str,
        remaining: &mut u64,
    ) -> Option<Cause> {
        if value.is_null() {
            return None;
        }
        let out_of_budget = || {
            Cause::invalid(
                path,
                &json!(self.type_name),
                "validation failed due to running out of cost budget, no further validation rules will be run",
            )
        };
        if let Some(decl) = &self.decl {
            if *remaining == 0 {
                return Some(out_of_budget());
            }
            let unknown = serde_json::to_string(value).map_or(0, |s| s.len() as u64)
                + old
                    .and_then(|o| serde_json::to_string(o).ok())
                    .map_or(0, |s| s.len() as u64);
            let sizes = ValueSizes {
                decl,
                value,
                old,
                unknown: Range {
                    min: 0,
                    max: unknown,
                },
            };
            for rule in &self.rules {
                if rule.uses_old_self && old.is_none() && !rule.optional_old_self {
                    continue;
                }
                let cost = estimate(&rule.expr, decl, &sizes).max;
                let charged = cost.min(PER_CALL_LIMIT + 1);
                if charged > *remaining {
                    return Some(out_of_budget());
                }
                *remaining -= charged;
                if cost > PER_CALL_LIMIT {
                    return Some(Cause::invalid(
                        path,
                        &json!(self.type_name),
                        format!(
                            "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                            rule.label
                        ),
                    ));
                }
            }
        }
        let join = |key: &str| {
            if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            }
        };
        match value {
            Value::Array(items) => {
                let item_plan = self.items.as_deref()?;
                for (i, item) in items.iter().enumerate() {
                    let old_item = old.and_then(Value::as_array).and_then(|a| a.get(i));
                    let p = format!("{path}[{i}]");
                    if let Some(e) = item_plan.check(item, old_item, &p, remaining) {
                        return Some(e);
                    }
                }
            }
            Value::Object(map) => {
                for (k, plan) in &self.properties {
                    if let Some(v) = map.get(k)
                        && let Some(e) =
                            plan.check(v, old.and_then(|o| o.get(k)), &join(k), remaining)
                    {
                        return Some(e);
                    }
                }
                if let Some(plan) = self.additional.as_deref() {
                    for (k, v) in map {
                        if self.properties.iter().any(|(p, _)| p == k) {
                            continue;
                        }
                        if let Some(e) =
                            plan.check(v, old.and_then(|o| o.get(k)), &join(k), remaining)
                        {
                            return Some(e);
                        }
                    }
                }
            }
            _ => {}
        }
        None
    }
}

impl Plan {
    /// The plan for a CRD version's schema, or `None` when it declares no rules.
    pub fn new(schema: &Value) -> Option<Plan> {
        PlanNode::build(schema, true).map(|root| Plan { root })
    }

    /// Checks the cost of validating `obj` (and, on updates, `old`) with the rules before they
    /// run: kube-apiserver's per-evaluation limit and per-object budget, with each evaluation
    /// costed from the sizes the object has. Returns the error that ends validation, if any.
    pub fn check(&self, obj: &Value, old: Option<&Value>) -> Option<Cause> {
        let mut remaining = RUNTIME_BUDGET;
        self.root.check(obj, old, "", &mut remaining)
    }
}

#[cfg(test)]
mod tests;
