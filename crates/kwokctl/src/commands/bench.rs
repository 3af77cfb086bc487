//! `kwokctl bench` (hidden): creates and deletes embedded clusters in a scratch workdir and prints
//! the median, minimum and maximum of each, measured as a user sees them (whole kwokctl runs).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::cli::BenchArgs;
use crate::context::Context;

pub fn bench(ctx: &Context, args: &BenchArgs) -> anyhow::Result<()> {
    let kwok = ctx.kwok_binary(None).map_err(anyhow::Error::msg)?;
    let exe = std::env::current_exe().context("locate kwokctl")?;
    let scratch = std::env::temp_dir().join(format!("kwokctl-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let run = |name: &str, verb: &[&str]| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new(&exe)
            .args(["--name", name])
            .args(verb)
            .env("KWOK_WORKDIR", scratch.join("workdir"))
            .env("KUBECONFIG", scratch.join("kubeconfig"))
            .env("KWOK_KWOK_BINARY", &kwok)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        let elapsed = started.elapsed();
        if !status.success() {
            bail!("kwokctl {} failed with {status}", verb.join(" "));
        }
        Ok(elapsed)
    };
    let mut creates = Vec::new();
    let mut deletes = Vec::new();
    let result = (|| -> anyhow::Result<()> {
        for i in 0..args.iterations.max(1) {
            let name = format!("bench-{i}");
            creates.push(run(&name, &["create", "cluster"])?);
            deletes.push(run(&name, &["delete", "cluster"])?);
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = run("bench", &["delete", "cluster", "--all", "--force"]);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    report("create cluster (until it serves)", &mut creates);
    report("delete cluster", &mut deletes);
    Ok(())
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = ms(samples[samples.len() / 2]);
    println!(
        "{what}: median {median:.1} ms, min {:.1} ms, max {:.1} ms (n={})",
        ms(samples[0]),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}
