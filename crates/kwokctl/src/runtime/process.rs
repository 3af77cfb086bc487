//! Runtimes whose components are host processes: `embedded` (the `kwok apiserver` process) and
//! `binary` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok-controller).
//! Each component runs detached with `pids/<name>.pid` and `logs/<name>.log`; components start
//! after the components they link to are ready, and stop in reverse order.

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::{
    Cluster, ComponentStatus, Runtime, RuntimeKind, StartOptions, StopMode, StopReport, binary,
};
use crate::audit::StoppedProcess;
use crate::config::Component;
use crate::context::Context;
use crate::paths::ClusterPaths;
use crate::process;

/// How long a graceful stop waits for a process before killing it.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// A component process exited before the cluster served.
#[derive(Debug, thiserror::Error)]
#[error("{component} exited with {status} before the cluster served; last lines of {log}:\n{tail}")]
pub struct ExitedEarly {
    pub component: String,
    pub status: ExitStatus,
    pub log: String,
    pub tail: String,
}

/// How long a started component may take to fail before `start` counts it as running.
const SETTLE_TIME: Duration = Duration::from_millis(300);

/// The `embedded` and `binary` runtimes.
pub struct ProcessRuntime {
    ctx: Context,
    kind: RuntimeKind,
    name: String,
    /// The components of the cluster, for the availability check.
    components: Vec<Component>,
}

impl ProcessRuntime {
    pub fn new(ctx: Context, kind: RuntimeKind, name: &str, components: Vec<Component>) -> Self {
        Self {
            ctx,
            kind,
            name: name.to_string(),
            components,
        }
    }

    /// The program that runs `component`. `kwok` is looked up as for the embedded runtime, so
    /// `--kwok-binary` and `KWOK_KWOK_BINARY` apply; any other program must exist where the
    /// config says.
    pub fn binary_for(&self, component: &Component) -> Result<PathBuf, String> {
        let is_kwok = Path::new(&component.binary)
            .file_name()
            .is_some_and(|n| n == "kwok");
        // The embedded cluster process is `kwok`; add-ons run their own programs.
        let embedded_kwok =
            self.kind == RuntimeKind::Embedded && !crate::addons::is_process(&component.name);
        if embedded_kwok || is_kwok {
            return self.ctx.kwok_binary(Some(&component.binary));
        }
        let path = self.ctx.env.expand(&component.binary);
        if crate::context::is_executable(&path) {
            Ok(path)
        } else if component.binary.is_empty() {
            Err(format!("component {} has no binary", component.name))
        } else if path.exists() {
            Err(format!(
                "binary {} of component {} is not executable",
                path.display(),
                component.name
            ))
        } else {
            Err(format!(
                "binary {} of component {} does not exist",
                path.display(),
                component.name
            ))
        }
    }

    /// Waits until component `name` is ready, failing early when a component started by this
    /// call exits.
    fn wait_component(
        &self,
        cluster: &Cluster,
        name: &str,
        started: &mut [(String, Child)],
        options: StartOptions,
    ) -> anyhow::Result<()> {
        let Some(component) = cluster.config.component(name) else {
            return Ok(());
        };
        let mut pause = Duration::from_millis(5);
        loop {
            if component_ready(cluster, component) {
                return Ok(());
            }
            check_exited(cluster, started)?;
            if Instant::now() >= options.deadline {
                anyhow::bail!(
                    "component {name} is not ready yet; see {}",
                    cluster.paths.log_file(name).display()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    fn work_dir(&self, cluster: &Cluster, component: &Component) -> PathBuf {
        if component.work_dir.is_empty() {
            cluster.paths.dir.clone()
        } else {
            self.ctx.env.expand(&component.work_dir)
        }
    }

    fn wait_serving(
        &self,
        cluster: &Cluster,
        started: &mut [(String, Child)],
        options: StartOptions,
    ) -> anyhow::Result<()> {
        let Some(port) = cluster.apiserver_port() else {
            return Ok(());
        };
        let prober = crate::probe::Prober::for_pki(&pki::PkiPaths::new(cluster.paths.pki()))?;
        let mut pause = Duration::from_millis(2);
        loop {
            if prober.ready(port, Duration::from_millis(500)) {
                return Ok(());
            }
            check_exited(cluster, started)?;
            if Instant::now() >= options.deadline {
                if self.kind == RuntimeKind::Binary {
                    tracing::warn!(cluster = %cluster.name, "Cluster is not served yet");
                    return Ok(());
                }
                anyhow::bail!(
                    "cluster {:?} does not serve on https://127.0.0.1:{port} yet; see {}",
                    cluster.name,
                    cluster.paths.logs().display()
                );
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }
}

/// Fails with [`ExitedEarly`] when one of the `started` processes has exited.
fn check_exited(cluster: &Cluster, started: &mut [(String, Child)]) -> anyhow::Result<()> {
    for (component, child) in started.iter_mut() {
        if let Some(status) = child.try_wait()? {
            let _ = fs::remove_file(cluster.paths.pid_file(component));
            let log = cluster.paths.log_file(component);
            return Err(ExitedEarly {
                component: component.clone(),
                status,
                tail: log_tail(&log, 20),
                log: log.display().to_string(),
            }
            .into());
        }
    }
    Ok(())
}

/// Whether a running component is ready: etcd answers `/health`, the API server `/readyz`;
/// the others are ready while their process runs.
fn component_ready(cluster: &Cluster, component: &Component) -> bool {
    if running_pid(&cluster.paths, &component.name).is_none() {
        return false;
    }
    match component.name.as_str() {
        binary::ETCD => binary::etcd_port(&cluster.config.options, &cluster.config.components)
            .is_some_and(|port| crate::probe::etcd_healthy(port, Duration::from_millis(500))),
        binary::KUBE_APISERVER => cluster.serves(Duration::from_millis(500)),
        _ => crate::addons::ready(component).unwrap_or(true),
    }
}

/// The components in start order: each after the components it links to (links to
/// components the cluster does not have are ignored), otherwise in config order.
pub fn start_order(components: &[Component]) -> anyhow::Result<Vec<&Component>> {
    let mut placed: Vec<&Component> = Vec::with_capacity(components.len());
    let mut pending: Vec<&Component> = components.iter().collect();
    while !pending.is_empty() {
        let ready = pending.iter().position(|c| {
            c.links.iter().all(|link| {
                placed.iter().any(|p| p.name == *link)
                    || !components.iter().any(|other| other.name == *link)
            })
        });
        match ready {
            Some(i) => placed.push(pending.remove(i)),
            None => anyhow::bail!(
                "broken links dependency detected among components {}",
                pending
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    Ok(placed)
}

/// The live pid recorded for `component`, if it still belongs to the cluster.
pub fn running_pid(paths: &ClusterPaths, component: &str) -> Option<u32> {
    let pid = process::read_pid(&paths.pid_file(component))?;
    (process::is_alive(pid) && process::belongs_to(pid, &paths.dir)).then_some(pid)
}

/// Stops the processes of `components` in order and removes their pid files, stale ones too.
pub fn stop_components(
    paths: &ClusterPaths,
    components: &[String],
    mode: StopMode,
) -> anyhow::Result<Vec<StoppedProcess>> {
    let grace = match mode {
        StopMode::Graceful => STOP_GRACE,
        StopMode::Kill => Duration::ZERO,
    };
    let mut stopped = Vec::new();
    for component in components {
        let pid_file = paths.pid_file(component);
        if let Some(pid) = running_pid(paths, component) {
            process::stop(pid, grace).with_context(|| format!("stop {component} (pid {pid})"))?;
            stopped.push(StoppedProcess {
                component: component.clone(),
                pid,
            });
        } else if pid_file.exists() {
            tracing::debug!(component = %component, "Removing stale pid file");
        }
        match fs::remove_file(&pid_file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("remove {}", pid_file.display())),
        }
    }
    Ok(stopped)
}

/// Stops every process with a pid file under `pids/`, whatever the config says.
pub fn stop_recorded_processes(
    paths: &ClusterPaths,
    mode: StopMode,
) -> anyhow::Result<Vec<StoppedProcess>> {
    let Ok(entries) = fs::read_dir(paths.pids()) else {
        return Ok(Vec::new());
    };
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".pid").map(str::to_string)
        })
        .collect();
    stop_components(paths, &names, mode)
}

fn stop_order(cluster: &Cluster) -> Vec<String> {
    let components = &cluster.config.components;
    let ordered = start_order(components).unwrap_or_else(|_| components.iter().collect());
    let mut names: Vec<String> = ordered.iter().rev().map(|c| c.name.clone()).collect();
    if let Ok(entries) = fs::read_dir(cluster.paths.pids()) {
        for entry in entries.filter_map(Result::ok) {
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix(".pid")
                && !names.iter().any(|n| n == name)
            {
                names.push(name.to_string());
            }
        }
    }
    names
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Copies a log file to stdout; with `follow`, keeps copying what is appended until interrupted.
pub fn print_log(path: &Path, follow: bool) -> anyhow::Result<()> {
    let mut file = fs::File::open(path).with_context(|| format!("open log {}", path.display()))?;
    let mut out = std::io::stdout().lock();
    std::io::copy(&mut file, &mut out)?;
    out.flush()?;
    if !follow {
        return Ok(());
    }
    let mut position = file.stream_position()?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(position);
        if len < position {
            file = fs::File::open(path)?;
            position = 0;
        }
        file.seek(SeekFrom::Start(position))?;
        let n = file.read(&mut buf)?;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        out.write_all(&buf[..n])?;
        out.flush()?;
        position += n as u64;
    }
}

impl Runtime for ProcessRuntime {
    fn name(&self) -> &str {
        &self.name
    }

    fn available(&self) -> Result<(), String> {
        // Components without a binary (clusters written by other tools) have nothing to check,
        // but an embedded cluster still needs a kwok to be found. Each component is looked up
        // as `start` runs it: an embedded cluster's recorded kwok (`--kwok-binary` at create)
        // counts even when no kwok is beside kwokctl or on PATH.
        // An embedded cluster's add-ons (prometheus, ...) are stopped by pid whether or not
        // their programs are still there.
        let embedded = self.kind == RuntimeKind::Embedded;
        let unchecked = |c: &&Component| {
            c.binary.is_empty() || (embedded && crate::addons::is_process(&c.name))
        };
        let mut checked = false;
        for component in self.components.iter().filter(|c| !unchecked(c)) {
            self.binary_for(component)?;
            checked = true;
        }
        if embedded && !checked {
            self.ctx.kwok_binary(None)?;
        }
        Ok(())
    }

    fn start(&self, cluster: &Cluster, options: StartOptions) -> anyhow::Result<()> {
        for dir in [cluster.paths.logs(), cluster.paths.pids()] {
            fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let mut started = Vec::new();
        for component in start_order(&cluster.config.components)? {
            for link in &component.links {
                self.wait_component(cluster, link, &mut started, options)?;
            }
            if running_pid(&cluster.paths, &component.name).is_some() {
                continue;
            }
            let binary = self.binary_for(component).map_err(anyhow::Error::msg)?;
            let log = cluster.paths.log_file(&component.name);
            let child = process::spawn_detached(
                &binary,
                &component.args,
                &self.work_dir(cluster, component),
                &log,
            )
            .with_context(|| format!("start {} ({})", component.name, binary.display()))?;
            process::write_pid(&cluster.paths.pid_file(&component.name), child.id())
                .with_context(|| format!("write pid file of {}", component.name))?;
            started.push((component.name.clone(), child));
        }
        self.wait_serving(cluster, &mut started, options)?;
        // Add-ons nothing links to are waited for last.
        for addon in cluster
            .config
            .components
            .iter()
            .filter(|c| crate::addons::is_process(&c.name))
        {
            self.wait_component(cluster, &addon.name, &mut started, options)?;
        }
        if self.kind == RuntimeKind::Binary && !started.is_empty() {
            std::thread::sleep(SETTLE_TIME);
            check_exited(cluster, &mut started)?;
        }
        Ok(())
    }

    fn stop(&self, cluster: &Cluster, mode: StopMode) -> anyhow::Result<StopReport> {
        let mode = if self.kind == RuntimeKind::Binary {
            StopMode::Kill
        } else {
            mode
        };
        Ok(StopReport {
            processes: stop_components(&cluster.paths, &stop_order(cluster), mode)?,
            containers: Vec::new(),
        })
    }

    fn down(
        &self,
        cluster: &Cluster,
        mode: StopMode,
        _reachable: bool,
    ) -> anyhow::Result<StopReport> {
        self.stop(cluster, mode)
    }

    fn components(&self, cluster: &Cluster) -> Vec<(String, ComponentStatus)> {
        cluster
            .config
            .components
            .iter()
            .map(|c| {
                let status = if running_pid(&cluster.paths, &c.name).is_none() {
                    ComponentStatus::Stopped
                } else if component_ready(cluster, c) {
                    ComponentStatus::Ready
                } else {
                    ComponentStatus::NotReady
                };
                (c.name.clone(), status)
            })
            .collect()
    }

    fn logs(&self, cluster: &Cluster, component: &str, follow: bool) -> anyhow::Result<()> {
        let path = if component == "audit" {
            cluster.paths.audit_log()
        } else {
            cluster.paths.log_file(component)
        };
        if !path.exists() {
            anyhow::bail!(
                "no logs for component {component:?}: {} does not exist",
                path.display()
            );
        }
        print_log(&path, follow)
    }

    fn info(&self) -> String {
        format!("{}/{}\n", std::env::consts::OS, std::env::consts::ARCH)
    }
}
