//! Runtimes driven through a container engine: upstream's compose runtimes (one container per
//! component, `kwok-<name>-<component>`, network `kwok-<name>`) and kind clusters
//! (`kwok-<name>-control-plane`). kwokctl cannot create these yet, but it manages the ones
//! upstream created.

use std::time::Duration;

use super::{Cluster, ComponentStatus, Engine, Runtime, StartOptions, StopMode, StopReport};
use crate::context::Context;
use crate::exec;

/// How long one engine command (start, stop, rm) may take.
const ENGINE_COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

fn check_engine(engine: Engine, timeout: Duration) -> Result<(), String> {
    exec::run(engine.command(), &["version"], &[], timeout)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn container_name(cluster: &Cluster, component: &str) -> String {
    format!("kwok-{}-{component}", cluster.name)
}

/// `docker`, `podman`, `nerdctl`, `finch` and `lima`.
pub struct ComposeRuntime {
    engine: Engine,
    name: String,
    probe_timeout: Duration,
}

impl ComposeRuntime {
    pub fn new(ctx: &Context, engine: Engine, name: &str) -> Self {
        Self {
            engine,
            name: name.to_string(),
            probe_timeout: ctx.probe_timeout(),
        }
    }

    fn engine(&self, args: &[&str]) -> Result<exec::Output, exec::ExecError> {
        exec::run(self.engine.command(), args, &[], ENGINE_COMMAND_TIMEOUT)
    }
}

impl Runtime for ComposeRuntime {
    fn name(&self) -> &str {
        &self.name
    }

    fn available(&self) -> Result<(), String> {
        check_engine(self.engine, self.probe_timeout)
    }

    fn start(&self, cluster: &Cluster, _options: StartOptions) -> anyhow::Result<()> {
        for component in &cluster.config.components {
            self.engine(&["start", &container_name(cluster, &component.name)])?;
        }
        Ok(())
    }

    fn stop(&self, cluster: &Cluster, _mode: StopMode) -> anyhow::Result<StopReport> {
        let mut report = StopReport::default();
        for component in cluster.config.components.iter().rev() {
            let container = container_name(cluster, &component.name);
            self.engine(&["stop", &container, "--time=0"])?;
            report.containers.push(container);
        }
        Ok(report)
    }

    fn down(
        &self,
        cluster: &Cluster,
        _mode: StopMode,
        reachable: bool,
    ) -> anyhow::Result<StopReport> {
        let mut report = StopReport::default();
        if !reachable {
            tracing::warn!(
                cluster = %cluster.name,
                engine = self.engine.command(),
                "Container engine is unreachable, its containers and network (if any) are left behind"
            );
            return Ok(report);
        }
        for component in cluster.config.components.iter().rev() {
            let container = container_name(cluster, &component.name);
            match self.engine(&["rm", "--force", &container]) {
                Ok(_) => report.containers.push(container),
                Err(err) => tracing::warn!(%container, err = %err, "Failed to remove container"),
            }
        }
        let network = format!("kwok-{}", cluster.name);
        if self.engine(&["network", "inspect", &network]).is_ok()
            && let Err(err) = self.engine(&["network", "rm", &network])
        {
            tracing::warn!(%network, err = %err, "Failed to remove network");
        }
        Ok(report)
    }

    fn components(&self, cluster: &Cluster) -> Vec<(String, ComponentStatus)> {
        let available = self.available();
        cluster
            .config
            .components
            .iter()
            .map(|c| {
                let status = match &available {
                    Err(e) => ComponentStatus::Error(e.clone()),
                    Ok(()) => match self.engine(&[
                        "inspect",
                        "--format={{.State.Running}}",
                        &container_name(cluster, &c.name),
                    ]) {
                        Ok(out) if out.stdout.trim() == "true" => ComponentStatus::Ready,
                        Ok(_) => ComponentStatus::Stopped,
                        Err(_) => ComponentStatus::Unknown,
                    },
                };
                (c.name.clone(), status)
            })
            .collect()
    }

    fn logs(&self, cluster: &Cluster, component: &str, follow: bool) -> anyhow::Result<()> {
        let mut args = vec!["logs".to_string()];
        if follow {
            args.push("-f".into());
        }
        args.push(container_name(cluster, component));
        let code = exec::passthrough(self.engine.command(), &args, &[])?;
        anyhow::ensure!(
            code == 0,
            "{} logs exited with {code}",
            self.engine.command()
        );
        Ok(())
    }

    fn info(&self) -> String {
        match exec::run(self.engine.command(), &["info"], &[], self.probe_timeout) {
            Ok(out) => out.stdout,
            Err(e) => e.to_string(),
        }
    }
}

/// `kind` and `kind-<engine>`.
pub struct KindRuntime {
    engine: Engine,
    name: String,
    probe_timeout: Duration,
    kind_binary: String,
}

impl KindRuntime {
    pub fn new(ctx: &Context, engine: Engine, name: &str) -> Self {
        Self {
            engine,
            name: name.to_string(),
            probe_timeout: ctx.probe_timeout(),
            kind_binary: ctx
                .env
                .kwok("KIND_BINARY")
                .filter(|b| !b.contains("://"))
                .unwrap_or("kind")
                .to_string(),
        }
    }

    fn node(&self, cluster: &Cluster) -> String {
        format!("kwok-{}-control-plane", cluster.name)
    }
}

impl Runtime for KindRuntime {
    fn name(&self) -> &str {
        &self.name
    }

    fn available(&self) -> Result<(), String> {
        check_engine(self.engine, self.probe_timeout)
    }

    fn start(&self, cluster: &Cluster, _options: StartOptions) -> anyhow::Result<()> {
        exec::run(
            self.engine.command(),
            &["start", &self.node(cluster)],
            &[],
            ENGINE_COMMAND_TIMEOUT,
        )?;
        Ok(())
    }

    fn stop(&self, cluster: &Cluster, _mode: StopMode) -> anyhow::Result<StopReport> {
        let node = self.node(cluster);
        exec::run(
            self.engine.command(),
            &["stop", &node],
            &[],
            ENGINE_COMMAND_TIMEOUT,
        )?;
        Ok(StopReport {
            processes: Vec::new(),
            containers: vec![node],
        })
    }

    fn down(
        &self,
        cluster: &Cluster,
        _mode: StopMode,
        reachable: bool,
    ) -> anyhow::Result<StopReport> {
        let mut report = StopReport::default();
        if !reachable {
            tracing::warn!(
                cluster = %cluster.name,
                engine = self.engine.command(),
                "Container engine is unreachable, the kind cluster (if any) is left behind"
            );
            return Ok(report);
        }
        let kind_name = format!("kwok-{}", cluster.name);
        let provider = match self.engine {
            Engine::Podman => "podman",
            Engine::Nerdctl | Engine::Lima | Engine::Finch => "nerdctl",
            Engine::Docker => "docker",
        };
        match exec::run(
            &self.kind_binary,
            &["delete", "cluster", "--name", &kind_name],
            &[("KIND_EXPERIMENTAL_PROVIDER", provider)],
            ENGINE_COMMAND_TIMEOUT,
        ) {
            Ok(_) => report.containers.push(self.node(cluster)),
            Err(err) => tracing::error!(err = %err, "Failed to delete cluster"),
        }
        Ok(report)
    }

    fn components(&self, cluster: &Cluster) -> Vec<(String, ComponentStatus)> {
        let status = match self.available() {
            Err(e) => ComponentStatus::Error(e),
            Ok(()) => match exec::run(
                self.engine.command(),
                &[
                    "inspect",
                    "--format={{.State.Running}}",
                    &self.node(cluster),
                ],
                &[],
                self.probe_timeout,
            ) {
                Ok(out) if out.stdout.trim() == "true" => ComponentStatus::Ready,
                Ok(_) => ComponentStatus::Stopped,
                Err(_) => ComponentStatus::Unknown,
            },
        };
        cluster
            .config
            .components
            .iter()
            .map(|c| (c.name.clone(), status.clone()))
            .collect()
    }

    fn logs(&self, _cluster: &Cluster, _component: &str, _follow: bool) -> anyhow::Result<()> {
        anyhow::bail!("logs of {} clusters are not supported yet", self.name)
    }

    fn info(&self) -> String {
        match exec::run(&self.kind_binary, &["version"], &[], self.probe_timeout) {
            Ok(out) => out.stdout,
            Err(e) => e.to_string(),
        }
    }
}
