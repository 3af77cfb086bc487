//! Black-box tests: CustomResourceDefinitions and kubectl 1.33's protobuf bodies.

mod common;

use common::{Server, kubectl_version, write};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// A CRD whose rule concatenates every triple of `spec.items`: its cost grows with the cube of
/// the number of items.
fn bags_crd(max_items: Option<u32>) -> String {
    let max_items = max_items
        .map(|n| format!("                maxItems: {n}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: bags.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: bags, kind: Bag}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.items.all(a, self.items.all(b, self.items.all(c, a + b + c != '')))"
              message: no empty triples
            properties:
              items:
                type: array
{max_items}                items: {{type: string, maxLength: 64}}
"#
    )
}

#[test]
fn crd_rule_costs_are_limited() {
    let server = Server::start();
    let dir = server.dir.path();
    let advice = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";

    // Unbounded, the rule's estimated cost is refused with kube-apiserver's causes.
    let crd = write(dir, "bags.yaml", &bags_crd(None));
    let err = server.fails(33, &["apply", "-f", crd.to_str().unwrap()]);
    for want in [
        "The CustomResourceDefinition \"bags.example.com\" is invalid".to_string(),
        format!(
            "* spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {advice}"
        ),
        "* spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema".to_string(),
        format!(
            "* spec.validation.openAPIV3Schema: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {advice}"
        ),
    ] {
        assert!(err.contains(&want), "want {want:?} in {err}");
    }
    server.fails(33, &["get", "crd", "bags.example.com"]);

    // Bounded, it is accepted and its rule applies.
    server.install_crd(33, &bags_crd(Some(40)), "bags.example.com");
    let bag = |items: Vec<String>| {
        let body = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Bag",
            "metadata": {"name": "b"}, "spec": {"items": items}});
        let path = write(dir, "bag.json", &body.to_string());
        server.kubectl(33, &["apply", "-f", path.to_str().unwrap()])
    };
    let out = bag(vec!["a".into(), "b".into()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bag(vec![String::new(); 3]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("The Bag \"b\" is invalid: spec: Invalid value: \"object\": no empty triples"),
        "{err}"
    );
    // Forty long items cost one evaluation more than kube-apiserver allows.
    let out = bag((0..40).map(|i| format!("{i:064}")).collect());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: no empty triples"),
        "{err}"
    );
    assert_eq!(server.get_json(33, &["bag", "b"])["spec"]["items"][1], "b");
}

#[test]
fn readyz_answers_while_rules_run() {
    let server = Server::start();
    let dir = server.dir.path();
    // Ten rules, each a little under kube-apiserver's limit for one evaluation with 38 items,
    // together a little under its budget for one object: accepted, and seconds of work.
    let rules: String = (0..10)
        .map(|i| {
            format!(
                "            - rule: \"self.items.all(a, self.items.all(b, self.items.all(c, a.name + b.name + c.name != 'k{i}')))\"\n"
            )
        })
        .collect();
    let crd = format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crates.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: crates, kind: Crate}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
{rules}            properties:
              items:
                type: array
                maxItems: 40
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {{type: string, maxLength: 12}}
"#
    );
    server.install_crd(33, &crd, "crates.example.com");
    let items: Vec<Value> = (0..38)
        .map(|i| serde_json::json!({"name": format!("item-{i:07}")}))
        .collect();
    let body = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Crate",
        "metadata": {"name": "c"}, "spec": {"items": items}});
    let path = write(dir, "crate.json", &body.to_string());

    let started = Instant::now();
    let mut apply = Command::new(kubectl_version(33))
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(dir.join("cache-33"))
        .args(["apply", "-f", path.to_str().unwrap()])
        .env("HOME", dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    std::thread::sleep(Duration::from_millis(300));
    let mut answered_meanwhile = 0;
    while apply.try_wait().unwrap().is_none() {
        let asked = Instant::now();
        assert_eq!(server.ok(33, &["get", "--raw", "/readyz"]), "ok");
        let took = asked.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "/readyz took {took:?} while the rules ran"
        );
        if apply.try_wait().unwrap().is_none() {
            answered_meanwhile += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = apply.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        answered_meanwhile > 0,
        "the rules ran for {:?}: too quick to observe",
        started.elapsed()
    );
}
