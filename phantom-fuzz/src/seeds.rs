//! The seed corpora: valid files made by the real writers, plus a few interesting corruptions
//! of them, for every target. `cargo run -p phantom-fuzz --bin phantom-fuzz-seed` writes them
//! to `fuzz/corpus/<target>/`.
//!
//! Generation is deterministic except where the engine itself is not: every log segment
//! carries a random salt and the wall-clock time of each record, so regenerating rewrites the
//! `wal_segment` and `recovery_image` seeds with other bytes of the same shape.

use std::path::Path;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use phantom_core::{Database, Literal, WalFactory};
use phantom_storage::{
    BinaryFormat, Catalog, Column, ColumnType, CsvFormat, FileSystem, ImageKind, ImageMeta,
    Mutation, Schema, StorageFormat, Value,
};
use phantom_wal::{LogEntry, LogSink, Wal, WalOptions};

use crate::image::encode_image;
use crate::mem_fs::MemFs;

/// One seed file: the target it is for, its file name, its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seed {
    /// Target name (one of [`crate::TARGETS`]).
    pub target: &'static str,
    /// File name inside `fuzz/corpus/<target>/`.
    pub name: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// Every seed of every target.
///
/// # Panics
/// When the engine's own writers fail on the sample data (a bug to fix before fuzzing).
pub fn all() -> Vec<Seed> {
    let mut out = Vec::new();
    out.extend(image_seeds("csv_reader", &CsvFormat));
    out.extend(image_seeds("binary_reader", &BinaryFormat));
    out.extend(wal_seeds());
    out.extend(filter_seeds());
    out.extend(recovery_seeds());
    out
}

/// Writes every seed to `corpus/<target>/<name>` under `corpus`, creating folders; returns
/// how many files were written.
pub fn write_all(corpus: &Path) -> std::io::Result<usize> {
    let seeds = all();
    for seed in &seeds {
        let dir = corpus.join(seed.target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(&seed.name), &seed.bytes)?;
    }
    Ok(seeds.len())
}

fn seed(target: &'static str, name: &str, bytes: Vec<u8>) -> Seed {
    Seed {
        target,
        name: name.to_owned(),
        bytes,
    }
}

fn must<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("seed generation: {what}: {e}"))
}

fn value(ty: ColumnType, text: &str) -> Value {
    must(text, Value::parse(ty, text))
}

/// Sample catalogs: name, catalog.
fn catalogs() -> Vec<(&'static str, Catalog)> {
    let mut users = Catalog::new();
    let schema = must(
        "users schema",
        Schema::new(
            "users",
            vec![
                Column::new("id", ColumnType::Int).primary_key(),
                Column::new("name", ColumnType::String).not_null(),
                Column::new("email", ColumnType::String),
            ],
        ),
    );
    must("create users", users.create_table("users", schema));
    for row in [
        vec![Value::Int(1), "John Doe".into(), "john@example.com".into()],
        vec![Value::Int(2), "Doe, John".into(), Value::Null],
        vec![Value::Int(3), "She said \"hi\"".into(), "two\nlines".into()],
        vec![Value::Int(-4), "".into(), "".into()],
    ] {
        must(
            "insert user",
            must("users", users.table_mut("users")).insert(row),
        );
    }
    must(
        "delete user",
        must("users", users.table_mut("users")).delete(2),
    );

    let mut types = Catalog::new();
    let schema = must(
        "all types schema",
        Schema::new(
            "all_types",
            vec![
                Column::new("i", ColumnType::Int),
                Column::new("f", ColumnType::Float),
                Column::new("s", ColumnType::String),
                Column::new("b", ColumnType::Bool),
                Column::new("d", ColumnType::Date),
                Column::new("t", ColumnType::Time),
                Column::new("ts", ColumnType::Timestamp),
            ],
        ),
    );
    must("create all_types", types.create_table("all_types", schema));
    let empty_schema = must(
        "empty schema",
        Schema::new("empty", vec![Column::new("note", ColumnType::String)]),
    );
    must("create empty", types.create_table("empty", empty_schema));
    for row in [
        vec![
            Value::Int(i64::MIN),
            Value::Float(f64::NAN),
            "ünïcödé ✓".into(),
            Value::Bool(true),
            value(ColumnType::Date, "2024-02-29"),
            value(ColumnType::Time, "23:59:59"),
            value(ColumnType::Timestamp, "2024-01-01 00:00:00"),
        ],
        vec![
            Value::Int(i64::MAX),
            Value::Float(-0.0),
            ",;\"\r\n".into(),
            Value::Bool(false),
            value(ColumnType::Date, "0001-01-01"),
            value(ColumnType::Time, "00:00:00"),
            value(ColumnType::Timestamp, "1970-01-01 00:00:00"),
        ],
        vec![
            Value::Null,
            Value::Float(f64::INFINITY),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ],
    ] {
        must(
            "insert all_types",
            must("all_types", types.table_mut("all_types")).insert(row),
        );
    }
    vec![
        ("users", users),
        ("all_types", types),
        ("empty", Catalog::new()),
    ]
}

fn meta(database: &str, lsn: u64, kind: ImageKind) -> ImageMeta {
    ImageMeta {
        database: database.to_owned(),
        lsn,
        created: Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single(),
        kind,
    }
}

fn write_image(format: &dyn StorageFormat, meta: &ImageMeta, catalog: &Catalog) -> Vec<u8> {
    let mut out = Vec::new();
    must("write image", format.write(meta, catalog, &mut out));
    out
}

fn flip(bytes: &[u8], at: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(b) = out.get_mut(at) {
        *b ^= 0x20;
    }
    out
}

fn image_seeds(target: &'static str, format: &dyn StorageFormat) -> Vec<Seed> {
    let mut out = Vec::new();
    for (i, (name, catalog)) in catalogs().into_iter().enumerate() {
        let kind = if i % 2 == 0 {
            ImageKind::Database
        } else {
            ImageKind::Snapshot
        };
        let bytes = write_image(format, &meta("demo", 40 + i as u64, kind), &catalog);
        if name == "all_types" {
            out.push(seed(
                target,
                "all_types_truncated",
                bytes[..bytes.len() / 2].to_vec(),
            ));
            out.push(seed(
                target,
                "all_types_flipped",
                flip(&bytes, bytes.len() * 2 / 3),
            ));
            out.push(seed(target, "all_types_header_flipped", flip(&bytes, 10)));
        }
        out.push(seed(target, name, bytes));
    }
    if target == "csv_reader" {
        // The original C++ writer: no format version, LSN, row counts or checksum.
        out.push(seed(
            target,
            "cpp_original",
            b"# PhantomDB Database File\n# Database: test_db\n# Format: CSV\n\
              # Generated: Nov 24 2026 15:50:06\n# Type: Snapshot\n\n[TABLE:users]\n\
              COLUMNS:id:int,name:string,email:string\nDATA:id,name,email\n\
              ROW:1,John Doe,john@example.com\nROW:3,\"Doe, John\",\n\n\
              [TABLE:products]\nCOLUMNS:sku:INTEGER,price:double,ok:boolean,added:date,at:datetime\n\
              DATA:sku,price,ok,added,at\nROW:100,9.99,yes,2024-02-29,2024-11-24 15:50:06\n\
              ROW:-7,1e3,0,,\n\n[TABLE:empty]\nCOLUMNS:note:text\n\n"
                .to_vec(),
        ));
        out.push(seed(
            target,
            "cpp_crlf_bad_type",
            b"# PhantomDB Database File\r\n# Database: x\r\n[TABLE:t]\r\nCOLUMNS:a:blob\r\n"
                .to_vec(),
        ));
        out.push(seed(
            target,
            "cpp_duplicate_key",
            b"# PhantomDB Database File\n# Database: x\n[TABLE:t]\nCOLUMNS:id:int PRIMARY KEY\n\
              DATA:id\nROW:1\nROW:1\n"
                .to_vec(),
        ));
    }
    out
}

fn wal_entries() -> Vec<LogEntry> {
    let schema = must(
        "log schema",
        Schema::new(
            "t",
            vec![
                Column::new("id", ColumnType::Int).primary_key(),
                Column::new("name", ColumnType::String),
            ],
        ),
    );
    let row = |i: u64| {
        (
            i,
            vec![Value::Int(i as i64), format!("row {i}").into()].into(),
        )
    };
    vec![
        LogEntry::CreateDatabase,
        LogEntry::Batch(vec![Mutation::CreateTable {
            table: "t".into(),
            schema,
        }]),
        LogEntry::Batch(vec![Mutation::Insert {
            table: "t".into(),
            rows: vec![row(1), row(2), row(3)],
        }]),
        LogEntry::Custom {
            operation: "MAINTENANCE".into(),
            fields: vec![("by".into(), "fuzz seed".into())],
        },
        LogEntry::Batch(vec![
            Mutation::Update {
                table: "t".into(),
                rows: vec![(2, vec![Value::Int(2), Value::Null].into())],
            },
            Mutation::Delete {
                table: "t".into(),
                row_ids: vec![3],
            },
        ]),
    ]
}

/// Writes `entries` as log `d` in a fresh in-memory directory; returns the segments' bytes.
fn write_log(entries: &[LogEntry], options: WalOptions) -> Vec<Vec<u8>> {
    let fs = MemFs::new();
    let dir = Path::new("/seed");
    let (wal, _) = must(
        "open seed log",
        Wal::open(Arc::new(fs.clone()), dir, "d", options),
    );
    for entry in entries {
        let lsn = must("append", wal.append(entry));
        must("commit", wal.commit(lsn));
    }
    must("close", wal.close());
    fs.files().into_iter().map(|(_, bytes)| bytes).collect()
}

fn wal_seeds() -> Vec<Seed> {
    let t = "wal_segment";
    let entries = wal_entries();
    // Segments that grow with their records (not preallocated), so the seeds stay small; the
    // preallocated layout has a seed of its own below.
    let growing = WalOptions {
        preallocate: false,
        ..WalOptions::default()
    };
    let mut segments = write_log(&entries, growing.clone());
    let log = segments.pop().unwrap_or_default();
    let header_only = write_log(&[], growing.clone()).pop().unwrap_or_default();
    let preallocated = write_log(
        &entries[..2],
        WalOptions {
            preallocate: true,
            segment_size: 1024,
            ..WalOptions::default()
        },
    )
    .pop()
    .unwrap_or_default();
    let later_start = write_log(
        &entries[2..],
        WalOptions {
            first_lsn: 1000,
            ..growing
        },
    )
    .pop()
    .unwrap_or_default();
    let mut torn_header = vec![0u8; 64];
    torn_header[..8].copy_from_slice(log.get(..8).unwrap_or_default());
    vec![
        seed(t, "five_records", log.clone()),
        seed(t, "header_only", header_only),
        seed(t, "preallocated", preallocated),
        seed(t, "first_lsn_1000", later_start),
        seed(t, "torn_tail", log[..log.len() - 5].to_vec()),
        seed(t, "flipped_middle_record", flip(&log, log.len() / 2)),
        seed(t, "zeros", vec![0; 100]),
        seed(t, "torn_header", torn_header),
        seed(t, "empty", Vec::new()),
    ]
}

fn filter_seeds() -> Vec<Seed> {
    let filters = [
        "id = 1",
        "id = 1 AND name = 'x'",
        "name = 'Doe, John' OR score >= 1.5",
        "NOT (active = TRUE) AND born IS NOT NULL",
        "5 < id",
        "score <> -0.5 OR at <= '12:00:00'",
        "ts > '2024-01-01 00:00:00' AND born = '2024-02-29'",
        "((id != 2)) OR name IS NULL",
        "id = NULL",
        "id = 'abc'",
        "nosuch = 1",
        "id IN (1, 2)",
        "id = 1; DROP TABLE t",
        "score = 1e308 AND id = -9223372036854775808",
        "",
    ];
    filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            seed(
                "filter_parse",
                &format!("filter_{i:02}"),
                f.as_bytes().to_vec(),
            )
        })
        .collect()
}

/// The engine's log with segments that grow with their records, so seeds stay small.
fn growing_log() -> WalFactory {
    let mut log = WalFactory::default();
    log.options.preallocate = false;
    log
}

/// Files of database `d` made by the real engine on a [`MemFs`]: a main file, a snapshot,
/// and the log after them; `(file name, bytes)`.
fn database_files() -> Vec<(String, Vec<u8>)> {
    let tmp = must("tempdir", tempfile::tempdir());
    let fs = MemFs::new();
    let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());
    {
        let db = must(
            "open seed database",
            Database::builder()
                .file_system(shared)
                .data_dir(tmp.path())
                .log_factory(Arc::new(growing_log()))
                .snapshots_enabled(false)
                .open(),
        );
        must("create database", db.create_database("d"));
        must(
            "create table",
            db.create_table(
                "d",
                "users",
                vec![
                    Column::new("id", ColumnType::Int).primary_key(),
                    Column::new("name", ColumnType::String),
                    Column::new("born", ColumnType::Date),
                ],
            ),
        );
        for i in 1..=3 {
            must(
                "insert",
                db.insert(
                    "d",
                    "users",
                    [
                        ("id", Literal::from(i)),
                        ("name", format!("user {i}").into()),
                    ],
                ),
            );
        }
        must("save", db.save_to_disk("d"));
        must("snapshot", db.create_snapshot("d"));
        must(
            "insert after snapshot",
            db.insert(
                "d",
                "users",
                [("id", Literal::from(4)), ("name", "late".into())],
            ),
        );
        must(
            "delete after snapshot",
            db.delete("d", "users", &phantom_core::Filter::eq("id", 1)),
        );
    }
    fs.files()
        .into_iter()
        .filter_map(|(path, bytes)| Some((path.file_name()?.to_str()?.to_owned(), bytes)))
        .collect()
}

fn recovery_seeds() -> Vec<Seed> {
    let t = "recovery_image";
    let files = database_files();
    let find = |pred: &dyn Fn(&str) -> bool| -> Vec<u8> {
        files
            .iter()
            .find(|(n, _)| pred(n))
            .map(|(_, b)| b.clone())
            .unwrap_or_else(|| panic!("seed generation: the engine wrote no such file"))
    };
    let main = find(&|n| n == "d.db");
    let log = find(&|n| n == "d.log");
    let snapshot = find(&|n| n.starts_with("d_snapshot_"));

    // A two-segment log written directly, with segments small enough to roll over once.
    let mut entries = wal_entries();
    entries.truncate(4);
    let segments = write_log(
        &entries,
        WalOptions {
            segment_size: 200,
            ..WalOptions::default()
        },
    );
    let mut out = vec![
        seed(
            t,
            "main_snapshot_log",
            encode_image(&[(0, &main), (3, &snapshot), (1, &log)]),
        ),
        seed(t, "log_only", encode_image(&[(1, &log)])),
        seed(t, "main_only", encode_image(&[(0, &main)])),
        seed(
            t,
            "snapshot_torn_log",
            encode_image(&[(3, &snapshot), (1, &log[..log.len() - 3])]),
        ),
        seed(
            t,
            "corrupt_newest_snapshot",
            encode_image(&[
                (3, &snapshot),
                (4, &flip(&snapshot, snapshot.len() / 2)),
                (1, &log),
            ]),
        ),
        seed(
            t,
            "flipped_log",
            encode_image(&[(0, &main), (1, &flip(&log, log.len() / 2))]),
        ),
    ];
    if let [first, second, ..] = &segments[..] {
        out.push(seed(
            t,
            "two_segments",
            encode_image(&[(1, first), (2, second)]),
        ));
        out.push(seed(t, "second_segment_only", encode_image(&[(2, second)])));
    }
    out
}
