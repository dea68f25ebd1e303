//! Golden file of the log format (`docs/formats/wal.md`, version 1): a committed segment must
//! keep reading as the same records, and the writer must keep producing the same bytes for the
//! same entries — apart from the fields that are random or clock-dependent by design (the
//! segment salt, which every record echoes, the record timestamps, and the CRCs that cover
//! them). So a change of the layout or of the payload encoding (postcard, `Mutation`, `Value`)
//! cannot happen by accident.
//!
//! `PHANTOM_BLESS=1 cargo test -p phantom-wal --test golden` rewrites the fixture; only do that
//! together with a new format version and its entry in the version history.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use phantom_storage::{Column, ColumnType, Mutation, Schema, StdFs, Value};
use phantom_wal::{LogEntry, LogSink, SEGMENT_HEADER_LEN, SyncMode, Wal, WalOptions, WalReader};

const HEADER_SALT: std::ops::Range<usize> = 32..36;
const HEADER_CRC: std::ops::Range<usize> = 36..40;
const RECORD_HEADER_LEN: usize = 32;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden.log")
}

/// Every entry kind, every mutation kind and every value type.
fn entries() -> Vec<LogEntry> {
    let schema = Schema::new(
        "t",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("f", ColumnType::Float),
            Column::new("s", ColumnType::String),
            Column::new("b", ColumnType::Bool).not_null(),
            Column::new("d", ColumnType::Date),
            Column::new("tm", ColumnType::Time),
            Column::new("ts", ColumnType::Timestamp),
        ],
    )
    .expect("schema");
    let date = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
    let time = NaiveTime::from_hms_opt(23, 59, 58).expect("time");
    let row = |id: i64, s: &str| -> Vec<Value> {
        vec![
            Value::Int(id),
            Value::Float(-1.5e300),
            Value::String(s.into()),
            Value::Bool(id % 2 == 0),
            Value::Date(date),
            Value::Time(time),
            Value::Timestamp(NaiveDateTime::new(date, time)),
        ]
    };
    let mut nulls = row(3, "");
    nulls[1] = Value::Null;
    nulls[2] = Value::Null;
    vec![
        LogEntry::CreateDatabase,
        LogEntry::Batch(vec![
            Mutation::CreateTable {
                table: "t".into(),
                schema,
            },
            Mutation::Insert {
                table: "t".into(),
                rows: vec![
                    (1, row(i64::MIN, "Doe, \"John\"\r\n").into()),
                    (2, row(2, "ünïcødé 🦀").into()),
                    (3, nulls.into()),
                ],
            },
        ]),
        LogEntry::Batch(vec![
            Mutation::Update {
                table: "t".into(),
                rows: vec![(2, row(i64::MAX, "updated").into())],
            },
            Mutation::Delete {
                table: "t".into(),
                row_ids: vec![1, 3],
            },
        ]),
        LogEntry::Custom {
            operation: "MAINTENANCE".into(),
            fields: vec![("by".into(), "ops".into()), ("by".into(), "a, b".into())],
        },
        LogEntry::Batch(vec![Mutation::DropTable { table: "t".into() }]),
        LogEntry::DropDatabase,
    ]
}

/// Writes `entries()` as log `golden` in `dir` (one segment, not preallocated) and returns the
/// segment's bytes.
fn write(dir: &Path) -> Vec<u8> {
    let options = WalOptions {
        sync_mode: SyncMode::Always,
        preallocate: false,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(Arc::new(StdFs), dir, "golden", options).expect("open");
    for entry in entries() {
        let lsn = wal.append(&entry).expect("append");
        wal.commit(lsn).expect("commit");
    }
    drop(wal);
    std::fs::read(dir.join("golden.log")).expect("read segment")
}

/// The bytes with the salt, timestamps and CRCs zeroed, walking the records by their lengths.
fn masked(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[HEADER_SALT].fill(0);
    out[HEADER_CRC].fill(0);
    let mut at = SEGMENT_HEADER_LEN;
    while at + RECORD_HEADER_LEN <= out.len() {
        let len = u32::from_le_bytes(out[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        out[at..at + 4].fill(0); // salt
        out[at + 16..at + 24].fill(0); // timestamp
        out[at + 28..at + 32].fill(0); // CRC
        at += RECORD_HEADER_LEN + len;
    }
    assert_eq!(at, out.len(), "records tile the segment");
    out
}

#[test]
fn the_writer_produces_the_golden_bytes_apart_from_salt_time_and_crc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = write(dir.path());
    if std::env::var_os("PHANTOM_BLESS").is_some() {
        std::fs::write(fixture(), &bytes).expect("bless");
    }
    let golden = std::fs::read(fixture()).expect("fixture (bless with PHANTOM_BLESS=1)");
    assert_eq!(masked(&bytes), masked(&golden));
    assert_eq!(&golden[..8], b"PHDBWAL\0");
    assert_eq!(u32::from_le_bytes(golden[8..12].try_into().expect("4")), 1);
}

#[test]
fn the_golden_segment_reads_back_as_the_same_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::copy(fixture(), dir.path().join("golden.log")).expect("copy fixture");
    let mut reader =
        WalReader::open(Arc::new(StdFs), dir.path(), "golden", 1).expect("open reader");
    let records: Vec<_> = reader
        .by_ref()
        .collect::<Result<Vec<_>, _>>()
        .expect("every record reads");
    let lsns: Vec<_> = records.iter().map(|r| r.lsn).collect();
    assert_eq!(lsns, (1..=entries().len() as u64).collect::<Vec<_>>());
    let read: Vec<_> = records.into_iter().map(|r| r.entry).collect();
    assert_eq!(read, entries());
    assert!(reader.status().complete);
    assert!(reader.status().torn_tail.is_none());
}
