//! kube-apiserver's flags on `kwok apiserver`: the audit log, feature gates, runtime config,
//! `--kube-version`, the insecure port and admission plugins, against the real server with
//! kubectl 1.27 and 1.33.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::Server;
use serde_json::Value;

const POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  resources: [{group: "", resources: ["configmaps"], resourceNames: ["quiet"]}]
- level: None
  nonResourceURLs: ["/api*", "/openapi*", "/version", "/healthz*", "/readyz*", "/livez*"]
  verbs: ["get"]
- level: RequestResponse
  resources: [{group: "", resources: ["configmaps"]}]
- level: Metadata
"#;

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl").arg("-sS").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The audit events written so far, once `done` holds for them (10 s at most).
fn events(path: &std::path::Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let events: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn about<'a>(events: &'a [Value], name: &str, verb: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["objectRef"]["name"] == name && e["verb"] == verb)
        .collect()
}

#[test]
fn audit_log_follows_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    let policy = common::write(dir.path(), "policy.yaml", POLICY);
    let log = dir.path().join("audit.log");
    let insecure = common::free_port().to_string();
    let server = Server::start_with(&[
        "--audit-policy-file",
        policy.to_str().unwrap(),
        "--audit-log-path",
        log.to_str().unwrap(),
        "--insecure-port",
        &insecure,
    ]);
    for minor in [27, 33] {
        let name = format!("loud{minor}");
        server.ok(minor, &["create", "configmap", &name, "--from-literal=k=v"]);
        server.ok(minor, &["get", "configmap", &name, "-o", "name"]);
        server.ok(minor, &["delete", "configmap", &name]);
        server.ok(minor, &["get", "namespaces"]);
    }
    server.ok(33, &["create", "configmap", "quiet", "--from-literal=k=v"]);
    server.ok(27, &["get", "configmap", "quiet"]);
    let base = format!("http://127.0.0.1:{insecure}");
    let headers = curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        &format!("{base}/api/v1/namespaces/default/pods"),
    ]);
    let header_id = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("audit-id: ")
                .map(|v| v.trim().to_string())
        })
        .expect("Audit-Id header");
    curl(&[&format!(
        "{base}/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1"
    )]);

    let events = events(&log, |e| {
        !about(e, "loud33", "delete").is_empty()
            && e.iter().any(|x| x["auditID"] == header_id.as_str())
            && e.iter().filter(|x| x["verb"] == "watch").count() >= 2
    });
    for minor in [27, 33] {
        let name = format!("loud{minor}");
        let create = about(&events, &name, "create");
        assert_eq!(
            create.len(),
            1,
            "one event per create (RequestReceived omitted): {create:?}"
        );
        let create = create[0];
        assert_eq!(create["level"], "RequestResponse");
        assert_eq!(create["stage"], "ResponseComplete");
        assert_eq!(create["kind"], "Event");
        assert_eq!(create["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(create["requestObject"]["data"]["k"], "v");
        assert_eq!(create["responseObject"]["metadata"]["name"], name.as_str());
        assert_eq!(create["responseStatus"]["code"], 201);
        assert_eq!(create["objectRef"]["resource"], "configmaps");
        assert_eq!(create["objectRef"]["namespace"], "default");
        assert_eq!(create["objectRef"]["apiVersion"], "v1");
        assert_eq!(create["user"]["username"], "kwok-admin");
        assert!(
            create["userAgent"]
                .as_str()
                .unwrap()
                .contains(&format!("/v1.{minor}.")),
            "{}",
            create["userAgent"]
        );
        assert_eq!(create["sourceIPs"][0], "127.0.0.1");
        assert_eq!(
            create["annotations"]["authorization.k8s.io/decision"],
            "allow"
        );
        let stamp = create["stageTimestamp"].as_str().unwrap();
        assert_eq!(stamp.len(), "2006-01-02T15:04:05.000000Z".len(), "{stamp}");
        let get = about(&events, &name, "get");
        assert!(!get.is_empty(), "kubectl get (and delete's wait) read it");
        assert_eq!(get[0]["responseObject"]["data"]["k"], "v");
        let delete = about(&events, &name, "delete");
        assert_eq!(delete[0]["responseStatus"]["code"], 200);
    }
    // resourceNames cannot match a create (its path has no name), as in kube-apiserver: the
    // create of `quiet` is logged, its reads are not.
    assert_eq!(about(&events, "quiet", "create").len(), 1);
    assert!(
        about(&events, "quiet", "get").is_empty(),
        "the None rule keeps reads of quiet out"
    );
    assert!(events.iter().all(|e| e["stage"] != "RequestReceived"));
    assert!(
        events.iter().all(|e| e["requestURI"] != "/version"),
        "discovery reads are excluded"
    );
    let lists: Vec<&Value> = events
        .iter()
        .filter(|e| e["verb"] == "list" && e["objectRef"]["resource"] == "namespaces")
        .collect();
    assert!(lists.len() >= 2, "{lists:?}");
    for list in lists {
        assert_eq!(list["level"], "Metadata");
        assert!(list.get("responseObject").is_none() && list.get("requestObject").is_none());
    }
    let by_header: Vec<&Value> = events
        .iter()
        .filter(|e| e["auditID"] == header_id.as_str())
        .collect();
    assert_eq!(by_header.len(), 1);
    assert_eq!(
        by_header[0]["requestURI"],
        "/api/v1/namespaces/default/pods"
    );
    let watch: Vec<&str> = events
        .iter()
        .filter(|e| e["verb"] == "watch")
        .map(|e| e["stage"].as_str().unwrap())
        .collect();
    assert_eq!(watch, ["ResponseStarted", "ResponseComplete"]);
}

/// Runs `kwok apiserver` with `args`, expecting it to refuse to start; its stderr.
fn refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port().to_string();
    let out = Command::new(common::kwok_bin())
        .args(["apiserver", "--data-dir"])
        .arg(dir.path())
        .args(["--secure-port", &port])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?} should be refused");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn bad_flags_are_refused_with_kube_messages() {
    let gate = refused(&["--feature-gates", "NoSuchGate=true"]);
    assert!(
        gate.contains("unrecognized feature gate: NoSuchGate"),
        "{gate}"
    );
    let locked = refused(&["--feature-gates", "SidecarContainers=false"]);
    assert!(
        locked.contains(
            "cannot set feature gate SidecarContainers to false, feature is locked to true"
        ),
        "{locked}"
    );
    let value = refused(&["--feature-gates", "WatchList=yes"]);
    assert!(value.contains("invalid value of WatchList=yes"), "{value}");
    let runtime = refused(&["--runtime-config", "batch/v9=true"]);
    assert!(
        runtime.contains("group version batch/v9 that has not been registered"),
        "{runtime}"
    );
    let version = refused(&["--kube-version", "v1.26"]);
    assert!(version.contains("v1.27 to v1.33"), "{version}");
    let plugin = refused(&["--enable-admission-plugins", "NoSuchPlugin"]);
    assert!(
        plugin.contains("enable-admission-plugins plugin \"NoSuchPlugin\" is unknown"),
        "{plugin}"
    );
}

#[test]
fn runtime_config_turns_batch_off_and_admission_plugins_off() {
    let server = Server::start_with(&[
        "--runtime-config",
        "batch/v1=false",
        "--disable-admission-plugins",
        "Priority",
        "--feature-gates",
        "WatchList=true,AllAlpha=false",
        "--max-requests-inflight",
        "0",
        "--enable-priority-and-fairness=false",
    ]);
    for minor in [27, 33] {
        let out = server.kubectl(
            minor,
            &["get", "--raw", "/apis/batch/v1/namespaces/default/jobs"],
        );
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("NotFound") || err.contains("not find"),
            "{err}"
        );
        let resources = server.ok(minor, &["api-resources", "-o", "name"]);
        assert!(
            !resources
                .lines()
                .any(|l| l == "jobs.batch" || l == "cronjobs.batch"),
            "{resources}"
        );
        assert!(resources.lines().any(|l| l == "deployments.apps"));
    }
    let groups = server.ok(33, &["get", "--raw", "/apis"]);
    assert!(!groups.contains("\"batch\""), "{groups}");
    // Without Priority admission a pod may name a PriorityClass that does not exist.
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},
        "spec":{"priorityClassName":"nowhere","containers":[{"name":"c","image":"i"}]}}"#;
    server.ok_stdin(33, &["create", "-f", "-"], pod);
}

#[test]
fn kube_version_127_serves_that_versions_api() {
    let server = Server::start_with(&["--kube-version", "v1.27"]);
    for minor in [27, 33] {
        let version: Value =
            serde_json::from_str(&server.ok(minor, &["version", "-o", "json"])).unwrap();
        assert_eq!(version["serverVersion"]["gitVersion"], "v1.27.0");
        assert_eq!(version["serverVersion"]["minor"], "27");
        let resources = server.ok(minor, &["api-resources", "-o", "name"]);
        for absent in [
            "validatingadmissionpolicies.admissionregistration.k8s.io",
            "servicecidrs.networking.k8s.io",
            "flowschemas.flowcontrol.apiserver.k8s.io",
        ] {
            assert!(
                !resources.lines().any(|l| l == absent),
                "{absent} in {resources}"
            );
        }
        assert!(resources.lines().any(|l| l == "jobs.batch"));
        server.ok(minor, &["get", "pods", "-A"]);
    }
    let patch = Server::start_with(&["--kube-version", "v1.30.2"]);
    let version: Value =
        serde_json::from_str(&patch.ok(33, &["get", "--raw", "/version"])).unwrap();
    assert_eq!(version["gitVersion"], "v1.30.2");
    let resources = patch.ok(33, &["api-resources", "-o", "name"]);
    assert!(
        resources
            .lines()
            .any(|l| l == "validatingadmissionpolicies.admissionregistration.k8s.io")
    );
}

#[test]
fn insecure_port_serves_the_api_as_kwok_admin() {
    let port = common::free_port().to_string();
    let server = Server::start_with(&["--insecure-port", &port]);
    let base = format!("http://127.0.0.1:{port}");
    let list: Value = serde_json::from_str(&curl(&[&format!("{base}/api/v1/namespaces")])).unwrap();
    assert!(
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["metadata"]["name"] == "kube-system")
    );
    let review = curl(&[
        "-XPOST",
        "-H",
        "content-type: application/json",
        "-d",
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
        &format!("{base}/apis/authentication.k8s.io/v1/selfsubjectreviews"),
    ]);
    let review: Value = serde_json::from_str(&review).unwrap();
    assert_eq!(review["status"]["userInfo"]["username"], "kwok-admin");
    assert!(
        review["status"]["userInfo"]["groups"]
            .to_string()
            .contains("system:masters")
    );
    for minor in [27, 33] {
        let out = Command::new(common::kubectl_version(minor))
            .args(["-s", &base, "get", "namespaces", "-o", "name"])
            .env("KUBECONFIG", "/dev/null")
            .env("HOME", server.dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("namespace/default"),
            "kubectl 1.{minor}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
