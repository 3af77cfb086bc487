//! `kwokctl start cluster` and `kwokctl stop cluster`.

use std::time::Instant;

use crate::cli::StartClusterArgs;
use crate::context::Context;
use crate::duration;
use crate::lock::lock_cluster;
use crate::runtime::{self, StartOptions, StopMode};

pub fn start_cluster(ctx: &Context, args: &StartClusterArgs) -> anyhow::Result<()> {
    let timeout = duration::parse(&args.timeout).map_err(anyhow::Error::msg)?;
    let wait = duration::parse(&args.wait).map_err(anyhow::Error::msg)?;
    let cluster = super::load_existing(ctx)?;
    let rt = runtime::for_cluster(ctx, &cluster);
    if ctx.dry_run {
        crate::dryrun::say(format!(
            "# Start cluster {} with runtime {}",
            ctx.name,
            rt.name()
        ));
        for component in &cluster.config.components {
            crate::dryrun::fork(
                &cluster.paths.dir,
                std::path::Path::new(&component.binary),
                &component.args,
                &cluster.paths.log_file(&component.name),
                &cluster.paths.pid_file(&component.name),
            );
        }
        return Ok(());
    }
    let _lock = lock_cluster(&ctx.workdir, &ctx.name)?;
    let started = Instant::now();
    tracing::info!(cluster = %ctx.name, "Cluster is starting");
    rt.start(&cluster, StartOptions::with_timeout(timeout))
        .map_err(|e| e.context(format!("failed to start cluster {:?}", ctx.name)))?;
    tracing::info!(cluster = %ctx.name, elapsed = %duration::human(started.elapsed()), "Cluster is started");
    if !wait.is_zero() {
        let waiting = Instant::now();
        tracing::info!(cluster = %ctx.name, "Waiting for cluster to be ready");
        if super::create::wait_ready(ctx, &cluster, waiting + wait) {
            tracing::info!(cluster = %ctx.name, elapsed = %duration::human(waiting.elapsed()), "Cluster is ready");
        } else {
            tracing::error!(cluster = %ctx.name, "Failed to wait for cluster to be ready");
        }
    }
    Ok(())
}

pub fn stop_cluster(ctx: &Context) -> anyhow::Result<()> {
    let cluster = super::load_existing(ctx)?;
    let rt = runtime::for_cluster(ctx, &cluster);
    if ctx.dry_run {
        for component in cluster.config.components.iter().rev() {
            let pid_file = cluster.paths.pid_file(&component.name);
            crate::dryrun::say(format!("kill $(cat {})", pid_file.display()));
            crate::dryrun::say(format!("rm {}", pid_file.display()));
        }
        return Ok(());
    }
    let _lock = lock_cluster(&ctx.workdir, &ctx.name)?;
    let started = Instant::now();
    tracing::info!(cluster = %ctx.name, "Cluster is stopping");
    rt.stop(&cluster, StopMode::Graceful)
        .map_err(|e| e.context(format!("failed to stop cluster {:?}", ctx.name)))?;
    tracing::info!(cluster = %ctx.name, elapsed = %duration::human(started.elapsed()), "Cluster is stopped");
    Ok(())
}
