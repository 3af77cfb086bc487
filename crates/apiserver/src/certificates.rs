//! CertificateSigningRequests as kube-apiserver and kube-controller-manager handle them: the
//! requester's identity is recorded on create, `approval` takes Approved/Denied conditions from
//! users who may `approve` for the signer, and the cluster CA signs approved requests for
//! `kubernetes.io/kube-apiserver-client` and `kubernetes.io/kube-apiserver-client-kubelet`.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use crate::authn::{MASTERS, UserInfo};
use crate::errors::{ApiError, ApiResult, Cause};
use crate::rbac::Attributes;
use crate::rest::{Part, WriteOptions};
use crate::{ApiServer, objects, resources};

const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
const KUBELET_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// kube-controller-manager's `--cluster-signing-duration`.
const DEFAULT_SECONDS: u64 = 365 * 24 * 3600;
const MIN_SECONDS: u64 = 600;

pub fn resource() -> &'static resources::ResourceType {
    resources::find("certificates.k8s.io", "v1", "certificatesigningrequests").expect("built in")
}

fn request_pem(csr: &Value) -> Option<String> {
    let b64 = csr["spec"]["request"].as_str()?;
    String::from_utf8(STANDARD.decode(b64).ok()?).ok()
}

/// Checks a new request and records who made it (`spec.username`, `uid`, `groups`, `extra`).
pub fn prepare_create(user: &UserInfo, mut csr: Value) -> ApiResult<Value> {
    let name = csr["metadata"]["name"].as_str().unwrap_or("").to_string();
    let mut causes = Vec::new();
    match request_pem(&csr) {
        Some(pem) if pem.contains("-----BEGIN CERTIFICATE REQUEST-----") => {}
        _ => causes.push(Cause::invalid(
            "spec.request",
            &json!("[]byte{...}"),
            "PEM block type must be CERTIFICATE REQUEST",
        )),
    }
    if csr["spec"]["signerName"].as_str().is_none_or(str::is_empty) {
        causes.push(Cause::required("spec.signerName"));
    }
    if csr["spec"]["usages"].as_array().is_none_or(Vec::is_empty) {
        causes.push(Cause::required("spec.usages"));
    }
    if let Some(seconds) = csr["spec"]["expirationSeconds"].as_u64()
        && seconds < MIN_SECONDS
    {
        causes.push(Cause::invalid(
            "spec.expirationSeconds",
            &json!(seconds),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(resource(), &name, causes));
    }
    let spec = &mut csr["spec"];
    spec["username"] = json!(user.name);
    spec["uid"] = json!(user.uid);
    spec["groups"] = json!(user.groups);
    if user.extra.is_empty() {
        spec.as_object_mut().map(|s| s.remove("extra"));
    } else {
        spec["extra"] = json!(user.extra);
    }
    Ok(csr)
}

/// What an update of a request may not change: its spec never; its Approved and Denied
/// conditions only through `approval`.
pub fn keep_decided(old: &Value, next: &mut Value, part: Part) {
    next["spec"] = old["spec"].clone();
    if part == Part::Approval {
        return;
    }
    let decided = |c: &Value| matches!(c["type"].as_str(), Some("Approved" | "Denied"));
    let mut conditions: Vec<Value> = old["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| decided(c))
        .cloned()
        .collect();
    conditions.extend(
        next["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| !decided(c))
            .cloned(),
    );
    if conditions.is_empty() {
        if let Some(status) = next["status"].as_object_mut() {
            status.remove("conditions");
        }
    } else {
        next["status"]["conditions"] = json!(conditions);
    }
}

/// The kubelet client signer signs only `system:node:<name>` in `system:nodes`.
fn kubelet_subject_ok(csr_pem: &str) -> bool {
    use x509_parser::prelude::FromDer as _;
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(csr_pem.as_bytes()) else {
        return false;
    };
    let Ok((_, request)) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&pem.contents)
    else {
        return false;
    };
    let subject = &request.certification_request_info.subject;
    let text = |v: &x509_parser::x509::AttributeTypeAndValue| v.as_str().ok().map(String::from);
    let cn: Vec<_> = subject.iter_common_name().filter_map(text).collect();
    let orgs: Vec<_> = subject.iter_organization().filter_map(text).collect();
    matches!(cn.as_slice(), [name] if name.starts_with("system:node:")) && orgs == ["system:nodes"]
}

impl ApiServer {
    /// Approving or denying needs `approve` on the request's signer (`signers` named after it,
    /// or after its domain with `/*`), besides `update` on the approval subresource.
    pub(crate) async fn check_approval(&self, user: &UserInfo, name: &str) -> ApiResult<()> {
        if user.in_group(MASTERS) {
            return Ok(());
        }
        let csr = objects::decode(&self.registry.get(resource(), None, name).await?)?;
        let signer = csr["spec"]["signerName"].as_str().unwrap_or("");
        let domain = signer.split('/').next().unwrap_or("");
        for candidate in [signer.to_string(), format!("{domain}/*")] {
            let a = Attributes {
                user: user.clone(),
                verb: "approve".into(),
                api_group: "certificates.k8s.io".into(),
                resource: "signers".into(),
                name: candidate,
                resource_request: true,
                ..Attributes::default()
            };
            if self.authorizer.authorize(&a).allowed {
                return Ok(());
            }
        }
        Err(ApiError::forbidden(format!(
            "certificatesigningrequests.certificates.k8s.io {name:?} is forbidden: user not permitted to approve requests with signerName {signer:?}"
        )))
    }

    /// The CA that signs approved requests (PEM certificate and key).
    pub fn set_cluster_signer(&self, cert: &str, key: &str) {
        let ca = pki::CertPem {
            cert: cert.to_string(),
            key: key.to_string(),
        };
        self.aggregator.set_front_proxy_ca(&ca);
        *self.signer.write().unwrap() = Some(ca);
    }

    /// Signs one approved request of ours that has no certificate yet.
    async fn sign_if_approved(&self, csr: &Value) {
        let signer = csr["spec"]["signerName"].as_str().unwrap_or("");
        if !matches!(signer, CLIENT_SIGNER | KUBELET_SIGNER)
            || csr["status"]["certificate"].is_string()
        {
            return;
        }
        let conditions = csr["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let has = |t: &str| {
            conditions
                .iter()
                .any(|c| c["type"] == t && c["status"] != "False")
        };
        if !has("Approved") || has("Denied") || has("Failed") {
            return;
        }
        let Some(ca) = self.signer.read().unwrap().clone() else {
            return;
        };
        let name = csr["metadata"]["name"].as_str().unwrap_or("").to_string();
        let seconds = csr["spec"]["expirationSeconds"]
            .as_u64()
            .unwrap_or(DEFAULT_SECONDS)
            .clamp(MIN_SECONDS, DEFAULT_SECONDS);
        let mut next = csr.clone();
        match request_pem(csr)
            .ok_or_else(|| "the request is not PEM".to_string())
            .and_then(|pem| {
                if signer == KUBELET_SIGNER && !kubelet_subject_ok(&pem) {
                    return Err("subject must be CN=system:node:<name>, O=system:nodes".to_string());
                }
                Ok(pem)
            })
            .and_then(|pem| {
                pki::sign_csr(&ca, &pem, seconds, &[pki::Usage::ClientAuth])
                    .map_err(|e| e.to_string())
            }) {
            Ok(cert) => next["status"]["certificate"] = json!(STANDARD.encode(cert)),
            Err(e) => {
                let mut conditions = conditions.clone();
                conditions.push(json!({
                    "type": "Failed", "status": "True", "reason": "SignerValidationFailure",
                    "message": e, "lastUpdateTime": objects::now_rfc3339(),
                    "lastTransitionTime": objects::now_rfc3339(),
                }));
                next["status"]["conditions"] = json!(conditions);
            }
        }
        if let Err(e) = self
            .registry
            .update(
                resource(),
                None,
                &name,
                next,
                Part::Status,
                &WriteOptions::default(),
            )
            .await
        {
            tracing::debug!(csr = %name, error = %e.message, "sign certificate request");
        }
    }
}

/// Signs approved requests for as long as the server lives.
pub fn follow(server: &Arc<ApiServer>) {
    crate::follow::follow_objects(server, resource(), |server, object| async move {
        server.sign_if_approved(&object).await
    });
}
