//! What the fuzz targets share: the built-in kinds' schemas, a realistic Pod, and the split of
//! one input into a target document and a patch.

#![allow(dead_code)]

use std::sync::LazyLock;

use serde_json::Value;

/// The OpenAPI schemas and merge rules the API server builds at start.
pub static OPENAPI: LazyLock<openapi::OpenApi> = LazyLock::new(apiserver::build_openapi);

/// A running Pod with labels, owner, containers, tolerations and conditions.
pub static POD: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(include_str!("../seeds/pod.json")).unwrap());

/// Splits `data` at its first NUL byte into a target object and the rest. Without a NUL byte, or
/// when the part before it is not JSON, the target is [`POD`] and the rest is all of `data`.
pub fn target_and_rest(data: &[u8]) -> (Value, &[u8]) {
    if let Some(at) = data.iter().position(|&b| b == 0)
        && let Ok(target) = serde_json::from_slice::<Value>(&data[..at])
    {
        return (target, &data[at + 1..]);
    }
    (POD.clone(), data)
}

/// The built-in kind `object` claims to be (`apiVersion` and `kind`), else Pod.
pub fn resource_of(object: &Value) -> &'static apiserver::resources::ResourceType {
    let api_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("v1");
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("Pod");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    apiserver::resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
        .or_else(|| apiserver::resources::find("", "v1", "pods"))
        .expect("pods are a built-in resource")
}
