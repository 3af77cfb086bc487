//! Dynamic admission: the requests a write makes to the cluster's admission webhooks
//! (MutatingWebhookConfiguration, then ValidatingWebhookConfiguration), as kube-apiserver
//! makes them.
//!
//! The REST layer describes each write as an [`Attributes`]; [`Webhooks`] holds the compiled
//! configurations (reloaded when they change) and runs the mutating phase before validation
//! and the validating phase after it.

pub(crate) mod builtin;
mod matching;
pub(crate) mod plugins;
mod policies;
mod webhooks;

use std::sync::Arc;

use serde_json::{Value, json};

use crate::authn::UserInfo;
use crate::resources::{self, ResourceType};

use crate::errors::ApiResult;
use crate::rest::Registry;

/// Dynamic admission of one server: webhooks and validating admission policies.
#[derive(Default)]
pub(crate) struct Admission {
    webhooks: webhooks::Webhooks,
    policies: policies::Policies,
    /// The plugins `--disable-admission-plugins` turned off.
    pub(crate) plugins: plugins::Plugins,
}

impl Admission {
    /// Whether anything is configured; writes skip admission entirely otherwise.
    pub(crate) fn any(&self) -> bool {
        self.webhooks.any() || self.policies.any()
    }

    /// Reads the configuration again.
    pub(crate) async fn reload(&self, registry: &Registry) {
        self.webhooks.reload(registry).await;
        self.policies.reload(registry).await;
    }

    /// The mutating phase (before the object is validated).
    pub(crate) async fn mutate(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
        object: &mut Value,
    ) -> ApiResult<Admitted> {
        if !self.plugins.on(plugins::MUTATING_WEBHOOK) {
            return Ok(Admitted::default());
        }
        self.webhooks.mutate(registry, a, object).await
    }

    /// The validating phase (after the object is validated): policies, then webhooks.
    pub(crate) async fn validate(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
        object: Option<&Value>,
    ) -> ApiResult<Admitted> {
        let mut admitted = Admitted::default();
        if self.plugins.on(plugins::VALIDATING_POLICY) {
            admitted = self.policies.validate(registry, a, object).await?;
        }
        if self.plugins.on(plugins::VALIDATING_WEBHOOK) {
            let hooks = self.webhooks.validate(registry, a, object).await?;
            admitted.warnings.extend(hooks.warnings);
        }
        Ok(admitted)
    }

    /// A deletion: policies and webhooks see the old object only.
    pub(crate) async fn admit_delete(
        &self,
        registry: &Registry,
        a: &Attributes<'_>,
    ) -> ApiResult<Admitted> {
        let mut admitted = Admitted::default();
        if self.plugins.on(plugins::VALIDATING_POLICY) {
            admitted = self.policies.validate(registry, a, None).await?;
        }
        if self.plugins.on(plugins::VALIDATING_WEBHOOK) {
            let hooks = self.webhooks.admit_delete(registry, a).await?;
            admitted.warnings.extend(hooks.warnings);
        }
        Ok(admitted)
    }
}

/// The group whose kinds configure admission; writes to them reload the configuration and are
/// never themselves sent to webhooks.
pub(crate) const GROUP: &str = "admissionregistration.k8s.io";

/// What a write does, in the words of `AdmissionReview.request.operation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        }
    }

    /// The options kind sent with the request.
    fn options_kind(self) -> &'static str {
        match self {
            Operation::Create => "CreateOptions",
            Operation::Update => "UpdateOptions",
            Operation::Delete => "DeleteOptions",
        }
    }
}

/// One write as admission sees it.
pub(crate) struct Attributes<'a> {
    pub r: &'a ResourceType,
    pub subresource: &'a str,
    pub operation: Operation,
    pub namespace: &'a str,
    pub name: &'a str,
    pub old: Option<&'a Value>,
    pub dry_run: bool,
    pub user: Option<&'a Arc<UserInfo>>,
    pub field_manager: Option<&'a str>,
}

impl Attributes<'_> {
    /// Writes that never reach webhooks: admission's own configuration, as kube-apiserver
    /// exempts it so that a broken webhook can always be removed.
    pub(crate) fn exempt(&self) -> bool {
        self.r.group == GROUP
    }

    fn user_info(&self) -> Value {
        let Some(user) = self.user else {
            return json!({"username": "system:apiserver", "uid": "", "groups": ["system:masters"]});
        };
        let mut info = json!({"username": user.name, "groups": user.groups});
        if !user.uid.is_empty() {
            info["uid"] = json!(user.uid);
        }
        if !user.extra.is_empty() {
            info["extra"] = json!(user.extra);
        }
        info
    }

    /// The `request` variable of admission CEL expressions: the review request without the
    /// objects, which have variables of their own.
    pub(crate) fn cel_request(&self) -> Value {
        let mut request = self.review_request("", None);
        if let Some(fields) = request.as_object_mut() {
            fields.remove("object");
            fields.remove("oldObject");
            fields.remove("uid");
        }
        request
    }

    /// The `request` of an `AdmissionReview` about `object`.
    pub(crate) fn review_request(&self, uid: &str, object: Option<&Value>) -> Value {
        let r = self.r;
        let (group, version, kind) = resources::subresource_kind(r, self.subresource);
        let gvk = json!({"group": group, "version": version, "kind": kind});
        let gvr = json!({"group": r.group, "version": r.version, "resource": r.plural});
        let mut options =
            json!({"kind": self.operation.options_kind(), "apiVersion": "meta.k8s.io/v1"});
        if let Some(manager) = self.field_manager.filter(|m| !m.is_empty()) {
            options["fieldManager"] = json!(manager);
        }
        if self.dry_run {
            options["dryRun"] = json!(["All"]);
        }
        let mut request = json!({
            "uid": uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": self.name,
            "operation": self.operation.as_str(),
            "userInfo": self.user_info(),
            "object": object,
            "oldObject": self.old,
            "dryRun": self.dry_run,
            "options": options,
        });
        if !self.subresource.is_empty() {
            request["subResource"] = json!(self.subresource);
            request["requestSubResource"] = json!(self.subresource);
        }
        if r.namespaced {
            request["namespace"] = json!(self.namespace);
        }
        request
    }
}

/// The outcome of an admission phase that let the write through.
#[derive(Debug, Default)]
pub(crate) struct Admitted {
    pub warnings: Vec<String>,
}

/// Loads the webhooks now and reloads them whenever a configuration changes, including through
/// another server sharing the store.
pub(crate) fn follow(server: &Arc<crate::ApiServer>) {
    for plural in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
    ] {
        let r = resources::find(GROUP, "v1", plural).expect("built in");
        let weak = Arc::downgrade(&server.registry);
        tokio::spawn(async move {
            while let Some(registry) = weak.upgrade() {
                registry.admission.reload(&registry).await;
                let opts = crate::rest::ListOptions::default();
                let Ok(mut events) =
                    crate::watch::start(registry.clone(), r, None, opts, false).await
                else {
                    drop(registry);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                };
                drop(registry);
                while events.recv().await.is_some() {
                    let Some(registry) = weak.upgrade() else {
                        return;
                    };
                    registry.admission.reload(&registry).await;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
    }
}
