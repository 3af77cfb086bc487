//! `kwokctl snapshot export --record` + `snapshot replay`, `kectl`, `port-forward`,
//! `config convert` and `get artifacts` against real embedded clusters.

mod common;

use std::fs;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{TestEnv, kwok_binary};
use serde_json::Value;

fn new_env() -> TestEnv {
    kwok_binary();
    TestEnv::new()
}

fn create(env: &TestEnv, name: &str) {
    env.kwokctl(&["--name", name, "create", "cluster", "--wait", "30s"])
        .success();
}

fn kubectl(env: &TestEnv, cluster: &str, args: &[&str]) -> String {
    let context = format!("kwok-{cluster}");
    let mut full = vec!["--context", context.as_str()];
    full.extend_from_slice(args);
    env.kubectl("1.33", &full).success().stdout
}

fn get_json(env: &TestEnv, cluster: &str, args: &[&str]) -> Value {
    let mut full = vec!["get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&kubectl(env, cluster, &full)).expect("kubectl prints JSON")
}

/// Starts a long-running kwokctl with stderr in a file; returns the child and the file.
fn spawn(env: &TestEnv, args: &[&str], log: &str) -> (Child, std::path::PathBuf) {
    let path = env.root.path().join(log);
    let file = fs::File::create(&path).unwrap();
    let child = env
        .kwokctl_command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("spawn kwokctl");
    (child, path)
}

fn wait_for_text(path: &std::path::Path, text: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if fs::read_to_string(path).unwrap_or_default().contains(text) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{text:?} did not appear in {}: {}",
        path.display(),
        fs::read_to_string(path).unwrap_or_default()
    );
}

fn interrupt_and_wait(child: &mut Child) -> Option<i32> {
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("kwokctl did not stop after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn record_then_replay_into_a_new_cluster() {
    let env = new_env();
    create(&env, "src");
    let recording = env.root.path().join("recording.yaml");
    let recording_arg = recording.display().to_string();
    let kubeconfig = env.kubeconfig.display().to_string();
    let (mut recorder, log) = spawn(
        &env,
        &[
            "snapshot",
            "export",
            "--kubeconfig",
            &kubeconfig,
            "--record",
            "--path",
            &recording_arg,
            "--filter",
            "namespace,configmap,pod",
        ],
        "record.log",
    );
    wait_for_text(
        &log,
        "Press Ctrl+C to stop recording resources",
        Duration::from_secs(30),
    );
    assert!(fs::read_to_string(&log).unwrap().contains("Recording"));

    kubectl(&env, "src", &["create", "namespace", "rec"]);
    kubectl(
        &env,
        "src",
        &[
            "-n",
            "rec",
            "create",
            "configmap",
            "kept",
            "--from-literal=a=1",
            "--from-literal=gone=x",
        ],
    );
    kubectl(
        &env,
        "src",
        &[
            "-n",
            "rec",
            "create",
            "configmap",
            "dropped",
            "--from-literal=a=1",
        ],
    );
    kubectl(
        &env,
        "src",
        &[
            "-n",
            "rec",
            "patch",
            "configmap",
            "kept",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/data/a","value":"2"},{"op":"remove","path":"/data/gone"},{"op":"add","path":"/data/b","value":"3"}]"#,
        ],
    );
    kubectl(
        &env,
        "src",
        &["-n", "rec", "delete", "configmap", "dropped"],
    );
    kubectl(
        &env,
        "src",
        &[
            "-n",
            "rec",
            "run",
            "web",
            "--image=nginx",
            "--labels=app=web",
        ],
    );
    kubectl(
        &env,
        "src",
        &["-n", "rec", "label", "pod", "web", "tier=front"],
    );
    // The recorder writes each change as it sees it; wait for the last one.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(&recording)
        .unwrap_or_default()
        .contains("tier: front")
    {
        assert!(
            Instant::now() < deadline,
            "the label change was not recorded"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        interrupt_and_wait(&mut recorder),
        Some(0),
        "{}",
        fs::read_to_string(&log).unwrap()
    );

    let text = fs::read_to_string(&recording).unwrap();
    assert!(
        text.contains("apiVersion: action.kwok.x-k8s.io/v1alpha1"),
        "{text}"
    );
    assert!(text.contains("kind: ResourcePatch"));
    for method in ["method: create", "method: patch", "method: delete"] {
        assert!(text.contains(method), "{method} missing: {text}");
    }
    assert!(
        text.contains("$(time-offset-nanosecond"),
        "times are relative: {text}"
    );

    env.kwokctl(&["--name", "src", "delete", "cluster"])
        .success();
    create(&env, "dst");
    let dry = env
        .kwokctl(&[
            "--name",
            "dst",
            "--dry-run",
            "snapshot",
            "replay",
            "--path",
            &recording_arg,
        ])
        .success();
    assert!(dry.stdout.contains("# Replay "), "{}", dry.stdout);
    assert!(
        get_json(&env, "dst", &["namespaces"])["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["metadata"]["name"] != "rec"),
        "dry run touched nothing"
    );

    env.kwokctl(&[
        "--name",
        "dst",
        "snapshot",
        "replay",
        "--path",
        &recording_arg,
        "--speed",
        "20",
    ])
    .success();
    let kept = get_json(&env, "dst", &["-n", "rec", "configmap", "kept"]);
    assert_eq!(kept["data"], serde_json::json!({"a": "2", "b": "3"}));
    let cms = get_json(&env, "dst", &["-n", "rec", "configmaps"]);
    assert!(
        cms["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["metadata"]["name"] != "dropped")
    );
    let pod = get_json(&env, "dst", &["-n", "rec", "pod", "web"]);
    assert_eq!(pod["metadata"]["labels"]["tier"], "front");
    assert_eq!(pod["metadata"]["labels"]["app"], "web");

    // Only the snapshot part; a missing file is upstream's error.
    let missing = env
        .kwokctl(&[
            "--name",
            "dst",
            "snapshot",
            "replay",
            "--path",
            "/nonexistent/rec.yaml",
        ])
        .failure();
    assert!(
        missing
            .stderr
            .contains("path \\\"/nonexistent/rec.yaml\\\" does not exist")
            || missing.stderr.contains("does not exist"),
        "{}",
        missing.stderr
    );
}

#[test]
fn kectl_and_port_forward_on_an_embedded_cluster() {
    let env = new_env();
    create(&env, "kwok");
    let file = env.root.path().join("cm.yaml");
    fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kc\n  namespace: default\ndata:\n  k: v\n",
    )
    .unwrap();
    let put = env
        .kwokctl(&["kectl", "put", "-f", &file.display().to_string()])
        .success();
    assert_eq!(put.stdout.trim(), "/registry/configmaps/default/kc");
    let got = env
        .kwokctl(&[
            "kectl",
            "get",
            "configmap",
            "kc",
            "-n",
            "default",
            "-o",
            "json",
        ])
        .success();
    let obj: Value = serde_json::from_str(&got.stdout).unwrap();
    assert_eq!(obj["data"]["k"], "v");
    // Put again replaces the stored object.
    fs::write(
        &file,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kc\ndata:\n  k: w\n",
    )
    .unwrap();
    env.kwokctl(&["kectl", "put", "-f", &file.display().to_string()])
        .success();
    let keys = env
        .kwokctl(&["kectl", "get", "configmaps", "-o", "key"])
        .success();
    assert!(
        keys.stdout
            .lines()
            .any(|l| l == "/registry/configmaps/default/kc"),
        "{}",
        keys.stdout
    );
    let yaml = env.kwokctl(&["kectl", "get", "cm", "kc"]).success();
    assert!(yaml.stdout.contains("k: w"), "{}", yaml.stdout);
    let nodes = env
        .kwokctl(&["kectl", "get", "namespace", "default", "-o", "key"])
        .success();
    assert_eq!(nodes.stdout.trim(), "/registry/namespaces/default");
    env.kwokctl(&["kectl", "delete", "configmap", "kc"])
        .success();
    let gone = env.kwokctl(&["kectl", "get", "configmap", "kc"]).failure();
    assert!(
        gone.stderr
            .contains("/registry/configmaps/default/kc not found"),
        "{}",
        gone.stderr
    );

    // port-forward: errors first, then /readyz through the local port.
    let bad = env
        .kwokctl(&["port-forward", "kube-apiserver", "abc"])
        .failure();
    assert!(
        bad.stderr.contains("unsupported port format: abc"),
        "{}",
        bad.stderr
    );
    let bad = env
        .kwokctl(&["port-forward", "kube-apiserver", "1234:nope"])
        .failure();
    assert!(
        bad.stderr.contains("port \\\"nope\\\" not found")
            || bad.stderr.contains("port \"nope\" not found"),
        "{}",
        bad.stderr
    );
    let bad = env
        .kwokctl(&["port-forward", "kwok-controller", "1234:http"])
        .failure();
    assert!(bad.stderr.contains("--controller-port"), "{}", bad.stderr);

    let local = free_port();
    let ports = format!("{local}:https");
    let (mut forward, log) = spawn(
        &env,
        &["port-forward", "kube-apiserver", &ports],
        "forward.log",
    );
    wait_for_text(&log, "Port forwarding", Duration::from_secs(20));
    let server = format!("https://127.0.0.1:{local}");
    let ready = kubectl(
        &env,
        "kwok",
        &["--server", &server, "get", "--raw", "/readyz"],
    );
    assert_eq!(ready.trim(), "ok");
    let _ = forward.kill();
    let _ = forward.wait();
}

#[test]
fn config_convert_and_get_artifacts() {
    let env = TestEnv::new();
    let dir = env.root.path();
    let upstream = dir.join("kwok.yaml");
    fs::write(
        &upstream,
        "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  runtime: binary\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n---\nkind: Stage\napiVersion: kwok.x-k8s.io/v1alpha1\nmetadata:\n  name: s\nspec:\n  resourceRef:\n    apiGroup: v1\n    kind: Pod\n",
    )
    .unwrap();
    let only_unknown = dir.join("pods.yaml");
    fs::write(
        &only_unknown,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
    )
    .unwrap();
    let args: Vec<String> = vec![
        "config".into(),
        "convert".into(),
        upstream.display().to_string(),
        only_unknown.display().to_string(),
        dir.join("missing.yaml").display().to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = env.kwokctl(&args).success();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&run.stdout).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["KwokctlConfiguration", "Stage"], "{}", run.stdout);
    assert!(
        run.stdout
            .starts_with("apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokctlConfiguration"),
        "{}",
        run.stdout
    );
    assert!(run.stderr.contains("Unsupported type"), "{}", run.stderr);
    assert!(
        run.stderr.contains("No resources found in config file"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Failed to load config file"),
        "{}",
        run.stderr
    );
    env.kwokctl(&["config", "convert", "-w", &upstream.display().to_string()])
        .success();
    let rewritten = fs::read_to_string(&upstream).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&rewritten).unwrap();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["KwokctlConfiguration", "Stage"], "{rewritten}");

    let images = env
        .kwokctl(&[
            "get",
            "artifacts",
            "--runtime",
            "docker",
            "--filter",
            "image",
        ])
        .success();
    let lines: Vec<&str> = images.stdout.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert!(
        lines.contains(&"registry.k8s.io/etcd:3.6.10-0"),
        "{}",
        images.stdout
    );
    assert!(lines.contains(&"registry.k8s.io/kube-apiserver:v1.36.1"));
    assert!(lines.contains(&"registry.k8s.io/kwok/kwok:v0.9.0"));
    let all = env
        .kwokctl(&["get", "artifacts", "--runtime", "kind"])
        .success();
    assert!(
        all.stdout.contains("docker.io/kindest/node:v1.36.1"),
        "{}",
        all.stdout
    );
    assert!(all.stdout.contains("/kind-linux-"), "{}", all.stdout);
    let embedded = env
        .kwokctl(&[
            "--kwok-binary",
            &kwok_binary().display().to_string(),
            "get",
            "artifacts",
            "--runtime",
            "embedded",
        ])
        .success();
    assert_eq!(embedded.stdout.trim(), kwok_binary().display().to_string());
    let none = env
        .kwokctl(&[
            "get",
            "artifacts",
            "--runtime",
            "embedded",
            "--filter",
            "image",
        ])
        .success();
    assert_eq!(none.stdout, "");
    let bad = env
        .kwokctl(&["get", "artifacts", "--runtime", "nope"])
        .failure();
    assert!(
        bad.stderr.contains("runtime \\\"nope\\\" not found")
            || bad.stderr.contains("runtime \"nope\" not found"),
        "{}",
        bad.stderr
    );
}

/// A recording of `pods` pod lifecycles on one node: a pod created every 2 ms, bound 100 ms
/// later, Running after 300 ms, deleted after 5 s.
/// `snapshot replay --speed 100` of 10,000 pod lifecycles (40,000 changes). A measurement: run
/// by hand on a release build (`cargo test --release -p kwokctl --test commands -- --ignored
/// --nocapture replay_of_10000`).
#[test]
#[ignore = "measurement, run by hand on a release build"]
fn replay_of_10000_pod_lifecycles() {
    let env = new_env();
    create(&env, "kwok");
    let path = env.root.path().join("pods.yaml");
    fs::write(&path, kwokctl::recording::pod_lifecycles(10_000)).unwrap();
    let started = Instant::now();
    let run = common::run_with_timeout(
        env.kwokctl_command(&[
            "snapshot",
            "replay",
            "--path",
            &path.display().to_string(),
            "--speed",
            "100",
        ]),
        Duration::from_secs(600),
    )
    .success();
    let elapsed = started.elapsed();
    println!(
        "replay of 10000 pod lifecycles at --speed 100: {elapsed:.2?}\n{}",
        run.stderr
    );
    let left = get_json(&env, "kwok", &["pods", "-A"]);
    assert_eq!(
        left["items"].as_array().unwrap().len(),
        0,
        "every pod was deleted again"
    );
}

/// On a binary cluster kectl reads and writes etcd directly: an object put there is served by
/// the API server.
#[test]
fn kectl_against_the_etcd_of_a_binary_cluster() {
    let env = new_env();
    if env
        .kwokctl(&[
            "--name",
            "bin",
            "create",
            "cluster",
            "--runtime",
            "binary",
            "--wait",
            "60s",
        ])
        .code
        != Some(0)
    {
        panic!("a binary cluster needs etcd on PATH");
    }
    let file = env.root.path().join("raw.yaml");
    fs::write(&file, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: raw\n  namespace: default\ndata:\n  x: \"1\"\n").unwrap();
    let put = env
        .kwokctl(&[
            "--name",
            "bin",
            "kectl",
            "put",
            "-f",
            &file.display().to_string(),
        ])
        .success();
    assert_eq!(put.stdout.trim(), "/registry/configmaps/default/raw");
    let served = get_json(&env, "bin", &["configmap", "raw"]);
    assert_eq!(served["data"]["x"], "1");
    let stored = env
        .kwokctl(&[
            "--name",
            "bin",
            "kectl",
            "get",
            "configmap",
            "raw",
            "-o",
            "json",
        ])
        .success();
    let stored: Value = serde_json::from_str(&stored.stdout).unwrap();
    assert_eq!(stored["data"]["x"], "1");
    env.kwokctl(&["--name", "bin", "kectl", "delete", "configmap", "raw"])
        .success();
    env.kwokctl(&["--name", "bin", "kectl", "get", "configmap", "raw"])
        .failure();
}
