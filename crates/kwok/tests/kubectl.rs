//! Black-box tests: the real `kwok apiserver` driven by the real kubectl 1.27 and 1.33.

mod common;

use common::{Server, write};
use serde_json::Value;

const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: solo}
spec:
  containers:
  - name: main
    image: busybox
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn lifecycle(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    let manifest = write(dir, "app.yaml", MANIFEST);
    let m = manifest.to_str().unwrap();

    let out = server.ok(minor, &["apply", "-f", m]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    assert!(out.contains("configmap/settings created"), "{out}");
    assert!(out.contains("pod/solo created"), "{out}");
    let out = server.ok(minor, &["apply", "-f", m]);
    assert!(out.contains("deployment.apps/web unchanged"), "{out}");

    // Table output with kind-specific columns.
    let out = server.ok(minor, &["get", "pods", "-o", "wide"]);
    let header = out.lines().next().unwrap();
    for col in ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"] {
        assert!(header.contains(col), "{header}");
    }
    assert!(out.contains("solo") && out.contains("Pending"), "{out}");
    let out = server.ok(minor, &["get", "deploy"]);
    assert!(out.contains("web") && out.contains("0/2"), "{out}");
    let out = server.ok(minor, &["get", "ns"]);
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(out.contains(ns), "{out}");
    }
    let out = server.ok(minor, &["get", "svc", "-A"]);
    assert!(
        out.contains("kubernetes") && out.contains("10.96.0.1"),
        "{out}"
    );

    // Defaults and server-owned metadata.
    let pod = json(&server.ok(minor, &["get", "pod", "solo", "-o", "json"]));
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(
        pod["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| u.len() == 36)
    );
    let yaml = server.ok(minor, &["get", "cm", "settings", "-o", "yaml"]);
    assert!(yaml.contains("color: blue"), "{yaml}");

    // A changed manifest is patched (strategic merge) and bumps the generation.
    write(
        dir,
        "app.yaml",
        &MANIFEST.replace("nginx:1.27", "nginx:1.28"),
    );
    let out = server.ok(minor, &["apply", "-f", m]);
    assert!(out.contains("deployment.apps/web configured"), "{out}");
    let dep = json(&server.ok(minor, &["get", "deploy", "web", "-o", "json"]));
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_eq!(dep["metadata"]["generation"], 2);

    // label, annotate, patch (merge and json), scale, replace.
    server.ok(minor, &["label", "pod", "solo", "tier=backend"]);
    server.ok(minor, &["annotate", "pod", "solo", "note=hello"]);
    let out = server.ok(minor, &["get", "pods", "-l", "tier=backend", "-o", "name"]);
    assert_eq!(out.trim(), "pod/solo");
    let out = server.ok(
        minor,
        &["get", "pods", "-l", "tier in (frontend)", "-o", "name"],
    );
    assert_eq!(out.trim(), "");
    server.ok(
        minor,
        &[
            "patch",
            "cm",
            "settings",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"size":"xl"}}"#,
        ],
    );
    server.ok(
        minor,
        &[
            "patch",
            "cm",
            "settings",
            "--type",
            "json",
            "-p",
            r#"[{"op":"remove","path":"/data/color"}]"#,
        ],
    );
    let cm = json(&server.ok(minor, &["get", "cm", "settings", "-o", "json"]));
    assert_eq!(cm["data"], serde_json::json!({"size": "xl"}));
    server.ok(minor, &["scale", "deploy", "web", "--replicas=5"]);
    let dep = json(&server.ok(minor, &["get", "deploy", "web", "-o", "json"]));
    assert_eq!(dep["spec"]["replicas"], 5);
    let mut cm = cm;
    cm["data"]["replaced"] = "yes".into();
    let replaced = write(dir, "cm.json", &cm.to_string());
    server.ok(minor, &["replace", "-f", replaced.to_str().unwrap()]);
    // The same (now stale) resourceVersion again is a conflict.
    let err = server.fails(minor, &["replace", "-f", replaced.to_str().unwrap()]);
    assert!(err.contains("the object has been modified"), "{err}");

    // Field selectors kubectl relies on (the deployment's pods are left out by label).
    let out = server.ok(
        minor,
        &[
            "get",
            "pods",
            "-l",
            "app=solo",
            "--field-selector",
            "status.phase!=Failed,spec.nodeName=",
            "-o",
            "name",
        ],
    );
    assert_eq!(out.trim(), "pod/solo");
    let err = server.fails(minor, &["get", "pods", "--field-selector", "spec.foo=bar"]);
    assert!(err.contains("is not a known field selector"), "{err}");

    // Discovery, OpenAPI, version.
    let out = server.ok(minor, &["api-resources"]);
    for line in [
        "deployments",
        "deploy",
        "apps/v1",
        "leases",
        "horizontalpodautoscalers",
    ] {
        assert!(out.contains(line), "{line} missing: {out}");
    }
    let out = server.ok(minor, &["explain", "pod.spec.containers.image"]);
    assert!(out.contains("image"), "{out}");
    let out = server.ok(minor, &["version", "-o", "json"]);
    assert_eq!(json(&out)["serverVersion"]["minor"], "33");

    // Unknown fields are rejected under kubectl's default strict validation.
    let bad = write(
        dir,
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\nspecial: 1\n",
    );
    let err = server.fails(minor, &["create", "-f", bad.to_str().unwrap()]);
    assert!(err.contains("unknown field \"special\""), "{err}");

    // Deletion: immediate, then with a finalizer holding the object.
    let out = server.ok(minor, &["delete", "pod", "solo"]);
    assert!(out.contains("pod \"solo\" deleted"), "{out}");
    server.fails(minor, &["get", "pod", "solo"]);
    let held = write(
        dir,
        "held.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: held\n  finalizers: [example.com/hold]\n",
    );
    server.ok(minor, &["create", "-f", held.to_str().unwrap()]);
    server.ok(minor, &["delete", "cm", "held", "--wait=false"]);
    let obj = json(&server.ok(minor, &["get", "cm", "held", "-o", "json"]));
    assert!(obj["metadata"]["deletionTimestamp"].is_string());
    server.ok(
        minor,
        &[
            "patch",
            "cm",
            "held",
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );
    server.ok(minor, &["wait", "--for=delete", "cm/held", "--timeout=20s"]);
    server.fails(minor, &["get", "cm", "held"]);

    let out = server.ok(minor, &["delete", "-f", m, "--ignore-not-found"]);
    assert!(out.contains("deployment.apps \"web\" deleted"), "{out}");
}

#[test]
fn kubectl_1_27_lifecycle() {
    lifecycle(27);
}

#[test]
fn kubectl_1_33_lifecycle() {
    lifecycle(33);
}

fn watch_and_wait(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    let pod = write(
        dir,
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: w\nspec:\n  containers:\n  - name: c\n    image: i\n",
    );
    server.ok(minor, &["create", "-f", pod.to_str().unwrap()]);

    // get -w prints the current row, then each change.
    let cache = dir.join(format!("cache-{minor}"));
    let mut watcher = std::process::Command::new(common::kubectl_version(minor))
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(&cache)
        .args(["get", "pods", "-w", "-o", "name", "--request-timeout=20s"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));

    // wait --for=condition sees a condition set through the status subresource.
    let waiter = {
        let kubeconfig = server.kubeconfig();
        let cache = cache.clone();
        std::thread::spawn(move || {
            std::process::Command::new(common::kubectl_version(minor))
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .arg("--cache-dir")
                .arg(cache)
                .args(["wait", "--for=condition=Ready", "pod/w", "--timeout=20s"])
                .output()
                .unwrap()
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status =
        r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#;
    server.ok(
        minor,
        &[
            "patch",
            "pod",
            "w",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ],
    );
    let waited = waiter.join().unwrap();
    assert!(
        waited.status.success(),
        "wait failed: {}",
        String::from_utf8_lossy(&waited.stderr)
    );
    assert!(String::from_utf8_lossy(&waited.stdout).contains("condition met"));
    server.ok(minor, &["delete", "pod", "w"]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    watcher.kill().unwrap();
    let out = watcher.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().filter(|l| l.contains("pod/w")).count() >= 3,
        "{text}"
    );
}

#[test]
fn kubectl_1_27_watch_and_wait() {
    watch_and_wait(27);
}

#[test]
fn kubectl_1_33_watch_and_wait() {
    watch_and_wait(33);
}

#[test]
fn namespaces_terminate_and_take_their_content() {
    let server = Server::start();
    let out = server.kubectl_stdin(
        33,
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: team\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = server.ok(33, &["delete", "ns", "team", "--timeout=30s"]);
    assert!(out.contains("namespace \"team\" deleted"), "{out}");
    server.fails(33, &["get", "ns", "team"]);
    let err = server.fails(33, &["get", "cm", "-n", "team", "c"]);
    assert!(err.contains("not found"), "{err}");
    let err = server.fails(
        33,
        &[
            "create",
            "cm",
            "x",
            "-n",
            "missing",
            "--from-literal=a=b",
            "--dry-run=server",
        ],
    );
    assert!(
        err.contains("not found") || err.contains("protobuf"),
        "{err}"
    );
}

fn cascading_deletion(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    for (owner, child) in [
        ("fg", "fg-child"),
        ("orph", "orph-child"),
        ("bg", "bg-child"),
    ] {
        server.ok(
            minor,
            &[
                "apply",
                "-f",
                write(
                    dir,
                    "o.yaml",
                    &format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {owner}\n"),
                )
                .to_str()
                .unwrap(),
            ],
        );
        let uid = server.ok(
            minor,
            &["get", "cm", owner, "-o", "jsonpath={.metadata.uid}"],
        );
        let dependent = format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {child}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\n    blockOwnerDeletion: true\n"
        );
        server.ok(
            minor,
            &[
                "apply",
                "-f",
                write(dir, "d.yaml", &dependent).to_str().unwrap(),
            ],
        );
    }
    server.ok(
        minor,
        &[
            "delete",
            "cm",
            "fg",
            "--cascade=foreground",
            "--timeout=30s",
        ],
    );
    server.ok(
        minor,
        &["wait", "--for=delete", "secret/fg-child", "--timeout=30s"],
    );
    server.fails(minor, &["get", "cm", "fg"]);

    server.ok(
        minor,
        &["delete", "cm", "orph", "--cascade=orphan", "--timeout=30s"],
    );
    server.fails(minor, &["get", "cm", "orph"]);
    let refs = server.ok(
        minor,
        &[
            "get",
            "secret",
            "orph-child",
            "-o",
            "jsonpath={.metadata.ownerReferences}",
        ],
    );
    assert!(refs.trim().is_empty() || refs.trim() == "[]", "{refs}");

    server.ok(minor, &["delete", "cm", "bg"]);
    server.ok(
        minor,
        &["wait", "--for=delete", "secret/bg-child", "--timeout=30s"],
    );
}

#[test]
fn kubectl_1_27_cascading_deletion() {
    cascading_deletion(27);
}

#[test]
fn kubectl_1_33_cascading_deletion() {
    cascading_deletion(33);
}
