//! The schema catalog: every component schema any document may contain, keyed by upstream
//! definition name, already in OpenAPI 3.0 form.
//!
//! Schemas come from k8s-openapi's `JsonSchema` implementations through a schemars generator
//! configured for OpenAPI 3.0 (references point at `#/components/schemas/…`, a `$ref` with
//! sibling keywords is wrapped in `allOf`). On top of that the catalog adds what k8s-openapi does
//! not carry: the `x-kubernetes-group-version-kind` of every kind, the merge metadata of
//! [`crate::extensions`], list kinds (`PodList`, …) and open schemas for served kinds without a known type.

use std::collections::{BTreeSet, HashMap};

use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

use crate::{ResourceType, kinds};

/// Prefix of every reference into the catalog.
pub(crate) const REF_PREFIX: &str = "#/components/schemas/";

/// Identifies a kind: group ("" for core), version, kind.
pub(crate) type GroupVersionKind = (String, String, String);

pub(crate) struct Catalog {
    /// Definition name → schema.
    pub definitions: Map<String, Value>,
    /// Kind → definition name, for every kind with a schema.
    pub kind_definitions: HashMap<GroupVersionKind, String>,
    /// Kinds whose schema is open (served, but without a known type): accept any field.
    pub open_kinds: BTreeSet<GroupVersionKind>,
}

pub(crate) fn gvk(group: &str, version: &str, kind: &str) -> GroupVersionKind {
    (group.to_owned(), version.to_owned(), kind.to_owned())
}

pub(crate) fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{name}") })
}

pub(crate) fn gvk_extension(group: &str, version: &str, kind: &str) -> Value {
    json!([{ "group": group, "kind": kind, "version": version }])
}

impl Catalog {
    /// Generates the schemas of every built-in kind and adds open schemas for served kinds
    /// that have none.
    pub fn build(types: &[ResourceType<'_>]) -> Self {
        let mut generator = SchemaSettings::openapi3().into_generator();
        let mut kind_definitions = HashMap::new();
        for kind in kinds::BUILTIN_KINDS {
            let name = (kind.register)(&mut generator);
            kind_definitions.insert(gvk(kind.group, kind.version, kind.kind), name);
        }
        let mut definitions = generator.take_definitions(true);

        for kind in kinds::BUILTIN_KINDS {
            let name = &kind_definitions[&gvk(kind.group, kind.version, kind.kind)];
            let Some(Value::Object(schema)) = definitions.get_mut(name) else {
                continue;
            };
            // meta.k8s.io types are shared by every group; upstream tags Status with core/v1.
            let (group, version) = if kind.group == "meta.k8s.io" {
                ("", "v1")
            } else {
                (kind.group, kind.version)
            };
            if kind.group != "meta.k8s.io" || kind.kind == "Status" {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    gvk_extension(group, version, kind.kind),
                );
            }
            // k8s-openapi requires `metadata` because its Rust field is not optional; the API
            // does not.
            if let Some(Value::Array(required)) = schema.get_mut("required") {
                required.retain(|field| field != "metadata");
                if required.is_empty() {
                    schema.remove("required");
                }
            }
        }
        crate::extensions::add_extensions(&mut definitions);

        let mut catalog = Catalog {
            definitions,
            kind_definitions,
            open_kinds: BTreeSet::new(),
        };
        for resource in types {
            catalog.ensure_kind(resource.group, resource.version, resource.kind);
            if resource.verbs.contains(&"list") {
                catalog.ensure_list(resource.group, resource.version, resource.kind);
            }
        }
        catalog
    }

    /// The definition name of a kind (added by [`Catalog::build`] for every served kind).
    pub fn kind_definition(&self, group: &str, version: &str, kind: &str) -> String {
        self.kind_definitions
            .get(&gvk(group, version, kind))
            .cloned()
            .unwrap_or_else(|| open_kind_definition_name(group, version, kind))
    }

    /// The definition name of a kind's list (added by [`Catalog::build`] for every listable kind).
    pub fn list_definition(&self, group: &str, version: &str, kind: &str) -> String {
        format!("{}List", self.kind_definition(group, version, kind))
    }

    /// The definition name of a kind, adding an open schema for kinds without a known type.
    fn ensure_kind(&mut self, group: &str, version: &str, kind: &str) -> String {
        let key = gvk(group, version, kind);
        if let Some(name) = self.kind_definitions.get(&key) {
            return name.clone();
        }
        let name = open_kind_definition_name(group, version, kind);
        self.definitions.insert(
            name.clone(),
            json!({
                "description": format!("{kind} is served without a published schema; any field is accepted."),
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": true,
                "x-kubernetes-group-version-kind": gvk_extension(group, version, kind),
            }),
        );
        self.kind_definitions.insert(key.clone(), name.clone());
        self.open_kinds.insert(key);
        name
    }

    /// The definition name of a kind's list (`…PodList`), adding the schema if missing.
    fn ensure_list(&mut self, group: &str, version: &str, kind: &str) -> String {
        let item_name = self.ensure_kind(group, version, kind);
        let list_name = format!("{item_name}List");
        if !self.definitions.contains_key(&list_name) {
            let list_kind = format!("{kind}List");
            self.definitions.insert(
                list_name.clone(),
                json!({
                    "description": format!("{list_kind} is a list of {kind} objects."),
                    "type": "object",
                    "properties": {
                        "apiVersion": {
                            "description": "APIVersion defines the versioned schema of this representation of an object.",
                            "type": "string",
                        },
                        "items": {
                            "description": format!("List of {kind} objects."),
                            "type": "array",
                            "items": schema_ref(&item_name),
                        },
                        "kind": {
                            "description": "Kind is a string value representing the REST resource this object represents.",
                            "type": "string",
                        },
                        "metadata": {
                            "allOf": [schema_ref(kinds::names::LIST_META)],
                            "description": "Standard list metadata.",
                        },
                    },
                    "required": ["items"],
                    "x-kubernetes-group-version-kind": gvk_extension(group, version, &list_kind),
                }),
            );
        }
        list_name
    }

    /// A cheap digest of the catalog's shape (definition names, their field names and the
    /// length of their descriptions), so that document hashes change when the schemas do.
    pub fn fingerprint(&self) -> u64 {
        const PRIME: u64 = 0x0000_0100_0000_01b3;
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        let mut feed = |bytes: &[u8]| {
            for &byte in bytes {
                hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
            }
        };
        for (name, schema) in &self.definitions {
            feed(name.as_bytes());
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for field in properties.keys() {
                    feed(field.as_bytes());
                }
            }
            let description = schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            feed(&description.len().to_le_bytes());
        }
        hash
    }

    /// The definition names reachable from `roots` through `$ref`s, roots included.
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut pending: Vec<String> = roots.into_iter().map(str::to_owned).collect();
        while let Some(name) = pending.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(schema) = self.definitions.get(&name) {
                collect_refs(schema, &mut |target| {
                    if !seen.contains(target) {
                        pending.push(target.to_owned());
                    }
                });
            }
        }
        seen
    }
}

/// Upstream names CRD-like schemas by the reversed group: `com.example.v1.Widget`.
pub(crate) fn open_kind_definition_name(group: &str, version: &str, kind: &str) -> String {
    let mut name: Vec<&str> = group
        .split('.')
        .filter(|part| !part.is_empty())
        .rev()
        .collect();
    if name.is_empty() {
        name.push("io.k8s.api.core");
    }
    name.push(version);
    name.push(kind);
    name.join(".")
}

/// Calls `found` with the definition name of every `$ref` inside `schema`.
pub(crate) fn collect_refs(schema: &Value, found: &mut impl FnMut(&str)) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object {
                if key == "$ref" {
                    if let Some(name) = value.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                        found(name);
                    }
                } else {
                    collect_refs(value, found);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, found)),
        _ => {}
    }
}
