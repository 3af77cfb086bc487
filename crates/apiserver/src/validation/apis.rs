//! Validation of the networking, admission registration, API registration, flow control and
//! CSI kinds, with kube-apiserver's field paths and messages.

use std::net::IpAddr;

use serde_json::Value;

use super::{dns1035_label, dns1123_subdomain, immutable, str_at};
use crate::errors::Cause;
use crate::objects::JsonAt;

/// A kind's validator: group, kind, function of the object and the object it replaces.
type Validator = (
    &'static str,
    &'static str,
    fn(&Value, Option<&Value>) -> Vec<Cause>,
);

const VALIDATORS: &[Validator] = &[
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        mutating_webhooks,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        validating_webhooks,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        admission_policy,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        admission_policy_binding,
    ),
    ("apiregistration.k8s.io", "APIService", api_service),
    ("networking.k8s.io", "Ingress", ingress),
    ("networking.k8s.io", "IngressClass", ingress_class),
    ("networking.k8s.io", "NetworkPolicy", network_policy),
    ("networking.k8s.io", "ServiceCIDR", service_cidr),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema", flow_schema),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        priority_level,
    ),
    ("storage.k8s.io", "VolumeAttachment", volume_attachment),
];

/// The causes an object of a kind validated here is refused for.
pub(super) fn validate(group: &str, kind: &str, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    VALIDATORS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(_, _, validator)| validator(obj, old))
        .unwrap_or_default()
}

/// An APIService is named `<version>.<group>` (`v1.` for the core group).
pub(super) fn api_service_name(name: &str) -> Result<(), String> {
    super::path_segment(name)?;
    if name.contains('.') {
        Ok(())
    } else {
        Err("must be in the form: version.group".into())
    }
}

/// An IPAddress is named by the address it holds, in canonical form.
pub(super) fn ip_address_name(name: &str) -> Result<(), String> {
    match name.parse::<IpAddr>() {
        Ok(ip) if ip.to_string() == name => Ok(()),
        Ok(ip) => Err(format!("must be in canonical form (\"{ip}\")")),
        Err(_) => Err("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".into()),
    }
}

/// Go's rendering of a string slice in messages: `[]string{"a", "b"}`.
fn go_strings(values: &[&str]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn invalid_text(field: String, shown: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {shown}: {detail}"),
        field,
    }
}

fn required_with(field: impl Into<String>, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired",
        message: format!("Required value: {detail}"),
        field: field.into(),
    }
}

fn items<'a>(obj: &'a Value, pointer: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    obj.at(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn strings<'a>(obj: &'a Value, pointer: &str) -> Vec<&'a str> {
    items(obj, pointer)
        .filter_map(|(_, v)| v.as_str())
        .collect()
}

/// `value` must be one of `allowed` when set.
fn one_of(obj: &Value, pointer: &str, field: String, allowed: &[&str], causes: &mut Vec<Cause>) {
    if let Some(v) = obj.at(pointer).filter(|v| !v.is_null())
        && !v.as_str().is_some_and(|s| allowed.contains(&s))
    {
        causes.push(Cause::not_supported(field, v, allowed));
    }
}

fn mutating_webhooks(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = webhooks(obj);
    for (i, hook) in items(obj, "/webhooks") {
        let field = format!("webhooks[{i}].reinvocationPolicy");
        one_of(
            hook,
            "/reinvocationPolicy",
            field,
            &["IfNeeded", "Never"],
            &mut causes,
        );
    }
    causes
}

fn validating_webhooks(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    webhooks(obj)
}

fn webhooks(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut seen = Vec::new();
    for (i, hook) in items(obj, "/webhooks") {
        let path = format!("webhooks[{i}]");
        let name = str_at(hook, "/name").unwrap_or("");
        if seen.contains(&name) {
            causes.push(Cause::duplicate(format!("{path}.name"), &Value::from(name)));
        }
        seen.push(name);
        webhook(&path, hook, &mut causes);
    }
    causes
}

fn webhook(path: &str, hook: &Value, causes: &mut Vec<Cause>) {
    let name = str_at(hook, "/name").unwrap_or("");
    if name.is_empty() {
        causes.push(Cause::required(format!("{path}.name")));
    } else if let Err(e) = dns1123_subdomain(name) {
        causes.push(Cause::invalid(
            format!("{path}.name"),
            &Value::from(name),
            e,
        ));
    } else if name.split('.').count() < 3 {
        causes.push(Cause::invalid(
            format!("{path}.name"),
            &Value::from(name),
            "should be a domain with at least three segments separated by dots",
        ));
    }
    one_of(
        hook,
        "/failurePolicy",
        format!("{path}.failurePolicy"),
        &["Fail", "Ignore"],
        causes,
    );
    one_of(
        hook,
        "/matchPolicy",
        format!("{path}.matchPolicy"),
        &["Equivalent", "Exact"],
        causes,
    );
    match hook.at("/sideEffects").filter(|v| !v.is_null()) {
        None => causes.push(required_with(
            format!("{path}.sideEffects"),
            "must specify one of None, NoneOnDryRun",
        )),
        Some(_) => one_of(
            hook,
            "/sideEffects",
            format!("{path}.sideEffects"),
            &["None", "NoneOnDryRun"],
            causes,
        ),
    }
    if let Some(t) = hook.at("/timeoutSeconds").and_then(Value::as_i64)
        && !(1..=30).contains(&t)
    {
        causes.push(Cause::invalid(
            format!("{path}.timeoutSeconds"),
            &Value::from(t),
            "the timeout value must be between 1 and 30 seconds",
        ));
    }
    review_versions(path, hook, causes);
    client_config(
        &format!("{path}.clientConfig"),
        hook.at("/clientConfig"),
        causes,
    );
}

fn review_versions(path: &str, hook: &Value, causes: &mut Vec<Cause>) {
    let field = format!("{path}.admissionReviewVersions");
    let versions = strings(hook, "/admissionReviewVersions");
    if versions.is_empty() {
        causes.push(required_with(field, "must specify one of v1, v1beta1"));
        return;
    }
    for (i, v) in versions.iter().enumerate() {
        if versions[..i].contains(v) {
            causes.push(Cause::duplicate(format!("{field}[{i}]"), &Value::from(*v)));
        }
    }
    if !versions.iter().any(|v| ["v1", "v1beta1"].contains(v)) {
        causes.push(invalid_text(
            field,
            &go_strings(&versions),
            "must include at least one of v1, v1beta1",
        ));
    }
}

fn client_config(path: &str, config: Option<&Value>, causes: &mut Vec<Cause>) {
    let config = config.unwrap_or(&Value::Null);
    let url = str_at(config, "/url");
    let service = config.at("/service").filter(|s| s.is_object());
    match (url, service) {
        (Some(_), Some(_)) | (None, None) => causes.push(required_with(
            path,
            "exactly one of url or service is required",
        )),
        (Some(url), None) => webhook_url(&format!("{path}.url"), url, causes),
        (None, Some(service)) => service_reference(&format!("{path}.service"), service, causes),
    }
}

fn webhook_url(field: &str, url: &str, causes: &mut Vec<Cause>) {
    const FORM: &str = "; desired format: https://host[/path]";
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    if scheme != "https" {
        causes.push(Cause::invalid(
            field,
            &Value::from(scheme),
            format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        causes.push(Cause::invalid(
            field,
            &Value::from(""),
            format!("host must be specified{FORM}"),
        ));
    }
    if rest.contains('#') {
        causes.push(Cause::invalid(
            field,
            &Value::from(url),
            "fragments are not permitted in the URL",
        ));
    }
    if rest.contains('?') {
        causes.push(Cause::invalid(
            field,
            &Value::from(url),
            "query parameters are not permitted in the URL",
        ));
    }
}

fn service_reference(path: &str, service: &Value, causes: &mut Vec<Cause>) {
    for key in ["name", "namespace"] {
        if str_at(service, &format!("/{key}")).unwrap_or("").is_empty() {
            causes.push(required_with(
                format!("{path}.{key}"),
                &format!("service {key} is required"),
            ));
        }
    }
    if let Some(p) = str_at(service, "/path")
        && !p.starts_with('/')
    {
        causes.push(Cause::invalid(
            format!("{path}.path"),
            &Value::from(p),
            "must start with a '/'",
        ));
    }
    if let Some(port) = service.at("/port").and_then(Value::as_i64)
        && !(1..=65535).contains(&port)
    {
        causes.push(Cause::invalid(
            format!("{path}.port"),
            &Value::from(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
}

fn admission_policy(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    one_of(
        obj,
        "/spec/failurePolicy",
        "spec.failurePolicy".into(),
        &["Fail", "Ignore"],
        &mut causes,
    );
    if items(obj, "/spec/validations").count() == 0
        && items(obj, "/spec/auditAnnotations").count() == 0
    {
        causes.push(required_with(
            "spec.validations",
            "validations or auditAnnotations must contain at least one item",
        ));
    }
    for (i, v) in items(obj, "/spec/validations") {
        if str_at(v, "/expression").unwrap_or("").trim().is_empty() {
            causes.push(Cause::required(format!("spec.validations[{i}].expression")));
        }
    }
    causes
}

fn admission_policy_binding(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if str_at(obj, "/spec/policyName").unwrap_or("").is_empty() {
        causes.push(Cause::required("spec.policyName"));
    }
    let actions = strings(obj, "/spec/validationActions");
    if actions.is_empty() {
        causes.push(required_with(
            "spec.validationActions",
            "at least one validation action is required",
        ));
    }
    for (i, action) in actions.iter().enumerate() {
        if !["Deny", "Warn", "Audit"].contains(action) {
            causes.push(Cause::not_supported(
                format!("spec.validationActions[{i}]"),
                &Value::from(*action),
                &["Audit", "Deny", "Warn"],
            ));
        }
    }
    if let Some(param) = obj.at("/spec/paramRef").filter(|p| p.is_object()) {
        param_ref(param, &mut causes);
    }
    causes
}

fn param_ref(param: &Value, causes: &mut Vec<Cause>) {
    let named = !str_at(param, "/name").unwrap_or("").is_empty();
    let selected = param.at("/selector").is_some_and(Value::is_object);
    if named && selected {
        causes.push(Cause::forbidden(
            "spec.paramRef.name",
            "name and selector are mutually exclusive",
        ));
    } else if !named && !selected {
        causes.push(required_with(
            "spec.paramRef",
            "one of name or selector must be specified",
        ));
    }
    match param
        .at("/parameterNotFoundAction")
        .filter(|v| !v.is_null())
    {
        None => causes.push(Cause::required("spec.paramRef.parameterNotFoundAction")),
        Some(_) => one_of(
            param,
            "/parameterNotFoundAction",
            "spec.paramRef.parameterNotFoundAction".into(),
            &["Allow", "Deny"],
            causes,
        ),
    }
}

fn api_service(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = str_at(obj, "/spec/group").unwrap_or("");
    let version = str_at(obj, "/spec/version").unwrap_or("");
    let name = str_at(obj, "/metadata/name").unwrap_or("");
    let wanted = format!("{version}.{group}");
    if name != wanted {
        causes.push(Cause::invalid(
            "metadata.name",
            &Value::from(name),
            format!("must be `spec.version+\".\"+spec.group`: {wanted:?}"),
        ));
    }
    if group.is_empty() && version != "v1" {
        causes.push(required_with(
            "spec.group",
            "only v1 may have an empty group and it better be legacy kube",
        ));
    }
    if !group.is_empty()
        && let Err(e) = dns1123_subdomain(group)
    {
        causes.push(Cause::invalid("spec.group", &Value::from(group), e));
    }
    if let Err(e) = dns1035_label(version) {
        causes.push(Cause::invalid("spec.version", &Value::from(version), e));
    }
    let number = |p: &str| obj.at(p).and_then(Value::as_i64).unwrap_or(0);
    for (field, max) in [("groupPriorityMinimum", 20000), ("versionPriority", 1000)] {
        let n = number(&format!("/spec/{field}"));
        if n <= 0 || n > max {
            causes.push(Cause::invalid(
                format!("spec.{field}"),
                &Value::from(n),
                format!("must be positive and less than {max}"),
            ));
        }
    }
    api_service_backend(obj, &mut causes);
    causes
}

fn api_service_backend(obj: &Value, causes: &mut Vec<Cause>) {
    let ca_bundle = str_at(obj, "/spec/caBundle").unwrap_or("");
    let insecure = obj
        .at("/spec/insecureSkipTLSVerify")
        .and_then(Value::as_bool)
        == Some(true);
    let Some(service) = obj.at("/spec/service").filter(|s| s.is_object()) else {
        if !ca_bundle.is_empty() {
            let bytes = base64_len(ca_bundle);
            causes.push(Cause::invalid(
                "spec.caBundle",
                &Value::from(format!("{bytes} bytes")),
                "local APIServices may not have a caBundle",
            ));
        }
        if insecure {
            causes.push(Cause::invalid(
                "spec.insecureSkipTLSVerify",
                &Value::from(true),
                "local APIServices may not have insecureSkipTLSVerify",
            ));
        }
        return;
    };
    for key in ["namespace", "name"] {
        if str_at(service, &format!("/{key}")).unwrap_or("").is_empty() {
            causes.push(required_with(format!("spec.service.{key}"), ""));
        }
    }
    if let Some(port) = service.at("/port").and_then(Value::as_i64)
        && !(1..=65535).contains(&port)
    {
        causes.push(Cause::invalid(
            "spec.service.port",
            &Value::from(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    if insecure && !ca_bundle.is_empty() {
        causes.push(Cause::invalid(
            "spec.insecureSkipTLSVerify",
            &Value::from(true),
            "may not be true if caBundle is present",
        ));
    }
}

fn base64_len(encoded: &str) -> usize {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_or(encoded.len(), |b| b.len())
}

fn ingress(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let default_backend = obj.at("/spec/defaultBackend").filter(|b| b.is_object());
    let rules = items(obj, "/spec/rules").count();
    if default_backend.is_none() && rules == 0 {
        causes.push(invalid_text(
            "spec".into(),
            "[]networking.IngressRule(nil)",
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(backend) = default_backend {
        ingress_backend("spec.defaultBackend", backend, &mut causes);
    }
    if let Some(class) = str_at(obj, "/spec/ingressClassName")
        && let Err(e) = dns1123_subdomain(class)
    {
        causes.push(Cause::invalid(
            "spec.ingressClassName",
            &Value::from(class),
            e,
        ));
    }
    for (i, rule) in items(obj, "/spec/rules") {
        for (j, path) in items(rule, "/http/paths") {
            ingress_path(
                &format!("spec.rules[{i}].http.paths[{j}]"),
                path,
                &mut causes,
            );
        }
    }
    causes
}

fn ingress_path(field: &str, path: &Value, causes: &mut Vec<Cause>) {
    let kind = str_at(path, "/pathType");
    match kind {
        None => causes.push(required_with(
            format!("{field}.pathType"),
            "pathType must be specified",
        )),
        Some("Exact" | "Prefix") => {
            let p = str_at(path, "/path").unwrap_or("");
            if !p.starts_with('/') {
                causes.push(Cause::invalid(
                    format!("{field}.path"),
                    &Value::from(p),
                    "must be an absolute path",
                ));
            }
        }
        Some("ImplementationSpecific") => {}
        Some(other) => causes.push(Cause::not_supported(
            format!("{field}.pathType"),
            &Value::from(other),
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    ingress_backend(
        &format!("{field}.backend"),
        path.at("/backend").unwrap_or(&Value::Null),
        causes,
    );
}

fn ingress_backend(field: &str, backend: &Value, causes: &mut Vec<Cause>) {
    let resource = backend.at("/resource").filter(|r| r.is_object());
    let service = backend.at("/service").filter(|s| s.is_object());
    let service = match (resource, service) {
        (Some(_), Some(_)) => {
            causes.push(invalid_text(
                field.into(),
                "\"\"",
                "cannot set both resource and service backends",
            ));
            return;
        }
        (None, None) => {
            causes.push(invalid_text(
                field.into(),
                "\"\"",
                "resource or service backend is required",
            ));
            return;
        }
        (Some(_), None) => return,
        (None, Some(service)) => service,
    };
    match str_at(service, "/name").unwrap_or("") {
        "" => causes.push(Cause::required(format!("{field}.service.name"))),
        name => {
            if let Err(e) = dns1035_label(name) {
                causes.push(Cause::invalid(
                    format!("{field}.service.name"),
                    &Value::from(name),
                    e,
                ));
            }
        }
    }
    let port_name = str_at(service, "/port/name").unwrap_or("");
    let port_number = service
        .at("/port/number")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    match (port_name.is_empty(), port_number) {
        (false, n) if n != 0 => causes.push(invalid_text(
            field.into(),
            "\"\"",
            "cannot set both port name & port number",
        )),
        (true, 0) => causes.push(required_with(
            format!("{field}.service.port"),
            "port name or number is required",
        )),
        (true, n) if !(1..=65535).contains(&n) => causes.push(Cause::invalid(
            format!("{field}.service.port.number"),
            &Value::from(n),
            "must be between 1 and 65535, inclusive",
        )),
        _ => {}
    }
}

fn ingress_class(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    match str_at(obj, "/spec/controller").unwrap_or("") {
        "" => causes.push(Cause::required("spec.controller")),
        c if c.len() > 250 => causes.push(Cause {
            reason: "FieldValueTooLong",
            message: "Too long: may not be more than 250 bytes".into(),
            field: "spec.controller".into(),
        }),
        _ => {}
    }
    if let Some(params) = obj.at("/spec/parameters").filter(|p| p.is_object()) {
        for key in ["kind", "name"] {
            if str_at(params, &format!("/{key}")).unwrap_or("").is_empty() {
                causes.push(Cause::required(format!("spec.parameters.{key}")));
            }
        }
    }
    if let Some(old) = old {
        immutable("spec.controller", obj, old, "/spec/controller", &mut causes);
    }
    causes
}

fn network_policy(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let types = strings(obj, "/spec/policyTypes");
    for (i, t) in types.iter().enumerate() {
        if !["Ingress", "Egress"].contains(t) {
            causes.push(Cause::not_supported(
                format!("spec.policyTypes[{i}]"),
                &Value::from(*t),
                &["Egress", "Ingress"],
            ));
        }
    }
    if types.len() > 2 {
        causes.push(invalid_text(
            "spec.policyTypes".into(),
            &go_strings(&types),
            "may not specify more than two policyTypes",
        ));
    }
    causes
}

fn service_cidr(obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let cidrs = strings(obj, "/spec/cidrs");
    match cidrs.len() {
        0 => causes.push(required_with("spec.cidrs", "at least one CIDR required")),
        1 | 2 => {
            for (i, cidr) in cidrs.iter().enumerate() {
                if let Err(e) = canonical_cidr(cidr) {
                    causes.push(Cause::invalid(
                        format!("spec.cidrs[{i}]"),
                        &Value::from(*cidr),
                        e,
                    ));
                }
            }
            let v4 = |c: &str| !c.contains(':');
            if cidrs.len() == 2 && v4(cidrs[0]) == v4(cidrs[1]) {
                causes.push(invalid_text(
                    "spec.cidrs".into(),
                    &go_strings(&cidrs),
                    "may specify no more than one IP for each IP family, i.e 192.168.0.0/24 and 2001:db8::/64",
                ));
            }
        }
        _ => causes.push(invalid_text(
            "spec.cidrs".into(),
            &go_strings(&cidrs),
            "may only hold up to 2 values",
        )),
    }
    if let Some(old) = old
        && old.at("/spec/cidrs") != obj.at("/spec/cidrs")
    {
        causes.push(invalid_text(
            "spec.cidrs".into(),
            &go_strings(&cidrs),
            "field is immutable",
        ));
    }
    causes
}

/// A CIDR in canonical form (`10.96.0.0/12`, not `10.96.0.1/12`).
fn canonical_cidr(cidr: &str) -> Result<(), String> {
    const VALID: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
    let (ip, bits) = cidr.split_once('/').ok_or(VALID)?;
    let ip: IpAddr = ip.parse().map_err(|_| VALID)?;
    let bits: u32 = bits.parse().map_err(|_| VALID)?;
    let (value, width): (u128, u32) = match ip {
        IpAddr::V4(a) => (u32::from(a) as u128, 32),
        IpAddr::V6(a) => (u128::from(a), 128),
    };
    if bits > width {
        return Err(VALID.into());
    }
    let host_bits = width - bits;
    let network = if host_bits == 0 {
        value
    } else {
        value >> host_bits << host_bits
    };
    let canonical_ip = match ip {
        IpAddr::V4(_) => IpAddr::from(std::net::Ipv4Addr::from(network as u32)),
        IpAddr::V6(_) => IpAddr::from(std::net::Ipv6Addr::from(network)),
    };
    let canonical = format!("{canonical_ip}/{bits}");
    if canonical == cidr {
        Ok(())
    } else {
        Err(format!("must be in canonical form ({canonical:?})"))
    }
}

fn flow_schema(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    if str_at(obj, "/spec/priorityLevelConfiguration/name")
        .unwrap_or("")
        .is_empty()
    {
        causes.push(required_with(
            "spec.priorityLevelConfiguration.name",
            "must reference a priority level",
        ));
    }
    if let Some(p) = obj.at("/spec/matchingPrecedence").and_then(Value::as_i64)
        && !(1..=10000).contains(&p)
    {
        causes.push(Cause::invalid(
            "spec.matchingPrecedence",
            &Value::from(p),
            "must be between 1 and 10000 inclusively",
        ));
    }
    one_of(
        obj,
        "/spec/distinguisherMethod/type",
        "spec.distinguisherMethod.type".into(),
        &["ByNamespace", "ByUser"],
        &mut causes,
    );
    causes
}

fn priority_level(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let kind = str_at(obj, "/spec/type");
    match kind {
        None => causes.push(required_with("spec.type", "must not be empty")),
        Some("Limited") if obj.at("/spec/limited").is_none_or(Value::is_null) => causes.push(
            required_with("spec.limited", "must not be empty when type is Limited"),
        ),
        Some("Exempt" | "Limited") => {}
        Some(other) => causes.push(Cause::not_supported(
            "spec.type",
            &Value::from(other),
            &["Exempt", "Limited"],
        )),
    }
    if let Some(p) = obj
        .at("/spec/limited/lendablePercent")
        .and_then(Value::as_i64)
        && !(0..=100).contains(&p)
    {
        causes.push(Cause::invalid(
            "spec.limited.lendablePercent",
            &Value::from(p),
            "must be between 0 and 100, inclusive",
        ));
    }
    causes
}

fn volume_attachment(obj: &Value, _: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    for key in ["attacher", "nodeName"] {
        if str_at(obj, &format!("/spec/{key}"))
            .unwrap_or("")
            .is_empty()
        {
            causes.push(Cause::required(format!("spec.{key}")));
        }
    }
    let pv = str_at(obj, "/spec/source/persistentVolumeName").is_some();
    let inline = obj
        .at("/spec/source/inlineVolumeSpec")
        .is_some_and(Value::is_object);
    if pv == inline {
        causes.push(required_with(
            "spec.source",
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rendered(group: &str, kind: &str, obj: Value) -> Vec<String> {
        validate(group, kind, &obj, None)
            .iter()
            .map(Cause::render)
            .collect()
    }

    #[test]
    fn webhooks_follow_kube_apiserver_rules() {
        let hooks = json!({"webhooks": [
            {"name": "short.io", "admissionReviewVersions": ["v2"], "timeoutSeconds": 31,
             "clientConfig": {"url": "http://example.com/hook"}},
            {"name": "a.example.com", "sideEffects": "None", "admissionReviewVersions": ["v1"],
             "clientConfig": {"service": {"namespace": "ns", "name": "s"}}},
            {"name": "a.example.com", "sideEffects": "Some", "admissionReviewVersions": ["v1"],
             "clientConfig": {}}]});
        assert_eq!(
            rendered(
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                hooks
            ),
            [
                "webhooks[0].name: Invalid value: \"short.io\": should be a domain with at least three segments separated by dots",
                "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                "webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds",
                "webhooks[0].admissionReviewVersions: Invalid value: []string{\"v2\"}: must include at least one of v1, v1beta1",
                "webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]",
                "webhooks[2].name: Duplicate value: \"a.example.com\"",
                "webhooks[2].sideEffects: Unsupported value: \"Some\": supported values: \"None\", \"NoneOnDryRun\"",
                "webhooks[2].clientConfig: Required value: exactly one of url or service is required",
            ]
        );
    }

    #[test]
    fn api_services_are_named_for_their_version_and_group() {
        let svc = json!({"metadata": {"name": "v1.example.com"}, "spec": {"group": "example.com",
            "version": "v1beta1", "groupPriorityMinimum": 0, "versionPriority": 15,
            "service": {"namespace": "ns", "name": "api"}}});
        assert_eq!(
            rendered("apiregistration.k8s.io", "APIService", svc),
            [
                "metadata.name: Invalid value: \"v1.example.com\": must be `spec.version+\".\"+spec.group`: \"v1beta1.example.com\"",
                "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000",
            ]
        );
        assert!(api_service_name("v1.").is_ok());
        assert!(api_service_name("v1").is_err());
    }

    #[test]
    fn ingresses_need_path_types_and_one_backend() {
        let ing = json!({"spec": {"rules": [{"http": {"paths": [
            {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "api", "pathType": "Prefix", "backend": {}}]}}]}});
        assert_eq!(
            rendered("networking.k8s.io", "Ingress", ing),
            [
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified",
                "spec.rules[0].http.paths[1].path: Invalid value: \"api\": must be an absolute path",
                "spec.rules[0].http.paths[1].backend: Invalid value: \"\": resource or service backend is required",
            ]
        );
    }

    #[test]
    fn policy_bindings_name_their_policy_actions_and_params() {
        let binding = json!({"spec": {"policyName": "p", "validationActions": ["Deny"],
            "paramRef": {"name": "limits"}}});
        assert_eq!(
            rendered(
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding",
                binding
            ),
            ["spec.paramRef.parameterNotFoundAction: Required value"]
        );
        let empty = json!({"spec": {}});
        assert_eq!(
            rendered(
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicyBinding",
                empty
            ),
            [
                "spec.policyName: Required value",
                "spec.validationActions: Required value: at least one validation action is required"
            ]
        );
    }

    #[test]
    fn service_cidrs_are_canonical_and_immutable() {
        assert!(canonical_cidr("10.96.0.0/12").is_ok());
        assert_eq!(
            canonical_cidr("10.96.0.1/12").unwrap_err(),
            "must be in canonical form (\"10.96.0.0/12\")"
        );
        assert!(canonical_cidr("fd00::/108").is_ok());
        let old = json!({"spec": {"cidrs": ["10.96.0.0/12"]}});
        let new = json!({"spec": {"cidrs": ["10.100.0.0/16"]}});
        let causes: Vec<String> = service_cidr(&new, Some(&old))
            .iter()
            .map(Cause::render)
            .collect();
        assert_eq!(
            causes,
            ["spec.cidrs: Invalid value: []string{\"10.100.0.0/16\"}: field is immutable"]
        );
        assert!(ip_address_name("10.96.0.1").is_ok());
        assert!(ip_address_name("2001:db8:0::1").is_err());
    }
}
