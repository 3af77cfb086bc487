use std::{sync::OnceLock, time::Instant};

use serde_json::{Value, json};

use super::*;

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const READ_CREATE: &[&str] = &["create", "get", "list", "watch"];
const CREATE_ONLY: &[&str] = &["create"];

const fn served<'a>(
    group: &'a str,
    version: &'a str,
    kind: &'a str,
    plural: &'a str,
    namespaced: bool,
    subresources: &'a [&'a str],
    verbs: &'a [&'a str],
) -> ResourceType<'a> {
    ResourceType {
        group,
        version,
        kind,
        plural,
        namespaced,
        subresources,
        verbs,
    }
}

/// The resource types the API server serves (mirrors its table).
const SERVED: &[ResourceType<'static>] = &[
    served(
        "",
        "v1",
        "Namespace",
        "namespaces",
        false,
        &["status", "finalize"],
        ALL_VERBS,
    ),
    served(
        "",
        "v1",
        "Node",
        "nodes",
        false,
        &["status", "proxy"],
        ALL_VERBS,
    ),
    served(
        "",
        "v1",
        "Pod",
        "pods",
        true,
        &[
            "status",
            "binding",
            "eviction",
            "log",
            "exec",
            "attach",
            "portforward",
            "ephemeralcontainers",
            "resize",
        ],
        ALL_VERBS,
    ),
    served(
        "",
        "v1",
        "Service",
        "services",
        true,
        &["status", "proxy"],
        ALL_VERBS,
    ),
    served("", "v1", "Endpoints", "endpoints", true, &[], ALL_VERBS),
    served("", "v1", "ConfigMap", "configmaps", true, &[], ALL_VERBS),
    served("", "v1", "Secret", "secrets", true, &[], ALL_VERBS),
    served(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        true,
        &[],
        ALL_VERBS,
    ),
    served("", "v1", "Event", "events", true, &[], ALL_VERBS),
    served("", "v1", "LimitRange", "limitranges", true, &[], ALL_VERBS),
    served(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        true,
        &["status"],
        ALL_VERBS,
    ),
    served(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        false,
        &["status"],
        ALL_VERBS,
    ),
    served(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        true,
        &["status"],
        ALL_VERBS,
    ),
    served(
        "",
        "v1",
        "PodTemplate",
        "podtemplates",
        true,
        &[],
        ALL_VERBS,
    ),
    served("", "v1", "Binding", "bindings", true, &[], CREATE_ONLY),
    served(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        true,
        &["status", "scale"],
        ALL_VERBS,
    ),
    served(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        true,
        &["status", "scale"],
        ALL_VERBS,
    ),
    served(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        true,
        &["status", "scale"],
        ALL_VERBS,
    ),
    served(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        true,
        &["status"],
        ALL_VERBS,
    ),
    served(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        true,
        &[],
        ALL_VERBS,
    ),
    served("batch", "v1", "Job", "jobs", true, &["status"], ALL_VERBS),
    served(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        true,
        &["status"],
        ALL_VERBS,
    ),
    served(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        true,
        &[],
        ALL_VERBS,
    ),
    served(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        true,
        &[],
        ALL_VERBS,
    ),
    served(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        true,
        &[],
        ALL_VERBS,
    ),
    served(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        true,
        &["status"],
        ALL_VERBS,
    ),
    served(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        true,
        &[],
        ALL_VERBS,
    ),
    served(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        true,
        &[],
        ALL_VERBS,
    ),
    served(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        false,
        &[],
        ALL_VERBS,
    ),
    served(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        false,
        &[],
        ALL_VERBS,
    ),
    served(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        false,
        &[],
        ALL_VERBS,
    ),
    served(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        false,
        &[],
        ALL_VERBS,
    ),
    served(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        false,
        &[],
        ALL_VERBS,
    ),
    served(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        true,
        &["status"],
        ALL_VERBS,
    ),
    served(
        "example.com",
        "v1",
        "Widget",
        "widgets",
        true,
        &[],
        READ_CREATE,
    ),
];

fn openapi() -> &'static OpenApi {
    static OPENAPI: OnceLock<OpenApi> = OnceLock::new();
    OPENAPI.get_or_init(|| OpenApi::new(SERVED))
}

fn document(path: &str) -> Value {
    let body = openapi()
        .v3_document(path)
        .unwrap_or_else(|| panic!("no document for {path}"));
    serde_json::from_slice(&body).expect("documents are JSON")
}

/// Follows `$ref` and single-element `allOf` wrappers to the schema they stand for.
fn resolve<'d>(document: &'d Value, mut schema: &'d Value) -> &'d Value {
    loop {
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .expect("local reference");
            schema = &document["components"]["schemas"][name];
            assert!(!schema.is_null(), "dangling reference {reference}");
        } else if let Some([only]) = schema
            .get("allOf")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
        {
            schema = only;
        } else {
            return schema;
        }
    }
}

#[test]
fn index_lists_group_versions_with_hashes() {
    let index: Value = serde_json::from_slice(&openapi().v3_index()).unwrap();
    for path in [
        "api/v1",
        "apis/apps/v1",
        "apis/batch/v1",
        "apis/example.com/v1",
    ] {
        let url = index["paths"][path]["serverRelativeURL"]
            .as_str()
            .unwrap_or_else(|| panic!("{path} missing"));
        let hash = openapi().v3_hash(path).unwrap();
        assert_eq!(url, format!("/openapi/v3/{path}?hash={hash}"));
        assert_eq!(hash.len(), 32);
    }
    assert!(openapi().v3_document("apis/nothing/v1").is_none());
    assert_ne!(
        openapi().v3_hash("api/v1"),
        openapi().v3_hash("apis/apps/v1")
    );
}

#[test]
fn deployment_patch_advertises_field_validation() {
    let document = document("apis/apps/v1");
    let operation =
        &document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(operation["x-kubernetes-action"], "patch");
    assert_eq!(
        operation["x-kubernetes-group-version-kind"],
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    assert_eq!(operation["operationId"], "patchAppsV1NamespacedDeployment");
    let parameters = operation["parameters"].as_array().unwrap();
    assert!(
        parameters
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query")
    );
    for (path, method) in [
        ("/apis/apps/v1/namespaces/{namespace}/deployments", "post"),
        (
            "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
            "put",
        ),
    ] {
        let parameters = document["paths"][path][method]["parameters"]
            .as_array()
            .unwrap();
        assert!(
            parameters.iter().any(|p| p["name"] == "fieldValidation"),
            "{method} {path}"
        );
    }
    let scale = &document["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]
        ["patch"];
    assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
    assert!(document["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"].is_object());
    let deployment = &document["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"];
    assert_eq!(
        deployment["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
}

#[test]
fn core_paths_cover_collections_items_and_subresources() {
    let document = document("api/v1");
    let paths = &document["paths"];
    for path in [
        "/api/v1/namespaces/{namespace}/pods",
        "/api/v1/namespaces/{namespace}/pods/{name}",
        "/api/v1/namespaces/{namespace}/pods/{name}/status",
        "/api/v1/namespaces/{namespace}/pods/{name}/log",
        "/api/v1/namespaces/{namespace}/pods/{name}/binding",
        "/api/v1/namespaces/{namespace}/pods/{name}/eviction",
        "/api/v1/pods",
        "/api/v1/watch/namespaces/{namespace}/pods",
        "/api/v1/nodes",
        "/api/v1/nodes/{name}",
        "/api/v1/namespaces/{name}/finalize",
    ] {
        assert!(paths[path].is_object(), "{path} missing");
    }
    assert_eq!(paths["/api/v1/pods"]["get"]["x-kubernetes-action"], "list");
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods"]["delete"]["x-kubernetes-action"],
        "deletecollection"
    );
    assert_eq!(
        paths["/api/v1/namespaces/{namespace}/pods/{name}/eviction"]["post"]["x-kubernetes-group-version-kind"]
            ["kind"],
        "Eviction"
    );
    // Binding is create-only: no list schema, no GET.
    assert!(paths["/api/v1/namespaces/{namespace}/bindings"]["get"].is_null());
    assert!(paths["/api/v1/namespaces/{namespace}/bindings"]["post"].is_object());
    // Every reference in the document resolves inside it.
    catalog::collect_refs(&document, &mut |name| {
        assert!(
            document["components"]["schemas"][name].is_object(),
            "dangling {name}"
        );
    });
}

#[test]
fn pod_schema_resolves_containers_for_explain() {
    let document = document("api/v1");
    let schemas = &document["components"]["schemas"];
    let pod = &schemas["io.k8s.api.core.v1.Pod"];
    assert_eq!(
        pod["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Pod", "version": "v1"}])
    );
    assert!(
        pod["description"]
            .as_str()
            .unwrap()
            .contains("collection of containers")
    );
    assert!(
        pod.get("required").is_none(),
        "metadata is not required upstream"
    );
    let spec = resolve(&document, &pod["properties"]["spec"]);
    let containers = &spec["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    let container = resolve(&document, &containers["items"]);
    assert_eq!(container, &schemas["io.k8s.api.core.v1.Container"]);
    assert_eq!(container["properties"]["name"]["type"], "string");
    assert_eq!(container["properties"]["image"]["type"], "string");
    assert!(
        container["required"]
            .as_array()
            .unwrap()
            .contains(&json!("name"))
    );
    let metadata = resolve(&document, &pod["properties"]["metadata"]);
    assert_eq!(
        metadata["properties"]["labels"]["additionalProperties"]["type"],
        "string"
    );
    assert!(schemas["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"].is_array());
    // OpenAPI 3.0: no JSON Schema leftovers.
    let text = String::from_utf8(openapi().v3_document("api/v1").unwrap().to_vec()).unwrap();
    assert!(
        !text.contains("$defs") && !text.contains("$schema") && !text.contains("#/definitions")
    );
}

#[test]
fn every_served_type_has_a_schema() {
    for resource in SERVED {
        let path = index_path(resource.group, resource.version);
        let document = document(&path);
        let wanted =
            json!({"group": resource.group, "kind": resource.kind, "version": resource.version});
        let found = document["components"]["schemas"]
            .as_object()
            .unwrap()
            .values()
            .any(|schema| {
                schema["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|gvks| gvks.contains(&wanted))
            });
        assert!(found, "no schema for {wanted}");
    }
    // Every built-in kind table entry produced a definition.
    let catalog = Catalog::build(&[]);
    for kind in kinds::BUILTIN_KINDS {
        let name = &catalog.kind_definitions[&catalog::gvk(kind.group, kind.version, kind.kind)];
        assert!(catalog.definitions[name].is_object(), "{name}");
    }
}

fn unknown(group: &str, version: &str, kind: &str, object: Value) -> Vec<String> {
    openapi().unknown_fields(group, version, kind, &object)
}

#[test]
fn unknown_fields_are_reported_with_their_paths() {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "foo": 1, "labels": {"any/key": "v"}, "annotations": {"x.y/z": "w"}},
        "spec": {
            "foo": true,
            "containers": [
                {"name": "a", "image": "busybox", "bar": 1,
                 "resources": {"limits": {"cpu": "500m", "memory": 1024}, "requests": {"cpu": 1}},
                 "ports": [{"containerPort": 80, "protocol": "TCP"}],
                 "livenessProbe": {"httpGet": {"port": "http", "path": "/"}}},
                {"name": "b", "image": "busybox", "env": [{"name": "X", "value": "1", "baz": 2}]},
            ],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    });
    assert_eq!(
        unknown("", "v1", "Pod", pod),
        [
            "metadata.foo",
            "spec.containers[0].bar",
            "spec.containers[1].env[0].baz",
            "spec.foo"
        ]
    );
}

#[test]
fn valid_objects_have_no_unknown_fields() {
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default", "labels": {"app": "d"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": "u"}],
                     "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "d"}},
            "strategy": {"rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}],
                         "nodeSelector": {"kubernetes.io/os": "linux"},
                         "tolerations": [{"key": "k", "operator": "Exists"}]},
            },
        },
        "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True", "lastUpdateTime": "2024-01-01T00:00:00Z"}]},
    });
    assert!(unknown("apps", "v1", "Deployment", deployment).is_empty());
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
        "status": {"capacity": {"cpu": "4", "pods": 110}, "allocatable": {"memory": "8Gi"}}});
    assert!(unknown("", "v1", "Node", node).is_empty());
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081, "nope": 1}]}});
    assert_eq!(
        unknown("", "v1", "Service", service),
        ["spec.ports[1].nope"]
    );
    let config_map = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}, "extra": 1});
    assert_eq!(unknown("", "v1", "ConfigMap", config_map), ["extra"]);
}

#[test]
fn untyped_and_unknown_kinds_accept_anything() {
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"anything": 1}});
    assert!(unknown("example.com", "v1", "Widget", widget).is_empty());
    assert!(unknown("nothing.io", "v1", "Thing", json!({"x": 1})).is_empty());
    let revision = json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r"},
        "revision": 1, "data": {"spec": {"whatever": true}}});
    assert!(unknown("apps", "v1", "ControllerRevision", revision).is_empty());
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"}, "scope": "Namespaced",
                 "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object",
                        "properties": {"size": {"type": "integer"}}, "x-kubernetes-preserve-unknown-fields": true, "bogus": 1}}}}}]}});
    assert_eq!(
        unknown(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            crd
        ),
        ["spec.versions[0].schema.openAPIV3Schema.properties.spec.bogus"]
    );
}

#[test]
fn construction_is_fast_enough_for_startup() {
    let started = Instant::now();
    let openapi = OpenApi::new(SERVED);
    let elapsed = started.elapsed();
    eprintln!("OpenApi::new took {elapsed:?} for {} types", SERVED.len());
    let started = Instant::now();
    let total: usize = openapi
        .documents
        .by_path
        .keys()
        .map(|path| openapi.v3_document(path).unwrap().len())
        .sum();
    eprintln!(
        "v3 documents: {total} bytes in {} documents, built in {:?}",
        openapi.documents.by_path.len(),
        started.elapsed()
    );
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "busybox"}]}});
    let started = Instant::now();
    for _ in 0..1000 {
        assert!(openapi.unknown_fields("", "v1", "Pod", &pod).is_empty());
    }
    eprintln!(
        "unknown_fields on a small pod: {:?} per call",
        started.elapsed() / 1000
    );
}

#[test]
fn documents_are_built_on_first_request_from_the_same_schemas() {
    let openapi = OpenApi::new(SERVED);
    // Nothing but the shapes and hashes is held until a document is asked for.
    assert!(openapi.documents.catalog.get().is_none());
    assert!(
        openapi
            .documents
            .by_path
            .values()
            .all(|d| d.body.get().is_none())
    );
    assert!(openapi.documents.v2.get().is_none());

    let body = openapi.v3_document("apis/apps/v1").unwrap();
    let catalog = openapi
        .documents
        .catalog
        .get()
        .expect("built for the request");
    // The catalog built again is the one the advertised hashes were computed from.
    assert_eq!(catalog.fingerprint(), openapi.documents.fingerprint);
    let document: Value = serde_json::from_slice(&body).unwrap();
    assert!(document["components"]["schemas"]["io.k8s.api.apps.v1.Deployment"].is_object());
    // Only the requested group-version was serialized.
    let built = openapi
        .documents
        .by_path
        .values()
        .filter(|d| d.body.get().is_some())
        .count();
    assert_eq!(built, 1);
    assert!(!openapi.v2_document().is_empty());
}

/// Splits a protobuf message into (field number, length-delimited payload or varint) pairs.
pub(crate) fn protobuf_fields(mut bytes: &[u8]) -> Vec<(u32, Result<&[u8], u64>)> {
    fn varint(bytes: &mut &[u8]) -> u64 {
        let mut value = 0;
        for shift in (0..64).step_by(7) {
            let byte = bytes[0];
            *bytes = &bytes[1..];
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        value
    }
    let mut fields = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes);
        let number = (key >> 3) as u32;
        match key & 7 {
            0 => fields.push((number, Err(varint(&mut bytes)))),
            2 => {
                let length = varint(&mut bytes) as usize;
                fields.push((number, Ok(&bytes[..length])));
                bytes = &bytes[length..];
            }
            other => panic!("unexpected wire type {other}"),
        }
    }
    fields
}

pub(crate) fn submessages(bytes: &[u8], number: u32) -> Vec<&[u8]> {
    protobuf_fields(bytes)
        .into_iter()
        .filter(|(n, _)| *n == number)
        .filter_map(|(_, v)| v.ok())
        .collect()
}

#[test]
fn v2_document_carries_definitions_and_patch_operations() {
    let body = openapi().v2_document();
    let document = body.as_ref();
    assert_eq!(submessages(document, 1), [b"2.0".as_slice()]);
    let definitions = submessages(document, 9);
    assert_eq!(definitions.len(), 1);
    let pod = submessages(definitions[0], 1)
        .into_iter()
        .find(|named| submessages(named, 1) == [b"io.k8s.api.core.v1.Pod".as_slice()])
        .expect("Pod definition");
    let schema = submessages(pod, 2)[0];
    let extensions: Vec<(String, String)> = submessages(schema, 31)
        .into_iter()
        .map(|named| {
            let name = String::from_utf8(submessages(named, 1)[0].to_vec()).unwrap();
            let yaml =
                String::from_utf8(submessages(submessages(named, 2)[0], 2)[0].to_vec()).unwrap();
            (name, yaml)
        })
        .collect();
    assert_eq!(
        extensions,
        [(
            "x-kubernetes-group-version-kind".to_owned(),
            r#"[{"group":"","kind":"Pod","version":"v1"}]"#.to_owned()
        )]
    );
    let paths = submessages(document, 8);
    let deployment = submessages(paths[0], 2)
        .into_iter()
        .find(|named| {
            submessages(named, 1)
                == [b"/apis/apps/v1/namespaces/{namespace}/deployments/{name}".as_slice()]
        })
        .expect("deployment path");
    let patch = submessages(submessages(deployment, 2)[0], 8)[0];
    let text = String::from_utf8_lossy(patch);
    assert!(text.contains("fieldValidation") && text.contains(r#""kind":"Deployment""#));
}

#[test]
fn openapi_can_be_shared_between_request_handlers() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<OpenApi>();
}

#[test]
fn merge_rules_follow_the_kubernetes_schema() {
    let pod = openapi().kind_schema("", "v1", "Pod");
    let (_, ports) = pod.walk(&["spec", "containers", "ports"]).unwrap();
    let ports = ports.unwrap();
    assert!(ports.patch_merge);
    assert_eq!(ports.patch_merge_key.as_deref(), Some("containerPort"));
    assert_eq!(
        ports.list_type,
        Some(ListType::Map(vec![
            "containerPort".into(),
            "protocol".into()
        ]))
    );
    let (_, volumes) = pod.walk(&["spec", "volumes"]).unwrap();
    assert!(volumes.unwrap().patch_retain_keys);
    let (_, tolerations) = pod.walk(&["spec", "tolerations"]).unwrap();
    let tolerations = tolerations.unwrap();
    assert!(!tolerations.patch_merge, "tolerations are replaced whole");
    assert_eq!(tolerations.list_type, Some(ListType::Atomic));
    let (_, finalizers) = pod.walk(&["metadata", "finalizers"]).unwrap();
    assert_eq!(finalizers.unwrap().list_type, Some(ListType::Set));
    // Map values and plain fields carry no rules.
    let (_, label) = pod.walk(&["metadata", "labels", "app"]).unwrap();
    assert!(label.is_none());
    assert!(pod.walk(&["spec", "noSuchField"]).is_none());

    let node = openapi().kind_schema("", "v1", "Node");
    let (_, taints) = node.walk(&["spec", "taints"]).unwrap();
    assert!(!taints.unwrap().patch_merge, "taints are replaced whole");

    let deployment = openapi().kind_schema("apps", "v1", "Deployment");
    let (selector, _) = deployment.walk(&["spec", "selector"]).unwrap();
    assert!(selector.is_atomic());
    let (_, strategy) = deployment.walk(&["spec", "strategy"]).unwrap();
    assert!(strategy.unwrap().patch_retain_keys);
    let (template, _) = deployment.walk(&["spec", "template"]).unwrap();
    assert!(!template.is_atomic());

    // A kind without a known type still merges its metadata.
    let untyped = openapi().kind_schema("example.com", "v1", "Widget");
    let (_, owners) = untyped.walk(&["metadata", "ownerReferences"]).unwrap();
    assert_eq!(owners.unwrap().patch_merge_key.as_deref(), Some("uid"));
    assert!(untyped.walk(&["spec", "items"]).is_none());
}

#[test]
fn documents_publish_the_merge_metadata() {
    let document = document("api/v1");
    let schemas = &document["components"]["schemas"];
    let spec = &schemas["io.k8s.api.core.v1.PodSpec"]["properties"];
    assert_eq!(
        spec["topologySpreadConstraints"]["x-kubernetes-list-map-keys"],
        json!(["topologyKey", "whenUnsatisfiable"])
    );
    assert_eq!(
        spec["volumes"]["x-kubernetes-patch-strategy"],
        "merge,retainKeys"
    );
    assert_eq!(spec["tolerations"]["x-kubernetes-list-type"], "atomic");
    assert_eq!(
        schemas["io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector"]["x-kubernetes-map-type"],
        "atomic"
    );
    let account = &schemas["io.k8s.api.core.v1.ServiceAccount"]["properties"]["secrets"];
    assert_eq!(account["x-kubernetes-patch-merge-key"], "name");
}

fn mismatch(group: &str, version: &str, kind: &str, object: Value) -> Option<String> {
    openapi()
        .type_mismatch(group, version, kind, &object)
        .map(|m| m.to_string())
}

#[test]
fn values_of_the_wrong_type_are_named_as_the_go_decoder_names_them() {
    let deployment = |spec: Value| json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": spec});
    assert_eq!(
        mismatch(
            "apps",
            "v1",
            "Deployment",
            deployment(json!({"replicas": "three"}))
        )
        .as_deref(),
        Some(
            "cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
        )
    );
    assert_eq!(
        mismatch(
            "apps",
            "v1",
            "Deployment",
            deployment(json!({"replicas": 1.5}))
        )
        .as_deref(),
        Some(
            "cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"
        )
    );
    assert_eq!(
        mismatch("apps", "v1", "Deployment", deployment(json!("x"))).as_deref(),
        Some(
            "cannot unmarshal string into Go struct field Deployment.spec of type v1.DeploymentSpec"
        )
    );
    let containers = json!({"template": {"spec": {"containers": [{"name": "a", "image": 5}]}}});
    assert_eq!(
        mismatch("apps", "v1", "Deployment", deployment(containers)).as_deref(),
        Some(
            "cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string"
        )
    );
    let listed = json!({"template": {"spec": {"containers": "a"}}});
    assert_eq!(
        mismatch("apps", "v1", "Deployment", deployment(listed)).as_deref(),
        Some(
            "cannot unmarshal string into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container"
        )
    );
    let labels = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": true}}});
    assert_eq!(
        mismatch("", "v1", "ConfigMap", labels).as_deref(),
        Some(
            "cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"
        )
    );
    // Quantities, int-or-strings, times and nulls take what kube-apiserver takes.
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "creationTimestamp": null},
        "spec": {"containers": [{"name": "a", "image": "x", "resources": {"limits": {"cpu": 1, "memory": "1Gi"}},
            "ports": [{"containerPort": 80}], "livenessProbe": {"httpGet": {"port": "http"}}}],
            "terminationGracePeriodSeconds": null},
        "status": {"startTime": "2026-11-28T00:00:00Z"}});
    assert_eq!(mismatch("", "v1", "Pod", pod), None);
    let secret =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": 1}});
    assert_eq!(
        mismatch("", "v1", "Secret", secret).as_deref(),
        Some("cannot unmarshal number into Go struct field Secret.data of type []uint8")
    );
}
