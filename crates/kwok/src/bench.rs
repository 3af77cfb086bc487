//! `kwok bench`: measures the API server and prints the figures, next to a local etcd when one
//! is installed.
//!
//! Figures: durable pod creates per second in-process (with the log's records per sync) and over
//! HTTPS (1 and 64 concurrent clients), the time to list 100,000 pods, watch event latency with
//! 100 watchers, and memory per stored pod; and etcd's put rate for the same values and
//! concurrency, the same creates on the etcd backend, and reads through one and two API server
//! replicas sharing that etcd. `--creates-only` runs just the in-process create rows.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use apiserver::rest::{ListOptions, WriteOptions};
use apiserver::{ApiServer, resources};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use store::{EtcdOptions, EtcdStore, LocalStore, Options, SyncMode};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Pods created per create measurement.
    #[arg(long, default_value_t = 20_000)]
    creates: usize,
    /// Pods stored for the list measurement.
    #[arg(long, default_value_t = 100_000)]
    list_pods: usize,
    /// Concurrent watchers for the latency measurement.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Pods created while the watchers listen.
    #[arg(long, default_value_t = 2_000)]
    watch_events: usize,
    /// Skip the etcd reference even when `etcd` is installed.
    #[arg(long)]
    skip_etcd: bool,
    /// Run only the etcd section (etcd's own rates, the etcd backend, replicas).
    #[arg(long, conflicts_with = "skip_etcd")]
    etcd_only: bool,
    /// Also measure HTTPS creates with every request audited at Metadata level.
    #[arg(long)]
    audit: bool,
    /// Run only the in-process create rows (durable with 1 and 64 clients, without fsync with
    /// 64), to compare the log's group commit with no sync.
    #[arg(long, conflicts_with = "etcd_only")]
    creates_only: bool,
}

/// A policy that audits every request at Metadata level.
const METADATA_POLICY: &str =
    "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n";

/// HTTPS creates on a server that audits every request at Metadata level to a file.
async fn audited_https_creates(n: usize, concurrency: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let (_store, server) = durable_server(&dir.path().join("store")).await?;
    let policy = dir.path().join("audit-policy.yaml");
    std::fs::write(&policy, METADATA_POLICY)?;
    let log = dir.path().join("audit.log");
    let auditor = apiserver::audit::Auditor::open(&policy, &log.to_string_lossy())?;
    server.set_auditor(auditor.clone());
    let rate = https_creates_on(server, dir, n, concurrency).await?;
    anyhow::ensure!(
        auditor.dropped() == 0,
        "{} audit events dropped",
        auditor.dropped()
    );
    Ok(rate)
}

fn pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"app": "bench", "tier": "backend", "pod-template-hash": "7d4b9c8f5d"},
            "annotations": {"kwok.x-k8s.io/bench": "true"},
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "registry.example.com/team/app:1.2.3",
                "ports": [{"containerPort": 8080, "name": "http"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
                "env": [{"name": "MODE", "value": "bench"}],
            }],
            "nodeSelector": {"type": "kwok"},
            "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}],
        },
    })
}

fn rate(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

async fn durable_server(dir: &Path) -> anyhow::Result<(Arc<LocalStore>, Arc<ApiServer>)> {
    server_with(dir, SyncMode::Always).await
}

async fn server_with(
    dir: &Path,
    sync: SyncMode,
) -> anyhow::Result<(Arc<LocalStore>, Arc<ApiServer>)> {
    let store = LocalStore::open(Options {
        data_dir: Some(dir.to_path_buf()),
        sync,
        ..Options::default()
    })?;
    let server = ApiServer::new(store.clone(), "127.0.0.1:0".into()).await?;
    Ok((store, server))
}

/// The create rate, and the log's records per `fdatasync` during the run (0 without fsync).
async fn in_process_creates(
    n: usize,
    concurrency: usize,
    sync: SyncMode,
) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let (store, server) = server_with(dir.path(), sync).await?;
    let before = store.log_stats().unwrap_or_default();
    let rate = in_process_creates_on(server, n, concurrency).await?;
    let after = store.log_stats().unwrap_or_default();
    let syncs = after.syncs - before.syncs;
    let per_sync = if syncs == 0 {
        0.0
    } else {
        (after.records - before.records) as f64 / syncs as f64
    };
    Ok((rate, per_sync))
}

async fn in_process_creates_on(
    server: Arc<ApiServer>,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let pods = resources::find("", "v1", "pods").expect("built in");
    let bodies: Vec<Value> = (0..n).map(|i| pod(&format!("p-{i}"))).collect();
    let start = Instant::now();
    run_workers(bodies, concurrency, move |body| {
        let server = server.clone();
        async move {
            server
                .registry
                .create(pods, Some("default"), body, &WriteOptions::default())
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!(e.message))
        }
    })
    .await?;
    Ok(rate(n, start.elapsed()))
}

/// Runs `work` on every item with `concurrency` tasks, so the load spreads over the cores.
async fn run_workers<T, F, Fut>(items: Vec<T>, concurrency: usize, work: F) -> anyhow::Result<()>
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let queue = Arc::new(Mutex::new(items));
    let work = Arc::new(work);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (queue, work) = (queue.clone(), work.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let next = queue.lock().unwrap().pop();
                let Some(item) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                work(item).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// A served cluster on a loopback port with a kube-rs client.
pub(crate) struct HttpsCluster {
    _dir: tempfile::TempDir,
    pub(crate) client: kube::Client,
    pub(crate) port: u16,
    pub(crate) pki: pki::PkiPaths,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for HttpsCluster {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A kube-rs client of the cluster admin at https://127.0.0.1:`port`, through a kubeconfig
/// written into `dir`.
pub(crate) async fn admin_client(
    dir: &std::path::Path,
    port: u16,
    pki: &pki::PkiPaths,
) -> anyhow::Result<kube::Client> {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: b\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: {}\nusers:\n- name: b\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: b\n  context: {{cluster: b, user: b}}\ncurrent-context: b\n",
        pki.ca_cert().display(),
        pki.admin_cert().display(),
        pki.admin_key().display()
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, kubeconfig)?;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&path)?,
        &Default::default(),
    )
    .await?;
    Ok(kube::Client::try_from(config)?)
}

pub(crate) async fn https_cluster(
    server: Arc<ApiServer>,
    dir: tempfile::TempDir,
) -> anyhow::Result<HttpsCluster> {
    let pki = pki::ensure(&dir.path().join("pki"), &[])?;
    let tls =
        apiserver::tls_config_from_files(&pki.serving_cert(), &pki.serving_key(), &pki.ca_cert())?;
    let listener = apiserver::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let port = listener.local_addr()?.port();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve_tls(listener, tls, async {
        let _ = rx.await;
    }));
    let client = admin_client(dir.path(), port, &pki).await?;
    Ok(HttpsCluster {
        _dir: dir,
        client,
        port,
        pki,
        shutdown: Some(tx),
    })
}

async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> anyhow::Result<(u16, Bytes)> {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(kube::client::Body::from(body))?;
    let resp = client.send(req).await?;
    let status = resp.status().as_u16();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await?
        .to_bytes();
    Ok((status, body))
}

async fn https_creates(n: usize, concurrency: usize) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let (_store, server) = durable_server(&dir.path().join("store")).await?;
    https_creates_on(server, dir, n, concurrency).await
}

async fn https_creates_on(
    server: Arc<ApiServer>,
    dir: tempfile::TempDir,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let cluster = https_cluster(server, dir).await?;
    let client = cluster.client.clone();
    let bodies: Vec<Vec<u8>> = (0..n)
        .map(|i| serde_json::to_vec(&pod(&format!("p-{i}"))))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    run_workers(bodies, concurrency, move |body| {
        let client = client.clone();
        async move {
            let (status, text) =
                send(&client, "POST", "/api/v1/namespaces/default/pods", body).await?;
            anyhow::ensure!(
                status == 201,
                "create returned {status}: {}",
                String::from_utf8_lossy(&text)
            );
            Ok(())
        }
    })
    .await?;
    Ok(rate(n, start.elapsed()))
}

struct ListFigures {
    in_process: Duration,
    https: Duration,
    bytes: usize,
    per_pod_overhead: f64,
    avg_json: f64,
}

async fn list_and_memory(n: usize) -> anyhow::Result<ListFigures> {
    let rss_before = rss_bytes();
    let store = LocalStore::open(Options {
        sync: SyncMode::None,
        ..Options::default()
    })?;
    let server = ApiServer::new(store.clone(), "127.0.0.1:0".into()).await?;
    let pods = resources::find("", "v1", "pods").expect("built in");
    futures::stream::iter(0..n)
        .map(|i| {
            let server = server.clone();
            async move {
                server
                    .registry
                    .create(
                        pods,
                        Some("default"),
                        pod(&format!("pod-{i:06}")),
                        &WriteOptions::default(),
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!(e.message))
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rss_after = rss_bytes();
    let start = Instant::now();
    let page = server
        .registry
        .list(pods, None, &ListOptions::default())
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let in_process = start.elapsed();
    anyhow::ensure!(
        page.items.len() == n,
        "listed {} of {n} pods",
        page.items.len()
    );
    let json_bytes: usize = page.items.iter().map(Bytes::len).sum();
    let avg_json = json_bytes as f64 / n as f64;
    let per_pod_overhead = (rss_after.saturating_sub(rss_before)) as f64 / n as f64 - avg_json;
    drop(page);
    let cluster = https_cluster(server, tempfile::tempdir()?).await?;
    // Warm the connection, then time one full list.
    send(&cluster.client, "GET", "/version", vec![]).await?;
    let start = Instant::now();
    let (status, body) = send(&cluster.client, "GET", "/api/v1/pods", vec![]).await?;
    let https = start.elapsed();
    anyhow::ensure!(status == 200, "list returned {status}");
    Ok(ListFigures {
        in_process,
        https,
        bytes: body.len(),
        per_pod_overhead,
        avg_json,
    })
}

async fn watch_latency(
    watchers: usize,
    events: usize,
) -> anyhow::Result<(Duration, Duration, usize)> {
    let dir = tempfile::tempdir()?;
    let (_store, server) = durable_server(&dir.path().join("store")).await?;
    let cluster = https_cluster(server, dir).await?;
    let client = cluster.client.clone();
    let (_, ns) = send(&client, "GET", "/api/v1/namespaces/default", vec![]).await?;
    let ns: Value = serde_json::from_slice(&ns)?;
    let rv = ns["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("1")
        .to_string();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let path = format!(
            "/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&timeoutSeconds=600"
        );
        let req = http::Request::builder()
            .uri(path)
            .body(kube::client::Body::empty())?;
        let resp = client.send(req).await?;
        anyhow::ensure!(resp.status() == 200, "watch returned {}", resp.status());
        let (sent, latencies) = (sent.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            let mut seen = 0;
            while seen < events {
                let Some(Ok(frame)) = http_body_util::BodyExt::frame(&mut body).await else {
                    break;
                };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let now = Instant::now();
                    // The name is the first "name" field of the object; no full parse needed.
                    let Some(name) = first_name(&line) else {
                        continue;
                    };
                    if let Some(at) = sent.lock().unwrap().get(name) {
                        latencies.lock().unwrap().push(now - *at);
                    }
                    seen += 1;
                }
            }
        }));
    }
    // Paced creates, so latency is measured under load rather than behind a backlog.
    let mut tick = tokio::time::interval(Duration::from_micros(5_000));
    for i in 0..events {
        tick.tick().await;
        let name = format!("w-{i}");
        sent.lock().unwrap().insert(name.clone(), Instant::now());
        let client = client.clone();
        tokio::spawn(async move {
            let body = serde_json::to_vec(&pod(&name)).expect("serialises");
            let _ = send(&client, "POST", "/api/v1/namespaces/default/pods", body).await;
        });
    }
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(120), t).await;
    }
    let mut all = latencies.lock().unwrap().clone();
    anyhow::ensure!(!all.is_empty(), "no watch events received");
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Ok((pct(0.50), pct(0.99), all.len()))
}

fn first_name(line: &[u8]) -> Option<&str> {
    let key = b"\"name\":\"";
    let start = line.windows(key.len()).position(|w| w == key)? + key.len();
    let end = line[start..].iter().position(|b| *b == b'"')? + start;
    std::str::from_utf8(&line[start..end]).ok()
}

struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback now.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn start_etcd() -> anyhow::Result<Etcd> {
    let dir = tempfile::tempdir()?;
    let (client, peer) = (free_port()?, free_port()?);
    let child = Command::new("etcd")
        .args(["--name", "bench", "--data-dir"])
        .arg(dir.path().join("etcd"))
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args([
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args([
            "--initial-cluster",
            &format!("bench=http://127.0.0.1:{peer}"),
        ])
        .args(["--quota-backend-bytes", "4294967296"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start etcd")?;
    let etcd = Etcd {
        child,
        _dir: dir,
        port: client,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", client)).is_ok() {
            tokio::time::sleep(Duration::from_millis(500)).await;
            return Ok(etcd);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("etcd did not start")
}

/// A fresh API server on the bench etcd, under its own key prefix.
async fn etcd_server(etcd: &Etcd) -> anyhow::Result<(Arc<EtcdStore>, Arc<ApiServer>)> {
    static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let store = etcd_store(etcd, &format!("/bench-{n}")).await?;
    let server = ApiServer::new(store.clone(), "127.0.0.1:0".into()).await?;
    Ok((store, server))
}

async fn etcd_store(etcd: &Etcd, prefix: &str) -> anyhow::Result<Arc<EtcdStore>> {
    Ok(EtcdStore::connect(
        EtcdOptions {
            endpoints: vec![format!("http://127.0.0.1:{}", etcd.port)],
            prefix: prefix.to_string(),
            compaction_interval: None,
            ..EtcdOptions::default()
        },
        Arc::new(apiserver::stamp_resource_version),
    )
    .await?)
}

/// CPU spent by this process and by etcd between two points, per operation.
struct CpuMeter {
    etcd_pid: String,
    own: f64,
    etcd: f64,
}

impl CpuMeter {
    fn start(etcd: &Etcd) -> Self {
        let etcd_pid = etcd.child.id().to_string();
        CpuMeter {
            own: crate::bench_sim::process_cpu_seconds("self"),
            etcd: crate::bench_sim::process_cpu_seconds(&etcd_pid),
            etcd_pid,
        }
    }

    /// `etcd N µs, kwok M µs` of CPU per operation since the start.
    fn per_op(&self, n: usize) -> String {
        let own = crate::bench_sim::process_cpu_seconds("self") - self.own;
        let etcd = crate::bench_sim::process_cpu_seconds(&self.etcd_pid) - self.etcd;
        format!(
            "CPU per op: etcd {:.0} µs, kwok {:.0} µs",
            etcd / n as f64 * 1e6,
            own / n as f64 * 1e6
        )
    }
}

/// The bytes the API server stores for a created pod (defaults and managedFields included), so
/// that etcd's own rates are measured with the values the server writes.
async fn stored_pod_value(etcd: &Etcd) -> anyhow::Result<Bytes> {
    let (store, server) = etcd_server(etcd).await?;
    let pods = resources::find("", "v1", "pods").expect("built in");
    server
        .registry
        .create(
            pods,
            Some("default"),
            pod("stored"),
            &WriteOptions::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let kv = store::Store::get(&*store, "/registry/pods/default/stored")
        .await?
        .context("the created pod is stored")?;
    Ok(kv.value)
}

/// How the etcd rows write: etcd's own rate, or the store's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum EtcdWrite {
    /// A plain put through etcd's gRPC API.
    Put,
    /// A create through the etcd store (a compare-and-put transaction), no API server.
    StoreCreate,
}

/// Writes per second of `value` under fresh keys, one gRPC connection.
async fn etcd_writes(
    etcd: &Etcd,
    how: EtcdWrite,
    value: Bytes,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let prefix = match how {
        EtcdWrite::Put => format!("/raw-{concurrency}"),
        EtcdWrite::StoreCreate => format!("/store-{concurrency}"),
    };
    let store = etcd_store(etcd, &prefix).await?;
    let keys: Vec<String> = (0..n)
        .map(|i| format!("/registry/pods/default/p-{i}"))
        .collect();
    let start = Instant::now();
    run_workers(keys, concurrency, move |key| {
        let (store, value) = (store.clone(), value.clone());
        async move {
            match how {
                EtcdWrite::Put => {
                    store.put(&key, value).await?;
                }
                EtcdWrite::StoreCreate => {
                    store::Store::create(&*store, &key, &mut |_| value.clone()).await?;
                }
            }
            Ok(())
        }
    })
    .await?;
    Ok(rate(n, start.elapsed()))
}

/// GETs per second of stored pods, with the clients spread over `replicas` API servers that
/// share one etcd.
async fn etcd_replica_reads(
    etcd: &Etcd,
    replicas: usize,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<(f64, String)> {
    const STORED: usize = 1_000;
    let mut clusters = Vec::new();
    for _ in 0..replicas {
        let store = etcd_store(etcd, "/reads").await?;
        let server = ApiServer::new(store, "127.0.0.1:0".into()).await?;
        clusters.push(https_cluster(server, tempfile::tempdir()?).await?);
    }
    let client = clusters[0].client.clone();
    for i in 0..STORED {
        let body = serde_json::to_vec(&pod(&format!("r-{i}")))?;
        let (status, text) = send(&client, "POST", "/api/v1/namespaces/default/pods", body).await?;
        anyhow::ensure!(
            status == 201 || status == 409,
            "create returned {status}: {}",
            String::from_utf8_lossy(&text)
        );
    }
    let clients: Vec<kube::Client> = clusters.iter().map(|c| c.client.clone()).collect();
    let requests: Vec<(usize, String)> = (0..n)
        .map(|i| {
            (
                i % clients.len(),
                format!("/api/v1/namespaces/default/pods/r-{}", i % STORED),
            )
        })
        .collect();
    let cpu = CpuMeter::start(etcd);
    let start = Instant::now();
    run_workers(requests, concurrency, move |(replica, path)| {
        let client = clients[replica].clone();
        async move {
            let (status, _) = send(&client, "GET", &path, vec![]).await?;
            anyhow::ensure!(status == 200, "get returned {status}");
            Ok(())
        }
    })
    .await?;
    Ok((rate(n, start.elapsed()), cpu.per_op(n)))
}

/// etcd puts per second through its JSON gateway (`/v3/kv/put`), values the size of a pod.
async fn etcd_puts(etcd: &Etcd, n: usize, concurrency: usize) -> anyhow::Result<f64> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let client: hyper_util::client::legacy::Client<_, http_body_util::Full<Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .pool_max_idle_per_host(concurrency)
            .build_http();
    let value = serde_json::to_vec(&pod("etcd-value"))?;
    let url = format!("http://127.0.0.1:{}/v3/kv/put", etcd.port);
    let bodies: Vec<String> = (0..n)
        .map(|i| {
            json!({
                "key": b64.encode(format!("/registry/pods/default/p-{concurrency}-{i}")),
                "value": b64.encode(&value),
            })
            .to_string()
        })
        .collect();
    let start = Instant::now();
    run_workers(bodies, concurrency, move |body| {
        let req = http::Request::post(&url)
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(Bytes::from(body)));
        let client = client.clone();
        async move {
            let resp = client.request(req?).await?;
            anyhow::ensure!(resp.status() == 200, "etcd put returned {}", resp.status());
            http_body_util::BodyExt::collect(resp.into_body()).await?;
            Ok(())
        }
    })
    .await?;
    Ok(rate(n, start.elapsed()))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let profile = if cfg!(debug_assertions) {
        "debug build (figures are much lower than release)"
    } else {
        "release build"
    };
    println!(
        "kwok bench: {profile}, {} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );

    if args.creates_only {
        return in_process_create_rows(&args).await;
    }
    if !args.etcd_only {
        embedded_section(&args).await?;
    }
    etcd_section(&args).await
}

/// Durable in-process creates with 1 and 64 clients, and creates without fsync with 64 (with
/// the durable rate as a share of it).
async fn in_process_create_rows(args: &BenchArgs) -> anyhow::Result<()> {
    let mut durable = 0.0;
    for concurrency in [1, 64] {
        let n = if concurrency == 1 {
            args.creates / 4
        } else {
            args.creates
        };
        let (r, per_sync) = in_process_creates(n, concurrency, SyncMode::Always).await?;
        println!(
            "durable pod creates, in-process, {concurrency:>2} clients: {r:>9.0}/s \
             ({per_sync:.1} records per sync)"
        );
        durable = r;
    }
    let (r, _) = in_process_creates(args.creates, 64, SyncMode::None).await?;
    println!(
        "pod creates without fsync, in-process, 64 clients: {r:>9.0}/s (durable: {:.0}%)",
        100.0 * durable / r
    );
    Ok(())
}

/// The embedded store: lists, memory, creates, watch latency.
async fn embedded_section(args: &BenchArgs) -> anyhow::Result<()> {
    let (list, memory_n) = (list_and_memory(args.list_pods).await?, args.list_pods);
    println!(
        "list {memory_n} pods:               in-process {:>8.1} ms, HTTPS {:>8.1} ms ({:.1} MiB)",
        list.in_process.as_secs_f64() * 1e3,
        list.https.as_secs_f64() * 1e3,
        list.bytes as f64 / (1 << 20) as f64
    );
    println!(
        "memory per stored pod:           {:>8.0} bytes beyond its JSON ({:.0} bytes of JSON)",
        list.per_pod_overhead, list.avg_json
    );

    in_process_create_rows(args).await?;
    for concurrency in [1, 64] {
        let n = if concurrency == 1 {
            args.creates / 4
        } else {
            args.creates
        };
        let r = https_creates(n, concurrency).await?;
        println!("durable pod creates, HTTPS,      {concurrency:>2} clients: {r:>9.0}/s");
        if args.audit {
            let r = audited_https_creates(n, concurrency).await?;
            println!("  audited at Metadata level,     {concurrency:>2} clients: {r:>9.0}/s");
        }
    }

    let (p50, p99, count) = watch_latency(args.watchers, args.watch_events).await?;
    println!(
        "watch latency, {} watchers:      p50 {:>6.2} ms, p99 {:>6.2} ms ({count} events)",
        args.watchers,
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    Ok(())
}

/// etcd's own put rate, the etcd backend's creates, and reads through one and two replicas.
async fn etcd_section(args: &BenchArgs) -> anyhow::Result<()> {
    let has_etcd = Command::new("etcd")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if args.skip_etcd || !has_etcd {
        println!(
            "etcd reference: skipped ({})",
            if args.skip_etcd {
                "--skip-etcd"
            } else {
                "etcd is not installed"
            }
        );
        return Ok(());
    }
    let etcd = start_etcd().await?;
    for concurrency in [1, 64] {
        let n = if concurrency == 1 {
            args.creates / 4
        } else {
            args.creates
        };
        let r = etcd_puts(&etcd, n, concurrency).await?;
        println!("etcd puts (JSON gateway),        {concurrency:>2} clients: {r:>9.0}/s");
    }
    let value = stored_pod_value(&etcd).await?;
    println!(
        "etcd rows write the value the server stores for a pod: {} bytes",
        value.len()
    );
    for concurrency in [1, 64] {
        let n = if concurrency == 1 {
            args.creates / 4
        } else {
            args.creates
        };
        let cpu = CpuMeter::start(&etcd);
        let raw = etcd_writes(&etcd, EtcdWrite::Put, value.clone(), n, concurrency).await?;
        println!(
            "etcd puts (gRPC),                {concurrency:>2} clients: {raw:>9.0}/s            {}",
            cpu.per_op(n)
        );
        let cpu = CpuMeter::start(&etcd);
        let r = etcd_writes(&etcd, EtcdWrite::StoreCreate, value.clone(), n, concurrency).await?;
        println!(
            "creates on the etcd store alone, {concurrency:>2} clients: {r:>9.0}/s ({:>3.0}%) {}",
            100.0 * r / raw,
            cpu.per_op(n)
        );
        let (_store, server) = etcd_server(&etcd).await?;
        let cpu = CpuMeter::start(&etcd);
        let r = in_process_creates_on(server, n, concurrency).await?;
        println!(
            "pod creates on etcd, in-process, {concurrency:>2} clients: {r:>9.0}/s ({:>3.0}%) {}",
            100.0 * r / raw,
            cpu.per_op(n)
        );
        let (_store, server) = etcd_server(&etcd).await?;
        let cpu = CpuMeter::start(&etcd);
        let r = https_creates_on(server, tempfile::tempdir()?, n, concurrency).await?;
        println!(
            "pod creates on etcd, HTTPS,      {concurrency:>2} clients: {r:>9.0}/s ({:>3.0}%) {}",
            100.0 * r / raw,
            cpu.per_op(n)
        );
    }
    let (one, one_cpu) = etcd_replica_reads(&etcd, 1, args.creates, 64).await?;
    let (two, two_cpu) = etcd_replica_reads(&etcd, 2, args.creates, 64).await?;
    println!(
        "pod GETs on etcd, HTTPS, 64 clients: 1 replica {one:>7.0}/s, 2 replicas {two:>7.0}/s ({:.2}x)",
        two / one
    );
    println!("  1 replica {one_cpu}; 2 replicas {two_cpu} (kwok: replicas and clients)");
    Ok(())
}
