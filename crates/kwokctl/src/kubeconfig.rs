//! Editing kubeconfig files without losing anything kwokctl does not own.
//!
//! The file is parsed into a generic JSON value, so unknown fields, other contexts, extensions and
//! preferences survive. Edits take client-go's `<file>.lock` (created exclusively, removed after),
//! so kwokctl and kubectl never interleave read-modify-write cycles on the same file.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

/// The three entries kwokctl adds for a cluster.
#[derive(Debug, Clone)]
pub struct ClusterEntry {
    /// `kwok-<name>`: the name of the context, cluster and user.
    pub name: String,
    pub server: String,
    pub certificate_authority: PathBuf,
    pub client_certificate: PathBuf,
    pub client_key: PathBuf,
}

/// An empty kubeconfig.
pub fn empty() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [],
        "contexts": [],
        "current-context": "",
        "users": [],
        "preferences": {},
    })
}

/// A kubeconfig that holds only `entry`, current.
pub fn standalone(entry: &ClusterEntry) -> Value {
    let mut doc = empty();
    add_entry(&mut doc, entry);
    doc
}

fn named_list<'a>(doc: &'a mut Value, key: &str) -> &'a mut Vec<Value> {
    let obj = doc.as_object_mut().expect("kubeconfig root is an object");
    let slot = obj.entry(key).or_insert(Value::Null);
    if !slot.is_array() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().expect("just made an array")
}

fn upsert(doc: &mut Value, list: &str, name: &str, body_key: &str, body: Value) {
    let items = named_list(doc, list);
    let entry = json!({ "name": name, body_key: body });
    match items
        .iter_mut()
        .find(|i| i.get("name").and_then(Value::as_str) == Some(name))
    {
        Some(existing) => *existing = entry,
        None => items.push(entry),
    }
}

/// Adds (or replaces) the cluster, user and context of `entry` and makes the context current.
pub fn add_entry(doc: &mut Value, entry: &ClusterEntry) {
    if !doc.is_object() {
        *doc = empty();
    }
    upsert(
        doc,
        "clusters",
        &entry.name,
        "cluster",
        json!({
            "server": entry.server,
            "certificate-authority": entry.certificate_authority.display().to_string(),
        }),
    );
    upsert(
        doc,
        "users",
        &entry.name,
        "user",
        json!({
            "client-certificate": entry.client_certificate.display().to_string(),
            "client-key": entry.client_key.display().to_string(),
        }),
    );
    upsert(
        doc,
        "contexts",
        &entry.name,
        "context",
        json!({ "cluster": entry.name, "user": entry.name }),
    );
    let obj = doc.as_object_mut().expect("object");
    obj.insert("current-context".into(), Value::String(entry.name.clone()));
    obj.entry("apiVersion").or_insert_with(|| json!("v1"));
    obj.entry("kind").or_insert_with(|| json!("Config"));
}

/// Removes the context, cluster and user named `name`; resets `current-context` when it pointed
/// there. Returns what was removed, e.g. `["context/kwok-a", "cluster/kwok-a", "user/kwok-a"]`.
pub fn remove_entry(doc: &mut Value, name: &str) -> Vec<String> {
    let mut removed = Vec::new();
    let Some(obj) = doc.as_object_mut() else {
        return removed;
    };
    for (list, what) in [
        ("contexts", "context"),
        ("clusters", "cluster"),
        ("users", "user"),
    ] {
        if let Some(Value::Array(items)) = obj.get_mut(list) {
            let before = items.len();
            items.retain(|i| i.get("name").and_then(Value::as_str) != Some(name));
            if items.len() != before {
                removed.push(format!("{what}/{name}"));
            }
            if items.is_empty() {
                obj.insert(list.to_string(), Value::Null);
            }
        }
    }
    if obj.get("current-context").and_then(Value::as_str) == Some(name) {
        obj.insert("current-context".into(), Value::String(String::new()));
        removed.push(format!("current-context/{name}"));
    }
    removed
}

/// The server URL of cluster `name`, if present.
pub fn server_of(doc: &Value, name: &str) -> Option<String> {
    doc.get("clusters")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))?
        .get("cluster")?
        .get("server")?
        .as_str()
        .map(str::to_string)
}

/// Reads a kubeconfig; a missing or empty file is an empty config.
pub fn load(path: &Path) -> anyhow::Result<Value> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(empty()),
        Err(e) => return Err(e).with_context(|| format!("read kubeconfig {}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(empty());
    }
    if let Some(doc) = crate::kubeconfig_cache::get(path, &text) {
        return Ok(doc);
    }
    let doc: Value = serde_saphyr::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("parse kubeconfig {}", path.display()))?;
    if doc.is_null() {
        return Ok(empty());
    }
    if !doc.is_object() {
        bail!("kubeconfig {} is not a YAML mapping", path.display());
    }
    crate::kubeconfig_cache::put(path, &text, &doc);
    Ok(doc)
}

/// Renders a kubeconfig as YAML.
pub fn render(doc: &Value) -> anyhow::Result<String> {
    serde_saphyr::to_string(doc).map_err(|e| anyhow::anyhow!("render kubeconfig: {e}"))
}

/// Writes a kubeconfig through a temporary file and a rename, keeping the file's permissions.
/// A file without write permission is refused, even for root: the user marked it read-only.
pub fn save(path: &Path, doc: &Value) -> anyhow::Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let existing = fs::metadata(&target).ok();
    if let Some(meta) = &existing
        && meta.permissions().readonly()
    {
        bail!("kubeconfig {} is read-only", target.display());
    }
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let text = render(doc)?;
    let tmp = dir.join(format!(
        ".{}.kwokctl-{}.tmp",
        target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "config".into()),
        std::process::id()
    ));
    fs::write(&tmp, &text).with_context(|| format!("write kubeconfig {}", tmp.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = existing.map(|m| m.permissions().mode()).unwrap_or(0o600);
        let _ = fs::set_permissions(&tmp, fs::Permissions::from_mode(mode));
    }
    if let Err(e) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("write kubeconfig {}", target.display()));
    }
    crate::kubeconfig_cache::put(path, &text, doc);
    Ok(())
}

/// Held while a kubeconfig is being edited; removes `<file>.lock` on drop.
struct EditLock {
    path: PathBuf,
}

impl Drop for EditLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn lock(path: &Path, timeout: Duration) -> anyhow::Result<EditLock> {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    if let Some(dir) = lock_path.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let started = Instant::now();
    loop {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock_path)
        {
            Ok(_) => return Ok(EditLock { path: lock_path }),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if started.elapsed() > timeout {
                    bail!(
                        "kubeconfig {} is locked by {}: remove that file if no other program is editing the kubeconfig",
                        path.display(),
                        lock_path.display()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                return Err(e).with_context(|| format!("lock kubeconfig {}", lock_path.display()));
            }
        }
    }
}

/// Loads, edits and saves a kubeconfig under its lock. `edit` returns whether it changed
/// anything; unchanged files are not rewritten.
pub fn edit<T>(path: &Path, edit: impl FnOnce(&mut Value) -> (bool, T)) -> anyhow::Result<T> {
    let _lock = lock(path, Duration::from_secs(10))?;
    let mut doc = load(path)?;
    let (changed, result) = edit(&mut doc);
    if changed {
        save(path, &doc)?;
    }
    Ok(result)
}

/// Adds the entries of a cluster to the kubeconfig at `path` and makes its context current.
pub fn add_context(path: &Path, entry: &ClusterEntry) -> anyhow::Result<()> {
    edit(path, |doc| {
        add_entry(doc, entry);
        (true, ())
    })
}

/// Removes the entries named `name` from the kubeconfig at `path`; a missing file is fine.
pub fn remove_context(path: &Path, name: &str) -> anyhow::Result<Vec<String>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    edit(path, |doc| {
        let removed = remove_entry(doc, name);
        (!removed.is_empty(), removed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> ClusterEntry {
        ClusterEntry {
            name: name.into(),
            server: "https://127.0.0.1:1234".into(),
            certificate_authority: "/w/pki/ca.crt".into(),
            client_certificate: "/w/pki/admin.crt".into(),
            client_key: "/w/pki/admin.key".into(),
        }
    }

    const OTHER: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster:\n    server: https://prod:6443\n    certificate-authority-data: AAAA\ncontexts:\n- name: prod\n  context:\n    cluster: prod\n    user: admin\n    namespace: team\ncurrent-context: prod\nusers:\n- name: admin\n  user:\n    token: secret\npreferences:\n  colors: true\nextensions:\n- name: x\n  extension: {a: 1}\n";

    #[test]
    fn add_then_remove_preserves_other_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(&path, OTHER).unwrap();
        let original = load(&path).unwrap();

        add_context(&path, &entry("kwok-a")).unwrap();
        let doc = load(&path).unwrap();
        assert_eq!(doc["current-context"], "kwok-a");
        assert_eq!(server_of(&doc, "kwok-a").unwrap(), "https://127.0.0.1:1234");
        assert_eq!(server_of(&doc, "prod").unwrap(), "https://prod:6443");
        assert_eq!(doc["users"][0]["user"]["token"], "secret");
        assert_eq!(doc["extensions"][0]["extension"]["a"], 1);

        let removed = remove_context(&path, "kwok-a").unwrap();
        assert_eq!(
            removed,
            vec![
                "context/kwok-a",
                "cluster/kwok-a",
                "user/kwok-a",
                "current-context/kwok-a"
            ]
        );
        let mut doc = load(&path).unwrap();
        assert_eq!(doc["current-context"], "");
        doc["current-context"] = original["current-context"].clone();
        assert_eq!(doc, original);
        assert!(!PathBuf::from(format!("{}.lock", path.display())).exists());
    }

    #[test]
    fn current_context_kept_when_it_points_elsewhere() {
        let mut doc: Value = serde_saphyr::from_str(OTHER).unwrap();
        add_entry(&mut doc, &entry("kwok-a"));
        doc["current-context"] = json!("prod");
        let removed = remove_entry(&mut doc, "kwok-a");
        assert_eq!(removed.len(), 3);
        assert_eq!(doc["current-context"], "prod");
    }

    #[test]
    fn removing_the_only_context_leaves_null_lists() {
        let mut doc = standalone(&entry("kwok-a"));
        remove_entry(&mut doc, "kwok-a");
        assert_eq!(doc["clusters"], Value::Null);
        assert_eq!(doc["contexts"], Value::Null);
        assert_eq!(doc["users"], Value::Null);
        assert_eq!(doc["current-context"], "");
    }

    #[test]
    fn missing_file_is_empty_and_removal_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("config");
        assert!(remove_context(&path, "kwok-a").unwrap().is_empty());
        assert!(!path.exists());
        add_context(&path, &entry("kwok-a")).unwrap();
        assert_eq!(load(&path).unwrap()["contexts"][0]["name"], "kwok-a");
    }

    #[test]
    fn read_only_file_is_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(&path, OTHER).unwrap();
        let mut perms = fs::metadata(&path).unwrap().permissions();
        perms.set_readonly(true);
        fs::set_permissions(&path, perms).unwrap();
        let err = add_context(&path, &entry("kwok-a")).unwrap_err();
        assert!(format!("{err:#}").contains("read-only"), "{err:#}");
        assert_eq!(fs::read_to_string(&path).unwrap(), OTHER);
    }

    #[test]
    fn stale_lock_times_out_with_a_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(format!("{}.lock", path.display()), "").unwrap();
        let err = match lock(&path, Duration::from_millis(50)) {
            Err(e) => e,
            Ok(_) => panic!("lock should time out"),
        };
        assert!(err.to_string().contains("is locked by"));
    }
}
