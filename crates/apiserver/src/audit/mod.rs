//! Auditing (`--audit-policy-file`, `--audit-log-path`): each request the policy selects is
//! written as `audit.k8s.io/v1` `Event`s, one JSON object per line, as kube-apiserver's log
//! backend writes them: `RequestReceived`, `ResponseStarted` (long-running requests) and
//! `ResponseComplete`, with the request and response objects at the levels that include them.
//!
//! [`Record`] follows one request through [`crate::http::handle`]; [`sink::Sink`] writes.

pub mod policy;
pub mod sink;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderValue, Response, header, request::Parts};
use serde::Serialize;
use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::rbac::Attributes;
pub use policy::{Level, Policy, Stage};

/// Largest response body kept for `responseObject`; bigger ones are logged without it.
const MAX_RESPONSE_OBJECT: usize = 16 * 1024 * 1024;

/// The policy and where its events go.
pub struct Auditor {
    policy: Policy,
    sink: sink::Sink,
}

impl Auditor {
    /// Reads the policy file and opens the log (`-` for stdout).
    pub fn open(policy_file: &std::path::Path, log_path: &str) -> anyhow::Result<Arc<Self>> {
        use anyhow::Context;
        let text = std::fs::read_to_string(policy_file)
            .with_context(|| format!("read audit policy {}", policy_file.display()))?;
        let policy = Policy::parse(&text)
            .map_err(|e| anyhow::anyhow!("audit policy {}: {e}", policy_file.display()))?;
        let sink =
            sink::Sink::open(log_path).with_context(|| format!("open audit log {log_path}"))?;
        Ok(Arc::new(Self { policy, sink }))
    }

    /// Events dropped because the log writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.sink.dropped()
    }
}

/// What authentication and authorization learned of a request.
#[derive(Debug, Default)]
pub struct AuthFacts {
    pub requester: Option<UserInfo>,
    pub impersonated: Option<UserInfo>,
    /// Allowed, and the reason.
    pub decision: Option<(bool, String)>,
}

#[derive(Serialize)]
struct User<'a> {
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    uid: &'a str,
    groups: &'a [String],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extra: &'a BTreeMap<String, Vec<String>>,
}

impl<'a> User<'a> {
    fn of(u: &'a UserInfo) -> Self {
        Self {
            username: &u.name,
            uid: &u.uid,
            groups: &u.groups,
            extra: &u.extra,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    resource: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    namespace: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_group: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    api_version: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    subresource: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    kind: &'static str,
    api_version: &'static str,
    level: Level,
    #[serde(rename = "auditID")]
    audit_id: &'a str,
    stage: Stage,
    #[serde(rename = "requestURI")]
    request_uri: &'a str,
    verb: &'a str,
    user: User<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    impersonated_user: Option<User<'a>>,
    #[serde(rename = "sourceIPs")]
    source_ips: &'a [String],
    #[serde(skip_serializing_if = "str::is_empty")]
    user_agent: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    object_ref: Option<ObjectRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_status: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_object: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_object: Option<&'a Value>,
    request_received_timestamp: &'a str,
    stage_timestamp: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<&'static str, String>,
}

/// `2006-01-02T15:04:05.000000Z`, as audit timestamps are written.
fn micro_time() -> String {
    format!("{:.6}", jiff::Timestamp::now())
}

/// Long-running requests: their response starts long before it completes.
fn long_running(a: &Attributes) -> bool {
    a.verb == "watch"
        || a.verb == "proxy"
        || matches!(
            a.subresource.as_str(),
            "log" | "exec" | "attach" | "portforward" | "proxy"
        )
}

/// One request being audited, from its arrival.
pub struct Record {
    auditor: Arc<Auditor>,
    pub id: String,
    received: String,
    uri: String,
    source_ips: Vec<String>,
    user_agent: String,
    pub facts: AuthFacts,
    /// Set once the policy decided: the attributes it decided on and its decision.
    decided: Option<(Attributes, policy::Decision)>,
    request_object: Option<Value>,
    response_status: Option<Value>,
    annotations: BTreeMap<&'static str, String>,
}

impl Record {
    /// Starts the record of a request as it arrives.
    pub fn begin(auditor: &Arc<Auditor>, parts: &Parts, remote: Option<std::net::IpAddr>) -> Self {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let mut source_ips: Vec<String> = header("x-forwarded-for")
            .split(',')
            .map(str::trim)
            .filter(|s| s.parse::<std::net::IpAddr>().is_ok())
            .map(String::from)
            .collect();
        let real = header("x-real-ip");
        if real.parse::<std::net::IpAddr>().is_ok() && !source_ips.contains(&real) {
            source_ips.push(real);
        }
        if let Some(ip) = remote.map(|ip| ip.to_string())
            && !source_ips.contains(&ip)
        {
            source_ips.push(ip);
        }
        let id = Some(header("audit-id"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Self {
            auditor: auditor.clone(),
            id,
            received: micro_time(),
            uri: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_string(), |p| p.as_str().to_string()),
            source_ips,
            user_agent: header("user-agent"),
            facts: AuthFacts::default(),
            decided: None,
            request_object: None,
            response_status: None,
            annotations: BTreeMap::new(),
        }
    }

    /// Decides the level from the authenticated user and the request (after authentication,
    /// before the answer) and writes `RequestReceived`. False when nothing is to be logged.
    pub fn decide(&mut self, parts: &Parts, path: &str) -> bool {
        let user = self.facts.requester.clone().unwrap_or_default();
        let query: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        let a = Attributes::of_request(user, parts.method.as_str(), path, &query);
        let decision = self.auditor.policy.decide(&a);
        if decision.level == Level::None {
            return false;
        }
        if let Some((allowed, reason)) = &self.facts.decision {
            let verdict = if *allowed { "allow" } else { "forbid" };
            self.annotations
                .insert("authorization.k8s.io/decision", verdict.to_string());
            self.annotations
                .insert("authorization.k8s.io/reason", reason.clone());
        }
        self.decided = Some((a, decision));
        self.emit(Stage::RequestReceived, None);
        true
    }

    /// Whether the request body is wanted (`Request` level and above).
    pub fn wants_request(&self) -> bool {
        self.decided
            .as_ref()
            .is_some_and(|(_, d)| d.level >= Level::Request)
    }

    /// Keeps the request body as `requestObject`, when it is JSON or YAML.
    pub fn request_body(&mut self, media_type: &str, body: &[u8]) {
        if body.is_empty() {
            return;
        }
        if let Ok(mut v) = crate::http::decode_body(media_type, body, None) {
            if let Some((a, _)) = &mut self.decided
                && a.name.is_empty()
                && let Some(name) = v.pointer("/metadata/name").and_then(Value::as_str)
            {
                a.name = name.to_string();
            }
            self.strip_managed_fields(&mut v);
            self.request_object = Some(v);
        }
    }

    fn strip_managed_fields(&self, v: &mut Value) {
        if self
            .decided
            .as_ref()
            .is_some_and(|(_, d)| d.omit_managed_fields)
            && let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.remove("managedFields");
        }
    }

    /// Writes the events of the answer: `ResponseComplete` now, or for long-running requests
    /// `ResponseStarted` now and `ResponseComplete` when the body ends.
    pub async fn finish(mut self, resp: Response<Body>) -> Response<Body> {
        let (mut parts, body) = resp.into_parts();
        if let Ok(id) = HeaderValue::from_str(&self.id) {
            parts.headers.insert("audit-id", id);
        }
        let Some((a, decision)) = &self.decided else {
            return Response::from_parts(parts, body);
        };
        let code = parts.status.as_u16();
        if long_running(a) && code < 300 {
            self.response_status = Some(json!({"metadata": {}, "code": code}));
            self.emit(Stage::ResponseStarted, None);
            let guard = CompleteOnDrop(Some(self));
            let stream = futures::StreamExt::map(body.into_data_stream(), move |chunk| {
                let _ = &guard;
                chunk
            });
            return Response::from_parts(parts, Body::from_stream(stream));
        }
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let protobuf = content_type.starts_with(kube_proto::CONTENT_TYPE);
        let readable = protobuf || content_type.starts_with("application/json");
        let wants_body = readable && (code >= 400 || decision.level == Level::RequestResponse);
        if !wants_body {
            self.response_status = Some(json!({"metadata": {}, "code": code}));
            self.emit(Stage::ResponseComplete, None);
            return Response::from_parts(parts, body);
        }
        let bytes = match axum::body::to_bytes(body, MAX_RESPONSE_OBJECT).await {
            Ok(b) => b,
            Err(e) => {
                self.response_status = Some(json!({"metadata": {}, "code": code}));
                self.emit(Stage::ResponseComplete, None);
                return Response::from_parts(parts, Body::from(format!("{e}")));
            }
        };
        let mut object: Option<Value> = if protobuf {
            crate::protobuf::decode(&bytes, None).ok()
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        self.response_status = Some(status_of(code, object.as_ref()));
        if let Some(v) = object.as_mut() {
            self.strip_managed_fields(v);
        }
        let keep = decision.level == Level::RequestResponse;
        self.emit(Stage::ResponseComplete, object.as_ref().filter(|_| keep));
        Response::from_parts(parts, Body::from(bytes))
    }

    /// Writes a request refused before it was served (authentication or authorization).
    pub fn refused(mut self, resp: &mut Response<Body>) {
        if let Ok(id) = HeaderValue::from_str(&self.id) {
            resp.headers_mut().insert("audit-id", id);
        }
        let code = resp.status().as_u16();
        self.response_status = Some(json!({"metadata": {}, "code": code}));
        self.emit(Stage::ResponseComplete, None);
    }

    fn emit(&self, stage: Stage, response_object: Option<&Value>) {
        let Some((a, decision)) = &self.decided else {
            return;
        };
        if decision.omit_stages.contains(&stage) {
            return;
        }
        let anonymous = UserInfo::default();
        let user = self.facts.requester.as_ref().unwrap_or(&anonymous);
        let with_request = decision.level >= Level::Request && stage != Stage::RequestReceived;
        let event = Event {
            kind: "Event",
            api_version: "audit.k8s.io/v1",
            level: decision.level,
            audit_id: &self.id,
            stage,
            request_uri: &self.uri,
            verb: &a.verb,
            user: User::of(user),
            impersonated_user: self.facts.impersonated.as_ref().map(User::of),
            source_ips: &self.source_ips,
            user_agent: &self.user_agent,
            object_ref: a.resource_request.then(|| ObjectRef {
                resource: &a.resource,
                namespace: &a.namespace,
                name: &a.name,
                api_group: &a.api_group,
                api_version: &a.api_version,
                subresource: &a.subresource,
            }),
            response_status: self
                .response_status
                .as_ref()
                .filter(|_| stage != Stage::RequestReceived),
            request_object: self.request_object.as_ref().filter(|_| with_request),
            response_object,
            request_received_timestamp: &self.received,
            stage_timestamp: micro_time(),
            annotations: &self.annotations,
        };
        match serde_json::to_vec(&event) {
            Ok(line) => self.auditor.sink.send(line),
            Err(e) => tracing::warn!(error = %e, "audit event not encoded"),
        }
    }
}

/// `responseStatus`: the code, and for errors the status, message and reason of the `Status`.
fn status_of(code: u16, body: Option<&Value>) -> Value {
    let mut status = json!({"metadata": {}, "code": code});
    if code >= 400
        && let Some(body) = body.filter(|b| b["kind"] == "Status")
    {
        for key in ["status", "message", "reason", "details"] {
            if let Some(v) = body.get(key) {
                status[key] = v.clone();
            }
        }
    }
    status
}

/// Writes `ResponseComplete` when a long-running response's body is done or dropped.
struct CompleteOnDrop(Option<Record>);

impl Drop for CompleteOnDrop {
    fn drop(&mut self) {
        if let Some(record) = self.0.take() {
            record.emit(Stage::ResponseComplete, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_have_microseconds() {
        let t = micro_time();
        assert_eq!(t.len(), "2006-01-02T15:04:05.000000Z".len(), "{t}");
        assert!(t.ends_with('Z'));
    }

    #[test]
    fn error_status_carries_the_message() {
        let body = json!({"kind": "Status", "status": "Failure", "message": "nope", "reason": "NotFound", "code": 404});
        let s = status_of(404, Some(&body));
        assert_eq!(s["message"], "nope");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(
            status_of(200, Some(&body)),
            json!({"metadata": {}, "code": 200})
        );
    }
}
