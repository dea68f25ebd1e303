//! One scenario, every format: any catalog written by a [`StorageFormat`] reads back
//! identically, header included.
//!
//! The catalogs are generated: several tables, every column type, NOT NULL and PRIMARY KEY
//! columns, Unicode strings full of separators and quotes (`,` `"` `\r` `\n`), empty strings,
//! NULLs, extreme integers, every kind of float (NaN, ±inf, -0.0, subnormals), dates, times and
//! timestamps over years 0000..=9999 (what the text form `YYYY-MM-DD` can express), and row ids
//! left sparse by deletes (including deleted last rows, so the next row id is above every id).
//!
//! The creation time is generated in whole seconds: that is the precision every format keeps
//! (the binary format keeps nanoseconds too; `binary_format.rs` checks that).

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use phantom_storage::{
    BinaryFormat, Catalog, Column, ColumnType, CsvFormat, Error, ImageKind, ImageMeta, Schema,
    StorageFormat, Value,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// The scenario: write, read back, compare everything; `read_meta` agrees with `read`; the
/// format recognises its own output.
fn roundtrip<F: StorageFormat>(
    format: F,
    meta: &ImageMeta,
    catalog: &Catalog,
) -> Result<(), TestCaseError> {
    let mut bytes = Vec::new();
    format
        .write(meta, catalog, &mut bytes)
        .map_err(|e| TestCaseError::fail(format!("{} write: {e}", format.name())))?;
    prop_assert!(format.detect(&bytes[..bytes.len().min(64)]));

    let (meta_back, catalog_back) = format
        .read(&mut bytes.as_slice())
        .map_err(|e| TestCaseError::fail(format!("{} read: {e}", format.name())))?;
    prop_assert_eq!(&meta_back, meta);
    prop_assert_eq!(&catalog_back, catalog);
    for (a, b) in catalog_back.tables().zip(catalog.tables()) {
        prop_assert_eq!(a.next_row_id(), b.next_row_id(), "table {}", a.name());
    }

    let header_only = format
        .read_meta(&mut bytes.as_slice())
        .map_err(|e| TestCaseError::fail(format!("{} read_meta: {e}", format.name())))?;
    prop_assert_eq!(&header_only, meta);

    // Writing the same image again gives the same bytes.
    let mut again = Vec::new();
    format
        .write(meta, &catalog_back, &mut again)
        .map_err(|e| TestCaseError::fail(format!("{} rewrite: {e}", format.name())))?;
    prop_assert!(
        again == bytes,
        "{}: rewriting gave different bytes",
        format.name()
    );
    Ok(())
}

// ----- generators -----

/// A valid identifier, unique within its list (the index keeps it unique).
fn ident(prefix: &'static str) -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,8}".prop_map(move |s| format!("{prefix}{s}"))
}

fn string_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<String>(),
        3 => "[,\"\r\n a\u{e9}\u{1F600}\u{0}\\\\']{0,8}",
        1 => Just(String::new()),
        1 => Just(" leading and trailing ".to_owned()),
        1 => Just("\"\"".to_owned()),
        1 => Just("ROW:1,2".to_owned()),
        1 => Just("[TABLE:x]".to_owned()),
        1 => Just("# comment".to_owned()),
        1 => Just("\\N".to_owned()),
        1 => Just("NULL".to_owned()),
    ]
}

fn float_value() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => any::<f64>(),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(-0.0),
        1 => Just(0.0),
        1 => Just(f64::MIN_POSITIVE / 2.0),
        1 => Just(-5e-324),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN),
        1 => Just(0.1),
    ]
}

fn int_value() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => any::<i64>(),
        1 => Just(i64::MIN),
        1 => Just(i64::MAX),
        1 => Just(0),
        1 => -3i64..3,
    ]
}

fn date_range() -> (NaiveDate, NaiveDate) {
    (
        NaiveDate::from_ymd_opt(0, 1, 1).expect("0000-01-01"),
        NaiveDate::from_ymd_opt(9999, 12, 31).expect("9999-12-31"),
    )
}

fn date_value() -> impl Strategy<Value = NaiveDate> {
    let (lo, hi) = date_range();
    let span = (hi - lo).num_days();
    prop_oneof![
        4 => (0..=span).prop_map(move |d| lo + chrono::Duration::days(d)),
        1 => Just(lo),
        1 => Just(hi),
        1 => Just(NaiveDate::from_ymd_opt(2024, 2, 29).expect("leap day")),
    ]
}

fn time_value() -> impl Strategy<Value = NaiveTime> {
    prop_oneof![
        4 => (0u32..86_400).prop_map(|s| {
            NaiveTime::from_num_seconds_from_midnight_opt(s, 0).expect("in range")
        }),
        1 => Just(NaiveTime::MIN),
        1 => Just(NaiveTime::from_hms_opt(23, 59, 59).expect("last second")),
    ]
}

fn timestamp_value() -> impl Strategy<Value = NaiveDateTime> {
    let (lo, hi) = date_range();
    let lo = lo.and_time(NaiveTime::MIN).and_utc().timestamp();
    let hi = hi
        .and_time(NaiveTime::from_hms_opt(23, 59, 59).expect("last second"))
        .and_utc()
        .timestamp();
    prop_oneof![
        4 => lo..=hi,
        1 => Just(lo),
        1 => Just(hi),
        1 => Just(0),
    ]
    .prop_map(|s| {
        DateTime::from_timestamp(s, 0)
            .expect("in range")
            .naive_utc()
    })
}

fn value(ty: ColumnType, not_null: bool) -> BoxedStrategy<Value> {
    let non_null: BoxedStrategy<Value> = match ty {
        ColumnType::Int => int_value().prop_map(Value::Int).boxed(),
        ColumnType::Float => float_value().prop_map(Value::Float).boxed(),
        ColumnType::String => string_value().prop_map(Value::from).boxed(),
        ColumnType::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        ColumnType::Date => date_value().prop_map(Value::Date).boxed(),
        ColumnType::Time => time_value().prop_map(Value::Time).boxed(),
        ColumnType::Timestamp => timestamp_value().prop_map(Value::Timestamp).boxed(),
    };
    if not_null {
        non_null
    } else {
        prop_oneof![1 => Just(Value::Null), 3 => non_null].boxed()
    }
}

fn column_type() -> impl Strategy<Value = ColumnType> {
    proptest::sample::select(ColumnType::ALL.to_vec())
}

/// A table: its schema, its rows, and which rows to delete afterwards.
#[derive(Clone, Debug)]
struct TableSpec {
    name: String,
    columns: Vec<Column>,
    rows: Vec<Vec<Value>>,
    deletes: Vec<bool>,
}

fn table_spec() -> impl Strategy<Value = TableSpec> {
    (
        ident("t"),
        proptest::collection::vec((ident("c"), column_type(), any::<bool>()), 1..7),
        proptest::option::of(0usize..7),
    )
        .prop_flat_map(|(name, cols, pk)| {
            let columns: Vec<Column> = cols
                .into_iter()
                .enumerate()
                .map(|(i, (n, ty, not_null))| {
                    let c = Column::new(format!("{n}_{i}"), ty);
                    if pk == Some(i) {
                        c.primary_key()
                    } else if not_null {
                        c.not_null()
                    } else {
                        c
                    }
                })
                .collect();
            let row: Vec<BoxedStrategy<Value>> =
                columns.iter().map(|c| value(c.ty, c.not_null)).collect();
            (
                Just(name),
                Just(columns),
                proptest::collection::vec(row, 0..12),
                proptest::collection::vec(any::<bool>(), 12),
            )
        })
        .prop_map(|(name, columns, rows, deletes)| TableSpec {
            name,
            columns,
            rows,
            deletes,
        })
}

/// Builds the catalog through the public API. Rows whose primary key repeats an earlier one
/// are skipped (the table rejects them); then the marked rows are deleted, leaving gaps.
fn build(tables: &[TableSpec]) -> Catalog {
    let mut catalog = Catalog::new();
    for (i, spec) in tables.iter().enumerate() {
        let name = format!("{}_{i}", spec.name);
        let schema = Schema::new(&name, spec.columns.clone()).expect("generated schema is valid");
        catalog.create_table(&name, schema).expect("unique name");
        let table = catalog.table_mut(&name).expect("just created");
        let mut ids = Vec::new();
        for row in &spec.rows {
            match table.insert(row.clone()) {
                Ok(id) => ids.push(id),
                Err(Error::DuplicateKey { .. }) => {}
                Err(e) => panic!("generated row rejected: {e}"),
            }
        }
        for (id, delete) in ids.iter().zip(&spec.deletes) {
            if *delete {
                table.delete(*id).expect("row exists");
            }
        }
    }
    catalog
}

fn meta() -> impl Strategy<Value = ImageMeta> {
    (
        ident("db"),
        any::<u64>(),
        proptest::option::of(0i64..=4_102_444_800),
        any::<bool>(),
    )
        .prop_map(|(database, lsn, created, snapshot)| ImageMeta {
            database,
            lsn,
            created: created.map(|s| DateTime::<Utc>::from_timestamp(s, 0).expect("in range")),
            kind: if snapshot {
                ImageKind::Snapshot
            } else {
                ImageKind::Database
            },
        })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn binary_round_trips_any_catalog(
        meta in meta(),
        tables in proptest::collection::vec(table_spec(), 0..5),
    ) {
        roundtrip(BinaryFormat, &meta, &build(&tables))?;
    }

    #[test]
    fn csv_round_trips_any_catalog(
        meta in meta(),
        tables in proptest::collection::vec(table_spec(), 0..5),
    ) {
        roundtrip(CsvFormat, &meta, &build(&tables))?;
    }
}

/// The edge cases the generators could miss, as one fixed catalog, for every format.
fn edge_catalog() -> Catalog {
    let mut catalog = Catalog::new();
    let schema = Schema::new(
        "edges",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("f", ColumnType::Float),
            Column::new("s", ColumnType::String),
            Column::new("d", ColumnType::Date),
            Column::new("ts", ColumnType::Timestamp),
        ],
    )
    .expect("schema");
    catalog.create_table("edges", schema).expect("create");
    let (lo, hi) = date_range();
    let t = catalog.table_mut("edges").expect("table");
    let rows = [
        (i64::MIN, Value::Float(f64::NAN), "", Value::Date(lo)),
        (i64::MAX, Value::Float(-0.0), "a,b\"c\r\nd", Value::Date(hi)),
        (0, Value::Float(5e-324), "\n", Value::Null),
        (1, Value::Float(f64::NEG_INFINITY), "\"", Value::Null),
    ];
    for (id, f, s, d) in rows {
        t.insert(vec![
            Value::Int(id),
            f,
            s.into(),
            d,
            Value::Timestamp(hi.and_time(NaiveTime::MIN)),
        ])
        .expect("insert");
    }
    t.delete(4).expect("delete last row");
    t.delete(2).expect("delete a middle row");
    catalog
        .create_table(
            "empty_after_deletes",
            Schema::new("e", vec![Column::new("x", ColumnType::Bool)]).expect("schema"),
        )
        .expect("create");
    let e = catalog.table_mut("empty_after_deletes").expect("table");
    let id = e.insert(vec![Value::Null]).expect("insert");
    e.delete(id).expect("delete");
    catalog
}

fn edge_meta() -> ImageMeta {
    ImageMeta {
        database: "edge_db".into(),
        lsn: u64::MAX,
        created: DateTime::<Utc>::from_timestamp(1_700_000_000, 0),
        kind: ImageKind::Snapshot,
    }
}

#[test]
fn binary_round_trips_the_edge_cases() -> Result<(), TestCaseError> {
    roundtrip(BinaryFormat, &edge_meta(), &edge_catalog())
}

#[test]
fn csv_round_trips_the_edge_cases() -> Result<(), TestCaseError> {
    roundtrip(CsvFormat, &edge_meta(), &edge_catalog())
}
