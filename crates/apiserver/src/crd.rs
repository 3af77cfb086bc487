//! CustomResourceDefinitions: validating CRDs, turning them into served resource types, and
//! applying their structural schemas to custom objects (pruning, defaulting, validation).

use crate::objects::JsonAt;
use serde_json::{Map, Value, json};

use crate::errors::Cause;
use crate::resources::ResourceType;

/// One additional printer column of a CRD version.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: u8,
    pub json_path: String,
}

/// What a custom type carries beyond a built-in one.
#[derive(Debug)]
pub struct CustomType {
    /// The CRD's name (`<plural>.<group>`).
    pub crd_name: String,
    /// The version's `openAPIV3Schema`, shared with the published OpenAPI documents.
    pub schema: Option<std::sync::Arc<Value>>,
    pub printer_columns: Vec<PrinterColumn>,
    pub spec_replicas_path: Option<String>,
    pub status_replicas_path: Option<String>,
    pub label_selector_path: Option<String>,
    /// The version objects are stored in.
    pub storage_version: String,
    /// The schema's `x-kubernetes-validations` rules, compiled once; `None` when it has none.
    pub rules: Option<kube_cel::CompiledSchema>,
    /// The same rules arranged for costing an object before they run.
    pub cost_plan: Option<crate::celcost::Plan>,
    /// `spec.conversion.webhook` when versions convert through a webhook (`strategy: Webhook`).
    pub conversion_webhook: Option<Value>,
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak_list(items: Vec<String>) -> &'static [&'static str] {
    Box::leak(
        items
            .iter()
            .map(|s| leak(s))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    )
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.map(crate::objects::string_list).unwrap_or_default()
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.at(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The schema a CRD gives a version.
fn version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd.at("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| s(v, "/name") == version)?
        .get("schema")
}

/// Checks a CRD as kube-apiserver's validation does for what matters to serving it; `old` is
/// the stored CRD on updates.
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<Cause> {
    let mut causes = Vec::new();
    let group = s(crd, "/spec/group");
    let plural = s(crd, "/spec/names/plural");
    let kind = s(crd, "/spec/names/kind");
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !group.contains('.') {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    let name = s(crd, "/metadata/name");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match s(crd, "/spec/scope") {
        "Namespaced" | "Cluster" => {}
        "" => causes.push(Cause::required("spec.scope")),
        other => causes.push(Cause::not_supported(
            "spec.scope",
            &json!(other),
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = crd.at("/spec/versions").and_then(Value::as_array);
    match versions {
        None => causes.push(Cause::required("spec.versions")),
        Some(vs) if vs.is_empty() => causes.push(Cause::required("spec.versions")),
        Some(vs) => {
            // Versions with identical schemas are checked once, at the place kube-apiserver
            // reports them: `spec.validation` (where its conversion moves a shared schema).
            let shared = vs.iter().all(|v| v.get("schema") == vs[0].get("schema"));
            let storage = vs
                .iter()
                .filter(|v| v.get("storage") == Some(&json!(true)))
                .count();
            if storage != 1 {
                causes.push(Cause::invalid(
                    "spec.versions",
                    &json!(vs.iter().map(|v| s(v, "/name")).collect::<Vec<_>>()),
                    "must have exactly one version marked as storage version",
                ));
            }
            for (i, v) in vs.iter().enumerate() {
                if s(v, "/name").is_empty() {
                    causes.push(Cause::required(format!("spec.versions[{i}].name")));
                }
                match v.at("/schema/openAPIV3Schema") {
                    None => causes.push(Cause::required(format!(
                        "spec.versions[{i}].schema.openAPIV3Schema"
                    ))),
                    Some(_) if shared && i > 0 => {}
                    Some(schema) => {
                        let path = if shared {
                            "spec.validation.openAPIV3Schema".to_string()
                        } else {
                            format!("spec.versions[{i}].schema.openAPIV3Schema")
                        };
                        let before = causes.len();
                        if schema.get("type").and_then(Value::as_str) != Some("object") {
                            causes.push(Cause::invalid(
                                format!("{path}.type"),
                                schema.get("type").unwrap_or(&Value::Null),
                                "must be object at the root",
                            ));
                        }
                        structural(schema, &path, true, &mut causes);
                        // Rule costs are estimated on schemas that are otherwise valid, as
                        // kube-apiserver does; rules that do not compile are reported already.
                        // An update leaving a version's schema as it was is not held to the
                        // limit of each rule (a server upgrade may have changed the estimates),
                        // only to the total.
                        let name = s(v, "/name");
                        let unchanged = old.is_some_and(|old| {
                            version_schema(old, name).is_some()
                                && version_schema(old, name) == v.get("schema")
                        });
                        if causes[before..].iter().all(|c| c.field.ends_with(".rule")) {
                            causes.extend(crate::celcost::check_schema(schema, &path, unchanged));
                        }
                    }
                }
            }
        }
    }
    causes
}

/// Checks that every schema node states its type (a structural schema), except where
/// `x-kubernetes-int-or-string` or `x-kubernetes-preserve-unknown-fields` say otherwise.
fn structural(schema: &Value, path: &str, root: bool, causes: &mut Vec<Cause>) {
    let Some(m) = schema.as_object() else { return };
    let typed = m
        .get("type")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.is_empty());
    let exempt = m.get("x-kubernetes-int-or-string") == Some(&json!(true))
        || m.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if !typed && !exempt && !root {
        causes.push(Cause::required(format!("{path}.type")));
    }
    if let Some(t) = m.get("type").and_then(Value::as_str)
        && !matches!(
            t,
            "object" | "array" | "string" | "integer" | "number" | "boolean"
        )
    {
        causes.push(Cause::not_supported(
            format!("{path}.type"),
            &json!(t),
            &["array", "boolean", "integer", "number", "object", "string"],
        ));
    }
    if let Some(pattern) = m.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(pattern)
    {
        causes.push(Cause::invalid(
            format!("{path}.pattern"),
            &json!(pattern),
            format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    for (i, rule) in m
        .get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("{path}.x-kubernetes-validations[{i}].rule");
        match rule.get("rule").and_then(Value::as_str) {
            None | Some("") => causes.push(Cause::required(field)),
            Some(text) => {
                if let Err(e) = kube_cel::cel::Program::compile(text) {
                    causes.push(Cause::invalid(
                        field,
                        &json!(text),
                        format!("compilation failed: {e}"),
                    ));
                }
            }
        }
    }
    if let Some(props) = m.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            structural(v, &format!("{path}.properties[{k}]"), false, causes);
        }
    }
    if let Some(items) = m.get("items") {
        structural(items, &format!("{path}.items"), false, causes);
    } else if m.get("type").and_then(Value::as_str) == Some("array") {
        causes.push(Cause::required(format!("{path}.items")));
    }
    if let Some(ap) = m.get("additionalProperties").filter(|v| v.is_object()) {
        structural(ap, &format!("{path}.additionalProperties"), false, causes);
    }
}

/// Whether a schema declares `x-kubernetes-validations` anywhere.
fn has_rules(schema: &Value) -> bool {
    match schema {
        Value::Object(m) => {
            m.contains_key("x-kubernetes-validations")
                || m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "default" | "enum" | "example"))
                    .any(|(_, v)| has_rules(v))
        }
        Value::Array(items) => items.iter().any(has_rules),
        _ => false,
    }
}

/// Evaluates a custom type's `x-kubernetes-validations` rules on an object already pruned,
/// defaulted and valid against its schema; `old` is the stored object on updates, for
/// transition rules (`oldSelf`). This can take long: call it off the async workers.
///
/// The cost of the evaluation is checked first against kube-apiserver's per-evaluation limit
/// and per-object budget; an object over either gets kube-apiserver's error and no rule runs.
pub fn check_rules(custom: &CustomType, obj: &Value, old: Option<&Value>) -> Vec<Cause> {
    let Some(rules) = &custom.rules else {
        return Vec::new();
    };
    if let Some(cause) = custom.cost_plan.as_ref().and_then(|p| p.check(obj, old)) {
        return vec![cause];
    }
    let Err(errors) = kube_cel::validate_compiled(rules, obj, old) else {
        return Vec::new();
    };
    let schema = custom.schema.as_ref();
    errors
        .iter()
        .filter_map(|e| {
            let type_name = schema
                .and_then(|s| schema_type_at(s, &e.field_path))
                .unwrap_or("object");
            match e.kind {
                kube_cel::ErrorKind::ValidationFailure => Some(match e.reason.as_deref() {
                    Some("FieldValueForbidden") => Cause {
                        reason: "FieldValueForbidden",
                        message: format!("Forbidden: {}", e.message),
                        field: e.field_path.clone(),
                    },
                    Some("FieldValueRequired") => Cause {
                        reason: "FieldValueRequired",
                        message: format!("Required value: {}", e.message),
                        field: e.field_path.clone(),
                    },
                    Some("FieldValueDuplicate") => Cause {
                        reason: "FieldValueDuplicate",
                        message: format!("Duplicate value: {}", json!(type_name)),
                        field: e.field_path.clone(),
                    },
                    _ => Cause::invalid(e.field_path.clone(), &json!(type_name), &e.message),
                }),
                // A rule using a function this build cannot evaluate is not held against the
                // object: refusing valid objects would be worse than missing a check.
                kube_cel::ErrorKind::UnsupportedReference => {
                    tracing::debug!(rule = %e.rule, "validation rule skipped: {}", e.message);
                    None
                }
                _ => Some(Cause::invalid(
                    e.field_path.clone(),
                    &json!(type_name),
                    &e.message,
                )),
            }
        })
        .collect()
}

/// The schema type at a field path such as `spec.items[0].name`.
fn schema_type_at<'a>(schema: &'a Value, path: &str) -> Option<&'a str> {
    let mut node = schema;
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], part[i..].matches('[').count()),
            None => (part, 0),
        };
        node = node
            .at(&format!("/properties/{name}"))
            .or_else(|| node.get("additionalProperties").filter(|a| a.is_object()))?;
        for _ in 0..indexes {
            node = node.get("items")?;
        }
    }
    node.get("type").and_then(Value::as_str)
}

/// The resource types a CRD serves, one per served version.
pub fn resource_types(crd: &Value) -> Vec<ResourceType> {
    let group = leak(s(crd, "/spec/group"));
    let plural = leak(s(crd, "/spec/names/plural"));
    let kind = leak(s(crd, "/spec/names/kind"));
    let singular = match s(crd, "/spec/names/singular") {
        "" => kind.to_lowercase(),
        other => other.to_string(),
    };
    let singular = leak(&singular);
    let namespaced = s(crd, "/spec/scope") != "Cluster";
    let short_names = leak_list(strings(crd.at("/spec/names/shortNames")));
    let categories = leak_list(strings(crd.at("/spec/names/categories")));
    let storage_version = crd
        .at("/spec/versions")
        .and_then(Value::as_array)
        .and_then(|vs| vs.iter().find(|v| v.get("storage") == Some(&json!(true))))
        .map(|v| s(v, "/name").to_string())
        .unwrap_or_default();
    let mut out = Vec::new();
    for v in crd
        .at("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if v.get("served") == Some(&json!(false)) {
            continue;
        }
        let mut subs = Vec::new();
        if v.at("/subresources/status").is_some() {
            subs.push("status".to_string());
        }
        let scale = v.at("/subresources/scale");
        if scale.is_some() {
            subs.push("scale".to_string());
        }
        let printer_columns = v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: s(c, "/name").to_string(),
                type_: s(c, "/type").to_string(),
                format: s(c, "/format").to_string(),
                description: s(c, "/description").to_string(),
                priority: c
                    .get("priority")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(255) as u8,
                json_path: s(c, "/jsonPath").to_string(),
            })
            .collect();
        let custom: &'static CustomType = Box::leak(Box::new(CustomType {
            crd_name: s(crd, "/metadata/name").to_string(),
            schema: v
                .at("/schema/openAPIV3Schema")
                .cloned()
                .map(std::sync::Arc::new),
            printer_columns,
            spec_replicas_path: scale.map(|sc| s(sc, "/specReplicasPath").to_string()),
            status_replicas_path: scale.map(|sc| s(sc, "/statusReplicasPath").to_string()),
            label_selector_path: scale
                .map(|sc| s(sc, "/labelSelectorPath").to_string())
                .filter(|p| !p.is_empty()),
            storage_version: storage_version.clone(),
            rules: v
                .at("/schema/openAPIV3Schema")
                .filter(|schema| has_rules(schema))
                .map(kube_cel::compile_schema),
            cost_plan: v
                .at("/schema/openAPIV3Schema")
                .filter(|schema| has_rules(schema))
                .and_then(crate::celcost::Plan::new),
            conversion_webhook: (s(crd, "/spec/conversion/strategy") == "Webhook")
                .then(|| crd.at("/spec/conversion/webhook").cloned())
                .flatten(),
        }));
        out.push(ResourceType {
            group,
            version: leak(s(v, "/name")),
            kind,
            plural,
            singular,
            namespaced,
            short_names,
            categories,
            subresources: leak_list(subs),
            generation: true,
            custom: Some(custom),
        });
    }
    out
}

impl crate::rest::Registry {
    /// Notes that the served custom types changed, so that the OpenAPI documents follow.
    pub(crate) fn custom_types_changed(&self) {
        self.custom_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Brings the published OpenAPI documents up to date with the served custom types.
    pub(crate) fn sync_openapi(&self) {
        let generation = self
            .custom_generation
            .load(std::sync::atomic::Ordering::Relaxed);
        self.openapi
            .sync_custom(generation, || self.openapi_custom_types());
    }

    fn openapi_custom_types(&self) -> Vec<openapi::CustomResource> {
        self.custom_types
            .read()
            .unwrap()
            .iter()
            .filter_map(|r| {
                Some(openapi::CustomResource {
                    group: r.group.to_string(),
                    version: r.version.to_string(),
                    kind: r.kind.to_string(),
                    plural: r.plural.to_string(),
                    namespaced: r.namespaced,
                    subresources: r.subresources.iter().map(|s| s.to_string()).collect(),
                    schema: r.custom?.schema.clone(),
                })
            })
            .collect()
    }
}

/// Presents a stored custom object in the version `r` serves. Versions of a CRD share storage
/// and convert with the `None` strategy: only `apiVersion` changes. Built-in types pass through,
/// and so do types converted by a webhook, which the registry converts asynchronously.
pub fn present(r: &ResourceType, stored: bytes::Bytes) -> bytes::Bytes {
    let Some(custom) = r.custom else {
        return stored;
    };
    if custom.conversion_webhook.is_some() {
        // Converted by the webhook on the way out (`Registry::present_converted`).
        return stored;
    }
    let api_version = format!("{}/{}", r.group, r.version);
    if has_api_version(&stored, &api_version) {
        return stored;
    }
    match serde_json::from_slice::<Value>(&stored) {
        Ok(mut obj) => {
            obj["apiVersion"] = json!(api_version);
            serde_json::to_vec(&obj)
                .map(bytes::Bytes::from)
                .unwrap_or(stored)
        }
        Err(_) => stored,
    }
}

/// Whether a stored object's own `apiVersion` is `api_version`. Stored objects keep their keys
/// sorted, so `apiVersion` normally comes first and is read without decoding; `managedFields`
/// entries carry an `apiVersion` of their own, so the bytes are not searched.
pub fn has_api_version(stored: &[u8], api_version: &str) -> bool {
    let prefix = format!("{{\"apiVersion\":\"{api_version}\"");
    if stored.starts_with(prefix.as_bytes()) {
        return true;
    }
    if stored.starts_with(b"{\"apiVersion\":") {
        return false;
    }
    serde_json::from_slice::<Value>(stored)
        .is_ok_and(|o| o.get("apiVersion").and_then(Value::as_str) == Some(api_version))
}

/// A JSONPath such as `.spec.replicas` as a JSON pointer.
pub fn json_path_pointer(path: &str) -> String {
    let mut out = String::new();
    for part in path.trim_start_matches('.').split('.') {
        if part.is_empty() {
            continue;
        }
        out.push('/');
        out.push_str(part);
    }
    out
}

/// Evaluates the simple JSONPath forms printer columns use: `.a.b`, `.a[0].b`,
/// `.a[?(@.type=="Ready")].status`.
pub fn eval_json_path(obj: &Value, path: &str) -> Option<Value> {
    let mut cur = obj.clone();
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = &after[..end];
            rest = after[end + 1..].trim_start_matches('.');
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, want) = filter.split_once("==")?;
                let want = want.trim().trim_matches('"').trim_matches('\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|e| e.get(field.trim()).and_then(Value::as_str) == Some(want))?
                    .clone();
            } else {
                let i: usize = inner.parse().ok()?;
                cur = cur.as_array()?.get(i)?.clone();
            }
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        let key = &rest[..end];
        cur = cur.get(key)?.clone();
        rest = rest[end..].trim_start_matches('.');
    }
    Some(cur)
}

/// What applying a schema to an object found.
#[derive(Debug, Default)]
pub struct SchemaReport {
    /// Paths of fields the schema does not know (pruned).
    pub unknown: Vec<String>,
    pub causes: Vec<Cause>,
}

impl SchemaReport {
    fn invalid(&mut self, path: &str, value: &Value, detail: String) {
        self.causes.push(Cause::invalid(path, value, detail));
    }
}

/// Prunes unknown fields, applies defaults and validates types, as kube-apiserver does for
/// custom objects. `metadata`, `apiVersion` and `kind` are left to the generic rules.
pub fn apply_schema(schema: &Value, obj: &mut Value) -> SchemaReport {
    let mut report = SchemaReport::default();
    let Some(map) = obj.as_object_mut() else {
        return report;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        if matches!(key.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        match props.and_then(|p| p.get(&key)) {
            Some(sub) => walk(sub, map.get_mut(&key).expect("listed"), &key, &mut report),
            None if preserve => {}
            None => {
                map.remove(&key);
                report.unknown.push(key);
            }
        }
    }
    if let Some(props) = props {
        apply_defaults(props, map, "", &mut report);
    }
    required(schema, map, "", &mut report);
    report
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn apply_defaults(
    props: &Map<String, Value>,
    map: &mut Map<String, Value>,
    path: &str,
    report: &mut SchemaReport,
) {
    for (k, sub) in props {
        if matches!(k.as_str(), "apiVersion" | "kind" | "metadata") && path.is_empty() {
            continue;
        }
        if !map.contains_key(k)
            && let Some(d) = sub.get("default")
        {
            let mut value = d.clone();
            walk(sub, &mut value, &join(path, k), report);
            map.insert(k.clone(), value);
        }
    }
}

fn required(schema: &Value, map: &Map<String, Value>, path: &str, report: &mut SchemaReport) {
    for r in strings(schema.get("required")) {
        if path.is_empty() && matches!(r.as_str(), "apiVersion" | "kind" | "metadata") {
            continue;
        }
        if !map.contains_key(&r) {
            report.causes.push(Cause::required(join(path, &r)));
        }
    }
}

fn type_error(path: &str, value: &Value, want: &str) -> Cause {
    let got = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    Cause::invalid(
        path,
        &json!(got),
        format!("{path} in body must be of type {want}: {got:?}"),
    )
}

fn walk(schema: &Value, value: &mut Value, path: &str, report: &mut SchemaReport) {
    let nullable = schema.get("nullable") == Some(&json!(true));
    if value.is_null() {
        if !nullable && schema.get("type").is_some() {
            report.causes.push(type_error(
                path,
                value,
                schema["type"].as_str().unwrap_or(""),
            ));
        }
        return;
    }
    if schema.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            report
                .causes
                .push(type_error(path, value, "integer or string"));
        }
        return;
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(map) = value.as_object_mut() else {
                report.causes.push(type_error(path, value, "object"));
                return;
            };
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child = join(path, &key);
                match (props.and_then(|p| p.get(&key)), additional) {
                    (Some(sub), _) => walk(sub, map.get_mut(&key).expect("listed"), &child, report),
                    (None, Some(ap)) if ap.is_object() => {
                        walk(ap, map.get_mut(&key).expect("listed"), &child, report)
                    }
                    (None, Some(Value::Bool(true))) => {}
                    (None, _) if preserve => {}
                    (None, _) => {
                        map.remove(&key);
                        report.unknown.push(child);
                    }
                }
            }
            if let Some(props) = props {
                apply_defaults(props, map, path, report);
            }
            required(schema, map, path, report);
            let count = map.len() as u64;
            if let Some(min) = schema.get("minProperties").and_then(Value::as_u64)
                && count < min
            {
                report.invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} properties"),
                );
            }
            if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
                && count > max
            {
                report.causes.push(too_many(path, count, max));
            }
        }
        Some("array") => {
            let Some(items) = value.as_array_mut() else {
                report.causes.push(type_error(path, value, "array"));
                return;
            };
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), report);
                }
            }
            list_duplicates(schema, items, path, report);
            let count = items.len() as u64;
            let repeated = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].contains(a));
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && count > max
            {
                report.causes.push(too_many(path, count, max));
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && count < min
            {
                report.invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                );
            } else if schema.get("uniqueItems") == Some(&json!(true)) && repeated {
                report.invalid(
                    path,
                    value,
                    format!("{path} in body shouldn't contain duplicates"),
                );
            }
        }
        Some("string") => {
            let Some(text) = value.as_str() else {
                report.causes.push(type_error(path, value, "string"));
                return;
            };
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
                && text.chars().count() as u64 > max
            {
                report.causes.push(Cause {
                    reason: "FieldValueTooLong",
                    message: format!("Too long: may not be more than {max} bytes"),
                    field: path.to_string(),
                });
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
                && (text.chars().count() as u64) < min
            {
                report.invalid(
                    path,
                    value,
                    format!("{path} in body should be at least {min} chars long"),
                );
            }
            if let Some(pattern) = schema.get("pattern").and_then(Value::as_str)
                && !matches_pattern(pattern, text)
            {
                report.invalid(
                    path,
                    value,
                    format!("{path} in body should match '{pattern}'"),
                );
            }
            if let Some(format) = schema.get("format").and_then(Value::as_str)
                && !has_format(format, text)
            {
                report.invalid(
                    path,
                    value,
                    format!("{path} in body must be of type {format}: {text:?}"),
                );
            }
        }
        Some("integer") => {
            if !(value.is_i64() || value.is_u64()) {
                report.causes.push(type_error(path, value, "integer"));
                return;
            }
            bounds(schema, value, path, report);
        }
        Some("number") => {
            if !value.is_number() {
                report.causes.push(type_error(path, value, "number"));
                return;
            }
            bounds(schema, value, path, report);
        }
        Some("boolean") if !value.is_boolean() => {
            report.causes.push(type_error(path, value, "boolean"));
        }
        _ => {}
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let list: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        report.causes.push(Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
            field: path.to_string(),
        });
    }
}

fn bounds(schema: &Value, value: &Value, path: &str, report: &mut SchemaReport) {
    let n = value.as_f64().unwrap_or(0.0);
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let exclusive = schema.get("exclusiveMinimum") == Some(&json!(true));
        if exclusive && n <= min {
            report.invalid(
                path,
                value,
                format!("{path} in body should be greater than {min}"),
            );
        } else if n < min {
            report.invalid(
                path,
                value,
                format!("{path} in body should be greater than or equal to {min}"),
            );
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let exclusive = schema.get("exclusiveMaximum") == Some(&json!(true));
        if exclusive && n >= max {
            report.invalid(
                path,
                value,
                format!("{path} in body should be less than {max}"),
            );
        } else if n > max {
            report.invalid(
                path,
                value,
                format!("{path} in body should be less than or equal to {max}"),
            );
        }
    }
    if let Some(factor) = schema.get("multipleOf").and_then(Value::as_f64)
        && factor > 0.0
        && (n / factor).fract() != 0.0
    {
        report.invalid(
            path,
            value,
            format!("{path} in body should be a multiple of {factor}"),
        );
    }
}

fn too_many(path: &str, count: u64, max: u64) -> Cause {
    Cause {
        reason: "FieldValueTooMany",
        message: format!("Too many: {count}: must have at most {max} items"),
        field: path.to_string(),
    }
}

/// Elements repeated in a list declared `x-kubernetes-list-type: set`, or keys repeated in one
/// declared `map`.
fn list_duplicates(schema: &Value, items: &[Value], path: &str, report: &mut SchemaReport) {
    let key_of = |item: &Value| -> Value {
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys = strings(schema.get("x-kubernetes-list-map-keys"));
                Value::Object(
                    keys.iter()
                        .filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone())))
                        .collect(),
                )
            }
            _ => item.clone(),
        }
    };
    if !matches!(
        schema.get("x-kubernetes-list-type").and_then(Value::as_str),
        Some("set" | "map")
    ) {
        return;
    }
    let keys: Vec<Value> = items.iter().map(key_of).collect();
    for (i, key) in keys.iter().enumerate() {
        if keys[..i].contains(key) {
            report.causes.push(Cause {
                reason: "FieldValueDuplicate",
                message: format!("Duplicate value: {key}"),
                field: format!("{path}[{i}]"),
            });
        }
    }
}

/// Whether `text` matches a schema `pattern`; patterns are compiled once and kept.
fn matches_pattern(pattern: &str, text: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static COMPILED: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let mut compiled = COMPILED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let regex = compiled
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(pattern).ok());
    // A pattern the CRD check let through but this engine cannot compile is not held against
    // the object.
    regex.as_ref().is_none_or(|r| r.is_match(text))
}

/// Whether `text` has a string `format` kube-apiserver checks. Formats it does not check pass.
fn has_format(format: &str, text: &str) -> bool {
    use std::net::IpAddr;
    match format {
        "date-time" | "datetime" => {
            text.parse::<jiff::Timestamp>().is_ok() || text.parse::<jiff::civil::DateTime>().is_ok()
        }
        "date" => text.parse::<jiff::civil::Date>().is_ok(),
        "uuid" => {
            let groups: Vec<&str> = text.split('-').collect();
            groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
                && groups
                    .iter()
                    .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
        }
        "ipv4" => text.parse::<std::net::Ipv4Addr>().is_ok(),
        "ipv6" => text.parse::<std::net::Ipv6Addr>().is_ok(),
        "cidr" => text.split_once('/').is_some_and(|(addr, bits)| {
            let max = match addr.parse::<IpAddr>() {
                Ok(IpAddr::V4(_)) => 32,
                Ok(IpAddr::V6(_)) => 128,
                Err(_) => return false,
            };
            bits.parse::<u8>().is_ok_and(|b| b <= max)
        }),
        "byte" => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .is_ok()
        }
        _ => true,
    }
}

/// The status a CRD gets once its names are accepted and it is served.
pub fn established_status(crd: &Value) -> Value {
    let now = crate::objects::now_rfc3339();
    let names = crd.at("/spec/names").cloned().unwrap_or_else(|| json!({}));
    let mut accepted = names.clone();
    if accepted
        .get("singular")
        .is_none_or(|s| s.as_str().is_none_or(str::is_empty))
    {
        accepted["singular"] = json!(s(crd, "/spec/names/kind").to_lowercase());
    }
    if accepted.get("listKind").is_none() {
        accepted["listKind"] = json!(format!("{}List", s(crd, "/spec/names/kind")));
    }
    let stored: Vec<Value> = crd
        .at("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage") == Some(&json!(true)))
        .map(|v| json!(s(v, "/name")))
        .collect();
    json!({
        "acceptedNames": accepted,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now, "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now, "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "storedVersions": stored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_objects_own_api_version_decides_not_its_managed_fields() {
        let stored = br#"{"apiVersion":"example.com/v1","kind":"W","metadata":{"managedFields":[{"apiVersion":"example.com/v2"}]}}"#;
        assert!(has_api_version(stored, "example.com/v1"));
        assert!(!has_api_version(stored, "example.com/v2"));
        let unsorted = br#"{"Zeta":1,"apiVersion":"example.com/v2"}"#;
        assert!(has_api_version(unsorted, "example.com/v2"));
    }

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1},
                "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                "tags": {"type": "array", "items": {"type": "string"}},
                "port": {"x-kubernetes-int-or-string": true},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        }})
    }

    #[test]
    fn prunes_defaults_and_validates() {
        let mut obj = json!({"apiVersion": "x.io/v1", "kind": "W", "metadata": {"name": "n"},
            "spec": {"size": 2, "bogus": 1, "port": "http", "extra": {"anything": [1]}, "labels": {"a": "b"}}, "top": 1});
        let r = apply_schema(&schema(), &mut obj);
        assert!(r.causes.is_empty(), "{:?}", r.causes);
        assert_eq!(r.unknown, ["spec.bogus", "top"]);
        assert_eq!(obj["spec"]["mode"], "a");
        assert!(obj.get("top").is_none());
        assert_eq!(obj["spec"]["extra"]["anything"], json!([1]));
        let mut bad = json!({"spec": {"size": "big", "mode": "z", "tags": [1]}});
        let r = apply_schema(&schema(), &mut bad);
        let fields: Vec<&str> = r.causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.mode", "spec.size", "spec.tags[0]"]);
        let mut missing = json!({"spec": {}});
        let r = apply_schema(&schema(), &mut missing);
        assert_eq!(r.causes[0].field, "spec.size");
    }

    #[test]
    fn crd_validation_requires_structural_schemas() {
        let crd = json!({"metadata": {"name": "widgets.x.io"}, "spec": {"group": "x.io", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"properties": {}}}}}}]}});
        let causes = validate(&crd, None);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert!(causes[0].field.ends_with("properties[spec].type"));
        let types = {
            let mut ok = crd.clone();
            ok["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["type"] =
                json!("object");
            assert!(validate(&ok, None).is_empty());
            resource_types(&ok)
        };
        assert_eq!(types[0].plural, "widgets");
        assert_eq!(types[0].singular, "widget");
    }

    #[test]
    fn value_checks_follow_the_schema() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "maxProperties": 4, "properties": {
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
            "net": {"type": "string", "format": "cidr"},
            "step": {"type": "number", "multipleOf": 0.5, "minimum": 0, "exclusiveMinimum": true},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"],
                "items": {"type": "object", "properties": {"port": {"type": "integer"}, "name": {"type": "string"}}}},
        }}}});
        let mut good = json!({"spec": {"when": "2026-11-28T05:52:00Z", "id": "0b08b5f0-1234-4abc-8def-0123456789ab",
            "net": "10.96.0.0/12", "ports": [{"port": 80}, {"port": 443}]}});
        assert!(apply_schema(&schema, &mut good).causes.is_empty());
        let mut bad = json!({"spec": {"when": "yesterday", "id": "x", "net": "10.0.0.0/33", "step": 0.3,
            "ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]}});
        let messages: Vec<String> = apply_schema(&schema, &mut bad)
            .causes
            .iter()
            .map(Cause::render)
            .collect();
        assert_eq!(
            messages,
            [
                r#"spec.id: Invalid value: "x": spec.id in body must be of type uuid: "x""#,
                r#"spec.net: Invalid value: "10.0.0.0/33": spec.net in body must be of type cidr: "10.0.0.0/33""#,
                r#"spec.ports[1]: Duplicate value: {"port":80}"#,
                "spec.step: Invalid value: 0.3: spec.step in body should be a multiple of 0.5",
                r#"spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday""#,
                "spec: Too many: 5: must have at most 4 items",
            ]
        );
        let mut zero = json!({"spec": {"step": 0}});
        let causes = apply_schema(&schema, &mut zero).causes;
        assert!(
            causes[0].message.ends_with("should be greater than 0"),
            "{causes:?}"
        );
    }

    #[test]
    fn rules_are_evaluated_with_the_old_object() {
        let crd = json!({"metadata": {"name": "pools.x.io"}, "spec": {"group": "x.io", "scope": "Cluster",
            "names": {"plural": "pools", "kind": "Pool"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.size == oldSelf.size", "message": "size is immutable"}],
                    "properties": {"size": {"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0"}]}}}}}}}]}});
        assert!(validate(&crd, None).is_empty());
        let types = resource_types(&crd);
        let custom = types[0].custom.expect("custom");
        let one = json!({"spec": {"size": 1}});
        assert!(check_rules(custom, &one, None).is_empty());
        let causes = check_rules(custom, &json!({"spec": {"size": 0}}), None);
        assert_eq!(
            causes[0].render(),
            r#"spec.size: Invalid value: "integer": failed rule: self > 0"#
        );
        let causes = check_rules(custom, &json!({"spec": {"size": 2}}), Some(&one));
        assert_eq!(
            causes[0].render(),
            r#"spec: Invalid value: "object": size is immutable"#
        );
        let mut broken = crd.clone();
        broken["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
            [0]["rule"] = json!("self.size ==");
        let causes = validate(&broken, None);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(
            causes[0].field,
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule"
        );
    }

    fn costly_crd(max_items: Option<u64>) -> Value {
        let mut items = json!({"type": "array", "items": {"type": "string", "maxLength": 64}});
        if let Some(max) = max_items {
            items["maxItems"] = json!(max);
        }
        json!({"metadata": {"name": "bags.x.io"}, "spec": {"group": "x.io", "scope": "Cluster",
            "names": {"plural": "bags", "kind": "Bag"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object",
                    "x-kubernetes-validations": [{"rule": "self.items.all(a, self.items.all(b, self.items.all(c, a + b + c != '')))"}],
                    "properties": {"items": items}}}}}}]}})
    }

    #[test]
    fn rules_over_budget_make_the_crd_invalid() {
        let causes = validate(&costly_crd(None), None);
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        let advice = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";
        let rule =
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule";
        assert_eq!(
            rendered,
            [
                format!(
                    "{rule}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {advice}"
                ),
                format!(
                    "{rule}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"
                ),
                format!(
                    "spec.validation.openAPIV3Schema: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {advice}"
                ),
            ]
        );
        assert!(validate(&costly_crd(Some(10)), None).is_empty());

        // Versions with schemas of their own are reported each at its place.
        let mut two = costly_crd(None);
        let mut v2 = two["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        v2["storage"] = json!(false);
        v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["items"]["maxItems"] =
            json!(10);
        two["spec"]["versions"].as_array_mut().unwrap().push(v2);
        let fields: Vec<String> = validate(&two, None).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            [
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule",
                "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule",
                "spec.versions[0].schema.openAPIV3Schema",
            ]
        );

        // An update that leaves the schema alone is held to the total only.
        let fields: Vec<String> = validate(&costly_crd(None), Some(&costly_crd(None)))
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields.len(), 2, "{fields:?}");
        assert!(fields[0].ends_with(".rule") && fields[1] == "spec.validation.openAPIV3Schema");
    }

    #[test]
    fn objects_over_the_cost_limit_are_refused_before_the_rules_run() {
        let crd = costly_crd(Some(100));
        let types = resource_types(&crd);
        let custom = types[0].custom.expect("custom");
        let items = |n: usize| json!({"spec": {"items": (0..n).map(|i| i.to_string()).collect::<Vec<_>>()}});
        assert!(check_rules(custom, &items(10), None).is_empty());
        let causes = check_rules(custom, &items(100), None);
        assert_eq!(
            causes[0].render(),
            "spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.items.all(a, self.items.all(b, self.items.all(c, a + b + c != '')))"
        );
    }

    #[test]
    fn json_paths() {
        let obj = json!({"status": {"conditions": [{"type": "A", "status": "x"}, {"type": "Ready", "status": "True"}]}, "spec": {"r": 3}});
        assert_eq!(eval_json_path(&obj, ".spec.r"), Some(json!(3)));
        assert_eq!(
            eval_json_path(&obj, r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(json!("True"))
        );
        assert_eq!(
            eval_json_path(&obj, ".status.conditions[0].type"),
            Some(json!("A"))
        );
        assert_eq!(eval_json_path(&obj, ".nope"), None);
    }
}
