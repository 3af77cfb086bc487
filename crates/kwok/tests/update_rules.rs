//! Black-box tests with kubectl 1.27 and 1.33: what kube-apiserver fills in and refuses on
//! writes — service cluster IPs and node ports, immutable fields, Secret `stringData` — and how
//! claims bind to volumes.

mod common;

use common::Server;
use serde_json::Value;

fn get(server: &Server, minor: u32, what: &[&str]) -> Value {
    server.get_json(minor, what)
}

fn services_get_addresses(minor: u32) {
    let server = Server::start();
    server.ok(minor, &["create", "service", "clusterip", "a", "--tcp=80"]);
    server.ok(
        minor,
        &[
            "create",
            "service",
            "nodeport",
            "b",
            "--tcp=80:8080",
            "--node-port=30080",
        ],
    );
    server.ok(
        minor,
        &["create", "service", "clusterip", "h", "--clusterip=None"],
    );
    let a = get(&server, minor, &["service", "a"]);
    let ip = a["spec"]["clusterIP"].as_str().unwrap().to_owned();
    assert!(ip.starts_with("10."), "{a}");
    assert_eq!(a["spec"]["clusterIPs"][0], ip.as_str());
    let b = get(&server, minor, &["service", "b"]);
    assert_ne!(b["spec"]["clusterIP"], a["spec"]["clusterIP"]);
    assert_eq!(b["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(
        get(&server, minor, &["service", "h"])["spec"]["clusterIP"],
        "None"
    );
    let table = server.ok(minor, &["get", "services"]);
    assert!(
        table.contains(&ip) && table.contains("80:30080/TCP"),
        "{table}"
    );

    let err = server.fails(
        minor,
        &[
            "create",
            "service",
            "nodeport",
            "c",
            "--tcp=81",
            "--node-port=30080",
        ],
    );
    assert!(
        err.contains(
            "spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
        ),
        "{err}"
    );
    let err = server.fails(
        minor,
        &[
            "patch",
            "service",
            "a",
            "-p",
            r#"{"spec":{"clusterIP":"10.96.0.99"}}"#,
        ],
    );
    assert!(err.contains("may not change once set"), "{err}");
    // A replace that leaves the address out keeps it.
    let mut replacement = get(&server, minor, &["service", "a"]);
    let spec = replacement["spec"].as_object_mut().unwrap();
    spec.remove("clusterIP");
    spec.remove("clusterIPs");
    server.ok_stdin(minor, &["replace", "-f", "-"], &replacement.to_string());
    assert_eq!(
        get(&server, minor, &["service", "a"])["spec"]["clusterIP"],
        ip.as_str()
    );

    // Deleting a service frees its node port.
    server.ok(minor, &["delete", "service", "b"]);
    server.ok(
        minor,
        &[
            "create",
            "service",
            "nodeport",
            "c",
            "--tcp=81",
            "--node-port=30080",
        ],
    );
}

fn immutable_fields_are_refused(minor: u32) {
    let server = Server::start();
    server.ok(minor, &["create", "configmap", "c", "--from-literal=a=1"]);
    server.ok(
        minor,
        &["patch", "configmap", "c", "-p", r#"{"immutable":true}"#],
    );
    let err = server.fails(
        minor,
        &["patch", "configmap", "c", "-p", r#"{"data":{"a":"2"}}"#],
    );
    assert!(
        err.contains("data: Forbidden: field is immutable when `immutable` is set"),
        "{err}"
    );
    assert_eq!(get(&server, minor, &["configmap", "c"])["data"]["a"], "1");

    server.ok(minor, &["create", "job", "j", "--image=busybox"]);
    let err = server.fails(minor, &["set", "image", "job/j", "j=busybox:2"]);
    assert!(
        err.contains("spec.template") && err.contains("field is immutable"),
        "{err}"
    );

    let stateful_set = r#"{"apiVersion":"apps/v1","kind":"StatefulSet","metadata":{"name":"s"},
        "spec":{"serviceName":"s","selector":{"matchLabels":{"app":"s"}},
        "template":{"metadata":{"labels":{"app":"s"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#;
    server.ok_stdin(minor, &["create", "-f", "-"], stateful_set);
    server.ok(minor, &["scale", "statefulset", "s", "--replicas=2"]);
    let err = server.fails(
        minor,
        &[
            "patch",
            "statefulset",
            "s",
            "-p",
            r#"{"spec":{"serviceName":"t"}}"#,
        ],
    );
    assert!(
        err.contains("updates to statefulset spec for fields other than"),
        "{err}"
    );
}

fn secrets_store_string_data_encoded(minor: u32) {
    let server = Server::start();
    let secret = r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},
        "stringData":{"user":"admin"},"data":{"old":"eHk="}}"#;
    server.ok_stdin(minor, &["apply", "-f", "-"], secret);
    let stored = get(&server, minor, &["secret", "s"]);
    assert_eq!(stored["data"]["user"], "YWRtaW4=");
    assert_eq!(stored["data"]["old"], "eHk=");
    assert!(stored.get("stringData").is_none(), "{stored}");
}

fn wrong_types_are_refused(minor: u32) {
    let server = Server::start();
    let deployment = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},
        "spec":{"replicas":"three","selector":{"matchLabels":{"app":"d"}},
        "template":{"metadata":{"labels":{"app":"d"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#;
    let out = server.kubectl_stdin(minor, &["apply", "-f", "-"], Some(deployment));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"#),
        "{err}"
    );
    server.fails(minor, &["get", "deployment", "d"]);

    server.ok(minor, &["create", "configmap", "c", "--from-literal=a=1"]);
    let err = server.fails(
        minor,
        &["patch", "configmap", "c", "-p", r#"{"data":{"a":2}}"#],
    );
    assert!(
        err.contains("cannot unmarshal number into Go struct field ConfigMap.data of type string"),
        "{err}"
    );
    assert_eq!(get(&server, minor, &["configmap", "c"])["data"]["a"], "1");

    let secret =
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"},"stringData":{"n":1}}"#;
    let out = server.kubectl_stdin(minor, &["create", "-f", "-"], Some(secret));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "cannot unmarshal number into Go struct field Secret.stringData of type string"
        ),
        "{err}"
    );
}

#[test]
fn kubectl_1_27_wrong_types_are_refused() {
    wrong_types_are_refused(27);
}

#[test]
fn kubectl_1_33_wrong_types_are_refused() {
    wrong_types_are_refused(33);
}

#[test]
fn kubectl_1_27_services_get_addresses() {
    services_get_addresses(27);
}

#[test]
fn kubectl_1_33_services_get_addresses() {
    services_get_addresses(33);
}

#[test]
fn kubectl_1_27_immutable_fields_are_refused() {
    immutable_fields_are_refused(27);
}

#[test]
fn kubectl_1_33_immutable_fields_are_refused() {
    immutable_fields_are_refused(33);
}

#[test]
fn kubectl_1_27_secrets_store_string_data_encoded() {
    secrets_store_string_data_encoded(27);
}

#[test]
fn kubectl_1_33_secrets_store_string_data_encoded() {
    secrets_store_string_data_encoded(33);
}

const VOLUMES: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "small"},
   "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/tmp/small"}}},
  {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "large"},
   "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": "/tmp/large"}}},
  {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "later"},
   "provisioner": "kubernetes.io/no-provisioner", "volumeBindingMode": "WaitForFirstConsumer"},
  {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "local"},
   "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "later",
            "hostPath": {"path": "/tmp/local"}}}
]}"#;

fn claim(name: &str, size: &str, class: &str) -> String {
    format!(
        r#"{{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {{"name": "{name}"}},
            "spec": {{"storageClassName": "{class}", "accessModes": ["ReadWriteOnce"],
                     "resources": {{"requests": {{"storage": "{size}"}}}}}}}}"#
    )
}

/// Polls `kubectl get <what> -o jsonpath=<path>` until it prints `want`.
fn wait_for(server: &Server, minor: u32, what: &[&str], path: &str, want: &str) {
    let jsonpath = format!("jsonpath={path}");
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", &jsonpath]);
    let mut last = String::new();
    for _ in 0..100 {
        last = server.ok(minor, &args);
        if last == want {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{what:?} {path}: wanted {want:?}, last {last:?}");
}

fn claims_bind_to_volumes(minor: u32) {
    let server = Server::start();
    server.ok_stdin(minor, &["create", "-f", "-"], VOLUMES);
    wait_for(
        &server,
        minor,
        &["pv", "small"],
        "{.status.phase}",
        "Available",
    );
    server.ok_stdin(minor, &["create", "-f", "-"], &claim("a", "3Gi", ""));
    // The smallest volume that fits.
    wait_for(&server, minor, &["pvc", "a"], "{.status.phase}", "Bound");
    wait_for(&server, minor, &["pvc", "a"], "{.spec.volumeName}", "small");
    wait_for(&server, minor, &["pv", "small"], "{.status.phase}", "Bound");
    wait_for(
        &server,
        minor,
        &["pv", "small"],
        "{.spec.claimRef.name}",
        "a",
    );
    wait_for(
        &server,
        minor,
        &["pvc", "a"],
        "{.status.capacity.storage}",
        "5Gi",
    );
    server.ok_stdin(minor, &["create", "-f", "-"], &claim("b", "8Gi", ""));
    wait_for(&server, minor, &["pvc", "b"], "{.spec.volumeName}", "large");
    // Nothing left that fits; a class that waits for its first consumer does not bind early.
    server.ok_stdin(minor, &["create", "-f", "-"], &claim("c", "1Gi", ""));
    server.ok_stdin(minor, &["create", "-f", "-"], &claim("d", "1Gi", "later"));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let table = server.ok(minor, &["get", "pvc"]);
    let pending: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("Pending"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(pending, ["c", "d"], "{table}");
    let events = server.ok(
        minor,
        &[
            "get",
            "events",
            "-o",
            "jsonpath={range .items[*]}{.involvedObject.name} {.reason}{\"\\n\"}{end}",
        ],
    );
    assert!(
        events.contains("c FailedBinding") && events.contains("d WaitForFirstConsumer"),
        "{events}"
    );

    // Released under Retain, gone under Delete.
    server.ok(minor, &["delete", "pvc", "a", "b"]);
    wait_for(
        &server,
        minor,
        &["pv", "small"],
        "{.status.phase}",
        "Released",
    );
    wait_for(
        &server,
        minor,
        &["pv"],
        "{.items[*].metadata.name}",
        "local small",
    );
}

#[test]
fn kubectl_1_27_claims_bind_to_volumes() {
    claims_bind_to_volumes(27);
}

#[test]
fn kubectl_1_33_claims_bind_to_volumes() {
    claims_bind_to_volumes(33);
}
