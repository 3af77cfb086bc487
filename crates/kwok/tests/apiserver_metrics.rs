//! The server's own `/metrics`: `kubectl get --raw /metrics` (1.27 and 1.33) shows the requests
//! made with kube-apiserver's labels and counts, the stored pods, the watch in progress and the
//! in-flight gauges, in text that `promtool` parses; only the monitoring group and admins may
//! read it.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

const PODS: &str = r#"
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: a, namespace: default}, spec: {containers: [{name: c, image: busybox}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: b, namespace: default}, spec: {containers: [{name: c, image: busybox}]}}
- {apiVersion: v1, kind: Pod, metadata: {name: c, namespace: default}, spec: {containers: [{name: c, image: busybox}]}}
"#;

/// The sum of the samples of `name` whose labels include `labels`, if there is one.
fn try_sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let (metric, set) = series.split_once('{').unwrap_or((series, "}"));
        let set = set.trim_end_matches('}');
        let has = |(k, v): &(&str, &str)| set.split(',').any(|p| p == format!("{k}=\"{v}\""));
        if metric == name && labels.iter().all(has) {
            *total.get_or_insert(0.0) += value.parse::<f64>().expect("numeric value");
        }
    }
    total
}

fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    try_sample(text, name, labels)
        .unwrap_or_else(|| panic!("no {name} sample with {labels:?} in:\n{text}"))
}

fn scrape(server: &Server, minor: u32) -> String {
    server.ok(minor, &["get", "--raw", "/metrics"])
}

const POD_CREATES: [(&str, &str); 8] = [
    ("code", "201"),
    ("component", "apiserver"),
    ("dry_run", ""),
    ("group", ""),
    ("version", "v1"),
    ("resource", "pods"),
    ("scope", "resource"),
    ("verb", "POST"),
];

const POD_LISTS: [(&str, &str); 6] = [
    ("code", "200"),
    ("resource", "pods"),
    ("scope", "namespace"),
    ("subresource", ""),
    ("verb", "LIST"),
    ("version", "v1"),
];

#[test]
fn metrics_count_requests_objects_and_watches() {
    let server = Server::start();
    server.ok_stdin(33, &["create", "-f", "-"], PODS);
    server.ok_stdin(33, &["create", "--dry-run=server", "-f", "-"], PODS);
    server.ok(33, &["get", "pods"]);

    let text = scrape(&server, 33);
    assert_eq!(sample(&text, "apiserver_request_total", &POD_CREATES), 3.0);
    let mut dry = POD_CREATES;
    dry[2] = ("dry_run", "All");
    assert_eq!(sample(&text, "apiserver_request_total", &dry), 3.0);
    let lists = sample(&text, "apiserver_request_total", &POD_LISTS);
    assert!(lists >= 1.0, "{lists}");
    assert_eq!(
        sample(&text, "apiserver_storage_objects", &[("resource", "pods")]),
        3.0
    );
    assert!(
        sample(
            &text,
            "apiserver_storage_objects",
            &[("resource", "clusterroles.rbac.authorization.k8s.io")]
        ) > 10.0
    );
    let count = sample(
        &text,
        "apiserver_request_duration_seconds_count",
        &[("verb", "POST"), ("resource", "pods"), ("dry_run", "")],
    );
    assert_eq!(count, 3.0);
    let inf = sample(
        &text,
        "apiserver_request_duration_seconds_bucket",
        &[
            ("verb", "POST"),
            ("resource", "pods"),
            ("dry_run", ""),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(inf, 3.0);
    sample(
        &text,
        "apiserver_response_sizes_bucket",
        &[("verb", "LIST"), ("le", "1000")],
    );
    sample(
        &text,
        "apiserver_current_inflight_requests",
        &[("request_kind", "mutating")],
    );
    assert!(sample(&text, "process_resident_memory_bytes", &[]) > 0.0);
    sample(&text, "process_start_time_seconds", &[]);
    sample(&text, "process_cpu_seconds_total", &[]);

    // Counters move; kubectl 1.27 reads the same text.
    server.ok(27, &["get", "pods"]);
    server.ok(27, &["delete", "pod", "a"]);
    let text = scrape(&server, 27);
    assert_eq!(
        sample(&text, "apiserver_request_total", &POD_LISTS),
        lists + 1.0
    );
    let deletes = [("verb", "DELETE"), ("resource", "pods"), ("code", "200")];
    assert_eq!(sample(&text, "apiserver_request_total", &deletes), 1.0);
    assert_eq!(
        sample(&text, "apiserver_storage_objects", &[("resource", "pods")]),
        2.0
    );
    if common::on_etcd() {
        let creates = [("operation", "create"), ("type", "pods")];
        let timed = sample(&text, "etcd_request_duration_seconds_count", &creates);
        assert!(timed >= 3.0, "{timed}");
    } else {
        assert!(!text.contains("etcd_request_duration_seconds"));
    }
    check_with_promtool(&server, &text);
}

#[test]
fn watches_are_long_running_until_they_end() {
    let server = Server::start();
    let kubeconfig = server.kubeconfig();
    let mut watch = Command::new(common::kubectl_version(33))
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "get",
            "--raw",
            "/api/v1/namespaces/default/configmaps?watch=true",
        ])
        .env("HOME", server.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let watching = [
        ("verb", "WATCH"),
        ("resource", "configmaps"),
        ("scope", "namespace"),
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&server, 33);
        if try_sample(&text, "apiserver_longrunning_requests", &watching) == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "no watch counted:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&server, 33);
        let ended = sample(&text, "apiserver_longrunning_requests", &watching) == 0.0
            && try_sample(&text, "apiserver_request_total", &watching) == Some(1.0);
        if ended {
            break;
        }
        assert!(Instant::now() < deadline, "the watch did not end:\n{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn only_monitoring_and_admins_read_metrics() {
    let server = Server::start();
    let denied = server.fails(33, &["get", "--raw", "/metrics", "--as=jane"]);
    assert!(
        denied.contains("Forbidden") || denied.contains("forbidden"),
        "{denied}"
    );
    let text = server.ok(
        33,
        &[
            "get",
            "--raw",
            "/metrics",
            "--as=jane",
            "--as-group=system:monitoring",
        ],
    );
    assert!(
        text.contains("# TYPE apiserver_current_inflight_requests gauge"),
        "{text}"
    );
}

/// `promtool check metrics` must parse the text (lint findings are printed, not failures).
fn check_with_promtool(server: &Server, text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: skipping its check");
        return;
    };
    let path = common::write(server.dir.path(), "metrics.txt", text);
    std::io::copy(
        &mut std::fs::File::open(path).unwrap(),
        child.stdin.as_mut().unwrap(),
    )
    .unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let report =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    eprintln!("promtool: {report}");
    assert!(
        !report.contains("error while linting") && matches!(out.status.code(), Some(0 | 3)),
        "promtool could not parse the metrics: {report}"
    );
}
