//! `kwok bench-metrics`: measures the resource metrics API and the Metric endpoints of a
//! simulated cluster, as users meet them.
//!
//! A `kwok apiserver --simulate --enable-metrics` process (in-memory writes, this binary) gets
//! `--nodes` nodes and `--pods` pods bound to them; once every pod has metrics, the benchmark
//! times `kubectl top pod -A` (the whole command, as a user waits for it), one node's
//! `metrics-resource` endpoint through `nodes/proxy`, and the PodMetrics list it serves.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct BenchMetricsArgs {
    /// Nodes to create.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Pods to create, spread over the nodes.
    #[arg(long, default_value_t = 10_000)]
    pods: usize,
    /// kubectl to time (default: kubectl on PATH).
    #[arg(long, default_value = "kubectl")]
    kubectl: String,
    /// Timed runs of each measurement.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Concurrent creates.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

/// The cluster process, stopped when dropped.
struct Cluster {
    child: Child,
    dir: tempfile::TempDir,
    client: kube::Client,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_cluster() -> anyhow::Result<Cluster> {
    let dir = tempfile::tempdir()?;
    let port = crate::bench::free_port()?;
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("apiserver.log"))?;
    let child = Command::new(std::env::current_exe()?)
        .args(["apiserver", "--data-dir"])
        .arg(&data)
        .args(["--secure-port", &port.to_string(), "--storage-sync", "none"])
        .args([
            "--simulate",
            "--enable-metrics",
            "--metrics-resolution",
            "5s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("start kwok apiserver")?;
    let pki = data.join("pki");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pki.join("admin.key").exists() {
        anyhow::ensure!(Instant::now() < deadline, "the cluster did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = crate::bench::admin_client(dir.path(), port, &pki::PkiPaths::new(&pki)).await?;
    let cluster = Cluster { child, dir, client };
    while get(&cluster.client, "/version").await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the cluster did not answer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(cluster)
}

async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<bytes::Bytes> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))?;
    let resp = client.send(req).await?;
    let status = resp.status();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{method} {path}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

async fn get(client: &kube::Client, path: &str) -> anyhow::Result<bytes::Bytes> {
    send(client, "GET", path, Vec::new()).await
}

fn node(i: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("node-{i:06}")},
        "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
                   "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}})
}

fn pod(i: usize, nodes: usize) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("pod-{i:06}"), "namespace": "default", "labels": {"app": "bench"},
            "annotations": {"kwok.x-k8s.io/usage-cpu": format!("{}m", 10 + i % 90), "kwok.x-k8s.io/usage-memory": "64Mi"}},
        "spec": {"nodeName": format!("node-{:06}", i % nodes.max(1)),
            "containers": [{"name": "app", "image": "registry.example.com/app:1"}]}})
}

async fn create_all(
    client: &kube::Client,
    path: &str,
    objects: Vec<Value>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let results: Vec<anyhow::Result<bytes::Bytes>> = futures::stream::iter(objects)
        .map(|o| async move { send(client, "POST", path, serde_json::to_vec(&o)?).await })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    results.into_iter().try_for_each(|r| r.map(drop))
}

/// Waits until the metrics API reports every pod.
async fn wait_for_metrics(client: &kube::Client, pods: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let body = get(client, "/apis/metrics.k8s.io/v1beta1/pods").await?;
        let list: Value = serde_json::from_slice(&body)?;
        let have = list["items"].as_array().map_or(0, Vec::len);
        if have >= pods {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(900),
            "only {have} of {pods} pods have metrics"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Times `kubectl top pod -A` end to end; returns the times and the rows printed.
fn time_kubectl_top(
    cluster: &Cluster,
    kubectl: &str,
    runs: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let cache = cluster.dir.path().join("kubectl-cache");
    let mut times = Vec::new();
    let mut rows = 0;
    for run in 0..=runs {
        let started = Instant::now();
        let out = Command::new(kubectl)
            .arg("--kubeconfig")
            .arg(cluster.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(&cache)
            .args(["top", "pod", "-A"])
            .output()
            .with_context(|| format!("run {kubectl}"))?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            out.status.success(),
            "kubectl top pod -A: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        rows = out
            .stdout
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            .saturating_sub(1);
        // The first run fills kubectl's discovery cache; it is not counted.
        if run > 0 {
            times.push(elapsed);
        }
    }
    Ok((times, rows))
}

async fn time_requests(
    client: &kube::Client,
    path: &str,
    runs: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        size = get(client, path).await?.len();
        times.push(started.elapsed());
    }
    Ok((times, size))
}

pub async fn run(args: BenchMetricsArgs) -> anyhow::Result<()> {
    let cluster = start_cluster().await?;
    let started = Instant::now();
    create_all(
        &cluster.client,
        "/api/v1/nodes",
        (0..args.nodes).map(node).collect(),
        args.concurrency,
    )
    .await?;
    let pods = (0..args.pods).map(|i| pod(i, args.nodes)).collect();
    create_all(
        &cluster.client,
        "/api/v1/namespaces/default/pods",
        pods,
        args.concurrency,
    )
    .await?;
    println!(
        "created {} nodes and {} pods in {:.1} s",
        args.nodes,
        args.pods,
        started.elapsed().as_secs_f64()
    );
    let waited = wait_for_metrics(&cluster.client, args.pods).await?;
    println!("every pod had metrics {:.1} s later", waited.as_secs_f64());

    let (top, rows) = time_kubectl_top(&cluster, &args.kubectl, args.runs)?;
    println!(
        "kubectl top pod -A ({rows} rows): median {}, best {} (target < 1 s)",
        ms(median(top.clone())),
        ms(*top.iter().min().unwrap_or(&Duration::ZERO))
    );

    let list = "/apis/metrics.k8s.io/v1beta1/pods";
    let (times, size) = time_requests(&cluster.client, list, args.runs).await?;
    println!(
        "GET {list} ({} KiB): median {}",
        size / 1024,
        ms(median(times))
    );

    let endpoint = "/api/v1/nodes/node-000000/proxy/metrics/nodes/node-000000/metrics/resource";
    let (times, size) = time_requests(&cluster.client, endpoint, args.runs.max(20)).await?;
    println!(
        "GET {endpoint} ({size} bytes, {} pods): median {} (target < 20 ms)",
        args.pods / args.nodes.max(1),
        ms(median(times))
    );
    Ok(())
}
