//! The one error type of `phantom-wal`. Every variant that concerns a file names it, and every
//! variant that concerns a place in a file names the byte offset, so an operator can act on it.

use std::io;
use std::path::PathBuf;

use crate::entry::Lsn;

/// Errors of the write-ahead log, its sinks and the audit text format.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error on a file or directory.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A segment is malformed at a place (bad header, bad record with valid records after it).
    #[error("corrupt log segment {} at byte offset {offset}: {reason}", file.display())]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the bad header or record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A record's (or segment header's) CRC-32C does not match its bytes.
    #[error(
        "checksum mismatch in log segment {} at byte offset {offset}: stored {expected:#010x}, computed {found:#010x}",
        file.display()
    )]
    ChecksumMismatch {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the record (or 0 for the segment header).
        offset: u64,
        /// The checksum stored in the file.
        expected: u32,
        /// The checksum computed over the bytes read.
        found: u32,
    },
    /// LSNs are not consecutive within or between segments.
    #[error("LSN gap in log segment {}: expected LSN {expected}, found {found}", file.display())]
    LsnGap {
        /// The segment where the unexpected LSN is.
        file: PathBuf,
        /// The LSN that should have come next.
        expected: Lsn,
        /// The LSN found.
        found: Lsn,
    },
    /// A write or sync failed earlier; the sink refuses everything until it is reopened.
    #[error("log is poisoned by an earlier failed write or sync ({cause}); reopen it to recover")]
    Poisoned {
        /// The failure that poisoned the log.
        cause: String,
    },
    /// A segment declares a format version this build cannot read.
    #[error("log segment {} has unsupported format version {found}", file.display())]
    UnsupportedVersion {
        /// The segment file.
        file: PathBuf,
        /// The version found.
        found: u32,
    },
    /// An entry is too large to be one record.
    #[error("log record payload of {len} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// Encoded payload length.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// An entry could not be encoded.
    #[error("cannot encode log entry: {0}")]
    Encode(#[source] postcard::Error),
    /// A record's payload passed its checksum but could not be decoded.
    #[error("cannot decode log record in {} at byte offset {offset}: {source}", file.display())]
    Decode {
        /// The segment file.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// The decoder's error.
        #[source]
        source: postcard::Error,
    },
    /// A line is not in the audit text format.
    #[error("invalid audit line at column {column}: {reason}")]
    AuditParse {
        /// 1-based character column where parsing failed.
        column: usize,
        /// What was expected there.
        reason: String,
    },
    /// The sink cannot do this operation.
    #[error("{sink} does not support {operation}")]
    Unsupported {
        /// The sink type.
        sink: &'static str,
        /// The operation asked for.
        operation: &'static str,
    },
    /// Options that cannot work (e.g. a first LSN of 0).
    #[error("invalid log options: {reason}")]
    InvalidOptions {
        /// What is wrong.
        reason: String,
    },
    /// An error of the storage layer (file-system seam helpers such as `atomic_write`).
    #[error(transparent)]
    Storage(#[from] phantom_storage::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The file and byte offset this error points at, when it points at one.
    pub fn location(&self) -> Option<(&std::path::Path, u64)> {
        match self {
            Error::Corrupt { file, offset, .. }
            | Error::ChecksumMismatch { file, offset, .. }
            | Error::Decode { file, offset, .. } => Some((file.as_path(), *offset)),
            _ => None,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
