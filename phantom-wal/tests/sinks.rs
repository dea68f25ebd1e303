//! One scenario, every `LogSink`: LSNs in call order, `sync` makes durable, `read_from` yields
//! the records from an LSN (or nothing, for the null sink), and the trait is object safe.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failure is a test failure

mod common;

use std::sync::Arc;

use common::insert;
use phantom_storage::StdFs;
use phantom_wal::{LogEntry, LogSink, MemorySink, NullSink, Wal, WalOptions};

fn scenario(sink: &dyn LogSink, keeps_records: bool) {
    assert_eq!((sink.last_lsn(), sink.durable_lsn()), (0, 0));
    let lsns: Vec<u64> = (1..=10).map(|i| sink.append(&insert(i)).unwrap()).collect();
    assert_eq!(lsns, (1..=10).collect::<Vec<_>>());
    assert_eq!(sink.last_lsn(), 10);
    sink.sync(6).unwrap();
    assert!(sink.durable_lsn() >= 6);
    sink.commit(10).unwrap();
    assert_eq!(sink.durable_lsn(), 10);
    let stats = sink.stats();
    assert_eq!((stats.appended, stats.last_lsn), (10, 10));
    let got: Vec<_> = sink
        .read_from(4)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    if keeps_records {
        assert_eq!(
            got.iter().map(|r| r.lsn).collect::<Vec<_>>(),
            (4..=10).collect::<Vec<_>>()
        );
        assert_eq!(got[0].entry, insert(4));
    } else {
        assert!(got.is_empty());
    }
}

#[test]
fn the_segmented_log_meets_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(Arc::new(StdFs), dir.path(), "db", WalOptions::default()).unwrap();
    scenario(&wal, true);
}

#[test]
fn the_memory_sink_meets_the_contract() {
    let sink = MemorySink::new();
    scenario(&sink, true);
    assert_eq!(sink.records().len(), 10);
    let later = MemorySink::with_first_lsn(50);
    assert_eq!(later.append(&LogEntry::CreateDatabase).unwrap(), 50);
}

#[test]
fn the_null_sink_assigns_lsns_and_keeps_nothing() {
    scenario(&NullSink::new(), false);
}

#[test]
fn sinks_are_usable_as_trait_objects_across_threads() {
    let sinks: Vec<Arc<dyn LogSink>> = vec![Arc::new(MemorySink::new()), Arc::new(NullSink::new())];
    for sink in sinks {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        let lsn = sink.append(&insert(i)).unwrap();
                        sink.commit(lsn).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(sink.last_lsn(), 100);
    }
}
