//! ValidatingAdmissionPolicy and its bindings, evaluated in-process with CEL as kube-apiserver
//! does: match constraints and binding match resources, parameters (by name or selector, with
//! `parameterNotFoundAction`), `matchConditions`, `variables`, validations with `message`,
//! `messageExpression` and `reason`, `failurePolicy`, and `validationActions` (Deny refuses,
//! Warn warns, Audit is recorded nowhere yet).
//!
//! Expressions are compiled once per configuration change; each request builds one CEL scope
//! over a per-thread root that holds the Kubernetes function libraries.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube_cel::KubeCelExt;
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{Context, Program, Value as Cel};
use serde_json::{Value, json};

use super::matching::{Rule, namespace_matches, namespace_object, object_matches, selector};
use super::{Admitted, Attributes, GROUP};
use crate::errors::{ApiError, ApiResult};
use crate::objects;
use crate::resources;
use crate::rest::{ListOptions, Registry};
use crate::selectors::LabelSelector;

/// An expression compiled once; the error is the compiler's.
type Compiled = Result<Arc<Program>, String>;

fn compile(text: &str) -> Compiled {
    Program::compile(text)
        .map(Arc::new)
        .map_err(|e| e.to_string())
}

/// `matchConstraints` of a policy or `matchResources` of a binding.
struct MatchResources {
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
    rules: Vec<(Vec<String>, Rule)>,
    excluded: Vec<(Vec<String>, Rule)>,
}

impl MatchResources {
    fn from_json(spec: &Value) -> Self {
        let rules = |field: &str| {
            spec.get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| {
                    let names = r.get("resourceNames").map(objects::string_list);
                    (names.unwrap_or_default(), Rule::from_json(r))
                })
                .collect()
        };
        MatchResources {
            namespace_selector: selector(spec.get("namespaceSelector")),
            object_selector: selector(spec.get("objectSelector")),
            rules: rules("resourceRules"),
            excluded: rules("excludeResourceRules"),
        }
    }

    fn rule_matches(rules: &[(Vec<String>, Rule)], a: &Attributes) -> bool {
        rules.iter().any(|(names, rule)| {
            rule.matches(a) && (names.is_empty() || names.iter().any(|n| n == a.name))
        })
    }

    /// Rules, exclusions and object selector. A binding without `resourceRules` narrows
    /// nothing by rule.
    fn matches_request(&self, a: &Attributes, object: Option<&Value>, need_rules: bool) -> bool {
        let ruled = if self.rules.is_empty() {
            !need_rules
        } else {
            Self::rule_matches(&self.rules, a)
        };
        ruled
            && !Self::rule_matches(&self.excluded, a)
            && object_matches(self.object_selector.as_ref(), a, object)
    }
}

struct Validation {
    expression: String,
    program: Compiled,
    message: Option<String>,
    message_program: Option<Compiled>,
    reason: Option<String>,
}

struct Policy {
    name: String,
    param_kind: Option<(String, String)>,
    constraints: MatchResources,
    conditions: Vec<(String, Compiled)>,
    variables: Vec<(String, Compiled)>,
    validations: Vec<Validation>,
    fail_closed: bool,
    /// Which costly variables the expressions name; the others are bound to null.
    reads: Reads,
}

/// Variables built only for the policies whose expressions name them.
#[derive(Clone, Copy, Default)]
struct Reads {
    namespace_object: bool,
    request: bool,
    old_object: bool,
}

impl Reads {
    /// A conservative reading: any mention anywhere in the spec counts.
    fn of(spec: &Value) -> Self {
        let text = spec.to_string();
        Reads {
            namespace_object: text.contains("namespaceObject"),
            request: text.contains("request"),
            old_object: text.contains("oldObject"),
        }
    }
}

struct ParamRef {
    name: Option<String>,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    deny_when_missing: bool,
}

struct Binding {
    name: String,
    policy: String,
    param_ref: Option<ParamRef>,
    match_resources: Option<MatchResources>,
    deny: bool,
    warn: bool,
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    objects::JsonAt::at(v, pointer)
        .and_then(Value::as_str)
        .map(String::from)
}

impl Policy {
    fn from_json(policy: &Value) -> Self {
        let spec = &policy["spec"];
        let named = |field: &str| -> Vec<(String, Compiled)> {
            spec.get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|c| {
                    let name = text(c, "/name").unwrap_or_default();
                    (name, compile(&text(c, "/expression").unwrap_or_default()))
                })
                .collect()
        };
        let validations = spec
            .get("validations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|v| {
                let expression = text(v, "/expression").unwrap_or_default();
                Validation {
                    program: compile(&expression),
                    expression,
                    message: text(v, "/message").filter(|m| !m.is_empty()),
                    message_program: text(v, "/messageExpression")
                        .filter(|m| !m.is_empty())
                        .map(|m| compile(&m)),
                    reason: text(v, "/reason").filter(|r| !r.is_empty()),
                }
            })
            .collect();
        Policy {
            name: text(policy, "/metadata/name").unwrap_or_default(),
            param_kind: spec.get("paramKind").map(|k| {
                (
                    text(k, "/apiVersion").unwrap_or_default(),
                    text(k, "/kind").unwrap_or_default(),
                )
            }),
            constraints: MatchResources::from_json(&spec["matchConstraints"]),
            conditions: named("matchConditions"),
            variables: named("variables"),
            validations,
            fail_closed: text(spec, "/failurePolicy").as_deref() != Some("Ignore"),
            reads: Reads::of(spec),
        }
    }
}

impl Binding {
    fn from_json(binding: &Value) -> Self {
        let spec = &binding["spec"];
        let actions = spec
            .get("validationActions")
            .map(objects::string_list)
            .unwrap_or_default();
        Binding {
            name: text(binding, "/metadata/name").unwrap_or_default(),
            policy: text(spec, "/policyName").unwrap_or_default(),
            param_ref: spec.get("paramRef").map(|p| ParamRef {
                name: text(p, "/name").filter(|n| !n.is_empty()),
                namespace: text(p, "/namespace").filter(|n| !n.is_empty()),
                selector: p
                    .get("selector")
                    .and_then(|s| LabelSelector::from_object(s).ok()),
                deny_when_missing: text(p, "/parameterNotFoundAction").as_deref() == Some("Deny"),
            }),
            match_resources: spec.get("matchResources").map(MatchResources::from_json),
            deny: actions.iter().any(|a| a == "Deny"),
            warn: actions.iter().any(|a| a == "Warn"),
        }
    }
}

#[derive(Default)]
struct Loaded {
    policies: HashMap<String, Arc<Policy>>,
    bindings: Vec<Binding>,
}

/// The cluster's validating admission policies and their bindings.
#[derive(Default)]
pub(crate) struct Policies {
    loaded: RwLock<Arc<Loaded>>,
}

thread_local! {
    /// The CEL functions of Kubernetes, registered once per thread.
    static ROOT: Context<'static> = {
        let mut root = Context::default();
        root.register_all();
        root
    };
}

fn to_cel(v: &Value) -> Cel {
    kube_cel::cel::to_value(v).unwrap_or(Cel::Null)
}

fn cel_map(entries: Vec<(String, Cel)>) -> Cel {
    let map: HashMap<Key, Cel> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k)), v))
        .collect();
    Cel::Map(Map { map: Arc::new(map) })
}

/// What one policy decided for one set of params.
enum Outcome {
    Allowed,
    Failed {
        message: String,
        reason: Option<String>,
    },
}

/// The variables of one evaluation.
struct Inputs {
    object: Cel,
    old_object: Cel,
    request: Cel,
    params: Cel,
    namespace_object: Cel,
}

impl Policies {
    pub(crate) fn any(&self) -> bool {
        !self.loaded.read().unwrap().bindings.is_empty()
    }

    pub(crate) async fn reload(&self, registry: &Registry) {
        let list = |plural: &'static str| async move {
            let r = resources::find(GROUP, "v1", plural).expect("built in");
            let page = registry.list(r, None, &ListOptions::default()).await.ok()?;
            Some(
                page.items
                    .iter()
                    .filter_map(|item| objects::decode(item).ok())
                    .collect::<Vec<_>>(),
            )
        };
        let (Some(policies), Some(bindings)) = (
            list("validatingadmissionpolicies").await,
            list("validatingadmissionpolicybindings").await,
        ) else {
            return;
        };
        let loaded = Loaded {
            policies: policies
                .iter()
                .map(Policy::from_json)
                .map(|p| (p.name.clone(), Arc::new(p)))
                .collect(),
            bindings: bindings.iter().map(Binding::from_json).collect(),
        };
        *self.loaded.write().unwrap() = Arc::new(loaded);
    }

    /// Evaluates every bound policy that matches; the first refusal of a `Deny` binding
    /// refuses the request, `Warn` bindings add warnings.
    pub(crate) async fn validate(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> ApiResult<Admitted> {
        let loaded = self.loaded.read().unwrap().clone();
        let mut admitted = Admitted::default();
        if a.exempt() || loaded.bindings.is_empty() {
            return Ok(admitted);
        }
        let mut namespace = None;
        for binding in &loaded.bindings {
            let Some(policy) = loaded.policies.get(&binding.policy) else {
                continue;
            };
            if !self.applies(registry, policy, binding, a, object).await? {
                continue;
            }
            if namespace.is_none() && a.r.namespaced && policy.reads.namespace_object {
                namespace = Some(
                    namespace_object(registry, a.namespace)
                        .await?
                        .unwrap_or(Value::Null),
                );
            }
            for outcome in self
                .evaluate(registry, policy, binding, a, object, namespace.as_ref())
                .await?
            {
                let Outcome::Failed { message, reason } = outcome else {
                    continue;
                };
                if binding.deny {
                    return Err(denied(a, policy, binding, &message, reason.as_deref()));
                }
                if binding.warn {
                    admitted.warnings.push(format!(
                        "Validation failed for ValidatingAdmissionPolicy '{}' with binding '{}': {message}",
                        policy.name, binding.name
                    ));
                }
            }
        }
        Ok(admitted)
    }

    async fn applies(
        &self,
        registry: &Registry,
        policy: &Policy,
        binding: &Binding,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> ApiResult<bool> {
        let constraints = &policy.constraints;
        if !constraints.matches_request(a, object, true)
            || !namespace_matches(registry, constraints.namespace_selector.as_ref(), a, object)
                .await?
        {
            return Ok(false);
        }
        let Some(narrowed) = &binding.match_resources else {
            return Ok(true);
        };
        Ok(narrowed.matches_request(a, object, false)
            && namespace_matches(registry, narrowed.namespace_selector.as_ref(), a, object).await?)
    }

    /// The outcomes for each params object (one run without params when the policy has none).
    async fn evaluate(
        &self,
        registry: &Registry,
        policy: &Policy,
        binding: &Binding,
        a: &Attributes<'_>,
        object: Option<&Value>,
        namespace: Option<&Value>,
    ) -> ApiResult<Vec<Outcome>> {
        let params = match self.params(registry, policy, binding, a).await {
            Ok(params) => params,
            Err(message) => {
                return Ok(if policy.fail_closed {
                    vec![Outcome::Failed {
                        message,
                        reason: None,
                    }]
                } else {
                    Vec::new()
                });
            }
        };
        let base = Inputs {
            object: object.map(to_cel).unwrap_or(Cel::Null),
            old_object: a
                .old
                .filter(|_| policy.reads.old_object)
                .map(to_cel)
                .unwrap_or(Cel::Null),
            request: if policy.reads.request {
                to_cel(&a.cel_request())
            } else {
                Cel::Null
            },
            params: Cel::Null,
            namespace_object: namespace.map(to_cel).unwrap_or(Cel::Null),
        };
        Ok(params
            .into_iter()
            .map(|p| {
                let inputs = Inputs {
                    params: p.as_ref().map(to_cel).unwrap_or(Cel::Null),
                    object: base.object.clone(),
                    old_object: base.old_object.clone(),
                    request: base.request.clone(),
                    namespace_object: base.namespace_object.clone(),
                };
                run(policy, &inputs)
            })
            .collect())
    }

    /// The params objects the binding names: `[None]` for a policy without params, an error
    /// message when they are required and missing.
    async fn params(
        &self,
        registry: &Registry,
        policy: &Policy,
        binding: &Binding,
        a: &Attributes<'_>,
    ) -> Result<Vec<Option<Value>>, String> {
        let (Some((api_version, kind)), Some(param_ref)) = (&policy.param_kind, &binding.param_ref)
        else {
            return Ok(vec![None]);
        };
        let (group, _version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let r = registry
            .types()
            .into_iter()
            .find(|r| r.group == group && r.kind == kind)
            .ok_or_else(|| {
                format!(
                    "failed to find resource referenced by paramKind: '{api_version}, Kind={kind}'"
                )
            })?;
        let namespace = if r.namespaced {
            param_ref
                .namespace
                .clone()
                .or_else(|| (!a.namespace.is_empty()).then(|| a.namespace.to_string()))
        } else {
            None
        };
        let found: Vec<Value> = match (&param_ref.name, &param_ref.selector) {
            (Some(name), _) => registry
                .get(r, namespace.as_deref(), name)
                .await
                .ok()
                .and_then(|b| objects::decode(&b).ok())
                .into_iter()
                .collect(),
            (None, selector) => registry
                .list(r, namespace.as_deref(), &ListOptions::default())
                .await
                .map(|page| {
                    page.items
                        .iter()
                        .filter_map(|b| objects::decode(b).ok())
                        .filter(|o| selector.as_ref().is_none_or(|s| s.matches_object(o)))
                        .collect()
                })
                .unwrap_or_default(),
        };
        if found.is_empty() {
            return if param_ref.deny_when_missing {
                Err("no params found for policy binding with `Deny` parameterNotFoundAction".into())
            } else {
                Ok(Vec::new())
            };
        }
        Ok(found.into_iter().map(Some).collect())
    }
}

/// Runs one policy over one set of inputs: conditions, variables, then validations in order;
/// the first failing validation decides.
fn run(policy: &Policy, inputs: &Inputs) -> Outcome {
    ROOT.with(|root| {
        let mut scope = root.new_inner_scope();
        scope.add_variable_from_value("object", inputs.object.clone());
        scope.add_variable_from_value("oldObject", inputs.old_object.clone());
        scope.add_variable_from_value("request", inputs.request.clone());
        scope.add_variable_from_value("params", inputs.params.clone());
        scope.add_variable_from_value("namespaceObject", inputs.namespace_object.clone());
        let mut variables = Vec::new();
        for (name, program) in &policy.variables {
            if let Ok(program) = program {
                scope.add_variable_from_value("variables", cel_map(variables.clone()));
                if let Ok(value) = program.execute(&scope) {
                    variables.push((name.clone(), value));
                }
            }
        }
        scope.add_variable_from_value("variables", cel_map(variables));
        for (name, condition) in &policy.conditions {
            match condition.as_ref().map(|p| p.execute(&scope)) {
                Ok(Ok(Cel::Bool(true))) => {}
                Ok(Ok(Cel::Bool(false))) => return Outcome::Allowed,
                Ok(Ok(_)) | Ok(Err(_)) | Err(_) if !policy.fail_closed => return Outcome::Allowed,
                Ok(Ok(other)) => {
                    return failed(format!(
                        "match condition '{name}' did not evaluate to a bool: {other:?}"
                    ));
                }
                Ok(Err(e)) => return failed(format!("expression '{name}' resulted in error: {e}")),
                Err(e) => return failed(format!("compilation error: {e}")),
            }
        }
        for v in &policy.validations {
            let verdict = match v.program.as_ref().map(|p| p.execute(&scope)) {
                Ok(Ok(Cel::Bool(true))) => continue,
                Ok(Ok(Cel::Bool(false))) => None,
                Ok(Ok(other)) => Some(format!(
                    "expression '{}' resulted in error: expected bool, got {other:?}",
                    v.expression
                )),
                Ok(Err(e)) => Some(format!(
                    "expression '{}' resulted in error: {e}",
                    v.expression
                )),
                Err(e) => Some(format!("compilation error: {e}")),
            };
            match verdict {
                None => {
                    let message = message_of(v, &scope);
                    return Outcome::Failed {
                        message,
                        reason: v.reason.clone(),
                    };
                }
                Some(_) if !policy.fail_closed => continue,
                Some(error) => return failed(error),
            }
        }
        Outcome::Allowed
    })
}

fn failed(message: String) -> Outcome {
    Outcome::Failed {
        message,
        reason: None,
    }
}

/// The message of a failed validation: its `messageExpression` when that gives a non-empty
/// string, else its `message`, else the failed expression.
fn message_of(v: &Validation, scope: &Context) -> String {
    if let Some(Ok(program)) = &v.message_program
        && let Ok(Cel::String(text)) = program.execute(scope)
        && !text.trim().is_empty()
    {
        return text.to_string();
    }
    v.message
        .clone()
        .unwrap_or_else(|| format!("failed expression: {}", v.expression))
}

/// The error of a refusing `Deny` binding, as kube-apiserver's admission forbids: the
/// validation's reason (Invalid by default) and its code.
fn denied(
    a: &Attributes,
    policy: &Policy,
    binding: &Binding,
    message: &str,
    reason: Option<&str>,
) -> ApiError {
    let cause = format!(
        "ValidatingAdmissionPolicy '{}' with binding '{}' denied request: {message}",
        policy.name, binding.name
    );
    let (code, reason) = match reason.unwrap_or("Invalid") {
        "Unauthorized" => (401, "Unauthorized"),
        "Forbidden" => (403, "Forbidden"),
        "RequestEntityTooLarge" => (413, "RequestEntityTooLarge"),
        _ => (422, "Invalid"),
    };
    let resource = a.r.qualified_name();
    let mut error = ApiError::new(
        code,
        reason,
        format!("{resource} {:?} is forbidden: {cause}", a.name),
    );
    error.details = Some(json!({
        "name": a.name,
        "group": a.r.group,
        "kind": a.r.plural,
        "causes": [{"message": cause}],
    }));
    error
}
