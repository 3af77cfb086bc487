//! `kwokctl bench --soak <duration>`: one cluster held under a steady load for a long time,
//! to show that memory does not creep. The last of `--nodes` nodes heartbeat throughout while
//! pods are churned (created until Running, then deleted) between 0 and `--soak-pods`; every
//! minute a row gives the cluster process's RSS, its CPU share, the Ready nodes and the churn
//! so far. The summary compares RSS after a warm-up (longer than the events' TTL) with its mean.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{
    Kwokctl, cluster_pid, cpu_seconds, object_count, pod_count, proc_file, ready_nodes,
    running_pods, scale_until,
};
use crate::apiclient::{Client, Endpoint};
use crate::cli::BenchArgs;
use crate::paths::{ClusterPaths, context_name};

const CLUSTER: &str = "bench-soak";
const SAMPLE_EVERY: Duration = Duration::from_secs(60);
/// Events expire this long after their last write (kube-apiserver's `--event-ttl`, 1h by
/// default), so that an hour's churn reaches the steady state an unending one has.
const EVENT_TTL: &str = "5m";
/// Minutes left out of the spread: caches, histories and allocator pools fill first.
const WARM_UP_MINUTES: usize = 10;

/// What the churn thread has done so far.
#[derive(Default)]
struct Churn {
    cycles: AtomicUsize,
    pods: AtomicUsize,
    stop: AtomicBool,
}

pub fn run(kwokctl: &Kwokctl, args: &BenchArgs, duration: Duration) -> anyhow::Result<()> {
    let nodes = args.nodes.last().copied().unwrap_or(10_000);
    let event_ttl = format!("kube-apiserver=event-ttl={EVENT_TTL}");
    kwokctl.run(CLUSTER, &["create", "cluster", "--extra-args", &event_ttl])?;
    let client = client(kwokctl)?;
    let pid = cluster_pid(&ClusterPaths::new(
        kwokctl.workdir().join("clusters").join(CLUSTER),
    ))?;
    let took = scale_until(kwokctl, CLUSTER, "node", &[], nodes, nodes, || {
        ready_nodes(&client)
    })?;
    let pace = match args.soak_pace {
        0 => "unpaced".to_string(),
        n => format!("at most {n} pods a minute"),
    };
    println!(
        "soak: {nodes} nodes Ready in {:.1} s; pods churned between 0 and {} ({pace}) for {}; events kept {EVENT_TTL}",
        took.as_secs_f64(),
        args.soak_pods,
        crate::duration::human(duration)
    );
    println!(
        "{:>6} {:>9} {:>6} {:>11} {:>7} {:>12} {:>8}",
        "minute", "RSS MiB", "CPU %", "nodes Ready", "cycles", "pods created", "events"
    );
    let churn = Churn::default();
    let samples = std::thread::scope(|scope| {
        let worker = scope.spawn(|| churn_pods(kwokctl, args.soak_pods, args.soak_pace, &churn));
        let samples = sample(pid, &client, duration, &churn);
        churn.stop.store(true, Ordering::Relaxed);
        let churned = worker.join().expect("the churn thread panicked");
        samples.and_then(|s| churned.map(|()| s))
    })?;
    summarize(&samples);
    kwokctl.run(CLUSTER, &["delete", "cluster"])?;
    Ok(())
}

fn client(kwokctl: &Kwokctl) -> anyhow::Result<Client> {
    Client::new(&Endpoint::from_kubeconfig(
        &kwokctl.kubeconfig(),
        Some(&context_name(CLUSTER)),
    )?)
}

/// Creates `pods` pods, waits for them to run, deletes them, and again, until told to stop;
/// with a `pace`, waits between cycles so that no more than `pace` pods a minute are created.
fn churn_pods(kwokctl: &Kwokctl, pods: usize, pace: usize, churn: &Churn) -> anyhow::Result<()> {
    let client = client(kwokctl)?;
    let started = Instant::now();
    while !churn.stop.load(Ordering::Relaxed) {
        if pace > 0 {
            let due = Duration::from_secs_f64(
                churn.pods.load(Ordering::Relaxed) as f64 * 60.0 / pace as f64,
            );
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait.min(Duration::from_secs(1)));
                continue;
            }
        }
        scale_until(kwokctl, CLUSTER, "pod", &[], pods, pods, || {
            running_pods(&client)
        })
        .context("churn: scaling pods up")?;
        churn.pods.fetch_add(pods, Ordering::Relaxed);
        scale_until(kwokctl, CLUSTER, "pod", &[], 0, pods, || {
            Ok(pods - pod_count(&client)?.min(pods))
        })
        .context("churn: deleting pods")?;
        churn.cycles.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Prints a row a minute until `duration` is over; returns the RSS of each minute in bytes.
fn sample(
    pid: u32,
    client: &Client,
    duration: Duration,
    churn: &Churn,
) -> anyhow::Result<Vec<u64>> {
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut cpu_before = cpu_seconds(pid)?;
    while started.elapsed() < duration {
        let next = SAMPLE_EVERY * (samples.len() as u32 + 1);
        std::thread::sleep(next.saturating_sub(started.elapsed()));
        let rss = status_bytes(pid, "VmRSS:")?;
        let cpu = cpu_seconds(pid)?;
        println!(
            "{:>6} {:>9.0} {:>6.0} {:>11} {:>7} {:>12} {:>8}",
            samples.len() + 1,
            rss as f64 / (1 << 20) as f64,
            (cpu - cpu_before) * 100.0 / SAMPLE_EVERY.as_secs_f64(),
            ready_nodes(client).map_or("?".into(), |n| n.to_string()),
            churn.cycles.load(Ordering::Relaxed),
            churn.pods.load(Ordering::Relaxed),
            object_count(client, "/api/v1/events").map_or("?".into(), |n| n.to_string())
        );
        cpu_before = cpu;
        samples.push(rss);
    }
    Ok(samples)
}

/// The RSS spread after warm-up: the largest distance from the mean, as a share of it.
fn summarize(samples: &[u64]) {
    let settled = &samples[WARM_UP_MINUTES.min(samples.len().saturating_sub(1))..];
    let mib = |b: f64| b / (1 << 20) as f64;
    let mean = settled.iter().sum::<u64>() as f64 / settled.len().max(1) as f64;
    let (min, max) = (
        settled.iter().copied().min().unwrap_or(0) as f64,
        settled.iter().copied().max().unwrap_or(0) as f64,
    );
    let spread = (max - mean).max(mean - min) * 100.0 / mean.max(1.0);
    println!(
        "RSS after minute {WARM_UP_MINUTES}: mean {:.0} MiB, min {:.0}, max {:.0}, spread ±{spread:.1} % (target ±10 %)",
        mib(mean),
        mib(min),
        mib(max)
    );
}

/// A size line of /proc/<pid>/status (`VmRSS:`, `VmHWM:`), in bytes.
pub(super) fn status_bytes(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = proc_file(pid, "status")?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .with_context(|| format!("{field} missing"))?;
    Ok(kib * 1024)
}
