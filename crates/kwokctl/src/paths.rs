//! Where things live: the environment snapshot, the workdir and each cluster's folder.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The file name of a cluster's (and the workdir's) configuration.
pub const CONFIG_FILE: &str = "kwok.yaml";

/// A snapshot of the process environment. Empty values count as unset, as upstream treats them.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// Captures the current process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
        }
    }

    /// Builds an environment from pairs (for tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// The value of `key` unless it is unset or empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The value of `KWOK_<suffix>`.
    pub fn kwok(&self, suffix: &str) -> Option<&str> {
        self.get(&format!("KWOK_{suffix}"))
    }

    /// The home folder, from `$HOME`.
    pub fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from)
    }

    /// `KWOK_WORKDIR`, else `$HOME/.kwok`, else `<tmp>/kwok`.
    pub fn workdir(&self) -> PathBuf {
        if let Some(dir) = self.kwok("WORKDIR") {
            return self.expand(dir);
        }
        match self.home() {
            Some(home) => home.join(".kwok"),
            None => std::env::temp_dir().join("kwok"),
        }
    }

    /// Expands a leading `~` to the home folder.
    pub fn expand(&self, path: &str) -> PathBuf {
        if path == "~"
            && let Some(home) = self.home()
        {
            return home;
        }
        if let Some(rest) = path.strip_prefix("~/")
            && let Some(home) = self.home()
        {
            return home.join(rest);
        }
        PathBuf::from(path)
    }

    /// The kubeconfig kwokctl edits: the `--kubeconfig` flag, else the first path of
    /// `$KUBECONFIG`, else `~/.kube/config`. An explicitly empty flag is an error, as upstream.
    pub fn kubeconfig_path(&self, flag: Option<&str>) -> Result<PathBuf, String> {
        if let Some(flag) = flag {
            if flag.is_empty() {
                return Err("empty path".to_string());
            }
            return Ok(self.expand(flag));
        }
        if let Some(list) = self.get("KUBECONFIG")
            && let Some(first) = std::env::split_paths(list).find(|p| !p.as_os_str().is_empty())
        {
            return Ok(self.expand(&first.to_string_lossy()));
        }
        match self.home() {
            Some(home) => Ok(home.join(".kube").join("config")),
            None => Err(
                "cannot find the kubeconfig: neither --kubeconfig, KUBECONFIG nor HOME is set"
                    .to_string(),
            ),
        }
    }
}

/// The workdir: `<workdir>/clusters/<name>` per cluster, plus shared folders.
#[derive(Debug, Clone)]
pub struct Workdir {
    pub root: PathBuf,
}

impl Workdir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// `<workdir>/kwok.yaml`, the user-level default configuration.
    pub fn default_config(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }
    pub fn clusters_dir(&self) -> PathBuf {
        self.root.join("clusters")
    }
    /// `cache/`: what kwokctl may rebuild at any time (parsed kubeconfigs).
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    pub fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }
    pub fn audit_dir(&self) -> PathBuf {
        self.root.join("audit")
    }
    /// The append-only deletion audit log, outside every cluster's folder.
    pub fn delete_audit_log(&self) -> PathBuf {
        self.audit_dir().join("delete.jsonl")
    }
    pub fn cluster(&self, name: &str) -> ClusterPaths {
        ClusterPaths::new(self.clusters_dir().join(name))
    }
    pub fn lock_file(&self, name: &str) -> PathBuf {
        self.locks_dir().join(format!("{name}.lock"))
    }
}

/// The files of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterPaths {
    pub dir: PathBuf,
}

impl ClusterPaths {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig.yaml")
    }
    pub fn pki(&self) -> PathBuf {
        self.dir.join("pki")
    }
    pub fn logs(&self) -> PathBuf {
        self.dir.join("logs")
    }
    pub fn pids(&self) -> PathBuf {
        self.dir.join("pids")
    }
    /// The store's data folder of the embedded runtime.
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// etcd's data folder of the binary runtime.
    pub fn etcd(&self) -> PathBuf {
        self.dir.join("etcd")
    }
    pub fn log_file(&self, component: &str) -> PathBuf {
        self.logs().join(format!("{component}.log"))
    }
    pub fn pid_file(&self, component: &str) -> PathBuf {
        self.pids().join(format!("{component}.pid"))
    }
    pub fn audit_log(&self) -> PathBuf {
        self.logs().join("audit.log")
    }
    pub fn default_export_dir(&self) -> PathBuf {
        self.dir.join("export").join("logs")
    }
}

/// The runtime-level name of a cluster, as used for kubeconfig entries and containers.
pub fn context_name(cluster: &str) -> String {
    format!("kwok-{cluster}")
}

/// Validates a cluster name so it is safe as a folder and container name.
pub fn validate_cluster_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid cluster name {name:?}: use letters, digits, '-', '_' or '.', at most 63 characters"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdir_precedence() {
        let env = Env::from_pairs([("HOME", "/h"), ("KWOK_WORKDIR", "/w")]);
        assert_eq!(env.workdir(), PathBuf::from("/w"));
        let env = Env::from_pairs([("HOME", "/h"), ("KWOK_WORKDIR", "")]);
        assert_eq!(env.workdir(), PathBuf::from("/h/.kwok"));
    }

    #[test]
    fn kubeconfig_precedence() {
        let env = Env::from_pairs([("HOME", "/h"), ("KUBECONFIG", "/a:/b")]);
        assert_eq!(env.kubeconfig_path(None).unwrap(), PathBuf::from("/a"));
        assert_eq!(
            env.kubeconfig_path(Some("~/k")).unwrap(),
            PathBuf::from("/h/k")
        );
        assert_eq!(env.kubeconfig_path(Some("")).unwrap_err(), "empty path");
        let env = Env::from_pairs([("HOME", "/h")]);
        assert_eq!(
            env.kubeconfig_path(None).unwrap(),
            PathBuf::from("/h/.kube/config")
        );
    }

    #[test]
    fn cluster_names() {
        assert!(validate_cluster_name("kwok").is_ok());
        assert!(validate_cluster_name("a-b_c.1").is_ok());
        assert!(validate_cluster_name("../x").is_err());
        assert!(validate_cluster_name("").is_err());
        assert!(validate_cluster_name("a/b").is_err());
    }
}
