//! Black-box tests: the strategic merge patches kubectl 1.27 and 1.33 send (client-side apply,
//! `patch`, `set image`, `rollout restart`, `cordon`, `taint`) land as on kube-apiserver.

mod common;

use common::{Server, write};
use serde_json::{Value, json};

const FIRST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        env:
        - {name: MODE, value: blue}
        - {name: DEBUG, value: "1"}
        ports:
        - {containerPort: 80, name: http}
      - name: sidecar
        image: busybox
      tolerations:
      - {key: a, operator: Exists}
"#;

/// The same deployment with DEBUG and the sidecar removed, MODE changed and a port added.
const SECOND: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        env:
        - {name: MODE, value: green}
        ports:
        - {containerPort: 80, name: http}
        - {containerPort: 443, name: https}
      tolerations:
      - {key: b, operator: Exists}
"#;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

fn get(server: &Server, minor: u32, what: &[&str]) -> Value {
    server.get_json(minor, what)
}

fn client_side_apply_and_patches(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    let first = write(dir, "first.yaml", FIRST);
    let second = write(dir, "second.yaml", SECOND);
    server.ok(minor, &["apply", "-f", first.to_str().unwrap()]);

    // A change made outside the manifest: apply must keep it, since env merges by name.
    server.ok(
        minor,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"EXTRA","value":"x"}]}]}}}}"#,
        ],
    );
    server.ok(minor, &["apply", "-f", second.to_str().unwrap()]);
    let deployment = get(&server, minor, &["deployment", "web"]);
    let spec = &deployment["spec"]["template"]["spec"];
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1, "the sidecar is gone: {spec}");
    let nginx = &containers[0];
    let env: Vec<(&str, &str)> = nginx["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["value"].as_str().unwrap()))
        .collect();
    assert_eq!(env, [("MODE", "green"), ("EXTRA", "x")], "{nginx}");
    let ports: Vec<i64> = nginx["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["containerPort"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [80, 443]);
    // Tolerations have no merge key: the manifest's list replaces the old one.
    assert_eq!(
        spec["tolerations"],
        json!([{"key": "b", "operator": "Exists"}])
    );

    server.ok(
        minor,
        &["set", "image", "deployment/web", "nginx=nginx:1.28"],
    );
    server.ok(minor, &["rollout", "restart", "deployment/web"]);
    let deployment = get(&server, minor, &["deployment", "web"]);
    let template = &deployment["spec"]["template"];
    assert_eq!(template["spec"]["containers"][0]["image"], "nginx:1.28");
    assert_eq!(template["spec"]["containers"][0]["env"][1]["name"], "EXTRA");
    assert!(
        template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].is_string(),
        "{template}"
    );

    // A directive deletes one element of a merged list.
    server.ok(
        minor,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","ports":[{"containerPort":443,"$patch":"delete"}]}]}}}}"#,
        ],
    );
    let deployment = get(&server, minor, &["deployment", "web"]);
    let ports = &deployment["spec"]["template"]["spec"]["containers"][0]["ports"];
    assert_eq!(ports.as_array().unwrap().len(), 1, "{ports}");
    assert_eq!(ports[0]["containerPort"], 80);

    // A patch that breaks the declared merge key is refused and changes nothing.
    let err = server.fails(
        minor,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}"#,
        ],
    );
    assert!(err.contains("merge key"), "{err}");
    // The controllers keep writing the status, so the spec and its generation are what must hold.
    let after = get(&server, minor, &["deployment", "web"]);
    assert_eq!(after["spec"], deployment["spec"]);
    assert_eq!(
        after["metadata"]["generation"],
        deployment["metadata"]["generation"]
    );
}

fn nodes_cordon_and_taint(minor: u32) {
    let server = Server::start();
    let node = write(
        server.dir.path(),
        "node.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n",
    );
    server.ok(minor, &["create", "-f", node.to_str().unwrap()]);
    server.ok(minor, &["cordon", "n1"]);
    assert_eq!(
        get(&server, minor, &["node", "n1"])["spec"]["unschedulable"],
        true
    );
    server.ok(minor, &["uncordon", "n1"]);
    assert!(
        get(&server, minor, &["node", "n1"])["spec"]
            .get("unschedulable")
            .is_none()
    );

    // Two taints with one key and different effects, then one of them removed.
    server.ok(minor, &["taint", "node", "n1", "dedicated=db:NoSchedule"]);
    server.ok(minor, &["taint", "node", "n1", "dedicated=db:NoExecute"]);
    let taints = get(&server, minor, &["node", "n1"])["spec"]["taints"].clone();
    assert_eq!(taints.as_array().unwrap().len(), 2, "{taints}");
    server.ok(minor, &["taint", "node", "n1", "dedicated:NoSchedule-"]);
    let taints = get(&server, minor, &["node", "n1"])["spec"]["taints"].clone();
    let effects: Vec<&str> = taints
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["effect"].as_str().unwrap())
        .collect();
    assert_eq!(effects, ["NoExecute"], "{taints}");
}

fn custom_resources_refuse_strategic_patches(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    server.install_crd(minor, CRD, "gadgets.example.com");
    let gadget = write(
        dir,
        "g.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec:\n  items: [a, b]\n",
    );
    server.ok(minor, &["apply", "-f", gadget.to_str().unwrap()]);
    let err = server.fails(
        minor,
        &["patch", "gadget", "g", "-p", r#"{"spec":{"items":["c"]}}"#],
    );
    assert!(
        err.contains("application/strategic-merge-patch+json is not supported")
            && err.contains("application/merge-patch+json"),
        "{err}"
    );
    server.ok(
        minor,
        &[
            "patch",
            "gadget",
            "g",
            "--type=merge",
            "-p",
            r#"{"spec":{"items":["c"]}}"#,
        ],
    );
    assert_eq!(
        get(&server, minor, &["gadget", "g"])["spec"]["items"],
        json!(["c"])
    );

    // The garbage collector still edits custom resources' owners and finalizers in-process.
    for (owner, child) in [("g", "child-f"), ("o", "child-o")] {
        if owner == "o" {
            let orphaned = write(
                dir,
                "o.yaml",
                "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: o\n",
            );
            server.ok(minor, &["apply", "-f", orphaned.to_str().unwrap()]);
        }
        let uid = get(&server, minor, &["gadget", owner])["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_owned();
        let manifest = format!(
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: {child}\n  ownerReferences:\n  - {{apiVersion: example.com/v1, kind: Gadget, name: {owner}, uid: {uid}, blockOwnerDeletion: true}}\n"
        );
        let path = write(dir, &format!("{child}.yaml"), &manifest);
        server.ok(minor, &["apply", "-f", path.to_str().unwrap()]);
    }
    server.ok(
        minor,
        &[
            "delete",
            "gadget",
            "g",
            "--cascade=foreground",
            "--timeout=30s",
        ],
    );
    let left = server.ok(minor, &["get", "gadgets", "-o", "name"]);
    assert!(
        !left.contains("gadget.example.com/g\n") && !left.contains("child-f"),
        "{left}"
    );
    server.ok(
        minor,
        &["delete", "gadget", "o", "--cascade=orphan", "--timeout=30s"],
    );
    let orphan = get(&server, minor, &["gadget", "child-o"]);
    assert!(
        orphan["metadata"]
            .get("ownerReferences")
            .is_none_or(|o| o.as_array().is_some_and(|a| a.is_empty())),
        "{orphan}"
    );
}

#[test]
fn kubectl_1_27_client_side_apply_and_patches() {
    client_side_apply_and_patches(27);
}

#[test]
fn kubectl_1_33_client_side_apply_and_patches() {
    client_side_apply_and_patches(33);
}

#[test]
fn kubectl_1_27_nodes_cordon_and_taint() {
    nodes_cordon_and_taint(27);
}

#[test]
fn kubectl_1_33_nodes_cordon_and_taint() {
    nodes_cordon_and_taint(33);
}

#[test]
fn kubectl_1_27_custom_resources_refuse_strategic_patches() {
    custom_resources_refuse_strategic_patches(27);
}

#[test]
fn kubectl_1_33_custom_resources_refuse_strategic_patches() {
    custom_resources_refuse_strategic_patches(33);
}
