//! The spec's CSV image format: the original C++ layout (`# PhantomDB Database File`,
//! `[TABLE:name]`, `COLUMNS:`, `DATA:`, `ROW:`), with RFC 4180 quoting, an unquoted empty field
//! for NULL, and extra metadata in `#` comment lines that the original's reader skips: a format
//! version, the LSN, per-table row counts, next row ids, constraints, row ids where they are not
//! consecutive, and a final CRC-32C line. The full specification is `docs/formats/csv.md`.
//!
//! Layout (version 1; `#` lines marked * are ours, everything else is the spec's):
//!
//! ```text
//! # PhantomDB Database File              (snapshots: # PhantomDB Database Snapshot)
//! # Database: test_db
//! # Format: CSV
//! # Generated: 2026-11-24 15:50:06 UTC   (snapshots: # Timestamp: …)
//! # Type: Snapshot
//! # Format-Version: 1                      *
//! # LSN: 42                               *
//!                                         (blank line ends the header)
//! [TABLE:users]
//! # Rows: 2                               * per table, before COLUMNS:
//! # Next-Row-Id: 3                        *
//! # Constraints: id=primary_key           * only when a column has one
//! COLUMNS:id:int,name:string,email:string
//! DATA:id,name,email                      (only when the table has rows)
//! # Row-Id: 7                             * only before a row whose id is not previous + 1
//! ROW:1,John Doe,john@example.com
//! ROW:2,Jane Smith,jane@example.com
//!                                         (blank line ends each table)
//! # Checksum: crc32c=1a2b3c4d             * CRC-32C of every byte before this line
//! ```
//!
//! Reading is streaming: lines are read one at a time through a `BufReader`, every byte goes
//! through a running CRC, and each row is inserted into its table as soon as it is parsed.
//! Writing is streaming too: rows are formatted into a reused buffer that is checksummed and
//! handed to the output in chunks.

mod fields;
mod read;
mod write;

use std::io::{Read, Write};

use crate::{Catalog, Error, ImageMeta, Result, StorageFormat};

/// First line of a main database file.
const FIRST_LINE_DATABASE: &str = "# PhantomDB Database File";
/// First line of a snapshot file.
const FIRST_LINE_SNAPSHOT: &str = "# PhantomDB Database Snapshot";
/// What `detect` looks for.
const MAGIC: &[u8] = b"# PhantomDB";
/// A UTF-8 byte-order mark, tolerated before the first line.
const BOM: &[u8] = b"\xEF\xBB\xBF";

// Header lines (the spec's).
const KEY_DATABASE: &str = "# Database:";
const KEY_FORMAT: &str = "# Format:";
const KEY_GENERATED: &str = "# Generated:";
const KEY_TIMESTAMP: &str = "# Timestamp:";
const KEY_TYPE: &str = "# Type:";
// Header lines (ours).
const KEY_VERSION: &str = "# Format-Version:";
const KEY_LSN: &str = "# LSN:";
// Table lines (ours).
const KEY_ROWS: &str = "# Rows:";
const KEY_NEXT_ROW_ID: &str = "# Next-Row-Id:";
const KEY_CONSTRAINTS: &str = "# Constraints:";
const KEY_ROW_ID: &str = "# Row-Id:";
// The last line (ours).
const KEY_CHECKSUM: &str = "# Checksum:";
const CHECKSUM_ALGORITHM: &str = "crc32c=";

// Table blocks (the spec's).
const TABLE_OPEN: &str = "[TABLE:";
const TABLE_CLOSE: &str = "]";
const COLUMNS: &str = "COLUMNS:";
const DATA: &str = "DATA:";
const ROW: &[u8] = b"ROW:";

/// Constraint names in `# Constraints:`.
const PRIMARY_KEY: &str = "primary_key";
const NOT_NULL: &str = "not_null";

/// `# Generated:` / `# Timestamp:` format: whole seconds as in the spec, then the fraction
/// only when it is not zero (`%.f` prints nothing for zero nanoseconds).
const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.f UTC";
/// What `# Generated:` says when the image has no creation time.
const UNKNOWN_TIME: &str = "unknown";

/// The format's name in errors.
const FORMAT_NAME: &str = "csv";

/// Versions of the CSV layout. Files without `# Format-Version:` are the original C++ layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FormatVersion {
    /// Written by the original C++ implementation: no version, no LSN, no checksum.
    Legacy,
    /// Version 1: LSN, per-table metadata, row ids, final checksum line.
    V1,
}

impl FormatVersion {
    /// The version this build writes.
    const CURRENT: FormatVersion = FormatVersion::V1;

    /// The number written in `# Format-Version:`.
    fn number(self) -> u32 {
        match self {
            FormatVersion::Legacy => 0,
            FormatVersion::V1 => 1,
        }
    }

    /// The file must end with a `# Checksum:` line, and every line with a line feed.
    fn has_checksum(self) -> bool {
        self != FormatVersion::Legacy
    }
}

impl TryFrom<u32> for FormatVersion {
    type Error = Error;

    fn try_from(found: u32) -> Result<FormatVersion> {
        match found {
            1 => Ok(FormatVersion::V1),
            _ => Err(Error::UnsupportedVersion {
                format: FORMAT_NAME,
                found,
            }),
        }
    }
}

/// The spec's CSV layout, RFC 4180 quoting, checksummed. See `docs/formats/csv.md`.
///
/// Reads the files the original C++ implementation wrote (no version, no LSN, no checksum,
/// CRLF line ends, compile-time `# Generated:` dates) as well as its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct CsvFormat;

impl StorageFormat for CsvFormat {
    fn name(&self) -> &'static str {
        FORMAT_NAME
    }

    fn detect(&self, head: &[u8]) -> bool {
        head.strip_prefix(BOM).unwrap_or(head).starts_with(MAGIC)
    }

    fn write(&self, meta: &ImageMeta, catalog: &Catalog, out: &mut dyn Write) -> Result<()> {
        write::write_image(meta, catalog, out)
    }

    fn read(&self, input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
        read::read_image(input)
    }

    fn read_meta(&self, input: &mut dyn Read) -> Result<ImageMeta> {
        read::read_meta(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_accepts_both_first_lines_and_a_bom() {
        assert!(CsvFormat.detect(b"# PhantomDB Database File\n"));
        assert!(CsvFormat.detect(b"# PhantomDB Database Snapshot\r\n"));
        assert!(CsvFormat.detect(b"\xEF\xBB\xBF# PhantomDB Database File\n"));
        assert!(!CsvFormat.detect(b"PHDBIMG\0"));
        assert!(!CsvFormat.detect(b""));
    }

    #[test]
    fn only_version_1_is_supported() {
        assert!(matches!(FormatVersion::try_from(1), Ok(FormatVersion::V1)));
        assert!(matches!(
            FormatVersion::try_from(2),
            Err(Error::UnsupportedVersion { found: 2, .. })
        ));
        assert_eq!(FormatVersion::CURRENT.number(), 1);
        assert!(FormatVersion::V1.has_checksum());
        assert!(!FormatVersion::Legacy.has_checksum());
    }
}
