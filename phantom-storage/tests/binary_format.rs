//! The binary image format, pinned: a golden file of version 1 compared byte for byte, and
//! every kind of damage (truncation anywhere, flipped bytes in each region, wrong magic,
//! unknown version, well-checksummed but inconsistent content) reported as the expected typed
//! error at the expected byte offset. The layout is `docs/formats/binary.md`; the helpers
//! below build blocks from that document, not from the codec.
//!
//! Regenerate the fixtures after an intended format change (with a version bump) by running
//! `PHANTOM_BLESS=1 cargo test -p phantom-storage --test binary_format`.

use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use phantom_storage::backends::binary::{FormatVersion, MAGIC, MAX_BLOCK_PAYLOAD};
use phantom_storage::{
    BinaryFormat, Catalog, Column, ColumnType, CsvFormat, Error, ImageKind, ImageMeta, Location,
    RowId, Schema, StorageFormat, Value,
};
use proptest::prelude::*;

// ----- the golden image -----

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/binary")
        .join(name)
}

fn blessing() -> bool {
    std::env::var_os("PHANTOM_BLESS").is_some()
}

fn golden_meta() -> ImageMeta {
    ImageMeta {
        database: "fixture_db".into(),
        lsn: 1234,
        created: DateTime::<Utc>::from_timestamp(1_714_979_289, 123_456_789),
        kind: ImageKind::Snapshot,
    }
}

/// Two tables: one with every column type (NULLs, extremes, a deleted row), one emptied by
/// deletes.
fn golden_catalog() -> Catalog {
    let mut catalog = Catalog::new();
    let schema = Schema::new(
        "all_types",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("f", ColumnType::Float),
            Column::new("s", ColumnType::String).not_null(),
            Column::new("b", ColumnType::Bool),
            Column::new("d", ColumnType::Date),
            Column::new("t", ColumnType::Time),
            Column::new("ts", ColumnType::Timestamp),
        ],
    )
    .expect("schema");
    catalog.create_table("all_types", schema).expect("create");
    let date = |y, m, d| Value::Date(NaiveDate::from_ymd_opt(y, m, d).expect("date"));
    let time = |h, m, s| Value::Time(NaiveTime::from_hms_opt(h, m, s).expect("time"));
    let ts = |y, mo, d, h, mi, s| {
        Value::Timestamp(
            NaiveDate::from_ymd_opt(y, mo, d)
                .expect("date")
                .and_hms_opt(h, mi, s)
                .expect("time"),
        )
    };
    let t = catalog.table_mut("all_types").expect("table");
    let rows = vec![
        vec![
            Value::Int(1),
            Value::Float(1.5),
            "Doe, John".into(),
            Value::Bool(true),
            date(2023, 12, 1),
            time(12, 0, 0),
            ts(2023, 12, 1, 12, 0, 0),
        ],
        vec![
            Value::Int(i64::MIN),
            Value::Float(f64::NAN),
            "".into(),
            Value::Bool(false),
            date(0, 1, 1),
            time(0, 0, 0),
            ts(1970, 1, 1, 0, 0, 0),
        ],
        vec![
            Value::Int(i64::MAX),
            Value::Float(-0.0),
            "quote \" comma , newline \r\n é 😀".into(),
            Value::Null,
            date(9999, 12, 31),
            time(23, 59, 59),
            ts(9999, 12, 31, 23, 59, 59),
        ],
        vec![
            Value::Int(0),
            Value::Null,
            "deleted".into(),
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ],
        vec![
            Value::Int(-7),
            Value::Float(f64::NEG_INFINITY),
            "last".into(),
            Value::Bool(true),
            date(2024, 2, 29),
            Value::Null,
            Value::Null,
        ],
    ];
    for row in rows {
        t.insert(row).expect("insert");
    }
    t.delete(4).expect("delete");
    catalog
        .create_table(
            "emptied",
            Schema::new("emptied", vec![Column::new("x", ColumnType::Int)]).expect("schema"),
        )
        .expect("create");
    let e = catalog.table_mut("emptied").expect("table");
    let id = e.insert(vec![Value::Int(1)]).expect("insert");
    e.delete(id).expect("delete");
    catalog
}

fn golden_bytes() -> Vec<u8> {
    let mut bytes = Vec::new();
    BinaryFormat
        .write(&golden_meta(), &golden_catalog(), &mut bytes)
        .expect("write");
    bytes
}

/// The committed golden file (written first when blessing).
fn golden_fixture() -> Vec<u8> {
    let path = fixture_path("v1_all_types.phdb");
    if blessing() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, golden_bytes()).expect("bless");
    }
    std::fs::read(&path).expect("fixture v1_all_types.phdb (bless with PHANTOM_BLESS=1)")
}

fn read(bytes: &[u8]) -> Result<(ImageMeta, Catalog), Error> {
    BinaryFormat.read(&mut &bytes[..])
}

// ----- the layout, from docs/formats/binary.md -----

const HEADER_FIXED_LEN: usize = 36;
const BLOCK_TABLE_BEGIN: u8 = 1;
const BLOCK_ROWS: u8 = 2;
const BLOCK_TABLE_END: u8 = 3;
const BLOCK_END: u8 = 4;

fn header_len(bytes: &[u8]) -> usize {
    let name_len = u16::from_le_bytes([bytes[14], bytes[15]]) as usize;
    HEADER_FIXED_LEN + name_len + 4
}

/// A block found by walking a valid file: where it starts, its kind, its payload length.
#[derive(Clone, Copy, Debug)]
struct BlockAt {
    start: usize,
    kind: u8,
    len: usize,
}

impl BlockAt {
    fn end(self) -> usize {
        self.start + 5 + self.len + 4
    }
}

fn blocks(bytes: &[u8]) -> Vec<BlockAt> {
    let mut at = header_len(bytes);
    let mut out = Vec::new();
    while at < bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let b = BlockAt {
            start: at,
            kind: bytes[at + 4],
            len,
        };
        out.push(b);
        at = b.end();
    }
    assert_eq!(at, bytes.len(), "blocks tile the file");
    out
}

/// A block with a correct length and CRC.
fn block(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut b = (payload.len() as u32).to_le_bytes().to_vec();
    b.push(kind);
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

fn table_begin(name: &str, columns: &[Column], next_row_id: RowId, rows: u64) -> Vec<u8> {
    let payload = postcard::to_stdvec(&(name, columns, next_row_id, rows)).expect("encode");
    block(BLOCK_TABLE_BEGIN, &payload)
}

fn rows_block(rows: &[(RowId, Vec<Value>)]) -> Vec<u8> {
    let mut payload = (rows.len() as u32).to_le_bytes().to_vec();
    for row in rows {
        payload.extend(postcard::to_stdvec(row).expect("encode"));
    }
    block(BLOCK_ROWS, &payload)
}

fn table_end() -> Vec<u8> {
    block(BLOCK_TABLE_END, &[])
}

fn end(tables: u64, rows: u64) -> Vec<u8> {
    let mut payload = tables.to_le_bytes().to_vec();
    payload.extend_from_slice(&rows.to_le_bytes());
    block(BLOCK_END, &payload)
}

/// The header of a valid image of database `db`.
fn header() -> Vec<u8> {
    let meta = ImageMeta {
        database: "db".into(),
        lsn: 9,
        created: None,
        kind: ImageKind::Database,
    };
    let mut bytes = Vec::new();
    BinaryFormat
        .write(&meta, &Catalog::new(), &mut bytes)
        .expect("write");
    bytes.truncate(header_len(&bytes));
    bytes
}

fn id_name_columns() -> Vec<Column> {
    vec![
        Column::new("id", ColumnType::Int).primary_key(),
        Column::new("name", ColumnType::String),
    ]
}

/// A file of the header followed by `parts`; returns it and the offset of each part.
fn image(parts: &[Vec<u8>]) -> (Vec<u8>, Vec<u64>) {
    let mut bytes = header();
    let mut offsets = Vec::new();
    for p in parts {
        offsets.push(bytes.len() as u64);
        bytes.extend_from_slice(p);
    }
    (bytes, offsets)
}

/// Whether an error is the expected kind.
type ErrorCheck = fn(&Error) -> bool;

fn at(n: usize) -> Location {
    Location::Offset(n as u64)
}

// ----- golden -----

#[test]
fn the_writer_produces_the_golden_file_byte_for_byte() {
    let golden = golden_fixture();
    assert!(
        golden_bytes() == golden,
        "binary format v1 output changed: if intended, bump the version and re-bless"
    );
}

#[test]
fn the_golden_file_reads_back_exactly() {
    let golden = golden_fixture();
    let (meta, catalog) = read(&golden).expect("read");
    assert_eq!(meta, golden_meta());
    assert_eq!(catalog, golden_catalog());
    // Nanoseconds of the creation time survive.
    assert_eq!(
        meta.created.map(|c| c.timestamp_subsec_nanos()),
        Some(123_456_789)
    );
    // Row ids and next row ids, not just values.
    let t = catalog.table("all_types").expect("table");
    assert_eq!(
        t.rows().map(|(id, _)| id).collect::<Vec<_>>(),
        vec![1, 2, 3, 5]
    );
    assert_eq!(t.next_row_id(), 6);
    let e = catalog.table("emptied").expect("table");
    assert!(e.is_empty());
    assert_eq!(e.next_row_id(), 2);
}

#[test]
fn the_golden_file_starts_with_magic_and_version_1() {
    let golden = golden_fixture();
    assert_eq!(&golden[..8], &MAGIC);
    assert_eq!(&golden[..8], b"PHDBIMG\0");
    assert_eq!(golden[8..12], 1u32.to_le_bytes());
    assert!(BinaryFormat.detect(&golden));
    assert!(!CsvFormat.detect(&golden));
    assert!(matches!(
        phantom_storage::backends::detect(&golden).map(|f| f.name()),
        Some("binary")
    ));
    let kinds: Vec<u8> = blocks(&golden).iter().map(|b| b.kind).collect();
    assert_eq!(kinds, vec![1, 2, 3, 1, 3, 4]);
}

#[test]
fn read_meta_needs_only_the_header() {
    let golden = golden_fixture();
    let header = &golden[..header_len(&golden)];
    assert_eq!(
        BinaryFormat.read_meta(&mut &header[..]).expect("meta"),
        golden_meta()
    );
}

#[test]
fn scan_counts_without_building_a_catalog() {
    let golden = golden_fixture();
    let summary = BinaryFormat.scan(&mut golden.as_slice()).expect("scan");
    assert_eq!(summary.meta, golden_meta());
    assert_eq!((summary.tables, summary.rows), (2, 4));
    assert_eq!(summary.bytes, golden.len() as u64);
}

#[test]
fn format_version_knows_only_version_1() {
    assert!(matches!(FormatVersion::try_from(1), Ok(FormatVersion::V1)));
    assert_eq!(FormatVersion::CURRENT.number(), 1);
    assert!(matches!(
        FormatVersion::try_from(2),
        Err(Error::UnsupportedVersion { found: 2, .. })
    ));
}

// ----- committed corrupt variants -----

/// Corrupt files derived from the golden one, committed so a reader change that stops
/// rejecting them fails here.
fn corrupt_fixture(name: &str, make: impl FnOnce(Vec<u8>) -> Vec<u8>) -> Vec<u8> {
    let path = fixture_path(name);
    if blessing() {
        std::fs::write(&path, make(golden_bytes())).expect("bless");
    }
    std::fs::read(&path).expect("corrupt fixture (bless with PHANTOM_BLESS=1)")
}

#[test]
fn committed_corrupt_fixtures_fail_as_expected() {
    let golden = golden_fixture();
    let rows = blocks(&golden)[1];
    assert_eq!(rows.kind, BLOCK_ROWS);

    let cut = rows.start + 5 + rows.len / 2;
    let truncated = corrupt_fixture("v1_truncated_in_rows_block.phdb", |mut b| {
        b.truncate(cut);
        b
    });
    assert!(matches!(
        read(&truncated),
        Err(Error::Truncated { location, .. }) if location == at(cut)
    ));

    let flipped = corrupt_fixture("v1_flipped_payload_byte.phdb", |mut b| {
        b[rows.start + 5 + rows.len / 2] ^= 0x01;
        b
    });
    assert!(matches!(
        read(&flipped),
        Err(Error::ChecksumMismatch { location, .. }) if location == at(rows.start)
    ));

    let version = corrupt_fixture("v1_version_99.phdb", |mut b| {
        b[8..12].copy_from_slice(&99u32.to_le_bytes());
        b
    });
    assert!(matches!(
        read(&version),
        Err(Error::UnsupportedVersion {
            found: 99,
            format: "binary"
        })
    ));
}

// ----- truncation -----

#[test]
fn every_proper_prefix_is_truncated_at_its_own_length() {
    let golden = golden_fixture();
    for cut in 0..golden.len() {
        let result = read(&golden[..cut]);
        assert!(
            matches!(&result, Err(Error::Truncated { location, .. }) if *location == at(cut)),
            "cut at {cut}: {result:?}"
        );
    }
}

#[test]
fn a_cut_at_a_block_boundary_is_a_missing_end_block() {
    let golden = golden_fixture();
    let list = blocks(&golden);
    let mut boundaries: Vec<usize> = list.iter().map(|b| b.start).collect();
    assert_eq!(boundaries.len(), 6);
    boundaries.push(header_len(&golden));
    for cut in boundaries {
        let err = read(&golden[..cut]).expect_err("truncated");
        assert!(
            matches!(&err, Error::Truncated { location, reason } if *location == at(cut) && reason.contains("end block")),
            "cut at {cut}: {err}"
        );
    }
}

// ----- flipped bytes -----

#[test]
fn a_flipped_header_byte_is_a_header_checksum_mismatch() {
    let golden = golden_fixture();
    // kind, flags, LSN, creation time, name, and the CRC itself.
    for i in [12, 13, 16, 23, 24, 35, 36, header_len(&golden) - 1] {
        let mut bad = golden.clone();
        bad[i] ^= 0x40;
        let err = read(&bad).expect_err("corrupt");
        assert!(
            matches!(err, Error::ChecksumMismatch { location, expected, found } if location == at(0) && expected != found),
            "byte {i}: {err}"
        );
    }
}

#[test]
fn a_flipped_magic_or_version_byte_is_reported_as_such() {
    let golden = golden_fixture();
    for i in 0..8 {
        let mut bad = golden.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(read(&bad), Err(Error::BadMagic { format: "binary" })),
            "byte {i}"
        );
    }
    let mut bad = golden.clone();
    bad[9] ^= 0x01;
    assert!(matches!(
        read(&bad),
        Err(Error::UnsupportedVersion { found: 257, .. })
    ));
}

#[test]
fn a_flipped_byte_in_each_block_region_is_caught_at_that_block() {
    let golden = golden_fixture();
    for b in blocks(&golden) {
        // The high byte of the length: the length goes over the cap.
        let mut bad = golden.clone();
        bad[b.start + 3] ^= 0xFF;
        let err = read(&bad).expect_err("corrupt length");
        assert!(
            matches!(&err, Error::Malformed { location, reason } if *location == at(b.start) && reason.contains("limit")),
            "block at {}: {err}",
            b.start
        );

        // The kind byte, a payload byte, a CRC byte: the block's checksum fails.
        let mut positions = vec![b.start + 4, b.start + 5 + b.len + 2];
        if b.len > 0 {
            positions.push(b.start + 5 + b.len / 2);
        }
        for i in positions {
            let mut bad = golden.clone();
            bad[i] ^= 0x10;
            let err = read(&bad).expect_err("corrupt");
            assert!(
                matches!(err, Error::ChecksumMismatch { location, expected, found } if location == at(b.start) && expected != found),
                "byte {i} of block at {}: {err}",
                b.start
            );
        }
    }
}

#[test]
fn a_shortened_block_length_is_caught() {
    let golden = golden_fixture();
    let rows = blocks(&golden)[1];
    let mut bad = golden.clone();
    bad[rows.start] ^= 0x01;
    let err = read(&bad).expect_err("corrupt");
    assert!(
        matches!(err, Error::ChecksumMismatch { location, .. } if location == at(rows.start)),
        "{err}"
    );
}

#[test]
fn bytes_after_the_end_block_are_malformed() {
    let mut bytes = golden_fixture();
    let len = bytes.len();
    bytes.push(0);
    assert!(matches!(
        read(&bytes),
        Err(Error::Malformed { location, .. }) if location == at(len)
    ));
}

#[test]
fn other_files_are_bad_magic() {
    for text in [
        &b"# PhantomDB Database File\n"[..],
        b"PHDBIMG\x01\x01\0\0\0",
        b"\0\0\0\0\0\0\0\0",
        b"x",
    ] {
        assert!(
            matches!(read(text), Err(Error::BadMagic { .. })),
            "{text:?}"
        );
    }
    assert!(matches!(read(b""), Err(Error::Truncated { location, .. }) if location == at(0)));
}

// ----- well-checksummed but inconsistent content -----

#[test]
fn a_hand_built_image_reads_like_a_written_one() {
    let (bytes, _) = image(&[
        table_begin("users", &id_name_columns(), 10, 2),
        rows_block(&[(3, vec![Value::Int(1), "a".into()])]),
        rows_block(&[(7, vec![Value::Int(2), Value::Null])]),
        table_end(),
        end(1, 2),
    ]);
    let (_, catalog) = read(&bytes).expect("valid");
    let t = catalog.table("users").expect("table");
    assert_eq!(t.rows().map(|(id, _)| id).collect::<Vec<_>>(), vec![3, 7]);
    assert_eq!(t.next_row_id(), 10);
}

#[test]
fn a_duplicate_primary_key_is_a_bad_row_at_the_row() {
    let (bytes, offsets) = image(&[
        table_begin("users", &id_name_columns(), 3, 2),
        rows_block(&[
            (1, vec![Value::Int(1), "a".into()]),
            (2, vec![Value::Int(1), "b".into()]),
        ]),
        table_end(),
        end(1, 2),
    ]);
    let first_row_len = postcard::to_stdvec(&(1u64, vec![Value::Int(1), Value::from("a")]))
        .expect("encode")
        .len() as u64;
    let second_row = offsets[1] + 5 + 4 + first_row_len;
    let err = read(&bytes).expect_err("duplicate");
    assert!(
        matches!(&err, Error::BadRow { location: Location::Offset(o), source } if *o == second_row && matches!(**source, Error::DuplicateKey { .. })),
        "{err}"
    );
    // `scan` does not build tables, so it cannot see duplicates, but checks everything else.
    assert!(BinaryFormat.scan(&mut bytes.as_slice()).is_ok());
}

#[test]
fn rows_that_do_not_fit_the_schema_are_bad_rows() {
    let cases: Vec<(Vec<Value>, ErrorCheck)> = vec![
        (vec![Value::Int(1)], |e| matches!(e, Error::Arity { .. })),
        (vec!["x".into(), "a".into()], |e| {
            matches!(e, Error::TypeMismatch { .. })
        }),
        (vec![Value::Null, "a".into()], |e| {
            matches!(e, Error::NullViolation { .. })
        }),
    ];
    for (row, expected) in cases {
        let (bytes, offsets) = image(&[
            table_begin("users", &id_name_columns(), 2, 1),
            rows_block(&[(1, row.clone())]),
            table_end(),
            end(1, 1),
        ]);
        let row_at = offsets[1] + 5 + 4;
        for result in [
            read(&bytes).map(drop),
            BinaryFormat.scan(&mut bytes.as_slice()).map(drop),
        ] {
            assert!(
                matches!(&result, Err(Error::BadRow { location: Location::Offset(o), source }) if *o == row_at && expected(source)),
                "{row:?}: {result:?}"
            );
        }
    }
}

#[test]
fn a_repeated_row_id_is_a_bad_row() {
    let (bytes, _) = image(&[
        table_begin("users", &id_name_columns(), 2, 2),
        rows_block(&[(1, vec![Value::Int(1), Value::Null])]),
        rows_block(&[(1, vec![Value::Int(2), Value::Null])]),
        table_end(),
        end(1, 2),
    ]);
    let err = read(&bytes).expect_err("repeated id");
    assert!(
        matches!(&err, Error::BadRow { source, .. } if matches!(**source, Error::RowIdInUse { row_id: 1, .. })),
        "{err}"
    );
}

#[test]
fn counts_that_disagree_are_malformed_at_the_block_that_says_so() {
    let one_row = || rows_block(&[(1, vec![Value::Int(1), Value::Null])]);
    // (parts, index of the part the error must point at)
    let cases: Vec<(Vec<Vec<u8>>, usize, &str)> = vec![
        (
            vec![
                table_begin("users", &id_name_columns(), 2, 2),
                one_row(),
                table_end(),
                end(1, 1),
            ],
            2,
            "declares 2 rows",
        ),
        (
            vec![
                table_begin("users", &id_name_columns(), 2, 0),
                one_row(),
                table_end(),
                end(1, 1),
            ],
            1,
            "declares 0 rows",
        ),
        (
            vec![
                table_begin("users", &id_name_columns(), 1, 1),
                one_row(),
                table_end(),
                end(1, 1),
            ],
            2,
            "next row id",
        ),
        (
            vec![
                table_begin("users", &id_name_columns(), 2, 1),
                one_row(),
                table_end(),
                end(1, 5),
            ],
            3,
            "end block",
        ),
        (
            vec![
                table_begin("users", &id_name_columns(), 2, 1),
                one_row(),
                table_end(),
                end(2, 1),
            ],
            3,
            "end block",
        ),
    ];
    for (parts, index, needle) in cases {
        let (bytes, offsets) = image(&parts);
        let err = read(&bytes).expect_err("inconsistent");
        assert!(
            matches!(&err, Error::Malformed { location: Location::Offset(o), reason } if *o == offsets[index] && reason.contains(needle)),
            "expected {needle:?} at part {index}: {err}"
        );
    }
}

#[test]
fn blocks_out_of_grammar_order_are_malformed() {
    let cases: Vec<(Vec<Vec<u8>>, usize)> = vec![
        // rows outside a table
        (vec![rows_block(&[]), end(0, 0)], 0),
        // table-end outside a table
        (vec![table_end(), end(0, 0)], 0),
        // end inside a table
        (
            vec![table_begin("users", &id_name_columns(), 1, 0), end(0, 0)],
            1,
        ),
        // table-begin inside a table
        (
            vec![
                table_begin("a", &id_name_columns(), 1, 0),
                table_begin("b", &id_name_columns(), 1, 0),
            ],
            1,
        ),
        // unknown kind
        (vec![block(9, b"?"), end(0, 0)], 0),
        // end block of the wrong size
        (vec![block(BLOCK_END, &[0; 15])], 0),
        // table-end with a payload
        (
            vec![
                table_begin("users", &id_name_columns(), 1, 0),
                block(BLOCK_TABLE_END, b"x"),
                end(1, 0),
            ],
            1,
        ),
        // rows block too short for its count
        (
            vec![
                table_begin("users", &id_name_columns(), 1, 0),
                block(BLOCK_ROWS, &[1, 0]),
            ],
            1,
        ),
        // table-begin payload that is not a table definition
        (vec![block(BLOCK_TABLE_BEGIN, &[0xFF; 3]), end(0, 0)], 0),
    ];
    for (i, (parts, index)) in cases.into_iter().enumerate() {
        let (bytes, offsets) = image(&parts);
        let err = read(&bytes).expect_err("out of order");
        assert!(
            matches!(&err, Error::Malformed { location: Location::Offset(o), .. } if *o == offsets[index]),
            "case {i}: {err}"
        );
    }
}

#[test]
fn bad_table_definitions_are_bad_definitions() {
    let cases: Vec<(Vec<Vec<u8>>, usize, ErrorCheck)> = vec![
        (
            vec![table_begin("../x", &id_name_columns(), 1, 0)],
            0,
            |e| matches!(e, Error::InvalidName { .. }),
        ),
        (vec![table_begin("t", &[], 1, 0)], 0, |e| {
            matches!(e, Error::InvalidSchema { .. })
        }),
        (
            vec![table_begin(
                "t",
                &[
                    Column::new("a", ColumnType::Int).primary_key(),
                    Column::new("b", ColumnType::Int).primary_key(),
                ],
                1,
                0,
            )],
            0,
            |e| matches!(e, Error::InvalidSchema { .. }),
        ),
        (
            vec![
                table_begin("t", &id_name_columns(), 1, 0),
                table_end(),
                table_begin("t", &id_name_columns(), 1, 0),
            ],
            2,
            |e| matches!(e, Error::TableExists { .. }),
        ),
    ];
    for (i, (parts, index, expected)) in cases.into_iter().enumerate() {
        let (bytes, offsets) = image(&parts);
        let err = read(&bytes).expect_err("bad definition");
        assert!(
            matches!(&err, Error::BadDefinition { location: Location::Offset(o), source } if *o == offsets[index] && expected(source)),
            "case {i}: {err}"
        );
    }
}

#[test]
fn a_huge_block_length_is_refused_before_allocating() {
    let mut bytes = header();
    let at_block = bytes.len();
    bytes.extend_from_slice(&(MAX_BLOCK_PAYLOAD as u32 + 1).to_le_bytes());
    bytes.push(BLOCK_ROWS);
    let err = read(&bytes).expect_err("too long");
    assert!(
        matches!(&err, Error::Malformed { location, .. } if *location == at(at_block)),
        "{err}"
    );
    // At the cap, the length is acceptable and the missing bytes are a truncation.
    bytes[at_block..at_block + 4].copy_from_slice(&(MAX_BLOCK_PAYLOAD as u32).to_le_bytes());
    assert!(matches!(read(&bytes), Err(Error::Truncated { .. })));
}

#[test]
fn header_fields_out_of_range_are_malformed() {
    let patch = |i: usize, v: u8| {
        let mut h = header();
        h[i] = v;
        let n = h.len() - 4;
        let crc = crc32c::crc32c(&h[..n]);
        h[n..].copy_from_slice(&crc.to_le_bytes());
        h.extend(end(0, 0));
        h
    };
    // kind 7, unknown flag, creation time flagged absent but set
    for (i, v, field) in [(12, 7, 12), (13, 0x80, 13), (24, 1, 24)] {
        let err = read(&patch(i, v)).expect_err("bad header");
        assert!(
            matches!(&err, Error::Malformed { location, .. } if *location == at(field)),
            "byte {i}: {err}"
        );
    }
}

// ----- writer -----

#[test]
fn many_rows_span_several_blocks_and_round_trip() {
    let mut catalog = Catalog::new();
    catalog
        .create_table(
            "big",
            Schema::new("big", id_name_columns()).expect("schema"),
        )
        .expect("create");
    let t = catalog.table_mut("big").expect("table");
    for i in 0..5_000 {
        t.insert(vec![Value::Int(i), format!("name number {i}").into()])
            .expect("insert");
    }
    let mut bytes = Vec::new();
    BinaryFormat
        .write(&golden_meta(), &catalog, &mut bytes)
        .expect("write");
    let row_blocks = blocks(&bytes)
        .iter()
        .filter(|b| b.kind == BLOCK_ROWS)
        .count();
    assert!(row_blocks >= 2, "{row_blocks} row blocks");
    assert_eq!(read(&bytes).expect("read").1, catalog);
}

#[test]
fn a_row_over_the_block_limit_is_refused_by_the_writer() {
    let mut catalog = Catalog::new();
    catalog
        .create_table(
            "big",
            Schema::new("big", id_name_columns()).expect("schema"),
        )
        .expect("create");
    let t = catalog.table_mut("big").expect("table");
    t.insert(vec![Value::Int(1), "small".into()])
        .expect("insert");
    t.insert(vec![Value::Int(2), "x".repeat(MAX_BLOCK_PAYLOAD).into()])
        .expect("insert");
    let err = BinaryFormat
        .write(&golden_meta(), &catalog, &mut std::io::sink())
        .expect_err("too large");
    assert!(
        matches!(err, Error::RowTooLarge { row_id: 2, ref table, .. } if table == "big"),
        "{err}"
    );
}

/// Reads at most one byte per call, as a slow pipe might.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match (self.0.split_first(), buf.first_mut()) {
            (Some((b, rest)), Some(slot)) => {
                *slot = *b;
                self.0 = rest;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}

#[test]
fn short_reads_are_handled() {
    let golden = golden_fixture();
    let (meta, catalog) = BinaryFormat
        .read(&mut Trickle(&golden))
        .expect("read byte by byte");
    assert_eq!((meta, catalog), (golden_meta(), golden_catalog()));
}

// ----- no panics on any damage -----

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_damage_never_panics(
        edits in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<proptest::sample::Index>()),
        insert in proptest::option::of((any::<proptest::sample::Index>(), proptest::collection::vec(any::<u8>(), 1..16))),
    ) {
        let golden = golden_fixture();
        let mut bytes = golden.clone();
        for (i, v) in edits {
            let i = i.index(bytes.len());
            bytes[i] = v;
        }
        if let Some((i, extra)) = insert {
            let i = i.index(bytes.len());
            bytes.splice(i..i, extra);
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len()));
        }
        let scanned = BinaryFormat.scan(&mut bytes.as_slice());
        match read(&bytes) {
            // Only a mutation that changed nothing can read back.
            Ok((meta, catalog)) => {
                prop_assert!(bytes == golden);
                prop_assert_eq!(meta, golden_meta());
                prop_assert_eq!(catalog, golden_catalog());
                prop_assert!(scanned.is_ok());
            }
            Err(e) => {
                // Every error names where it happened, except magic and version (offset 0
                // and 8 by definition) and I/O.
                let located = matches!(
                    e,
                    Error::Truncated { .. }
                        | Error::Malformed { .. }
                        | Error::ChecksumMismatch { .. }
                        | Error::BadRow { .. }
                        | Error::BadDefinition { .. }
                        | Error::BadMagic { .. }
                        | Error::UnsupportedVersion { .. }
                );
                prop_assert!(located, "{e}");
            }
        }
    }
}

/// Rows `first..first + n` of the `id_name_columns` shape, each with its id as its key.
fn numbered_rows(first: u64, n: u64) -> Vec<(RowId, Vec<Value>)> {
    (first..first + n)
        .map(|id| (id, vec![Value::Int(id as i64), Value::from("x")]))
        .collect()
}

/// Reading decodes on the calling thread and builds the tables on another; whichever stage
/// fails, the error is the first one in file order, as in a sequential read.
#[test]
fn the_first_error_in_file_order_wins_whichever_stage_finds_it() {
    const N: u64 = 5_000; // several batches of the pipeline in flight
    let mut dup = numbered_rows(N + 1, N);
    dup[N as usize - 1].1[0] = Value::Int(7); // duplicates row 7's key, in the second block
    let good_tail = rows_block(&numbered_rows(2 * N + 1, 10));
    let mut flipped_tail = good_tail.clone();
    flipped_tail[10] ^= 0xff;

    // A duplicate key (found by the builder) before a corrupt block (found by the decoder).
    let (bytes, offsets) = image(&[
        table_begin("users", &id_name_columns(), 2 * N + 11, 2 * N + 10),
        rows_block(&numbered_rows(1, N)),
        rows_block(&dup),
        flipped_tail.clone(),
        table_end(),
        end(1, 2 * N + 10),
    ]);
    let err = read(&bytes).expect_err("duplicate key");
    assert!(
        matches!(&err, Error::BadRow { location: Location::Offset(o), source } if *o > offsets[2] && *o < offsets[3] && matches!(**source, Error::DuplicateKey { .. })),
        "{err}"
    );

    // A value of the wrong type (checked by the builder too) before the corrupt block.
    let mut mistyped = numbered_rows(N + 1, N);
    mistyped[N as usize - 1].1[0] = Value::from("not an int");
    let (bytes, offsets) = image(&[
        table_begin("users", &id_name_columns(), 2 * N + 11, 2 * N + 10),
        rows_block(&numbered_rows(1, N)),
        rows_block(&mistyped),
        flipped_tail.clone(),
        table_end(),
        end(1, 2 * N + 10),
    ]);
    let err = read(&bytes).expect_err("wrong type");
    assert!(
        matches!(&err, Error::BadRow { location: Location::Offset(o), source } if *o > offsets[2] && *o < offsets[3] && matches!(**source, Error::TypeMismatch { .. })),
        "{err}"
    );

    // The corrupt block first, the duplicate after it: the decoder's error.
    let (bytes, offsets) = image(&[
        table_begin("users", &id_name_columns(), 2 * N + 11, 2 * N + 10),
        rows_block(&numbered_rows(1, N)),
        flipped_tail,
        rows_block(&dup),
        table_end(),
        end(1, 2 * N + 10),
    ]);
    let err = read(&bytes).expect_err("corrupt block");
    assert!(
        matches!(&err, Error::ChecksumMismatch { location: Location::Offset(o), .. } if *o == offsets[2]),
        "{err}"
    );

    // Both fixed: every row arrives.
    let (bytes, _) = image(&[
        table_begin("users", &id_name_columns(), 2 * N + 11, 2 * N + 10),
        rows_block(&numbered_rows(1, N)),
        rows_block(&numbered_rows(N + 1, N)),
        good_tail,
        table_end(),
        end(1, 2 * N + 10),
    ]);
    let (_, catalog) = read(&bytes).expect("valid image");
    let table = catalog.table("users").expect("table");
    assert_eq!(table.len() as u64, 2 * N + 10);
    assert_eq!(table.lookup_primary_key(&Value::Int(7)), Some(7));
}
