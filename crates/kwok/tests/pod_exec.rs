//! Simulated pods answer `kubectl exec`, `cp`, `attach` and `port-forward` like real ones,
//! through the real `kwok apiserver --simulate`: kubectl 1.27 speaks SPDY/3.1, kubectl 1.33
//! WebSocket (`v5.channel.k8s.io`, and SPDY tunnelled in WebSocket for port-forward), kube-rs
//! the WebSocket channel protocols.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::Server;

const PODS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Pod
metadata: {name: p1, namespace: default}
spec:
  nodeName: n1
  containers: [{name: app, image: busybox}]
---
apiVersion: v1
kind: Pod
metadata: {name: bare, namespace: default}
spec:
  nodeName: n1
  containers: [{name: app, image: busybox}]
"#;

/// A server whose pod `p1` (and not `bare`) has exec, attach and port-forward entries.
struct Cluster {
    server: Server,
    /// The exec entry's working directory.
    work: PathBuf,
    attach_log: PathBuf,
    http_port: u16,
}

/// An HTTP server answering every connection with `hello from the pod`.
fn http_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "hello from the pod";
                let _ = write!(
                    conn,
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap().keep();
    let work = std::fs::canonicalize(&dir).unwrap();
    let attach_log = work.join("attach.log");
    std::fs::write(
        &attach_log,
        "2024-01-01T00:00:00Z stdout F attached line one\n",
    )
    .unwrap();
    let http_port = http_target();
    let config = work.join("kwok.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata: {{name: p1}}
spec:
  selector: {{matchNames: [p1]}}
  execs:
  - local:
      workDir: {work}
      envs: [{{name: FOO, value: bar}}]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterAttach
metadata: {{name: p1}}
spec:
  selector: {{matchNames: [p1]}}
  attaches:
  - logsFile: {log}
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterPortForward
metadata: {{name: p1}}
spec:
  selector: {{matchNames: [p1]}}
  forwards:
  - ports: [80]
    target: {{port: {http_port}, address: 127.0.0.1}}
  - ports: [7]
    command: [cat]
",
            work = work.display(),
            log = attach_log.display(),
        ),
    )
    .unwrap();
    let server = Server::start_with(&["--simulate", "--config", config.to_str().unwrap()]);
    server.ok_stdin(33, &["apply", "-f", "-"], PODS);
    server.ok(
        33,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "pod/p1",
            "pod/bare",
            "--timeout=60s",
        ],
    );
    Cluster {
        server,
        work,
        attach_log,
        http_port,
    }
}

impl Cluster {
    fn kubectl(&self, minor: u32, args: &[&str]) -> Command {
        let mut cmd = Command::new(common::kubectl_version(minor));
        cmd.arg("--kubeconfig")
            .arg(self.server.kubeconfig())
            .arg("--cache-dir")
            .arg(self.server.dir.path().join(format!("cache-{minor}")))
            .args(args)
            .env("HOME", self.server.dir.path())
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs kubectl with `input` on stdin; kills it and fails the test after `limit`.
    fn run(&self, minor: u32, args: &[&str], input: Option<&[u8]>) -> Output {
        let mut cmd = self.kubectl(minor, args);
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = input {
            let mut stdin = child.stdin.take().unwrap();
            let input = input.to_vec();
            std::thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        wait_output(
            child,
            Duration::from_secs(60),
            &format!("kubectl 1.{minor} {args:?}"),
        )
    }
}

/// Waits for a child with a deadline, collecting its output.
fn wait_output(mut child: Child, limit: Duration, what: &str) -> Output {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!(
                "{what} hung; stderr: {}",
                String::from_utf8_lossy(&err.join().unwrap())
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exec_runs_the_command_with_its_environment_input_and_exit_code() {
    let c = cluster();
    for minor in [27, 33] {
        let out = c.run(
            minor,
            &[
                "exec",
                "p1",
                "--",
                "sh",
                "-c",
                "echo $FOO; pwd; echo oops >&2; exit 3",
            ],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(3),
            "1.{minor}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), format!("bar\n{}\n", c.work.display()));
        let stderr = text(&out.stderr);
        assert!(stderr.contains("oops"), "1.{minor}: {stderr}");
        assert!(
            stderr.contains("command terminated with exit code 3"),
            "1.{minor}: {stderr}"
        );

        let out = c.run(
            minor,
            &["exec", "-i", "p1", "--", "sh", "-c", "cat; echo done"],
            Some(b"piped in\n"),
        );
        assert!(out.status.success(), "1.{minor}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "piped in\ndone\n");

        // A large input and output survive the framing.
        let big: Vec<u8> = (0..300_000u32)
            .flat_map(|i| format!("{i}\n").into_bytes())
            .collect();
        let out = c.run(minor, &["exec", "-i", "p1", "--", "cat"], Some(&big));
        assert!(out.status.success(), "1.{minor}: {}", text(&out.stderr));
        assert!(
            out.stdout == big,
            "1.{minor}: {} bytes back of {}",
            out.stdout.len(),
            big.len()
        );
    }
}

#[test]
fn a_pod_without_configuration_is_refused_with_a_clear_error() {
    let c = cluster();
    for minor in [27, 33] {
        let out = c.run(minor, &["exec", "bare", "--", "true"], None);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(stderr.contains("no exec configured"), "1.{minor}: {stderr}");
        // The API server's own checks still answer as kube-apiserver's.
        let out = c.run(minor, &["exec", "p1", "-c", "nope", "--", "true"], None);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("container nope is not valid for pod p1"),
            "1.{minor}: {stderr}"
        );
        let out = c.run(minor, &["attach", "bare"], None);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("no attach configured"),
            "1.{minor}: {stderr}"
        );
    }
}

#[test]
fn exec_ends_when_the_pod_is_deleted() {
    let c = cluster();
    let child = c
        .kubectl(33, &["exec", "p1", "--", "sleep", "120"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    c.server
        .ok(33, &["delete", "pod", "p1", "--grace-period=0", "--force"]);
    let out = wait_output(child, Duration::from_secs(30), "exec in a deleted pod");
    assert!(!out.status.success());
}

fn read_file(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn kubectl_cp_copies_to_and_from_a_pod() {
    let c = cluster();
    for minor in [27, 33] {
        let local = c.work.join(format!("local-{minor}.txt"));
        std::fs::write(&local, format!("copied by 1.{minor}\n")).unwrap();
        let inside = c.work.join("inside");
        std::fs::create_dir_all(&inside).unwrap();
        let remote = format!("p1:{}/in-{minor}.txt", inside.display());
        let out = c.run(minor, &["cp", local.to_str().unwrap(), &remote], None);
        assert!(out.status.success(), "1.{minor}: {}", text(&out.stderr));
        assert_eq!(
            read_file(&inside.join(format!("in-{minor}.txt"))),
            format!("copied by 1.{minor}\n")
        );
        let back = c.work.join(format!("back-{minor}.txt"));
        let out = c.run(minor, &["cp", &remote, back.to_str().unwrap()], None);
        assert!(out.status.success(), "1.{minor}: {}", text(&out.stderr));
        assert_eq!(read_file(&back), format!("copied by 1.{minor}\n"));
    }
}

#[test]
fn attach_shows_the_containers_output_until_the_pod_goes() {
    let c = cluster();
    for minor in [27, 33] {
        let mut child = c.kubectl(minor, &["attach", "p1"]).spawn().unwrap();
        let seen = common::collect_stdout(&mut child);
        let line = format!("appended for 1.{minor}");
        let until = Instant::now() + Duration::from_secs(30);
        while !seen.lock().unwrap().contains("attached line one") && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&c.attach_log)
            .unwrap();
        writeln!(f, "2024-01-01T00:00:01Z stdout F {line}").unwrap();
        while !seen.lock().unwrap().contains(&line) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        if minor == 33 {
            // Deleting the pod ends the session.
            c.server
                .ok(33, &["delete", "pod", "p1", "--grace-period=0", "--force"]);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < until, "attach outlived the pod");
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            child.kill().unwrap();
        }
        child.wait().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert!(
            seen.contains("attached line one") && seen.contains(&line),
            "1.{minor}: {seen:?}"
        );
    }
}

/// Starts `kubectl port-forward` and returns it with the local port it listens on.
fn port_forward(c: &Cluster, minor: u32, remote: u16) -> (Child, u16) {
    let mut child = c
        .kubectl(minor, &["port-forward", "pod/p1", &format!(":{remote}")])
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    let port = loop {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "kubectl 1.{minor} port-forward ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some(rest) = seen.split("Forwarding from 127.0.0.1:").nth(1)
            && let Some(port) = rest.split(' ').next().and_then(|p| p.parse().ok())
        {
            break port;
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (child, port)
}

fn http_get(port: u16) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    conn.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn port_forward_reaches_the_configured_target() {
    let c = cluster();
    assert_ne!(c.http_port, 0);
    for minor in [27, 33] {
        let (mut child, port) = port_forward(&c, minor, 80);
        for _ in 0..3 {
            let answer = http_get(port);
            assert!(
                answer.contains("hello from the pod"),
                "1.{minor}: {answer:?}"
            );
        }
        let out = c.run(minor, &["port-forward", "pod/bare", ":80"], None);
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("no port-forward configured"),
            "1.{minor}: {stderr}"
        );
        if minor == 33 {
            // Deleting the pod ends the session, and kubectl with it.
            c.server
                .ok(33, &["delete", "pod", "p1", "--grace-period=0", "--force"]);
            let until = Instant::now() + Duration::from_secs(30);
            while child.try_wait().unwrap().is_none() {
                assert!(Instant::now() < until, "port-forward outlived the pod");
                std::thread::sleep(Duration::from_millis(50));
            }
        } else {
            child.kill().unwrap();
        }
        child.wait().unwrap();
    }
}

/// kube-rs: exec with input, a terminal and an exit code, and port-forward, over the
/// WebSocket channel protocols.
#[tokio::test(flavor = "multi_thread")]
async fn kube_rs_exec_and_port_forward() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, AttachParams};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let c = tokio::task::spawn_blocking(cluster).await.unwrap();
    let pods: Api<Pod> = Api::namespaced(c.server.client().await, "default");

    let params = AttachParams::default().stdin(true).stderr(false);
    let mut process = pods
        .exec(
            "p1",
            ["sh", "-c", "read line; echo \"$FOO $line\"; exit 4"],
            &params,
        )
        .await
        .unwrap();
    let mut stdin = process.stdin().unwrap();
    stdin.write_all(b"from kube-rs\n").await.unwrap();
    let mut stdout = process.stdout().unwrap();
    let status = process.take_status().unwrap();
    let mut out = String::new();
    stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out, "bar from kube-rs\n");
    let status = status.await.unwrap();
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    let cause = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(cause.message.as_deref(), Some("4"));

    // A terminal: the command sees one, at the size the client sends.
    let params = AttachParams::interactive_tty();
    let mut process = pods
        .exec(
            "p1",
            [
                "sh",
                "-c",
                "sleep 0.5; stty size; test -t 0 && echo on a tty",
            ],
            &params,
        )
        .await
        .unwrap();
    let mut resize = process.terminal_size().unwrap();
    futures::SinkExt::send(
        &mut resize,
        kube::api::TerminalSize {
            width: 90,
            height: 30,
        },
    )
    .await
    .unwrap();
    let mut stdout = process.stdout().unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), stdout.read_to_end(&mut out)).await;
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("30 90") && out.contains("on a tty"), "{out:?}");

    let mut forwarder = pods.portforward("p1", &[80]).await.unwrap();
    let mut stream = forwarder.take_stream(80).unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&answer).contains("hello from the pod") {
        let n = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf))
            .await
            .expect("an answer within 20 s")
            .unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    drop(stream);
    forwarder.abort();
    drop(c);
}

/// The binary runtime's way: a separate `kwok` process serves the kubelet endpoints over the
/// network, configured by objects in the API; the API server splices the switched
/// connections through.
#[test]
fn a_separate_kwok_serves_exec_and_port_forward_over_the_network() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let port = common::free_port();
    let mut kwok = common::start_kwok_process(&server, port, &dir.path().join("kwok.log"));
    let http_port = http_target();
    server.ok_stdin(33, &["apply", "-f", "-"], PODS);
    let objects = format!(
        "apiVersion: kwok.x-k8s.io/v1alpha1
kind: Exec
metadata: {{name: p1, namespace: default}}
spec:
  execs:
  - local:
      envs: [{{name: FOO, value: over-the-network}}]
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: PortForward
metadata: {{name: p1, namespace: default}}
spec:
  forwards:
  - target: {{port: {http_port}, address: 127.0.0.1}}
"
    );
    server.ok_stdin(33, &["apply", "-f", "-"], &objects);
    server.ok(
        33,
        &[
            "wait",
            "--for=jsonpath={.status.phase}=Running",
            "pod/p1",
            "--timeout=60s",
        ],
    );
    let c = Cluster {
        server,
        work: std::fs::canonicalize(dir.path()).unwrap(),
        attach_log: PathBuf::new(),
        http_port,
    };
    for minor in [27, 33] {
        // The simulator may still be picking up the objects.
        let until = Instant::now() + Duration::from_secs(30);
        let out = loop {
            let out = c.run(
                minor,
                &["exec", "p1", "--", "sh", "-c", "echo $FOO; exit 5"],
                None,
            );
            if out.status.code() == Some(5) || Instant::now() > until {
                break out;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(
            out.status.code(),
            Some(5),
            "1.{minor}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "over-the-network\n");
        let (mut child, local) = port_forward(&c, minor, 8080);
        let answer = http_get(local);
        assert!(
            answer.contains("hello from the pod"),
            "1.{minor}: {answer:?}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
    kwok.kill().unwrap();
    kwok.wait().unwrap();
}

#[test]
fn the_command_is_killed_when_the_client_goes_away() {
    let c = cluster();
    for minor in [27, 33] {
        let pidfile = c.work.join(format!("pid-{minor}"));
        let script = format!("echo $$ > {}; exec sleep 120", pidfile.display());
        let mut child = c
            .kubectl(minor, &["exec", "p1", "--", "sh", "-c", &script])
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            if let Ok(pid) = read_file(&pidfile).trim().parse::<i32>() {
                break pid;
            }
            assert!(
                Instant::now() < until,
                "1.{minor}: the command did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        child.kill().unwrap();
        child.wait().unwrap();
        let running = |pid: i32| {
            Path::new(&format!("/proc/{pid}")).exists()
                && !read_file(Path::new(&format!("/proc/{pid}/stat"))).contains(") Z ")
        };
        while running(pid) {
            assert!(
                Instant::now() < until,
                "1.{minor}: the command outlived its client"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A virtual environment with the official Python client, made once under the target
/// directory; `None` (the test is skipped) when pip cannot install it.
fn python_client() -> Option<PathBuf> {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyclient");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import kubernetes"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Some(python);
    }
    let made = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    let installed = made
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "--disable-pip-version-check", "kubernetes"])
            .status()
            .is_ok_and(|s| s.success());
    (installed && ready(&python)).then_some(python)
}

const PYTHON_SCRIPT: &str = r#"
import sys
from kubernetes import client, config
from kubernetes.stream import stream, portforward

config.load_kube_config(sys.argv[1])
v1 = client.CoreV1Api()
out = stream(v1.connect_get_namespaced_pod_exec, "p1", "default",
             command=["sh", "-c", "echo $FOO"], stderr=True, stdin=False, stdout=True, tty=False)
print("exec:" + out.strip())
resp = stream(v1.connect_get_namespaced_pod_exec, "p1", "default",
              command=["sh", "-c", "exit 7"], stderr=True, stdin=False, stdout=True, tty=False,
              _preload_content=False)
resp.run_forever(timeout=20)
print("code:%s" % resp.returncode)
pf = portforward(v1.connect_get_namespaced_pod_portforward, "p1", "default", ports="80")
sock = pf.socket(80)
sock.setblocking(True)
sock.settimeout(20)
sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
data = b""
while b"hello from the pod" not in data:
    chunk = sock.recv(1024)
    if not chunk:
        break
    data += chunk
print("forwarded:" + ("yes" if b"hello from the pod" in data else repr(data)))
sock.close()
"#;

/// The official Python client's `stream()` (WebSocket `v4.channel.k8s.io`) and
/// `portforward()`.
#[test]
fn the_python_client_streams() {
    let Some(python) = python_client() else {
        eprintln!("skipped: the Python client could not be installed (pip unreachable?)");
        return;
    };
    let c = cluster();
    let mut cmd = Command::new(python);
    cmd.args(["-c", PYTHON_SCRIPT])
        .arg(c.server.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_output(
        cmd.spawn().unwrap(),
        Duration::from_secs(60),
        "the Python client",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("exec:bar\n"), "{stdout}");
    assert!(stdout.contains("code:7\n"), "{stdout}");
    assert!(stdout.contains("forwarded:yes\n"), "{stdout}");
}

/// Every kubectl from 1.27 to 1.33, each with the transport it prefers.
#[test]
fn every_kubectl_version_execs_and_forwards() {
    let c = cluster();
    for minor in 27..=33 {
        let out = c.run(
            minor,
            &["exec", "p1", "--", "sh", "-c", "echo $FOO; exit 6"],
            None,
        );
        assert_eq!(
            out.status.code(),
            Some(6),
            "1.{minor}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout), "bar\n", "1.{minor}");
        let (mut child, port) = port_forward(&c, minor, 80);
        let answer = http_get(port);
        assert!(
            answer.contains("hello from the pod"),
            "1.{minor}: {answer:?}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

/// `kubectl exec -it` on a real terminal (util-linux `script` provides one): the command sees a
/// terminal of the client's size.
#[test]
fn exec_with_a_terminal_follows_the_clients_size() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` command to give kubectl a terminal");
        return;
    }
    let c = cluster();
    for minor in [27, 33] {
        let kubectl = format!(
            "{} --kubeconfig {} --cache-dir {} exec -it p1 -- sh -c 'stty size; tty >/dev/null && echo on-a-tty; exit 2'",
            common::kubectl_version(minor).display(),
            c.server.kubeconfig().display(),
            c.server.dir.path().join(format!("cache-{minor}")).display(),
        );
        let child = Command::new("script")
            .args([
                "-qec",
                &format!("stty cols 123 rows 45; {kubectl}"),
                "/dev/null",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output(child, Duration::from_secs(60), "kubectl exec -it");
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "1.{minor}: {stdout}");
        assert!(
            stdout.contains("45 123") && stdout.contains("on-a-tty"),
            "1.{minor}: {stdout}"
        );
    }
}
