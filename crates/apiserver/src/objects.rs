//! Small helpers over JSON objects: metadata access, timestamps, names, encoding with the
//! resourceVersion.

use bytes::Bytes;
use rand::Rng;
use serde_json::{Map, Value, json};

use crate::errors::{ApiError, ApiResult};

/// [`Value::pointer`] without its cost: the standard one allocates two strings per step to undo
/// `~0`/`~1` escapes; this one only takes that path when the pointer has a `~`.
pub trait JsonAt {
    fn at(&self, pointer: &str) -> Option<&Value>;
}

impl JsonAt for Value {
    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        if pointer.contains('~') {
            return self.pointer(pointer);
        }
        let mut value = self;
        for token in pointer.strip_prefix('/')?.split('/') {
            value = match value {
                Value::Object(map) => map.get(token)?,
                Value::Array(items) => {
                    if token.starts_with('+') || (token.len() > 1 && token.starts_with('0')) {
                        return None;
                    }
                    items.get(token.parse::<usize>().ok()?)?
                }
                _ => return None,
            };
        }
        Some(value)
    }
}

/// The strings of a JSON array (other items skipped); empty for anything else.
pub fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

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
    obj.at("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    obj.at("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Whether two objects are equal but for `metadata.resourceVersion` (an update that changes
/// nothing else is not written), compared in place rather than on copies without it.
pub fn same_but_resource_version(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let meta_equal = |x: Option<&Value>, y: Option<&Value>| match (x, y) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let fields = |m: &'_ Map<String, Value>| {
                m.len() - usize::from(m.contains_key("resourceVersion"))
            };
            fields(x) == fields(y)
                && x.iter()
                    .all(|(k, v)| k == "resourceVersion" || y.get(k) == Some(v))
        }
        (x, y) => x == y,
    };
    a.len() == b.len()
        && a.iter().all(|(k, v)| match k.as_str() {
            "metadata" => meta_equal(Some(v), b.get(k)),
            _ => b.get(k) == Some(v),
        })
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
    let mut json = serde_json::to_vec(obj).expect("a JSON value always serialises");
    // The store, its watch history and the informers keep these bytes for minutes: without
    // this the doubling growth of the buffer leaves a quarter of each allocation unused.
    json.shrink_to_fit();
    Bytes::from(json)
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

/// The stored JSON with `metadata.resourceVersion` changed from `from` to `to`, without decoding
/// it; None when the object does not carry `from` there as it was written.
pub fn replace_resource_version(value: &[u8], from: i64, to: i64) -> Option<Bytes> {
    let at = metadata_body_start(value)?;
    let old = format!("\"resourceVersion\":\"{from}\"");
    let start = at + memchr::memmem::find(&value[at..], old.as_bytes())?;
    // Only a key of `metadata` itself: the field must follow `{` or `,` of that object, and
    // the text before it must hold no other object opened inside metadata.
    let before = &value[at..start];
    let nested = before.iter().filter(|b| **b == b'{').count()
        != before.iter().filter(|b| **b == b'}').count();
    if nested
        || !matches!(
            value[..start]
                .iter()
                .rev()
                .find(|b| !b.is_ascii_whitespace()),
            Some(b'{' | b',')
        )
    {
        return None;
    }
    let new = format!("\"resourceVersion\":\"{to}\"");
    let mut out = Vec::with_capacity(value.len() + new.len() - old.len());
    out.extend_from_slice(&value[..start]);
    out.extend_from_slice(new.as_bytes());
    out.extend_from_slice(&value[start + old.len()..]);
    Some(Bytes::from(out))
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

/// Deepest nesting of arrays and objects a stored object may have. The JSON decoder reads 127
/// levels; lists, watch events and tables wrap an object in a few more, and every reader (the
/// server's own components, serde-based clients) must still read it back.
pub const MAX_DEPTH: usize = 100;

/// Levels of arrays and objects in `value` (a scalar has none).
pub fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut pending = vec![(value, 0usize)];
    while let Some((v, above)) = pending.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        deepest = deepest.max(above + 1);
        pending.extend(
            children
                .filter(|c| c.is_array() || c.is_object())
                .map(|c| (c, above + 1)),
        );
    }
    deepest
}

pub fn too_deep_message() -> String {
    format!("the object would be nested more than {MAX_DEPTH} levels deep")
}

/// Refuses an object nested deeper than [`MAX_DEPTH`], as a body that cannot be decoded.
pub fn check_depth(r: &crate::resources::ResourceType, obj: &Value) -> ApiResult<()> {
    if depth(obj) > MAX_DEPTH {
        return Err(ApiError::bad_request(format!(
            "{} in version \"{}\" cannot be handled as a {}: {}",
            r.kind,
            r.version,
            r.kind,
            too_deep_message()
        )));
    }
    Ok(())
}

/// The length of `value` encoded as JSON, without keeping the encoding.
pub fn encoded_len(value: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

pub fn decode(bytes: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(bytes).map_err(|e| ApiError::internal(format!("stored object: {e}")))
}

/// Decodes a stored object leaving out `metadata.managedFields`, without building them.
pub fn decode_without_managed_fields(bytes: &[u8]) -> ApiResult<Value> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    WithoutManagedFields { top: true }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| ApiError::internal(format!("stored object: {e}")))
}

/// Decodes a whole value except `managedFields` under the top-level `metadata`.
struct WithoutManagedFields {
    top: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for WithoutManagedFields {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for WithoutManagedFields {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if self.top && key == "metadata" {
                let meta = map.next_value_seed(WithoutManagedFields { top: false })?;
                out.insert(key, meta);
            } else if !self.top && key == "managedFields" {
                map.next_value::<serde::de::IgnoredAny>()?;
            } else {
                out.insert(key, map.next_value()?);
            }
        }
        Ok(Value::Object(out))
    }
}

/// The parts of an object something reads (a selector, say): a tree of keys whose leaves keep
/// their whole value. Decoding through it skips everything else without building it, which
/// costs a fraction of decoding the whole object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    children: std::collections::BTreeMap<String, Projection>,
    whole: bool,
}

impl Projection {
    /// A projection that keeps the whole object.
    pub fn everything() -> Self {
        Projection {
            children: Default::default(),
            whole: true,
        }
    }

    /// Also keeps the value at `path` (object keys from the root).
    pub fn keep<'a>(&mut self, path: impl IntoIterator<Item = &'a str>) {
        if self.whole {
            return;
        }
        let mut node = self;
        for key in path {
            node = node.children.entry(key.to_string()).or_default();
            if node.whole {
                return;
            }
        }
        node.whole = true;
        node.children.clear();
    }

    /// Decodes the kept parts of a stored object; objects on the way to them stay objects, a
    /// kept path that is missing or not under an object is absent.
    pub fn decode(&self, bytes: &[u8]) -> ApiResult<Value> {
        use serde::de::DeserializeSeed;
        if self.whole {
            return decode(bytes);
        }
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let value = self
            .deserialize(&mut de)
            .and_then(|v| de.end().map(|()| v))
            .map_err(|e| ApiError::internal(format!("stored object: {e}")))?;
        Ok(value)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for &Projection {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        use serde::Deserialize;
        if self.whole {
            Value::deserialize(d)
        } else {
            d.deserialize_any(ProjectionVisitor(self))
        }
    }
}

struct ProjectionVisitor<'p>(&'p Projection);

/// A map key, borrowed from the input when it has no escapes.
struct KeySeed;

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_string()))
    }
}

impl<'de> serde::de::Visitor<'de> for ProjectionVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match self.0.children.get(key.as_ref()) {
                Some(child) => {
                    out.insert(key.into_owned(), map.next_value_seed(child)?);
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_str<E>(self, _: &str) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
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
    Some(rv)
        .filter(|rv| rv.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|rv| rv.parse::<u64>().ok())
        .and_then(|n| i64::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| ApiError::unparsable_resource_version(rv))
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

    #[test]
    fn resource_version_is_replaced_in_place() {
        let obj = json!({"apiVersion": "v1", "involvedObject": {"resourceVersion": "7"},
            "metadata": {"annotations": {"a": "{\"resourceVersion\":\"7\"}"}, "labels": {"x": "y"},
                         "name": "n", "resourceVersion": "7"}});
        let bytes = serde_json::to_vec(&obj).unwrap();
        let out = replace_resource_version(&bytes, 7, 9).unwrap();
        let mut want = obj.clone();
        want["metadata"]["resourceVersion"] = json!("9");
        assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), want);
        assert!(replace_resource_version(&bytes, 8, 9).is_none());
        let nested = br#"{"metadata":{"labels":{"resourceVersion":"7"}}}"#;
        assert!(replace_resource_version(nested, 7, 9).is_none());
    }

    #[test]
    fn objects_are_the_same_but_for_their_resource_version() {
        let old = json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "7"},
            "spec": {"nodeName": "n"}});
        let same = |next: Value| same_but_resource_version(&next, &old);
        assert!(same(
            json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"nodeName": "n"}})
        ));
        assert!(same(
            json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "9"},
            "spec": {"nodeName": "n"}})
        ));
        assert!(!same(
            json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {}})
        ));
        assert!(!same(
            json!({"kind": "Pod", "metadata": {"name": "p", "uid": "u"},
            "spec": {"nodeName": "n"}})
        ));
        assert!(!same(
            json!({"kind": "Pod", "metadata": {"name": "q"}, "spec": {"nodeName": "n"}})
        ));
        assert!(!same(
            json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"nodeName": "n"},
            "status": {}})
        ));
        assert!(!same(
            json!({"kind": "Pod", "spec": {"nodeName": "n"}, "status": {}})
        ));
        let no_rv = json!({"metadata": {"name": "p"}});
        assert!(same_but_resource_version(
            &no_rv,
            &json!({"metadata": {"name": "p"}})
        ));
        assert!(!same_but_resource_version(
            &no_rv,
            &json!({"metadata": {"resourceVersion": "1"}})
        ));
    }

    #[test]
    fn at_reads_as_pointer_does() {
        let v = json!({"a": {"b/c": 1, "d~e": 2, "list": [10, 20], "": 3}, "0": 4});
        for p in [
            "",
            "/a",
            "/a/b~1c",
            "/a/d~0e",
            "/a/list/1",
            "/a/list/01",
            "/a/list/+1",
            "/a/list/9",
            "/a/",
            "/0",
            "a",
            "/a/list/x",
            "/missing/x",
        ] {
            assert_eq!(v.at(p), v.pointer(p), "{p}");
        }
    }

    #[test]
    fn managed_fields_are_left_out() {
        let bytes = br#"{"metadata":{"name":"a","managedFields":[{"manager":"m"}]},"spec":{"managedFields":1}}"#;
        assert_eq!(
            decode_without_managed_fields(bytes).unwrap(),
            json!({"metadata": {"name": "a"}, "spec": {"managedFields": 1}})
        );
        assert!(decode_without_managed_fields(b"[1]").is_err());
    }

    #[test]
    fn projection_keeps_only_the_asked_paths() {
        let bytes = br#"{"kind":"Pod","metadata":{"name":"a","labels":{"x":"1"},"uid":"u"},
            "spec":{"nodeName":"n","containers":[{"name":"c"}]},"status":{"phase":"Running","podIPs":[{"ip":"1"}]},
            "weird":"\u0041","metadata2":[1,2]}"#;
        let mut p = Projection::default();
        p.keep(["metadata", "labels"]);
        p.keep(["metadata", "name"]);
        p.keep(["status", "podIPs"]);
        p.keep(["spec", "nodeName", "deeper"]);
        assert_eq!(
            p.decode(bytes).unwrap(),
            json!({"metadata": {"name": "a", "labels": {"x": "1"}},
                   "spec": {"nodeName": null}, "status": {"podIPs": [{"ip": "1"}]}})
        );
        let whole = Projection::everything().decode(bytes).unwrap();
        assert_eq!(whole, decode(bytes).unwrap());
        assert!(p.decode(b"{\"metadata\":").is_err());
        assert!(p.decode(b"{} x").is_err());
    }

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
