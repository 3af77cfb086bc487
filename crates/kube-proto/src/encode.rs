//! Kubernetes JSON -> protobuf message, walking the message table.
//!
//! Absent and `null` JSON fields are not written (Go would write zero values
//! for non-pointer fields; every decoder reads both the same way). JSON keys
//! the table does not know are dropped.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use crate::schema::{Label, Scalar, Schema, Special, Type};
use crate::timefmt;
use crate::wire::{WT_FIXED32, WT_FIXED64, WT_VARINT, put_bytes, put_key, put_varint};

const MAX_DEPTH: usize = 100;

pub(crate) fn encode_envelope(schema: &Schema, object: &Value) -> Result<Vec<u8>, String> {
    let obj = object
        .as_object()
        .ok_or("only JSON objects can be encoded")?;
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .ok_or("object has no apiVersion")?;
    let kind = obj
        .get("kind")
        .and_then(Value::as_str)
        .ok_or("object has no kind")?;
    let idx = message_for(schema, api_version, kind)?;
    let mut raw = Vec::new();
    Encoder { schema }.message(idx, object, &mut raw, 0)?;

    let mut type_meta = Vec::new();
    put_bytes(&mut type_meta, 1, api_version.as_bytes());
    put_bytes(&mut type_meta, 2, kind.as_bytes());
    let mut out = crate::MAGIC.to_vec();
    put_bytes(&mut out, 1, &type_meta);
    put_bytes(&mut out, 2, &raw);
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// The message of `apiVersion`/`kind`. `Status` is meta/v1's message whatever group it is
/// served under, as kube-apiserver sends it.
pub(crate) fn message_for(schema: &Schema, api_version: &str, kind: &str) -> Result<usize, String> {
    schema
        .message_for_kind(api_version, kind)
        .or_else(|| {
            (kind == "Status")
                .then(|| schema.message_for_kind("meta.k8s.io/v1", "Status"))
                .flatten()
        })
        .ok_or_else(|| format!("no protobuf message known for {api_version}, Kind={kind}"))
}

/// One frame of a protobuf watch stream: a 4-byte big-endian length, then a raw (envelope-less)
/// `meta/v1 WatchEvent` whose object's `raw` holds the object's own envelope.
pub(crate) fn encode_watch_frame(
    schema: &Schema,
    event_type: &str,
    object: &Value,
) -> Result<Vec<u8>, String> {
    let envelope = encode_envelope(schema, object)?;
    let mut raw_extension = Vec::with_capacity(envelope.len() + 8);
    put_bytes(&mut raw_extension, 1, &envelope);
    let mut event = Vec::with_capacity(raw_extension.len() + event_type.len() + 16);
    put_bytes(&mut event, 1, event_type.as_bytes());
    put_bytes(&mut event, 2, &raw_extension);
    let mut frame = Vec::with_capacity(event.len() + 4);
    frame.extend_from_slice(&(event.len() as u32).to_be_bytes());
    frame.extend_from_slice(&event);
    Ok(frame)
}

struct Encoder<'s> {
    schema: &'s Schema,
}

impl Encoder<'_> {
    fn message(
        &self,
        idx: usize,
        value: &Value,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("object nested too deeply".into());
        }
        let msg = &self.schema.messages[idx];
        match msg.special {
            Some(Special::Time) | Some(Special::MicroTime) => {
                if let Some(s) = value.as_str() {
                    let (seconds, nanos) = timefmt::parse_rfc3339(s)?;
                    put_key(out, 1, WT_VARINT);
                    put_varint(out, seconds as u64);
                    let nanos = if msg.special == Some(Special::MicroTime) {
                        nanos / 1000 * 1000
                    } else {
                        0
                    };
                    put_key(out, 2, WT_VARINT);
                    put_varint(out, u64::from(nanos));
                } else if !value.is_null() {
                    return Err(format!("expected a time string, got {value}"));
                }
                return Ok(());
            }
            Some(Special::Duration) => {
                let s = value
                    .as_str()
                    .ok_or_else(|| format!("expected a duration string, got {value}"))?;
                put_key(out, 1, WT_VARINT);
                put_varint(out, timefmt::parse_go_duration(s)? as u64);
                return Ok(());
            }
            Some(Special::IntOrString) => {
                let (kind, int_val, str_val) = match value {
                    Value::String(s) => (1u64, 0i64, s.as_str()),
                    Value::Number(n) => {
                        let i = n
                            .as_i64()
                            .and_then(|i| i32::try_from(i).ok())
                            .ok_or_else(|| format!("{n} is not a 32-bit integer"))?;
                        (0, i64::from(i), "")
                    }
                    other => return Err(format!("expected an integer or string, got {other}")),
                };
                put_key(out, 1, WT_VARINT);
                put_varint(out, kind);
                put_key(out, 2, WT_VARINT);
                put_varint(out, int_val as u64);
                put_bytes(out, 3, str_val.as_bytes());
                return Ok(());
            }
            Some(Special::Quantity) => {
                let s = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => return Err(format!("expected a quantity, got {other}")),
                };
                put_bytes(out, 1, s.as_bytes());
                return Ok(());
            }
            Some(Special::RawJson) => {
                if !value.is_null() {
                    let raw = serde_json::to_vec(value).map_err(|e| e.to_string())?;
                    put_bytes(out, 1, &raw);
                }
                return Ok(());
            }
            Some(Special::List) => {
                let items = value
                    .as_array()
                    .ok_or_else(|| format!("expected an array, got {value}"))?;
                if let Some(field) = msg.fields.first() {
                    for item in items {
                        self.value(field.number, field.ty, item, out, depth)?;
                    }
                }
                return Ok(());
            }
            None => {}
        }
        let obj = match value {
            Value::Object(o) => o,
            Value::Null => return Ok(()),
            other => return Err(format!("expected an object, got {other}")),
        };
        for field in &msg.fields {
            let ctx = |e: String| format!("{}: {e}", field.json);
            if field.inline {
                // Embedded Go struct: its fields live in this same object.
                if let Type::Message(inner) = field.ty {
                    let mut buf = Vec::new();
                    self.message(inner, value, &mut buf, depth + 1)
                        .map_err(ctx)?;
                    put_bytes(out, field.number, &buf);
                }
                continue;
            }
            let Some(v) = obj.get(field.json) else {
                continue;
            };
            if v.is_null() {
                continue;
            }
            match field.label {
                Label::Singular => self
                    .value(field.number, field.ty, v, out, depth)
                    .map_err(ctx)?,
                Label::Repeated => {
                    let items = v
                        .as_array()
                        .ok_or_else(|| ctx(format!("expected an array, got {v}")))?;
                    for item in items {
                        self.value(field.number, field.ty, item, out, depth)
                            .map_err(ctx)?;
                    }
                }
                Label::Map(key_type) => {
                    let map: &Map<String, Value> = v
                        .as_object()
                        .ok_or_else(|| ctx(format!("expected an object, got {v}")))?;
                    for (k, item) in map {
                        let mut entry = Vec::new();
                        let key = match key_type {
                            Scalar::String => Value::String(k.clone()),
                            _ => serde_json::from_str(k)
                                .map_err(|_| ctx(format!("invalid map key {k:?}")))?,
                        };
                        self.value(1, Type::Scalar(key_type), &key, &mut entry, depth)
                            .map_err(ctx)?;
                        self.value(2, field.ty, item, &mut entry, depth)
                            .map_err(ctx)?;
                        put_bytes(out, field.number, &entry);
                    }
                }
            }
        }
        Ok(())
    }

    fn value(
        &self,
        number: u32,
        ty: Type,
        v: &Value,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), String> {
        let s = match ty {
            Type::Message(idx) => {
                let mut buf = Vec::new();
                self.message(idx, v, &mut buf, depth + 1)?;
                put_bytes(out, number, &buf);
                return Ok(());
            }
            Type::Scalar(s) => s,
        };
        let int = || -> Result<i64, String> {
            match v {
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_u64().map(|u| u as i64))
                    .ok_or_else(|| format!("{n} is not an integer")),
                Value::String(s) => s.parse().map_err(|_| format!("{s:?} is not an integer")),
                other => Err(format!("expected an integer, got {other}")),
            }
        };
        let float = || -> Result<f64, String> {
            v.as_f64()
                .ok_or_else(|| format!("expected a number, got {v}"))
        };
        match s {
            Scalar::String => {
                let text = v
                    .as_str()
                    .ok_or_else(|| format!("expected a string, got {v}"))?;
                put_bytes(out, number, text.as_bytes());
            }
            Scalar::Bytes => {
                let text = v
                    .as_str()
                    .ok_or_else(|| format!("expected base64 data, got {v}"))?;
                let data = BASE64
                    .decode(text)
                    .map_err(|e| format!("invalid base64: {e}"))?;
                put_bytes(out, number, &data);
            }
            Scalar::Bool => {
                let b = v
                    .as_bool()
                    .ok_or_else(|| format!("expected a boolean, got {v}"))?;
                put_key(out, number, WT_VARINT);
                put_varint(out, u64::from(b));
            }
            Scalar::Int32 | Scalar::Int64 | Scalar::Uint32 | Scalar::Uint64 => {
                let i = int()?;
                let i = if s == Scalar::Int32 {
                    i64::from(i as i32)
                } else {
                    i
                };
                put_key(out, number, WT_VARINT);
                put_varint(out, i as u64);
            }
            Scalar::Sint32 | Scalar::Sint64 => {
                let i = int()?;
                put_key(out, number, WT_VARINT);
                put_varint(out, ((i << 1) ^ (i >> 63)) as u64);
            }
            Scalar::Fixed32 | Scalar::Sfixed32 => {
                put_key(out, number, WT_FIXED32);
                out.extend_from_slice(&(int()? as u32).to_le_bytes());
            }
            Scalar::Fixed64 | Scalar::Sfixed64 => {
                put_key(out, number, WT_FIXED64);
                out.extend_from_slice(&(int()? as u64).to_le_bytes());
            }
            Scalar::Double => {
                put_key(out, number, WT_FIXED64);
                out.extend_from_slice(&float()?.to_bits().to_le_bytes());
            }
            Scalar::Float => {
                put_key(out, number, WT_FIXED32);
                out.extend_from_slice(&(float()? as f32).to_bits().to_le_bytes());
            }
        }
        Ok(())
    }
}
