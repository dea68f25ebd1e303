//! The spec's text line format: every line written parses back to what was written, for any
//! strings; records render one line per mutation; the text sink writes such lines.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failure is a test failure

mod common;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use common::{create_table, insert};
use phantom_storage::{Mutation, StdFs};
use phantom_wal::{
    AuditLine, Error, LogEntry, LogSink, Record, SyncMode, TextAuditSink, format_record_text,
    parse_audit_line,
};
use proptest::prelude::*;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn tricky_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just(','),
            Just(':'),
            Just('{'),
            Just('}'),
            Just('\n'),
            Just('\r'),
            Just('\\'),
            Just(' '),
            Just('['),
            Just(']'),
            any::<char>(),
        ],
        0..12,
    )
    .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_line_parses_back_to_what_was_written(
        secs in 0i64..4_102_444_800,
        operation in tricky_string(),
        fields in proptest::collection::vec((tricky_string(), tricky_string()), 0..5),
    ) {
        let line = AuditLine { timestamp: at(secs), operation, fields };
        let text = line.to_string();
        prop_assert!(!text.contains('\n') && !text.contains('\r'), "one line: {text:?}");
        prop_assert_eq!(parse_audit_line(&text).unwrap(), line.clone());
        prop_assert_eq!(parse_audit_line(&format!("{text}\n")).unwrap(), line);
    }
}

#[test]
fn the_spec_example_line_parses() {
    let line = parse_audit_line(
        "[2023-12-01 12:00:00 UTC] MAINTENANCE {user: admin, action: maintenance}",
    )
    .unwrap();
    assert_eq!(line.timestamp, at(1_701_432_000));
    assert_eq!(line.operation, "MAINTENANCE");
    assert_eq!(
        line.fields,
        vec![
            ("user".to_owned(), "admin".to_owned()),
            ("action".to_owned(), "maintenance".to_owned())
        ]
    );
}

#[test]
fn malformed_lines_are_rejected_with_a_column() {
    for (bad, column) in [
        ("", 1),
        ("[2023-13-01 12:00:00 UTC] X {}", 2),
        ("[2023-12-01 12:00:00 UTC]X {}", 25),
        ("[2023-12-01 12:00:00 UTC] X {a: b", 34),
        ("[2023-12-01 12:00:00 UTC] X {a: b} extra", 35),
        ("[2023-12-01 12:00:00 UTC] X {a, b}", 31),
        ("[2023-12-01 12:00:00 UTC] X {a: b\\q}", 34),
    ] {
        let err = parse_audit_line(bad).unwrap_err();
        assert!(
            matches!(err, Error::AuditParse { column: c, .. } if c == column),
            "{bad:?}: {err}"
        );
    }
}

#[test]
fn records_render_one_line_per_mutation_in_the_spec_format() {
    let record = |entry| Record {
        lsn: 7,
        timestamp: at(1_701_432_000),
        entry,
    };
    assert_eq!(
        format_record_text(&record(LogEntry::CreateDatabase)),
        "[2023-12-01 12:00:00 UTC] CREATE_DATABASE {}"
    );
    assert_eq!(
        format_record_text(&record(create_table())),
        "[2023-12-01 12:00:00 UTC] CREATE_TABLE {table: t, id: int PRIMARY KEY, name: string}"
    );
    assert_eq!(
        format_record_text(&record(insert(3))),
        "[2023-12-01 12:00:00 UTC] INSERT {table: t, row_id: 3, col0: 3, col1: row 3}"
    );
    let batch = LogEntry::Batch(vec![
        Mutation::Delete {
            table: "t".into(),
            row_ids: vec![1, 2],
        },
        Mutation::DropTable { table: "t".into() },
    ]);
    assert_eq!(
        format_record_text(&record(batch)),
        "[2023-12-01 12:00:00 UTC] DELETE {table: t, row_ids: 1 2}\n\
         [2023-12-01 12:00:00 UTC] DROP_TABLE {table: t}"
    );
    let custom = LogEntry::Custom {
        operation: "NOTE".into(),
        fields: vec![("text".into(), "a, b: {c}\nd".into())],
    };
    let text = format_record_text(&record(custom));
    assert_eq!(
        text,
        "[2023-12-01 12:00:00 UTC] NOTE {text: a\\, b\\: \\{c\\}\\nd}"
    );
    assert_eq!(parse_audit_line(&text).unwrap().fields[0].1, "a, b: {c}\nd");
}

#[test]
fn the_text_sink_appends_parseable_lines_and_cannot_be_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.log");
    let sink = TextAuditSink::open(Arc::new(StdFs), &path, SyncMode::Always).unwrap();
    assert_eq!(sink.append(&LogEntry::CreateDatabase).unwrap(), 1);
    assert_eq!(sink.append(&create_table()).unwrap(), 2);
    let lsn = sink.append(&insert(1)).unwrap();
    sink.commit(lsn).unwrap();
    assert_eq!((sink.durable_lsn(), sink.stats().syncs), (3, 1));
    assert!(matches!(sink.read_from(1), Err(Error::Unsupported { .. })));
    drop(sink);
    // Reopening appends.
    let sink = TextAuditSink::open(Arc::new(StdFs), &path, SyncMode::Never)
        .unwrap()
        .with_first_lsn(4);
    assert_eq!(sink.append(&LogEntry::DropDatabase).unwrap(), 4);
    drop(sink);
    let text = std::fs::read_to_string(&path).unwrap();
    let ops: Vec<String> = text
        .lines()
        .map(|l| parse_audit_line(l).unwrap().operation)
        .collect();
    assert_eq!(
        ops,
        ["CREATE_DATABASE", "CREATE_TABLE", "INSERT", "DROP_DATABASE"]
    );
}
