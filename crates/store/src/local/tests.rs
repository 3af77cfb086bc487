use super::*;

fn put(v: &str) -> impl FnMut(Revision) -> Bytes + Send + '_ {
    move |rev| Bytes::from(format!("{v}@{rev}"))
}

#[tokio::test]
async fn revisions_increase_and_cas_is_enforced() {
    let s = LocalStore::in_memory();
    let a = s.create("/a", &mut put("a")).await.unwrap();
    assert_eq!(a.mod_revision, 2);
    assert_eq!(a.value, Bytes::from("a@2"));
    assert!(matches!(
        s.create("/a", &mut put("x")).await,
        Err(Error::AlreadyExists { .. })
    ));
    let b = s.update("/a", 2, &mut put("b")).await.unwrap();
    assert_eq!((b.create_revision, b.mod_revision), (2, 3));
    assert!(matches!(
        s.update("/a", 2, &mut put("c")).await,
        Err(Error::Conflict { expected: 2, .. })
    ));
    assert!(matches!(
        s.delete("/a", Some(2), None).await,
        Err(Error::Conflict { .. })
    ));
    let d = s.delete("/a", Some(3), None).await.unwrap();
    assert_eq!(d.mod_revision, 4);
    assert_eq!(d.value, Bytes::from("b@3"));
    assert!(s.get("/a").await.unwrap().is_none());
    assert!(matches!(
        s.delete("/a", None, None).await,
        Err(Error::NotFound)
    ));
    assert_eq!(s.current_revision(), 4);
}

#[tokio::test]
async fn range_pages_and_reads_the_past() {
    let s = LocalStore::in_memory();
    for i in 0..10 {
        s.create(&format!("/p/{i}"), &mut put("v")).await.unwrap();
    }
    s.create("/q/0", &mut put("other")).await.unwrap();
    let first = s.range("/p/", None, 4, None).await.unwrap();
    assert_eq!(first.kvs.len(), 4);
    assert_eq!(first.remaining, 6);
    let at = first.revision;
    // Writes after the first page must not show in later pages read at the same revision.
    s.delete("/p/5", None, None).await.unwrap();
    s.create("/p/55", &mut put("new")).await.unwrap();
    s.update("/p/6", 8, &mut put("changed")).await.unwrap();
    let last_key = first.kvs.last().unwrap().key.to_string();
    let rest = s.range("/p/", Some(&last_key), 0, Some(at)).await.unwrap();
    let keys: Vec<_> = rest.kvs.iter().map(|kv| kv.key.to_string()).collect();
    assert_eq!(keys, ["/p/4", "/p/5", "/p/6", "/p/7", "/p/8", "/p/9"]);
    assert_eq!(rest.kvs[2].value, Bytes::from("v@8"));
    let now = s.range("/p/", None, 0, None).await.unwrap();
    assert_eq!(now.kvs.len(), 10);
    assert!(now.kvs.iter().any(|kv| &*kv.key == "/p/55"));
    assert!(matches!(
        s.range("/p/", None, 0, Some(1000)).await,
        Err(Error::FutureRevision { .. })
    ));
}

#[tokio::test]
async fn pages_for_followers_only_say_whether_more_follow() {
    let s = LocalStore::in_memory();
    for i in 0..7 {
        s.create(&format!("/p/{i}"), &mut put("v")).await.unwrap();
    }
    let at = s.current_revision();
    s.delete("/p/6", None, None).await.unwrap();
    for revision in [None, Some(at)] {
        let counted = s.range("/p/", None, 3, revision).await.unwrap();
        let paged = s.range_page("/p/", None, 3, revision).await.unwrap();
        assert_eq!(counted.kvs, paged.kvs);
        assert_eq!(counted.revision, paged.revision);
        assert!(counted.remaining > 1);
        assert_eq!(paged.remaining, 1);
        let after = paged.kvs.last().unwrap().key.to_string();
        let last = s
            .range_page("/p/", Some(&after), 10, revision)
            .await
            .unwrap();
        assert_eq!(last.remaining, 0);
        let expected = if revision.is_some() { 4 } else { 3 };
        assert_eq!(last.kvs.len(), expected);
    }
}

#[tokio::test]
async fn pages_at_a_past_revision_with_limits_count_what_follows() {
    let s = LocalStore::in_memory();
    for i in 0..8 {
        s.create(&format!("/p/{i}"), &mut put("v")).await.unwrap();
    }
    let at = s.current_revision();
    s.delete("/p/2", None, None).await.unwrap();
    s.update("/p/3", 5, &mut put("changed")).await.unwrap();
    s.create("/p/35", &mut put("new")).await.unwrap();
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = s.range("/p/", after.as_deref(), 3, Some(at)).await.unwrap();
        let done = page.remaining == 0;
        assert_eq!(page.remaining, 8 - seen.len() - page.kvs.len());
        seen.extend(
            page.kvs
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.clone())),
        );
        after = seen.last().map(|(k, _)| k.clone());
        if done {
            break;
        }
    }
    let keys: Vec<_> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "/p/0", "/p/1", "/p/2", "/p/3", "/p/4", "/p/5", "/p/6", "/p/7"
        ]
    );
    assert!(seen.iter().all(|(_, v)| v.starts_with(b"v@")));
}

#[tokio::test]
async fn live_watchers_of_one_write_share_its_memo() {
    let s = LocalStore::in_memory();
    let start = s.current_revision();
    let mut a = s
        .watch(KeyFilter::Prefix("/m/".into()), start)
        .await
        .unwrap();
    let mut b = s.watch(KeyFilter::Prefix("/".into()), start).await.unwrap();
    s.create("/m/x", &mut put("x")).await.unwrap();
    let (ea, eb) = (a.next().await.unwrap(), b.next().await.unwrap());
    let (ma, mb) = (ea.memo.expect("live event"), eb.memo.expect("live event"));
    assert!(Arc::ptr_eq(&ma, &mb));
    // A watcher that starts later replays the write from history, without the memo.
    let mut late = s
        .watch(KeyFilter::Prefix("/m/".into()), start)
        .await
        .unwrap();
    assert!(late.next().await.unwrap().memo.is_none());
}

#[tokio::test]
async fn watch_replays_history_then_follows() {
    let s = LocalStore::in_memory();
    s.create("/w/a", &mut put("a")).await.unwrap();
    let start = s.current_revision();
    s.create("/w/b", &mut put("b")).await.unwrap();
    s.create("/x/c", &mut put("c")).await.unwrap();
    let mut w = s
        .watch(KeyFilter::Prefix("/w/".into()), start)
        .await
        .unwrap();
    s.delete("/w/a", None, None).await.unwrap();
    let e1 = w.next().await.unwrap();
    assert_eq!((&*e1.kv.key, e1.kind), ("/w/b", EventKind::Put));
    let e2 = w.next().await.unwrap();
    assert_eq!((&*e2.kv.key, e2.kind), ("/w/a", EventKind::Delete));
    assert_eq!(e2.prev.unwrap().value, Bytes::from("a@2"));
    assert!(w.try_next().is_none());
    let mut exact = s
        .watch(KeyFilter::Exact("/w/b".into()), 0.max(start))
        .await
        .unwrap();
    assert_eq!(&*exact.next().await.unwrap().kv.key, "/w/b");
    assert!(exact.try_next().is_none());
}

#[tokio::test]
async fn history_is_bounded_by_the_bytes_of_its_values() {
    let s = LocalStore::open(Options {
        history_max_bytes: 30,
        ..Options::default()
    })
    .unwrap();
    // Each value is "vvvvv@N": 7 bytes, so four fit in 30 bytes.
    for i in 0..6 {
        s.create(&format!("/b/{i}"), &mut put("vvvvv"))
            .await
            .unwrap();
    }
    assert_eq!(s.current_revision(), 7);
    assert_eq!(s.compacted_revision(), 3);
    assert!(matches!(
        s.watch(KeyFilter::Prefix("/b/".into()), 2).await,
        Err(Error::Compacted { .. })
    ));
    let mut w = s.watch(KeyFilter::Prefix("/b/".into()), 3).await.unwrap();
    assert_eq!(w.next().await.unwrap().revision(), 4);
}

#[tokio::test]
async fn compaction_expires_old_revisions() {
    let s = LocalStore::open(Options {
        history_max_events: 3,
        ..Options::default()
    })
    .unwrap();
    for i in 0..6 {
        s.create(&format!("/c/{i}"), &mut put("v")).await.unwrap();
    }
    assert_eq!(s.compacted_revision(), 4);
    assert!(matches!(
        s.watch(KeyFilter::Prefix("/c/".into()), 2).await,
        Err(Error::Compacted { .. })
    ));
    assert!(s.watch(KeyFilter::Prefix("/c/".into()), 4).await.is_ok());
    s.compact(6).await.unwrap();
    assert!(matches!(
        s.range("/c/", None, 0, Some(5)).await,
        Err(Error::Compacted { .. })
    ));
}

#[tokio::test]
async fn slow_watchers_are_dropped() {
    let s = LocalStore::open(Options {
        watch_buffer: 2,
        ..Options::default()
    })
    .unwrap();
    let mut w = s
        .watch(KeyFilter::Prefix("/".into()), s.current_revision())
        .await
        .unwrap();
    for i in 0..5 {
        s.create(&format!("/s/{i}"), &mut put("v")).await.unwrap();
    }
    let mut seen = 0;
    while w.next().await.is_some() {
        seen += 1;
    }
    assert_eq!(seen, 2);
}

#[tokio::test]
async fn durable_store_recovers_everything() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(dir.path().to_path_buf()),
        snapshot_after_bytes: 2_000,
        ..Options::default()
    };
    let mut expected = Vec::new();
    {
        let s = LocalStore::open(opts.clone()).unwrap();
        for i in 0..200 {
            let kv = s
                .create(&format!("/d/{i:03}"), &mut put("some value"))
                .await
                .unwrap();
            expected.push(kv);
        }
        for kv in expected.iter_mut().take(50) {
            *kv = s
                .update(&kv.key, kv.mod_revision, &mut put("updated"))
                .await
                .unwrap();
        }
        for kv in expected.drain(150..) {
            s.delete(&kv.key, None, None).await.unwrap();
        }
        // Let a snapshot in flight finish before the store goes away.
        while s.snapshotting.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let s = LocalStore::open(opts.clone()).unwrap();
    let all = s.range("/d/", None, 0, None).await.unwrap();
    expected.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(all.kvs, expected);
    assert_eq!(s.current_revision(), 1 + 200 + 50 + 50);
    let next = s.create("/d/new", &mut put("x")).await.unwrap();
    assert_eq!(next.mod_revision, 302);
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .any(|e| e.unwrap().file_name() == "snapshot")
    );
}

#[tokio::test]
async fn torn_tail_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    };
    {
        let s = LocalStore::open(opts.clone()).unwrap();
        s.create("/t/a", &mut put("a")).await.unwrap();
        s.create("/t/b", &mut put("b")).await.unwrap();
    }
    let segment = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .unwrap();
    let len = std::fs::metadata(&segment).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    let s = LocalStore::open(opts.clone()).unwrap();
    assert!(s.get("/t/a").await.unwrap().is_some());
    assert!(s.get("/t/b").await.unwrap().is_none());
    assert_eq!(s.current_revision(), 2);
    s.create("/t/c", &mut put("c")).await.unwrap();
    drop(s);
    let s = LocalStore::open(opts).unwrap();
    assert_eq!(s.get("/t/c").await.unwrap().unwrap().mod_revision, 3);
}

/// 64 writers that each write again as soon as their last write is durable share syncs: at
/// least 8 writes per sync on average (about one sync per round of the 64 when the machine keeps
/// up; a sync for each few writes without group commit), and no write is acknowledged before a
/// sync covered its record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_share_syncs() {
    const WRITERS: usize = 64;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    };
    let s = LocalStore::open(opts.clone()).unwrap();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let s = s.clone();
        writers.push(tokio::spawn(async move {
            for r in 0..ROUNDS {
                let kv = s
                    .create(&format!("/c/{w:02}/{r:02}"), &mut put("v"))
                    .await
                    .unwrap();
                // Revision 2 is the first record; every record up to this one is synced.
                let synced = s.log_stats().unwrap().records;
                assert!(
                    synced as Revision >= kv.mod_revision - 1,
                    "revision {} acknowledged with {synced} records synced",
                    kv.mod_revision
                );
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let stats = s.log_stats().unwrap();
    let writes = (WRITERS * ROUNDS) as u64;
    assert_eq!(stats.records, writes);
    assert!(
        stats.syncs <= writes / 8,
        "{} syncs for {writes} writes of {WRITERS} writers",
        stats.syncs
    );
    drop(s);
    let s = LocalStore::open(opts).unwrap();
    assert_eq!(s.len(), WRITERS * ROUNDS);
}

/// One writer at a time: every write is a sync of its own, as nothing else could share it.
#[tokio::test]
async fn a_lone_writer_syncs_each_write() {
    let dir = tempfile::tempdir().unwrap();
    let s = LocalStore::open(Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Options::default()
    })
    .unwrap();
    for i in 0..50 {
        s.create(&format!("/l/{i}"), &mut put("v")).await.unwrap();
    }
    assert_eq!(
        s.log_stats(),
        Some(LogStats {
            records: 50,
            syncs: 50
        })
    );
}
