//! Black-box tests: `kubectl get` of the less common kinds prints kube-apiserver's columns, with
//! kubectl 1.27 and 1.33.

mod common;

use common::Server;

const OBJECTS: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"},
   "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast",
            "hostPath": {"path": "/tmp/pv1"}}},
  {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
   "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 7,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                         "target": {"type": "Utilization", "averageUtilization": 80}}}]}},
  {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "budget"},
   "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "viewers"},
   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
   "subjects": [{"kind": "User", "name": "ann", "apiGroup": "rbac.authorization.k8s.io"}]},
  {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "fast",
   "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
   "provisioner": "example.com/fast"},
  {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "reader"},
   "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}
]}"#;

/// The header line and the row of `name` from `kubectl get <what>`.
fn header_and_row(server: &Server, minor: u32, what: &[&str], name: &str) -> (String, String) {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let out = server.ok(minor, &args);
    let mut lines = out.lines();
    let header = lines.next().unwrap_or_default().to_owned();
    let row = lines
        .find(|line| line.starts_with(name))
        .unwrap_or_else(|| panic!("no row {name} in {out}"))
        .to_owned();
    (header, row)
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn less_common_kinds(minor: u32) {
    let server = Server::start();
    server.ok_stdin(minor, &["create", "-f", "-"], OBJECTS);

    let (header, row) = header_and_row(&server, minor, &["pv"], "pv1");
    assert_eq!(
        words(&header),
        [
            "NAME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "RECLAIM",
            "POLICY",
            "STATUS",
            "CLAIM",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "REASON",
            "AGE"
        ]
    );
    assert_eq!(words(&row)[..4], ["pv1", "10Gi", "RWO", "Retain"]);
    assert!(
        words(&row).contains(&"fast") && row.contains("<unset>"),
        "{row}"
    );

    let (header, row) = header_and_row(&server, minor, &["hpa"], "web");
    assert_eq!(
        words(&header),
        [
            "NAME",
            "REFERENCE",
            "TARGETS",
            "MINPODS",
            "MAXPODS",
            "REPLICAS",
            "AGE"
        ]
    );
    assert!(
        row.contains("Deployment/web") && row.contains("cpu: <unknown>/80%"),
        "{row}"
    );

    let (header, row) = header_and_row(&server, minor, &["pdb"], "budget");
    assert_eq!(
        words(&header),
        [
            "NAME",
            "MIN",
            "AVAILABLE",
            "MAX",
            "UNAVAILABLE",
            "ALLOWED",
            "DISRUPTIONS",
            "AGE"
        ]
    );
    assert_eq!(words(&row)[1..3], ["N/A", "1"]);

    let (header, row) = header_and_row(&server, minor, &["rolebinding", "-o", "wide"], "viewers");
    assert_eq!(
        words(&header),
        ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    );
    assert!(
        row.contains("ClusterRole/view") && row.contains("ann"),
        "{row}"
    );

    let (header, row) = header_and_row(&server, minor, &["storageclass"], "fast");
    assert_eq!(
        words(&header),
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    assert_eq!(
        words(&row)[..6],
        [
            "fast",
            "(default)",
            "example.com/fast",
            "Delete",
            "Immediate",
            "false"
        ]
    );

    // Kinds without a printer show when they were created.
    let (header, row) = header_and_row(&server, minor, &["role"], "reader");
    assert_eq!(words(&header), ["NAME", "CREATED", "AT"]);
    assert!(words(&row)[1].ends_with('Z'), "{row}");
}

#[test]
fn kubectl_1_27_less_common_kinds() {
    less_common_kinds(27);
}

#[test]
fn kubectl_1_33_less_common_kinds() {
    less_common_kinds(33);
}
