//! Aggregated APIs against the real server with kubectl 1.27 and 1.33: an APIService served by
//! a Service without selector whose Endpoints point at an extension server written here
//! (Python over HTTPS), proxied with the requester's identity, listed in discovery, reported
//! Available; one without endpoints reported unavailable and answered 503.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Serves `wardle.example.com/v1alpha1` with one namespaced resource, `flunders`, whose list
/// holds one item annotated with the `X-Remote-User` and `X-Remote-Group` it was asked with.
const EXTENSION_SERVER: &str = r#"
import http.server, json, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
GV = "wardle.example.com/v1alpha1"
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        path = self.path.split("?")[0].rstrip("/")
        if path == "/apis/" + GV:
            self.reply(200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GV, "resources": [
                {"name": "flunders", "singularName": "flunder", "namespaced": True, "kind": "Flunder",
                 "verbs": ["get", "list"], "shortNames": ["fl"]}]})
        elif path == "/apis/" + GV + "/namespaces/default/flunders":
            who = {"user": self.headers.get("X-Remote-User", ""),
                   "groups": ",".join(self.headers.get_all("X-Remote-Group") or []),
                   "authorization": self.headers.get("Authorization", "")}
            self.reply(200, {"kind": "FlunderList", "apiVersion": GV, "metadata": {"resourceVersion": "1"}, "items": [
                {"kind": "Flunder", "apiVersion": GV, "metadata": {"name": "first", "namespace": "default",
                 "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": who}}]})
        else:
            self.reply(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound"})
"#;

fn condition(server: &Server, minor: u32, name: &str) -> (String, String) {
    let svc = server.get_json(minor, &["apiservice", name]);
    let available = svc["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Available")
        .cloned()
        .unwrap_or_default();
    (
        available["status"].as_str().unwrap_or("").to_string(),
        available["reason"].as_str().unwrap_or("").to_string(),
    )
}

fn wait_for_condition(server: &Server, minor: u32, name: &str, want: (&str, &str)) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = condition(server, minor, name);
        if (got.0.as_str(), got.1.as_str()) == want {
            return;
        }
        assert!(Instant::now() < deadline, "{name}: {got:?}, want {want:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn aggregated_api(minor: u32) {
    let server = Server::start();
    let ext = PythonTlsServer::start(
        server.dir.path(),
        "ext",
        EXTENSION_SERVER,
        "api.wardle.svc",
        &[],
    );
    let manifest = format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: wardle
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: wardle
spec:
  ports:
  - port: 443
    targetPort: {port}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: api
  namespace: wardle
subsets:
- addresses:
  - ip: 127.0.0.1
  ports:
  - port: {port}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1alpha1.wardle.example.com
spec:
  group: wardle.example.com
  version: v1alpha1
  groupPriorityMinimum: 1000
  versionPriority: 15
  caBundle: {ca}
  service:
    namespace: wardle
    name: api
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.nowhere.example.com
spec:
  group: nowhere.example.com
  version: v1beta1
  groupPriorityMinimum: 1000
  versionPriority: 15
  insecureSkipTLSVerify: true
  service:
    namespace: wardle
    name: missing
"#,
        port = ext.port,
        ca = ext.ca_bundle
    );
    server.ok_stdin(minor, &["apply", "-f", "-"], &manifest);
    wait_for_condition(
        &server,
        minor,
        "v1alpha1.wardle.example.com",
        ("True", "Passed"),
    );
    wait_for_condition(
        &server,
        minor,
        "v1beta1.nowhere.example.com",
        ("False", "ServiceNotFound"),
    );

    let resources = server.ok(minor, &["api-resources", "--api-group=wardle.example.com"]);
    assert!(resources.contains("flunders"), "{resources}");
    assert!(
        resources.contains("wardle.example.com/v1alpha1"),
        "{resources}"
    );

    let list = server.get_json(minor, &["flunders"]);
    let item = &list["items"][0];
    assert_eq!(item["metadata"]["name"], "first");
    let seen = &item["metadata"]["annotations"];
    assert_eq!(seen["user"], "kwok-admin");
    assert!(
        seen["groups"].as_str().unwrap().contains("system:masters"),
        "{seen}"
    );
    assert_eq!(seen["authorization"], "", "credentials are not forwarded");

    let out = server.kubectl(
        minor,
        &["get", "--raw", "/apis/nowhere.example.com/v1beta1/things"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("503")
            || stderr.contains("ServiceUnavailable")
            || stderr.contains("error trying to reach service"),
        "{stderr}"
    );

    // Extension servers find the CAs and header names they need.
    let deadline = Instant::now() + Duration::from_secs(10);
    let auth = loop {
        let out = server.kubectl(
            minor,
            &[
                "get",
                "configmap",
                "-n",
                "kube-system",
                "extension-apiserver-authentication",
                "-o",
                "json",
            ],
        );
        if out.status.success() {
            break serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no extension-apiserver-authentication ConfigMap"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        auth["data"]["requestheader-client-ca-file"]
            .as_str()
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(
        auth["data"]["requestheader-username-headers"],
        "[\"X-Remote-User\"]"
    );

    // Without its APIService the group is gone.
    server.ok(
        minor,
        &["delete", "apiservice", "v1alpha1.wardle.example.com"],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while server
        .kubectl(minor, &["get", "--raw", "/apis/wardle.example.com"])
        .status
        .success()
    {
        assert!(Instant::now() < deadline, "the group stayed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kubectl_1_27_aggregated_api() {
    aggregated_api(27);
}

#[test]
fn kubectl_1_33_aggregated_api() {
    aggregated_api(33);
}
