//! Black-box tests: custom resources in the OpenAPI documents, as kubectl reads them
//! (`kubectl explain`, server-side field validation), following CRD changes.

mod common;

use common::{Server, kubectl_version, write};
use std::process::{Command, Output, Stdio};

const NAME: &str = "servicemonitors.monitoring.example.com";

/// A ServiceMonitor-like CRD; `extra` adds a field under `spec`.
fn crd(extra: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {NAME}
spec:
  group: monitoring.example.com
  scope: Namespaced
  names:
    plural: servicemonitors
    singular: servicemonitor
    kind: ServiceMonitor
    listKind: ServiceMonitorList
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {{}}
    schema:
      openAPIV3Schema:
        description: ServiceMonitor defines monitoring for a set of services.
        type: object
        properties:
          spec:
            description: Specification of desired Service selection for target discovery.
            type: object
            required: [endpoints]
            properties:
              jobLabel:
                description: The label to use to retrieve the job name from.
                type: string
              endpoints:
                description: A list of endpoints allowed as part of this ServiceMonitor.
                type: array
                items:
                  description: Endpoint defines a scrapeable endpoint serving metrics.
                  type: object
                  properties:
                    port:
                      description: Name of the Service port which this endpoint refers to.
                      type: string
                    targetPort:
                      description: Name or number of the target port of the Pod object behind the Service.
                      x-kubernetes-int-or-string: true
                    interval:
                      description: Interval at which metrics should be scraped.
                      type: string
                      nullable: true
{extra}          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#
    )
}

const SAMPLE_LIMIT: &str = r#"              sampleLimit:
                description: SampleLimit defines a per-scrape limit on the number of scraped samples.
                type: integer
                format: int64
"#;

/// kubectl with extra environment variables.
fn kubectl_env(server: &Server, minor: u32, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(kubectl_version(minor))
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(server.dir.path().join(format!("cache-{minor}")))
        .args(args)
        .env("HOME", server.dir.path())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run kubectl")
}

fn stdout_ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_contains(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(text.contains(line), "{line:?} missing from:\n{text}");
    }
}

fn explain_follows_the_crd(minor: u32) {
    let server = Server::start();
    let dir = server.dir.path();
    server.install_crd(minor, &crd(""), NAME);

    let index = server.ok(minor, &["get", "--raw", "/openapi/v3"]);
    assert_contains(
        &index,
        &[
            "apis/monitoring.example.com/v1",
            "/openapi/v3/apis/monitoring.example.com/v1?hash=",
        ],
    );
    let document = server.ok(
        minor,
        &["get", "--raw", "/openapi/v3/apis/monitoring.example.com/v1"],
    );
    assert_contains(
        &document,
        &[
            "com.example.monitoring.v1.ServiceMonitor",
            "com.example.monitoring.v1.ServiceMonitorList",
        ],
    );

    let out = server.ok(minor, &["explain", "servicemonitors.spec"]);
    assert_contains(
        &out,
        &[
            "ServiceMonitor",
            "Specification of desired Service selection for target discovery.",
            "endpoints",
            "A list of endpoints allowed as part of this ServiceMonitor.",
            "jobLabel",
        ],
    );
    assert!(!out.contains("sampleLimit"), "{out}");
    let out = server.ok(
        minor,
        &["explain", "servicemonitors.spec.endpoints", "--recursive"],
    );
    assert_contains(&out, &["port", "targetPort", "interval"]);
    let out = server.ok(minor, &["explain", "servicemonitors.spec.endpoints.port"]);
    assert_contains(
        &out,
        &["Name of the Service port which this endpoint refers to."],
    );
    if minor == 27 {
        // kubectl 1.27 can still explain from the v2 document.
        let v2 = [("KUBECTL_EXPLAIN_OPENAPIV3", "false")];
        let out = stdout_ok(
            kubectl_env(
                &server,
                minor,
                &v2,
                &["explain", "servicemonitors.spec.endpoints"],
            ),
            "explain from v2",
        );
        assert_contains(
            &out,
            &[
                "A list of endpoints allowed as part of this ServiceMonitor.",
                "port",
                "targetPort",
            ],
        );
        let out = stdout_ok(
            kubectl_env(
                &server,
                minor,
                &v2,
                &["explain", "servicemonitors.metadata.name"],
            ),
            "explain metadata from v2",
        );
        assert_contains(&out, &["Name must be unique within a namespace."]);
    }

    // The server validates fields itself: kubectl finds fieldValidation and asks for Strict.
    let bad = write(
        dir,
        "bad.yaml",
        "apiVersion: monitoring.example.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: bad\nspec:\n  endpoints:\n  - port: web\n    bogus: 1\n",
    );
    let err = server.fails(
        minor,
        &["create", "--validate=strict", "-f", bad.to_str().unwrap()],
    );
    assert_contains(
        &err,
        &[
            "strict decoding error",
            r#"unknown field "spec.endpoints[0].bogus""#,
        ],
    );
    let good = write(
        dir,
        "good.yaml",
        "apiVersion: monitoring.example.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: good\nspec:\n  endpoints:\n  - port: web\n    targetPort: 8080\n",
    );
    server.ok(
        minor,
        &["create", "--validate=strict", "-f", good.to_str().unwrap()],
    );

    // A field added to the schema is explained at once.
    let updated = write(dir, "updated.yaml", &crd(SAMPLE_LIMIT));
    server.ok(minor, &["apply", "-f", updated.to_str().unwrap()]);
    let out = server.ok(minor, &["explain", "servicemonitors.spec"]);
    assert_contains(
        &out,
        &["sampleLimit", "SampleLimit defines a per-scrape limit"],
    );
    // A URL with an outdated hash is moved to the current document.
    let moved = server.ok(
        minor,
        &[
            "get",
            "--raw",
            "/openapi/v3/apis/monitoring.example.com/v1?hash=0000",
        ],
    );
    assert_contains(&moved, &["sampleLimit"]);

    // Once the CRD is gone, so is its schema.
    server.ok(minor, &["delete", "crd", NAME]);
    let err = server.fails(minor, &["explain", "servicemonitors.spec"]);
    assert!(
        err.contains(r#"the server doesn't have a resource type "servicemonitors""#)
            || err.contains("couldn't find resource"),
        "{err}"
    );
    let index = server.ok(minor, &["get", "--raw", "/openapi/v3"]);
    assert!(!index.contains("monitoring.example.com"), "{index}");
}

#[test]
fn explain_follows_the_crd_kubectl_1_27() {
    explain_follows_the_crd(27);
}

#[test]
fn explain_follows_the_crd_kubectl_1_33() {
    explain_follows_the_crd(33);
}
