//! `kwok bench-sim`: measures the simulator inside an embedded cluster process.
//!
//! One process holds the API server (in-memory store), the in-process client and the simulator
//! with the default Stages and node leases, as `kwok apiserver --simulate` runs them. The
//! benchmark creates nodes and waits until all are Ready, creates pods bound to them and waits
//! until all are Running, then counts heartbeat writes (lease renewals and node status
//! updates) over a steady-state window, and prints CPU time and memory of the whole process.

use client::JsonAt;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use client::{Cluster, ListParams, LocalCluster, Resource, WatchEvent};
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(clap::Args)]
pub struct BenchSimArgs {
    /// Node counts to measure, one run each (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1000u64, 10000])]
    nodes: Vec<u64>,
    /// Pod counts to measure on the last node count (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [10000u64, 100000])]
    pods: Vec<u64>,
    /// Seconds of steady state over which heartbeat writes are counted.
    #[arg(long, default_value_t = 20)]
    steady_seconds: u64,
    /// Node lease duration (renewal every quarter).
    #[arg(long, default_value_t = 40)]
    lease_seconds: u64,
    /// Concurrent creates.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

fn cpu_seconds() -> f64 {
    process_cpu_seconds("self")
}

/// utime + stime of a process (`"self"` or a pid) from `/proc/<pid>/stat` (clock ticks).
pub(crate) fn process_cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let hz = 100.0;
    (ticks(11) + ticks(12)) / hz
}

fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn create_all(
    cluster: Arc<dyn Cluster>,
    r: Resource,
    ns: Option<&'static str>,
    objects: Vec<Value>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let results: Vec<client::Result<Value>> = futures::stream::iter(objects)
        .map(|o| {
            let c = cluster.clone();
            let r = r.clone();
            async move { c.create(&r, ns, &o).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    for r in results {
        r.context("create")?;
    }
    Ok(())
}

/// Waits until `want` objects satisfy `done`, watching from `rv`.
async fn wait_until(
    cluster: &Arc<dyn Cluster>,
    r: &Resource,
    rv: String,
    want: usize,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let mut seen: HashSet<String> = HashSet::new();
    let mut rv = rv;
    while seen.len() < want {
        let params = ListParams {
            resource_version: Some(rv.clone()),
            timeout_seconds: Some(600),
            ..Default::default()
        };
        let mut stream = cluster.watch(r, None, &params).await?;
        while let Some(ev) = stream.next().await {
            match ev {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => {
                    if let Some(v) = o.at("/metadata/resourceVersion").and_then(Value::as_str) {
                        rv = v.to_string();
                    }
                    if done(&o) {
                        seen.insert(crate_key(&o));
                        if seen.len() >= want {
                            return Ok(());
                        }
                    }
                }
                WatchEvent::Error(e) => anyhow::bail!("watch: {e}"),
                _ => {}
            }
        }
    }
    Ok(())
}

fn crate_key(o: &Value) -> String {
    kwok::engine::key_of(o)
}

fn ready(n: &Value) -> bool {
    n.at("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

async fn current_rv(cluster: &Arc<dyn Cluster>, r: &Resource) -> anyhow::Result<String> {
    Ok(cluster
        .list(
            r,
            None,
            &ListParams {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await?
        .resource_version)
}

pub async fn run(args: BenchSimArgs) -> anyhow::Result<()> {
    let max_nodes = *args.nodes.iter().max().unwrap_or(&0);
    println!(
        "kwok bench-sim: embedded cluster process (in-memory store), default stages, {} s leases",
        args.lease_seconds
    );
    let store = store::LocalStore::in_memory();
    let server = apiserver::ApiServer::new(store.clone(), "127.0.0.1:0".into()).await?;
    let cluster: Arc<dyn Cluster> = Arc::new(LocalCluster::new(server.registry.clone()));
    let opts = kwok::Options {
        manage_all_nodes: true,
        node_lease_duration_seconds: args.lease_seconds,
        parallelism: 128,
        ..kwok::Options::default()
    };
    let sim = kwok::Simulator::start(cluster.clone(), opts)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    let cpu0 = cpu_seconds();
    let wall0 = Instant::now();

    let mut created = 0u64;
    let mut sizes = args.nodes.clone();
    sizes.sort();
    for target in sizes {
        let rv = current_rv(&cluster, &Resource::nodes()).await?;
        let nodes: Vec<Value> = (created..target)
            .map(|i| {
                json!({
                    "apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": format!("node-{i}"), "labels": {"type": "kwok"}},
                    "spec": {"podCIDR": format!("10.{}.{}.0/24", 64 + i / 256, i % 256)},
                })
            })
            .collect();
        let n = nodes.len();
        let t = Instant::now();
        let c = cluster.clone();
        let creating = tokio::spawn(create_all(
            c,
            Resource::nodes(),
            None,
            nodes,
            args.concurrency,
        ));
        wait_until(&cluster, &Resource::nodes(), rv, n, ready).await?;
        creating.await??;
        created = target;
        println!(
            "nodes: {target:>7} Ready in {:>7.2} s (+{n} new)",
            t.elapsed().as_secs_f64()
        );
    }

    let mut sizes = args.pods.clone();
    sizes.sort();
    let mut pods_created = 0u64;
    for target in sizes {
        let rv = current_rv(&cluster, &Resource::pods()).await?;
        let pods: Vec<Value> = (pods_created..target)
            .map(|i| {
                json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("pod-{i}"), "namespace": "default"},
                    "spec": {
                        "nodeName": format!("node-{}", i % max_nodes.max(1)),
                        "containers": [{"name": "app", "image": "nginx"}],
                    },
                })
            })
            .collect();
        let n = pods.len();
        let t = Instant::now();
        let c = cluster.clone();
        let creating = tokio::spawn(create_all(
            c,
            Resource::pods(),
            Some("default"),
            pods,
            args.concurrency,
        ));
        wait_until(&cluster, &Resource::pods(), rv, n, |p| {
            p.at("/status/phase").and_then(Value::as_str) == Some("Running")
        })
        .await?;
        creating.await??;
        pods_created = target;
        println!(
            "pods:  {target:>7} Running in {:>7.2} s (+{n} new)",
            t.elapsed().as_secs_f64()
        );
    }

    let renewed0 = sim.metrics.leases_renewed.load(Ordering::Relaxed);
    let played0: u64 = sim
        .metrics
        .played
        .lock()
        .expect("metrics")
        .get("node-heartbeat-with-lease")
        .copied()
        .unwrap_or(0);
    let cpu_s0 = cpu_seconds();
    tokio::time::sleep(Duration::from_secs(args.steady_seconds)).await;
    let secs = args.steady_seconds.max(1) as f64;
    let renewed = sim.metrics.leases_renewed.load(Ordering::Relaxed) - renewed0;
    let played: u64 = sim
        .metrics
        .played
        .lock()
        .expect("metrics")
        .get("node-heartbeat-with-lease")
        .copied()
        .unwrap_or(0)
        - played0;
    println!(
        "steady state over {} s: {:.0} heartbeat writes/s ({:.0} lease renewals/s, {:.0} node status/s; expected leases {:.0}/s), CPU {:.1}%",
        args.steady_seconds,
        (renewed + played) as f64 / secs,
        renewed as f64 / secs,
        played as f64 / secs,
        max_nodes as f64 / (args.lease_seconds as f64 / 4.0),
        (cpu_seconds() - cpu_s0) / secs * 100.0,
    );
    let (rss, peak) = memory_mib();
    println!(
        "process: CPU {:.1} s over {:.1} s wall; memory RSS {:.0} MiB, peak {:.0} MiB; errors {}",
        cpu_seconds() - cpu0,
        wall0.elapsed().as_secs_f64(),
        rss,
        peak,
        sim.metrics.errors.load(Ordering::Relaxed),
    );
    store.close();
    Ok(())
}
