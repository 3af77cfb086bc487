//! `create cluster`'s upstream flags, the config's Stages and KwokConfiguration in the embedded
//! simulator, and the dry runs of create, start, stop and delete.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::{TestEnv, kwok_binary};

fn new_env() -> TestEnv {
    kwok_binary();
    TestEnv::new()
}

/// Every file under `dir` with its size and modification time.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (u64, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.insert(entry.path(), (meta.len(), meta.modified().unwrap()));
        }
    }
    out
}

fn normalise(env: &TestEnv, text: &str) -> String {
    text.replace(&env.root.path().display().to_string(), "<ROOT>")
}

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/testdata/dryrun")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `options` of a cluster's kwok.yaml.
fn recorded_options(env: &TestEnv) -> serde_json::Value {
    let text = fs::read_to_string(env.cluster_dir("kwok").join("kwok.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    docs[0]["options"].clone()
}

#[test]
fn dry_run_create_matches_the_expected_plans() {
    let env = TestEnv::new();
    let embedded = env
        .kwokctl(&[
            "--dry-run",
            "create",
            "cluster",
            "--kube-apiserver-port",
            "32764",
        ])
        .success();
    assert_eq!(
        normalise(&env, &embedded.stdout),
        golden("embedded_create_cluster.txt")
    );
    let peer = env.root.path().join("peer.yaml");
    fs::write(
        &peer,
        "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n  etcdPeerPort: 32766\n",
    )
    .unwrap();
    let binary = env
        .kwokctl(&[
            "--dry-run",
            "create",
            "cluster",
            "--runtime",
            "binary",
            "--etcd-binary",
            "/opt/etcd/etcd",
            "-c",
            &peer.display().to_string(),
            "--etcd-port",
            "32765",
            "--kube-apiserver-port",
            "32764",
            "--controller-port",
            "32763",
            "--kube-controller-manager-port",
            "32762",
            "--kube-scheduler-port",
            "32761",
        ])
        .success();
    assert_eq!(
        normalise(&env, &binary.stdout),
        golden("binary_create_cluster.txt")
    );
    assert!(!env.workdir.exists(), "dry run created the workdir");
}

#[test]
fn every_upstream_create_flag_is_accepted() {
    let env = TestEnv::new();
    let policy = env.root.path().join("policy.yaml");
    fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n",
    )
    .unwrap();
    let policy = policy.display().to_string();
    let images = [
        "--etcd-image",
        "--kube-apiserver-image",
        "--kube-controller-manager-image",
        "--kube-scheduler-image",
        "--kwok-controller-image",
        "--metrics-server-image",
        "--prometheus-image",
        "--jaeger-image",
        "--kind-node-image",
        "--dashboard-image",
    ];
    let binaries = [
        "--etcd-binary-tar",
        "--prometheus-binary",
        "--prometheus-binary-tar",
        "--jaeger-binary",
        "--jaeger-binary-tar",
        "--metrics-server-binary",
        "--kind-binary",
    ];
    let mut args: Vec<String> = [
        "--dry-run",
        "create",
        "cluster",
        "--components",
        "etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kwok-controller",
        "--kube-apiserver-insecure-port",
        "8001",
        "--secure-port=true",
        "--kube-admission=false",
        "--kube-authorization=true",
        "--kube-controller-manager-port",
        "10257",
        "--kube-scheduler-port",
        "10259",
        "--prometheus-port",
        "9090",
        "--jaeger-port",
        "16686",
        "--kueueviz-port",
        "8080",
        "--dashboard-port",
        "8000",
        "--etcd-quota-backend-size",
        "4Gi",
        "--kube-feature-gates",
        "A=true",
        "--kube-runtime-config",
        "api/all=true",
        "--kube-audit-policy",
        &policy,
        "--kube-scheduler-config",
        &policy,
        "--kube-version",
        "v1.31.0",
        "--quiet-pull",
        "--disable-qps-limits",
        "--enable-crds",
        "Stage,Logs",
        "--node-lease-duration-seconds",
        "30",
        "--heartbeat-factor",
        "2",
        "--kube-apiserver-port",
        "32764",
        "--kwok-controller-binary",
        "/opt/kwok",
        "--etcd-binary",
        "/opt/etcd",
        "--kube-apiserver-binary",
        "/opt/kube-apiserver",
        "--kube-controller-manager-binary",
        "/opt/kube-controller-manager",
        "--kube-scheduler-binary",
        "/opt/kube-scheduler",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for flag in images.iter().chain(&binaries) {
        args.push(flag.to_string());
        args.push("example.test/x".into());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = env.kwokctl(&args).success();
    let out = &run.stdout;
    for expected in [
        "--feature-gates=A=true",
        "--runtime-config=api/all=true",
        "--audit-policy-file=",
        "--disable-admission-plugins=NamespaceLifecycle,",
        "--max-requests-inflight=0",
        "--enable-priority-and-fairness=false",
        "--kube-version=v1.31.0",
        "--insecure-port=8001",
        "--node-monitor-period=10s",
        "--node-monitor-grace-period=1m20s",
        "--node-lease-duration-seconds=60",
        "--enable-crds=Stage,Logs",
        "--scheduler-config=",
        "/audit.yaml",
        "/scheduler.yaml",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from:\n{out}");
    }
    assert!(!env.workdir.exists(), "dry run created the workdir");
    let refused = env
        .kwokctl(&[
            "--dry-run",
            "create",
            "cluster",
            "--kube-version",
            "v1.36.1",
        ])
        .failure();
    assert!(
        refused
            .stderr
            .contains("supported versions are v1.27 to v1.33"),
        "{refused:#?}"
    );
    let refused = env
        .kwokctl(&[
            "--dry-run",
            "create",
            "cluster",
            "--components",
            "etcd,kube-apiserver,grafana",
        ])
        .failure();
    assert!(
        refused.stderr.contains("unknown component \"grafana\""),
        "{refused:#?}"
    );
    let refused = env
        .kwokctl(&["--dry-run", "create", "cluster", "--enable-crds", "Foo"])
        .failure();
    assert!(refused.stderr.contains("invalid crd: Foo"), "{refused:#?}");
}

#[test]
fn options_are_recorded_and_the_lease_duration_is_honoured() {
    let mut env = new_env();
    env.set_env("KWOK_KUBE_CONTROLLER_MANAGER_PORT", "10257");
    env.kwokctl(&[
        "create",
        "cluster",
        "--node-lease-duration-seconds",
        "20",
        "--heartbeat-factor",
        "3",
        "--etcd-quota-backend-size",
        "2Gi",
        "--kueueviz-port",
        "9090",
        "--quiet-pull",
        "--kube-scheduler-image",
        "example.test/scheduler:v1",
        "--secure-port",
    ])
    .success();
    let o = recorded_options(&env);
    assert_eq!(o["nodeLeaseDurationSeconds"], 60, "{o:#}");
    assert_eq!(o["heartbeatFactor"], 1.0);
    assert_eq!(
        o["kubeControllerManagerNodeMonitorGracePeriodMilliseconds"],
        120_000
    );
    assert_eq!(o["etcdQuotaBackendSize"], "2Gi");
    assert_eq!(o["kueuevizPort"], 9090);
    assert_eq!(o["kubeControllerManagerPort"], 10257);
    assert_eq!(o["quietPull"], true);
    assert_eq!(o["securePort"], true);
    assert_eq!(o["kubeAdmission"], true);
    assert_eq!(o["kubeSchedulerImage"], "example.test/scheduler:v1");
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();
    let lease = wait_for_lease(&env, "leaseDurationSeconds", |s| !s.is_empty());
    assert_eq!(lease, "60");
    env.kwokctl(&["delete", "cluster"]).success();
}

/// A stopped and started cluster still holds its nodes' leases: the same holder renews them on
/// time, with no transition, instead of waiting for them to expire and taking them over.
#[test]
fn a_restarted_cluster_keeps_renewing_its_node_leases() {
    let env = new_env();
    env.kwokctl(&[
        "create",
        "cluster",
        "--node-lease-duration-seconds",
        "8",
        "--heartbeat-factor",
        "1",
    ])
    .success();
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();
    let holder = wait_for_lease(&env, "holderIdentity", |s| !s.is_empty());
    env.kwokctl(&["stop", "cluster"]).success();
    env.kwokctl(&["start", "cluster"]).success();
    let before = wait_for_lease(&env, "renewTime", |_| true);
    // Renewed every 2 s by its holder; a new holder could only take it over after 8 s.
    let renewed = wait_for_lease(&env, "renewTime", |s| !s.is_empty() && s != before);
    assert!(renewed > before, "{renewed} after {before}");
    assert_eq!(wait_for_lease(&env, "holderIdentity", |_| true), holder);
    assert_eq!(
        wait_for_lease(&env, "leaseTransitions", |_| true),
        "",
        "the lease changed hands"
    );
    env.kwokctl(&["delete", "cluster"]).success();
}

/// Polls a field of the first node lease's spec until it passes `done`; returns it.
fn wait_for_lease(env: &TestEnv, field: &str, done: impl Fn(&str) -> bool) -> String {
    let path = format!("jsonpath={{.items[0].spec.{field}}}");
    wait_for(
        env,
        &["get", "lease", "-n", "kube-node-lease", "-o", &path],
        done,
    )
}

/// Polls `kubectl args` until its output passes `done`; returns that output.
fn wait_for(env: &TestEnv, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let run = env.kubectl("1.33", args);
        let out = run.stdout.trim().to_string();
        if run.code == Some(0) && done(&out) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?} never got there: {run:#?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

const NODE_STAGE: &str = r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
  selector:
    matchExpressions:
    - key: '.status.conditions.[] | select( .type == "Ready" ) | .status'
      operator: NotIn
      values: ["True"]
  next:
    statusTemplate: |
      conditions:
      - lastHeartbeatTime: {{ Now }}
        lastTransitionTime: {{ Now }}
        message: ready by the test
        reason: REASON
        status: "True"
        type: Ready
"#;

const POD_FAIL_STAGE: &str = r#"apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-fail
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: DoesNotExist
    - key: '.status.phase'
      operator: NotIn
      values: ["Failed"]
  next:
    statusTemplate: |
      phase: Failed
      reason: FailedByStage
"#;

fn ready_reason(env: &TestEnv, node: &str) -> String {
    let path = "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}";
    wait_for(env, &["get", "node", node, "-o", path], |s| !s.is_empty())
}

#[test]
fn stages_from_config_files_replace_the_defaults_and_later_ones_win() {
    let env = new_env();
    let first = env.root.path().join("first.yaml");
    fs::write(&first, NODE_STAGE.replace("REASON", "FirstReady")).unwrap();
    let second = env.root.path().join("second.yaml");
    fs::write(
        &second,
        format!(
            "{}---\n{POD_FAIL_STAGE}",
            NODE_STAGE.replace("REASON", "CustomReady")
        ),
    )
    .unwrap();
    env.kwokctl(&[
        "create",
        "cluster",
        "-c",
        &format!("{},{}", first.display(), second.display()),
    ])
    .success();
    let config = fs::read_to_string(env.cluster_dir("kwok").join("kwok.yaml")).unwrap();
    assert_eq!(
        config.matches("name: node-initialize").count(),
        1,
        "{config}"
    );
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();
    assert_eq!(ready_reason(&env, "node-000000"), "CustomReady");
    env.kubectl("1.33", &["run", "doomed", "--image=busybox"])
        .success();
    let phase = wait_for(
        &env,
        &["get", "pod", "doomed", "-o", "jsonpath={.status.phase}"],
        |s| s == "Failed" || s == "Running",
    );
    assert_eq!(phase, "Failed");
    env.kwokctl(&["delete", "cluster"]).success();
}

#[test]
fn kwok_configuration_options_reach_the_embedded_simulator() {
    let env = new_env();
    let config = env.root.path().join("kwok.yaml");
    fs::write(
        &config,
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions:\n  manageAllNodes: false\n  manageNodesWithLabelSelector: simulated=yes\n",
    )
    .unwrap();
    env.kwokctl(&["create", "cluster", "-c", &config.display().to_string()])
        .success();
    for (name, labels) in [
        ("left", serde_json::json!({})),
        ("managed", serde_json::json!({"simulated": "yes"})),
    ] {
        let manifest = env.root.path().join(format!("{name}.json"));
        let node = serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels}});
        fs::write(&manifest, node.to_string()).unwrap();
        env.kubectl("1.33", &["apply", "-f", &manifest.display().to_string()])
            .success();
    }
    assert_eq!(ready_reason(&env, "managed"), "KubeletReady");
    let left = env
        .kubectl(
            "1.33",
            &["get", "node", "left", "-o", "jsonpath={.status.conditions}"],
        )
        .success();
    assert_eq!(left.stdout, "", "a node outside the selector was simulated");
    env.kwokctl(&["delete", "cluster"]).success();
}

#[test]
fn enable_crds_reads_stages_from_the_api() {
    let env = new_env();
    let stages = env.root.path().join("stages.yaml");
    fs::write(&stages, NODE_STAGE.replace("REASON", "FromConfig")).unwrap();
    env.kwokctl(&[
        "create",
        "cluster",
        "--enable-crds",
        "Stage",
        "-c",
        &stages.display().to_string(),
    ])
    .success();
    let config = fs::read_to_string(env.cluster_dir("kwok").join("kwok.yaml")).unwrap();
    assert!(!config.contains("kind: Stage"), "{config}");
    assert!(config.contains("--enable-crds=Stage"), "{config}");
    let from_api = env.root.path().join("api-stage.yaml");
    fs::write(&from_api, NODE_STAGE.replace("REASON", "FromTheApi")).unwrap();
    // The Stage kind is served once the cluster is up.
    wait_for(
        &env,
        &["apply", "-f", &from_api.display().to_string()],
        |_| true,
    );
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();
    assert_eq!(ready_reason(&env, "node-000000"), "FromTheApi");
    env.kwokctl(&["delete", "cluster"]).success();
}

#[test]
fn dry_runs_of_start_stop_and_delete_touch_nothing() {
    let env = new_env();
    env.kwokctl(&["create", "cluster"]).success();
    env.kwokctl(&["stop", "cluster"]).success();
    let before = snapshot(&env.workdir);
    let kubeconfig = fs::read_to_string(&env.kubeconfig).unwrap();
    let dir = env.cluster_dir("kwok").display().to_string();
    let start = env.kwokctl(&["--dry-run", "start", "cluster"]).success();
    assert!(
        start
            .stdout
            .contains(&format!("cd {dir} && \\\n  kwok \\\n  apiserver")),
        "{}",
        start.stdout
    );
    assert!(
        start
            .stdout
            .contains(&format!("echo $! >{dir}/pids/kube-apiserver.pid"))
    );
    let stop = env.kwokctl(&["--dry-run", "stop", "cluster"]).success();
    assert_eq!(
        stop.stdout,
        format!("kill $(cat {dir}/pids/kube-apiserver.pid)\nrm {dir}/pids/kube-apiserver.pid\n")
    );
    let delete = env.kwokctl(&["--dry-run", "delete", "cluster"]).success();
    assert!(
        delete.stdout.contains(&format!("rm -rf {dir}")),
        "{}",
        delete.stdout
    );
    assert!(
        delete.stdout.contains("# Remove context kwok-kwok from"),
        "{}",
        delete.stdout
    );
    assert_eq!(
        snapshot(&env.workdir),
        before,
        "a dry run changed the workdir"
    );
    assert_eq!(fs::read_to_string(&env.kubeconfig).unwrap(), kubeconfig);
    env.kwokctl(&["delete", "cluster"]).success();
}

const AUDIT_POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  resources:
  - group: coordination.k8s.io
    resources: ["leases"]
- level: Metadata
"#;

const SCHEDULER_CONFIG: &str = r#"apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The kube-apiserver knobs of `create cluster` reach the embedded API server: audit policy and
/// `logs audit`, feature gates, runtime config, Kubernetes version, the insecure port, the
/// scheduler config, admission off and QPS limits off.
#[test]
fn kube_apiserver_options_reach_the_embedded_server() {
    let env = new_env();
    let policy = env.root.path().join("audit-policy.yaml");
    fs::write(&policy, AUDIT_POLICY).unwrap();
    let scheduler = env.root.path().join("scheduler.yaml");
    fs::write(&scheduler, SCHEDULER_CONFIG).unwrap();
    let insecure = free_port().to_string();
    env.kwokctl(&[
        "create",
        "cluster",
        "--kube-audit-policy",
        policy.to_str().unwrap(),
        "--kube-scheduler-config",
        scheduler.to_str().unwrap(),
        "--kube-feature-gates",
        "InPlacePodVerticalScaling=true",
        "--kube-runtime-config",
        "batch/v1=false",
        "--kube-version",
        "v1.30.2",
        "--kube-apiserver-insecure-port",
        &insecure,
        "--disable-qps-limits",
        "--kube-authorization=false",
    ])
    .success();
    let o = recorded_options(&env);
    assert_eq!(
        o["kubeAdmission"], false,
        "follows kubeAuthorization: {o:#}"
    );
    assert_eq!(o["disableQPSLimits"], true, "{o:#}");

    let version = env.kubectl("1.33", &["version", "-o", "json"]).success();
    let version: serde_json::Value = serde_json::from_str(&version.stdout).unwrap();
    assert_eq!(version["serverVersion"]["gitVersion"], "v1.30.2");
    let resources = env
        .kubectl("1.27", &["api-resources", "-o", "name"])
        .success()
        .stdout;
    assert!(!resources.lines().any(|r| r == "jobs.batch"), "{resources}");
    assert!(!resources.lines().any(|r| r.starts_with("servicecidrs")));
    assert!(resources.lines().any(|r| r == "deployments.apps"));

    // Plain HTTP without credentials acts as the admin.
    let mut curl = std::process::Command::new("curl");
    curl.args([
        "-sf",
        &format!("http://127.0.0.1:{insecure}/api/v1/namespaces/default"),
    ]);
    let answer = common::run_with_timeout(curl, Duration::from_secs(30)).success();
    assert!(
        answer.stdout.contains("\"name\": \"default\"")
            || answer.stdout.contains("\"name\":\"default\""),
        "{answer:#?}"
    );

    // Admission is off: a pod naming a missing PriorityClass is admitted.
    env.kubectl(
        "1.33",
        &[
            "run",
            "p",
            "--image=x",
            "--overrides",
            r#"{"spec":{"priorityClassName":"nope","schedulerName":"bin-packing"}}"#,
        ],
    )
    .success();
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();
    wait_for(
        &env,
        &["get", "pod", "p", "-o", "jsonpath={.spec.nodeName}"],
        |s| !s.is_empty(),
    );

    let audit = env.kwokctl(&["logs", "audit"]).success().stdout;
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let pod_create = events
        .iter()
        .find(|e| {
            e["verb"] == "create"
                && e["objectRef"]["resource"] == "pods"
                && e["stage"] == "ResponseComplete"
        })
        .unwrap_or_else(|| panic!("no pod create in {audit}"));
    assert_eq!(pod_create["level"], "Metadata");
    assert_eq!(pod_create["apiVersion"], "audit.k8s.io/v1");
    assert!(pod_create.get("requestObject").is_none());
    assert!(
        !events
            .iter()
            .any(|e| e["objectRef"]["resource"] == "leases"),
        "the None rule keeps leases out"
    );
    env.kwokctl(&["delete", "cluster"]).success();
}

/// A feature gate kube-apiserver does not know stops the start with kube's message.
#[test]
fn unknown_feature_gates_are_refused() {
    let env = new_env();
    let run = env
        .kwokctl(&[
            "create",
            "cluster",
            "--kube-feature-gates",
            "NoSuchGate=true",
        ])
        .failure();
    assert!(
        run.stderr.contains("unrecognized feature gate: NoSuchGate"),
        "{run:#?}"
    );
    env.kwokctl(&["delete", "cluster", "--force"]).success();
}
