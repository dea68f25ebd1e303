//! [`MemorySink`]: records kept in a `Vec`, for tests and for users who want a log they can
//! inspect without files.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::entry::{LogEntry, Lsn, Record, now_micros};
use crate::error::Result;
use crate::sink::{LogSink, LogStats};

#[derive(Debug)]
struct State {
    records: Vec<Record>,
    next_lsn: Lsn,
    durable_lsn: Lsn,
    syncs: u64,
    bytes: u64,
}

/// A log held in memory. `sync` marks records durable (in the sense of the contract: they are
/// kept as long as the sink lives); nothing survives the process.
#[derive(Debug)]
pub struct MemorySink {
    state: Mutex<State>,
}

impl Default for MemorySink {
    fn default() -> MemorySink {
        MemorySink::with_first_lsn(1)
    }
}

impl MemorySink {
    /// An empty sink whose first LSN is 1.
    pub fn new() -> MemorySink {
        MemorySink::default()
    }

    /// An empty sink whose first record gets LSN `first` (at least 1).
    pub fn with_first_lsn(first: Lsn) -> MemorySink {
        let first = first.max(1);
        MemorySink {
            state: Mutex::new(State {
                records: Vec::new(),
                next_lsn: first,
                durable_lsn: first - 1,
                syncs: 0,
                bytes: 0,
            }),
        }
    }

    /// A copy of every record, in LSN order.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LogSink for MemorySink {
    fn append(&self, entry: &LogEntry) -> Result<Lsn> {
        // Encoded only to count bytes like the real log does (and to fail like it would).
        let payload_len = entry.encode_into(Vec::new())?.1.len() as u64;
        let timestamp = now_micros().1;
        let mut s = self.lock();
        let lsn = s.next_lsn;
        s.next_lsn += 1;
        s.bytes += payload_len;
        s.records.push(Record {
            lsn,
            timestamp,
            entry: entry.clone(),
        });
        Ok(lsn)
    }

    fn sync(&self, upto: Lsn) -> Result<()> {
        let mut s = self.lock();
        let last = s.next_lsn - 1;
        s.durable_lsn = s.durable_lsn.max(upto.min(last));
        s.syncs += 1;
        Ok(())
    }

    fn commit(&self, lsn: Lsn) -> Result<()> {
        self.sync(lsn)
    }

    fn last_lsn(&self) -> Lsn {
        self.lock().next_lsn - 1
    }

    fn durable_lsn(&self) -> Lsn {
        self.lock().durable_lsn
    }

    fn stats(&self) -> LogStats {
        let s = self.lock();
        LogStats {
            appended: s.records.len() as u64,
            syncs: s.syncs,
            bytes: s.bytes,
            last_lsn: s.next_lsn - 1,
            durable_lsn: s.durable_lsn,
        }
    }

    fn read_from(&self, from: Lsn) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send + '_>> {
        let records: Vec<Record> = self
            .lock()
            .records
            .iter()
            .filter(|r| r.lsn >= from)
            .cloned()
            .collect();
        Ok(Box::new(records.into_iter().map(Ok)))
    }
}
