//! Test helpers shared by the integration tests: a tiny line-based image format (so the store
//! can be tested independently of the shipped CSV and binary formats), a format that fails
//! half-way through writing, sample catalogs and fixed clocks.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use phantom_snapshot::SnapshotStore;
use phantom_storage::{
    Catalog, Column, ColumnType, Error, ImageKind, ImageMeta, Location, Result, Schema, StdFs,
    StorageFormat, Table, Value,
};

/// First line of every [`LineFormat`] file.
pub const LINES_MAGIC: &str = "PHLINES 1";

/// A test-only image format, one item per line:
///
/// ```text
/// PHLINES 1
/// db <name>
/// lsn <n>
/// created <rfc3339 | ->
/// kind <snapshot | database>
/// table <name> <next row id>
/// col <name> <type> <pk | nn | ->
/// row <id>\t<value>\t…        (\N is NULL; values hold no tab or newline)
/// end
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LineFormat;

fn malformed(line: u64, reason: impl Into<String>) -> Error {
    Error::Malformed {
        location: Location::Line(line),
        reason: reason.into(),
    }
}

fn read_lines(input: &mut dyn Read) -> impl Iterator<Item = (u64, Result<String>)> + '_ {
    BufReader::new(input)
        .lines()
        .enumerate()
        .map(|(i, l)| (i as u64 + 1, l.map_err(Error::from)))
}

fn parse_header(lines: &mut dyn Iterator<Item = (u64, Result<String>)>) -> Result<ImageMeta> {
    let mut field = |key: &str| -> Result<String> {
        match lines.next() {
            Some((n, line)) => {
                let line = line?;
                line.strip_prefix(key)
                    .and_then(|r| r.strip_prefix(' '))
                    .map(str::to_owned)
                    .ok_or_else(|| malformed(n, format!("expected `{key} …`, found {line:?}")))
            }
            None => Err(Error::Truncated {
                location: Location::Line(0),
                reason: format!("missing `{key}` line"),
            }),
        }
    };
    let magic = field("PHLINES")?;
    if magic != "1" {
        return Err(Error::BadMagic { format: "lines" });
    }
    let database = field("db")?;
    let lsn = field("lsn")?.parse().map_err(|_| malformed(3, "bad lsn"))?;
    let created = match field("created")?.as_str() {
        "-" => None,
        t => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| malformed(4, "bad created"))?
                .to_utc(),
        ),
    };
    let kind = match field("kind")?.as_str() {
        "snapshot" => ImageKind::Snapshot,
        "database" => ImageKind::Database,
        _ => return Err(malformed(5, "bad kind")),
    };
    Ok(ImageMeta {
        database,
        lsn,
        created,
        kind,
    })
}

impl StorageFormat for LineFormat {
    fn name(&self) -> &'static str {
        "lines"
    }

    fn detect(&self, head: &[u8]) -> bool {
        head.starts_with(LINES_MAGIC.as_bytes())
    }

    fn write(&self, meta: &ImageMeta, catalog: &Catalog, out: &mut dyn Write) -> Result<()> {
        writeln!(out, "{LINES_MAGIC}")?;
        writeln!(out, "db {}", meta.database)?;
        writeln!(out, "lsn {}", meta.lsn)?;
        match meta.created {
            Some(t) => writeln!(out, "created {}", t.to_rfc3339())?,
            None => writeln!(out, "created -")?,
        }
        let kind = match meta.kind {
            ImageKind::Snapshot => "snapshot",
            ImageKind::Database => "database",
        };
        writeln!(out, "kind {kind}")?;
        for table in catalog.tables() {
            writeln!(out, "table {} {}", table.name(), table.next_row_id())?;
            for c in table.schema().columns() {
                let flag = if c.primary_key {
                    "pk"
                } else if c.not_null {
                    "nn"
                } else {
                    "-"
                };
                writeln!(out, "col {} {} {flag}", c.name, c.ty)?;
            }
            for (id, row) in table.rows() {
                let cells: Vec<String> = row
                    .iter()
                    .map(|v| v.to_text().unwrap_or_else(|| "\\N".to_owned()))
                    .collect();
                writeln!(out, "row {id}\t{}", cells.join("\t"))?;
            }
        }
        writeln!(out, "end")?;
        Ok(())
    }

    fn read(&self, input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
        let mut lines = read_lines(input);
        let meta = parse_header(&mut lines)?;
        let mut catalog = Catalog::new();
        // The table being read: name, next row id, columns, rows (id, cells).
        type Pending = (String, u64, Vec<Column>, Vec<(u64, Vec<String>)>);
        let mut pending: Option<Pending> = None;
        let flush = |catalog: &mut Catalog, p: Option<Pending>| -> Result<()> {
            if let Some((name, next, cols, rows)) = p {
                let schema = Schema::new(&name, cols)?;
                let mut table = Table::new(name.clone(), schema.clone());
                for (id, cells) in rows {
                    let values = cells
                        .iter()
                        .zip(schema.columns())
                        .map(|(c, col)| {
                            if c == "\\N" {
                                Ok(Value::Null)
                            } else {
                                Value::parse(col.ty, c)
                            }
                        })
                        .collect::<Result<Vec<_>>>()?;
                    table.insert_with_id(id, values)?;
                }
                table.set_next_row_id(next);
                catalog.add_table(table)?;
            }
            Ok(())
        };
        let mut ended = false;
        let mut last = 5;
        for (n, line) in lines {
            last = n;
            let line = line?;
            if ended {
                return Err(malformed(n, "text after `end`"));
            }
            let (tag, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match tag {
                "end" => {
                    flush(&mut catalog, pending.take())?;
                    ended = true;
                }
                "table" => {
                    flush(&mut catalog, pending.take())?;
                    let (name, next) = rest
                        .split_once(' ')
                        .ok_or_else(|| malformed(n, "bad table line"))?;
                    let next = next.parse().map_err(|_| malformed(n, "bad next id"))?;
                    pending = Some((name.to_owned(), next, Vec::new(), Vec::new()));
                }
                "col" => {
                    let p = pending
                        .as_mut()
                        .ok_or_else(|| malformed(n, "col outside table"))?;
                    let parts: Vec<&str> = rest.split(' ').collect();
                    let [name, ty, flag] = parts.as_slice() else {
                        return Err(malformed(n, "bad col line"));
                    };
                    let mut col = Column::new(*name, ColumnType::parse(ty)?);
                    match *flag {
                        "pk" => col = col.primary_key(),
                        "nn" => col = col.not_null(),
                        _ => {}
                    }
                    p.2.push(col);
                }
                "row" => {
                    let p = pending
                        .as_mut()
                        .ok_or_else(|| malformed(n, "row outside table"))?;
                    let mut cells = rest.split('\t');
                    let id = cells
                        .next()
                        .and_then(|i| i.parse().ok())
                        .ok_or_else(|| malformed(n, "bad row id"))?;
                    p.3.push((id, cells.map(str::to_owned).collect()));
                }
                _ => return Err(malformed(n, format!("unknown line {line:?}"))),
            }
        }
        if !ended {
            return Err(Error::Truncated {
                location: Location::Line(last),
                reason: "missing `end`".into(),
            });
        }
        Ok((meta, catalog))
    }

    fn read_meta(&self, input: &mut dyn Read) -> Result<ImageMeta> {
        parse_header(&mut read_lines(input))
    }
}

/// A format that writes part of an image and then fails, like a disk filling up.
#[derive(Debug, Clone, Copy, Default)]
pub struct FailingFormat;

impl StorageFormat for FailingFormat {
    fn name(&self) -> &'static str {
        "failing"
    }
    fn detect(&self, _head: &[u8]) -> bool {
        false
    }
    fn write(&self, meta: &ImageMeta, catalog: &Catalog, out: &mut dyn Write) -> Result<()> {
        let mut buf = Vec::new();
        LineFormat.write(meta, catalog, &mut buf)?;
        out.write_all(buf.get(..buf.len() / 2).unwrap_or_default())?;
        Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "no space left on device (simulated)",
        )))
    }
    fn read(&self, _input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
        Err(Error::BadMagic { format: "failing" })
    }
    fn read_meta(&self, _input: &mut dyn Read) -> Result<ImageMeta> {
        Err(Error::BadMagic { format: "failing" })
    }
}

/// A catalog with one `users` table holding `rows` rows (a value with a comma and a quote
/// included, to exercise the real formats' quoting).
pub fn sample_catalog(rows: i64) -> Catalog {
    let mut catalog = Catalog::new();
    let schema = Schema::new(
        "users",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("name", ColumnType::String),
            Column::new("score", ColumnType::Float),
        ],
    )
    .expect("schema");
    catalog.create_table("users", schema).expect("table");
    let users = catalog.table_mut("users").expect("users");
    for i in 0..rows {
        let name = if i % 2 == 0 {
            format!("Doe, \"J\" {i}")
        } else {
            format!("user {i}")
        };
        let score = if i % 3 == 0 {
            Value::Null
        } else {
            Value::Float(i as f64 / 4.0)
        };
        users
            .insert(vec![Value::Int(i), name.into(), score])
            .expect("insert");
    }
    catalog
}

/// 2023-12-01 12:00:00 UTC plus `secs` seconds and `millis` milliseconds.
pub fn t(secs: i64, millis: i64) -> DateTime<Utc> {
    let base = Utc.from_utc_datetime(
        &NaiveDate::from_ymd_opt(2023, 12, 1)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("valid"),
    );
    base + chrono::Duration::seconds(secs) + chrono::Duration::milliseconds(millis)
}

/// A store on the real file system that also recognises [`LineFormat`].
pub fn store(dir: &Path, db: &str) -> SnapshotStore {
    SnapshotStore::new(Arc::new(StdFs), dir, db)
        .expect("store")
        .with_format(Arc::new(LineFormat))
}

/// Names of the files in `dir`, sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The bytes of a snapshot image of `db` at `lsn` in `format`.
pub fn encode(format: &dyn StorageFormat, db: &str, lsn: u64, catalog: &Catalog) -> Vec<u8> {
    let meta = ImageMeta {
        database: db.to_owned(),
        lsn,
        created: Some(t(0, 0)),
        kind: ImageKind::Snapshot,
    };
    let mut out = Vec::new();
    format.write(&meta, catalog, &mut out).expect("encode");
    out
}
