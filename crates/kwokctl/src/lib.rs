//! `kwokctl` creates and manages local simulated Kubernetes clusters.
//!
//! This crate owns everything a user touches on the command line: the command tree and its flags,
//! the `KWOK_*` environment variables and configuration files (and their precedence), the workdir
//! (`~/.kwok`, one folder per cluster), the cluster's PKI and kubeconfig files, the entries it adds
//! to the user's kubeconfig, the runtimes that run a cluster (`embedded` by default; upstream's
//! `binary`, container and kind runtimes are recognised so their clusters can be listed, stopped
//! and deleted), per-cluster locking, and the audit log of deletions.
//!
//! It holds no Kubernetes API semantics: the `embedded` runtime starts the `kwok apiserver`
//! process and talks to it to learn whether it serves (`GET /readyz`); `scale` and `snapshot`
//! create, list and delete objects through a small HTTPS client ([`apiclient`]).
//!
//! The binary is a thin wrapper around [`run`].

pub mod addons;
pub mod apiclient;
pub mod audit;
pub mod cli;
pub mod cluster_options;
pub mod commands;
pub mod config;
pub mod context;
pub mod dryrun;
pub mod duration;
pub mod exec;
pub mod kubeconfig;
pub mod kubeconfig_cache;
pub mod lock;
pub mod logging;
pub mod paths;
pub mod probe;
pub mod process;
pub mod progress;
pub mod recording;
pub mod runtime;
pub mod scale;
pub mod snapshot;
pub mod template;
pub mod watch;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// The version of this kwokctl, recorded in the clusters it creates.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Parses `args` (including the program name), runs the command and returns the exit code:
/// 0 on success, 1 on any error, including command-line usage errors.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            let code = match err.kind() {
                clap::error::ErrorKind::DisplayHelp
                | clap::error::ErrorKind::DisplayVersion
                | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => 0,
                _ => 1,
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    logging::init(&cli.global.verbosity);
    match commands::dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            tracing::error!(err = %format!("{err:#}"), "Execute exit");
            ExitCode::from(1)
        }
    }
}
