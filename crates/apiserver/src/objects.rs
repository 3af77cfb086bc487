//! Small helpers over JSON objects: metadata access, timestamps, names, encoding with the
//! resourceVersion.

use bytes::Bytes;
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, ApiResult};

/// RFC 3339 at second precision, as Kubernetes renders `metav1.Time`.
pub fn now_rfc3339() -> String {
    timestamp_after(0)
}

/// Now plus `seconds`, at second precision.
pub fn timestamp_after(seconds: i64) -> String {
    let now = jiff::Timestamp::now().as_second() + seconds;
    jiff::Timestamp::from_second(now)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// `metadata` as a mutable map, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("just made an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Sets `metadata.resourceVersion` and serialises the object. With
/// [`store::UNKNOWN_REVISION`] the object is serialised without one: the store adds it when the
/// object is read back (see [`stamp_resource_version`]).
pub fn encode_with_revision(obj: &mut Value, revision: i64) -> Bytes {
    if revision == store::UNKNOWN_REVISION {
        meta_mut(obj).remove("resourceVersion");
    } else {
        meta_mut(obj).insert(
            "resourceVersion".into(),
            Value::String(revision.to_string()),
        );
    }
    Bytes::from(serde_json::to_vec(obj).expect("a JSON value always serialises"))
}

/// Sets `metadata.resourceVersion` of a stored JSON object to `revision`, for stores that keep
/// objects without it. The common case, an object written without one, gets the field spliced
/// in after `"metadata":{` without parsing the rest; anything else is parsed and re-encoded.
/// Values that are not JSON objects are returned as they are.
pub fn stamp_resource_version(value: &[u8], revision: i64) -> Bytes {
    if let Some(at) = metadata_body_start(value)
        && memchr::memmem::find(value, b"\"resourceVersion\"").is_none()
    {
        let empty = value[at..]
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'}');
        let field = format!(
            "\"resourceVersion\":\"{revision}\"{}",
            if empty { "" } else { "," }
        );
        let mut out = Vec::with_capacity(value.len() + field.len());
        out.extend_from_slice(&value[..at]);
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(&value[at..]);
        return Bytes::from(out);
    }
    match serde_json::from_slice::<Value>(value) {
        Ok(mut obj) if obj.is_object() => encode_with_revision(&mut obj, revision),
        _ => Bytes::copy_from_slice(value),
    }
}

/// The offset just after the `{` that opens the top-level `metadata` object, if there is one.
fn metadata_body_start(json: &[u8]) -> Option<usize> {
    let mut i = skip_whitespace(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_whitespace(json, i);
        if json.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = skip_string(json, i)?;
        let key = &json[i + 1..key_end - 1];
        i = skip_whitespace(json, key_end);
        if json.get(i) != Some(&b':') {
            return None;
        }
        i = skip_whitespace(json, i + 1);
        if key == b"metadata" {
            return (json.get(i) == Some(&b'{')).then_some(i + 1);
        }
        i = skip_value(json, i)?;
        i = skip_whitespace(json, i);
        match json.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_whitespace(json: &[u8], mut i: usize) -> usize {
    while json.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The offset after the string that starts (with its quote) at `i`.
fn skip_string(json: &[u8], mut i: usize) -> Option<usize> {
    i += 1;
    loop {
        match json.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The offset after the JSON value that starts at `i`.
fn skip_value(json: &[u8], mut i: usize) -> Option<usize> {
    match json.get(i)? {
        b'"' => skip_string(json, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            loop {
                match json.get(i)? {
                    b'"' => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            while json
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

pub fn decode(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::internal(format!("stored object: {e}")))
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` plus five random characters, the prefix cut so the result fits 63.
pub fn generate_name(prefix: &str) -> String {
    let mut rng = rand::rng();
    let cut: String = prefix.chars().take(58).collect();
    let suffix: String = (0..5)
        .map(|_| NAME_ALPHABET[rng.random_range(0..NAME_ALPHABET.len())] as char)
        .collect();
    format!("{cut}{suffix}")
}

/// A random (version 4) UUID, from the thread-local generator rather than a system call.
pub fn new_uid() -> String {
    uuid::Builder::from_random_bytes(rand::random())
        .into_uuid()
        .to_string()
}

/// Parses a resourceVersion parameter ("" = unset).
pub fn parse_resource_version(rv: &str) -> ApiResult<Option<i64>> {
    if rv.is_empty() {
        return Ok(None);
    }
    rv.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

/// Everything but `metadata` and `status`, to tell whether the desired state changed.
pub fn desired_state_changed(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| -> Map<String, Value> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind")
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    strip(old) != strip(new)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(json: &str, revision: i64) -> Value {
        serde_json::from_slice(&stamp_resource_version(json.as_bytes(), revision)).unwrap()
    }

    #[test]
    fn stamping_sets_the_resource_version_of_the_top_level_metadata() {
        let obj = stamped(
            r#"{"apiVersion":"v1","data":{"metadata":{"x":"{\"}"}},"kind":"ConfigMap","metadata":{"name":"a"}}"#,
            42,
        );
        assert_eq!(obj["metadata"]["resourceVersion"], "42");
        assert_eq!(obj["metadata"]["name"], "a");
        assert!(obj["data"]["metadata"].get("resourceVersion").is_none());
        assert_eq!(
            stamped(r#"{ "metadata" : { } }"#, 7)["metadata"]["resourceVersion"],
            "7"
        );
    }

    #[test]
    fn stamping_replaces_a_stored_resource_version() {
        let obj = stamped(
            r#"{"involvedObject":{"resourceVersion":"3"},"metadata":{"resourceVersion":"5"}}"#,
            9,
        );
        assert_eq!(obj["metadata"]["resourceVersion"], "9");
        assert_eq!(obj["involvedObject"]["resourceVersion"], "3");
    }

    #[test]
    fn stamping_leaves_other_values_alone() {
        assert_eq!(&stamp_resource_version(b"k8s\0\x01", 3)[..], b"k8s\0\x01");
        assert_eq!(&stamp_resource_version(b"[1,2]", 3)[..], b"[1,2]");
    }

    #[test]
    fn unknown_revision_encodes_without_a_resource_version() {
        let mut obj = serde_json::json!({"metadata": {"name": "a", "resourceVersion": "4"}});
        let bytes = encode_with_revision(&mut obj, store::UNKNOWN_REVISION);
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(back["metadata"].get("resourceVersion").is_none());
    }
}
