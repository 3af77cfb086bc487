//! One module per command; [`dispatch`] routes a parsed command line to it.

mod artifacts;
mod bench;
mod config_cmd;
mod config_convert;
pub(crate) mod create;
mod delete;
pub(crate) mod etcdctl;
mod get;
mod kectl;
mod kubectl;
mod lifecycle;
mod logs;
mod port_forward;
mod record;
mod replay;
mod scale;
mod snapshot;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{
    Cli, Command, ConfigCommand, CreateCommand, DeleteCommand, ExportCommand, GetCommand,
    KectlCommand, KectlSnapshotCommand, Shell, SnapshotCommand, StartCommand, StopCommand,
};
use crate::context::Context;
use crate::paths::{Env, Workdir};
use crate::runtime::{Cluster, LoadError};

pub use delete::{DeleteOutcome, delete_cluster};

/// Runs the command of `cli`.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Completion(args) = &cli.command {
        print_completion(args.shell);
        return Ok(ExitCode::SUCCESS);
    }
    let ctx = Context::new(&cli.global, Env::from_process())?;
    match cli.command {
        Command::Create(CreateCommand::Cluster(args)) => create::create_cluster(&ctx, &args)?,
        Command::Delete(DeleteCommand::Cluster(args)) => delete::run(&ctx, &args)?,
        Command::Start(StartCommand::Cluster(args)) => lifecycle::start_cluster(&ctx, &args)?,
        Command::Stop(StopCommand::Cluster) => lifecycle::stop_cluster(&ctx)?,
        Command::Get(GetCommand::Clusters(args)) => get::clusters(&ctx, args.output)?,
        Command::Get(GetCommand::Components(args)) => get::components(&ctx, args.output)?,
        Command::Get(GetCommand::Kubeconfig(args)) => get::kubeconfig(&ctx, &args)?,
        Command::Get(GetCommand::Artifacts(args)) => artifacts::artifacts(&ctx, &args)?,
        Command::PortForward(args) => port_forward::port_forward(&ctx, &args)?,
        Command::Kectl(KectlCommand::Get(args)) => kectl::get(&ctx, &args)?,
        Command::Kectl(KectlCommand::Put(args)) => kectl::put(&ctx, &args)?,
        Command::Kectl(KectlCommand::Delete(args)) => kectl::delete(&ctx, &args)?,
        Command::Kectl(KectlCommand::Snapshot(KectlSnapshotCommand::Save(args))) => {
            kectl::snapshot_save(&ctx, &args)?
        }
        Command::Kectl(KectlCommand::Snapshot(KectlSnapshotCommand::Restore(args))) => {
            kectl::snapshot_restore(&ctx, &args)?
        }
        Command::Config(ConfigCommand::Convert(args)) => config_convert::convert(&ctx, &args)?,
        Command::Snapshot(SnapshotCommand::Replay(args)) => replay::replay(&ctx, &args)?,
        Command::Logs(args) => logs::logs(&ctx, &args)?,
        Command::Scale(args) => scale::scale(&ctx, &args)?,
        Command::Snapshot(SnapshotCommand::Save(args)) => snapshot::save(&ctx, &args)?,
        Command::Snapshot(SnapshotCommand::Restore(args)) => snapshot::restore(&ctx, &args)?,
        Command::Snapshot(SnapshotCommand::Export(args)) => snapshot::export(&ctx, &args)?,
        Command::Export(ExportCommand::Logs(args)) => logs::export_logs(&ctx, &args)?,
        Command::Config(ConfigCommand::View) => config_cmd::view(&ctx)?,
        Command::Config(ConfigCommand::Tidy) => config_cmd::tidy(&ctx)?,
        Command::Config(ConfigCommand::Reset) => config_cmd::reset(&ctx)?,
        Command::Kubectl(args) => return kubectl::kubectl(&ctx, &args.args),
        Command::Etcdctl(args) => return etcdctl::etcdctl(&ctx, &args.args),
        Command::Bench(args) => bench::bench(&ctx, &args)?,
        Command::Completion(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_completion(shell: Shell) {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
        Shell::Elvish => clap_complete::Shell::Elvish,
    };
    clap_complete::generate(
        shell,
        &mut Cli::command(),
        "kwokctl",
        &mut std::io::stdout(),
    );
}

/// Loads the cluster named by `--name`; a missing one logs upstream's warning and is an error.
pub(crate) fn load_existing(ctx: &Context) -> anyhow::Result<Cluster> {
    match Cluster::load(&ctx.name, &ctx.cluster_paths()) {
        Ok(cluster) => Ok(cluster),
        Err(LoadError::NotFound) => {
            tracing::warn!(cluster = %ctx.name, "Cluster does not exist");
            anyhow::bail!("cluster {:?} does not exist", ctx.name)
        }
        Err(LoadError::Invalid(e)) => Err(e.context(format!("cluster {:?}", ctx.name))),
    }
}

/// The clusters in the workdir: folders under `clusters/` that hold a `kwok.yaml`. Anything else
/// there is reported, as upstream does.
pub(crate) fn list_clusters(workdir: &Workdir) -> anyhow::Result<Vec<String>> {
    let dir = workdir.clusters_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("read {}", dir.display()))),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if !path.is_dir() {
            tracing::warn!(path = %path.display(), "Found non-directory entry in clusters directory, please remove it");
            continue;
        }
        if !path.join(crate::paths::CONFIG_FILE).is_file() {
            tracing::warn!(path = %path.display(), "Found directory without a config file, please remove it");
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Prints rows as a left-aligned table, columns separated by three spaces.
pub(crate) fn print_table(rows: &[Vec<String>]) {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        println!("{line}");
    }
}
