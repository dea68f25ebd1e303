//! [`WalReader`]: a read-only iterator over the records of a log from an LSN, for recovery
//! tools that must not modify anything (`verify`, `phantom log`) and for [`crate::Wal::read_from`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::DateTime;
use phantom_storage::FileSystem;

use crate::entry::{LogEntry, Lsn, Record};
use crate::error::{Error, Result};
use crate::layout::{
    Probe, SEGMENT_HEADER_LEN, SegmentBytes, SegmentHeader, Tail, classify_tail,
    interrupted_roll_over, list_segments,
};

/// A torn tail: the bytes after the last valid record of the last segment, which a crash left
/// incomplete and which no valid record follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub file: PathBuf,
    /// Byte offset where valid data ends (where the file is, or would be, truncated).
    pub offset: u64,
    /// Number of bytes after `offset` (cut by [`crate::Wal::open`], only reported by readers).
    pub bytes_cut: u64,
}

/// What a [`WalReader`] found, complete once the iterator has returned `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadStatus {
    /// Records yielded.
    pub records: u64,
    /// LSN of the last valid record seen (0 if none).
    pub last_lsn: Lsn,
    /// The torn tail the last segment ends with, if any (nothing was modified).
    pub torn_tail: Option<TornTail>,
    /// The reader reached the end of the log (no error stopped it).
    pub complete: bool,
}

struct Loaded {
    path: PathBuf,
    /// Read on demand: only as far as the records go (and a window of free space).
    bytes: SegmentBytes,
    header: SegmentHeader,
    pos: usize,
    last: bool,
}

/// Reads records from LSN `from` on, across segments, without modifying any file. Yields
/// `Result<Record>`; after an error it yields nothing more. [`WalReader::status`] says whether
/// the log ended in a torn tail.
pub struct WalReader {
    fs: Arc<dyn FileSystem>,
    segments: Vec<(u64, PathBuf)>,
    next_segment: usize,
    current: Option<Loaded>,
    from: Lsn,
    limit: Option<Lsn>,
    expected: Option<Lsn>,
    status: ReadStatus,
    done: bool,
}

impl fmt::Debug for WalReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalReader")
            .field("segments", &self.segments)
            .field("from", &self.from)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl WalReader {
    /// Opens log `name` in `dir` for reading from LSN `from`. Segments that hold only LSNs
    /// below `from` are skipped without being read. A missing log reads as empty.
    pub fn open(fs: Arc<dyn FileSystem>, dir: &Path, name: &str, from: Lsn) -> Result<WalReader> {
        WalReader::open_limited(fs, dir, name, from, None)
    }

    pub(crate) fn open_limited(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        name: &str,
        from: Lsn,
        limit: Option<Lsn>,
    ) -> Result<WalReader> {
        let mut segments = list_segments(fs.as_ref(), dir, name)?;
        let mut status = ReadStatus::default();
        // An interrupted roll-over leaves a last segment without a complete header: a torn tail.
        if let Some((_, path)) = segments.last()
            && segments.len() > 1
            && interrupted_roll_over(&mut SegmentBytes::open(fs.as_ref(), path)?)?
        {
            let len = fs
                .file_len(path)
                .map_err(|e| Error::io(path, e))?
                .unwrap_or(0);
            status.torn_tail = Some(TornTail {
                file: path.clone(),
                offset: 0,
                bytes_cut: len,
            });
            segments.pop();
        }
        // Skip segments whose successor starts at or before `from`.
        let mut start = 0;
        for (i, (_, path)) in segments.iter().enumerate().skip(1) {
            let head = read_head(fs.as_ref(), path)?;
            let header = SegmentHeader::decode(path, &head)?;
            if header.first_lsn <= from {
                start = i;
            } else {
                break;
            }
        }
        Ok(WalReader {
            fs,
            segments,
            next_segment: start,
            current: None,
            from,
            limit,
            expected: None,
            status,
            done: false,
        })
    }

    /// What has been found so far; final once the iterator returned `None`.
    pub fn status(&self) -> &ReadStatus {
        &self.status
    }

    fn load_next(&mut self) -> Result<bool> {
        let Some((number, path)) = self.segments.get(self.next_segment).cloned() else {
            return Ok(false);
        };
        let last = self.next_segment + 1 == self.segments.len();
        self.next_segment += 1;
        let mut bytes = SegmentBytes::open(self.fs.as_ref(), &path)?;
        let header = bytes.header()?;
        if header.number != number {
            return Err(Error::Corrupt {
                file: path,
                offset: 24,
                reason: format!(
                    "header says segment {}, file name says {number}",
                    header.number
                ),
            });
        }
        if let Some(expected) = self.expected
            && header.first_lsn != expected
        {
            return Err(Error::LsnGap {
                file: path,
                expected,
                found: header.first_lsn,
            });
        }
        self.expected = Some(header.first_lsn);
        self.current = Some(Loaded {
            path,
            bytes,
            header,
            pos: SEGMENT_HEADER_LEN,
            last,
        });
        Ok(true)
    }

    fn step(&mut self) -> Result<Option<Record>> {
        loop {
            if let (Some(limit), Some(expected)) = (self.limit, self.expected)
                && expected > limit
            {
                return Ok(None);
            }
            if self.current.is_none() && !self.load_next()? {
                return Ok(None);
            }
            let Some(seg) = self.current.as_mut() else {
                return Ok(None);
            };
            let expected = self.expected.unwrap_or(seg.header.first_lsn);
            match seg.bytes.probe(seg.header.salt, seg.pos)? {
                Probe::Record(r) => {
                    if r.lsn != expected {
                        return Err(Error::LsnGap {
                            file: seg.path.clone(),
                            expected,
                            found: r.lsn,
                        });
                    }
                    seg.pos = r.end;
                    self.expected = Some(r.lsn + 1);
                    self.status.last_lsn = r.lsn;
                    if r.lsn < self.from {
                        continue;
                    }
                    let payload = seg.bytes.get(r.payload_start..r.end).unwrap_or_default();
                    let entry =
                        LogEntry::decode(r.kind, payload).map_err(|source| Error::Decode {
                            file: seg.path.clone(),
                            offset: r.offset as u64,
                            source,
                        })?;
                    let timestamp = DateTime::from_timestamp_micros(r.micros).ok_or_else(|| {
                        Error::Corrupt {
                            file: seg.path.clone(),
                            offset: r.offset as u64,
                            reason: format!("timestamp {} µs is out of range", r.micros),
                        }
                    })?;
                    self.status.records += 1;
                    return Ok(Some(Record {
                        lsn: r.lsn,
                        timestamp,
                        entry,
                    }));
                }
                stopped => {
                    let tail = classify_tail(
                        &mut seg.bytes,
                        &seg.header,
                        seg.pos,
                        stopped,
                        seg.last,
                        expected.saturating_sub(1),
                    )?;
                    if let Tail::Torn { offset } = tail {
                        self.status.torn_tail = Some(TornTail {
                            file: seg.path.clone(),
                            offset: offset as u64,
                            bytes_cut: seg.bytes.loaded_end().saturating_sub(offset) as u64,
                        });
                    }
                    self.current = None;
                }
            }
        }
    }
}

/// The first bytes of a file, up to a segment header's length.
fn read_head(fs: &dyn FileSystem, path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let f = fs.open_read(path).map_err(|e| Error::io(path, e))?;
    let mut head = Vec::with_capacity(SEGMENT_HEADER_LEN);
    f.take(SEGMENT_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(|e| Error::io(path, e))?;
    Ok(head)
}

impl Iterator for WalReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                self.status.complete = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl WalReader {
    /// `(segment number, first LSN)` of every segment of log `name` in `dir` whose header
    /// reads, oldest first, reading only the headers. For tools that report what a cut or a
    /// lost segment held.
    pub fn segment_first_lsns(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        name: &str,
    ) -> Result<Vec<(u64, Lsn)>> {
        let mut out = Vec::new();
        for (number, path) in list_segments(fs.as_ref(), dir, name)? {
            let head = read_head(fs.as_ref(), &path)?;
            if let Ok(header) = SegmentHeader::decode(&path, &head) {
                out.push((number, header.first_lsn));
            }
        }
        Ok(out)
    }
}
