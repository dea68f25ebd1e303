//! The `StorageFormat` trait: how a catalog image (a whole database at one log position) is
//! written to and read from a byte stream.

use std::fmt;
use std::io::{Read, Write};

use chrono::{DateTime, Utc};

use crate::catalog::Catalog;
use crate::error::Result;

/// What kind of image a file holds; the CSV format writes it in its first line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageKind {
    /// The main database file `<db>.db`.
    Database,
    /// A timestamped snapshot `<db>_snapshot_…`.
    Snapshot,
}

/// The header of an image: which database, which log position, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageMeta {
    /// Database name.
    pub database: String,
    /// The image holds every log record with an LSN ≤ this one, and none after.
    /// Files without an LSN (written by the original C++ implementation) read as 0.
    pub lsn: u64,
    /// When the image was taken (`None` when the file does not say, or says nothing parsable,
    /// as the original's compile-time `# Generated:` lines).
    pub created: Option<DateTime<Utc>>,
    /// Main file or snapshot.
    pub kind: ImageKind,
}

/// A file format for catalog images.
///
/// Contract for implementations:
/// - `write` streams the image: it never builds a second full copy of the catalog in memory.
/// - `read` streams too: rows go into the returned catalog as they are decoded.
/// - `read` either returns exactly the image that `write` wrote, or an error; it never
///   returns a partial catalog from a truncated or corrupt file, and never panics.
/// - Tables are written in the catalog's (name) order, rows in row-id order, so writing the
///   same catalog twice gives the same bytes apart from the creation time.
pub trait StorageFormat: Send + Sync + fmt::Debug {
    /// Short name, e.g. `"csv"` or `"binary"`.
    fn name(&self) -> &'static str;

    /// `true` when a file starting with `head` (its first bytes, up to 64) is in this format.
    fn detect(&self, head: &[u8]) -> bool;

    /// Writes `catalog` as an image described by `meta`.
    fn write(&self, meta: &ImageMeta, catalog: &Catalog, out: &mut dyn Write) -> Result<()>;

    /// Reads a whole image, verifying it.
    fn read(&self, input: &mut dyn Read) -> Result<(ImageMeta, Catalog)>;

    /// Reads only the header. It does not verify the rest of the file: use `read` for that.
    fn read_meta(&self, input: &mut dyn Read) -> Result<ImageMeta>;
}
