//! Black-box tests with kubectl 1.27 and 1.33: what kube-apiserver fills in and refuses on
//! writes — service cluster IPs and node ports, immutable fields, Secret `stringData`.

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
