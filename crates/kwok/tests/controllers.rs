//! StatefulSets, DaemonSets, CronJobs, Endpoints, node lifecycle and ResourceQuotas through the
//! real `kwok apiserver`, driven by kubectl.

mod common;

use std::time::{Duration, Instant};

use common::Server;

fn apply(server: &Server, minor: u32, text: &str) {
    let out = server.kubectl_stdin(minor, &["apply", "-f", "-"], Some(text));
    assert!(
        out.status.success(),
        "apply failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Polls `kubectl get <args>` until `done` accepts the output, or panics after `timeout`.
fn wait_for(
    server: &Server,
    args: &[&str],
    timeout: Duration,
    what: &str,
    done: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let out = server.kubectl(33, args);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() && done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last output {text:?}, stderr {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn nodes(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            format!("---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {n}\n  labels:\n    type: kwok\n")
        })
        .collect()
}

fn lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

const STATEFULSET: &str = r#"
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: web
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx
  volumeClaimTemplates:
  - metadata:
      name: data
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
"#;

#[test]
fn statefulset_creates_pods_in_order_rolls_out_and_scales_down() {
    let server = Server::start_with(&["--simulate"]);
    apply(&server, 33, &nodes(&["node-0", "node-1"]));
    apply(&server, 33, STATEFULSET);
    let out = server.ok(
        33,
        &["rollout", "status", "statefulset/web", "--timeout=90s"],
    );
    assert!(out.contains("roll"), "{out}");
    let pods = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name} {.metadata.creationTimestamp} {.metadata.labels.apps\\.kubernetes\\.io/pod-index} {.metadata.labels.statefulset\\.kubernetes\\.io/pod-name} {.status.phase}{\"\\n\"}{end}",
        ],
    );
    let rows: Vec<Vec<&str>> = pods.lines().map(|l| l.split(' ').collect()).collect();
    assert_eq!(rows.len(), 3, "{pods}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], format!("web-{i}"), "{pods}");
        assert_eq!(row[2], i.to_string(), "{pods}");
        assert_eq!(row[3], format!("web-{i}"), "{pods}");
        assert_eq!(row[4], "Running", "{pods}");
    }
    // OrderedReady: each pod was created only after the one before it ran.
    let order = server.ok(
        33,
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=StatefulSet,reason=SuccessfulCreate",
            "--sort-by=.metadata.creationTimestamp",
            "-o",
            "jsonpath={range .items[*]}{.message}{\"\\n\"}{end}",
        ],
    );
    let created: Vec<&str> = order
        .lines()
        .filter(|l| l.starts_with("create Pod"))
        .collect();
    assert_eq!(
        created,
        [
            "create Pod web-0 in StatefulSet web successful",
            "create Pod web-1 in StatefulSet web successful",
            "create Pod web-2 in StatefulSet web successful",
        ],
        "{order}"
    );
    let claims = server.ok(33, &["get", "pvc", "-o", "name"]);
    assert_eq!(
        lines(&claims),
        [
            "persistentvolumeclaim/data-web-0",
            "persistentvolumeclaim/data-web-1",
            "persistentvolumeclaim/data-web-2"
        ]
    );
    let status = server.ok(
        33,
        &[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.replicas} {.status.readyReplicas} {.status.currentReplicas} {.status.updatedReplicas} {.status.availableReplicas}",
        ],
    );
    assert_eq!(status, "3 3 3 3 3");
    let revisions = server.ok(33, &["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(lines(&revisions).len(), 1, "{revisions}");

    // A new template rolls out from the highest ordinal down.
    server.ok(27, &["set", "image", "statefulset/web", "nginx=nginx:2"]);
    let out = server.ok(
        27,
        &["rollout", "status", "statefulset/web", "--timeout=90s"],
    );
    // kubectl 1.27 reports a (defaulted) partition of 0 as a partitioned roll out.
    assert!(out.contains("complete"), "{out}");
    let images = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
        ],
    );
    assert_eq!(lines(&images), ["nginx:2", "nginx:2", "nginx:2"]);
    let revs = server.ok(
        33,
        &[
            "get",
            "sts",
            "web",
            "-o",
            "jsonpath={.status.currentRevision} {.status.updateRevision}",
        ],
    );
    let (current, update) = revs.split_once(' ').unwrap();
    assert_eq!(current, update);
    let hashes = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={range .items[*]}{.metadata.labels.controller-revision-hash}{\"\\n\"}{end}",
        ],
    );
    assert!(hashes.lines().all(|h| h == update), "{hashes} vs {update}");

    // Scaling down removes the highest ordinal.
    server.ok(33, &["scale", "statefulset", "web", "--replicas=2"]);
    wait_for(
        &server,
        &["get", "pods", "-l", "app=web", "-o", "name"],
        Duration::from_secs(60),
        "web-2 is removed",
        |out| lines(out) == ["pod/web-0", "pod/web-1"],
    );
}

const DAEMONSET: &str = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      nodeSelector: {type: kwok}
      containers:
      - name: agent
        image: agent
"#;

#[test]
fn daemonset_runs_one_pod_per_node_and_follows_nodes() {
    let server = Server::start_with(&["--simulate"]);
    apply(&server, 33, &nodes(&["node-0", "node-1"]));
    // A node the selector leaves out, and one whose taint the pods do not tolerate.
    apply(
        &server,
        33,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: other\n  labels:\n    type: real\n",
    );
    apply(
        &server,
        33,
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: tainted\n  labels:\n    type: kwok\nspec:\n  taints:\n  - key: dedicated\n    value: db\n    effect: NoSchedule\n",
    );
    apply(&server, 33, DAEMONSET);
    let out = server.ok(
        33,
        &["rollout", "status", "daemonset/agent", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let placement = "jsonpath={range .items[*]}{.spec.nodeName}{\"\\n\"}{end}";
    let on = server.ok(33, &["get", "pods", "-l", "app=agent", "-o", placement]);
    assert_eq!(lines(&on), ["node-0", "node-1"]);
    let status = server.ok(
        33,
        &[
            "get",
            "ds",
            "agent",
            "-o",
            "jsonpath={.status.desiredNumberScheduled} {.status.currentNumberScheduled} {.status.numberReady} {.status.updatedNumberScheduled} {.status.numberAvailable} {.status.numberMisscheduled}",
        ],
    );
    assert_eq!(status, "2 2 2 2 2 0");
    let affinity = server.ok(
        33,
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={.items[0].spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key}",
        ],
    );
    assert_eq!(affinity, "metadata.name");

    // A new node gets a pod; a removed node's pod goes away.
    apply(&server, 27, &nodes(&["node-2"]));
    wait_for(
        &server,
        &["get", "pods", "-l", "app=agent", "-o", placement],
        Duration::from_secs(60),
        "a pod on node-2",
        |out| lines(out) == ["node-0", "node-1", "node-2"],
    );
    server.ok(33, &["delete", "node", "node-0"]);
    wait_for(
        &server,
        &["get", "pods", "-l", "app=agent", "-o", placement],
        Duration::from_secs(60),
        "no pod for node-0",
        |out| lines(out) == ["node-1", "node-2"],
    );
    let out = server.ok(
        27,
        &["rollout", "status", "daemonset/agent", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");

    // A template change rolls out to every node.
    server.ok(33, &["set", "image", "daemonset/agent", "agent=agent:2"]);
    let out = server.ok(
        33,
        &["rollout", "status", "daemonset/agent", "--timeout=90s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let images = wait_for(
        &server,
        &[
            "get",
            "pods",
            "-l",
            "app=agent",
            "-o",
            "jsonpath={range .items[*]}{.spec.containers[0].image}{\"\\n\"}{end}",
        ],
        Duration::from_secs(60),
        "only new pods",
        |out| lines(out).len() == 2,
    );
    assert_eq!(lines(&images), ["agent:2", "agent:2"]);
    let revisions = server.ok(33, &["get", "controllerrevisions", "-o", "name"]);
    assert_eq!(lines(&revisions).len(), 2, "{revisions}");
}
