//! [`NullSink`]: assigns LSNs and stores nothing (logging disabled).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::entry::{LogEntry, Lsn, Record};
use crate::error::Result;
use crate::sink::{LogSink, LogStats};

/// A sink that keeps nothing: `append` only assigns LSNs, `sync` does nothing and reports every
/// appended LSN durable (there is nothing to lose), `read_from` yields nothing.
#[derive(Debug, Default)]
pub struct NullSink {
    last: AtomicU64,
}

impl NullSink {
    /// A sink whose first LSN is 1.
    pub fn new() -> NullSink {
        NullSink::default()
    }
}

impl LogSink for NullSink {
    fn append(&self, _entry: &LogEntry) -> Result<Lsn> {
        Ok(self.last.fetch_add(1, Ordering::AcqRel) + 1)
    }

    fn sync(&self, _upto: Lsn) -> Result<()> {
        Ok(())
    }

    fn commit(&self, _lsn: Lsn) -> Result<()> {
        Ok(())
    }

    fn last_lsn(&self) -> Lsn {
        self.last.load(Ordering::Acquire)
    }

    fn durable_lsn(&self) -> Lsn {
        self.last_lsn()
    }

    fn stats(&self) -> LogStats {
        let last = self.last_lsn();
        LogStats {
            appended: last,
            syncs: 0,
            bytes: 0,
            last_lsn: last,
            durable_lsn: last,
        }
    }

    fn read_from(
        &self,
        _from: Lsn,
    ) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send + '_>> {
        Ok(Box::new(std::iter::empty()))
    }
}
