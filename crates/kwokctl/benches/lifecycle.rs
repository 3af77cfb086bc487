//! Prints the median, minimum and maximum times of `kwokctl create cluster` (until the cluster
//! serves) and `kwokctl delete cluster` over 20 cycles, using the `kwok` binary built beside
//! kwokctl. Run with `cargo bench -p kwokctl` after building `kwok` in the same profile.

use std::process::Command;

fn main() {
    let kwokctl = env!("CARGO_BIN_EXE_kwokctl");
    let kwok = std::path::Path::new(kwokctl).with_file_name("kwok");
    if !kwok.is_file() {
        eprintln!(
            "kwok is missing at {}: build it in the same profile first (e.g. `cargo build --release -p kwok`)",
            kwok.display()
        );
        std::process::exit(1);
    }
    let iterations = std::env::var("KWOKCTL_BENCH_ITERATIONS").unwrap_or_else(|_| "20".into());
    let status = Command::new(kwokctl)
        .args(["bench", "--iterations", &iterations])
        .env("KWOK_KWOK_BINARY", &kwok)
        .status()
        .expect("run kwokctl bench");
    std::process::exit(status.code().unwrap_or(1));
}
