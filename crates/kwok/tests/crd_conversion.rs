//! CRD conversion webhooks against the real server with kubectl 1.27 and 1.33: a CRD with two
//! versions (`v1` stored, with `spec.colour`; `v2` served, with `spec.color`) whose conversion
//! webhook is a server written here (Python over HTTPS) behind a selector-less Service; objects
//! written in either version read back in both, patches in the served version land in storage,
//! and a webhook that is gone makes reads of the other version fail with kube-apiserver's error.

mod common;

use common::*;

const CONVERTER: &str = r#"
import http.server, json, ssl, sys
port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def convert(obj, desired):
    obj = json.loads(json.dumps(obj))
    spec = obj.setdefault("spec", {})
    if desired.endswith("/v2") and "colour" in spec:
        spec["color"] = spec.pop("colour")
    if desired.endswith("/v1") and "color" in spec:
        spec["colour"] = spec.pop("color")
    obj["apiVersion"] = desired
    return obj
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args):
        pass
    def do_POST(self):
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = review["request"]
        converted = [convert(o, request["desiredAPIVersion"]) for o in request["objects"]]
        body = json.dumps({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": request["uid"], "result": {"status": "Success"}, "convertedObjects": converted}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
"#;

fn manifest(port: u16, ca: &str) -> String {
    let schema = |field: &str| {
        format!(
            "    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec:\n            type: object\n            properties:\n              {field}:\n                type: string\n"
        )
    };
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: widgets
---
apiVersion: v1
kind: Service
metadata:
  name: converter
  namespace: widgets
spec:
  ports:
  - port: 443
    targetPort: {port}
---
apiVersion: v1
kind: Endpoints
metadata:
  name: converter
  namespace: widgets
subsets:
- addresses:
  - ip: 127.0.0.1
  ports:
  - port: {port}
---
apiVersion: apiextensions.k8s.io/v1
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
  conversion:
    strategy: Webhook
    webhook:
      conversionReviewVersions: ["v1"]
      clientConfig:
        caBundle: {ca}
        service:
          namespace: widgets
          name: converter
          path: /convert
  versions:
  - name: v1
    served: true
    storage: true
{v1}  - name: v2
    served: true
    storage: false
{v2}"#,
        v1 = schema("colour"),
        v2 = schema("color"),
    )
}

fn spec_field(server: &Server, minor: u32, what: &str, field: &str) -> String {
    let o = server.get_json(minor, &[what]);
    o["spec"][field].as_str().unwrap_or("").to_string()
}

fn converts_between_versions(minor: u32) {
    let server = Server::start();
    let converter = PythonTlsServer::start(
        server.dir.path(),
        "conv",
        CONVERTER,
        "converter.widgets.svc",
        &[],
    );
    server.ok_stdin(
        minor,
        &["apply", "-f", "-"],
        &manifest(converter.port, &converter.ca_bundle),
    );
    server.ok(
        minor,
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
    );
    // Written in the served version, stored and read in both.
    server.ok_stdin(
        minor,
        &["apply", "-f", "-"],
        "apiVersion: example.com/v2\nkind: Widget\nmetadata:\n  name: first\n  namespace: default\nspec:\n  color: red\n",
    );
    assert_eq!(
        spec_field(&server, minor, "widgets.v1.example.com/first", "colour"),
        "red"
    );
    assert_eq!(
        spec_field(&server, minor, "widgets.v2.example.com/first", "color"),
        "red"
    );
    let v2 = server.get_json(minor, &["widgets.v2.example.com/first"]);
    assert_eq!(v2["apiVersion"], "example.com/v2");

    // Written in the storage version, listed in the other.
    server.ok_stdin(
        minor,
        &["apply", "-f", "-"],
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: second\n  namespace: default\nspec:\n  colour: green\n",
    );
    let list = server.get_json(minor, &["widgets.v2.example.com"]);
    let colors: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["spec"]["color"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(colors, ["red", "green"]);

    // A patch in the served version changes what is stored.
    server.ok(
        minor,
        &[
            "patch",
            "widgets.v2.example.com",
            "first",
            "--type=merge",
            "-p",
            r#"{"spec":{"color":"blue"}}"#,
        ],
    );
    assert_eq!(
        spec_field(&server, minor, "widgets.v1.example.com/first", "colour"),
        "blue"
    );
    assert_eq!(
        spec_field(&server, minor, "widgets.v1.example.com/first", "color"),
        ""
    );

    // Without the webhook, only the storage version can be read.
    drop(converter);
    assert_eq!(
        spec_field(&server, minor, "widgets.v1.example.com/first", "colour"),
        "blue"
    );
    let refused = server.fails(minor, &["get", "widgets.v2.example.com", "first"]);
    assert!(
        refused.contains("conversion webhook for example.com/v2, Kind=Widget failed"),
        "{refused}"
    );
}

#[test]
fn kubectl_1_27_converts_between_versions() {
    converts_between_versions(27);
}

#[test]
fn kubectl_1_33_converts_between_versions() {
    converts_between_versions(33);
}
