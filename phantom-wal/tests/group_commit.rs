//! Concurrent committers in `Always` mode: every acknowledged commit survives a reopen, in LSN
//! order, and they share fsyncs.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failure is a test failure

mod common;

use std::sync::{Arc, Mutex};

use common::{insert, open};
use phantom_wal::{LogEntry, LogSink, WalOptions};

#[test]
fn eight_committing_threads_share_fsyncs_and_lose_nothing_acknowledged() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default());
    let wal = Arc::new(wal);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let acked = Arc::clone(&acked);
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let id = t * 1000 + i;
                    let lsn = wal.append(&insert(id)).unwrap();
                    wal.commit(lsn).unwrap();
                    assert!(wal.durable_lsn() >= lsn);
                    acked.lock().unwrap().push((lsn, id));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let commits = THREADS * PER_THREAD;
    let stats = wal.stats();
    assert_eq!(stats.appended, commits);
    assert!(
        stats.syncs < commits * 3 / 4,
        "group commit should share fsyncs: {} syncs for {commits} commits",
        stats.syncs
    );
    drop(wal);

    let (wal, report) = open(dir.path(), WalOptions::default());
    assert_eq!(report.records, commits);
    let records: Vec<_> = wal
        .read_from(1)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let lsns: Vec<u64> = records.iter().map(|r| r.lsn).collect();
    assert_eq!(
        lsns,
        (1..=commits).collect::<Vec<_>>(),
        "LSN order, no gaps"
    );
    for (lsn, id) in acked.lock().unwrap().iter() {
        assert_eq!(
            records[(*lsn - 1) as usize].entry,
            insert(*id),
            "acknowledged commit {lsn} present with its own entry"
        );
    }
    // Each thread's records appear in the order it committed them.
    for t in 0..THREADS {
        let mine: Vec<u64> = records
            .iter()
            .filter_map(|r| match &r.entry {
                LogEntry::Batch(m) => match &m[0] {
                    phantom_storage::Mutation::Insert { rows, .. } => Some(rows[0].0),
                    _ => None,
                },
                _ => None,
            })
            .filter(|id| id / 1000 == t)
            .collect();
        assert_eq!(
            mine,
            (0..PER_THREAD).map(|i| t * 1000 + i).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_lone_writer_syncs_once_per_commit_and_never_waits_for_a_timer() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default());
    let start = std::time::Instant::now();
    for i in 1..=20 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
        assert_eq!(wal.durable_lsn(), lsn);
    }
    assert_eq!(wal.stats().syncs, 20);
    // Committing an already durable LSN costs no fsync.
    wal.commit(5).unwrap();
    wal.sync(20).unwrap();
    assert_eq!(wal.stats().syncs, 20);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}
