use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::{OpenApi, ResourceType};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

const BUILTIN: &[ResourceType<'static>] = &[
    ResourceType {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        namespaced: true,
        subresources: &["status"],
        verbs: VERBS,
    },
    ResourceType {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        namespaced: true,
        subresources: &["status", "scale"],
        verbs: VERBS,
    },
];

fn monitor_schema(extra_field: Option<&str>) -> Value {
    let mut schema = json!({
        "type": "object",
        "description": "ServiceMonitor defines monitoring for a set of services.",
        "properties": {
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 63}}},
            "spec": {
                "type": "object",
                "description": "Specification of desired Service selection for target discovery.",
                "required": ["endpoints"],
                "properties": {
                    "endpoints": {
                        "type": "array",
                        "description": "List of endpoints part of this ServiceMonitor.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "port": {"type": "string", "description": "Name of the service port."},
                                "targetPort": {"x-kubernetes-int-or-string": true},
                            },
                        },
                    },
                },
            },
        },
    });
    if let Some(field) = extra_field {
        schema["properties"]["spec"]["properties"][field] = json!({"type": "string"});
    }
    schema
}

fn monitor(schema: Value) -> CustomResource {
    CustomResource {
        group: "monitoring.coreos.com".into(),
        version: "v1".into(),
        kind: "ServiceMonitor".into(),
        plural: "servicemonitors".into(),
        namespaced: true,
        subresources: vec!["status".into(), "scale".into()],
        schema: Some(Arc::new(schema)),
    }
}

const PATH: &str = "apis/monitoring.coreos.com/v1";
const KIND: &str = "com.coreos.monitoring.v1.ServiceMonitor";

fn document(openapi: &OpenApi, path: &str) -> Value {
    serde_json::from_slice(&openapi.v3_document(path).expect("document")).unwrap()
}

fn index(openapi: &OpenApi) -> Value {
    serde_json::from_slice(&openapi.v3_index()).unwrap()
}

#[test]
fn definitions_are_named_after_the_reversed_group() {
    let resource = monitor(monitor_schema(None));
    let [(kind, _), (list, _)] = crdschema::definitions(&resource, Form::V3);
    assert_eq!(kind, KIND);
    assert_eq!(list, format!("{KIND}List"));
}

#[test]
fn kind_definition_carries_type_meta_and_object_meta() {
    let [(_, kind), (_, list)] = crdschema::definitions(&monitor(monitor_schema(None)), Form::V3);
    assert_eq!(
        kind["x-kubernetes-group-version-kind"],
        json!([{"group": "monitoring.coreos.com", "kind": "ServiceMonitor", "version": "v1"}])
    );
    assert_eq!(
        kind["properties"]["metadata"],
        json!({
            "allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}],
            "default": {},
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        })
    );
    for field in ["apiVersion", "kind"] {
        assert_eq!(kind["properties"][field]["type"], "string");
        assert!(
            kind["properties"][field]["description"]
                .as_str()
                .unwrap()
                .contains("api-conventions.md")
        );
    }
    assert_eq!(
        kind["properties"]["spec"]["properties"]["endpoints"]["items"]["properties"]["targetPort"]
            ["anyOf"],
        json!([{"type": "integer"}, {"type": "string"}]),
        "int-or-string is unfolded"
    );
    assert_eq!(
        list["properties"]["items"]["items"],
        json!({"$ref": format!("#/components/schemas/{KIND}")})
    );
    assert_eq!(
        list["properties"]["metadata"]["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
    );
    assert_eq!(list["required"], json!(["items"]));
    assert_eq!(
        list["x-kubernetes-group-version-kind"][0]["kind"],
        "ServiceMonitorList"
    );

    let [(_, v2), _] = crdschema::definitions(&monitor(monitor_schema(None)), Form::V2);
    assert_eq!(
        v2["properties"]["metadata"]["$ref"],
        "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(v2["properties"]["metadata"].get("allOf").is_none());
}

#[test]
fn v2_conversion_drops_what_swagger_cannot_express() {
    let mut schema = json!({
        "type": "object",
        "required": ["a", "b", "c"],
        "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                  "properties": {"x": {"type": "string"}}},
            "c": {"x-kubernetes-int-or-string": true,
                  "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "d": {"type": "array", "x-kubernetes-preserve-unknown-fields": true,
                  "items": {"type": "string"}},
            "e": {"type": "array", "x-kubernetes-list-type": "map",
                  "x-kubernetes-list-map-keys": ["name"],
                  "items": {"type": "object", "oneOf": [{"required": ["name"]}],
                            "properties": {"name": {"type": "string"}}}},
            "f": {"type": "object", "required": ["k"],
                  "additionalProperties": {"type": "string", "nullable": true}},
        },
    });
    crdschema::to_v2(&mut schema);
    assert_eq!(
        schema,
        json!({
            "type": "object",
            "required": ["b", "c"],
            "properties": {
                "a": {},
                "b": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "c": {"x-kubernetes-int-or-string": true},
                "d": {"x-kubernetes-preserve-unknown-fields": true},
                "e": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "f": {"type": "object", "additionalProperties": {}},
            },
        })
    );
}

#[test]
fn custom_group_versions_are_published_and_follow_their_crds() {
    let openapi = OpenApi::new(BUILTIN);
    let builtin_index = openapi.v3_index();
    let builtin_core = openapi.v3_document("api/v1").unwrap();
    openapi.sync_custom(1, || vec![monitor(monitor_schema(None))]);

    let entry = &index(&openapi)["paths"][PATH]["serverRelativeURL"];
    let hash = openapi.v3_hash(PATH).unwrap();
    assert_eq!(entry, &json!(format!("/openapi/v3/{PATH}?hash={hash}")));
    assert!(index(&openapi)["paths"]["apis/apps/v1"].is_object());

    let doc = document(&openapi, PATH);
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        KIND,
        &format!("{KIND}List"),
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
        "io.k8s.api.autoscaling.v1.Scale",
    ] {
        assert!(schemas.contains_key(name), "{name} missing");
    }
    crate::catalog::collect_refs(&doc, &mut |name| {
        assert!(schemas.contains_key(name), "dangling reference to {name}");
    });
    let item = "/apis/monitoring.coreos.com/v1/namespaces/{namespace}/servicemonitors/{name}";
    let patch = &doc["paths"][item]["patch"];
    assert_eq!(
        patch["operationId"],
        "patchMonitoringCoreosComV1NamespacedServiceMonitor"
    );
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation")
    );
    assert_eq!(
        patch["x-kubernetes-group-version-kind"]["kind"],
        "ServiceMonitor"
    );
    assert!(doc["paths"][format!("{item}/status")]["put"].is_object());
    assert!(doc["paths"][format!("{item}/scale")]["get"].is_object());
    assert!(doc["paths"]["/apis/monitoring.coreos.com/v1/servicemonitors"]["get"].is_object());
    let text = doc.to_string();
    assert!(!text.contains("protobuf") && !text.contains("strategic-merge-patch"));

    // A new generation with the same schemas keeps the hash and the built body.
    let body = openapi.v3_document(PATH).unwrap();
    openapi.sync_custom(2, || vec![monitor(monitor_schema(None))]);
    assert_eq!(openapi.v3_hash(PATH).unwrap(), hash);
    assert_eq!(openapi.v3_document(PATH).unwrap().as_ptr(), body.as_ptr());

    // An edited schema changes the hash and the document.
    openapi.sync_custom(3, || vec![monitor(monitor_schema(Some("jobLabel")))]);
    assert_ne!(openapi.v3_hash(PATH).unwrap(), hash);
    let doc = document(&openapi, PATH);
    assert!(
        doc["components"]["schemas"][KIND]["properties"]["spec"]["properties"]["jobLabel"]
            .is_object()
    );

    // The built-in documents were never rebuilt.
    assert_eq!(
        openapi.v3_document("api/v1").unwrap().as_ptr(),
        builtin_core.as_ptr()
    );

    // Without custom types, everything is as before.
    openapi.sync_custom(4, Vec::new);
    assert!(openapi.v3_document(PATH).is_none());
    assert!(openapi.v3_hash(PATH).is_none());
    assert_eq!(openapi.v3_index(), builtin_index);
}

#[test]
fn the_generation_decides_when_types_are_read() {
    let openapi = OpenApi::new(BUILTIN);
    openapi.sync_custom(7, || vec![monitor(monitor_schema(None))]);
    openapi.sync_custom(7, || panic!("same generation, nothing to read"));
    assert!(openapi.v3_document(PATH).is_some());
}

#[test]
fn several_crds_share_a_group_version_document() {
    let openapi = OpenApi::new(BUILTIN);
    let mut rule = monitor(json!({"type": "object"}));
    rule.kind = "PrometheusRule".into();
    rule.plural = "prometheusrules".into();
    rule.subresources.clear();
    openapi.sync_custom(1, || vec![monitor(monitor_schema(None)), rule]);
    let doc = document(&openapi, PATH);
    let schemas = &doc["components"]["schemas"];
    assert!(schemas[KIND].is_object());
    assert!(schemas["com.coreos.monitoring.v1.PrometheusRule"].is_object());
    assert!(schemas["com.coreos.monitoring.v1.PrometheusRuleList"].is_object());
}

/// The names of the definitions in every `definitions` field of a v2 document.
fn v2_definition_names(document: &[u8]) -> Vec<String> {
    crate::tests::submessages(document, 9)
        .into_iter()
        .flat_map(|definitions| crate::tests::submessages(definitions, 1))
        .map(|named| String::from_utf8(crate::tests::submessages(named, 1)[0].to_vec()).unwrap())
        .collect()
}

#[test]
fn v2_document_gains_and_loses_custom_kinds() {
    let openapi = OpenApi::new(BUILTIN);
    let builtin = openapi.v2_document();
    openapi.sync_custom(1, || vec![monitor(monitor_schema(None))]);
    let with_custom = openapi.v2_document();
    assert!(
        with_custom.starts_with(&builtin),
        "the built-in part is reused"
    );
    let names = v2_definition_names(&with_custom);
    assert!(names.iter().any(|n| n == KIND));
    assert!(
        names
            .iter()
            .any(|n| n == "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta")
    );
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no definition is written twice");
    let text = String::from_utf8_lossy(&with_custom[builtin.len()..]);
    assert!(
        text.contains(
            "/apis/monitoring.coreos.com/v1/namespaces/{namespace}/servicemonitors/{name}"
        )
    );
    assert!(text.contains("fieldValidation"));
    assert_eq!(
        openapi.v2_document().as_ptr(),
        with_custom.as_ptr(),
        "cached"
    );

    openapi.sync_custom(2, Vec::new);
    assert_eq!(openapi.v2_document(), builtin);
}
