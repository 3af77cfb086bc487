//! The workload controllers against the real API server, in-process. There is no scheduler or
//! kubelet here: the tests play the kubelet's part by writing pod statuses themselves.

use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, ListParams, LocalCluster, Patch, Resource};
use controllers::Workloads;
use serde_json::{Value, json};

async fn setup() -> Arc<dyn Cluster> {
    let server = apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
        .await
        .unwrap();
    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    Workloads::new(cluster.clone()).start().await;
    std::mem::forget(server);
    cluster
}

fn pods() -> Resource {
    Resource::pods()
}
fn rss() -> Resource {
    Resource::new("apps", "v1", "replicasets", "ReplicaSet", true)
}
fn deployments() -> Resource {
    Resource::new("apps", "v1", "deployments", "Deployment", true)
}
fn jobs() -> Resource {
    Resource::new("batch", "v1", "jobs", "Job", true)
}

const NS: Option<&str> = Some("default");

async fn list(cluster: &Arc<dyn Cluster>, r: &Resource) -> Vec<Value> {
    cluster
        .list(r, NS, &ListParams::default())
        .await
        .unwrap()
        .items
}

fn active(p: &Value) -> bool {
    p["metadata"]["deletionTimestamp"].is_null()
        && !matches!(p["status"]["phase"].as_str(), Some("Succeeded" | "Failed"))
}

fn ready(p: &Value) -> bool {
    p["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    })
}

fn owned_by<'a>(pods: &'a [Value], owner: &Value) -> Vec<&'a Value> {
    pods.iter()
        .filter(|p| {
            p["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["uid"] == owner["metadata"]["uid"]))
        })
        .collect()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Writes a pod status as a kubelet would.
async fn set_pod_status(cluster: &Arc<dyn Cluster>, name: &str, phase: &str, is_ready: bool) {
    let Ok(mut pod) = cluster.get(&pods(), NS, name).await else {
        return;
    };
    pod["status"]["phase"] = json!(phase);
    pod["status"]["conditions"] = json!([{
        "type": "Ready",
        "status": if is_ready { "True" } else { "False" },
        "lastTransitionTime": "2024-01-01T00:00:00Z",
    }]);
    let _ = cluster.update_status(&pods(), NS, &pod).await;
}

/// Makes every new pod Running and Ready after a short delay, in the background.
fn kubelet(cluster: Arc<dyn Cluster>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(60)).await;
            for p in list(&cluster, &pods()).await {
                if active(&p) && !ready(&p) {
                    set_pod_status(
                        &cluster,
                        p["metadata"]["name"].as_str().unwrap(),
                        "Running",
                        true,
                    )
                    .await;
                }
            }
        }
    });
}

/// Like [`kubelet`], but only pods whose image is listed in `images` (shared, changeable) start.
fn picky_kubelet(cluster: Arc<dyn Cluster>, images: Arc<std::sync::Mutex<Vec<String>>>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(60)).await;
            for p in list(&cluster, &pods()).await {
                let image = p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or_default();
                let allowed = images.lock().unwrap().iter().any(|i| i == image);
                if allowed && active(&p) && !ready(&p) {
                    set_pod_status(
                        &cluster,
                        p["metadata"]["name"].as_str().unwrap(),
                        "Running",
                        true,
                    )
                    .await;
                }
            }
        }
    });
}

fn template(app: &str, image: &str) -> Value {
    json!({
        "metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    })
}

async fn create_rs(cluster: &Arc<dyn Cluster>, name: &str, replicas: i64) -> Value {
    cluster
        .create(
            &rss(),
            NS,
            &json!({
                "metadata": {"name": name},
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": {"app": name}},
                    "template": template(name, "nginx"),
                },
            }),
        )
        .await
        .unwrap()
}

async fn scale(cluster: &Arc<dyn Cluster>, r: &Resource, name: &str, replicas: i64) {
    cluster
        .patch(
            r,
            NS,
            name,
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            None,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn replicaset_scales_up_and_down() {
    let cluster = setup().await;
    let rs = create_rs(&cluster, "web", 3).await;
    eventually("three pods", async || {
        let all = list(&cluster, &pods()).await;
        owned_by(&all, &rs).iter().filter(|p| active(p)).count() == 3
    })
    .await;
    let all = list(&cluster, &pods()).await;
    for p in &all {
        let name = p["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("web-") && name.len() == "web-".len() + 5,
            "{name}"
        );
        assert_eq!(p["metadata"]["labels"]["app"], "web");
        let owner = &p["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicaSet");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
    }
    // Two pods ready; scaling to two removes the one that is not.
    let names: Vec<String> = all
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    set_pod_status(&cluster, &names[0], "Running", true).await;
    set_pod_status(&cluster, &names[1], "Running", true).await;
    eventually("status counts", async || {
        let rs = cluster.get(&rss(), NS, "web").await.unwrap();
        rs["status"]["replicas"] == 3
            && rs["status"]["readyReplicas"] == 2
            && rs["status"]["availableReplicas"] == 2
            && rs["status"]["fullyLabeledReplicas"] == 3
            && rs["status"]["observedGeneration"] == 1
    })
    .await;
    scale(&cluster, &rss(), "web", 2).await;
    eventually("two pods left", async || {
        let all = list(&cluster, &pods()).await;
        all.len() == 2
    })
    .await;
    let left: Vec<String> = list(&cluster, &pods())
        .await
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        left.contains(&names[0]) && left.contains(&names[1]),
        "{left:?}"
    );
    scale(&cluster, &rss(), "web", 5).await;
    eventually("five pods", async || {
        list(&cluster, &pods()).await.len() == 5
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(list(&cluster, &pods()).await.len(), 5, "no duplicates");
    scale(&cluster, &rss(), "web", 0).await;
    eventually("no pods", async || list(&cluster, &pods()).await.is_empty()).await;
    eventually("status zero", async || {
        let rs = cluster.get(&rss(), NS, "web").await.unwrap();
        rs["status"]["replicas"] == 0 && rs["status"]["observedGeneration"] == 4
    })
    .await;
}

#[tokio::test]
async fn replicaset_adopts_orphans_and_releases_mismatches() {
    let cluster = setup().await;
    let orphan = cluster
        .create(
            &pods(),
            NS,
            &json!({"metadata": {"name": "orphan", "labels": {"app": "adopt"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        )
        .await
        .unwrap();
    let rs = create_rs(&cluster, "adopt", 2).await;
    eventually("orphan adopted, one more made", async || {
        let all = list(&cluster, &pods()).await;
        owned_by(&all, &rs).len() == 2
            && all.len() == 2
            && owned_by(&all, &rs)
                .iter()
                .any(|p| p["metadata"]["uid"] == orphan["metadata"]["uid"])
    })
    .await;
    // Relabel the adopted pod: it is released and replaced.
    cluster
        .patch(
            &pods(),
            NS,
            "orphan",
            &Patch::Merge(json!({"metadata": {"labels": {"app": "other"}}})),
            None,
        )
        .await
        .unwrap();
    eventually("released and replaced", async || {
        let all = list(&cluster, &pods()).await;
        let p = cluster.get(&pods(), NS, "orphan").await.unwrap();
        let released = p["metadata"]["ownerReferences"]
            .as_array()
            .is_none_or(|r| r.is_empty());
        released && owned_by(&all, &rs).len() == 2 && all.len() == 3
    })
    .await;
}

fn deployment(name: &str, replicas: i64, image: &str, strategy: Value) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name, image),
            "strategy": strategy,
        },
    })
}

async fn set_image(cluster: &Arc<dyn Cluster>, name: &str, image: &str) {
    cluster
        .patch(
            &deployments(),
            NS,
            name,
            &Patch::Merge(json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}})),
            None,
        )
        .await
        .unwrap();
}

/// `kubectl rollout status`'s test for a finished rollout.
async fn rolled_out(cluster: &Arc<dyn Cluster>, name: &str) -> bool {
    let d = cluster.get(&deployments(), NS, name).await.unwrap();
    let want = d["spec"]["replicas"].as_i64().unwrap();
    let s = &d["status"];
    let n = |f: &str| s[f].as_i64().unwrap_or(0);
    n("observedGeneration") >= d["metadata"]["generation"].as_i64().unwrap()
        && n("updatedReplicas") == want
        && n("replicas") == want
        && n("availableReplicas") == want
}

fn condition<'a>(obj: &'a Value, kind: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == kind))
        .unwrap_or(&Value::Null)
}

#[tokio::test]
async fn deployment_rolls_out_within_surge_and_unavailability() {
    let cluster = setup().await;
    kubelet(cluster.clone());
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    cluster
        .create(
            &deployments(),
            NS,
            &deployment("web", 3, "nginx:1", strategy),
        )
        .await
        .unwrap();
    eventually("first rollout", async || rolled_out(&cluster, "web").await).await;
    let d = cluster.get(&deployments(), NS, "web").await.unwrap();
    let first = list(&cluster, &rss()).await;
    assert_eq!(first.len(), 1);
    let rs_name = first[0]["metadata"]["name"].as_str().unwrap().to_string();
    let hash = first[0]["metadata"]["labels"]["pod-template-hash"]
        .as_str()
        .unwrap();
    assert_eq!(rs_name, format!("web-{hash}"));
    assert_eq!(
        first[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"],
        hash
    );
    assert_eq!(
        first[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(
        first[0]["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"],
        "3"
    );
    assert_eq!(
        first[0]["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"],
        "4"
    );
    assert_eq!(
        condition(&d, "Available")["reason"],
        "MinimumReplicasAvailable"
    );
    assert_eq!(
        condition(&d, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );
    assert_eq!(
        condition(&d, "Progressing")["message"],
        format!("ReplicaSet \"{rs_name}\" has successfully progressed.")
    );

    let events = list(&cluster, &Resource::events()).await;
    let scaled = format!("Scaled up replica set {rs_name} from 0 to 3");
    assert!(
        events.iter().any(|e| e["reason"] == "ScalingReplicaSet"
            && e["message"] == scaled.as_str()
            && e["involvedObject"]["kind"] == "Deployment"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|e| e["reason"] == "SuccessfulCreate"
            && e["involvedObject"]["name"] == rs_name.as_str())
    );

    set_image(&cluster, "web", "nginx:2").await;
    let mut max_pods = 0;
    let mut min_ready = usize::MAX;
    let mut saw_both = false;
    for _ in 0..600 {
        let all = list(&cluster, &pods()).await;
        let live: Vec<&Value> = all.iter().filter(|p| active(p)).collect();
        max_pods = max_pods.max(live.len());
        min_ready = min_ready.min(live.iter().filter(|p| ready(p)).count());
        let images: std::collections::HashSet<&str> = live
            .iter()
            .map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap())
            .collect();
        saw_both |= images.len() == 2;
        if rolled_out(&cluster, "web").await
            && live.len() == 3
            && live
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rolled_out(&cluster, "web").await, "second rollout finished");
    assert!(max_pods <= 4, "maxSurge 1: saw {max_pods} pods");
    assert!(min_ready >= 3, "maxUnavailable 0: saw {min_ready} ready");
    assert!(
        saw_both,
        "old and new pods overlapped during the rolling update"
    );
    let all = list(&cluster, &rss()).await;
    assert_eq!(all.len(), 2);
    let new = all
        .iter()
        .find(|rs| rs["metadata"]["name"] != rs_name.as_str())
        .unwrap();
    let old = all
        .iter()
        .find(|rs| rs["metadata"]["name"] == rs_name.as_str())
        .unwrap();
    assert_eq!(new["spec"]["replicas"], 3);
    assert_eq!(old["spec"]["replicas"], 0);
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    let d = cluster.get(&deployments(), NS, "web").await.unwrap();
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );

    // Undo: the old template comes back and its ReplicaSet becomes revision 3.
    set_image(&cluster, "web", "nginx:1").await;
    eventually("undo rolled out", async || {
        let old = cluster.get(&rss(), NS, &rs_name).await.unwrap();
        rolled_out(&cluster, "web").await
            && old["spec"]["replicas"] == 3
            && old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    })
    .await;
    assert_eq!(list(&cluster, &rss()).await.len(), 2);

    // Scaling.
    scale(&cluster, &deployments(), "web", 5).await;
    eventually("scaled to five", async || {
        rolled_out(&cluster, "web").await
            && list(&cluster, &pods())
                .await
                .iter()
                .filter(|p| active(p))
                .count()
                == 5
    })
    .await;

    // Once settled, nothing keeps writing.
    let versions = async || {
        let mut v: Vec<String> = list(&cluster, &rss())
            .await
            .iter()
            .chain(list(&cluster, &deployments()).await.iter())
            .map(|o| {
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        v.sort();
        v
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = versions().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(before, versions().await, "no writes once settled");
}

#[tokio::test]
async fn deployment_recreate_stops_old_pods_first() {
    let cluster = setup().await;
    kubelet(cluster.clone());
    cluster
        .create(
            &deployments(),
            NS,
            &deployment("rec", 2, "nginx:1", json!({"type": "Recreate"})),
        )
        .await
        .unwrap();
    eventually("first rollout", async || rolled_out(&cluster, "rec").await).await;
    set_image(&cluster, "rec", "nginx:2").await;
    let mut mixed = false;
    for _ in 0..600 {
        let all = list(&cluster, &pods()).await;
        let images: std::collections::HashSet<&str> = all
            .iter()
            .map(|p| p["spec"]["containers"][0]["image"].as_str().unwrap())
            .collect();
        mixed |= images.len() > 1;
        if rolled_out(&cluster, "rec").await
            && all.len() == 2
            && all
                .iter()
                .all(|p| p["spec"]["containers"][0]["image"] == "nginx:2")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(rolled_out(&cluster, "rec").await);
    assert!(!mixed, "Recreate never runs old and new pods together");
}

#[tokio::test]
async fn paused_deployment_waits_and_history_is_trimmed() {
    let cluster = setup().await;
    kubelet(cluster.clone());
    let mut d = deployment("hist", 1, "nginx:1", json!({"type": "RollingUpdate"}));
    d["spec"]["revisionHistoryLimit"] = json!(1);
    cluster.create(&deployments(), NS, &d).await.unwrap();
    eventually("first rollout", async || rolled_out(&cluster, "hist").await).await;
    cluster
        .patch(
            &deployments(),
            NS,
            "hist",
            &Patch::Merge(json!({"spec": {"paused": true}})),
            None,
        )
        .await
        .unwrap();
    set_image(&cluster, "hist", "nginx:2").await;
    eventually("paused condition", async || {
        let d = cluster.get(&deployments(), NS, "hist").await.unwrap();
        condition(&d, "Progressing")["reason"] == "DeploymentPaused"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        list(&cluster, &rss()).await.len(),
        1,
        "paused: no new ReplicaSet"
    );
    cluster
        .patch(
            &deployments(),
            NS,
            "hist",
            &Patch::Merge(json!({"spec": {"paused": false}})),
            None,
        )
        .await
        .unwrap();
    eventually("resumed rollout", async || {
        rolled_out(&cluster, "hist").await && list(&cluster, &rss()).await.len() == 2
    })
    .await;
    for image in ["nginx:3", "nginx:4"] {
        set_image(&cluster, "hist", image).await;
        eventually("rollout", async || {
            rolled_out(&cluster, "hist").await
                && list(&cluster, &pods())
                    .await
                    .iter()
                    .all(|p| p["spec"]["containers"][0]["image"] == image)
        })
        .await;
    }
    eventually("history trimmed to one old ReplicaSet", async || {
        list(&cluster, &rss()).await.len() == 2
    })
    .await;
    let revs: Vec<String> = list(&cluster, &rss())
        .await
        .iter()
        .map(|rs| {
            rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert!(
        revs.contains(&"3".to_string()) && revs.contains(&"4".to_string()),
        "{revs:?}"
    );
}

fn job(name: &str, spec: Value) -> Value {
    let mut spec = spec;
    spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}});
    json!({"metadata": {"name": name}, "spec": spec})
}

/// Finishes job pods: each active pod succeeds (or fails) after a short delay.
fn job_kubelet(
    cluster: Arc<dyn Cluster>,
    outcome: &'static str,
    max_active: Arc<std::sync::atomic::AtomicUsize>,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(80)).await;
            let all = list(&cluster, &pods()).await;
            let live: Vec<&Value> = all.iter().filter(|p| active(p)).collect();
            max_active.fetch_max(live.len(), std::sync::atomic::Ordering::SeqCst);
            for p in live {
                set_pod_status(
                    &cluster,
                    p["metadata"]["name"].as_str().unwrap(),
                    outcome,
                    false,
                )
                .await;
            }
        }
    });
}

#[tokio::test]
async fn job_runs_completions_with_parallelism() {
    let cluster = setup().await;
    let max_active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    job_kubelet(cluster.clone(), "Succeeded", max_active.clone());
    let j = cluster
        .create(
            &jobs(),
            NS,
            &job("j", json!({"completions": 3, "parallelism": 2})),
        )
        .await
        .unwrap();
    eventually("complete", async || {
        let j = cluster.get(&jobs(), NS, "j").await.unwrap();
        condition(&j, "Complete")["status"] == "True"
    })
    .await;
    let j2 = cluster.get(&jobs(), NS, "j").await.unwrap();
    assert_eq!(j2["status"]["succeeded"], 3);
    assert_eq!(condition(&j2, "SuccessCriteriaMet")["status"], "True");
    assert!(j2["status"]["startTime"].is_string() && j2["status"]["completionTime"].is_string());
    assert!(max_active.load(std::sync::atomic::Ordering::SeqCst) <= 2);
    eventually("Completed event", async || {
        list(&cluster, &Resource::events())
            .await
            .iter()
            .any(|e| e["reason"] == "Completed" && e["involvedObject"]["name"] == "j")
    })
    .await;
    let all = list(&cluster, &pods()).await;
    assert_eq!(all.len(), 3);
    for p in &all {
        let l = &p["metadata"]["labels"];
        assert_eq!(l["batch.kubernetes.io/job-name"], "j");
        assert_eq!(l["job-name"], "j");
        assert_eq!(
            l["batch.kubernetes.io/controller-uid"],
            j["metadata"]["uid"]
        );
        assert_eq!(l["controller-uid"], j["metadata"]["uid"]);
        assert!(p["metadata"]["name"].as_str().unwrap().starts_with("j-"));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "Job");
    }
}

#[tokio::test]
async fn job_fails_past_backoff_limit() {
    let cluster = setup().await;
    job_kubelet(cluster.clone(), "Failed", Arc::new(Default::default()));
    cluster
        .create(
            &jobs(),
            NS,
            &job("bad", json!({"completions": 1, "backoffLimit": 1})),
        )
        .await
        .unwrap();
    eventually("failed", async || {
        let j = cluster.get(&jobs(), NS, "bad").await.unwrap();
        condition(&j, "Failed")["reason"] == "BackoffLimitExceeded"
    })
    .await;
    let j = cluster.get(&jobs(), NS, "bad").await.unwrap();
    assert_eq!(j["status"]["failed"], 2);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        list(&cluster, &pods()).await.len(),
        2,
        "no pods after failing"
    );
}

#[tokio::test]
async fn finished_job_is_deleted_after_ttl() {
    let cluster = setup().await;
    job_kubelet(cluster.clone(), "Succeeded", Arc::new(Default::default()));
    cluster
        .create(
            &jobs(),
            NS,
            &job("ttl", json!({"ttlSecondsAfterFinished": 0})),
        )
        .await
        .unwrap();
    eventually("job deleted", async || {
        cluster.get(&jobs(), NS, "ttl").await.is_err()
    })
    .await;
}

#[tokio::test]
async fn suspended_job_runs_no_pods_until_resumed() {
    let cluster = setup().await;
    cluster
        .create(
            &jobs(),
            NS,
            &job(
                "s",
                json!({"suspend": true, "completions": 2, "parallelism": 2}),
            ),
        )
        .await
        .unwrap();
    eventually("suspended condition", async || {
        let j = cluster.get(&jobs(), NS, "s").await.unwrap();
        condition(&j, "Suspended")["status"] == "True"
    })
    .await;
    assert!(list(&cluster, &pods()).await.is_empty());
    cluster
        .patch(
            &jobs(),
            NS,
            "s",
            &Patch::Merge(json!({"spec": {"suspend": false}})),
            None,
        )
        .await
        .unwrap();
    eventually("two pods", async || {
        list(&cluster, &pods()).await.len() == 2
    })
    .await;
    let j = cluster.get(&jobs(), NS, "s").await.unwrap();
    assert!(j["status"]["startTime"].is_string());
}

#[tokio::test]
async fn indexed_job_runs_each_index_once() {
    let cluster = setup().await;
    job_kubelet(cluster.clone(), "Succeeded", Arc::new(Default::default()));
    cluster
        .create(
            &jobs(),
            NS,
            &job(
                "idx",
                json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed"}),
            ),
        )
        .await
        .unwrap();
    eventually("complete", async || {
        let j = cluster.get(&jobs(), NS, "idx").await.unwrap();
        condition(&j, "Complete")["status"] == "True"
    })
    .await;
    let j = cluster.get(&jobs(), NS, "idx").await.unwrap();
    assert_eq!(j["status"]["completedIndexes"], "0-2");
    assert_eq!(j["status"]["succeeded"], 3);
    let mut indexes: Vec<String> = list(&cluster, &pods())
        .await
        .iter()
        .map(|p| {
            let i = p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(
                p["metadata"]["name"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("idx-{i}-"))
            );
            i
        })
        .collect();
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
}

#[tokio::test]
async fn replication_controller_keeps_its_replicas() {
    let cluster = setup().await;
    let rcs = Resource::new(
        "",
        "v1",
        "replicationcontrollers",
        "ReplicationController",
        true,
    );
    let rc = cluster
        .create(
            &rcs,
            NS,
            &json!({
                "metadata": {"name": "rc"},
                "spec": {"replicas": 2, "selector": {"app": "rc"}, "template": template("rc", "nginx")},
            }),
        )
        .await
        .unwrap();
    eventually("two pods", async || {
        let all = list(&cluster, &pods()).await;
        owned_by(&all, &rc).len() == 2
    })
    .await;
    let all = list(&cluster, &pods()).await;
    assert_eq!(
        all[0]["metadata"]["ownerReferences"][0]["kind"],
        "ReplicationController"
    );
    assert_eq!(all[0]["metadata"]["ownerReferences"][0]["apiVersion"], "v1");
    scale(&cluster, &rcs, "rc", 1).await;
    eventually("one pod", async || list(&cluster, &pods()).await.len() == 1).await;
    eventually("status", async || {
        let rc = cluster.get(&rcs, NS, "rc").await.unwrap();
        rc["status"]["replicas"] == 1 && rc["status"]["observedGeneration"] == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicaset_makes_many_pods_exactly_once() {
    let cluster = setup().await;
    let started = std::time::Instant::now();
    create_rs(&cluster, "many", 1000).await;
    eventually("status shows 1000", async || {
        let rs = cluster.get(&rss(), NS, "many").await.unwrap();
        rs["status"]["replicas"] == 1000
    })
    .await;
    eprintln!("1000 pods in {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(list(&cluster, &pods()).await.len(), 1000);
}

#[tokio::test]
async fn stuck_rollout_exceeds_its_progress_deadline() {
    let cluster = setup().await;
    let mut d = deployment("stuck", 1, "nginx", json!({"type": "RollingUpdate"}));
    d["spec"]["progressDeadlineSeconds"] = json!(1);
    cluster.create(&deployments(), NS, &d).await.unwrap();
    eventually("deadline exceeded", async || {
        let d = cluster.get(&deployments(), NS, "stuck").await.unwrap();
        let c = condition(&d, "Progressing");
        c["status"] == "False" && c["reason"] == "ProgressDeadlineExceeded"
    })
    .await;
    let d = cluster.get(&deployments(), NS, "stuck").await.unwrap();
    let msg = condition(&d, "Progressing")["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.ends_with("has timed out progressing."), "{msg}");
    // Becoming ready completes the rollout after all.
    kubelet(cluster.clone());
    eventually("rolled out", async || rolled_out(&cluster, "stuck").await).await;
    eventually("progressing again", async || {
        let d = cluster.get(&deployments(), NS, "stuck").await.unwrap();
        condition(&d, "Progressing")["reason"] == "NewReplicaSetAvailable"
    })
    .await;
}

#[tokio::test]
async fn scaling_during_a_rollout_is_proportional() {
    let cluster = setup().await;
    let images = Arc::new(std::sync::Mutex::new(vec!["nginx:1".to_string()]));
    picky_kubelet(cluster.clone(), images.clone());
    let strategy =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}});
    cluster
        .create(
            &deployments(),
            NS,
            &deployment("prop", 4, "nginx:1", strategy),
        )
        .await
        .unwrap();
    eventually("first rollout", async || rolled_out(&cluster, "prop").await).await;
    // The new pods never get ready: the rollout stops after one surge pod.
    set_image(&cluster, "prop", "nginx:2").await;
    let sizes = async || {
        let mut v: Vec<(String, i64)> = list(&cluster, &rss())
            .await
            .iter()
            .map(|rs| {
                (
                    rs["spec"]["template"]["spec"]["containers"][0]["image"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                    rs["spec"]["replicas"].as_i64().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    eventually("surge pod", async || {
        sizes().await == [("nginx:1".to_string(), 4), ("nginx:2".to_string(), 1)]
    })
    .await;
    scale(&cluster, &deployments(), "prop", 8).await;
    eventually("scaled in proportion within the surge", async || {
        let s = sizes().await;
        s.iter().map(|(_, n)| n).sum::<i64>() == 9 && s[0].1 == 8 && s[1].1 == 1
    })
    .await;
    images.lock().unwrap().push("nginx:2".into());
    eventually("rollout finished at eight", async || {
        rolled_out(&cluster, "prop").await
            && sizes().await == [("nginx:1".to_string(), 0), ("nginx:2".to_string(), 8)]
    })
    .await;
}
