//! Deployments, ReplicaSets and Jobs through the real `kwok apiserver --simulate`, driven by
//! kubectl 1.33 and 1.27. The pods name their node in the template, so no scheduler is needed.

mod common;

use common::Server;

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {type: kwok}
"#;

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      nodeName: node-1
      containers:
      - name: nginx
        image: nginx
"#;

const JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: j
spec:
  completions: 3
  parallelism: 2
  template:
    spec:
      nodeName: node-1
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
"#;

#[test]
fn deployment_rollout_scale_and_job_with_kubectl() {
    let server = Server::start_with(&["--simulate"]);
    let apply = |minor: u32, text: &str| {
        let out = server.kubectl_stdin(minor, &["apply", "-f", "-"], Some(text));
        assert!(
            out.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    apply(33, NODE);
    apply(33, DEPLOYMENT);
    let out = server.ok(
        33,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");

    server.ok(33, &["set", "image", "deployment/web", "nginx=nginx:2"]);
    let out = server.ok(
        33,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
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
    let running: Vec<&str> = images.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        running.iter().filter(|i| **i == "nginx:2").count() == 3,
        "{running:?}"
    );
    let rs = server.ok(33, &["get", "rs", "-o", "name"]);
    assert_eq!(rs.lines().count(), 2, "{rs}");

    // History and undo, as kubectl reads them from the ReplicaSets.
    let history = server.ok(33, &["rollout", "history", "deployment/web"]);
    assert!(history.contains('1') && history.contains('2'), "{history}");
    server.ok(27, &["rollout", "undo", "deployment/web"]);
    let out = server.ok(
        27,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let image = server.ok(
        33,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ],
    );
    assert_eq!(image.trim(), "nginx");
    let revision = server.ok(
        33,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.deployment\\.kubernetes\\.io/revision}",
        ],
    );
    assert_eq!(revision.trim(), "3");

    server.ok(27, &["scale", "deployment", "web", "--replicas=5"]);
    let out = server.ok(
        27,
        &["rollout", "status", "deployment/web", "--timeout=60s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let ready = server.ok(
        27,
        &[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
    );
    assert_eq!(ready.trim(), "5");

    // `kubectl create deployment` (protobuf body on 1.33) gets its ReplicaSet and pods too.
    server.ok(
        33,
        &[
            "create",
            "deployment",
            "plain",
            "--image=nginx",
            "--replicas=2",
        ],
    );
    let mut pods = 0;
    for _ in 0..200 {
        let out = server.ok(33, &["get", "pods", "-l", "app=plain", "-o", "name"]);
        pods = out.lines().count();
        if pods == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(pods, 2);

    apply(27, JOB);
    server.ok(
        27,
        &["wait", "--for=condition=Complete", "job/j", "--timeout=60s"],
    );
    let succeeded = server.ok(
        33,
        &["get", "job", "j", "-o", "jsonpath={.status.succeeded}"],
    );
    assert_eq!(succeeded.trim(), "3");
}

#[test]
fn fifty_replicas_roll_out_on_scheduled_nodes_survive_a_drain_and_go_with_their_deployment() {
    let server = Server::start_with(&["--simulate"]);
    let nodes = "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node-a\n  labels: {type: kwok}\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: node-b\n  labels: {type: kwok}\n";
    let out = server.kubectl_stdin(33, &["apply", "-f", "-"], Some(nodes));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.ok(
        33,
        &[
            "create",
            "deployment",
            "big",
            "--image=nginx",
            "--replicas=50",
        ],
    );
    let out = server.ok(
        33,
        &["rollout", "status", "deployment/big", "--timeout=120s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let placement = |server: &Server| {
        let out = server.ok(
            33,
            &[
                "get",
                "pods",
                "-l",
                "app=big",
                "-o",
                "jsonpath={range .items[*]}{.spec.nodeName} {.status.phase}{\"\\n\"}{end}",
            ],
        );
        out.lines()
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let before = placement(&server);
    assert_eq!(before.len(), 50);
    assert!(
        before.iter().any(|l| l.starts_with("node-a ")),
        "{before:?}"
    );

    // Drain evicts node-a's pods; the ReplicaSet replaces them, and they can only go to node-b.
    server.ok(
        27,
        &["drain", "node-a", "--ignore-daemonsets", "--timeout=90s"],
    );
    let unschedulable = server.ok(
        33,
        &[
            "get",
            "node",
            "node-a",
            "-o",
            "jsonpath={.spec.unschedulable}",
        ],
    );
    assert_eq!(unschedulable.trim(), "true");
    let out = server.ok(
        33,
        &["rollout", "status", "deployment/big", "--timeout=120s"],
    );
    assert!(out.contains("successfully rolled out"), "{out}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let now = placement(&server);
        if now.len() == 50 && now.iter().all(|l| l == "node-b Running") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{now:?}");
        std::thread::sleep(std::time::Duration::from_millis(250));
    }

    // Deleting the Deployment takes its ReplicaSet and pods with it.
    server.ok(27, &["delete", "deployment", "big"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let rs = server.ok(33, &["get", "rs", "-l", "app=big", "-o", "name"]);
        let pods = server.ok(33, &["get", "pods", "-l", "app=big", "-o", "name"]);
        if rs.trim().is_empty() && pods.trim().is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind:\n{rs}\n{pods}"
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
