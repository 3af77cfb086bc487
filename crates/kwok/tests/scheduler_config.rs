//! `--scheduler-config`: a `KubeSchedulerConfiguration` with several profiles changes where
//! `kwok apiserver` places pods, by `spec.schedulerName`; a file kube-scheduler would refuse
//! stops `kwok apiserver` and `kwok controller-manager` from starting.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Server, kwok_bin, write};

const CONFIG: &str = r#"apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
parallelism: 8
percentageOfNodesToScore: 50
profiles:
- schedulerName: default-scheduler
- schedulerName: bin-packing
  plugins:
    score:
      enabled:
      - name: NodeResourcesFit
        weight: 5
      - name: ImageLocality
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources:
        - name: cpu
          weight: 1
        - name: memory
          weight: 1
- schedulerName: no-fit
  plugins:
    filter:
      disabled:
      - name: NodeResourcesFit
"#;

fn node(name: &str, cpu: &str, memory: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels:\n    kubernetes.io/hostname: {name}\nstatus:\n  allocatable: {{cpu: \"{cpu}\", memory: {memory}, pods: \"110\"}}\n  capacity: {{cpu: \"{cpu}\", memory: {memory}, pods: \"110\"}}\n  conditions:\n  - {{type: Ready, status: \"True\"}}\n"
    )
}

fn pod(name: &str, scheduler: &str, cpu: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  schedulerName: {scheduler}\n  containers:\n  - name: app\n    image: nginx\n    resources:\n      requests: {{cpu: \"{cpu}\", memory: 1Gi}}\n"
    )
}

/// Waits until `jsonpath` of the pod is not empty.
fn wait_for(server: &Server, pod: &str, jsonpath: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = server.ok(
            33,
            &["get", "pod", pod, "-o", &format!("jsonpath={jsonpath}")],
        );
        if !out.trim().is_empty() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "pod {pod}: {jsonpath} stayed empty\n{}",
            server.ok(33, &["get", "events"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn profiles_place_pods_by_scheduler_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "scheduler.yaml", CONFIG);
    let server = Server::start_with(&[
        "--controllers",
        "scheduler,serviceaccount",
        "--scheduler-config",
        config.to_str().unwrap(),
    ]);
    let nodes = node("small", "4", "8Gi") + &node("big", "32", "64Gi");
    let nodes_file = write(server.dir.path(), "nodes.yaml", &nodes);
    server.ok(33, &["create", "-f", nodes_file.to_str().unwrap()]);
    let pods = [
        pod("spread", "default-scheduler", "1"),
        pod("packed", "bin-packing", "1"),
        pod("huge", "default-scheduler", "100"),
        pod("huge-no-fit", "no-fit", "100"),
        pod("other", "someone-else", "1"),
    ]
    .concat();
    let pods_file = write(server.dir.path(), "pods.yaml", &pods);
    server.ok(33, &["create", "-f", pods_file.to_str().unwrap()]);

    // Least allocated sends the pod to the big node, most allocated to the small one.
    assert_eq!(wait_for(&server, "spread", "{.spec.nodeName}"), "big");
    assert_eq!(wait_for(&server, "packed", "{.spec.nodeName}"), "small");
    // Without NodeResourcesFit's filter a pod larger than any node still binds.
    assert!(!wait_for(&server, "huge-no-fit", "{.spec.nodeName}").is_empty());
    let message = wait_for(
        &server,
        "huge",
        "{.status.conditions[?(@.type==\"PodScheduled\")].message}",
    );
    assert_eq!(
        message,
        "0/2 nodes are available: 2 Insufficient cpu. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
    );

    // Each profile reports its events under its own name.
    let source = |pod: &str| {
        server.ok(
            33,
            &[
                "get",
                "events",
                "--field-selector",
                &format!("involvedObject.name={pod},reason=Scheduled"),
                "-o",
                "jsonpath={.items[*].source.component}",
            ],
        )
    };
    assert_eq!(source("packed"), "bin-packing");
    assert_eq!(source("spread"), "default-scheduler");
    // A pod naming no profile is left alone.
    assert_eq!(
        server.ok(
            33,
            &["get", "pod", "other", "-o", "jsonpath={.spec.nodeName}"]
        ),
        ""
    );
    let log = std::fs::read_to_string(server.log_path()).unwrap();
    assert!(
        log.contains("plugin \\\"ImageLocality\\\" is enabled but not implemented")
            || log.contains("plugin \"ImageLocality\" is enabled but not implemented"),
        "{log}"
    );
}

/// Runs `kwok <args>` and returns its exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(kwok_bin()).args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn files_kube_scheduler_refuses_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let unknown = write(
        dir.path(),
        "unknown.yaml",
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: fancy\n  plugins:\n    filter:\n      enabled:\n      - name: Fancy\n",
    );
    let misspelt = write(
        dir.path(),
        "misspelt.yaml",
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: a\n  plugin: {}\n",
    );
    let data = dir.path().join("data");
    let port = common::free_port().to_string();
    let kubeconfig = dir.path().join("missing-kubeconfig");
    for (file, message) in [
        (
            &unknown,
            "initializing profiles: creating profile for scheduler name fancy: FilterPlugin \"Fancy\" does not exist",
        ),
        (
            &misspelt,
            "strict decoding error: unknown field \"profiles[0].plugin\"",
        ),
    ] {
        let file = file.to_str().unwrap();
        let apiserver = [
            "apiserver",
            "--data-dir",
            data.to_str().unwrap(),
            "--secure-port",
            &port,
            "--scheduler-config",
            file,
        ];
        let manager = [
            "controller-manager",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--scheduler-config",
            file,
        ];
        for args in [&apiserver[..], &manager[..]] {
            let (code, stderr) = run(args);
            assert_eq!(code, Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("--scheduler-config {file}: {message}")),
                "{args:?}: {stderr}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    assert!(!data.join("store").exists(), "the server started");
}
