//! CEL expressions in Stages: `matchExpressions[].cel` selectors and `cel` value sources
//! (`weightFrom`, `delay.durationFrom`, `delay.jitterDurationFrom`). The object is `self`; the
//! Kubernetes CEL libraries are available, with the simulator's own `Now()`, `Rand()`,
//! `SinceSecond(object)` and `UnixSecond(time)`.

use std::sync::Arc;

use kube_cel::KubeCelExt;
use kube_cel::cel::extractors::Arguments;
use kube_cel::cel::objects::Key;
use kube_cel::cel::{
    Context, ExecutionError, FunctionContext, Program, ResolveResult, Value as CelValue,
};
use serde_json::Value;

/// A compiled CEL expression.
pub struct Expression {
    source: String,
    program: Program,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

thread_local! {
    static BASE: Context<'static> = base_context();
}

/// The Stage environment: the Kubernetes CEL libraries and the simulator's own functions.
pub(crate) fn base_context() -> Context<'static> {
    let mut ctx = Context::default().with_all();
    ctx.add_function("Now", now);
    ctx.add_function("now", now);
    ctx.add_function("Rand", random);
    ctx.add_function("SinceSecond", since_second);
    ctx.add_function("UnixSecond", unix_second);
    ctx
}

fn now(Arguments(_): Arguments) -> ResolveResult {
    Ok(CelValue::Timestamp(chrono::Utc::now().fixed_offset()))
}

fn random(Arguments(_): Arguments) -> ResolveResult {
    Ok(CelValue::Float(rand::random::<f64>()))
}

/// The receiver of a call in receiver style (`pod.SinceSecond()`), then the arguments.
pub(crate) fn receiver_and_arguments(
    ftx: &FunctionContext,
) -> Result<Vec<CelValue>, ExecutionError> {
    let mut out: Vec<CelValue> = ftx.this.iter().cloned().collect();
    for expr in ftx.args {
        out.push(ftx.ptx.resolve(expr)?);
    }
    Ok(out)
}

/// Seconds since the object's creation (0 without a creation time).
fn since_second(ftx: &FunctionContext) -> ResolveResult {
    let args = receiver_and_arguments(ftx)?;
    let created = match args.first() {
        Some(CelValue::Map(m)) => m
            .map
            .get(&Key::from("metadata"))
            .and_then(|meta| match meta {
                CelValue::Map(meta) => meta.map.get(&Key::from("creationTimestamp")).cloned(),
                _ => None,
            })
            .and_then(|t| timestamp(&t)),
        Some(other) => timestamp(other),
        None => None,
    };
    Ok(CelValue::Float(created.map_or(0.0, |t| {
        (chrono::Utc::now().fixed_offset() - t).num_milliseconds() as f64 / 1000.0
    })))
}

fn unix_second(ftx: &FunctionContext) -> ResolveResult {
    let args = receiver_and_arguments(ftx)?;
    let t = args.first().and_then(timestamp).ok_or_else(|| {
        ExecutionError::function_error("UnixSecond", "expects a time or an RFC 3339 string")
    })?;
    Ok(CelValue::Float(t.timestamp_millis() as f64 / 1000.0))
}

fn timestamp(v: &CelValue) -> Option<chrono::DateTime<chrono::FixedOffset>> {
    match v {
        CelValue::Timestamp(t) => Some(*t),
        CelValue::String(s) => chrono::DateTime::parse_from_rfc3339(s).ok(),
        _ => None,
    }
}

impl Expression {
    pub fn parse(source: &str) -> Result<Self, String> {
        let program = Program::compile(source).map_err(|e| format!("invalid CEL: {e}"))?;
        Ok(Self {
            source: source.to_string(),
            program,
        })
    }

    fn eval(&self, object: &Value) -> Option<CelValue> {
        let this = kube_cel::cel::to_value(object).ok()?;
        BASE.with(|base| {
            let mut scope = base.new_inner_scope();
            scope.add_variable_from_value("self", this);
            match self.program.execute(&scope) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::debug!(expression = %self.source, "CEL evaluation failed: {e}");
                    None
                }
            }
        })
    }

    /// Whether the expression is true for `object`; errors and non-booleans count as false.
    pub fn is_true(&self, object: &Value) -> bool {
        matches!(self.eval(object), Some(CelValue::Bool(true)))
    }

    /// The expression's value for `object` as JSON: numbers, strings and booleans as such, a
    /// time as RFC 3339, a duration as milliseconds (`"1500ms"`).
    pub fn value(&self, object: &Value) -> Option<Value> {
        Some(match self.eval(object)? {
            CelValue::Int(i) => Value::from(i),
            CelValue::UInt(u) => Value::from(u),
            CelValue::Float(f) => Value::from(f.round() as i64),
            CelValue::String(s) => Value::String(Arc::unwrap_or_clone(s)),
            CelValue::Bool(b) => Value::Bool(b),
            CelValue::Timestamp(t) => Value::String(t.to_rfc3339()),
            CelValue::Duration(d) => Value::String(format!("{}ms", d.num_milliseconds())),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_and_values() {
        let pvc = json!({"metadata": {"name": "c", "creationTimestamp": "2020-01-01T00:00:00Z"},
            "spec": {"volumeName": ""}, "status": {"phase": "Pending"}});
        let pending =
            Expression::parse("self.status.phase == 'Pending' && self.spec.volumeName == ''")
                .unwrap();
        assert!(pending.is_true(&pvc));
        let bound = Expression::parse("self.status.phase == 'Bound'").unwrap();
        assert!(!bound.is_true(&pvc));
        let missing = Expression::parse("self.spec.nope == 'x'").unwrap();
        assert!(!missing.is_true(&pvc));
        let has = Expression::parse("!has(self.metadata.deletionTimestamp)").unwrap();
        assert!(has.is_true(&pvc));
        let old = Expression::parse("SinceSecond(self) > 3600.0").unwrap();
        assert!(old.is_true(&pvc));
        let weight = Expression::parse("size(self.metadata.name) * 10").unwrap();
        assert_eq!(weight.value(&pvc), Some(json!(10)));
        let delay = Expression::parse("duration('1.5s')").unwrap();
        assert_eq!(delay.value(&pvc), Some(json!("1500ms")));
        assert!(Expression::parse("self.status.phase ==").is_err());
    }
}
