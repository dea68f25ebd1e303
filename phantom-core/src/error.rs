//! The error type of `phantom-core`.

use std::path::PathBuf;

/// Everything that can go wrong in a [`Database`](crate::Database) call. Errors of the
/// lower layers are wrapped with their own structured variants intact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A data-model, name, value or image-format error (unknown table, wrong type, …).
    #[error(transparent)]
    Storage(#[from] phantom_storage::Error),
    /// A write-ahead-log error.
    #[error(transparent)]
    Wal(#[from] phantom_wal::Error),
    /// A snapshot-store error.
    #[error(transparent)]
    Snapshot(#[from] phantom_snapshot::Error),
    /// A recovery error.
    #[error(transparent)]
    Recovery(#[from] phantom_recovery::Error),
    /// No database of that name.
    #[error("unknown database {name:?}")]
    UnknownDatabase {
        /// The name asked for.
        name: String,
    },
    /// A database of that name already exists.
    #[error("database {name:?} already exists")]
    DatabaseExists {
        /// The name asked for.
        name: String,
    },
    /// A filter with no condition where one is required (delete/update need an explicit
    /// `*_all` call to touch every row).
    #[error("empty filter: give a condition, or use the explicit *_all call to touch every row")]
    EmptyFilter,
    /// The string form of a filter does not parse.
    #[error("cannot parse filter {filter:?}: {reason}")]
    FilterSyntax {
        /// The filter text.
        filter: String,
        /// The parser's message.
        reason: String,
    },
    /// A filter uses something outside the supported subset.
    #[error("unsupported in a filter: {part}")]
    UnsupportedFilter {
        /// The unsupported part.
        part: String,
    },
    /// The data directory path is not acceptable.
    #[error("invalid data directory {path:?}: {reason}")]
    InvalidDataDirectory {
        /// The path given.
        path: PathBuf,
        /// Why.
        reason: &'static str,
    },
    /// Another process (or another `Database` in this one) holds the data directory.
    #[error("data directory {} is locked by {} (lock file {})", path.parent().unwrap_or(path).display(), pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}")), path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, when it could be read.
        pid: Option<u32>,
    },
    /// An I/O error on a path.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
