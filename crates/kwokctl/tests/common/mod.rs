//! Shared helpers for the black-box tests: each test gets its own workdir, kubeconfig, home and
//! fake-program folder, runs the real `kwokctl` (and `kwok`) binaries, and cleans up every
//! process it started when it ends, even on failure.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The kwokctl binary under test.
pub fn kwokctl_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kwokctl"))
}

/// The `kwok` binary beside kwokctl (`target/<profile>/kwok`). Panics with a clear message when
/// it has not been built.
pub fn kwok_binary() -> PathBuf {
    let path = kwokctl_binary()
        .parent()
        .expect("kwokctl has a folder")
        .join("kwok");
    assert!(
        path.is_file(),
        "the kwok binary is missing at {}: build it first with `cargo build -p kwok` (or build the whole workspace)",
        path.display()
    );
    path
}

/// The folder holding the numbered kubectl binaries (`kubectl.1.27` ... `kubectl.1.33`).
pub fn kubectl_dir() -> PathBuf {
    let output = Command::new("sh")
        .args(["-c", "dirname \"$(readlink -f \"$(command -v kubectl)\")\""])
        .output()
        .expect("run sh");
    let dir = String::from_utf8_lossy(&output.stdout).trim().to_string();
    assert!(!dir.is_empty(), "kubectl is not on PATH");
    PathBuf::from(dir)
}

/// A finished command, with its output decoded.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(output: Output) -> Self {
        Self {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Panics unless the command exited 0.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "command failed: {self:#?}");
        self
    }

    /// Panics unless the command exited 1.
    #[track_caller]
    pub fn failure(self) -> Self {
        assert_eq!(
            self.code,
            Some(1),
            "command should have failed with 1: {self:#?}"
        );
        self
    }
}

/// Runs `command` with a deadline, killing it on timeout.
pub fn run_with_timeout(mut command: Command, timeout: Duration) -> Run {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn command");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("command timed out after {timeout:?}: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run::from_output(Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    })
}

/// One isolated environment: workdir, kubeconfig, home, a folder of fake programs first on PATH.
pub struct TestEnv {
    pub root: TempDir,
    pub workdir: PathBuf,
    pub kubeconfig: PathBuf,
    pub home: PathBuf,
    pub fake_bin: PathBuf,
    pub kubectl_cache: PathBuf,
    extra_env: Vec<(String, String)>,
}

impl TestEnv {
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("kwokctl-test-")
            .tempdir()
            .expect("temp dir");
        let base = root.path().to_path_buf();
        let env = Self {
            workdir: base.join("workdir"),
            kubeconfig: base.join("kube").join("config"),
            home: base.join("home"),
            fake_bin: base.join("bin"),
            kubectl_cache: base.join("kubectl-cache"),
            root,
            extra_env: Vec::new(),
        };
        for dir in [&env.home, &env.fake_bin, &env.kubectl_cache] {
            fs::create_dir_all(dir).unwrap();
        }
        env
    }

    /// Adds an environment variable to every kwokctl run.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.push((key.into(), value.into()));
    }

    /// A kwokctl command in this environment (no inherited `KWOK_*` variables).
    pub fn kwokctl_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(kwokctl_binary());
        for (key, _) in std::env::vars() {
            if key.starts_with("KWOK_") {
                command.env_remove(key);
            }
        }
        let path = format!(
            "{}:{}",
            self.fake_bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        command
            .args(args)
            .env("HOME", &self.home)
            .env("KWOK_WORKDIR", &self.workdir)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("PATH", path)
            .envs(self.extra_env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs kwokctl with a one-minute deadline.
    pub fn kwokctl(&self, args: &[&str]) -> Run {
        run_with_timeout(self.kwokctl_command(args), Duration::from_secs(60))
    }

    /// Runs a numbered kubectl (`"1.33"`) against the test kubeconfig, with its own cache dir.
    pub fn kubectl(&self, version: &str, args: &[&str]) -> Run {
        let mut command = Command::new(kubectl_dir().join(format!("kubectl.{version}")));
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.kubectl_cache.join(version))
            .args(args)
            .env("HOME", &self.home);
        run_with_timeout(command, Duration::from_secs(60))
    }

    /// Writes an executable script named `name` into the fake-program folder.
    pub fn fake_program(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.fake_bin.join(name);
        fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn cluster_dir(&self, name: &str) -> PathBuf {
        self.workdir.join("clusters").join(name)
    }

    /// Writes a cluster folder the way upstream kwokctl does for `runtime`: a `kwok.yaml` with
    /// the defaulted `KwokctlConfiguration` (abridged) plus the default stages, a kubeconfig, and
    /// the `kwok-<name>` entries in the user's kubeconfig.
    pub fn write_upstream_cluster(&self, name: &str, runtime: &str, port: u16) {
        let dir = self.cluster_dir(name);
        fs::create_dir_all(dir.join("pki")).unwrap();
        fs::create_dir_all(dir.join("logs")).unwrap();
        let config = format!(
            "kind: KwokctlConfiguration
apiVersion: config.kwok.x-k8s.io/v1alpha1
metadata:
  creationTimestamp: null
options:
  runtime: {runtime}
  kubeVersion: v1.36.1
  securePort: true
  kubeApiserverPort: {port}
  kubeAuthorization: true
  kubeAdmission: true
  etcdPrefix: /registry
  bindAddress: 0.0.0.0
  nodeLeaseDurationSeconds: 200
  heartbeatFactor: 1
  cacheDir: {workdir}/cache
components:
- name: etcd
  image: registry.k8s.io/etcd:3.6.10-0
  links: []
  ports:
  - name: http
    port: 2379
    protocol: TCP
- name: kube-apiserver
  image: registry.k8s.io/kube-apiserver:v1.36.1
  links:
  - etcd
  ports:
  - name: https
    port: 6443
    hostPort: {port}
    protocol: TCP
- name: kwok-controller
  image: registry.k8s.io/kwok/kwok:v0.9.0
  links:
  - kube-apiserver
status:
  version: 0.9.0
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: node-initialize
spec:
  resourceRef:
    apiGroup: v1
    kind: Node
",
            workdir = self.workdir.display()
        );
        fs::write(dir.join("kwok.yaml"), config).unwrap();
        fs::write(
            dir.join("logs").join("kube-apiserver.log"),
            "upstream log line\n",
        )
        .unwrap();
        fs::write(dir.join("pki").join("ca.crt"), "not a real certificate\n").unwrap();
        self.add_kubeconfig_entry(name, port);
    }

    /// Adds `kwok-<name>` entries to the user's kubeconfig, as upstream's create does.
    pub fn add_kubeconfig_entry(&self, name: &str, port: u16) {
        let ctx = format!("kwok-{name}");
        let mut text = fs::read_to_string(&self.kubeconfig).unwrap_or_default();
        if text.is_empty() {
            text = "apiVersion: v1\nkind: Config\ncurrent-context: \"\"\nclusters: []\ncontexts: []\nusers: []\n".into();
        }
        let mut doc: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let push = |doc: &mut serde_json::Value, list: &str, entry: serde_json::Value| {
            if !doc[list].is_array() {
                doc[list] = serde_json::json!([]);
            }
            doc[list].as_array_mut().unwrap().push(entry);
        };
        push(
            &mut doc,
            "clusters",
            serde_json::json!({"name": ctx, "cluster": {"server": format!("https://127.0.0.1:{port}")}}),
        );
        push(
            &mut doc,
            "users",
            serde_json::json!({"name": ctx, "user": {"client-certificate": "/x/admin.crt"}}),
        );
        push(
            &mut doc,
            "contexts",
            serde_json::json!({"name": ctx, "context": {"cluster": ctx, "user": ctx}}),
        );
        doc["current-context"] = serde_json::json!(ctx);
        fs::create_dir_all(self.kubeconfig.parent().unwrap()).unwrap();
        fs::write(&self.kubeconfig, serde_saphyr::to_string(&doc).unwrap()).unwrap();
    }

    /// The user's kubeconfig as JSON (empty object when missing).
    pub fn kubeconfig_doc(&self) -> serde_json::Value {
        match fs::read_to_string(&self.kubeconfig) {
            Ok(text) => serde_saphyr::from_str(&text).unwrap(),
            Err(_) => serde_json::json!({}),
        }
    }

    /// The names of the contexts in the user's kubeconfig.
    pub fn context_names(&self) -> Vec<String> {
        self.kubeconfig_doc()["contexts"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The deletion audit records, one JSON value per line.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        let path = self.workdir.join("audit").join("delete.jsonl");
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
            .collect()
    }

    /// The pid recorded for a component, if any.
    pub fn pid(&self, cluster: &str, component: &str) -> Option<u32> {
        fs::read_to_string(
            self.cluster_dir(cluster)
                .join("pids")
                .join(format!("{component}.pid")),
        )
        .ok()?
        .trim()
        .parse()
        .ok()
    }

    /// The apiserver port recorded in a cluster's kwok.yaml.
    pub fn port(&self, cluster: &str) -> u16 {
        let text = fs::read_to_string(self.cluster_dir(cluster).join("kwok.yaml")).unwrap();
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
        docs[0]["options"]["kubeApiserverPort"].as_u64().unwrap() as u16
    }

    fn all_recorded_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        let Ok(clusters) = fs::read_dir(self.workdir.join("clusters")) else {
            return pids;
        };
        for cluster in clusters.filter_map(Result::ok) {
            let Ok(files) = fs::read_dir(cluster.path().join("pids")) else {
                continue;
            };
            for file in files.filter_map(Result::ok) {
                if let Some(pid) = fs::read_to_string(file.path())
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    pids.push(pid);
                }
            }
        }
        pids
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let pids = self.all_recorded_pids();
        let mut cleanup = self.kwokctl_command(&["delete", "cluster", "--all", "--force"]);
        cleanup.env("KWOK_RUNTIME_CHECK_TIMEOUT", "1s");
        let _ = cleanup
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for pid in pids {
            kill_if_ours(pid, self.root.path());
        }
    }
}

/// Kills `pid` if its command line mentions `root` (so a reused pid is never hit).
pub fn kill_if_ours(pid: u32, root: &Path) {
    let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let needle = root.as_os_str().as_encoded_bytes();
    if cmdline.windows(needle.len()).any(|w| w == needle) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
}

/// True while `pid` is a live (non-zombie) process.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// Waits up to `timeout` for `pid` to be gone.
pub fn wait_dead(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !alive(pid)
}
