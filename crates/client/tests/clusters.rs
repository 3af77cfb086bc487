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
    // A status write keeps the spec, takes labels, and writes nothing when nothing changes.
    let status_patch = |body: Value| {
        let pods = &pods;
        async move {
            cluster
                .patch_as_without_answer(
                    pods,
                    Some("default"),
                    "p",
                    &Patch::Merge(body),
                    Some("status"),
                    None,
                )
                .await
                .unwrap();
            cluster.get(pods, Some("default"), "p").await.unwrap()
        }
    };
    let labelled = status_patch(json!({"metadata": {"labels": {"l": "v"}},
        "spec": {"activeDeadlineSeconds": 5}, "status": {"message": "m"}}))
    .await;
    assert_eq!(labelled["metadata"]["labels"]["l"], "v");
    assert!(labelled["spec"].get("activeDeadlineSeconds").is_none());
    assert_eq!(
        labelled["spec"]["containers"],
        running["spec"]["containers"]
    );
    assert_eq!(labelled["status"]["phase"], "Running");
    assert_eq!(labelled["status"]["message"], "m");
    let unchanged = status_patch(json!({"status": {"message": "m"}})).await;
    assert_eq!(
        unchanged["metadata"]["resourceVersion"],
        labelled["metadata"]["resourceVersion"]
    );
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

/// Followers' lists: page by page, without field ownership. Returns what was listed.
async fn follower_list(cluster: &dyn Cluster, params: ListParams) -> Vec<client::EncodedObject> {
    let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
    for i in 0..5 {
        cluster
            .create(&cms, Some("follow"), &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}"), "managedFields": [{"manager": "test", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}}]}, "data": {"x": "1"}}))
            .await
            .unwrap();
    }
    let full = cluster.get(&cms, Some("follow"), "c0").await.unwrap();
    assert!(full["metadata"]["managedFields"].is_array(), "{full}");
    let params = ListParams {
        limit: Some(2),
        ..params
    };
    let mut pager = client::Pager::new(cluster, &cms, Some("follow"), &params);
    let mut listed = Vec::new();
    while let Some(page) = pager.next_page_encoded().await.unwrap() {
        assert!(page.len() <= 2);
        listed.extend(page);
    }
    let names: Vec<_> = listed
        .iter()
        .map(|o| o.object["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["c0", "c1", "c2", "c3", "c4"]);
    for o in &listed {
        assert!(
            o.object["metadata"].get("managedFields").is_none(),
            "{}",
            o.object
        );
        assert!(o.object["metadata"]["uid"].is_string());
    }
    listed
}

#[tokio::test]
async fn in_process() {
    let server = server().await;
    let cluster = LocalCluster::new(server.registry.clone());
    exercise(&cluster).await;
    let create = |ns: &str| {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let namespaces = Resource::new("", "v1", "namespaces", "Namespace", false);
        let cluster = &cluster;
        async move { cluster.create(&namespaces, None, &ns).await.unwrap() }
    };
    create("follow").await;
    let listed = follower_list(&cluster, ListParams::default()).await;
    for o in &listed {
        // The store's own JSON comes along, whole.
        let stored: Value = serde_json::from_slice(o.json.as_ref().unwrap()).unwrap();
        assert_eq!(stored["metadata"]["name"], o.object["metadata"]["name"]);
        assert!(stored["metadata"]["managedFields"].is_array());
        assert_eq!(o.object["data"]["x"], "1");
    }
    // Metadata-only followers get apiVersion, kind and metadata, and nothing else.
    let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
    let params = ListParams {
        metadata_only: true,
        ..Default::default()
    };
    let list = cluster.list(&cms, Some("follow"), &params).await.unwrap();
    assert_eq!(list.items.len(), 5);
    for item in &list.items {
        assert_eq!(item["kind"], "ConfigMap");
        assert!(item.get("data").is_none(), "{item}");
        assert!(item["metadata"].get("managedFields").is_none());
        assert!(item["metadata"]["resourceVersion"].is_string());
    }
    let mut watch = cluster.watch(&cms, Some("follow"), &params).await.unwrap();
    match watch.next().await.unwrap() {
        WatchEvent::Added(o) => {
            assert!(o.get("data").is_none(), "{o}");
            assert_eq!(o["metadata"]["name"], "c0");
        }
        other => panic!("{other:?}"),
    }
}

/// A list through a projection: only the kept parts are decoded, the whole JSON comes beside
/// them, and a field selector (tested on the projected objects) still picks the same objects,
/// page by page.
#[tokio::test]
async fn in_process_projected_list() {
    let server = server().await;
    let cluster = LocalCluster::new(server.registry.clone());
    let pods = Resource::pods();
    for (name, node) in [("a", "n1"), ("b", ""), ("c", "n2"), ("d", "n1"), ("e", "")] {
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        if !node.is_empty() {
            pod["spec"]["nodeName"] = json!(node);
        }
        cluster.create(&pods, Some("default"), &pod).await.unwrap();
    }
    let mut projection = client::Projection::default();
    projection.keep(["metadata", "name"]);
    let list = |field_selector: &str| {
        let params = ListParams {
            field_selector: Some(field_selector.to_string()),
            limit: Some(2),
            projection: Some(Arc::new(projection.clone())),
            ..Default::default()
        };
        let cluster = &cluster;
        let pods = &pods;
        async move {
            let mut pager = client::Pager::new(cluster, pods, Some("default"), &params);
            let mut listed = Vec::new();
            while let Some(page) = pager.next_page_encoded().await? {
                listed.extend(page);
            }
            Ok::<_, client::Error>(listed)
        }
    };
    let bound = list("spec.nodeName!=").await.unwrap();
    let names: Vec<_> = bound
        .iter()
        .map(|o| o.object["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c", "d"]);
    for o in &bound {
        assert!(o.object["metadata"].get("labels").is_none(), "{}", o.object);
        assert!(o.object.get("kind").is_none(), "{}", o.object);
        let whole = client::decode_stored(o.json.as_ref().unwrap()).unwrap();
        assert_eq!(whole["kind"], "Pod");
        assert_eq!(
            whole["metadata"]["labels"]["app"],
            o.object["metadata"]["name"]
        );
    }
    let on_n1 = list("spec.nodeName=n1,metadata.name!=a").await.unwrap();
    assert_eq!(on_n1.len(), 1);
    assert_eq!(on_n1[0].object["metadata"]["name"], "d");
    let one = list("metadata.name=c").await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].object["metadata"]["name"], "c");
    let err = list("spec.nope=x").await.unwrap_err();
    assert_eq!(err.code, 400, "{err:?}");
    let err = list("spec.nodeName").await.unwrap_err();
    assert_eq!(err.code, 400, "{err:?}");
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
    cluster
        .create(
            &Resource::new("", "v1", "namespaces", "Namespace", false),
            None,
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "follow"}}),
        )
        .await
        .unwrap();
    let listed = follower_list(&cluster, ListParams::default()).await;
    assert!(listed.iter().all(|o| o.json.is_none()));
    let _: Value = cluster
        .get(
            &Resource::new("", "v1", "namespaces", "Namespace", false),
            None,
            "default",
        )
        .await
        .unwrap();
}
