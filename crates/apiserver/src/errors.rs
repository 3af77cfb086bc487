//! API errors as `meta/v1 Status` objects with kube-apiserver's reasons, codes and messages.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::resources::ResourceType;

/// One field problem of an `Invalid` error.
#[derive(Debug, Clone)]
pub struct Cause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Cause {
    pub fn required(field: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueRequired",
            message: "Required value".into(),
            field: field.into(),
        }
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl AsRef<str>) -> Self {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        Cause {
            reason: "FieldValueInvalid",
            message: format!("Invalid value: {shown}: {}", detail.as_ref()),
            field: field.into(),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Cause {
            reason: "FieldValueForbidden",
            message: format!("Forbidden: {}", detail.into()),
            field: field.into(),
        }
    }

    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[&str]) -> Self {
        let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        Cause {
            reason: "FieldValueNotSupported",
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
            field: field.into(),
        }
    }

    pub fn duplicate(field: impl Into<String>, value: &Value) -> Self {
        Cause {
            reason: "FieldValueDuplicate",
            message: format!("Duplicate value: {value}"),
            field: field.into(),
        }
    }

    /// The cause as kube-apiserver renders it inside a message: `field: message`.
    pub fn render(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// An error answered as a `Status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    /// 404 for a path that names no resource.
    pub fn not_found_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn not_found(r: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", r.qualified_name()),
        )
        .with_details(details(r, name))
    }

    pub fn namespace_not_found(namespace: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("namespaces \"{namespace}\" not found"),
        )
        .with_details(json!({"name": namespace, "kind": "namespaces"}))
    }

    pub fn already_exists(r: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", r.qualified_name()),
        )
        .with_details(details(r, name))
    }

    pub fn conflict(r: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                r.qualified_name()
            ),
        )
        .with_details(details(r, name))
    }

    pub fn conflict_message(r: &ResourceType, name: &str, detail: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {detail}",
                r.qualified_name()
            ),
        )
        .with_details(details(r, name))
    }

    pub fn invalid(r: &ResourceType, name: &str, causes: Vec<Cause>) -> Self {
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        // The message names the group kind (`Deployment.apps`), the details the bare kind.
        let qualified_kind = if r.group.is_empty() {
            r.kind.to_string()
        } else {
            format!("{}.{}", r.kind, r.group)
        };
        let message = if rendered.len() == 1 {
            format!("{qualified_kind} \"{name}\" is invalid: {}", rendered[0])
        } else {
            format!(
                "{qualified_kind} \"{name}\" is invalid: [{}]",
                rendered.join(", ")
            )
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        let mut d = json!({"name": name, "kind": r.kind, "causes": causes});
        if !r.group.is_empty() {
            d["group"] = json!(r.group);
        }
        Self::new(422, "Invalid", message).with_details(d)
    }

    /// 422 for a bad query parameter, as kube-apiserver reports list/watch option errors.
    pub fn invalid_options(kind: &str, causes: Vec<Cause>) -> Self {
        let rendered: Vec<String> = causes.iter().map(Cause::render).collect();
        let message = if rendered.len() == 1 {
            format!("{kind} \"\" is invalid: {}", rendered[0])
        } else {
            format!("{kind} \"\" is invalid: [{}]", rendered.join(", "))
        };
        let causes: Vec<Value> = causes
            .iter()
            .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
            .collect();
        Self::new(422, "Invalid", message).with_details(json!({"kind": kind, "causes": causes}))
    }

    pub fn method_not_allowed(verb: &str, r: Option<&ResourceType>) -> Self {
        let _ = r;
        Self::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb})"),
        )
        .with_details(json!({}))
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type:?})"
            ),
        )
    }

    /// A strategic merge patch sent for a custom resource, which has no type to carry patch
    /// strategies.
    pub fn strategic_patch_of_custom_resource() -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: \
             application/json-patch+json, application/merge-patch+json, \
             application/apply-patch+yaml",
        )
    }

    pub fn not_acceptable() -> Self {
        Self::new(
            406,
            "NotAcceptable",
            "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
        )
    }

    pub fn too_large() -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            "Request entity too large: limit is 3145728",
        )
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Gone", message)
    }

    pub fn too_new_resource_version() -> Self {
        let mut e = Self::new(504, "Timeout", "Too large resource version")
            .with_details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}));
        e.retry_after = Some(1);
        e
    }

    /// A `resourceVersion` query parameter that is not a revision. kube-apiserver's storage
    /// layer refuses it with an error that has no API status, so clients get a 500 with the
    /// parser's message and no reason.
    pub fn unparsable_resource_version(rv: &str) -> Self {
        let why = if !rv.is_empty() && rv.bytes().all(|b| b.is_ascii_digit()) {
            "value out of range"
        } else {
            "invalid syntax"
        };
        Self::new(
            500,
            "",
            format!(
                "resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: {why}"
            ),
        )
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty() {
            // kube-apiserver's answer to an error it has no reason for.
            status.as_object_mut().expect("a map").remove("reason");
        }
        if let Some(d) = &self.details {
            status["details"] = d.clone();
        }
        status
    }
}

fn details(r: &ResourceType, name: &str) -> Value {
    let mut d = json!({"name": name, "kind": r.plural});
    if !r.group.is_empty() {
        d["group"] = json!(r.group);
    }
    d
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_status()).unwrap_or_default();
        let mut resp = (
            StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

impl From<crate::patch::PatchError> for ApiError {
    fn from(err: crate::patch::PatchError) -> Self {
        use crate::patch::PatchError;
        match err {
            PatchError::Malformed(m) => ApiError::bad_request(m),
            PatchError::Invalid(m) => ApiError::new(422, "Invalid", m),
            PatchError::TooLarge(m) => ApiError::new(413, "RequestEntityTooLarge", m),
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(err: store::Error) -> Self {
        match err {
            store::Error::Compacted {
                requested,
                compacted,
            } => ApiError::expired(format!(
                "The resourceVersion for the provided list is too old. ({requested} < {compacted})"
            )),
            store::Error::FutureRevision { .. } => ApiError::too_new_resource_version(),
            store::Error::TooLarge { .. } => ApiError::too_large(),
            other => ApiError::internal(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_names_the_group_kind_in_the_message_and_the_kind_in_the_details() {
        let deployments = crate::resources::find("apps", "v1", "deployments").expect("served");
        let err = ApiError::invalid(deployments, "web", vec![Cause::required("spec.selector")]);
        assert_eq!(
            err.message,
            "Deployment.apps \"web\" is invalid: spec.selector: Required value"
        );
        let details = err.details.expect("details");
        assert_eq!(details["kind"], "Deployment");
        assert_eq!(details["group"], "apps");
        let pods = crate::resources::find("", "v1", "pods").expect("served");
        let err = ApiError::invalid(pods, "p", vec![Cause::required("spec.containers")]);
        assert!(
            err.message.starts_with("Pod \"p\" is invalid"),
            "{}",
            err.message
        );
    }
}
