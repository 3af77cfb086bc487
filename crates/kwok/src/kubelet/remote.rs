//! `/exec/{ns}/{pod}[/{uid}]/{container}` and `/attach/...`: the remote-command endpoints.
//!
//! Exec runs the command on the simulator's host as the container's `Exec` entry says
//! ([`super::process`]): the client's stdin goes to it, its stdout and stderr (or its terminal)
//! come back, terminal sizes follow the client's, and its exit code is the outcome; the command
//! is killed when the client goes away. Attach shows the container's output: the `Attach`
//! entry's log file, followed. Both end when the pod is deleted. A container without an entry is refused before the upgrade, as a kubelet
//! refuses, so the client prints the reason.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use streams::remotecommand::{self, Exit, Options, Output, Session};
use streams::{Service, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::process::{self, Streams, Terminal};
use super::{Kubelet, Refusal, Switched, logs, query_pairs, upgrade};
use crate::simkinds::Missing;

/// The pod and container a request names.
struct Target {
    namespace: String,
    pod: String,
    container: String,
}

impl Target {
    fn from_path(params: &HashMap<String, String>) -> Target {
        let get = |k: &str| params.get(k).cloned().unwrap_or_default();
        Target {
            namespace: get("namespace"),
            pod: get("pod"),
            container: get("container"),
        }
    }

    fn not_configured(&self, kind: &str, missing: Missing) -> Refusal {
        let Target {
            namespace,
            pod,
            container,
        } = self;
        let what = match missing {
            Missing::Container => "container",
            Missing::Pod => "pod",
        };
        Refusal(
            StatusCode::NOT_FOUND,
            format!(
                "no {kind} configured for container {container:?} in pod \"{namespace}/{pod}\" (no {kind} entry applies to the {what})"
            ),
        )
    }
}

fn is_set(query: &[(String, String)], key: &str) -> bool {
    query
        .iter()
        .any(|(k, v)| k == key && matches!(v.as_str(), "1" | "true" | "True"))
}

fn options(query: &[(String, String)]) -> Options {
    Options {
        stdin: is_set(query, "input"),
        stdout: is_set(query, "output"),
        stderr: is_set(query, "error"),
        tty: is_set(query, "tty"),
    }
}

/// `GET|POST /exec/...`.
pub async fn exec(
    State(kubelet): State<Arc<Kubelet>>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let target = Target::from_path(&params);
    let query = query_pairs(query);
    let command: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    let entry =
        match kubelet
            .simulations
            .execs
            .find(&target.namespace, &target.pod, &target.container)
        {
            Ok(entry) => entry,
            Err(missing) => return target.not_configured("exec", missing).into_response(),
        };
    let Some(local) = entry.local else {
        return Refusal(
            StatusCode::NOT_FOUND,
            format!(
                "the exec entry of container {:?} in pod \"{}/{}\" has no local command settings",
                target.container, target.namespace, target.pod
            ),
        )
        .into_response();
    };
    let request = ExecRequest {
        opts: options(&query),
        target,
        local,
        command,
    };
    upgrade(
        req,
        Service::RemoteCommand,
        move |io, transport| async move {
            let Some(Session {
                stdin,
                resize,
                output,
            }) = start(io, transport, request.opts).await
            else {
                return;
            };
            let exit = run(&kubelet, &request, stdin, resize, &output).await;
            output.finish(exit).await;
        },
    )
}

/// What an exec request runs.
struct ExecRequest {
    target: Target,
    local: crate::simkinds::ExecLocal,
    command: Vec<String>,
    opts: Options,
}

/// The session on a switched connection, or nothing when the client did not set it up.
async fn start(io: Switched, transport: Transport, opts: Options) -> Option<Session> {
    match remotecommand::accept(io, transport, opts).await {
        Ok(session) => Some(session),
        Err(e) => {
            tracing::debug!(error = %e, "remote command session did not start");
            None
        }
    }
}

/// Runs the command until it ends or the pod goes away.
async fn run(
    kubelet: &Kubelet,
    request: &ExecRequest,
    stdin: Option<mpsc::Receiver<Bytes>>,
    resize: mpsc::Receiver<remotecommand::TerminalSize>,
    output: &Output,
) -> Exit {
    let ExecRequest {
        target,
        local,
        command,
        opts,
    } = request;
    let mut resize = resize;
    let terminal = if opts.tty {
        Some(first_size(&mut resize).await)
    } else {
        None
    };
    let running = match process::start(local, command, terminal, opts.stdin) {
        Ok(r) => r,
        Err(e) => return Exit::Failed(format!("failed to start {command:?}: {e}")),
    };
    let mut child = running.child;
    let streamed = async {
        match running.io {
            Streams::Pipes {
                stdin: pipe,
                stdout,
                stderr,
            } => {
                if let (Some(pipe), Some(input)) = (pipe, stdin) {
                    tokio::spawn(feed(input, pipe));
                }
                let out = copy_out(stdout, output, false);
                let err = copy_out(stderr, output, true);
                futures::join!(out, err);
            }
            Streams::Terminal(terminal) => terminal_session(terminal, stdin, resize, output).await,
        }
    };
    tokio::select! {
        _ = streamed => {}
        _ = kubelet.until_gone(&target.namespace, &target.pod) => {
            let _ = child.kill().await;
            return Exit::Failed(format!("pod \"{}/{}\" was deleted", target.namespace, target.pod));
        }
        _ = output.client_gone() => {
            // Nobody is left to read the output: the command goes too.
            let _ = child.kill().await;
            return Exit::Failed("the client went away".into());
        }
    }
    match child.wait().await {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(0), _) => Exit::Success,
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Code(128 + signal),
            (None, None) => Exit::Failed("the command ended without a status".into()),
        },
        Err(e) => Exit::Failed(format!("waiting for the command: {e}")),
    }
}

/// The terminal size the client sends first (it does so at once), or 0×0 (unknown) when none
/// comes within a second.
async fn first_size(resize: &mut mpsc::Receiver<remotecommand::TerminalSize>) -> (u16, u16) {
    match tokio::time::timeout(std::time::Duration::from_secs(1), resize.recv()).await {
        Ok(Some(size)) => (size.width, size.height),
        _ => (0, 0),
    }
}

/// Passes the client's input to the command, closing it when the client does.
async fn feed(mut input: mpsc::Receiver<Bytes>, mut to: impl tokio::io::AsyncWrite + Unpin) {
    while let Some(chunk) = input.recv().await {
        if to.write_all(&chunk).await.is_err() {
            return;
        }
    }
    let _ = to.shutdown().await;
}

/// Sends what `from` gives to stdout or stderr until it ends.
async fn copy_out(mut from: impl AsyncRead + Unpin, output: &Output, stderr: bool) {
    let mut buf = vec![0u8; 32 * 1024];
    // A terminal reports EIO once the command has exited and closed its side.
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 {
            return;
        }
        let data = Bytes::copy_from_slice(&buf[..n]);
        let sent = if stderr {
            output.stderr(data).await
        } else {
            output.stdout(data).await
        };
        if !sent {
            return;
        }
    }
}

async fn terminal_session(
    terminal: Terminal,
    stdin: Option<mpsc::Receiver<Bytes>>,
    mut resize: mpsc::Receiver<remotecommand::TerminalSize>,
    output: &Output,
) {
    let Ok((reader, writer)) = terminal.split() else {
        return;
    };
    if let Some(input) = stdin {
        tokio::spawn(feed(input, writer));
    }
    tokio::spawn(async move {
        while let Some(size) = resize.recv().await {
            let _ = terminal.resize(size.width, size.height);
        }
    });
    copy_out(reader, output, false).await;
}

/// `GET|POST /attach/...`.
pub async fn attach(
    State(kubelet): State<Arc<Kubelet>>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let target = Target::from_path(&params);
    let entry =
        match kubelet
            .simulations
            .attaches
            .find(&target.namespace, &target.pod, &target.container)
        {
            Ok(entry) => entry,
            Err(missing) => return target.not_configured("attach", missing).into_response(),
        };
    let Some(file) = entry.logs_file.filter(|f| !f.is_empty()) else {
        return Refusal(
            StatusCode::NOT_FOUND,
            format!(
                "the attach entry of container {:?} in pod \"{}/{}\" has no logsFile",
                target.container, target.namespace, target.pod
            ),
        )
        .into_response();
    };
    let opts = options(&query_pairs(query));
    upgrade(
        req,
        Service::RemoteCommand,
        move |io, transport| async move {
            let Some(Session { stdin, output, .. }) = start(io, transport, opts).await else {
                return;
            };
            // Input is taken and dropped: the simulated container reads nothing.
            if let Some(mut input) = stdin {
                tokio::spawn(async move { while input.recv().await.is_some() {} });
            }
            let alive = {
                let kubelet = kubelet.clone();
                move || {
                    let (kubelet, ns, pod) = (
                        kubelet.clone(),
                        target.namespace.clone(),
                        target.pod.clone(),
                    );
                    async move { kubelet.pod_exists(&ns, &pod).await }
                }
            };
            let follow = logs::LogOptions {
                follow: true,
                ..Default::default()
            };
            let mut lines = std::pin::pin!(logs::stream(file.into(), follow, alive));
            while let Some(Ok(chunk)) = lines.next().await {
                if !output.stdout(chunk).await {
                    return;
                }
            }
            output.finish(Exit::Success).await;
        },
    )
}
