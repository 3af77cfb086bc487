//! The CustomResourceDefinitions of `kwok.x-k8s.io/v1alpha1`: Stage and the eleven kinds that
//! configure what simulated pods answer (logs, attach, exec, port-forward, resource usage,
//! metrics). Each kind's schema is its spec; the envelope (type meta, metadata, status
//! conditions, the status subresource) is the same for all of them.

use serde_json::{Value, json};

pub const GROUP: &str = "kwok.x-k8s.io";
pub const VERSION: &str = "v1alpha1";

/// One simulation kind: names, scope and the schema of its `spec`.
pub struct SimKind {
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    spec: fn() -> Value,
}

impl SimKind {
    pub fn api_version(&self) -> String {
        format!("{GROUP}/{VERSION}")
    }

    pub fn resource(&self) -> client::Resource {
        client::Resource::new(GROUP, VERSION, self.plural, self.kind, self.namespaced)
    }

    /// The CustomResourceDefinition that serves this kind.
    pub fn definition(&self) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{}.{GROUP}", self.plural)},
            "spec": {
                "group": GROUP,
                "names": {
                    "kind": self.kind,
                    "listKind": format!("{}List", self.kind),
                    "plural": self.plural,
                    "singular": self.kind.to_lowercase(),
                },
                "scope": if self.namespaced { "Namespaced" } else { "Cluster" },
                "versions": [{
                    "name": VERSION,
                    "served": true,
                    "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "required": ["metadata", "spec"],
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": (self.spec)(),
                            "status": status(),
                        },
                    }},
                }],
            },
        })
    }
}

/// Every kind of the group, Stage first.
pub const KINDS: &[SimKind] = &[
    SimKind {
        kind: "Stage",
        plural: "stages",
        namespaced: false,
        spec: stage,
    },
    SimKind {
        kind: "Logs",
        plural: "logs",
        namespaced: true,
        spec: || per_pod("logs", log()),
    },
    SimKind {
        kind: "ClusterLogs",
        plural: "clusterlogs",
        namespaced: false,
        spec: || cluster("logs", log()),
    },
    SimKind {
        kind: "Attach",
        plural: "attaches",
        namespaced: true,
        spec: || per_pod("attaches", attach()),
    },
    SimKind {
        kind: "ClusterAttach",
        plural: "clusterattaches",
        namespaced: false,
        spec: || cluster("attaches", attach()),
    },
    SimKind {
        kind: "Exec",
        plural: "execs",
        namespaced: true,
        spec: || per_pod("execs", exec()),
    },
    SimKind {
        kind: "ClusterExec",
        plural: "clusterexecs",
        namespaced: false,
        spec: || cluster("execs", exec()),
    },
    SimKind {
        kind: "PortForward",
        plural: "portforwards",
        namespaced: true,
        spec: || per_pod("forwards", forward()),
    },
    SimKind {
        kind: "ClusterPortForward",
        plural: "clusterportforwards",
        namespaced: false,
        spec: || cluster("forwards", forward()),
    },
    SimKind {
        kind: "ResourceUsage",
        plural: "resourceusages",
        namespaced: true,
        spec: || optional_list("usages", usage(), false),
    },
    SimKind {
        kind: "ClusterResourceUsage",
        plural: "clusterresourceusages",
        namespaced: false,
        spec: || optional_list("usages", usage(), true),
    },
    SimKind {
        kind: "Metric",
        plural: "metrics",
        namespaced: false,
        spec: metric,
    },
];

/// Creates the definitions of `kinds` in a cluster, or brings changed ones up to date.
pub async fn install(
    cluster: &dyn client::Cluster,
    kinds: impl Iterator<Item = &'static SimKind>,
) -> Result<(), client::Error> {
    let crds = client::Resource::new(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    );
    // Written together, so that the store syncs them in few commits.
    let writes = kinds.map(|kind| install_one(cluster, &crds, kind.definition()));
    futures::future::try_join_all(writes).await?;
    Ok(())
}

/// Creates one definition, or updates it when its schema changed.
async fn install_one(
    cluster: &dyn client::Cluster,
    crds: &client::Resource,
    wanted: serde_json::Value,
) -> Result<(), client::Error> {
    match cluster.create(crds, None, &wanted).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_conflict() || e.code == 409 => {
            let name = wanted["metadata"]["name"].as_str().unwrap_or_default();
            let current = cluster.get(crds, None, name).await?;
            if current["spec"]["versions"][0]["schema"] != wanted["spec"]["versions"][0]["schema"] {
                let mut next = wanted.clone();
                next["metadata"]["resourceVersion"] =
                    current["metadata"]["resourceVersion"].clone();
                cluster.update(crds, None, &next).await?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The simulation kinds other than Stage.
pub fn simulation_kinds() -> impl Iterator<Item = &'static SimKind> {
    KINDS.iter().filter(|k| k.kind != "Stage")
}

pub fn find(kind: &str) -> Option<&'static SimKind> {
    KINDS.iter().find(|k| k.kind == kind)
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

/// `status.conditions`, as every kind of the group has them.
fn status() -> Value {
    json!({"type": "object", "properties": {"conditions": {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
            "properties": {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": {"type": "string", "maxLength": 32768},
                "reason": {"type": "string", "minLength": 1, "maxLength": 1024,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"},
                "status": {"type": "string"},
                "type": {"type": "string", "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"},
            },
        },
    }}})
}

/// A spec holding a required list `field` of `item`s for the pod of the same name.
fn per_pod(field: &str, item: Value) -> Value {
    json!({
        "type": "object",
        "required": [field],
        "properties": {field: {"type": "array", "items": item}},
    })
}

/// [`per_pod`] plus the selector of the pods it applies to.
fn cluster(field: &str, item: Value) -> Value {
    let mut spec = per_pod(field, item);
    spec["properties"]["selector"] = selector();
    spec
}

fn optional_list(field: &str, item: Value, with_selector: bool) -> Value {
    let mut spec =
        json!({"type": "object", "properties": {field: {"type": "array", "items": item}}});
    if with_selector {
        spec["properties"]["selector"] = selector();
    }
    spec
}

fn selector() -> Value {
    json!({"type": "object", "properties": {
        "matchNamespaces": strings(),
        "matchNames": strings(),
    }})
}

fn log() -> Value {
    json!({"type": "object", "properties": {
        "containers": strings(),
        "logsFile": {"type": "string"},
        "previousLogsFile": {"type": "string"},
        "follow": {"type": "boolean"},
    }})
}

fn attach() -> Value {
    json!({"type": "object", "properties": {
        "containers": strings(),
        "logsFile": {"type": "string"},
    }})
}

fn exec() -> Value {
    json!({"type": "object", "properties": {
        "containers": strings(),
        "local": {"type": "object", "properties": {
            "workDir": {"type": "string"},
            "envs": {"type": "array", "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
            }},
            "securityContext": {"type": "object", "properties": {
                "runAsUser": {"type": "integer", "format": "int64"},
                "runAsGroup": {"type": "integer", "format": "int64"},
            }},
        }},
    }})
}

fn forward() -> Value {
    json!({"type": "object", "properties": {
        "ports": {"type": "array", "items": {"type": "integer", "format": "int32"}},
        "target": {"type": "object", "required": ["address", "port"], "properties": {
            "port": {"type": "integer", "format": "int32"},
            "address": {"type": "string"},
        }},
        "command": strings(),
    }})
}

fn usage() -> Value {
    json!({"type": "object", "properties": {
        "containers": strings(),
        "usage": {"type": "object", "additionalProperties": {
            "type": "object",
            "properties": {
                "value": {
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                    "x-kubernetes-int-or-string": true,
                    "pattern": "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$",
                },
                "expression": {"type": "string"},
            },
        }},
    }})
}

fn metric() -> Value {
    json!({
        "type": "object",
        "required": ["metrics", "path"],
        "properties": {
            "path": {"type": "string", "minLength": 1},
            "metrics": {"type": "array", "items": {
                "type": "object",
                "required": ["kind", "name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "help": {"type": "string"},
                    "kind": {"type": "string", "enum": ["counter", "gauge", "histogram"]},
                    "labels": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["name"],
                        "items": {"type": "object", "required": ["name", "value"], "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "value": {"type": "string", "minLength": 1},
                        }},
                    },
                    "value": {"type": "string"},
                    "buckets": {
                        "type": "array",
                        "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["le"],
                        "items": {"type": "object", "required": ["le", "value"], "properties": {
                            "le": {"type": "number", "minimum": 0},
                            "value": {"type": "string"},
                            "hidden": {"type": "boolean"},
                        }},
                    },
                    "dimension": {"type": "string", "default": "node", "enum": ["node", "pod", "container"]},
                },
            }},
        },
    })
}

/// A Stage's spec. The simulator checks Stages when it loads them; the schema keeps the shape
/// clients see and leaves the nested selectors and templates open.
fn stage() -> Value {
    json!({
        "type": "object",
        "required": ["resourceRef"],
        "properties": {
            "resourceRef": {"type": "object", "required": ["kind"], "properties": {
                "apiGroup": {"type": "string", "default": "v1"},
                "kind": {"type": "string"},
            }},
            "selector": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "weight": {"type": "integer"},
            "weightFrom": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "delay": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "next": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "immediateNextStage": {"type": "boolean"},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_definition_named_plural_dot_group() {
        assert_eq!(KINDS.len(), 12);
        for k in KINDS {
            let crd = k.definition();
            assert_eq!(
                crd["metadata"]["name"],
                format!("{}.kwok.x-k8s.io", k.plural)
            );
            assert_eq!(crd["spec"]["names"]["kind"], k.kind);
            let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            assert_eq!(schema["properties"]["spec"]["type"], "object", "{}", k.kind);
        }
        assert_eq!(simulation_kinds().count(), 11);
        assert!(find("ClusterPortForward").is_some_and(|k| !k.namespaced));
    }
}
