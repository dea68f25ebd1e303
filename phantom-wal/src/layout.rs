//! The byte layout of segments and records (`docs/formats/wal.md`): named offsets, encoding of
//! headers, and the scanner that walks a segment's records and decides where valid data ends.

use std::path::{Path, PathBuf};

use crate::entry::{EntryKind, Lsn};
use crate::error::Error;

/// Magic bytes at offset 0 of every segment.
pub const MAGIC: [u8; 8] = *b"PHDBWAL\0";

// Layout: segment header (40 bytes), little-endian.
//   0..8   magic          8..12  version       12..16 flags
//   16..24 first LSN      24..32 segment number
//   32..36 salt           36..40 CRC-32C of bytes 0..36
const SEG_MAGIC: usize = 0;
const SEG_VERSION: usize = 8;
const SEG_FLAGS: usize = 12;
const SEG_FIRST_LSN: usize = 16;
const SEG_NUMBER: usize = 24;
const SEG_SALT: usize = 32;
const SEG_CRC: usize = 36;
/// Length of the segment header.
pub const SEGMENT_HEADER_LEN: usize = 40;

/// Segment flag bit 0: the segment was preallocated; zeros after the last record are free space.
pub(crate) const FLAG_PREALLOCATED: u32 = 1;

// Layout: record header (32 bytes), little-endian, followed by `length` payload bytes.
//   0..4   salt echo      4..8   payload length
//   8..16  LSN            16..24 timestamp (µs since the Unix epoch, signed)
//   24     kind           25..28 reserved (zero)
//   28..32 CRC-32C of payload, then header bytes 0..28
const REC_SALT: usize = 0;
const REC_LEN: usize = 4;
const REC_LSN: usize = 8;
const REC_TIMESTAMP: usize = 16;
const REC_KIND: usize = 24;
const REC_CRC: usize = 28;
/// Length of a record header.
pub const RECORD_HEADER_LEN: usize = 32;

/// Largest payload a record may have (1 GiB). A length field above this is corruption, and
/// nothing is allocated for it.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 30;

/// Versions of the log format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FormatVersion {
    /// The first version (see `docs/formats/wal.md`).
    V1 = 1,
}

impl FormatVersion {
    /// The version this build writes.
    pub const CURRENT: FormatVersion = FormatVersion::V1;

    /// Whether segments of this version carry a per-segment salt echoed in every record.
    pub fn has_record_salt(self) -> bool {
        matches!(self, FormatVersion::V1)
    }
}

impl TryFrom<u32> for FormatVersion {
    type Error = u32;
    fn try_from(v: u32) -> Result<FormatVersion, u32> {
        match v {
            1 => Ok(FormatVersion::V1),
            other => Err(other),
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    if let Some(s) = b.get(at..at + 8) {
        a.copy_from_slice(s);
    }
    u64::from_le_bytes(a)
}

/// A random salt with every byte non-zero, so a record header never starts with a zero byte.
pub(crate) fn new_salt() -> u32 {
    let mut bytes: [u8; 4] = rand::random();
    for b in &mut bytes {
        if *b == 0 {
            *b = 0x5a;
        }
    }
    u32::from_le_bytes(bytes)
}

/// The decoded header of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub(crate) version: FormatVersion,
    pub(crate) flags: u32,
    pub(crate) first_lsn: Lsn,
    pub(crate) number: u64,
    pub(crate) salt: u32,
}

impl SegmentHeader {
    pub(crate) fn preallocated(&self) -> bool {
        self.flags & FLAG_PREALLOCATED != 0
    }

    pub(crate) fn encode(&self) -> [u8; SEGMENT_HEADER_LEN] {
        let mut h = [0u8; SEGMENT_HEADER_LEN];
        h[SEG_MAGIC..SEG_MAGIC + 8].copy_from_slice(&MAGIC);
        h[SEG_VERSION..SEG_VERSION + 4].copy_from_slice(&(self.version as u32).to_le_bytes());
        h[SEG_FLAGS..SEG_FLAGS + 4].copy_from_slice(&self.flags.to_le_bytes());
        h[SEG_FIRST_LSN..SEG_FIRST_LSN + 8].copy_from_slice(&self.first_lsn.to_le_bytes());
        h[SEG_NUMBER..SEG_NUMBER + 8].copy_from_slice(&self.number.to_le_bytes());
        h[SEG_SALT..SEG_SALT + 4].copy_from_slice(&self.salt.to_le_bytes());
        let crc = crc32c::crc32c(&h[..SEG_CRC]);
        h[SEG_CRC..].copy_from_slice(&crc.to_le_bytes());
        h
    }

    /// Decodes and validates the header at the start of `bytes` (the whole file `file`).
    pub(crate) fn decode(file: &Path, bytes: &[u8]) -> Result<SegmentHeader, Error> {
        let corrupt = |offset: usize, reason: &str| Error::Corrupt {
            file: file.to_path_buf(),
            offset: offset as u64,
            reason: reason.to_owned(),
        };
        let h = bytes
            .get(..SEGMENT_HEADER_LEN)
            .ok_or_else(|| corrupt(0, "file is shorter than the 40-byte segment header"))?;
        if h[SEG_MAGIC..SEG_MAGIC + 8] != MAGIC {
            return Err(corrupt(0, "bad magic: not a PhantomDB log segment"));
        }
        let stored = u32_at(h, SEG_CRC);
        let computed = crc32c::crc32c(&h[..SEG_CRC]);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                file: file.to_path_buf(),
                offset: 0,
                expected: stored,
                found: computed,
            });
        }
        let version = FormatVersion::try_from(u32_at(h, SEG_VERSION)).map_err(|found| {
            Error::UnsupportedVersion {
                file: file.to_path_buf(),
                found,
            }
        })?;
        let flags = u32_at(h, SEG_FLAGS);
        if flags & !FLAG_PREALLOCATED != 0 {
            return Err(corrupt(SEG_FLAGS, "unknown segment flags"));
        }
        let header = SegmentHeader {
            version,
            flags,
            first_lsn: u64_at(h, SEG_FIRST_LSN),
            number: u64_at(h, SEG_NUMBER),
            salt: u32_at(h, SEG_SALT),
        };
        if header.first_lsn == 0 {
            return Err(corrupt(SEG_FIRST_LSN, "first LSN is 0"));
        }
        Ok(header)
    }
}

/// A record about to be written: everything but the salt, plus its payload's CRC.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecordMeta {
    pub(crate) lsn: Lsn,
    pub(crate) micros: i64,
    pub(crate) kind: EntryKind,
    pub(crate) payload_len: u32,
    pub(crate) payload_crc: u32,
}

/// Encodes a record header; `payload_crc` is `crc32c(payload)`.
pub(crate) fn encode_record_header(meta: &RecordMeta, salt: u32) -> [u8; RECORD_HEADER_LEN] {
    let mut h = [0u8; RECORD_HEADER_LEN];
    h[REC_SALT..REC_SALT + 4].copy_from_slice(&salt.to_le_bytes());
    h[REC_LEN..REC_LEN + 4].copy_from_slice(&meta.payload_len.to_le_bytes());
    h[REC_LSN..REC_LSN + 8].copy_from_slice(&meta.lsn.to_le_bytes());
    h[REC_TIMESTAMP..REC_TIMESTAMP + 8].copy_from_slice(&meta.micros.to_le_bytes());
    h[REC_KIND] = meta.kind as u8;
    let crc = crc32c::crc32c_append(meta.payload_crc, &h[..REC_CRC]);
    h[REC_CRC..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// A record found valid in a segment's bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FoundRecord {
    pub(crate) offset: usize,
    pub(crate) lsn: Lsn,
    pub(crate) micros: i64,
    pub(crate) kind: EntryKind,
    pub(crate) payload_start: usize,
    pub(crate) end: usize,
}

/// What is at an offset of a segment.
#[derive(Debug)]
pub(crate) enum Probe {
    /// A record that validates.
    Record(FoundRecord),
    /// Zero bytes (a zero header, or a short all-zero remainder): the end of written data.
    Zeros,
    /// The end of the file.
    Eof,
    /// Bytes that are not a valid record; `error` says why (file and offset filled in).
    Bad(Error),
}

/// Validates the record at `offset` of `bytes` (the whole segment `file` with salt `salt`).
pub(crate) fn probe(file: &Path, bytes: &[u8], salt: u32, offset: usize) -> Probe {
    probe_at(file, bytes, 0, salt, offset)
}

/// [`probe`] where `bytes` holds the segment from file offset `base` on (`base <= offset`):
/// `offset` and every offset reported are offsets in the file.
fn probe_at(file: &Path, bytes: &[u8], base: usize, salt: u32, offset: usize) -> Probe {
    let Some(rest) = offset.checked_sub(base).and_then(|at| bytes.get(at..)) else {
        return Probe::Eof;
    };
    if rest.is_empty() {
        return Probe::Eof;
    }
    let corrupt = |reason: String| {
        Probe::Bad(Error::Corrupt {
            file: file.to_path_buf(),
            offset: offset as u64,
            reason,
        })
    };
    let Some(h) = rest.get(..RECORD_HEADER_LEN) else {
        if rest.iter().all(|&b| b == 0) {
            return Probe::Zeros;
        }
        return corrupt(format!(
            "incomplete record header ({} of {RECORD_HEADER_LEN} bytes)",
            rest.len()
        ));
    };
    if h.iter().all(|&b| b == 0) {
        return Probe::Zeros;
    }
    if u32_at(h, REC_SALT) != salt {
        return corrupt("record salt does not match the segment (stale or garbage bytes)".into());
    }
    let len = u64::from(u32_at(h, REC_LEN));
    if len > MAX_PAYLOAD_LEN {
        return corrupt(format!(
            "record length {len} exceeds the maximum {MAX_PAYLOAD_LEN}"
        ));
    }
    let payload_start = offset + RECORD_HEADER_LEN;
    let end = payload_start + len as usize;
    let Some(payload) = bytes.get(payload_start - base..end - base) else {
        return corrupt(format!(
            "record of {len} payload bytes extends past the end of the file ({} bytes)",
            base + bytes.len()
        ));
    };
    let stored = u32_at(h, REC_CRC);
    let computed = crc32c::crc32c_append(crc32c::crc32c(payload), &h[..REC_CRC]);
    if stored != computed {
        return Probe::Bad(Error::ChecksumMismatch {
            file: file.to_path_buf(),
            offset: offset as u64,
            expected: stored,
            found: computed,
        });
    }
    let kind = match EntryKind::try_from(h[REC_KIND]) {
        Ok(k) => k,
        Err(k) => return corrupt(format!("unknown record kind {k}")),
    };
    Probe::Record(FoundRecord {
        offset,
        lsn: u64_at(h, REC_LSN),
        micros: u64_at(h, REC_TIMESTAMP) as i64,
        kind,
        payload_start,
        end,
    })
}

/// Whether a valid record with an LSN above `after_lsn` starts anywhere after `offset`: the test
/// that tells a torn tail (nothing valid follows) from corruption (valid data follows).
pub(crate) fn valid_record_after(
    file: &Path,
    bytes: &[u8],
    salt: u32,
    offset: usize,
    after_lsn: Lsn,
) -> Option<usize> {
    let salt_bytes = salt.to_le_bytes();
    let mut at = offset + 1;
    // Bytes before `dense_until` are checked one by one; past it, a block of zeros (a
    // preallocated segment's free space) is skipped whole: no record starts with a zero byte.
    let mut dense_until = 0;
    while at + RECORD_HEADER_LEN <= bytes.len() {
        if at >= dense_until {
            let block_end = (at + ZERO_BLOCK).min(bytes.len());
            if all_zero(bytes.get(at..block_end).unwrap_or_default()) {
                at = block_end;
                continue;
            }
            dense_until = block_end;
        }
        if bytes.get(at..at + 4) == Some(&salt_bytes[..])
            && let Probe::Record(r) = probe(file, bytes, salt, at)
            && r.lsn > after_lsn
        {
            return Some(at);
        }
        at += 1;
    }
    None
}

/// How the bytes after the last valid record of a segment are to be treated.
#[derive(Debug)]
pub(crate) enum Tail {
    /// Nothing after it, or free (zero) space in a preallocated segment.
    Clean,
    /// A torn tail: bytes to cut at `offset` (only possible in the last segment).
    Torn { offset: usize },
}

/// Decides what the bytes from `offset` (where [`probe`] returned `stopped`) are. `last` says
/// whether this is the last segment; `last_lsn` is the LSN of the last valid record.
///
/// Zeros in a preallocated segment are free space when the [`ZERO_CHECK_WINDOW`] bytes from
/// `offset` (or all of them, if fewer remain) are zero: the rest of the file is not read.
/// Everything else loads the whole segment first, so the classification is the same as if it
/// had been read whole.
pub(crate) fn classify_tail(
    seg: &mut SegmentBytes,
    header: &SegmentHeader,
    offset: usize,
    stopped: Probe,
    last: bool,
    last_lsn: Lsn,
) -> Result<Tail, Error> {
    if matches!(stopped, Probe::Eof) {
        return Ok(Tail::Clean);
    }
    if matches!(stopped, Probe::Zeros) && header.preallocated() {
        let window_end = offset.saturating_add(ZERO_CHECK_WINDOW);
        seg.fill_to(window_end)?;
        let window = seg
            .get(offset..window_end.min(seg.loaded_end()))
            .unwrap_or_default();
        if all_zero(window) {
            return Ok(Tail::Clean);
        }
    }
    seg.fill_all()?;
    let file = seg.path.as_path();
    let bytes = seg.bytes();
    let rest = bytes.get(offset..).unwrap_or_default();
    let all_zero = all_zero(rest);
    let bad = match stopped {
        Probe::Eof => return Ok(Tail::Clean),
        Probe::Zeros if all_zero && header.preallocated() => return Ok(Tail::Clean),
        Probe::Zeros => Error::Corrupt {
            file: file.to_path_buf(),
            offset: offset as u64,
            reason: if all_zero {
                "zero bytes after the last record of a segment that was not preallocated".into()
            } else {
                "zero record header followed by non-zero bytes".into()
            },
        },
        Probe::Bad(e) => e,
        // A valid record is never a stop; treat it as corruption of the caller's logic.
        Probe::Record(r) => Error::Corrupt {
            file: file.to_path_buf(),
            offset: r.offset as u64,
            reason: "scanner stopped at a valid record".into(),
        },
    };
    if !last {
        return Err(bad);
    }
    if let Some(next) = valid_record_after(file, bytes, header.salt, offset, last_lsn) {
        tracing::error!(file = %file.display(), offset, next_valid = next, "bad record followed by valid records");
        return Err(with_reason_suffix(
            bad,
            &format!("valid records follow at byte offset {next}"),
        ));
    }
    Ok(Tail::Torn { offset })
}

fn with_reason_suffix(e: Error, suffix: &str) -> Error {
    match e {
        Error::Corrupt {
            file,
            offset,
            reason,
        } => Error::Corrupt {
            file,
            offset,
            reason: format!("{reason}; {suffix}"),
        },
        other => other,
    }
}

/// File name of segment `number` of log `name`: `<name>.log`, then `<name>.log.000002` …
pub fn segment_file_name(name: &str, number: u64) -> String {
    if number <= 1 {
        format!("{name}.log")
    } else {
        format!("{name}.log.{number:06}")
    }
}

/// The segment number of a file name of log `name`, if it is one of its segments.
pub(crate) fn parse_segment_number(name: &str, file: &str) -> Option<u64> {
    let rest = file.strip_prefix(name)?.strip_prefix(".log")?;
    if rest.is_empty() {
        return Some(1);
    }
    let digits = rest.strip_prefix('.')?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    (n >= 2).then_some(n)
}

/// The segment files of log `name` in `dir`, oldest first (empty when there is no log). Fails
/// on a missing segment between two present ones, naming the file after the hole.
pub fn segment_files(
    fs: &dyn phantom_storage::FileSystem,
    dir: &Path,
    name: &str,
) -> Result<Vec<PathBuf>, Error> {
    Ok(list_segments(fs, dir, name)?
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}

/// The file an error about log `name` should name: its oldest (`newest == false`) or newest
/// segment present, or `<name>.log` when none can be listed (after truncation or a
/// roll-over, `<name>.log` itself may be gone). Lists the directory: for error paths.
pub fn segment_file_for_error(
    fs: &dyn phantom_storage::FileSystem,
    dir: &Path,
    name: &str,
    newest: bool,
) -> PathBuf {
    let files = segment_files(fs, dir, name).unwrap_or_default();
    let file = if newest { files.last() } else { files.first() };
    file.cloned()
        .unwrap_or_else(|| dir.join(segment_file_name(name, 1)))
}

/// The segments of log `name` in `dir`, sorted by number.
pub(crate) fn list_segments(
    fs: &dyn phantom_storage::FileSystem,
    dir: &Path,
    name: &str,
) -> Result<Vec<(u64, PathBuf)>, Error> {
    let names = match fs.list_dir(dir) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut segs: Vec<(u64, PathBuf)> = names
        .iter()
        .filter_map(|f| parse_segment_number(name, f).map(|n| (n, dir.join(f))))
        .collect();
    segs.sort_by_key(|(n, _)| *n);
    for pair in segs.windows(2) {
        if let [(a, _), (b, path)] = pair
            && *b != a + 1
        {
            return Err(Error::Corrupt {
                file: path.clone(),
                offset: 0,
                reason: format!("segment {b} follows segment {a}: segments in between are missing"),
            });
        }
    }
    Ok(segs)
}

/// Whether `seg`, the last segment of a log, is a roll-over (or creation) that a crash
/// interrupted, which holds nothing that was ever acknowledged: its header is missing or all
/// zeros, or it is torn — it does not decode *and* nothing but zeros follows it (a crash
/// persisted part of its unsynced bytes: found by the simulation, seed 2213 of a 3,000-seed
/// campaign). No record can be in such a segment: records go in only after the header is
/// fsynced, and a fsynced header is whole. A header that does not decode with anything after
/// it is damage to a real segment: `false`, and the scan reports it as corruption.
pub(crate) fn interrupted_roll_over(seg: &mut SegmentBytes) -> Result<bool, Error> {
    seg.fill_to(SEGMENT_HEADER_LEN)?;
    let head = seg.bytes().get(..SEGMENT_HEADER_LEN);
    if head.is_none_or(|h| h.iter().all(|&b| b == 0)) {
        return Ok(true);
    }
    if seg.header().is_ok() {
        return Ok(false);
    }
    // Rare (a crash inside a roll-over, or damage): reading the whole segment is affordable.
    seg.fill_all()?;
    Ok(seg
        .bytes()
        .get(SEGMENT_HEADER_LEN..)
        .is_none_or(|rest| rest.iter().all(|&b| b == 0)))
}

/// How far past a zero record header a preallocated segment is checked for non-zero bytes
/// before the rest is taken for free space without being read (`docs/formats/wal.md`). The
/// writer never has more than this many bytes of records in a preallocated segment written but
/// not yet synced (zeros written ahead do not count), so a crash can leave non-zero bytes after
/// the end of valid data only within it.
pub const ZERO_CHECK_WINDOW: usize = 4 << 20;

/// Smallest read a [`SegmentBytes`] makes.
const READ_CHUNK: usize = 64 << 10;
/// Largest read a [`SegmentBytes`] makes at once.
const MAX_READ_CHUNK: usize = 4 << 20;

/// How far a scan by [`SegmentBytes::probe`] moves past the start of what is loaded before the
/// bytes behind it are dropped. A sequential scan therefore holds a window of about this much
/// (plus one read and one record) instead of the whole segment: the buffer is reused, so a
/// 64 MiB segment is not copied into 64 MiB of freshly allocated memory (whose page faults
/// were most of the cost of opening a log, `docs/performance.md`).
const RELEASE_AFTER: usize = 4 << 20;

/// A segment read through the seam only as far as the scan needs it, on demand. A
/// preallocated segment's free space is never read past [`ZERO_CHECK_WINDOW`] unless
/// something non-zero is found there.
///
/// Invariant: `bytes` holds file bytes `base..base + bytes.len()`. `base` is 0 until a
/// [`Self::probe`] moves past [`RELEASE_AFTER`], and [`Self::fill_all`] sets it back to 0, so
/// [`Self::bytes`] (a prefix of the file) is only used at the start or after `fill_all`; all
/// other access goes through [`Self::get`] with file offsets.
pub(crate) struct SegmentBytes {
    path: PathBuf,
    file: Box<dyn phantom_storage::FileRead>,
    /// Bytes `base..base + bytes.len()` of the file.
    bytes: Vec<u8>,
    base: usize,
    eof: bool,
}

impl std::fmt::Debug for SegmentBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentBytes")
            .field("path", &self.path)
            .field("loaded", &self.bytes.len())
            .field("eof", &self.eof)
            .finish()
    }
}

impl SegmentBytes {
    /// Opens `path` for reading; nothing is read yet.
    pub(crate) fn open(
        fs: &dyn phantom_storage::FileSystem,
        path: &Path,
    ) -> Result<SegmentBytes, Error> {
        let file = fs.open_read(path).map_err(|e| Error::io(path, e))?;
        Ok(SegmentBytes {
            path: path.to_path_buf(),
            file,
            bytes: Vec::new(),
            base: 0,
            eof: false,
        })
    }

    /// The bytes loaded so far as a prefix of the file: all of the file after
    /// [`Self::fill_all`]. Empty if a scan has dropped the start (see the invariant), so that
    /// a mistaken use finds nothing rather than bytes at the wrong offsets.
    pub(crate) fn bytes(&self) -> &[u8] {
        if self.base == 0 { &self.bytes } else { &[] }
    }

    /// File bytes `range`, if they are loaded.
    pub(crate) fn get(&self, range: std::ops::Range<usize>) -> Option<&[u8]> {
        let start = range.start.checked_sub(self.base)?;
        self.bytes.get(start..range.end.checked_sub(self.base)?)
    }

    /// The file offset up to which bytes are loaded.
    pub(crate) fn loaded_end(&self) -> usize {
        self.base + self.bytes.len()
    }

    /// Loads the file up to byte `end` (all of it, if it is shorter).
    pub(crate) fn fill_to(&mut self, end: usize) -> Result<(), Error> {
        use std::io::Read;
        while !self.eof && self.loaded_end() < end {
            let chunk = (end - self.loaded_end()).clamp(READ_CHUNK, MAX_READ_CHUNK);
            self.bytes.reserve(chunk);
            // `read_to_end` reads into the spare capacity without zeroing it first.
            let read = (&mut self.file)
                .take(chunk as u64)
                .read_to_end(&mut self.bytes)
                .map_err(|e| Error::io(&self.path, e))?;
            if read < chunk {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// Loads the whole file (reading it again from the start if a scan dropped its start).
    pub(crate) fn fill_all(&mut self) -> Result<(), Error> {
        if self.base > 0 {
            use std::io::{Seek, SeekFrom};
            self.file
                .seek(SeekFrom::Start(0))
                .map_err(|e| Error::io(&self.path, e))?;
            self.bytes.clear();
            self.base = 0;
            self.eof = false;
        }
        self.fill_to(usize::MAX)
    }

    /// Decodes the segment header (loading it first).
    pub(crate) fn header(&mut self) -> Result<SegmentHeader, Error> {
        self.fill_to(SEGMENT_HEADER_LEN)?;
        SegmentHeader::decode(&self.path, self.bytes())
    }

    /// [`probe`] at `offset`, loading the record first. The payload is loaded only when the
    /// header's salt matches and its length is within the cap, so a garbage length never makes
    /// the scan read (or allocate) more than the file holds.
    ///
    /// Scans move forward: bytes more than [`RELEASE_AFTER`] before `offset` are dropped, so
    /// a later probe must not go back before an earlier one (only [`Self::fill_all`] does).
    pub(crate) fn probe(&mut self, salt: u32, offset: usize) -> Result<Probe, Error> {
        if let Some(behind) = offset.checked_sub(self.base)
            && behind >= RELEASE_AFTER
        {
            // What remains is at most one read and one record: a short move.
            let behind = behind.min(self.bytes.len());
            self.bytes.drain(..behind);
            self.base += behind;
        }
        self.fill_to(offset.saturating_add(RECORD_HEADER_LEN))?;
        if let Some(h) = self.get(offset..offset + RECORD_HEADER_LEN)
            && u32_at(h, REC_SALT) == salt
        {
            let len = u64::from(u32_at(h, REC_LEN));
            if len <= MAX_PAYLOAD_LEN {
                self.fill_to(offset + RECORD_HEADER_LEN + len as usize)?;
            }
        }
        Ok(probe_at(&self.path, &self.bytes, self.base, salt, offset))
    }
}

/// Block size of the zero tests below.
const ZERO_BLOCK: usize = 4096;
static ZEROS: [u8; ZERO_BLOCK] = [0; ZERO_BLOCK];

/// Whether every byte of `bytes` is zero (compared a block at a time, so it runs at memory
/// speed even in unoptimised builds).
pub(crate) fn all_zero(bytes: &[u8]) -> bool {
    bytes
        .chunks(ZERO_BLOCK)
        .all(|c| c == ZEROS.get(..c.len()).unwrap_or_default())
}

/// The length of `bytes` without its trailing zeros.
pub(crate) fn len_without_trailing_zeros(bytes: &[u8]) -> usize {
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(ZERO_BLOCK);
        let block = bytes.get(start..end).unwrap_or_default();
        if all_zero(block) {
            end = start;
        } else {
            return start + block.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_zeros_are_measured_across_blocks() {
        assert_eq!(len_without_trailing_zeros(&[]), 0);
        assert_eq!(len_without_trailing_zeros(&[0; 10_000]), 0);
        let mut b = vec![0u8; 3 * ZERO_BLOCK + 17];
        b[5] = 1;
        assert_eq!(len_without_trailing_zeros(&b), 6);
        b[ZERO_BLOCK * 2 + 3] = 9;
        assert_eq!(len_without_trailing_zeros(&b), ZERO_BLOCK * 2 + 4);
        let last = b.len() - 1;
        b[last] = 2;
        assert_eq!(len_without_trailing_zeros(&b), b.len());
        assert!(all_zero(&[0; 9000]) && !all_zero(&b));
    }
}
