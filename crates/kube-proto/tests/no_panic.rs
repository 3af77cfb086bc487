//! Arbitrary input never panics the decoder (or the encoder fed with what the
//! decoder produced).

use proptest::prelude::*;

const FIXTURES: &[&str] = &[
    "namespace",
    "configmap",
    "secret",
    "deployment",
    "service",
    "job",
    "cronjob",
    "role",
    "rolebinding",
    "priorityclass",
    "quota",
    "pdb",
    "ingress",
    "auth-can-i",
    "token",
];

fn fixture(name: &str) -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::read(dir.join(format!("{name}.pb"))).unwrap()
}

fn check(body: &[u8]) {
    if let Ok(value) = kube_proto::decode(body) {
        let _ = kube_proto::encode(&value);
    }
}

fn envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    fn field(out: &mut Vec<u8>, n: u8, data: &[u8]) {
        out.push((n << 3) | 2);
        let mut len = data.len();
        while len >= 0x80 {
            out.push((len as u8) | 0x80);
            len >>= 7;
        }
        out.push(len as u8);
        out.extend_from_slice(data);
    }
    let mut type_meta = Vec::new();
    field(&mut type_meta, 1, api_version.as_bytes());
    field(&mut type_meta, 2, kind.as_bytes());
    let mut out = b"k8s\0".to_vec();
    field(&mut out, 1, &type_meta);
    field(&mut out, 2, raw);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&body);
        let mut prefixed = b"k8s\0".to_vec();
        prefixed.extend(&body);
        check(&prefixed);
    }

    #[test]
    fn random_raw_objects(
        kind in prop::sample::select(vec![
            ("v1", "Pod"), ("v1", "Namespace"), ("v1", "Service"), ("v1", "Secret"),
            ("apps/v1", "Deployment"), ("batch/v1", "CronJob"), ("coordination.k8s.io/v1", "Lease"),
            ("authorization.k8s.io/v1", "SubjectAccessReview"), ("v1", "DeleteOptions"),
            ("apps/v1", "ControllerRevision"), ("v1", "Event"),
        ]),
        raw in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        check(&envelope(kind.0, kind.1, &raw));
    }

    #[test]
    fn mutated_fixtures(
        which in 0..FIXTURES.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut body = fixture(FIXTURES[which]);
        for (at, byte) in edits {
            let i = at.index(body.len());
            body[i] = byte;
        }
        if truncate {
            body.truncate(cut.index(body.len() + 1));
        }
        check(&body);
    }
}

#[test]
fn deeply_nested_messages_are_rejected_not_overflowed() {
    // PodSpec -> volumes -> ... cannot recurse, but a RawExtension can carry a
    // nested envelope: build 1000 nested envelopes of v1 List items.
    let mut body = envelope("v1", "Namespace", &[]);
    for _ in 0..1000 {
        // List.items (field 2) is a RawExtension whose raw (field 1) is the body.
        let mut raw_ext = vec![0x0a];
        let mut len = body.len();
        while len >= 0x80 {
            raw_ext.push((len as u8) | 0x80);
            len >>= 7;
        }
        raw_ext.push(len as u8);
        raw_ext.extend(&body);
        let mut list = vec![0x12];
        let mut len = raw_ext.len();
        while len >= 0x80 {
            list.push((len as u8) | 0x80);
            len >>= 7;
        }
        list.push(len as u8);
        list.extend(&raw_ext);
        body = envelope("v1", "List", &list);
    }
    let err = kube_proto::decode(&body).unwrap_err();
    assert!(
        err.contains("nested too deeply"),
        "{}",
        &err[..err.len().min(200)]
    );
}

proptest! {
    #[test]
    fn encoder_rejects_bad_values_without_panicking(text in "\\PC{0,40}", n in any::<i64>()) {
        let objects = [
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"creationTimestamp": text}}),
            serde_json::json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"renewTime": text, "leaseDurationSeconds": n}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": n, "targetPort": n}, {"targetPort": text}]}}),
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "data": {"k": text}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ResourceQuota", "spec": {"hard": {"cpu": n}}}),
        ];
        for obj in objects {
            if let Ok(body) = kube_proto::encode(&obj) {
                kube_proto::decode(&body).unwrap();
            }
        }
    }
}
