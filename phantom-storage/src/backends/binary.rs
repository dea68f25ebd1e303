//! The binary image format: a fixed little-endian header, then checksummed blocks of postcard
//! payloads (table definitions and batches of rows), then an end block with totals.
//!
//! The byte layout is specified in `docs/formats/binary.md`; this file follows it. Writing and
//! reading both stream: the writer encodes rows into one reused block buffer, the reader reads
//! one block at a time into one reused buffer. [`StorageFormat::read`] runs as a two-stage
//! pipeline: the calling thread reads, checks and decodes blocks, each row straight into its
//! shared allocation (`decode_row_shared`, the crate's one `unsafe` function), and a builder
//! thread inserts the decoded rows into the catalog (see `read_pipelined`).

use std::collections::BTreeSet;
use std::io::{self, Read, Write};

use chrono::{DateTime, Utc};
use postcard::ser_flavors::Flavor;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::codec::{decode_row_into, decode_row_shared, encode_row, le, len_u64};
use crate::error::{Error, Location, Result};
use crate::format::{ImageKind, ImageMeta, StorageFormat};
use crate::name::validate_name;
use crate::schema::{Column, Schema};
use crate::table::{Row, RowId, Table};
use crate::value::Value;

// Layout (all fixed-width integers little-endian, CRCs are CRC-32C):
//
// header:
//   0   8  magic "PHDBIMG\0"
//   8   4  format version (u32) = 1
//   12  1  image kind: 0 database, 1 snapshot
//   13  1  flags: bit 0 = creation time present
//   14  2  N = database name length (u16)
//   16  8  LSN (u64)
//   24  8  created: seconds since the Unix epoch (i64), 0 when absent
//   32  4  created: nanoseconds (u32), 0 when absent
//   36  N  database name, UTF-8
//   36+N 4 CRC-32C of bytes 0..36+N
//
// block (repeated until the end block):
//   +0  4  L = payload length (u32), ≤ MAX_BLOCK_PAYLOAD
//   +4  1  block kind (BLOCK_*)
//   +5  L  payload
//   +5+L 4 CRC-32C of bytes +0..+5+L (length, kind, payload)
//
// grammar: header (table-begin rows* table-end)* end EOF

/// The 8 bytes every binary image starts with.
pub const MAGIC: [u8; 8] = *b"PHDBIMG\0";

const OFF_VERSION: usize = 8;
const OFF_KIND: usize = 12;
const OFF_FLAGS: usize = 13;
const OFF_NAME_LEN: usize = 14;
const OFF_LSN: usize = 16;
const OFF_CREATED_SECS: usize = 24;
const OFF_CREATED_NANOS: usize = 32;
/// Length of the fixed part of the header; the database name follows it.
const HEADER_FIXED_LEN: usize = 36;
const CRC_LEN: usize = 4;

const FLAG_CREATED: u8 = 0b0000_0001;
const KIND_DATABASE: u8 = 0;
const KIND_SNAPSHOT: u8 = 1;

/// Length of a block's framing before the payload: u32 length and u8 kind.
const BLOCK_HEAD_LEN: usize = 5;
const BLOCK_TABLE_BEGIN: u8 = 1;
const BLOCK_ROWS: u8 = 2;
const BLOCK_TABLE_END: u8 = 3;
const BLOCK_END: u8 = 4;
/// Payload of the end block: u64 table count, u64 row count.
const END_PAYLOAD_LEN: usize = 16;
/// Payload of a rows block starts with the u32 row count.
const ROWS_COUNT_LEN: usize = 4;

/// The largest block payload a reader accepts (and so the largest row a writer can write).
/// Checked before allocating, so a corrupt length cannot exhaust memory.
pub const MAX_BLOCK_PAYLOAD: usize = 64 << 20;

/// The writer closes a rows block once its payload reaches this size.
pub const ROWS_BLOCK_TARGET: usize = 64 << 10;

const FORMAT_NAME: &str = "binary";

/// Versions of the binary image format this build knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum FormatVersion {
    /// The first version: header, checksummed blocks, end block with totals.
    V1 = 1,
}

impl FormatVersion {
    /// The version this build writes.
    pub const CURRENT: FormatVersion = FormatVersion::V1;

    /// The number stored in the file.
    pub fn number(self) -> u32 {
        self as u32
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

/// What [`BinaryFormat::scan`] found in a valid image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSummary {
    /// The header.
    pub meta: ImageMeta,
    /// Number of tables.
    pub tables: u64,
    /// Number of rows over all tables.
    pub rows: u64,
    /// Length of the image in bytes.
    pub bytes: u64,
}

/// Magic, version, postcard payloads in checksummed blocks, end marker. See
/// `docs/formats/binary.md`.
///
/// ```
/// use phantom_storage::{BinaryFormat, Catalog, Column, ColumnType, ImageKind, ImageMeta,
///     Schema, StorageFormat, Value};
///
/// let mut catalog = Catalog::new();
/// let schema = Schema::new("t", vec![Column::new("id", ColumnType::Int).primary_key()])?;
/// catalog.create_table("t", schema)?;
/// catalog.table_mut("t")?.insert(vec![Value::Int(7)])?;
/// let meta = ImageMeta { database: "db".into(), lsn: 42, created: None, kind: ImageKind::Snapshot };
///
/// let mut bytes = Vec::new();
/// BinaryFormat.write(&meta, &catalog, &mut bytes)?;
/// assert!(BinaryFormat.detect(&bytes));
/// assert_eq!(BinaryFormat.read(&mut bytes.as_slice())?, (meta, catalog));
/// # Ok::<(), phantom_storage::Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct BinaryFormat;

impl BinaryFormat {
    /// Reads and verifies a whole image without building a catalog: every check of
    /// [`StorageFormat::read`] (checksums, structure, counts, schemas, row types and NOT NULL)
    /// except the uniqueness of row ids and primary keys, which needs the table.
    pub fn scan(&self, input: &mut dyn Read) -> Result<ImageSummary> {
        let mut reader = Reader::new(input);
        let meta = reader.header()?;
        let mut sink = ScanSink::default();
        let (tables, rows) = reader.body(&mut sink)?;
        Ok(ImageSummary {
            meta,
            tables,
            rows,
            bytes: reader.pos,
        })
    }
}

impl StorageFormat for BinaryFormat {
    fn name(&self) -> &'static str {
        FORMAT_NAME
    }

    fn detect(&self, head: &[u8]) -> bool {
        head.starts_with(&MAGIC)
    }

    fn write(&self, meta: &ImageMeta, catalog: &Catalog, out: &mut dyn Write) -> Result<()> {
        let mut w = BlockWriter {
            out,
            buf: Vec::with_capacity(ROWS_BLOCK_TARGET * 2),
            written: 0,
        };
        w.header(meta)?;
        let mut total_rows: u64 = 0;
        for table in catalog.tables() {
            w.table(table)?;
            total_rows += len_u64(table.len());
        }
        w.start(BLOCK_END);
        w.buf
            .extend_from_slice(&len_u64(catalog.len()).to_le_bytes());
        w.buf.extend_from_slice(&total_rows.to_le_bytes());
        w.finish()?;
        w.out.flush()?;
        tracing::debug!(
            database = %meta.database,
            lsn = meta.lsn,
            tables = catalog.len(),
            rows = total_rows,
            bytes = w.written,
            "wrote binary image"
        );
        Ok(())
    }

    fn read(&self, input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
        let mut reader = Reader::new(input);
        let meta = reader.header()?;
        let (catalog, tables, rows) = read_pipelined(&mut reader)?;
        tracing::debug!(
            database = %meta.database,
            lsn = meta.lsn,
            tables,
            rows,
            bytes = reader.pos,
            "read binary image"
        );
        Ok((meta, catalog))
    }

    fn read_meta(&self, input: &mut dyn Read) -> Result<ImageMeta> {
        Reader::new(input).header()
    }
}

// ----- writing -----

/// A postcard flavor that appends to a borrowed, reused `Vec`.
struct AppendVec<'a>(&'a mut Vec<u8>);

impl Flavor for AppendVec<'_> {
    type Output = ();

    #[inline]
    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    #[inline]
    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends the postcard encoding of `value` to `buf`.
fn encode<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) -> Result<()> {
    postcard::serialize_with_flavor(value, AppendVec(buf))
        .map_err(|e| Error::Io(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// Builds one block at a time in a reused buffer and writes it with one `write_all`.
struct BlockWriter<'a> {
    out: &'a mut dyn Write,
    /// The block being built: length placeholder, kind, payload (CRC appended by `finish`).
    buf: Vec<u8>,
    written: u64,
}

impl BlockWriter<'_> {
    fn header(&mut self, meta: &ImageMeta) -> Result<()> {
        let name = meta.database.as_bytes();
        let name_len = u16::try_from(name.len()).map_err(|_| Error::InvalidName {
            name: meta.database.clone(),
            reason: "a database name in a binary image is at most 65535 bytes",
        })?;
        let (flags, secs, nanos) = match meta.created {
            Some(t) => (FLAG_CREATED, t.timestamp(), t.timestamp_subsec_nanos()),
            None => (0, 0, 0),
        };
        let mut fixed = [0u8; HEADER_FIXED_LEN];
        fixed[..OFF_VERSION].copy_from_slice(&MAGIC);
        fixed[OFF_VERSION..OFF_KIND]
            .copy_from_slice(&FormatVersion::CURRENT.number().to_le_bytes());
        fixed[OFF_KIND] = match meta.kind {
            ImageKind::Database => KIND_DATABASE,
            ImageKind::Snapshot => KIND_SNAPSHOT,
        };
        fixed[OFF_FLAGS] = flags;
        fixed[OFF_NAME_LEN..OFF_LSN].copy_from_slice(&name_len.to_le_bytes());
        fixed[OFF_LSN..OFF_CREATED_SECS].copy_from_slice(&meta.lsn.to_le_bytes());
        fixed[OFF_CREATED_SECS..OFF_CREATED_NANOS].copy_from_slice(&secs.to_le_bytes());
        fixed[OFF_CREATED_NANOS..HEADER_FIXED_LEN].copy_from_slice(&nanos.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&fixed), name);

        self.buf.clear();
        self.buf.extend_from_slice(&fixed);
        self.buf.extend_from_slice(name);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.out.write_all(&self.buf)?;
        self.written += len_u64(self.buf.len());
        Ok(())
    }

    /// Starts a block of `kind` in the buffer.
    fn start(&mut self, kind: u8) {
        self.buf.clear();
        self.buf.extend_from_slice(&[0, 0, 0, 0, kind]);
    }

    fn payload_len(&self) -> usize {
        self.buf.len() - BLOCK_HEAD_LEN
    }

    /// Fills in the length, appends the CRC and writes the block.
    fn finish(&mut self) -> Result<()> {
        let len = u32::try_from(self.payload_len())
            .ok()
            .filter(|&l| l as usize <= MAX_BLOCK_PAYLOAD)
            .ok_or_else(|| {
                Error::Io(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "binary image block over the size limit",
                ))
            })?;
        self.buf[..4].copy_from_slice(&len.to_le_bytes());
        let crc = crc32c::crc32c(&self.buf);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.out.write_all(&self.buf)?;
        self.written += len_u64(self.buf.len());
        Ok(())
    }

    fn start_rows(&mut self) {
        self.start(BLOCK_ROWS);
        self.buf.extend_from_slice(&[0; ROWS_COUNT_LEN]);
    }

    fn finish_rows(&mut self, count: u32) -> Result<()> {
        self.buf[BLOCK_HEAD_LEN..BLOCK_HEAD_LEN + ROWS_COUNT_LEN]
            .copy_from_slice(&count.to_le_bytes());
        self.finish()
    }

    fn table(&mut self, table: &Table) -> Result<()> {
        self.start(BLOCK_TABLE_BEGIN);
        let definition: (&str, &[Column], u64, u64) = (
            table.name(),
            table.schema().columns(),
            table.next_row_id(),
            len_u64(table.len()),
        );
        encode(&definition, &mut self.buf)?;
        self.finish()?;

        self.start_rows();
        let mut count: u32 = 0;
        for (id, row) in table.rows() {
            let mark = self.buf.len();
            encode_row(id, row, &mut self.buf);
            if self.payload_len() > MAX_BLOCK_PAYLOAD {
                let size = len_u64(self.buf.len() - mark);
                self.buf.truncate(mark);
                if count == 0 {
                    return Err(row_too_large(table, id, size));
                }
                self.finish_rows(count)?;
                self.start_rows();
                count = 0;
                encode_row(id, row, &mut self.buf);
                if self.payload_len() > MAX_BLOCK_PAYLOAD {
                    return Err(row_too_large(table, id, size));
                }
            }
            count += 1;
            if self.payload_len() >= ROWS_BLOCK_TARGET {
                self.finish_rows(count)?;
                self.start_rows();
                count = 0;
            }
        }
        if count > 0 {
            self.finish_rows(count)?;
        }

        self.start(BLOCK_TABLE_END);
        self.finish()
    }
}

fn row_too_large(table: &Table, row_id: RowId, size: u64) -> Error {
    Error::RowTooLarge {
        format: FORMAT_NAME,
        table: table.name().to_owned(),
        row_id,
        size,
        max: len_u64(MAX_BLOCK_PAYLOAD),
    }
}

// ----- reading -----

fn offset(pos: u64) -> Location {
    Location::Offset(pos)
}

fn malformed(pos: u64, reason: impl Into<String>) -> Error {
    Error::Malformed {
        location: offset(pos),
        reason: reason.into(),
    }
}

fn bad_definition(pos: u64, source: Error) -> Error {
    Error::BadDefinition {
        location: offset(pos),
        source: Box::new(source),
    }
}

/// Reads from the input while counting the position, so every error names its byte offset.
struct Reader<'a> {
    input: &'a mut dyn Read,
    /// Offset of the next byte to read.
    pos: u64,
    /// The current block's payload followed by its CRC (reused).
    block: Vec<u8>,
}

/// What the body reader hands each row and table to: a catalog under construction, or only
/// checks.
trait Sink {
    /// `true` when the sink keeps the rows: the reader then decodes each row straight into its
    /// shared form and hands it to [`Sink::row`]. Otherwise it decodes into one reused scratch
    /// buffer, hands that to [`Sink::check`] and allocates nothing per row.
    const KEEPS_ROWS: bool;
    fn begin_table(&mut self, name: String, schema: Schema);
    /// One decoded row the sink need not keep.
    fn check(&mut self, id: RowId, values: &[Value], at: u64) -> Result<()>;
    /// One decoded row to keep.
    fn row(&mut self, id: RowId, row: Row, at: u64) -> Result<()>;
    fn end_table(&mut self, next_row_id: RowId, at: u64) -> Result<()>;
}

#[derive(Default)]
struct CatalogSink {
    catalog: Catalog,
    table: Option<Table>,
}

impl CatalogSink {
    /// The table being built (a row at `at` needs one).
    fn table_at(&mut self, at: u64) -> Result<&mut Table> {
        self.table
            .as_mut()
            .ok_or_else(|| malformed(at, "row outside a table"))
    }
}

impl Sink for CatalogSink {
    const KEEPS_ROWS: bool = true;

    fn begin_table(&mut self, name: String, schema: Schema) {
        self.table = Some(Table::new(name, schema));
    }

    fn check(&mut self, id: RowId, values: &[Value], at: u64) -> Result<()> {
        self.row(id, values.iter().cloned().collect(), at)
    }

    fn row(&mut self, id: RowId, row: Row, at: u64) -> Result<()> {
        self.table_at(at)?
            .insert_row(id, row)
            .map_err(|e| e.at(offset(at)))
    }

    fn end_table(&mut self, next_row_id: RowId, at: u64) -> Result<()> {
        let mut table = self
            .table
            .take()
            .ok_or_else(|| malformed(at, "table end outside a table"))?;
        table.set_next_row_id(next_row_id);
        self.catalog
            .add_table(table)
            .map_err(|e| bad_definition(at, e))
    }
}

/// Rows handed from the decoding thread to the building thread at a time. Each hand-off may
/// wake a sleeping thread, which costs tens of µs on a VM: 1,024-row batches measured
/// 148–167 ms for 1M rows, 4,096-row batches 143 ms; once decoding got cheaper (rows decoded
/// in place), 16,384-row batches opened a 1M-row snapshot in a median 0.202 s against 0.227 s
/// for 4,096 (`docs/performance.md`). In flight: `PIPE_DEPTH` batches of 32 bytes a row.
const PIPE_BATCH: usize = 16384;
/// Batches in flight between the two threads. The rows in flight are the catalog's own rows
/// on their way to it; what the pipeline adds is the batch vectors (24 bytes a row).
const PIPE_DEPTH: usize = 4;

/// What the decoding thread sends the building thread, in file order.
enum Event {
    Begin(String, Schema),
    /// Rows in their shared form, each with its offset. The decoding thread allocates the
    /// rows, so the builder never frees memory the other thread's allocator arena owns (glibc
    /// serialises such frees with that arena's allocations: measured, it made the pipeline
    /// slower than one thread), and every row lands in the caller's arena (a fresh thread's
    /// arena grows one page per `mprotect`). The builder checks them against the schema: it
    /// is the thread with time to spare. The emptied vector comes back for a later batch.
    Rows(Vec<(RowId, Row, u64)>),
    End(RowId, u64),
}

/// Reads the body with decoding (this thread: I/O, CRCs, structure, row decoding) and
/// building (a scoped thread: schema checks and inserts into the tables) overlapped; on two
/// cores this takes about the longer of the two instead of their sum (`docs/performance.md`).
///
/// Errors come out exactly as in a sequential read: the builder only ever sees rows that
/// precede the point where decoding stopped, so if it fails, its error is the earlier one in
/// the file and wins; otherwise a decoding error is returned. If the builder thread cannot be
/// started, the read runs sequentially on this thread.
fn read_pipelined(reader: &mut Reader<'_>) -> Result<(Catalog, u64, u64)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Event>(PIPE_DEPTH);
    // Emptied batch vectors, back to the decoding thread: a 16,384-row vector is 512 KiB,
    // which glibc would map and unmap (and fault in) afresh for every batch.
    let (back_tx, back_rx) =
        std::sync::mpsc::sync_channel::<Vec<(RowId, Row, u64)>>(PIPE_DEPTH + 2);
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("phantom-image-build".into())
            .spawn_scoped(scope, move || -> Result<Catalog> {
                let mut sink = CatalogSink::default();
                for event in rx {
                    match event {
                        Event::Begin(name, schema) => sink.begin_table(name, schema),
                        Event::Rows(mut rows) => {
                            for (id, row, at) in rows.drain(..) {
                                sink.row(id, row, at)?;
                            }
                            // A full queue (or a finished decoder) just drops it here.
                            let _ = back_tx.try_send(rows);
                        }
                        Event::End(next_row_id, at) => sink.end_table(next_row_id, at)?,
                    }
                }
                Ok(sink.catalog)
            });
        let builder = match spawned {
            Ok(builder) => builder,
            Err(e) => {
                tracing::debug!(error = %e, "no builder thread; reading the image sequentially");
                let mut sink = CatalogSink::default();
                let (tables, rows) = reader.body(&mut sink)?;
                return Ok((sink.catalog, tables, rows));
            }
        };
        let mut pipe = PipeSink {
            tx,
            back: back_rx,
            batch: Vec::with_capacity(PIPE_BATCH),
            closed: false,
        };
        let decoded = reader.body(&mut pipe);
        // Rows decoded before a decoding error still go to the builder: one of them may hold
        // an earlier error (a duplicate key), which must win.
        let flushed = pipe.flush();
        let decoded = decoded.and_then(|counts| flushed.map(|()| counts));
        drop(pipe);
        let built = builder
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (decoded, built) {
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e),
            (Ok((tables, rows)), Ok(catalog)) => Ok((catalog, tables, rows)),
        }
    })
}

/// The decoding side of [`read_pipelined`]: batches rows and sends them on.
struct PipeSink {
    tx: std::sync::mpsc::SyncSender<Event>,
    /// Batch vectors the builder has emptied.
    back: std::sync::mpsc::Receiver<Vec<(RowId, Row, u64)>>,
    batch: Vec<(RowId, Row, u64)>,
    /// The builder stopped (it failed; its error is the one reported).
    closed: bool,
}

impl PipeSink {
    fn send(&mut self, event: Event) -> Result<()> {
        if self.closed || self.tx.send(event).is_err() {
            self.closed = true;
            // Never reported: the builder's own error replaces it (see `read_pipelined`).
            return Err(malformed(0, "the image builder stopped"));
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let next = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(PIPE_BATCH));
        let rows = std::mem::replace(&mut self.batch, next);
        self.send(Event::Rows(rows))
    }
}

impl Sink for PipeSink {
    const KEEPS_ROWS: bool = true;

    fn begin_table(&mut self, name: String, schema: Schema) {
        // A failed send is seen by the next `row` or `end_table`.
        let _ = self.send(Event::Begin(name, schema));
    }

    fn check(&mut self, id: RowId, values: &[Value], at: u64) -> Result<()> {
        self.row(id, values.iter().cloned().collect(), at)
    }

    fn row(&mut self, id: RowId, row: Row, at: u64) -> Result<()> {
        self.batch.push((id, row, at));
        if self.batch.len() >= PIPE_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn end_table(&mut self, next_row_id: RowId, at: u64) -> Result<()> {
        self.flush()?;
        self.send(Event::End(next_row_id, at))
    }
}

#[derive(Default)]
struct ScanSink {
    table: Option<(String, Schema)>,
}

impl Sink for ScanSink {
    const KEEPS_ROWS: bool = false;

    fn begin_table(&mut self, name: String, schema: Schema) {
        self.table = Some((name, schema));
    }

    fn check(&mut self, _id: RowId, values: &[Value], at: u64) -> Result<()> {
        let (name, schema) = self
            .table
            .as_ref()
            .ok_or_else(|| malformed(at, "row outside a table"))?;
        schema.check_row(name, values).map_err(|e| e.at(offset(at)))
    }

    fn row(&mut self, id: RowId, row: Row, at: u64) -> Result<()> {
        self.check(id, &row, at)
    }

    fn end_table(&mut self, _next_row_id: RowId, _at: u64) -> Result<()> {
        self.table = None;
        Ok(())
    }
}

/// The table whose blocks are being read.
struct OpenTable {
    name: String,
    declared_rows: u64,
    next_row_id: RowId,
    rows: u64,
    /// The smallest next row id the rows read so far allow.
    min_next_row_id: RowId,
}

impl<'a> Reader<'a> {
    fn new(input: &'a mut dyn Read) -> Reader<'a> {
        Reader {
            input,
            pos: 0,
            block: Vec::new(),
        }
    }

    /// Reads until `buf` is full or the input ends; returns how many bytes were read.
    fn read_up_to(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while let Some(rest) = buf.get_mut(got..) {
            if rest.is_empty() {
                break;
            }
            match self.input.read(rest) {
                Ok(0) => break,
                Ok(n) => got += n.min(rest.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.pos += len_u64(got);
        Ok(got)
    }

    /// Fills `buf` or reports where the input ended.
    fn fill(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let got = self.read_up_to(buf)?;
        if got < buf.len() {
            return Err(Error::Truncated {
                location: offset(self.pos),
                reason: format!("the file ends inside {what}"),
            });
        }
        Ok(())
    }

    fn header(&mut self) -> Result<ImageMeta> {
        let mut fixed = [0u8; HEADER_FIXED_LEN];
        let (magic, rest) = fixed.split_at_mut(OFF_VERSION);
        let got = self.read_up_to(magic)?;
        if magic.get(..got) != MAGIC.get(..got) {
            return Err(Error::BadMagic {
                format: FORMAT_NAME,
            });
        }
        if got < MAGIC.len() {
            return Err(Error::Truncated {
                location: offset(self.pos),
                reason: "the file ends inside the magic bytes".into(),
            });
        }
        let (version, rest) = rest.split_at_mut(OFF_KIND - OFF_VERSION);
        self.fill(version, "the header")?;
        let version = FormatVersion::try_from(u32::from_le_bytes(le(version)))?;
        self.fill(rest, "the header")?;

        let name_len = usize::from(u16::from_le_bytes(le(&fixed[OFF_NAME_LEN..OFF_LSN])));
        let mut name = vec![0u8; name_len];
        self.fill(&mut name, "the header's database name")?;
        let mut stored = [0u8; CRC_LEN];
        self.fill(&mut stored, "the header checksum")?;
        let stored = u32::from_le_bytes(stored);
        let computed = crc32c::crc32c_append(crc32c::crc32c(&fixed), &name);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                location: offset(0),
                expected: stored,
                found: computed,
            });
        }

        let kind = match fixed[OFF_KIND] {
            KIND_DATABASE => ImageKind::Database,
            KIND_SNAPSHOT => ImageKind::Snapshot,
            other => {
                return Err(malformed(
                    OFF_KIND as u64,
                    format!("unknown image kind {other}"),
                ));
            }
        };
        let flags = fixed[OFF_FLAGS];
        if flags & !FLAG_CREATED != 0 {
            return Err(malformed(
                OFF_FLAGS as u64,
                format!("unknown header flags {flags:#04x}"),
            ));
        }
        let secs = i64::from_le_bytes(le(&fixed[OFF_CREATED_SECS..OFF_CREATED_NANOS]));
        let nanos = u32::from_le_bytes(le(&fixed[OFF_CREATED_NANOS..HEADER_FIXED_LEN]));
        let created = if flags & FLAG_CREATED != 0 {
            Some(DateTime::<Utc>::from_timestamp(secs, nanos).ok_or_else(|| {
                malformed(
                    OFF_CREATED_SECS as u64,
                    format!("creation time {secs} s + {nanos} ns is out of range"),
                )
            })?)
        } else if secs != 0 || nanos != 0 {
            return Err(malformed(
                OFF_CREATED_SECS as u64,
                "creation time set but flagged absent",
            ));
        } else {
            None
        };
        let database = String::from_utf8(name).map_err(|e| {
            malformed(
                (HEADER_FIXED_LEN + e.utf8_error().valid_up_to()) as u64,
                "database name is not UTF-8",
            )
        })?;
        tracing::trace!(?version, %database, "binary image header");
        Ok(ImageMeta {
            database,
            lsn: u64::from_le_bytes(le(&fixed[OFF_LSN..OFF_CREATED_SECS])),
            created,
            kind,
        })
    }

    /// Reads the next block into `self.block` (payload only, CRC verified) and returns its kind
    /// and its offset.
    fn next_block(&mut self) -> Result<(u8, u64)> {
        let start = self.pos;
        let mut head = [0u8; BLOCK_HEAD_LEN];
        let got = self.read_up_to(&mut head)?;
        if got < head.len() {
            return Err(Error::Truncated {
                location: offset(self.pos),
                reason: if got == 0 {
                    "the file ends between blocks, before the end block".into()
                } else {
                    "the file ends inside a block header".into()
                },
            });
        }
        let [l0, l1, l2, l3, kind] = head;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        if len > MAX_BLOCK_PAYLOAD {
            return Err(malformed(
                start,
                format!("block length {len} is over the limit of {MAX_BLOCK_PAYLOAD} bytes"),
            ));
        }
        let mut block = std::mem::take(&mut self.block);
        block.clear();
        block.resize(len + CRC_LEN, 0);
        let filled = self.fill(&mut block, "a block");
        self.block = block;
        filled?;
        let (payload, stored) = self.block.split_at(len);
        let stored = u32::from_le_bytes(le(stored));
        let computed = crc32c::crc32c_append(crc32c::crc32c(&head), payload);
        if stored != computed {
            return Err(Error::ChecksumMismatch {
                location: offset(start),
                expected: stored,
                found: computed,
            });
        }
        self.block.truncate(len);
        Ok((kind, start))
    }

    /// Reads every block up to and including the end block, and checks nothing follows.
    /// Returns the numbers of tables and rows.
    fn body(&mut self, sink: &mut impl Sink) -> Result<(u64, u64)> {
        let mut names = BTreeSet::new();
        let mut open: Option<OpenTable> = None;
        let mut tables: u64 = 0;
        let mut rows: u64 = 0;
        loop {
            let (kind, at) = self.next_block()?;
            let payload_at = at + BLOCK_HEAD_LEN as u64;
            match (kind, open.as_mut()) {
                (BLOCK_TABLE_BEGIN, None) => {
                    let (name, schema, next_row_id, declared_rows) = self.table_definition(at)?;
                    if !names.insert(name.clone()) {
                        return Err(bad_definition(at, Error::TableExists { name }));
                    }
                    sink.begin_table(name.clone(), schema);
                    open = Some(OpenTable {
                        name,
                        declared_rows,
                        next_row_id,
                        rows: 0,
                        min_next_row_id: 1,
                    });
                }
                (BLOCK_ROWS, Some(table)) => {
                    let block = std::mem::take(&mut self.block);
                    let result = rows_block(&block, payload_at, at, table, sink);
                    self.block = block;
                    result?;
                }
                (BLOCK_TABLE_END, Some(table)) => {
                    if !self.block.is_empty() {
                        return Err(malformed(at, "table-end block with a payload"));
                    }
                    if table.rows != table.declared_rows {
                        return Err(malformed(
                            at,
                            format!(
                                "table {} declares {} rows, its blocks hold {}",
                                table.name, table.declared_rows, table.rows
                            ),
                        ));
                    }
                    if table.next_row_id < table.min_next_row_id {
                        return Err(malformed(
                            at,
                            format!(
                                "table {} declares next row id {}, but it holds row id {}",
                                table.name,
                                table.next_row_id,
                                table.min_next_row_id - 1
                            ),
                        ));
                    }
                    sink.end_table(table.next_row_id, at)?;
                    tables += 1;
                    rows += table.rows;
                    open = None;
                }
                (BLOCK_END, None) => {
                    let totals: [u8; END_PAYLOAD_LEN] =
                        self.block.as_slice().try_into().map_err(|_| {
                            malformed(
                                at,
                                format!(
                                    "end block payload is {} bytes, expected {END_PAYLOAD_LEN}",
                                    self.block.len()
                                ),
                            )
                        })?;
                    let (t, r) = totals.split_at(8);
                    let (t, r) = (u64::from_le_bytes(le(t)), u64::from_le_bytes(le(r)));
                    if (t, r) != (tables, rows) {
                        return Err(malformed(
                            at,
                            format!(
                                "end block says {t} tables and {r} rows, the file holds {tables} and {rows}"
                            ),
                        ));
                    }
                    let mut extra = [0u8; 1];
                    if self.read_up_to(&mut extra)? != 0 {
                        return Err(malformed(self.pos - 1, "bytes after the end block"));
                    }
                    return Ok((tables, rows));
                }
                (BLOCK_TABLE_BEGIN | BLOCK_END, Some(table)) => {
                    return Err(malformed(
                        at,
                        format!(
                            "block of kind {kind} inside table {} (missing table-end)",
                            table.name
                        ),
                    ));
                }
                (BLOCK_ROWS | BLOCK_TABLE_END, None) => {
                    return Err(malformed(
                        at,
                        format!("block of kind {kind} outside a table"),
                    ));
                }
                (other, _) => {
                    return Err(malformed(at, format!("unknown block kind {other}")));
                }
            }
        }
    }

    /// Decodes and validates a table-begin payload.
    fn table_definition(&self, at: u64) -> Result<(String, Schema, RowId, u64)> {
        let ((name, columns, next_row_id, declared_rows), rest) =
            postcard::take_from_bytes::<(String, Vec<Column>, RowId, u64)>(&self.block)
                .map_err(|e| malformed(at, format!("table-begin block does not decode: {e}")))?;
        if !rest.is_empty() {
            return Err(malformed(
                at,
                format!("{} trailing bytes in a table-begin block", rest.len()),
            ));
        }
        validate_name(&name).map_err(|e| bad_definition(at, e))?;
        let schema = Schema::new(&name, columns).map_err(|e| bad_definition(at, e))?;
        Ok((name, schema, next_row_id, declared_rows))
    }
}

/// Decodes the rows of one rows block and hands them to the sink.
fn rows_block<S: Sink>(
    payload: &[u8],
    payload_at: u64,
    block_at: u64,
    table: &mut OpenTable,
    sink: &mut S,
) -> Result<()> {
    let Some((count, mut rest)) = payload.split_first_chunk::<ROWS_COUNT_LEN>() else {
        return Err(malformed(block_at, "rows block without a row count"));
    };
    let count = u32::from_le_bytes(*count);
    let mut values = Vec::new();
    for _ in 0..count {
        let row_at = payload_at + len_u64(payload.len() - rest.len());
        let bad = |reason| malformed(row_at, format!("row does not decode: {reason}"));
        let (id, row, tail) = if S::KEEPS_ROWS {
            let (id, row, tail) = decode_row_shared(rest).map_err(bad)?;
            (id, Some(row), tail)
        } else {
            values.clear();
            let (id, tail) = decode_row_into(rest, &mut values).map_err(bad)?;
            (id, None, tail)
        };
        rest = tail;
        table.rows += 1;
        if table.rows > table.declared_rows {
            return Err(malformed(
                block_at,
                format!(
                    "table {} declares {} rows, its blocks hold more",
                    table.name, table.declared_rows
                ),
            ));
        }
        table.min_next_row_id = table.min_next_row_id.max(id.saturating_add(1));
        match row {
            Some(row) => sink.row(id, row, row_at)?,
            None => sink.check(id, &values, row_at)?,
        }
    }
    if !rest.is_empty() {
        return Err(malformed(
            payload_at + len_u64(payload.len() - rest.len()),
            format!("{} bytes after the last of {count} rows", rest.len()),
        ));
    }
    Ok(())
}
