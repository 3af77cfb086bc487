//! Detached processes and their pid files.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `binary` so that it outlives kwokctl and the terminal: a new session (`setsid`), stdin
/// from `/dev/null`, stdout and stderr appended to `log`, working directory `cwd`.
pub fn spawn_detached(binary: &Path, args: &[String], cwd: &Path, log: &Path) -> io::Result<Child> {
    let out = OpenOptions::new().create(true).append(true).open(log)?;
    let err = out.try_clone()?;
    let mut command = Command::new(binary);
    command
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.spawn()
}

/// True when `pid` names a live process (a zombie counts as dead).
pub fn is_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    if raw <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks whether the process exists.
    let exists = unsafe { libc::kill(raw, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state == 'Z' || state == 'X'),
        Err(_) => false,
    }
}

/// True when the live process `pid` was started for the cluster in `cluster_dir`: its command
/// line mentions that folder. Guards against killing an unrelated process that reused the pid of
/// a stale pid file. Without `/proc` the pid is trusted.
pub fn belongs_to(pid: u32, cluster_dir: &Path) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return is_alive(pid);
    };
    let needle = cluster_dir.as_os_str().as_encoded_bytes();
    (!needle.is_empty() && cmdline.windows(needle.len()).any(|w| w == needle))
        || fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == cluster_dir)
}

/// Kills `pid` at once (`SIGKILL`), as a crash would.
pub fn kill(pid: u32) -> io::Result<()> {
    signal(pid, libc::SIGKILL)
}

fn signal(pid: u32, sig: i32) -> io::Result<()> {
    let raw = i32::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: sends a signal to a pid we validated as belonging to the cluster.
    if unsafe { libc::kill(raw, sig) } == 0 {
        Ok(())
    } else {
        let err = io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ESRCH) {
            Ok(())
        } else {
            Err(err)
        }
    }
}

/// Waits until `pid` is gone, polling; returns false on timeout.
pub fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if !is_alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Stops `pid`: SIGTERM and up to `grace` to exit, then SIGKILL. A zero grace kills at once.
pub fn stop(pid: u32, grace: Duration) -> io::Result<()> {
    if !is_alive(pid) {
        return Ok(());
    }
    if !grace.is_zero() {
        signal(pid, libc::SIGTERM)?;
        if wait_gone(pid, grace) {
            return Ok(());
        }
        tracing::warn!(pid, "Process did not exit after SIGTERM, killing it");
    }
    signal(pid, libc::SIGKILL)?;
    if wait_gone(pid, Duration::from_secs(5)) {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "process {pid} did not exit after SIGKILL"
        )))
    }
}

/// Reads a pid file; `None` when it is missing or does not hold a number.
pub fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Writes a pid file.
pub fn write_pid(path: &Path, pid: u32) -> io::Result<()> {
    fs::write(path, format!("{pid}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detached_process_is_tracked_and_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut child = spawn_detached(
            Path::new("/bin/sh"),
            &["-c".into(), "echo started; exec sleep 30".into()],
            dir.path(),
            &log,
        )
        .unwrap();
        let pid = child.id();
        assert!(is_alive(pid));
        assert!(belongs_to(pid, dir.path()));
        assert!(!belongs_to(pid, Path::new("/nonexistent/cluster")));
        stop(pid, Duration::from_secs(5)).unwrap();
        let _ = child.wait();
        assert!(!is_alive(pid));
    }

    #[test]
    fn pid_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pid");
        assert_eq!(read_pid(&path), None);
        write_pid(&path, 42).unwrap();
        assert_eq!(read_pid(&path), Some(42));
        fs::write(&path, "garbage").unwrap();
        assert_eq!(read_pid(&path), None);
    }
}
