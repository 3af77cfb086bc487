//! One advisory lock per cluster, so concurrent kwokctl commands on one cluster run one at a time.
//!
//! Lock files live in `<workdir>/locks/`, outside the cluster folder, so deleting a cluster never
//! removes a lock another command is waiting on.

use std::fs::{self, File, OpenOptions, TryLockError};

use anyhow::Context as _;

use crate::paths::Workdir;

/// Held for the duration of a command; released when dropped (or when the process exits).
#[derive(Debug)]
pub struct ClusterLock {
    _file: File,
}

/// Takes the lock of cluster `name`, waiting for another command to finish if needed.
pub fn lock_cluster(workdir: &Workdir, name: &str) -> anyhow::Result<ClusterLock> {
    let dir = workdir.locks_dir();
    fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    let path = workdir.lock_file(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("open lock {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::info!(
                cluster = name,
                "Another kwokctl command is working on this cluster, waiting for it"
            );
            file.lock()
                .with_context(|| format!("lock {}", path.display()))?;
        }
        Err(TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("lock {}", path.display()));
        }
    }
    Ok(ClusterLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn second_locker_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let workdir = Workdir::new(dir.path());
        let first = lock_cluster(&workdir, "a").unwrap();
        let (tx, rx) = mpsc::channel();
        let root = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let _second = lock_cluster(&Workdir::new(root), "a").unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        let _other = lock_cluster(&workdir, "b").unwrap();
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
    }
}
