//! The embedded runtime end to end, with the real `kwok` binary and real kubectl clients.

mod common;

use std::fs;
use std::net::TcpListener;
use std::time::Duration;

use common::{TestEnv, alive, kwok_binary, run_with_timeout, wait_dead};

fn new_env() -> TestEnv {
    kwok_binary();
    TestEnv::new()
}

/// Creates a configmap with `kubectl apply -f` (a JSON body, which the server accepts from every
/// kubectl version; `create configmap` sends protobuf from newer clients).
fn create_configmap(env: &TestEnv, name: &str, key: &str, value: &str) {
    let manifest = env.root.path().join(format!("{name}.json"));
    let body = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {key: value},
    });
    fs::write(&manifest, body.to_string()).unwrap();
    env.kubectl("1.33", &["apply", "-f", &manifest.display().to_string()])
        .success();
}

#[test]
fn create_use_and_delete_with_kubectl() {
    let env = new_env();
    let run = env
        .kwokctl(&["create", "cluster", "--wait", "30s"])
        .success();
    assert!(run.stderr.contains("Cluster is started"), "{run:?}");
    let dir = env.cluster_dir("kwok");
    for entry in [
        "kwok.yaml",
        "kubeconfig.yaml",
        "pki/ca.crt",
        "pki/admin.key",
        "logs",
        "pids",
        "data",
    ] {
        assert!(dir.join(entry).exists(), "missing {entry}");
    }
    let config = fs::read_to_string(dir.join("kwok.yaml")).unwrap();
    assert!(config.contains("kind: KwokctlConfiguration"));
    assert!(config.contains("apiVersion: config.kwok.x-k8s.io/v1alpha1"));
    assert!(config.contains("runtime: embedded"));
    assert_eq!(env.kubeconfig_doc()["current-context"], "kwok-kwok");

    for version in ["1.33", "1.27"] {
        let run = env.kubectl(version, &["get", "namespaces"]).success();
        assert!(run.stdout.contains("default"), "kubectl {version}: {run:?}");
    }
    let via_kwokctl = env
        .kwokctl(&[
            "kubectl",
            "--cache-dir",
            &env.kubectl_cache.join("plain").display().to_string(),
            "get",
            "namespaces",
        ])
        .success();
    assert!(via_kwokctl.stdout.contains("default"));

    let wide = env.kwokctl(&["get", "clusters", "-o", "wide"]).success();
    assert!(
        wide.stdout.contains("kwok   1/1     Ready"),
        "{}",
        wide.stdout
    );
    let components = env.kwokctl(&["get", "components", "-o", "wide"]).success();
    assert!(
        components.stdout.contains("kube-apiserver   Ready"),
        "{}",
        components.stdout
    );

    let printed = env.kwokctl(&["get", "kubeconfig"]).success();
    let standalone = env.root.path().join("standalone.yaml");
    fs::write(&standalone, printed.stdout).unwrap();
    let mut kubectl = std::process::Command::new(common::kubectl_dir().join("kubectl.1.33"));
    kubectl
        .arg("--kubeconfig")
        .arg(&standalone)
        .arg("--cache-dir")
        .arg(env.kubectl_cache.join("standalone"))
        .args(["get", "namespaces"]);
    common::run_with_timeout(kubectl, Duration::from_secs(60)).success();

    let again = env.kwokctl(&["create", "cluster"]).success();
    assert!(
        again.stderr.contains("Cluster is already ready"),
        "{again:?}"
    );

    env.kwokctl(&["logs", "kube-apiserver"]).success();
    let export = env.root.path().join("export");
    env.kwokctl(&["export", "logs", &export.display().to_string()])
        .success();
    assert!(export.join("kwok").join("kwok.yaml").is_file());
    assert!(
        export
            .join("kwok")
            .join("components")
            .join("kube-apiserver.log")
            .is_file()
    );

    let pid = env.pid("kwok", "kube-apiserver").unwrap();
    let port = env.port("kwok");
    env.kwokctl(&["delete", "cluster"]).success();
    assert!(wait_dead(pid, Duration::from_secs(5)));
    assert!(!dir.exists());
    assert!(env.context_names().is_empty());
    assert_eq!(env.kubeconfig_doc()["current-context"], "");
    TcpListener::bind(("127.0.0.1", port)).expect("port is free again");
    let record = env.audit_records().pop().unwrap();
    assert_eq!(record["result"], "deleted");
    assert_eq!(record["runtime"], "embedded");
    assert_eq!(record["removed"]["processes"][0]["pid"], pid);
}

#[test]
fn stop_and_start_keep_objects() {
    let env = new_env();
    env.kwokctl(&["create", "cluster"]).success();
    create_configmap(&env, "kept", "answer", "42");
    let pid = env.pid("kwok", "kube-apiserver").unwrap();

    let run = env.kwokctl(&["stop", "cluster"]).success();
    assert!(run.stderr.contains("Cluster is stopped"));
    assert!(wait_dead(pid, Duration::from_secs(5)));
    let wide = env.kwokctl(&["get", "clusters", "-o", "wide"]).success();
    assert!(wide.stdout.contains("Stopped"), "{}", wide.stdout);
    env.kubectl(
        "1.33",
        &["get", "configmap", "kept", "--request-timeout=2s"],
    )
    .failure();

    env.kwokctl(&["start", "cluster"]).success();
    let value = env
        .kubectl(
            "1.33",
            &["get", "configmap", "kept", "-o", "jsonpath={.data.answer}"],
        )
        .success();
    assert_eq!(value.stdout, "42");
}

/// A cluster stopped while it still reads its objects back stops at once: the followers that
/// watch again as their watches end must let the runtime shut down (it used to wait for the
/// 30 s kill).
#[test]
fn stop_right_after_start_is_quick() {
    let env = new_env();
    env.kwokctl(&["create", "cluster"]).success();
    env.kwokctl(&["scale", "node", "--replicas", "200"])
        .success();
    env.kwokctl(&["scale", "pod", "--replicas", "3000"])
        .success();
    env.kwokctl(&["stop", "cluster"]).success();
    for pause_ms in [0, 50, 150, 300] {
        env.kwokctl(&["start", "cluster"]).success();
        std::thread::sleep(Duration::from_millis(pause_ms));
        let started = std::time::Instant::now();
        let run = env.kwokctl(&["stop", "cluster"]).success();
        assert!(run.stderr.contains("Cluster is stopped"), "{run:?}");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "stop {pause_ms} ms after start took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn concurrent_creates_of_two_clusters() {
    let env = new_env();
    std::thread::scope(|scope| {
        let one = scope.spawn(|| env.kwokctl(&["--name", "one", "create", "cluster"]));
        let two = scope.spawn(|| env.kwokctl(&["--name", "two", "create", "cluster"]));
        one.join().unwrap().success();
        two.join().unwrap().success();
    });
    assert_ne!(env.port("one"), env.port("two"));
    let mut contexts = env.context_names();
    contexts.sort();
    assert_eq!(
        contexts,
        vec!["kwok-one".to_string(), "kwok-two".to_string()]
    );
    for name in ["one", "two"] {
        env.kubectl(
            "1.33",
            &["--context", &format!("kwok-{name}"), "get", "namespaces"],
        )
        .success();
    }
    let names = env.kwokctl(&["get", "clusters"]).success();
    assert_eq!(names.stdout, "one\ntwo\n");
    env.kwokctl(&["delete", "cluster", "--all"]).success();
    assert!(env.context_names().is_empty());
}

#[test]
fn concurrent_creates_of_one_cluster_start_one_process() {
    let env = new_env();
    std::thread::scope(|scope| {
        let a = scope.spawn(|| env.kwokctl(&["create", "cluster"]));
        let b = scope.spawn(|| env.kwokctl(&["create", "cluster"]));
        let (a, b) = (a.join().unwrap().success(), b.join().unwrap().success());
        let already = [&a, &b]
            .iter()
            .filter(|r| r.stderr.contains("Cluster is already ready"))
            .count();
        assert_eq!(already, 1, "{a:?}\n{b:?}");
    });
    env.kubectl("1.33", &["get", "namespaces"]).success();
}

#[test]
fn killed_process_and_stale_pid_files_are_handled() {
    let env = new_env();
    env.kwokctl(&["create", "cluster"]).success();
    let pid = env.pid("kwok", "kube-apiserver").unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(wait_dead(pid, Duration::from_secs(5)));
    let wide = env.kwokctl(&["get", "clusters", "-o", "wide"]).success();
    assert!(wide.stdout.contains("0/1     Stopped"), "{}", wide.stdout);

    env.kwokctl(&["start", "cluster"]).success();
    let restarted = env.pid("kwok", "kube-apiserver").unwrap();
    assert_ne!(restarted, pid);
    env.kubectl("1.33", &["get", "namespaces"]).success();
    env.kwokctl(&["stop", "cluster"]).success();

    // A pid file naming an unrelated live process (this test) must neither block start nor be killed.
    let pid_file = env
        .cluster_dir("kwok")
        .join("pids")
        .join("kube-apiserver.pid");
    fs::write(&pid_file, format!("{}\n", std::process::id())).unwrap();
    env.kwokctl(&["start", "cluster"]).success();
    let fresh = env.pid("kwok", "kube-apiserver").unwrap();
    assert_ne!(fresh, std::process::id());
    env.kubectl("1.33", &["get", "namespaces"]).success();
    env.kwokctl(&["stop", "cluster"]).success();
    assert!(alive(std::process::id()));
    assert!(!pid_file.exists());
}

#[test]
fn half_created_cluster_is_completed() {
    let env = new_env();
    env.kwokctl(&["create", "cluster"]).success();
    let pid = env.pid("kwok", "kube-apiserver").unwrap();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(wait_dead(pid, Duration::from_secs(5)));
    fs::remove_file(&env.kubeconfig).unwrap();
    fs::remove_file(env.cluster_dir("kwok").join("kubeconfig.yaml")).unwrap();

    let run = env.kwokctl(&["create", "cluster"]).success();
    assert!(
        run.stderr.contains("Cluster is not ready yet, continue it"),
        "{run:?}"
    );
    assert_eq!(env.kubeconfig_doc()["current-context"], "kwok-kwok");
    env.kubectl("1.33", &["get", "namespaces"]).success();
}

#[test]
fn backup_can_be_restored() {
    let env = new_env();
    env.kwokctl(&["create", "cluster"]).success();
    create_configmap(&env, "saved", "k", "v");
    let pid = env.pid("kwok", "kube-apiserver").unwrap();
    let backup = env.root.path().join("backup");
    env.kwokctl(&[
        "delete",
        "cluster",
        "--backup",
        &backup.display().to_string(),
    ])
    .success();
    assert!(wait_dead(pid, Duration::from_secs(5)));
    assert!(!env.cluster_dir("kwok").exists());
    assert!(backup.join("kwok").join("data").is_dir());

    fs::create_dir_all(env.workdir.join("clusters")).unwrap();
    fs::rename(backup.join("kwok"), env.cluster_dir("kwok")).unwrap();
    env.kwokctl(&["start", "cluster"]).success();
    let value = env
        .kwokctl(&[
            "kubectl",
            "--cache-dir",
            &env.kubectl_cache.join("restored").display().to_string(),
            "get",
            "configmap",
            "saved",
            "-o",
            "jsonpath={.data.k}",
        ])
        .success();
    assert_eq!(value.stdout, "v");
}

#[test]
fn unavailable_embedded_runtime_keeps_a_running_cluster_unless_forced() {
    let mut env = new_env();
    env.kwokctl(&["create", "cluster"]).success();
    let pid = env.pid("kwok", "kube-apiserver").unwrap();
    env.set_env("KWOK_KWOK_BINARY", "/nonexistent/kwok");
    let run = env.kwokctl(&["delete", "cluster"]).failure();
    assert!(run.stderr.contains("--force"), "{run:?}");
    assert!(alive(pid));
    assert_eq!(env.context_names(), vec!["kwok-kwok".to_string()]);

    env.kwokctl(&["delete", "cluster", "--force"]).success();
    assert!(wait_dead(pid, Duration::from_secs(5)));
    assert!(!env.cluster_dir("kwok").exists());
    assert!(env.context_names().is_empty());
}

#[test]
fn busy_fixed_port_fails_clearly() {
    let env = new_env();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let run = env
        .kwokctl(&[
            "create",
            "cluster",
            "--kube-apiserver-port",
            &port,
            "--timeout",
            "20s",
        ])
        .failure();
    assert!(run.stderr.contains("failed to start cluster"), "{run:?}");
    drop(listener);
}

#[test]
fn other_kubeconfig_entries_survive_a_cycle() {
    let env = new_env();
    env.add_kubeconfig_entry("someone-else", 1234);
    let before = env.kubeconfig_doc();
    env.kwokctl(&["create", "cluster"]).success();
    assert_eq!(env.kubeconfig_doc()["current-context"], "kwok-kwok");
    env.kwokctl(&["delete", "cluster"]).success();
    let mut after = env.kubeconfig_doc();
    after["current-context"] = before["current-context"].clone();
    assert_eq!(after, before);
}

/// Clusters created at the same time all get their contexts, and kubectl's own edits of the
/// kubeconfig between kwokctl runs are kept (kwokctl remembers its last parse of the file, which
/// must not be used once kubectl has changed it).
#[test]
fn concurrent_creates_and_kubectl_edits_keep_every_context() {
    let env = new_env();
    let creates: Vec<_> = ["one", "two", "three"]
        .into_iter()
        .map(|name| {
            let command = env.kwokctl_command(&["--name", name, "create", "cluster"]);
            std::thread::spawn(move || run_with_timeout(command, Duration::from_secs(60)))
        })
        .collect();
    for create in creates {
        create.join().unwrap().success();
    }
    env.kubectl(
        "1.33",
        &[
            "config",
            "set-context",
            "by-kubectl",
            "--cluster=kwok-one",
            "--user=kwok-one",
        ],
    )
    .success();
    env.kwokctl(&["--name", "four", "create", "cluster"])
        .success();
    env.kubectl("1.27", &["config", "delete-context", "kwok-two"])
        .success();
    env.kwokctl(&["--name", "three", "delete", "cluster"])
        .success();

    let mut contexts: Vec<String> = env.kubeconfig_doc()["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    // kubectl writes the entries sorted by name.
    contexts.sort();
    assert_eq!(contexts, ["by-kubectl", "kwok-four", "kwok-one"]);
    for context in ["kwok-one", "kwok-four"] {
        env.kubectl(
            "1.33",
            &["--context", context, "get", "namespace", "default"],
        )
        .success();
    }
}

#[test]
fn a_disabled_scheduler_leaves_pods_to_the_users_own() {
    let env = new_env();
    env.kwokctl(&["create", "cluster", "--disable", "kube-scheduler"])
        .success();
    env.kwokctl(&["scale", "node", "--replicas", "2"]).success();
    env.kubectl("1.33", &["run", "waiting", "--image=busybox"])
        .success();
    // A controller of the cluster still runs: the namespace gets its default ServiceAccount.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while env
        .kubectl("1.33", &["get", "serviceaccount", "default"])
        .code
        != Some(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no default ServiceAccount"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    let node = env
        .kubectl(
            "1.33",
            &["get", "pod", "waiting", "-o", "jsonpath={.spec.nodeName}"],
        )
        .success();
    assert_eq!(
        node.stdout, "",
        "a pod was scheduled with the scheduler disabled"
    );
}

#[test]
fn metrics_server_makes_kubectl_top_work() {
    let env = new_env();
    let refused = env
        .kwokctl(&["create", "cluster", "--enable", "grafana"])
        .failure();
    assert!(
        refused
            .stderr
            .contains("unknown component \"grafana\" for --enable"),
        "{refused:#?}"
    );
    // Upstream's own end-to-end setup: the deprecated flag and the controller's host port.
    let controller_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    env.kwokctl(&[
        "create",
        "cluster",
        "--enable-metrics-server",
        "--controller-port",
        &controller_port,
    ])
    .success();
    let config = std::fs::read_to_string(env.workdir.join("clusters/kwok/kwok.yaml")).unwrap();
    assert!(config.contains("enableMetricsServer: true"), "{config}");
    assert!(
        config.contains(&format!("kwokControllerPort: {controller_port}")),
        "{config}"
    );
    assert_eq!(http_get(&controller_port, "/healthz"), "ok");
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();
    env.kwokctl(&["scale", "pod", "--replicas", "1"]).success();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let top = env.kubectl("1.33", &["top", "pod", "-A"]);
        if top.code == Some(0) && top.stdout.contains("1m") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kubectl top pod never answered: {top:#?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let node = env.kubectl(
        "1.33",
        &["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"],
    );
    let resource = http_get(
        &controller_port,
        &format!("/metrics/nodes/{}/metrics/resource", node.stdout.trim()),
    );
    assert!(
        resource.contains("node_cpu_usage_seconds_total"),
        "{resource}"
    );
    env.kwokctl(&["delete", "cluster"]).success();
}

/// The body of a plain HTTP GET to 127.0.0.1:`port`.
fn http_get(port: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(format!("127.0.0.1:{port}")).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(head.starts_with("HTTP/1.1 200"), "{answer}");
    body.to_string()
}

/// `get kubeconfig --user/--group` hands out a certificate for another identity, which RBAC
/// then restricts like any user's.
#[test]
fn kubeconfig_for_another_user_is_restricted_by_rbac() {
    let env = new_env();
    env.kwokctl(&["create", "cluster", "--wait", "30s"])
        .success();
    let run = env
        .kwokctl(&[
            "get",
            "kubeconfig",
            "--user",
            "alice",
            "--group",
            "devs,testers",
        ])
        .success();
    let alice = env.root.path().join("alice.kubeconfig");
    fs::write(&alice, &run.stdout).unwrap();
    let alice = alice.display().to_string();
    let whoami = env
        .kubectl(
            "1.33",
            &["--kubeconfig", &alice, "auth", "whoami", "-o", "json"],
        )
        .success();
    let review: serde_json::Value = serde_json::from_str(&whoami.stdout).unwrap();
    assert_eq!(review["status"]["userInfo"]["username"], "alice");
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        serde_json::json!(["devs", "testers", "system:authenticated"])
    );
    let denied = env.kubectl("1.27", &["--kubeconfig", &alice, "get", "pods"]);
    assert!(
        denied
            .stderr
            .contains("User \"alice\" cannot list resource \"pods\""),
        "{denied:?}"
    );
    env.kubectl(
        "1.33",
        &[
            "create",
            "clusterrolebinding",
            "devs-view",
            "--clusterrole",
            "view",
            "--group",
            "devs",
        ],
    )
    .success();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while env
        .kubectl("1.27", &["--kubeconfig", &alice, "get", "pods"])
        .code
        != Some(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the binding never applied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let admin = env.kwokctl(&["get", "kubeconfig"]).success();
    assert!(
        admin.stdout.contains("client-certificate-data"),
        "{admin:?}"
    );
}

/// `--kube-authorization=false` turns RBAC off, as upstream's flag does; it is kept in kwok.yaml.
#[test]
fn authorization_can_be_turned_off() {
    let env = new_env();
    env.kwokctl(&[
        "create",
        "cluster",
        "--kube-authorization=false",
        "--wait",
        "30s",
    ])
    .success();
    let config = fs::read_to_string(env.cluster_dir("kwok").join("kwok.yaml")).unwrap();
    assert!(config.contains("kubeAuthorization: false"), "{config}");
    let run = env
        .kwokctl(&["get", "kubeconfig", "--user", "alice", "--group", "devs"])
        .success();
    let alice = env.root.path().join("alice.kubeconfig");
    fs::write(&alice, &run.stdout).unwrap();
    let alice = alice.display().to_string();
    env.kubectl("1.33", &["--kubeconfig", &alice, "get", "pods", "-A"])
        .success();
    env.kwokctl(&["delete", "cluster"]).success();
    env.kwokctl(&["create", "cluster", "--wait", "30s"])
        .success();
    let config = fs::read_to_string(env.cluster_dir("kwok").join("kwok.yaml")).unwrap();
    assert!(config.contains("kubeAuthorization: true"), "{config}");
}
