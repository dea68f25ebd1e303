//! [`TextAuditSink`]: a plain-text audit log in the spec's line format,
//! `[YYYY-MM-DD HH:MM:SS UTC] OPERATION {key: value, key: value}`, one line per mutation.
//!
//! It is meant for humans and audit tools, not for recovery: the lines do not carry LSNs or row
//! images precise enough to replay, so `read_from` is unsupported. Every line parses back with
//! [`crate::parse_audit_line`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use phantom_storage::{FileSystem, FileWrite};

use crate::entry::{LogEntry, Lsn, Record, now_micros, record_text_lines};
use crate::error::{Error, Result};
use crate::sink::{LogSink, LogStats, SyncMode};

struct State {
    file: Box<dyn FileWrite>,
    next_lsn: Lsn,
    durable_lsn: Lsn,
    poisoned: Option<String>,
    appended: u64,
    syncs: u64,
    bytes: u64,
    last_sync: Instant,
}

/// Appends the spec's text lines to one file. Each `append` writes its lines to the OS at once;
/// `sync` fsyncs. Modes: `Always` fsyncs in `commit`; `Interval(d)` fsyncs in a `commit` that
/// comes at least `d` after the previous fsync (there is no background thread); `Never` fsyncs
/// only on drop. A failed write or fsync poisons the sink, as for every [`LogSink`].
pub struct TextAuditSink {
    path: PathBuf,
    mode: SyncMode,
    state: Mutex<State>,
}

impl std::fmt::Debug for TextAuditSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextAuditSink")
            .field("path", &self.path)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl TextAuditSink {
    /// Opens `path` for appending (creating it, and fsyncing its directory, if missing). LSNs
    /// start at 1 (see [`TextAuditSink::with_first_lsn`]).
    pub fn open(fs: Arc<dyn FileSystem>, path: &Path, mode: SyncMode) -> Result<TextAuditSink> {
        let io = |e| Error::io(path, e);
        let exists = fs.file_len(path).map_err(io)?.is_some();
        let file = if exists {
            fs.open_append(path).map_err(io)?
        } else {
            let file = fs.create(path).map_err(io)?;
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            };
            fs.sync_dir(&dir).map_err(|e| Error::io(&dir, e))?;
            file
        };
        Ok(TextAuditSink {
            path: path.to_path_buf(),
            mode,
            state: Mutex::new(State {
                file,
                next_lsn: 1,
                durable_lsn: 0,
                poisoned: None,
                appended: 0,
                syncs: 0,
                bytes: 0,
                last_sync: Instant::now(),
            }),
        })
    }

    /// This sink, numbering records from `first` (at least 1) — e.g. to continue the numbering
    /// of a binary log it shadows. Only meaningful before the first append.
    pub fn with_first_lsn(self, first: Lsn) -> TextAuditSink {
        {
            let mut s = self.lock();
            s.next_lsn = first.max(1);
            s.durable_lsn = s.next_lsn - 1;
        }
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn poison(&self, s: &mut State, e: Error) -> Error {
        tracing::error!(error = %e, file = %self.path.display(), "audit log poisoned");
        let cause = s.poisoned.get_or_insert_with(|| e.to_string()).clone();
        Error::Poisoned { cause }
    }

    fn sync_locked(&self, s: &mut State) -> Result<()> {
        if let Some(cause) = &s.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        let last = s.next_lsn - 1;
        if s.durable_lsn >= last {
            return Ok(());
        }
        if let Err(e) = s.file.sync_data() {
            let e = Error::io(&self.path, e);
            return Err(self.poison(s, e));
        }
        s.syncs += 1;
        s.durable_lsn = last;
        s.last_sync = Instant::now();
        Ok(())
    }
}

impl LogSink for TextAuditSink {
    fn append(&self, entry: &LogEntry) -> Result<Lsn> {
        let mut s = self.lock();
        if let Some(cause) = &s.poisoned {
            return Err(Error::Poisoned {
                cause: cause.clone(),
            });
        }
        let lsn = s.next_lsn;
        let record = Record {
            lsn,
            timestamp: now_micros().1,
            entry: entry.clone(),
        };
        let mut text = String::new();
        for line in record_text_lines(&record) {
            text.push_str(&line);
            text.push('\n');
        }
        if let Err(e) = s.file.write_all(text.as_bytes()) {
            let e = Error::io(&self.path, e);
            return Err(self.poison(&mut s, e));
        }
        s.next_lsn += 1;
        s.appended += 1;
        s.bytes += text.len() as u64;
        Ok(lsn)
    }

    fn sync(&self, _upto: Lsn) -> Result<()> {
        let mut s = self.lock();
        self.sync_locked(&mut s)
    }

    fn commit(&self, _lsn: Lsn) -> Result<()> {
        let mut s = self.lock();
        match self.mode {
            SyncMode::Always => self.sync_locked(&mut s),
            SyncMode::Interval(d) if s.last_sync.elapsed() >= d => self.sync_locked(&mut s),
            _ => match &s.poisoned {
                Some(cause) => Err(Error::Poisoned {
                    cause: cause.clone(),
                }),
                None => Ok(()),
            },
        }
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
            appended: s.appended,
            syncs: s.syncs,
            bytes: s.bytes,
            last_lsn: s.next_lsn - 1,
            durable_lsn: s.durable_lsn,
        }
    }

    /// Unsupported: the text lines cannot be turned back into records.
    fn read_from(
        &self,
        _from: Lsn,
    ) -> Result<Box<dyn Iterator<Item = Result<Record>> + Send + '_>> {
        Err(Error::Unsupported {
            sink: "TextAuditSink",
            operation: "read_from",
        })
    }
}

impl Drop for TextAuditSink {
    fn drop(&mut self) {
        let mut s = self.lock();
        if s.poisoned.is_none()
            && let Err(e) = self.sync_locked(&mut s)
        {
            tracing::error!(error = %e, "closing the audit log failed");
        }
    }
}
