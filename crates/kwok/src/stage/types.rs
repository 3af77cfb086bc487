//! The `Stage` resource (`kwok.x-k8s.io/v1alpha1`) as Stage files and the API carry it.
//!
//! Field names follow upstream exactly, so a Stage written for upstream KWOK deserializes
//! unchanged. Both the older `next` block and the newer `steps` list are read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A Stage object.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: StageSpec,
}

/// The part of `metadata` a Stage needs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageSpec {
    #[serde(default)]
    pub resource_ref: ResourceRef,
    #[serde(default)]
    pub selector: Option<Selector>,
    #[serde(default)]
    pub weight: i64,
    #[serde(default)]
    pub weight_from: Option<ExpressionFrom>,
    #[serde(default)]
    pub delay: Option<Delay>,
    #[serde(default)]
    pub next: Option<Next>,
    #[serde(default)]
    pub steps: Vec<Step>,
    #[serde(default)]
    pub immediate_next_stage: bool,
}

/// Which kind the Stage plays: `apiGroup` is a group-version (`v1`, `apps/v1`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    #[serde(default = "default_api_group")]
    pub api_group: String,
    #[serde(default)]
    pub kind: String,
}

impl Default for ResourceRef {
    fn default() -> Self {
        Self {
            api_group: default_api_group(),
            kind: String::new(),
        }
    }
}

fn default_api_group() -> String {
    "v1".into()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<SelectorExpression>,
}

/// One expression: `jq: {...}`, `cel: {...}` or the older flat `key/operator/values` form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SelectorExpression {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub values: Vec<String>,
    #[serde(default)]
    pub jq: Option<JqRequirement>,
    #[serde(default)]
    pub cel: Option<CelExpression>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JqRequirement {
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CelExpression {
    #[serde(default)]
    pub expression: String,
}

/// A value computed from the object: `expressionFrom: <jq>` or `jq: {expression}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpressionFrom {
    #[serde(default)]
    pub expression_from: Option<String>,
    #[serde(default)]
    pub jq: Option<JqExpression>,
    #[serde(default)]
    pub cel: Option<CelExpression>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JqExpression {
    #[serde(default)]
    pub expression: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delay {
    #[serde(default)]
    pub duration_milliseconds: Option<i64>,
    #[serde(default)]
    pub duration_from: Option<ExpressionFrom>,
    #[serde(default)]
    pub jitter_duration_milliseconds: Option<i64>,
    #[serde(default)]
    pub jitter_duration_from: Option<ExpressionFrom>,
}

/// The older form of a Stage's actions.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Next {
    #[serde(default)]
    pub event: Option<EventSpec>,
    #[serde(default)]
    pub finalizers: Option<Finalizers>,
    #[serde(default)]
    pub delete: bool,
    #[serde(default)]
    pub patches: Vec<PatchSpec>,
    #[serde(default)]
    pub status_template: Option<String>,
    #[serde(default)]
    pub status_subresource: Option<String>,
    #[serde(default)]
    pub status_patch_as: Option<Impersonation>,
}

/// One action of the newer `steps` form.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    #[serde(default)]
    pub event: Option<EventSpec>,
    #[serde(default)]
    pub finalizers: Option<Finalizers>,
    #[serde(default)]
    pub delete: bool,
    #[serde(default)]
    pub patch: Option<PatchSpec>,
    #[serde(default)]
    pub apply: Option<PatchSpec>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventSpec {
    #[serde(default, rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub message: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finalizers {
    #[serde(default)]
    pub add: Vec<FinalizerItem>,
    #[serde(default)]
    pub remove: Vec<FinalizerItem>,
    #[serde(default)]
    pub empty: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizerItem {
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatchSpec {
    #[serde(default)]
    pub subresource: Option<String>,
    #[serde(default)]
    pub root: Option<String>,
    #[serde(default)]
    pub template: String,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub impersonation: Option<Impersonation>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Impersonation {
    #[serde(default)]
    pub username: String,
}

impl Stage {
    /// Reads a Stage from a JSON value (as the API or a YAML document gives it).
    pub fn from_value(v: serde_json::Value) -> Result<Stage, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }
}
