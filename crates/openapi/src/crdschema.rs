//! The component schemas of a custom resource version, as kube-apiserver publishes them: the
//! CRD's `openAPIV3Schema` with the type meta fields and `metadata` put in, named after the
//! reversed group (`com.coreos.monitoring.v1.ServiceMonitor`), plus its list kind.
//!
//! OpenAPI v3 documents get the schema unfolded (`x-kubernetes-int-or-string` as its `anyOf`,
//! embedded resources with their type meta fields); the v2 document gets what Swagger 2.0 and
//! kubectl's v2 reader can take (see [`to_v2`]).

use serde_json::{Map, Value, json};

use crate::{
    CustomResource,
    catalog::{gvk_extension, open_kind_definition_name, schema_ref},
    kinds::names,
};

/// Which document the schemas are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    V3,
    V2,
}

const API_VERSION: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const OBJECT_METADATA: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const LIST_METADATA: &str = "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";

/// The definition name of a custom kind: `com.example.v1.Widget`.
pub(crate) fn kind_name(resource: &CustomResource) -> String {
    open_kind_definition_name(&resource.group, &resource.version, &resource.kind)
}

/// The kind's and its list's definitions, by name.
pub(crate) fn definitions(resource: &CustomResource, form: Form) -> [(String, Value); 2] {
    let name = kind_name(resource);
    let list = list_definition(resource, &name, form);
    [
        (name.clone(), kind_definition(resource, form)),
        (format!("{name}List"), list),
    ]
}

fn kind_definition(resource: &CustomResource, form: Form) -> Value {
    let mut schema = match &resource.schema {
        Some(schema) if schema.is_object() => (**schema).clone(),
        _ => json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true }),
    };
    unfold(&mut schema);
    if form == Form::V2 {
        to_v2(&mut schema);
    }
    let object = schema.as_object_mut().expect("an object schema");
    let properties = object
        .entry("properties")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("properties are an object");
    add_type_meta(properties);
    properties.insert(
        "metadata".into(),
        meta_reference(names::OBJECT_META, OBJECT_METADATA, form),
    );
    object.insert(
        "x-kubernetes-group-version-kind".into(),
        gvk_extension(&resource.group, &resource.version, &resource.kind),
    );
    schema
}

fn list_definition(resource: &CustomResource, item: &str, form: Form) -> Value {
    let list_kind = format!("{}List", resource.kind);
    let mut properties = Map::new();
    add_type_meta(&mut properties);
    properties.insert(
        "items".into(),
        json!({
            "description": format!("List of {}. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md", resource.plural),
            "type": "array",
            "items": schema_ref(item),
        }),
    );
    properties.insert(
        "metadata".into(),
        meta_reference(names::LIST_META, LIST_METADATA, form),
    );
    json!({
        "description": format!("{list_kind} is a list of {}", resource.kind),
        "type": "object",
        "required": ["items"],
        "properties": properties,
        "x-kubernetes-group-version-kind": gvk_extension(&resource.group, &resource.version, &list_kind),
    })
}

fn add_type_meta(properties: &mut Map<String, Value>) {
    for (field, description) in [("apiVersion", API_VERSION), ("kind", KIND)] {
        properties.insert(
            field.into(),
            json!({ "description": description, "type": "string" }),
        );
    }
}

/// `metadata` as kube-apiserver writes it: v3 wraps the reference in `allOf` with an empty
/// default, v2 puts the description beside a plain `$ref`.
fn meta_reference(name: &str, description: &str, form: Form) -> Value {
    match form {
        Form::V3 => {
            json!({ "allOf": [schema_ref(name)], "default": {}, "description": description })
        }
        Form::V2 => {
            let mut reference = schema_ref(name);
            reference["description"] = description.into();
            reference
        }
    }
}

/// The child schemas of a node: properties, items and additional properties.
fn children(object: &mut Map<String, Value>) -> Vec<&mut Value> {
    let mut found = Vec::new();
    for (key, value) in object.iter_mut() {
        match (key.as_str(), value) {
            ("properties", Value::Object(properties)) => found.extend(properties.values_mut()),
            ("items" | "additionalProperties", child @ Value::Object(_)) => found.push(child),
            _ => {}
        }
    }
    found
}

/// Expands the vendor extensions kube-apiserver expands before publishing: an int-or-string
/// without junctors gets `anyOf: [integer, string]`, an embedded resource its type meta and
/// `metadata` properties.
pub(crate) fn unfold(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if flag(object, "x-kubernetes-int-or-string")
        && !object.contains_key("anyOf")
        && !object.contains_key("allOf")
    {
        object.insert(
            "anyOf".into(),
            json!([{ "type": "integer" }, { "type": "string" }]),
        );
    }
    if flag(object, "x-kubernetes-embedded-resource")
        && let Some(properties) = object
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
    {
        for (field, kind) in [
            ("apiVersion", "string"),
            ("kind", "string"),
            ("metadata", "object"),
        ] {
            properties
                .entry(field)
                .or_insert_with(|| json!({ "type": kind }));
        }
    }
    for child in children(object) {
        unfold(child);
    }
}

fn flag(object: &Map<String, Value>, name: &str) -> bool {
    object.get(name) == Some(&Value::Bool(true))
}

/// Keywords Swagger 2.0 has no place for; kube-apiserver drops them from the v2 document.
const V3_ONLY: &[&str] = &["allOf", "anyOf", "oneOf", "not"];

/// Converts a CRD schema for the v2 document as kube-apiserver does: junctors are dropped,
/// a nullable node loses its type, items and properties (kubectl's v2 reader cannot type a
/// value that may be null), a node preserving unknown fields loses its items and properties,
/// an array left without items loses its type, and nullable fields are no longer required.
/// `x-kubernetes-*` extensions stay.
pub(crate) fn to_v2(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    let nullable_fields: Vec<String> = object
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(_, field)| field.get("nullable") == Some(&Value::Bool(true)))
        .map(|(name, _)| name.clone())
        .collect();
    let nullable_values = object
        .get("additionalProperties")
        .and_then(|values| values.get("nullable"))
        == Some(&Value::Bool(true));
    for keyword in V3_ONLY {
        object.remove(*keyword);
    }
    if object.remove("nullable") == Some(Value::Bool(true)) {
        for keyword in ["type", "items", "properties"] {
            object.remove(keyword);
        }
    }
    if flag(object, "x-kubernetes-preserve-unknown-fields") {
        object.remove("items");
        object.remove("properties");
    }
    if object.get("type").and_then(Value::as_str) == Some("array") && !object.contains_key("items")
    {
        object.remove("type");
    }
    if nullable_values {
        object.remove("required");
    } else if let Some(Value::Array(required)) = object.get_mut("required") {
        required.retain(|field| {
            !field
                .as_str()
                .is_some_and(|field| nullable_fields.iter().any(|n| n == field))
        });
        if required.is_empty() {
            object.remove("required");
        }
    }
    for child in children(object) {
        to_v2(child);
    }
}
