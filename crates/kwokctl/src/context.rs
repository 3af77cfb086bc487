//! What every command needs: the environment, the workdir, the cluster name, the configuration in
//! effect and the global flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::GlobalFlags;
use crate::config::ConfigContext;
use crate::paths::{ClusterPaths, Env, Workdir};

/// The resolved global state of one kwokctl invocation.
#[derive(Debug, Clone)]
pub struct Context {
    pub env: Env,
    pub workdir: Workdir,
    pub name: String,
    pub dry_run: bool,
    pub config: ConfigContext,
    kwok_binary_flag: Option<PathBuf>,
}

impl Context {
    /// Resolves the global flags against `env` and loads the configuration files.
    pub fn new(global: &GlobalFlags, env: Env) -> anyhow::Result<Self> {
        crate::paths::validate_cluster_name(&global.name).map_err(anyhow::Error::msg)?;
        let workdir = Workdir::new(env.workdir());
        crate::kubeconfig_cache::use_folder(workdir.cache_dir().join("kubeconfig"));
        let config = ConfigContext::load(&env, &workdir.default_config(), &global.config)?;
        Ok(Self {
            env,
            workdir,
            name: global.name.clone(),
            dry_run: global.dry_run,
            config,
            kwok_binary_flag: global.kwok_binary.clone(),
        })
    }

    /// The folder of the cluster named by `--name`.
    pub fn cluster_paths(&self) -> ClusterPaths {
        self.workdir.cluster(&self.name)
    }

    /// How long a runtime availability probe may take (`KWOK_RUNTIME_CHECK_TIMEOUT`, default 10s).
    pub fn probe_timeout(&self) -> Duration {
        self.env
            .kwok("RUNTIME_CHECK_TIMEOUT")
            .and_then(|v| crate::duration::parse(v).ok())
            .filter(|d| !d.is_zero())
            .unwrap_or(crate::exec::DEFAULT_PROBE_TIMEOUT)
    }

    /// The `kwok` program that serves embedded clusters: `--kwok-binary`, else `KWOK_KWOK_BINARY`,
    /// else `preferred` (recorded in the cluster config or given at create time) when it is
    /// executable, else `kwok` beside the running kwokctl, else `kwok` on `PATH`.
    pub fn kwok_binary(&self, preferred: Option<&str>) -> Result<PathBuf, String> {
        if let Some(flag) = &self.kwok_binary_flag {
            return check_executable(flag);
        }
        if let Some(env) = self.env.kwok("KWOK_BINARY") {
            return check_executable(&self.env.expand(env));
        }
        if let Some(preferred) = preferred.filter(|p| !p.is_empty() && !p.contains("://")) {
            let path = self.env.expand(preferred);
            if is_executable(&path) {
                return Ok(path);
            }
        }
        if let Some(sibling) = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("kwok")))
            && is_executable(&sibling)
        {
            return Ok(sibling);
        }
        if let Some(found) = self.find_in_path("kwok") {
            return Ok(found);
        }
        Err("kwok binary not found: pass --kwok-binary, set KWOK_KWOK_BINARY, or put kwok beside kwokctl or on PATH".to_string())
    }

    /// Looks `program` up on `PATH`.
    pub fn find_in_path(&self, program: &str) -> Option<PathBuf> {
        let path = self.env.get("PATH")?;
        std::env::split_paths(path)
            .map(|dir| dir.join(program))
            .find(|candidate| is_executable(candidate))
    }
}

fn check_executable(path: &Path) -> Result<PathBuf, String> {
    if is_executable(path) {
        Ok(path.to_path_buf())
    } else if path.exists() {
        Err(format!("kwok binary {} is not executable", path.display()))
    } else {
        Err(format!("kwok binary {} does not exist", path.display()))
    }
}

/// True for a regular file with an execute bit.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
