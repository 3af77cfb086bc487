//! The garbage collector against the real API server, in-process.

use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams, LocalCluster, Resource};
use controllers::GarbageCollector;
use serde_json::{Value, json};

async fn setup() -> Arc<dyn Cluster> {
    setup_with(vec![cms(), secrets()]).await
}

async fn setup_with(types: Vec<Resource>) -> Arc<dyn Cluster> {
    let server = apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
        .await
        .unwrap();
    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    tokio::spawn(GarbageCollector::new(cluster.clone(), types).run());
    // Keep the server alive for the test.
    std::mem::forget(server);
    cluster
}

fn cms() -> Resource {
    Resource::new("", "v1", "configmaps", "ConfigMap", true)
}

fn secrets() -> Resource {
    Resource::new("", "v1", "secrets", "Secret", true)
}

async fn owner(cluster: &Arc<dyn Cluster>, name: &str) -> Value {
    cluster
        .create(
            &cms(),
            Some("default"),
            &json!({"metadata": {"name": name}}),
        )
        .await
        .unwrap()
}

async fn dependent(cluster: &Arc<dyn Cluster>, name: &str, owner: &Value, block: bool) {
    let owner_ref = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"], "blockOwnerDeletion": block});
    cluster
        .create(
            &secrets(),
            Some("default"),
            &json!({"metadata": {"name": name, "ownerReferences": [owner_ref]}}),
        )
        .await
        .unwrap();
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn exists(cluster: &Arc<dyn Cluster>, r: &Resource, name: &str) -> bool {
    cluster.get(r, Some("default"), name).await.is_ok()
}

/// Events are left alone, as kube-controller-manager's collector leaves them by default: an
/// Event owned by a deleted object stays until its TTL.
#[tokio::test]
async fn events_are_not_collected() {
    let events = Resource::events();
    let cluster = setup_with(vec![cms(), secrets(), events.clone()]).await;
    let o = owner(&cluster, "o").await;
    dependent(&cluster, "d", &o, false).await;
    let owner_ref = json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "o",
        "uid": o["metadata"]["uid"]});
    cluster
        .create(
            &events,
            Some("default"),
            &json!({"metadata": {"name": "e", "ownerReferences": [owner_ref]},
                "involvedObject": {"kind": "ConfigMap", "name": "o", "namespace": "default"},
                "reason": "R", "message": "m", "type": "Normal"}),
        )
        .await
        .unwrap();
    cluster
        .delete(&cms(), Some("default"), "o", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the secret collected", async || {
        !exists(&cluster, &secrets(), "d").await
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(exists(&cluster, &events, "e").await);
    // Nor does a Foreground or Orphan delete hand an Event to the collector: it goes at once,
    // as kube-apiserver deletes Events whatever the policy.
    for (name, policy) in [("e", "Foreground"), ("f", "Orphan")] {
        if name == "f" {
            cluster
                .create(
                    &events,
                    Some("default"),
                    &json!({"metadata": {"name": "f"},
                    "involvedObject": {"kind": "ConfigMap", "name": "o", "namespace": "default"}}),
                )
                .await
                .unwrap();
        }
        let params = DeleteParams {
            propagation_policy: Some(policy.into()),
            ..Default::default()
        };
        cluster
            .delete(&events, Some("default"), name, &params)
            .await
            .unwrap();
        assert!(!exists(&cluster, &events, name).await, "{policy}");
    }
}

#[tokio::test]
async fn background_deletion_collects_dependents() {
    let cluster = setup().await;
    let o = owner(&cluster, "o").await;
    dependent(&cluster, "d1", &o, false).await;
    dependent(&cluster, "d2", &o, false).await;
    cluster
        .delete(&cms(), Some("default"), "o", &DeleteParams::default())
        .await
        .unwrap();
    eventually("dependents collected", async || {
        !exists(&cluster, &secrets(), "d1").await && !exists(&cluster, &secrets(), "d2").await
    })
    .await;
}

#[tokio::test]
async fn dangling_references_are_collected_and_live_owners_kept() {
    let cluster = setup().await;
    let o = owner(&cluster, "alive").await;
    dependent(&cluster, "kept", &o, false).await;
    let ghost =
        json!({"metadata": {"name": "ghost", "uid": "00000000-0000-0000-0000-000000000000"}});
    dependent(&cluster, "orphaned", &ghost, false).await;
    eventually("dangling dependent collected", async || {
        !exists(&cluster, &secrets(), "orphaned").await
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(exists(&cluster, &secrets(), "kept").await);
}

#[tokio::test]
async fn foreground_deletion_waits_for_blocking_dependents() {
    let cluster = setup().await;
    let o = owner(&cluster, "fg").await;
    dependent(&cluster, "child", &o, true).await;
    let params = DeleteParams {
        propagation_policy: Some("Foreground".into()),
        ..Default::default()
    };
    let marked = cluster
        .delete(&cms(), Some("default"), "fg", &params)
        .await
        .unwrap();
    assert!(
        marked["metadata"]["finalizers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "foregroundDeletion")
    );
    eventually("owner gone after its dependent", async || {
        !exists(&cluster, &cms(), "fg").await && !exists(&cluster, &secrets(), "child").await
    })
    .await;
}

#[tokio::test]
async fn orphan_deletion_keeps_dependents_without_the_reference() {
    let cluster = setup().await;
    let o = owner(&cluster, "or").await;
    dependent(&cluster, "survivor", &o, false).await;
    let params = DeleteParams {
        propagation_policy: Some("Orphan".into()),
        ..Default::default()
    };
    cluster
        .delete(&cms(), Some("default"), "or", &params)
        .await
        .unwrap();
    eventually("owner gone", async || !exists(&cluster, &cms(), "or").await).await;
    let s = cluster
        .get(&secrets(), Some("default"), "survivor")
        .await
        .unwrap();
    assert!(
        s["metadata"]
            .get("ownerReferences")
            .is_none_or(|r| r.as_array().unwrap().is_empty()),
        "{s}"
    );
}

#[tokio::test]
async fn namespaces_get_default_service_account_and_root_ca() {
    let server = apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
        .await
        .unwrap();
    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    tokio::spawn(controllers::NamespaceDefaults::new(cluster.clone(), Some("PEM".into())).run());
    let sa = Resource::new("", "v1", "serviceaccounts", "ServiceAccount", true);
    let ns = Resource::new("", "v1", "namespaces", "Namespace", false);
    cluster
        .create(&ns, None, &json!({"metadata": {"name": "team"}}))
        .await
        .unwrap();
    for namespace in ["default", "kube-system", "team"] {
        eventually("default service account", async || {
            cluster.get(&sa, Some(namespace), "default").await.is_ok()
        })
        .await;
        eventually("root CA config map", async || {
            cluster
                .get(&cms(), Some(namespace), "kube-root-ca.crt")
                .await
                .is_ok()
        })
        .await;
    }
    cluster
        .delete(&sa, Some("team"), "default", &DeleteParams::default())
        .await
        .unwrap();
    eventually("service account recreated", async || {
        cluster.get(&sa, Some("team"), "default").await.is_ok()
    })
    .await;
    let cm = cluster
        .get(&cms(), Some("team"), "kube-root-ca.crt")
        .await
        .unwrap();
    assert_eq!(cm["data"]["ca.crt"], "PEM");
    std::mem::forget(server);
}
