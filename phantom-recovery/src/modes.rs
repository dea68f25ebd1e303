//! Recovery modes for a phantom-wal log, after RocksDB's WAL recovery modes, applied before
//! the log is opened for writing.
//!
//! | mode | torn tail of the last segment | any other corruption |
//! |---|---|---|
//! | [`RecoveryMode::TolerateTornTail`] (default) | cut (bytes saved to `*.broken`) and reported | error naming file and offset |
//! | [`RecoveryMode::Strict`] | error naming file and offset | error naming file and offset |
//! | [`RecoveryMode::Salvage`] | cut and reported | the log is cut at the first bad record: the bad bytes and every later segment are moved to `*.broken`; the dropped LSN range is reported |
//!
//! Salvage loses committed data by design; it is only used when asked for.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantom_storage::FileSystem;
use phantom_wal::{Lsn, WalReader};

use crate::{Error, Result};

/// How recovery treats an irregular log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Cut an incomplete last record (the common result of a crash) and report it; refuse
    /// anything else.
    #[default]
    TolerateTornTail,
    /// Refuse any irregularity, a torn tail included.
    Strict,
    /// Keep the longest valid prefix of the log, dropping (and reporting) everything after the
    /// first bad record.
    Salvage,
}

impl std::str::FromStr for RecoveryMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tolerate" => Ok(RecoveryMode::TolerateTornTail),
            "strict" => Ok(RecoveryMode::Strict),
            "salvage" => Ok(RecoveryMode::Salvage),
            other => Err(format!(
                "unknown recovery mode {other:?} (tolerate, strict, salvage)"
            )),
        }
    }
}

/// What salvage dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Salvaged {
    /// The segment where the first bad record is.
    pub file: PathBuf,
    /// Its byte offset.
    pub offset: u64,
    /// Why it is bad.
    pub reason: String,
    /// The last LSN kept.
    pub last_kept_lsn: Lsn,
    /// A lower bound of the highest LSN dropped: the first LSN of the last segment moved aside,
    /// when there was one (records from `last_kept_lsn + 1` up to at least this are gone).
    pub last_dropped_lsn: Option<Lsn>,
    /// Bytes moved to `*.broken` files (the zeros that end a preallocated segment, its free
    /// space, are neither moved nor counted).
    pub bytes_dropped: u64,
    /// Files moved aside.
    pub moved: Vec<PathBuf>,
}

/// What [`prepare_wal`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// Set when salvage cut the log.
    pub salvaged: Option<Salvaged>,
}

fn wal_path_of(e: &phantom_wal::Error) -> Option<(PathBuf, u64)> {
    match e {
        phantom_wal::Error::Corrupt { file, offset, .. }
        | phantom_wal::Error::ChecksumMismatch { file, offset, .. }
        | phantom_wal::Error::Decode { file, offset, .. } => Some((file.clone(), *offset)),
        phantom_wal::Error::LsnGap { file, .. } => Some((file.clone(), 0)),
        _ => None,
    }
}

/// Checks the log of `name` in `dir` under `mode` before it is opened for writing: `Strict`
/// refuses a torn tail, `Salvage` cuts the log at its first bad record. `TolerateTornTail`
/// only reads (the log's own open cuts a torn tail).
pub fn prepare_wal(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    name: &str,
    mode: RecoveryMode,
) -> Result<Prepared> {
    if mode == RecoveryMode::TolerateTornTail {
        return Ok(Prepared::default());
    }
    let mut reader = WalReader::open(Arc::clone(fs), dir, name, 0)?;
    let mut failure = None;
    for record in reader.by_ref() {
        if let Err(e) = record {
            failure = Some(e);
            break;
        }
    }
    let status = reader.status().clone();
    match (mode, failure) {
        (RecoveryMode::Strict, Some(e)) => Err(e.into()),
        (RecoveryMode::Strict, None) => match status.torn_tail {
            Some(t) => Err(Error::TornTailRefused {
                file: t.file,
                offset: t.offset,
                bytes: t.bytes_cut,
            }),
            None => Ok(Prepared::default()),
        },
        (_, None) => Ok(Prepared::default()),
        (_, Some(e)) => {
            let Some((file, offset)) = wal_path_of(&e) else {
                return Err(e.into());
            };
            salvage(
                fs,
                dir,
                name,
                &file,
                offset,
                status.last_lsn,
                &e.to_string(),
            )
            .map(|s| Prepared { salvaged: Some(s) })
        }
    }
}

fn salvage(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    name: &str,
    bad_file: &Path,
    offset: u64,
    last_kept_lsn: Lsn,
    reason: &str,
) -> Result<Salvaged> {
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e: std::io::Error| Error::from(phantom_storage::Error::from(e).in_file(p))
    };
    let mut segments: Vec<String> = fs
        .list_dir(dir)
        .map_err(io(dir))?
        .into_iter()
        .filter(|f| phantom_wal::segment_file_name(name, 1) == *f || is_later_segment(name, f))
        .collect();
    segments.sort_by_key(|f| segment_number(name, f));
    let bad_name = bad_file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_owned();
    let mut moved = Vec::new();
    let mut bytes_dropped = 0;
    let mut last_dropped_lsn = None;
    let mut after_bad = false;
    for seg in segments {
        let path = dir.join(&seg);
        if seg == bad_name {
            after_bad = true;
            // Keep the valid prefix; save the rest to `<segment>.broken`.
            let mut bytes = Vec::new();
            fs.open_read(&path)
                .map_err(io(&path))?
                .read_to_end(&mut bytes)
                .map_err(io(&path))?;
            let cut = usize::try_from(offset)
                .unwrap_or(bytes.len())
                .min(bytes.len());
            // Zeros at the end are a preallocated segment's free space, not dropped data.
            let end = len_without_trailing_zeros(&bytes).max(cut);
            let broken = PathBuf::from(format!("{}.broken", path.display()));
            let mut out = fs.create(&broken).map_err(io(&broken))?;
            out.write_all(bytes.get(cut..end).unwrap_or_default())
                .map_err(io(&broken))?;
            out.sync_all().map_err(io(&broken))?;
            bytes_dropped += (end - cut) as u64;
            if cut <= phantom_wal::SEGMENT_HEADER_LEN
                && seg != phantom_wal::segment_file_name(name, 1)
            {
                // Nothing valid in this segment: move the whole file aside.
                fs.remove_file(&path).map_err(io(&path))?;
            } else {
                let mut w = fs.open_write(&path).map_err(io(&path))?;
                w.set_len(cut as u64).map_err(io(&path))?;
                w.sync_all().map_err(io(&path))?;
            }
            moved.push(broken);
        } else if after_bad {
            let len = fs.file_len(&path).map_err(io(&path))?.unwrap_or(0);
            if let Some(lsn) = first_lsn_of(fs, &path) {
                last_dropped_lsn = Some(last_dropped_lsn.map_or(lsn, |l: Lsn| l.max(lsn)));
            }
            let broken = PathBuf::from(format!("{}.broken", path.display()));
            fs.rename(&path, &broken).map_err(io(&path))?;
            bytes_dropped += len;
            moved.push(broken);
        }
    }
    fs.sync_dir(dir).map_err(io(dir))?;
    let salvaged = Salvaged {
        file: bad_file.to_path_buf(),
        offset,
        reason: reason.to_owned(),
        last_kept_lsn,
        last_dropped_lsn,
        bytes_dropped,
        moved,
    };
    tracing::warn!(
        ?salvaged,
        "salvage dropped the log after its first bad record"
    );
    Ok(salvaged)
}

/// The length of `bytes` without its trailing zeros, found a 4 KiB block at a time (block
/// compares run at memory speed, a 64 MiB preallocated segment is mostly zeros).
fn len_without_trailing_zeros(bytes: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    static ZEROS: [u8; BLOCK] = [0; BLOCK];
    let mut end = bytes.len();
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let block = bytes.get(start..end).unwrap_or_default();
        if block == ZEROS.get(..block.len()).unwrap_or_default() {
            end = start;
        } else {
            return start + block.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        }
    }
    0
}

fn segment_number(name: &str, file: &str) -> u64 {
    if file == phantom_wal::segment_file_name(name, 1) {
        return 1;
    }
    file.rsplit('.')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX)
}

fn is_later_segment(name: &str, file: &str) -> bool {
    let n = segment_number(name, file);
    n != u64::MAX && n > 1 && phantom_wal::segment_file_name(name, n) == file
}

/// The first LSN a segment's header declares, read through the WAL's own reader (which
/// validates the header); `None` when the header is unreadable.
fn first_lsn_of(fs: &Arc<dyn FileSystem>, path: &Path) -> Option<Lsn> {
    let dir = path.parent()?;
    let file = path.file_name()?.to_str()?;
    // The segment's database name is everything before `.log`.
    let name = file.split(".log").next()?;
    let number = segment_number(name, file);
    let infos = phantom_wal::WalReader::segment_first_lsns(Arc::clone(fs), dir, name).ok()?;
    infos
        .into_iter()
        .find(|(n, _)| *n == number)
        .map(|(_, lsn)| lsn)
}
