//! `kwokctl snapshot save|restore|export`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::apiclient::{Client, Endpoint};
use crate::cli::{SnapshotExportArgs, SnapshotRestoreArgs, SnapshotSaveArgs};
use crate::context::Context;
use crate::duration;
use crate::lock::lock_cluster;
use crate::runtime::{self, Cluster, ComponentStatus, RuntimeKind, StartOptions, StopMode, binary};
use crate::snapshot;

fn check_format(format: &str) -> anyhow::Result<()> {
    match format {
        "etcd" | "k8s" => Ok(()),
        other => bail!("unsupport format {other:?}"),
    }
}

fn required_path(path: &str) -> anyhow::Result<PathBuf> {
    if path.is_empty() {
        bail!("path is required");
    }
    Ok(PathBuf::from(path))
}

fn new_file(path: &str) -> anyhow::Result<PathBuf> {
    let path = required_path(path)?;
    if path.exists() {
        bail!("file {:?} already exists", path.display().to_string());
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    Ok(path)
}

fn write_k8s(
    client: &Client,
    filters: &[String],
    page: usize,
    path: &Path,
) -> anyhow::Result<usize> {
    let tmp = path.with_extension("partial");
    let file = std::fs::File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let count = snapshot::save_k8s(client, filters, page, &mut out);
    drop(out);
    match count {
        Ok(n) => {
            std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
            Ok(n)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

pub fn save(ctx: &Context, args: &SnapshotSaveArgs) -> anyhow::Result<()> {
    check_format(&args.format)?;
    let path = new_file(&args.path)?;
    let cluster = super::load_existing(ctx)?;
    let started = Instant::now();
    if args.format == "k8s" {
        if ctx.dry_run {
            crate::dryrun::say(format!(
                "# Save the cluster's objects to {}",
                path.display()
            ));
            return Ok(());
        }
        let client = Client::from_kubeconfig(&cluster.paths.kubeconfig())?;
        let count = write_k8s(&client, &snapshot::filters(&args.filter), 500, &path)?;
        tracing::info!(cluster = %ctx.name, path = %path.display(), counter = count, elapsed = %duration::human(started.elapsed()), "Saved snapshot");
        return Ok(());
    }
    if is_binary(&cluster) {
        return save_etcd(ctx, &cluster, &path, started);
    }
    require_embedded(&cluster)?;
    let store = cluster.paths.data().join("store");
    if ctx.dry_run {
        crate::dryrun::say(format!("# Copy {} to {}", store.display(), path.display()));
        return Ok(());
    }
    let _lock = lock_cluster(&ctx.workdir, &ctx.name)?;
    let was_running = with_cluster_stopped(ctx, &cluster, || {
        if !store.is_dir() {
            bail!("cluster {:?} has no data at {}", ctx.name, store.display());
        }
        snapshot::pack_store(&store, &path).map(|_| ())
    })?;
    tracing::info!(
        cluster = %ctx.name,
        path = %path.display(),
        restarted = was_running,
        elapsed = %duration::human(started.elapsed()),
        "Saved snapshot"
    );
    Ok(())
}

pub fn restore(ctx: &Context, args: &SnapshotRestoreArgs) -> anyhow::Result<()> {
    check_format(&args.format)?;
    let path = required_path(&args.path)?;
    if !path.exists() {
        bail!("path {:?} does not exist", path.display().to_string());
    }
    let cluster = super::load_existing(ctx)?;
    let started = Instant::now();
    if args.format == "k8s" {
        let docs = snapshot::read_k8s(&path)?;
        let wanted = snapshot::filters(&args.filter);
        let docs: Vec<_> = if args.filter.is_empty() {
            docs
        } else {
            docs.into_iter()
                .filter(|d| matches_filters(d, &wanted))
                .collect()
        };
        if ctx.dry_run {
            crate::dryrun::say(format!(
                "# Create {} objects from {}",
                docs.len(),
                path.display()
            ));
            return Ok(());
        }
        let client = Client::from_kubeconfig(&cluster.paths.kubeconfig())?;
        let report = snapshot::restore_k8s(&client, docs)?;
        tracing::info!(
            cluster = %ctx.name,
            created = report.created,
            existing = report.existing,
            failed = report.failed.len(),
            elapsed = %duration::human(started.elapsed()),
            "Restored snapshot"
        );
        if report.dropped_owner_references > 0 {
            tracing::warn!(
                counter = report.dropped_owner_references,
                "Dropped owner references to objects that are not in the snapshot"
            );
        }
        if !report.failed.is_empty() {
            for f in report.failed.iter().take(10) {
                tracing::error!(err = %f, "Failed to restore object");
            }
            bail!("{} objects could not be restored", report.failed.len());
        }
        return Ok(());
    }
    if is_binary(&cluster) {
        return restore_etcd(ctx, &cluster, &path, started);
    }
    require_embedded(&cluster)?;
    let data = cluster.paths.data();
    let store = data.join("store");
    if ctx.dry_run {
        crate::dryrun::say(format!(
            "# Replace {} with {}",
            store.display(),
            path.display()
        ));
        return Ok(());
    }
    let _lock = lock_cluster(&ctx.workdir, &ctx.name)?;
    let was_running = with_cluster_stopped(ctx, &cluster, || {
        let incoming = data.join(format!("store.restore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&incoming);
        snapshot::unpack_store(&path, &incoming)?;
        let old = data.join(format!("store.old-{}", std::process::id()));
        if store.exists() {
            std::fs::rename(&store, &old).with_context(|| format!("move {}", store.display()))?;
        }
        std::fs::rename(&incoming, &store)
            .with_context(|| format!("move {}", incoming.display()))?;
        runtime::remove_dir(&old)
    })?;
    tracing::info!(
        cluster = %ctx.name,
        path = %path.display(),
        restarted = was_running,
        elapsed = %duration::human(started.elapsed()),
        "Restored snapshot"
    );
    Ok(())
}

pub fn export(ctx: &Context, args: &SnapshotExportArgs) -> anyhow::Result<()> {
    let path = new_file(&args.path)?;
    let kubeconfig = ctx
        .env
        .kubeconfig_path(args.kubeconfig.as_deref())
        .map_err(anyhow::Error::msg)?;
    if ctx.dry_run {
        crate::dryrun::say(format!(
            "# Export the objects of {} to {}",
            kubeconfig.display(),
            path.display()
        ));
        if args.record {
            crate::dryrun::say(format!(
                "# Record their changes to {} until interrupted",
                path.display()
            ));
        }
        return Ok(());
    }
    let started = Instant::now();
    let mut endpoint = Endpoint::from_kubeconfig(&kubeconfig, args.context.as_deref())?;
    endpoint.impersonate(&args.as_user, &args.as_group);
    let client = Client::new(&endpoint)?;
    let page = if args.page_size == 0 {
        500
    } else {
        args.page_size
    };
    if args.record {
        let (objects, changes) = super::record::export_and_record(
            &client,
            &snapshot::filters(&args.filter),
            page,
            &path,
        )?;
        tracing::info!(server = %endpoint.server, path = %path.display(), counter = objects, changes, elapsed = %duration::human(started.elapsed()), "Recorded");
        return Ok(());
    }
    let count = write_k8s(&client, &snapshot::filters(&args.filter), page, &path)?;
    tracing::info!(server = %endpoint.server, path = %path.display(), counter = count, elapsed = %duration::human(started.elapsed()), "Exported snapshot");
    Ok(())
}

/// Whether a saved object is of one of the `--filter` resources (matched by kind, plural or
/// singular name, with the group when given).
fn matches_filters(doc: &serde_json::Value, filters: &[String]) -> bool {
    let kind = doc["kind"].as_str().unwrap_or("").to_ascii_lowercase();
    let api_version = doc["apiVersion"].as_str().unwrap_or("");
    let group = api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
    filters.iter().any(|f| {
        let (name, fgroup) = f.split_once('.').unwrap_or((f.as_str(), ""));
        let name = name.to_ascii_lowercase();
        fgroup == group
            && (name == kind
                || name == format!("{kind}s")
                || name == format!("{kind}es")
                || (kind.ends_with('y') && name == format!("{}ies", &kind[..kind.len() - 1])))
    })
}

fn is_binary(cluster: &Cluster) -> bool {
    RuntimeKind::parse(cluster.runtime_name()) == Some(RuntimeKind::Binary)
}

/// How long etcdctl may take to save or restore a snapshot.
const ETCD_SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);

/// `etcdctl snapshot save` against the cluster's running etcd.
fn save_etcd(
    ctx: &Context,
    cluster: &Cluster,
    path: &Path,
    started: Instant,
) -> anyhow::Result<()> {
    let endpoint = super::etcdctl::etcd_endpoint(cluster)?;
    let etcdctl = binary::etcd_tool(ctx, &cluster.config.components, "etcdctl");
    let etcdctl = etcdctl.display().to_string();
    let path_arg = path.display().to_string();
    let args = ["--endpoints", &endpoint, "snapshot", "save", &path_arg];
    if ctx.dry_run {
        crate::dryrun::say(format!("ETCDCTL_API=3 {etcdctl} {}", args.join(" ")));
        return Ok(());
    }
    let port = binary::etcd_port(&cluster.config.options, &cluster.config.components);
    if !port.is_some_and(|port| crate::probe::etcd_healthy(port, Duration::from_secs(2))) {
        bail!(
            "etcd of cluster {:?} does not answer on {endpoint}; start the cluster first (`kwokctl start cluster --name {}`)",
            ctx.name,
            ctx.name
        );
    }
    crate::exec::run(
        &etcdctl,
        &args,
        &[("ETCDCTL_API", "3")],
        ETCD_SNAPSHOT_TIMEOUT,
    )
    .map_err(|e| anyhow::anyhow!("save etcd snapshot: {e}"))?;
    tracing::info!(cluster = %ctx.name, path = %path.display(), elapsed = %duration::human(started.elapsed()), "Saved snapshot");
    Ok(())
}

/// Replaces etcd's data with a snapshot while the cluster is stopped: `etcdutl snapshot
/// restore` (or `etcdctl` for etcd before 3.5) into `etcd-data`, which then becomes `etcd`.
fn restore_etcd(
    ctx: &Context,
    cluster: &Cluster,
    path: &Path,
    started: Instant,
) -> anyhow::Result<()> {
    let components = &cluster.config.components;
    let etcdutl = binary::etcd_tool(ctx, components, "etcdutl");
    let tool = if etcdutl.is_absolute() {
        etcdutl
    } else {
        binary::etcd_tool(ctx, components, "etcdctl")
    };
    let tool = tool.display().to_string();
    let data = cluster.paths.etcd();
    let incoming = cluster.paths.dir.join("etcd-data");
    let mut args = vec![
        "snapshot".to_string(),
        "restore".into(),
        path.display().to_string(),
        "--data-dir".into(),
        incoming.display().to_string(),
    ];
    // The restored member must be the one etcd is started as.
    let member_flags = [
        "--name=",
        "--initial-cluster=",
        "--initial-advertise-peer-urls=",
    ];
    if let Some(etcd) = cluster.config.component(binary::ETCD) {
        args.extend(
            etcd.args
                .iter()
                .filter(|a| member_flags.iter().any(|f| a.starts_with(f)))
                .cloned(),
        );
    }
    if ctx.dry_run {
        crate::dryrun::say(format!("rm -rf {}", incoming.display()));
        crate::dryrun::say(format!("ETCDCTL_API=3 {tool} {}", args.join(" ")));
        crate::dryrun::say(format!("rm -rf {}", data.display()));
        crate::dryrun::say(format!("mv {} {}", incoming.display(), data.display()));
        return Ok(());
    }
    let _lock = lock_cluster(&ctx.workdir, &ctx.name)?;
    let was_running = with_cluster_stopped(ctx, cluster, || {
        runtime::remove_dir(&incoming)?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        crate::exec::run(&tool, &args, &[("ETCDCTL_API", "3")], ETCD_SNAPSHOT_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("restore etcd snapshot: {e}"))?;
        runtime::remove_dir(&data)?;
        std::fs::rename(&incoming, &data)
            .with_context(|| format!("move {} to {}", incoming.display(), data.display()))
    })?;
    tracing::info!(
        cluster = %ctx.name,
        path = %path.display(),
        restarted = was_running,
        elapsed = %duration::human(started.elapsed()),
        "Restored snapshot"
    );
    Ok(())
}

fn require_embedded(cluster: &Cluster) -> anyhow::Result<()> {
    if RuntimeKind::parse(cluster.runtime_name()) != Some(RuntimeKind::Embedded) {
        bail!(
            "--format etcd is supported for the embedded and binary runtimes only (cluster runtime is {:?}); use --format k8s",
            cluster.runtime_name()
        );
    }
    Ok(())
}

/// Runs `work` while the cluster is stopped, so the store files are one consistent revision;
/// a running cluster is stopped first and started again afterwards (also when `work` fails).
/// Returns whether the cluster was running.
fn with_cluster_stopped(
    ctx: &Context,
    cluster: &Cluster,
    work: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<bool> {
    let rt = runtime::for_cluster(ctx, cluster);
    let running = rt
        .components(cluster)
        .iter()
        .any(|(_, s)| !matches!(s, ComponentStatus::Stopped));
    if running {
        tracing::info!(cluster = %ctx.name, "Stopping the cluster for a consistent copy of its store");
        rt.stop(cluster, StopMode::Graceful)
            .with_context(|| format!("failed to stop cluster {:?}", ctx.name))?;
    }
    let result = work();
    if running {
        tracing::info!(cluster = %ctx.name, "Starting the cluster again");
        rt.start(cluster, StartOptions::with_timeout(Duration::ZERO))
            .with_context(|| format!("failed to start cluster {:?}", ctx.name))?;
    }
    result.map(|()| running)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_match_kinds_and_groups() {
        let f: Vec<String> = vec![
            "pod".into(),
            "deployment.apps".into(),
            "clusterroles.rbac.authorization.k8s.io".into(),
            "priorityclass.scheduling.k8s.io".into(),
        ];
        assert!(matches_filters(
            &json!({"apiVersion": "v1", "kind": "Pod"}),
            &f
        ));
        assert!(matches_filters(
            &json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
            &f
        ));
        assert!(matches_filters(
            &json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole"}),
            &f
        ));
        assert!(!matches_filters(
            &json!({"apiVersion": "v1", "kind": "Node"}),
            &f
        ));
        assert!(!matches_filters(
            &json!({"apiVersion": "v1", "kind": "Deployment"}),
            &f
        ));
    }
}
