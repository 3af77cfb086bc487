//! Protobuf responses (`Accept: application/vnd.kubernetes.protobuf`), as client-go's typed
//! clients ask for them: objects, lists and watch streams of built-in kinds, JSON for kinds
//! without a protobuf message, 406 when only protobuf is acceptable for a custom resource.

mod common;

use std::time::Duration;

use common::Server;
use serde_json::{Value, json};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

async fn get(client: &kube::Client, path: &str, accept: &str) -> (u16, String, Vec<u8>) {
    let req = http::Request::builder()
        .uri(path)
        .header("accept", accept)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, content_type, body)
}

async fn post_json(client: &kube::Client, path: &str, body: Value) -> Value {
    let req = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert!(resp.status().is_success(), "POST {path}: {}", resp.status());
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "proto"}, "annotations": {"a": "b"}},
        "spec": {
            "containers": [{
                "name": "c", "image": "busybox:1.36",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "resources": {"requests": {"cpu": "250m", "memory": "64Mi"}},
            }],
            "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 30}],
        },
    })
}

#[tokio::test]
async fn built_in_objects_lists_and_watches_come_back_as_protobuf() {
    let server = Server::start_with(&["--controllers", ""]);
    let client = server.client().await;
    let created = post_json(&client, "/api/v1/namespaces/default/pods", pod("p1")).await;

    let (status, content_type, body) =
        get(&client, "/api/v1/namespaces/default/pods/p1", PROTOBUF).await;
    assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
    assert!(body.starts_with(b"k8s\0"));
    let decoded = kube_proto::decode(&body).unwrap();
    for pointer in [
        "/apiVersion",
        "/kind",
        "/metadata/name",
        "/metadata/uid",
        "/metadata/resourceVersion",
        "/metadata/creationTimestamp",
        "/metadata/labels",
        "/metadata/annotations",
        "/spec/containers/0/image",
        "/spec/containers/0/ports",
        "/spec/containers/0/resources",
        "/spec/tolerations",
        "/spec/restartPolicy",
        "/spec/terminationGracePeriodSeconds",
    ] {
        assert_eq!(
            decoded.pointer(pointer),
            created.pointer(pointer),
            "{pointer}"
        );
    }

    // client-go's typed clients offer protobuf first and JSON second.
    let (status, content_type, body) = get(
        &client,
        "/api/v1/namespaces/default/pods",
        &format!("{PROTOBUF}, application/json"),
    )
    .await;
    assert_eq!((status, content_type.as_str()), (200, PROTOBUF));
    let list = kube_proto::decode(&body).unwrap();
    assert_eq!(list["kind"], "PodList");
    assert_eq!(list["items"][0]["metadata"]["name"], "p1");
    let list_rv = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(list_rv.parse::<u64>().unwrap() > 0);

    // A watch is a stream of length-prefixed WatchEvent messages.
    let req = http::Request::builder()
        .uri(format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={list_rv}&timeoutSeconds=10"
        ))
        .header("accept", PROTOBUF)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    post_json(
        &client,
        "/api/v1/namespaces/default/configmaps",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"k": "v"}}),
    )
    .await;
    let mut body = resp.into_body();
    let mut buf = Vec::new();
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if buf.len() >= 4 {
                let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                if buf.len() >= 4 + len {
                    return kube_proto::decode_watch_event(&buf[4..4 + len]).unwrap();
                }
            }
            let frame = http_body_util::BodyExt::frame(&mut body)
                .await
                .expect("watch ended")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                buf.extend_from_slice(&data);
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event.0, "ADDED");
    assert_eq!(event.1["kind"], "ConfigMap");
    assert_eq!(event.1["metadata"]["name"], "watched");
    assert_eq!(event.1["data"]["k"], "v");
}

#[tokio::test]
async fn custom_resources_are_not_offered_as_protobuf() {
    let server = Server::start();
    let client = server.client().await;
    post_json(
        &client,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
            },
        }),
    )
    .await;
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = get(&client, path, "application/json").await;
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "CRD not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _, _) = get(&client, path, PROTOBUF).await;
    assert_eq!(status, 406);
    let (status, content_type, body) =
        get(&client, path, &format!("{PROTOBUF}, application/json")).await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["kind"], "WidgetList");
}
