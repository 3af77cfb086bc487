//! Legacy service-account token Secrets, as kube-controller-manager's token controller fills
//! them: a Secret of type `kubernetes.io/service-account-token` annotated with
//! `kubernetes.io/service-account.name` gets `data.token` (a non-expiring JWT), `data.ca.crt`
//! and `data.namespace`, and the account's uid in `kubernetes.io/service-account.uid`. Since
//! 1.24 such Secrets exist only when someone creates them.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::tokens::Binding;
use crate::ApiServer;
use crate::rest::WriteOptions;
use crate::{objects, resources};

pub const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";

fn secrets() -> &'static resources::ResourceType {
    resources::find("", "v1", "secrets").expect("built in")
}

/// Follows Secrets for as long as the server lives, filling token Secrets.
pub fn follow(server: &Arc<ApiServer>) {
    crate::follow::follow_objects(server, secrets(), |server, object| async move {
        server.fill_token_secret(&object).await
    });
}

impl ApiServer {
    /// Fills one token Secret when it lacks its token and its account exists.
    async fn fill_token_secret(&self, secret: &Value) {
        if secret["type"] != TOKEN_TYPE || !secret["data"]["token"].is_null() {
            return;
        }
        let Some(account_name) = secret["metadata"]["annotations"][NAME_ANNOTATION].as_str() else {
            return;
        };
        let ns = secret["metadata"]["namespace"].as_str().unwrap_or("");
        let name = secret["metadata"]["name"].as_str().unwrap_or("");
        let accounts = resources::find("", "v1", "serviceaccounts").expect("built in");
        let Ok(account) = self.registry.get(accounts, Some(ns), account_name).await else {
            return;
        };
        let Ok(account) = objects::decode(&account) else {
            return;
        };
        let uid = account["metadata"]["uid"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let Ok(tokens) = self.signing_tokens() else {
            return;
        };
        let binding = Binding {
            namespace: ns.to_string(),
            service_account: (account_name.to_string(), uid.clone()),
            secret: Some((name.to_string(), String::new())),
            ..Binding::default()
        };
        let Ok(token) = tokens.issue_legacy(&binding) else {
            return;
        };
        let mut data = json!({
            "token": STANDARD.encode(token),
            "namespace": STANDARD.encode(ns),
        });
        if let Some(ca) = self.cluster_ca() {
            data["ca.crt"] = json!(STANDARD.encode(ca));
        }
        let patch = json!({
            "metadata": {"annotations": {UID_ANNOTATION: uid}},
            "data": data,
        });
        if let Err(e) = self
            .registry
            .patch(
                secrets(),
                Some(ns),
                name,
                crate::patch::PatchType::Merge,
                patch,
                crate::rest::Part::Main,
                &WriteOptions::default(),
            )
            .await
        {
            tracing::debug!(secret = %name, namespace = %ns, error = %e.message, "fill token secret");
        }
    }
}
