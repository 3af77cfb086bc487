//! Table columns of the less common built-in kinds (storage, RBAC, policy, autoscaling,
//! discovery, ...), as kube-apiserver prints them, and the default table of kinds without a
//! printer: `Name` and `Created At`. The networking, admission, registration, flow control and CSI
//! kinds are printed in `apis`.

mod apis;

use serde_json::{Value, json};

use crate::objects::JsonAt;

/// Name, type, priority, description.
pub(crate) type Column = (&'static str, &'static str, u8, &'static str);

pub(crate) const NAME: Column = (
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
pub(crate) const AGE: Column = (
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);
const CREATED_AT: Column = (
    "Created At",
    "date",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

fn text(o: &Value, pointer: &str) -> String {
    match o.at(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn integer(o: &Value, pointer: &str) -> i64 {
    o.at(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn strings<'a>(o: &'a Value, pointer: &str) -> Vec<&'a str> {
    o.at(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// `RWO,ROX,RWX,RWOP` in that order, as kubectl abbreviates access modes.
fn access_modes(modes: &[&str]) -> String {
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| modes.contains(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// Up to `max` items joined by commas, `+ N more...` past that, `<unset>` for none.
fn list_with_more(items: &[String], max: usize) -> String {
    if items.is_empty() {
        return "<unset>".into();
    }
    let shown = items[..items.len().min(max)].join(",");
    if items.len() > max {
        format!("{shown} + {} more...", items.len() - max)
    } else {
        shown
    }
}

fn or_unset(value: String) -> String {
    if value.is_empty() {
        "<unset>".into()
    } else {
        value
    }
}

/// The columns of a kind this module prints; `None` for kinds printed elsewhere.
pub(crate) fn columns(group: &str, plural: &str) -> Option<Vec<Column>> {
    let columns = match (group, plural) {
        ("", "persistentvolumes") => vec![
            NAME,
            ("Capacity", "string", 0, "The capacity of the volume."),
            (
                "Access Modes",
                "string",
                0,
                "The access modes of the volume.",
            ),
            (
                "Reclaim Policy",
                "string",
                0,
                "What happens to the volume when released from its claim.",
            ),
            ("Status", "string", 0, "The phase of the volume."),
            ("Claim", "string", 0, "The claim bound to the volume."),
            (
                "StorageClass",
                "string",
                0,
                "The storage class of the volume.",
            ),
            (
                "VolumeAttributesClass",
                "string",
                0,
                "The volume attributes class of the volume.",
            ),
            ("Reason", "string", 0, "Why the volume is in its phase."),
            AGE,
            (
                "VolumeMode",
                "string",
                1,
                "Whether the volume is a filesystem or a raw block device.",
            ),
        ],
        ("", "persistentvolumeclaims") => vec![
            NAME,
            ("Status", "string", 0, "The phase of the claim."),
            ("Volume", "string", 0, "The volume backing the claim."),
            (
                "Capacity",
                "string",
                0,
                "The actual resources of the underlying volume.",
            ),
            (
                "Access Modes",
                "string",
                0,
                "The access modes of the volume.",
            ),
            (
                "StorageClass",
                "string",
                0,
                "The storage class of the claim.",
            ),
            (
                "VolumeAttributesClass",
                "string",
                0,
                "The volume attributes class of the claim.",
            ),
            AGE,
            (
                "VolumeMode",
                "string",
                1,
                "Whether the volume is a filesystem or a raw block device.",
            ),
        ],
        ("", "podtemplates") => vec![
            ("Template", "string", 0, "Name of the pod template."),
            ("Containers", "string", 0, "Names of the containers."),
            ("Images", "string", 0, "Images of the containers."),
            ("Pod Labels", "string", 0, "Labels of the pods."),
        ],
        ("", "resourcequotas") => vec![
            NAME,
            AGE,
            ("Request", "string", 0, "Requests: used/hard."),
            ("Limit", "string", 0, "Limits: used/hard."),
        ],
        ("apps", "controllerrevisions") => vec![
            NAME,
            (
                "Controller",
                "string",
                0,
                "The controller that owns the revision.",
            ),
            ("Revision", "integer", 0, "The revision number."),
            AGE,
        ],
        ("discovery.k8s.io", "endpointslices") => vec![
            NAME,
            (
                "AddressType",
                "string",
                0,
                "The type of address carried by this slice.",
            ),
            ("Ports", "string", 0, "The ports of the endpoints."),
            ("Endpoints", "string", 0, "The addresses of the endpoints."),
            AGE,
        ],
        ("policy", "poddisruptionbudgets") => vec![
            NAME,
            (
                "Min Available",
                "string",
                0,
                "The minimum number of pods that must be available.",
            ),
            (
                "Max Unavailable",
                "string",
                0,
                "The maximum number of pods that may be unavailable.",
            ),
            (
                "Allowed Disruptions",
                "integer",
                0,
                "How many pods may be disrupted now.",
            ),
            AGE,
        ],
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => vec![
            NAME,
            ("Role", "string", 0, "The role bound."),
            AGE,
            ("Users", "string", 1, "Users in the binding."),
            ("Groups", "string", 1, "Groups in the binding."),
            (
                "ServiceAccounts",
                "string",
                1,
                "Service accounts in the binding.",
            ),
        ],
        ("certificates.k8s.io", "certificatesigningrequests") => vec![
            NAME,
            AGE,
            ("SignerName", "string", 0, "The signer the request is for."),
            ("Requestor", "string", 0, "Who created the request."),
            (
                "RequestedDuration",
                "string",
                0,
                "The validity the request asks for.",
            ),
            (
                "Condition",
                "string",
                0,
                "Approved, Denied, Issued, Failed or Pending.",
            ),
        ],
        ("node.k8s.io", "runtimeclasses") => vec![
            NAME,
            ("Handler", "string", 0, "The container runtime handler."),
            AGE,
        ],
        ("storage.k8s.io", "storageclasses") => vec![
            NAME,
            ("Provisioner", "string", 0, "The provisioner of the class."),
            (
                "ReclaimPolicy",
                "string",
                0,
                "What happens to volumes of the class when released.",
            ),
            ("VolumeBindingMode", "string", 0, "When volumes are bound."),
            (
                "AllowVolumeExpansion",
                "string",
                0,
                "Whether volumes may be expanded.",
            ),
            AGE,
        ],
        ("autoscaling", "horizontalpodautoscalers") => vec![
            NAME,
            ("Reference", "string", 0, "The target being scaled."),
            ("Targets", "string", 0, "The current and target metrics."),
            ("MinPods", "string", 0, "The lower limit of replicas."),
            ("MaxPods", "integer", 0, "The upper limit of replicas."),
            ("Replicas", "integer", 0, "The current number of replicas."),
            AGE,
        ],
        _ => return apis::columns(group, plural),
    };
    Some(columns)
}

/// The default table of kinds without a printer.
pub(crate) fn default_columns() -> Vec<Column> {
    vec![NAME, CREATED_AT]
}

pub(crate) fn default_cells(o: &Value) -> Vec<Value> {
    vec![
        json!(text(o, "/metadata/name")),
        json!(text(o, "/metadata/creationTimestamp")),
    ]
}

/// The cells of a kind this module prints (see [`columns`]); `age` is the object's age.
pub(crate) fn cells(group: &str, plural: &str, o: &Value, age: String) -> Option<Vec<Value>> {
    let name = json!(text(o, "/metadata/name"));
    let deleting = o.at("/metadata/deletionTimestamp").is_some();
    let cells = match (group, plural) {
        ("", "persistentvolumes") => {
            let claim = match o.at("/spec/claimRef") {
                Some(r) => format!("{}/{}", text(r, "/namespace"), text(r, "/name")),
                None => String::new(),
            };
            let phase = if deleting {
                "Terminating".into()
            } else {
                text(o, "/status/phase")
            };
            let capacity = text(o, "/spec/capacity/storage");
            vec![
                name,
                json!(if capacity.is_empty() {
                    "0".into()
                } else {
                    capacity
                }),
                json!(access_modes(&strings(o, "/spec/accessModes"))),
                json!(text(o, "/spec/persistentVolumeReclaimPolicy")),
                json!(phase),
                json!(claim),
                json!(text(o, "/spec/storageClassName")),
                json!(or_unset(text(o, "/spec/volumeAttributesClassName"))),
                json!(text(o, "/status/reason")),
                json!(age),
                json!(or_unset(text(o, "/spec/volumeMode"))),
            ]
        }
        ("", "persistentvolumeclaims") => {
            let phase = if deleting {
                "Terminating".into()
            } else {
                text(o, "/status/phase")
            };
            let volume = text(o, "/spec/volumeName");
            let (capacity, modes) = if volume.is_empty() {
                (String::new(), String::new())
            } else {
                let capacity = text(o, "/status/capacity/storage");
                (
                    if capacity.is_empty() {
                        "0".into()
                    } else {
                        capacity
                    },
                    access_modes(&strings(o, "/status/accessModes")),
                )
            };
            let class = match o.at("/spec/storageClassName") {
                Some(Value::String(class)) => class.clone(),
                _ => text(
                    o,
                    "/metadata/annotations/volume.beta.kubernetes.io~1storage-class",
                ),
            };
            vec![
                name,
                json!(phase),
                json!(volume),
                json!(capacity),
                json!(modes),
                json!(class),
                json!(or_unset(text(o, "/spec/volumeAttributesClassName"))),
                json!(age),
                json!(or_unset(text(o, "/spec/volumeMode"))),
            ]
        }
        ("", "podtemplates") => {
            let containers = o
                .at("/template/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names: Vec<String> = containers.iter().map(|c| text(c, "/name")).collect();
            let images: Vec<String> = containers.iter().map(|c| text(c, "/image")).collect();
            let labels = o
                .at("/template/metadata/labels")
                .and_then(Value::as_object)
                .map(|labels| {
                    let mut pairs: Vec<String> = labels
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    pairs.sort();
                    pairs.join(",")
                })
                .filter(|joined| !joined.is_empty())
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(names.join(",")),
                json!(images.join(",")),
                json!(labels),
            ]
        }
        ("", "resourcequotas") => {
            let mut requests = Vec::new();
            let mut limits = Vec::new();
            if let Some(hard) = o.at("/spec/hard").and_then(Value::as_object) {
                let mut resources: Vec<&String> = hard.keys().collect();
                resources.sort();
                for resource in resources {
                    let pointer = format!("/status/used/{}", resource.replace('/', "~1"));
                    let used = text(o, &pointer);
                    let entry = format!(
                        "{resource}: {}/{}",
                        if used.is_empty() { "0" } else { &used },
                        text(&hard[resource], "")
                    );
                    if resource.starts_with("limits.") {
                        limits.push(entry);
                    } else {
                        requests.push(entry);
                    }
                }
            }
            vec![
                name,
                json!(age),
                json!(requests.join(", ")),
                json!(limits.join(", ")),
            ]
        }
        ("apps", "controllerrevisions") => {
            let owner = o
                .at("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|r| r.get("controller") == Some(&json!(true)));
            let controller = match owner {
                Some(owner) => {
                    let api_version = text(owner, "/apiVersion");
                    let group = api_version
                        .split_once('/')
                        .map(|(group, _)| group)
                        .unwrap_or("");
                    let kind = text(owner, "/kind").to_lowercase();
                    let kind = if group.is_empty() {
                        kind
                    } else {
                        format!("{kind}.{group}")
                    };
                    format!("{kind}/{}", text(owner, "/name"))
                }
                None => "<none>".into(),
            };
            vec![
                name,
                json!(controller),
                json!(integer(o, "/revision")),
                json!(age),
            ]
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = o
                .at("/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(
                    |p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                        (Some(port), _) => port.to_string(),
                        (None, Some(Value::String(name))) => name.clone(),
                        _ => "*".into(),
                    },
                )
                .collect();
            let addresses: Vec<String> = o
                .at("/endpoints")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|e| strings(e, "/addresses"))
                .map(String::from)
                .collect();
            vec![
                name,
                json!(text(o, "/addressType")),
                json!(list_with_more(&ports, 3)),
                json!(list_with_more(&addresses, 3)),
                json!(age),
            ]
        }
        ("policy", "poddisruptionbudgets") => {
            let bound = |pointer: &str| match o.at(pointer) {
                Some(Value::Null) | None => "N/A".to_string(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            vec![
                name,
                json!(bound("/spec/minAvailable")),
                json!(bound("/spec/maxUnavailable")),
                json!(integer(o, "/status/disruptionsAllowed")),
                json!(age),
            ]
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            let subjects: Vec<Value> = o
                .at("/subjects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let of_kind = |kind: &str| -> String {
                subjects
                    .iter()
                    .filter(|s| text(s, "/kind") == kind)
                    .map(|s| {
                        if kind == "ServiceAccount" {
                            format!("{}/{}", text(s, "/namespace"), text(s, "/name"))
                        } else {
                            text(s, "/name")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    text(o, "/roleRef/kind"),
                    text(o, "/roleRef/name")
                )),
                json!(age),
                json!(of_kind("User")),
                json!(of_kind("Group")),
                json!(of_kind("ServiceAccount")),
            ]
        }
        ("certificates.k8s.io", "certificatesigningrequests") => {
            let mut conditions: Vec<String> = o
                .at("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| text(c, "/status") == "True")
                .map(|c| text(c, "/type"))
                .collect();
            if o.at("/status/certificate").is_some_and(|c| !c.is_null()) {
                conditions.push("Issued".into());
            }
            let condition = if conditions.is_empty() {
                "Pending".to_string()
            } else {
                conditions.join(",")
            };
            let duration = match o.at("/spec/expirationSeconds").and_then(Value::as_i64) {
                Some(seconds) => crate::table::human_duration(seconds),
                None => "<none>".into(),
            };
            vec![
                name,
                json!(age),
                json!(text(o, "/spec/signerName")),
                json!(text(o, "/spec/username")),
                json!(duration),
                json!(condition),
            ]
        }
        ("node.k8s.io", "runtimeclasses") => vec![name, json!(text(o, "/handler")), json!(age)],
        ("storage.k8s.io", "storageclasses") => {
            let default = text(
                o,
                "/metadata/annotations/storageclass.kubernetes.io~1is-default-class",
            ) == "true";
            let shown = if default {
                format!("{} (default)", text(o, "/metadata/name"))
            } else {
                text(o, "/metadata/name")
            };
            let or = |pointer: &str, fallback: &str| {
                let value = text(o, pointer);
                if value.is_empty() {
                    fallback.to_string()
                } else {
                    value
                }
            };
            vec![
                json!(shown),
                json!(text(o, "/provisioner")),
                json!(or("/reclaimPolicy", "Delete")),
                json!(or("/volumeBindingMode", "Immediate")),
                json!(
                    o.at("/allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                ),
                json!(age),
            ]
        }
        ("autoscaling", "horizontalpodautoscalers") => {
            let min = match o.at("/spec/minReplicas").and_then(Value::as_i64) {
                Some(min) => min.to_string(),
                None => "<unset>".into(),
            };
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    text(o, "/spec/scaleTargetRef/kind"),
                    text(o, "/spec/scaleTargetRef/name")
                )),
                json!(hpa_targets(o)),
                json!(min),
                json!(integer(o, "/spec/maxReplicas")),
                json!(integer(o, "/status/currentReplicas")),
                json!(age),
            ]
        }
        _ => return apis::cells(group, plural, o, age),
    };
    Some(cells)
}

/// `cpu: 40%/80%, memory: <unknown>/200Mi`: each metric's current and target value.
fn hpa_targets(o: &Value) -> String {
    let specs = o
        .at("/spec/metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if specs.is_empty() {
        return "<none>".into();
    }
    let current = o
        .at("/status/currentMetrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut list = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let kind = text(spec, "/type");
        let (field, prefix) = match kind.as_str() {
            "Resource" => ("resource", text(spec, "/resource/name") + ": "),
            "ContainerResource" => (
                "containerResource",
                format!("{}: ", text(spec, "/containerResource/name")),
            ),
            "Pods" => ("pods", String::new()),
            "Object" => ("object", String::new()),
            "External" => ("external", String::new()),
            _ => {
                list.push("<unknown type>".to_string());
                continue;
            }
        };
        let target = spec.at(&format!("/{field}/target"));
        let status = current
            .get(index)
            .and_then(|c| c.at(&format!("/{field}/current")));
        let (now, wanted) = match target {
            Some(t) if t.get("averageUtilization").is_some() => (
                status
                    .and_then(|c| c.get("averageUtilization"))
                    .and_then(Value::as_i64)
                    .map(|u| format!("{u}%")),
                format!("{}%", integer(t, "/averageUtilization")),
            ),
            Some(t) if t.get("averageValue").is_some() => (
                status.and_then(|c| c.get("averageValue")).map(quantity),
                quantity(&t["averageValue"]) + if kind == "Object" { " (avg)" } else { "" },
            ),
            Some(t) => (
                status.and_then(|c| c.get("value")).map(quantity),
                t.get("value").map(quantity).unwrap_or_default(),
            ),
            None => (None, String::new()),
        };
        list.push(format!(
            "{prefix}{}/{wanted}",
            now.unwrap_or_else(|| "<unknown>".into())
        ));
    }
    if list.len() > 2 {
        let more = list.len() - 2;
        list.truncate(2);
        return format!("{} + {more} more...", list.join(", "));
    }
    list.join(", ")
}

fn quantity(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells_of(group: &str, plural: &str, o: Value) -> Vec<Value> {
        let cells = cells(group, plural, &o, "5m".into()).expect("printed here");
        assert_eq!(cells.len(), columns(group, plural).unwrap().len());
        cells
    }

    #[test]
    fn volumes_and_claims() {
        let pv = json!({"metadata": {"name": "pv1"}, "spec": {
            "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast",
            "claimRef": {"namespace": "ns", "name": "data"}, "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}});
        assert_eq!(
            cells_of("", "persistentvolumes", pv),
            [
                "pv1",
                "10Gi",
                "RWO,RWX",
                "Retain",
                "Bound",
                "ns/data",
                "fast",
                "<unset>",
                "",
                "5m",
                "Filesystem"
            ]
        );
        let pending = json!({"metadata": {"name": "data"}, "spec": {
            "resources": {"requests": {"storage": "1Gi"}}}, "status": {"phase": "Pending"}});
        assert_eq!(
            cells_of("", "persistentvolumeclaims", pending),
            [
                "data", "Pending", "", "", "", "", "<unset>", "5m", "<unset>"
            ]
        );
    }

    #[test]
    fn autoscalers_show_their_targets() {
        let hpa = json!({"metadata": {"name": "web"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "minReplicas": 2, "maxReplicas": 5,
        "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}},
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "200Mi"}}}
        ]},
        "status": {"currentReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 40}}}
        ]}});
        assert_eq!(
            cells_of("autoscaling", "horizontalpodautoscalers", hpa),
            [
                json!("web"),
                json!("Deployment/web"),
                json!("cpu: 40%/80%, memory: <unknown>/200Mi"),
                json!("2"),
                json!(5),
                json!(2),
                json!("5m")
            ]
        );
    }

    #[test]
    fn slices_bindings_and_budgets() {
        let slice = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
            "ports": [{"port": 8080}],
            "endpoints": [{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]},
                {"addresses": ["10.0.0.3"]}, {"addresses": ["10.0.0.4"]}]});
        assert_eq!(
            cells_of("discovery.k8s.io", "endpointslices", slice),
            [
                "web-abc",
                "IPv4",
                "8080",
                "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
                "5m"
            ]
        );
        let binding = json!({"metadata": {"name": "b"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "ann"}, {"kind": "ServiceAccount", "namespace": "ns", "name": "bot"}]});
        assert_eq!(
            cells_of("rbac.authorization.k8s.io", "rolebindings", binding),
            ["b", "ClusterRole/view", "5m", "ann", "", "ns/bot"]
        );
        let budget = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"},
            "status": {"disruptionsAllowed": 1}});
        assert_eq!(
            cells_of("policy", "poddisruptionbudgets", budget),
            [
                json!("p"),
                json!("50%"),
                json!("N/A"),
                json!(1),
                json!("5m")
            ]
        );
    }

    #[test]
    fn quotas_show_used_over_hard() {
        let quota = json!({"metadata": {"name": "q"}, "spec": {"hard": {"pods": 10, "limits.cpu": "2"}},
            "status": {"used": {"pods": "3"}}});
        assert_eq!(
            cells_of("", "resourcequotas", quota),
            ["q", "5m", "pods: 3/10", "limits.cpu: 0/2"]
        );
    }

    #[test]
    fn kinds_without_a_printer_show_when_they_were_created() {
        let role = json!({"metadata": {"name": "r", "creationTimestamp": "2026-01-02T03:04:05Z"}});
        assert_eq!(default_cells(&role), ["r", "2026-01-02T03:04:05Z"]);
        assert_eq!(default_columns()[1].0, "Created At");
        assert!(columns("rbac.authorization.k8s.io", "roles").is_none());
    }
}
