//! Concurrent committers in `Always` mode: every acknowledged commit survives a reopen, in LSN
//! order, and they share fsyncs.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failure is a test failure

mod common;

use std::sync::{Arc, Mutex};

use common::{FailingFs, insert, open};
use phantom_wal::{LogEntry, LogSink, WalOptions};

/// 8 threads, and 32: more committers than the 2 cores of CI, so rounds, gathering and the
/// hand-over of leadership all run under contention (a lost wake-up would hang the test).
#[rstest::rstest]
#[case::eight_threads(8)]
#[case::thirty_two_threads(32)]
fn committing_threads_share_fsyncs_and_lose_nothing_acknowledged(#[case] threads: u64) {
    const PER_THREAD: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default());
    let wal = Arc::new(wal);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..threads)
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
    let commits = threads * PER_THREAD;
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
    for t in 0..threads {
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

/// The hand-over of leadership: a committer that arrives while another's fsync runs waits for
/// the next round, and when the first leader returns and commits no more, the waiting
/// committer is woken to lead that round itself (no later commit comes to do it).
#[test]
fn a_committer_waiting_for_the_next_round_is_woken_to_lead_it() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FailingFs::default();
    let (wal, _) = phantom_wal::Wal::open(
        Arc::new(fs.clone()),
        dir.path(),
        "db",
        WalOptions::default(),
    )
    .unwrap();
    let wal = Arc::new(wal);
    fs.sync_delay_ms
        .store(200, std::sync::atomic::Ordering::SeqCst);
    let first = {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            let lsn = wal.append(&insert(1)).unwrap();
            wal.commit(lsn).unwrap();
        })
    };
    // Well inside the first fsync: the second record is not in its round.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (done, finished) = std::sync::mpsc::channel();
    {
        let wal = Arc::clone(&wal);
        std::thread::spawn(move || {
            let lsn = wal.append(&insert(2)).unwrap();
            done.send(wal.commit(lsn).map(|()| lsn)).unwrap();
        });
    }
    first.join().unwrap();
    let lsn = finished
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("the waiting committer was never woken to lead its round")
        .unwrap();
    assert_eq!(lsn, 2);
    assert!(wal.durable_lsn() >= 2);
    assert_eq!(wal.stats().syncs, 2, "one fsync per round");
}

/// Committers that stop at any moment all return. Each iteration starts three committers of
/// one record and waits for them; nothing commits after. A record appended between a leader
/// noting what its round covers and its flush is made durable by that round, while its
/// committer sleeps for the next one: unless the round's end wakes it, it sleeps for good (this
/// hung within a few hundred iterations until the fifth session of 2026-12-02).
#[test]
fn committers_that_stop_at_any_moment_all_return() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = open(dir.path(), WalOptions::default());
    let wal = Arc::new(wal);
    for iteration in 0..3000u64 {
        let (done, returned) = std::sync::mpsc::channel();
        for t in 0..3 {
            let wal = Arc::clone(&wal);
            let done = done.clone();
            std::thread::spawn(move || {
                let lsn = wal.append(&insert(iteration * 10 + t)).unwrap();
                done.send(wal.commit(lsn).map(|()| lsn)).unwrap();
            });
        }
        for _ in 0..3 {
            let lsn = returned
                .recv_timeout(std::time::Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("a commit never returned (iteration {iteration})"))
                .unwrap();
            assert!(wal.durable_lsn() >= lsn);
        }
    }
    assert_eq!(wal.stats().appended, 3 * 3000);
}
