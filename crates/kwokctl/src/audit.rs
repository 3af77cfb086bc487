//! The deletion audit log: one JSON object per line in `<workdir>/audit/delete.jsonl`, appended
//! for every `delete cluster` attempt (forced or not, aborted or not), outside the cluster's
//! folder so it survives the deletion.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// How a deletion ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Everything was removed.
    Deleted,
    /// Nothing was removed (runtime unavailable without `--force`, or backup failed).
    Aborted,
    /// Deletion started and stopped part way; see `error` and `removed`.
    Failed,
    /// There was no such cluster.
    NotFound,
}

/// A process that was stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedProcess {
    pub component: String,
    pub pid: u32,
}

/// What a deletion removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Removed {
    /// Processes stopped (embedded and binary runtimes).
    pub processes: Vec<StoppedProcess>,
    /// Containers (or kind clusters) removed through the container engine.
    pub containers: Vec<String>,
    /// The kubeconfig file that was edited.
    pub kubeconfig: Option<String>,
    /// Entries removed from it, e.g. `context/kwok-a`.
    pub kubeconfig_entries: Vec<String>,
    /// The cluster folder, once removed.
    pub workdir: Option<String>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRecord {
    /// RFC 3339 UTC time the attempt finished.
    pub time: String,
    pub cluster: String,
    /// The cluster folder.
    pub workdir: String,
    /// The runtime named in the cluster's `kwok.yaml`, when it could be read.
    pub runtime: Option<String>,
    pub forced: bool,
    /// Whether the runtime passed its availability check.
    pub available: Option<bool>,
    pub availability_error: Option<String>,
    /// Where the cluster was copied before removal.
    pub backup: Option<String>,
    pub removed: Removed,
    pub result: Outcome,
    pub error: Option<String>,
    /// Pid of the kwokctl that did it, and its version.
    pub pid: u32,
    pub kwokctl_version: String,
}

impl DeleteRecord {
    /// A record for `cluster`, to be filled in as the deletion proceeds.
    pub fn new(cluster: &str, workdir: &Path, forced: bool) -> Self {
        Self {
            time: String::new(),
            cluster: cluster.to_string(),
            workdir: workdir.display().to_string(),
            runtime: None,
            forced,
            available: None,
            availability_error: None,
            backup: None,
            removed: Removed::default(),
            result: Outcome::Failed,
            error: None,
            pid: std::process::id(),
            kwokctl_version: crate::VERSION.to_string(),
        }
    }
}

/// Appends `record` as one line, stamping the time. A file lock keeps lines whole when several
/// kwokctl processes delete at once.
pub fn append(log: &Path, record: &mut DeleteRecord) -> anyhow::Result<()> {
    record.time = jiff::Timestamp::now().to_string();
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let mut line = serde_json::to_string(record).context("encode audit record")?;
    line.push('\n');
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    file.lock()
        .with_context(|| format!("lock {}", log.display()))?;
    file.write_all(line.as_bytes())
        .with_context(|| format!("write {}", log.display()))?;
    Ok(())
}

/// Reads every record of an audit log.
pub fn read_all(log: &Path) -> anyhow::Result<Vec<DeleteRecord>> {
    let text = fs::read_to_string(log).with_context(|| format!("read {}", log.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("parse audit line {l}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_append_as_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit").join("delete.jsonl");
        let mut first = DeleteRecord::new("a", Path::new("/w/clusters/a"), false);
        first.runtime = Some("docker".into());
        first.available = Some(false);
        first.availability_error = Some("docker version: exit status: 1".into());
        first.result = Outcome::Aborted;
        append(&log, &mut first).unwrap();
        let mut second = DeleteRecord::new("b", Path::new("/w/clusters/b"), true);
        second.removed.processes.push(StoppedProcess {
            component: "kube-apiserver".into(),
            pid: 7,
        });
        second.removed.workdir = Some("/w/clusters/b".into());
        second.result = Outcome::Deleted;
        append(&log, &mut second).unwrap();

        let text = fs::read_to_string(&log).unwrap();
        assert_eq!(text.lines().count(), 2);
        let line: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(line["result"], "aborted");
        assert_eq!(line["availabilityError"], "docker version: exit status: 1");
        assert_eq!(line["forced"], false);
        assert!(line["time"].as_str().unwrap().ends_with('Z'));

        let records = read_all(&log).unwrap();
        assert_eq!(records, vec![first, second]);
    }
}
