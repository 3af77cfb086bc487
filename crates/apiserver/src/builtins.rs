//! The built-in objects kube-apiserver creates at start besides the RBAC policy: the API Priority
//! and Fairness configuration (`builtins/flowcontrol.yaml`), the `kubernetes` ServiceCIDR of the
//! cluster's service range, the system PriorityClasses and one local APIService per served
//! built-in group-version, as kube-aggregator registers them. Each is created when missing and never overwritten; the
//! status a controller of kube-apiserver would set is set once, on creation.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::ApiServer;
use crate::objects::now_rfc3339;
use crate::resources;
use crate::rest::{Part, WriteOptions};

const FLOWCONTROL: &str = include_str!("builtins/flowcontrol.yaml");

/// kube-aggregator's `groupPriorityMinimum` and `versionPriority` of each built-in group-version.
const API_SERVICE_PRIORITIES: &[(&str, &str, i64, i64)] = &[
    ("", "v1", 18000, 1),
    ("apiregistration.k8s.io", "v1", 18000, 15),
    ("apps", "v1", 17800, 15),
    ("events.k8s.io", "v1", 17750, 15),
    ("authentication.k8s.io", "v1", 17700, 15),
    ("authorization.k8s.io", "v1", 17600, 15),
    ("autoscaling", "v1", 17500, 15),
    ("autoscaling", "v2", 17500, 30),
    ("batch", "v1", 17400, 15),
    ("certificates.k8s.io", "v1", 17300, 15),
    ("networking.k8s.io", "v1", 17200, 15),
    ("policy", "v1", 17100, 15),
    ("rbac.authorization.k8s.io", "v1", 17000, 15),
    ("storage.k8s.io", "v1", 16800, 15),
    ("admissionregistration.k8s.io", "v1", 16700, 15),
    ("apiextensions.k8s.io", "v1", 16700, 15),
    ("scheduling.k8s.io", "v1", 16600, 15),
    ("coordination.k8s.io", "v1", 16500, 15),
    ("node.k8s.io", "v1", 16300, 15),
    ("discovery.k8s.io", "v1", 16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1", 16100, 21),
];

/// One condition, as kube-apiserver's controllers set them.
fn condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let mut c = json!({"type": kind, "status": status, "lastTransitionTime": now_rfc3339(),
        "message": message});
    if !reason.is_empty() {
        c["reason"] = json!(reason);
    }
    c
}

/// The API Priority and Fairness objects, FlowSchemas with their `Dangling` condition.
fn flowcontrol_objects() -> Vec<(Value, Option<Value>)> {
    FLOWCONTROL
        .split("\n---\n")
        .filter_map(|doc| serde_saphyr::from_str::<Value>(doc).ok())
        .map(|obj| {
            let status = (obj["kind"] == "FlowSchema").then(|| {
                let level = obj["spec"]["priorityLevelConfiguration"]["name"]
                    .as_str()
                    .unwrap_or("");
                let message = format!(
                    "This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists"
                );
                json!({"conditions": [condition("Dangling", "False", "Found", &message)]})
            });
            (obj, status)
        })
        .collect()
}

/// The ServiceCIDR of the cluster's service range.
fn service_cidr() -> (Value, Option<Value>) {
    let obj = json!({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR",
        "metadata": {"name": "kubernetes"},
        "spec": {"cidrs": [crate::services::SERVICE_CIDR]}});
    let ready = condition("Ready", "True", "", "Kubernetes Service CIDR is ready");
    (obj, Some(json!({"conditions": [ready]})))
}

/// The PriorityClasses of system-critical pods.
fn priority_classes() -> Vec<(Value, Option<Value>)> {
    [
        ("system-node-critical", 2_000_001_000, "Used for system critical pods that must not be moved from their current node."),
        ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
    ]
    .into_iter()
    .map(|(name, value, description)| {
        let class = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name}, "value": value, "description": description,
            "preemptionPolicy": "PreemptLowerPriority"});
        (class, None)
    })
    .collect()
}

/// The local APIService of every served built-in group-version.
fn api_services() -> Vec<(Value, Option<Value>)> {
    resources::group_versions()
        .into_iter()
        .map(|(group, version)| {
            let (group_priority, version_priority) = API_SERVICE_PRIORITIES
                .iter()
                .find(|(g, v, _, _)| *g == group && *v == version)
                .map_or((1000, 15), |(_, _, g, v)| (*g, *v));
            let obj = json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": format!("{version}.{group}"),
                    "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                "spec": {"group": group, "version": version,
                    "groupPriorityMinimum": group_priority, "versionPriority": version_priority}});
            let available = condition(
                "Available",
                "True",
                "Local",
                "Local APIServices are always available",
            );
            (obj, Some(json!({"conditions": [available]})))
        })
        .collect()
}

impl ApiServer {
    /// Creates the built-in objects that are missing.
    pub(crate) async fn bootstrap_builtins(self: &Arc<Self>) -> anyhow::Result<()> {
        let mut objects = flowcontrol_objects();
        objects.push(service_cidr());
        objects.extend(priority_classes());
        objects.extend(api_services());
        // Written together, so that the store syncs them in few commits.
        let writes = objects
            .into_iter()
            .map(|(obj, status)| self.create_builtin(obj, status));
        futures::future::try_join_all(writes).await?;
        Ok(())
    }

    async fn create_builtin(&self, obj: Value, status: Option<Value>) -> anyhow::Result<()> {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        let kind = obj["kind"].as_str().unwrap_or("").to_string();
        let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
        let r = resources::find_kind(group, &kind)
            .ok_or_else(|| anyhow::anyhow!("built-in object of unknown kind {kind}"))?;
        if self.registry.get(r, None, &name).await.is_ok() {
            return Ok(());
        }
        let opts = WriteOptions::default();
        let written = match self.registry.create(r, None, obj, &opts).await {
            Ok(written) => written,
            Err(e) if e.code == 409 => return Ok(()),
            Err(e) => anyhow::bail!("create {kind} {name}: {}", e.message),
        };
        let Some(status) = status else {
            return Ok(());
        };
        let mut created: Value = serde_json::from_slice(&written.body)?;
        created["status"] = status;
        self.registry
            .update(r, None, &name, created, Part::Status, &opts)
            .await
            .map_err(|e| anyhow::anyhow!("set the status of {kind} {name}: {}", e.message))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flow_control_configuration_parses() {
        let objects = flowcontrol_objects();
        let names = |kind: &str| -> Vec<String> {
            objects
                .iter()
                .filter(|(o, _)| o["kind"] == kind)
                .map(|(o, _)| o["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(names("PriorityLevelConfiguration").len(), 8);
        assert_eq!(names("FlowSchema").len(), 13);
        for (obj, _) in &objects {
            assert_eq!(
                obj["metadata"]["annotations"]["apf.kubernetes.io/autoupdate-spec"],
                "true"
            );
        }
        let levels = names("PriorityLevelConfiguration");
        for (schema, status) in objects.iter().filter(|(o, _)| o["kind"] == "FlowSchema") {
            let level = schema["spec"]["priorityLevelConfiguration"]["name"]
                .as_str()
                .unwrap();
            assert!(levels.iter().any(|l| l == level), "{level}");
            assert_eq!(status.as_ref().unwrap()["conditions"][0]["status"], "False");
        }
    }

    #[test]
    fn every_served_group_version_has_a_priority() {
        for (group, version) in resources::group_versions() {
            assert!(
                API_SERVICE_PRIORITIES
                    .iter()
                    .any(|(g, v, _, _)| *g == group && *v == version),
                "{version}.{group}"
            );
        }
        let services = api_services();
        assert_eq!(services[0].0["metadata"]["name"], "v1.");
    }
}
