//! Admission webhooks against the real server, driven by kubectl 1.27 and 1.33: a webhook
//! server written here (Python's standard library over HTTPS with a CA of the test's own)
//! registered by URL and through a selector-less Service with manual Endpoints; mutation by
//! JSON patch, refusals, warnings, timeouts under both failure policies, namespace selectors,
//! dry run, deletions, and what the webhook is told about the request; ValidatingAdmissionPolicy
//! with params, variables, match conditions, message expressions and Deny/Warn bindings.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// `/mutate` labels the object and warns; `/deny` refuses to create names starting with `bad`
/// and to delete names starting with `protected`; `/slow`
/// answers after three seconds; every review is appended to `reviews.jsonl`.
const WEBHOOK_SERVER: &str = r#"
import base64, http.server, json, ssl, sys, threading, time
port, cert, key, log = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
lock = threading.Lock()
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        with lock, open(log, "a") as f:
            f.write(json.dumps({"path": self.path, "request": request}) + "\n")
        response = {"uid": request["uid"], "allowed": True}
        path = self.path.split("?")[0]
        obj = request.get("object") or {}
        if path == "/mutate":
            ops = []
            if "labels" not in obj.get("metadata", {}):
                ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
            ops.append({"op": "add", "path": "/metadata/labels/mutated", "value": "yes"})
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(ops).encode()).decode()
            response["warnings"] = ["labelled by the test webhook"]
        elif path == "/deny":
            name = (obj.get("metadata") or (request.get("oldObject") or {}).get("metadata") or {}).get("name", "")
            deleting = request["operation"] == "DELETE"
            if name.startswith("bad") and not deleting:
                response = {"uid": request["uid"], "allowed": False,
                            "status": {"code": 403, "message": "name " + name + " is not allowed"}}
            if name.startswith("protected") and deleting:
                response = {"uid": request["uid"], "allowed": False,
                            "status": {"code": 403, "reason": "Forbidden", "message": name + " is protected"}}
        elif path == "/slow":
            time.sleep(3)
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
"#;

struct WebhookServer {
    server: PythonTlsServer,
    log: std::path::PathBuf,
}

impl WebhookServer {
    fn start(dir: &Path) -> WebhookServer {
        let log = dir.join("reviews.jsonl");
        let server =
            PythonTlsServer::start(dir, "hook", WEBHOOK_SERVER, "hooks.webhooks.svc", &[&log]);
        WebhookServer { server, log }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.server.port)
    }

    fn reviews(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn webhook(name: &str, client_config: &str, extra: &str) -> String {
    format!(
        r#"
- name: {name}
  clientConfig: {client_config}
  rules:
  - operations: ["CREATE", "UPDATE", "DELETE"]
    apiGroups: [""]
    apiVersions: ["v1"]
    resources: ["configmaps"]
  sideEffects: NoneOnDryRun
  admissionReviewVersions: ["v1"]
{extra}"#
    )
}

fn configuration(kind: &str, name: &str, webhooks: &[String]) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {name}\nwebhooks:{}\n",
        webhooks.concat()
    )
}

fn url_config(hooks: &WebhookServer, path: &str) -> String {
    format!(
        "{{url: \"{}\", caBundle: \"{}\"}}",
        hooks.url(path),
        hooks.server.ca_bundle
    )
}

fn apply(server: &Server, minor: u32, manifest: &str) {
    server.ok_stdin(minor, &["apply", "-f", "-"], manifest);
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mutates_denies_and_tells(minor: u32) {
    let server = Server::start();
    let hooks = WebhookServer::start(server.dir.path());
    apply(
        &server,
        minor,
        &configuration(
            "MutatingWebhookConfiguration",
            "label",
            &[webhook("label.test.io", &url_config(&hooks, "/mutate"), "")],
        ),
    );
    apply(
        &server,
        minor,
        &configuration(
            "ValidatingWebhookConfiguration",
            "names",
            &[webhook("names.test.io", &url_config(&hooks, "/deny"), "")],
        ),
    );
    let out = server.kubectl(
        minor,
        &["create", "configmap", "good", "--from-literal=a=b"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Warning: labelled by the test webhook"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let good = server.get_json(minor, &["configmap", "good"]);
    assert_eq!(good["metadata"]["labels"]["mutated"], "yes");
    assert_eq!(good["data"]["a"], "b");

    let refused = server.fails(minor, &["create", "configmap", "bad-one"]);
    assert!(
        refused.contains(
            "admission webhook \"names.test.io\" denied the request: name bad-one is not allowed"
        ),
        "{refused}"
    );
    assert!(
        server
            .kubectl(minor, &["get", "configmap", "bad-one"])
            .status
            .code()
            != Some(0)
    );

    // Updates carry the old object; a dry run says so and writes nothing.
    server.ok(minor, &["label", "configmap", "good", "extra=1"]);
    server.ok(
        minor,
        &[
            "create",
            "configmap",
            "dry",
            "--dry-run=server",
            "-o",
            "name",
        ],
    );
    assert!(
        !server
            .kubectl(minor, &["get", "configmap", "dry"])
            .status
            .success()
    );
    let reviews = hooks.reviews();
    let update = reviews
        .iter()
        .find(|r| {
            r["request"]["operation"] == "UPDATE"
                && r["path"].as_str().unwrap().starts_with("/deny")
        })
        .expect("an update was reviewed");
    assert_eq!(update["request"]["oldObject"]["metadata"]["name"], "good");
    assert_eq!(
        update["request"]["object"]["metadata"]["labels"]["extra"],
        "1"
    );
    assert_eq!(update["request"]["kind"]["kind"], "ConfigMap");
    assert_eq!(update["request"]["resource"]["resource"], "configmaps");
    assert_eq!(update["request"]["namespace"], "default");
    assert_eq!(update["request"]["userInfo"]["username"], "kwok-admin");
    assert!(
        update["request"]["userInfo"]["groups"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("system:masters"))
    );
    assert!(update["path"].as_str().unwrap().ends_with("?timeout=10s"));
    let dry = reviews
        .iter()
        .find(|r| r["request"]["name"] == "dry")
        .expect("the dry run was reviewed");
    assert_eq!(dry["request"]["dryRun"], true);

    // Deletions are reviewed with the old object only, and may be refused.
    server.ok(minor, &["create", "configmap", "protected-data"]);
    let refused = server.fails(minor, &["delete", "configmap", "protected-data"]);
    assert!(
        refused.contains("denied the request: protected-data is protected"),
        "{refused}"
    );
    server.ok(minor, &["get", "configmap", "protected-data"]);
    server.ok(minor, &["delete", "configmap", "good"]);
    let reviews = hooks.reviews();
    let delete = reviews
        .iter()
        .find(|r| r["request"]["operation"] == "DELETE" && r["request"]["name"] == "good")
        .expect("the deletion was reviewed");
    assert!(delete["request"]["object"].is_null());
    assert_eq!(delete["request"]["oldObject"]["metadata"]["name"], "good");
    assert_eq!(delete["request"]["options"]["kind"], "DeleteOptions");

    // Removing the configuration stops the calls at once.
    server.ok(
        minor,
        &["delete", "validatingwebhookconfiguration", "names"],
    );
    server.ok(minor, &["create", "configmap", "bad-but-allowed"]);
}

/// A webhook behind a Service without selector whose Endpoints point at the host process, as
/// operator developers run them; a namespace selector; timeouts under both failure policies.
fn service_webhooks_selectors_and_timeouts(minor: u32) {
    let server = Server::start();
    let hooks = WebhookServer::start(server.dir.path());
    let service = format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: webhooks
---
apiVersion: v1
kind: Namespace
metadata:
  name: watched
  labels:
    admission: "on"
---
apiVersion: v1
kind: Service
metadata:
  name: hooks
  namespace: webhooks
spec:
  ports:
  - name: https
    port: 443
    targetPort: {port}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: hooks
  namespace: webhooks
subsets:
- addresses:
  - ip: 127.0.0.1
  ports:
  - name: https
    port: {port}
"#,
        port = hooks.server.port
    );
    apply(&server, minor, &service);
    let by_service = format!(
        "{{service: {{namespace: webhooks, name: hooks, path: /deny}}, caBundle: \"{}\"}}",
        hooks.server.ca_bundle
    );
    let selector = "  namespaceSelector:\n    matchLabels:\n      admission: \"on\"\n";
    apply(
        &server,
        minor,
        &configuration(
            "ValidatingWebhookConfiguration",
            "by-service",
            &[webhook("service.test.io", &by_service, selector)],
        ),
    );
    let refused = server.fails(minor, &["create", "configmap", "bad-x", "-n", "watched"]);
    assert!(
        refused.contains("admission webhook \"service.test.io\" denied the request"),
        "{refused}"
    );
    // Outside the selected namespaces the webhook is not asked.
    server.ok(minor, &["create", "configmap", "bad-x", "-n", "default"]);
    assert!(
        hooks
            .reviews()
            .iter()
            .all(|r| r["request"]["namespace"] == "watched")
    );
    server.ok(
        minor,
        &["delete", "validatingwebhookconfiguration", "by-service"],
    );

    // A webhook slower than its timeout: refused when it fails closed, let through when open.
    let slow = |policy: &str| {
        configuration(
            "ValidatingWebhookConfiguration",
            "slow",
            &[webhook(
                "slow.test.io",
                &url_config(&hooks, "/slow"),
                &format!("  timeoutSeconds: 1\n  failurePolicy: {policy}\n"),
            )],
        )
    };
    apply(&server, minor, &slow("Fail"));
    let started = Instant::now();
    let refused = server.fails(minor, &["create", "configmap", "late"]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        refused.contains("Internal error occurred: failed calling webhook \"slow.test.io\": failed to call webhook: Post \"https://127.0.0.1:")
            && refused.contains("/slow?timeout=1s\": context deadline exceeded"),
        "{refused}"
    );
    apply(&server, minor, &slow("Ignore"));
    server.ok(minor, &["create", "configmap", "late"]);

    // An unreachable webhook that fails closed refuses; its configuration can still be removed.
    let gone = configuration(
        "ValidatingWebhookConfiguration",
        "slow",
        &[webhook(
            "slow.test.io",
            &format!("{{url: \"https://127.0.0.1:{}/x\"}}", free_port()),
            "",
        )],
    );
    apply(&server, minor, &gone);
    let refused = server.fails(minor, &["create", "configmap", "nowhere"]);
    assert!(
        refused.contains("failed calling webhook \"slow.test.io\""),
        "{refused}"
    );
    server.ok(minor, &["delete", "validatingwebhookconfiguration", "slow"]);
    wait_until("the configuration to be gone", || {
        server
            .kubectl(minor, &["create", "configmap", "nowhere"])
            .status
            .success()
    });
}

#[test]
fn kubectl_1_27_service_webhooks_selectors_and_timeouts() {
    service_webhooks_selectors_and_timeouts(27);
}

#[test]
fn kubectl_1_33_service_webhooks_selectors_and_timeouts() {
    service_webhooks_selectors_and_timeouts(33);
}

#[test]
fn kubectl_1_27_webhooks_mutate_deny_and_are_told() {
    mutates_denies_and_tells(27);
}

#[test]
fn kubectl_1_33_webhooks_mutate_deny_and_are_told() {
    mutates_denies_and_tells(33);
}

const POLICIES: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: replica-limit.test.io
spec:
  failurePolicy: Fail
  paramKind:
    apiVersion: v1
    kind: ConfigMap
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  variables:
  - name: limit
    expression: "int(params.data.maxReplicas)"
  validations:
  - expression: "object.spec.replicas <= variables.limit"
    messageExpression: "'replicas must be at most ' + string(variables.limit) + ', not ' + string(object.spec.replicas)"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: replica-limit-binding.test.io
spec:
  policyName: replica-limit.test.io
  validationActions: [Deny]
  paramRef:
    name: replica-limit
    namespace: default
    parameterNotFoundAction: Deny
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: owner-label.test.io
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  matchConditions:
  - name: not-the-params
    expression: "object.metadata.name != 'replica-limit'"
  validations:
  - expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: owner-label-binding.test.io
spec:
  policyName: owner-label.test.io
  validationActions: [Warn]
"#;

fn policies_deny_and_warn(minor: u32) {
    let server = Server::start();
    apply(&server, minor, POLICIES);
    // Without its params the binding denies.
    let refused = server.fails(
        minor,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ],
    );
    assert!(
        refused.contains("no params found for policy binding with `Deny` parameterNotFoundAction"),
        "{refused}"
    );
    let out = server.kubectl(
        minor,
        &[
            "create",
            "configmap",
            "replica-limit",
            "--from-literal=maxReplicas=5",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.ok(
        minor,
        &[
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
        ],
    );
    let refused = server.fails(
        minor,
        &[
            "create",
            "deployment",
            "big",
            "--image=nginx",
            "--replicas=7",
        ],
    );
    assert!(
        refused.contains(
            "deployments.apps \"big\" is forbidden: ValidatingAdmissionPolicy 'replica-limit.test.io' with binding 'replica-limit-binding.test.io' denied request: replicas must be at most 5, not 7"
        ),
        "{refused}"
    );
    let refused = server.fails(
        minor,
        &[
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"replicas":9}}"#,
        ],
    );
    assert!(
        refused.contains("replicas must be at most 5, not 9"),
        "{refused}"
    );

    // A Warn binding lets the object in with a warning naming the failed expression.
    let out = server.kubectl(minor, &["create", "configmap", "unowned"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Warning: Validation failed for ValidatingAdmissionPolicy 'owner-label.test.io' with binding 'owner-label-binding.test.io': failed expression: has(object.metadata.labels) && 'owner' in object.metadata.labels"),
        "{stderr}"
    );
    server.ok_stdin(
        minor,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  labels:\n    owner: me\n",
    );
}

#[test]
fn kubectl_1_27_policies_deny_and_warn() {
    policies_deny_and_warn(27);
}

#[test]
fn kubectl_1_33_policies_deny_and_warn() {
    policies_deny_and_warn(33);
}
