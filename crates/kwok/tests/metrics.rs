//! Usage metrics that move: `kubectl top` against `kwok apiserver --simulate --enable-metrics`
//! follows the pods' usage annotations, a HorizontalPodAutoscaler scales a Deployment up and
//! down with them, Metric endpoints are scraped through `nodes/proxy`, and simulation objects
//! with bad CEL are refused.

mod common;

use std::time::{Duration, Instant};

use common::Server;

const NODE_AND_POD: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  allocatable: {cpu: "4", memory: 8Gi, pods: "110"}
  capacity: {cpu: "4", memory: 8Gi, pods: "110"}
---
apiVersion: v1
kind: Pod
metadata:
  name: p1
  namespace: default
  annotations: {kwok.x-k8s.io/usage-cpu: 250m, kwok.x-k8s.io/usage-memory: 64Mi}
spec:
  nodeName: n1
  containers: [{name: app, image: busybox}]
"#;

fn metrics_server(extra: &[&str]) -> Server {
    let mut args = vec![
        "--simulate",
        "--enable-metrics",
        "--metrics-resolution",
        "1s",
        "--horizontal-pod-autoscaler-sync-period",
        "1s",
    ];
    args.extend_from_slice(extra);
    Server::start_with(&args)
}

/// Runs kubectl until its output satisfies `wanted`, for at most `timeout`.
fn eventually(
    server: &Server,
    minor: u32,
    args: &[&str],
    timeout: Duration,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let out = server.kubectl(minor, args);
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if out.status.success() && wanted(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl 1.{minor} {args:?} never gave what was wanted; last: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn kubectl_top_follows_the_usage_annotations() {
    let server = metrics_server(&[]);
    server.ok_stdin(33, &["apply", "-f", "-"], NODE_AND_POD);
    for minor in [27, 33] {
        let top = eventually(
            &server,
            minor,
            &["top", "pod", "p1"],
            Duration::from_secs(30),
            |t| t.contains("250m"),
        );
        assert!(top.contains("64Mi"), "{top}");
        let nodes = eventually(
            &server,
            minor,
            &["top", "node"],
            Duration::from_secs(30),
            |t| t.contains("n1"),
        );
        assert!(nodes.contains("250m"), "{nodes}");
    }
    server.ok(
        33,
        &[
            "annotate",
            "pod",
            "p1",
            "--overwrite",
            "kwok.x-k8s.io/usage-cpu=1500m",
            "kwok.x-k8s.io/usage-memory=1Gi",
        ],
    );
    for minor in [27, 33] {
        let top = eventually(
            &server,
            minor,
            &["top", "pod", "-A", "--containers"],
            Duration::from_secs(30),
            |t| t.contains("1500m"),
        );
        assert!(top.contains("app") && top.contains("1024Mi"), "{top}");
    }
}

#[test]
fn the_metrics_api_is_discovered_and_read_only() {
    let server = metrics_server(&[]);
    for minor in [27, 33] {
        let resources = server.ok(minor, &["api-resources", "--api-group", "metrics.k8s.io"]);
        assert!(resources.contains("PodMetrics"), "{resources}");
        assert!(resources.contains("NodeMetrics"), "{resources}");
    }
    server.ok_stdin(33, &["apply", "-f", "-"], NODE_AND_POD);
    let list = server.ok(
        33,
        &[
            "get",
            "--raw",
            "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods",
        ],
    );
    assert!(list.contains("PodMetricsList"), "{list}");
    let refused = server.fails(
        33,
        &["delete", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes/n1"],
    );
    assert!(
        refused.contains("MethodNotAllowed") || refused.contains("not allow"),
        "{refused}"
    );
    let plain = Server::start_with(&["--simulate"]);
    let resources = plain.ok(33, &["api-resources", "--api-group", "metrics.k8s.io"]);
    assert!(!resources.contains("PodMetrics"), "{resources}");
}

const DEPLOYMENT: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1}
status:
  allocatable: {cpu: "32", memory: 64Gi, pods: "110"}
  capacity: {cpu: "32", memory: 64Gi, pods: "110"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web}
      annotations: {kwok.x-k8s.io/usage-cpu: 50m}
    spec:
      containers:
      - name: app
        image: busybox
        resources: {requests: {cpu: 100m}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: default}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown: {stabilizationWindowSeconds: 0}
"#;

fn replicas(server: &Server) -> i64 {
    server.get_json(33, &["deployment", "web"])["spec"]["replicas"]
        .as_i64()
        .unwrap_or(0)
}

fn wait_replicas(server: &Server, wanted: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while replicas(server) != wanted {
        assert!(
            Instant::now() < deadline,
            "the deployment never reached {wanted} replicas: {}\n{}",
            server.ok(33, &["get", "hpa", "web", "-o", "yaml"]),
            server.ok(33, &["top", "pod", "-l", "app=web"]),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn an_autoscaler_follows_usage_up_and_down() {
    let server = metrics_server(&[]);
    server.ok_stdin(33, &["apply", "-f", "-"], DEPLOYMENT);
    let hpa = eventually(
        &server,
        33,
        &["get", "hpa", "web"],
        Duration::from_secs(60),
        |t| t.contains("cpu: 50%/50%"),
    );
    assert!(hpa.contains("web"), "{hpa}");
    assert_eq!(replicas(&server), 1);
    // Usage rises to 200% of the request: the autoscaler wants four replicas.
    set_cpu_usage(&server, "200m");
    wait_replicas(&server, 5);
    let status = server.get_json(33, &["hpa", "web"]);
    let conditions = status["status"]["conditions"].to_string();
    assert!(conditions.contains("ValidMetricFound"), "{conditions}");
    // Usage falls to 10%: back to the minimum.
    set_cpu_usage(&server, "10m");
    wait_replicas(&server, 1);
    let described = server.ok(27, &["describe", "hpa", "web"]);
    assert!(described.contains("SuccessfulRescale"), "{described}");
}

/// Sets the CPU usage annotation of the `web` Deployment's pods (a rollout follows).
fn set_cpu_usage(server: &Server, cpu: &str) {
    let patch = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {
        "kwok.x-k8s.io/usage-cpu": cpu}}}}});
    let patch = patch.to_string();
    server.ok(
        33,
        &[
            "patch",
            "deployment",
            "web",
            "--type",
            "merge",
            "-p",
            &patch,
        ],
    );
}

#[test]
fn the_resource_metric_is_scraped_through_nodes_proxy() {
    let server = metrics_server(&[]);
    server.ok_stdin(33, &["apply", "-f", "-"], NODE_AND_POD);
    let path = "/api/v1/nodes/n1/proxy/metrics/nodes/n1/metrics/resource";
    for minor in [27, 33] {
        let text = eventually(
            &server,
            minor,
            &["get", "--raw", path],
            Duration::from_secs(30),
            |t| t.contains("pod=\"p1\""),
        );
        assert!(
            text.contains("# TYPE node_cpu_usage_seconds_total counter"),
            "{text}"
        );
        assert!(
            text.contains(
                "container_memory_working_set_bytes{container=\"app\",namespace=\"default\",pod=\"p1\"} 67108864"
            ),
            "{text}"
        );
        assert!(
            text.contains("node_memory_working_set_bytes 67108864"),
            "{text}"
        );
    }
    // A Metric created through the API is served at its own path.
    server.ok_stdin(
        33,
        &["apply", "-f", "-"],
        r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Metric
metadata: {name: pods-running}
spec:
  path: /metrics/nodes/{nodeName}/custom
  metrics:
  - name: kwok_started_containers
    help: Containers started on the node
    kind: gauge
    labels: [{name: node, value: node.metadata.name}]
    value: StartedContainersTotal(node.metadata.name)
  - name: kwok_pod_cpu
    kind: histogram
    dimension: pod
    value: pod.Usage("cpu")
    buckets: [{le: 0.1, value: "0"}, {le: 1, value: "1"}]
"#,
    );
    let text = eventually(
        &server,
        33,
        &[
            "get",
            "--raw",
            "/api/v1/nodes/n1/proxy/metrics/nodes/n1/custom",
        ],
        Duration::from_secs(30),
        |t| t.contains("kwok_started_containers"),
    );
    assert!(
        text.contains("kwok_started_containers{node=\"n1\"} 1"),
        "{text}"
    );
    assert!(text.contains("kwok_pod_cpu_bucket{le=\"1\"} 1"), "{text}");
    assert!(text.contains("kwok_pod_cpu_sum 0.25"), "{text}");
    let targets = server.ok(
        33,
        &[
            "get",
            "--raw",
            "/api/v1/nodes/n1/proxy/discovery/prometheus",
        ],
    );
    assert!(targets.contains("/metrics/nodes/n1/custom"), "{targets}");
}

#[test]
fn simulation_objects_with_bad_cel_are_refused() {
    let server = metrics_server(&[]);
    for minor in [27, 33] {
        let out = server.kubectl_stdin(
            minor,
            &["apply", "-f", "-"],
            Some(
                r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterResourceUsage
metadata: {name: broken}
spec:
  usages:
  - usage:
      cpu: {expression: "Quantity(\"1m\") +"}
"#,
            ),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("ClusterResourceUsage \"broken\" is invalid")
                && stderr.contains("spec.usages[0].usage[cpu].expression")
                && stderr.contains("invalid CEL expression"),
            "{stderr}"
        );
        let out = server.kubectl_stdin(
            minor,
            &["apply", "-f", "-"],
            Some(
                r#"
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Metric
metadata: {name: broken}
spec:
  path: /broken
  metrics: [{name: m, kind: gauge, value: "node.("}]
"#,
            ),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains("spec.metrics[0].value") && stderr.contains("invalid CEL expression"),
            "{stderr}"
        );
    }
}
