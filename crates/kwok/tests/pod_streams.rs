//! Simulated pods answer like real ones: `kubectl logs` (and its options) through the real
//! `kwok apiserver --simulate`, configured by the simulation kinds from a config file and from
//! the API, and the same objects driving a separate `kwok` process over HTTPS.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Server;

const NODE_AND_POD: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: default}
spec:
  nodeName: n1
  containers: [{name: app, image: busybox}, {name: side, image: busybox}]
"#;

fn log_line(time: &str, text: &str) -> String {
    format!("{time} stdout F {text}\n")
}

/// A server simulating its nodes, with a ClusterLogs object in its config for every pod.
fn server_with_logs(dir: &std::path::Path) -> (Server, std::path::PathBuf) {
    let log = dir.join("app.log");
    let previous = dir.join("previous.log");
    std::fs::write(
        &log,
        log_line("2024-01-01T00:00:00Z", "one")
            + &log_line("2024-01-01T00:00:01Z", "two")
            + &log_line("2024-01-01T00:00:02Z", "three"),
    )
    .unwrap();
    std::fs::write(
        &previous,
        log_line("2023-12-31T00:00:00Z", "before the restart"),
    )
    .unwrap();
    let config = dir.join("kwok.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterLogs\nmetadata: {{name: all}}\nspec:\n  logs:\n  - containers: [app]\n    logsFile: {}\n    previousLogsFile: {}\n    follow: true\n",
            log.display(),
            previous.display()
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--simulate", "--config", config.to_str().unwrap()]);
    server.ok_stdin(33, &["apply", "-f", "-"], NODE_AND_POD);
    (server, log)
}

#[test]
fn kubectl_logs_reads_the_configured_file_with_its_options() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _) = server_with_logs(dir.path());
    for minor in [27, 33] {
        assert_eq!(
            server.ok(minor, &["logs", "p1", "-c", "app"]),
            "one\ntwo\nthree\n"
        );
        assert_eq!(
            server.ok(minor, &["logs", "p1", "-c", "app", "--tail", "1"]),
            "three\n"
        );
        assert_eq!(
            server.ok(
                minor,
                &["logs", "p1", "-c", "app", "--timestamps", "--tail", "1"]
            ),
            "2024-01-01T00:00:02.000000000Z three\n"
        );
        assert_eq!(
            server.ok(
                minor,
                &[
                    "logs",
                    "p1",
                    "-c",
                    "app",
                    "--since-time",
                    "2024-01-01T00:00:01Z"
                ]
            ),
            "two\nthree\n"
        );
        assert_eq!(
            server.ok(minor, &["logs", "p1", "-c", "app", "--limit-bytes", "5"]),
            "one\nt"
        );
        assert_eq!(
            server.ok(minor, &["logs", "p1", "-c", "app", "--previous"]),
            "before the restart\n"
        );
        // Two containers: the server asks which one, as kube-apiserver does.
        let err = server.fails(
            minor,
            &["get", "--raw", "/api/v1/namespaces/default/pods/p1/log"],
        );
        assert!(
            err.contains(
                "a container name must be specified for pod p1, choose one of: [app side]"
            ),
            "{err}"
        );
        // No entry for this container.
        let err = server.fails(minor, &["logs", "p1", "-c", "side"]);
        assert!(
            err.contains("no logs found for container \"side\""),
            "{err}"
        );
        let err = server.fails(
            minor,
            &[
                "get",
                "--raw",
                "/api/v1/namespaces/default/pods/p1/log?container=app&tailLines=-2",
            ],
        );
        assert!(err.contains("must be greater than or equal to 0"), "{err}");
    }
}

fn spawn_kubectl(server: &Server, minor: u32, args: &[&str]) -> Child {
    Command::new(common::kubectl_version(minor))
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(server.dir.path().join(format!("cache-{minor}")))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn following_logs_sees_appended_lines_and_ends_when_the_pod_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (server, log) = server_with_logs(dir.path());
    let mut last_line = "three\n".to_string();
    for minor in [27, 33] {
        let mut child = spawn_kubectl(
            &server,
            minor,
            &["logs", "-f", "p1", "-c", "app", "--tail", "1"],
        );
        let out = common::collect_stdout(&mut child);
        let tail_arrived = || out.lock().unwrap().contains(&last_line);
        let until = Instant::now() + Duration::from_secs(20);
        while !tail_arrived() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !tail_arrived() {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "kubectl 1.{minor} logs -f printed {:?}, stderr {}",
                out.lock().unwrap(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(log_line("2024-01-01T00:00:03Z", &format!("appended for {minor}")).as_bytes())
            .unwrap();
        wait_for("the appended line", Duration::from_secs(20), || {
            out.lock()
                .unwrap()
                .contains(&format!("appended for {minor}\n"))
        });
        assert!(child.try_wait().unwrap().is_none(), "still following");
        last_line = format!("appended for {minor}\n");
        if minor == 33 {
            server.ok(33, &["delete", "pod", "p1", "--grace-period=0", "--force"]);
            wait_for("kubectl to end", Duration::from_secs(20), || {
                child.try_wait().unwrap().is_some()
            });
        } else {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

#[test]
fn logs_objects_in_the_api_configure_pods_and_kwok_serves_them_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    // The API server alone: a separate kwok process simulates the nodes and serves their
    // kubelet endpoints, as in the binary runtime.
    let server = Server::start();
    let port = common::free_port();
    let mut kwok = common::start_kwok_process(&server, port, &dir.path().join("kwok.log"));
    let log = dir.path().join("api.log");
    std::fs::write(
        &log,
        log_line("2024-01-01T00:00:00Z", "from an object in the API"),
    )
    .unwrap();
    server.ok_stdin(33, &["apply", "-f", "-"], NODE_AND_POD);
    let object = format!(
        "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Logs\nmetadata: {{name: p1, namespace: default}}\nspec:\n  logs:\n  - logsFile: {}\n",
        log.display()
    );
    server.ok_stdin(33, &["apply", "-f", "-"], &object);
    wait_for(
        "the node to advertise its kubelet",
        Duration::from_secs(30),
        || {
            server.ok(
                33,
                &[
                    "get",
                    "node",
                    "n1",
                    "-o",
                    "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
                ],
            ) == port.to_string()
        },
    );
    let mut last = String::new();
    wait_for("the logs", Duration::from_secs(30), || {
        let out = server.kubectl(27, &["logs", "p1", "-c", "side"]);
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success() && last == "from an object in the API\n"
    });
    // A bad object is refused by the CRD's schema.
    let bad = "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: ClusterExec\nmetadata: {name: bad}\nspec:\n  execs:\n  - local: {envs: [{value: no-name}]}\n";
    let out = server.kubectl_stdin(33, &["apply", "-f", "-"], Some(bad));
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("name: Required value"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    kwok.kill().unwrap();
    kwok.wait().unwrap();
}

/// The streams benchmark runs end to end on a small scale: every row is measured.
#[test]
fn the_streams_benchmark_measures_logs_and_port_forwards() {
    let out = Command::new(common::kwok_bin())
        .args(["bench-streams", "--streams", "3", "--forwards", "3"])
        .args(["--pods", "2", "--appends", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "request first byte",
        "appended line",
        "conns: open",
        "conns: first byte",
    ] {
        let line = stdout.lines().find(|l| l.contains(row));
        assert!(line.is_some_and(|l| l.contains("p99")), "{row}: {stdout}");
    }
    assert!(
        stdout.contains("   6  p50"),
        "3 streams × 2 appends: {stdout}"
    );
}
