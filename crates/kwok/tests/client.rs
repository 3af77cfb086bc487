//! Black-box tests with a client library (kube-rs): CRUD, watch from a resourceVersion,
//! optimistic concurrency, bad input, and durability across `kill -9`.

mod common;

use common::Server;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"set": "a"}},
        "data": {"value": value},
    }))
    .unwrap()
}

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn create_list_watch_and_conflict() {
    let server = Server::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let created = cms
        .create(&PostParams::default(), &configmap("one", "1"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.clone().unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());

    let err = api_error(
        cms.create(&PostParams::default(), &configmap("one", "1"))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    // Watch from the create's resourceVersion sees only later changes, in order.
    let mut events = cms
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &configmap("two", "2"))
        .await
        .unwrap();
    let mut updated = created.clone();
    updated
        .data
        .as_mut()
        .unwrap()
        .insert("value".into(), "changed".into());
    let updated = cms
        .replace("one", &PostParams::default(), &updated)
        .await
        .unwrap();
    cms.delete("two", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match events.try_next().await.unwrap().unwrap() {
            // Written by the namespace defaults controller whenever it gets to it.
            WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("kube-root-ca.crt") => {}
            WatchEvent::Added(cm) => seen.push(("ADDED", cm.metadata.name.unwrap())),
            WatchEvent::Modified(cm) => seen.push(("MODIFIED", cm.metadata.name.unwrap())),
            WatchEvent::Deleted(cm) => seen.push(("DELETED", cm.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "two".to_string()),
            ("MODIFIED", "one".to_string()),
            ("DELETED", "two".to_string())
        ]
    );

    // The stale object (old resourceVersion) conflicts.
    let err = api_error(
        cms.replace("one", &PostParams::default(), &created)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );

    // A list is consistent with the writes and pages with continue tokens.
    for i in 0..7 {
        cms.create(
            &PostParams::default(),
            &configmap(&format!("page-{i}"), "x"),
        )
        .await
        .unwrap();
    }
    let first = cms
        .list(&ListParams::default().limit(3).labels("set=a"))
        .await
        .unwrap();
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().unwrap();
    let mut names: Vec<String> = first
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    let mut next = token;
    loop {
        let page = cms
            .list(
                &ListParams::default()
                    .limit(3)
                    .labels("set=a")
                    .continue_token(&next),
            )
            .await
            .unwrap();
        names.extend(page.items.iter().map(|c| c.metadata.name.clone().unwrap()));
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => next = t,
            _ => break,
        }
    }
    assert_eq!(names.len(), 8, "{names:?}");
    assert!(names.contains(&"one".to_string()));
    let all = cms.list(&ListParams::default()).await.unwrap();
    let list_rv: i64 = all.metadata.resource_version.unwrap().parse().unwrap();
    let one_rv: i64 = updated.metadata.resource_version.unwrap().parse().unwrap();
    assert!(list_rv > one_rv);

    // Merge patch through the client.
    let patched = cms
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["extra"], "1");
}

#[tokio::test]
async fn watch_from_an_expired_revision_gets_410() {
    let server = Server::start_with(&["--watch-history-seconds", "0"]);
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut last = String::new();
    for i in 0..3 {
        let cm = cms
            .create(&PostParams::default(), &configmap(&format!("c{i}"), "x"))
            .await
            .unwrap();
        last = cm.metadata.resource_version.unwrap();
    }
    if let Some(etcd) = &server.etcd {
        // etcd keeps history until it is compacted; compact it as the server would later.
        etcd.compact(&last);
    }
    let mut events = cms
        .watch(&WatchParams::default().timeout(5), "2")
        .await
        .unwrap()
        .boxed();
    match events.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    let err = api_error(
        cms.list(&ListParams::default().limit(1).at("2"))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 410);
}

async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(body)
        .unwrap();
    let resp = client
        .send(req.map(kube::client::Body::from))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, value)
}

#[tokio::test]
async fn bad_input_gets_kube_apiserver_errors() {
    let server = Server::start();
    let client = server.client().await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let json_ct = "application/json";

    let (code, status) = raw(&client, "POST", cms, json_ct, b"{not json".to_vec()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (400, Some("BadRequest")),
        "{status}"
    );

    let (code, status) = raw(&client, "POST", cms, json_ct, b"[1,2]".to_vec()).await;
    assert_eq!(code, 400, "{status}");

    let body =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "bogus": 1});
    let (code, status) = raw(
        &client,
        "POST",
        &format!("{cms}?fieldValidation=Strict"),
        json_ct,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"bogus\""),
        "{status}"
    );

    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}});
    let (code, status) = raw(&client, "POST", cms, json_ct, body.to_string().into_bytes()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{status}"
    );
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");

    let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
    let (code, status) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/pods",
        json_ct,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 422, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("spec.containers[0].image: Required value"),
        "{status}"
    );

    let big = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"a": "x".repeat(4 << 20)}});
    let (code, status) = raw(&client, "POST", cms, json_ct, big.to_string().into_bytes()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (413, Some("RequestEntityTooLarge")),
        "{status}"
    );

    let (code, _) = raw(
        &client,
        "GET",
        "/api/v1/namespaces/default/widgets",
        json_ct,
        vec![],
    )
    .await;
    assert_eq!(code, 404);
    let (code, status) = raw(
        &client,
        "GET",
        &format!("{cms}?labelSelector=a%20in%20b"),
        json_ct,
        vec![],
    )
    .await;
    assert_eq!(code, 400, "{status}");
    let (code, status) = raw(
        &client,
        "GET",
        &format!("{cms}?resourceVersion=abc"),
        json_ct,
        vec![],
    )
    .await;
    // kube-apiserver's storage layer answers an unparsable resourceVersion with a 500.
    assert_eq!(code, 500, "{status}");
    let (code, status) = raw(
        &client,
        "GET",
        &format!("{cms}?watch=1&sendInitialEvents=true"),
        json_ct,
        vec![],
    )
    .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (422, Some("Invalid")),
        "{status}"
    );
    let (code, status) = raw(&client, "POST", cms, "text/plain", b"hello".to_vec()).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (415, Some("UnsupportedMediaType")),
        "{status}"
    );
    let (code, status) = raw(
        &client,
        "PUT",
        "/api/v1/namespaces/default/configmaps",
        json_ct,
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (405, Some("MethodNotAllowed")),
        "{status}"
    );
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
    let (code, status) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/nowhere/configmaps",
        json_ct,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(
        (code, status["message"].as_str()),
        (404, Some("namespaces \"nowhere\" not found")),
        "{status}"
    );

    // The server still serves and nothing was half-written (the namespace's own
    // kube-root-ca.crt is the only ConfigMap).
    let list: Api<ConfigMap> = Api::namespaced(client, "default");
    assert!(
        list.list(&ListParams::default().fields("metadata.name!=kube-root-ca.crt"))
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn requests_without_a_client_certificate_are_unauthorized() {
    let server = Server::start();
    let mut kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig()).unwrap();
    for user in &mut kubeconfig.auth_infos {
        if let Some(info) = user.auth_info.as_mut() {
            info.client_certificate = None;
            info.client_key = None;
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let (code, status) = raw(&client, "GET", "/api/v1/pods", "application/json", vec![]).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (401, Some("Unauthorized"))
    );
    let (code, version) = raw(&client, "GET", "/version", "application/json", vec![]).await;
    assert_eq!(code, 200);
    assert_eq!(version["major"], "1");
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let mut server = Server::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let written: Vec<ConfigMap> = futures::stream::iter(0..1000)
        .map(|i| {
            let cms = cms.clone();
            async move {
                cms.create(
                    &PostParams::default(),
                    &configmap(&format!("cm-{i:04}"), &i.to_string()),
                )
                .await
                .unwrap()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    server.kill9();
    server.launch();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let after = cms
        .list(&ListParams::default().labels("set=a"))
        .await
        .unwrap();
    assert_eq!(after.items.len(), 1000);
    let before: std::collections::HashMap<String, String> = written
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap(),
                c.metadata.resource_version.clone().unwrap(),
            )
        })
        .collect();
    for cm in &after.items {
        let name = cm.metadata.name.clone().unwrap();
        assert_eq!(
            Some(cm.metadata.resource_version.as_ref().unwrap()),
            before.get(&name),
            "{name}"
        );
    }
    // Revisions continue upward after the restart.
    let max_before: i64 = before
        .values()
        .map(|v| v.parse::<i64>().unwrap())
        .max()
        .unwrap();
    let next = cms
        .create(&PostParams::default(), &configmap("after", "x"))
        .await
        .unwrap();
    assert!(
        next.metadata
            .resource_version
            .unwrap()
            .parse::<i64>()
            .unwrap()
            > max_before
    );
}

#[tokio::test]
async fn pods_bind_and_delete_gracefully() {
    let server = Server::start();
    let client = server.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}});
    let (code, status) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        "application/json",
        binding.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 201, "{status}");
    let bound = pods.get("p").await.unwrap();
    assert_eq!(bound.spec.unwrap().node_name.as_deref(), Some("node-1"));
    let (code, _) = raw(
        &client,
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        "application/json",
        binding.to_string().into_bytes(),
    )
    .await;
    assert_eq!(code, 409);
    // A pod on a node is deleted gracefully: it stays until deleted with grace period 0.
    pods.delete("p", &DeleteParams::default()).await.unwrap();
    let terminating = pods.get("p").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    pods.delete("p", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert_eq!(api_error(pods.get("p").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn deletecollection_dry_run_and_negotiation() {
    let server = Server::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..4 {
        let mut cm = configmap(&format!("dc-{i}"), "x");
        if i % 2 == 0 {
            cm.metadata.labels = Some([("set".to_string(), "b".to_string())].into());
        }
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    // A dry run answers like a create and stores nothing.
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &configmap("dry", "x"),
        )
        .await
        .unwrap();
    assert_eq!(dry.metadata.name.as_deref(), Some("dry"));
    assert_eq!(api_error(cms.get("dry").await.unwrap_err()).code, 404);

    cms.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("set=b"),
    )
    .await
    .unwrap();
    let left: Vec<String> = cms
        .list(&ListParams::default().labels("set"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(left, ["dc-1", "dc-3"]);

    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps")
        .header("accept", "application/cbor")
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 406);
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps/dc-1")
        .header("accept", "application/yaml")
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    assert_eq!(resp.headers()["content-type"], "application/yaml");
    let text = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("name: dc-1"));
}

#[tokio::test]
async fn repeated_fields_are_rejected_under_strict_and_reported_under_warn() {
    let server = Server::start();
    let client = server.client().await;
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"first","name":"dup"},"data":{"a":"1","a":"2"}}"#;
    let send = |validation: &'static str| {
        let client = client.clone();
        async move {
            let req = http::Request::builder()
                .method("POST")
                .uri(format!(
                    "/api/v1/namespaces/default/configmaps?fieldValidation={validation}"
                ))
                .header("content-type", "application/json")
                .body(kube::client::Body::from(body.to_vec()))
                .unwrap();
            let resp = client.send(req).await.unwrap();
            let status = resp.status().as_u16();
            let warnings: Vec<String> = resp
                .headers()
                .get_all("warning")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            (status, warnings, value)
        }
    };
    let (status, _, error) = send("Strict").await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["reason"], "BadRequest");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(
            r#"strict decoding error: duplicate field "metadata.name", duplicate field "data.a""#
        ),
        "{message}"
    );

    let (status, warnings, created) = send("Warn").await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["metadata"]["name"], "dup");
    assert_eq!(created["data"]["a"], "2");
    assert!(
        warnings
            .iter()
            .any(|w| w.contains(r#"duplicate field \"metadata.name\""#)),
        "{warnings:?}"
    );

    let client2 = client.clone();
    let api: Api<ConfigMap> = Api::namespaced(client2, "default");
    api.delete("dup", &DeleteParams::default()).await.unwrap();
    let (status, warnings, _) = send("Ignore").await;
    assert_eq!(status, 201);
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// `(offset, revision, key)` of every record in a write-ahead log segment
/// (`len u32 LE | crc u32 LE | op u8 | mod rev i64 | create rev i64 | key len u32 | key | ...`).
fn wal_records(bytes: &[u8]) -> Vec<(usize, i64, String)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break;
        };
        let revision = i64::from_le_bytes(payload[1..9].try_into().unwrap());
        let key_len = u32::from_le_bytes(payload[17..21].try_into().unwrap()) as usize;
        let key = String::from_utf8(payload[21..21 + key_len].to_vec()).unwrap();
        out.push((at, revision, key));
        at += 8 + len;
    }
    out
}

#[tokio::test]
async fn damaged_log_refuses_to_start_until_repaired() {
    if common::on_etcd() {
        // The objects live in etcd, not in the server's log.
        return;
    }
    let mut server = Server::start();
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut written = Vec::new();
    for i in 0..200 {
        let cm = cms
            .create(
                &PostParams::default(),
                &configmap(&format!("cm-{i:03}"), &i.to_string()),
            )
            .await
            .unwrap();
        let rv: i64 = cm.metadata.resource_version.unwrap().parse().unwrap();
        written.push((cm.metadata.name.unwrap(), rv));
    }
    server.kill9();

    // Flip one byte in the payload of the middle configmap record of the newest segment.
    let store = server.data_dir().join("store");
    let mut segments: Vec<std::path::PathBuf> = std::fs::read_dir(&store)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("wal-") && name.ends_with(".log")
        })
        .collect();
    segments.sort();
    let segment = segments.last().unwrap();
    let mut bytes = std::fs::read(segment).unwrap();
    let ours: Vec<(usize, i64, String)> = wal_records(&bytes)
        .into_iter()
        .filter(|(_, _, key)| key.starts_with("/registry/configmaps/default/cm-"))
        .collect();
    assert!(ours.len() >= 200, "{} configmap records", ours.len());
    let (offset, bad_revision, _) = ours[100].clone();
    bytes[offset + 8 + 30] ^= 0x5a;
    std::fs::write(segment, &bytes).unwrap();

    // The server refuses to start, naming the file and the offset.
    let log = server.dir.path().join("refused.log");
    let mut child = std::process::Command::new(common::kwok_bin())
        .args(["apiserver", "--data-dir"])
        .arg(server.data_dir())
        .args(["--secure-port", &common::free_port().to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "the server started on a damaged log: {}",
                std::fs::read_to_string(&log).unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&segment.display().to_string()),
        "the error names the file: {stderr}"
    );
    assert!(
        stderr.contains(&format!("byte offset {offset}:")),
        "the error names the offset {offset}: {stderr}"
    );
    assert!(stderr.contains("--repair-wal"), "{stderr}");
    assert_eq!(std::fs::read(segment).unwrap(), bytes, "nothing was cut");

    // With --repair-wal it starts with every write before the damaged record.
    server.extra_args.push("--repair-wal".into());
    server.launch();
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    assert!(log.contains("repaired the write-ahead log"), "{log}");
    let copies = std::fs::read_dir(&store)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("repair-")
        })
        .count();
    assert_eq!(copies, 1);
    let client = server.client().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let after: std::collections::HashMap<String, i64> = cms
        .list(&ListParams::default().labels("set=a"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            let rv = c.metadata.resource_version.unwrap().parse().unwrap();
            (c.metadata.name.unwrap(), rv)
        })
        .collect();
    let kept: Vec<&(String, i64)> = written
        .iter()
        .filter(|(_, rv)| *rv < bad_revision)
        .collect();
    assert!(kept.len() >= 100, "{} writes before the damage", kept.len());
    for (name, rv) in &kept {
        assert_eq!(
            after.get(name),
            Some(rv),
            "{name} was written before the damage"
        );
    }
    for (name, rv) in written.iter().filter(|(_, rv)| *rv >= bad_revision) {
        assert!(
            !after.contains_key(name),
            "{name} at {rv} was cut with the log"
        );
    }
}
