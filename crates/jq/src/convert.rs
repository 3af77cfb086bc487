//! Conversion between `serde_json::Value` and jaq's value type.
//!
//! Numbers: integers stay integers; a float with no fraction that fits comes back as an integer
//! (jq has one number type, and upstream's gojq prints `2`, not `2.0`). Strings that are not
//! UTF-8 and object keys that are not strings (jaq allows both) come back as text.

use jaq_json::{Map, Num, Val};
use serde_json::{Number, Value};

/// Converts a JSON value for jaq.
pub fn to_val(v: &Value) -> Val {
    match v {
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(*b),
        Value::Number(n) => Val::Num(number(n)),
        Value::String(s) => Val::utf8_str(s.as_bytes().to_vec()),
        Value::Array(a) => a.iter().map(to_val).collect(),
        Value::Object(m) => {
            let mut out = Map::default();
            out.reserve(m.len());
            for (k, v) in m {
                out.insert(Val::utf8_str(k.as_bytes().to_vec()), to_val(v));
            }
            Val::obj(out)
        }
    }
}

fn number(n: &Number) -> Num {
    if let Some(i) = n.as_i64() {
        Num::from_integral(i)
    } else if let Some(u) = n.as_u64() {
        Num::from_integral(u)
    } else {
        Num::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// Converts a jaq value back to JSON.
pub fn from_val(v: &Val) -> Value {
    match v {
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Num(n) => from_num(n),
        Val::TStr(b) | Val::BStr(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Val::Arr(a) => Value::Array(a.iter().map(from_val).collect()),
        Val::Obj(m) => Value::Object(m.iter().map(|(k, v)| (key(k), from_val(v))).collect()),
    }
}

fn key(k: &Val) -> String {
    match k {
        Val::TStr(b) | Val::BStr(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    }
}

fn from_num(n: &Num) -> Value {
    match n {
        Num::Int(i) => Value::from(*i as i64),
        Num::Float(f) => float(*f),
        // Big integers and decimals as written: JSON numbers when they parse as one.
        other => {
            let text = other.to_string();
            serde_json::from_str::<Number>(&text)
                .map(Value::Number)
                .unwrap_or_else(|_| float(text.parse().unwrap_or(f64::NAN)))
        }
    }
}

fn float(f: f64) -> Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if f.fract() == 0.0 && f.abs() < EXACT {
        Value::from(f as i64)
    } else {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}
