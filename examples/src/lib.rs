//! Custom backends for PhantomDB, written only against the public traits, and plugged into
//! `phantom_core::Database` through its builder (see `examples/custom_backend.rs`):
//!
//! - [`JsonLinesFormat`]: a [`StorageFormat`] of your own — one JSON document per line, with a
//!   magic/version header and a CRC-32C trailer, used for snapshots and the main file;
//! - [`AuditedWal`]: a [`LogFactory`] whose [`LogSink`] writes through phantom-wal's binary
//!   log (the durable one) and tees every record into a human-readable `<db>.audit` file in the
//!   spec's `[time] OPERATION {key: value}` format;
//! - [`OpsOrBytes`]: a [`SnapshotPolicy`] — snapshot after N operations or M bytes of log,
//!   whichever comes first, but never more often than every K operations.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::Arc;

use phantom_core::{LogFactory, OpenedLog, WalFactory};
use phantom_snapshot::{Decision, SnapshotPolicy, SnapshotStats};
use phantom_storage::{
    Catalog, Column, Error, FileSystem, ImageKind, ImageMeta, Location, Result, Schema,
    StorageFormat, Table, Value,
};
use phantom_wal::{LogEntry, LogSink, LogStats, Lsn, Record, SyncMode, TextAuditSink};
use serde::{Deserialize, Serialize};

// ----- a StorageFormat -----

/// Magic of the first line, so `detect` never mistakes another file for ours.
const JSONL_MAGIC: &str = "phantom-example-jsonl";

#[derive(Serialize, Deserialize)]
struct Header {
    magic: String,
    version: u32,
    database: String,
    lsn: u64,
    created_micros: Option<i64>,
    snapshot: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Table {
        name: String,
        columns: Vec<Column>,
        next_row_id: u64,
        rows: u64,
    },
    Row {
        id: u64,
        values: Vec<Value>,
    },
    End {
        crc32c: u32,
    },
}

/// One JSON document per line: a header, then per table a `table` line and its `row` lines,
/// then an `end` line with the CRC-32C of every byte before it.
#[derive(Clone, Copy, Debug, Default)]
pub struct JsonLinesFormat;

fn malformed(line: u64, reason: impl Into<String>) -> Error {
    Error::Malformed {
        location: Location::Line(line),
        reason: reason.into(),
    }
}

impl StorageFormat for JsonLinesFormat {
    fn name(&self) -> &'static str {
        "jsonl-example"
    }

    fn detect(&self, head: &[u8]) -> bool {
        head.starts_with(b"{\"magic\":\"phantom-example-jsonl\"")
    }

    fn write(&self, meta: &ImageMeta, catalog: &Catalog, out: &mut dyn Write) -> Result<()> {
        let mut crc = 0u32;
        let mut line = |bytes: Vec<u8>, out: &mut dyn Write| -> Result<()> {
            crc = crc32c::crc32c_append(crc, &bytes);
            crc = crc32c::crc32c_append(crc, b"\n");
            out.write_all(&bytes)?;
            out.write_all(b"\n")?;
            Ok(())
        };
        let json = |v: &dyn erased::Ser| v.to_json();
        line(
            json(&Header {
                magic: JSONL_MAGIC.into(),
                version: 1,
                database: meta.database.clone(),
                lsn: meta.lsn,
                created_micros: meta.created.map(|c| c.timestamp_micros()),
                snapshot: meta.kind == ImageKind::Snapshot,
            })?,
            out,
        )?;
        for table in catalog.tables() {
            line(
                json(&Line::Table {
                    name: table.name().to_owned(),
                    columns: table.schema().columns().to_vec(),
                    next_row_id: table.next_row_id(),
                    rows: table.len() as u64,
                })?,
                out,
            )?;
            for (id, row) in table.rows() {
                line(
                    json(&Line::Row {
                        id,
                        values: row.to_vec(),
                    })?,
                    out,
                )?;
            }
        }
        let end = serde_json::to_vec(&Line::End { crc32c: crc })
            .map_err(|e| malformed(0, e.to_string()))?;
        out.write_all(&end)?;
        out.write_all(b"\n")?;
        Ok(())
    }

    fn read(&self, input: &mut dyn Read) -> Result<(ImageMeta, Catalog)> {
        let mut reader = BufReader::new(input);
        let mut buf = String::new();
        let mut crc = 0u32;
        let mut n = 0u64;
        let meta = read_header(&mut reader, &mut buf, &mut crc, &mut n)?;
        let mut catalog = Catalog::new();
        let mut current: Option<(Table, u64)> = None;
        loop {
            buf.clear();
            n += 1;
            if reader.read_line(&mut buf)? == 0 || !buf.ends_with('\n') {
                return Err(Error::Truncated {
                    location: Location::Line(n),
                    reason: "the file ends before its `end` line".into(),
                });
            }
            let line: Line = serde_json::from_str(&buf).map_err(|e| malformed(n, e.to_string()))?;
            if let Line::End { crc32c } = line {
                if crc32c != crc {
                    return Err(Error::ChecksumMismatch {
                        location: Location::Line(n),
                        expected: crc32c,
                        found: crc,
                    });
                }
                finish(&mut catalog, current.take(), n)?;
                return Ok((meta, catalog));
            }
            crc = crc32c::crc32c_append(crc, buf.as_bytes());
            match line {
                Line::Table {
                    name,
                    columns,
                    next_row_id,
                    rows,
                } => {
                    finish(&mut catalog, current.take(), n)?;
                    let mut table = Table::new(name.clone(), Schema::new(&name, columns)?);
                    table.set_next_row_id(next_row_id);
                    current = Some((table, rows));
                }
                Line::Row { id, values } => {
                    let (table, _) = current
                        .as_mut()
                        .ok_or_else(|| malformed(n, "row before any table"))?;
                    table
                        .insert_with_id(id, values)
                        .map_err(|e| e.at(Location::Line(n)))?;
                }
                Line::End { .. } => unreachable!("handled above"),
            }
        }
    }

    fn read_meta(&self, input: &mut dyn Read) -> Result<ImageMeta> {
        let mut reader = BufReader::new(input);
        read_header(&mut reader, &mut String::new(), &mut 0, &mut 0)
    }
}

fn read_header(
    reader: &mut dyn BufRead,
    buf: &mut String,
    crc: &mut u32,
    n: &mut u64,
) -> Result<ImageMeta> {
    *n += 1;
    if reader.read_line(buf)? == 0 {
        return Err(Error::Truncated {
            location: Location::Line(1),
            reason: "empty file".into(),
        });
    }
    *crc = crc32c::crc32c_append(*crc, buf.as_bytes());
    let header: Header = serde_json::from_str(buf).map_err(|e| malformed(1, e.to_string()))?;
    if header.magic != JSONL_MAGIC {
        return Err(Error::BadMagic {
            format: "jsonl-example",
        });
    }
    if header.version != 1 {
        return Err(Error::UnsupportedVersion {
            format: "jsonl-example",
            found: header.version,
        });
    }
    Ok(ImageMeta {
        database: header.database,
        lsn: header.lsn,
        created: header
            .created_micros
            .and_then(chrono::DateTime::from_timestamp_micros),
        kind: if header.snapshot {
            ImageKind::Snapshot
        } else {
            ImageKind::Database
        },
    })
}

fn finish(catalog: &mut Catalog, table: Option<(Table, u64)>, line: u64) -> Result<()> {
    if let Some((table, rows)) = table {
        if table.len() as u64 != rows {
            return Err(malformed(
                line,
                format!(
                    "table {} declares {rows} rows, has {}",
                    table.name(),
                    table.len()
                ),
            ));
        }
        catalog.add_table(table)?;
    }
    Ok(())
}

mod erased {
    //! A tiny object-safe "serialize to JSON bytes" so one closure can take any line type.
    pub(crate) trait Ser {
        fn to_json(&self) -> phantom_storage::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn to_json(&self) -> phantom_storage::Result<Vec<u8>> {
            serde_json::to_vec(self).map_err(|e| phantom_storage::Error::Malformed {
                location: phantom_storage::Location::Line(0),
                reason: e.to_string(),
            })
        }
    }
}

// ----- a LogSink, plugged in through a LogFactory -----

/// Opens phantom-wal's binary log for durability and tees every record into `<db>.audit`.
#[derive(Debug, Default)]
pub struct AuditedWal {
    inner: WalFactory,
}

/// The sink [`AuditedWal`] opens.
#[derive(Debug)]
pub struct AuditedSink {
    wal: Arc<dyn LogSink>,
    audit: TextAuditSink,
}

impl LogSink for AuditedSink {
    fn append(&self, entry: &LogEntry) -> phantom_wal::Result<Lsn> {
        let lsn = self.wal.append(entry)?;
        // The audit file is a convenience copy: the binary log is the durable truth.
        self.audit.append(entry)?;
        Ok(lsn)
    }
    fn sync(&self, upto: Lsn) -> phantom_wal::Result<()> {
        self.wal.sync(upto)
    }
    fn commit(&self, lsn: Lsn) -> phantom_wal::Result<()> {
        self.wal.commit(lsn)
    }
    fn last_lsn(&self) -> Lsn {
        self.wal.last_lsn()
    }
    fn durable_lsn(&self) -> Lsn {
        self.wal.durable_lsn()
    }
    fn stats(&self) -> LogStats {
        self.wal.stats()
    }
    fn read_from(
        &self,
        from: Lsn,
    ) -> phantom_wal::Result<Box<dyn Iterator<Item = phantom_wal::Result<Record>> + Send + '_>>
    {
        self.wal.read_from(from)
    }
    fn remove_before(&self, lsn: Lsn) -> phantom_wal::Result<u64> {
        self.wal.remove_before(lsn)
    }
}

impl LogFactory for AuditedWal {
    fn open(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
        first_lsn: Lsn,
    ) -> phantom_core::Result<OpenedLog> {
        let opened = self.inner.open(fs, dir, database, first_lsn)?;
        let audit = TextAuditSink::open(
            Arc::clone(fs),
            &dir.join(format!("{database}.audit")),
            SyncMode::Never,
        )?;
        Ok(OpenedLog {
            sink: Arc::new(AuditedSink {
                wal: opened.sink,
                audit,
            }),
            torn_bytes_cut: opened.torn_bytes_cut,
        })
    }
    fn exists(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
    ) -> phantom_core::Result<bool> {
        self.inner.exists(fs, dir, database)
    }
    fn destroy(
        &self,
        fs: &Arc<dyn FileSystem>,
        dir: &Path,
        database: &str,
    ) -> phantom_core::Result<()> {
        self.inner.destroy(fs, dir, database)?;
        let audit = dir.join(format!("{database}.audit"));
        if fs
            .file_len(&audit)
            .map_err(phantom_storage::Error::from)?
            .is_some()
        {
            fs.remove_file(&audit)
                .map_err(phantom_storage::Error::from)?;
        }
        Ok(())
    }
}

// ----- a SnapshotPolicy -----

/// Snapshot after `ops` operations or `log_bytes` bytes of log, whichever first, but never
/// before `min_ops` operations. A pure decision: no I/O, no clock.
#[derive(Clone, Copy, Debug)]
pub struct OpsOrBytes {
    /// Operations that always trigger a snapshot.
    pub ops: u64,
    /// Log bytes that trigger a snapshot.
    pub log_bytes: u64,
    /// Never snapshot before this many operations.
    pub min_ops: u64,
}

impl SnapshotPolicy for OpsOrBytes {
    fn decide(&self, stats: &SnapshotStats) -> Decision {
        let due = stats.ops_since >= self.ops || stats.log_bytes_since >= self.log_bytes;
        if due && stats.ops_since >= self.min_ops {
            Decision::Snapshot
        } else {
            Decision::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phantom_core::{ColumnType, Database, Literal};

    fn open(dir: &Path) -> Database {
        Database::builder()
            .data_dir(dir)
            .main_format(Arc::new(JsonLinesFormat))
            .snapshot_format(Arc::new(JsonLinesFormat))
            .log_factory(Arc::new(AuditedWal::default()))
            .snapshot_policy(Arc::new(OpsOrBytes {
                ops: 10,
                log_bytes: 1 << 20,
                min_ops: 2,
            }))
            .open()
            .expect("open")
    }

    #[test]
    fn every_custom_backend_works_end_to_end_through_the_builder() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = open(dir.path());
            db.create_database("shop").expect("db");
            db.create_table(
                "shop",
                "items",
                vec![
                    Column::new("id", ColumnType::Int).primary_key(),
                    Column::new("name", ColumnType::String),
                ],
            )
            .expect("table");
            for i in 0..25 {
                db.insert(
                    "shop",
                    "items",
                    [
                        ("id", Literal::from(i)),
                        ("name", format!("item \"{i}\", with comma").into()),
                    ],
                )
                .expect("insert");
            }
            db.wait_for_snapshots("shop").expect("wait");
            let snaps = db.list_snapshots("shop").expect("list");
            assert_eq!(
                snaps.iter().map(|s| s.lsn).collect::<Vec<_>>(),
                vec![10, 20]
            );
            assert!(snaps.iter().all(|s| s.format == "jsonl-example"));
            db.save_to_disk("shop").expect("save");
        }
        let main = std::fs::read_to_string(dir.path().join("shop.db")).expect("main file");
        assert!(main.starts_with("{\"magic\":\"phantom-example-jsonl\""));
        let audit = std::fs::read_to_string(dir.path().join("shop.audit")).expect("audit file");
        assert_eq!(
            audit.lines().filter(|l| l.contains("] INSERT {")).count(),
            25
        );

        let db = open(dir.path());
        let rows = db.select_all("shop", "items").expect("select");
        assert_eq!(rows.len(), 25);
        assert_eq!(
            rows.get(3, "name"),
            Some(&Value::from("item \"3\", with comma"))
        );
        let report = db.recovery_report("shop").expect("report");
        assert_eq!(report.recovery_point, Some(dir.path().join("shop.db")));
        assert_eq!(report.replay.records, 0);
    }

    #[test]
    fn a_corrupt_custom_file_is_rejected_and_recovery_falls_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let db = open(dir.path());
            db.create_database("d").expect("db");
            db.create_table("d", "t", vec![Column::new("x", ColumnType::Int)])
                .expect("table");
            db.insert("d", "t", [("x", 1)]).expect("insert");
            db.save_to_disk("d").expect("save");
        }
        let path = dir.path().join("d.db");
        let text = std::fs::read_to_string(&path)
            .expect("read")
            .replace("\"Int\":1", "\"Int\":2");
        std::fs::write(&path, text).expect("write");
        let db = open(dir.path());
        let report = db.recovery_report("d").expect("report");
        assert_eq!(report.rejected.len(), 1);
        assert!(
            report.rejected[0].reason.contains("checksum"),
            "{}",
            report.rejected[0].reason
        );
        // The log still has everything: nothing was lost.
        assert_eq!(
            db.select_all("d", "t").expect("select").rows,
            vec![vec![Value::Int(1)]]
        );
    }

    #[test]
    fn the_policy_is_a_pure_decision() {
        let p = OpsOrBytes {
            ops: 10,
            log_bytes: 100,
            min_ops: 3,
        };
        let at = |ops, bytes| {
            p.decide(&SnapshotStats {
                ops_since: ops,
                log_bytes_since: bytes,
                ..SnapshotStats::default()
            })
        };
        assert_eq!(at(9, 0), Decision::Wait);
        assert_eq!(at(10, 0), Decision::Snapshot);
        assert_eq!(at(2, 500), Decision::Wait);
        assert_eq!(at(3, 500), Decision::Snapshot);
    }
}
