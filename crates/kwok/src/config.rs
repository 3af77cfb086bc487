//! Simulator options and the `KwokConfiguration` file (`config.kwok.x-k8s.io/v1alpha1`).
//!
//! A config file is multi-document YAML: a `KwokConfiguration` whose `options` mirror the
//! command-line flags, and any number of `Stage` documents. Flags given on the command line win
//! over the file.

use client::JsonAt;
use serde::Deserialize;
use serde_json::Value;

use crate::stage::types::Stage;

/// What the simulator does and on which objects.
#[derive(Debug, Clone)]
pub struct Options {
    /// Pod CIDR for nodes without `spec.podCIDR(s)`.
    pub cidr: String,
    /// InternalIP written on nodes, and the fallback host IP.
    pub node_ip: String,
    /// Hostname address written on nodes.
    pub node_name: String,
    /// `daemonEndpoints.kubeletEndpoint.Port`.
    pub node_port: i64,
    pub manage_all_nodes: bool,
    pub manage_single_node: String,
    pub manage_nodes_with_annotation_selector: String,
    pub manage_nodes_with_label_selector: String,
    /// 0 disables node leases.
    pub node_lease_duration_seconds: u64,
    /// Kinds read from the API instead of files (`Stage`).
    pub enable_crds: Vec<String>,
    /// Stages from files; the default set when empty and `Stage` is not an enabled CRD.
    pub stages: Vec<Stage>,
    /// Objects of the simulation kinds from files (`Logs`, `ClusterExec`, ...).
    pub simulations: Vec<Value>,
    /// Concurrent writes per controller.
    pub parallelism: usize,
    /// Lease holder identity; `<hostname>_<random>` when empty.
    pub identity: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            cidr: "10.0.0.0/24".into(),
            node_ip: String::new(),
            node_name: String::new(),
            node_port: 0,
            manage_all_nodes: false,
            manage_single_node: String::new(),
            manage_nodes_with_annotation_selector: String::new(),
            manage_nodes_with_label_selector: String::new(),
            node_lease_duration_seconds: 0,
            enable_crds: Vec::new(),
            stages: Vec::new(),
            simulations: Vec::new(),
            parallelism: 64,
            identity: String::new(),
        }
    }
}

impl Options {
    /// Checks the node management flags as upstream does.
    pub fn validate(&self) -> Result<(), String> {
        let selectors = !self.manage_nodes_with_annotation_selector.is_empty()
            || !self.manage_nodes_with_label_selector.is_empty();
        if !self.manage_single_node.is_empty() && (self.manage_all_nodes || selectors) {
            return Err("manage-single-node is conflicted with manage-all-nodes or manage-nodes-with-annotation-selector or manage-nodes-with-label-selector".into());
        }
        if self.manage_all_nodes && selectors {
            return Err("manage-all-nodes is conflicted with manage-nodes-with-annotation-selector or manage-nodes-with-label-selector".into());
        }
        if !self.manage_all_nodes && !selectors && self.manage_single_node.is_empty() {
            return Err("no nodes are managed".into());
        }
        for crd in &self.enable_crds {
            if crate::simkinds::crds::find(crd).is_none() {
                return Err(format!("invalid crd: {crd}"));
            }
            let in_config = if crd == "Stage" {
                !self.stages.is_empty()
            } else {
                self.simulations
                    .iter()
                    .any(|d| d.get("kind").and_then(Value::as_str) == Some(crd))
            };
            if in_config {
                return Err(format!(
                    "{crd} already exists in --config, so please remove it, or remove {crd} from --enable-crd"
                ));
            }
        }
        crate::ipam::Cidr::parse(&self.cidr)?;
        Ok(())
    }
}

/// `options` of a `KwokConfiguration`; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileOptions {
    pub enable_crds: Option<Vec<String>>,
    pub cidr: Option<String>,
    #[serde(rename = "nodeIP")]
    pub node_ip: Option<String>,
    pub node_name: Option<String>,
    pub node_port: Option<i64>,
    pub manage_single_node: Option<String>,
    pub manage_all_nodes: Option<bool>,
    pub manage_nodes_with_annotation_selector: Option<String>,
    pub manage_nodes_with_label_selector: Option<String>,
    pub server_address: Option<String>,
    pub node_lease_duration_seconds: Option<u64>,
    pub pod_play_stage_parallelism: Option<usize>,
    pub node_play_stage_parallelism: Option<usize>,
}

/// What a config file holds.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub options: FileOptions,
    pub stages: Vec<Stage>,
    /// Documents of the simulation kinds (`Logs`, `ClusterExec`, ...), as written.
    pub simulations: Vec<Value>,
    /// Stage documents that could not be read, with the reason (they are skipped).
    pub invalid: Vec<String>,
}

/// Reads a config file: the `KwokConfiguration` options and the Stages.
pub fn read_config(text: &str) -> Result<ConfigFile, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut out = ConfigFile::default();
    for doc in docs {
        match doc.get("kind").and_then(Value::as_str) {
            Some("KwokConfiguration") => {
                if let Some(o) = doc.get("options") {
                    out.options = serde_json::from_value(o.clone())
                        .map_err(|e| format!("KwokConfiguration options: {e}"))?;
                }
            }
            Some("Stage") => {
                let name = doc
                    .at("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or("<unnamed>")
                    .to_string();
                match Stage::from_value(doc) {
                    Ok(s) => out.stages.push(s),
                    Err(e) => out.invalid.push(format!("stage {name:?}: {e}")),
                }
            }
            Some(kind) if crate::simkinds::crds::simulation_kinds().any(|k| k.kind == kind) => {
                out.simulations.push(doc);
            }
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options_and_stages() {
        let c = read_config(
            r#"
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  cidr: 10.1.0.0/16
  nodeIP: 10.2.0.1
  manageAllNodes: true
  nodeLeaseDurationSeconds: 40
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: s}
spec:
  resourceRef: {kind: Pod}
  selector: {}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {name: all}
spec: {logs: [{logsFile: /tmp/x.log}]}
---
kind: Other
"#,
        )
        .unwrap();
        assert_eq!(c.options.cidr.as_deref(), Some("10.1.0.0/16"));
        assert_eq!(c.options.node_ip.as_deref(), Some("10.2.0.1"));
        assert_eq!(c.options.manage_all_nodes, Some(true));
        assert_eq!(c.stages.len(), 1);
        assert_eq!(c.stages[0].metadata.name, "s");
        assert_eq!(c.simulations.len(), 1);
        assert_eq!(c.simulations[0]["kind"], "ClusterLogs");
    }

    #[test]
    fn management_flags() {
        let mut o = Options::default();
        assert_eq!(o.validate().unwrap_err(), "no nodes are managed");
        o.manage_all_nodes = true;
        o.validate().unwrap();
        o.manage_nodes_with_label_selector = "a=b".into();
        assert!(
            o.validate()
                .unwrap_err()
                .starts_with("manage-all-nodes is conflicted")
        );
        o.manage_all_nodes = false;
        o.enable_crds = vec!["Foo".into()];
        assert_eq!(o.validate().unwrap_err(), "invalid crd: Foo");
    }
}
