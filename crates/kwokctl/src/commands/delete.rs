//! `kwokctl delete cluster`.
//!
//! Order for one cluster: read its config → check the runtime is available (abort unless
//! `--force`) → stop it → copy it to `--backup` → remove its kubeconfig entries → remove its
//! folder. Every attempt appends one record to the audit log.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, bail};

use crate::audit::{self, DeleteRecord, Outcome};
use crate::cli::DeleteClusterArgs;
use crate::context::Context;
use crate::duration;
use crate::kubeconfig;
use crate::lock::lock_cluster;
use crate::paths::{ClusterPaths, context_name};
use crate::runtime::{self, Cluster, LoadError, StopMode, StopReport};

/// What happened to one cluster.
pub type DeleteOutcome = Outcome;

/// The runtime of a cluster is not available and `--force` was not given.
#[derive(Debug, thiserror::Error)]
#[error(
    "runtime {runtime:?} of cluster {cluster:?} is not available: {reason}. Nothing was deleted: the config and data are kept in {dir} and the kubeconfig entries in {kubeconfig}. Use --force to delete the cluster anyway"
)]
pub struct RuntimeUnavailable {
    pub runtime: String,
    pub cluster: String,
    pub reason: String,
    pub dir: String,
    pub kubeconfig: String,
}

pub fn run(ctx: &Context, args: &DeleteClusterArgs) -> anyhow::Result<()> {
    let kubeconfig_path = ctx
        .env
        .kubeconfig_path(args.kubeconfig.as_deref())
        .map_err(anyhow::Error::msg)?;
    if !args.all {
        return delete_cluster(ctx, &ctx.name, &kubeconfig_path, args).map(|_| ());
    }
    let names = super::list_clusters(&ctx.workdir)?;
    let mut failed = Vec::new();
    for name in &names {
        if let Err(err) = delete_cluster(ctx, name, &kubeconfig_path, args) {
            tracing::error!(cluster = %name, err = %format!("{err:#}"), "Failed to delete cluster");
            failed.push(name.clone());
        }
    }
    if !failed.is_empty() {
        bail!(
            "failed to delete {} of {} clusters: {}",
            failed.len(),
            names.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Deletes cluster `name` and records the attempt in the audit log.
pub fn delete_cluster(
    ctx: &Context,
    name: &str,
    kubeconfig_path: &Path,
    args: &DeleteClusterArgs,
) -> anyhow::Result<Outcome> {
    let paths = ctx.workdir.cluster(name);
    if ctx.dry_run {
        print_plan(name, &paths, kubeconfig_path, args);
        return Ok(Outcome::Deleted);
    }
    let _lock = lock_cluster(&ctx.workdir, name)?;
    let mut record = DeleteRecord::new(name, &paths.dir, args.force);
    let result = delete_locked(ctx, name, &paths, kubeconfig_path, args, &mut record);
    if let Err(err) = &result {
        let text = format!("{err:#}");
        record.error = Some(match record.error.take() {
            Some(earlier) => format!("{earlier}; {text}"),
            None => text,
        });
    }
    if let Err(err) = audit::append(&ctx.workdir.delete_audit_log(), &mut record) {
        tracing::error!(err = %format!("{err:#}"), "Failed to write the audit record");
    }
    result.map(|()| record.result)
}

fn delete_locked(
    ctx: &Context,
    name: &str,
    paths: &ClusterPaths,
    kubeconfig_path: &Path,
    args: &DeleteClusterArgs,
    record: &mut DeleteRecord,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let cluster = match Cluster::load(name, paths) {
        Ok(cluster) => Ok(cluster),
        Err(LoadError::NotFound) => {
            tracing::warn!(cluster = name, "Cluster does not exist");
            if paths.dir.exists() {
                return remove_leftovers(name, paths, kubeconfig_path, record);
            }
            record.result = Outcome::NotFound;
            return Ok(());
        }
        Err(LoadError::Invalid(e)) => {
            Err(format!("cannot read {}: {e:#}", paths.config().display()))
        }
    };

    let rt = cluster.as_ref().ok().map(|c| runtime::for_cluster(ctx, c));
    record.runtime = cluster.as_ref().ok().map(|c| c.runtime_name().to_string());
    let availability = match (&cluster, &rt) {
        (Ok(_), Some(rt)) => rt.available(),
        (Err(reason), _) => Err(reason.clone()),
        (Ok(_), None) => unreachable!("a loaded cluster always has a runtime"),
    };
    record.available = Some(availability.is_ok());
    record.availability_error = availability.as_ref().err().cloned();
    if let Err(reason) = &availability {
        if !args.force {
            record.result = Outcome::Aborted;
            return Err(RuntimeUnavailable {
                runtime: record.runtime.clone().unwrap_or_else(|| "unknown".into()),
                cluster: name.to_string(),
                reason: reason.clone(),
                dir: paths.dir.display().to_string(),
                kubeconfig: kubeconfig_path.display().to_string(),
            }
            .into());
        }
        tracing::warn!(cluster = name, err = %reason, "Unavailable runtime but proceed with force delete");
    }

    let backup_target = match &args.backup {
        Some(dir) => {
            let target = dir.join(name);
            if target.exists() {
                record.result = Outcome::Aborted;
                bail!(
                    "backup target {} already exists; nothing was deleted",
                    target.display()
                );
            }
            Some(target)
        }
        None => None,
    };

    tracing::info!(cluster = name, "Cluster is stopping");
    let stopping = Instant::now();
    let mode = if backup_target.is_some() {
        StopMode::Graceful
    } else {
        StopMode::Kill
    };
    let report = match (&cluster, &rt) {
        (Ok(cluster), Some(rt)) => rt.down(cluster, mode, availability.is_ok()),
        _ => runtime::stop_recorded_processes(paths, mode).map(|processes| StopReport {
            processes,
            containers: Vec::new(),
        }),
    };
    match report {
        Ok(report) => {
            record.removed.processes = report.processes;
            record.removed.containers = report.containers;
        }
        Err(err) if args.force => {
            tracing::warn!(cluster = name, err = %format!("{err:#}"), "Failed to stop cluster, continuing with force delete");
            record.error = Some(format!("stop: {err:#}"));
        }
        Err(err) => return Err(err.context(format!("failed to stop cluster {name:?}"))),
    }
    tracing::info!(cluster = name, elapsed = %duration::human(stopping.elapsed()), "Cluster is stopped");

    if let Some(target) = &backup_target {
        if let Err(err) = copy_tree(&paths.dir, target) {
            record.result = Outcome::Aborted;
            return Err(err.context(format!(
                "backup of cluster {name:?} to {} failed; the cluster was stopped but nothing was removed (`kwokctl start cluster --name {name}` starts it again)",
                target.display()
            )));
        }
        record.backup = Some(target.display().to_string());
        tracing::info!(cluster = name, dir = %target.display(), "Cluster is backed up");
    }

    tracing::info!(cluster = name, "Cluster is deleting");
    remove_kubeconfig_entries(name, kubeconfig_path, record);
    runtime::remove_dir(&paths.dir)?;
    record.removed.workdir = Some(paths.dir.display().to_string());
    record.result = Outcome::Deleted;
    tracing::info!(cluster = name, elapsed = %duration::human(started.elapsed()), "Cluster is deleted");
    Ok(())
}

fn remove_kubeconfig_entries(name: &str, kubeconfig_path: &Path, record: &mut DeleteRecord) {
    match kubeconfig::remove_context(kubeconfig_path, &context_name(name)) {
        Ok(removed) => {
            tracing::debug!(kubeconfig = %kubeconfig_path.display(), "Remove context from kubeconfig");
            if !removed.is_empty() {
                record.removed.kubeconfig = Some(kubeconfig_path.display().to_string());
            }
            record.removed.kubeconfig_entries = removed;
        }
        Err(err) => {
            tracing::error!(
                err = %format!("{err:#}"),
                kubeconfig = %kubeconfig_path.display(),
                "Failed to remove context from kubeconfig"
            );
            record.error = Some(format!("kubeconfig: {err:#}"));
        }
    }
}

/// A cluster folder without `kwok.yaml`: an interrupted delete (or create). Finish the job.
fn remove_leftovers(
    name: &str,
    paths: &ClusterPaths,
    kubeconfig_path: &Path,
    record: &mut DeleteRecord,
) -> anyhow::Result<()> {
    tracing::warn!(cluster = name, dir = %paths.dir.display(), "Removing leftovers of a cluster without a config file");
    record.removed.processes = runtime::stop_recorded_processes(paths, StopMode::Kill)?;
    remove_kubeconfig_entries(name, kubeconfig_path, record);
    runtime::remove_dir(&paths.dir)?;
    record.removed.workdir = Some(paths.dir.display().to_string());
    record.result = Outcome::Deleted;
    Ok(())
}

/// Copies a folder tree; pid files are left out (they mean nothing once copied), symlinks are
/// copied as links.
pub fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("create {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("read {}", from.display()))? {
        let entry = entry?;
        let source = entry.path();
        let target: PathBuf = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if entry.file_name() == "pids" {
                continue;
            }
            copy_tree(&source, &target)?;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(&source)?;
            std::os::unix::fs::symlink(&link, &target)
                .with_context(|| format!("link {}", target.display()))?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target)
                .with_context(|| format!("copy {} to {}", source.display(), target.display()))?;
        }
    }
    Ok(())
}

fn print_plan(name: &str, paths: &ClusterPaths, kubeconfig_path: &Path, args: &DeleteClusterArgs) {
    use crate::dryrun::say;
    let cluster = match Cluster::load(name, paths) {
        Ok(cluster) => Some(cluster),
        Err(LoadError::NotFound) if !paths.dir.exists() => {
            tracing::warn!(cluster = name, "Cluster does not exist");
            return;
        }
        Err(_) => None,
    };
    if let Some(cluster) = &cluster {
        say(format!(
            "# Check runtime {} is available",
            cluster.runtime_name()
        ));
        if let Some(runtime::RuntimeKind::Compose(engine)) =
            runtime::RuntimeKind::parse(cluster.runtime_name())
        {
            for c in cluster.config.components.iter().rev() {
                say(format!(
                    "{} rm --force kwok-{name}-{}",
                    engine.command(),
                    c.name
                ));
            }
            say(format!("{} network rm kwok-{name}", engine.command()));
        } else if let Some(runtime::RuntimeKind::Kind(_)) =
            runtime::RuntimeKind::parse(cluster.runtime_name())
        {
            say(format!("kind delete cluster --name kwok-{name}"));
        }
    }
    if let Ok(entries) = std::fs::read_dir(paths.pids()) {
        for entry in entries.filter_map(Result::ok) {
            let file = entry.path();
            let component = file.file_stem().map(|s| s.to_string_lossy().into_owned());
            if let Some(component) = component {
                if runtime::running_pid(paths, &component).is_some() {
                    say(format!("kill $(cat {})", file.display()));
                }
                say(format!("rm {}", file.display()));
            }
        }
    }
    if let Some(dir) = &args.backup {
        say(format!(
            "cp -r {} {}",
            paths.dir.display(),
            dir.join(name).display()
        ));
    }
    say(format!(
        "# Remove context {} from {}",
        context_name(name),
        kubeconfig_path.display()
    ));
    say(format!("rm -rf {}", paths.dir.display()));
}
