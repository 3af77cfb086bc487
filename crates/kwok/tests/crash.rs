//! `kill -9` of the real `kwok apiserver` while writers are busy, again and again: every write a
//! client saw acknowledged is there after each restart, and the watch history replayed from the
//! log holds every write in order, with no gaps.
//!
//! `KWOK_KILL_CYCLES` sets the number of kills (20 by default; the documented long run is 100).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::Server;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

const WRITERS: usize = 8;

fn counter(cm: &ConfigMap) -> u64 {
    cm.data.as_ref().unwrap()["n"].parse().unwrap()
}

fn revision(cm: &ConfigMap) -> u64 {
    cm.metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// Bumps the counter of configmap `name` from `from` until `stop`, returning every
/// acknowledged `(counter, revision)`.
async fn write_until(
    api: Api<ConfigMap>,
    name: String,
    from: u64,
    stop: Arc<AtomicBool>,
) -> Vec<(u64, u64)> {
    let mut acked = Vec::new();
    let mut n = from;
    while !stop.load(Ordering::Relaxed) {
        let patch = json!({"data": {"n": (n + 1).to_string()}});
        match api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(cm) => {
                n += 1;
                assert_eq!(counter(&cm), n);
                acked.push((n, revision(&cm)));
            }
            // The server is gone: whether this write landed is not known.
            Err(_) => break,
        }
    }
    acked
}

/// Every event of the configmaps from `after` on, as the restarted server replays them.
async fn history(api: &Api<ConfigMap>, after: u64) -> Vec<(String, u64, u64)> {
    let params = WatchParams::default().labels("crash=test").timeout(2);
    let mut stream = api
        .watch(&params, &after.to_string())
        .await
        .unwrap()
        .boxed();
    let mut seen = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            WatchEvent::Added(cm) | WatchEvent::Modified(cm) => seen.push((
                cm.metadata.name.clone().unwrap(),
                counter(&cm),
                revision(&cm),
            )),
            WatchEvent::Bookmark(_) => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_repeated_kill_9() {
    let cycles: usize = std::env::var("KWOK_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut server = Server::start();
    let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
    for w in 0..WRITERS {
        let cm = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("w{w}"), "labels": {"crash": "test"}},
            "data": {"n": "0"},
        }))
        .unwrap();
        api.create(&PostParams::default(), &cm).await.unwrap();
    }
    let mut total_acked = 0;
    for cycle in 0..cycles {
        let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
        let list = api
            .list(&ListParams::default().labels("crash=test"))
            .await
            .unwrap();
        let start: u64 = list.metadata.resource_version.unwrap().parse().unwrap();
        let counters: BTreeMap<String, u64> = list
            .items
            .iter()
            .map(|cm| (cm.metadata.name.clone().unwrap(), counter(cm)))
            .collect();
        assert_eq!(counters.len(), WRITERS);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = counters
            .iter()
            .map(|(name, n)| tokio::spawn(write_until(api.clone(), name.clone(), *n, stop.clone())))
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + (cycle as u64 * 97) % 400)).await;
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        let mut acked: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
        for (writer, name) in writers.into_iter().zip(counters.keys()) {
            acked.insert(name.clone(), writer.await.unwrap());
        }
        total_acked += acked.values().map(Vec::len).sum::<usize>();
        server.launch();
        let api: Api<ConfigMap> = Api::namespaced(server.client().await, "default");
        // Every acknowledged write is there (a write in flight at the kill may be there too).
        for (name, writes) in &acked {
            let stored = api.get(name).await.unwrap();
            if let Some(&(n, rv)) = writes.last() {
                assert!(
                    counter(&stored) == n || counter(&stored) == n + 1,
                    "cycle {cycle}: {name} acknowledged {n}, stored {}",
                    counter(&stored)
                );
                assert!(revision(&stored) >= rv);
            }
        }
        // The history from before the cycle replays every write once, in revision order, each
        // counter following the one before.
        let replayed = history(&api, start).await;
        let mut last_revision = start;
        let mut last_counter = counters.clone();
        for (name, n, rv) in &replayed {
            assert!(
                *rv > last_revision,
                "cycle {cycle}: revisions go up: {replayed:?}"
            );
            last_revision = *rv;
            let before = last_counter.get_mut(name).unwrap();
            assert_eq!(*n, *before + 1, "cycle {cycle}: {name} skipped a write");
            *before = *n;
        }
        for (name, writes) in &acked {
            for (n, rv) in writes {
                assert!(
                    replayed.contains(&(name.clone(), *n, *rv)),
                    "cycle {cycle}: acknowledged {name}={n} at {rv} is not in the history"
                );
            }
        }
    }
    assert!(
        total_acked > cycles * WRITERS,
        "the writers wrote during the kills ({total_acked} writes)"
    );
    eprintln!("{cycles} kills, {total_acked} acknowledged writes, none lost");
}
