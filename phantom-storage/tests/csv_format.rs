//! The CSV image format (`CsvFormat`) against its specification, `docs/formats/csv.md`: the
//! spec's golden layout, round trips of awkward values, files written by the original C++
//! implementation, corrupted and malformed files (each error with its variant and line), and a
//! no-panic property over arbitrary input.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use phantom_storage::{
    Catalog, Column, ColumnType, CsvFormat, Error, ImageKind, ImageMeta, Location, Schema,
    StorageFormat, Value,
};
use proptest::prelude::*;

// ----- helpers -----

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/csv")
        .join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

fn spec_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T15:50:06Z")
        .expect("time")
        .to_utc()
}

fn meta(kind: ImageKind, lsn: u64, created: Option<DateTime<Utc>>) -> ImageMeta {
    ImageMeta {
        database: "test_db".into(),
        lsn,
        created,
        kind,
    }
}

/// The spec's example database: table users (id int, name string, email string), two rows.
fn spec_users() -> Catalog {
    let mut catalog = Catalog::new();
    let schema = Schema::new(
        "users",
        vec![
            Column::new("id", ColumnType::Int),
            Column::new("name", ColumnType::String),
            Column::new("email", ColumnType::String),
        ],
    )
    .expect("schema");
    catalog.create_table("users", schema).expect("table");
    let users = catalog.table_mut("users").expect("users");
    users
        .insert(vec![
            Value::Int(1),
            "John Doe".into(),
            "john@example.com".into(),
        ])
        .expect("row");
    users
        .insert(vec![
            Value::Int(2),
            "Jane Smith".into(),
            "jane@example.com".into(),
        ])
        .expect("row");
    catalog
}

fn write(meta: &ImageMeta, catalog: &Catalog) -> Vec<u8> {
    let mut out = Vec::new();
    CsvFormat.write(meta, catalog, &mut out).expect("write");
    out
}

fn read(bytes: &[u8]) -> Result<(ImageMeta, Catalog), Error> {
    CsvFormat.read(&mut &bytes[..])
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).expect("utf-8")
}

/// Writes and reads back, asserting the image is unchanged, and returns the written text.
fn round_trip(catalog: &Catalog) -> String {
    let m = meta(ImageKind::Database, 7, Some(spec_time()));
    let bytes = write(&m, catalog);
    let (back_meta, back) = read(&bytes).unwrap_or_else(|e| panic!("{e}\n{}", text(&bytes)));
    assert_eq!(back_meta, m);
    assert_eq!(&back, catalog, "{}", text(&bytes));
    text(&bytes).to_owned()
}

fn single_table(columns: Vec<Column>, rows: Vec<Vec<Value>>) -> Catalog {
    let mut catalog = Catalog::new();
    catalog
        .create_table("t", Schema::new("t", columns).expect("schema"))
        .expect("table");
    let t = catalog.table_mut("t").expect("t");
    for row in rows {
        t.insert(row).expect("row");
    }
    catalog
}

/// The line of an error, whatever its variant.
fn line_of(err: &Error) -> Option<u64> {
    match err {
        Error::Truncated { location, .. }
        | Error::Malformed { location, .. }
        | Error::BadRow { location, .. }
        | Error::BadDefinition { location, .. }
        | Error::ChecksumMismatch { location, .. } => match location {
            Location::Line(n) => Some(*n),
            Location::Offset(_) => None,
        },
        Error::MissingChecksum { line, .. } => Some(*line),
        _ => None,
    }
}

/// Reads `input`, expecting an error on `line`; returns the error for variant checks.
fn read_err(input: &str, line: u64) -> Error {
    let err = match read(input.as_bytes()) {
        Ok(_) => panic!("read succeeded on:\n{input}"),
        Err(e) => e,
    };
    assert_eq!(line_of(&err), Some(line), "{err}");
    err
}

/// The header of a file in the original layout (no version, no checksum).
const LEGACY_HEADER: &str = "# PhantomDB Database File\n# Database: test_db\n# Format: CSV\n\
# Generated: 2026-11-24 15:50:06 UTC\n# Type: Snapshot\n\n";

// ----- golden -----

/// The database file exactly as `docs/formats/csv.md` quotes it from the spec.
const SPEC_DATABASE_FILE: &str = "\
# PhantomDB Database File
# Database: test_db
# Format: CSV
# Generated: 2026-11-24 15:50:06 UTC
# Type: Snapshot

[TABLE:users]
COLUMNS:id:int,name:string,email:string
DATA:id,name,email
ROW:1,John Doe,john@example.com
ROW:2,Jane Smith,jane@example.com

";

/// Our additions are `#` lines with these keys; without them a file is the spec's layout.
fn without_our_lines(file: &str) -> String {
    const OURS: [&str; 7] = [
        "# Format-Version:",
        "# LSN:",
        "# Rows:",
        "# Next-Row-Id:",
        "# Constraints:",
        "# Row-Id:",
        "# Checksum:",
    ];
    file.split_inclusive('\n')
        .filter(|line| !OURS.iter().any(|k| line.starts_with(k)))
        .collect()
}

#[test]
fn golden_the_spec_example_is_written_with_the_spec_lines() {
    let bytes = write(
        &meta(ImageKind::Database, 42, Some(spec_time())),
        &spec_users(),
    );
    assert_eq!(without_our_lines(text(&bytes)), SPEC_DATABASE_FILE);
}

#[test]
fn golden_the_spec_example_matches_the_committed_fixture_byte_for_byte() {
    let m = meta(ImageKind::Database, 42, Some(spec_time()));
    let bytes = write(&m, &spec_users());
    assert_eq!(text(&bytes), text(&read_fixture("v1_users.db")));
    let (back_meta, back) = read(&read_fixture("v1_users.db")).expect("fixture reads");
    assert_eq!(back_meta, m);
    assert_eq!(back, spec_users());
}

#[test]
fn golden_a_snapshot_differs_in_lines_1_and_4() {
    let db = write(
        &meta(ImageKind::Database, 0, Some(spec_time())),
        &spec_users(),
    );
    let snap = write(
        &meta(ImageKind::Snapshot, 0, Some(spec_time())),
        &spec_users(),
    );
    let db_lines: Vec<&str> = text(&db).lines().collect();
    let snap_lines: Vec<&str> = text(&snap).lines().collect();
    assert_eq!(snap_lines[0], "# PhantomDB Database Snapshot");
    assert_eq!(snap_lines[3], "# Timestamp: 2026-11-24 15:50:06 UTC");
    let differing: Vec<usize> = (0..db_lines.len())
        .filter(|&i| db_lines[i] != snap_lines[i])
        .collect();
    // Lines 1 and 4, and the checksum over them.
    assert_eq!(differing, vec![0, 3, db_lines.len() - 1]);
    let (m, _) = read(&snap).expect("snapshot reads");
    assert_eq!(m.kind, ImageKind::Snapshot);
}

#[test]
fn header_values_round_trip_including_missing_and_fractional_times() {
    let with_nanos = spec_time() + chrono::Duration::nanoseconds(123_456_789);
    // 2016-12-31 23:59:60.5, a leap second as chrono represents it (nanoseconds ≥ 1e9).
    let leap = DateTime::from_timestamp(1_483_228_799, 1_500_000_000);
    assert!(leap.is_some());
    for created in [None, Some(spec_time()), Some(with_nanos), leap] {
        for lsn in [0, 1, u64::MAX] {
            let m = meta(ImageKind::Snapshot, lsn, created);
            let bytes = write(&m, &Catalog::new());
            assert_eq!(read(&bytes).expect("read").0, m);
            assert_eq!(CsvFormat.read_meta(&mut bytes.as_slice()).expect("meta"), m);
        }
    }
    let bytes = write(&meta(ImageKind::Database, 0, None), &Catalog::new());
    assert!(text(&bytes).contains("\n# Generated: unknown\n"));
}

#[test]
fn read_meta_reads_only_the_header() {
    let mut bytes = LEGACY_HEADER.as_bytes().to_vec();
    bytes.extend_from_slice(b"this body is not valid\n");
    let m = CsvFormat.read_meta(&mut bytes.as_slice()).expect("meta");
    assert_eq!(m, meta(ImageKind::Database, 0, Some(spec_time())));
    assert!(read(&bytes).is_err());
}

#[test]
fn invalid_database_names_are_refused_before_writing() {
    let mut m = meta(ImageKind::Database, 0, None);
    m.database = "../x".into();
    let mut out = Vec::new();
    assert!(matches!(
        CsvFormat.write(&m, &Catalog::new(), &mut out),
        Err(Error::InvalidName { .. })
    ));
    assert!(out.is_empty());
}

// ----- round trips -----

#[test]
fn tricky_strings_round_trip_and_null_differs_from_empty() {
    let tricky = [
        "",
        ",",
        "\"",
        "\"\"",
        "a,b\"c",
        "\r",
        "\n",
        "\r\n",
        "line 1\nline 2\r\nline 3\rend",
        " leading",
        "trailing ",
        "  ",
        "\n\n[TABLE:evil]\nROW:1\n\n# Checksum: crc32c=00000000\n",
        "# not a comment",
        "ROW:",
        "héllo wörld — 日本語 🦀",
        "\u{feff}bom",
        "tab\there",
        "nul\0byte",
    ];
    let mut rows: Vec<Vec<Value>> = tricky
        .iter()
        .enumerate()
        .map(|(i, s)| vec![Value::Int(i as i64), (*s).into(), (*s).into()])
        .collect();
    rows.push(vec![Value::Int(100), Value::Null, "".into()]);
    rows.push(vec![Value::Int(101), "".into(), Value::Null]);
    let catalog = single_table(
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("a", ColumnType::String),
            Column::new("b", ColumnType::String),
        ],
        rows,
    );
    let file = round_trip(&catalog);
    assert!(file.contains("\nROW:100,,\"\"\n"), "{file}");
}

#[test]
fn a_single_column_table_keeps_null_and_empty_apart() {
    let catalog = single_table(
        vec![Column::new("s", ColumnType::String)],
        vec![vec![Value::Null], vec!["".into()], vec![Value::Null]],
    );
    let file = round_trip(&catalog);
    assert!(file.contains("\nROW:\nROW:\"\"\nROW:\n"), "{file}");
}

#[test]
fn float_specials_and_integer_extremes_round_trip() {
    let floats = [
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::MIN,
        f64::MAX,
        f64::MIN_POSITIVE,
        5e-324,
        0.1,
        1e300,
        -123.456,
    ];
    let ints = [i64::MIN, i64::MAX, 0, -1, 1];
    let rows = floats
        .iter()
        .zip(ints.iter().cycle())
        .map(|(f, i)| vec![Value::Int(*i), Value::Float(*f)])
        .collect();
    let catalog = single_table(
        vec![
            Column::new("i", ColumnType::Int),
            Column::new("f", ColumnType::Float),
        ],
        rows,
    );
    let file = round_trip(&catalog);
    for expected in [
        "ROW:9223372036854775807,-0.0\n",
        "NaN\n",
        "inf\n",
        "-inf\n",
        "-9223372036854775808,",
    ] {
        assert!(file.contains(expected), "{expected}: {file}");
    }
    let (_, back) = read(file.as_bytes()).expect("read");
    let (_, row) = back.table("t").expect("t").rows().nth(1).expect("row 2");
    assert!(matches!(row[1], Value::Float(f) if f == 0.0 && f.is_sign_negative()));
}

#[test]
fn every_type_round_trips_with_and_without_nulls() {
    let columns: Vec<Column> = ColumnType::ALL
        .iter()
        .map(|ty| Column::new(format!("c_{}", ty.name()), *ty))
        .collect();
    let full = vec![
        Value::Int(-42),
        Value::Float(2.5),
        "text, \"quoted\"".into(),
        Value::Bool(false),
        Value::parse(ColumnType::Date, "2024-02-29").expect("date"),
        Value::parse(ColumnType::Time, "00:00:00").expect("time"),
        Value::parse(ColumnType::Timestamp, "1970-01-01 00:00:00").expect("ts"),
    ];
    let nulls = vec![Value::Null; columns.len()];
    let catalog = single_table(columns, vec![full, nulls.clone(), nulls]);
    let file = round_trip(&catalog);
    assert!(file.contains("\nROW:,,,,,,\n"), "{file}");
}

#[test]
fn tables_without_rows_have_no_data_line_and_keep_their_next_row_id() {
    let mut catalog = single_table(
        vec![Column::new("x", ColumnType::Int)],
        vec![vec![Value::Int(1)], vec![Value::Int(2)]],
    );
    let t = catalog.table_mut("t").expect("t");
    t.delete(1).expect("delete");
    t.delete(2).expect("delete");
    catalog
        .create_table(
            "never_used",
            Schema::new("never_used", vec![Column::new("y", ColumnType::Bool)]).expect("schema"),
        )
        .expect("table");
    let file = round_trip(&catalog);
    assert!(!file.contains("DATA:"), "{file}");
    assert!(file.contains("[TABLE:t]\n# Rows: 0\n# Next-Row-Id: 3\nCOLUMNS:x:int\n\n"));
    let (_, back) = read(file.as_bytes()).expect("read");
    assert_eq!(back.table("t").expect("t").next_row_id(), 3);
}

#[test]
fn constraints_round_trip_in_a_constraints_line() {
    let catalog = single_table(
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("name", ColumnType::String).not_null(),
            Column::new("note", ColumnType::String),
        ],
        vec![vec![Value::Int(1), "a".into(), Value::Null]],
    );
    let file = round_trip(&catalog);
    assert!(
        file.contains("\n# Constraints: id=primary_key,name=not_null\nCOLUMNS:id:int,name:string,note:string\n"),
        "{file}"
    );
    let (_, back) = read(file.as_bytes()).expect("read");
    let t = back.table("t").expect("t");
    assert_eq!(t.lookup_primary_key(&Value::Int(1)), Some(1));
}

#[test]
fn non_dense_row_ids_are_kept_with_row_id_lines_only_at_gaps() {
    let mut catalog = single_table(
        vec![Column::new("x", ColumnType::Int)],
        (1..=10).map(|i| vec![Value::Int(i)]).collect(),
    );
    let t = catalog.table_mut("t").expect("t");
    for id in [1, 2, 5, 9, 10] {
        t.delete(id).expect("delete");
    }
    let file = round_trip(&catalog);
    let rows: Vec<&str> = file
        .lines()
        .filter(|l| l.starts_with("ROW:") || l.starts_with("# Row-Id:"))
        .collect();
    assert_eq!(
        rows,
        vec![
            "# Row-Id: 3",
            "ROW:3",
            "ROW:4",
            "# Row-Id: 6",
            "ROW:6",
            "ROW:7",
            "ROW:8"
        ]
    );
    assert!(file.contains("# Next-Row-Id: 11\n"));
    let (_, back) = read(file.as_bytes()).expect("read");
    let ids: Vec<u64> = back
        .table("t")
        .expect("t")
        .rows()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, vec![3, 4, 6, 7, 8]);
}

#[test]
fn row_ids_zero_and_max_round_trip() {
    let mut catalog = single_table(vec![Column::new("x", ColumnType::Int)], vec![]);
    let t = catalog.table_mut("t").expect("t");
    t.insert_with_id(0, vec![Value::Int(0)]).expect("id 0");
    t.insert_with_id(u64::MAX, vec![Value::Int(1)])
        .expect("id max");
    round_trip(&catalog);
}

#[test]
fn many_tables_round_trip_in_name_order() {
    let mut catalog = Catalog::new();
    for name in ["zeta", "alpha", "mid_1"] {
        catalog
            .create_table(
                name,
                Schema::new(name, vec![Column::new("v", ColumnType::String)]).expect("schema"),
            )
            .expect("table");
        catalog
            .table_mut(name)
            .expect("table")
            .insert(vec![name.into()])
            .expect("row");
    }
    let file = round_trip(&catalog);
    let order: Vec<&str> = file.lines().filter(|l| l.starts_with("[TABLE:")).collect();
    assert_eq!(
        order,
        vec!["[TABLE:alpha]", "[TABLE:mid_1]", "[TABLE:zeta]"]
    );
    round_trip(&Catalog::new());
}

#[test]
fn writing_the_same_catalog_twice_gives_the_same_bytes() {
    let m = meta(ImageKind::Database, 3, Some(spec_time()));
    assert_eq!(write(&m, &spec_users()), write(&m, &spec_users()));
}

// ----- files written by the C++ original -----

/// What the C++ fixtures `cpp_database.db` and its CRLF variant hold.
fn expected_cpp_catalog() -> Catalog {
    let mut c = Catalog::new();
    let users = Schema::new(
        "users",
        vec![
            Column::new("id", ColumnType::Int),
            Column::new("name", ColumnType::String),
            Column::new("email", ColumnType::String),
        ],
    )
    .expect("schema");
    c.create_table("users", users).expect("users");
    let t = c.table_mut("users").expect("users");
    for row in [
        vec![Value::Int(1), "John Doe".into(), "john@example.com".into()],
        vec![
            Value::Int(2),
            "Jane Smith".into(),
            "jane@example.com".into(),
        ],
        vec![Value::Int(3), "Doe, John".into(), Value::Null],
        vec![Value::Int(4), "She said \"hi\"".into(), "two\nlines".into()],
    ] {
        t.insert(row).expect("row");
    }
    let products = Schema::new(
        "products",
        vec![
            Column::new("sku", ColumnType::Int),
            Column::new("title", ColumnType::String),
            Column::new("price", ColumnType::Float),
            Column::new("in_stock", ColumnType::Bool),
            Column::new("added", ColumnType::Date),
            Column::new("opens", ColumnType::Time),
            Column::new("updated", ColumnType::Timestamp),
        ],
    )
    .expect("schema");
    c.create_table("products", products).expect("products");
    let p = |ty, s| Value::parse(ty, s).expect(s);
    let t = c.table_mut("products").expect("products");
    for row in [
        vec![
            Value::Int(100),
            "Widget".into(),
            Value::Float(9.99),
            Value::Bool(true),
            p(ColumnType::Date, "2026-11-24"),
            p(ColumnType::Time, "09:00:00"),
            p(ColumnType::Timestamp, "2026-11-24 15:50:06"),
        ],
        vec![
            Value::Int(101),
            "Gadget".into(),
            Value::Float(-0.5),
            Value::Bool(false),
            p(ColumnType::Date, "2024-02-29"),
            p(ColumnType::Time, "23:59:59"),
            Value::Null,
        ],
        vec![
            Value::Int(-7),
            Value::Null,
            Value::Float(1000.0),
            Value::Bool(true),
            Value::Null,
            Value::Null,
            Value::Null,
        ],
    ] {
        t.insert(row).expect("row");
    }
    c.create_table(
        "empty",
        Schema::new("empty", vec![Column::new("note", ColumnType::String)]).expect("schema"),
    )
    .expect("empty");
    c
}

#[test]
fn a_cpp_database_file_loads_with_its_values() {
    let (m, catalog) = read(&read_fixture("cpp_database.db")).expect("C++ file loads");
    // A compile-time `# Generated:` date is no creation time; no LSN line is LSN 0.
    assert_eq!(m, meta(ImageKind::Database, 0, None));
    assert_eq!(catalog, expected_cpp_catalog());
}

#[test]
fn a_crlf_cpp_file_loads_the_same_values_without_any_cr() {
    let (m, catalog) = read(&read_fixture("cpp_database_crlf.db")).expect("CRLF file loads");
    assert_eq!(m, meta(ImageKind::Database, 0, None));
    assert_eq!(catalog, expected_cpp_catalog());
    for table in catalog.tables() {
        assert!(!table.name().contains('\r'));
        for (_, row) in table.rows() {
            for v in row.iter() {
                assert!(!v.to_string().contains('\r'), "{v:?}");
            }
        }
    }
}

#[test]
fn a_cpp_snapshot_loads_with_its_timestamp() {
    let (m, catalog) =
        read(&read_fixture("cpp_snapshot_20261124_155006")).expect("C++ snapshot loads");
    assert_eq!(m, meta(ImageKind::Snapshot, 0, Some(spec_time())));
    assert_eq!(catalog, spec_users());
}

#[test]
fn an_older_cpp_writer_file_without_type_line_loads() {
    let (m, catalog) = read(&read_fixture("cpp_old_writer.db")).expect("old file loads");
    assert_eq!(m.database, "my_database");
    assert_eq!(m.created, None);
    assert_eq!(catalog, spec_users());
}

#[test]
fn a_utf8_bom_before_the_first_line_is_tolerated() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend_from_slice(&read_fixture("cpp_database.db"));
    assert!(CsvFormat.detect(&bytes));
    assert_eq!(read(&bytes).expect("read").1, expected_cpp_catalog());
}

#[test]
fn inside_quotes_of_an_lf_file_a_crlf_is_data() {
    let input = format!("{LEGACY_HEADER}[TABLE:t]\nCOLUMNS:s:string\nDATA:s\nROW:\"a\r\nb\"\n\n");
    let (_, catalog) = read(input.as_bytes()).expect("read");
    let (_, row) = catalog.table("t").expect("t").rows().next().expect("row");
    assert_eq!(row[0], Value::from("a\r\nb"));
}

// ----- corrupted version-1 files -----

/// The golden fixture cut after `len` bytes.
fn golden_cut(len: usize) -> Vec<u8> {
    read_fixture("v1_users.db")[..len].to_vec()
}

/// Byte length of the fixture's first `lines` lines.
fn golden_prefix(lines: usize) -> usize {
    text(&read_fixture("v1_users.db"))
        .split_inclusive('\n')
        .take(lines)
        .map(str::len)
        .sum()
}

#[test]
fn a_truncated_v1_file_fails_naming_the_line() {
    // (bytes kept, expected line, what the error must be)
    type Check = fn(&Error) -> bool;
    let truncated: Check = |e| matches!(e, Error::Truncated { .. });
    let missing: Check = |e| matches!(e, Error::MissingChecksum { version: 1, .. });
    let cases: [(usize, u64, Check); 10] = [
        (0, 1, truncated),
        (10, 1, truncated),                      // inside line 1
        (golden_prefix(1) + 5, 2, truncated),    // inside the header
        (golden_prefix(6), 6, truncated),        // header without its blank line
        (golden_prefix(7) - 1, 7, truncated),    // `# LSN: 42` without its LF
        (golden_prefix(8), 8, missing),          // after the header
        (golden_prefix(14), 14, truncated),      // inside the table block
        (golden_prefix(14) + 7, 15, truncated),  // inside a row
        (golden_prefix(16), 16, missing),        // after the block
        (golden_prefix(16) + 10, 17, truncated), // inside the checksum line
    ];
    for (len, line, check) in cases {
        let err = read(&golden_cut(len)).expect_err("truncated file must fail");
        assert!(check(&err), "cut at {len}: {err}");
        assert_eq!(line_of(&err), Some(line), "cut at {len}: {err}");
    }
    // Only the final LF missing.
    let full = read_fixture("v1_users.db");
    let err = read(&full[..full.len() - 1]).expect_err("missing LF");
    assert!(
        matches!(
            err,
            Error::Truncated {
                location: Location::Line(17),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_truncated_quoted_multi_line_value_is_reported_as_truncation() {
    let catalog = single_table(
        vec![Column::new("s", ColumnType::String)],
        vec![vec!["first\nsecond\nthird".into()]],
    );
    let bytes = write(&meta(ImageKind::Database, 0, None), &catalog);
    let cut = text(&bytes).find("second").expect("value") + 3;
    let err = read(&bytes[..cut]).expect_err("cut inside the value");
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
    // Legacy files (no version, no checksum) too: the file ends inside the quotes.
    let legacy = format!("{LEGACY_HEADER}[TABLE:t]\nCOLUMNS:s:string\nDATA:s\nROW:\"a\nb\n");
    // The error names the last line, where the data ended.
    let err = read_err(&legacy, 11);
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn a_flipped_byte_in_a_value_is_a_checksum_mismatch_on_the_checksum_line() {
    let mut bytes = read_fixture("v1_users.db");
    let at = text(&bytes).find("John").expect("value") + 1;
    bytes[at] ^= 0x01;
    let err = read(&bytes).expect_err("corrupt");
    assert!(
        matches!(
            err,
            Error::ChecksumMismatch {
                location: Location::Line(17),
                expected: 0xfad9_88f8,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn every_single_byte_change_of_a_v1_file_is_detected() {
    let golden = read_fixture("v1_users.db");
    for at in 0..golden.len() {
        for mask in [0x01u8, 0x20, 0x80, 0xff] {
            let mut bytes = golden.clone();
            bytes[at] ^= mask;
            assert!(
                read(&bytes).is_err(),
                "byte {at} ^ {mask:#x} went unnoticed:\n{}",
                String::from_utf8_lossy(&bytes)
            );
        }
    }
}

#[test]
fn a_v1_file_without_its_checksum_line_is_an_error() {
    let bytes = golden_cut(golden_prefix(16));
    let err = read(&bytes).expect_err("no checksum");
    assert!(
        matches!(
            err,
            Error::MissingChecksum {
                line: 16,
                version: 1
            }
        ),
        "{err}"
    );
}

#[test]
fn anything_after_the_checksum_line_is_an_error() {
    let mut bytes = read_fixture("v1_users.db");
    bytes.extend_from_slice(b"\n");
    let err = read(&bytes).expect_err("trailing data");
    assert!(
        matches!(
            err,
            Error::Malformed {
                location: Location::Line(18),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_malformed_checksum_line_is_an_error() {
    let mut bytes = golden_cut(golden_prefix(16));
    bytes.extend_from_slice(b"# Checksum: crc32=fad988f8\n");
    let err = read(&bytes).expect_err("bad checksum line");
    assert!(
        matches!(
            err,
            Error::Malformed {
                location: Location::Line(17),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_unsupported_version_is_refused() {
    let input =
        text(&read_fixture("v1_users.db")).replace("Format-Version: 1", "Format-Version: 2");
    assert!(matches!(
        read(input.as_bytes()),
        Err(Error::UnsupportedVersion {
            format: "csv",
            found: 2
        })
    ));
}

// ----- malformed input: each error with its variant and line -----

fn legacy(body: &str) -> String {
    format!("{LEGACY_HEADER}{body}")
}

#[test]
fn not_a_phantomdb_file_is_bad_magic() {
    assert!(matches!(
        read(b"id,name\n1,x\n"),
        Err(Error::BadMagic { format: "csv" })
    ));
    assert!(matches!(
        read(b"# PhantomDB Something Else\n"),
        Err(Error::BadMagic { .. })
    ));
}

#[test]
fn a_header_without_database_line_is_malformed() {
    let err = read_err("# PhantomDB Database File\n# Format: CSV\n\n", 3);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn a_header_naming_another_format_is_malformed() {
    let err = read_err(
        "# PhantomDB Database File\n# Database: x\n# Format: JSON\n\n",
        3,
    );
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn an_invalid_database_name_is_a_bad_definition() {
    let err = read_err("# PhantomDB Database File\n# Database: ../etc\n\n", 2);
    assert!(
        matches!(&err, Error::BadDefinition { source, .. } if matches!(**source, Error::InvalidName { .. })),
        "{err}"
    );
}

#[test]
fn a_bad_lsn_is_malformed() {
    let err = read_err("# PhantomDB Database File\n# Database: x\n# LSN: -1\n\n", 3);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn a_row_with_too_many_cells_is_a_bad_row() {
    let input = legacy("[TABLE:t]\nCOLUMNS:a:int,b:string\nDATA:a,b\nROW:1,x\nROW:2,y,z\n\n");
    let err = read_err(&input, 11);
    assert!(
        matches!(&err, Error::BadRow { source, .. }
            if matches!(**source, Error::Arity { expected: 2, found: 3, .. })),
        "{err}"
    );
}

#[test]
fn a_row_with_too_few_cells_is_a_bad_row() {
    let input = legacy("[TABLE:t]\nCOLUMNS:a:int,b:string\nDATA:a,b\nROW:1\n\n");
    let err = read_err(&input, 10);
    assert!(
        matches!(&err, Error::BadRow { source, .. }
            if matches!(**source, Error::Arity { expected: 2, found: 1, .. })),
        "{err}"
    );
}

#[test]
fn a_value_of_the_wrong_type_is_a_bad_row() {
    let input =
        legacy("[TABLE:t]\nCOLUMNS:a:int,d:date\nDATA:a,d\nROW:1,2024-02-29\nROW:2,2023-02-29\n\n");
    let err = read_err(&input, 11);
    assert!(
        matches!(&err, Error::BadRow { source, .. }
            if matches!(**source, Error::InvalidValue { ty: ColumnType::Date, .. })),
        "{err}"
    );
    // `""` is an empty string, which is not an int.
    let input = legacy("[TABLE:t]\nCOLUMNS:a:int\nDATA:a\nROW:\"\"\n\n");
    let err = read_err(&input, 10);
    assert!(matches!(err, Error::BadRow { .. }), "{err}");
}

#[test]
fn the_line_of_a_multi_line_row_is_where_it_starts() {
    let input = legacy("[TABLE:t]\nCOLUMNS:s:string,a:int\nDATA:s,a\nROW:\"x\ny\nz\",oops\n\n");
    let err = read_err(&input, 10);
    assert!(matches!(err, Error::BadRow { .. }), "{err}");
}

#[test]
fn null_in_a_not_null_column_and_duplicate_keys_are_bad_rows() {
    let input = legacy(
        "[TABLE:t]\n# Constraints: id=primary_key,n=not_null\nCOLUMNS:id:int,n:string\nDATA:id,n\nROW:1,a\nROW:2,\n\n",
    );
    let err = read_err(&input, 12);
    assert!(
        matches!(&err, Error::BadRow { source, .. } if matches!(**source, Error::NullViolation { .. })),
        "{err}"
    );
    let input = legacy(
        "[TABLE:t]\n# Constraints: id=primary_key\nCOLUMNS:id:int,n:string\nDATA:id,n\nROW:1,a\nROW:1,b\n\n",
    );
    let err = read_err(&input, 12);
    assert!(
        matches!(&err, Error::BadRow { source, .. } if matches!(**source, Error::DuplicateKey { .. })),
        "{err}"
    );
}

#[test]
fn bad_quoting_is_malformed() {
    for row in ["ROW:a\"b", "ROW:\"a\"b", "ROW:\"a\" ,b"] {
        let input = legacy(&format!(
            "[TABLE:t]\nCOLUMNS:s:string,t:string\nDATA:s,t\n{row}\n\n"
        ));
        let err = read_err(&input, 10);
        assert!(matches!(err, Error::Malformed { .. }), "{row}: {err}");
    }
}

#[test]
fn invalid_utf8_is_malformed() {
    let mut input = legacy("[TABLE:t]\nCOLUMNS:s:string\nDATA:s\nROW:").into_bytes();
    input.extend_from_slice(b"\xff\xfe\n\n");
    let err = read(&input).expect_err("invalid UTF-8");
    assert!(
        matches!(
            err,
            Error::Malformed {
                location: Location::Line(10),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn row_before_columns_or_outside_a_table_is_malformed() {
    let err = read_err(&legacy("[TABLE:t]\nROW:1\n\n"), 8);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    let err = read_err(&legacy("ROW:1\n"), 7);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    let err = read_err(&legacy("[TABLE:t]\nCOLUMNS:a:int\nROW:1\n\n"), 9);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
    let err = read_err(&legacy("COLUMNS:a:int\n"), 7);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn a_data_header_not_matching_columns_is_malformed() {
    for data in ["DATA:a", "DATA:b,a", "DATA:a,b,c", "DATA:"] {
        let input = legacy(&format!(
            "[TABLE:t]\nCOLUMNS:a:int,b:int\n{data}\nROW:1,2\n\n"
        ));
        let err = read_err(&input, 9);
        assert!(matches!(err, Error::Malformed { .. }), "{data}: {err}");
    }
}

#[test]
fn an_unknown_type_name_is_a_bad_definition() {
    let err = read_err(&legacy("[TABLE:t]\nCOLUMNS:a:blob\n\n"), 8);
    assert!(
        matches!(&err, Error::BadDefinition { source, .. }
            if matches!(&**source, Error::UnknownType { name } if name == "blob")),
        "{err}"
    );
    let err = read_err(&legacy("[TABLE:t]\nCOLUMNS:a\n\n"), 8);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn invalid_table_and_column_names_are_bad_definitions() {
    for (body, line) in [
        ("[TABLE:../x]\nCOLUMNS:a:int\n\n", 7),
        ("[TABLE:]\nCOLUMNS:a:int\n\n", 7),
        ("[TABLE:t]\nCOLUMNS:a b:int\n\n", 8),
        ("[TABLE:t]\nCOLUMNS:1a:int\n\n", 8),
    ] {
        let err = read_err(&legacy(body), line);
        assert!(
            matches!(&err, Error::BadDefinition { source, .. } if matches!(**source, Error::InvalidName { .. })),
            "{body}: {err}"
        );
    }
    let err = read_err(&legacy("[TABLE:t\nCOLUMNS:a:int\n\n"), 7);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn invalid_schemas_are_bad_definitions() {
    for body in [
        "[TABLE:t]\nCOLUMNS:a:int,a:int\n\n",
        "[TABLE:t]\nCOLUMNS:\n\n",
    ] {
        let err = read_err(&legacy(body), 8);
        assert!(
            matches!(&err, Error::BadDefinition { source, .. } if matches!(**source, Error::InvalidSchema { .. })),
            "{body}: {err}"
        );
    }
}

#[test]
fn a_duplicate_table_is_a_bad_definition() {
    let input = legacy("[TABLE:t]\nCOLUMNS:a:int\n\n[TABLE:t]\nCOLUMNS:a:int\n\n");
    let err = read_err(&input, 10);
    assert!(
        matches!(&err, Error::BadDefinition { source, .. } if matches!(**source, Error::TableExists { .. })),
        "{err}"
    );
}

#[test]
fn a_row_count_mismatch_is_malformed_at_the_end_of_the_block() {
    let input = legacy("[TABLE:t]\n# Rows: 3\nCOLUMNS:a:int\nDATA:a\nROW:1\nROW:2\n\n");
    let err = read_err(&input, 13);
    assert!(matches!(err, Error::Malformed { .. }), "{err}");
}

#[test]
fn bad_table_metadata_lines_are_malformed() {
    for (body, line) in [
        // Next row id at or below an existing row id.
        (
            "[TABLE:t]\n# Next-Row-Id: 2\nCOLUMNS:a:int\nDATA:a\nROW:1\nROW:2\n\n",
            8,
        ),
        // Row ids must increase.
        (
            "[TABLE:t]\nCOLUMNS:a:int\nDATA:a\nROW:1\n# Row-Id: 1\nROW:2\n\n",
            11,
        ),
        // A row id line must be followed by a row.
        ("[TABLE:t]\nCOLUMNS:a:int\nDATA:a\n# Row-Id: 5\n\n", 11),
        // Our table lines in the wrong place.
        ("[TABLE:t]\nCOLUMNS:a:int\n# Rows: 0\n\n", 9),
        ("# Rows: 0\n", 7),
        ("[TABLE:t]\n# Row-Id: 3\nCOLUMNS:a:int\n\n", 8),
        // Duplicates and bad values.
        ("[TABLE:t]\n# Rows: 0\n# Rows: 0\nCOLUMNS:a:int\n\n", 9),
        ("[TABLE:t]\n# Rows: many\nCOLUMNS:a:int\n\n", 8),
        ("[TABLE:t]\n# Constraints: a=unique\nCOLUMNS:a:int\n\n", 8),
        // Block structure.
        ("[TABLE:t]\nCOLUMNS:a:int\n[TABLE:u]\nCOLUMNS:a:int\n\n", 9),
        ("[TABLE:t]\n\n", 8),
        ("[TABLE:t]\nCOLUMNS:a:int\nCOLUMNS:a:int\n\n", 9),
        ("[TABLE:t]\nCOLUMNS:a:int\nDATA:a\nDATA:a\n\n", 10),
        ("[TABLE:t]\nCOLUMNS:a:int\nwhat is this\n\n", 9),
    ] {
        let err = read_err(&legacy(body), line);
        assert!(matches!(err, Error::Malformed { .. }), "{body}: {err}");
    }
}

#[test]
fn a_constraint_on_an_unknown_column_is_a_bad_definition() {
    let input = legacy("[TABLE:t]\n# Constraints: b=not_null\nCOLUMNS:a:int\n\n");
    let err = read_err(&input, 8);
    assert!(
        matches!(&err, Error::BadDefinition { source, .. } if matches!(**source, Error::UnknownColumn { .. })),
        "{err}"
    );
}

#[test]
fn a_legacy_table_block_without_its_blank_line_is_truncated() {
    let input = legacy("[TABLE:t]\nCOLUMNS:a:int\nDATA:a\nROW:1\n");
    let err = read_err(&input, 10);
    assert!(matches!(err, Error::Truncated { .. }), "{err}");
}

#[test]
fn an_empty_file_is_truncated_at_line_1() {
    let err = read(b"").expect_err("empty");
    assert!(
        matches!(
            err,
            Error::Truncated {
                location: Location::Line(1),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn quoted_non_string_fields_parse_like_unquoted_ones() {
    let input = legacy("[TABLE:t]\nCOLUMNS:a:int,b:bool\nDATA:a,b\nROW:\"42\",\"yes\"\n\n");
    let (_, catalog) = read(input.as_bytes()).expect("read");
    let (_, row) = catalog.table("t").expect("t").rows().next().expect("row");
    assert_eq!(&row[..], &[Value::Int(42), Value::Bool(true)]);
}

fn cell_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(",".to_owned()),
            Just("\"".to_owned()),
            Just("\r".to_owned()),
            Just("\n".to_owned()),
            Just(" ".to_owned()),
            Just("#".to_owned()),
            "[a-zA-Z0-9]{1,3}",
            any::<char>().prop_map(String::from),
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_rows_round_trip(
        rows in prop::collection::vec(
            (any::<i64>(), any::<f64>(), prop::option::of(cell_text()), prop::option::of(cell_text())),
            0..12,
        ),
        deleted in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
    ) {
        let mut catalog = single_table(
            vec![
                Column::new("i", ColumnType::Int),
                Column::new("f", ColumnType::Float),
                Column::new("a", ColumnType::String),
                Column::new("b", ColumnType::String),
            ],
            rows.into_iter()
                .map(|(i, f, a, b)| vec![Value::Int(i), Value::Float(f), a.into(), b.into()])
                .collect(),
        );
        let t = catalog.table_mut("t").expect("t");
        let ids: Vec<u64> = t.rows().map(|(id, _)| id).collect();
        if !ids.is_empty() {
            for d in deleted {
                let _ = t.delete(ids[d.index(ids.len())]);
            }
        }
        let m = meta(ImageKind::Database, 1, None);
        let bytes = write(&m, &catalog);
        let (back_meta, back) = read(&bytes).expect("read back");
        prop_assert_eq!(back_meta, m);
        prop_assert_eq!(back, catalog);
    }
}

// ----- no panics on any input -----

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop::sample::select(vec!["", "# PhantomDB Database File\n", LEGACY_HEADER]),
        bytes in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut input = prefix.as_bytes().to_vec();
        input.extend_from_slice(&bytes);
        let _ = read(&input);
        let _ = CsvFormat.read_meta(&mut input.as_slice());
    }

    #[test]
    fn arbitrary_lines_never_panic(
        lines in prop::collection::vec(
            prop_oneof![
                Just(String::new()),
                Just("[TABLE:t]".to_owned()),
                Just("COLUMNS:a:int,b:string".to_owned()),
                Just("DATA:a,b".to_owned()),
                Just("# Rows: 1".to_owned()),
                Just("# Row-Id: 18446744073709551615".to_owned()),
                Just("# Next-Row-Id: 2".to_owned()),
                Just("# Constraints: a=primary_key".to_owned()),
                Just("# Checksum: crc32c=00000000".to_owned()),
                "ROW:[-0-9a-z,\"\r]{0,12}",
                "[ -~]{0,20}",
            ],
            0..24,
        ),
    ) {
        let input = legacy(&lines.join("\n"));
        let _ = read(input.as_bytes());
    }

    #[test]
    fn mutations_of_a_valid_file_never_panic(
        base in prop::sample::select(vec!["v1_users.db", "cpp_database.db", "cpp_database_crlf.db"]),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut bytes = read_fixture(base);
        for (at, byte, kind) in edits {
            let i = at.index(bytes.len() + 1);
            match kind {
                0 if i < bytes.len() => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => bytes.truncate(i),
            }
        }
        let _ = read(&bytes);
    }
}

// ----- speed (release mode: cargo test --release -p phantom-storage --test csv_format -- --ignored) -----

#[test]
#[ignore = "timing; run in release mode"]
fn throughput_on_a_million_rows() {
    let mut catalog = Catalog::new();
    let schema = Schema::new(
        "bench",
        vec![
            Column::new("id", ColumnType::Int),
            Column::new("name", ColumnType::String),
            Column::new("email", ColumnType::String),
            Column::new("score", ColumnType::Float),
        ],
    )
    .expect("schema");
    catalog.create_table("bench", schema).expect("table");
    let t = catalog.table_mut("bench").expect("bench");
    for i in 0..1_000_000i64 {
        t.insert(vec![
            Value::Int(i),
            format!("user_{i:07}").into(),
            format!("user_{i:07}@example.com").into(),
            Value::Float(i as f64 * 0.37),
        ])
        .expect("row");
    }
    let m = meta(ImageKind::Snapshot, 1, Some(spec_time()));
    let mut out = Vec::with_capacity(80 << 20);
    let start = std::time::Instant::now();
    CsvFormat.write(&m, &catalog, &mut out).expect("write");
    let write_secs = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let (_, back) = read(&out).expect("read");
    let read_secs = start.elapsed().as_secs_f64();
    assert_eq!(back.row_count(), 1_000_000);
    let mb = out.len() as f64 / 1e6;
    eprintln!(
        "{mb:.1} MB: write {:.0} MB/s ({write_secs:.3} s), read {:.0} MB/s ({read_secs:.3} s)",
        mb / write_secs,
        mb / read_secs
    );
}
