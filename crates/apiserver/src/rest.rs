//! The REST verbs on top of the store: get, list, create, update, patch, delete, subresources.
//! Every entry point here is transport-free, so in-process clients use the same code path as
//! HTTP requests.

use crate::objects::JsonAt;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};
use store::{Error as StoreError, KeyValue, Store};

use crate::defaults;
use crate::errors::{ApiError, ApiResult, Cause};
use crate::fieldmanager;
use crate::objects::{
    self, decode, desired_state_changed, encode_with_revision, finalizers, is_deleting, meta_mut,
    meta_str, same_but_resource_version,
};
use crate::patch::{self, PatchType};
use crate::resources::{self, ResourceType};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::validation;

/// How unknown fields in a request body are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Strict,
    #[default]
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> ApiResult<Self> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of Strict, Warn or Ignore, not {other:?}"
            ))),
        }
    }
}

/// Options of create, update and patch.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
    pub force: bool,
    /// The request's User-Agent; names the manager of writes without `fieldManager`.
    pub user_agent: Option<String>,
    /// Set while serving an apply patch, whose managedFields the apply itself computes.
    pub applied: bool,
    /// Keys the request body repeats (`metadata.name`), reported like unknown fields.
    pub duplicate_fields: Vec<String>,
    /// Who asks, as admission webhooks are told (the server itself when unset).
    pub user: Option<Arc<crate::authn::UserInfo>>,
}

impl WriteOptions {
    /// The same options on behalf of `user`.
    pub fn by(self, user: Option<Arc<crate::authn::UserInfo>>) -> Self {
        Self { user, ..self }
    }
}

/// The result of a write.
#[derive(Debug, Clone)]
pub struct Written {
    pub body: Bytes,
    /// 201 rather than 200.
    pub created: bool,
    pub warnings: Vec<String>,
}

/// Options of delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
    /// Who asks, as admission webhooks are told (the server itself when unset).
    pub user: Option<Arc<crate::authn::UserInfo>>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body (empty = defaults).
    pub fn from_body(body: &[u8]) -> ApiResult<Self> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::default());
        }
        let v: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
        let mut o = Self {
            grace_period_seconds: v.get("gracePeriodSeconds").and_then(Value::as_i64),
            propagation_policy: v
                .get("propagationPolicy")
                .and_then(Value::as_str)
                .map(String::from),
            precondition_uid: v
                .at("/preconditions/uid")
                .and_then(Value::as_str)
                .map(String::from),
            precondition_resource_version: v
                .at("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                .map(String::from),
            dry_run: v
                .get("dryRun")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|x| x == "All")),
            user: None,
        };
        if v.get("orphanDependents") == Some(&json!(true)) && o.propagation_policy.is_none() {
            o.propagation_policy = Some("Orphan".into());
        }
        Ok(o)
    }

    /// The same options on behalf of `user`.
    pub fn by(self, user: Option<Arc<crate::authn::UserInfo>>) -> Self {
        Self { user, ..self }
    }

    fn check(&self) -> ApiResult<()> {
        if let Some(p) = &self.propagation_policy
            && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
        {
            return Err(ApiError::invalid_options(
                "DeleteOptions",
                vec![Cause::not_supported(
                    "propagationPolicy",
                    &json!(p),
                    &["Foreground", "Background", "Orphan", "nil"],
                )],
            ));
        }
        if self.grace_period_seconds.is_some_and(|g| g < 0) {
            return Ok(());
        }
        Ok(())
    }
}

/// Options of list and watch.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: String,
    pub field_selector: String,
    pub limit: usize,
    pub continue_token: String,
    pub resource_version: String,
    pub resource_version_match: String,
    pub timeout_seconds: Option<u64>,
    pub allow_bookmarks: bool,
    pub send_initial_events: Option<bool>,
    /// Leave `remainingItemCount` out of a limited list, which then need not count the rest of
    /// the range for every page (in-process followers read every page anyway).
    pub skip_remaining_count: bool,
}

/// A parsed, checked list request.
pub(crate) struct ListPlan {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl ListPlan {
    /// The parts of an object the selectors read.
    pub fn projection(&self, r: &ResourceType) -> crate::objects::Projection {
        let mut p = crate::objects::Projection::default();
        p.keep(["metadata", "name"]);
        p.keep(["metadata", "namespace"]);
        p.keep(["metadata", "labels"]);
        self.fields.project(r, &mut p);
        p
    }

    pub fn matches(&self, r: &ResourceType, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(r, obj)
    }
}

/// A page of a list.
pub struct ListPage {
    pub items: Vec<Bytes>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

/// Which part of an object an update may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// Namespace `finalize`: only `spec.finalizers`.
    Finalize,
    /// CertificateSigningRequest `approval`: only `status.conditions`.
    Approval,
}

impl Part {
    /// The subresource that writes this part, as admission names it.
    pub fn subresource(self) -> &'static str {
        match self {
            Part::Main => "",
            Part::Status => "status",
            Part::Finalize => "finalize",
            Part::Approval => "approval",
        }
    }
}

/// Hook for the namespace lifecycle, called after a namespace starts terminating.
pub type NamespaceHook = Arc<dyn Fn(String) + Send + Sync>;

/// The transport-free API server core.
pub struct Registry {
    pub(crate) store: Arc<dyn Store>,
    /// Types served from CustomResourceDefinitions.
    pub(crate) custom_types: std::sync::RwLock<Vec<&'static ResourceType>>,
    /// Changes whenever `custom_types` may have (for the OpenAPI documents).
    pub(crate) custom_generation: std::sync::atomic::AtomicU64,
    /// The built-in kinds' schemas: unknown fields and merge rules.
    pub(crate) openapi: Arc<openapi::OpenApi>,
    pub(crate) namespace_terminating: std::sync::Mutex<Option<NamespaceHook>>,
    /// Namespaces recently seen active, so creates do not read their namespace every time
    /// (which costs a round trip on a remote store). This server forgets a namespace as soon as
    /// it marks it for deletion; a deletion through another server is seen within
    /// [`ACTIVE_NAMESPACE_TTL`], as kube-apiserver's admission sees it through its informer.
    active_namespaces: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
    /// Cluster IPs and node ports held by services.
    services: crate::services::ServiceAllocations,
    /// Where the resource metrics API answers from, when it is served.
    pub(crate) metrics: std::sync::RwLock<Option<Arc<dyn crate::resourcemetrics::MetricsSource>>>,
    /// Checks of objects of given kinds beyond their schema, by group and kind.
    object_checks: std::sync::RwLock<Vec<(String, String, ObjectCheck)>>,
    /// The cluster's admission webhooks and policies.
    pub(crate) admission: crate::admission::Admission,
    /// Clients of the servers the cluster points at: admission and conversion webhooks,
    /// aggregated API servers.
    pub(crate) upstream: crate::upstream::Clients,
    /// What built-in admission reads of other kinds.
    pub(crate) admission_cache: crate::admission::builtin::Cache,
    /// The version acted as, the group-versions served and the feature gates.
    surface: std::sync::RwLock<Arc<crate::surface::Surface>>,
}

/// A check of the objects of one kind beyond their schema, as a built-in validating admission
/// step: the causes of refusal (none to admit).
pub type ObjectCheck = Arc<dyn Fn(&Value) -> Vec<Cause> + Send + Sync>;

/// What deciding how to delete reads; the whole object is decoded only to change it.
static DELETE_READS: std::sync::LazyLock<crate::objects::Projection> =
    std::sync::LazyLock::new(|| {
        let mut p = crate::objects::Projection::default();
        p.keep(["metadata"]);
        p.keep(["spec", "nodeName"]);
        p.keep(["spec", "terminationGracePeriodSeconds"]);
        p.keep(["spec", "finalizers"]);
        p.keep(["status", "phase"]);
        p
    });

const ACTIVE_NAMESPACE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

fn parse_body_object(r: &ResourceType, body: Value) -> ApiResult<Value> {
    match body {
        Value::Object(_) => Ok(body),
        other => Err(ApiError::bad_request(format!(
            "the object provided is unrecognized ({}): expected a {} object",
            match other {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                Value::Bool(_) => "bool",
                _ => "null",
            },
            r.kind
        ))),
    }
}

/// Refuses `apiVersion` or `kind` of another JSON type than string, as the Go decoder that
/// reads them first.
fn check_type_meta_types(obj: &Value) -> ApiResult<()> {
    for field in ["apiVersion", "kind"] {
        let go_name = match obj.get(field) {
            None | Some(Value::Null) | Some(Value::String(_)) => continue,
            Some(Value::Number(_)) => "number",
            Some(Value::Bool(_)) => "bool",
            Some(Value::Array(_)) => "array",
            Some(Value::Object(_)) => "object",
        };
        let mut summary = serde_json::to_string(obj).unwrap_or_default();
        if summary.len() > 30 {
            let mut end = 30;
            while !summary.is_char_boundary(end) {
                end -= 1;
            }
            summary.truncate(end);
            summary.push_str(" ...");
        }
        return Err(ApiError::bad_request(format!(
            "the object provided is unrecognized ({summary}): couldn't get version/kind; json parse error: json: cannot unmarshal {go_name} into Go struct field .{field} of type string"
        )));
    }
    Ok(())
}

fn check_type_meta(
    r: &ResourceType,
    obj: &mut Value,
    expected_kind: &str,
    expected_api: &str,
) -> ApiResult<()> {
    check_type_meta_types(obj)?;
    let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    if !api.is_empty() && api != expected_api {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api}) does not match the expected API version ({expected_api})"
        )));
    }
    if !kind.is_empty() && kind != expected_kind {
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{}\" cannot be handled as a {expected_kind}: no kind \"{kind}\" is registered for version \"{expected_api}\"",
            r.version
        )));
    }
    obj["apiVersion"] = json!(expected_api);
    obj["kind"] = json!(expected_kind);
    Ok(())
}

fn strip_server_fields(obj: &mut Value) {
    let meta = meta_mut(obj);
    for f in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "selfLink",
    ] {
        meta.remove(f);
    }
}

fn copy_meta(from: &Value, to: &mut Value, fields: &[&str]) {
    let src = from
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let meta = meta_mut(to);
    for f in fields {
        match src.get(*f) {
            Some(v) => {
                meta.insert((*f).to_string(), v.clone());
            }
            None => {
                meta.remove(*f);
            }
        }
    }
}

impl Registry {
    pub fn new(store: Arc<dyn Store>, openapi: Arc<openapi::OpenApi>) -> Self {
        Self {
            store,
            custom_types: Default::default(),
            custom_generation: Default::default(),
            openapi,
            namespace_terminating: std::sync::Mutex::new(None),
            active_namespaces: Default::default(),
            services: Default::default(),
            metrics: Default::default(),
            object_checks: Default::default(),
            admission: Default::default(),
            upstream: Default::default(),
            admission_cache: Default::default(),
            surface: Default::default(),
        }
    }

    /// The version acted as, the group-versions served and the feature gates.
    pub fn surface(&self) -> Arc<crate::surface::Surface> {
        self.surface.read().unwrap().clone()
    }

    /// Serves `surface` from now on.
    pub fn set_surface(&self, surface: crate::surface::Surface) {
        *self.surface.write().unwrap() = Arc::new(surface);
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Looks up a served type, built-in or custom.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&'static ResourceType> {
        if group == crate::resourcemetrics::GROUP {
            return self.serves_metrics().then(|| {
                crate::resourcemetrics::METRICS_TYPES
                    .iter()
                    .find(|r| r.version == version && r.plural == plural)
            })?;
        }
        if let Some(r) = resources::find(group, version, plural) {
            return self.surface.read().unwrap().serves(r).then_some(r);
        }
        self.custom_types
            .read()
            .unwrap()
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .copied()
    }

    /// Checks every created or updated object of `group` and `kind` with `check`.
    pub fn add_object_check(&self, group: &str, kind: &str, check: ObjectCheck) {
        self.object_checks
            .write()
            .unwrap()
            .push((group.to_string(), kind.to_string(), check));
    }

    fn object_check_causes(&self, r: &ResourceType, obj: &Value) -> Vec<Cause> {
        self.object_checks
            .read()
            .unwrap()
            .iter()
            .filter(|(g, k, _)| g == r.group && k == r.kind)
            .flat_map(|(_, _, check)| check(obj))
            .collect()
    }

    /// Every served type: built-ins first, then custom types.
    pub fn types(&self) -> Vec<&'static ResourceType> {
        let surface = self.surface();
        let mut all: Vec<&'static ResourceType> = resources::RESOURCES
            .iter()
            .filter(|r| surface.serves(r))
            .collect();
        all.extend(self.custom_types.read().unwrap().iter().copied());
        if self.serves_metrics() {
            all.extend(crate::resourcemetrics::METRICS_TYPES.iter());
        }
        all
    }

    /// Refuses a body with a value of the wrong JSON type (400, as kube-apiserver's decoder),
    /// then drops the fields a built-in kind does not know, as its decoder does: an error
    /// under `fieldValidation=Strict`, warnings under `Warn`, silently under `Ignore`. Custom
    /// resources are pruned by their schema later; here their unknown fields are only named.
    fn unknown_fields(
        &self,
        r: &ResourceType,
        obj: &mut Value,
        opts: &WriteOptions,
    ) -> ApiResult<Vec<String>> {
        if r.custom.is_none()
            && let Some(mismatch) = self.openapi.type_mismatch(r.group, r.version, r.kind, obj)
        {
            return Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: json: {mismatch}",
                r.kind, r.version, r.kind
            )));
        }
        let validation = opts.field_validation;
        let unknown = match r.custom {
            Some(_) if validation == FieldValidation::Ignore => Vec::new(),
            Some(custom) => match &custom.schema {
                Some(schema) => crate::crd::apply_schema(schema, &mut obj.clone()).unknown,
                None => Vec::new(),
            },
            None => self
                .openapi
                .prune_unknown_fields(r.group, r.version, r.kind, obj),
        };
        if validation == FieldValidation::Ignore
            || (unknown.is_empty() && opts.duplicate_fields.is_empty())
        {
            return Ok(Vec::new());
        }
        let rendered: Vec<String> = opts
            .duplicate_fields
            .iter()
            .map(|f| format!("duplicate field {f:?}"))
            .chain(unknown.iter().map(|f| format!("unknown field {f:?}")))
            .collect();
        match validation {
            FieldValidation::Strict => Err(ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
                r.kind,
                r.version,
                r.kind,
                rendered.join(", ")
            ))),
            _ => Ok(rendered),
        }
    }

    /// Whether the namespace is terminating; NotFound when it does not exist.
    async fn namespace_terminating(&self, namespace: &str) -> ApiResult<bool> {
        let fresh = self
            .active_namespaces
            .lock()
            .unwrap()
            .get(namespace)
            .is_some_and(|seen| seen.elapsed() < ACTIVE_NAMESPACE_TTL);
        if fresh {
            return Ok(false);
        }
        let ns = resources::find("", "v1", "namespaces").expect("namespaces are built in");
        let terminating = match self.store.get(&ns.key(None, namespace)).await? {
            // Most namespaces are not being deleted; only those need decoding.
            Some(kv) if !contains(&kv.value, b"deletionTimestamp") => false,
            Some(kv) => is_deleting(&decode(&kv.value)?),
            None => return Err(ApiError::namespace_not_found(namespace)),
        };
        let mut active = self.active_namespaces.lock().unwrap();
        if terminating {
            active.remove(namespace);
        } else {
            if active.len() > 10_000 {
                active.retain(|_, seen| seen.elapsed() < ACTIVE_NAMESPACE_TTL);
            }
            active.insert(namespace.to_string(), std::time::Instant::now());
        }
        Ok(terminating)
    }

    /// Reads one object.
    pub async fn get(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<Bytes> {
        if r.is_metrics() {
            return self.metrics_get(r, namespace, name);
        }
        if r.is_component_status() {
            return self.component_status_get(r, name);
        }
        match self.store.get(&r.key(namespace, name)).await? {
            Some(kv) => self.present_converted(r, kv.value).await,
            None => Err(ApiError::not_found(r, name)),
        }
    }

    /// Reads one object for a GET with a `resourceVersion` parameter: the latest state is
    /// never older than any revision the store has reached; a revision it has not reached is
    /// too new.
    pub async fn get_at_least(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) -> ApiResult<Bytes> {
        if let Some(rv) = objects::parse_resource_version(resource_version.unwrap_or(""))?
            && rv > self.store.latest_revision().await?
        {
            return Err(ApiError::too_new_resource_version());
        }
        self.get(r, namespace, name).await
    }

    async fn get_kv(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<(KeyValue, Value)> {
        let kv = self.get_stored(r, namespace, name).await?;
        let v = decode(&kv.value)?;
        Ok((kv, v))
    }

    /// The stored value of an object, or NotFound.
    async fn get_stored(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> ApiResult<KeyValue> {
        self.store
            .get(&r.key(namespace, name))
            .await?
            .ok_or_else(|| ApiError::not_found(r, name))
    }

    pub(crate) fn plan_list(&self, r: &ResourceType, opts: &ListOptions) -> ApiResult<ListPlan> {
        let labels = LabelSelector::parse(&opts.label_selector).map_err(ApiError::bad_request)?;
        let fields = FieldSelector::parse(&opts.field_selector).map_err(ApiError::bad_request)?;
        fields
            .check(r, &opts.label_selector, &opts.field_selector)
            .map_err(ApiError::bad_request)?;
        if !opts.resource_version_match.is_empty() {
            match opts.resource_version_match.as_str() {
                "NotOlderThan" | "Exact" => {}
                other => {
                    return Err(ApiError::invalid_options(
                        "ListOptions",
                        vec![Cause::not_supported(
                            "resourceVersionMatch",
                            &json!(other),
                            &["Exact", "NotOlderThan", ""],
                        )],
                    ));
                }
            }
            if opts.resource_version.is_empty() {
                return Err(ApiError::invalid_options(
                    "ListOptions",
                    vec![Cause::forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )],
                ));
            }
            if opts.resource_version_match == "Exact" && opts.resource_version == "0" {
                return Err(ApiError::invalid_options(
                    "ListOptions",
                    vec![Cause::forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                    )],
                ));
            }
            if !opts.continue_token.is_empty() {
                return Err(ApiError::invalid_options(
                    "ListOptions",
                    vec![Cause::forbidden(
                        "resourceVersionMatch",
                        "resourceVersionMatch is forbidden when continue is provided",
                    )],
                ));
            }
        }
        Ok(ListPlan { labels, fields })
    }

    pub(crate) fn list_prefix(r: &ResourceType, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if r.namespaced => r.key(Some(ns), ""),
            _ => r.key_prefix(),
        }
    }

    /// Lists objects, one page at a time.
    pub async fn list(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<ListPage> {
        let mut page = self.list_presented(r, namespace, opts).await?;
        if self.converts(r) {
            page.items = self.present_all(r, std::mem::take(&mut page.items)).await?;
        }
        Ok(page)
    }

    /// A list page, custom objects converted by a webhook still in their stored version.
    async fn list_presented(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<ListPage> {
        if r.is_metrics() {
            return self.metrics_list(r, namespace, opts);
        }
        if r.is_component_status() {
            return self.component_status_list(r, opts);
        }
        let plan = self.plan_list(r, opts)?;
        let prefix = Self::list_prefix(r, namespace);
        let rv = objects::parse_resource_version(&opts.resource_version)?;
        let (mut start_after, mut at): (Option<String>, Option<i64>) = (None, None);
        if !opts.continue_token.is_empty() {
            if rv.is_some_and(|v| v != 0) {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (tok_rv, start) = decode_continue(&opts.continue_token)?;
            at = Some(tok_rv);
            start_after = Some(format!("{prefix}{start}"));
        } else if let Some(v) = rv {
            let current = self.store.latest_revision().await?;
            let exact = opts.resource_version_match == "Exact"
                || (opts.resource_version_match.is_empty() && opts.limit > 0 && v != 0);
            if v > current {
                return Err(ApiError::too_new_resource_version());
            }
            if exact && v != 0 {
                at = Some(v);
            }
        }
        // Fast path: a field selector on one name reads one key.
        if let Some(name) = plan.fields.exact_name()
            && opts.continue_token.is_empty()
            && at.is_none()
        {
            let key = match namespace {
                Some(ns) if r.namespaced => r.key(Some(ns), name),
                _ if !r.namespaced => r.key(None, name),
                _ => String::new(),
            };
            if !key.is_empty() {
                let revision = self.store.current_revision();
                let mut items = Vec::new();
                if let Some(kv) = self.store.get(&key).await? {
                    let obj = plan.projection(r).decode(&kv.value)?;
                    if plan.matches(r, &obj) {
                        items.push(crate::crd::present(r, kv.value));
                    }
                }
                return Ok(ListPage {
                    items,
                    resource_version: revision,
                    continue_token: None,
                    remaining: None,
                });
            }
        }
        let filtering = !plan.labels.is_empty() || !plan.fields.is_empty();
        let projection = plan.projection(r);
        let mut items = Vec::new();
        let mut revision = at;
        let mut last_key: Option<String> = None;
        let mut more = false;
        let mut remaining = None;
        loop {
            let want = if opts.limit == 0 {
                0
            } else {
                opts.limit - items.len()
            };
            let chunk = if filtering && want > 0 {
                want.max(4096)
            } else {
                want
            };
            let counted = !opts.skip_remaining_count && !filtering;
            let page = if counted {
                self.store
                    .range(&prefix, start_after.as_deref(), chunk, revision)
                    .await
            } else {
                self.store
                    .range_page(&prefix, start_after.as_deref(), chunk, revision)
                    .await
            };
            let page = page
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if !opts.continue_token.is_empty() => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ),
                    other => other.into(),
                })?;
            revision = Some(page.revision);
            let n = page.kvs.len();
            for kv in page.kvs {
                if opts.limit > 0 && items.len() >= opts.limit {
                    more = true;
                    break;
                }
                last_key = Some(kv.key.to_string());
                if filtering {
                    let obj = projection.decode(&kv.value)?;
                    if !plan.matches(r, &obj) {
                        continue;
                    }
                }
                items.push(crate::crd::present(r, kv.value));
            }
            if more {
                break;
            }
            if page.remaining == 0 || n == 0 {
                break;
            }
            if opts.limit > 0 && items.len() >= opts.limit {
                more = true;
                if counted {
                    remaining = Some(page.remaining);
                }
                break;
            }
            start_after = last_key.clone();
        }
        let revision = revision.unwrap_or_else(|| self.store.current_revision());
        let continue_token = match (more, &last_key) {
            (true, Some(k)) => Some(encode_continue(revision, &k[prefix.len()..])),
            _ => None,
        };
        Ok(ListPage {
            items,
            resource_version: revision,
            continue_token,
            remaining,
        })
    }

    /// Creates an object. `namespace` is the namespace of the request path.
    pub async fn create(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let mut obj = parse_body_object(r, body)?;
        check_type_meta(r, &mut obj, r.kind, &r.api_version())?;
        let warnings = self.unknown_fields(r, &mut obj, opts)?;
        if r.namespaced {
            let ns = namespace.unwrap_or("");
            match meta_str(&obj, "namespace") {
                Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => {}
            }
            meta_mut(&mut obj).insert("namespace".into(), json!(ns));
        } else {
            meta_mut(&mut obj).remove("namespace");
        }
        self.prepare_create(r, &mut obj);
        self.record_fields(r, None, &mut obj, Part::Main, opts);
        if meta_str(&obj, "name").unwrap_or("").is_empty()
            && let Some(prefix) = meta_str(&obj, "generateName").map(String::from)
            && !prefix.is_empty()
        {
            meta_mut(&mut obj).insert("name".into(), json!(objects::generate_name(&prefix)));
            defaults::label_namespace_name(r, &mut obj);
        }
        let name = meta_str(&obj, "name").unwrap_or("").to_string();
        let mut warnings = warnings;
        let admission = crate::admission::Attributes {
            r,
            subresource: "",
            operation: crate::admission::Operation::Create,
            namespace: namespace.unwrap_or(""),
            name: &name,
            old: None,
            dry_run: opts.dry_run,
            user: opts.user.as_ref(),
            field_manager: opts.field_manager.as_deref(),
        };
        crate::admission::builtin::admit_create(self, r, &mut obj).await?;
        if self.admission.any() {
            let mutated = self.admission.mutate(self, &admission, &mut obj).await?;
            warnings.extend(mutated.warnings);
            defaults::apply(r, &mut obj);
        }
        objects::check_depth(r, &obj)?;
        let mut causes = validation::validate(r, &obj, None);
        causes.extend(admit_custom(r, &mut obj, None).await?);
        causes.extend(self.object_check_causes(r, &obj));
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, &name, causes));
        }
        if self.admission.any() {
            let validated = self
                .admission
                .validate(self, &admission, Some(&obj))
                .await?;
            warnings.extend(validated.warnings);
        }
        if r.namespaced && self.namespace_terminating(namespace.unwrap_or("")).await? {
            return Err(ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                r.qualified_name(),
                namespace.unwrap_or("")
            )));
        }
        // Dropped without a commit (dry run, failed write), the addresses are free again.
        let mut reservation = None;
        if is_service(r) {
            reservation = Some(self.allocate_service(r, &mut obj, None).await?);
        }
        if opts.dry_run {
            return Ok(Written {
                body: Bytes::from(serde_json::to_vec(&obj).expect("serialises")),
                created: true,
                warnings,
            });
        }
        if self.converts(r) {
            let storage = r.custom.map(|c| c.storage_version.as_str()).unwrap_or("");
            obj = self.convert_one(r, obj, storage).await?;
        }
        let generated = meta_str(&obj, "generateName")
            .filter(|p| !p.is_empty() && name.starts_with(*p))
            .map(String::from);
        let mut name = name;
        let mut attempts = 0;
        loop {
            let key = r.key(namespace, &name);
            let result = self
                .store
                .create(&key, &mut |rev| encode_with_revision(&mut obj, rev))
                .await;
            match result {
                Ok(kv) => {
                    if let Some(reservation) = reservation.take() {
                        reservation.commit();
                    }
                    self.after_admission_change(r).await;
                    if is_crd(r) {
                        return Ok(Written {
                            body: self.establish(&obj).await?,
                            created: true,
                            warnings,
                        });
                    }
                    return Ok(Written {
                        body: self.present_converted(r, kv.value).await?,
                        created: true,
                        warnings,
                    });
                }
                // A generated name that collides gets a new suffix, as kube-apiserver retries.
                Err(StoreError::AlreadyExists { .. }) => match &generated {
                    Some(prefix) if attempts < 8 => {
                        attempts += 1;
                        name = objects::generate_name(prefix);
                        meta_mut(&mut obj).insert("name".into(), json!(name));
                        defaults::label_namespace_name(r, &mut obj);
                    }
                    _ => return Err(ApiError::already_exists(r, &name)),
                },
                Err(other) => return Err(other.into()),
            }
        }
    }

    /// Gives a service being created or updated its cluster IP and node ports, held until the
    /// write commits the reservation.
    async fn allocate_service(
        &self,
        r: &ResourceType,
        service: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<crate::services::Reservation<'_>> {
        if old.is_none() {
            // A service that exists already is reported as such, not as holding its address.
            let name = meta_str(service, "name").unwrap_or("");
            let key = r.key(meta_str(service, "namespace"), name);
            if self.store.get(&key).await?.is_some() {
                return Err(ApiError::already_exists(r, name));
            }
        }
        let prefix = r.key_prefix();
        self.services.load(&self.store, &prefix, false).await?;
        if self.services.looks_taken(service, old) {
            // It may have been freed by a deletion this server did not see.
            self.services.load(&self.store, &prefix, true).await?;
        }
        self.services
            .allocate(service, old)
            .map_err(|causes| ApiError::invalid(r, meta_str(service, "name").unwrap_or(""), causes))
    }

    /// Fills server-owned metadata, defaults and the initial status of a new object.
    pub(crate) fn prepare_create(&self, r: &ResourceType, obj: &mut Value) {
        strip_server_fields(obj);
        {
            let meta = meta_mut(obj);
            meta.insert("uid".into(), json!(objects::new_uid()));
            meta.insert("creationTimestamp".into(), json!(objects::now_rfc3339()));
            if r.generation {
                meta.insert("generation".into(), json!(1));
            }
        }
        defaults::apply(r, obj);
        if r.has_subresource("status") || r.kind == "Namespace" {
            let requested = obj.get("status").cloned();
            match defaults::initial_status(r, requested.as_ref()) {
                Some(s) => obj["status"] = s,
                None => {
                    obj.as_object_mut()
                        .expect("objects are maps")
                        .remove("status");
                }
            }
        }
        if r.kind == "Pod" && r.group.is_empty() {
            let qos = defaults::pod_qos_class(obj);
            obj["status"]["qosClass"] = json!(qos);
        }
    }

    /// Turns a requested new state into the state to store, applying kube-apiserver's update
    /// rules for `part`. Returns None when nothing changes.
    async fn prepare_update(
        &self,
        r: &ResourceType,
        old: &Value,
        mut new: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Vec<String>)> {
        let name = meta_str(old, "name").unwrap_or("").to_string();
        check_type_meta(r, &mut new, r.kind, &r.api_version())?;
        if let Some(n) = meta_str(&new, "name")
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        if r.namespaced
            && let Some(ns) = meta_str(&new, "namespace")
            && !ns.is_empty()
            && Some(ns) != meta_str(old, "namespace")
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let mut next = match part {
            Part::Main => {
                let mut next = new;
                if r.has_subresource("status") || r.kind == "Namespace" {
                    match old.get("status") {
                        Some(s) => next["status"] = s.clone(),
                        None => {
                            next.as_object_mut().expect("map").remove("status");
                        }
                    }
                }
                next
            }
            Part::Status => {
                // The old object with the sent status. Status writers may still change labels
                // and annotations of some kinds: sent metadata is kept but for server-owned
                // fields (below). Sent fields equal to the old ones stay, so that a status
                // write copies only what it must.
                let mut next = new;
                let sent = next.as_object_mut().expect("map");
                sent.retain(|k, v| k == "status" || k == "metadata" || old.get(k) == Some(v));
                for (k, v) in old.as_object().into_iter().flatten() {
                    if k != "status" && !sent.contains_key(k) {
                        sent.insert(k.clone(), v.clone());
                    }
                }
                next
            }
            Part::Approval => {
                let mut next = old.clone();
                next["status"]["conditions"] = new
                    .at("/status/conditions")
                    .cloned()
                    .unwrap_or_else(|| json!([]));
                next
            }
            Part::Finalize => {
                let mut next = old.clone();
                next["spec"]["finalizers"] = new
                    .at("/spec/finalizers")
                    .cloned()
                    .unwrap_or_else(|| json!([]));
                next
            }
        };
        if r.kind == "CertificateSigningRequest" {
            crate::certificates::keep_decided(old, &mut next, part);
        }
        copy_meta(
            old,
            &mut next,
            &[
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ],
        );
        if r.kind == "Pod" && part == Part::Main {
            // nodeName is set by binding only.
            if let Some(node) = old.at("/spec/nodeName")
                && next.at("/spec/nodeName").is_none()
            {
                next["spec"]["nodeName"] = node.clone();
            }
        }
        defaults::apply(r, &mut next);
        let mut warnings = Vec::new();
        let admission = crate::admission::Attributes {
            r,
            subresource: part.subresource(),
            operation: crate::admission::Operation::Update,
            namespace: meta_str(old, "namespace").unwrap_or(""),
            name: &name,
            old: Some(old),
            dry_run: opts.dry_run,
            user: opts.user.as_ref(),
            field_manager: opts.field_manager.as_deref(),
        };
        let admitting = self.admission.any();
        if admitting {
            warnings = self
                .admission
                .mutate(self, &admission, &mut next)
                .await?
                .warnings;
            copy_meta(
                old,
                &mut next,
                &["uid", "creationTimestamp", "namespace", "name"],
            );
            defaults::apply(r, &mut next);
        }
        if is_deleting(old) {
            let before = finalizers(old);
            let added: Vec<String> = finalizers(&next)
                .into_iter()
                .filter(|f| !before.contains(f))
                .collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    r,
                    &name,
                    vec![Cause::forbidden(
                        "metadata.finalizers",
                        format!(
                            "no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                        ),
                    )],
                ));
            }
        }
        if r.generation && part == Part::Main && desired_state_changed(old, &next) {
            let g = old
                .at("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(&mut next).insert("generation".into(), json!(g + 1));
        }
        // Kinds with immutable specs compare against the old object defaulted as the new one
        // is, so that objects stored before a default existed stay writable.
        let defaulted_old;
        let before = if matches!(
            (r.group, r.kind),
            ("batch", "Job") | ("apps", "StatefulSet")
        ) {
            let mut copy = old.clone();
            defaults::apply(r, &mut copy);
            defaulted_old = copy;
            &defaulted_old
        } else {
            old
        };
        objects::check_depth(r, &next)?;
        let mut causes = validation::validate(r, &next, Some(before));
        causes.extend(admit_custom(r, &mut next, Some(old)).await?);
        causes.extend(self.object_check_causes(r, &next));
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, &name, causes));
        }
        if admitting {
            let validated = self
                .admission
                .validate(self, &admission, Some(&next))
                .await?;
            warnings.extend(validated.warnings);
        }
        Ok((next, warnings))
    }

    /// Reads the object, computes its next state and writes it, retrying on conflicts unless the
    /// caller pinned a resourceVersion. `compute` gets the current object and its revision.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn update_with(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        compute: &mut (dyn FnMut(Option<&Value>) -> ApiResult<Computed> + Send),
    ) -> ApiResult<Written> {
        let key = r.key(namespace, name);
        for _ in 0..32 {
            let current = self.store.get(&key).await?;
            let mut current_obj = current.as_ref().map(|kv| decode(&kv.value)).transpose()?;
            if self.converts(r)
                && let Some(stored) = current_obj.take()
            {
                current_obj = Some(self.convert_one(r, stored, r.version).await?);
            }
            let computed = compute(current_obj.as_ref())?;
            let (Some(kv), Some(old)) = (current, current_obj) else {
                // Create on update / apply.
                let Computed {
                    object, warnings, ..
                } = computed;
                let mut w = self.create(r, namespace, object, opts).await?;
                w.warnings.extend(warnings);
                return Ok(w);
            };
            let Computed {
                object: requested,
                precondition,
                warnings,
            } = computed;
            if let Some(rv) = precondition
                && rv != kv.mod_revision
            {
                return Err(ApiError::conflict(r, name));
            }
            let (mut next, admission_warnings) =
                self.prepare_update(r, &old, requested, part, opts).await?;
            let mut warnings = warnings;
            warnings.extend(admission_warnings);
            // Dropped without a commit (no change, dry run, failed write), the addresses are
            // free again.
            let mut reservation = None;
            if is_service(r) && part == Part::Main {
                reservation = Some(self.allocate_service(r, &mut next, Some(&old)).await?);
            }
            self.record_fields(r, Some(&old), &mut next, part, opts);
            meta_mut(&mut next).remove("resourceVersion");
            if same_but_resource_version(&next, &old) {
                return Ok(Written {
                    body: self.present_converted(r, kv.value).await?,
                    created: false,
                    warnings,
                });
            }
            if opts.dry_run {
                meta_mut(&mut next)
                    .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                return Ok(Written {
                    body: Bytes::from(serde_json::to_vec(&next).expect("serialises")),
                    created: false,
                    warnings,
                });
            }
            // An object being deleted whose last finalizer is gone goes away now.
            let grace_zero = next
                .at("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                == Some(0);
            let finished = is_deleting(&next) && finalizers(&next).is_empty() && grace_zero;
            if self.converts(r) {
                let storage = r.custom.map(|c| c.storage_version.as_str()).unwrap_or("");
                next = self.convert_one(r, next, storage).await?;
            }
            let mut encode = |rev| encode_with_revision(&mut next, rev);
            let result = if finished {
                self.store
                    .delete(&key, Some(kv.mod_revision), Some(&mut encode))
                    .await
            } else {
                self.store.update(&key, kv.mod_revision, &mut encode).await
            };
            match result {
                Ok(kv) => {
                    if let Some(reservation) = reservation.take() {
                        reservation.commit();
                    }
                    if !finished {
                        self.after_update(r, &old, &kv);
                    } else if is_service(r) {
                        self.services.release(&next);
                    }
                    self.after_admission_change(r).await;
                    return Ok(Written {
                        body: self.present_converted(r, kv.value).await?,
                        created: false,
                        warnings,
                    });
                }
                Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
                Err(StoreError::Conflict { .. }) => return Err(ApiError::conflict(r, name)),
                Err(StoreError::NotFound) => return Err(ApiError::not_found(r, name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(r, name))
    }

    fn after_update(&self, r: &ResourceType, old: &Value, new: &KeyValue) {
        if r.kind == "Namespace" && r.group.is_empty() && is_deleting(old) {
            self.notify_namespace(meta_str(old, "name").unwrap_or(""));
        }
        if is_crd(r)
            && let Ok(crd) = decode(&new.value)
        {
            self.register_crd(&crd);
        }
    }

    /// Serves a CRD's types and marks it Established. Returns the CRD as stored afterwards.
    async fn establish(&self, crd: &Value) -> ApiResult<Bytes> {
        self.register_crd(crd);
        let crd_type = resources::find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("built in");
        let name = meta_str(crd, "name").unwrap_or("").to_string();
        let status = crate::crd::established_status(crd);
        let mut compute = |current: Option<&Value>| -> ApiResult<Computed> {
            let Some(current) = current else {
                return Err(ApiError::not_found(crd_type, &name));
            };
            let mut object = current.clone();
            object["status"] = status.clone();
            Ok(Computed {
                object,
                precondition: None,
                warnings: Vec::new(),
            })
        };
        self.update_internal(crd_type, None, &name, &mut compute)
            .await
    }

    fn register_crd(&self, crd: &Value) {
        let name = meta_str(crd, "name").unwrap_or("").to_string();
        let types = crate::crd::resource_types(crd);
        let mut custom = self.custom_types.write().unwrap();
        custom.retain(|t| t.custom.is_none_or(|c| c.crd_name != name));
        for t in types {
            if resources::find(t.group, t.version, t.plural).is_none() {
                custom.push(Box::leak(Box::new(t)));
            }
        }
        self.custom_types_changed();
    }

    /// Serves the types of every stored CRD (at start).
    pub(crate) async fn load_custom_types(&self) -> ApiResult<()> {
        let crd_type = resources::find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .expect("built in");
        let page = self.list(crd_type, None, &ListOptions::default()).await?;
        for item in page.items {
            self.register_crd(&decode(&item)?);
        }
        Ok(())
    }

    /// Deletes every object of a CRD's types, then stops serving them.
    async fn remove_crd_content(&self, crd_name: &str) -> ApiResult<()> {
        let types: Vec<&'static ResourceType> = self
            .custom_types
            .read()
            .unwrap()
            .iter()
            .filter(|t| t.custom.is_some_and(|c| c.crd_name == crd_name))
            .copied()
            .collect();
        if let Some(t) = types.first() {
            let prefix = t.key_prefix();
            loop {
                let page = self.store.range(&prefix, None, 1000, None).await?;
                if page.kvs.is_empty() {
                    break;
                }
                for kv in page.kvs {
                    match self.store.delete(&kv.key, None, None).await {
                        Ok(_) | Err(StoreError::NotFound) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
        self.custom_types
            .write()
            .unwrap()
            .retain(|t| t.custom.is_none_or(|c| c.crd_name != crd_name));
        self.custom_types_changed();
        Ok(())
    }

    fn notify_namespace(&self, name: &str) {
        self.active_namespaces.lock().unwrap().remove(name);
        if let Some(hook) = self.namespace_terminating.lock().unwrap().as_ref() {
            hook(name.to_string());
        }
    }

    /// Replaces an object (PUT).
    pub async fn update(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        let mut obj = parse_body_object(r, body)?;
        check_type_meta_types(&obj)?;
        let warnings = self.unknown_fields(r, &mut obj, opts)?;
        let precondition =
            match meta_str(&obj, "resourceVersion") {
                Some(rv) if !rv.is_empty() => Some(rv.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("invalid resource version: {rv:?}"))
                })?),
                _ => None,
            };
        let allow_create = part == Part::Main
            && matches!(
                (r.group, r.plural),
                ("", "events")
                    | ("", "endpoints")
                    | ("coordination.k8s.io", "leases")
                    | ("events.k8s.io", "events")
            );
        let mut body = Some(obj);
        let mut compute = |current: Option<&Value>| -> ApiResult<Computed> {
            if current.is_none() && !allow_create {
                return Err(ApiError::not_found(r, name));
            }
            let object = body.clone().expect("body is kept for retries");
            Ok(Computed {
                object,
                precondition,
                warnings: warnings.clone(),
            })
        };
        let result = self
            .update_with(r, namespace, name, part, opts, &mut compute)
            .await;
        body.take();
        result
    }

    /// Patches an object (PATCH).
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: Value,
        part: Part,
        opts: &WriteOptions,
    ) -> ApiResult<Written> {
        if patch_type == PatchType::Apply && opts.field_manager.as_deref().unwrap_or("").is_empty()
        {
            return Err(ApiError::bad_request(
                "PATCH, application/apply-patch+yaml requires fieldManager to be set",
            ));
        }
        let write_opts = WriteOptions {
            applied: patch_type == PatchType::Apply,
            ..opts.clone()
        };
        let mut compute = |current: Option<&Value>| -> ApiResult<Computed> {
            let Some(current) = current else {
                if patch_type == PatchType::Apply {
                    let mut object = self.apply_patch(r, name, None, &patch, part, opts)?;
                    meta_mut(&mut object).insert("name".into(), json!(name));
                    if let Some(m) = object.as_object_mut() {
                        m.entry("apiVersion")
                            .or_insert_with(|| json!(r.api_version()));
                        m.entry("kind").or_insert_with(|| json!(r.kind));
                    }
                    let warnings = self.unknown_fields(r, &mut object, opts)?;
                    return Ok(Computed {
                        object,
                        precondition: None,
                        warnings,
                    });
                }
                return Err(ApiError::not_found(r, name));
            };
            let patched = match patch_type {
                PatchType::Json => patch::json_patch(current, &patch),
                PatchType::Merge => patch::merge_patch(current, &patch),
                PatchType::Strategic => patch::strategic_merge_patch(
                    current,
                    &patch,
                    self.openapi.kind_schema(r.group, r.version, r.kind),
                ),
                PatchType::Apply => {
                    Ok(self.apply_patch(r, name, Some(current), &patch, part, opts)?)
                }
            };
            let mut patched = patched?;
            let precondition = match meta_str(&patched, "resourceVersion") {
                Some(rv) if Some(rv) != meta_str(current, "resourceVersion") => {
                    Some(rv.parse::<i64>().map_err(|_| {
                        ApiError::bad_request(format!("invalid resource version: {rv:?}"))
                    })?)
                }
                _ => None,
            };
            let warnings = self.unknown_fields(r, &mut patched, opts)?;
            Ok(Computed {
                object: patched,
                precondition,
                warnings,
            })
        };
        self.update_with(r, namespace, name, part, &write_opts, &mut compute)
            .await
    }

    /// The manager of a write: `fieldManager`, else the User-Agent's program name.
    fn manager_name(opts: &WriteOptions) -> Option<String> {
        match (&opts.field_manager, &opts.user_agent) {
            (Some(m), _) if !m.is_empty() => Some(m.clone()),
            (_, Some(ua)) => Some(fieldmanager::manager_from_user_agent(ua)),
            _ => None,
        }
    }

    fn field_tracking(
        &self,
        r: &ResourceType,
        part: Part,
    ) -> (fieldmanager::Schema<'_>, fieldmanager::Tracked) {
        let kind = self.openapi.kind_schema(r.group, r.version, r.kind);
        let schema = match r.custom {
            Some(c) => fieldmanager::Schema::custom(c.schema.as_deref(), kind),
            None => fieldmanager::Schema::builtin(kind),
        };
        let tracked = match part {
            Part::Status => fieldmanager::Tracked::StatusOnly,
            _ if r.has_subresource("status") || r.kind == "Namespace" => {
                fieldmanager::Tracked::NoStatus
            }
            _ => fieldmanager::Tracked::All,
        };
        (schema, tracked)
    }

    /// Records a create, update or non-apply patch in the object's managedFields.
    fn record_fields(
        &self,
        r: &ResourceType,
        old: Option<&Value>,
        next: &mut Value,
        part: Part,
        opts: &WriteOptions,
    ) {
        if opts.applied || part == Part::Finalize {
            return;
        }
        let Some(name) = Self::manager_name(opts) else {
            // An unnamed writer changes no ownership; a body without managedFields keeps them.
            if let Some(mf) = old.and_then(|o| o.at("/metadata/managedFields"))
                && next.at("/metadata/managedFields").is_none()
                && next.get("metadata").is_some_and(Value::is_object)
            {
                next["metadata"]["managedFields"] = mf.clone();
            }
            return;
        };
        let (schema, tracked) = self.field_tracking(r, part);
        let api_version = r.api_version();
        let manager = fieldmanager::Manager {
            name: &name,
            api_version: &api_version,
            subresource: (part == Part::Status).then_some("status"),
        };
        fieldmanager::record_update(
            &schema,
            old,
            next,
            &manager,
            tracked,
            &objects::now_rfc3339(),
        );
    }

    /// Server-side apply of `config` to the current object (None: create).
    fn apply_patch(
        &self,
        r: &ResourceType,
        name: &str,
        current: Option<&Value>,
        config: &Value,
        part: Part,
        opts: &WriteOptions,
    ) -> ApiResult<Value> {
        let mut typed = parse_body_object(r, config.clone())?;
        check_type_meta(r, &mut typed, r.kind, &r.api_version())?;
        if let Some(n) = meta_str(config, "name")
            && !n.is_empty()
            && n != name
        {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        let manager_name = opts.field_manager.clone().unwrap_or_default();
        let (schema, tracked) = self.field_tracking(r, part);
        let api_version = r.api_version();
        let manager = fieldmanager::Manager {
            name: &manager_name,
            api_version: &api_version,
            subresource: (part == Part::Status).then_some("status"),
        };
        match fieldmanager::apply_from_kubectl(
            &schema,
            current,
            config,
            &manager,
            opts.force,
            tracked,
            &objects::now_rfc3339(),
        ) {
            Ok(mut object) => {
                if let Some(rv) = meta_str(config, "resourceVersion").filter(|v| !v.is_empty()) {
                    meta_mut(&mut object).insert("resourceVersion".into(), json!(rv));
                }
                if let Some(m) = object.as_object_mut() {
                    m.insert("apiVersion".into(), json!(api_version));
                    m.insert("kind".into(), json!(r.kind));
                }
                Ok(object)
            }
            Err(conflicts) => {
                let causes: Vec<Value> = conflicts
                    .iter()
                    .map(|c| {
                        json!({
                            "reason": "FieldManagerConflict",
                            "message": format!("conflict with {}", c.manager),
                            "field": c.field,
                        })
                    })
                    .collect();
                let mut e =
                    ApiError::new(409, "Conflict", fieldmanager::conflict_message(&conflicts));
                e.details = Some(json!({ "causes": causes }));
                Err(e)
            }
        }
    }

    /// Deletes an object, honouring finalizers and graceful deletion. Returns the body and the
    /// HTTP status (200 when gone or marked for deletion).
    pub async fn delete(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Bytes> {
        opts.check()?;
        if self.admission.any() {
            let old = decode(&self.get_stored(r, namespace, name).await?.value)?;
            let admission = crate::admission::Attributes {
                r,
                subresource: "",
                operation: crate::admission::Operation::Delete,
                namespace: namespace.unwrap_or(""),
                name,
                old: Some(&old),
                dry_run: opts.dry_run,
                user: opts.user.as_ref(),
                field_manager: None,
            };
            self.admission.admit_delete(self, &admission).await?;
        }
        let deleted = self.delete_unadmitted(r, namespace, name, opts).await?;
        self.after_admission_change(r).await;
        self.present_converted(r, deleted).await
    }

    /// Reloads the admission webhooks after a write to their configuration, so the writer's
    /// next request already meets them.
    async fn after_admission_change(&self, r: &ResourceType) {
        if matches!(
            r.group,
            "scheduling.k8s.io" | "storage.k8s.io" | "networking.k8s.io"
        ) {
            self.admission_cache.invalidate(r.plural);
        }
        if r.group == crate::admission::GROUP {
            self.admission.reload(self).await;
        }
    }

    async fn delete_unadmitted(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<Bytes> {
        let key = r.key(namespace, name);
        for _ in 0..32 {
            let kv = self.get_stored(r, namespace, name).await?;
            let mut obj = DELETE_READS.decode(&kv.value)?;
            let mut whole = false;
            if let Some(uid) = &opts.precondition_uid
                && Some(uid.as_str()) != meta_str(&obj, "uid")
            {
                return Err(ApiError::conflict_message(
                    r,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&obj, "uid").unwrap_or("")
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_resource_version
                && rv != &kv.mod_revision.to_string()
            {
                return Err(ApiError::conflict_message(
                    r,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            let is_namespace = r.kind == "Namespace" && r.group.is_empty();
            if is_namespace && resources::SYSTEM_NAMESPACES[..3].contains(&name) {
                return Err(ApiError::forbidden(format!(
                    "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
                )));
            }
            let grace = self.grace_period(r, &obj, opts);
            // Foreground and Orphan deletion hand the object to the garbage collector through
            // a finalizer, as kube-apiserver does, except for Events: their strategy says
            // garbage collection is unsupported, and the collector does not follow them.
            let collected = !(r.plural == "events" && matches!(r.group, "" | "events.k8s.io"));
            let policy_finalizer = match opts.propagation_policy.as_deref() {
                Some("Foreground") if collected => Some("foregroundDeletion"),
                Some("Orphan") if collected => Some("orphan"),
                _ => None,
            };
            if let Some(f) = policy_finalizer
                && !is_deleting(&obj)
                && !finalizers(&obj).iter().any(|x| x == f)
            {
                obj = decode(&kv.value)?;
                whole = true;
                let meta = meta_mut(&mut obj);
                let list = meta.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(items) = list.as_array_mut() {
                    items.push(json!(f));
                }
            }
            let pending_finalizers = !finalizers(&obj).is_empty();
            let namespace_pending = is_namespace
                && obj
                    .at("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty());
            let graceful = grace > 0;
            if !(pending_finalizers || graceful || namespace_pending) {
                if opts.dry_run {
                    return Ok(kv.value);
                }
                if is_crd(r) {
                    self.remove_crd_content(name).await?;
                }
                // The tombstone is the object at the deletion's revision.
                let mut tombstone = |rev| {
                    (rev != store::UNKNOWN_REVISION)
                        .then(|| objects::replace_resource_version(&kv.value, kv.mod_revision, rev))
                        .flatten()
                        .unwrap_or_else(|| match decode(&kv.value) {
                            Ok(mut whole) => encode_with_revision(&mut whole, rev),
                            Err(_) => kv.value.clone(),
                        })
                };
                let result = self
                    .store
                    .delete(&key, Some(kv.mod_revision), Some(&mut tombstone))
                    .await;
                match result {
                    Ok(_) => {
                        if is_service(r)
                            && let Ok(service) = decode(&kv.value)
                        {
                            self.services.release(&service);
                        }
                        return Ok(kv.value);
                    }
                    Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            // Two-phase deletion: mark the object and let its finalizers (or the kubelet, for
            // graceful pods) finish.
            let already = is_deleting(&obj);
            let current_grace = obj
                .at("/metadata/deletionGracePeriodSeconds")
                .and_then(Value::as_i64);
            if already && current_grace.is_some_and(|g| g <= grace) {
                if is_namespace {
                    self.notify_namespace(name);
                }
                return Ok(kv.value);
            }
            if !whole {
                obj = decode(&kv.value)?;
            }
            {
                let meta = meta_mut(&mut obj);
                meta.insert(
                    "deletionTimestamp".into(),
                    json!(objects::timestamp_after(grace)),
                );
                meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
                if r.generation && !already {
                    let g = meta.get("generation").and_then(Value::as_i64).unwrap_or(0);
                    meta.insert("generation".into(), json!(g + 1));
                }
            }
            if is_namespace {
                obj["status"]["phase"] = json!("Terminating");
            }
            if opts.dry_run {
                return Ok(Bytes::from(serde_json::to_vec(&obj).expect("serialises")));
            }
            let result = self
                .store
                .update(&key, kv.mod_revision, &mut |rev| {
                    encode_with_revision(&mut obj, rev)
                })
                .await;
            match result {
                Ok(kv) => {
                    if is_namespace {
                        self.notify_namespace(name);
                    }
                    return Ok(kv.value);
                }
                Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(r, name))
    }

    fn grace_period(&self, r: &ResourceType, obj: &Value, opts: &DeleteOptions) -> i64 {
        if !(r.kind == "Pod" && r.group.is_empty()) {
            return 0;
        }
        // Pods that never reached a node, or are finished, go at once.
        let on_node = obj
            .at("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = obj
            .at("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !on_node || phase == "Succeeded" || phase == "Failed" {
            return 0;
        }
        let grace = opts.grace_period_seconds.unwrap_or_else(|| {
            obj.at("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(30)
        });
        grace.max(0)
    }

    /// Deletes every object a list would return.
    pub async fn delete_collection(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<ListPage> {
        let mut all = ListOptions {
            limit: 0,
            continue_token: String::new(),
            ..list.clone()
        };
        all.resource_version.clear();
        all.resource_version_match.clear();
        let page = self.list(r, namespace, &all).await?;
        let mut deleted = Vec::new();
        for item in page.items {
            let obj = decode(&item)?;
            let name = meta_str(&obj, "name").unwrap_or("").to_string();
            let ns = meta_str(&obj, "namespace").map(String::from);
            match self
                .delete(r, ns.as_deref().or(namespace), &name, opts)
                .await
            {
                Ok(body) => deleted.push(body),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(ListPage {
            items: deleted,
            resource_version: self.store.current_revision(),
            continue_token: None,
            remaining: None,
        })
    }

    /// The `autoscaling/v1 Scale` view of an object.
    pub fn scale_of(&self, r: &ResourceType, obj: &Value) -> Value {
        let (spec_ptr, status_ptr) = scale_pointers(r);
        let selector = match r.custom {
            Some(c) => c
                .label_selector_path
                .as_ref()
                .and_then(|p| obj.at(&crate::crd::json_path_pointer(p)))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            None => obj
                .at("/spec/selector")
                .map(|s| {
                    if r.group.is_empty() {
                        crate::table::map_selector(Some(s))
                    } else {
                        crate::table::selector_string(Some(s))
                    }
                })
                .filter(|s| s != "<none>")
                .unwrap_or_default(),
        };
        let meta = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let mut scale_meta = json!({});
        for f in [
            "name",
            "namespace",
            "uid",
            "resourceVersion",
            "creationTimestamp",
        ] {
            if let Some(v) = meta.get(f) {
                scale_meta[f] = v.clone();
            }
        }
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": scale_meta,
            "spec": {"replicas": obj.at(&spec_ptr).and_then(Value::as_i64).unwrap_or(0)},
            "status": {
                "replicas": obj.at(&status_ptr).and_then(Value::as_i64).unwrap_or(0),
                "selector": selector,
            },
        })
    }

    /// Writes `/scale`: the new Scale is computed from the current one by `compute`.
    pub async fn update_scale(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        opts: &WriteOptions,
        compute: &mut (dyn FnMut(&Value) -> ApiResult<Value> + Send),
    ) -> ApiResult<Bytes> {
        let mut compute_obj = |current: Option<&Value>| -> ApiResult<Computed> {
            let Some(current) = current else {
                return Err(ApiError::not_found(r, name));
            };
            let scale = self.scale_of(r, current);
            let new_scale = compute(&scale)?;
            let replicas = new_scale.at("/spec/replicas").cloned().unwrap_or(json!(0));
            if replicas.as_i64().is_none_or(|n| n < 0) {
                return Err(ApiError::invalid(
                    r,
                    name,
                    vec![Cause::invalid(
                        "spec.replicas",
                        &replicas,
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            let precondition = match new_scale
                .at("/metadata/resourceVersion")
                .and_then(Value::as_str)
            {
                Some(rv) if !rv.is_empty() => rv.parse::<i64>().ok(),
                _ => None,
            };
            let mut object = current.clone();
            set_pointer(&mut object, &scale_pointers(r).0, replicas);
            Ok(Computed {
                object,
                precondition,
                warnings: Vec::new(),
            })
        };
        let w = self
            .update_with(r, namespace, name, Part::Main, opts, &mut compute_obj)
            .await?;
        let obj = decode(&w.body)?;
        Ok(Bytes::from(
            serde_json::to_vec(&self.scale_of(r, &obj)).expect("serialises"),
        ))
    }

    /// Binds a pod to a node (`pods/binding`, or `bindings`).
    pub async fn bind(&self, namespace: &str, pod_name: &str, binding: &Value) -> ApiResult<()> {
        let pods = resources::find("", "v1", "pods").expect("pods are built in");
        let node = binding
            .at("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if node.is_empty() {
            return Err(ApiError::invalid(
                pods,
                pod_name,
                vec![Cause::required("target.name")],
            ));
        }
        let annotations = binding.at("/metadata/annotations").cloned();
        let mut compute = |current: Option<&Value>| -> ApiResult<Computed> {
            let Some(current) = current else {
                return Err(ApiError::not_found(pods, pod_name));
            };
            if is_deleting(current) {
                return Err(ApiError::conflict_message(
                    pods,
                    pod_name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            if let Some(existing) = current.at("/spec/nodeName").and_then(Value::as_str)
                && !existing.is_empty()
            {
                return Err(ApiError::conflict_message(
                    pods,
                    pod_name,
                    &format!("pod {pod_name} is already assigned to node {existing:?}"),
                ));
            }
            let mut object = current.clone();
            object["spec"]["nodeName"] = json!(node);
            if let Some(Value::Object(a)) = &annotations {
                let meta = meta_mut(&mut object);
                let target = meta.entry("annotations").or_insert_with(|| json!({}));
                if let Some(t) = target.as_object_mut() {
                    for (k, v) in a {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
            let conditions = object["status"]
                .as_object_mut()
                .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
            if let Some(Value::Array(conds)) = conditions {
                conds.retain(|c| c.get("type") != Some(&json!("PodScheduled")));
                conds.push(json!({
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": null,
                    "lastTransitionTime": objects::now_rfc3339(),
                }));
            }
            Ok(Computed {
                object,
                precondition: None,
                warnings: Vec::new(),
            })
        };
        // Binding changes spec.nodeName and status together, which no public part allows.
        self.update_internal(pods, Some(namespace), pod_name, &mut compute)
            .await?;
        Ok(())
    }

    /// An update that bypasses the main/status split (used by binding).
    async fn update_internal(
        &self,
        r: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        compute: &mut (dyn FnMut(Option<&Value>) -> ApiResult<Computed> + Send),
    ) -> ApiResult<Bytes> {
        let key = r.key(namespace, name);
        for _ in 0..32 {
            let Some(kv) = self.store.get(&key).await? else {
                return Err(ApiError::not_found(r, name));
            };
            let old = decode(&kv.value)?;
            let Computed { mut object, .. } = compute(Some(&old))?;
            let result = self
                .store
                .update(&key, kv.mod_revision, &mut |rev| {
                    encode_with_revision(&mut object, rev)
                })
                .await;
            match result {
                Ok(kv) => return Ok(kv.value),
                Err(StoreError::Conflict { .. }) => continue,
                Err(StoreError::NotFound) => return Err(ApiError::not_found(r, name)),
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApiError::conflict(r, name))
    }

    /// Removes a finished namespace, or says what still holds it.
    pub(crate) async fn finish_namespace(&self, name: &str) -> ApiResult<bool> {
        let ns_type = resources::find("", "v1", "namespaces").expect("built in");
        let mut remaining = 0usize;
        for r in self
            .types()
            .into_iter()
            .filter(|r| r.namespaced && r.is_stored())
        {
            let page = self.list(r, Some(name), &ListOptions::default()).await?;
            for item in page.items {
                remaining += 1;
                let obj = decode(&item)?;
                if is_deleting(&obj) && r.kind != "Pod" {
                    continue;
                }
                let obj_name = meta_str(&obj, "name").unwrap_or("").to_string();
                let opts = DeleteOptions {
                    grace_period_seconds: (r.kind == "Pod" && is_deleting(&obj)).then_some(0),
                    ..DeleteOptions::default()
                };
                match self.delete(r, Some(name), &obj_name, &opts).await {
                    Ok(_) => {}
                    Err(e) if e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(namespace = name, object = obj_name, error = %e.message, "namespace cleanup")
                    }
                }
            }
        }
        if remaining > 0 {
            // Whatever was deleted outright is gone; check again on the next round.
            let mut left = 0;
            for r in self
                .types()
                .into_iter()
                .filter(|r| r.namespaced && r.is_stored())
            {
                left += self.store.count(&r.key(Some(name), "")).await?;
            }
            if left > 0 {
                return Ok(false);
            }
        }
        let mut compute = |current: Option<&Value>| -> ApiResult<Computed> {
            let Some(current) = current else {
                return Err(ApiError::not_found(ns_type, name));
            };
            let mut object = current.clone();
            object["spec"]["finalizers"] = json!([]);
            Ok(Computed {
                object,
                precondition: None,
                warnings: Vec::new(),
            })
        };
        match self
            .update_with(
                ns_type,
                None,
                name,
                Part::Finalize,
                &WriteOptions::default(),
                &mut compute,
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.code == 404 => return Ok(true),
            Err(e) => return Err(e),
        }
        // With no finalizers left the namespace itself can go.
        let (kv, obj) = match self.get_kv(ns_type, None, name).await {
            Ok(x) => x,
            Err(e) if e.code == 404 => return Ok(true),
            Err(e) => return Err(e),
        };
        if finalizers(&obj).is_empty() {
            let mut obj = obj;
            match self
                .store
                .delete(
                    &ns_type.key(None, name),
                    Some(kv.mod_revision),
                    Some(&mut |rev| encode_with_revision(&mut obj, rev)),
                )
                .await
            {
                Ok(_) | Err(StoreError::NotFound) => return Ok(true),
                Err(StoreError::Conflict { .. }) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(false)
    }
}

/// What an update computes from the current object.
pub struct Computed {
    pub object: Value,
    /// The resourceVersion the client required, if any.
    pub precondition: Option<i64>,
    pub warnings: Vec<String>,
}

/// JSON pointers of the desired and observed replica counts behind `/scale`.
fn scale_pointers(r: &ResourceType) -> (String, String) {
    match r.custom {
        Some(c) => (
            c.spec_replicas_path
                .as_deref()
                .map(crate::crd::json_path_pointer)
                .unwrap_or_else(|| "/spec/replicas".into()),
            c.status_replicas_path
                .as_deref()
                .map(crate::crd::json_path_pointer)
                .unwrap_or_else(|| "/status/replicas".into()),
        ),
        None => ("/spec/replicas".into(), "/status/replicas".into()),
    }
}

/// Sets the value at a JSON pointer, creating objects on the way.
fn set_pointer(obj: &mut Value, pointer: &str, value: Value) {
    let mut cur = obj;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let map = cur.as_object_mut().expect("just made an object");
        if i == parts.len() - 1 {
            map.insert((*part).to_string(), value);
            return;
        }
        cur = map.entry((*part).to_string()).or_insert_with(|| json!({}));
    }
}

fn is_crd(r: &ResourceType) -> bool {
    r.group == "apiextensions.k8s.io" && r.plural == "customresourcedefinitions"
}

/// Prunes, defaults and validates a custom object against its CRD schema, then checks its
/// validation rules against the object and, on updates, the stored one.
///
/// The rules run on a blocking thread: however long they take, the async workers keep serving
/// other requests (and no lock is held meanwhile).
async fn admit_custom(
    r: &ResourceType,
    obj: &mut Value,
    old: Option<&Value>,
) -> ApiResult<Vec<Cause>> {
    let Some(custom) = r.custom else {
        return Ok(Vec::new());
    };
    let Some(schema) = custom.schema.as_ref() else {
        return Ok(Vec::new());
    };
    let causes = crate::crd::apply_schema(schema, obj).causes;
    if !causes.is_empty() || custom.rules.is_none() {
        return Ok(causes);
    }
    let (obj, old) = (obj.clone(), old.cloned());
    tokio::task::spawn_blocking(move || crate::crd::check_rules(custom, &obj, old.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("evaluating validation rules: {e}")))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

fn encode_continue(revision: i64, start_after: &str) -> String {
    use base64::Engine;
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start_after});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(i64, String)> {
    use base64::Engine;
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") || start.contains("..") {
        return Err(bad());
    }
    Ok((rv, start.to_string()))
}

fn is_service(r: &ResourceType) -> bool {
    r.group.is_empty() && r.kind == "Service"
}
