//! Bodies built field by field with a tiny independent encoder, covering the
//! special encodings and the Go pointer / omitempty rules.

use serde_json::{Value, json};

/// Length-delimited field.
fn b(n: u32, data: &[u8]) -> Vec<u8> {
    let mut out = key(n, 2);
    out.extend(varint(data.len() as u64));
    out.extend_from_slice(data);
    out
}

fn s(n: u32, text: &str) -> Vec<u8> {
    b(n, text.as_bytes())
}

/// Varint field.
fn v(n: u32, value: u64) -> Vec<u8> {
    let mut out = key(n, 0);
    out.extend(varint(value));
    out
}

fn key(n: u32, wire_type: u64) -> Vec<u8> {
    varint((u64::from(n) << 3) | wire_type)
}

fn varint(mut x: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// Map entry field.
fn entry(n: u32, k: &str, value: Vec<u8>) -> Vec<u8> {
    b(n, &cat(&[s(1, k), value]))
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(b(1, &cat(&[s(1, api_version), s(2, kind)])));
    out.extend(b(2, raw));
    out.extend(s(3, ""));
    out.extend(s(4, ""));
    out
}

/// ObjectMeta the way Go writes it: every non-pointer field present.
fn meta(name: &str, namespace: &str) -> Vec<u8> {
    cat(&[
        s(1, name),
        s(2, ""),
        s(3, namespace),
        s(4, ""),
        s(5, ""),
        s(6, ""),
        v(7, 0),
        b(8, &[]),
    ])
}

fn decode(api_version: &str, kind: &str, raw: &[u8]) -> Value {
    kube_proto::decode(&envelope(api_version, kind, raw)).unwrap()
}

#[test]
fn configmap_with_data_and_binary_data() {
    let raw = cat(&[
        b(1, &meta("cm", "ns")),
        entry(2, "a", s(2, "b")),
        entry(2, "empty", s(2, "")),
        entry(3, "bin", b(2, &[0, 1, 2, 255])),
        v(4, 0), // immutable: *bool false is kept
    ]);
    assert_eq!(
        decode("v1", "ConfigMap", &raw),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cm", "namespace": "ns"},
            "data": {"a": "b", "empty": ""},
            "binaryData": {"bin": "AAEC/w=="},
            "immutable": false
        })
    );
}

#[test]
fn secret_data_is_base64() {
    let raw = cat(&[
        b(1, &meta("s", "")),
        entry(2, "password", b(2, b"s3cr3t")),
        s(3, "Opaque"),
        entry(4, "plain", s(2, "text")),
    ]);
    assert_eq!(
        decode("v1", "Secret", &raw),
        json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "czNjcjN0"}, "type": "Opaque", "stringData": {"plain": "text"}
        })
    );
}

fn container() -> Vec<u8> {
    let port = cat(&[s(1, ""), v(2, 0), v(3, 8080), s(4, "TCP"), s(5, "")]);
    let quantity = |q: &str| s(1, q);
    let resources = cat(&[
        entry(1, "cpu", b(2, &quantity("500m"))),
        entry(1, "memory", b(2, &quantity("128Mi"))),
        entry(2, "cpu", b(2, &quantity("250m"))),
    ]);
    let env_from_field = cat(&[
        s(1, "POD_NAME"),
        s(2, ""),
        b(3, &b(1, &cat(&[s(1, "v1"), s(2, "metadata.name")]))),
    ]);
    cat(&[
        s(1, "app"),
        s(2, "nginx:1.27"),
        s(3, "nginx"),
        s(4, "-g"),
        s(5, ""),
        b(6, &port),
        b(7, &cat(&[s(1, "MODE"), s(2, "prod")])),
        b(7, &env_from_field),
        b(8, &resources),
        s(13, "/dev/termination-log"),
        s(14, "IfNotPresent"),
        v(16, 0), // stdin: plain bool false, omitempty
    ])
}

#[test]
fn deployment_with_a_container() {
    let template = cat(&[
        b(1, &cat(&[meta("", ""), entry(11, "app", s(2, "web"))])),
        b(
            2,
            &cat(&[
                b(2, &container()),
                s(3, "Always"),
                v(4, 30), // terminationGracePeriodSeconds: *int64
                s(6, "ClusterFirst"),
                v(11, 0), // hostNetwork: bool, omitempty
                v(21, 0), // automountServiceAccountToken: *bool false
            ]),
        ),
    ]);
    let selector = entry(1, "app", s(2, "web"));
    let spec = cat(&[v(1, 0), b(2, &selector), b(3, &template), b(4, &[])]);
    let got = decode(
        "apps/v1",
        "Deployment",
        &cat(&[b(1, &meta("web", "default")), b(2, &spec), b(3, &[])]),
    );
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "app", "image": "nginx:1.27",
                            "command": ["nginx"], "args": ["-g"],
                            "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                            "env": [
                                {"name": "MODE", "value": "prod"},
                                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}
                            ],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                            "terminationMessagePath": "/dev/termination-log",
                            "imagePullPolicy": "IfNotPresent"
                        }],
                        "restartPolicy": "Always",
                        "terminationGracePeriodSeconds": 30,
                        "dnsPolicy": "ClusterFirst",
                        "automountServiceAccountToken": false
                    }
                },
                "strategy": {}
            },
            "status": {}
        })
    );
}

#[test]
fn service_int_or_string_target_port() {
    let port = |name: &str, p: u64, target: Vec<u8>| {
        b(
            1,
            &cat(&[s(1, name), s(2, "TCP"), v(3, p), b(4, &target), v(5, 0)]),
        )
    };
    let spec = cat(&[
        port("http", 80, cat(&[v(1, 0), v(2, 8080), s(3, "")])),
        port("https", 443, cat(&[v(1, 1), v(2, 0), s(3, "https")])),
        port("zero", 81, cat(&[v(1, 0), v(2, 0), s(3, "")])),
        entry(2, "app", s(2, "web")),
        s(3, "None"),
        s(4, "ClusterIP"),
    ]);
    let got = decode(
        "v1",
        "Service",
        &cat(&[b(1, &meta("svc", "")), b(2, &spec), b(3, &[])]),
    );
    assert_eq!(
        got["spec"],
        json!({
            "ports": [
                {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"},
                // Go writes a zero IntOrString struct as 0 (omitempty never drops structs).
                {"name": "zero", "protocol": "TCP", "port": 81, "targetPort": 0}
            ],
            "selector": {"app": "web"},
            "clusterIP": "None",
            "type": "ClusterIP"
        })
    );
}

fn pod_template() -> Vec<u8> {
    cat(&[
        b(1, &meta("", "")),
        b(
            2,
            &cat(&[b(2, &cat(&[s(1, "c"), s(2, "busybox")])), s(3, "Never")]),
        ),
    ])
}

#[test]
fn job_with_zero_backoff_limit() {
    let spec = cat(&[v(1, 2), v(2, 4), v(3, 600), b(6, &pod_template()), v(7, 0)]);
    let got = decode(
        "batch/v1",
        "Job",
        &cat(&[b(1, &meta("j", "")), b(2, &spec), b(3, &[])]),
    );
    assert_eq!(
        got["spec"],
        json!({
            "parallelism": 2, "completions": 4, "activeDeadlineSeconds": 600, "backoffLimit": 0,
            "template": {"metadata": {}, "spec": {"containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}
        })
    );
}

#[test]
fn cronjob_with_job_template_and_last_schedule_time() {
    let job_template = cat(&[b(1, &meta("", "")), b(2, &b(6, &pod_template()))]);
    let spec = cat(&[
        s(1, "*/5 * * * *"),
        v(4, 0),
        b(5, &job_template),
        s(8, "UTC"),
    ]);
    // status.lastScheduleTime = 2024-01-02T03:04:05Z
    let status = b(4, &cat(&[v(1, 1_704_164_645), v(2, 0)]));
    let got = decode(
        "batch/v1",
        "CronJob",
        &cat(&[b(1, &meta("cj", "")), b(2, &spec), b(3, &status)]),
    );
    assert_eq!(
        got,
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"},
            "spec": {
                "schedule": "*/5 * * * *",
                "suspend": false,
                "jobTemplate": {"metadata": {}, "spec": {"template": {"metadata": {}, "spec": {
                    "containers": [{"name": "c", "image": "busybox"}], "restartPolicy": "Never"}}}},
                "timeZone": "UTC"
            },
            "status": {"lastScheduleTime": "2024-01-02T03:04:05Z"}
        })
    );
}

#[test]
fn self_subject_access_review() {
    let attrs = cat(&[
        s(1, "ns1"),
        s(2, "create"),
        s(3, "apps"),
        s(4, ""),
        s(5, "deployments"),
        s(6, ""),
        s(7, ""),
    ]);
    let raw = cat(&[
        b(1, &meta("", "")),
        b(2, &b(1, &attrs)),
        b(3, &cat(&[v(1, 1), v(4, 0), s(2, "ok"), s(3, "")])),
    ]);
    assert_eq!(
        decode("authorization.k8s.io/v1", "SelfSubjectAccessReview", &raw),
        json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "ns1", "verb": "create", "group": "apps", "resource": "deployments"}},
            "status": {"allowed": true, "reason": "ok"}
        })
    );
}

#[test]
fn subject_access_review_extra_is_a_map_of_arrays() {
    let extra = entry(5, "scopes", b(2, &cat(&[s(1, "a"), s(1, "b")])));
    let spec = cat(&[s(3, "alice"), s(4, "devs"), extra, s(6, "uid-1")]);
    let got = decode(
        "authorization.k8s.io/v1",
        "SubjectAccessReview",
        &cat(&[b(2, &spec)]),
    );
    assert_eq!(
        got["spec"],
        json!({"user": "alice", "groups": ["devs"], "extra": {"scopes": ["a", "b"]}, "uid": "uid-1"})
    );
}

#[test]
fn lease_micro_time_and_pod_inline_volume_source() {
    let spec = cat(&[
        s(1, "holder"),
        v(2, 15),
        b(4, &cat(&[v(1, 1_704_164_645), v(2, 123_456_789)])),
    ]);
    let got = decode("coordination.k8s.io/v1", "Lease", &cat(&[b(2, &spec)]));
    assert_eq!(
        got["spec"],
        json!({"holderIdentity": "holder", "leaseDurationSeconds": 15, "renewTime": "2024-01-02T03:04:05.123456Z"})
    );

    // Volume embeds VolumeSource: its fields are promoted; an empty emptyDir
    // (a Go pointer) is kept as {}.
    let volume = cat(&[s(1, "scratch"), b(2, &b(2, &s(1, "")))]);
    let got = decode("v1", "Pod", &cat(&[b(2, &b(1, &volume))]));
    assert_eq!(
        got["spec"],
        json!({"volumes": [{"name": "scratch", "emptyDir": {}}]})
    );
}

#[test]
fn raw_extension_duration_and_managed_fields() {
    // ControllerRevision.data is a RawExtension holding JSON.
    let got = decode(
        "apps/v1",
        "ControllerRevision",
        &cat(&[b(2, &s(1, r#"{"spec":{"x":1}}"#)), v(3, 7)]),
    );
    assert_eq!(got["data"], json!({"spec": {"x": 1}}));
    assert_eq!(got["revision"], json!(7));

    let managed = cat(&[
        s(1, "kubectl"),
        s(2, "Update"),
        s(3, "v1"),
        b(4, &cat(&[v(1, 1_704_164_645)])),
        s(6, "FieldsV1"),
        b(7, &s(1, r#"{"f:data":{}}"#)),
    ]);
    let got = decode(
        "v1",
        "ConfigMap",
        &b(1, &cat(&[s(1, "cm"), b(17, &managed)])),
    );
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
                "time": "2024-01-02T03:04:05Z", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}}])
    );

    // Pointer Time and a pointer int64 that is zero survive a round trip.
    let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x", "deletionTimestamp": "2030-01-01T00:00:00Z", "deletionGracePeriodSeconds": 0}});
    let back = kube_proto::decode(&kube_proto::encode(&obj).unwrap()).unwrap();
    assert_eq!(back, obj);
}

#[test]
fn delete_options_resolve_through_meta() {
    let raw = cat(&[v(1, 0), s(4, "Foreground"), s(5, "All")]);
    assert_eq!(
        decode("v1", "DeleteOptions", &raw),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
               "propagationPolicy": "Foreground", "dryRun": ["All"]})
    );
}

#[test]
fn unknown_fields_are_skipped() {
    let raw = cat(&[b(1, &meta("n", "")), v(999, 5), b(1000, b"junk"), b(2, &[])]);
    assert_eq!(
        decode("v1", "Namespace", &raw),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}, "spec": {}})
    );
}

#[test]
fn errors_are_readable() {
    let err = |body: &[u8]| kube_proto::decode(body).unwrap_err();
    assert!(err(b"{\"kind\":\"Namespace\"}").contains("k8s\\0"));
    assert!(err(&envelope("v1", "NoSuchKind", &[])).contains("NoSuchKind"));
    assert!(err(&envelope("", "", &[])).contains("apiVersion"));
    let mut truncated = envelope("v1", "Namespace", &b(1, &meta("n", "")));
    truncated.truncate(truncated.len() - 9);
    assert!(err(&truncated).contains("truncated"), "{}", err(&truncated));
    // metadata.name sent as a varint.
    let e = err(&envelope("v1", "Namespace", &b(1, &v(1, 3))));
    assert!(e.contains("metadata: name"), "{e}");
    let mut gz = b"k8s\0".to_vec();
    gz.extend(b(1, &cat(&[s(1, "v1"), s(2, "Namespace")])));
    gz.extend(s(3, "gzip"));
    assert!(err(&gz).contains("gzip"));
}

#[test]
fn encode_matches_decoder_for_services_and_quantities() {
    let obj = json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"a": "b"}},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}], "clusterIP": "None"},
        "status": {}
    });
    let body = kube_proto::encode(&obj).unwrap();
    assert!(body.starts_with(b"k8s\0"));
    assert_eq!(kube_proto::decode(&body).unwrap(), obj);
    assert!(kube_proto::supports("apps/v1", "Deployment"));
    assert!(kube_proto::supports("policy/v1", "Eviction"));
    assert!(!kube_proto::supports("example.com/v1", "Foo"));
}
