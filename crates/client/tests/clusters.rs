//! The same scenario through both implementations of `Cluster`: in-process and over HTTPS.

use std::sync::Arc;

use client::{
    Cluster, DeleteParams, HttpCluster, ListParams, LocalCluster, Patch, Resource, WatchEvent,
};
use futures::StreamExt;
use serde_json::{Value, json};

async fn server() -> Arc<apiserver::ApiServer> {
    apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
        .await
        .unwrap()
}

async fn exercise(cluster: &dyn Cluster) {
    let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
    let created = cluster
        .create(&cms, Some("default"), &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "labels": {"k": "v"}}, "data": {"x": "1"}}))
        .await
        .unwrap();
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let err = cluster
        .create(&cms, Some("default"), &json!({"metadata": {"name": "a"}}))
        .await
        .unwrap_err();
    assert_eq!(err.code, 409);

    let mut watch = cluster
        .watch(
            &cms,
            Some("default"),
            &ListParams {
                resource_version: Some(rv.clone()),
                timeout_seconds: Some(10),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let patched = cluster
        .patch(
            &cms,
            Some("default"),
            "a",
            &Patch::Merge(json!({"data": {"y": "2"}})),
            None,
        )
        .await
        .unwrap();
    assert_eq!(patched["data"]["y"], "2");
    let mut stale = created.clone();
    stale["data"]["z"] = json!("3");
    assert!(
        cluster
            .update(&cms, Some("default"), &stale)
            .await
            .unwrap_err()
            .is_conflict()
    );
    match watch.next().await.unwrap() {
        WatchEvent::Modified(obj) => assert_eq!(obj["data"]["y"], "2"),
        other => panic!("expected MODIFIED, got {other:?}"),
    }

    let list = cluster
        .list(
            &cms,
            None,
            &ListParams {
                label_selector: Some("k=v".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let all = client::list_all(cluster, &Resource::nodes(), None, &ListParams::default())
        .await
        .unwrap();
    assert!(all.items.is_empty());

    // Pods: bind, status, graceful delete.
    let pods = Resource::pods();
    cluster
        .create(&pods, Some("default"), &json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}))
        .await
        .unwrap();
    cluster.bind("default", "p", "node-1").await.unwrap();
    let running = cluster
        .patch(
            &pods,
            Some("default"),
            "p",
            &Patch::Merge(json!({"status": {"phase": "Running"}})),
            Some("status"),
        )
        .await
        .unwrap();
    assert_eq!(running["spec"]["nodeName"], "node-1");
    assert_eq!(running["status"]["phase"], "Running");
    let deleting = cluster
        .delete(&pods, Some("default"), "p", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleting["metadata"]["deletionTimestamp"].is_string());
    cluster
        .delete(
            &pods,
            Some("default"),
            "p",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        cluster
            .get(&pods, Some("default"), "p")
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn in_process() {
    let server = server().await;
    exercise(&LocalCluster::new(server.registry.clone())).await;
}

#[tokio::test]
async fn over_https() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::ensure(&dir.path().join("pki"), &[]).unwrap();
    let tls =
        apiserver::tls_config_from_files(&pki.serving_cert(), &pki.serving_key(), &pki.ca_cert())
            .unwrap();
    let listener = apiserver::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(server.serve_tls(listener, tls, std::future::pending()));
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\n",
        pki.ca_cert().display(),
        pki.admin_cert().display(),
        pki.admin_key().display()
    );
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();
    let cluster = HttpCluster::from_kubeconfig(Some(&path)).await.unwrap();
    exercise(&cluster).await;
    let _: Value = cluster
        .get(
            &Resource::new("", "v1", "namespaces", "Namespace", false),
            None,
            "default",
        )
        .await
        .unwrap();
}
