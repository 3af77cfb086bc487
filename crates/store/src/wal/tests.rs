//! Recovery of damaged data directories, through [`LocalStore::open`] as the server opens it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::*;
use crate::{Error, LocalStore, Options, Store};

fn options(dir: &Path) -> Options {
    Options {
        data_dir: Some(dir.to_path_buf()),
        ..Options::default()
    }
}

fn repairing(dir: &Path) -> Options {
    Options {
        repair_wal: true,
        ..options(dir)
    }
}

fn key(i: usize) -> String {
    format!("/r/{i:04}")
}

/// Opens the store in `dir`, creates keys `from..to` and closes it again. Each open starts a
/// new segment, so every call writes its own segment.
async fn write_keys(dir: &Path, from: usize, to: usize) {
    let s = LocalStore::open(options(dir)).unwrap();
    for i in from..to {
        let mut value = |rev| Bytes::from(format!("value {i} at {rev} {}", "x".repeat(100)));
        s.create(&key(i), &mut value).await.unwrap();
    }
    s.close();
}

/// The non-empty segments of `dir`, oldest first.
fn segments(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| fs::metadata(p).unwrap().len() > 0)
        .collect()
}

/// `(offset, frame length)` of every record of a segment.
fn frames(bytes: &[u8], mut at: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    while at + 8 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        out.push((at, 8 + len));
        at += 8 + len;
    }
    assert_eq!(at, bytes.len(), "frames end with the file");
    out
}

fn segment_frames(path: &Path) -> Vec<(usize, usize)> {
    frames(&fs::read(path).unwrap(), 0)
}

/// Flips one byte of the payload of the record at `offset`.
fn flip_payload_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset + 8 + 30] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

fn open_err(options: Options) -> Arc<io::Error> {
    match LocalStore::open(options) {
        Ok(_) => panic!("the store opened"),
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            e
        }
        Err(e) => panic!("unexpected error {e}"),
    }
}

fn repair_dirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("repair-")
        })
        .collect()
}

/// Asserts that keys `0..present` are there and `present..total` are not.
async fn assert_keys(s: &LocalStore, present: usize, total: usize) {
    for i in 0..total {
        let got = s.get(&key(i)).await.unwrap();
        assert_eq!(got.is_some(), i < present, "key {i}");
    }
}

#[tokio::test]
async fn half_written_last_record_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    let segment = &segments(dir.path())[0];
    let (last, len) = *segment_frames(segment).last().unwrap();
    let f = OpenOptions::new().write(true).open(segment).unwrap();
    f.set_len((last + len / 2) as u64).unwrap();
    drop(f);
    let s = LocalStore::open(options(dir.path())).unwrap();
    assert_keys(&s, 99, 100).await;
    assert_eq!(s.current_revision(), 1 + 99);
    assert_eq!(fs::metadata(segment).unwrap().len(), last as u64);
    assert!(repair_dirs(dir.path()).is_empty());
}

#[tokio::test]
async fn flipped_byte_in_the_middle_of_the_newest_segment_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    let segment = &segments(dir.path())[0];
    let (bad, _) = segment_frames(segment)[50];
    flip_payload_byte(segment, bad);
    let damaged = fs::read(segment).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(err.contains(&segment.display().to_string()), "{err}");
    assert!(err.contains(&format!("byte offset {bad}:")), "{err}");
    assert!(err.contains("checksum"), "{err}");
    assert!(err.contains("last good revision is 51"), "{err}");
    assert!(err.contains("--repair-wal"), "{err}");
    // Nothing was cut.
    assert_eq!(fs::read(segment).unwrap(), damaged);
    // Opening again refuses again.
    open_err(options(dir.path()));
}

#[tokio::test]
async fn damaged_length_field_in_the_middle_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    let segment = &segments(dir.path())[0];
    let (bad, _) = segment_frames(segment)[70];
    let mut bytes = fs::read(segment).unwrap();
    // A length that runs past the end of the file looks like a short write.
    bytes[bad + 3] = 0x10;
    fs::write(segment, bytes).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(err.contains(&format!("byte offset {bad}:")), "{err}");
}

#[tokio::test]
async fn flipped_byte_in_the_last_record_counts_as_an_interrupted_write() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    let segment = &segments(dir.path())[0];
    let (last, _) = *segment_frames(segment).last().unwrap();
    flip_payload_byte(segment, last);
    let s = LocalStore::open(options(dir.path())).unwrap();
    assert_keys(&s, 99, 100).await;
    assert_eq!(s.current_revision(), 1 + 99);
    assert_eq!(fs::metadata(segment).unwrap().len(), last as u64);
}

#[tokio::test]
async fn corruption_in_an_older_segment_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 50).await;
    write_keys(dir.path(), 50, 100).await;
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 2);
    // Even the last record of an older segment is not an interrupted write: later ones follow.
    let (last, _) = *segment_frames(&segs[0]).last().unwrap();
    flip_payload_byte(&segs[0], last);
    let err = open_err(options(dir.path())).to_string();
    assert!(err.contains(&segs[0].display().to_string()), "{err}");
    assert!(err.contains(&format!("byte offset {last}:")), "{err}");
    assert!(err.contains("1 newer segment follows"), "{err}");
    assert!(err.contains("last good revision is 50"), "{err}");
}

#[tokio::test]
async fn records_out_of_order_refuse_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    for revision in [2, 3, 5] {
        let kv = KeyValue {
            key: Arc::from(key(revision as usize).as_str()),
            value: Bytes::from_static(b"v"),
            create_revision: revision,
            mod_revision: revision,
        };
        encode_event(
            &mut log,
            &Event {
                kind: EventKind::Put,
                kv,
                prev: None,
                memo: None,
            },
        );
    }
    let path = dir.path().join(segment_name(2));
    fs::write(&path, &log).unwrap();
    let third = frames(&log, 0)[2].0;
    let err = open_err(options(dir.path())).to_string();
    assert!(
        err.contains(&format!(
            "byte offset {third}: the record there has revision 5 where 4 was expected"
        )),
        "{err}"
    );
}

/// Writes keys `0..100` with a snapshot at revision 51 (keys `0..50`) and a segment after it.
async fn snapshot_and_segment(dir: &Path) -> PathBuf {
    write_keys(dir, 0, 50).await;
    let s = LocalStore::open(options(dir)).unwrap();
    let all = s.range("/", None, 0, None).await.unwrap();
    drop(s);
    write_snapshot(dir, all.revision, &all.kvs).unwrap();
    write_keys(dir, 50, 100).await;
    dir.join(SNAPSHOT_NAME)
}

#[tokio::test]
async fn snapshot_and_later_segments_recover() {
    let dir = tempfile::tempdir().unwrap();
    snapshot_and_segment(dir.path()).await;
    assert_eq!(segments(dir.path()).len(), 1);
    let s = LocalStore::open(options(dir.path())).unwrap();
    assert_keys(&s, 100, 100).await;
    assert_eq!(s.current_revision(), 101);
}

#[tokio::test]
async fn truncated_snapshot_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = snapshot_and_segment(dir.path()).await;
    let original = fs::read(&snapshot).unwrap();
    let records = frames(&original, 24);
    assert_eq!(records.len(), 50);

    // Cut inside a record.
    let (tenth, _) = records[10];
    fs::write(&snapshot, &original[..tenth + 20]).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(err.contains(&snapshot.display().to_string()), "{err}");
    assert!(
        err.contains(&format!(
            "is truncated at byte offset {tenth} (record 11 of 50)"
        )),
        "{err}"
    );
    assert!(err.contains("does not repair a snapshot"), "{err}");

    // Cut between two records: only the record count tells.
    fs::write(&snapshot, &original[..tenth]).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(
        err.contains(&format!(
            "is truncated: it ends at byte offset {tenth} after 10 of its 50 records"
        )),
        "{err}"
    );

    // Cut inside the header.
    fs::write(&snapshot, &original[..12]).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(err.contains("is truncated: it has 12 bytes"), "{err}");

    // A repair does not touch a snapshot.
    open_err(repairing(dir.path()));
    assert!(repair_dirs(dir.path()).is_empty());
}

#[tokio::test]
async fn corrupt_snapshot_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = snapshot_and_segment(dir.path()).await;
    let (bad, _) = frames(&fs::read(&snapshot).unwrap(), 24)[20];
    flip_payload_byte(&snapshot, bad);
    let err = open_err(options(dir.path())).to_string();
    assert!(
        err.contains(&format!(
            "is corrupt at byte offset {bad} (record 21 of 50)"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn snapshots_without_a_record_count_are_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = snapshot_and_segment(dir.path()).await;
    let original = fs::read(&snapshot).unwrap();
    let mut v1 = b"KWOKSNP1".to_vec();
    v1.extend_from_slice(&original[8..16]);
    v1.extend_from_slice(&original[24..]);
    fs::write(&snapshot, v1).unwrap();
    let s = LocalStore::open(options(dir.path())).unwrap();
    assert_keys(&s, 100, 100).await;
}

#[tokio::test]
async fn missing_segment_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 20).await;
    write_keys(dir.path(), 20, 40).await;
    write_keys(dir.path(), 40, 60).await;
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 3);
    fs::remove_file(&segs[1]).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(err.contains("segment missing"), "{err}");
    assert!(
        err.contains(&format!(
            "segment {} ends at revision 21, but the next segment {} starts at revision 42, \
             so revisions 22..=41 are in no file",
            segs[0].display(),
            segs[2].display()
        )),
        "{err}"
    );
    assert!(err.contains("--repair-wal"), "{err}");
}

#[tokio::test]
async fn segment_missing_after_the_snapshot_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    snapshot_and_segment(dir.path()).await;
    write_keys(dir.path(), 100, 120).await;
    let segs = segments(dir.path());
    assert_eq!(segs.len(), 2);
    fs::remove_file(&segs[0]).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(
        err.contains("the snapshot (revision 51) ends at revision 51"),
        "{err}"
    );
    assert!(err.contains("revisions 52..=101 are in no file"), "{err}");

    // So does a deleted snapshot when the first segment starts later.
    fs::remove_file(dir.path().join(SNAPSHOT_NAME)).unwrap();
    let err = open_err(options(dir.path())).to_string();
    assert!(
        err.contains("the store (there is no snapshot) ends at revision 1"),
        "{err}"
    );
}

#[tokio::test]
async fn repair_copies_the_files_and_cuts_at_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    let segment = &segments(dir.path())[0];
    let (bad, _) = segment_frames(segment)[50];
    flip_payload_byte(segment, bad);
    let damaged = fs::read(segment).unwrap();

    let s = LocalStore::open(repairing(dir.path())).unwrap();
    let copies = repair_dirs(dir.path());
    assert_eq!(copies.len(), 1);
    assert_eq!(
        fs::read(copies[0].join(segment.file_name().unwrap())).unwrap(),
        damaged,
        "the copy holds the files as they were"
    );
    assert_keys(&s, 50, 100).await;
    assert_eq!(s.current_revision(), 51);
    assert_eq!(fs::metadata(segment).unwrap().len(), bad as u64);
    for i in 200..210 {
        s.create(&key(i), &mut |rev| Bytes::from(format!("after {rev}")))
            .await
            .unwrap();
    }
    s.close();
    drop(s);

    // The repaired log opens without the flag, with the later writes.
    let s = LocalStore::open(options(dir.path())).unwrap();
    assert_keys(&s, 50, 100).await;
    assert_eq!(s.current_revision(), 61);
    assert_eq!(
        s.get(&key(209)).await.unwrap().unwrap().value,
        Bytes::from("after 61")
    );
    assert_eq!(repair_dirs(dir.path()).len(), 1);
}

#[tokio::test]
async fn repair_of_an_older_segment_drops_the_later_segments() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 50).await;
    write_keys(dir.path(), 50, 100).await;
    let segs = segments(dir.path());
    let (bad, _) = segment_frames(&segs[0])[30];
    flip_payload_byte(&segs[0], bad);
    let originals: Vec<Vec<u8>> = segs.iter().map(|p| fs::read(p).unwrap()).collect();

    let s = LocalStore::open(repairing(dir.path())).unwrap();
    assert_keys(&s, 30, 100).await;
    assert_eq!(s.current_revision(), 31);
    assert!(!segs[1].exists());
    let copy = &repair_dirs(dir.path())[0];
    for (path, original) in segs.iter().zip(&originals) {
        assert_eq!(
            &fs::read(copy.join(path.file_name().unwrap())).unwrap(),
            original
        );
    }
    s.create("/after", &mut |_| Bytes::from("x")).await.unwrap();
    s.close();
    drop(s);
    let s = LocalStore::open(options(dir.path())).unwrap();
    assert_keys(&s, 30, 100).await;
    assert!(s.get("/after").await.unwrap().is_some());
}

#[tokio::test]
async fn repair_across_a_missing_segment_drops_what_follows_the_gap() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 20).await;
    write_keys(dir.path(), 20, 40).await;
    write_keys(dir.path(), 40, 60).await;
    let segs = segments(dir.path());
    fs::remove_file(&segs[1]).unwrap();
    let s = LocalStore::open(repairing(dir.path())).unwrap();
    assert_keys(&s, 20, 60).await;
    assert!(!segs[2].exists());
    assert!(
        repair_dirs(dir.path())[0]
            .join(segs[2].file_name().unwrap())
            .exists()
    );
}

#[tokio::test]
async fn repair_flag_without_damage_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    let segment = &segments(dir.path())[0];
    let before = fs::read(segment).unwrap();
    let s = LocalStore::open(repairing(dir.path())).unwrap();
    assert_keys(&s, 100, 100).await;
    drop(s);
    assert_eq!(fs::read(segment).unwrap(), before);
    assert!(repair_dirs(dir.path()).is_empty());

    // An interrupted final write is cut as without the flag, with no copy. (A fresh directory:
    // the open above started a newer, empty segment, after which a cut-short record in this one
    // would be damage to acknowledged writes.)
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    let segment = &segments(dir.path())[0];
    let (last, _) = *segment_frames(segment).last().unwrap();
    let f = OpenOptions::new().write(true).open(segment).unwrap();
    f.set_len(last as u64 + 5).unwrap();
    drop(f);
    let s = LocalStore::open(repairing(dir.path())).unwrap();
    assert_keys(&s, 99, 100).await;
    assert_eq!(fs::metadata(segment).unwrap().len(), last as u64);
    assert!(repair_dirs(dir.path()).is_empty());
}

#[tokio::test]
async fn cut_short_record_before_a_newer_segment_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    write_keys(dir.path(), 0, 100).await;
    // A clean restart starts the next segment; the last record of the first one was acknowledged.
    drop(LocalStore::open(options(dir.path())).unwrap());
    let segment = &segments(dir.path())[0];
    let (last, _) = *segment_frames(segment).last().unwrap();
    let f = OpenOptions::new().write(true).open(segment).unwrap();
    f.set_len(last as u64 + 5).unwrap();
    drop(f);
    let err = open_err(options(dir.path())).to_string();
    assert!(err.contains(&format!("byte offset {last}:")), "{err}");
    assert!(err.contains("1 newer segment follows"), "{err}");
}

#[test]
fn a_valid_record_is_found_only_where_the_log_could_hold_it() {
    let record = |revision: Revision| {
        let mut out = Vec::new();
        encode_record(
            &mut out,
            OP_PUT,
            &KeyValue {
                key: Arc::from("/k"),
                value: Bytes::from_static(b"value"),
                create_revision: 2,
                mod_revision: revision,
            },
        );
        out
    };
    // Garbage, then the record after the damaged one.
    let mut tail = vec![0xAB; 40];
    tail.extend(record(12));
    assert_eq!(find_valid_record(&tail, 10), Some((40, 12)));
    // Not at or below the last good revision...
    assert_eq!(find_valid_record(&tail, 12), None);
    // ...nor further ahead than the records that fit in between.
    let mut tail = vec![0xAB; 40];
    tail.extend(record(500));
    assert_eq!(find_valid_record(&tail, 10), None);
    // Zeros (a preallocated or unwritten tail) hold no record.
    assert_eq!(find_valid_record(&[0; 4096], 10), None);
    // A record whose checksum does not match is not valid.
    let mut tail = vec![0xAB; 40];
    tail.extend(record(12));
    let last = tail.len() - 1;
    tail[last] ^= 1;
    assert_eq!(find_valid_record(&tail, 10), None);
}

#[test]
fn a_damaged_length_is_not_trusted_with_an_allocation() {
    // A frame header claiming a payload of almost MAX_PAYLOAD bytes in a file of a few bytes
    // (a torn or damaged length field) is read as what is there, not reserved up front.
    let mut frame = Vec::new();
    frame.extend_from_slice(&((MAX_PAYLOAD - 1) as u32).to_le_bytes());
    frame.extend_from_slice(&0u32.to_le_bytes());
    frame.extend_from_slice(b"short");
    match read_record(&mut frame.as_slice()).unwrap() {
        ReadOutcome::Damaged(Damage::ShortPayload { len, available }) => {
            assert_eq!((len, available), (MAX_PAYLOAD - 1, 5));
        }
        _ => panic!("expected a short payload"),
    }
}
