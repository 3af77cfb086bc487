//! Running a command for `exec` on the simulator's host, as upstream's kwok does: the `Exec`
//! entry's working directory, extra environment (added to the simulator's own) and user and
//! group; either with pipes, or on a pseudo-terminal for `tty` sessions, whose window size
//! follows the client's.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::simkinds::ExecLocal;

/// A started command and its streams.
pub struct Running {
    pub child: Child,
    pub io: Streams,
}

/// How the command's input and output are reached.
pub enum Streams {
    Pipes {
        stdin: Option<tokio::process::ChildStdin>,
        stdout: tokio::process::ChildStdout,
        stderr: tokio::process::ChildStderr,
    },
    /// The terminal's controlling side: input and output of the command, in one.
    Terminal(Terminal),
}

/// The controlling side of a pseudo-terminal.
pub struct Terminal {
    master: OwnedFd,
}

impl Terminal {
    /// A reader and a writer over the terminal.
    pub fn split(&self) -> io::Result<(tokio::fs::File, tokio::fs::File)> {
        let reader = self.master.try_clone()?;
        let writer = self.master.try_clone()?;
        Ok((
            tokio::fs::File::from_std(std::fs::File::from(reader)),
            tokio::fs::File::from_std(std::fs::File::from(writer)),
        ))
    }

    /// Sets the window size the command sees.
    pub fn resize(&self, width: u16, height: u16) -> io::Result<()> {
        let size = libc::winsize {
            ws_row: height,
            ws_col: width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads the struct we pass on a descriptor we own.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

fn open_terminal() -> io::Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty writes two descriptors, which we take ownership of on success.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) })
}

/// The command line with the entry's directory, environment and identity.
fn command(local: &ExecLocal, argv: &[String]) -> io::Result<Command> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).kill_on_drop(true);
    for env in &local.envs {
        cmd.env(&env.name, &env.value);
    }
    if !local.work_dir.is_empty() {
        cmd.current_dir(&local.work_dir);
    }
    if let Some(sc) = &local.security_context {
        if let Some(uid) = sc.run_as_user {
            cmd.uid(u32::try_from(uid).map_err(|_| io::Error::other("runAsUser out of range"))?);
        }
        if let Some(gid) = sc.run_as_group {
            cmd.gid(u32::try_from(gid).map_err(|_| io::Error::other("runAsGroup out of range"))?);
        }
    }
    Ok(cmd)
}

/// Starts `argv` for an exec session: with pipes, or on a terminal of `terminal`'s size
/// (width, height; set before the command starts, so that it sees it at once).
pub fn start(
    local: &ExecLocal,
    argv: &[String],
    terminal: Option<(u16, u16)>,
    stdin: bool,
) -> io::Result<Running> {
    let mut cmd = command(local, argv)?;
    let Some((width, height)) = terminal else {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let io = Streams::Pipes {
            stdin: child.stdin.take(),
            stdout: child.stdout.take().expect("piped"),
            stderr: child.stderr.take().expect("piped"),
        };
        return Ok(Running { child, io });
    };
    let (master, slave) = open_terminal()?;
    let terminal = Terminal { master };
    if width > 0 && height > 0 {
        terminal.resize(width, height)?;
    }
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    // SAFETY: between fork and exec only async-signal-safe calls: a new session whose
    // controlling terminal is the one on stdin.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(Running {
        child,
        io: Streams::Terminal(terminal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simkinds::EnvVar;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn local(envs: &[(&str, &str)], dir: &str) -> ExecLocal {
        ExecLocal {
            work_dir: dir.into(),
            envs: envs
                .iter()
                .map(|(n, v)| EnvVar {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            security_context: None,
        }
    }

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[tokio::test]
    async fn pipes_carry_environment_directory_input_and_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        let l = local(&[("TEST", "test")], dir.path().to_str().unwrap());
        let script = "read line; echo \"$TEST $line $(pwd)\"; echo oops >&2; exit 3";
        let mut run = start(&l, &argv(&["sh", "-c", script]), None, true).unwrap();
        let Streams::Pipes {
            stdin,
            mut stdout,
            mut stderr,
        } = run.io
        else {
            panic!("pipes")
        };
        let mut stdin = stdin.unwrap();
        stdin.write_all(b"hello\n").await.unwrap();
        drop(stdin);
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.unwrap();
        let mut err = String::new();
        stderr.read_to_string(&mut err).await.unwrap();
        let status = run.child.wait().await.unwrap();
        let real_dir = std::fs::canonicalize(dir.path()).unwrap();
        assert_eq!(out, format!("test hello {}\n", real_dir.display()));
        assert_eq!(err, "oops\n");
        assert_eq!(status.code(), Some(3));
    }

    #[tokio::test]
    async fn a_terminal_session_sees_a_tty_and_its_size() {
        let l = local(&[], "");
        let mut run = start(
            &l,
            &argv(&[
                "sh",
                "-c",
                "stty size; sleep 0.3; stty size; test -t 0 && echo tty",
            ]),
            Some((80, 24)),
            true,
        )
        .unwrap();
        let Streams::Terminal(terminal) = &run.io else {
            panic!("terminal")
        };
        let (mut reader, _writer) = terminal.split().unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        let mut resized = false;
        // The terminal reports EIO once the command has exited and closed its side.
        while let Ok(n) = reader.read(&mut buf).await {
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&out);
            if text.contains("24 80") && !resized {
                // The size it started with was seen; now the client's terminal changes.
                terminal.resize(100, 40).unwrap();
                resized = true;
            }
            if text.contains("tty") {
                break;
            }
        }
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("24 80"), "{text}");
        assert!(text.contains("40 100"), "{text}");
        assert!(text.contains("tty"), "{text}");
        assert!(run.child.wait().await.unwrap().success());
    }

    #[test]
    fn an_empty_command_is_refused() {
        assert!(start(&local(&[], ""), &[], None, false).is_err());
    }
}
