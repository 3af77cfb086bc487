//! `kwokctl kubectl ...`: the kubectl on PATH (or `KWOK_KUBECTL_BINARY`) against the cluster.

use std::process::ExitCode;

use crate::context::Context;

pub fn kubectl(ctx: &Context, args: &[String]) -> anyhow::Result<ExitCode> {
    let cluster = super::load_existing(ctx)?;
    let program = ctx
        .env
        .kwok("KUBECTL_BINARY")
        .filter(|b| !b.contains("://"))
        .unwrap_or("kubectl")
        .to_string();
    let mut full = vec![
        "--kubeconfig".to_string(),
        cluster.paths.kubeconfig().display().to_string(),
    ];
    full.extend(args.iter().cloned());
    if ctx.dry_run {
        crate::dryrun::say(format!("{program} {}", full.join(" ")));
        return Ok(ExitCode::SUCCESS);
    }
    let code = crate::exec::passthrough(&program, &full, &[])?;
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}
