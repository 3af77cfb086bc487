//! Validation of built-in kinds: object names, metadata, required fields and immutable fields,
//! with kube-apiserver's field paths and messages.

mod apis;

use crate::objects::JsonAt;
use serde_json::Value;

use crate::errors::Cause;
use crate::resources::ResourceType;
use crate::selectors::{LabelSelector, validate_label_key, validate_label_value};

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Lower-case letters, digits and dashes, starting and ending with a letter or digit, of any
/// length (the parts of a subdomain are not held to a label's 63 characters).
fn is_label_shaped(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label(s: &str) -> bool {
    s.len() <= 63 && is_label_shaped(s)
}

/// Checks an RFC 1123 subdomain; the error is kube-apiserver's message.
pub fn dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err("must be no more than 253 characters".into());
    }
    if s.split('.').all(is_label_shaped) {
        Ok(())
    } else {
        Err(SUBDOMAIN_MSG.into())
    }
}

/// Checks an RFC 1123 label.
pub fn dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if is_label(s) {
        Ok(())
    } else {
        Err(LABEL_MSG.into())
    }
}

fn dns1035_label(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err("must be no more than 63 characters".into());
    }
    if is_label(s) && s.starts_with(|c: char| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(DNS1035_MSG.into())
    }
}

fn path_segment(s: &str) -> Result<(), String> {
    if s == "." || s == ".." {
        return Err(format!("may not be '{s}'"));
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            return Err(format!("may not contain '{bad}'"));
        }
    }
    Ok(())
}

/// A CronJob's name leaves room for the `-<minutes>` suffix of its Jobs within a label.
fn cronjob_name(s: &str) -> Result<(), String> {
    dns1123_subdomain(s)?;
    if s.len() > 52 {
        return Err("must be no more than 52 characters".into());
    }
    Ok(())
}

type NameRule = fn(&str) -> Result<(), String>;

/// The name rule of each built-in kind that is not held to an RFC 1123 subdomain, as the
/// kind's validation in kube-apiserver 1.33 passes it.
const NAME_RULES: &[(&str, &str, NameRule)] = &[
    ("", "namespaces", dns1123_label),
    ("", "services", dns1035_label),
    ("apps", "statefulsets", dns1123_label),
    ("batch", "cronjobs", cronjob_name),
    ("policy", "poddisruptionbudgets", path_segment),
    ("rbac.authorization.k8s.io", "roles", path_segment),
    ("rbac.authorization.k8s.io", "rolebindings", path_segment),
    ("rbac.authorization.k8s.io", "clusterroles", path_segment),
    (
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        path_segment,
    ),
    (
        "apiregistration.k8s.io",
        "apiservices",
        apis::api_service_name,
    ),
    ("networking.k8s.io", "ipaddresses", apis::ip_address_name),
];

/// Validates an object name for a resource type.
pub fn validate_name(r: &ResourceType, name: &str) -> Result<(), String> {
    let rule = NAME_RULES
        .iter()
        .find(|(group, plural, _)| *group == r.group && *plural == r.plural)
        .map_or(dns1123_subdomain as NameRule, |(_, _, rule)| *rule);
    rule(name)
}

fn str_at<'a>(obj: &'a Value, ptr: &str) -> Option<&'a str> {
    obj.at(ptr).and_then(Value::as_str)
}

/// Validates `metadata` and the kind-specific rules of a new or updated object.
pub fn validate(r: &ResourceType, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    match meta.get("name").and_then(Value::as_str) {
        None | Some("") => causes.push(Cause::required("metadata.name")),
        Some(name) => {
            if let Err(e) = validate_name(r, name) {
                causes.push(Cause::invalid("metadata.name", &Value::from(name), e));
            }
        }
    }
    if r.namespaced {
        if str_at(obj, "/metadata/namespace").unwrap_or("").is_empty() {
            causes.push(Cause::required("metadata.namespace"));
        }
    } else if let Some(ns) = str_at(obj, "/metadata/namespace")
        && !ns.is_empty()
    {
        causes.push(Cause::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    validate_string_map(meta.get("labels"), "metadata.labels", true, &mut causes);
    validate_string_map(
        meta.get("annotations"),
        "metadata.annotations",
        false,
        &mut causes,
    );
    if let Some(annotations) = meta.get("annotations").and_then(Value::as_object) {
        let total: usize = annotations
            .iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
            .sum();
        if total > 256 * 1024 {
            causes.push(Cause {
                reason: "FieldValueTooLong",
                message: "Too long: may not be more than 262144 bytes".into(),
                field: "metadata.annotations".into(),
            });
        }
    }
    if let Some(old) = old {
        let (a, b) = (obj.at("/metadata/uid"), old.at("/metadata/uid"));
        if let Some(a) = a
            && Some(a) != b
        {
            causes.push(Cause::invalid("metadata.uid", a, "field is immutable"));
        }
    }
    match (r.group, r.kind) {
        ("", "Pod") => validate_pod(obj, old, &mut causes),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            validate_workload(r, obj, old, &mut causes)
        }
        ("batch", "Job") => {
            validate_template("spec.template", obj.at("/spec/template"), &mut causes);
            if let Some(old) = old {
                validate_job_update(obj, old, &mut causes);
            }
        }
        ("", "ConfigMap") | ("", "Secret") => {
            validate_data_keys(obj, &mut causes);
            if let Some(old) = old {
                validate_immutable_data(r, obj, old, &mut causes);
            }
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            causes.extend(crate::crd::validate(obj, old))
        }
        (group, kind) => causes.extend(apis::validate(group, kind, obj, old)),
    }
    causes
}

fn validate_string_map(map: Option<&Value>, field: &str, labels: bool, causes: &mut Vec<Cause>) {
    let Some(map) = map else { return };
    let Some(map) = map.as_object() else {
        if !map.is_null() {
            causes.push(Cause::invalid(field, map, "must be a map of strings"));
        }
        return;
    };
    for (k, v) in map {
        if let Err(e) = validate_label_key(k) {
            causes.push(Cause::invalid(field, &Value::from(k.as_str()), e));
        }
        if labels {
            match v.as_str() {
                Some(s) => {
                    if let Err(e) = validate_label_value(s) {
                        causes.push(Cause::invalid(field, v, e));
                    }
                }
                None => causes.push(Cause::invalid(field, v, "must be a string")),
            }
        }
    }
}

/// A field that may not change on update: `<field>: Invalid value: <new>: field is immutable`.
fn immutable(field: &str, obj: &Value, old: &Value, pointer: &str, causes: &mut Vec<Cause>) {
    let new_value = obj.at(pointer);
    if new_value != old.at(pointer) {
        causes.push(Cause::invalid(
            field,
            new_value.unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

/// ConfigMaps and Secrets marked `immutable` keep their content (and the mark); a Secret keeps
/// its type.
fn validate_immutable_data(r: &ResourceType, obj: &Value, old: &Value, causes: &mut Vec<Cause>) {
    if r.kind == "Secret" {
        immutable("type", obj, old, "/type", causes);
    }
    if old.at("/immutable") != Some(&Value::Bool(true)) {
        return;
    }
    const DETAIL: &str = "field is immutable when `immutable` is set";
    if obj.at("/immutable") != Some(&Value::Bool(true)) {
        causes.push(Cause::forbidden("immutable", DETAIL));
    }
    let fields: &[&str] = if r.kind == "Secret" {
        &["data"]
    } else {
        &["data", "binaryData"]
    };
    for field in fields {
        let empty = Value::Object(Default::default());
        let content = |o: &Value| {
            o.get(*field)
                .filter(|v| !v.is_null())
                .cloned()
                .unwrap_or(empty.clone())
        };
        if content(obj) != content(old) {
            causes.push(Cause::forbidden(*field, DETAIL));
        }
    }
}

/// What a Job may not change once created.
fn validate_job_update(obj: &Value, old: &Value, causes: &mut Vec<Cause>) {
    immutable("spec.selector", obj, old, "/spec/selector", causes);
    let indexed = str_at(obj, "/spec/completionMode") == Some("Indexed");
    if !indexed {
        immutable("spec.completions", obj, old, "/spec/completions", causes);
    }
    immutable(
        "spec.completionMode",
        obj,
        old,
        "/spec/completionMode",
        causes,
    );
    immutable(
        "spec.podFailurePolicy",
        obj,
        old,
        "/spec/podFailurePolicy",
        causes,
    );
    immutable(
        "spec.backoffLimitPerIndex",
        obj,
        old,
        "/spec/backoffLimitPerIndex",
        causes,
    );
    immutable("spec.managedBy", obj, old, "/spec/managedBy", causes);
    immutable(
        "spec.successPolicy",
        obj,
        old,
        "/spec/successPolicy",
        causes,
    );
    // A suspended Job that never started may still change where its pods go.
    let (mut template, mut old_template) = (
        obj.at("/spec/template").cloned().unwrap_or(Value::Null),
        old.at("/spec/template").cloned().unwrap_or(Value::Null),
    );
    let suspended = old.at("/spec/suspend") == Some(&Value::Bool(true))
        && old.at("/status/startTime").is_none();
    if suspended {
        for t in [&mut template, &mut old_template] {
            if let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("labels");
                meta.remove("annotations");
            }
            if let Some(spec) = t.get_mut("spec").and_then(Value::as_object_mut) {
                for field in ["nodeSelector", "affinity", "tolerations", "schedulingGates"] {
                    spec.remove(field);
                }
            }
        }
    }
    if template != old_template {
        causes.push(Cause::invalid(
            "spec.template",
            obj.at("/spec/template").unwrap_or(&Value::Null),
            "field is immutable",
        ));
    }
}

/// A StatefulSet's spec is fixed but for the fields its controller rolls out.
fn validate_stateful_set_update(obj: &Value, old: &Value, causes: &mut Vec<Cause>) {
    let fixed = |o: &Value| {
        let mut spec = o.get("spec").cloned().unwrap_or(Value::Null);
        if let Some(spec) = spec.as_object_mut() {
            for field in [
                "replicas",
                "ordinals",
                "template",
                "updateStrategy",
                "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds",
            ] {
                spec.remove(field);
            }
        }
        spec
    };
    if fixed(obj) != fixed(old) {
        causes.push(Cause::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

fn validate_data_keys(obj: &Value, causes: &mut Vec<Cause>) {
    for field in ["data", "binaryData", "stringData"] {
        if let Some(map) = obj.get(field).and_then(Value::as_object) {
            for k in map.keys() {
                let ok = !k.is_empty()
                    && k.len() <= 253
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                    && k != "."
                    && k != "..";
                if !ok {
                    causes.push(Cause::invalid(
                        field,
                        &Value::from(k.as_str()),
                        "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                    ));
                }
            }
        }
    }
}

fn validate_containers(path: &str, list: Option<&Value>, required: bool, causes: &mut Vec<Cause>) {
    let items = list.and_then(Value::as_array);
    match items {
        None | Some(_) if required && items.is_none_or(|a| a.is_empty()) => {
            causes.push(Cause::required(path));
        }
        _ => {}
    }
    let mut names = Vec::new();
    for (i, c) in items.into_iter().flatten().enumerate() {
        match c.get("name").and_then(Value::as_str) {
            None | Some("") => causes.push(Cause::required(format!("{path}[{i}].name"))),
            Some(n) => {
                if let Err(e) = dns1123_label(n) {
                    causes.push(Cause::invalid(
                        format!("{path}[{i}].name"),
                        &Value::from(n),
                        e,
                    ));
                }
                if names.contains(&n) {
                    causes.push(Cause::duplicate(
                        format!("{path}[{i}].name"),
                        &Value::from(n),
                    ));
                }
                names.push(n);
            }
        }
        if c.get("image")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .is_empty()
        {
            causes.push(Cause::required(format!("{path}[{i}].image")));
        }
    }
}

fn validate_pod_spec(path: &str, spec: Option<&Value>, causes: &mut Vec<Cause>) {
    let Some(spec) = spec else {
        causes.push(Cause::required(format!("{path}.containers")));
        return;
    };
    validate_containers(
        &format!("{path}.containers"),
        spec.get("containers"),
        true,
        causes,
    );
    validate_containers(
        &format!("{path}.initContainers"),
        spec.get("initContainers"),
        false,
        causes,
    );
    if let Some(policy) = spec.get("restartPolicy")
        && !matches!(policy.as_str(), Some("Always" | "OnFailure" | "Never"))
    {
        causes.push(Cause::not_supported(
            format!("{path}.restartPolicy"),
            policy,
            &["Always", "OnFailure", "Never"],
        ));
    }
    if let Some(policy) = spec.get("dnsPolicy")
        && !matches!(
            policy.as_str(),
            Some("ClusterFirst" | "ClusterFirstWithHostNet" | "Default" | "None")
        )
    {
        causes.push(Cause::not_supported(
            format!("{path}.dnsPolicy"),
            policy,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        ));
    }
}

fn validate_template(path: &str, template: Option<&Value>, causes: &mut Vec<Cause>) {
    match template {
        None => causes.push(Cause::required(path)),
        Some(t) => {
            validate_string_map(
                t.at("/metadata/labels"),
                &format!("{path}.metadata.labels"),
                true,
                causes,
            );
            validate_pod_spec(&format!("{path}.spec"), t.get("spec"), causes)
        }
    }
}

fn validate_pod(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    validate_pod_spec("spec", obj.get("spec"), causes);
    if let Some(old) = old {
        let strip = |v: &Value| -> Value {
            let mut spec = v.get("spec").cloned().unwrap_or(Value::Null);
            for list in ["containers", "initContainers"] {
                if let Some(items) = spec.get_mut(list).and_then(Value::as_array_mut) {
                    for c in items {
                        if let Some(c) = c.as_object_mut() {
                            c.remove("image");
                        }
                    }
                }
            }
            if let Some(s) = spec.as_object_mut() {
                for mutable in [
                    "activeDeadlineSeconds",
                    "tolerations",
                    "terminationGracePeriodSeconds",
                    "schedulingGates",
                ] {
                    s.remove(mutable);
                }
            }
            spec
        };
        let (new_spec, old_spec) = (strip(obj), strip(old));
        if new_spec != old_spec {
            causes.push(Cause::forbidden(
                "spec",
                "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
            ));
        }
        let (new_node, old_node) = (
            str_at(obj, "/spec/nodeName").unwrap_or(""),
            str_at(old, "/spec/nodeName").unwrap_or(""),
        );
        let _ = (new_node, old_node);
    }
}

fn validate_workload(r: &ResourceType, obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
    let selector = obj.at("/spec/selector");
    match selector {
        None => causes.push(Cause::required("spec.selector")),
        Some(sel) => match LabelSelector::from_object(sel) {
            Err(e) => causes.push(Cause::invalid("spec.selector", sel, e)),
            Ok(parsed) if parsed.is_empty() => causes.push(Cause::invalid(
                "spec.selector",
                sel,
                "empty selector is invalid for deployment",
            )),
            Ok(parsed) => {
                let labels = obj.at("/spec/template/metadata/labels");
                if !parsed.matches(labels.and_then(Value::as_object)) {
                    causes.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        labels.unwrap_or(&Value::Null),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        },
    }
    if let Some(replicas) = obj.at("/spec/replicas")
        && replicas.as_i64().is_some_and(|n| n < 0)
    {
        causes.push(Cause::invalid(
            "spec.replicas",
            replicas,
            "must be greater than or equal to 0",
        ));
    }
    validate_template("spec.template", obj.at("/spec/template"), causes);
    if let Some(old) = old {
        if r.kind == "StatefulSet" {
            validate_stateful_set_update(obj, old, causes);
        } else {
            immutable("spec.selector", obj, old, "/spec/selector", causes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_kind_rules() {
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        let ns = crate::resources::find("", "v1", "namespaces").unwrap();
        let svc = crate::resources::find("", "v1", "services").unwrap();
        assert!(validate_name(pods, "a.b-c").is_ok());
        assert!(validate_name(pods, "Abc").is_err());
        assert!(validate_name(ns, "a.b").is_err());
        assert!(validate_name(svc, "1abc").is_err());
        assert!(validate_name(pods, &"a".repeat(254)).is_err());
    }

    #[test]
    fn pods_need_containers_with_images() {
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        let causes = validate(
            pods,
            &json!({"metadata": {"name": "p", "namespace": "d"}, "spec": {"containers": [{"name": "c"}]}}),
            None,
        );
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.containers[0].image");
    }

    #[test]
    fn deployment_selector_must_match_and_is_immutable() {
        let d = crate::resources::find("apps", "v1", "deployments").unwrap();
        let obj = json!({"metadata": {"name": "d", "namespace": "x"}, "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let causes = validate(d, &obj, None);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        let mut fixed = obj.clone();
        fixed["spec"]["template"]["metadata"]["labels"]["app"] = json!("a");
        assert!(validate(d, &fixed, None).is_empty());
        let mut changed = fixed.clone();
        changed["spec"]["selector"]["matchLabels"]["app"] = json!("z");
        changed["spec"]["template"]["metadata"]["labels"]["app"] = json!("z");
        let causes = validate(d, &changed, Some(&fixed));
        assert!(
            causes
                .iter()
                .any(|c| c.field == "spec.selector" && c.message.contains("immutable"))
        );
    }

    fn rendered(causes: &[Cause]) -> Vec<String> {
        causes.iter().map(Cause::render).collect()
    }

    #[test]
    fn immutable_config_maps_and_secrets_keep_their_content() {
        let cm = crate::resources::find("", "v1", "configmaps").unwrap();
        let old = json!({"metadata": {"name": "c", "namespace": "x"}, "immutable": true, "data": {"a": "1"}});
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({"l": "v"});
        assert!(validate(cm, &labelled, Some(&old)).is_empty());
        let mut changed = old.clone();
        changed["data"]["a"] = json!("2");
        changed["immutable"] = json!(false);
        assert_eq!(
            rendered(&validate(cm, &changed, Some(&old))),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set"
            ]
        );
        let secret = crate::resources::find("", "v1", "secrets").unwrap();
        let old = json!({"metadata": {"name": "s", "namespace": "x"}, "type": "Opaque"});
        let mut retyped = old.clone();
        retyped["type"] = json!("kubernetes.io/tls");
        assert_eq!(
            rendered(&validate(secret, &retyped, Some(&old))),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }

    #[test]
    fn jobs_keep_their_template_unless_suspended() {
        let jobs = crate::resources::find("batch", "v1", "jobs").unwrap();
        let old = json!({"metadata": {"name": "j", "namespace": "x"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
        let mut changed = old.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        let causes = validate(jobs, &changed, Some(&old));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template");
        assert!(causes[0].message.ends_with("field is immutable"));
        let mut placed = old.clone();
        placed["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert_eq!(validate(jobs, &placed, Some(&old)).len(), 1);
        let mut suspended = old.clone();
        suspended["spec"]["suspend"] = json!(true);
        let mut placed = suspended.clone();
        placed["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(validate(jobs, &placed, Some(&suspended)).is_empty());
    }

    #[test]
    fn stateful_sets_change_only_what_rolls_out() {
        let sets = crate::resources::find("apps", "v1", "statefulsets").unwrap();
        let old = json!({"metadata": {"name": "s", "namespace": "x"}, "spec": {
            "replicas": 1, "serviceName": "s",
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {
                "containers": [{"name": "c", "image": "i"}]}}}});
        let mut scaled = old.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("j");
        assert!(validate(sets, &scaled, Some(&old)).is_empty());
        let mut renamed = old.clone();
        renamed["spec"]["serviceName"] = json!("t");
        assert_eq!(
            rendered(&validate(sets, &renamed, Some(&old))),
            [
                "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
            ]
        );
    }
}
