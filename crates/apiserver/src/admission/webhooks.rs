//! The cluster's admission webhooks: their configurations compiled into matchers (rules,
//! namespace and object selectors, CEL match conditions), and the calls of the mutating and
//! validating phases with kube-apiserver's failure policies, timeouts, dry-run rules,
//! reinvocation, JSON patches, warnings and error wording.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use kube_cel::{CompiledVapExpression, VapError, VapEvaluator, VapExpression};
use serde_json::{Value, json};

use super::matching::{Rule, namespace_matches, object_matches, selector};
use super::{Admitted, Attributes, GROUP, Operation};
use crate::errors::{ApiError, ApiResult};
use crate::objects;
use crate::resources;
use crate::rest::{ListOptions, Registry};
use crate::selectors::LabelSelector;
use crate::upstream::Endpoint;

/// One webhook of a configuration, ready to match and call.
struct Webhook {
    name: String,
    mutating: bool,
    endpoint: Endpoint,
    ca_bundle: Vec<u8>,
    rules: Vec<Rule>,
    fail_closed: bool,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
    match_conditions: Vec<(String, Result<CompiledVapExpression, VapError>)>,
    side_effects_free_on_dry_run: bool,
    timeout: Duration,
    reinvoke: bool,
    review_version: &'static str,
}

impl Webhook {
    fn compile(hook: &Value, mutating: bool) -> Option<Self> {
        let text = |field: &str| hook.get(field).and_then(Value::as_str).unwrap_or("");
        let client_config = hook.get("clientConfig")?;
        let ca_bundle = client_config
            .get("caBundle")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .unwrap_or_default();
        let versions = hook
            .get("admissionReviewVersions")
            .map(objects::string_list)
            .unwrap_or_default();
        let review_version = if versions.iter().any(|v| v == "v1") || versions.is_empty() {
            "admission.k8s.io/v1"
        } else {
            "admission.k8s.io/v1beta1"
        };
        let conditions = hook
            .get("matchConditions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let name = c
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let expression = VapExpression {
                    expression: c
                        .get("expression")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    message: None,
                    message_expression: None,
                };
                let compiled = VapEvaluator::builder()
                    .build()
                    .compile_expressions(&[expression])
                    .pop()
                    .expect("one expression in, one out");
                (name, compiled)
            })
            .collect();
        Some(Webhook {
            name: text("name").to_string(),
            mutating,
            endpoint: Endpoint::from_client_config(client_config)?,
            ca_bundle,
            rules: hook
                .get("rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(Rule::from_json)
                .collect(),
            fail_closed: text("failurePolicy") != "Ignore",
            namespace_selector: selector(hook.get("namespaceSelector")),
            object_selector: selector(hook.get("objectSelector")),
            match_conditions: conditions,
            side_effects_free_on_dry_run: matches!(text("sideEffects"), "None" | "NoneOnDryRun"),
            timeout: Duration::from_secs(
                hook.get("timeoutSeconds")
                    .and_then(Value::as_u64)
                    .unwrap_or(10)
                    .clamp(1, 30),
            ),
            reinvoke: text("reinvocationPolicy") == "IfNeeded",
            review_version,
        })
    }

    /// Rules and object selector: what can be decided without reading anything.
    fn matches_request(&self, a: &Attributes, object: Option<&Value>) -> bool {
        self.rules.iter().any(|rule| rule.matches(a))
            && object_matches(self.object_selector.as_ref(), a, object)
    }

    async fn matches_namespace(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> ApiResult<bool> {
        namespace_matches(registry, self.namespace_selector.as_ref(), a, object).await
    }

    /// Evaluates the match conditions: false when one is false; an error refuses the request
    /// when the webhook fails closed.
    fn matches_conditions(&self, a: &Attributes, object: Option<&Value>) -> ApiResult<bool> {
        if self.match_conditions.is_empty() {
            return Ok(true);
        }
        let mut builder = VapEvaluator::builder()
            .object(object.cloned().unwrap_or(Value::Null))
            .request(kube_cel::AdmissionRequest {
                operation: a.operation.as_str().into(),
                username: a.user.map(|u| u.name.clone()).unwrap_or_default(),
                uid: a.user.map(|u| u.uid.clone()).unwrap_or_default(),
                groups: a.user.map(|u| u.groups.clone()).unwrap_or_default(),
                name: a.name.into(),
                namespace: a.namespace.into(),
                dry_run: a.dry_run,
                kind: kube_cel::GroupVersionKind {
                    group: a.r.group.into(),
                    version: a.r.version.into(),
                    kind: a.r.kind.into(),
                },
                resource: kube_cel::GroupVersionResource {
                    group: a.r.group.into(),
                    version: a.r.version.into(),
                    resource: a.r.plural.into(),
                },
            });
        if let Some(old) = a.old {
            builder = builder.old_object(old.clone());
        }
        let evaluator = builder.build();
        for (name, condition) in &self.match_conditions {
            let result = evaluator
                .evaluate_compiled(std::slice::from_ref(condition))
                .pop()
                .expect("one condition in, one result out");
            if result.passed {
                continue;
            }
            let failed = result
                .message
                .as_deref()
                .is_some_and(|m| !m.ends_with("evaluated to false"));
            if failed && self.fail_closed {
                return Err(ApiError::forbidden(format!(
                    "failed to evaluate match condition {name:?} of webhook {:?}: {}",
                    self.name,
                    result.message.unwrap_or_default()
                )));
            }
            return Ok(false);
        }
        Ok(true)
    }
}

/// The compiled webhooks, mutating first, each phase in name order of its configurations.
#[derive(Default)]
struct Compiled {
    mutating: Vec<Webhook>,
    validating: Vec<Webhook>,
}

/// The cluster's admission webhooks (reached through the registry's shared clients).
#[derive(Default)]
pub(crate) struct Webhooks {
    compiled: RwLock<Arc<Compiled>>,
}

/// What one call decided.
#[derive(Debug)]
struct Answer {
    patch: Option<Value>,
    warnings: Vec<String>,
}

const MUTATING: &str = "mutatingwebhookconfigurations";
const VALIDATING: &str = "validatingwebhookconfigurations";

impl Webhooks {
    fn current(&self) -> Arc<Compiled> {
        self.compiled.read().unwrap().clone()
    }

    /// Whether any webhook is configured; writes skip admission entirely otherwise.
    pub(crate) fn any(&self) -> bool {
        let compiled = self.current();
        !compiled.mutating.is_empty() || !compiled.validating.is_empty()
    }

    /// Reads both configuration kinds again and replaces the compiled webhooks.
    pub(crate) async fn reload(&self, registry: &Registry) {
        let mut compiled = Compiled::default();
        for (plural, mutating) in [(MUTATING, true), (VALIDATING, false)] {
            let r = resources::find(GROUP, "v1", plural).expect("built in");
            let Ok(page) = registry.list(r, None, &ListOptions::default()).await else {
                return;
            };
            let hooks = page
                .items
                .iter()
                .filter_map(|item| objects::decode(item).ok())
                .flat_map(|config| {
                    config
                        .get("webhooks")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|hook| Webhook::compile(&hook, mutating));
            if mutating {
                compiled.mutating.extend(hooks);
            } else {
                compiled.validating.extend(hooks);
            }
        }
        *self.compiled.write().unwrap() = Arc::new(compiled);
    }

    /// The mutating phase: every matching mutating webhook in order, patches applied as they
    /// come, and those that ask for it called once more when a later one changed the object.
    pub(crate) async fn mutate(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
        object: &mut Value,
    ) -> ApiResult<Admitted> {
        let compiled = self.current();
        let mut admitted = Admitted::default();
        if a.exempt() || compiled.mutating.is_empty() {
            return Ok(admitted);
        }
        let mut last_change = None;
        let mut called = Vec::new();
        for (index, hook) in compiled.mutating.iter().enumerate() {
            if let Some(changed) = self
                .call_if_matching(registry, hook, a, object, &mut admitted)
                .await?
            {
                called.push(index);
                if changed {
                    last_change = Some(index);
                }
            }
        }
        if let Some(changed_by) = last_change {
            for &index in called.iter().filter(|&&i| i < changed_by) {
                let hook = &compiled.mutating[index];
                if hook.reinvoke {
                    self.call_if_matching(registry, hook, a, object, &mut admitted)
                        .await?;
                }
            }
        }
        Ok(admitted)
    }

    /// A deletion: mutating webhooks are told (their patches have nothing to change), then the
    /// validating ones decide.
    pub(crate) async fn admit_delete(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
    ) -> ApiResult<Admitted> {
        let compiled = self.current();
        let mut admitted = Admitted::default();
        if a.exempt() {
            return Ok(admitted);
        }
        for hook in &compiled.mutating {
            if let Some(answer) = self.admit_one(registry, hook, a, None).await? {
                admitted.warnings.extend(answer.warnings);
            }
        }
        admitted
            .warnings
            .extend(self.validate(registry, a, None).await?.warnings);
        Ok(admitted)
    }

    /// The validating phase: every matching validating webhook; any refusal refuses.
    pub(crate) async fn validate(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> ApiResult<Admitted> {
        let compiled = self.current();
        let mut admitted = Admitted::default();
        if a.exempt() || compiled.validating.is_empty() {
            return Ok(admitted);
        }
        let calls = compiled
            .validating
            .iter()
            .map(|hook| self.admit_one(registry, hook, a, object));
        for answer in futures::future::join_all(calls).await {
            if let Some(answer) = answer? {
                admitted.warnings.extend(answer.warnings);
            }
        }
        Ok(admitted)
    }

    /// Calls a mutating webhook when it matches: None when it was not called, else whether its
    /// patch changed the object.
    async fn call_if_matching(
        &self,
        registry: &Registry,
        hook: &Webhook,
        a: &Attributes<'_>,
        object: &mut Value,
        admitted: &mut Admitted,
    ) -> ApiResult<Option<bool>> {
        let Some(answer) = self.admit_one(registry, hook, a, Some(object)).await? else {
            return Ok(None);
        };
        admitted.warnings.extend(answer.warnings);
        let Some(patch) = answer.patch else {
            return Ok(Some(false));
        };
        if a.operation == Operation::Delete {
            return Ok(Some(false));
        }
        let patched = crate::patch::json_patch(object, &patch).map_err(|e| {
            let (crate::patch::PatchError::Malformed(why)
            | crate::patch::PatchError::Invalid(why)
            | crate::patch::PatchError::TooLarge(why)) = e;
            ApiError::internal(format!(
                "failed calling webhook {:?}: failed to apply the JSON patch: {why}",
                hook.name
            ))
        })?;
        let changed = patched != *object;
        *object = patched;
        Ok(Some(changed))
    }

    /// Matches and calls one webhook. None when it does not apply or failed open.
    async fn admit_one(
        &self,
        registry: &Registry,
        hook: &Webhook,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> ApiResult<Option<Answer>> {
        if !hook.matches_request(a, object)
            || !hook.matches_namespace(registry, a, object).await?
            || !hook.matches_conditions(a, object)?
        {
            return Ok(None);
        }
        if a.dry_run && !hook.side_effects_free_on_dry_run {
            return Err(ApiError::bad_request(format!(
                "admission webhook {:?} does not support dry run",
                hook.name
            )));
        }
        match self.call(registry, hook, a, object).await {
            Ok(answer) => answer.map(Some),
            Err(failure) if hook.fail_closed => Err(ApiError::internal(format!(
                "failed calling webhook {:?}: {failure}",
                hook.name
            ))),
            Err(failure) => {
                tracing::warn!(webhook = %hook.name, %failure, "webhook failed, ignored by its failure policy");
                Ok(None)
            }
        }
    }

    /// Sends the review. The outer error is a failure to get an answer (subject to the failure
    /// policy); the inner one is the webhook's refusal.
    async fn call(
        &self,
        registry: &Registry,
        hook: &Webhook,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> Result<ApiResult<Answer>, String> {
        let uid = objects::new_uid();
        let review = json!({
            "apiVersion": hook.review_version,
            "kind": "AdmissionReview",
            "request": a.review_request(&uid, object),
        });
        let body = Bytes::from(serde_json::to_vec(&review).expect("serialises"));
        let answer = registry
            .upstream
            .post(
                registry,
                &hook.endpoint,
                &hook.ca_bundle,
                hook.timeout,
                body,
            )
            .await
            .map_err(|e| format!("failed to call webhook: {e}"))?;
        read_answer(hook, &uid, &answer)
    }
}

/// Checks the AdmissionReview answer as kube-apiserver does and turns it into a decision.
fn read_answer(hook: &Webhook, uid: &str, answer: &Value) -> Result<ApiResult<Answer>, String> {
    let fail = |why: String| Err(format!("received invalid webhook response: {why}"));
    if answer.get("kind").and_then(Value::as_str) != Some("AdmissionReview") {
        return fail(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {}, Kind={}",
            answer
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or(""),
            answer.get("kind").and_then(Value::as_str).unwrap_or("")
        ));
    }
    let Some(response) = answer.get("response") else {
        return fail("webhook response was absent".into());
    };
    let got_uid = response.get("uid").and_then(Value::as_str).unwrap_or("");
    if hook.review_version.ends_with("/v1") && got_uid != uid {
        return fail(format!("expected response.uid={uid:?}, got {got_uid:?}"));
    }
    let warnings = response
        .get("warnings")
        .map(objects::string_list)
        .unwrap_or_default();
    if response.get("allowed") != Some(&Value::Bool(true)) {
        return Ok(Err(denied(&hook.name, response.get("status"))));
    }
    let patch = match response.get("patch").and_then(Value::as_str) {
        None | Some("") => None,
        Some(_) if !hook.mutating => None,
        Some(encoded) => {
            let patch_type = response.get("patchType").and_then(Value::as_str);
            if patch_type != Some("JSONPatch") {
                return fail(format!(
                    "webhook returned response.patch but not response.patchType ({patch_type:?})"
                ));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("received invalid patch: {e}"))?;
            Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| format!("received invalid patch: {e}"))?,
            )
        }
    };
    Ok(Ok(Answer { patch, warnings }))
}

/// Status reasons a webhook may give, kept as the error's reason.
const REASONS: &[&str] = &[
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "Gone",
    "Invalid",
    "ServerTimeout",
    "Timeout",
    "TooManyRequests",
    "MethodNotAllowed",
    "NotAcceptable",
    "RequestEntityTooLarge",
    "UnsupportedMediaType",
    "InternalError",
    "Expired",
    "ServiceUnavailable",
];

/// `admission webhook "x" denied the request: ...`, with the webhook's code (at least 400).
fn denied(name: &str, status: Option<&Value>) -> ApiError {
    let status = status.cloned().unwrap_or(Value::Null);
    let message = status.get("message").and_then(Value::as_str).unwrap_or("");
    let reason = status.get("reason").and_then(Value::as_str).unwrap_or("");
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| *c >= 400 && *c < 600)
        .unwrap_or(400);
    let prefix = format!("admission webhook {name:?} denied the request");
    let message = match (message, reason) {
        ("", "") => format!("{prefix} without explanation"),
        ("", reason) => format!("{prefix}: {reason}"),
        (message, _) => format!("{prefix}: {message}"),
    };
    let reason = REASONS
        .iter()
        .find(|r| **r == reason)
        .copied()
        .unwrap_or("");
    let mut error = ApiError::new(code, reason, message);
    error.details = status.get("details").cloned();
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_the_webhooks_code_and_message() {
        let e = denied(
            "deny.example.com",
            Some(&json!({"code": 403, "message": "no"})),
        );
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "admission webhook \"deny.example.com\" denied the request: no"
        );
        let e = denied("deny.example.com", None);
        assert_eq!(e.code, 400);
        assert!(
            e.message
                .ends_with("denied the request without explanation")
        );
        let e = denied(
            "d.example.com",
            Some(&json!({"code": 200, "reason": "Conflict"})),
        );
        assert_eq!((e.code, e.reason), (400, "Conflict"));
    }

    fn hook(mutating: bool) -> Webhook {
        Webhook::compile(
            &json!({"name": "a.b.c", "clientConfig": {"url": "https://127.0.0.1:1/x"},
                    "sideEffects": "None", "admissionReviewVersions": ["v1"]}),
            mutating,
        )
        .unwrap()
    }

    #[test]
    fn answers_are_checked() {
        let h = hook(true);
        let ok = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "u", "allowed": true, "warnings": ["careful"],
                "patchType": "JSONPatch",
                "patch": base64::engine::general_purpose::STANDARD.encode(br#"[{"op":"add","path":"/x","value":1}]"#)}});
        let answer = read_answer(&h, "u", &ok).unwrap().unwrap();
        assert_eq!(answer.warnings, vec!["careful".to_string()]);
        assert_eq!(
            answer.patch,
            Some(json!([{"op": "add", "path": "/x", "value": 1}]))
        );
        let wrong_uid = read_answer(&h, "other", &ok).unwrap_err();
        assert!(
            wrong_uid.contains("expected response.uid=\"other\""),
            "{wrong_uid}"
        );
        let mut no_type = ok.clone();
        no_type["response"]
            .as_object_mut()
            .unwrap()
            .remove("patchType");
        assert!(read_answer(&h, "u", &no_type).is_err());
        let refused =
            json!({"kind": "AdmissionReview", "response": {"uid": "u", "allowed": false}});
        assert_eq!(
            read_answer(&h, "u", &refused).unwrap().err().unwrap().code,
            400
        );
    }
}
