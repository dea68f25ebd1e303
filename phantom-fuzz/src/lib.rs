//! `phantom-fuzz`: the fuzz targets of PhantomDB as ordinary library functions.
//!
//! Each target takes arbitrary bytes and must never panic: bad input must come back from the
//! engine as a typed error. Targets also assert invariants (a panic here means an engine bug):
//! an image a reader accepts writes back and reads back equal; a log that opens keeps every
//! record across an append and a reopen; a database that recovers once recovers again to the
//! same rows.
//!
//! | target | what it feeds the bytes to |
//! |---|---|
//! | [`csv_reader`] | `CsvFormat::read` and `read_meta` |
//! | [`binary_reader`] | `BinaryFormat::read` and `read_meta` |
//! | [`wal_segment`] | a log segment `d.log`: `WalReader::open`, then `Wal::open` |
//! | [`filter_parse`] | `Filter::parse` (UTF-8 only), then bind and evaluate on sample rows |
//! | [`recovery_image`] | a data directory (`image` framing: name index, length, bytes): `Database` open, `select_all`, `verify` |
//!
//! The functions live here, not in the cargo-fuzz crate, so that they compile in the normal
//! build and `tests/replay.rs` runs every committed corpus file (`fuzz/corpus/<target>/`)
//! through them in the normal test run: CI needs no fuzzer. `fuzz/fuzz_targets/<target>.rs`
//! only calls them. [`seeds`] generates the seed corpora (`cargo run -p phantom-fuzz --bin
//! phantom-fuzz-seed`).
//!
//! ```
//! // Garbage is refused with an error, not a panic.
//! phantom_fuzz::csv_reader(b"# PhantomDB Database File\n[TABLE:t]\nCOLUMNS:a:nope\n");
//! phantom_fuzz::filter_parse(b"id = 1 AND name IS NULL");
//! ```

mod image;
mod mem_fs;
pub mod seeds;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use phantom_core::{Database, Filter, Rows, Schema, WalFactory};
use phantom_storage::{
    BinaryFormat, Column, ColumnType, CsvFormat, FileSystem, StorageFormat, Value,
};
use phantom_wal::{LogEntry, LogSink, Record, Wal, WalOptions, WalReader};

pub use image::{IMAGE_FILES, MAX_IMAGE_ENTRIES, decode_image, encode_image};
pub use mem_fs::MemFs;

/// The names of every target, as used for `fuzz/fuzz_targets/<name>.rs` and
/// `fuzz/corpus/<name>/`.
pub const TARGETS: [&str; 5] = [
    "csv_reader",
    "binary_reader",
    "wal_segment",
    "filter_parse",
    "recovery_image",
];

/// Runs the target called `name` on `data`; `false` when no target has that name.
pub fn run_target(name: &str, data: &[u8]) -> bool {
    match name {
        "csv_reader" => csv_reader(data),
        "binary_reader" => binary_reader(data),
        "wal_segment" => wal_segment(data),
        "filter_parse" => filter_parse(data),
        "recovery_image" => recovery_image(data),
        _ => return false,
    }
    true
}

/// Reads `data` as a spec CSV image.
///
/// # Panics
/// When the reader panics, or when it accepts `data` but the catalog it returns does not
/// write back and read back equal, or `read_meta` disagrees with `read`.
pub fn csv_reader(data: &[u8]) {
    image_roundtrip(&CsvFormat, data);
}

/// Reads `data` as a binary image.
///
/// # Panics
/// As [`csv_reader`], for the binary format.
pub fn binary_reader(data: &[u8]) {
    image_roundtrip(&BinaryFormat, data);
}

fn image_roundtrip(format: &dyn StorageFormat, data: &[u8]) {
    let name = format.name();
    let meta_only = format.read_meta(&mut &data[..]);
    let Ok((meta, catalog)) = format.read(&mut &data[..]) else {
        return;
    };
    match meta_only {
        Ok(m) => assert_eq!(m, meta, "{name}: read_meta and read disagree on the header"),
        Err(e) => panic!("{name}: read accepts the image but read_meta fails: {e}"),
    }
    let mut out = Vec::new();
    if let Err(e) = format.write(&meta, &catalog, &mut out) {
        panic!("{name}: an image the reader accepted does not write back: {e}");
    }
    let (meta2, catalog2) = format
        .read(&mut out.as_slice())
        .unwrap_or_else(|e| panic!("{name}: an image written back does not read back: {e}"));
    assert_eq!(meta2, meta, "{name}: header changed through write and read");
    assert_eq!(
        catalog2, catalog,
        "{name}: catalog changed through write and read"
    );
}

/// Segment size of the logs the targets open: preallocated like the default, but small, since
/// [`MemFs`] holds every byte of a preallocated segment in memory.
const SMALL_SEGMENT: u64 = 64 << 10;

/// Reads `data` as the only segment `d.log` of a log in an in-memory directory, first with
/// [`WalReader`] (which must modify nothing), then with [`Wal::open`].
///
/// # Panics
/// When the log code panics; when the reader modifies the file; when a log that opens does
/// not keep its records across one append and a reopen, or the reader and the opened log
/// disagree on the records.
pub fn wal_segment(data: &[u8]) {
    let fs = MemFs::new();
    let dir = Path::new("/wal");
    let file = dir.join("d.log");
    fs.insert(&file, data.to_vec());
    let shared: Arc<dyn FileSystem> = Arc::new(fs.clone());

    let mut read_only = Vec::new();
    let mut read_only_complete = false;
    if let Ok(mut reader) = WalReader::open(Arc::clone(&shared), dir, "d", 0) {
        for record in reader.by_ref() {
            match record {
                Ok(r) => read_only.push(r),
                Err(_) => break,
            }
        }
        read_only_complete = reader.status().complete;
    }
    assert!(
        fs.get(&file).as_deref() == Some(data),
        "WalReader modified the segment"
    );

    let options = WalOptions {
        segment_size: SMALL_SEGMENT,
        ..WalOptions::default()
    };
    let Ok((wal, report)) = Wal::open(Arc::clone(&shared), dir, "d", options.clone()) else {
        return;
    };
    let before = all_records(&wal);
    if let Some(before) = &before {
        assert_eq!(
            before.len() as u64,
            report.records,
            "open report vs records read"
        );
        if read_only_complete {
            assert_eq!(
                &read_only, before,
                "WalReader and Wal disagree on the records"
            );
        }
    }
    let entry = LogEntry::Custom {
        operation: "FUZZ".into(),
        fields: vec![("k".into(), "v".into())],
    };
    let lsn = wal
        .append(&entry)
        .unwrap_or_else(|e| panic!("append to a log that opened: {e}"));
    assert_eq!(
        lsn,
        report.last_lsn + 1,
        "the first append follows the last LSN"
    );
    wal.commit(lsn)
        .unwrap_or_else(|e| panic!("commit to a log that opened: {e}"));
    wal.close()
        .unwrap_or_else(|e| panic!("close of a log that opened: {e}"));

    let (wal, again) = Wal::open(shared, dir, "d", options)
        .unwrap_or_else(|e| panic!("a log that opened and took one record does not reopen: {e}"));
    assert_eq!(
        again.records,
        report.records + 1,
        "records after one append"
    );
    assert_eq!(again.last_lsn, lsn, "last LSN after one append");
    assert_eq!(
        again.torn_tail, None,
        "a cleanly closed log has no torn tail"
    );
    if let (Some(before), Some(after)) = (before, all_records(&wal)) {
        assert_eq!(after.len(), before.len() + 1, "records after one append");
        assert_eq!(
            after.get(..before.len()),
            Some(&before[..]),
            "old records changed"
        );
        assert!(
            after
                .last()
                .is_some_and(|r| r.lsn == lsn && r.entry == entry),
            "the appended record is not the last one"
        );
    }
}

/// Every record of an open log, or `None` when reading fails (a record whose checksum holds
/// but whose payload does not decode is refused by the reader, not by `Wal::open`).
fn all_records(wal: &Wal) -> Option<Vec<Record>> {
    wal.read_from(1).ok()?.collect::<Result<Vec<_>, _>>().ok()
}

/// The schema filters are bound against: one column of every type, `id` the primary key.
pub fn filter_schema() -> Schema {
    Schema::new(
        "t",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("name", ColumnType::String),
            Column::new("score", ColumnType::Float),
            Column::new("active", ColumnType::Bool),
            Column::new("born", ColumnType::Date),
            Column::new("at", ColumnType::Time),
            Column::new("ts", ColumnType::Timestamp),
        ],
    )
    .unwrap_or_else(|e| unreachable!("the fuzz schema is valid: {e}"))
}

fn filter_rows() -> Vec<Vec<Value>> {
    let parse = |ty, text| Value::parse(ty, text).unwrap_or(Value::Null);
    vec![
        vec![
            Value::Int(1),
            "Doe, John".into(),
            Value::Float(1.5),
            Value::Bool(true),
            parse(ColumnType::Date, "2024-02-29"),
            parse(ColumnType::Time, "12:00:00"),
            parse(ColumnType::Timestamp, "2024-01-01 00:00:00"),
        ],
        vec![
            Value::Int(-7),
            "".into(),
            Value::Float(f64::NAN),
            Value::Bool(false),
            Value::Null,
            Value::Null,
            Value::Null,
        ],
        vec![
            Value::Int(i64::MAX),
            Value::Null,
            Value::Float(-0.0),
            Value::Null,
            parse(ColumnType::Date, "0001-01-01"),
            parse(ColumnType::Time, "23:59:59"),
            parse(ColumnType::Timestamp, "1970-01-01 00:00:00"),
        ],
    ]
}

/// Parses `data` (when it is UTF-8) as a filter; binds what parses to [`filter_schema`] and
/// evaluates it on a few rows.
///
/// # Panics
/// When parsing, binding or evaluating panics, or when a row matches both a filter and its
/// negation.
pub fn filter_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(text) else {
        return;
    };
    let schema = filter_schema();
    let Ok(bound) = filter.bind("t", &schema) else {
        return;
    };
    let negated = filter
        .clone()
        .not()
        .bind("t", &schema)
        .unwrap_or_else(|e| panic!("NOT of a filter that binds does not bind: {e}"));
    for row in filter_rows() {
        assert!(
            !(bound.matches(&row) && negated.matches(&row)),
            "{text:?} and its negation both match {row:?}"
        );
    }
    for column in 0..schema.len() {
        let _ = bound.required_eq(column);
    }
}

/// Lays `data` out as a data directory ([`decode_image`]) in a [`MemFs`], opens database `d`
/// with [`Database`], reads every table, runs `verify`, commits one table creation, then
/// reopens.
///
/// # Panics
/// When the engine panics; when a table it lists cannot be read; when a database that
/// recovered once does not recover again to the same tables and rows, including the table
/// the first open committed.
pub fn recovery_image(data: &[u8]) {
    // The directory lock is a real file, so the data directory is a real (empty) directory;
    // every database file lives in the in-memory file system under the same path.
    let Ok(tmp) = tempfile::tempdir() else {
        return;
    };
    let dir = tmp.path();
    let fs = MemFs::new();
    let _ = fs.create_dir_all(dir);
    for (name, bytes) in decode_image(data) {
        fs.insert(dir.join(name), bytes.to_vec());
    }
    let first = open_and_read(&fs, dir);
    if let Some(Ok(first)) = first {
        match open_and_read(&fs, dir) {
            Some(Ok(mut second)) => {
                // The second open committed its own probe table if the first had none.
                if !first.contains_key(PROBE_TABLE) {
                    second.remove(PROBE_TABLE);
                }
                assert_eq!(second, first, "a second recovery gives other rows");
            }
            Some(Err(e)) => panic!("a database that recovered once fails the second time: {e}"),
            None => panic!("a database that recovered once cannot be opened the second time"),
        }
    }
}

type Contents = BTreeMap<String, (Schema, Rows)>;

/// Opens `d`, reads it whole and commits the probe table; `None` when the directory cannot
/// even be opened.
fn open_and_read(fs: &MemFs, dir: &Path) -> Option<Result<Contents, phantom_core::Error>> {
    // Preallocated segments like the default, but small: the in-memory file system holds
    // every byte of them.
    let mut log = WalFactory::default();
    log.options.segment_size = SMALL_SEGMENT;
    let db = Database::builder()
        .file_system(Arc::new(fs.clone()))
        .data_dir(dir)
        .log_factory(Arc::new(log))
        .snapshots_enabled(false)
        .open()
        .ok()?;
    let _ = db.verify("d");
    let tables = match db.list_tables("d") {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let mut contents = Contents::new();
    for table in tables {
        let schema = db
            .table_schema("d", &table)
            .unwrap_or_else(|e| panic!("listed table {table} has no schema: {e}"));
        let rows = db
            .select_all("d", &table)
            .unwrap_or_else(|e| panic!("listed table {table} cannot be read: {e}"));
        contents.insert(table, (schema, rows));
    }
    let _ = db.verify("d");
    // An acknowledged commit must survive the reopen that follows: the caller compares.
    if !contents.contains_key(PROBE_TABLE) {
        let columns = vec![Column::new("id", ColumnType::Int)];
        if db.create_table("d", PROBE_TABLE, columns).is_ok() {
            let schema = db
                .table_schema("d", PROBE_TABLE)
                .unwrap_or_else(|e| panic!("a table just created has no schema: {e}"));
            let rows = db
                .select_all("d", PROBE_TABLE)
                .unwrap_or_else(|e| panic!("a table just created cannot be read: {e}"));
            contents.insert(PROBE_TABLE.to_owned(), (schema, rows));
        }
    }
    Some(Ok(contents))
}

/// The table [`recovery_image`] creates after a successful recovery.
const PROBE_TABLE: &str = "fuzz_probe";
