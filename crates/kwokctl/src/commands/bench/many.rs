//! `kwokctl bench --clusters N`: many idle clusters side by side. N embedded clusters are
//! created, `--clusters-at-once` at a time (by default one per core, as a CI script would),
//! each is asked for its `default` namespace (an authenticated
//! request through its own kubeconfig context), and once all of them are idle their processes'
//! memory is added up: RSS, the private part of it, and PSS (the binary's pages, shared by all
//! of them, counted once). Then they are deleted together.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Kwokctl, STEP_TIMEOUT, cluster_pid, cpu_seconds, proc_file, row_rate, soak};
use crate::apiclient::{Client, Endpoint};
use crate::paths::{ClusterPaths, context_name};

/// How often the clusters' CPU time is looked at while waiting for them to go idle.
const IDLE_SAMPLE: Duration = Duration::from_secs(2);
/// Quiet samples in a row that make the clusters idle: long enough for each process to notice
/// it is idle and hand back what its allocator keeps (`kwok`'s `idle.rs` looks every 2 s).
const IDLE_SAMPLES: usize = 3;
/// Share of one core a cluster may use and still count as idle...
const IDLE_SHARE: f64 = 0.005;
/// ...and of all of them together (1,000 clusters at 0.5 % would be 5 cores).
const IDLE_SHARE_ALL: f64 = 0.5;

/// The memory of one cluster process, in bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(super) struct Memory {
    pub rss: u64,
    /// Anonymous memory: heap, stacks, relocated data; nobody else's.
    pub private: u64,
    /// Proportional set size: private memory plus each shared page divided by its sharers.
    pub pss: u64,
}

impl std::ops::Add for Memory {
    type Output = Memory;
    fn add(self, other: Memory) -> Memory {
        Memory {
            rss: self.rss + other.rss,
            private: self.private + other.private,
            pss: self.pss + other.pss,
        }
    }
}

pub fn run(kwokctl: &Kwokctl, clusters: usize, at_once: usize) -> anyhow::Result<()> {
    let names: Vec<String> = (0..clusters).map(|i| format!("bench-many-{i}")).collect();
    let at_once = match at_once {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let started = Instant::now();
    create_all(kwokctl, &names, at_once)?;
    row_rate(
        &format!("create clusters, {at_once} at a time"),
        clusters,
        clusters,
        started.elapsed(),
        "-",
    );

    let started = Instant::now();
    let kubeconfig_path = kwokctl.kubeconfig();
    let kubeconfig = crate::kubeconfig::load(&kubeconfig_path)?;
    for name in &names {
        let client = Client::new(&Endpoint::from_loaded_kubeconfig(
            &kubeconfig_path,
            &kubeconfig,
            Some(&context_name(name)),
        )?)?;
        let resp = client.get("/api/v1/namespaces/default")?;
        if !resp.ok() {
            bail!("cluster {name} did not answer: {}", resp.message());
        }
    }
    row_rate(
        "clusters answering",
        clusters,
        clusters,
        started.elapsed(),
        "-",
    );

    let pids = names
        .iter()
        .map(|name| {
            cluster_pid(&ClusterPaths::new(
                kwokctl.workdir().join("clusters").join(name),
            ))
        })
        .collect::<anyhow::Result<Vec<u32>>>()?;
    let idle_after = wait_idle(&pids)?;
    let total = pids
        .iter()
        .map(|&pid| memory(pid))
        .collect::<anyhow::Result<Vec<Memory>>>()?
        .into_iter()
        .fold(Memory::default(), |a, b| a + b);

    let started = Instant::now();
    kwokctl.run("bench", &["delete", "cluster", "--all"])?;
    row_rate(
        "delete clusters",
        clusters,
        clusters,
        started.elapsed(),
        "-",
    );
    println!("{}", summary(clusters, total, idle_after));
    Ok(())
}

/// Creates the clusters `names`, `at_once` kwokctl processes at a time; stops handing out
/// names at the first failure.
fn create_all(kwokctl: &Kwokctl, names: &[String], at_once: usize) -> anyhow::Result<()> {
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..at_once.clamp(1, names.len().max(1)))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    while let Some(name) = names.get(next.fetch_add(1, Ordering::Relaxed)) {
                        if let Err(e) = kwokctl.run(name, &["create", "cluster"]) {
                            next.store(names.len(), Ordering::Relaxed);
                            return Err(e);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("a create worker panicked"))
    })
}

/// The line under the table: totals, and each cluster's share against the 16 MiB target.
pub(super) fn summary(clusters: usize, total: Memory, idle_after: Duration) -> String {
    let mib = |bytes: u64| bytes as f64 / (1 << 20) as f64;
    let each = |bytes: u64| mib(bytes) / clusters.max(1) as f64;
    format!(
        "{clusters} idle clusters (idle after {:.0} s): RSS {:.0} MiB ({:.1} MiB each, of which {:.1} MiB private), PSS {:.0} MiB ({:.1} MiB each; target < 16 MiB each)",
        idle_after.as_secs_f64(),
        mib(total.rss),
        each(total.rss),
        each(total.private),
        mib(total.pss),
        each(total.pss),
    )
}

/// Waits until the processes together use less than [`idle_limit`] over [`IDLE_SAMPLES`]
/// samples in a row; returns how long that took.
fn wait_idle(pids: &[u32]) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let limit = idle_limit(pids.len(), IDLE_SAMPLE);
    let total_cpu = || -> anyhow::Result<f64> {
        pids.iter()
            .map(|&pid| cpu_seconds(pid))
            .sum::<anyhow::Result<f64>>()
    };
    let mut before = total_cpu()?;
    let mut quiet = 0;
    while quiet < IDLE_SAMPLES {
        std::thread::sleep(IDLE_SAMPLE);
        let now = total_cpu()?;
        quiet = if now - before < limit { quiet + 1 } else { 0 };
        before = now;
        if started.elapsed() > STEP_TIMEOUT {
            bail!("the clusters did not go idle within {STEP_TIMEOUT:?}");
        }
    }
    Ok(started.elapsed())
}

/// CPU seconds `clusters` processes may use together over `sample` and count as idle.
fn idle_limit(clusters: usize, sample: Duration) -> f64 {
    (IDLE_SHARE * clusters as f64).min(IDLE_SHARE_ALL) * sample.as_secs_f64()
}

/// RSS and its anonymous part from /proc/<pid>/status, PSS from /proc/<pid>/smaps_rollup.
pub(super) fn memory(pid: u32) -> anyhow::Result<Memory> {
    let rollup = proc_file(pid, "smaps_rollup")?;
    Ok(Memory {
        rss: soak::status_bytes(pid, "VmRSS:")?,
        private: soak::status_bytes(pid, "RssAnon:")?,
        pss: kib_field(&rollup, "Pss:").context("Pss missing from smaps_rollup")? * 1024,
    })
}

/// The value of a `Name:   123 kB` line.
fn kib_field(text: &str, field: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_of_this_process() {
        let m = memory(std::process::id()).unwrap();
        assert!(m.rss > 0 && m.private > 0 && m.pss > 0, "{m:?}");
        assert!(m.private <= m.rss && m.pss <= m.rss, "{m:?}");
    }

    #[test]
    fn idle_is_a_share_of_a_core_per_cluster_with_a_cap() {
        let two = Duration::from_secs(2);
        assert!((idle_limit(20, two) - 0.2).abs() < 1e-9);
        assert!((idle_limit(100, two) - 1.0).abs() < 1e-9);
        assert!((idle_limit(1000, two) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn fields_of_smaps_rollup() {
        let text = "55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:  2048 kB\nPss:  1024 kB\nPss_Dirty:  512 kB\n";
        assert_eq!(kib_field(text, "Pss:"), Some(1024));
        assert_eq!(kib_field(text, "Pss_Dirty:"), Some(512));
        assert_eq!(kib_field(text, "Swap:"), None);
    }

    #[test]
    fn summary_gives_totals_and_shares() {
        let total = Memory {
            rss: 100 << 20,
            private: 40 << 20,
            pss: 60 << 20,
        };
        let line = summary(10, total, Duration::from_secs(7));
        assert!(line.starts_with("10 idle clusters (idle after 7 s): RSS 100 MiB (10.0 MiB each, of which 4.0 MiB private), PSS 60 MiB (6.0 MiB each"), "{line}");
        // No clusters: no division by zero.
        assert!(summary(0, Memory::default(), Duration::ZERO).contains("RSS 0 MiB"));
    }
}
