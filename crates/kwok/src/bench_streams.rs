//! `kwok bench-streams`: measures `kubectl logs -f` and `kubectl port-forward` under load.
//!
//! One process serves the cluster over HTTPS with the simulator and its kubelet surface
//! in-process, as `kwok apiserver --simulate` runs them. A ClusterLogs object points every pod's
//! `app` container at a log file the benchmark appends to, and a ClusterPortForward object
//! points port 80 at an HTTP server the benchmark runs. Through the API server, as kubectl
//! does, the benchmark then holds many `pods/log?follow=true` requests open and times each
//! appended line to each stream, and opens many port-forward connections and times each
//! request to the first byte of its answer.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use client::{Cluster, LocalCluster};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench::{HttpsCluster, https_cluster};

/// The latency every figure is held to.
const TARGET: Duration = Duration::from_millis(50);

#[derive(clap::Args)]
pub struct BenchStreamsArgs {
    /// Concurrent `logs -f` streams.
    #[arg(long, default_value_t = 100)]
    streams: usize,
    /// Concurrent port-forward connections.
    #[arg(long, default_value_t = 100)]
    forwards: usize,
    /// Pods the streams and connections are spread over.
    #[arg(long, default_value_t = 10)]
    pods: usize,
    /// Lines appended to the log file, one at a time; each is timed on every stream.
    #[arg(long, default_value_t = 5)]
    appends: usize,
}

/// Latencies of one measurement, summarised.
struct Figures {
    count: usize,
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Figures {
    fn of(mut samples: Vec<Duration>) -> anyhow::Result<Self> {
        anyhow::ensure!(!samples.is_empty(), "no samples");
        samples.sort();
        let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
        Ok(Figures {
            count: samples.len(),
            p50: at(0.50),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        })
    }

    fn print(&self, what: &str, target: Option<Duration>) {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let verdict = match target {
            Some(t) if self.p99 < t => format!("target p99 < {} ms: met", t.as_millis()),
            Some(t) => format!("target p99 < {} ms: MISSED", t.as_millis()),
            None => String::new(),
        };
        println!(
            "{what:<38} {:>5}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms  {verdict}",
            self.count,
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        );
    }
}

/// A log line in the CRI format the Logs files use.
fn cri_line(text: &str) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    format!("{now} stdout F {text}\n")
}

/// An HTTP server answering every request on a connection with a short body.
async fn http_target() -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            tokio::spawn(answer_requests(conn));
        }
    });
    Ok(port)
}

async fn answer_requests(mut conn: tokio::net::TcpStream) {
    let mut buf = [0u8; 4096];
    let mut request = Vec::new();
    loop {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
        while let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            request.drain(..end + 4);
            let body = "hello from the pod";
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if conn.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

fn simulation_config(log: &Path, http_port: u16) -> String {
    format!(
        "apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterLogs
metadata: {{name: bench}}
spec:
  logs:
  - containers: [app]
    logsFile: {log}
    follow: true
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata: {{name: bench}}
spec:
  forwards:
  - ports: [80]
    target: {{port: {http_port}, address: 127.0.0.1}}
",
        log = log.display()
    )
}

/// The served cluster and the simulator behind it, kept for as long as the benchmark runs.
struct SimulatedCluster {
    https: HttpsCluster,
    _simulator: Arc<kwok::Simulator>,
}

/// The API server with the simulator and its kubelet in-process, served over HTTPS.
async fn simulated_cluster(config: &str) -> anyhow::Result<SimulatedCluster> {
    let file = kwok::config::read_config(config).map_err(|e| anyhow::anyhow!("config: {e}"))?;
    let store = store::LocalStore::in_memory();
    let server = apiserver::ApiServer::new(store, "127.0.0.1:0".into()).await?;
    let local: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    kwok::simkinds::crds::install(&*local, kwok::simkinds::crds::simulation_kinds())
        .await
        .map_err(|e| anyhow::anyhow!("install the simulation kinds: {e}"))?;
    let (mut opts, _) = crate::controller::embedded_options(None, &[], None)?;
    opts.simulations = file.simulations;
    let sim = kwok::Simulator::start(local.clone(), opts)
        .await
        .map_err(|e| anyhow::anyhow!("start the simulator: {e}"))?;
    let kubelet = kwok::kubelet::Kubelet::start(local, &sim);
    server.set_kubelet_connector(Arc::new(kwok::kubelet::InProcess::new(&kubelet)));
    Ok(SimulatedCluster {
        https: https_cluster(server, tempfile::tempdir()?).await?,
        _simulator: sim,
    })
}

fn pod_name(i: usize) -> String {
    format!("stream-{i}")
}

/// One node and `pods` pods bound to it, waited for until all are Running.
async fn create_pods(client: &kube::Client, pods: usize) -> anyhow::Result<()> {
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": "bench-node", "labels": {"type": "kwok"}},
    }))?;
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .context("create the node")?;
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    for i in 0..pods {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": pod_name(i)},
            "spec": {"nodeName": "bench-node", "containers": [{"name": "app", "image": "busybox"}]},
        }))?;
        api.create(&PostParams::default(), &pod)
            .await
            .context("create a pod")?;
    }
    wait_running(&api, pods).await
}

async fn wait_running(api: &Api<Pod>, pods: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = api.list(&ListParams::default()).await?;
        let running = list
            .items
            .iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
            .count();
        if running >= pods {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{running}/{pods} pods Running");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What one followed stream saw: its request's first byte, and when each marker arrived.
struct StreamTimes {
    first_byte: Duration,
    arrivals: Vec<(String, Instant)>,
}

/// Opens a followed log request and returns once its first byte is in, with the rest of the
/// stream left to `follow_markers`.
async fn open_log_stream(
    client: &kube::Client,
    pod: &str,
) -> anyhow::Result<(Duration, kube::client::Body)> {
    let path = format!("/api/v1/namespaces/default/pods/{pod}/log?container=app&follow=true");
    let request = http::Request::builder()
        .uri(path)
        .body(kube::client::Body::empty())?;
    let sent = Instant::now();
    let response = client.send(request).await?;
    anyhow::ensure!(
        response.status() == 200,
        "logs returned {}",
        response.status()
    );
    let mut body = response.into_body();
    loop {
        let frame = http_body_util::BodyExt::frame(&mut body)
            .await
            .context("the log stream ended before its first byte")??;
        if frame.data_ref().is_some_and(|d| !d.is_empty()) {
            return Ok((sent.elapsed(), body));
        }
    }
}

/// Reads the stream until `markers` marker lines have arrived, noting when each did.
async fn follow_markers(
    mut body: kube::client::Body,
    markers: usize,
) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut arrivals = Vec::new();
    let mut pending = Vec::new();
    while arrivals.len() < markers {
        let frame = http_body_util::BodyExt::frame(&mut body)
            .await
            .context("the log stream ended")??;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let now = Instant::now();
        pending.extend_from_slice(&data);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line).trim().to_string();
            if text.starts_with("mark-") {
                arrivals.push((text, now));
            }
        }
    }
    Ok(arrivals)
}

async fn log_stream(
    client: kube::Client,
    pod: String,
    markers: usize,
    opened: tokio::sync::mpsc::Sender<()>,
) -> anyhow::Result<StreamTimes> {
    let (first_byte, body) = open_log_stream(&client, &pod).await?;
    let _ = opened.send(()).await;
    let arrivals = follow_markers(body, markers).await?;
    Ok(StreamTimes {
        first_byte,
        arrivals,
    })
}

/// Appends a marker line, returning when it was written.
fn append_marker(log: &Path, marker: &str) -> anyhow::Result<Instant> {
    let mut file = std::fs::OpenOptions::new().append(true).open(log)?;
    let line = cri_line(marker);
    let at = Instant::now();
    file.write_all(line.as_bytes())?;
    Ok(at)
}

/// Holds `streams` followed log requests open, appends `appends` lines and times each on each.
async fn measure_logs(
    client: &kube::Client,
    log: &Path,
    args: &BenchStreamsArgs,
) -> anyhow::Result<(Figures, Figures)> {
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel(args.streams.max(1));
    let tasks: Vec<_> = (0..args.streams)
        .map(|i| {
            let pod = pod_name(i % args.pods.max(1));
            tokio::spawn(log_stream(
                client.clone(),
                pod,
                args.appends,
                opened_tx.clone(),
            ))
        })
        .collect();
    drop(opened_tx);
    for _ in 0..args.streams {
        opened_rx
            .recv()
            .await
            .context("a log stream failed to open")?;
    }
    let appended = append_markers(log, args.appends).await?;
    collect_log_figures(tasks, &appended).await
}

async fn append_markers(log: &Path, appends: usize) -> anyhow::Result<Vec<(String, Instant)>> {
    let mut appended = Vec::new();
    for i in 0..appends {
        // Spaced off any polling period, so the appends land at different points of it.
        tokio::time::sleep(Duration::from_millis(237)).await;
        let marker = format!("mark-{i}");
        let at = append_marker(log, &marker)?;
        appended.push((marker, at));
    }
    Ok(appended)
}

async fn collect_log_figures(
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<StreamTimes>>>,
    appended: &[(String, Instant)],
) -> anyhow::Result<(Figures, Figures)> {
    let mut first_bytes = Vec::new();
    let mut deliveries = Vec::new();
    for task in tasks {
        let times = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .context("a log stream did not see every appended line within 60 s")???;
        first_bytes.push(times.first_byte);
        for (marker, arrived) in times.arrivals {
            if let Some((_, at)) = appended.iter().find(|(m, _)| *m == marker) {
                deliveries.push(arrived.saturating_duration_since(*at));
            }
        }
    }
    Ok((Figures::of(first_bytes)?, Figures::of(deliveries)?))
}

/// One port-forward connection: how long it took to open, and from its request to the first
/// byte of the answer.
struct ForwardTimes {
    open: Duration,
    first_byte: Duration,
}

async fn open_forward(
    pods: Api<Pod>,
    pod: String,
) -> anyhow::Result<(Duration, kube::api::Portforwarder)> {
    let started = Instant::now();
    let forwarder = pods
        .portforward(&pod, &[80])
        .await
        .context("open a port-forward")?;
    Ok((started.elapsed(), forwarder))
}

async fn first_answer_byte(forwarder: &mut kube::api::Portforwarder) -> anyhow::Result<Duration> {
    let mut stream = forwarder.take_stream(80).context("the port's stream")?;
    let sent = Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: pod\r\n\r\n")
        .await?;
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut byte))
        .await
        .context("no answer within 30 s")??;
    anyhow::ensure!(n == 1, "the connection closed without an answer");
    Ok(sent.elapsed())
}

/// Opens `forwards` connections at once, then has each send a request at once.
async fn measure_forwards(
    client: &kube::Client,
    args: &BenchStreamsArgs,
) -> anyhow::Result<(Figures, Figures)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let opening: Vec<_> = (0..args.forwards)
        .map(|i| tokio::spawn(open_forward(pods.clone(), pod_name(i % args.pods.max(1)))))
        .collect();
    let mut opened = Vec::new();
    for task in opening {
        opened.push(task.await??);
    }
    let requests: Vec<_> = opened
        .into_iter()
        .map(|(open, mut forwarder)| {
            tokio::spawn(async move {
                let first_byte = first_answer_byte(&mut forwarder).await;
                forwarder.abort();
                first_byte.map(|first_byte| ForwardTimes { open, first_byte })
            })
        })
        .collect();
    let mut times = Vec::new();
    for task in requests {
        times.push(task.await??);
    }
    Ok((
        Figures::of(times.iter().map(|t| t.open).collect())?,
        Figures::of(times.iter().map(|t| t.first_byte).collect())?,
    ))
}

fn prepare_log(dir: &Path) -> anyhow::Result<PathBuf> {
    let log = dir.join("app.log");
    std::fs::write(&log, cri_line("started"))?;
    Ok(log)
}

pub async fn run(args: BenchStreamsArgs) -> anyhow::Result<()> {
    let profile = if cfg!(debug_assertions) {
        "debug build (figures are much lower than release)"
    } else {
        "release build"
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "kwok bench-streams: {profile}, {cores} cores, {} pods",
        args.pods
    );
    let dir = tempfile::tempdir()?;
    let log = prepare_log(dir.path())?;
    let http_port = http_target().await?;
    let cluster = simulated_cluster(&simulation_config(&log, http_port)).await?;
    let client = cluster.https.client.clone();
    create_pods(&client, args.pods).await?;

    let (request, delivery) = measure_logs(&client, &log, &args).await?;
    let streams = args.streams;
    request.print(
        &format!("logs -f, {streams} streams: request first byte"),
        None,
    );
    delivery.print(
        &format!("logs -f, {streams} streams: appended line"),
        Some(TARGET),
    );
    let (open, answer) = measure_forwards(&client, &args).await?;
    let forwards = args.forwards;
    open.print(&format!("port-forward, {forwards} conns: open"), None);
    answer.print(
        &format!("port-forward, {forwards} conns: first byte"),
        Some(TARGET),
    );
    Ok(())
}
