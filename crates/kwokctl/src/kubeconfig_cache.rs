//! Parsed kubeconfigs remembered between kwokctl runs, under `<workdir>/cache/kubeconfig/`.
//!
//! A kubeconfig shared by a thousand clusters is about 350 KB of YAML, and every `create` and
//! `delete` reads it: parsing it took 25-40 ms a time, most of what kwokctl itself cost. The
//! parse is kept as JSON (which reads about ten times faster) beside the SHA-256 of the exact
//! text it came from; an entry is used only when the kubeconfig still has that text, so an edit
//! by kubectl or by hand is simply parsed again. Entries are best effort: any failure to read
//! or write one falls back to parsing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The folder of entries, set once per process by [`crate::context::Context::new`]; without
/// it nothing is remembered.
static FOLDER: OnceLock<PathBuf> = OnceLock::new();

/// Remembers parsed kubeconfigs under `folder` for the rest of this process.
pub fn use_folder(folder: PathBuf) {
    let _ = FOLDER.set(folder);
}

#[derive(Serialize, Deserialize)]
struct Entry {
    /// SHA-256 of the kubeconfig text, lowercase hex.
    sha256: String,
    doc: Value,
}

fn digest(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The entry file of the kubeconfig at `path`: named by the digest of its absolute path.
fn entry_file(folder: &Path, path: &Path) -> PathBuf {
    let absolute = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = digest(&absolute.to_string_lossy());
    folder.join(format!("{}.json", &name[..32]))
}

/// The remembered parse of `text`, the current content of the kubeconfig at `path`.
pub fn get(path: &Path, text: &str) -> Option<Value> {
    get_in(FOLDER.get()?, path, text)
}

/// Remembers `doc` as the parse of `text`, the content of the kubeconfig at `path`.
pub fn put(path: &Path, text: &str, doc: &Value) {
    if let Some(folder) = FOLDER.get() {
        put_in(folder, path, text, doc);
    }
}

fn get_in(folder: &Path, path: &Path, text: &str) -> Option<Value> {
    let bytes = fs::read(entry_file(folder, path)).ok()?;
    let entry: Entry = serde_json::from_slice(&bytes).ok()?;
    // `kubeconfig::load` hands out mappings only; an entry holding anything else is damaged.
    (entry.doc.is_object() && entry.sha256 == digest(text)).then_some(entry.doc)
}

fn put_in(folder: &Path, path: &Path, text: &str, doc: &Value) {
    let file = entry_file(folder, path);
    let entry = Entry {
        sha256: digest(text),
        doc: doc.clone(),
    };
    let Ok(bytes) = serde_json::to_vec(&entry) else {
        return;
    };
    let tmp = file.with_extension(format!("{}.tmp", std::process::id()));
    let written = create_private_dir(folder)
        .and_then(|()| write_private(&tmp, &bytes))
        .and_then(|()| fs::rename(&tmp, &file));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        tracing::debug!(file = %file.display(), err = %e, "Could not remember the parsed kubeconfig");
    }
}

/// The entries hold what the kubeconfigs hold (tokens, keys): only their owner may read them.
fn create_private_dir(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

fn write_private(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)?
        .write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_entry_serves_only_the_text_it_was_parsed_from() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        let kubeconfig = dir.path().join("config");
        fs::write(&kubeconfig, "kind: Config\n").unwrap();
        let doc = json!({"kind": "Config", "contexts": [{"name": "kwok-a"}]});

        assert_eq!(get_in(&folder, &kubeconfig, "kind: Config\n"), None);
        put_in(&folder, &kubeconfig, "kind: Config\n", &doc);
        assert_eq!(get_in(&folder, &kubeconfig, "kind: Config\n"), Some(doc));
        // Edited by someone else: the text differs, so the entry is not used.
        assert_eq!(
            get_in(&folder, &kubeconfig, "kind: Config\ncontexts: []\n"),
            None
        );
        // Another kubeconfig has its own entry.
        let other = dir.path().join("other");
        fs::write(&other, "kind: Config\n").unwrap();
        assert_eq!(get_in(&folder, &other, "kind: Config\n"), None);
    }

    /// What `save` remembers is the document it rendered, so rendering and parsing again must
    /// give that document back, tricky scalars included.
    #[test]
    fn a_rendered_kubeconfig_parses_back_to_the_same_document() {
        let doc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kwok-a", "cluster": {"server": "https://127.0.0.1:32766", "certificate-authority": "/w/pki/ca.crt"}}],
            "contexts": [{"name": "kwok-a", "context": {"cluster": "kwok-a", "user": "kwok-a", "namespace": "on"}}],
            "users": [{"name": "kwok-a", "user": {"token": "0123", "username": "null", "password": "yes: no # not a comment"}}],
            "current-context": "",
            "preferences": {},
            "extensions": [{"name": "x", "extension": {"n": 1, "f": 1.5, "t": true, "nothing": null, "e": "1e3", "tilde": "~", "empty": [], "multi": "a\nb"}}],
        });
        let text = crate::kubeconfig::render(&doc).unwrap();
        let parsed: Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(parsed, doc, "{text}");
    }

    #[test]
    fn entries_are_readable_by_their_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache").join("kubeconfig");
        let kubeconfig = dir.path().join("config");
        put_in(&folder, &kubeconfig, "a: 1\n", &json!({"a": 1}));
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&entry_file(&folder, &kubeconfig)), 0o600);
        assert_eq!(mode(&folder), 0o700);
    }

    #[test]
    fn a_damaged_entry_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        let kubeconfig = dir.path().join("config");
        put_in(&folder, &kubeconfig, "a: 1\n", &json!({"a": 1}));
        fs::write(entry_file(&folder, &kubeconfig), b"{not json").unwrap();
        assert_eq!(get_in(&folder, &kubeconfig, "a: 1\n"), None);
        let not_a_mapping = json!({"sha256": digest("a: 1\n"), "doc": [1]});
        fs::write(entry_file(&folder, &kubeconfig), not_a_mapping.to_string()).unwrap();
        assert_eq!(get_in(&folder, &kubeconfig, "a: 1\n"), None);
    }
}
