//! Add-ons end to end: a real prometheus beside embedded and binary clusters scraping every
//! component (and the kwok Metric endpoints), jaeger's process handling with a stand-in
//! program, and the refusals of add-ons the host runtimes cannot run. Tests that need
//! prometheus install Debian's package when it is missing and apt is usable, and otherwise print
//! why they skip.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::{TestEnv, kwok_binary, wait_dead};

fn new_env() -> TestEnv {
    kwok_binary();
    TestEnv::new()
}

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// prometheus on PATH (installed with apt-get when missing and possible), or `None` after
/// printing why the test skips.
fn prometheus_or_skip(test: &str) -> Option<PathBuf> {
    if let Some(found) = on_path("prometheus") {
        return Some(found);
    }
    let installed = on_path("apt-get").is_some_and(|apt| {
        Command::new(apt)
            .args([
                "-o",
                "DPkg::Lock::Timeout=120",
                "install",
                "-y",
                "--no-install-recommends",
                "prometheus",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    });
    let found = installed.then(|| on_path("prometheus")).flatten();
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: prometheus is not on PATH and `apt-get install prometheus` is not possible here"
        );
    }
    found
}

fn etcd_or_skip(test: &str) -> Option<PathBuf> {
    let found = on_path("etcd");
    if found.is_none() {
        eprintln!(
            "SKIPPED {test}: etcd is not on PATH (install etcd-server, as scripts/test.sh does)"
        );
    }
    found
}

/// `GET path` on `127.0.0.1:port` over HTTP/1.0 (no chunked bodies): status and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut socket =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2)).ok()?;
    socket.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        socket,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    socket.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

fn get_json(port: u16, path: &str) -> Value {
    let (status, body) = http_get(port, path).unwrap_or_else(|| panic!("GET {path} failed"));
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn options(env: &TestEnv, cluster: &str) -> Value {
    let text = std::fs::read_to_string(env.cluster_dir(cluster).join("kwok.yaml")).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    docs[0]["options"].clone()
}

fn prometheus_port(env: &TestEnv, cluster: &str) -> u16 {
    options(env, cluster)["prometheusPort"].as_u64().unwrap() as u16
}

/// Polls prometheus until every job in `jobs` has a target and every active target is up
/// (two minutes at most: the first scrape comes within one 15 s interval, discovery within 10 s).
fn wait_targets_up(port: u16, jobs: &[&str]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let doc = get_json(port, "/api/v1/targets");
        let targets = doc["data"]["activeTargets"].as_array().unwrap().clone();
        let has_job = |job: &str| targets.iter().any(|t| t["labels"]["job"] == job);
        let all_up = targets.iter().all(|t| t["health"] == "up");
        if all_up && jobs.iter().all(|j| has_job(j)) {
            return targets;
        }
        if Instant::now() > deadline {
            panic!("targets not all up for jobs {jobs:?}: {targets:#?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `up` for every target, as `(job, value)`.
fn query_up(port: u16) -> Vec<(String, String)> {
    let doc = get_json(port, "/api/v1/query?query=up");
    assert_eq!(doc["status"], "success", "{doc}");
    doc["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["job"].as_str().unwrap().to_string(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The STATUS column of `component` in `get components -o wide`.
fn status_of(env: &TestEnv, cluster: &str, component: &str) -> String {
    let out = env
        .kwokctl(&["--name", cluster, "get", "components", "-o", "wide"])
        .success()
        .stdout;
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.first() == Some(&component))
        .and_then(|cols| cols.get(1).map(|s| s.to_string()))
        .unwrap_or_else(|| panic!("{component} missing from:\n{out}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn refused(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1)).is_err()
}

#[test]
fn enable_prometheus_scrapes_the_embedded_cluster_and_its_metric_endpoints() {
    let test = "enable_prometheus_scrapes_the_embedded_cluster_and_its_metric_endpoints";
    let Some(_) = prometheus_or_skip(test) else {
        return;
    };
    let env = new_env();
    env.kwokctl(&[
        "create",
        "cluster",
        "--enable",
        "metrics-server",
        "--enable",
        "prometheus",
    ])
    .success();
    assert_eq!(status_of(&env, "kwok", "prometheus"), "Ready");
    let port = prometheus_port(&env, "kwok");
    assert_ne!(
        options(&env, "kwok")["kwokControllerPort"].as_u64(),
        None,
        "prometheus gives the embedded cluster a simulator port"
    );
    env.kwokctl(&["scale", "node", "--replicas", "1"]).success();

    let targets = wait_targets_up(
        port,
        &[
            "kube-apiserver",
            "kwok-controller",
            "prometheus",
            "kwok-controller-metrics-discovery",
        ],
    );
    let metric_target = targets
        .iter()
        .find(|t| t["labels"]["job"] == "kwok-controller-metrics-discovery")
        .unwrap();
    assert!(
        metric_target["scrapeUrl"]
            .as_str()
            .unwrap()
            .ends_with("/metrics/nodes/node-000000/metrics/resource"),
        "{metric_target:#}"
    );
    assert_eq!(metric_target["labels"]["node"], "node-000000");
    assert!(
        targets.iter().any(|t| t["scrapeUrl"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")),
        "the API server is scraped over HTTPS"
    );
    let up = query_up(port);
    assert!(up.len() >= 4, "{up:?}");
    assert!(up.iter().all(|(_, v)| v == "1"), "{up:?}");
    let logs = env.kwokctl(&["logs", "prometheus"]).success().stdout;
    assert!(
        logs.contains("Server is ready to receive web requests"),
        "{logs}"
    );

    let pid = env.pid("kwok", "prometheus").unwrap();
    env.kwokctl(&["stop", "cluster"]).success();
    assert!(
        wait_dead(pid, Duration::from_secs(10)),
        "stop ends prometheus"
    );
    assert!(refused(port));
    assert_eq!(status_of(&env, "kwok", "prometheus"), "Stopped");
    env.kwokctl(&["start", "cluster"]).success();
    assert_eq!(status_of(&env, "kwok", "prometheus"), "Ready");
    let pid = env.pid("kwok", "prometheus").unwrap();
    env.kwokctl(&["delete", "cluster"]).success();
    assert!(
        wait_dead(pid, Duration::from_secs(10)),
        "delete ends prometheus"
    );
}

#[test]
fn prometheus_port_enables_prometheus_on_the_binary_runtime() {
    let test = "prometheus_port_enables_prometheus_on_the_binary_runtime";
    let (Some(_), Some(_)) = (prometheus_or_skip(test), etcd_or_skip(test)) else {
        return;
    };
    let env = new_env();
    let port = free_port();
    env.kwokctl(&[
        "create",
        "cluster",
        "--runtime",
        "binary",
        "--prometheus-port",
        &port.to_string(),
    ])
    .success();
    assert_eq!(prometheus_port(&env, "kwok"), port);
    assert_eq!(options(&env, "kwok")["enable"][0], "prometheus");
    assert_eq!(status_of(&env, "kwok", "prometheus"), "Ready");
    wait_targets_up(
        port,
        &["etcd", "kube-apiserver", "kwok-controller", "prometheus"],
    );
    let up = query_up(port);
    for job in ["etcd", "kube-apiserver", "kwok-controller", "prometheus"] {
        assert!(up.contains(&(job.to_string(), "1".to_string())), "{up:?}");
    }
    let pid = env.pid("kwok", "prometheus").unwrap();
    env.kwokctl(&["stop", "cluster"]).success();
    assert!(wait_dead(pid, Duration::from_secs(10)));
    assert_eq!(status_of(&env, "kwok", "prometheus"), "Stopped");
}

#[test]
fn image_only_addons_are_refused_naming_what_they_need() {
    let env = new_env();
    for addon in ["kueue", "jobset", "node-readiness-controller"] {
        let run = env
            .kwokctl(&["create", "cluster", "--enable", addon])
            .failure();
        assert!(
            run.stderr.contains(&format!(
                "component \"{addon}\" cannot be enabled on the embedded runtime"
            )),
            "{run:#?}"
        );
        assert!(run.stderr.contains("needs a container runtime"), "{run:#?}");
    }
    assert!(!env.cluster_dir("kwok").exists(), "nothing is created");
}

#[test]
fn missing_addon_programs_are_named() {
    let mut env = new_env();
    env.set_env("KWOK_PROMETHEUS_BINARY", "/nonexistent/prometheus");
    let run = env
        .kwokctl(&["create", "cluster", "--enable", "prometheus"])
        .failure();
    assert!(
        run.stderr
            .contains("binary /nonexistent/prometheus of prometheus is not an executable file"),
        "{run:#?}"
    );
    if on_path("jaeger-all-in-one").is_none() && on_path("jaeger").is_none() {
        let run = env
            .kwokctl(&["create", "cluster", "--enable", "jaeger"])
            .failure();
        assert!(
            run.stderr.contains("jaeger binary not found: pass --jaeger-binary, set KWOK_JAEGER_BINARY, or put jaeger-all-in-one or jaeger on PATH"),
            "{run:#?}"
        );
    }
    assert!(!env.cluster_dir("kwok").exists(), "nothing is created");
}

/// A stand-in `jaeger-all-in-one` that serves HTTP on the query port it is given.
fn fake_jaeger(env: &TestEnv) {
    env.fake_program(
        "jaeger-all-in-one",
        r#"for a in "$@"; do case "$a" in --query.http-server.host-port=*) hp="${a#*=}";; esac; done
exec python3 -m http.server --bind 127.0.0.1 "${hp##*:}""#,
    );
}

#[test]
fn jaeger_port_runs_jaeger_beside_the_cluster() {
    if on_path("python3").is_none() {
        eprintln!("SKIPPED jaeger_port_runs_jaeger_beside_the_cluster: python3 is not on PATH");
        return;
    }
    let env = new_env();
    fake_jaeger(&env);
    let port = free_port();
    env.kwokctl(&["create", "cluster", "--jaeger-port", &port.to_string()])
        .success();
    assert_eq!(status_of(&env, "kwok", "jaeger"), "Ready");
    let (status, _) = http_get(port, "/").expect("jaeger answers");
    assert_eq!(status, 200);
    let config = std::fs::read_to_string(env.cluster_dir("kwok").join("kwok.yaml")).unwrap();
    assert!(
        config.contains(&format!("--query.http-server.host-port=127.0.0.1:{port}")),
        "{config}"
    );
    assert!(
        config.contains("--collector.otlp.grpc.host-port=127.0.0.1:"),
        "{config}"
    );
    let pid = env.pid("kwok", "jaeger").unwrap();
    env.kwokctl(&["stop", "cluster"]).success();
    assert!(wait_dead(pid, Duration::from_secs(10)));
    assert_eq!(status_of(&env, "kwok", "jaeger"), "Stopped");
}

#[test]
fn dry_run_prints_the_prometheus_config_and_command() {
    let env = new_env();
    let run = env
        .kwokctl(&[
            "--dry-run",
            "create",
            "cluster",
            "--enable",
            "prometheus",
            "--prometheus-port",
            "19999",
        ])
        .success();
    let dir = env.cluster_dir("kwok");
    let file = dir.join("prometheus.yaml");
    for expected in [
        format!("cat <<EOF >{}", file.display()),
        "job_name: kube-apiserver".to_string(),
        "job_name: kwok-controller-metrics-discovery".to_string(),
        format!("--config.file={}", file.display()),
        "--web.listen-address=127.0.0.1:19999".to_string(),
        format!(
            "--storage.tsdb.path={}",
            Path::new(&dir).join("prometheus").display()
        ),
        format!("echo $! >{}", dir.join("pids/prometheus.pid").display()),
    ] {
        assert!(run.stdout.contains(&expected), "{expected}\n{}", run.stdout);
    }
    assert!(!dir.exists(), "a dry run creates nothing");
}
