//! The gate every HTTP request passes: who it is (client certificate of the connection, or a
//! service-account bearer token), whom it impersonates, and whether RBAC lets that user do
//! what the request asks. Also the answers of the access and identity reviews, which ask the
//! same questions on a client's behalf.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use serde_json::{Value, json};

use crate::authn::tokens::Verified;
use crate::authn::{UserInfo, impersonation};
use crate::errors::{ApiError, ApiResult};
use crate::rbac::{Attributes, rules};
use crate::resources::ResourceType;
use crate::{ApiServer, Peer, resources};

/// Paths anyone may read without credentials (kube-apiserver's `system:public-info-viewer`).
pub fn is_public_path(path: &str) -> bool {
    matches!(
        path,
        "/version" | "/version/" | "/healthz" | "/livez" | "/readyz"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

/// How long a checked token is trusted before its account and bound objects are looked up
/// again (kube-apiserver caches token results for 10 s too).
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_CACHE_ENTRIES: usize = 4096;

/// Longest bearer token looked at; longer ones are refused without checking.
const MAX_TOKEN_BYTES: usize = 16 << 10;

/// Tokens that proved valid recently, by digest, so a client's every request does not read the
/// store. Failures are not kept: anyone can send those.
#[derive(Default)]
pub struct TokenCache {
    entries: Mutex<HashMap<[u8; 32], (Instant, UserInfo)>>,
}

fn token_digest(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().try_into().expect("32 bytes")
}

impl TokenCache {
    fn get(&self, token: &str) -> Option<UserInfo> {
        let entries = self.entries.lock().unwrap();
        let (at, user) = entries.get(&token_digest(token))?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| user.clone())
    }

    fn put(&self, token: &str, user: UserInfo) {
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= TOKEN_CACHE_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < TOKEN_CACHE_TTL);
            if entries.len() >= TOKEN_CACHE_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(token_digest(token), (Instant::now(), user));
    }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Whether an object's deletion started more than 60 s ago.
fn deleted_over_a_minute_ago(object: &Value) -> bool {
    object["metadata"]["deletionTimestamp"]
        .as_str()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .is_some_and(|t| now() - t.as_second() > 60)
}

impl ApiServer {
    /// The user a token stands for, if it is a valid token whose account (and bound objects)
    /// still exist with the uids it names.
    pub(crate) async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Option<(UserInfo, Vec<String>)> {
        if token.len() > MAX_TOKEN_BYTES {
            return None;
        }
        let verified = self.tokens()?.verify(token, audiences, now())?;
        if !self.token_objects_exist(&verified, token).await {
            return None;
        }
        Some((verified.user(), verified.audiences.clone()))
    }

    /// Whether the objects a token names still exist with the uids it names (bound objects
    /// deleted less than a minute ago still count, as in kube-apiserver); a legacy token must
    /// also still be the one its Secret holds.
    async fn token_objects_exist(&self, v: &Verified, token: &str) -> bool {
        let b = &v.binding;
        let ns = Some(b.namespace.as_str());
        let core = |plural| resources::find("", "v1", plural).expect("built in");
        let checks = [
            (core("serviceaccounts"), ns, Some(&b.service_account)),
            (core("pods"), ns, b.pod.as_ref()),
            (core("secrets"), ns, b.secret.as_ref()),
        ];
        for (r, ns, bound) in checks {
            let Some((name, uid)) = bound else { continue };
            let Ok(object) = self.registry.get(r, ns, name).await else {
                return false;
            };
            let object = crate::objects::decode(&object).unwrap_or(Value::Null);
            let live_uid = object["metadata"]["uid"].as_str().unwrap_or("");
            if (!uid.is_empty() && live_uid != uid) || deleted_over_a_minute_ago(&object) {
                return false;
            }
            if r.plural == "secrets" && v.legacy {
                use base64::Engine as _;
                let held = object["data"]["token"].as_str().unwrap_or("");
                let presented = base64::engine::general_purpose::STANDARD.encode(token);
                if held != presented {
                    return false;
                }
            }
        }
        true
    }

    /// Who sent the request: its connection's certificate, else its bearer token.
    async fn requester(&self, peer: &Peer, headers: &HeaderMap) -> ApiResult<Option<UserInfo>> {
        if let Some(user) = &peer.user {
            return Ok(Some(user.clone()));
        }
        let Some(token) = bearer_token(headers) else {
            return Ok(None);
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::unauthorized());
        }
        let user = match self.token_cache.get(token) {
            Some(cached) => Some(cached),
            None => {
                let user = self.authenticate_token(token, &[]).await.map(|(u, _)| u);
                if let Some(user) = &user {
                    self.token_cache.put(token, user.clone());
                }
                user
            }
        };
        match user {
            Some(user) => {
                if let Some(ticket) = &peer.ticket {
                    ticket.release();
                }
                Ok(Some(user))
            }
            None => Err(ApiError::unauthorized()),
        }
    }

    /// Authenticates, impersonates and authorizes a request; the user it acts as.
    pub(crate) async fn admit(
        &self,
        peer: &Peer,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        query: &[(String, String)],
        mut facts: Option<&mut crate::audit::AuthFacts>,
    ) -> ApiResult<UserInfo> {
        let Some(requester) = self.requester(peer, headers).await? else {
            if is_public_path(path) {
                if let Some(facts) = facts {
                    facts.requester = Some(UserInfo::anonymous());
                }
                return Ok(UserInfo::anonymous());
            }
            return Err(ApiError::unauthorized());
        };
        if let Some(facts) = facts.as_deref_mut() {
            facts.requester = Some(requester.clone());
        }
        let user = impersonation::resolve(headers, requester, &self.authorizer)?;
        let attributes = Attributes::of_request(user.clone(), method, path, query);
        let decision = self.authorizer.authorize(&attributes);
        if let Some(facts) = facts {
            if facts.requester.as_ref() != Some(&user) {
                facts.impersonated = Some(user.clone());
            }
            facts.decision = Some((decision.allowed, decision.reason.clone()));
        }
        if !decision.allowed {
            return Err(ApiError::forbidden(attributes.forbidden_message()));
        }
        Ok(user)
    }

    /// Answers an access or identity review for `user`, who sent it.
    pub(crate) async fn answer_review(
        &self,
        user: &UserInfo,
        r: &ResourceType,
        namespace: Option<&str>,
        mut review: Value,
    ) -> ApiResult<Value> {
        if !review.is_object() {
            return Err(ApiError::bad_request(format!(
                "expected a {} object",
                r.kind
            )));
        }
        review["apiVersion"] = json!(r.api_version());
        review["kind"] = json!(r.kind);
        let spec = review["spec"].clone();
        review["status"] = match r.kind {
            "SelfSubjectReview" => json!({"userInfo": user.to_json()}),
            "TokenReview" => self.token_review(&spec).await,
            "SelfSubjectRulesReview" => self.rules_review(user, &spec),
            "SelfSubjectAccessReview" => self.access_review(user.clone(), &spec, None)?,
            "LocalSubjectAccessReview" => {
                let subject = UserInfo::from_json(&spec, "user");
                self.access_review(subject, &spec, namespace)?
            }
            _ => self.access_review(UserInfo::from_json(&spec, "user"), &spec, None)?,
        };
        Ok(review)
    }

    async fn token_review(&self, spec: &Value) -> Value {
        let token = spec["token"].as_str().unwrap_or("");
        let audiences = crate::objects::string_list(&spec["audiences"]);
        match self.authenticate_token(token, &audiences).await {
            Some((user, audiences)) => {
                json!({"authenticated": true, "user": user.to_json(), "audiences": audiences})
            }
            None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
        }
    }

    fn rules_review(&self, user: &UserInfo, spec: &Value) -> Value {
        let namespace = spec["namespace"].as_str().unwrap_or("");
        let all = self.authorizer.rules_for(user, namespace);
        let (resource, non_resource): (Vec<_>, Vec<_>) =
            all.iter().partition(|r| r.is_resource_rule());
        let json = |rules: Vec<&rules::Rule>| -> Vec<Value> {
            rules.into_iter().map(rules::Rule::to_review_json).collect()
        };
        json!({
            "resourceRules": json(resource),
            "nonResourceRules": json(non_resource),
            "incomplete": false,
        })
    }

    fn access_review(
        &self,
        user: UserInfo,
        spec: &Value,
        namespace: Option<&str>,
    ) -> ApiResult<Value> {
        let attrs = &spec["resourceAttributes"];
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        let attributes = if attrs.is_object() {
            let ns = text(&attrs["namespace"]);
            if let Some(path_ns) = namespace
                && ns != path_ns
            {
                return Err(ApiError::bad_request(format!(
                    "spec.resourceAttributes.namespace must match namespace: {path_ns}"
                )));
            }
            Attributes {
                user,
                verb: text(&attrs["verb"]),
                namespace: ns,
                api_group: text(&attrs["group"]),
                api_version: text(&attrs["version"]),
                resource: text(&attrs["resource"]),
                subresource: text(&attrs["subresource"]),
                name: text(&attrs["name"]),
                resource_request: true,
                path: String::new(),
            }
        } else {
            let attrs = &spec["nonResourceAttributes"];
            Attributes {
                user,
                verb: text(&attrs["verb"]),
                path: text(&attrs["path"]),
                ..Attributes::default()
            }
        };
        let decision = self.authorizer.authorize(&attributes);
        let mut status = json!({"allowed": decision.allowed});
        if !decision.reason.is_empty() {
            status["reason"] = json!(decision.reason);
        }
        Ok(status)
    }
}

/// TokenRequest limits (kube-apiserver's validation).
const MIN_TOKEN_SECONDS: i64 = 600;
const MAX_TOKEN_SECONDS: i64 = 1 << 32;

fn invalid_token_request(name: &str, field: &str, value: &Value, detail: &str) -> ApiError {
    ApiError::new(
        422,
        "Invalid",
        format!(
            "TokenRequest.authentication.k8s.io {name:?} is invalid: {field}: Invalid value: {value}: {detail}"
        ),
    )
}

impl ApiServer {
    /// The token signer, made on first use with a key of its own when none was set (servers
    /// built in-process, without a cluster's `sa.key`).
    pub(crate) fn signing_tokens(&self) -> ApiResult<std::sync::Arc<crate::authn::tokens::Tokens>> {
        if let Some(t) = self.tokens() {
            return Ok(t);
        }
        // One key however many requests arrive first.
        static MAKING: Mutex<()> = Mutex::new(());
        let _making = MAKING.lock().unwrap();
        if let Some(t) = self.tokens() {
            return Ok(t);
        }
        let pem = pki::generate_rsa_key().map_err(ApiError::internal)?;
        self.set_service_account_key(&pem, crate::authn::tokens::DEFAULT_ISSUER)
            .map_err(ApiError::internal)?;
        self.tokens()
            .ok_or_else(|| ApiError::internal("no service-account key"))
    }

    /// `serviceaccounts/<name>/token`: a bound token for `account`.
    pub(crate) async fn request_token(
        &self,
        namespace: &str,
        account: &Value,
        mut request: Value,
    ) -> ApiResult<Value> {
        let name = account["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let uid = account["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let spec = request["spec"].clone();
        let seconds = match &spec["expirationSeconds"] {
            Value::Null => 3600,
            v => v.as_i64().ok_or_else(|| {
                invalid_token_request(&name, "spec.expirationSeconds", v, "must be an integer")
            })?,
        };
        if seconds < MIN_TOKEN_SECONDS {
            return Err(invalid_token_request(
                &name,
                "spec.expirationSeconds",
                &json!(seconds),
                "may not specify a duration less than 10 minutes",
            ));
        }
        if seconds > MAX_TOKEN_SECONDS {
            return Err(invalid_token_request(
                &name,
                "spec.expirationSeconds",
                &json!(seconds),
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        let tokens = self.signing_tokens()?;
        let audiences = match spec["audiences"].as_array() {
            Some(a) if !a.is_empty() => crate::objects::string_list(&spec["audiences"]),
            _ => tokens.audiences.clone(),
        };
        let mut binding = crate::authn::tokens::Binding {
            namespace: namespace.to_string(),
            service_account: (name.clone(), uid),
            ..Default::default()
        };
        self.bind_token(&mut binding, &spec["boundObjectRef"])
            .await?;
        let token = tokens
            .issue(&binding, &audiences, now(), seconds)
            .map_err(ApiError::internal)?;
        request["apiVersion"] = json!("authentication.k8s.io/v1");
        request["kind"] = json!("TokenRequest");
        request["metadata"] = json!({"name": name, "namespace": namespace,
            "creationTimestamp": crate::objects::now_rfc3339()});
        request["spec"]["audiences"] = json!(audiences);
        request["spec"]["expirationSeconds"] = json!(seconds);
        request["status"] = json!({
            "token": token,
            "expirationTimestamp": crate::objects::timestamp_after(seconds),
        });
        Ok(request)
    }

    /// Fills the token's bound object (pod, secret or node) from `spec.boundObjectRef`.
    async fn bind_token(
        &self,
        binding: &mut crate::authn::tokens::Binding,
        reference: &Value,
    ) -> ApiResult<()> {
        if reference.is_null() {
            return Ok(());
        }
        let kind = reference["kind"].as_str().unwrap_or("");
        let plural = match kind {
            "Pod" => "pods",
            "Secret" => "secrets",
            "Node" => "nodes",
            other => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for object of kind {other:?}"
                )));
            }
        };
        let r = resources::find("", "v1", plural).expect("built in");
        let ns = (kind != "Node").then_some(binding.namespace.as_str());
        let name = reference["name"].as_str().unwrap_or("");
        let object = crate::objects::decode(&self.registry.get(r, ns, name).await?)?;
        let live_uid = object["metadata"]["uid"].as_str().unwrap_or("").to_string();
        if let Some(uid) = reference["uid"].as_str().filter(|u| !u.is_empty())
            && uid != live_uid
        {
            return Err(ApiError::new(
                409,
                "Conflict",
                format!(
                    "the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"
                ),
            ));
        }
        let bound = Some((name.to_string(), live_uid));
        match kind {
            "Pod" => {
                let pod_account = object["spec"]["serviceAccountName"]
                    .as_str()
                    .unwrap_or("default");
                if pod_account != binding.service_account.0 {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount {:?} to pod running with different serviceaccount name.",
                        binding.service_account.0
                    )));
                }
                binding.pod = bound;
                if let Some(node) = object["spec"]["nodeName"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                {
                    let nodes = resources::find("", "v1", "nodes").expect("built in");
                    let node_uid = match self.registry.get(nodes, None, node).await {
                        Ok(b) => crate::objects::decode(&b)?["metadata"]["uid"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        Err(_) => String::new(),
                    };
                    binding.node = Some((node.to_string(), node_uid));
                }
            }
            "Secret" => binding.secret = bound,
            _ => binding.node = bound,
        }
        Ok(())
    }
}

/// The RBAC kinds whose writes are checked for escalation.
fn is_rbac_write_target(r: &ResourceType) -> bool {
    r.group == "rbac.authorization.k8s.io"
        && matches!(
            r.plural,
            "roles" | "clusterroles" | "rolebindings" | "clusterrolebindings"
        )
}

impl ApiServer {
    /// Whether writes of `r` by `user` need the escalation check at all.
    pub(crate) fn needs_escalation_check(&self, user: &UserInfo, r: &ResourceType) -> bool {
        is_rbac_write_target(r)
            && !user.in_group(crate::authn::MASTERS)
            && !self
                .authorizer
                .always_allow
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Refuses a role that grants more than `user` holds (unless they may `escalate`), or a
    /// binding to a role whose rules `user` does not hold (unless they may `bind` it).
    pub(crate) fn check_escalation(
        &self,
        user: &UserInfo,
        r: &ResourceType,
        namespace: Option<&str>,
        object: &Value,
    ) -> ApiResult<()> {
        if !self.needs_escalation_check(user, r) {
            return Ok(());
        }
        let ns = namespace.unwrap_or("");
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let may = |verb: &str, resource: &str, name: &str| {
            self.authorizer
                .authorize(&Attributes {
                    user: user.clone(),
                    verb: verb.into(),
                    namespace: ns.into(),
                    api_group: r.group.into(),
                    resource: resource.into(),
                    name: name.into(),
                    resource_request: true,
                    ..Attributes::default()
                })
                .allowed
        };
        let wanted = match r.plural {
            "roles" | "clusterroles" => {
                if may("escalate", r.plural, name) {
                    return Ok(());
                }
                rules::parse_all(&object["rules"])
            }
            _ => {
                let role_kind = object["roleRef"]["kind"].as_str().unwrap_or("");
                let role = object["roleRef"]["name"].as_str().unwrap_or("");
                let plural = if role_kind == "ClusterRole" {
                    "clusterroles"
                } else {
                    "roles"
                };
                let rules = self.authorizer.role_rules(role_kind, ns, role);
                if may("bind", plural, role) {
                    return Ok(());
                }
                rules.ok_or_else(|| {
                    ApiError::new(
                        404,
                        "NotFound",
                        format!("{plural}.rbac.authorization.k8s.io {role:?} not found"),
                    )
                })?
            }
        };
        // An aggregated role takes in whatever its selectors match: only those who hold
        // everything may write one.
        if !object["aggregationRule"].is_null()
            && !rules::uncovered(
                &self.authorizer.rules_for(user, ""),
                &[rules::Rule::everything()],
            )
            .is_empty()
        {
            return Err(ApiError::forbidden(format!(
                "{}.{} {name:?} is forbidden: must have cluster-admin privileges to use the aggregationRule",
                r.plural, r.group
            )));
        }
        let missing = rules::uncovered(&self.authorizer.rules_for(user, ns), &wanted);
        if missing.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = missing.iter().map(rules::Rule::describe).collect();
        Err(ApiError::forbidden(format!(
            "{}{} {name:?} is forbidden: user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
            r.plural,
            if r.group.is_empty() {
                String::new()
            } else {
                format!(".{}", r.group)
            },
            user.name,
            user.groups,
            listed.join("\n")
        )))
    }
}
