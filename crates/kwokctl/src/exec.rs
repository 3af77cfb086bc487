//! Running helper programs (container engines, kind, kubectl) with a deadline, so a hung engine
//! never hangs kwokctl.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long an availability probe such as `docker version` may take by default.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The result of a finished command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("{command}: executable file not found in $PATH")]
    NotFound { command: String },
    #[error("{command}: {source}")]
    Start {
        command: String,
        source: std::io::Error,
    },
    #[error("{command}: timed out after {}s", timeout.as_secs_f64())]
    Timeout { command: String, timeout: Duration },
    #[error("{command}: {status}{}", stderr_suffix(stderr))]
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(": {trimmed}")
    }
}

/// Runs `program args...` with stdin closed, capturing output, killing its whole process group
/// when `timeout` passes. Non-zero exit is an error carrying stderr.
pub fn run(
    program: &str,
    args: &[&str],
    envs: &[(&str, &str)],
    timeout: Duration,
) -> Result<Output, ExecError> {
    let command_line = std::iter::once(program)
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut command = Command::new(program);
    command
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command.spawn().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            ExecError::NotFound {
                command: command_line.clone(),
            }
        } else {
            ExecError::Start {
                command: command_line.clone(),
                source,
            }
        }
    })?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let pgid = child.id() as i32;
                // SAFETY: kills the process group we created for this child.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(ExecError::Timeout {
                    command: command_line,
                    timeout,
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(source) => {
                return Err(ExecError::Start {
                    command: command_line,
                    source,
                });
            }
        }
    };
    let collect = |rx: std::sync::mpsc::Receiver<String>| {
        rx.recv_timeout(Duration::from_millis(500))
            .unwrap_or_default()
    };
    let output = Output {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
    };
    if output.status.success() {
        Ok(output)
    } else {
        Err(ExecError::Failed {
            command: command_line,
            status: output.status,
            stderr: output.stderr,
        })
    }
}

fn read_in_background(
    pipe: Option<impl Read + Send + 'static>,
) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut pipe) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
        });
    } else {
        let _ = tx.send(String::new());
    }
    rx
}

/// Runs a program attached to kwokctl's stdio and returns its exit code.
pub fn passthrough(program: &str, args: &[String], envs: &[(&str, &str)]) -> anyhow::Result<i32> {
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow::anyhow!("{program}: executable file not found in $PATH")
            } else {
                anyhow::anyhow!("{program}: {e}")
            }
        })?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_failure_missing_and_timeout() {
        let out = run("sh", &["-c", "echo hi"], &[], Duration::from_secs(5)).unwrap();
        assert_eq!(out.stdout.trim(), "hi");

        let err = run(
            "sh",
            &["-c", "echo boom >&2; exit 3"],
            &[],
            Duration::from_secs(5),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("exit status: 3") && text.contains("boom"),
            "{text}"
        );

        let err = run(
            "kwokctl-no-such-program",
            &["version"],
            &[],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(matches!(err, ExecError::NotFound { .. }));

        let started = Instant::now();
        let err = run("sh", &["-c", "sleep 30"], &[], Duration::from_millis(200)).unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }));
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
