//! `kwokctl scale` and `kwokctl snapshot` against real embedded clusters.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::time::{Duration, Instant};

use common::{TestEnv, kwok_binary, run_with_timeout};
use serde_json::Value;

const SCALE_LABEL: &str = "kwok.x-k8s.io/kwokctl-scale";

fn new_env() -> TestEnv {
    kwok_binary();
    TestEnv::new()
}

fn create(env: &TestEnv, name: &str) {
    env.kwokctl(&["--name", name, "create", "cluster", "--wait", "30s"])
        .success();
}

/// `kubectl get <what> -o json` in cluster `name`; returns the items.
fn items(env: &TestEnv, name: &str, args: &[&str]) -> Vec<Value> {
    let context = format!("kwok-{name}");
    let mut full = vec!["--context", context.as_str(), "get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let run = env.kubectl("1.33", &full).success();
    let list: Value = serde_json::from_str(&run.stdout).expect("kubectl prints JSON");
    list["items"].as_array().cloned().unwrap_or_default()
}

/// `kubectl get <what> -o json` for one object in cluster `name`.
fn get(env: &TestEnv, name: &str, args: &[&str]) -> Value {
    let context = format!("kwok-{name}");
    let mut full = vec!["--context", context.as_str(), "get"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["-o", "json"]);
    let run = env.kubectl("1.33", &full).success();
    serde_json::from_str(&run.stdout).expect("kubectl prints JSON")
}

fn names(items: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = items
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn apply(env: &TestEnv, cluster: &str, body: Value) {
    let file = env.root.path().join(format!(
        "{}-{}.json",
        body["kind"].as_str().unwrap(),
        body["metadata"]["name"].as_str().unwrap()
    ));
    fs::write(&file, body.to_string()).unwrap();
    env.kubectl(
        "1.33",
        &[
            "--context",
            &format!("kwok-{cluster}"),
            "apply",
            "-f",
            &file.display().to_string(),
        ],
    )
    .success();
}

fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    check()
}

fn node_ready(node: &Value) -> bool {
    node["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn expected_names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:06}")).collect()
}

#[test]
fn scale_nodes_up_and_down_and_pods_run() {
    let env = new_env();
    create(&env, "kwok");

    let run = env
        .kwokctl(&["scale", "node", "--replicas", "50"])
        .success();
    assert!(run.stderr.contains("Created resources"), "{run:?}");
    assert!(run.stderr.contains("counter=50"), "{run:?}");
    assert!(run.stderr.contains("elapsed="), "{run:?}");
    let nodes = items(&env, "kwok", &["nodes"]);
    assert_eq!(names(&nodes), expected_names("node", 50));
    for node in &nodes {
        assert_eq!(node["metadata"]["labels"][SCALE_LABEL], "node");
        assert_eq!(node["metadata"]["labels"]["type"], "kwok");
        assert_eq!(
            node["metadata"]["annotations"]["kwok.x-k8s.io/node"],
            "fake"
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || {
            let nodes = items(&env, "kwok", &["nodes"]);
            nodes.len() == 50 && nodes.iter().all(node_ready)
        }),
        "nodes did not become Ready"
    );

    // The same count again changes nothing.
    let run = env
        .kwokctl(&["scale", "node", "--replicas", "50"])
        .success();
    assert!(run.stderr.contains("Nothing to do"), "{run:?}");

    // Down to 20: the newest 30 go.
    let run = env
        .kwokctl(&["scale", "node", "--replicas", "20"])
        .success();
    assert!(run.stderr.contains("Deleted resources"), "{run:?}");
    assert!(
        wait_until(Duration::from_secs(10), || names(&items(
            &env,
            "kwok",
            &["nodes"]
        )) == expected_names("node", 20)),
        "scale down did not keep node-000000..node-000019"
    );

    // Pods bound to a node through --param run.
    env.kwokctl(&[
        "scale",
        "pod",
        "--replicas",
        "10",
        "--param",
        ".spec.nodeName=\"node-000000\"",
    ])
    .success();
    let pods = items(&env, "kwok", &["pods", "-n", "default"]);
    assert_eq!(names(&pods), expected_names("pod", 10));
    assert!(pods.iter().all(|p| p["spec"]["nodeName"] == "node-000000"
        && p["metadata"]["labels"][SCALE_LABEL] == "pod"
        && p["spec"]["containers"][0]["image"] == "busybox"));
    assert!(
        wait_until(Duration::from_secs(10), || {
            let pods = items(&env, "kwok", &["pods", "-n", "default"]);
            pods.len() == 10 && pods.iter().all(|p| p["status"]["phase"] == "Running")
        }),
        "pods did not become Running"
    );

    // Parameters of the built-in template, a custom name, a namespace and serial length.
    env.kubectl(
        "1.33",
        &["--context", "kwok-kwok", "create", "namespace", "other"],
    )
    .success();
    env.kwokctl(&[
        "scale",
        "pod",
        "web",
        "-n",
        "other",
        "--replicas",
        "2",
        "--serial-length",
        "3",
        "--param",
        ".nodeName=\"node-000001\"",
        "--param",
        ".containers[0].image=\"nginx\"",
    ])
    .success();
    let pods = items(&env, "kwok", &["pods", "-n", "other"]);
    assert_eq!(names(&pods), vec!["web-000", "web-001"]);
    assert!(pods.iter().all(|p| p["spec"]["nodeName"] == "node-000001"
        && p["spec"]["containers"][0]["image"] == "nginx"
        && p["metadata"]["labels"][SCALE_LABEL] == "web"));
}

#[test]
fn kwokctl_resource_from_config_scales_other_kinds() {
    let env = new_env();
    create(&env, "kwok");
    let config = env.root.path().join("resources.yaml");
    fs::write(
        &config,
        r#"apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlResource
metadata:
  name: configmap
parameters:
  color: blue
template: |-
  apiVersion: v1
  kind: ConfigMap
  metadata:
    name: {{ Name }}
    namespace: {{ Namespace }}
  data:
    color: {{ .color }}
    index: {{ Quote Index }}
"#,
    )
    .unwrap();
    let config = config.display().to_string();
    env.kwokctl(&[
        "-c",
        &config,
        "scale",
        "configmap",
        "--replicas",
        "3",
        "--param",
        ".color=\"green\"",
    ])
    .success();
    let cms: Vec<Value> = items(&env, "kwok", &["configmaps", "-n", "default"])
        .into_iter()
        .filter(|c| c["metadata"]["labels"][SCALE_LABEL] == "configmap")
        .collect();
    assert_eq!(names(&cms), expected_names("configmap", 3));
    let by_name: BTreeMap<String, Value> = cms
        .iter()
        .map(|c| {
            (
                c["metadata"]["name"].as_str().unwrap().to_string(),
                c.clone(),
            )
        })
        .collect();
    assert_eq!(by_name["configmap-000002"]["data"]["index"], "2");
    assert_eq!(by_name["configmap-000000"]["data"]["color"], "green");

    env.kwokctl(&["-c", &config, "scale", "configmap", "--replicas", "1"])
        .success();
    let left: Vec<Value> = items(&env, "kwok", &["configmaps", "-n", "default"])
        .into_iter()
        .filter(|c| c["metadata"]["labels"][SCALE_LABEL] == "configmap")
        .collect();
    assert_eq!(names(&left), expected_names("configmap", 1));

    // An upstream-style template with if/else, range over a map and a list, variables, `or` and
    // `index`; a jq update-assignment as --param.
    let styled = env.root.path().join("styled.yaml");
    fs::write(
        &styled,
        r#"apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlResource
metadata:
  name: settings
parameters:
  labels: {tier: web, team: a}
  overrides: {team: b}
  ports: [80, 443]
  tls: false
template: |-
  apiVersion: v1
  kind: ConfigMap
  metadata:
    name: {{ Name }}
    namespace: {{ or Namespace "default" }}
    labels:
    {{ $overrides := .overrides }}
    {{ range $key, $value := .labels }}
      {{ $key }}: {{ or (index $overrides $key) $value }}
    {{ end }}
  data:
    {{ if .tls }}
    scheme: https
    {{ else }}
    scheme: http
    {{ end }}
    ports: {{ range $i, $p := .ports }}{{ if $i }},{{ end }}{{ $p }}{{ end }}
    {{ with .missing }}missing: {{ . }}{{ end }}
"#,
    )
    .unwrap();
    let styled = styled.display().to_string();
    env.kwokctl(&[
        "-c",
        &styled,
        "scale",
        "settings",
        "--replicas",
        "2",
        "--param",
        ".ports |= map(. + 8000)",
        "--param",
        ".tls = true",
    ])
    .success();
    let cm = get(
        &env,
        "kwok",
        &["configmap", "settings-000001", "-n", "default"],
    );
    assert_eq!(cm["metadata"]["labels"]["tier"], "web");
    assert_eq!(cm["metadata"]["labels"]["team"], "b");
    assert_eq!(cm["data"]["scheme"], "https");
    assert_eq!(cm["data"]["ports"], "8080,8443");
    assert!(cm["data"].get("missing").is_none(), "{cm}");

    // The API client streams a watch line by line.
    let kubeconfig = env.cluster_dir("kwok").join("kubeconfig.yaml");
    let client = kwokctl::apiclient::Client::from_kubeconfig(&kubeconfig).unwrap();
    let (status, mut lines) = client
        .get_stream("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=2")
        .unwrap();
    assert_eq!(status, 200);
    let mut first = String::new();
    std::io::BufRead::read_line(&mut lines, &mut first).unwrap();
    let event: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(event["type"], "ADDED", "{first}");

    // An unknown resource says what is available.
    let run = env
        .kwokctl(&["scale", "widget", "--replicas", "1"])
        .failure();
    assert!(run.stderr.contains("KwokctlResource"), "{run:?}");
}

#[test]
fn snapshot_k8s_restores_into_another_cluster_with_owners_relinked() {
    let env = new_env();
    create(&env, "a");
    env.kwokctl(&["--name", "a", "scale", "node", "--replicas", "3"])
        .success();
    // An owner chain no built-in controller acts on: ConfigMap -> ConfigMap, ConfigMap -> Pod.
    apply(
        &env,
        "a",
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "owner", "namespace": "default", "labels": {"app": "web"}},
            "data": {"k": "v"}
        }),
    );
    let owner_uid = get(&env, "a", &["configmap", "owner", "-n", "default"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let owner_ref = serde_json::json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                                        "uid": owner_uid, "controller": true, "blockOwnerDeletion": true}]);
    apply(
        &env,
        "a",
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "child", "namespace": "default", "ownerReferences": owner_ref},
            "data": {"k": "v"}
        }),
    );
    apply(
        &env,
        "a",
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                         "ownerReferences": owner_ref},
            "spec": {"nodeName": "node-000001", "containers": [{"name": "c", "image": "busybox"}]}
        }),
    );

    let path = env.root.path().join("snap").join("a.yaml");
    let path_s = path.display().to_string();
    env.kwokctl(&[
        "--name", "a", "snapshot", "save", "--format", "k8s", "--path", &path_s,
    ])
    .success();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains("kind: Node"), "{text}");
    assert!(text.contains("name: child"), "{text}");
    assert!(text.contains("---"), "{text}");

    // The path must not exist yet.
    let again = env
        .kwokctl(&[
            "--name", "a", "snapshot", "save", "--format", "k8s", "--path", &path_s,
        ])
        .failure();
    assert!(again.stderr.contains("already exists"), "{again:?}");
    let bad = env
        .kwokctl(&[
            "--name", "a", "snapshot", "save", "--format", "zip", "--path", "x",
        ])
        .failure();
    assert!(bad.stderr.contains("unsupport format"), "{bad:?}");

    create(&env, "b");
    let run = env
        .kwokctl(&[
            "--name", "b", "snapshot", "restore", "--format", "k8s", "--path", &path_s,
        ])
        .success();
    assert!(run.stderr.contains("Restored snapshot"), "{run:?}");

    assert_eq!(
        names(&items(&env, "b", &["nodes"])),
        expected_names("node", 3)
    );
    let nodes_b = items(&env, "b", &["nodes"]);
    assert!(
        nodes_b
            .iter()
            .all(|n| n["metadata"]["labels"][SCALE_LABEL] == "node")
    );
    let get_cm = |name: &str| get(&env, "b", &["configmap", name, "-n", "default"]);
    let owner_b = get_cm("owner");
    let new_owner_uid = owner_b["metadata"]["uid"].as_str().unwrap().to_string();
    assert_ne!(new_owner_uid, owner_uid);
    assert_eq!(owner_b["metadata"]["labels"]["app"], "web");
    let child_b = get_cm("child");
    assert_eq!(
        child_b["metadata"]["ownerReferences"][0]["uid"],
        new_owner_uid
    );
    let pods_b = items(&env, "b", &["pods", "-n", "default"]);
    assert_eq!(names(&pods_b), vec!["web-1"]);
    let pod = &pods_b[0];
    assert_eq!(pod["metadata"]["labels"]["tier"], "front");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], new_owner_uid);
    assert_eq!(pod["metadata"]["ownerReferences"][0]["name"], "owner");
    // The garbage collector keeps the dependents: their owner exists.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        names(&items(&env, "b", &["pods", "-n", "default"])),
        vec!["web-1"]
    );
    get_cm("child");

    // Restoring the same snapshot again finds everything in place.
    env.kwokctl(&[
        "--name", "b", "snapshot", "restore", "--format", "k8s", "--path", &path_s,
    ])
    .success();
}

fn resource_versions(env: &TestEnv, cluster: &str) -> BTreeMap<String, String> {
    items(env, cluster, &["nodes"])
        .iter()
        .chain(items(env, cluster, &["configmaps", "-n", "default"]).iter())
        .map(|o| {
            (
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or(""),
                    o["metadata"]["name"].as_str().unwrap()
                ),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

#[test]
fn snapshot_etcd_preserves_resource_versions() {
    let env = new_env();
    create(&env, "kwok");
    env.kwokctl(&["scale", "node", "--replicas", "5"]).success();
    apply(
        &env,
        "kwok",
        serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "keep", "namespace": "default"}, "data": {"a": "1"}}),
    );
    // Let the simulator settle so nothing changes between reading and saving.
    assert!(wait_until(Duration::from_secs(10), || items(
        &env,
        "kwok",
        &["nodes"]
    )
    .iter()
    .all(node_ready)));
    std::thread::sleep(Duration::from_secs(1));
    let path = env.root.path().join("store.db");
    let path_s = path.display().to_string();
    let run = env
        .kwokctl(&["snapshot", "save", "--path", &path_s])
        .success();
    assert!(path.is_file());
    assert!(run.stderr.contains("Saved snapshot"), "{run:?}");
    let before = resource_versions(&env, "kwok");
    assert!(before.len() >= 6, "{before:?}");

    // Change things, then go back.
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();
    env.kubectl(
        "1.33",
        &["--context", "kwok-kwok", "delete", "configmap", "keep"],
    )
    .success();
    let run = env
        .kwokctl(&["snapshot", "restore", "--path", &path_s])
        .success();
    assert!(run.stderr.contains("Restored snapshot"), "{run:?}");
    let after = resource_versions(&env, "kwok");
    for (key, rv) in &before {
        assert_eq!(after.get(key), Some(rv), "{key}: {after:?}");
    }
    let wide = env.kwokctl(&["get", "clusters", "-o", "wide"]).success();
    assert!(wide.stdout.contains("Ready"), "{}", wide.stdout);

    let missing = env
        .kwokctl(&["snapshot", "restore", "--path", "/nonexistent/x.db"])
        .failure();
    assert!(missing.stderr.contains("does not exist"), "{missing:?}");
}

#[test]
fn snapshot_export_reads_any_cluster_through_a_kubeconfig() {
    let env = new_env();
    create(&env, "kwok");
    env.kwokctl(&["scale", "node", "--replicas", "7"]).success();
    env.kwokctl(&[
        "scale",
        "pod",
        "--replicas",
        "3",
        "--param",
        ".spec.nodeName=\"node-000000\"",
    ])
    .success();

    // The user's kubeconfig (certificate files) ...
    let out = env.root.path().join("export.yaml");
    env.kwokctl(&[
        "snapshot",
        "export",
        "--kubeconfig",
        &env.kubeconfig.display().to_string(),
        "--path",
        &out.display().to_string(),
        "--page-size",
        "2",
    ])
    .success();
    let text = fs::read_to_string(&out).unwrap();
    assert_eq!(text.matches("kind: Node\n").count(), 7, "{text}");
    assert_eq!(text.matches("kind: Pod\n").count(), 3, "{text}");

    // ... and a flattened one (embedded data), filtered.
    let flat = env.kwokctl(&["get", "kubeconfig"]).success();
    let flat_path = env.root.path().join("flat.yaml");
    fs::write(&flat_path, flat.stdout).unwrap();
    let out2 = env.root.path().join("nodes.yaml");
    env.kwokctl(&[
        "snapshot",
        "export",
        "--kubeconfig",
        &flat_path.display().to_string(),
        "--path",
        &out2.display().to_string(),
        "--filter",
        "node",
    ])
    .success();
    let text = fs::read_to_string(&out2).unwrap();
    assert_eq!(text.matches("kind: Node\n").count(), 7, "{text}");
    assert!(!text.contains("kind: Pod\n"));

    // The export restores like a saved snapshot.
    create(&env, "copy");
    env.kwokctl(&[
        "--name",
        "copy",
        "snapshot",
        "restore",
        "--format",
        "k8s",
        "--path",
        &out.display().to_string(),
    ])
    .success();
    assert_eq!(
        names(&items(&env, "copy", &["nodes"])),
        expected_names("node", 7)
    );
}

#[test]
fn bench_runs_the_scale_scenario_and_prints_its_table() {
    let env = new_env();
    let run = run_with_timeout(
        env.kwokctl_command(&[
            "bench",
            "--iterations",
            "1",
            "--replay",
            "0",
            "--one-node",
            "7",
            "--nodes",
            "3,5",
            "--pods",
            "4",
        ]),
        Duration::from_secs(120),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    // The columns after a step's 30-character name: objects, seconds, rate/s, upstream gate.
    let rows = |step: &str| -> Vec<Vec<String>> {
        run.stdout
            .lines()
            .filter(|l| l.get(..30).map(str::trim_end) == Some(step))
            .map(|l| l[30..].split_whitespace().map(String::from).collect())
            .collect()
    };
    let row = |step: &str| {
        rows(step)
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no {step:?} row in:\n{}", run.stdout))
    };
    assert!(row("create cluster (median of 1)").len() >= 4);
    // Upstream's scenario: every pod bound to the one node by the --param of scale pod.
    assert_eq!(row("pods Running on one node")[0], "7");
    assert_eq!(row("pods deleted from one node")[0], "7");
    let nodes = rows("nodes Ready");
    assert_eq!(nodes.len(), 2, "{}", run.stdout);
    assert_eq!((nodes[0][0].as_str(), nodes[1][0].as_str()), ("3", "5"));
    assert_eq!(row("pods Running")[0], "4");
    assert_eq!(row("pods deleted")[0], "4");
    assert!(row("stop + start, all back").len() >= 4);
    assert!(row("kill -9 + start, all back").len() >= 4);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("cluster process while scaling up:") && l.contains("peak RSS")),
        "{}",
        run.stdout
    );
    // The scratch clusters are gone; the user's workdir was never touched.
    assert!(
        !env.workdir.join("clusters").exists()
            || fs::read_dir(env.workdir.join("clusters"))
                .unwrap()
                .next()
                .is_none()
    );
}

/// `(name, uid, resourceVersion)` of every pod, sorted.
fn pod_identities(env: &TestEnv, cluster: &str) -> Vec<(String, String, String)> {
    let mut out: Vec<_> = items(env, cluster, &["pods", "-A"])
        .iter()
        .map(|p| {
            let m = &p["metadata"];
            (
                m["name"].as_str().unwrap().to_string(),
                m["uid"].as_str().unwrap().to_string(),
                m["resourceVersion"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn all_ready_and_running(env: &TestEnv, cluster: &str, nodes: usize, pods: usize) -> bool {
    let n = items(env, cluster, &["nodes"]);
    let p = items(env, cluster, &["pods", "-A"]);
    n.len() == nodes
        && n.iter().all(node_ready)
        && p.len() == pods
        && p.iter().all(|p| p["status"]["phase"] == "Running")
}

#[test]
fn a_scaled_cluster_survives_stop_start_and_kill_9() {
    let env = new_env();
    create(&env, "kwok");
    env.kwokctl(&["scale", "node", "--replicas", "20"])
        .success();
    env.kwokctl(&["scale", "pod", "--replicas", "300"])
        .success();
    assert!(wait_until(Duration::from_secs(60), || {
        all_ready_and_running(&env, "kwok", 20, 300)
    }));

    // Stop and start: every object comes back as it was, and the simulator takes over again.
    let before = pod_identities(&env, "kwok");
    env.kwokctl(&["stop", "cluster"]).success();
    env.kwokctl(&["start", "cluster"]).success();
    assert_eq!(pod_identities(&env, "kwok"), before);
    assert!(wait_until(Duration::from_secs(60), || {
        all_ready_and_running(&env, "kwok", 20, 300)
    }));

    // kill -9 right after acknowledged writes: none of them is lost, no pod is lost.
    let pid = env.pid("kwok", "kube-apiserver").unwrap();
    for i in 0..20 {
        create_configmap_in(&env, &format!("acked-{i}"));
    }
    let before: Vec<String> = pod_identities(&env, "kwok")
        .into_iter()
        .map(|(name, uid, _)| format!("{name}/{uid}"))
        .collect();
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
    }));
    env.kwokctl(&["start", "cluster"]).success();
    let configmaps = names(&items(&env, "kwok", &["configmaps", "-l", "acked=yes"]));
    assert_eq!(configmaps.len(), 20, "{configmaps:?}");
    let after: Vec<String> = pod_identities(&env, "kwok")
        .into_iter()
        .map(|(name, uid, _)| format!("{name}/{uid}"))
        .collect();
    assert_eq!(after, before);
    assert!(wait_until(Duration::from_secs(60), || {
        all_ready_and_running(&env, "kwok", 20, 300)
    }));
}

fn create_configmap_in(env: &TestEnv, name: &str) {
    env.kubectl("1.33", &["create", "configmap", name, "--from-literal=k=v"])
        .success();
    env.kubectl("1.33", &["label", "configmap", name, "acked=yes"])
        .success();
}
