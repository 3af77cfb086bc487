//! `kwokctl etcdctl ...`: etcdctl (API v3) against the etcd of a `binary` cluster.

use std::process::ExitCode;

use crate::context::Context;
use crate::runtime::{Cluster, RuntimeKind, binary};

pub fn etcdctl(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let cluster = super::load_existing(ctx)?;
    let endpoint = etcd_endpoint(&cluster)?;
    let program = binary::etcd_tool(ctx, &cluster.config.components, "etcdctl");
    let mut full = vec!["--endpoints".to_string(), endpoint];
    full.extend(args.iter().cloned());
    if ctx.dry_run {
        crate::dryrun::say(format!(
            "ETCDCTL_API=3 {} {}",
            program.display(),
            full.join(" ")
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let code = crate::exec::passthrough(
        &program.display().to_string(),
        &full,
        &[("ETCDCTL_API", "3")],
    )?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// `127.0.0.1:<port>` of the cluster's etcd; an error for clusters without one reachable from
/// the host.
pub fn etcd_endpoint(cluster: &Cluster) -> anyhow::Result<String> {
    let runtime = cluster.runtime_name();
    if RuntimeKind::parse(runtime) != Some(RuntimeKind::Binary) {
        anyhow::bail!(
            "cluster {:?} uses runtime {runtime:?}; etcd is reachable for clusters of the binary runtime only",
            cluster.name
        );
    }
    let port = binary::etcd_port(&cluster.config.options, &cluster.config.components)
        .ok_or_else(|| anyhow::anyhow!("cluster {:?} has no etcd port", cluster.name))?;
    Ok(format!("127.0.0.1:{port}"))
}
