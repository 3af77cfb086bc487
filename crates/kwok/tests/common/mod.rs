//! Starts the real `kwok apiserver` process and drives it with real kubectl and kube-rs.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub child: Option<Child>,
    pub extra_args: Vec<String>,
    /// The etcd this server stores into, when the suite runs on the etcd backend.
    pub etcd: Option<Etcd>,
    /// A limit on the server's open files (soft and hard), as a small machine may have.
    pub open_file_limit: Option<u64>,
}

/// Whether the suite runs on the etcd backend (`KWOK_TEST_STORE=etcd`).
pub fn on_etcd() -> bool {
    std::env::var("KWOK_TEST_STORE").is_ok_and(|v| v == "etcd")
}

/// A real etcd process on free loopback ports, killed on drop.
pub struct Etcd {
    pub dir: PathBuf,
    pub client_port: u16,
    peer_port: u16,
    child: Option<Child>,
}

impl Etcd {
    /// Starts etcd with its data under `dir`, waiting until it answers.
    pub fn start(dir: &Path) -> Etcd {
        let mut etcd = Etcd {
            dir: dir.to_path_buf(),
            client_port: free_port(),
            peer_port: free_port(),
            child: None,
        };
        etcd.launch();
        etcd
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn launch(&mut self) {
        let log = std::fs::File::create(self.dir.join("etcd.log")).unwrap();
        let client = self.url();
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let child = Command::new(which("etcd").expect("etcd on PATH (Debian: etcd-server)"))
            .arg("--data-dir")
            .arg(self.dir.join("etcd"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("default={peer}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
            if log.contains("ready to serve client requests") {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("etcd exited with {status}: {log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("etcd did not start");
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Runs `etcdctl` against this etcd.
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let out = Command::new(which("etcdctl").expect("etcdctl on PATH (Debian: etcd-client)"))
            .env("ETCDCTL_API", "3")
            .args(["--endpoints", &self.url()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Compacts etcd's history up to `revision`.
    pub fn compact(&self, revision: &str) {
        self.etcdctl(&["compact", revision]);
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn kwok_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kwok"))
}

/// The folder of the numbered kubectl binaries.
pub fn kubectl_dir() -> PathBuf {
    let kubectl = which("kubectl").expect("kubectl on PATH");
    std::fs::canonicalize(kubectl)
        .expect("resolve kubectl")
        .parent()
        .expect("kubectl has a folder")
        .to_path_buf()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `kubectl.1.27`, `kubectl.1.33`, ... or plain `kubectl` when the numbered one is missing.
pub fn kubectl_version(minor: u32) -> PathBuf {
    let numbered = kubectl_dir().join(format!("kubectl.1.{minor}"));
    if numbered.is_file() {
        numbered
    } else {
        which("kubectl").expect("kubectl on PATH")
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        Self::start_limited(extra, None)
    }

    /// Starts the server with at most `open_files` open files, when given.
    pub fn start_limited(extra: &[&str], open_files: Option<u64>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut extra_args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let etcd = (on_etcd() && !extra.contains(&"--etcd-servers")).then(|| {
            let etcd = Etcd::start(dir.path());
            extra_args.extend(["--etcd-servers".to_string(), etcd.url()]);
            etcd
        });
        let mut server = Server {
            dir,
            port: 0,
            child: None,
            extra_args,
            etcd,
            open_file_limit: open_files,
        };
        server.launch();
        server.write_kubeconfig();
        server
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("apiserver.log")
    }

    /// Starts the process (again) on the same data dir, waiting until it serves.
    pub fn launch(&mut self) {
        for _ in 0..5 {
            if self.port == 0 {
                self.port = free_port();
            }
            let log = std::fs::File::create(self.log_path()).unwrap();
            let mut command = Command::new(kwok_bin());
            command
                .args(["apiserver", "--data-dir"])
                .arg(self.data_dir())
                .args(["--secure-port", &self.port.to_string()])
                .args(&self.extra_args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            if let Some(files) = self.open_file_limit {
                use std::os::unix::process::CommandExt;
                // SAFETY: only setrlimit runs between fork and exec.
                unsafe {
                    command.pre_exec(move || {
                        let limit = libc::rlimit {
                            rlim_cur: files,
                            rlim_max: files,
                        };
                        if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            let child = command.spawn().unwrap();
            self.child = Some(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
                if log.contains("serving the Kubernetes API") {
                    return;
                }
                if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                    if log.contains("listen on") {
                        // The port was taken between picking and binding: pick another.
                        self.port = 0;
                        break;
                    }
                    panic!("kwok apiserver exited with {status}: {log}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if self.port != 0 {
                panic!(
                    "kwok apiserver did not start: {}",
                    std::fs::read_to_string(self.log_path()).unwrap_or_default()
                );
            }
        }
        panic!("could not find a free port");
    }

    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn pki(&self) -> PathBuf {
        self.data_dir().join("pki")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn write_kubeconfig(&self) {
        let pki = self.pki();
        let text = format!(
            "apiVersion: v1
kind: Config
clusters:
- name: kwok
  cluster:
    server: https://127.0.0.1:{port}
    certificate-authority: {ca}
users:
- name: kwok
  user:
    client-certificate: {crt}
    client-key: {key}
contexts:
- name: kwok
  context:
    cluster: kwok
    user: kwok
current-context: kwok
",
            port = self.port,
            ca = pki.join("ca.crt").display(),
            crt = pki.join("admin.crt").display(),
            key = pki.join("admin.key").display(),
        );
        std::fs::write(self.kubeconfig(), text).unwrap();
    }

    /// Runs kubectl 1.`minor` against the server.
    pub fn kubectl(&self, minor: u32, args: &[&str]) -> Output {
        self.kubectl_stdin(minor, args, None)
    }

    pub fn kubectl_stdin(&self, minor: u32, args: &[&str], stdin: Option<&str>) -> Output {
        let cache = self.dir.path().join(format!("cache-{minor}"));
        let mut cmd = Command::new(kubectl_version(minor));
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig())
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .env("HOME", self.dir.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Runs kubectl and returns stdout, panicking with stderr on failure.
    pub fn ok(&self, minor: u32, args: &[&str]) -> String {
        let out = self.kubectl(minor, args);
        assert!(
            out.status.success(),
            "kubectl 1.{minor} {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Applies a CustomResourceDefinition manifest and waits until it is Established.
    pub fn install_crd(&self, minor: u32, manifest: &str, name: &str) {
        let path = write(self.dir.path(), &format!("{name}.yaml"), manifest);
        self.ok(minor, &["apply", "-f", path.to_str().unwrap()]);
        let crd = format!("crd/{name}");
        self.ok(
            minor,
            &["wait", "--for=condition=Established", &crd, "--timeout=10s"],
        );
    }

    /// Runs kubectl with `input` on stdin, panicking with stderr on failure.
    pub fn ok_stdin(&self, minor: u32, args: &[&str], input: &str) {
        let out = self.kubectl_stdin(minor, args, Some(input));
        assert!(
            out.status.success(),
            "kubectl 1.{minor} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `kubectl get <what> -o json`, parsed.
    pub fn get_json(&self, minor: u32, what: &[&str]) -> serde_json::Value {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", "json"]);
        let out = self.ok(minor, &args);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, minor: u32, args: &[&str]) -> String {
        let out = self.kubectl(minor, args);
        assert!(
            !out.status.success(),
            "kubectl 1.{minor} {args:?} should fail but printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    pub async fn client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(self.kubeconfig()).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        self.etcd.take();
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A separate `kwok` simulator against `server`, as in the binary runtime: it manages every node
/// (named `localhost`, advertising `port`) and serves their kubelet endpoints on that port;
/// its log goes to `log`.
pub fn start_kwok_process(server: &Server, port: u16, log: &Path) -> Child {
    Command::new(kwok_bin())
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(["--manage-all-nodes", "--node-name", "localhost"])
        .args(["--node-port", &port.to_string()])
        .args(["--server-address", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// Reads a child's stdout on a thread, so the test can wait for text with a deadline.
pub fn collect_stdout(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = out.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 1024];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

/// The end of every test server script: serve `Handler` over HTTPS on `port` with `cert` and
/// `key`, and say so on stdout.
const PYTHON_TLS_SERVE: &str = r#"
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
"#;

/// An HTTPS server a test writes in Python (webhooks, extension API servers): the script
/// defines `Handler` and reads `port, cert, key` (then any `args`) from `sys.argv`; it is served
/// on a free loopback port with a certificate for `dns_name` signed by a CA of its own. Killed
/// on drop.
pub struct PythonTlsServer {
    child: Child,
    pub port: u16,
    /// The CA certificate, base64-encoded as `caBundle` fields take it.
    pub ca_bundle: String,
}

impl PythonTlsServer {
    pub fn start(dir: &Path, name: &str, script: &str, dns_name: &str, args: &[&Path]) -> Self {
        use base64::Engine;
        let bundle = pki::generate(&[dns_name.to_string()]).unwrap();
        let cert = write(dir, &format!("{name}.crt"), &bundle.serving.cert);
        let key = write(dir, &format!("{name}.key"), &bundle.serving.key);
        let script = write(
            dir,
            &format!("{name}.py"),
            &format!("{script}{PYTHON_TLS_SERVE}"),
        );
        let port = free_port();
        let mut child = Command::new("python3")
            .arg(&script)
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "ready");
        PythonTlsServer {
            child,
            port,
            ca_bundle: base64::engine::general_purpose::STANDARD.encode(&bundle.ca.cert),
        }
    }
}

impl Drop for PythonTlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
