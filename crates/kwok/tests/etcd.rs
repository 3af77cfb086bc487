//! The API server on a real etcd: two replicas sharing one etcd, and etcd itself killed and
//! restarted under the server.

mod common;

use std::time::{Duration, Instant};

use common::{Etcd, Server};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"replicas": "test"}},
        "data": {"value": value},
    }))
    .unwrap()
}

fn rv(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_ref()
        .unwrap()
        .parse()
        .unwrap()
}

/// `(type, name, resourceVersion)` of each write, as the writer saw it acknowledged.
type Change = (&'static str, String, u64);

/// Creates, updates and deletes configmaps through `api`, returning the acknowledged changes.
async fn write_some(api: &Api<ConfigMap>, round: usize) -> Vec<Change> {
    let mut changes = Vec::new();
    for i in 0..20 {
        let name = format!("r{round}-{i}");
        let cm = api
            .create(&PostParams::default(), &configmap(&name, "1"))
            .await
            .unwrap();
        changes.push(("ADDED", name.clone(), rv(&cm)));
        if i % 3 == 0 {
            let mut next = cm.clone();
            next.data = Some([("value".to_string(), "2".to_string())].into());
            let cm = api
                .replace(&name, &PostParams::default(), &next)
                .await
                .unwrap();
            changes.push(("MODIFIED", name.clone(), rv(&cm)));
        }
        if i % 5 == 0 {
            api.delete(&name, &DeleteParams::default()).await.unwrap();
            let after = api
                .list(&ListParams::default().labels("replicas=test").limit(1))
                .await
                .unwrap();
            let deleted_at = after.metadata.resource_version.unwrap().parse().unwrap();
            changes.push(("DELETED", name, deleted_at));
        }
    }
    changes
}

/// Follows a watch until it has seen `count` events, returning them.
async fn collect(api: &Api<ConfigMap>, from: &str, count: usize) -> Vec<Change> {
    let params = WatchParams::default().labels("replicas=test").timeout(30);
    let mut events = api.watch(&params, from).await.unwrap().boxed();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.len() < count && Instant::now() < deadline {
        let event = match tokio::time::timeout(Duration::from_secs(30), events.try_next()).await {
            Ok(Ok(Some(ev))) => ev,
            other => panic!("watch ended early after {} events: {other:?}", seen.len()),
        };
        let (kind, cm) = match event {
            WatchEvent::Added(cm) => ("ADDED", cm),
            WatchEvent::Modified(cm) => ("MODIFIED", cm),
            WatchEvent::Deleted(cm) => ("DELETED", cm),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        let rv = rv(&cm);
        seen.push((kind, cm.metadata.name.unwrap(), rv));
    }
    seen
}

/// Checks that `seen` is exactly `written`, in revision order. A deletion's revision is only
/// known to the writer as a bound (the next list's revision), so it is compared as one.
fn assert_same_changes(seen: &[Change], written: &[Change]) {
    assert_eq!(
        seen.len(),
        written.len(),
        "seen {seen:?}\nwritten {written:?}"
    );
    for pair in seen.windows(2) {
        assert!(pair[0].2 < pair[1].2, "revisions out of order: {pair:?}");
    }
    for (s, w) in seen.iter().zip(written) {
        assert_eq!(
            (s.0, &s.1),
            (w.0, &w.1),
            "seen {seen:?}\nwritten {written:?}"
        );
        if s.0 == "DELETED" {
            assert!(
                s.2 <= w.2,
                "deletion after its acknowledgement: {s:?} {w:?}"
            );
        } else {
            assert_eq!(s.2, w.2, "seen {s:?}, written {w:?}");
        }
    }
}

#[tokio::test]
async fn writes_through_one_replica_are_watched_on_the_other_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let writer = Server::start_with(&["--etcd-servers", &etcd.url()]);
    let mut reader = Server::start_with(&["--etcd-servers", &etcd.url(), "--controllers", ""]);
    let writes: Api<ConfigMap> = Api::namespaced(writer.client().await, "default");
    let reads: Api<ConfigMap> = Api::namespaced(reader.client().await, "default");

    let start = reads
        .list(&ListParams::default().labels("replicas=test"))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let watching = {
        let reads = reads.clone();
        let start = start.clone();
        tokio::spawn(async move { collect(&reads, &start, 31).await })
    };
    // Let the watch open before the writes start, so this is a live watch, not a replay.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let first = write_some(&writes, 1).await;
    assert_eq!(first.len(), 31);
    assert_same_changes(&watching.await.unwrap(), &first);

    // The reader replica dies and comes back while writes go on; a watch resumed from the last
    // revision it delivered misses nothing.
    let resume_from = first.iter().map(|c| c.2).max().unwrap().to_string();
    reader.kill9();
    let second = write_some(&writes, 2).await;
    reader.launch();
    let reads: Api<ConfigMap> = Api::namespaced(reader.client().await, "default");
    let seen = collect(&reads, &resume_from, second.len()).await;
    assert_same_changes(&seen, &second);

    // Both replicas list the same objects at the same revision.
    let a = writes
        .list(&ListParams::default().labels("replicas=test"))
        .await
        .unwrap();
    let b = reads
        .list(
            &ListParams::default()
                .labels("replicas=test")
                .at(a.metadata.resource_version.as_deref().unwrap())
                .matching(kube::api::VersionMatch::Exact),
        )
        .await
        .unwrap();
    let names = |l: &kube::core::ObjectList<ConfigMap>| {
        l.items
            .iter()
            .map(|c| (c.metadata.name.clone().unwrap(), rv(c)))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a), names(&b));
    assert_eq!(a.items.len(), 2 * (20 - 4));
}

#[tokio::test]
async fn a_killed_and_restarted_etcd_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = Etcd::start(dir.path());
    let server = Server::start_with(&["--etcd-servers", &etcd.url()]);
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    let mut acknowledged = Vec::new();
    for i in 0..200 {
        let cm = api
            .create(
                &PostParams::default(),
                &configmap(&format!("d{i}"), &i.to_string()),
            )
            .await
            .unwrap();
        acknowledged.push((cm.metadata.name.clone().unwrap(), rv(&cm)));
    }
    etcd.kill9();
    // While etcd is down the server answers with an error rather than hanging.
    let down = tokio::time::timeout(Duration::from_secs(30), api.get("d0")).await;
    assert!(
        matches!(down, Ok(Err(_))),
        "expected an error while etcd is down: {down:?}"
    );
    etcd.launch();

    let deadline = Instant::now() + Duration::from_secs(30);
    let list = loop {
        match api
            .list(&ListParams::default().labels("replicas=test"))
            .await
        {
            Ok(list) => break list,
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for the server to reach etcd again: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("server did not recover after etcd restarted: {e}"),
        }
    };
    let mut found: Vec<(String, u64)> = list
        .items
        .iter()
        .map(|c| (c.metadata.name.clone().unwrap(), rv(c)))
        .collect();
    found.sort();
    acknowledged.sort();
    assert_eq!(found, acknowledged);
    // And writes go on from where the revisions left off.
    let next = api
        .create(&PostParams::default(), &configmap("after", "x"))
        .await
        .unwrap();
    assert!(rv(&next) > acknowledged.iter().map(|a| a.1).max().unwrap());
}

#[tokio::test]
async fn objects_are_stored_under_the_configured_prefix_without_resource_versions() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let server = Server::start_with(&["--etcd-servers", &etcd.url(), "--etcd-prefix", "/kwok"]);
    server.ok(33, &["create", "configmap", "stored", "--from-literal=a=b"]);
    let keys = etcd.etcdctl(&["get", "--prefix", "--keys-only", "/kwok/"]);
    assert!(keys.contains("/kwok/configmaps/default/stored"), "{keys}");
    assert!(keys.contains("/kwok/minions/") || keys.contains("/kwok/namespaces/default"));
    assert!(
        !etcd
            .etcdctl(&["get", "--prefix", "--keys-only", "/registry/"])
            .contains("/registry/")
    );
    let value = etcd.etcdctl(&[
        "get",
        "--print-value-only",
        "/kwok/configmaps/default/stored",
    ]);
    let stored: serde_json::Value = serde_json::from_str(value.trim()).unwrap();
    assert_eq!(stored["data"]["a"], "b");
    assert!(stored["metadata"].get("resourceVersion").is_none());
    let served = server.ok(
        27,
        &[
            "get",
            "configmap",
            "stored",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ],
    );
    assert!(served.trim().parse::<u64>().unwrap() > 0);
}
