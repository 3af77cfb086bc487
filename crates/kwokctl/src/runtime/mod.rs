//! Runtimes run a cluster's components. They share one trait; `available()` decides what
//! `delete cluster` may do.
//!
//! * `embedded` (default): one `kwok apiserver` process per cluster.
//! * `binary`: one host process per component (etcd, kube-apiserver, kube-controller-manager,
//!   kube-scheduler, kwok-controller), with pid files; also starts, stops and deletes clusters
//!   upstream kwokctl created.
//! * `docker`, `podman`, `nerdctl`, `finch`, `lima`: container engines.
//! * `kind`, `kind-podman`, `kind-nerdctl`, `kind-lima`, `kind-finch`: kind clusters.
//!
//! `embedded` and `binary` can create clusters; the others are recognised so their clusters can
//! be listed, started, stopped and deleted.

pub mod binary;
mod container;
mod process;

use std::fmt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::Value;

use crate::audit::StoppedProcess;
use crate::config::{self, KwokctlConfiguration};
use crate::context::Context;
use crate::paths::ClusterPaths;

pub use container::{ComposeRuntime, KindRuntime};
pub use process::{
    ExitedEarly, ProcessRuntime, log_tail, print_log, running_pid, start_order,
    stop_recorded_processes,
};

/// The runtime of new clusters unless configured otherwise.
pub const DEFAULT_RUNTIME: &str = "embedded";

/// Every runtime name kwokctl recognises.
pub const KNOWN_RUNTIMES: &[&str] = &[
    "embedded",
    "binary",
    "docker",
    "podman",
    "nerdctl",
    "finch",
    "lima",
    "kind",
    "kind-podman",
    "kind-nerdctl",
    "kind-lima",
    "kind-finch",
];

/// A container engine behind the compose and kind runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Docker,
    Podman,
    Nerdctl,
    Finch,
    Lima,
}

impl Engine {
    /// The command that drives the engine.
    pub fn command(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Nerdctl => "nerdctl",
            Engine::Finch => "finch",
            Engine::Lima => "nerdctl.lima",
        }
    }
}

/// The runtimes kwokctl knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeKind {
    Embedded,
    Binary,
    Compose(Engine),
    Kind(Engine),
}

impl RuntimeKind {
    /// Looks a runtime name up; `None` for names kwokctl does not know.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "embedded" => Self::Embedded,
            "binary" => Self::Binary,
            "docker" => Self::Compose(Engine::Docker),
            "podman" => Self::Compose(Engine::Podman),
            "nerdctl" => Self::Compose(Engine::Nerdctl),
            "finch" => Self::Compose(Engine::Finch),
            "lima" => Self::Compose(Engine::Lima),
            "kind" => Self::Kind(Engine::Docker),
            "kind-podman" => Self::Kind(Engine::Podman),
            "kind-nerdctl" => Self::Kind(Engine::Nerdctl),
            "kind-lima" => Self::Kind(Engine::Lima),
            "kind-finch" => Self::Kind(Engine::Finch),
            _ => return None,
        })
    }
}

/// What `get components` shows for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentStatus {
    Ready,
    NotReady,
    Stopped,
    Unknown,
    Error(String),
}

impl fmt::Display for ComponentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComponentStatus::Ready => f.write_str("Ready"),
            ComponentStatus::NotReady => f.write_str("NotReady"),
            ComponentStatus::Stopped => f.write_str("Stopped"),
            ComponentStatus::Unknown => f.write_str("Unknown"),
            ComponentStatus::Error(e) => write!(f, "Error:{e}"),
        }
    }
}

/// What stopping or tearing down reached.
#[derive(Debug, Clone, Default)]
pub struct StopReport {
    pub processes: Vec<StoppedProcess>,
    pub containers: Vec<String>,
}

/// How to stop processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// SIGTERM, then SIGKILL after a grace period: data is flushed.
    Graceful,
    /// SIGKILL at once: used when the data is about to be removed anyway.
    Kill,
}

/// When to give up starting.
#[derive(Debug, Clone, Copy)]
pub struct StartOptions {
    pub deadline: Instant,
}

impl StartOptions {
    /// Waits at most `timeout`, or two minutes when it is zero (as upstream waits for serving).
    pub fn with_timeout(timeout: Duration) -> Self {
        let timeout = if timeout.is_zero() {
            Duration::from_secs(120)
        } else {
            timeout
        };
        Self {
            deadline: Instant::now() + timeout,
        }
    }
}

/// A cluster as recorded on disk.
#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub paths: ClusterPaths,
    pub config: KwokctlConfiguration,
    /// The other documents of its `kwok.yaml` (stages, `KwokConfiguration`, ...), kept verbatim.
    pub other_documents: Vec<Value>,
}

/// Why a cluster could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cluster does not exist")]
    NotFound,
    #[error("{0:#}")]
    Invalid(anyhow::Error),
}

impl Cluster {
    /// Reads `<dir>/kwok.yaml`.
    pub fn load(name: &str, paths: &ClusterPaths) -> Result<Self, LoadError> {
        let file = paths.config();
        if !file.is_file() {
            return Err(LoadError::NotFound);
        }
        let docs = config::read_documents(&file).map_err(LoadError::Invalid)?;
        let mut conf = None;
        let mut others = Vec::new();
        for doc in docs {
            if conf.is_none() && config::is_kind(&doc, config::KWOKCTL_CONFIGURATION) {
                conf = Some(doc);
            } else {
                others.push(doc);
            }
        }
        let conf = conf.ok_or_else(|| {
            LoadError::Invalid(anyhow::anyhow!(
                "{} has no {} document",
                file.display(),
                config::KWOKCTL_CONFIGURATION
            ))
        })?;
        Ok(Self {
            name: name.to_string(),
            paths: paths.clone(),
            config: KwokctlConfiguration::from_value(conf)
                .with_context(|| format!("load {}", file.display()))
                .map_err(LoadError::Invalid)?,
            other_documents: others,
        })
    }

    /// Writes `<dir>/kwok.yaml` atomically.
    pub fn save(&self) -> anyhow::Result<()> {
        let mut docs = vec![self.config.to_value()];
        docs.extend(self.other_documents.iter().cloned());
        let text = config::render_documents(&docs)?;
        std::fs::create_dir_all(&self.paths.dir)
            .with_context(|| format!("create {}", self.paths.dir.display()))?;
        let file = self.paths.config();
        let tmp = self
            .paths
            .dir
            .join(format!(".kwok.yaml.{}.tmp", std::process::id()));
        std::fs::write(&tmp, text).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &file).with_context(|| format!("write {}", file.display()))?;
        Ok(())
    }

    /// The runtime name recorded in the config.
    pub fn runtime_name(&self) -> &str {
        &self.config.options.runtime
    }

    /// The API server's host port.
    pub fn apiserver_port(&self) -> Option<u16> {
        let port = self.config.options.kube_apiserver_port;
        if port != 0 {
            return u16::try_from(port).ok();
        }
        self.config
            .component("kube-apiserver")?
            .ports
            .iter()
            .map(|p| {
                if p.host_port != 0 {
                    p.host_port
                } else {
                    p.port
                }
            })
            .find(|p| *p != 0)
            .and_then(|p| u16::try_from(p).ok())
    }

    /// Whether `/readyz` answers 200 with the cluster's PKI.
    pub fn serves(&self, timeout: Duration) -> bool {
        let Some(port) = self.apiserver_port() else {
            return false;
        };
        let pki = pki::PkiPaths::new(self.paths.pki());
        match crate::probe::Prober::for_pki(&pki) {
            Ok(prober) => prober.ready(port, timeout),
            Err(_) => false,
        }
    }
}

/// The operations every runtime provides.
pub trait Runtime {
    /// The runtime's name as written in `kwok.yaml`.
    fn name(&self) -> &str;
    /// Whether the runtime can act: its engine or program answers. The error says why not.
    fn available(&self) -> Result<(), String>;
    /// Starts every component that is not running and waits until the cluster serves.
    fn start(&self, cluster: &Cluster, options: StartOptions) -> anyhow::Result<()>;
    /// Stops every component, keeping containers and data.
    fn stop(&self, cluster: &Cluster, mode: StopMode) -> anyhow::Result<StopReport>;
    /// Stops and removes everything outside the cluster folder (processes, containers, networks).
    /// `reachable` is false when the availability check failed, so the engine is not called.
    fn down(
        &self,
        cluster: &Cluster,
        mode: StopMode,
        reachable: bool,
    ) -> anyhow::Result<StopReport>;
    /// The status of each component.
    fn components(&self, cluster: &Cluster) -> Vec<(String, ComponentStatus)>;
    /// Prints a component's log on stdout, following it when asked.
    fn logs(&self, cluster: &Cluster, component: &str, follow: bool) -> anyhow::Result<()>;
    /// A description of the runtime for `export logs` (`<runtime>-info.txt`).
    fn info(&self) -> String;
}

/// The runtime named in a cluster's config. Unknown names give a runtime that is never available
/// and can only tear down what it finds on disk (with `--force`).
pub fn for_cluster(ctx: &Context, cluster: &Cluster) -> Box<dyn Runtime> {
    let name = cluster.runtime_name().to_string();
    match RuntimeKind::parse(&name) {
        Some(kind @ (RuntimeKind::Embedded | RuntimeKind::Binary)) => Box::new(
            ProcessRuntime::new(ctx.clone(), kind, &name, cluster.config.components.clone()),
        ),
        Some(RuntimeKind::Compose(engine)) => Box::new(ComposeRuntime::new(ctx, engine, &name)),
        Some(RuntimeKind::Kind(engine)) => Box::new(KindRuntime::new(ctx, engine, &name)),
        None => Box::new(UnknownRuntime { name }),
    }
}

/// A runtime name kwokctl does not know.
pub struct UnknownRuntime {
    name: String,
}

impl UnknownRuntime {
    fn error(&self) -> String {
        format!(
            "unknown runtime {:?} (known: {})",
            self.name,
            KNOWN_RUNTIMES.join(", ")
        )
    }
}

impl Runtime for UnknownRuntime {
    fn name(&self) -> &str {
        &self.name
    }
    fn available(&self) -> Result<(), String> {
        Err(self.error())
    }
    fn start(&self, _: &Cluster, _: StartOptions) -> anyhow::Result<()> {
        Err(anyhow::anyhow!(self.error()))
    }
    fn stop(&self, _: &Cluster, _: StopMode) -> anyhow::Result<StopReport> {
        Err(anyhow::anyhow!(self.error()))
    }
    fn down(&self, cluster: &Cluster, mode: StopMode, _: bool) -> anyhow::Result<StopReport> {
        Ok(StopReport {
            processes: process::stop_recorded_processes(&cluster.paths, mode)?,
            containers: Vec::new(),
        })
    }
    fn components(&self, cluster: &Cluster) -> Vec<(String, ComponentStatus)> {
        cluster
            .config
            .components
            .iter()
            .map(|c| (c.name.clone(), ComponentStatus::Error(self.error())))
            .collect()
    }
    fn logs(&self, cluster: &Cluster, component: &str, follow: bool) -> anyhow::Result<()> {
        process::print_log(&cluster.paths.log_file(component), follow)
    }
    fn info(&self) -> String {
        self.error()
    }
}

/// Removes a folder tree, treating "already gone" as success.
pub fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("remove {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_upstream_runtime_name_is_recognised() {
        for name in KNOWN_RUNTIMES {
            assert!(RuntimeKind::parse(name).is_some(), "{name}");
        }
        assert_eq!(
            RuntimeKind::parse("kind-podman"),
            Some(RuntimeKind::Kind(Engine::Podman))
        );
        assert_eq!(
            RuntimeKind::parse("lima"),
            Some(RuntimeKind::Compose(Engine::Lima))
        );
        assert_eq!(RuntimeKind::parse("rocket"), None);
    }
}
