//! A failed fsync or write poisons the log: that commit and every later call fail with
//! `Poisoned`, nothing unsynced is acknowledged, and a reopen recovers every acknowledged
//! record.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failure is a test failure

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::{FailingFs, insert};
use phantom_wal::{Error, LogSink, SyncMode, Wal, WalOptions};

fn open_failing(dir: &std::path::Path, fs: &FailingFs, options: WalOptions) -> Wal {
    Wal::open(Arc::new(fs.clone()), dir, "db", options)
        .unwrap()
        .0
}

#[test]
fn an_fsync_failure_poisons_that_commit_and_every_later_call() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FailingFs::default();
    let wal = open_failing(dir.path(), &fs, WalOptions::default());
    let mut acked = Vec::new();
    for i in 1..=5 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
        acked.push(lsn);
    }
    fs.fail_sync.store(true, Ordering::SeqCst);
    let lsn = wal.append(&insert(6)).unwrap();
    let err = wal.commit(lsn).unwrap_err();
    assert!(
        matches!(&err, Error::Poisoned { cause } if cause.contains("injected fsync failure")),
        "{err}"
    );
    assert!(wal.is_poisoned());
    assert_eq!(wal.durable_lsn(), 5, "the failed record is not durable");
    // The disk "recovers", but the log does not retry: everything keeps failing.
    fs.fail_sync.store(false, Ordering::SeqCst);
    assert!(matches!(wal.commit(lsn), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.sync(lsn), Err(Error::Poisoned { .. })));
    assert!(matches!(
        wal.append(&insert(7)),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(wal.close(), Err(Error::Poisoned { .. })));

    let (wal, report) = Wal::open(Arc::new(fs), dir.path(), "db", WalOptions::default()).unwrap();
    let lsns: Vec<u64> = wal.read_from(1).unwrap().map(|r| r.unwrap().lsn).collect();
    // Everything acknowledged is there. Record 6 reached the OS before the failed fsync, so it
    // may be there too; it was never acknowledged, so either way nothing is silently dropped.
    assert!(lsns.starts_with(&acked), "{lsns:?}");
    assert!(report.last_lsn == 5 || report.last_lsn == 6);
}

#[test]
fn concurrent_committers_all_fail_once_an_fsync_has_failed() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FailingFs::default();
    let wal = Arc::new(open_failing(dir.path(), &fs, WalOptions::default()));
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let (wal, fs, acked) = (Arc::clone(&wal), fs.clone(), Arc::clone(&acked));
            std::thread::spawn(move || {
                let mut failed = false;
                for i in 0..50 {
                    if t == 0 && i == 20 {
                        fs.fail_sync.store(true, Ordering::SeqCst);
                    }
                    let result = wal.append(&insert(t * 100 + i)).and_then(|lsn| {
                        wal.commit(lsn)?;
                        Ok(lsn)
                    });
                    match result {
                        Ok(lsn) => {
                            assert!(!failed, "a commit succeeded after a failure");
                            acked.lock().unwrap().push(lsn);
                        }
                        Err(e) => {
                            assert!(matches!(e, Error::Poisoned { .. }), "{e}");
                            failed = true;
                        }
                    }
                }
                assert!(failed, "thread {t} saw the poisoning");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    fs.fail_sync.store(false, Ordering::SeqCst);
    drop(wal);
    let (wal, _) = Wal::open(Arc::new(fs), dir.path(), "db", WalOptions::default()).unwrap();
    let present: std::collections::HashSet<u64> =
        wal.read_from(1).unwrap().map(|r| r.unwrap().lsn).collect();
    for lsn in acked.lock().unwrap().iter() {
        assert!(present.contains(lsn), "acknowledged {lsn} lost");
    }
}

#[test]
fn a_write_failure_poisons_the_log_in_every_mode() {
    for mode in [
        SyncMode::Always,
        SyncMode::Never,
        SyncMode::Interval(std::time::Duration::from_secs(60)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let fs = FailingFs::default();
        let wal = open_failing(
            dir.path(),
            &fs,
            WalOptions {
                sync_mode: mode,
                ..WalOptions::default()
            },
        );
        let lsn = wal.append(&insert(1)).unwrap();
        wal.commit(lsn).unwrap();
        fs.fail_write.store(true, Ordering::SeqCst);
        let lsn = wal.append(&insert(2)).unwrap();
        assert!(
            matches!(wal.commit(lsn), Err(Error::Poisoned { .. })),
            "{mode:?}"
        );
        fs.fail_write.store(false, Ordering::SeqCst);
        assert!(matches!(wal.commit(lsn), Err(Error::Poisoned { .. })));
        assert!(matches!(
            wal.append(&insert(3)),
            Err(Error::Poisoned { .. })
        ));
    }
}

#[test]
fn a_failed_fsync_during_roll_over_poisons_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FailingFs::default();
    let wal = open_failing(dir.path(), &fs, common::tiny_segments());
    let mut acked = 0;
    for i in 1..=3 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
        acked = lsn;
    }
    fs.fail_sync.store(true, Ordering::SeqCst);
    let mut poisoned = false;
    for i in 4..=20 {
        if let Ok(lsn) = wal.append(&insert(i))
            && wal.commit(lsn).is_err()
        {
            poisoned = true;
            break;
        }
    }
    assert!(poisoned);
    fs.fail_sync.store(false, Ordering::SeqCst);
    drop(wal);
    let (_, report) = Wal::open(Arc::new(fs), dir.path(), "db", common::tiny_segments()).unwrap();
    assert!(report.last_lsn >= acked);
}
