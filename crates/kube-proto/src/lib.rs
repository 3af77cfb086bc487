//! Kubernetes protobuf (`application/vnd.kubernetes.protobuf`) <-> Kubernetes JSON.
//!
//! This crate owns the translation between the protobuf wire encoding used by
//! client-go typed clients (kubectl >= 1.32 sends it for `kubectl create
//! <kind>`, `auth can-i`, `create token`, ...) and the JSON objects the rest of
//! the server stores and serves.
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` message
//! whose `typeMeta` carries `apiVersion`/`kind` and whose `raw` is the object's
//! own message (e.g. `k8s.io.api.core.v1.Namespace`).
//!
//! Translation is driven by a generated message table (`src/schema.txt`, see
//! `gen/gen_schema.py`) covering every group/version of `k8s.io/api` plus
//! `meta/v1`, `runtime`, `intstr` and `resource` from `k8s.io/apimachinery`.
//! The JSON produced is what Go's `encoding/json` writes for the same Go
//! value:
//!
//! * field names are the Go JSON names (camelCase), embedded structs such as
//!   `Volume.volumeSource` are inlined;
//! * zero scalars / empty lists / empty maps of `omitempty` fields are left
//!   out; Go pointer fields (`replicas`, `suspend`, `automountServiceAccountToken`,
//!   ...) are kept whenever they are on the wire, even when zero/false;
//! * struct-valued fields are kept even when empty (Go never omits a struct),
//!   so a Namespace decodes with `"spec": {}, "status": {}` exactly like
//!   `kubectl create namespace x -o json --dry-run=client`;
//! * a zero `metav1.Time` (empty message, e.g. `metadata.creationTimestamp`) is
//!   left out instead of written as `null`;
//! * `Time` -> `"2024-01-02T03:04:05Z"`, `MicroTime` -> 6 fractional digits,
//!   `Duration` -> Go duration string, `IntOrString` -> number or string,
//!   `Quantity` -> string, `bytes` -> base64, `RawExtension`/`FieldsV1` -> the
//!   embedded JSON document, Go named slices (`ExtraValue`) -> arrays.
//!
//! Unknown field numbers are skipped (a newer client may send fields this
//! table does not know). No input makes the decoder panic; malformed bodies
//! yield a human-readable error string.

mod decode;
mod encode;
mod schema;
mod timefmt;
mod wire;

use serde_json::{Map, Value};

use crate::decode::Decoder;
use crate::schema::Schema;
use crate::wire::{Reader, WireValue};

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Prefix of every Kubernetes protobuf body.
pub const MAGIC: &[u8] = b"k8s\0";

/// Decodes a `application/vnd.kubernetes.protobuf` body (with the `k8s\0`
/// envelope) into the JSON object it encodes, including `apiVersion` and
/// `kind` from the envelope. Errors are human-readable strings.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let decoder = Decoder {
        schema: Schema::get(),
    };
    decode_envelope(&decoder, body, 0)
}

/// Encodes a JSON object (which must carry `apiVersion` and `kind`) as a
/// protobuf body with the `k8s\0` envelope. Fields the message table does not
/// know are dropped, as Go's protobuf encoding of the typed object would.
pub fn encode(object: &Value) -> Result<Vec<u8>, String> {
    encode::encode_envelope(Schema::get(), object)
}

/// Whether `apiVersion`/`kind` has a protobuf message this crate can decode
/// and encode.
pub fn supports(api_version: &str, kind: &str) -> bool {
    encode::message_for(Schema::get(), api_version, kind).is_ok()
}

/// The media type of a protobuf watch stream.
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Encodes one watch event as a frame of a protobuf watch stream: a 4-byte big-endian length
/// and a `WatchEvent` message whose object is `object` in its `k8s\0` envelope.
pub fn encode_watch_event(event_type: &str, object: &Value) -> Result<Vec<u8>, String> {
    encode::encode_watch_frame(Schema::get(), event_type, object)
}

/// Decodes one frame of a protobuf watch stream (without its length prefix) into the event
/// type and the object it carries.
pub fn decode_watch_event(frame: &[u8]) -> Result<(String, Value), String> {
    let mut event_type = String::new();
    let mut raw: &[u8] = &[];
    let mut r = Reader::new(frame);
    while !r.is_empty() {
        match r.field().map_err(|e| format!("watch event: {e}"))? {
            (1, WireValue::Bytes(b)) => event_type = lossy(b),
            (2, WireValue::Bytes(extension)) => {
                let mut er = Reader::new(extension);
                while !er.is_empty() {
                    if let (1, WireValue::Bytes(b)) =
                        er.field().map_err(|e| format!("watch event object: {e}"))?
                    {
                        raw = b;
                    }
                }
            }
            _ => {}
        }
    }
    Ok((event_type, decode(raw)?))
}

pub(crate) fn decode_envelope(
    decoder: &Decoder<'_>,
    body: &[u8],
    depth: usize,
) -> Result<Value, String> {
    let rest = body
        .strip_prefix(MAGIC)
        .ok_or("not a Kubernetes protobuf body: missing the \"k8s\\0\" prefix")?;
    let mut api_version = String::new();
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    let mut content_encoding = String::new();
    let mut r = Reader::new(rest);
    while !r.is_empty() {
        match r.field().map_err(|e| format!("envelope: {e}"))? {
            (1, WireValue::Bytes(type_meta)) => {
                let mut tr = Reader::new(type_meta);
                while !tr.is_empty() {
                    match tr.field().map_err(|e| format!("envelope typeMeta: {e}"))? {
                        (1, WireValue::Bytes(b)) => api_version = lossy(b),
                        (2, WireValue::Bytes(b)) => kind = lossy(b),
                        _ => {}
                    }
                }
            }
            (2, WireValue::Bytes(b)) => raw = b,
            (3, WireValue::Bytes(b)) => content_encoding = lossy(b),
            (4, WireValue::Bytes(_)) => {} // contentType: the raw message is protobuf
            (1..=4, other) => {
                return Err(format!("envelope: unexpected {} value", other.type_name()));
            }
            _ => {}
        }
    }
    if !content_encoding.is_empty() {
        return Err(format!(
            "unsupported protobuf content encoding {content_encoding:?}"
        ));
    }
    if api_version.is_empty() || kind.is_empty() {
        return Err("protobuf envelope has no apiVersion/kind".into());
    }
    let idx = encode::message_for(decoder.schema, &api_version, &kind)?;
    let body = decoder
        .message(idx, raw, depth)
        .map_err(|e| format!("decoding {kind}: {e}"))?;
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    match body {
        Some(Value::Object(fields)) => obj.extend(fields),
        Some(other) => return Err(format!("{other} is not an object")),
        None => {}
    }
    Ok(Value::Object(obj))
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
