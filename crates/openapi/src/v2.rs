//! The `/openapi/v2` document: Swagger 2.0, protobuf-encoded as gnostic's
//! `openapi.v2.Document`.
//!
//! kubectl 1.27 and 1.28 read it for `kubectl explain` (the `definitions`, found through their
//! `x-kubernetes-group-version-kind` extension) and to decide whether the server validates fields
//! (a `fieldValidation` query parameter on the PATCH operation of the kind). The document therefore
//! holds every served kind's schema closure and one PATCH operation per patchable resource;
//! nothing else. Custom resources are appended as a second part ([`encode_custom`]), so the
//! built-in part is encoded once.
//!
//! Vendor extension values are gnostic `Any` messages carrying YAML text; JSON text is valid YAML,
//! so values are written as JSON.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::{
    ServedType,
    catalog::{Catalog, REF_PREFIX, collect_refs},
};

/// Field numbers of the gnostic `openapi.v2` messages used here.
mod field {
    pub mod document {
        pub const SWAGGER: u32 = 1;
        pub const INFO: u32 = 2;
        pub const PATHS: u32 = 8;
        pub const DEFINITIONS: u32 = 9;
    }
    pub mod info {
        pub const TITLE: u32 = 1;
        pub const VERSION: u32 = 2;
    }
    /// `Paths.path`, `Definitions.additional_properties`, `Properties.additional_properties`
    /// and `Responses.response_code` share the shape `repeated Named… = n` with `name = 1`,
    /// `value = 2`.
    pub mod named {
        pub const NAME: u32 = 1;
        pub const VALUE: u32 = 2;
    }
    pub const PATHS_PATH: u32 = 2;
    pub const DEFINITIONS_ENTRY: u32 = 1;
    pub const PROPERTIES_ENTRY: u32 = 1;
    pub const PATH_ITEM_PATCH: u32 = 8;
    pub mod operation {
        pub const DESCRIPTION: u32 = 3;
        pub const OPERATION_ID: u32 = 5;
        pub const PARAMETERS: u32 = 8;
        pub const RESPONSES: u32 = 9;
        pub const VENDOR_EXTENSION: u32 = 13;
    }
    pub const PARAMETERS_ITEM_PARAMETER: u32 = 1;
    pub const PARAMETER_BODY: u32 = 1;
    pub const PARAMETER_NON_BODY: u32 = 2;
    pub mod body_parameter {
        pub const NAME: u32 = 2;
        pub const IN: u32 = 3;
        pub const REQUIRED: u32 = 4;
        pub const SCHEMA: u32 = 5;
    }
    pub const NON_BODY_QUERY: u32 = 3;
    pub mod query_parameter {
        pub const IN: u32 = 2;
        pub const DESCRIPTION: u32 = 3;
        pub const NAME: u32 = 4;
        pub const TYPE: u32 = 6;
        pub const UNIQUE_ITEMS: u32 = 20;
    }
    pub const RESPONSES_CODE: u32 = 1;
    pub const RESPONSE_VALUE_RESPONSE: u32 = 1;
    pub mod response {
        pub const DESCRIPTION: u32 = 1;
        pub const SCHEMA: u32 = 2;
    }
    pub const SCHEMA_ITEM_SCHEMA: u32 = 1;
    pub mod schema {
        pub const REF: u32 = 1;
        pub const FORMAT: u32 = 2;
        pub const DESCRIPTION: u32 = 4;
        pub const REQUIRED: u32 = 19;
        pub const ADDITIONAL_PROPERTIES: u32 = 21;
        pub const TYPE: u32 = 22;
        pub const ITEMS: u32 = 23;
        pub const PROPERTIES: u32 = 25;
        pub const VENDOR_EXTENSION: u32 = 31;
    }
    pub const ADDITIONAL_PROPERTIES_SCHEMA: u32 = 1;
    pub const TYPE_ITEM_VALUE: u32 = 1;
    pub const ITEMS_ITEM_SCHEMA: u32 = 1;
    pub const ANY_YAML: u32 = 2;
}

/// A protobuf message being written.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.varint(u64::from(field << 3 | 2));
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, text: &str) {
        if !text.is_empty() {
            self.bytes(field, text.as_bytes());
        }
    }

    fn bool(&mut self, field: u32, value: bool) {
        if value {
            self.varint(u64::from(field << 3));
            self.varint(1);
        }
    }

    fn message(&mut self, field: u32, build: impl FnOnce(&mut Message)) {
        let mut inner = Message::default();
        build(&mut inner);
        self.bytes(field, &inner.0);
    }

    /// A `NamedAny` vendor extension whose value is `value` as YAML (JSON) text.
    fn extension(&mut self, field: u32, name: &str, value: &Value) {
        self.message(field, |named| {
            named.string(field::named::NAME, name);
            named.message(field::named::VALUE, |any| {
                any.string(field::ANY_YAML, &value.to_string());
            });
        });
    }
}

/// Encodes the document for these served types.
pub(crate) fn encode(catalog: &Catalog, types: &[ServedType]) -> Bytes {
    let mut document = Message::default();
    document.string(field::document::SWAGGER, "2.0");
    document.message(field::document::INFO, |info| {
        info.string(field::info::TITLE, "Kubernetes");
        info.string(field::info::VERSION, "v1.33.0");
    });
    write_paths(&mut document, catalog, types);
    let names = catalog.closure(kind_definitions(catalog, types).iter().map(String::as_str));
    write_definitions(
        &mut document,
        names
            .iter()
            .filter_map(|name| Some((name.as_str(), catalog.definitions.get(name)?))),
    );
    Bytes::from(document.0)
}

/// The part of the document for custom types, to be appended to the built-in document: a
/// protobuf parser merges repeated occurrences of the `paths` and `definitions` fields, so
/// the concatenation reads as one document and the built-in part is never encoded again.
/// `definitions` are the custom types' schemas in v2 form; the shared definitions they refer
/// to are added unless the built-in part (for `builtin`) has them already.
pub(crate) fn encode_custom(
    catalog: &Catalog,
    builtin: &[ServedType],
    custom: &[ServedType],
    definitions: &Map<String, Value>,
) -> Vec<u8> {
    let mut document = Message::default();
    write_paths(&mut document, catalog, custom);
    let mut shared = BTreeSet::new();
    for schema in definitions.values() {
        collect_refs(schema, &mut |name| {
            if !definitions.contains_key(name) {
                shared.insert(name.to_owned());
            }
        });
    }
    let present = catalog.closure(
        kind_definitions(catalog, builtin)
            .iter()
            .map(String::as_str),
    );
    let shared: Vec<String> = catalog
        .closure(shared.iter().map(String::as_str))
        .into_iter()
        .filter(|name| !present.contains(name))
        .collect();
    write_definitions(
        &mut document,
        definitions
            .iter()
            .map(|(name, schema)| (name.as_str(), schema))
            .chain(
                shared
                    .iter()
                    .filter_map(|name| Some((name.as_str(), catalog.definitions.get(name)?))),
            ),
    );
    document.0
}

fn kind_definitions(catalog: &Catalog, types: &[ServedType]) -> Vec<String> {
    types
        .iter()
        .map(|served| catalog.kind_definition(&served.group, &served.version, &served.kind))
        .collect()
}

/// One PATCH operation per patchable type.
fn write_paths(document: &mut Message, catalog: &Catalog, types: &[ServedType]) {
    document.message(field::document::PATHS, |paths| {
        for served in types
            .iter()
            .filter(|t| t.verbs.iter().any(|verb| verb == "patch"))
        {
            let definition = catalog.kind_definition(&served.group, &served.version, &served.kind);
            paths.message(field::PATHS_PATH, |named| {
                named.string(field::named::NAME, &item_path(served));
                named.message(field::named::VALUE, |item| {
                    item.message(field::PATH_ITEM_PATCH, |operation| {
                        patch_operation(operation, served, &definition);
                    });
                });
            });
        }
    });
}

fn write_definitions<'a>(
    document: &mut Message,
    definitions: impl Iterator<Item = (&'a str, &'a Value)>,
) {
    document.message(field::document::DEFINITIONS, |message| {
        for (name, schema) in definitions {
            message.message(field::DEFINITIONS_ENTRY, |named| {
                named.string(field::named::NAME, name);
                named.message(field::named::VALUE, |message| write_schema(message, schema));
            });
        }
    });
}

fn item_path(served: &ServedType) -> String {
    let prefix = if served.group.is_empty() {
        format!("/api/{}", served.version)
    } else {
        format!("/apis/{}/{}", served.group, served.version)
    };
    let namespace = if served.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    format!("{prefix}{namespace}/{}/{{name}}", served.plural)
}

fn patch_operation(operation: &mut Message, served: &ServedType, definition: &str) {
    operation.string(
        field::operation::DESCRIPTION,
        &format!("partially update the specified {}", served.kind),
    );
    operation.string(
        field::operation::OPERATION_ID,
        &format!("patch{}", served.kind),
    );
    operation.message(field::operation::PARAMETERS, |item| {
        item.message(field::PARAMETERS_ITEM_PARAMETER, |parameter| {
            parameter.message(field::PARAMETER_BODY, |body| {
                body.string(field::body_parameter::NAME, "body");
                body.string(field::body_parameter::IN, "body");
                body.bool(field::body_parameter::REQUIRED, true);
                body.message(field::body_parameter::SCHEMA, |schema| {
                    schema.message(field::schema::TYPE, |types| {
                        types.string(field::TYPE_ITEM_VALUE, "object")
                    });
                });
            });
        });
    });
    for name in ["dryRun", "fieldManager", "fieldValidation", "force"] {
        operation.message(field::operation::PARAMETERS, |item| {
            item.message(field::PARAMETERS_ITEM_PARAMETER, |parameter| {
                parameter.message(field::PARAMETER_NON_BODY, |non_body| {
                    non_body.message(field::NON_BODY_QUERY, |query| {
                        query.string(field::query_parameter::IN, "query");
                        query.string(
                            field::query_parameter::DESCRIPTION,
                            "See the OpenAPI v3 document.",
                        );
                        query.string(field::query_parameter::NAME, name);
                        let kind = if name == "force" { "boolean" } else { "string" };
                        query.string(field::query_parameter::TYPE, kind);
                        query.bool(field::query_parameter::UNIQUE_ITEMS, true);
                    });
                });
            });
        });
    }
    operation.message(field::operation::RESPONSES, |responses| {
        responses.message(field::RESPONSES_CODE, |named| {
            named.string(field::named::NAME, "200");
            named.message(field::named::VALUE, |value| {
                value.message(field::RESPONSE_VALUE_RESPONSE, |response| {
                    response.string(field::response::DESCRIPTION, "OK");
                    response.message(field::response::SCHEMA, |item| {
                        item.message(field::SCHEMA_ITEM_SCHEMA, |schema| {
                            schema
                                .string(field::schema::REF, &format!("#/definitions/{definition}"));
                        });
                    });
                });
            });
        });
    });
    operation.extension(
        field::operation::VENDOR_EXTENSION,
        "x-kubernetes-action",
        &Value::from("patch"),
    );
    operation.extension(
        field::operation::VENDOR_EXTENSION,
        "x-kubernetes-group-version-kind",
        &serde_json::json!({ "group": served.group, "kind": served.kind, "version": served.version }),
    );
}

/// Writes an OpenAPI 3.0 schema from the catalog as a Swagger 2.0 `Schema` message.
fn write_schema(message: &mut Message, schema: &Value) {
    let Some(object) = schema.as_object() else {
        return;
    };
    if let Some(reference) = single_reference(object) {
        message.string(field::schema::REF, &format!("#/definitions/{reference}"));
    }
    if let Some(format) = object.get("format").and_then(Value::as_str) {
        message.string(field::schema::FORMAT, format);
    }
    if let Some(description) = object.get("description").and_then(Value::as_str) {
        message.string(field::schema::DESCRIPTION, description);
    }
    for required in object
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(required) = required.as_str() {
            message.string(field::schema::REQUIRED, required);
        }
    }
    if let Some(values @ Value::Object(_)) = object.get("additionalProperties") {
        message.message(field::schema::ADDITIONAL_PROPERTIES, |additional| {
            additional.message(field::ADDITIONAL_PROPERTIES_SCHEMA, |inner| {
                write_schema(inner, values)
            });
        });
    }
    if let Some(kind) = object.get("type").and_then(Value::as_str) {
        message.message(field::schema::TYPE, |types| {
            types.string(field::TYPE_ITEM_VALUE, kind)
        });
    }
    if let Some(items) = object.get("items") {
        message.message(field::schema::ITEMS, |items_item| {
            items_item.message(field::ITEMS_ITEM_SCHEMA, |inner| write_schema(inner, items));
        });
    }
    if let Some(Value::Object(properties)) = object.get("properties") {
        message.message(field::schema::PROPERTIES, |entries| {
            for (name, property) in properties {
                entries.message(field::PROPERTIES_ENTRY, |named| {
                    named.string(field::named::NAME, name);
                    named.message(field::named::VALUE, |inner| write_schema(inner, property));
                });
            }
        });
    }
    for (name, value) in object.iter().filter(|(name, _)| name.starts_with("x-")) {
        message.extension(field::schema::VENDOR_EXTENSION, name, value);
    }
}

/// The definition a schema points at: `{"$ref": …}` or `{"allOf": [{"$ref": …}]}`.
fn single_reference(object: &Map<String, Value>) -> Option<&str> {
    let reference = match object
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        Some([only]) => only.get("$ref"),
        _ => object.get("$ref"),
    };
    reference?.as_str()?.strip_prefix(REF_PREFIX)
}
