//! Black-box tests of server-side apply and managedFields with the real kubectl 1.27 and 1.33.

mod common;

use common::{Server, write};
use serde_json::Value;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
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
        ports:
        - containerPort: 80
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn get(server: &Server, minor: u32, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    json(&server.ok(minor, &args))
}

/// The managedFields entry of a manager and operation.
fn entry<'a>(obj: &'a Value, manager: &str, operation: &str) -> Option<&'a Value> {
    obj["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
}

fn owns(obj: &Value, manager: &str, operation: &str, pointer: &str) -> bool {
    entry(obj, manager, operation).is_some_and(|e| e["fieldsV1"].pointer(pointer).is_some())
}

fn server_side_apply(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    let manifest = write(dir, "web.yaml", DEPLOYMENT);
    let m = manifest.to_str().unwrap();

    // Create through apply.
    let out = server.ok(minor, &["apply", "--server-side", "-f", m]);
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    let e = entry(&dep, "kubectl", "Apply").unwrap_or_else(|| panic!("{dep}"));
    assert_eq!(e["apiVersion"], "apps/v1");
    assert_eq!(e["fieldsType"], "FieldsV1");
    assert!(e["time"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    let container =
        &e["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
    assert_eq!(container["."], serde_json::json!({}), "{e}");
    assert!(container["f:image"].is_object(), "{e}");
    assert!(
        container["f:ports"]["k:{\"containerPort\":80,\"protocol\":\"TCP\"}"].is_object(),
        "{e}"
    );
    assert!(owns(&dep, "kubectl", "Apply", "/f:spec/f:replicas"));
    // Hidden by default since kubectl 1.27.
    let plain = server.ok(minor, &["get", "deploy", "web", "-o", "yaml"]);
    assert!(!plain.contains("managedFields"), "{plain}");

    // Apply again with a changed field.
    write(
        dir,
        "web.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicas: 3"),
    );
    let out = server.ok(minor, &["apply", "--server-side", "-f", m]);
    assert!(out.contains("serverside-applied"), "{out}");
    let dep = get(&server, minor, &["deploy", "web"]);
    assert_eq!(dep["spec"]["replicas"], 3);
    // Applying the same configuration again changes nothing. The deployment controller keeps
    // writing the status, so a ConfigMap, which nothing else writes, shows that no write happened.
    let generation = dep["metadata"]["generation"].clone();
    server.ok(minor, &["apply", "--server-side", "-f", m]);
    let dep = get(&server, minor, &["deploy", "web"]);
    assert_eq!(dep["metadata"]["generation"], generation);
    let settings = write(
        dir,
        "settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: \"1\"\n",
    );
    let settings = settings.to_str().unwrap();
    server.ok(minor, &["apply", "--server-side", "-f", settings]);
    let rv = get(&server, minor, &["configmap", "settings"])["metadata"]["resourceVersion"].clone();
    server.ok(minor, &["apply", "--server-side", "-f", settings]);
    let again = get(&server, minor, &["configmap", "settings"]);
    assert_eq!(again["metadata"]["resourceVersion"], rv);

    // Another manager changing a field the first one owns conflicts.
    let other = write(
        dir,
        "other.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicas: 5"),
    );
    let o = other.to_str().unwrap();
    let err = server.fails(
        minor,
        &["apply", "--server-side", "--field-manager=other", "-f", o],
    );
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"kubectl\""),
        "{err}"
    );
    assert!(err.contains(".spec.replicas"), "{err}");
    let dep = get(&server, minor, &["deploy", "web"]);
    assert_eq!(dep["spec"]["replicas"], 3);
    // The same values from another manager are shared, not a conflict.
    let same = write(
        dir,
        "same.yaml",
        &DEPLOYMENT.replace("replicas: 2", "replicas: 3"),
    );
    server.ok(
        minor,
        &[
            "apply",
            "--server-side",
            "--field-manager=sharer",
            "-f",
            same.to_str().unwrap(),
        ],
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    assert!(owns(&dep, "sharer", "Apply", "/f:spec/f:replicas"));
    assert!(owns(&dep, "kubectl", "Apply", "/f:spec/f:replicas"));
    // Forced: the field changes hands.
    let out = server.ok(
        minor,
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            o,
        ],
    );
    assert!(out.contains("serverside-applied"), "{out}");
    let dep = get(&server, minor, &["deploy", "web"]);
    assert_eq!(dep["spec"]["replicas"], 5);
    assert!(owns(&dep, "other", "Apply", "/f:spec/f:replicas"));
    assert!(!owns(&dep, "kubectl", "Apply", "/f:spec/f:replicas"));
    assert!(!owns(&dep, "sharer", "Apply", "/f:spec/f:replicas"));

    // Fields a manager stops applying are removed, unless someone else owns them.
    let trimmed = DEPLOYMENT
        .replace("labels: {app: web, tier: front}", "labels: {app: web}")
        .replace("  replicas: 2\n", "");
    let trimmed = write(dir, "web.yaml", &trimmed);
    server.ok(
        minor,
        &["apply", "--server-side", "-f", trimmed.to_str().unwrap()],
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    // `sharer` and `other` still apply the tier label.
    assert_eq!(dep["metadata"]["labels"]["tier"], "front");
    assert_eq!(dep["spec"]["replicas"], 5);
    let mine = DEPLOYMENT
        .replace(
            "labels: {app: web, tier: front}",
            "labels: {app: web, owner: me}",
        )
        .replace("  replicas: 2\n", "");
    let mine = write(dir, "mine.yaml", &mine);
    let mine = mine.to_str().unwrap();
    server.ok(
        minor,
        &["apply", "--server-side", "--field-manager=solo", "-f", mine],
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    assert_eq!(dep["metadata"]["labels"]["owner"], "me");
    let gone = DEPLOYMENT
        .replace("labels: {app: web, tier: front}", "labels: {app: web}")
        .replace("  replicas: 2\n", "");
    write(dir, "mine.yaml", &gone);
    server.ok(
        minor,
        &["apply", "--server-side", "--field-manager=solo", "-f", mine],
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    assert!(dep["metadata"]["labels"].get("owner").is_none(), "{dep}");

    // Other writes record Update entries, named by fieldManager or the client.
    server.ok(minor, &["label", "deploy", "web", "env=prod"]);
    let dep = get(&server, minor, &["deploy", "web"]);
    let label = entry(&dep, "kubectl-label", "Update").unwrap_or_else(|| panic!("{dep}"));
    assert!(
        label["fieldsV1"]
            .pointer("/f:metadata/f:labels/f:env")
            .is_some(),
        "{label}"
    );
    server.ok(
        minor,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"spec":{"minReadySeconds":3}}"#,
        ],
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    assert!(
        owns(&dep, "kubectl-patch", "Update", "/f:spec/f:minReadySeconds"),
        "{dep}"
    );

    // Status writes record the subresource.
    server.ok(
        minor,
        &[
            "patch",
            "deploy",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"observedGeneration":42}}"#,
        ],
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    let status = dep["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["subresource"] == "status" && e["manager"] == "kubectl-patch")
        .unwrap_or_else(|| panic!("{dep}"));
    assert_eq!(status["operation"], "Update");
    assert!(
        status["fieldsV1"]
            .pointer("/f:status/f:observedGeneration")
            .is_some()
    );

    // `[{}]` clears managedFields.
    server.ok(
        minor,
        &[
            "patch",
            "deploy",
            "web",
            "--type=merge",
            "-p",
            r#"{"metadata":{"managedFields":[{}]}}"#,
        ],
    );
    let dep = get(&server, minor, &["deploy", "web"]);
    assert!(dep["metadata"].get("managedFields").is_none(), "{dep}");

    // Creates record the client's manager.
    server.ok(
        minor,
        &["create", "configmap", "made", "--from-literal=a=b"],
    );
    let cm = get(&server, minor, &["cm", "made"]);
    let created = entry(&cm, "kubectl-create", "Update").unwrap_or_else(|| panic!("{cm}"));
    assert_eq!(
        created["fieldsV1"]["f:data"],
        serde_json::json!({".": {}, "f:a": {}})
    );
}

const CONFIGMAP: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  color: blue
"#;

fn client_side_then_server_side(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    let manifest = write(dir, "cm.yaml", CONFIGMAP);
    let m = manifest.to_str().unwrap();
    server.ok(minor, &["apply", "-f", m]);
    let cm = get(&server, minor, &["cm", "settings"]);
    assert!(
        owns(
            &cm,
            "kubectl-client-side-apply",
            "Update",
            "/f:data/f:color"
        ),
        "{cm}"
    );
    write(dir, "cm.yaml", &CONFIGMAP.replace("blue", "green"));
    let out = server.ok(minor, &["apply", "--server-side", "-f", m]);
    assert!(
        out.contains("configmap/settings serverside-applied"),
        "{out}"
    );
    let cm = get(&server, minor, &["cm", "settings"]);
    assert_eq!(cm["data"]["color"], "green");
    assert!(owns(&cm, "kubectl", "Apply", "/f:data/f:color"), "{cm}");
    // A client-side apply afterwards still works.
    write(dir, "cm.yaml", &CONFIGMAP.replace("blue", "red"));
    server.ok(minor, &["apply", "-f", m]);
    let cm = get(&server, minor, &["cm", "settings"]);
    assert_eq!(cm["data"]["color"], "red");
}

#[test]
fn kubectl_1_27_server_side_apply() {
    server_side_apply(27);
}

#[test]
fn kubectl_1_33_server_side_apply() {
    server_side_apply(33);
}

#[test]
fn kubectl_1_27_client_side_then_server_side() {
    client_side_then_server_side(27);
}

#[test]
fn kubectl_1_33_client_side_then_server_side() {
    client_side_then_server_side(33);
}
