//! Stages: what the simulator does to an object, when, and under which conditions.
//!
//! A [`types::Stage`] as written in YAML or served by the API is checked and compiled once into
//! a [`CompiledStage`]: selector expressions parsed ([`jq`], [`cel`]), templates parsed ([`template`]),
//! the older `next` block turned into the ordered list of [`Step`]s. A Stage that does not compile
//! is rejected with a [`StageError`] naming the Stage and the field; the others keep playing.

pub mod cel;
pub mod defaults;
mod duration;
pub use duration::parse_go_duration;
pub mod jq;
pub mod template;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;

use self::jq::Query;
use self::template::Template;
use self::types::{ExpressionFrom, ResourceRef, Stage};

/// A Stage that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stage {stage:?}: {field}: {message}")]
pub struct StageError {
    pub stage: String,
    pub field: String,
    pub message: String,
}

/// How a selector expression compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

/// One compiled `matchExpressions` entry.
#[derive(Debug, Clone)]
pub enum Requirement {
    Jq(JqRequirement),
    Cel(Arc<cel::Expression>),
}

impl Requirement {
    /// Whether `object` satisfies the requirement.
    pub fn matches(&self, object: &Value) -> bool {
        match self {
            Requirement::Jq(r) => r.matches(object),
            Requirement::Cel(e) => e.is_true(object),
        }
    }
}

/// A `jq` (or older flat) `matchExpressions` entry.
#[derive(Debug, Clone)]
pub struct JqRequirement {
    pub key: Query,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl JqRequirement {
    fn matches(&self, object: &Value) -> bool {
        let results = self.key.eval(object);
        match self.operator {
            Operator::Exists => results.iter().any(|v| !v.is_null()),
            Operator::DoesNotExist => !results.iter().any(|v| !v.is_null()),
            Operator::In => results
                .iter()
                .any(|v| jq::comparable(v).is_some_and(|s| self.values.contains(&s))),
            Operator::NotIn => !results
                .iter()
                .any(|v| jq::comparable(v).is_some_and(|s| self.values.contains(&s))),
        }
    }
}

/// A compiled `selector`.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub match_annotations: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

fn map_matches(want: &BTreeMap<String, String>, have: Option<&Value>) -> bool {
    want.iter().all(|(k, v)| {
        have.and_then(|m| m.get(k))
            .and_then(Value::as_str)
            .is_some_and(|x| x == v)
    })
}

impl Selector {
    /// Adds to `projection` what matching reads; false when it may read anything.
    pub fn reads(&self, projection: &mut client::Projection) -> bool {
        if !self.match_labels.is_empty() {
            projection.keep(["metadata", "labels"]);
        }
        if !self.match_annotations.is_empty() {
            projection.keep(["metadata", "annotations"]);
        }
        self.match_expressions.iter().all(|r| match r {
            Requirement::Jq(r) => keep_under(projection, &r.key),
            Requirement::Cel(_) => false,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let meta = object.get("metadata");
        map_matches(&self.match_labels, meta.and_then(|m| m.get("labels")))
            && map_matches(
                &self.match_annotations,
                meta.and_then(|m| m.get("annotations")),
            )
            && self.match_expressions.iter().all(|r| r.matches(object))
    }
}

/// A value computed from the object by a jq or a CEL expression.
#[derive(Debug, Clone)]
pub enum ValueFrom {
    Jq(Query),
    Cel(Arc<cel::Expression>),
}

/// Keeps in `projection` the path a jq expression reads under; false when it may read anything.
fn keep_under(projection: &mut client::Projection, query: &Query) -> bool {
    match query.reads_under() {
        Some(path) => {
            projection.keep(path);
            true
        }
        None => false,
    }
}

impl ValueFrom {
    /// The first value the expression yields for `object`.
    pub fn first(&self, object: &Value) -> Option<Value> {
        match self {
            ValueFrom::Jq(q) => q.first(object),
            ValueFrom::Cel(e) => e.value(object),
        }
    }
}

/// A duration taken from the object, with a constant fallback.
#[derive(Debug, Clone, Default)]
pub struct DurationFrom {
    pub constant: Option<i64>,
    pub from: Option<ValueFrom>,
}

impl DurationFrom {
    /// The duration in milliseconds, if any is set. RFC 3339 values count from now; other
    /// strings are Go durations (`1m30s`); numbers are milliseconds.
    pub fn millis(&self, object: &Value) -> Option<i64> {
        if let Some(q) = &self.from
            && let Some(v) = q.first(object)
        {
            match &v {
                Value::String(s) => {
                    if let Ok(t) = s.parse::<jiff::Timestamp>() {
                        let d = t.as_millisecond() - jiff::Timestamp::now().as_millisecond();
                        return Some(d.max(0));
                    }
                    if let Some(d) = parse_go_duration(s) {
                        return Some(d.as_millis() as i64);
                    }
                }
                Value::Number(n) => {
                    if let Some(i) = n.as_i64() {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        self.constant
    }
}

/// A compiled `delay`.
#[derive(Debug, Clone, Default)]
pub struct Delay {
    pub duration: DurationFrom,
    pub jitter: DurationFrom,
}

impl Delay {
    /// How long to wait before playing the stage on `object`.
    pub fn pick(&self, object: &Value) -> Duration {
        let duration = self.duration.millis(object).unwrap_or(0).max(0);
        let ms = match self.jitter.millis(object) {
            Some(j) if j > duration => duration + rand::rng().random_range(0..j - duration),
            Some(j) => j.max(0),
            None => duration,
        };
        Duration::from_millis(ms as u64)
    }
}

/// How a patch is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
}

/// One action of a stage, in order.
#[derive(Debug)]
pub enum Step {
    Event {
        type_: String,
        reason: String,
        message: String,
    },
    Finalizers {
        add: Vec<String>,
        remove: Vec<String>,
        empty: bool,
    },
    Delete,
    Patch {
        subresource: Option<String>,
        root: Option<String>,
        template: Template,
        /// `None`: strategic merge for nodes and pods, JSON merge for other kinds.
        kind: Option<PatchKind>,
        /// An `apply` step: a rendered object naming its own `kind` and `metadata.name` is
        /// written to that object (created when missing), which need not be the one played.
        apply: bool,
        /// The user the write is made as (`impersonation.username`, `statusPatchAs`).
        impersonate: Option<String>,
    },
}

/// The impersonated user of a write, when one is named.
fn username(impersonation: &Option<types::Impersonation>) -> Option<String> {
    impersonation
        .as_ref()
        .map(|i| i.username.clone())
        .filter(|u| !u.is_empty())
}

/// A stage ready to play.
#[derive(Debug)]
pub struct CompiledStage {
    pub name: String,
    pub resource: ResourceRef,
    pub selector: Selector,
    pub weight: i64,
    pub weight_from: Option<ValueFrom>,
    pub delay: Delay,
    pub steps: Vec<Step>,
    pub immediate_next_stage: bool,
}

impl CompiledStage {
    /// Adds to `projection` what choosing among Stages reads of an object (the selector and
    /// the weight); false when that may be anything.
    pub fn reads_to_choose(&self, projection: &mut client::Projection) -> bool {
        self.selector.reads(projection)
            && match &self.weight_from {
                None => true,
                Some(ValueFrom::Jq(q)) => keep_under(projection, q),
                Some(ValueFrom::Cel(_)) => false,
            }
    }

    /// The weight for `object`.
    pub fn weight(&self, object: &Value) -> i64 {
        self.weight_from
            .as_ref()
            .and_then(|q| q.first(object))
            .and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            })
            .unwrap_or(self.weight)
            .max(0)
    }
}

/// Picks the stage to play among those matching `object`: one match is used; several are
/// drawn proportionally to their weight (uniformly when all weigh zero).
pub fn choose<'a>(
    stages: &'a [Arc<CompiledStage>],
    object: &Value,
) -> Option<&'a Arc<CompiledStage>> {
    let matching: Vec<&Arc<CompiledStage>> = stages
        .iter()
        .filter(|s| s.selector.matches(object))
        .collect();
    match matching.len() {
        0 => None,
        1 => Some(matching[0]),
        n => {
            let weights: Vec<i64> = matching.iter().map(|s| s.weight(object)).collect();
            let total: i64 = weights.iter().sum();
            let mut rng = rand::rng();
            if total <= 0 {
                return Some(matching[rng.random_range(0..n)]);
            }
            let mut pick = rng.random_range(0..total);
            for (s, w) in matching.iter().zip(weights) {
                if pick < w {
                    return Some(s);
                }
                pick -= w;
            }
            matching.last().copied()
        }
    }
}

fn query_from(
    stage: &str,
    field: &str,
    e: &Option<ExpressionFrom>,
) -> Result<Option<ValueFrom>, StageError> {
    let Some(e) = e else { return Ok(None) };
    let err = |field: String, message: String| StageError {
        stage: stage.into(),
        field,
        message,
    };
    if let Some(c) = &e.cel {
        return cel::Expression::parse(&c.expression)
            .map(|e| Some(ValueFrom::Cel(Arc::new(e))))
            .map_err(|m| err(format!("{field}.cel.expression"), m));
    }
    let src =
        e.jq.as_ref()
            .map(|j| j.expression.clone())
            .or_else(|| e.expression_from.clone());
    match src {
        None => Ok(None),
        Some(src) => Query::parse(&src)
            .map(|q| Some(ValueFrom::Jq(q)))
            .map_err(|m| err(field.to_string(), m)),
    }
}

fn parse_patch_kind(
    stage: &str,
    field: &str,
    t: &Option<String>,
) -> Result<Option<PatchKind>, StageError> {
    match t.as_deref() {
        None | Some("") => Ok(None),
        Some("json") => Ok(Some(PatchKind::Json)),
        Some("merge") => Ok(Some(PatchKind::Merge)),
        Some("strategic") => Ok(Some(PatchKind::Strategic)),
        Some(other) => Err(StageError {
            stage: stage.into(),
            field: field.into(),
            message: format!("unknown patch type {other:?} (json, merge or strategic)"),
        }),
    }
}

fn compile_template(stage: &str, field: &str, src: &str) -> Result<Template, StageError> {
    Template::parse(src).map_err(|message| StageError {
        stage: stage.into(),
        field: field.into(),
        message: format!("invalid template: {message}"),
    })
}

fn push_common(
    name: &str,
    field: &str,
    event: &Option<types::EventSpec>,
    finalizers: &Option<types::Finalizers>,
    steps: &mut Vec<Step>,
) -> Result<(), StageError> {
    if let Some(e) = event {
        if e.reason.is_empty() {
            return Err(StageError {
                stage: name.into(),
                field: format!("{field}.event.reason"),
                message: "an event needs a reason".into(),
            });
        }
        steps.push(Step::Event {
            type_: if e.type_.is_empty() {
                "Normal".into()
            } else {
                e.type_.clone()
            },
            reason: e.reason.clone(),
            message: e.message.clone(),
        });
    }
    if let Some(f) = finalizers {
        steps.push(Step::Finalizers {
            add: f.add.iter().map(|i| i.value.clone()).collect(),
            remove: f.remove.iter().map(|i| i.value.clone()).collect(),
            empty: f.empty,
        });
    }
    Ok(())
}

/// Checks and compiles a Stage.
pub fn compile(stage: &Stage) -> Result<CompiledStage, StageError> {
    let name = if stage.metadata.name.is_empty() {
        "<unnamed>".to_string()
    } else {
        stage.metadata.name.clone()
    };
    let err = |field: &str, message: String| StageError {
        stage: name.clone(),
        field: field.into(),
        message,
    };
    let spec = &stage.spec;
    if spec.resource_ref.kind.is_empty() {
        return Err(err("spec.resourceRef.kind", "is required".into()));
    }
    let Some(sel) = &spec.selector else {
        return Err(err(
            "spec.selector",
            "is required (a stage without a selector never plays)".into(),
        ));
    };
    let mut selector = Selector {
        match_labels: sel.match_labels.clone(),
        match_annotations: sel.match_annotations.clone(),
        match_expressions: Vec::new(),
    };
    for (i, e) in sel.match_expressions.iter().enumerate() {
        let field = format!("spec.selector.matchExpressions[{i}]");
        if let Some(c) = &e.cel {
            let expression = cel::Expression::parse(&c.expression)
                .map_err(|m| err(&format!("{field}.cel.expression"), m))?;
            selector
                .match_expressions
                .push(Requirement::Cel(Arc::new(expression)));
            continue;
        }
        let (key, op, values) = match &e.jq {
            Some(j) => (j.key.clone(), j.operator.clone(), j.values.clone()),
            None => (
                e.key.clone().unwrap_or_default(),
                e.operator.clone().unwrap_or_default(),
                e.values.clone(),
            ),
        };
        let key = Query::parse(&key).map_err(|m| err(&format!("{field}.key"), m))?;
        let operator = match op.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            other => {
                return Err(err(
                    &format!("{field}.operator"),
                    format!("unknown operator {other:?} (In, NotIn, Exists, DoesNotExist)"),
                ));
            }
        };
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => {
                return Err(err(
                    &format!("{field}.values"),
                    format!("{op} needs at least one value"),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                return Err(err(
                    &format!("{field}.values"),
                    format!("{op} takes no values"),
                ));
            }
            _ => {}
        }
        selector
            .match_expressions
            .push(Requirement::Jq(JqRequirement {
                key,
                operator,
                values,
            }));
    }
    if spec.weight < 0 {
        return Err(err("spec.weight", "must not be negative".into()));
    }
    let weight_from = query_from(&name, "spec.weightFrom", &spec.weight_from)?;
    let mut delay = Delay::default();
    if let Some(d) = &spec.delay {
        for (field, v) in [
            ("spec.delay.durationMilliseconds", d.duration_milliseconds),
            (
                "spec.delay.jitterDurationMilliseconds",
                d.jitter_duration_milliseconds,
            ),
        ] {
            if v.is_some_and(|v| v < 0) {
                return Err(err(field, "must not be negative".into()));
            }
        }
        delay.duration = DurationFrom {
            constant: d.duration_milliseconds,
            from: query_from(&name, "spec.delay.durationFrom", &d.duration_from)?,
        };
        delay.jitter = DurationFrom {
            constant: d.jitter_duration_milliseconds,
            from: query_from(
                &name,
                "spec.delay.jitterDurationFrom",
                &d.jitter_duration_from,
            )?,
        };
    }
    let mut steps = Vec::new();
    if !spec.steps.is_empty() {
        for (i, s) in spec.steps.iter().enumerate() {
            let field = format!("spec.steps[{i}]");
            push_common(&name, &field, &s.event, &s.finalizers, &mut steps)?;
            for (what, p) in [("patch", &s.patch), ("apply", &s.apply)] {
                if let Some(p) = p {
                    let kind = if what == "apply" {
                        match p.type_.as_deref() {
                            None | Some("") | Some("apply") => Some(PatchKind::Merge),
                            _ => {
                                parse_patch_kind(&name, &format!("{field}.{what}.type"), &p.type_)?
                            }
                        }
                    } else {
                        parse_patch_kind(&name, &format!("{field}.{what}.type"), &p.type_)?
                    };
                    steps.push(Step::Patch {
                        subresource: p.subresource.clone().filter(|s| !s.is_empty()),
                        root: p.root.clone().filter(|s| !s.is_empty()),
                        template: compile_template(
                            &name,
                            &format!("{field}.{what}.template"),
                            &p.template,
                        )?,
                        kind,
                        apply: what == "apply",
                        impersonate: username(&p.impersonation),
                    });
                }
            }
            if s.delete {
                steps.push(Step::Delete);
            }
        }
    } else if let Some(next) = &spec.next {
        push_common(
            &name,
            "spec.next",
            &next.event,
            &next.finalizers,
            &mut steps,
        )?;
        for (i, p) in next.patches.iter().enumerate() {
            let field = format!("spec.next.patches[{i}]");
            steps.push(Step::Patch {
                subresource: p.subresource.clone().filter(|s| !s.is_empty()),
                root: p.root.clone().filter(|s| !s.is_empty()),
                template: compile_template(&name, &format!("{field}.template"), &p.template)?,
                kind: parse_patch_kind(&name, &format!("{field}.type"), &p.type_)?,
                apply: false,
                impersonate: username(&p.impersonation),
            });
        }
        if let Some(t) = &next.status_template {
            steps.push(Step::Patch {
                subresource: Some(
                    next.status_subresource
                        .clone()
                        .filter(|s| !s.is_empty())
                        .unwrap_or_else(|| "status".into()),
                ),
                root: Some("status".into()),
                template: compile_template(&name, "spec.next.statusTemplate", t)?,
                kind: None,
                apply: false,
                impersonate: username(&next.status_patch_as),
            });
        }
        if next.delete {
            steps.push(Step::Delete);
        }
    }
    Ok(CompiledStage {
        name,
        resource: spec.resource_ref.clone(),
        selector,
        weight: spec.weight,
        weight_from,
        delay,
        steps,
        immediate_next_stage: spec.immediate_next_stage,
    })
}

/// Reads Stages (and skips other kinds) from a multi-document YAML text.
pub fn stages_from_yaml(text: &str) -> Result<Vec<Stage>, String> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.get("kind").and_then(Value::as_str) == Some("Stage") {
            out.push(Stage::from_value(doc)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stage(yaml: &str) -> Result<CompiledStage, StageError> {
        compile(&stages_from_yaml(yaml).unwrap()[0])
    }

    #[test]
    fn selector_operators() {
        let s = stage(
            r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: s}
spec:
  resourceRef: {apiGroup: v1, kind: Pod}
  selector:
    matchLabels: {app: a}
    matchAnnotations: {x: "y"}
    matchExpressions:
    - key: .metadata.deletionTimestamp
      operator: DoesNotExist
    - jq: {key: .status.phase, operator: In, values: [Pending]}
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: "phase: Running"
"#,
        )
        .unwrap();
        let mut pod = json!({"metadata": {"labels": {"app": "a"}, "annotations": {"x": "y"}}, "status": {"phase": "Pending"}});
        assert!(s.selector.matches(&pod));
        pod["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        assert!(!s.selector.matches(&pod));
        pod["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        assert!(s.selector.matches(&pod));
        pod["metadata"]["annotations"]["x"] = json!("z");
        assert!(!s.selector.matches(&pod));
        assert!(
            matches!(&s.steps[0], Step::Patch { root: Some(r), subresource: Some(sub), .. } if r == "status" && sub == "status")
        );
    }

    #[test]
    fn errors_name_stage_and_field() {
        let base = |sel: &str| {
            format!(
                "kind: Stage\nmetadata: {{name: bad}}\nspec:\n  resourceRef: {{kind: Pod}}\n  selector:\n{sel}\n  next: {{statusTemplate: 'a: b'}}\n"
            )
        };
        let e = stage(&base(
            "    matchExpressions:\n    - {key: .a, operator: Foo}",
        ))
        .unwrap_err();
        assert_eq!(e.stage, "bad");
        assert_eq!(e.field, "spec.selector.matchExpressions[0].operator");
        let e = stage(&base(
            "    matchExpressions:\n    - {key: '.a | nosuchfn(.b)', operator: Exists}",
        ))
        .unwrap_err();
        assert_eq!(e.field, "spec.selector.matchExpressions[0].key");
        let e = stage(&base(
            "    matchExpressions:\n    - {key: .a, operator: In}",
        ))
        .unwrap_err();
        assert_eq!(e.field, "spec.selector.matchExpressions[0].values");
        let e = stage("kind: Stage\nmetadata: {name: t}\nspec:\n  resourceRef: {kind: Pod}\n  selector: {}\n  next: {statusTemplate: '{{ .a '}\n").unwrap_err();
        assert_eq!(e.field, "spec.next.statusTemplate");
        assert!(e.to_string().contains("stage \"t\""));
        let e = stage("kind: Stage\nmetadata: {name: d}\nspec:\n  resourceRef: {kind: Pod}\n  selector: {}\n  delay: {durationFrom: {expressionFrom: '.a +'}}\n").unwrap_err();
        assert_eq!(e.field, "spec.delay.durationFrom");
        let e = stage("kind: Stage\nmetadata: {name: nosel}\nspec:\n  resourceRef: {kind: Pod}\n")
            .unwrap_err();
        assert_eq!(e.field, "spec.selector");
    }

    #[test]
    fn delay_rules() {
        let d = Delay {
            duration: DurationFrom {
                constant: Some(1000),
                from: None,
            },
            jitter: DurationFrom {
                constant: Some(500),
                from: None,
            },
        };
        // Jitter not above the duration: the delay is the jitter.
        assert_eq!(d.pick(&json!({})), Duration::from_millis(500));
        let d = Delay {
            duration: DurationFrom {
                constant: Some(1000),
                from: None,
            },
            jitter: DurationFrom {
                constant: Some(2000),
                from: None,
            },
        };
        for _ in 0..50 {
            let p = d.pick(&json!({}));
            assert!(p >= Duration::from_millis(1000) && p < Duration::from_millis(2000));
        }
        let d = Delay {
            duration: DurationFrom {
                constant: Some(7),
                from: Some(ValueFrom::Jq(
                    Query::parse(".metadata.annotations.delay").unwrap(),
                )),
            },
            jitter: DurationFrom::default(),
        };
        assert_eq!(
            d.pick(&json!({"metadata": {"annotations": {"delay": "1.5s"}}})),
            Duration::from_millis(1500)
        );
        assert_eq!(d.pick(&json!({})), Duration::from_millis(7));
        assert_eq!(parse_go_duration("2h45m"), Some(Duration::from_secs(9900)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("abc"), None);
    }

    #[test]
    fn weighted_choice() {
        let mk = |name: &str, w: i64| {
            Arc::new(CompiledStage {
                name: name.into(),
                resource: ResourceRef::default(),
                selector: Selector::default(),
                weight: w,
                weight_from: None,
                delay: Delay::default(),
                steps: Vec::new(),
                immediate_next_stage: false,
            })
        };
        let stages = vec![mk("a", 0), mk("b", 10)];
        for _ in 0..20 {
            assert_eq!(choose(&stages, &json!({})).unwrap().name, "b");
        }
        assert!(choose(&[], &json!({})).is_none());
    }
}
