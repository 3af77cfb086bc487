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
