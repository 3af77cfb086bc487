//! Hostile and careless clients against the real `kwok apiserver`: requests that once took a
//! cluster down or damaged it (copy bombs, nesting past what the decoder reads back, huge
//! bodies, silent and slow connections, clients that stop reading a watch) and the smaller
//! ways requests differed from kube-apiserver (unknown fields, encoded names, name lengths,
//! `kind` of the wrong type, health checks, unparsable resourceVersions).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::{Value, json};

/// Sends a request through kube-rs and returns status, the `Warning` headers and the body.
async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Vec<String>, Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let status = resp.status().as_u16();
    let warnings = resp
        .headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, warnings, body)
}

async fn get(client: &kube::Client, path: &str) -> (u16, Value) {
    let (status, _, body) = send(client, "GET", path, "application/json", Vec::new()).await;
    (status, body)
}

fn json_body(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn configmap(name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_patch_copy_bomb_is_refused_and_the_object_left_as_it_was() {
    let server = Server::start();
    let client = server.client().await;
    let filler = "x".repeat(1000);
    let (status, _, _) = send(
        &client,
        "POST",
        CONFIGMAPS,
        "application/json",
        json_body(&configmap("bomb", json!({"a": filler}))),
    )
    .await;
    assert_eq!(status, 201);
    // Each copy doubles `metadata`; 26 of them would be 64 GiB.
    let mut ops = vec![json!({"op": "copy", "from": "/data", "path": "/metadata/annotations"})];
    ops.extend(
        (0..26)
            .map(|i| json!({"op": "copy", "from": "/metadata", "path": format!("/metadata/x{i}")})),
    );
    let (status, _, body) = send(
        &client,
        "PATCH",
        &format!("{CONFIGMAPS}/bomb"),
        "application/json-patch+json",
        json_body(&Value::Array(ops)),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message
            .starts_with("Unable to complete the copy, the accumulated size increase of copy is")
            && message.ends_with("exceeding the limit 3145728"),
        "{message}"
    );
    let (status, stored) = get(&client, &format!("{CONFIGMAPS}/bomb")).await;
    assert_eq!(status, 200);
    assert!(stored["metadata"].get("annotations").is_none(), "{stored}");
    // More operations than kube-apiserver takes in one patch.
    let many: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/kind", "value": "ConfigMap"}))
        .collect();
    let (status, _, body) = send(
        &client,
        "PATCH",
        &format!("{CONFIGMAPS}/bomb"),
        "application/json-patch+json",
        json_body(&Value::Array(many)),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(
        body["message"],
        "The allowed maximum operations in a JSON patch is 10000, got 10001"
    );
}

fn nested(levels: usize) -> Value {
    let mut v = json!("leaf");
    for _ in 0..levels {
        v = json!({ "a": v });
    }
    v
}

const FREE_FORM_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: blobs.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: blobs, kind: Blob}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
"#;

const BLOBS: &str = "/apis/example.com/v1/namespaces/default/blobs";

fn blob(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Blob", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_stored_deeper_than_the_server_reads_back() {
    let server = Server::start();
    server.install_crd(33, FREE_FORM_CRD, "blobs.example.com");
    let client = server.client().await;
    let (status, _, body) = send(
        &client,
        "POST",
        BLOBS,
        "application/json",
        json_body(&blob("deep", json!({"k": "v"}))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // Forty levels at a time: each operation nests below the previous one.
    let ops = json!([
        {"op": "add", "path": "/spec/x", "value": nested(40)},
        {"op": "add", "path": format!("/spec/x{}", "/a".repeat(40)), "value": nested(40)},
        {"op": "add", "path": format!("/spec/x{}", "/a".repeat(80)), "value": nested(40)},
    ]);
    let (status, _, body) = send(
        &client,
        "PATCH",
        &format!("{BLOBS}/deep"),
        "application/json-patch+json",
        json_body(&ops),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("nested more than 100 levels deep"),
        "{body}"
    );
    // A body the decoder reads (and a JSON body sent as YAML) is still refused before it is
    // stored, when it is deeper than every reader can take.
    for content_type in ["application/json", "application/yaml"] {
        let (status, _, body) = send(
            &client,
            "POST",
            BLOBS,
            content_type,
            json_body(&blob("deep2", nested(110))),
        )
        .await;
        assert_eq!(status, 400, "{content_type}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("100 levels"),
            "{body}"
        );
    }
    let (status, _, body) = send(
        &client,
        "POST",
        BLOBS,
        "application/json",
        json_body(&blob("fine", nested(90))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    // The objects stay writable and lists of their kind still decode.
    let (status, _, body) = send(
        &client,
        "PATCH",
        &format!("{BLOBS}/deep"),
        "application/merge-patch+json",
        json_body(&json!({"spec": {"k": "w"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, list) = get(&client, BLOBS).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    let out = server.ok(33, &["get", "blobs", "-o", "name"]);
    assert_eq!(out.lines().count(), 2, "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_and_objects_get_413() {
    let server = Server::start();
    let client = server.client().await;
    let big = vec![b'a'; 4 << 20];
    let (status, _, body) = send(&client, "POST", CONFIGMAPS, "application/json", big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["reason"], "RequestEntityTooLarge");
    assert_eq!(
        body["message"],
        "Request entity too large: limit is 3145728"
    );
    // Each patch is small enough, the object they add up to is not: it stops growing at the
    // store's limit (etcd's own limit is lower) with a 413, and stays readable.
    let template = json!({
        "apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "grows"},
        "template": {"spec": {"containers": [{"name": "c", "image": "i", "args": []}]}},
    });
    let templates = "/api/v1/namespaces/default/podtemplates";
    let (status, _, body) = send(
        &client,
        "POST",
        templates,
        "application/json",
        json_body(&template),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let chunk = "y".repeat(700 << 10);
    let mut refused = None;
    for i in 0..8 {
        let patch =
            json!([{"op": "add", "path": "/template/spec/containers/0/args/-", "value": chunk}]);
        let (status, _, body) = send(
            &client,
            "PATCH",
            &format!("{templates}/grows"),
            "application/json-patch+json",
            json_body(&patch),
        )
        .await;
        if status != 200 {
            refused = Some((i, status, body));
            break;
        }
    }
    let (round, status, body) = refused.expect("the object stops growing");
    assert!(round >= 1, "a 1.4 MB object fits");
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["reason"], "RequestEntityTooLarge");
    let (status, stored) = get(&client, &format!("{templates}/grows")).await;
    assert_eq!(status, 200);
    let args = stored["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap();
    assert_eq!(
        args.len(),
        round,
        "every accepted patch is there, the refused one is not"
    );
}

/// A TLS connection as an HTTP/1.1 client with the admin certificate (or none).
fn tls_stream(
    server: &Server,
    with_certificate: bool,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let pki = server.pki();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.join("ca.crt")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if with_certificate {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(pki.join("admin.crt"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key = PrivateKeyDer::from_pem_file(pki.join("admin.key")).unwrap();
        builder.with_client_auth_cert(certs, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    rustls::StreamOwned::new(conn, tcp)
}

/// Whether the server closes `stream` within `within`.
fn closed_by_server(stream: &mut impl Read, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

#[test]
fn silent_and_slow_connections_are_closed() {
    let server = Server::start();
    let silent = std::thread::spawn({
        let port = server.port;
        move || {
            let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            tcp.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let started = Instant::now();
            let closed = closed_by_server(&mut tcp, Duration::from_secs(25));
            (closed, started.elapsed())
        }
    });
    // A client that completes the handshake, then sends half a request and stalls.
    let mut slow = tls_stream(&server, true);
    slow.sock
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    slow.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    slow.flush().unwrap();
    let started = Instant::now();
    let slow_closed = closed_by_server(&mut slow, Duration::from_secs(60));
    let (silent_closed, silent_after) = silent.join().unwrap();
    assert!(
        silent_closed,
        "a connection without a TLS handshake is closed"
    );
    assert!(
        silent_after >= Duration::from_secs(5),
        "after the handshake timeout, not at once"
    );
    assert!(slow_closed, "a request whose headers never end is dropped");
    assert!(
        started.elapsed() >= Duration::from_secs(20),
        "after the header timeout"
    );
    // The server serves everyone else throughout.
    let mut ok = tls_stream(&server, true);
    ok.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    let _ = ok.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
}

#[test]
fn connections_that_never_authenticate_cannot_use_up_the_open_files() {
    // 128 open files: without a bound 300 silent sockets would lock everyone out.
    let server = Server::start_limited(&[], Some(128));
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(TcpStream::connect(("127.0.0.1", server.port)).unwrap());
    }
    let mut anonymous = Vec::new();
    for _ in 0..100 {
        let mut s = tls_stream(&server, false);
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        anonymous.push(s);
    }
    let started = Instant::now();
    let out = server.kubectl(33, &["get", "namespace", "default", "-o", "name"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    drop(silent);
    drop(anonymous);
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(2).position(|w| w == b"\r\n") {
        let Ok(size) = usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16)
        else {
            break;
        };
        raw = &raw[end + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            break;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[(size + 2).min(raw.len())..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_is_closed_and_resumes_where_it_stopped() {
    let server = Server::start();
    let client = server.client().await;
    let (_, list) = get(&client, CONFIGMAPS).await;
    let start = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let mut stuck = tls_stream(&server, true);
    write!(
        stuck,
        "GET {CONFIGMAPS}?watch=true&resourceVersion={start} HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    .unwrap();
    stuck.flush().unwrap();
    let mut head = [0u8; 64];
    let n = stuck.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
    let mut raw = head[..n].to_vec();
    // 60 MB of events for a client that reads none of them.
    let value = "z".repeat(100 << 10);
    let total = 600;
    for i in 0..total {
        let (status, _, body) = send(
            &client,
            "POST",
            CONFIGMAPS,
            "application/json",
            json_body(&configmap(&format!("big-{i}"), json!({"v": value}))),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    assert!(
        log.contains("fell behind"),
        "the server closed the watch: {log}"
    );
    // What did reach the client ends early; the rest comes from a new watch at its last
    // resourceVersion.
    stuck
        .sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let _ = stuck.read_to_end(&mut raw);
    let body_start = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |p| p + 4);
    // Only the test's own configmaps: controllers may add others meanwhile.
    let ours = |e: &Value| {
        e["object"]["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("big-"))
    };
    let events: Vec<Value> = String::from_utf8_lossy(&dechunk(&raw[body_start..]))
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(ours)
        .collect();
    assert!(
        events.len() < total,
        "{} events reached a stuck client",
        events.len()
    );
    let last = events
        .last()
        .map(|e| {
            e["object"]["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap_or(start);
    let req = http::Request::builder()
        .uri(format!(
            "{CONFIGMAPS}?watch=true&resourceVersion={last}&timeoutSeconds=3"
        ))
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    let resumed = String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["type"] == "ADDED" && ours(e))
        .count();
    assert_eq!(
        events.len() + resumed,
        total,
        "every event once, across both watches"
    );
}

#[test]
fn unknown_fields_are_dropped_unless_validation_is_strict() {
    let server = Server::start();
    let deployment = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: c, image: nginx, imagePullPolicyy: Always}
"#;
    for minor in [27, 33] {
        let named = deployment.replace("name: web}", &format!("name: web-{minor}}}"));
        let out = server.kubectl_stdin(
            minor,
            &["apply", "--validate=warn", "-f", "-"],
            Some(&named),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let warned = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(
            warned.contains("unknown field \"spec.template.spec.containers[0].imagePullPolicyy\""),
            "{warned}"
        );
        let stored = server.get_json(minor, &["deployment", &format!("web-{minor}")]);
        let container = &stored["spec"]["template"]["spec"]["containers"][0];
        assert!(container.get("imagePullPolicyy").is_none(), "{container}");
        let strict = deployment.replace("name: web}", &format!("name: strict-{minor}}}"));
        let out = server.kubectl_stdin(
            minor,
            &["create", "--validate=strict", "-f", "-"],
            Some(&strict),
        );
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("strict decoding error"));
    }
    server.ok_stdin(
        33,
        &["apply", "-f", "-"],
        &deployment.replace("imagePullPolicyy: Always", "imagePullPolicy: Always"),
    );
    // A typo in a patch is dropped, so it changes nothing and starts no rollout.
    let before = server.get_json(33, &["deployment", "web"]);
    let patch = r#"{"spec":{"template":{"spec":{"containers":[{"name":"c","imagePullPolicyy":"Never"}]}}}}"#;
    let out = server.kubectl(33, &["patch", "deployment", "web", "-p", patch]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field"));
    let after = server.get_json(33, &["deployment", "web"]);
    assert_eq!(
        after["metadata"]["generation"],
        before["metadata"]["generation"]
    );
    assert_eq!(after["spec"], before["spec"]);
    // Ignored: dropped without a word.
    let out = server.kubectl_stdin(
        27,
        &["replace", "--validate=false", "-f", "-"],
        Some(deployment),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("unknown field"));
    let replaced = server.get_json(27, &["deployment", "web"]);
    assert!(
        replaced["spec"]["template"]["spec"]["containers"][0]
            .get("imagePullPolicyy")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn percent_encoded_names_are_decoded() {
    let server = Server::start();
    server.ok(
        33,
        &[
            "create",
            "clusterrole",
            "system:kwok-test",
            "--verb=get",
            "--resource=pods",
        ],
    );
    let client = server.client().await;
    let (status, body) = get(
        &client,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system%3Akwok-test",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["metadata"]["name"], "system:kwok-test");
    let (status, body) = get(&client, "/api/v1/namespaces/%zz").await;
    assert_eq!(status, 400, "{body}");
}

#[test]
fn names_follow_the_rule_of_their_kind() {
    let server = Server::start();
    let long = |n: usize| "a".repeat(n);
    for minor in [27, 33] {
        let name = format!("{}-{minor}", long(250));
        server.ok(minor, &["create", "configmap", &name]);
        let err = server.fails(
            minor,
            &["create", "configmap", &format!("{}-{minor}", long(251))],
        );
        assert!(err.contains("must be no more than 253 characters"), "{err}");
    }
    let err = server.fails(33, &["create", "namespace", &long(64)]);
    assert!(err.contains("must be no more than 63 characters"), "{err}");
    let sts = format!(
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {{name: {}}}\nspec:\n  selector: {{matchLabels: {{a: b}}}}\n  template:\n    metadata: {{labels: {{a: b}}}}\n    spec: {{containers: [{{name: c, image: i}}]}}\n",
        long(64)
    );
    let out = server.kubectl_stdin(33, &["create", "-f", "-"], Some(&sts));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be no more than 63 characters"));
    let err = server.fails(
        33,
        &[
            "create",
            "cronjob",
            &long(53),
            "--image=i",
            "--schedule=* * * * *",
        ],
    );
    assert!(err.contains("must be no more than 52 characters"), "{err}");
    server.ok(
        33,
        &[
            "create",
            "cronjob",
            &long(52),
            "--image=i",
            "--schedule=* * * * *",
        ],
    );
    let deployment = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {}}}\nspec:\n  selector: {{matchLabels: {{a: b}}}}\n  template:\n    metadata: {{labels: {{a: b}}}}\n    spec: {{containers: [{{name: c, image: i}}]}}\n",
        long(100)
    );
    server.ok_stdin(33, &["create", "-f", "-"], &deployment);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_meta_of_the_wrong_type_and_unparsable_resource_versions_are_refused() {
    let server = Server::start();
    let client = server.client().await;
    let body = json!({"apiVersion": "v1", "kind": 5, "metadata": {"name": "k"}});
    let (status, _, reply) = send(
        &client,
        "POST",
        CONFIGMAPS,
        "application/json",
        json_body(&body),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .ends_with("json: cannot unmarshal number into Go struct field .kind of type string"),
        "{reply}"
    );
    for path in [
        format!("{CONFIGMAPS}/k?resourceVersion=abc"),
        format!("{CONFIGMAPS}?resourceVersion=abc"),
    ] {
        let (status, reply) = get(&client, &path).await;
        assert_eq!(status, 500, "{reply}");
        assert_eq!(
            reply["message"],
            "resourceVersion: Invalid value: \"abc\": strconv.ParseUint: parsing \"abc\": invalid syntax"
        );
    }
    let out = server.kubectl(
        27,
        &[
            "get",
            "--raw",
            &format!("{CONFIGMAPS}/k?resourceVersion=-1"),
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("strconv.ParseUint"));
}

#[test]
fn health_checks_are_named_as_kube_apiserver_names_them() {
    let server = Server::start();
    for minor in [27, 33] {
        let verbose = server.ok(minor, &["get", "--raw", "/readyz?verbose"]);
        for check in [
            "[+]ping ok",
            "[+]etcd ok",
            "[+]informer-sync ok",
            "readyz check passed",
        ] {
            assert!(verbose.contains(check), "{verbose}");
        }
        assert_eq!(server.ok(minor, &["get", "--raw", "/livez/ping"]), "ok");
        let excluded = server.ok(minor, &["get", "--raw", "/healthz?verbose&exclude=etcd"]);
        assert!(excluded.contains("[+]etcd excluded: ok"), "{excluded}");
        let err = server.fails(minor, &["get", "--raw", "/readyz/no-such-check"]);
        assert!(
            err.contains("NotFound") || err.contains("could not find"),
            "{err}"
        );
    }
}

fn event_manifest(name: &str, last: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Event\nmetadata: {{name: {name}}}\ninvolvedObject: {{kind: Pod, name: p, namespace: default}}\nreason: Tested\nmessage: m\nlastTimestamp: \"{last}\"\n"
    )
}

fn event_names(server: &Server) -> String {
    server.ok(33, &["get", "events", "-o", "name"])
}

/// A cluster that keeps creating pods would keep every event ever recorded: kube-apiserver
/// drops an Event `--event-ttl` after its last write, and so must we, across restarts too.
#[test]
fn events_expire_after_the_event_ttl_from_their_last_write() {
    let mut server = Server::start_with(&["--event-ttl", "6s"]);
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).unwrap();
    server.ok_stdin(
        33,
        &["create", "-f", "-"],
        &event_manifest("fresh", &now.to_string()),
    );
    server.ok_stdin(
        33,
        &["create", "-f", "-"],
        &event_manifest("kept", &now.to_string()),
    );
    std::thread::sleep(Duration::from_secs(4));
    server.ok(33, &["annotate", "event", "kept", "renewed=yes"]);
    std::thread::sleep(Duration::from_secs(4));
    let names = event_names(&server);
    assert!(
        !names.contains("event/fresh"),
        "not expired after 8 s: {names}"
    );
    assert!(
        names.contains("event/kept"),
        "a write did not renew it: {names}"
    );
    server.kill9();
    server.launch();
    // Found at start, an Event expires by its timestamps: these are older than the TTL.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let names = event_names(&server);
        if !names.contains("event/") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still there after a restart: {names}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
