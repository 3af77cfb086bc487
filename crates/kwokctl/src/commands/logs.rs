//! `kwokctl logs <component>` and `kwokctl export logs [dir]`.

use anyhow::{Context as _, bail};

use crate::cli::{ExportLogsArgs, LogsArgs};
use crate::context::Context;
use crate::runtime;

pub fn logs(ctx: &Context, args: &LogsArgs) -> anyhow::Result<()> {
    let cluster = super::load_existing(ctx)?;
    let rt = runtime::for_cluster(ctx, &cluster);
    rt.logs(&cluster, &args.component, args.follow)
}

pub fn export_logs(ctx: &Context, args: &ExportLogsArgs) -> anyhow::Result<()> {
    let cluster = super::load_existing(ctx)?;
    let rt = runtime::for_cluster(ctx, &cluster);
    let dir = match &args.output_dir {
        Some(dir) => dir.join(&ctx.name),
        None => cluster.paths.default_export_dir(),
    };
    if dir.join(crate::paths::CONFIG_FILE).exists() {
        bail!("{} already holds exported logs", dir.display());
    }
    tracing::info!(dir = %dir.display(), "Exporting logs");
    if ctx.dry_run {
        crate::dryrun::say(format!("mkdir -p {}", dir.join("components").display()));
        crate::dryrun::say(format!(
            "cp {} {}",
            cluster.paths.config().display(),
            dir.display()
        ));
        return Ok(());
    }
    let components_dir = dir.join("components");
    std::fs::create_dir_all(&components_dir)
        .with_context(|| format!("create {}", components_dir.display()))?;
    std::fs::copy(cluster.paths.config(), dir.join(crate::paths::CONFIG_FILE))
        .context("copy kwok.yaml")?;
    std::fs::write(dir.join(format!("{}-info.txt", rt.name())), rt.info())
        .context("write runtime info")?;
    for component in &cluster.config.components {
        let log = cluster.paths.log_file(&component.name);
        if log.exists() {
            std::fs::copy(&log, components_dir.join(format!("{}.log", component.name)))
                .with_context(|| format!("copy {}", log.display()))?;
        }
    }
    let audit = cluster.paths.audit_log();
    if audit.exists() {
        std::fs::copy(&audit, dir.join("audit.log")).context("copy audit.log")?;
    }
    Ok(())
}
