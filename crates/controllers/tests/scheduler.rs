//! The scheduler against the real API server, in-process.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use client::{Cluster, DeleteParams, ListParams, LocalCluster, Resource};
use controllers::Scheduler;
use serde_json::{Value, json};

async fn setup() -> Arc<dyn Cluster> {
    let server = apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
        .await
        .unwrap();
    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    tokio::spawn(Scheduler::new(cluster.clone()).run());
    // Keep the server alive for the test.
    std::mem::forget(server);
    cluster
}

fn merge(a: &mut Value, b: Value) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}

async fn node(c: &Arc<dyn Cluster>, name: &str, extra: Value) {
    let mut n = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                   "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"}}});
    merge(&mut n, extra);
    let status = n["status"].clone();
    let created = c.create(&Resource::nodes(), None, &n).await.unwrap();
    let mut with_status = created;
    with_status["status"] = status;
    c.update_status(&Resource::nodes(), None, &with_status)
        .await
        .unwrap();
}

async fn pod(c: &Arc<dyn Cluster>, name: &str, extra: Value) {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    merge(&mut p, extra);
    c.create(&Resource::pods(), Some("default"), &p)
        .await
        .unwrap();
}

fn requests(cpu: &str) -> Value {
    json!({"spec": {"containers": [{"name": "c", "image": "i",
        "resources": {"requests": {"cpu": cpu}}}]}})
}

async fn get_pod(c: &Arc<dyn Cluster>, name: &str) -> Value {
    c.get(&Resource::pods(), Some("default"), name)
        .await
        .unwrap()
}

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn bound(c: &Arc<dyn Cluster>, name: &str) -> String {
    eventually(&format!("{name} bound"), async || {
        get_pod(c, name).await["spec"]["nodeName"]
            .as_str()
            .map(String::from)
    })
    .await
}

fn condition(pod: &Value, t: &str) -> Option<Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
        .cloned()
}

async fn unschedulable(c: &Arc<dyn Cluster>, name: &str) -> String {
    eventually(&format!("{name} unschedulable"), async || {
        let p = get_pod(c, name).await;
        let cond = condition(&p, "PodScheduled")?;
        (cond["status"] == "False" && cond["reason"] == "Unschedulable")
            .then(|| cond["message"].as_str().unwrap().to_string())
    })
    .await
}

async fn events_of(c: &Arc<dyn Cluster>, pod: &str) -> Vec<Value> {
    c.list(&Resource::events(), Some("default"), &ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == pod)
        .collect()
}

/// Plays the kubelet's part for a pod deleted gracefully: removes it for good.
async fn force_delete(c: &Arc<dyn Cluster>, name: &str) {
    let params = DeleteParams {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    let _ = c
        .delete(&Resource::pods(), Some("default"), name, &params)
        .await;
}

#[tokio::test]
async fn binds_pods_and_records_scheduled_events() {
    let c = setup().await;
    node(&c, "n1", json!({})).await;
    pod(&c, "p", json!({})).await;
    let n = bound(&c, "p").await;
    assert_eq!(n, "n1");
    let p = get_pod(&c, "p").await;
    assert_eq!(condition(&p, "PodScheduled").unwrap()["status"], "True");
    let events = eventually("Scheduled event", async || {
        let e = events_of(&c, "p").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["reason"], "Scheduled");
    assert_eq!(events[0]["type"], "Normal");
    assert_eq!(
        events[0]["message"],
        "Successfully assigned default/p to n1"
    );
    assert_eq!(events[0]["source"]["component"], "default-scheduler");
    assert_eq!(events[0]["reportingComponent"], "default-scheduler");
}

#[tokio::test]
async fn pods_for_other_schedulers_are_left_alone() {
    let c = setup().await;
    node(&c, "n1", json!({})).await;
    pod(
        &c,
        "mine",
        json!({"spec": {"schedulerName": "my-scheduler"}}),
    )
    .await;
    pod(&c, "theirs", json!({})).await;
    bound(&c, "theirs").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let p = get_pod(&c, "mine").await;
    assert!(p["spec"]["nodeName"].is_null());
    assert!(condition(&p, "PodScheduled").is_none());
}

#[tokio::test]
async fn each_filter_picks_the_only_fitting_node() {
    let c = setup().await;
    node(
        &c,
        "labelled",
        json!({"metadata": {"labels": {"disk": "ssd", "gen": "5"}}}),
    )
    .await;
    node(
        &c,
        "tainted",
        json!({"spec": {"taints": [
        {"key": "dedicated", "value": "db", "effect": "NoSchedule"}]}}),
    )
    .await;
    node(
        &c,
        "draining",
        json!({"spec": {"taints": [
        {"key": "drain", "effect": "NoExecute"}]}}),
    )
    .await;
    node(&c, "cordoned", json!({"spec": {"unschedulable": true}})).await;
    node(
        &c,
        "big",
        json!({"status": {"allocatable": {"cpu": "64", "memory": "256Gi",
        "example.com/gpu": "2"}}}),
    )
    .await;

    pod(
        &c,
        "selector",
        json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
    )
    .await;
    pod(
        &c,
        "affinity",
        json!({"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "gen", "operator": "Gt", "values": ["4"]}]}]}}}}}),
    )
    .await;
    pod(&c, "tolerant", json!({"spec": {
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
              "values": ["tainted", "cordoned"]}]}]}}}}}))
    .await;
    pod(
        &c,
        "draining-ok",
        json!({"spec": {
        "tolerations": [{"key": "drain", "operator": "Exists"}],
        "nodeSelector": {"kubernetes.io/hostname": "draining"}}}),
    )
    .await;
    pod(
        &c,
        "hungry",
        json!({"spec": {"containers": [{"name": "c", "image": "i",
        "resources": {"requests": {"cpu": "10", "memory": "100Gi"}}}]}}),
    )
    .await;
    pod(
        &c,
        "gpu",
        json!({"spec": {"containers": [{"name": "c", "image": "i",
        "resources": {"limits": {"example.com/gpu": "1"}}}]}}),
    )
    .await;
    assert_eq!(bound(&c, "selector").await, "labelled");
    assert_eq!(bound(&c, "affinity").await, "labelled");
    assert_eq!(bound(&c, "tolerant").await, "tainted");
    assert_eq!(bound(&c, "draining-ok").await, "draining");
    assert_eq!(bound(&c, "hungry").await, "big");
    assert_eq!(bound(&c, "gpu").await, "big");

    // Plain pods never land on tainted, draining or cordoned nodes.
    for i in 0..10 {
        pod(&c, &format!("plain-{i}"), json!({})).await;
    }
    for i in 0..10 {
        let n = bound(&c, &format!("plain-{i}")).await;
        assert!(n == "labelled" || n == "big", "plain-{i} on {n}");
    }
}

#[tokio::test]
async fn unschedulable_pods_get_condition_event_and_retry_when_a_node_fits() {
    let c = setup().await;
    node(&c, "n1", json!({"status": {"allocatable": {"cpu": "1"}}})).await;
    node(&c, "n2", json!({"status": {"allocatable": {"cpu": "1"}}})).await;
    node(
        &c,
        "n3",
        json!({"spec": {"taints": [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]}}),
    )
    .await;
    pod(&c, "p", requests("2")).await;
    let message = unschedulable(&c, "p").await;
    assert_eq!(
        message,
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, \
         2 Insufficient cpu. preemption: 0/3 nodes are available: \
         1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    );
    let events = eventually("FailedScheduling event", async || {
        let e = events_of(&c, "p").await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert_eq!(events[0]["reason"], "FailedScheduling");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events[0]["message"], message);
    assert_eq!(events[0]["reportingComponent"], "default-scheduler");

    // A node that fits appears: the pod is retried and bound.
    node(&c, "n4", json!({})).await;
    assert_eq!(bound(&c, "p").await, "n4");
    let p = get_pod(&c, "p").await;
    assert_eq!(condition(&p, "PodScheduled").unwrap()["status"], "True");
}

#[tokio::test]
async fn retries_when_a_node_is_updated_and_when_pods_go_away() {
    let c = setup().await;
    node(
        &c,
        "small",
        json!({"status": {"allocatable": {"pods": "1"}}}),
    )
    .await;
    pod(&c, "first", json!({})).await;
    assert_eq!(bound(&c, "first").await, "small");
    pod(&c, "second", json!({})).await;
    let message = unschedulable(&c, "second").await;
    assert!(
        message.starts_with("0/1 nodes are available: 1 Too many pods."),
        "{message}"
    );
    force_delete(&c, "first").await;
    assert_eq!(bound(&c, "second").await, "small");

    // A cordoned node becomes schedulable.
    node(
        &c,
        "cordoned",
        json!({"spec": {"unschedulable": true}, "metadata": {"labels": {"only": "me"}}}),
    )
    .await;
    pod(
        &c,
        "third",
        json!({"spec": {"nodeSelector": {"only": "me"}}}),
    )
    .await;
    let message = unschedulable(&c, "third").await;
    assert!(
        message.contains("1 node(s) were unschedulable"),
        "{message}"
    );
    let mut n = c.get(&Resource::nodes(), None, "cordoned").await.unwrap();
    n["spec"]["unschedulable"] = json!(false);
    c.update(&Resource::nodes(), None, &n).await.unwrap();
    assert_eq!(bound(&c, "third").await, "cordoned");
}

#[tokio::test]
async fn anti_affinity_spreads_pods_and_affinity_follows_them() {
    let c = setup().await;
    for n in ["n1", "n2", "n3"] {
        node(&c, n, json!({})).await;
    }
    let anti = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "web"}},
        "topologyKey": "kubernetes.io/hostname"}]}}}});
    for i in 0..3 {
        pod(&c, &format!("web-{i}"), anti.clone()).await;
    }
    let mut nodes = HashSet::new();
    for i in 0..3 {
        nodes.insert(bound(&c, &format!("web-{i}")).await);
    }
    assert_eq!(nodes.len(), 3);
    pod(&c, "web-3", anti).await;
    let message = unschedulable(&c, "web-3").await;
    assert!(
        message.starts_with(
            "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."
        ),
        "{message}"
    );

    // Required affinity: waits for its partner, then joins it.
    pod(&c, "cache", json!({"spec": {"affinity": {"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {"matchLabels": {"app": "db"}},
        "topologyKey": "kubernetes.io/hostname"}]}}}}))
    .await;
    let message = unschedulable(&c, "cache").await;
    assert!(
        message.contains("3 node(s) didn't match pod affinity rules"),
        "{message}"
    );
    pod(&c, "db", json!({"metadata": {"labels": {"app": "db"}}})).await;
    let db_node = bound(&c, "db").await;
    assert_eq!(bound(&c, "cache").await, db_node);
}

#[tokio::test]
async fn topology_spread_balances_zones() {
    let c = setup().await;
    node(&c, "a1", json!({"metadata": {"labels": {"zone": "a"}}})).await;
    node(&c, "a2", json!({"metadata": {"labels": {"zone": "a"}}})).await;
    node(&c, "b1", json!({"metadata": {"labels": {"zone": "b"}}})).await;
    let spread = json!({"metadata": {"labels": {"app": "s"}}, "spec": {"topologySpreadConstraints": [{
        "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "s"}}}]}});
    let mut zones: HashMap<&str, usize> = HashMap::new();
    for i in 0..6 {
        let name = format!("s-{i}");
        pod(&c, &name, spread.clone()).await;
        let n = bound(&c, &name).await;
        *zones
            .entry(if n.starts_with('a') { "a" } else { "b" })
            .or_default() += 1;
    }
    assert_eq!(zones["a"], 3);
    assert_eq!(zones["b"], 3);

    // A node without the key cannot take a pod under a hard constraint.
    node(&c, "nokey", json!({"metadata": {"labels": {"only": "x"}}})).await;
    let mut p = spread.clone();
    merge(&mut p, json!({"spec": {"nodeSelector": {"only": "x"}}}));
    pod(&c, "s-x", p).await;
    let message = unschedulable(&c, "s-x").await;
    assert!(
        message.contains(
            "1 node(s) didn't match pod topology spread constraints (missing required label)"
        ),
        "{message}"
    );
}

#[tokio::test]
async fn higher_priority_pods_preempt_lower_ones() {
    let c = setup().await;
    // Pods get their priority from a PriorityClass, as Priority admission requires.
    let classes = Resource::new(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
    );
    for value in [1, 50, 100] {
        let class = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": format!("p{value}")}, "value": value});
        c.create(&classes, None, &class).await.unwrap();
    }
    node(&c, "n1", json!({"status": {"allocatable": {"cpu": "2"}}})).await;
    let mut low = requests("2");
    merge(&mut low, json!({"spec": {"priorityClassName": "p1"}}));
    pod(&c, "low", low).await;
    assert_eq!(bound(&c, "low").await, "n1");

    let mut high = requests("1");
    merge(&mut high, json!({"spec": {"priorityClassName": "p100"}}));
    pod(&c, "high", high).await;
    // The victim is deleted gracefully; finish the deletion as a kubelet would.
    eventually("victim marked for deletion", async || {
        let p = c
            .get(&Resource::pods(), Some("default"), "low")
            .await
            .ok()?;
        p["metadata"]["deletionTimestamp"].is_string().then_some(())
    })
    .await;
    let nominated = eventually("nominated node", async || {
        get_pod(&c, "high").await["status"]["nominatedNodeName"]
            .as_str()
            .map(String::from)
    })
    .await;
    assert_eq!(nominated, "n1");
    // A pod of lower priority than the nominated one does not take the room being freed.
    let mut sneaky = requests("2");
    merge(&mut sneaky, json!({"spec": {"priorityClassName": "p50"}}));
    pod(&c, "sneaky", sneaky).await;
    unschedulable(&c, "sneaky").await;
    force_delete(&c, "low").await;
    assert_eq!(bound(&c, "high").await, "n1");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(get_pod(&c, "sneaky").await["spec"]["nodeName"].is_null());
    let preempted = events_of(&c, "low").await;
    assert!(
        preempted.iter().any(|e| e["reason"] == "Preempted"),
        "{preempted:?}"
    );

    // Equal priority never preempts.
    let mut peer = requests("2");
    merge(&mut peer, json!({"spec": {"priorityClassName": "p100"}}));
    pod(&c, "peer", peer).await;
    let message = unschedulable(&c, "peer").await;
    assert!(
        message.ends_with("1 No preemption victims found for incoming pod."),
        "{message}"
    );
    assert!(
        c.get(&Resource::pods(), Some("default"), "high")
            .await
            .unwrap()["metadata"]["deletionTimestamp"]
            .is_null()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pods_bind_quickly() {
    let server = apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
        .await
        .unwrap();
    let c: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    std::mem::forget(server);
    for i in 0..50 {
        node(&c, &format!("n{i}"), json!({})).await;
    }
    let total = 3000;
    for i in 0..total {
        pod(&c, &format!("p{i}"), json!({})).await;
    }
    let started = std::time::Instant::now();
    tokio::spawn(Scheduler::new(c.clone()).run());
    let mut bound_pods = 0;
    for _ in 0..600 {
        let unbound = ListParams {
            field_selector: Some("spec.nodeName=".into()),
            ..Default::default()
        };
        let list = c
            .list(&Resource::pods(), Some("default"), &unbound)
            .await
            .unwrap();
        bound_pods = total - list.items.len();
        if bound_pods == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bound_pods, total);
    let elapsed = started.elapsed();
    println!(
        "bound {total} pods on 50 nodes in {elapsed:?} ({:.0} pods/s)",
        total as f64 / elapsed.as_secs_f64()
    );
    let list = c
        .list(&Resource::pods(), Some("default"), &ListParams::default())
        .await
        .unwrap();
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for p in &list.items {
        *per_node
            .entry(p["spec"]["nodeName"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    // Least-allocated scoring and random ties spread them over every node.
    assert_eq!(per_node.len(), 50);
    assert!(
        per_node.values().all(|&n| (20..=100).contains(&n)),
        "{per_node:?}"
    );
}

/// A larger run for figures: `cargo test --release -p controllers --test scheduler scale --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn scale_thousands_of_nodes() {
    let server = apiserver::ApiServer::new(store::LocalStore::in_memory(), "127.0.0.1:0".into())
        .await
        .unwrap();
    let c: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    std::mem::forget(server);
    let (nodes, total) = (2000, 20_000);
    for i in 0..nodes {
        node(
            &c,
            &format!("n{i}"),
            json!({"metadata": {"labels": {"zone": format!("z{}", i % 3)}}}),
        )
        .await;
    }
    for i in 0..total {
        pod(&c, &format!("p{i}"), requests("100m")).await;
    }
    let started = std::time::Instant::now();
    tokio::spawn(Scheduler::new(c.clone()).run());
    let mut bound_pods = 0;
    for _ in 0..600 {
        let unbound = ListParams {
            field_selector: Some("spec.nodeName=".into()),
            ..Default::default()
        };
        let list = c
            .list(&Resource::pods(), Some("default"), &unbound)
            .await
            .unwrap();
        bound_pods = total - list.items.len();
        if bound_pods == total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(bound_pods, total);
    let elapsed = started.elapsed();
    println!(
        "bound {total} pods on {nodes} nodes in {elapsed:?} ({:.0} pods/s)",
        total as f64 / elapsed.as_secs_f64()
    );
}
