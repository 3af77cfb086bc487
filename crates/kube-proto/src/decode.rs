//! Protobuf message -> Kubernetes JSON, walking the message table.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use crate::schema::{Field, Label, Scalar, Schema, Special, Type};
use crate::timefmt;
use crate::wire::{Reader, WireValue};

/// Nesting limit for messages (and embedded raw objects); bounds recursion on
/// hostile input.
const MAX_DEPTH: usize = 100;

pub(crate) struct Decoder<'s> {
    pub schema: &'s Schema,
}

/// What has been collected for one field while reading a message.
enum Acc {
    Single(Value),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

impl Decoder<'_> {
    /// Decodes a message into its JSON form. `None` means "no JSON value"
    /// (a zero `metav1.Time`, which Go writes as `null`).
    pub fn message(&self, idx: usize, data: &[u8], depth: usize) -> Result<Option<Value>, String> {
        if depth > MAX_DEPTH {
            return Err("protobuf message nested too deeply".into());
        }
        let msg = &self.schema.messages[idx];
        match msg.special {
            Some(Special::Time) => return self.time(data, false),
            Some(Special::MicroTime) => return self.time(data, true),
            Some(Special::Duration) => {
                let nanos = self.varint_field(data, 1)?.unwrap_or(0) as i64;
                return Ok(Some(Value::String(timefmt::format_go_duration(nanos))));
            }
            Some(Special::Quantity) => {
                let mut s = String::new();
                let mut r = Reader::new(data);
                while !r.is_empty() {
                    if let (1, v) = r.field()? {
                        s = utf8(expect_bytes(v, "Quantity.string")?);
                    }
                }
                return Ok(Some(Value::String(s)));
            }
            Some(Special::IntOrString) => return self.int_or_string(data).map(Some),
            Some(Special::RawJson) => return self.raw_json(data, depth).map(Some),
            _ => {}
        }
        let mut accs: Vec<Option<Acc>> = (0..msg.fields.len()).map(|_| None).collect();
        let mut r = Reader::new(data);
        while !r.is_empty() {
            let (number, wv) = r.field()?;
            let Some((fi, field)) = msg.field(number) else {
                continue; // unknown field: newer server version, ignore
            };
            let ctx = || field.json.to_string();
            match field.label {
                Label::Singular => {
                    if let Some(v) = self.value(field.ty, wv, depth, &ctx)? {
                        accs[fi] = Some(Acc::Single(v));
                    }
                }
                Label::Repeated => {
                    let mut values = Vec::new();
                    match (field.ty, wv) {
                        // Packed encoding of a repeated numeric field.
                        (Type::Scalar(s), WireValue::Bytes(b))
                            if !matches!(s, Scalar::String | Scalar::Bytes) =>
                        {
                            let mut pr = Reader::new(b);
                            while !pr.is_empty() {
                                let w = match s {
                                    Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => {
                                        pr.fixed64().map(WireValue::Fixed64)?
                                    }
                                    Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => {
                                        pr.fixed32().map(WireValue::Fixed32)?
                                    }
                                    _ => pr.varint().map(WireValue::Varint)?,
                                };
                                values.push(scalar(s, w, &ctx)?);
                            }
                        }
                        _ => values.push(
                            self.value(field.ty, wv, depth, &ctx)?
                                .unwrap_or(Value::Null),
                        ),
                    }
                    match &mut accs[fi] {
                        Some(Acc::List(list)) => list.extend(values),
                        slot => *slot = Some(Acc::List(values)),
                    }
                }
                Label::Map(key_type) => {
                    let entry = expect_bytes(wv, &ctx())?;
                    let (k, v) = self.map_entry(key_type, field.ty, entry, depth, &ctx)?;
                    match &mut accs[fi] {
                        Some(Acc::Map(map)) => {
                            map.insert(k, v);
                        }
                        slot => *slot = Some(Acc::Map(Map::from_iter([(k, v)]))),
                    }
                }
            }
        }
        if msg.special == Some(Special::List) {
            // A Go named slice: the JSON value is the array itself.
            let items = accs.into_iter().flatten().find_map(|a| match a {
                Acc::List(l) => Some(l),
                _ => None,
            });
            return Ok(Some(Value::Array(items.unwrap_or_default())));
        }
        let mut obj = Map::new();
        for (field, acc) in msg.fields.iter().zip(accs) {
            let Some(acc) = acc else { continue };
            let value = match acc {
                Acc::Single(v) => v,
                Acc::List(l) => Value::Array(l),
                Acc::Map(m) => Value::Object(m),
            };
            if field.inline {
                if let Value::Object(inner) = value {
                    obj.extend(inner);
                }
                continue;
            }
            if omitted(field, &value, self.schema) {
                continue;
            }
            obj.insert(field.json.to_string(), value);
        }
        Ok(Some(Value::Object(obj)))
    }

    fn value(
        &self,
        ty: Type,
        wv: WireValue<'_>,
        depth: usize,
        ctx: &dyn Fn() -> String,
    ) -> Result<Option<Value>, String> {
        match ty {
            Type::Scalar(s) => scalar(s, wv, ctx).map(Some),
            Type::Message(idx) => {
                let data = expect_bytes(wv, &ctx())?;
                self.message(idx, data, depth + 1)
                    .map_err(|e| prefix_error(&ctx(), e))
            }
        }
    }

    fn map_entry(
        &self,
        key_type: Scalar,
        value_type: Type,
        entry: &[u8],
        depth: usize,
        ctx: &dyn Fn() -> String,
    ) -> Result<(String, Value), String> {
        let mut key = None;
        let mut value = None;
        let mut r = Reader::new(entry);
        while !r.is_empty() {
            match r.field()? {
                (1, wv) => key = Some(scalar(key_type, wv, ctx)?),
                (2, wv) => value = Some(self.value(value_type, wv, depth, ctx)?),
                _ => {}
            }
        }
        let key = match key {
            Some(Value::String(s)) => s,
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let value = match value {
            Some(v) => v.unwrap_or(Value::Null),
            None => match value_type {
                Type::Scalar(s) => zero_scalar(s),
                Type::Message(idx) => self.message(idx, &[], depth + 1)?.unwrap_or(Value::Null),
            },
        };
        Ok((key, value))
    }

    fn varint_field(&self, data: &[u8], number: u32) -> Result<Option<u64>, String> {
        let mut found = None;
        let mut r = Reader::new(data);
        while !r.is_empty() {
            match r.field()? {
                (n, WireValue::Varint(v)) if n == number => found = Some(v),
                (n, other) if n == number => {
                    return Err(format!("field {n}: unexpected {} value", other.type_name()));
                }
                _ => {}
            }
        }
        Ok(found)
    }

    fn time(&self, data: &[u8], micro: bool) -> Result<Option<Value>, String> {
        if data.is_empty() {
            return Ok(None); // zero time: Go writes null
        }
        let mut seconds = 0i64;
        let mut nanos = 0i64;
        let mut r = Reader::new(data);
        while !r.is_empty() {
            match r.field()? {
                (1, WireValue::Varint(v)) => seconds = v as i64,
                (2, WireValue::Varint(v)) => nanos = i64::from(v as i32),
                (1 | 2, other) => {
                    return Err(format!("time: unexpected {} value", other.type_name()));
                }
                _ => {}
            }
        }
        if !(0..1_000_000_000).contains(&nanos) {
            return Err(format!("time: nanos {nanos} out of range"));
        }
        let micros = micro.then_some((nanos / 1000) as u32);
        timefmt::format_rfc3339(seconds, micros).map(|s| Some(Value::String(s)))
    }

    fn int_or_string(&self, data: &[u8]) -> Result<Value, String> {
        let (mut kind, mut int_val, mut str_val) = (0u64, 0i64, String::new());
        let mut r = Reader::new(data);
        while !r.is_empty() {
            match r.field()? {
                (1, WireValue::Varint(v)) => kind = v,
                (2, WireValue::Varint(v)) => int_val = i64::from(v as i32),
                (3, WireValue::Bytes(b)) => str_val = utf8(b),
                (1..=3, other) => {
                    return Err(format!(
                        "IntOrString: unexpected {} value",
                        other.type_name()
                    ));
                }
                _ => {}
            }
        }
        Ok(if kind == 1 {
            Value::String(str_val)
        } else {
            Value::Number(int_val.into())
        })
    }

    /// `RawExtension.raw` / `FieldsV1.Raw`: an embedded JSON document, or an
    /// embedded protobuf object with its own envelope.
    fn raw_json(&self, data: &[u8], depth: usize) -> Result<Value, String> {
        let mut raw: &[u8] = &[];
        let mut r = Reader::new(data);
        while !r.is_empty() {
            if let (1, v) = r.field()? {
                raw = expect_bytes(v, "raw")?;
            }
        }
        if raw.is_empty() {
            return Ok(Value::Null);
        }
        if raw.starts_with(crate::MAGIC) {
            return crate::decode_envelope(self, raw, depth + 1);
        }
        serde_json::from_slice(raw).map_err(|e| format!("embedded object is not JSON: {e}"))
    }
}

/// Whether Go's JSON encoding leaves this present field out.
fn omitted(field: &Field, value: &Value, schema: &Schema) -> bool {
    if field.pointer {
        return false; // a set pointer is always written
    }
    let is_struct = match field.ty {
        Type::Message(idx) => !matches!(schema.messages[idx].special, Some(Special::List)),
        Type::Scalar(_) => false,
    };
    if is_struct && field.label == Label::Singular {
        // Go's omitempty never drops a struct value.
        return value.is_null();
    }
    if !field.omitempty {
        return value.is_null();
    }
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn scalar(s: Scalar, wv: WireValue<'_>, ctx: &dyn Fn() -> String) -> Result<Value, String> {
    let mismatch = || format!("{}: {} value for a {s:?} field", ctx(), wv.type_name());
    Ok(match (s, wv) {
        (Scalar::String, WireValue::Bytes(b)) => Value::String(utf8(b)),
        (Scalar::Bytes, WireValue::Bytes(b)) => Value::String(BASE64.encode(b)),
        (Scalar::Bool, WireValue::Varint(v)) => Value::Bool(v != 0),
        (Scalar::Int32, WireValue::Varint(v)) => Value::from(v as i32),
        (Scalar::Int64, WireValue::Varint(v)) => Value::from(v as i64),
        (Scalar::Uint32, WireValue::Varint(v)) => Value::from(v as u32),
        (Scalar::Uint64, WireValue::Varint(v)) => Value::from(v),
        (Scalar::Sint32, WireValue::Varint(v)) => Value::from(zigzag(v) as i32),
        (Scalar::Sint64, WireValue::Varint(v)) => Value::from(zigzag(v)),
        (Scalar::Fixed32, WireValue::Fixed32(v)) => Value::from(v),
        (Scalar::Sfixed32, WireValue::Fixed32(v)) => Value::from(v as i32),
        (Scalar::Fixed64, WireValue::Fixed64(v)) => Value::from(v),
        (Scalar::Sfixed64, WireValue::Fixed64(v)) => Value::from(v as i64),
        (Scalar::Double, WireValue::Fixed64(v)) => float(f64::from_bits(v), &ctx)?,
        (Scalar::Float, WireValue::Fixed32(v)) => float(f64::from(f32::from_bits(v)), &ctx)?,
        _ => return Err(mismatch()),
    })
}

fn float(f: f64, ctx: &dyn Fn() -> String) -> Result<Value, String> {
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| format!("{}: {f} cannot be represented in JSON", ctx()))
}

fn zero_scalar(s: Scalar) -> Value {
    match s {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        _ => Value::from(0),
    }
}

fn zigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn utf8(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn expect_bytes<'a>(wv: WireValue<'a>, what: &str) -> Result<&'a [u8], String> {
    match wv {
        WireValue::Bytes(b) => Ok(b),
        other => Err(format!(
            "{what}: expected a length-delimited value, got {}",
            other.type_name()
        )),
    }
}

fn prefix_error(ctx: &str, e: String) -> String {
    format!("{ctx}: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(name: &str, data: &[u8]) -> Option<Value> {
        let schema = Schema::get();
        let idx = schema.message(name).unwrap();
        assert_eq!(schema.messages[idx].name, name);
        Decoder { schema }.message(idx, data, 0).unwrap()
    }

    #[test]
    fn duration_is_a_go_duration_string() {
        // field 1 = 90s in nanoseconds
        let mut data = vec![0x08];
        crate::wire::put_varint(&mut data, 90_000_000_000);
        assert_eq!(decode("meta.Duration", &data), Some(Value::from("1m30s")));
        assert_eq!(decode("meta.Duration", &[]), Some(Value::from("0s")));
    }

    #[test]
    fn zero_time_is_absent_and_epoch_is_not() {
        assert_eq!(decode("meta.Time", &[]), None);
        assert_eq!(
            decode("meta.Time", &[0x08, 0x00]),
            Some(Value::from("1970-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn packed_repeated_numbers() {
        // PodSecurityContext.supplementalGroups (repeated int64), packed.
        let got = decode("corev1.PodSecurityContext", &[0x22, 0x03, 0x01, 0x02, 0x03]);
        assert_eq!(
            got,
            Some(serde_json::json!({"supplementalGroups": [1, 2, 3]}))
        );
    }
}
