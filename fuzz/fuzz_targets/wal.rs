//! Fuzz target: the store's recovery from its data directory: a write-ahead log segment, a
//! snapshot, or both, read as a start reads them (with `--repair-wal` when asked).
//! Input: a mode byte (bits 0-1: a segment, a snapshot, or both; bit 2: repair), then the
//! files' bytes; for both, the snapshot's length comes first (two bytes, little-endian).

#![no_main]

use std::path::PathBuf;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;

/// A directory of this process's own, in memory when `/dev/shm` exists.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("kwok-fuzz-wal-{}", std::process::id()))
});

fuzz_target!(|data: &[u8]| {
    let Some((&mode, files)) = data.split_first() else {
        return;
    };
    let dir = &*DIR;
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let (snapshot, segment) = match mode & 3 {
        0 => (None, Some(files)),
        1 => (Some(files), None),
        _ => {
            let Some((len, files)) = files.split_first_chunk::<2>() else {
                return;
            };
            let (a, b) = files.split_at((u16::from_le_bytes(*len) as usize).min(files.len()));
            (Some(a), Some(b))
        }
    };
    if let Some(bytes) = snapshot {
        std::fs::write(dir.join("snapshot"), bytes).unwrap();
    }
    if let Some(bytes) = segment {
        std::fs::write(dir.join("wal-00000000000000000002.log"), bytes).unwrap();
    }
    let _ = store::recover_data_dir(dir, mode & 4 != 0);
    // libFuzzer exits without running destructors: leave nothing behind after each input.
    let _ = std::fs::remove_dir_all(dir);
});
