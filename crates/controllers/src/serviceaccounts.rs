//! Namespace defaults: every active namespace has the `default` ServiceAccount and, when the
//! cluster CA is known, the `kube-root-ca.crt` ConfigMap — as kube-controller-manager's
//! serviceaccount and root-ca-cert-publisher controllers provide them.

use client::JsonAt;
use std::sync::Arc;

use client::{Cluster, ListParams, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

const ROOT_CA: &str = "kube-root-ca.crt";

/// Keeps the default ServiceAccount (and the root CA ConfigMap) in every namespace.
pub struct NamespaceDefaults {
    cluster: Arc<dyn Cluster>,
    root_ca_pem: Option<String>,
}

impl NamespaceDefaults {
    pub fn new(cluster: Arc<dyn Cluster>, root_ca_pem: Option<String>) -> Self {
        Self {
            cluster,
            root_ca_pem,
        }
    }

    /// Runs until the cluster stops answering.
    pub async fn run(self) {
        let (tx, mut rx) = mpsc::channel::<String>(1024);
        let namespaces = Resource::new("", "v1", "namespaces", "Namespace", false);
        let accounts = Resource::new("", "v1", "serviceaccounts", "ServiceAccount", true);
        let configmaps = Resource::new("", "v1", "configmaps", "ConfigMap", true);
        tokio::spawn(follow(
            self.cluster.clone(),
            namespaces.clone(),
            None,
            tx.clone(),
        ));
        tokio::spawn(follow(
            self.cluster.clone(),
            accounts.clone(),
            Some("metadata.name=default".into()),
            tx.clone(),
        ));
        if self.root_ca_pem.is_some() {
            tokio::spawn(follow(
                self.cluster.clone(),
                configmaps.clone(),
                Some(format!("metadata.name={ROOT_CA}")),
                tx.clone(),
            ));
        }
        drop(tx);
        while let Some(ns) = rx.recv().await {
            let Ok(obj) = self.cluster.get(&namespaces, None, &ns).await else {
                continue;
            };
            if obj.at("/status/phase").and_then(Value::as_str) != Some("Active") {
                continue;
            }
            let account = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}});
            self.ensure(&accounts, &ns, account).await;
            if let Some(pem) = &self.root_ca_pem {
                let cm = json!({
                    "apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": ROOT_CA, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                    "data": {"ca.crt": pem},
                });
                self.ensure(&configmaps, &ns, cm).await;
            }
        }
    }

    async fn ensure(&self, r: &Resource, namespace: &str, object: Value) {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if self.cluster.get(r, Some(namespace), &name).await.is_ok() {
            return;
        }
        match self.cluster.create(r, Some(namespace), &object).await {
            Ok(_) => {}
            // Exists already, or the namespace is going away: nothing to do.
            Err(e) if e.is_conflict() || e.is_not_found() || e.code == 403 => {}
            Err(e) => tracing::warn!(namespace, %name, error = %e, "create namespace default"),
        }
    }
}

/// Watches a type and sends the namespace each event concerns.
async fn follow(
    cluster: Arc<dyn Cluster>,
    r: Resource,
    fields: Option<String>,
    tx: mpsc::Sender<String>,
) {
    let params = ListParams {
        field_selector: fields,
        ..Default::default()
    };
    let mut events = client::watch_resuming(cluster, r.clone(), params);
    while let Some(ev) = events.next().await {
        let obj = match ev {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
            WatchEvent::Bookmark(_) | WatchEvent::Error(_) => continue,
        };
        let ns = if r.namespaced {
            obj.at("/metadata/namespace")
        } else {
            obj.at("/metadata/name")
        };
        if let Some(ns) = ns.and_then(Value::as_str)
            && tx.send(ns.to_string()).await.is_err()
        {
            return;
        }
    }
}
