//! OpenAPI documents and strict field validation for the built-in Kubernetes kinds, and the
//! documents of custom resources.
//!
//! This crate owns what the API server publishes under `/openapi/v3` (a root index plus one
//! OpenAPI 3.0 document per group-version) and `/openapi/v2` (protobuf), and the unknown-field
//! check behind `fieldValidation=Strict`. Both are derived from the same schemas: those of the
//! k8s-openapi types, generated through schemars and named like upstream
//! (`io.k8s.api.core.v1.Pod`). Custom resources are published from their CRDs' schemas
//! (`custom.rs`), which the API server reports as they change.
//!
//! Clients rely on these documents for more than documentation: `kubectl explain` walks
//! `components.schemas`, and kubectl decides whether the server validates fields itself by looking
//! for a `fieldValidation` query parameter on the PATCH operation of the object's kind.
//!
//! The validation shapes and every document's hash are computed in [`OpenApi::new`]; the
//! schema catalog they come from is then dropped. Document bodies, and the catalog they are
//! serialized from, are built on the first request for a document and kept: most clusters are
//! never asked for them (only kubectl explain, apply and validating creates read them), and an
//! idle cluster should not hold megabytes of schemas.

mod catalog;
mod crdschema;
mod custom;
mod extensions;
mod kinds;
mod paths;
mod shapes;
mod v2;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, OnceLock},
};

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::{catalog::Catalog, paths::PathsBuilder, shapes::Shapes};

pub use custom::CustomResource;
pub use shapes::{ListType, MergeRules, SchemaNode};

/// Media type of the `/openapi/v2` body.
pub const V2_CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// One served resource type.
#[derive(Debug, Clone, Copy)]
pub struct ResourceType<'a> {
    /// API group, `""` for core.
    pub group: &'a str,
    /// API version, e.g. `"v1"`.
    pub version: &'a str,
    /// Kind, e.g. `"Pod"`.
    pub kind: &'a str,
    /// Resource name in URLs, e.g. `"pods"`.
    pub plural: &'a str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Served subresources, e.g. `["status", "scale", "binding", "eviction", "log", "finalize"]`.
    pub subresources: &'a [&'a str],
    /// Served verbs, e.g. `["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]`.
    pub verbs: &'a [&'a str],
}

/// Calls `f` with the borrowed form of these owned types.
fn with_resource_types<R>(types: &[ServedType], f: impl FnOnce(&[ResourceType<'_>]) -> R) -> R {
    let subresources: Vec<Vec<&str>> = types
        .iter()
        .map(|t| t.subresources.iter().map(String::as_str).collect())
        .collect();
    let verbs: Vec<Vec<&str>> = types
        .iter()
        .map(|t| t.verbs.iter().map(String::as_str).collect())
        .collect();
    let borrowed: Vec<ResourceType<'_>> = types
        .iter()
        .zip(subresources.iter().zip(&verbs))
        .map(|(t, (subresources, verbs))| ResourceType {
            group: &t.group,
            version: &t.version,
            kind: &t.kind,
            plural: &t.plural,
            namespaced: t.namespaced,
            subresources,
            verbs,
        })
        .collect();
    f(&borrowed)
}

/// A served resource type with owned strings, kept for building documents on demand.
#[derive(Debug, Clone)]
struct ServedType {
    group: String,
    version: String,
    kind: String,
    plural: String,
    namespaced: bool,
    subresources: Vec<String>,
    verbs: Vec<String>,
}

impl ServedType {
    fn new(resource: &ResourceType<'_>) -> Self {
        ServedType {
            group: resource.group.to_owned(),
            version: resource.version.to_owned(),
            kind: resource.kind.to_owned(),
            plural: resource.plural.to_owned(),
            namespaced: resource.namespaced,
            subresources: resource
                .subresources
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            verbs: resource.verbs.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The document of one group-version. Its hash is known from the start; the body is built on
/// first request.
struct GroupVersionDocument {
    resources: Vec<ServedType>,
    hash: String,
    body: OnceLock<Bytes>,
}

/// The built-in documents.
struct Documents {
    /// Built again from `types` on the first request for a document (it is deterministic, so
    /// the hashes computed from the start-up copy hold), then kept.
    catalog: OnceLock<Catalog>,
    /// Keyed by the index path: `api/v1`, `apis/apps/v1`.
    by_path: BTreeMap<String, GroupVersionDocument>,
    v2: OnceLock<Bytes>,
    types: Vec<ServedType>,
    /// [`Catalog::fingerprint`], an input of every document hash.
    fingerprint: u64,
}

/// The OpenAPI documents and validation shapes of a fixed set of resource types.
pub struct OpenApi {
    documents: Arc<Documents>,
    index: Bytes,
    shapes: Shapes,
    /// `group/version/kind` → root shape of that kind.
    kind_shapes: HashMap<String, shapes::ShapeId>,
    /// The root kinds without a known type merge by: only `metadata` is known.
    untyped_kind: shapes::ShapeId,
    /// The documents of custom resources.
    custom: Mutex<custom::CustomDocuments>,
}

impl OpenApi {
    /// Prepares the documents for these types.
    ///
    /// The index with every document's hash and the validation shapes are computed here, from
    /// a schema catalog that is dropped when this returns; document bodies are serialized on
    /// first request.
    pub fn new(types: &[ResourceType<'_>]) -> Self {
        let catalog = Catalog::build(types);

        let mut by_path: BTreeMap<String, GroupVersionDocument> = BTreeMap::new();
        for resource in types {
            by_path
                .entry(index_path(resource.group, resource.version))
                .or_insert_with(|| GroupVersionDocument {
                    resources: Vec::new(),
                    hash: String::new(),
                    body: OnceLock::new(),
                })
                .resources
                .push(ServedType::new(resource));
        }
        let catalog_fingerprint = catalog.fingerprint();
        for (path, document) in &mut by_path {
            document.hash = document_hash(path, &document.resources, catalog_fingerprint);
        }

        let index = index_body(
            by_path
                .iter()
                .map(|(path, document)| (path.as_str(), document.hash.as_str())),
        );

        let mut shapes = Shapes::new();
        let mut kind_shapes = HashMap::new();
        for ((group, version, kind), name) in &catalog.kind_definitions {
            if catalog
                .open_kinds
                .contains(&(group.clone(), version.clone(), kind.clone()))
            {
                continue;
            }
            let id = shapes.named(name, &catalog.definitions);
            kind_shapes.insert(format!("{group}/{version}/{kind}"), id);
        }
        let object_meta = shapes.named(kinds::names::OBJECT_META, &catalog.definitions);
        let untyped_kind = shapes.untyped_kind(object_meta);

        drop(catalog);
        let documents = Arc::new(Documents {
            catalog: OnceLock::new(),
            by_path,
            v2: OnceLock::new(),
            types: types.iter().map(ServedType::new).collect(),
            fingerprint: catalog_fingerprint,
        });

        OpenApi {
            documents,
            index,
            shapes,
            kind_shapes,
            untyped_kind,
            custom: Mutex::default(),
        }
    }

    /// The schema a kind's objects merge by: the built-in kind's, or for kinds without a known
    /// type (custom resources) one that knows only `metadata`, which every kind shares.
    pub fn kind_schema(&self, group: &str, version: &str, kind: &str) -> SchemaNode<'_> {
        let id = self
            .kind_shapes
            .get(&format!("{group}/{version}/{kind}"))
            .copied()
            .unwrap_or(self.untyped_kind);
        self.shapes.at(id)
    }

    /// `GET /openapi/v3` body: the path and hash of every group-version document.
    pub fn v3_index(&self) -> Bytes {
        self.custom_index().unwrap_or_else(|| self.index.clone())
    }

    /// `GET /openapi/v3/<path>` body for `api/v1`, `apis/apps/v1`, …; `None` if unknown.
    pub fn v3_document(&self, path: &str) -> Option<Bytes> {
        Some(self.v3_document_and_hash(path)?.0)
    }

    /// That body with its hash, taken together so that they match while custom types change.
    pub fn v3_document_and_hash(&self, path: &str) -> Option<(Bytes, String)> {
        let path = path.trim_matches('/');
        match (self.documents.body(path), self.documents.by_path.get(path)) {
            (Some(body), Some(document)) => Some((body, document.hash.clone())),
            _ => self.custom_document(path),
        }
    }

    /// The hash of that document (the value in the index), for `ETag` and `?hash=` handling.
    pub fn v3_hash(&self, path: &str) -> Option<String> {
        let path = path.trim_matches('/');
        match self.documents.by_path.get(path) {
            Some(document) => Some(document.hash.clone()),
            None => self.custom_hash(path),
        }
    }

    /// `GET /openapi/v2` body: a protobuf-encoded `openapi_v2.Document` ([`V2_CONTENT_TYPE`]).
    pub fn v2_document(&self) -> Bytes {
        self.custom_v2().unwrap_or_else(|| self.documents.v2())
    }

    /// The first field of `object` whose JSON type does not fit the kind's schema (a string for
    /// `spec.replicas`), as kube-apiserver's decoder reports it. Kinds without a known schema
    /// are not checked.
    pub fn type_mismatch(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        object: &Value,
    ) -> Option<shapes::TypeMismatch> {
        let &id = self.kind_shapes.get(&format!("{group}/{version}/{kind}"))?;
        self.shapes.type_mismatch(id, object, kind, &mut Vec::new())
    }

    /// Every field of `object` that the kind's schema does not know, as kube-apiserver names
    /// them in `strict decoding error: unknown field "spec.foo"` (`spec.foo`,
    /// `spec.containers[0].bar`). Kinds without a known schema are not checked.
    pub fn unknown_fields(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        object: &Value,
    ) -> Vec<String> {
        self.prune_unknown_fields(group, version, kind, &mut object.clone())
    }

    /// Removes the fields [`OpenApi::unknown_fields`] names from `object`, as kube-apiserver's
    /// decoder drops them, and returns their paths.
    pub fn prune_unknown_fields(
        &self,
        group: &str,
        version: &str,
        kind: &str,
        object: &mut Value,
    ) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(&id) = self.kind_shapes.get(&format!("{group}/{version}/{kind}")) {
            self.shapes
                .prune_unknown_fields(id, object, &mut String::new(), &mut found);
        }
        found
    }
}

impl Documents {
    fn catalog(&self) -> &Catalog {
        self.catalog
            .get_or_init(|| with_resource_types(&self.types, Catalog::build))
    }

    fn body(&self, path: &str) -> Option<Bytes> {
        let document = self.by_path.get(path)?;
        Some(
            document
                .body
                .get_or_init(|| self.build(&document.resources))
                .clone(),
        )
    }

    fn v2(&self) -> Bytes {
        self.v2
            .get_or_init(|| v2::encode(self.catalog(), &self.types))
            .clone()
    }

    /// Serializes the OpenAPI 3.0 document of one group-version.
    fn build(&self, resources: &[ServedType]) -> Bytes {
        let catalog = self.catalog();
        let mut builder = PathsBuilder::new(catalog);
        with_resource_types(resources, |types| {
            for resource in types {
                builder.add(resource);
            }
        });
        let PathsBuilder { paths, roots, .. } = builder;
        let schemas: Map<String, Value> = catalog
            .closure(roots.iter().map(String::as_str))
            .into_iter()
            .filter_map(|name| {
                catalog
                    .definitions
                    .get(&name)
                    .map(|schema| (name, schema.clone()))
            })
            .collect();
        document_body(paths, schemas)
    }
}

/// Serializes an OpenAPI 3.0 document.
fn document_body(paths: Map<String, Value>, schemas: Map<String, Value>) -> Bytes {
    let document = json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": schemas },
    });
    Bytes::from(serde_json::to_vec(&document).expect("a JSON value always serializes"))
}

/// Serializes the `/openapi/v3` index of these (path, hash) entries, sorted by path.
fn index_body<'a>(entries: impl Iterator<Item = (&'a str, &'a str)>) -> Bytes {
    let sorted: BTreeMap<&str, &str> = entries.collect();
    let paths: Map<String, Value> = sorted
        .into_iter()
        .map(|(path, hash)| {
            let url = format!("/openapi/v3/{path}?hash={hash}");
            (path.to_owned(), json!({ "serverRelativeURL": url }))
        })
        .collect();
    Bytes::from(
        serde_json::to_vec(&json!({ "paths": paths })).expect("a JSON value always serializes"),
    )
}

/// `""`/`v1` → `api/v1`; `apps`/`v1` → `apis/apps/v1`.
fn index_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The hash of a group-version document, derived from everything the document is built from:
/// this crate's version, the schema catalog and the group-version's resource types. Computing it
/// from the inputs rather than the body lets the index exist before any body is serialized.
fn document_hash(path: &str, resources: &[ServedType], catalog_fingerprint: u64) -> String {
    let mut input = format!(
        "{}\n{path}\n{catalog_fingerprint:016x}\n",
        env!("CARGO_PKG_VERSION")
    );
    for resource in resources {
        input.push_str(&format!("{resource:?}\n"));
    }
    content_hash(input.as_bytes())
}

/// A 128-bit FNV-1a digest in upper-case hex (two lanes with different offsets). Only needs to
/// change when the content changes; it is not a security boundary.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut lanes = [0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142_u64];
    for &byte in bytes {
        for lane in &mut lanes {
            *lane = (*lane ^ u64::from(byte)).wrapping_mul(PRIME);
        }
        lanes[1] = lanes[1].rotate_left(5);
    }
    format!("{:016X}{:016X}", lanes[0], lanes[1])
}

#[cfg(test)]
mod tests;
