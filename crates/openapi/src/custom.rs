//! Custom resource types in the published documents: one v3 document per group-version of the
//! served CRD versions, their entries in the `/openapi/v3` index, and their part of the v2
//! document.
//!
//! The API server reports its custom types with a generation number that changes whenever
//! they may have changed ([`OpenApi::sync_custom`]); the types are read again only then. A
//! group-version's hash is derived from its types and their schemas, so a document whose
//! inputs did not change keeps its hash and its built body. Bodies, the merged index and the
//! v2 document are built on first request; the built-in documents are never rebuilt, and a
//! server without custom types holds nothing here.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::{
    OpenApi, ResourceType, ServedType,
    catalog::Catalog,
    content_hash,
    crdschema::{self, Form},
    index_path,
    kinds::names,
    paths::PathsBuilder,
    v2,
};

/// Every verb a custom resource is served with.
const CUSTOM_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A resource type served from one version of a CustomResourceDefinition.
#[derive(Debug, Clone)]
pub struct CustomResource {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub plural: String,
    pub namespaced: bool,
    /// `status` and `scale` when the version has them.
    pub subresources: Vec<String>,
    /// The version's `openAPIV3Schema`, if it has one.
    pub schema: Option<Arc<Value>>,
}

impl CustomResource {
    fn served(&self) -> ServedType {
        ServedType {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
            namespaced: self.namespaced,
            subresources: self.subresources.clone(),
            verbs: CUSTOM_VERBS.iter().map(|verb| (*verb).to_owned()).collect(),
        }
    }
}

/// The custom types of one group-version and its document, once built.
struct CustomGroupVersion {
    resources: Vec<CustomResource>,
    hash: String,
    body: OnceLock<Bytes>,
}

/// What is published for custom types, as of the last synchronized generation.
#[derive(Default)]
pub(crate) struct CustomDocuments {
    generation: Option<u64>,
    /// Keyed by the index path (`apis/example.com/v1`).
    by_path: BTreeMap<String, Arc<CustomGroupVersion>>,
    /// Every group-version's hash, in order: identifies the whole set.
    key: String,
    /// The index with built-in and custom entries.
    index: Option<Bytes>,
    /// The v2 document with the custom part, and the key it was built for.
    v2: Option<(String, Bytes)>,
}

impl OpenApi {
    /// Publishes the custom types `types` returns. `generation` must change whenever they may
    /// have changed; `types` is called only when it did. Group-versions of built-in kinds keep
    /// their built-in document.
    pub fn sync_custom(&self, generation: u64, types: impl FnOnce() -> Vec<CustomResource>) {
        let mut custom = self.custom.lock().unwrap();
        if custom.generation == Some(generation) {
            return;
        }
        let mut grouped: BTreeMap<String, Vec<CustomResource>> = BTreeMap::new();
        for resource in types() {
            let path = index_path(&resource.group, &resource.version);
            if !self.documents.by_path.contains_key(&path) {
                grouped.entry(path).or_default().push(resource);
            }
        }
        let previous = std::mem::take(&mut custom.by_path);
        for (path, mut resources) in grouped {
            resources.sort_by(|a, b| a.plural.cmp(&b.plural));
            let hash = group_version_hash(&path, &resources, self.documents.fingerprint);
            let document = match previous.get(&path) {
                Some(document) if document.hash == hash => Arc::clone(document),
                _ => Arc::new(CustomGroupVersion {
                    resources,
                    hash,
                    body: OnceLock::new(),
                }),
            };
            custom.by_path.insert(path, document);
        }
        let key: String = custom
            .by_path
            .iter()
            .map(|(path, document)| format!("{path}={};", document.hash))
            .collect();
        if key != custom.key {
            custom.key = key;
            custom.index = None;
        }
        if custom.by_path.is_empty() {
            custom.v2 = None;
        }
        custom.generation = Some(generation);
    }

    /// The index body with the custom group-versions, or `None` when there are none.
    pub(crate) fn custom_index(&self) -> Option<Bytes> {
        let mut custom = self.custom.lock().unwrap();
        if custom.by_path.is_empty() {
            return None;
        }
        let custom = &mut *custom;
        let by_path = &custom.by_path;
        let index = custom.index.get_or_insert_with(|| {
            let builtin = self
                .documents
                .by_path
                .iter()
                .map(|(path, document)| (path.as_str(), document.hash.as_str()));
            let added = by_path
                .iter()
                .map(|(path, document)| (path.as_str(), document.hash.as_str()));
            crate::index_body(builtin.chain(added))
        });
        Some(index.clone())
    }

    /// The document of a custom group-version, built on first request, and its hash.
    pub(crate) fn custom_document(&self, path: &str) -> Option<(Bytes, String)> {
        let document = Arc::clone(self.custom.lock().unwrap().by_path.get(path)?);
        let body = document
            .body
            .get_or_init(|| build(self.documents.catalog(), &document.resources));
        Some((body.clone(), document.hash.clone()))
    }

    pub(crate) fn custom_hash(&self, path: &str) -> Option<String> {
        let custom = self.custom.lock().unwrap();
        Some(custom.by_path.get(path)?.hash.clone())
    }

    /// The v2 document with the custom types' part appended, or `None` when there are none.
    pub(crate) fn custom_v2(&self) -> Option<Bytes> {
        let (key, documents) = {
            let custom = self.custom.lock().unwrap();
            if custom.by_path.is_empty() {
                return None;
            }
            if let Some((key, body)) = &custom.v2
                && *key == custom.key
            {
                return Some(body.clone());
            }
            let documents: Vec<_> = custom.by_path.values().cloned().collect();
            (custom.key.clone(), documents)
        };
        let resources: Vec<&CustomResource> = documents.iter().flat_map(|d| &d.resources).collect();
        let served: Vec<ServedType> = resources.iter().map(|r| r.served()).collect();
        let definitions: Map<String, Value> = resources
            .iter()
            .flat_map(|resource| crdschema::definitions(resource, Form::V2))
            .collect();
        let builtin = self.documents.v2();
        let part = v2::encode_custom(
            self.documents.catalog(),
            &self.documents.types,
            &served,
            &definitions,
        );
        let mut body = Vec::with_capacity(builtin.len() + part.len());
        body.extend_from_slice(&builtin);
        body.extend_from_slice(&part);
        let body = Bytes::from(body);
        let mut custom = self.custom.lock().unwrap();
        if custom.key == key {
            custom.v2 = Some((key, body.clone()));
        }
        Some(body)
    }
}

/// The hash of a custom group-version document, from everything it is built from.
fn group_version_hash(
    path: &str,
    resources: &[CustomResource],
    catalog_fingerprint: u64,
) -> String {
    let mut input = format!(
        "{}\ncustom\n{path}\n{catalog_fingerprint:016x}\n",
        env!("CARGO_PKG_VERSION")
    );
    for resource in resources {
        input.push_str(&format!(
            "{} {} {} {} {} {:?}\n",
            resource.group,
            resource.version,
            resource.kind,
            resource.plural,
            resource.namespaced,
            resource.subresources
        ));
        if let Some(schema) = &resource.schema {
            input.push_str(&schema.to_string());
        }
        input.push('\n');
    }
    content_hash(input.as_bytes())
}

/// Serializes the OpenAPI 3.0 document of one custom group-version: its paths, its kinds'
/// schemas and the shared definitions they refer to, so that the document stands alone.
fn build(catalog: &Catalog, resources: &[CustomResource]) -> Bytes {
    let mut builder = PathsBuilder::new(catalog);
    let mut schemas = Map::new();
    for resource in resources {
        let subresources: Vec<&str> = resource.subresources.iter().map(String::as_str).collect();
        builder.add(&ResourceType {
            group: &resource.group,
            version: &resource.version,
            kind: &resource.kind,
            plural: &resource.plural,
            namespaced: resource.namespaced,
            subresources: &subresources,
            verbs: CUSTOM_VERBS,
        });
        schemas.extend(crdschema::definitions(resource, Form::V3));
    }
    let PathsBuilder {
        mut paths, roots, ..
    } = builder;
    json_only(&mut paths);
    let shared = roots
        .iter()
        .map(String::as_str)
        .filter(|name| !schemas.contains_key(*name))
        .chain([names::OBJECT_META, names::LIST_META]);
    for name in catalog.closure(shared) {
        if let Some(schema) = catalog.definitions.get(&name) {
            schemas.insert(name, schema.clone());
        }
    }
    crate::document_body(paths, schemas)
}

/// Media types custom resources are not served in: protobuf, strategic merge patches.
const NOT_FOR_CUSTOM: &[&str] = &["protobuf", "strategic-merge-patch"];

/// Drops the media types of [`NOT_FOR_CUSTOM`] from every request and response body.
fn json_only(paths: &mut Map<String, Value>) {
    let keep = |media: &String| !NOT_FOR_CUSTOM.iter().any(|word| media.contains(word));
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
    {
        if let Some(Value::Object(content)) = operation
            .get_mut("requestBody")
            .and_then(|body| body.get_mut("content"))
        {
            content.retain(|media, _| keep(media));
        }
        for response in operation
            .get_mut("responses")
            .and_then(Value::as_object_mut)
            .into_iter()
            .flat_map(|responses| responses.values_mut())
        {
            if let Some(Value::Object(content)) = response.get_mut("content") {
                content.retain(|media, _| keep(media));
            }
        }
    }
}

#[cfg(test)]
#[path = "custom_tests.rs"]
mod tests;
