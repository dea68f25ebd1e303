//! Writing a CSV image: header, one block per table in name order, checksum line.
//!
//! Everything is formatted into one reused buffer that is checksummed and handed to the output
//! whenever it passes [`CHUNK`] bytes, so memory stays bounded whatever the catalog's size, and
//! the output sees few, large writes (callers need not wrap it in a `BufWriter`).

use std::io::Write;

use super::fields::{write_text, write_u64, write_value};
use super::{
    CHECKSUM_ALGORITHM, COLUMNS, DATA, FIRST_LINE_DATABASE, FIRST_LINE_SNAPSHOT, FormatVersion,
    KEY_CHECKSUM, KEY_CONSTRAINTS, KEY_DATABASE, KEY_FORMAT, KEY_GENERATED, KEY_LSN,
    KEY_NEXT_ROW_ID, KEY_ROW_ID, KEY_ROWS, KEY_TIMESTAMP, KEY_TYPE, KEY_VERSION, NOT_NULL,
    PRIMARY_KEY, ROW, TABLE_CLOSE, TABLE_OPEN, TIME_FORMAT, UNKNOWN_TIME,
};
use crate::{Catalog, ImageKind, ImageMeta, Result, Table, validate_name};

/// Buffered bytes are checksummed and written out once the buffer passes this size.
const CHUNK: usize = 64 * 1024;

/// The output, a pending buffer and the CRC-32C of every byte handed to the output so far.
struct Out<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
    crc: u32,
}

impl Out<'_> {
    /// Writes the buffer out if it is large enough.
    fn maybe_flush(&mut self) -> Result<()> {
        if self.buf.len() >= CHUNK {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Checksums the buffer and writes it out.
    fn flush_buf(&mut self) -> Result<()> {
        self.crc = crc32c::crc32c_append(self.crc, &self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    /// Appends `key`, a space, `value` and a line feed.
    fn key_line(&mut self, key: &str, value: &str) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(value.as_bytes());
        self.buf.push(b'\n');
    }

    /// Appends `key`, a space, the number and a line feed.
    fn number_line(&mut self, key: &str, n: u64) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b' ');
        write_u64(&mut self.buf, n);
        self.buf.push(b'\n');
    }
}

// Layout: header lines, blank line, one block per table (`[TABLE:]`, our table lines,
// `COLUMNS:`, `DATA:`, rows, blank line), checksum line; see the module doc of `backends::csv`
// and `docs/formats/csv.md`.

/// Writes `catalog` as a version-1 CSV image described by `meta`.
pub(super) fn write_image(meta: &ImageMeta, catalog: &Catalog, out: &mut dyn Write) -> Result<()> {
    validate_name(&meta.database)?;
    let mut w = Out {
        out,
        buf: Vec::with_capacity(CHUNK + 4096),
        crc: 0,
    };

    // Header: the spec's five lines, then ours, then a blank line.
    let time = match meta.created {
        Some(t) => t.format(TIME_FORMAT).to_string(),
        None => UNKNOWN_TIME.to_owned(),
    };
    let (first_line, time_key) = match meta.kind {
        ImageKind::Database => (FIRST_LINE_DATABASE, KEY_GENERATED),
        ImageKind::Snapshot => (FIRST_LINE_SNAPSHOT, KEY_TIMESTAMP),
    };
    w.buf.extend_from_slice(first_line.as_bytes());
    w.buf.push(b'\n');
    w.key_line(KEY_DATABASE, &meta.database);
    w.key_line(KEY_FORMAT, "CSV");
    w.key_line(time_key, &time);
    w.key_line(KEY_TYPE, "Snapshot");
    w.number_line(KEY_VERSION, u64::from(FormatVersion::CURRENT.number()));
    w.number_line(KEY_LSN, meta.lsn);
    w.buf.push(b'\n');

    for table in catalog.tables() {
        write_table(&mut w, table)?;
    }

    w.flush_buf()?;
    let checksum = format!("{CHECKSUM_ALGORITHM}{:08x}", w.crc);
    w.key_line(KEY_CHECKSUM, &checksum);
    // The checksum line is not part of the bytes it covers: write it without updating the CRC.
    w.out.write_all(&w.buf)?;
    w.out.flush()?;
    tracing::debug!(
        database = %meta.database,
        tables = catalog.len(),
        rows = catalog.row_count(),
        lsn = meta.lsn,
        "wrote CSV image"
    );
    Ok(())
}

/// Writes one table block, ending with its blank line.
fn write_table(w: &mut Out<'_>, table: &Table) -> Result<()> {
    let columns = table.schema().columns();

    w.buf.extend_from_slice(TABLE_OPEN.as_bytes());
    w.buf.extend_from_slice(table.name().as_bytes());
    w.buf.extend_from_slice(TABLE_CLOSE.as_bytes());
    w.buf.push(b'\n');
    w.number_line(KEY_ROWS, table.len() as u64);
    w.number_line(KEY_NEXT_ROW_ID, table.next_row_id());
    let mut any_constraint = false;
    for c in columns.iter().filter(|c| c.not_null || c.primary_key) {
        if any_constraint {
            w.buf.push(b',');
        } else {
            w.buf.extend_from_slice(KEY_CONSTRAINTS.as_bytes());
            w.buf.push(b' ');
            any_constraint = true;
        }
        w.buf.extend_from_slice(c.name.as_bytes());
        w.buf.push(b'=');
        let constraint = if c.primary_key { PRIMARY_KEY } else { NOT_NULL };
        w.buf.extend_from_slice(constraint.as_bytes());
    }
    if any_constraint {
        w.buf.push(b'\n');
    }

    w.buf.extend_from_slice(COLUMNS.as_bytes());
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            w.buf.push(b',');
        }
        w.buf.extend_from_slice(c.name.as_bytes());
        w.buf.push(b':');
        w.buf.extend_from_slice(c.ty.name().as_bytes());
    }
    w.buf.push(b'\n');

    if !table.is_empty() {
        w.buf.extend_from_slice(DATA.as_bytes());
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                w.buf.push(b',');
            }
            write_text(&mut w.buf, &c.name);
        }
        w.buf.push(b'\n');
    }

    // Row ids are implicit while they are consecutive from 1; a `# Row-Id:` line restarts the
    // count before a row whose id is not the previous id + 1.
    let mut expected = Some(1u64);
    for (id, row) in table.rows() {
        if expected != Some(id) {
            w.number_line(KEY_ROW_ID, id);
        }
        w.buf.extend_from_slice(ROW);
        for (i, value) in row.iter().enumerate() {
            if i > 0 {
                w.buf.push(b',');
            }
            write_value(&mut w.buf, value);
        }
        w.buf.push(b'\n');
        expected = id.checked_add(1);
        w.maybe_flush()?;
    }
    w.buf.push(b'\n');
    w.maybe_flush()
}
