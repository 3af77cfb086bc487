//! The binary runtime end to end: real etcd, `kwok apiserver` on it, `kwok controller-manager`
//! as kube-controller-manager and kube-scheduler, the `kwok` simulator, and real kubectl.
//! Tests that need etcd print why they skip when it is not installed (scripts/test.sh installs
//! it).

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{TestEnv, alive, kwok_binary, wait_dead};

const COMPONENTS: [&str; 5] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok-controller",
];

/// etcd on PATH, or `None` after printing why the test skips.
fn etcd_or_skip(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("etcd"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: etcd is not on PATH (install etcd-server, as scripts/test.sh does)"
        );
    }
    found
}

fn new_env() -> TestEnv {
    kwok_binary();
    TestEnv::new()
}

/// Creates an object from JSON with `kubectl apply -f` (every kubectl version sends JSON then).
fn apply(env: &TestEnv, object: serde_json::Value) {
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    let kind = object["kind"].as_str().unwrap().to_lowercase();
    let manifest = env.root.path().join(format!("{kind}-{name}.json"));
    fs::write(&manifest, object.to_string()).unwrap();
    env.kubectl("1.33", &["apply", "-f", &manifest.display().to_string()])
        .success();
}

fn pids(env: &TestEnv) -> Vec<u32> {
    COMPONENTS
        .iter()
        .map(|c| {
            env.pid("kwok", c)
                .unwrap_or_else(|| panic!("no pid file for {c}"))
        })
        .collect()
}

#[test]
fn create_use_stop_start_and_delete() {
    let Some(_) = etcd_or_skip("create_use_stop_start_and_delete") else {
        return;
    };
    let env = new_env();
    let run = env
        .kwokctl(&["create", "cluster", "--runtime", "binary", "--wait", "60s"])
        .success();
    assert!(run.stderr.contains("Cluster is ready"), "{run:?}");

    let dir = env.cluster_dir("kwok");
    for component in COMPONENTS {
        assert!(dir.join("pids").join(format!("{component}.pid")).is_file());
        assert!(dir.join("logs").join(format!("{component}.log")).is_file());
    }
    assert!(
        dir.join("etcd").join("member").is_dir(),
        "etcd keeps its data in <workdir>/etcd"
    );
    let config = fs::read_to_string(dir.join("kwok.yaml")).unwrap();
    assert!(config.contains("runtime: binary"), "{config}");
    assert_eq!(env.kubeconfig_doc()["current-context"], "kwok-kwok");

    apply(
        &env,
        serde_json::json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "fake-node", "annotations": {"kwok.x-k8s.io/node": "fake"}},
        }),
    );
    apply(
        &env,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    );
    apply(
        &env,
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kept", "namespace": "team"},
            "data": {"answer": "42"},
        }),
    );
    env.kubectl(
        "1.33",
        &[
            "wait",
            "--for=condition=Ready",
            "node/fake-node",
            "--timeout=30s",
        ],
    )
    .success();
    // kube-controller-manager (the namespace defaults) gives the new namespace its ServiceAccount.
    env.kubectl(
        "1.33",
        &[
            "wait",
            "--for=create",
            "-n",
            "team",
            "serviceaccount/default",
            "--timeout=30s",
        ],
    )
    .success();

    let wide = env.kwokctl(&["get", "components", "-o", "wide"]).success();
    let before = pids(&env);
    for (component, pid) in COMPONENTS.iter().zip(&before) {
        let line = wide
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(component))
            .unwrap_or_else(|| panic!("{component} missing: {}", wide.stdout));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[1..], ["Ready", &pid.to_string()], "{}", wide.stdout);
    }
    let clusters = env.kwokctl(&["get", "clusters", "-o", "wide"]).success();
    assert!(clusters.stdout.contains("5/5"), "{}", clusters.stdout);

    env.kwokctl(&["stop", "cluster"]).success();
    for pid in &before {
        assert!(wait_dead(*pid, Duration::from_secs(10)), "pid {pid}");
    }
    let wide = env.kwokctl(&["get", "components", "-o", "wide"]).success();
    assert_eq!(
        wide.stdout
            .lines()
            .filter(|l| l.contains("Stopped"))
            .count(),
        COMPONENTS.len(),
        "{}",
        wide.stdout
    );

    env.kwokctl(&["start", "cluster"]).success();
    let value = env
        .kubectl(
            "1.33",
            &[
                "get",
                "configmap",
                "kept",
                "-n",
                "team",
                "-o",
                "jsonpath={.data.answer}",
            ],
        )
        .success();
    assert_eq!(value.stdout, "42");
    env.kubectl("1.27", &["get", "node", "fake-node"]).success();

    let after = pids(&env);
    env.kwokctl(&["delete", "cluster"]).success();
    for pid in &after {
        assert!(wait_dead(*pid, Duration::from_secs(10)), "pid {pid}");
    }
    assert!(!dir.exists());
    assert!(env.context_names().is_empty());
}

#[test]
fn etcdctl_lists_the_keys_and_snapshots_round_trip() {
    let Some(_) = etcd_or_skip("etcdctl_lists_the_keys_and_snapshots_round_trip") else {
        return;
    };
    let env = new_env();
    env.kwokctl(&["create", "cluster", "--runtime", "binary"])
        .success();
    apply(
        &env,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "before"}}),
    );

    let keys = env
        .kwokctl(&["etcdctl", "get", "--prefix", "--keys-only", "/registry"])
        .success();
    let listed: Vec<&str> = keys.stdout.lines().filter(|l| !l.is_empty()).collect();
    assert!(
        listed.iter().all(|k| k.starts_with("/registry/")),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|k| k.contains("namespaces") && k.ends_with("/before")),
        "{listed:?}"
    );

    let snapshot = env.root.path().join("snapshot.db");
    let snapshot_arg = snapshot.display().to_string();
    env.kwokctl(&["snapshot", "save", "--path", &snapshot_arg])
        .success();
    assert!(snapshot.is_file());
    let again = env
        .kwokctl(&["snapshot", "save", "--path", &snapshot_arg])
        .failure();
    assert!(again.stderr.contains("already exists"), "{again:?}");

    apply(
        &env,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "after"}}),
    );
    env.kwokctl(&["snapshot", "restore", "--path", &snapshot_arg])
        .success();
    env.kubectl("1.33", &["get", "namespace", "before"])
        .success();
    let gone = env
        .kubectl("1.33", &["get", "namespace", "after"])
        .failure();
    assert!(gone.stderr.contains("NotFound"), "{gone:?}");

    env.kwokctl(&["stop", "cluster"]).success();
    let stopped = env.root.path().join("stopped.db");
    let refused = env
        .kwokctl(&["snapshot", "save", "--path", &stopped.display().to_string()])
        .failure();
    assert!(
        refused.stderr.contains("start the cluster first"),
        "{refused:?}"
    );
    assert!(!stopped.exists());
}

#[test]
fn force_delete_after_the_etcd_binary_disappears() {
    let Some(etcd) = etcd_or_skip("force_delete_after_the_etcd_binary_disappears") else {
        return;
    };
    let mut env = new_env();
    let copy_dir = env.root.path().join("etcd-copy");
    fs::create_dir_all(&copy_dir).unwrap();
    let copy = copy_dir.join("etcd");
    fs::copy(&etcd, &copy).unwrap();
    env.set_env("KWOK_ETCD_BINARY", &copy.display().to_string());
    env.kwokctl(&["create", "cluster", "--runtime", "binary"])
        .success();
    let running = pids(&env);
    fs::remove_file(&copy).unwrap();

    let refused = env.kwokctl(&["delete", "cluster"]).failure();
    assert!(
        refused.stderr.contains(&copy.display().to_string())
            && refused.stderr.contains("does not exist"),
        "{refused:?}"
    );
    assert!(refused.stderr.contains("--force"), "{refused:?}");
    let dir = env.cluster_dir("kwok");
    assert!(dir.join("kwok.yaml").is_file());
    assert_eq!(env.context_names(), ["kwok-kwok"]);
    assert!(running.iter().all(|pid| alive(*pid)));

    let forced = env.kwokctl(&["delete", "cluster", "--force"]).success();
    assert!(
        forced
            .stderr
            .contains("Unavailable runtime but proceed with force delete"),
        "{forced:?}"
    );
    for pid in &running {
        assert!(wait_dead(*pid, Duration::from_secs(10)), "pid {pid}");
    }
    assert!(!dir.exists());
    assert!(env.context_names().is_empty());
}

#[test]
fn missing_etcd_fails_before_anything_is_created() {
    let mut env = new_env();
    env.set_env("KWOK_ETCD_BINARY", "/nonexistent/etcd");
    let run = env
        .kwokctl(&["create", "cluster", "--runtime", "binary"])
        .failure();
    assert!(
        run.stderr.contains("runtime binary not available")
            && run.stderr.contains("/nonexistent/etcd"),
        "{run:?}"
    );
    assert!(!env.cluster_dir("kwok").exists());
    assert!(env.context_names().is_empty());
}

#[test]
fn dry_run_prints_the_components_in_start_order() {
    let env = new_env();
    let run = env
        .kwokctl(&[
            "--dry-run",
            "create",
            "cluster",
            "--runtime",
            "binary",
            "--etcd-binary",
            "/opt/etcd/etcd",
            "--disable",
            "kube-scheduler",
        ])
        .success();
    let out = &run.stdout;
    let position = |needle: &str| {
        out.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from:\n{out}"))
    };
    let dir = env.cluster_dir("kwok");
    let etcd = position(&format!("{}/pids/etcd.pid", dir.display()));
    let apiserver = position(&format!("{}/pids/kube-apiserver.pid", dir.display()));
    let kcm = position(&format!(
        "{}/pids/kube-controller-manager.pid",
        dir.display()
    ));
    let kwok = position(&format!("{}/pids/kwok-controller.pid", dir.display()));
    assert!(etcd < apiserver && apiserver < kcm && kcm < kwok, "{out}");
    assert!(!out.contains("kube-scheduler.pid"), "{out}");
    assert!(out.contains("--etcd-servers=http://127.0.0.1:"), "{out}");
    assert!(out.contains("--controllers=*,-scheduler"), "{out}");
    assert!(!dir.exists());
    assert!(!Path::new(&env.kubeconfig).exists());
}
