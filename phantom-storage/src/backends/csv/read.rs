//! Reading a CSV image: a line reader with a running CRC, the header parser, and the state
//! machine over table blocks that inserts rows as they are parsed.
//!
//! Every error names a 1-based line ([`Location::Line`]). Nothing is skipped silently: the only
//! lines ignored are blank lines between tables and `#` comment lines this reader does not
//! know (the spec's readers skipped those too).

use std::io::{BufRead, BufReader, Read};

use chrono::{DateTime, NaiveDateTime, Utc};

use super::fields::{QuoteScan, RowError, parse_row};
use super::{
    BOM, CHECKSUM_ALGORITHM, COLUMNS, DATA, FIRST_LINE_DATABASE, FIRST_LINE_SNAPSHOT, FORMAT_NAME,
    FormatVersion, KEY_CHECKSUM, KEY_CONSTRAINTS, KEY_DATABASE, KEY_FORMAT, KEY_GENERATED, KEY_LSN,
    KEY_NEXT_ROW_ID, KEY_ROW_ID, KEY_ROWS, KEY_TIMESTAMP, KEY_TYPE, KEY_VERSION, NOT_NULL,
    PRIMARY_KEY, ROW, TABLE_CLOSE, TABLE_OPEN, TIME_FORMAT,
};
use crate::{
    Catalog, Column, ColumnType, Error, ImageKind, ImageMeta, Location, Result, RowId, Schema,
    Table, validate_name,
};

/// Read buffer size.
const BUFFER: usize = 64 * 1024;

/// A `Malformed` error at `line`.
fn malformed(line: u64, reason: impl Into<String>) -> Error {
    Error::Malformed {
        location: Location::Line(line),
        reason: reason.into(),
    }
}

/// A `BadDefinition` error at `line`.
fn bad_definition(line: u64, source: Error) -> Error {
    Error::BadDefinition {
        location: Location::Line(line),
        source: Box::new(source),
    }
}

/// A `Truncated` error at `line`.
fn truncated(line: u64, reason: impl Into<String>) -> Error {
    Error::Truncated {
        location: Location::Line(line),
        reason: reason.into(),
    }
}

/// Physical lines of the input, numbered, with a running CRC-32C of every byte read.
struct Lines<'a> {
    input: BufReader<&'a mut dyn Read>,
    /// The current line, with its line end (if it has one).
    raw: Vec<u8>,
    /// 1-based number of the current line; 0 before the first.
    number: u64,
    /// CRC-32C of every byte up to and including the current line.
    crc: u32,
    /// CRC-32C of every byte before the current line.
    crc_before: u32,
    /// Every line must end with a line feed (versioned files; a missing one means truncation).
    strict_line_ends: bool,
    /// The first line ends with CR LF: the file uses CR LF line breaks throughout.
    crlf: bool,
}

impl<'a> Lines<'a> {
    fn new(input: &'a mut dyn Read) -> Lines<'a> {
        Lines {
            input: BufReader::with_capacity(BUFFER, input),
            raw: Vec::with_capacity(256),
            number: 0,
            crc: 0,
            crc_before: 0,
            strict_line_ends: false,
            crlf: false,
        }
    }

    /// Reads the next line; `false` at the end of the input.
    fn next(&mut self) -> Result<bool> {
        self.raw.clear();
        if self.input.read_until(b'\n', &mut self.raw)? == 0 {
            return Ok(false);
        }
        self.number += 1;
        if self.number == 1 {
            self.crlf = self.raw.ends_with(b"\r\n");
        }
        self.crc_before = self.crc;
        self.crc = crc32c::crc32c_append(self.crc, &self.raw);
        if self.strict_line_ends && !self.has_line_end() {
            return Err(truncated(
                self.number,
                "the last line has no line feed (the file is cut short)",
            ));
        }
        Ok(true)
    }

    /// `true` when the current line ends with a line feed (only the last line may not).
    fn has_line_end(&self) -> bool {
        self.raw.ends_with(b"\n")
    }

    /// The current line without its line end (`\n`, or `\r\n`: a CR before the LF is part
    /// of the line end, never of a name or value).
    fn content(&self) -> &[u8] {
        let line = self.raw.strip_suffix(b"\n").unwrap_or(&self.raw);
        line.strip_suffix(b"\r").unwrap_or(line)
    }

    /// The current line's line end: `\n`, `\r\n` or nothing.
    fn line_end(&self) -> &[u8] {
        self.raw.get(self.content().len()..).unwrap_or(&[])
    }

    /// The current line without its line end, as UTF-8.
    fn text(&self) -> Result<&str> {
        std::str::from_utf8(self.content())
            .map_err(|e| malformed(self.number, format!("invalid UTF-8: {e}")))
    }
}

/// What the header says.
struct Header {
    meta: ImageMeta,
    version: FormatVersion,
}

/// Reads the header: the first line, then `#` lines up to the first other line (normally the
/// blank line before the first table) or the checksum line, which is left current in `lines`.
fn read_header(lines: &mut Lines<'_>) -> Result<Header> {
    if !lines.next()? {
        return Err(truncated(1, "the file is empty"));
    }
    let first = lines.content();
    let first = first.strip_prefix(BOM).unwrap_or(first);
    let kind = if first == FIRST_LINE_DATABASE.as_bytes() {
        ImageKind::Database
    } else if first == FIRST_LINE_SNAPSHOT.as_bytes() {
        ImageKind::Snapshot
    } else if !lines.has_line_end()
        && [FIRST_LINE_DATABASE, FIRST_LINE_SNAPSHOT]
            .iter()
            .any(|magic| magic.as_bytes().starts_with(first))
    {
        return Err(truncated(1, "the file ends inside its first line"));
    } else {
        return Err(Error::BadMagic {
            format: FORMAT_NAME,
        });
    };

    let inside_header = |n: u64| {
        truncated(
            n,
            "the file ends inside the header (a blank line must follow it)",
        )
    };
    if !lines.has_line_end() {
        return Err(inside_header(lines.number));
    }

    let mut database: Option<String> = None;
    let mut created: Option<Option<DateTime<Utc>>> = None;
    let mut version: Option<FormatVersion> = None;
    let mut lsn: Option<u64> = None;
    let mut format_seen = false;
    loop {
        if !lines.next()? || !lines.has_line_end() {
            return Err(inside_header(lines.number));
        }
        let n = lines.number;
        let text = lines.text()?;
        if !text.starts_with('#') || text.starts_with(KEY_CHECKSUM) {
            break;
        }
        let duplicate = |key: &str| malformed(n, format!("second `{key}` line in the header"));
        if let Some(v) = text.strip_prefix(KEY_DATABASE) {
            if database.is_some() {
                return Err(duplicate(KEY_DATABASE));
            }
            let name = v.trim();
            validate_name(name).map_err(|e| bad_definition(n, e))?;
            database = Some(name.to_owned());
        } else if let Some(v) = text.strip_prefix(KEY_FORMAT) {
            if format_seen {
                return Err(duplicate(KEY_FORMAT));
            }
            if !v.trim().eq_ignore_ascii_case("CSV") {
                return Err(malformed(
                    n,
                    format!("`{KEY_FORMAT}` says {:?}, expected CSV", v.trim()),
                ));
            }
            format_seen = true;
        } else if let Some(v) = text
            .strip_prefix(KEY_GENERATED)
            .or_else(|| text.strip_prefix(KEY_TIMESTAMP))
        {
            if created.is_some() {
                return Err(duplicate("# Generated:` / `# Timestamp:"));
            }
            created = Some(parse_time(v.trim()));
        } else if text.starts_with(KEY_TYPE) {
            // The original wrote `# Type: Snapshot` in main files too: it says nothing.
        } else if let Some(v) = text.strip_prefix(KEY_VERSION) {
            if version.is_some() {
                return Err(duplicate(KEY_VERSION));
            }
            let found: u32 = v
                .trim()
                .parse()
                .map_err(|_| malformed(n, format!("bad format version {:?}", v.trim())))?;
            let parsed = FormatVersion::try_from(found)?;
            lines.strict_line_ends = parsed.has_checksum();
            version = Some(parsed);
        } else if let Some(v) = text.strip_prefix(KEY_LSN) {
            if lsn.is_some() {
                return Err(duplicate(KEY_LSN));
            }
            lsn = Some(parse_number(n, KEY_LSN, v)?);
        }
        // Any other `#` line is a comment.
    }
    let Some(database) = database else {
        return Err(malformed(
            lines.number,
            format!("the header has no `{KEY_DATABASE}` line"),
        ));
    };
    Ok(Header {
        meta: ImageMeta {
            database,
            lsn: lsn.unwrap_or(0),
            created: created.flatten(),
            kind,
        },
        version: version.unwrap_or(FormatVersion::Legacy),
    })
}

/// Our own `# Generated:` form, with or without fractional seconds; anything else (the
/// original's compile-time dates such as `Nov 24 2026 15:50:06`, `unknown`) is no time.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(text, TIME_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// A decimal u64 after a `key`.
fn parse_number(line: u64, key: &str, value: &str) -> Result<u64> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            line,
            format!("`{key}` needs a number, found {v:?}"),
        ));
    }
    v.parse()
        .map_err(|_| malformed(line, format!("`{key}` number {v:?} is out of range")))
}

/// Reads only the header.
pub(super) fn read_meta(input: &mut dyn Read) -> Result<ImageMeta> {
    let mut lines = Lines::new(input);
    Ok(read_header(&mut lines)?.meta)
}

/// A value declared by one of our `#` lines, and the line it is on.
#[derive(Clone, Copy, Debug)]
struct Declared<T> {
    value: T,
    line: u64,
}

/// The table block being read.
struct Block {
    name: String,
    /// The `[TABLE:…]` line.
    line: u64,
    rows: Option<Declared<u64>>,
    next_row_id: Option<Declared<RowId>>,
    constraints: Option<Declared<Vec<(String, bool)>>>,
    /// Set by `COLUMNS:`.
    table: Option<Table>,
    data_seen: bool,
    /// Rows read so far.
    count: u64,
    /// Id of the last row read.
    last_id: Option<RowId>,
    /// Id the next row gets (`None` after `u64::MAX`).
    next_id: Option<RowId>,
    /// A `# Row-Id:` line not yet followed by its row.
    pending_row_id: Option<u64>,
}

impl Block {
    fn new(name: String, line: u64) -> Block {
        Block {
            name,
            line,
            rows: None,
            next_row_id: None,
            constraints: None,
            table: None,
            data_seen: false,
            count: 0,
            last_id: None,
            next_id: Some(1),
            pending_row_id: None,
        }
    }
}

/// Reads and verifies a whole image.
pub(super) fn read_image(input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
    let mut lines = Lines::new(input);
    let header = read_header(&mut lines)?;
    let mut reader = BodyReader {
        lines,
        version: header.version,
        catalog: Catalog::new(),
        block: None,
        record: Vec::with_capacity(256),
        scratch: String::new(),
    };
    reader.run()?;
    tracing::debug!(
        database = %header.meta.database,
        tables = reader.catalog.len(),
        rows = reader.catalog.row_count(),
        lsn = header.meta.lsn,
        version = header.version.number(),
        "read CSV image"
    );
    Ok((header.meta, reader.catalog))
}

/// The state of reading the table blocks.
struct BodyReader<'a> {
    lines: Lines<'a>,
    version: FormatVersion,
    catalog: Catalog,
    /// The open table block, if any.
    block: Option<Block>,
    /// The text of the current record (after `ROW:`), reused.
    record: Vec<u8>,
    /// Unescaping buffer for quoted fields, reused.
    scratch: String,
}

impl BodyReader<'_> {
    /// Processes the line left current by the header, then every line to the end.
    fn run(&mut self) -> Result<()> {
        loop {
            if self.lines.content().starts_with(ROW) {
                self.row()?;
            } else {
                let n = self.lines.number;
                let text = self.lines.text()?.to_owned();
                if let Some(rest) = text.strip_prefix(KEY_CHECKSUM) {
                    return self.checksum(n, rest);
                }
                self.line(n, &text)?;
            }
            if !self.lines.next()? {
                return self.end_of_file();
            }
        }
    }

    /// Any line but `ROW:` and the checksum line.
    fn line(&mut self, n: u64, text: &str) -> Result<()> {
        if text.is_empty() {
            return self.close_block(n);
        }
        if text.starts_with('#') {
            return self.comment(n, text);
        }
        if let Some(rest) = text.strip_prefix(TABLE_OPEN) {
            return self.open_block(n, rest);
        }
        if let Some(rest) = text.strip_prefix(COLUMNS) {
            return self.columns(n, rest);
        }
        if let Some(rest) = text.strip_prefix(DATA) {
            return self.data(n, rest);
        }
        let shown: String = text.chars().take(40).collect();
        Err(malformed(
            n,
            format!(
                "unexpected line {shown:?} (expected [TABLE:name], COLUMNS:, DATA:, ROW:, a # line or a blank line)"
            ),
        ))
    }

    /// `[TABLE:name]`.
    fn open_block(&mut self, n: u64, rest: &str) -> Result<()> {
        if let Some(open) = &self.block {
            return Err(malformed(
                n,
                format!(
                    "table block {} (line {}) is not closed by a blank line before the next [TABLE:]",
                    open.name, open.line
                ),
            ));
        }
        let Some(name) = rest.strip_suffix(TABLE_CLOSE) else {
            return Err(malformed(n, "[TABLE: line without its closing ]"));
        };
        validate_name(name).map_err(|e| bad_definition(n, e))?;
        if self.catalog.table(name).is_ok() {
            return Err(bad_definition(
                n,
                Error::TableExists {
                    name: name.to_owned(),
                },
            ));
        }
        self.block = Some(Block::new(name.to_owned(), n));
        Ok(())
    }

    /// A `#` line: one of our table lines, or a comment.
    fn comment(&mut self, n: u64, text: &str) -> Result<()> {
        let key = [KEY_ROWS, KEY_NEXT_ROW_ID, KEY_CONSTRAINTS, KEY_ROW_ID]
            .into_iter()
            .find(|k| text.starts_with(k));
        let Some(key) = key else {
            return Ok(());
        };
        let value = text.get(key.len()..).unwrap_or("");
        let Some(block) = &mut self.block else {
            return Err(malformed(n, format!("`{key}` outside a table block")));
        };
        let duplicate = || {
            malformed(
                n,
                format!("second `{key}` line in table block {}", block.name),
            )
        };
        if key == KEY_ROW_ID {
            if !block.data_seen {
                return Err(malformed(n, format!("`{key}` before the DATA: line")));
            }
            if let Some(previous) = block.pending_row_id {
                return Err(malformed(
                    n,
                    format!("`{key}` follows the one at line {previous} without a row between"),
                ));
            }
            let id = parse_number(n, key, value)?;
            if let Some(last) = block.last_id
                && id <= last
            {
                return Err(malformed(
                    n,
                    format!("row ids must increase: {id} follows {last}"),
                ));
            }
            block.next_id = Some(id);
            block.pending_row_id = Some(n);
            return Ok(());
        }
        if block.table.is_some() {
            return Err(malformed(
                n,
                format!("`{key}` must come before the COLUMNS: line"),
            ));
        }
        if key == KEY_ROWS {
            if block.rows.is_some() {
                return Err(duplicate());
            }
            block.rows = Some(Declared {
                value: parse_number(n, key, value)?,
                line: n,
            });
        } else if key == KEY_NEXT_ROW_ID {
            if block.next_row_id.is_some() {
                return Err(duplicate());
            }
            block.next_row_id = Some(Declared {
                value: parse_number(n, key, value)?,
                line: n,
            });
        } else {
            if block.constraints.is_some() {
                return Err(duplicate());
            }
            let mut list = Vec::new();
            for item in value.trim().split(',') {
                let parsed = item.split_once('=').and_then(|(col, c)| match c {
                    PRIMARY_KEY => Some((col.to_owned(), true)),
                    NOT_NULL => Some((col.to_owned(), false)),
                    _ => None,
                });
                let Some(parsed) = parsed else {
                    return Err(malformed(
                        n,
                        format!(
                            "bad constraint {item:?} (expected column={PRIMARY_KEY} or column={NOT_NULL})"
                        ),
                    ));
                };
                list.push(parsed);
            }
            block.constraints = Some(Declared {
                value: list,
                line: n,
            });
        }
        Ok(())
    }

    /// `COLUMNS:name:type,…`.
    fn columns(&mut self, n: u64, rest: &str) -> Result<()> {
        let Some(block) = &mut self.block else {
            return Err(malformed(n, "COLUMNS: outside a table block"));
        };
        if block.table.is_some() {
            return Err(malformed(
                n,
                format!("second COLUMNS: line in table block {}", block.name),
            ));
        }
        let mut columns = Vec::new();
        if !rest.is_empty() {
            for def in rest.split(',') {
                let Some((name, ty)) = def.split_once(':') else {
                    return Err(malformed(
                        n,
                        format!("column definition {def:?} is not name:type"),
                    ));
                };
                let ty = ColumnType::parse(ty).map_err(|e| bad_definition(n, e))?;
                columns.push(Column::new(name, ty));
            }
        }
        if let Some(constraints) = &block.constraints {
            for (name, primary_key) in &constraints.value {
                let Some(column) = columns.iter_mut().find(|c| &c.name == name) else {
                    return Err(bad_definition(
                        constraints.line,
                        Error::UnknownColumn {
                            table: block.name.clone(),
                            column: name.clone(),
                        },
                    ));
                };
                column.not_null = true;
                column.primary_key |= *primary_key;
            }
        }
        let schema = Schema::new(&block.name, columns).map_err(|e| bad_definition(n, e))?;
        block.table = Some(Table::new(block.name.clone(), schema));
        Ok(())
    }

    /// `DATA:name,…`: must list the columns of `COLUMNS:`, in order.
    fn data(&mut self, n: u64, rest: &str) -> Result<()> {
        let Some(block) = &mut self.block else {
            return Err(malformed(n, "DATA: outside a table block"));
        };
        let Some(table) = &block.table else {
            return Err(malformed(n, "DATA: before COLUMNS:"));
        };
        if block.data_seen {
            return Err(malformed(
                n,
                format!("second DATA: line in table block {}", block.name),
            ));
        }
        let columns = table.schema().columns();
        let matches = rest.split(',').count() == columns.len()
            && rest.split(',').zip(columns).all(|(d, c)| d == c.name);
        if !matches {
            let declared: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
            return Err(malformed(
                n,
                format!(
                    "DATA: lists {rest:?} but COLUMNS: declares {:?}",
                    declared.join(",")
                ),
            ));
        }
        block.data_seen = true;
        Ok(())
    }

    /// A `ROW:` line, and the lines after it while a quoted field goes on.
    fn row(&mut self) -> Result<()> {
        let start = self.lines.number;
        let Some(block) = &mut self.block else {
            return Err(malformed(start, "ROW: outside a table block"));
        };
        let Some(table) = &mut block.table else {
            return Err(malformed(start, "ROW: before COLUMNS:"));
        };
        if !block.data_seen {
            return Err(malformed(start, "ROW: before DATA:"));
        }

        // Fast path: a row without any `"` cannot continue on the next line; parse it in place.
        let in_place = !self
            .lines
            .content()
            .get(ROW.len()..)
            .unwrap_or(&[])
            .contains(&b'"');
        if !in_place {
            self.record.clear();
            self.record
                .extend_from_slice(self.lines.content().get(ROW.len()..).unwrap_or(&[]));
            let mut scan = QuoteScan::default();
            scan.feed(&self.record);
            while scan.in_quotes() {
                // The line break is inside a quoted value: it is data. In a CRLF file every
                // line break was written as CR LF (text-mode conversion), so it reads as LF.
                let line_end = self.lines.line_end();
                if self.lines.crlf && line_end == b"\r\n" {
                    self.record.push(b'\n');
                } else {
                    self.record.extend_from_slice(line_end);
                }
                if !self.lines.next()? {
                    return Err(truncated(
                        self.lines.number,
                        format!("the file ends inside a quoted field of the row at line {start}"),
                    ));
                }
                let from = self.record.len();
                self.record.extend_from_slice(self.lines.content());
                scan.feed(self.record.get(from..).unwrap_or(&[]));
            }
        }
        let bytes = if in_place {
            self.lines.content().get(ROW.len()..).unwrap_or(&[])
        } else {
            &self.record
        };
        let record = std::str::from_utf8(bytes)
            .map_err(|e| malformed(start, format!("invalid UTF-8 in row: {e}")))?;
        let columns = table.schema().columns();
        let mut values = Vec::with_capacity(columns.len());
        parse_row(record, columns, &mut self.scratch, &mut values).map_err(|e| match e {
            RowError::Syntax(reason) => malformed(start, reason),
            RowError::Arity(found) => Error::Arity {
                table: block.name.clone(),
                expected: columns.len(),
                found,
            }
            .at(Location::Line(start)),
            RowError::Value(e) => e.at(Location::Line(start)),
        })?;
        let Some(id) = block.next_id else {
            return Err(malformed(
                start,
                "row id out of range (the previous row had id 18446744073709551615)",
            ));
        };
        table
            .insert_with_id(id, values)
            .map_err(|e| e.at(Location::Line(start)))?;
        block.count += 1;
        block.last_id = Some(id);
        block.next_id = id.checked_add(1);
        block.pending_row_id = None;
        Ok(())
    }

    /// The blank line: ends the open table block (if any) after checking its declarations.
    fn close_block(&mut self, n: u64) -> Result<()> {
        let Some(block) = self.block.take() else {
            return Ok(());
        };
        let Some(mut table) = block.table else {
            return Err(malformed(
                n,
                format!(
                    "table block {} (line {}) ends without a COLUMNS: line",
                    block.name, block.line
                ),
            ));
        };
        if let Some(line) = block.pending_row_id {
            return Err(malformed(
                n,
                format!("the `{KEY_ROW_ID}` line at line {line} is not followed by a row"),
            ));
        }
        if let Some(rows) = block.rows
            && rows.value != block.count
        {
            return Err(malformed(
                n,
                format!(
                    "table {} declares {} rows (line {}) but has {}",
                    block.name, rows.value, rows.line, block.count
                ),
            ));
        }
        if let Some(next) = block.next_row_id {
            if next.value < table.next_row_id() {
                return Err(malformed(
                    next.line,
                    format!(
                        "next row id {} of table {} is not above its row ids (needs at least {})",
                        next.value,
                        block.name,
                        table.next_row_id()
                    ),
                ));
            }
            table.set_next_row_id(next.value);
        }
        self.catalog
            .add_table(table)
            .map_err(|e| bad_definition(block.line, e))
    }

    /// `# Checksum: crc32c=xxxxxxxx`: verifies it and that nothing follows it.
    fn checksum(&mut self, n: u64, rest: &str) -> Result<()> {
        if let Some(open) = &self.block {
            return Err(malformed(
                n,
                format!(
                    "table block {} (line {}) is not closed by a blank line before the checksum line",
                    open.name, open.line
                ),
            ));
        }
        let hex = rest.trim().strip_prefix(CHECKSUM_ALGORITHM).unwrap_or("");
        if hex.len() != 8 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(malformed(
                n,
                format!(
                    "bad checksum line: expected `{KEY_CHECKSUM} {CHECKSUM_ALGORITHM}` and 8 lower-case hex digits"
                ),
            ));
        }
        let expected = u32::from_str_radix(hex, 16)
            .map_err(|_| malformed(n, "bad checksum: not a hexadecimal number"))?;
        let found = self.lines.crc_before;
        if expected != found {
            return Err(Error::ChecksumMismatch {
                location: Location::Line(n),
                expected,
                found,
            });
        }
        if self.lines.next()? {
            return Err(malformed(
                self.lines.number,
                "data after the checksum line (it must be the last line)",
            ));
        }
        Ok(())
    }

    /// The input ended outside a checksum line.
    fn end_of_file(&mut self) -> Result<()> {
        let last = self.lines.number.max(1);
        if let Some(open) = &self.block {
            return Err(truncated(
                last,
                format!(
                    "the file ends inside table block {} (line {}) before the blank line that ends it",
                    open.name, open.line
                ),
            ));
        }
        if self.version.has_checksum() {
            return Err(Error::MissingChecksum {
                line: last,
                version: self.version.number(),
            });
        }
        Ok(())
    }
}
