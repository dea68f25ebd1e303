//! The one error type of `phantom-snapshot`.

use std::io;
use std::path::PathBuf;

use chrono::NaiveDateTime;

/// Errors of the snapshot store. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the data model or an image format (bad name, checksum mismatch, truncated
    /// image, …). Format errors raised while reading or writing a snapshot are wrapped in
    /// [`phantom_storage::Error::InFile`], which names the file.
    #[error(transparent)]
    Storage(#[from] phantom_storage::Error),

    /// A file-system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"listing"`, `"opening"`, `"removing"`, …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// The file does not start like any known image format, so its header cannot be read.
    #[error("{}: not an image in a known format (it starts with {head})", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// Its first bytes (at most 16), escaped for display; `""` for an empty file.
        head: String,
    },

    /// The file's header names another database than the one whose name the file carries
    /// (a file copied or renamed by hand).
    #[error("{}: image of database {found:?}, expected {expected:?}", path.display())]
    WrongDatabase {
        /// The file.
        path: PathBuf,
        /// The database this store manages.
        expected: String,
        /// The database named in the file's header.
        found: String,
    },

    /// No snapshot name sorts after the newest existing one (its timestamp is the last second
    /// `chrono` can represent and every suffix is taken). Only a hand-made file can cause this.
    #[error("no snapshot name of database {database:?} sorts after the one stamped {stamp}")]
    NamesExhausted {
        /// The database.
        database: String,
        /// The timestamp of the newest existing snapshot.
        stamp: NaiveDateTime,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
