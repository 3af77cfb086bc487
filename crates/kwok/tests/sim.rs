//! The simulator end to end: in-process (`kwok apiserver --simulate`) and as the separate `kwok`
//! process talking to the server over HTTPS with a kubeconfig, as against a real cluster.

mod common;

use std::future::Future;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use client::{Cluster, DeleteParams, HttpCluster, ListParams, Resource};
use common::{Server, free_port, kwok_bin, write};
use serde_json::{Value, json};

/// A `kwok` simulator process, killed on drop.
struct Sim {
    child: Child,
    log: PathBuf,
}

impl Sim {
    fn start(server: &Server, args: &[&str]) -> Sim {
        let log = server.dir.path().join(format!("kwok-{}.log", free_port()));
        let child = Command::new(kwok_bin())
            .arg(format!("--kubeconfig={}", server.kubeconfig().display()))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Sim { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn cluster(server: &Server) -> HttpCluster {
    HttpCluster::from_kubeconfig(Some(&server.kubeconfig()))
        .await
        .unwrap()
}

/// Polls `f` until it returns `Some`, or panics with `what` after `timeout`.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn node(name: &str, cidr: Option<&str>) -> Value {
    let mut n = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"type": "kwok"}}});
    if let Some(c) = cidr {
        n["spec"] = json!({"podCIDR": c, "podCIDRs": [c]});
    }
    n
}

fn pod(name: &str, node: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "nginx"}, {"name": "side", "image": "busybox"}]},
    })
}

async fn get(c: &dyn Cluster, r: &Resource, ns: Option<&str>, name: &str) -> Option<Value> {
    c.get(r, ns, name).await.ok()
}

fn condition(obj: &Value, t: &str) -> Option<String> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
        .and_then(|c| c["status"].as_str().map(String::from))
}

fn in_cidr(ip: &str, base: [u8; 4], prefix: u32) -> bool {
    let ip: Ipv4Addr = ip.parse().unwrap();
    let mask = u32::MAX << (32 - prefix);
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(base)) & mask)
}

/// Runs the default node and pod scenario against any cluster the simulator manages.
async fn default_scenario(c: &dyn Cluster, node_ip: Option<&str>) {
    let pods = Resource::pods();
    c.create(&Resource::nodes(), None, &node("n1", Some("10.244.7.0/24")))
        .await
        .unwrap();
    // A pod bound at create time, with an init container.
    let mut p1 = pod("p1", "n1");
    p1["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
    c.create(&pods, Some("default"), &p1).await.unwrap();
    let mut hn = pod("hn", "n1");
    hn["spec"]["hostNetwork"] = json!(true);
    c.create(&pods, Some("default"), &hn).await.unwrap();
    // A pod bound through pods/binding (by hand: the built-in scheduler leaves pods that
    // name another scheduler alone).
    let mut p2 = pod("p2", "n1");
    p2["spec"].as_object_mut().unwrap().remove("nodeName");
    p2["spec"]["schedulerName"] = json!("manual-scheduler");
    c.create(&pods, Some("default"), &p2).await.unwrap();
    c.bind("default", "p2", "n1").await.unwrap();
    // A Job's pod. The Job exists (or the garbage collector would take the pod away before it
    // is seen Succeeded) and runs no pods of its own (parallelism 0); not being its controller,
    // the pod is neither adopted nor counted by the Job controller.
    let jobs = Resource::new("batch", "v1", "jobs", "Job", true);
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "job"},
        "spec": {"parallelism": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox"}]}}}});
    let job = c.create(&jobs, Some("default"), &job).await.unwrap();
    let mut job_pod = pod("job-1", "n1");
    job_pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "batch/v1", "kind": "Job", "name": "job", "uid": job["metadata"]["uid"]}]);
    job_pod["spec"]["restartPolicy"] = json!("Never");
    c.create(&pods, Some("default"), &job_pod).await.unwrap();

    let n = wait_for("node n1 Ready", Duration::from_secs(20), || async {
        get(c, &Resource::nodes(), None, "n1")
            .await
            .filter(|n| condition(n, "Ready").as_deref() == Some("True"))
    })
    .await;
    assert_eq!(n["status"]["phase"], "Running");
    assert_eq!(n["status"]["allocatable"]["pods"], "1M");
    assert_eq!(n["status"]["nodeInfo"]["operatingSystem"], "linux");
    assert_eq!(condition(&n, "MemoryPressure").as_deref(), Some("False"));
    if let Some(ip) = node_ip {
        assert_eq!(n["status"]["addresses"][0]["address"], ip);
    }

    for name in ["p1", "p2"] {
        let p = wait_for(
            &format!("pod {name} Running"),
            Duration::from_secs(20),
            || async {
                get(c, &pods, Some("default"), name)
                    .await
                    .filter(|p| p["status"]["phase"] == "Running")
            },
        )
        .await;
        assert_eq!(condition(&p, "Ready").as_deref(), Some("True"));
        let ip = p["status"]["podIP"].as_str().unwrap();
        assert!(in_cidr(ip, [10, 244, 7, 0], 24), "{ip} outside the podCIDR");
        let statuses = p["status"]["containerStatuses"].as_array().unwrap();
        assert_eq!(statuses.len(), 2);
        assert!(
            statuses
                .iter()
                .all(|s| s["ready"] == true && s["state"]["running"].is_object())
        );
        if name == "p1" {
            assert_eq!(
                p["status"]["initContainerStatuses"][0]["state"]["terminated"]["reason"],
                "Completed"
            );
        }
        if let Some(node_ip) = node_ip {
            assert_eq!(p["status"]["hostIP"], node_ip);
        }
    }
    let ip1 = get(c, &pods, Some("default"), "p1").await.unwrap()["status"]["podIP"].clone();
    let ip2 = get(c, &pods, Some("default"), "p2").await.unwrap()["status"]["podIP"].clone();
    assert_ne!(ip1, ip2);
    let hn = wait_for(
        "host-network pod Running",
        Duration::from_secs(20),
        || async {
            get(c, &pods, Some("default"), "hn")
                .await
                .filter(|p| p["status"]["phase"] == "Running")
        },
    )
    .await;
    if let Some(node_ip) = node_ip {
        assert_eq!(hn["status"]["podIP"], node_ip);
    }
    wait_for(
        "the Job's pod Succeeded",
        Duration::from_secs(20),
        || async {
            get(c, &pods, Some("default"), "job-1")
                .await
                .filter(|p| p["status"]["phase"] == "Succeeded")
        },
    )
    .await;

    // Graceful deletion completes, and the IP goes back to the pool.
    let answer = c
        .delete(&pods, Some("default"), "p1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(answer["metadata"]["deletionTimestamp"].is_string());
    wait_for("p1 gone", Duration::from_secs(20), || async {
        match c.get(&pods, Some("default"), "p1").await {
            Err(e) if e.is_not_found() => Some(()),
            _ => None,
        }
    })
    .await;
    c.create(&pods, Some("default"), &pod("p3", "n1"))
        .await
        .unwrap();
    let p3 = wait_for("p3 Running", Duration::from_secs(20), || async {
        get(c, &pods, Some("default"), "p3")
            .await
            .filter(|p| p["status"]["phase"] == "Running")
    })
    .await;
    assert_eq!(p3["status"]["podIP"], ip1, "the freed IP is reused");

    // A user finalizer holds the pod until it is removed.
    let mut fin = pod("fin", "n1");
    fin["metadata"]["finalizers"] = json!(["example.com/hold"]);
    c.create(&pods, Some("default"), &fin).await.unwrap();
    wait_for("fin Running", Duration::from_secs(20), || async {
        get(c, &pods, Some("default"), "fin")
            .await
            .filter(|p| p["status"]["phase"] == "Running")
    })
    .await;
    c.delete(&pods, Some("default"), "fin", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let held = get(c, &pods, Some("default"), "fin")
        .await
        .expect("held by its finalizer");
    assert!(held["metadata"]["deletionTimestamp"].is_string());
    c.patch(
        &pods,
        Some("default"),
        "fin",
        &client::Patch::Merge(json!({"metadata": {"finalizers": null}})),
        None,
    )
    .await
    .unwrap();
    wait_for("fin gone", Duration::from_secs(20), || async {
        match c.get(&pods, Some("default"), "fin").await {
            Err(e) if e.is_not_found() => Some(()),
            _ => None,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_simulator_plays_default_stages() {
    let server = Server::start_with(&["--simulate"]);
    let c = cluster(&server).await;
    default_scenario(&c, None).await;
    let lease = wait_for("the node lease", Duration::from_secs(20), || async {
        get(&c, &Resource::leases(), Some("kube-node-lease"), "n1").await
    })
    .await;
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 40);
    assert_eq!(lease["metadata"]["ownerReferences"][0]["kind"], "Node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_over_https_with_kubeconfig() {
    let server = Server::start();
    let port = free_port();
    let sim = Sim::start(
        &server,
        &[
            "--manage-all-nodes=true",
            "--node-ip=10.9.9.9",
            "--node-lease-duration-seconds=4",
            &format!("--server-address=127.0.0.1:{port}"),
        ],
    );
    let c = cluster(&server).await;
    default_scenario(&c, Some("10.9.9.9")).await;

    // The lease renews about every second (a quarter of 4 s).
    let leases = Resource::leases();
    let first = wait_for("the node lease", Duration::from_secs(20), || async {
        get(&c, &leases, Some("kube-node-lease"), "n1").await
    })
    .await;
    assert_eq!(first["spec"]["leaseDurationSeconds"], 4);
    let renewed = wait_for("a lease renewal", Duration::from_secs(10), || async {
        get(&c, &leases, Some("kube-node-lease"), "n1")
            .await
            .filter(|l| l["spec"]["renewTime"] != first["spec"]["renewTime"])
    })
    .await;
    assert_eq!(
        renewed["spec"]["holderIdentity"],
        first["spec"]["holderIdentity"]
    );

    let health = http_get(port, "/healthz").await;
    assert!(health.ends_with("ok"), "{health}");
    let metrics = http_get(port, "/metrics").await;
    assert!(
        metrics.contains("kwok_stage_played_total{stage=\"pod-ready\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("kwok_managed_nodes 1"), "{metrics}");
    assert!(sim.log().contains("Watch all nodes"), "{}", sim.log());
}

async fn http_get(port: u16, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

const CUSTOM: &str = r#"
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options:
  manageNodesWithAnnotationSelector: kwok.x-k8s.io/node=fake
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: slow-start
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchAnnotations:
      speed: slow
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
  delay:
    durationMilliseconds: 1000
    jitterDurationMilliseconds: 1500
  next:
    event:
      type: Normal
      reason: SlowStart
      message: started slowly
    finalizers:
      add:
      - value: 'kwok.x-k8s.io/test'
    statusTemplate: |
      {{ $now := Now }}
      phase: Running
      podIP: {{ PodIPWith .spec.nodeName false .metadata.uid .metadata.name .metadata.namespace | Quote }}
      message: {{ printf "started on %s" .spec.nodeName | Quote }}
      startTime: {{ $now | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: release
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'Exists'
  next:
    finalizers:
      empty: true
    delete: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: broken-selector
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'Sometimes'
  next:
    statusTemplate: 'phase: Failed'
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: broken-template
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchLabels: {x: "z"}
  next:
    statusTemplate: 'phase: {{ .status.phase '
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: configmap-played
spec:
  resourceRef:
    apiGroup: v1
    kind: ConfigMap
  selector:
    matchLabels:
      play: "yes"
    matchExpressions:
    - key: '.data.played'
      operator: 'DoesNotExist'
  next:
    patches:
    - type: merge
      template: |
        data:
          played: {{ .metadata.name | Quote }}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_stage_file_in_upstream_format() {
    let server = Server::start();
    let config = write(server.dir.path(), "kwok.yaml", CUSTOM);
    let sim = Sim::start(&server, &[&format!("--config={}", config.display())]);
    let c = cluster(&server).await;
    let pods = Resource::pods();
    let mut managed = node("fake-1", Some("10.50.0.0/24"));
    managed["metadata"]["annotations"] = json!({"kwok.x-k8s.io/node": "fake"});
    c.create(&Resource::nodes(), None, &managed).await.unwrap();
    c.create(&Resource::nodes(), None, &node("real-1", None))
        .await
        .unwrap();

    let mut slow = pod("slow", "fake-1");
    slow["metadata"]["annotations"] = json!({"speed": "slow"});
    let created = Instant::now();
    c.create(&pods, Some("default"), &slow).await.unwrap();
    c.create(&pods, Some("default"), &pod("plain", "fake-1"))
        .await
        .unwrap();
    let mut elsewhere = pod("elsewhere", "real-1");
    elsewhere["metadata"]["annotations"] = json!({"speed": "slow"});
    c.create(&pods, Some("default"), &elsewhere).await.unwrap();

    let p = wait_for("slow pod Running", Duration::from_secs(20), || async {
        get(&c, &pods, Some("default"), "slow")
            .await
            .filter(|p| p["status"]["phase"] == "Running")
    })
    .await;
    let took = created.elapsed();
    assert!(
        took >= Duration::from_millis(1000),
        "played after {took:?}, before its delay"
    );
    assert!(took < Duration::from_secs(8), "played after {took:?}");
    assert_eq!(p["status"]["message"], "started on fake-1");
    assert!(in_cidr(
        p["status"]["podIP"].as_str().unwrap(),
        [10, 50, 0, 0],
        24
    ));
    assert_eq!(p["metadata"]["finalizers"], json!(["kwok.x-k8s.io/test"]));
    let events = c
        .list(&Resource::events(), Some("default"), &ListParams::default())
        .await
        .unwrap();
    let event = events
        .items
        .iter()
        .find(|e| e["reason"] == "SlowStart")
        .expect("the SlowStart event");
    assert_eq!(event["involvedObject"]["name"], "slow");
    assert_eq!(event["message"], "started slowly");
    assert_eq!(event["source"]["component"], "kwok_controller");

    // No stage matches the plain pod; the pod on an unmanaged node is left alone.
    for name in ["plain", "elsewhere"] {
        let p = get(&c, &pods, Some("default"), name).await.unwrap();
        assert_eq!(p["status"]["phase"], "Pending", "{name}");
    }

    // Deletion: the `release` stage empties the finalizers and deletes.
    c.delete(&pods, Some("default"), "slow", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("slow gone", Duration::from_secs(20), || async {
        match c.get(&pods, Some("default"), "slow").await {
            Err(e) if e.is_not_found() => Some(()),
            _ => None,
        }
    })
    .await;

    // Any kind can be staged.
    let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
    c.create(&cms, Some("default"), &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"play": "yes"}}}))
        .await
        .unwrap();
    wait_for("the ConfigMap stage", Duration::from_secs(20), || async {
        get(&c, &cms, Some("default"), "cm")
            .await
            .filter(|o| o["data"]["played"] == "cm")
    })
    .await;

    // Invalid stages are reported by name and field, and skipped.
    let log = sim.log();
    assert!(
        log.contains("stage \"broken-selector\": spec.selector.matchExpressions[0].operator"),
        "{log}"
    );
    assert!(
        log.contains("stage \"broken-template\": spec.next.statusTemplate"),
        "{log}"
    );
    assert!(log.contains("No node stages found"), "{log}");
}

const STAGE_CRD: &str = r#"{
  "apiVersion": "apiextensions.k8s.io/v1",
  "kind": "CustomResourceDefinition",
  "metadata": {"name": "stages.kwok.x-k8s.io"},
  "spec": {
    "group": "kwok.x-k8s.io",
    "names": {"kind": "Stage", "listKind": "StageList", "plural": "stages", "singular": "stage"},
    "scope": "Cluster",
    "versions": [{"name": "v1alpha1", "served": true, "storage": true,
      "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
      "subresources": {"status": {}}}]
  }
}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_from_the_api_with_enable_crds() {
    let server = Server::start();
    let c = cluster(&server).await;
    let crds = Resource::new(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
    );
    c.create(&crds, None, &serde_json::from_str(STAGE_CRD).unwrap())
        .await
        .unwrap();
    let stages = kwok::sim::stage_resource();
    wait_for("the Stage API", Duration::from_secs(10), || async {
        c.list(&stages, None, &ListParams::default()).await.ok()
    })
    .await;
    // The default set, loaded as objects.
    for s in kwok::stage::defaults::default_stages(false) {
        c.create(&stages, None, &serde_json::to_value(&s).unwrap())
            .await
            .unwrap();
    }
    let _sim = Sim::start(&server, &["--manage-all-nodes", "--enable-crds=Stage"]);
    c.create(&Resource::nodes(), None, &node("n1", Some("10.60.0.0/24")))
        .await
        .unwrap();
    c.create(&Resource::pods(), Some("default"), &pod("p", "n1"))
        .await
        .unwrap();
    wait_for(
        "node Ready from API stages",
        Duration::from_secs(20),
        || async {
            get(&c, &Resource::nodes(), None, "n1")
                .await
                .filter(|n| condition(n, "Ready").as_deref() == Some("True"))
        },
    )
    .await;
    wait_for(
        "pod Running from API stages",
        Duration::from_secs(20),
        || async {
            get(&c, &Resource::pods(), Some("default"), "p")
                .await
                .filter(|p| p["status"]["phase"] == "Running")
        },
    )
    .await;

    // A Stage added later plays too.
    let extra = kwok::stage::stages_from_yaml(
        r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata: {name: label-node}
spec:
  resourceRef: {apiGroup: v1, kind: Node}
  # The default node Stages match too; a weight makes this one the pick instead of a coin toss.
  weight: 1
  selector:
    matchLabels: {mark: "please"}
  next:
    patches:
    - template: |
        metadata:
          labels:
            marked: "done"
"#,
    )
    .unwrap();
    c.create(&stages, None, &serde_json::to_value(&extra[0]).unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut n2 = node("n2", None);
    n2["metadata"]["labels"] = json!({"mark": "please"});
    c.create(&Resource::nodes(), None, &n2).await.unwrap();
    wait_for("the new Stage plays", Duration::from_secs(20), || async {
        get(&c, &Resource::nodes(), None, "n2")
            .await
            .filter(|n| n["metadata"]["labels"]["marked"] == "done")
    })
    .await;
}

#[test]
fn flag_errors_match_upstream() {
    let out = Command::new(kwok_bin())
        .args(["--kubeconfig=/nonexistent", "--master=https://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no nodes are managed"));
    let out = Command::new(kwok_bin())
        .args([
            "--manage-all-nodes",
            "--manage-nodes-with-label-selector=a=b",
        ])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("manage-all-nodes is conflicted"));
    let out = Command::new(kwok_bin())
        .args(["--manage-all-nodes", "--enable-crds=Foo"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid crd: Foo"));
}

/// Volume stages as upstream KWOK writes them: CEL selectors, an `apply` step that creates
/// another object (the claim's volume), and a merge `apply` to that object once the claim goes.
const VOLUME_STAGES: &str = r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: claim-provision
spec:
  resourceRef: {apiGroup: v1, kind: PersistentVolumeClaim}
  selector:
    matchExpressions:
    - cel: {expression: "self.spec.storageClassName == 'sim-volume'"}
    - cel: {expression: "!has(self.metadata.deletionTimestamp)"}
    - cel: {expression: "!has(self.spec.volumeName)"}
  steps:
  - apply:
      template: |
        apiVersion: v1
        kind: PersistentVolume
        metadata:
          name: pvc-{{ .metadata.uid }}
        spec:
          accessModes:
          {{ YAML .spec.accessModes 2 }}
          capacity:
          {{ YAML .spec.resources.requests 2 }}
          storageClassName: {{ .spec.storageClassName | Quote }}
          claimRef:
            name: {{ .metadata.name | Quote }}
            namespace: {{ .metadata.namespace | Quote }}
            uid: {{ .metadata.uid | Quote }}
          hostPath:
            path: /tmp/sim/pvc-{{ .metadata.uid }}
  - patch:
      root: spec
      template: |
        volumeName: pvc-{{ .metadata.uid }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: volume-bind
spec:
  resourceRef: {apiGroup: v1, kind: PersistentVolume}
  selector:
    matchExpressions:
    - cel: {expression: "self.spec.storageClassName == 'sim-volume'"}
    - cel: {expression: "has(self.spec.claimRef.name)"}
    - cel: {expression: "!(self.status.phase in ['Bound', 'Released', 'Failed'])"}
  weightFrom:
    cel: {expression: "size(self.metadata.name)"}
  delay:
    durationFrom:
      cel: {expression: "duration('200ms')"}
  steps:
  - patch:
      root: status
      subresource: status
      template: |
        phase: Bound
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: claim-release
spec:
  resourceRef: {apiGroup: v1, kind: PersistentVolumeClaim}
  selector:
    matchExpressions:
    - cel: {expression: "self.spec.storageClassName == 'sim-volume' && has(self.metadata.deletionTimestamp)"}
  steps:
  - apply:
      type: merge
      template: |
        apiVersion: v1
        kind: PersistentVolume
        metadata:
          name: {{ .spec.volumeName | Quote }}
          annotations:
            sim/released-by: {{ .metadata.name | Quote }}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cel_selectors_and_apply_steps_provision_volumes() {
    let server = Server::start();
    let stages = write(server.dir.path(), "volumes.yaml", VOLUME_STAGES);
    let _sim = Sim::start(
        &server,
        &[
            "--manage-all-nodes",
            &format!("--config={}", stages.display()),
        ],
    );
    let c = cluster(&server).await;
    let claims = Resource::new(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
    );
    let volumes = Resource::new("", "v1", "persistentvolumes", "PersistentVolume", false);
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data", "namespace": "default", "finalizers": ["test/hold"]},
        "spec": {"storageClassName": "sim-volume", "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
    let created = c.create(&claims, Some("default"), &claim).await.unwrap();
    let volume_name = format!("pvc-{}", created["metadata"]["uid"].as_str().unwrap());

    let volume = wait_for(
        "the volume is created and bound",
        Duration::from_secs(20),
        || async {
            get(&c, &volumes, None, &volume_name)
                .await
                .filter(|v| v["status"]["phase"] == "Bound")
        },
    )
    .await;
    assert_eq!(volume["spec"]["capacity"]["storage"], "1Gi");
    assert_eq!(volume["spec"]["claimRef"]["name"], "data");
    // The stage's second step names the volume in the claim; the volume binder may bind the
    // volume before that step is done.
    wait_for(
        "the claim names its volume",
        Duration::from_secs(20),
        || async {
            get(&c, &claims, Some("default"), "data")
                .await
                .filter(|claim| claim["spec"]["volumeName"] == volume_name.as_str())
        },
    )
    .await;

    // A claim of another class is left alone.
    let mut other = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "other", "namespace": "default"},
        "spec": {"storageClassName": "elsewhere", "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1Gi"}}}});
    other = c.create(&claims, Some("default"), &other).await.unwrap();

    // Deleting the claim marks its volume (the claim waits on its finalizer meanwhile).
    c.delete(&claims, Some("default"), "data", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("the volume is marked", Duration::from_secs(20), || async {
        get(&c, &volumes, None, &volume_name)
            .await
            .filter(|v| v["metadata"]["annotations"]["sim/released-by"] == "data")
    })
    .await;
    let other = get(&c, &claims, Some("default"), "other")
        .await
        .filter(|o| o["metadata"]["uid"] == other["metadata"]["uid"])
        .unwrap();
    assert!(other["spec"].get("volumeName").is_none(), "{other}");
}

/// A Stage whose patch names `impersonation.username`: the separate simulator writes as that
/// user, so RBAC decides, and nothing is played until the user may patch.
const IMPERSONATED: &str = r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: configmap-stamped-by-bot
spec:
  resourceRef:
    apiGroup: v1
    kind: ConfigMap
  selector:
    matchLabels:
      stamp: "yes"
    matchExpressions:
    - key: '.data.stamped'
      operator: 'DoesNotExist'
  next:
    patches:
    - type: merge
      impersonation:
        username: stamp-bot
      template: |
        data:
          stamped: "yes"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_patches_are_made_as_the_impersonated_user() {
    let server = Server::start();
    let config = write(server.dir.path(), "kwok.yaml", IMPERSONATED);
    let sim = Sim::start(
        &server,
        &[
            "--manage-all-nodes",
            &format!("--config={}", config.display()),
        ],
    );
    let c = cluster(&server).await;
    let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
    let cm = json!({"metadata": {"name": "target", "labels": {"stamp": "yes"}}, "data": {}});
    c.create(&cms, Some("default"), &cm).await.unwrap();
    wait_for(
        "a refused patch as stamp-bot in the log",
        Duration::from_secs(20),
        || async { sim.log().contains("stamp-bot").then_some(()) },
    )
    .await;
    let unstamped = get(&c, &cms, Some("default"), "target").await.unwrap();
    assert!(unstamped["data"]["stamped"].is_null(), "{unstamped}");

    server.ok(
        33,
        &[
            "create",
            "role",
            "stamper",
            "--verb=get,patch",
            "--resource=configmaps",
        ],
    );
    server.ok(
        33,
        &[
            "create",
            "rolebinding",
            "stamper",
            "--role=stamper",
            "--user=stamp-bot",
        ],
    );
    wait_for(
        "the stage played as stamp-bot",
        Duration::from_secs(30),
        || async {
            get(&c, &cms, Some("default"), "target")
                .await
                .filter(|o| o["data"]["stamped"] == "yes")
        },
    )
    .await;
}

/// Upstream's benchmark binds thousands of pods to one node, more than its pod CIDR holds. Every
/// pod still goes Running; the CIDR's addresses go to one pod each and the rest get none from
/// it; the full CIDR is reported once, not once per pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_pods_on_one_node_beyond_its_pod_cidr() {
    let server = Server::start();
    let sim = Sim::start(&server, &["--manage-all-nodes=true"]);
    let c = cluster(&server).await;
    c.create(&Resource::nodes(), None, &node("n1", Some("10.244.9.0/29")))
        .await
        .unwrap();
    let pods = Resource::pods();
    const PODS: usize = 40;
    for i in 0..PODS {
        c.create(&pods, Some("default"), &pod(&format!("p{i}"), "n1"))
            .await
            .unwrap();
    }
    let running = wait_for("every pod Running", Duration::from_secs(60), || async {
        let list = c
            .list(&pods, Some("default"), &ListParams::default())
            .await
            .ok()?;
        (list.items.len() == PODS && list.items.iter().all(|p| p["status"]["phase"] == "Running"))
            .then_some(list.items)
    })
    .await;
    let mut ips: Vec<&str> = running
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    // A /29 has six addresses for pods (network and broadcast addresses excluded).
    assert_eq!(ips.len(), 6, "{ips:?}");
    assert!(
        ips.iter().all(|ip| in_cidr(ip, [10, 244, 9, 0], 29)),
        "{ips:?}"
    );
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 6, "an address held twice: {ips:?}");
    let log = sim.log();
    assert_eq!(log.matches("no free pod address left").count(), 1, "{log}");
}

const FROM_ANNOTATION: &str = r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: from-annotation
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchLabels:
      play: "yes"
    matchExpressions:
    - key: '.status.message'
      operator: 'DoesNotExist'
  weightFrom:
    expressionFrom: '.metadata.annotations["weight"]'
  next:
    statusTemplate: |
      message: {{ .metadata.annotations.note | Quote }}
      reason: {{ index .spec.containers 1 "image" | Quote }}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: configmap-from-annotation
spec:
  resourceRef:
    apiGroup: v1
    kind: ConfigMap
  selector:
    matchLabels:
      play: "yes"
    matchExpressions:
    - key: '.data.played'
      operator: 'DoesNotExist'
  weightFrom:
    expressionFrom: '.metadata.annotations["weight"]'
  next:
    patches:
    - type: merge
      template: |
        data:
          played: {{ .metadata.annotations.note | Quote }}
          kept: {{ .data.kept | Quote }}
"#;

/// Objects found when the simulator starts are listed in the parts choosing a Stage reads (the
/// in-process list of `kwok apiserver --simulate`); a chosen Stage still renders from the whole
/// object, and an object no Stage matches is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_found_at_start_play_their_stages_from_the_whole_object() {
    let mut server = Server::start();
    let c = cluster(&server).await;
    let pods = Resource::pods();
    c.create(&Resource::nodes(), None, &node("n1", None))
        .await
        .unwrap();
    let mut marked = pod("marked", "n1");
    marked["metadata"]["labels"] = json!({"play": "yes"});
    marked["metadata"]["annotations"] = json!({"note": "from the annotation", "weight": "3"});
    c.create(&pods, Some("default"), &marked).await.unwrap();
    c.create(&pods, Some("default"), &pod("plain", "n1"))
        .await
        .unwrap();
    // ConfigMaps are always listed in parts (pods may also come one by one, when listed
    // before their node is known).
    let cms = Resource::new("", "v1", "configmaps", "ConfigMap", true);
    for (name, labels) in [("marked", json!({"play": "yes"})), ("plain", json!({}))] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "labels": labels,
                "annotations": {"note": "from the annotation", "weight": "2"}},
            "data": {"kept": "unread by selectors"}});
        c.create(&cms, Some("default"), &cm).await.unwrap();
    }
    server.kill9();
    let config = write(server.dir.path(), "stages.yaml", FROM_ANNOTATION);
    server.extra_args.extend([
        "--simulate".to_string(),
        format!("--config={}", config.display()),
    ]);
    server.launch();
    let played = wait_for("the Stage played", Duration::from_secs(20), || async {
        get(&c, &pods, Some("default"), "marked")
            .await
            .filter(|p| p["status"]["message"].is_string())
    })
    .await;
    assert_eq!(played["status"]["message"], "from the annotation");
    assert_eq!(played["status"]["reason"], "busybox");
    let plain = get(&c, &pods, Some("default"), "plain").await.unwrap();
    assert!(plain["status"].get("message").is_none(), "{plain}");
    assert_eq!(plain["status"]["phase"], "Pending");
    let played = wait_for(
        "the ConfigMap Stage played",
        Duration::from_secs(20),
        || async {
            get(&c, &cms, Some("default"), "marked")
                .await
                .filter(|cm| cm["data"]["played"].is_string())
        },
    )
    .await;
    assert_eq!(played["data"]["played"], "from the annotation");
    assert_eq!(played["data"]["kept"], "unread by selectors");
    let plain = get(&c, &cms, Some("default"), "plain").await.unwrap();
    assert!(plain["data"].get("played").is_none(), "{plain}");
}
