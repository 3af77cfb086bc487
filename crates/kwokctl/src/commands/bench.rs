//! `kwokctl bench`: the cluster benchmark. On a fresh embedded cluster in a scratch workdir it
//! runs upstream KWOK's CI scenario and more, through kwokctl as a user would (`create cluster`,
//! `scale node`, `scale pod`, `delete cluster`), and prints one table with upstream's gate
//! beside each step; `--clusters` adds rows for many idle clusters side by side (`many.rs`). The table's layout is stable so runs can be compared across commits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use crate::apiclient::{Client, Endpoint};
use crate::cli::BenchArgs;
use crate::context::Context;
use crate::paths::{ClusterPaths, context_name};

mod many;
mod soak;

/// Gives up on a step after this long (a million pods take minutes per step on two cores).
const STEP_TIMEOUT: Duration = Duration::from_secs(1800);

/// Runs kwokctl itself in the scratch workdir.
struct Kwokctl {
    exe: PathBuf,
    kwok: PathBuf,
    scratch: PathBuf,
}

impl Kwokctl {
    fn command(&self, name: &str, verb: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(["--name", name])
            .args(verb)
            .env("KWOK_WORKDIR", self.workdir())
            .env("KUBECONFIG", self.kubeconfig())
            .env("KWOK_KWOK_BINARY", &self.kwok)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        cmd
    }

    fn run(&self, name: &str, verb: &[&str]) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let out = self.command(name, verb).output()?;
        let elapsed = started.elapsed();
        if !out.status.success() {
            bail!(
                "kwokctl {} failed with {}: {}",
                verb.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(elapsed)
    }

    fn workdir(&self) -> PathBuf {
        self.scratch.join("workdir")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.scratch.join("kubeconfig")
    }
}

pub fn bench(ctx: &Context, args: &BenchArgs) -> anyhow::Result<()> {
    let kwokctl = Kwokctl {
        exe: std::env::current_exe().context("locate kwokctl")?,
        kwok: ctx.kwok_binary(None).map_err(anyhow::Error::msg)?,
        scratch: std::env::temp_dir().join(format!("kwokctl-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&kwokctl.scratch)?;
    let result = run_all(&kwokctl, args);
    if result.is_err() {
        let _ = kwokctl.run("bench", &["delete", "cluster", "--all", "--force"]);
    }
    let _ = std::fs::remove_dir_all(&kwokctl.scratch);
    result
}

fn run_all(kwokctl: &Kwokctl, args: &BenchArgs) -> anyhow::Result<()> {
    println!(
        "kwokctl bench: {} build, {} cores, runtime embedded",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let Some(duration) = args.soak {
        return soak::run(kwokctl, args, duration);
    }
    println!(
        "{:<30} {:>9} {:>9} {:>10}   upstream gate",
        "step", "objects", "seconds", "rate/s"
    );
    let mut creates = Vec::new();
    let mut deletes = Vec::new();
    for i in 0..args.iterations {
        let name = format!("bench-{i}");
        creates.push(kwokctl.run(&name, &["create", "cluster"])?);
        deletes.push(kwokctl.run(&name, &["delete", "cluster"])?);
    }
    if !creates.is_empty() {
        let n = creates.len();
        row_time(
            &format!("create cluster (median of {n})"),
            median(&mut creates),
            "-",
        );
        row_time(
            &format!("delete cluster (median of {n})"),
            median(&mut deletes),
            "-",
        );
    }
    if args.clusters > 0 {
        many::run(kwokctl, args.clusters, args.clusters_at_once)?;
    }
    if args.replay > 0 {
        replay_scenario(kwokctl, args.replay)?;
    }
    if args.one_node > 0 {
        one_node_scenario(kwokctl, args.one_node)?;
    }
    if args.nodes.is_empty() && args.pods.is_empty() {
        return Ok(());
    }
    scale_scenario(kwokctl, args)
}

/// Replays a synthetic recording of `pods` pod lifecycles at `--speed 100` into a fresh cluster
/// and times it until the replay ends (every pod deleted again).
fn replay_scenario(kwokctl: &Kwokctl, pods: usize) -> anyhow::Result<()> {
    let name = "bench-replay";
    kwokctl.run(name, &["create", "cluster"])?;
    let recording = kwokctl.scratch.join("replay.yaml");
    std::fs::write(&recording, crate::recording::pod_lifecycles(pods))?;
    let path = recording.to_string_lossy().into_owned();
    let took = kwokctl.run(
        name,
        &["snapshot", "replay", "--path", &path, "--speed", "100"],
    )?;
    let client = Client::new(&Endpoint::from_kubeconfig(
        &kwokctl.kubeconfig(),
        Some(&context_name(name)),
    )?)?;
    let left = pod_count(&client)?;
    kwokctl.run(name, &["delete", "cluster"])?;
    let _ = std::fs::remove_file(&recording);
    if left != 0 {
        bail!("{left} pods of the replay were left behind");
    }
    row_rate(
        "replay --speed 100 (pods)",
        pods,
        pods * 4,
        took,
        "- (target < 10 s for 10,000)",
    );
    Ok(())
}

/// Upstream KWOK's benchmark scenario: a fresh cluster with one node and `pods` pods bound to
/// it by `spec.nodeName` (`scale pod --param '.nodeName="node-000000"'`, so the scheduler has
/// nothing to do), timed until every pod is Running, then until all are deleted again.
fn one_node_scenario(kwokctl: &Kwokctl, pods: usize) -> anyhow::Result<()> {
    let name = "bench-one-node";
    kwokctl.run(name, &["create", "cluster"])?;
    let client = Client::new(&Endpoint::from_kubeconfig(
        &kwokctl.kubeconfig(),
        Some(&context_name(name)),
    )?)?;
    scale_until(kwokctl, name, "node", &[], 1, 1, || ready_nodes(&client))?;
    // The first node `scale node` makes, with its default serial length: node-000000.
    let node = crate::scale::serial_name("node", 0, 6);
    let param = format!(".nodeName=\"{node}\"");
    let took = scale_until(
        kwokctl,
        name,
        "pod",
        &["--param", &param],
        pods,
        pods,
        || running_pods(&client),
    )?;
    row_rate(
        "pods Running on one node",
        pods,
        pods,
        took,
        "10,000 in 60 s (167/s)",
    );
    let took = scale_until(kwokctl, name, "pod", &[], 0, pods, || {
        Ok(pods - pod_count(&client)?.min(pods))
    })?;
    row_rate(
        "pods deleted from one node",
        pods,
        pods,
        took,
        "10,000 in 90 s (111/s)",
    );
    kwokctl.run(name, &["delete", "cluster"])?;
    Ok(())
}

fn scale_scenario(kwokctl: &Kwokctl, args: &BenchArgs) -> anyhow::Result<()> {
    let name = "bench-scale";
    let created = kwokctl.run(name, &["create", "cluster"])?;
    row_time("create cluster", created, "-");
    let paths = ClusterPaths::new(kwokctl.workdir().join("clusters").join(name));
    let pid = cluster_pid(&paths)?;
    let client = Client::new(&Endpoint::from_kubeconfig(
        &kwokctl.kubeconfig(),
        Some(&context_name(name)),
    )?)?;
    let revision_before = latest_revision(&client)?;
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();

    let mut before = 0;
    for &n in &args.nodes {
        let took = scale_until(kwokctl, name, "node", &[], n, n, || ready_nodes(&client))?;
        row_rate(
            "nodes Ready",
            n,
            n.abs_diff(before),
            took,
            "5,000 in 60 s (83/s)",
        );
        before = n;
    }
    before = 0;
    for &n in &args.pods {
        let took = scale_until(kwokctl, name, "pod", &[], n, n, || running_pods(&client))?;
        row_rate(
            "pods Running",
            n,
            n.abs_diff(before),
            took,
            "10,000 in 60 s (167/s)",
        );
        before = n;
    }
    let elapsed = started.elapsed();
    let writes = latest_revision(&client)? - revision_before;
    let cpu = cpu_seconds(pid)? - cpu_before;
    let peak = peak_rss_bytes(pid)?;

    let nodes = args.nodes.last().copied().unwrap_or(0);
    let pods = args.pods.last().copied().unwrap_or(0);
    if args.restart {
        let everything_back = || -> anyhow::Result<bool> {
            Ok(ready_nodes(&client)? == nodes && running_pods(&client)? == pods)
        };
        let restart_started = Instant::now();
        kwokctl.run(name, &["stop", "cluster"])?;
        kwokctl.run(name, &["start", "cluster"])?;
        let took = wait_for(restart_started, &everything_back)?;
        row_time("stop + start, all back", took, "-");
        // Back is not done: the scheduler, the controllers and the simulator still read
        // everything in; settled is when the process last used more than half a core.
        let settled = wait_settled(cluster_pid(&paths)?)?;
        row_time(
            "stop + start, settled",
            settled - restart_started,
            "110,000 objects in 5 s",
        );
        let killed_started = Instant::now();
        let victim = cluster_pid(&paths)?;
        crate::process::kill(victim)?;
        crate::process::wait_gone(victim, Duration::from_secs(10));
        kwokctl.run(name, &["start", "cluster"])?;
        let took = wait_for(killed_started, &everything_back)?;
        row_time("kill -9 + start, all back", took, "-");
        // The default snapshot format: a point-in-time copy of the store.
        let snapshot = kwokctl.scratch.join("snapshot.db");
        let snapshot_arg = snapshot.to_string_lossy().into_owned();
        let took = kwokctl.run(name, &["snapshot", "save", "--path", &snapshot_arg])?;
        row_rate("snapshot save", nodes + pods, nodes + pods, took, "-");
        let restore_started = Instant::now();
        kwokctl.run(name, &["snapshot", "restore", "--path", &snapshot_arg])?;
        let took = wait_for(restore_started, &everything_back)?;
        row_rate(
            "snapshot restore, all back",
            nodes + pods,
            nodes + pods,
            took,
            "-",
        );
        let _ = std::fs::remove_file(&snapshot);
        // A restored cluster serves at once and then reads everything back into the
        // scheduler, the controllers and the simulator; that work is timed here rather than
        // left to slow down the next step.
        let settled = wait_settled(cluster_pid(&paths)?)?;
        row_time("restored cluster settled", settled - restore_started, "-");
    }
    if pods > 0 {
        let took = scale_until(kwokctl, name, "pod", &[], 0, pods, || {
            Ok(pods - pod_count(&client)?.min(pods))
        })?;
        row_rate("pods deleted", pods, pods, took, "10,000 in 90 s (111/s)");
    }

    let deleted = kwokctl.run(name, &["delete", "cluster"])?;
    row_time("delete cluster", deleted, "-");
    println!(
        "cluster process while scaling up: peak RSS {:.0} MiB, CPU {:.1} s over {:.1} s, API writes {:.0}/s ({} writes)",
        peak as f64 / (1 << 20) as f64,
        cpu,
        elapsed.as_secs_f64(),
        writes as f64 / elapsed.as_secs_f64(),
        writes
    );
    if nodes + pods > 0 {
        println!(
            "per object (nodes and pods) while scaling up: peak RSS {:.1} KiB, CPU {:.2} ms",
            peak as f64 / 1024.0 / (nodes + pods) as f64,
            cpu * 1000.0 / (nodes + pods) as f64
        );
    }
    Ok(())
}

/// Polls `done` until it holds, returning the time since `started`.
fn wait_for(started: Instant, done: &dyn Fn() -> anyhow::Result<bool>) -> anyhow::Result<Duration> {
    loop {
        let asked = Instant::now();
        // The server may still be coming up: errors count as "not yet".
        if done().unwrap_or(false) {
            return Ok(started.elapsed());
        }
        let check_cost = asked.elapsed();
        if started.elapsed() > STEP_TIMEOUT {
            bail!("the cluster did not come back within {STEP_TIMEOUT:?}");
        }
        std::thread::sleep(pause_after_check(Duration::from_millis(200), check_cost));
    }
}

/// Runs `kwokctl scale <kind> <flags> --replicas <n>` and waits until `reached()` reports
/// `target`, timing both together as a user experiences them.
fn scale_until(
    kwokctl: &Kwokctl,
    name: &str,
    kind: &str,
    flags: &[&str],
    n: usize,
    target: usize,
    reached: impl Fn() -> anyhow::Result<usize>,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let replicas = n.to_string();
    let mut verb = vec!["scale", kind];
    verb.extend_from_slice(flags);
    verb.extend(["--replicas", &replicas]);
    let mut child = kwokctl.command(name, &verb).spawn()?;
    let mut scaled = false;
    loop {
        if !scaled && let Some(status) = child.try_wait()? {
            if !status.success() {
                let out = child.wait_with_output()?;
                bail!(
                    "kwokctl scale {kind} --replicas {n} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            scaled = true;
        }
        let asked = Instant::now();
        if scaled && reached()? >= target {
            return Ok(started.elapsed());
        }
        let check_cost = asked.elapsed();
        if started.elapsed() > STEP_TIMEOUT {
            let _ = child.kill();
            bail!("scaling {kind}s to {n} did not finish within {STEP_TIMEOUT:?}");
        }
        std::thread::sleep(pause_after_check(
            poll_interval(started.elapsed()),
            check_cost,
        ));
    }
}

/// Waits until the cluster process uses less than half a core over a second (lease renewals
/// of 10,000 nodes take about 40 % of one).
fn wait_settled(pid: u32) -> anyhow::Result<Instant> {
    let started = Instant::now();
    let mut before = cpu_seconds(pid)?;
    loop {
        let quiet_from = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        let now = cpu_seconds(pid)?;
        if now - before < 0.5 {
            return Ok(quiet_from);
        }
        if started.elapsed() > STEP_TIMEOUT {
            bail!("the cluster did not settle within {STEP_TIMEOUT:?}");
        }
        before = now;
    }
}

/// How long to wait between two looks at the cluster: often for short steps, about 1 % of the
/// time so far for long ones, so that counting 100,000 pods does not itself load the cluster.
/// How long to wait before the next check: `interval`, or longer when the last check took a
/// while. A check can cost the server a scan of every pod (a million at the end of a large
/// run), so the benchmark's own share of the cluster's CPU stays small.
fn pause_after_check(interval: Duration, check_cost: Duration) -> Duration {
    interval.max(check_cost * 5)
}

fn poll_interval(elapsed: Duration) -> Duration {
    (elapsed / 100).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

fn row_time(step: &str, took: Duration, gate: &str) {
    println!(
        "{step:<30} {:>9} {:>9.3} {:>10}   {gate}",
        "-",
        took.as_secs_f64(),
        "-"
    );
}

/// A scaling step: `objects` in the cluster afterwards, `changed` of them by this step.
fn row_rate(step: &str, objects: usize, changed: usize, took: Duration, gate: &str) {
    println!(
        "{step:<30} {objects:>9} {:>9.3} {:>10.0}   {gate}",
        took.as_secs_f64(),
        changed as f64 / took.as_secs_f64()
    );
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The pid of the running cluster process, from its pid file.
fn cluster_pid(paths: &ClusterPaths) -> anyhow::Result<u32> {
    crate::runtime::running_pid(paths, crate::commands::create::APISERVER)
        .context("the cluster process is not running")
}

fn proc_file(pid: u32, file: &str) -> anyhow::Result<String> {
    let path = Path::new("/proc").join(pid.to_string()).join(file);
    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = proc_file(pid, "stat")?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
    let clock = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11) + ticks(12)) / clock.max(1.0))
}

fn peak_rss_bytes(pid: u32) -> anyhow::Result<u64> {
    soak::status_bytes(pid, "VmHWM:")
}

fn latest_revision(client: &Client) -> anyhow::Result<u64> {
    let list = client.get_json("/api/v1/namespaces?limit=1")?;
    list.pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse().ok())
        .context("list without a resourceVersion")
}

#[derive(Deserialize)]
struct List<T> {
    items: Vec<T>,
    #[serde(default)]
    metadata: ListMeta,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListMeta {
    #[serde(default)]
    remaining_item_count: Option<usize>,
    #[serde(default, rename = "continue")]
    continue_token: Option<String>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Deserialize, Default)]
struct NodeStatus {
    #[serde(default)]
    conditions: Vec<Condition>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

#[derive(Deserialize)]
struct Named {}

fn list<T: for<'de> Deserialize<'de>>(client: &Client, path: &str) -> anyhow::Result<List<T>> {
    let resp = client.get(path)?;
    if !resp.ok() {
        bail!("GET {path}: {}", resp.message());
    }
    Ok(serde_json::from_slice(&resp.body)?)
}

fn ready_nodes(client: &Client) -> anyhow::Result<usize> {
    let nodes: List<Node> = list(client, "/api/v1/nodes")?;
    Ok(nodes
        .items
        .iter()
        .filter(|n| {
            n.status
                .conditions
                .iter()
                .any(|c| c.kind == "Ready" && c.status == "True")
        })
        .count())
}

/// Pods in the cluster.
fn pod_count(client: &Client) -> anyhow::Result<usize> {
    object_count(client, "/api/v1/pods")
}

/// Objects of a list path, from one single-item page and its remaining count.
fn object_count(client: &Client, path: &str) -> anyhow::Result<usize> {
    let page: List<Named> = list(client, &format!("{path}?limit=1"))?;
    Ok(page.items.len() + page.metadata.remaining_item_count.unwrap_or(0))
}

/// Running pods: all pods when none is left in another phase.
fn running_pods(client: &Client) -> anyhow::Result<usize> {
    let waiting: List<Named> = list(
        client,
        "/api/v1/pods?limit=1&fieldSelector=status.phase%21%3DRunning",
    )?;
    let total = pod_count(client)?;
    if waiting.items.is_empty() && waiting.metadata.continue_token.is_none() {
        Ok(total)
    } else {
        Ok(0)
    }
}
