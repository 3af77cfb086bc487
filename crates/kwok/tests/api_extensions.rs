//! Black-box tests: CustomResourceDefinitions and kubectl 1.33's protobuf bodies.

mod common;

use common::{Server, write};
use serde_json::Value;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.size
        statusReplicasPath: .status.size
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Color
      type: string
      jsonPath: .spec.color
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {type: integer, minimum: 0}
              color: {type: string, default: blue}
          status:
            type: object
            properties:
              size: {type: integer}
"#;

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn crd_round_trip(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    server.install_crd(minor, CRD, "widgets.example.com");
    let out = server.ok(minor, &["api-resources", "--api-group=example.com"]);
    assert!(out.contains("widgets") && out.contains("wd"), "{out}");

    let w = write(
        dir,
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n",
    );
    server.ok(minor, &["apply", "-f", w.to_str().unwrap()]);
    let out = server.ok(minor, &["get", "widgets"]);
    let header = out.lines().next().unwrap();
    assert!(header.contains("SIZE") && header.contains("COLOR"), "{out}");
    assert!(
        out.contains("w1") && out.contains('3') && out.contains("blue"),
        "{out}"
    );
    let obj = json(&server.ok(minor, &["get", "wd", "w1", "-o", "json"]));
    assert_eq!(obj["spec"]["color"], "blue", "defaulted from the schema");

    // Schema violations and unknown fields.
    let bad = write(
        dir,
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  size: -1\n",
    );
    let err = server.fails(minor, &["apply", "-f", bad.to_str().unwrap()]);
    assert!(err.contains("spec.size"), "{err}");
    let unknown = write(
        dir,
        "unknown.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\nspec:\n  size: 1\n  shape: round\n",
    );
    let out = server.kubectl(
        minor,
        &["apply", "-f", unknown.to_str().unwrap(), "--validate=false"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let obj = json(&server.ok(minor, &["get", "wd", "w3", "-o", "json"]));
    assert!(
        obj["spec"].get("shape").is_none(),
        "unknown fields are pruned: {obj}"
    );

    // Scale and status subresources.
    server.ok(minor, &["scale", "widget", "w1", "--replicas=5"]);
    let obj = json(&server.ok(minor, &["get", "wd", "w1", "-o", "json"]));
    assert_eq!(obj["spec"]["size"], 5);
    server.ok(
        minor,
        &[
            "patch",
            "wd",
            "w1",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"size":5}}"#,
        ],
    );
    server.ok(
        minor,
        &[
            "patch",
            "wd",
            "w1",
            "--type=merge",
            "-p",
            r#"{"status":{"size":9}}"#,
        ],
    );
    let obj = json(&server.ok(minor, &["get", "wd", "w1", "-o", "json"]));
    assert_eq!(obj["status"]["size"], 5, "the main resource ignores status");

    // Deleting the CRD deletes its objects and stops serving the type.
    server.ok(minor, &["delete", "crd", "widgets.example.com"]);
    let err = server.fails(minor, &["get", "widgets"]);
    // kubectl's cached discovery may still list the type; the server no longer serves it.
    assert!(
        err.contains("the server doesn't have a resource type")
            || err.contains("the server could not find the requested resource"),
        "{err}"
    );
}

#[test]
fn crd_round_trip_kubectl_1_27() {
    crd_round_trip(27);
}

#[test]
fn crd_round_trip_kubectl_1_33() {
    crd_round_trip(33);
}

#[test]
fn non_structural_crd_is_invalid() {
    let server = Server::start();
    let dir = server.dir.path();
    let bad = CRD.replace(
        "            type: object\n            required: [size]",
        "            required: [size]",
    );
    let crd = write(dir, "crd.yaml", &bad);
    let err = server.fails(33, &["apply", "-f", crd.to_str().unwrap()]);
    assert!(err.contains("is invalid") && err.contains("type"), "{err}");
    server.fails(33, &["get", "crd", "widgets.example.com"]);
}

#[test]
fn kubectl_1_33_generators_send_protobuf() {
    let server = Server::start();
    server.ok(33, &["create", "namespace", "pb"]);
    server.ok(
        33,
        &["create", "configmap", "c", "-n", "pb", "--from-literal=a=b"],
    );
    server.ok(
        33,
        &[
            "create",
            "secret",
            "generic",
            "s",
            "-n",
            "pb",
            "--from-literal=k=v",
        ],
    );
    server.ok(
        33,
        &[
            "create",
            "deployment",
            "d",
            "-n",
            "pb",
            "--image=nginx:1.27",
            "--replicas=2",
            "--port=80",
        ],
    );
    server.ok(
        33,
        &[
            "create",
            "service",
            "clusterip",
            "svc",
            "-n",
            "pb",
            "--tcp=80:8080",
        ],
    );
    server.ok(33, &["create", "serviceaccount", "sa", "-n", "pb"]);
    server.ok(33, &["create", "job", "j", "-n", "pb", "--image=busybox"]);
    let cm = json(&server.ok(33, &["get", "cm", "c", "-n", "pb", "-o", "json"]));
    assert_eq!(cm["data"]["a"], "b");
    let secret = json(&server.ok(33, &["get", "secret", "s", "-n", "pb", "-o", "json"]));
    assert_eq!(secret["data"]["k"], "dg==");
    let d = json(&server.ok(33, &["get", "deploy", "d", "-n", "pb", "-o", "json"]));
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"],
        80
    );
    let svc = json(&server.ok(33, &["get", "svc", "svc", "-n", "pb", "-o", "json"]));
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    let out = server.ok(33, &["auth", "can-i", "create", "pods"]);
    assert_eq!(out.trim(), "yes");
}

#[test]
fn crd_versions_share_storage() {
    let server = Server::start();
    let dir = server.dir.path();
    let two_versions = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Cluster
  names: {plural: gadgets, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
  - name: v2
    served: true
    storage: false
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;
    server.install_crd(33, two_versions, "gadgets.example.com");
    let g = write(
        dir,
        "g.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nsize: 2\n",
    );
    server.ok(33, &["apply", "-f", g.to_str().unwrap()]);
    let v2 = json(&server.ok(33, &["get", "--raw", "/apis/example.com/v2/gadgets/g1"]));
    assert_eq!(v2["apiVersion"], "example.com/v2");
    assert_eq!(v2["size"], 2);
    let list = json(&server.ok(33, &["get", "--raw", "/apis/example.com/v2/gadgets"]));
    assert_eq!(list["items"][0]["apiVersion"], "example.com/v2");
    let v1 = json(&server.ok(33, &["get", "--raw", "/apis/example.com/v1/gadgets/g1"]));
    assert_eq!(v1["apiVersion"], "example.com/v1");
}

const RULED_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: pools.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: pools, kind: Pool}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.minReplicas <= self.maxReplicas"
              message: "minReplicas must not exceed maxReplicas"
            - rule: "self.tier == oldSelf.tier"
              message: "tier is immutable"
            properties:
              minReplicas: {type: integer, minimum: 0}
              maxReplicas: {type: integer, maximum: 10, exclusiveMaximum: true}
              tier: {type: string, pattern: '^[a-z]+$'}
              zones:
                type: array
                minItems: 1
                x-kubernetes-list-type: set
                items: {type: string}
              owner:
                type: string
                x-kubernetes-validations:
                - rule: "self.startsWith('team-')"
                  reason: FieldValueForbidden
                  message: "owners are teams"
"#;

fn pool(spec: &str) -> String {
    format!("apiVersion: example.com/v1\nkind: Pool\nmetadata:\n  name: p\nspec:\n{spec}")
}

fn crd_rules_and_value_checks(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    server.install_crd(minor, RULED_CRD, "pools.example.com");
    let apply = |spec: &str| -> (bool, String) {
        let path = write(dir, "pool.yaml", &pool(spec));
        let out = server.kubectl(minor, &["apply", "-f", path.to_str().unwrap()]);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let good =
        "  minReplicas: 1\n  maxReplicas: 3\n  tier: gold\n  zones: [a, b]\n  owner: team-x\n";

    // Each broken field gets kube-apiserver's cause; nothing is stored.
    let cases = [
        (
            "  minReplicas: 5\n  maxReplicas: 3\n  tier: gold\n  zones: [a]\n",
            "spec: Invalid value: \"object\": minReplicas must not exceed maxReplicas",
        ),
        (
            "  minReplicas: 1\n  maxReplicas: 10\n  tier: gold\n  zones: [a]\n",
            "spec.maxReplicas in body should be less than 10",
        ),
        (
            "  minReplicas: 1\n  maxReplicas: 3\n  tier: Gold\n  zones: [a]\n",
            "spec.tier in body should match '^[a-z]+$'",
        ),
        (
            "  minReplicas: 1\n  maxReplicas: 3\n  tier: gold\n  zones: []\n",
            "spec.zones in body should have at least 1 items",
        ),
        (
            "  minReplicas: 1\n  maxReplicas: 3\n  tier: gold\n  zones: [a, a]\n",
            "spec.zones[1]: Duplicate value: \"a\"",
        ),
        (
            "  minReplicas: 1\n  maxReplicas: 3\n  tier: gold\n  zones: [a]\n  owner: bob\n",
            "spec.owner: Forbidden: owners are teams",
        ),
    ];
    for (spec, want) in cases {
        let (ok, err) = apply(spec);
        assert!(!ok, "accepted: {spec}");
        assert!(err.contains(want), "want {want:?} in {err}");
        assert!(err.contains("Pool \"p\" is invalid"), "{err}");
    }
    server.fails(minor, &["get", "pool", "p"]);

    let (ok, err) = apply(good);
    assert!(ok, "{err}");
    // A transition rule compares with the stored object.
    let (ok, err) = apply(&good.replace("tier: gold", "tier: silver"));
    assert!(!ok);
    assert!(
        err.contains("spec: Invalid value: \"object\": tier is immutable"),
        "{err}"
    );
    let stored = server.get_json(minor, &["pool", "p"]);
    assert_eq!(stored["spec"]["tier"], "gold");
    let (ok, err) = apply(&good.replace("maxReplicas: 3", "maxReplicas: 4"));
    assert!(ok, "{err}");
    assert_eq!(
        server.get_json(minor, &["pool", "p"])["spec"]["maxReplicas"],
        4
    );
}

#[test]
fn crd_rules_and_value_checks_kubectl_1_27() {
    crd_rules_and_value_checks(27);
}

#[test]
fn crd_rules_and_value_checks_kubectl_1_33() {
    crd_rules_and_value_checks(33);
}

#[test]
fn crd_with_a_rule_that_does_not_compile_is_invalid() {
    let server = Server::start();
    let bad = RULED_CRD.replace(
        "self.minReplicas <= self.maxReplicas",
        "self.minReplicas <=",
    );
    let crd = write(server.dir.path(), "crd.yaml", &bad);
    let err = server.fails(33, &["apply", "-f", crd.to_str().unwrap()]);
    assert!(
        err.contains("properties[spec].x-kubernetes-validations[0].rule: Invalid value")
            && err.contains("compilation failed"),
        "{err}"
    );
    let bad_pattern = RULED_CRD.replace("'^[a-z]+$'", "'^[a-z+$'");
    let crd = write(server.dir.path(), "crd.yaml", &bad_pattern);
    let err = server.fails(33, &["apply", "-f", crd.to_str().unwrap()]);
    assert!(err.contains("must be a valid regular expression"), "{err}");
    server.fails(33, &["get", "crd", "pools.example.com"]);
}
