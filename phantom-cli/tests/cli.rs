//! End-to-end tests of the `phantom` binary: each runs the real executable on a temporary
//! data directory, usually several times, so every check crosses a process boundary (what one
//! call wrote must be on disk for the next one to see).
#![allow(clippy::unwrap_used)] // helpers outside #[test] functions unwrap too

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

/// `phantom --data-dir <dir>/data …`.
fn phantom(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phantom"));
    cmd.arg("--data-dir").arg(data(dir)).env_remove("RUST_LOG");
    cmd
}

fn data(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Runs `phantom sql app <statements> [extra…]`, expecting success; returns stdout.
fn sql_ok(dir: &Path, statements: &str, extra: &[&str]) -> String {
    let out = phantom(dir)
        .args(["sql", "app", statements])
        .args(extra)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// Runs `phantom sql app <statements>`, expecting exit 1 with `error:`; returns stderr.
fn sql_fails(dir: &Path, statements: &str, extra: &[&str]) -> String {
    let out = phantom(dir)
        .args(["sql", "app", statements])
        .args(extra)
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: ").or(predicate::str::contains("\nerror: ")));
    String::from_utf8(out.get_output().stderr.clone()).unwrap()
}

/// Every file name under `dir`, recursively.
fn all_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                out.extend(
                    all_files(&path)
                        .into_iter()
                        .map(|f| format!("{}/{f}", e.file_name().to_string_lossy())),
                );
            }
        }
    }
    out
}

const TRICKY: &str = "Doe, \"Johnny\"\nsecond line ünïcødé €";

fn tricky_sql_literal() -> String {
    format!("'{}'", TRICKY.replace('\'', "''"))
}

#[test]
fn a_tricky_value_null_and_empty_string_come_back_identical_in_a_new_process_and_after_save() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(
        dir.path(),
        &format!(
            "CREATE TABLE t (id int PRIMARY KEY, s text); \
             INSERT INTO t VALUES (1, {}), (2, NULL), (3, '')",
            tricky_sql_literal()
        ),
        &[],
    );
    let expected = "id,s\n1,\"Doe, \"\"Johnny\"\"\nsecond line ünïcødé €\"\n2,\n3,\"\"\n";
    assert_eq!(
        sql_ok(dir.path(), "SELECT * FROM t ORDER BY id", &[]),
        expected
    );

    // The csv crate reads the output back to the same text (NULL and "" both read as empty
    // there; the raw text above is what keeps them apart).
    let mut reader = csv::Reader::from_reader(expected.as_bytes());
    let first = reader.records().next().unwrap().unwrap();
    assert_eq!(first.get(1), Some(TRICKY));

    let saved = phantom(dir.path()).args(["save", "app"]).assert().success();
    let path = String::from_utf8(saved.get_output().stdout.clone()).unwrap();
    assert_eq!(Path::new(path.trim()), data(dir.path()).join("app.db"));
    assert!(
        std::fs::read_to_string(path.trim())
            .unwrap()
            .contains("Johnny")
    );
    assert_eq!(
        sql_ok(dir.path(), "SELECT * FROM t ORDER BY id", &[]),
        expected
    );
    assert_eq!(
        sql_ok(
            dir.path(),
            "SELECT s FROM t WHERE s IS NULL OR s = '' ORDER BY id DESC",
            &[]
        ),
        "s\n\"\"\n\n"
    );
}

#[test]
fn other_output_formats_show_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(
        dir.path(),
        "CREATE TABLE t (id int, x float, ok bool, s string); \
         INSERT INTO t VALUES (1, 1.5, TRUE, 'a'), (2, NULL, FALSE, '')",
        &[],
    );
    assert_eq!(
        sql_ok(dir.path(), "SELECT * FROM t", &["--format", "json"]),
        "[{\"id\":1,\"x\":1.5,\"ok\":true,\"s\":\"a\"},{\"id\":2,\"x\":null,\"ok\":false,\"s\":\"\"}]\n"
    );
    // Logging (-v) goes to stderr only: stdout is the same CSV.
    let logged = phantom(dir.path())
        .args(["-v", "sql", "app", "SELECT id FROM t"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8(logged.get_output().stdout.clone()).unwrap(),
        "id\n1\n2\n"
    );
    assert!(
        String::from_utf8(logged.get_output().stderr.clone())
            .unwrap()
            .contains("INFO")
    );
    assert_eq!(
        sql_ok(dir.path(), "SELECT id, s FROM t", &["--format", "table"]),
        "id | s\n---+--\n1  | a\n2  |\n(2 rows)\n"
    );
}

#[test]
fn a_bad_database_name_exits_1_and_leaves_the_data_dir_absent() {
    let dir = tempfile::tempdir().unwrap();
    let out = phantom(dir.path())
        .args(["sql", "../x", "CREATE TABLE t (id int)"])
        .assert()
        .code(1);
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.starts_with("error: invalid name \"../x\""),
        "{stderr}"
    );
    assert!(!data(dir.path()).exists());
    assert_eq!(all_files(dir.path()), Vec::<String>::new());

    // With a data directory in use, a bad name adds nothing inside or outside it.
    sql_ok(dir.path(), "CREATE TABLE t (id int)", &[]);
    let before = all_files(dir.path());
    phantom(dir.path())
        .args(["sql", "../y", "CREATE TABLE t (id int)"])
        .assert()
        .code(1);
    phantom(dir.path())
        .args(["shell", "a b"])
        .write_stdin("")
        .assert()
        .code(1);
    assert_eq!(all_files(dir.path()), before);
}

#[test]
fn a_table_named_with_a_slash_is_refused_and_creates_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = sql_fails(dir.path(), "CREATE TABLE \"a/b\" (id int)", &[]);
    assert!(err.contains("\"a/b\""), "{err}");
    let files = all_files(dir.path());
    assert!(
        files
            .iter()
            .all(|f| !f.ends_with("/a") && !f.contains("a/b") && !f.ends_with("/b")),
        "{files:?}"
    );
    assert!(!data(dir.path()).join("a").exists());
    assert_eq!(
        sql_ok(
            dir.path(),
            "CREATE TABLE ok (id int); SELECT * FROM ok",
            &[]
        ),
        "id\n"
    );
}

#[test]
fn inserting_text_into_an_int_column_names_the_column_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(dir.path(), "CREATE TABLE t (id int, name string)", &[]);
    let err = sql_fails(dir.path(), "INSERT INTO t VALUES ('abc', 'x')", &[]);
    assert!(
        err.contains("column id") && err.contains("\"abc\"") && err.contains("int"),
        "{err}"
    );
    let err = sql_fails(
        dir.path(),
        "INSERT INTO t (name, id) VALUES ('x', 1), ('y', '2x')",
        &[],
    );
    assert!(
        err.contains("row 2, column id") && err.contains("\"2x\""),
        "{err}"
    );
    assert!(all_files(dir.path()).iter().all(|f| !f.contains("abc")));
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id,name\n");
}

#[test]
fn delete_without_where_needs_all_and_truncate_empties_a_table() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(
        dir.path(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2), (3)",
        &[],
    );
    let err = sql_fails(dir.path(), "DELETE FROM t", &[]);
    assert!(
        err.contains("without WHERE") && err.contains("--all"),
        "{err}"
    );
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n1\n2\n3\n");

    sql_ok(dir.path(), "DELETE FROM t WHERE id = 2", &[]);
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n1\n3\n");
    sql_ok(dir.path(), "DELETE FROM t", &["--all"]);
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n");

    sql_ok(dir.path(), "INSERT INTO t VALUES (4), (5); TRUNCATE t", &[]);
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n");
    sql_ok(
        dir.path(),
        "INSERT INTO t VALUES (6); TRUNCATE TABLE t",
        &[],
    );
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n");
}

#[test]
fn update_with_and_without_where() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(
        dir.path(),
        "CREATE TABLE t (id int PRIMARY KEY, n int); INSERT INTO t VALUES (1, 10), (2, 20); \
         UPDATE t SET n = 11 WHERE id = 1",
        &[],
    );
    assert_eq!(
        sql_ok(dir.path(), "SELECT n FROM t ORDER BY id", &[]),
        "n\n11\n20\n"
    );
    sql_ok(dir.path(), "UPDATE t SET n = NULL", &[]);
    assert_eq!(sql_ok(dir.path(), "SELECT n FROM t LIMIT 1", &[]), "n\n\n");
}

/// The LSNs at the start of `phantom log` lines, per line.
fn log_lsns(dir: &Path) -> Vec<(u64, String)> {
    let out = phantom(dir).args(["log", "app"]).assert().success();
    String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .lines()
        .map(|l| {
            let (lsn, rest) = l.split_once(' ').unwrap();
            (lsn.parse().unwrap(), rest.to_owned())
        })
        .collect()
}

#[test]
fn begin_commit_is_one_log_record_and_log_lines_start_with_the_lsn() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(dir.path(), "CREATE TABLE t (id int, s string)", &[]);
    sql_ok(
        dir.path(),
        "BEGIN; INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, 'b'); UPDATE t SET s = 'c' WHERE id = 1; COMMIT;",
        &[],
    );
    let lines = log_lsns(dir.path());
    let last = lines.last().unwrap().0;
    let batch: Vec<&String> = lines
        .iter()
        .filter(|(l, _)| *l == last)
        .map(|(_, t)| t)
        .collect();
    assert_eq!(batch.len(), 3, "{lines:?}");
    assert!(
        batch[0].starts_with('[') && batch[0].contains(" UTC] INSERT {"),
        "{}",
        batch[0]
    );
    assert!(batch[2].contains("] UPDATE {"), "{}", batch[2]);
    // Strictly increasing LSNs across records: CREATE DATABASE, CREATE TABLE, the batch.
    let mut distinct: Vec<u64> = lines.iter().map(|(l, _)| *l).collect();
    distinct.dedup();
    assert_eq!(distinct, vec![1, 2, 3]);

    let json = phantom(dir.path())
        .args(["log", "app", "--json", "--from-lsn", "3"])
        .assert()
        .success();
    let text = String::from_utf8(json.get_output().stdout.clone()).unwrap();
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 3);
    assert!(objects.iter().all(|o| o["lsn"] == 3));
    assert_eq!(objects[0]["operation"], "INSERT");
    assert_eq!(objects[0]["fields"][0], serde_json::json!(["table", "t"]));
}

#[test]
fn a_failing_statement_inside_begin_commit_applies_nothing() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(dir.path(), "CREATE TABLE t (id int PRIMARY KEY)", &[]);
    let records_before = log_lsns(dir.path()).len();
    for bad in [
        "BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES ('x'); COMMIT;",
        "BEGIN; INSERT INTO t VALUES (1); INSERT INTO t VALUES (1); COMMIT;",
        "BEGIN; INSERT INTO t VALUES (1); CREATE INDEX i ON t (id); COMMIT;",
        "BEGIN; INSERT INTO t VALUES (1);",
    ] {
        let err = sql_fails(dir.path(), bad, &[]);
        assert!(!err.is_empty(), "{bad}");
        assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n", "{bad}");
    }
    sql_ok(
        dir.path(),
        "BEGIN; INSERT INTO t VALUES (1); ROLLBACK; INSERT INTO t VALUES (2)",
        &[],
    );
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n2\n");
    assert_eq!(log_lsns(dir.path()).len(), records_before + 1);
}

#[test]
fn unsupported_statements_exit_1_naming_the_part_and_bad_flags_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(dir.path(), "CREATE TABLE t (id int)", &[]);
    let err = sql_fails(dir.path(), "CREATE INDEX i ON t (id)", &[]);
    assert!(err.contains("unsupported statement: CREATE INDEX"), "{err}");
    let err = sql_fails(
        dir.path(),
        "SELECT * FROM t JOIN t AS u ON t.id = u.id",
        &[],
    );
    assert!(err.contains("unsupported: JOIN"), "{err}");
    let err = sql_fails(dir.path(), "SELECT id FROM t GROUP BY id", &[]);
    assert!(err.contains("unsupported: GROUP BY"), "{err}");
    let err = sql_fails(dir.path(), "SELEC * FROM t", &[]);
    assert!(err.contains("syntax error"), "{err}");
    // The whole script is checked before anything runs: nothing is created.
    let fresh = tempfile::tempdir().unwrap();
    phantom(fresh.path())
        .args([
            "sql",
            "app",
            "CREATE TABLE t (id int); SELECT * FROM t UNION SELECT * FROM t",
        ])
        .assert()
        .code(1)
        .stderr("error: unsupported: UNION\n");
    assert!(!data(fresh.path()).exists());

    for args in [
        vec!["sql", "app", "SELECT * FROM t", "--format", "xml"],
        vec!["sql", "app", "SELECT * FROM t", "--sync", "sometimes"],
        vec!["sql", "app", "SELECT * FROM t", "--no-such-flag"],
        vec!["sql", "app"],
        vec!["frobnicate"],
    ] {
        phantom(dir.path()).args(&args).assert().code(2);
    }
}

#[test]
fn relaxed_sync_modes_are_durable_at_exit_and_snapshot_flags_apply() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(
        dir.path(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1)",
        &["--sync", "never"],
    );
    sql_ok(
        dir.path(),
        "INSERT INTO t VALUES (2); INSERT INTO t VALUES (3)",
        &[
            "--sync",
            "interval=50",
            "--snapshot-interval",
            "1",
            "--snapshot-format",
            "binary",
        ],
    );
    assert_eq!(sql_ok(dir.path(), "SELECT * FROM t", &[]), "id\n1\n2\n3\n");
    let list = phantom(dir.path())
        .args(["snapshot", "list", "app"])
        .assert()
        .success();
    let text = String::from_utf8(list.get_output().stdout.clone()).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("file"), "{text}");
    assert!(
        lines.any(|l| l.starts_with("app_snapshot_") && l.ends_with("binary")),
        "{text}"
    );
}

#[test]
fn demo_runs_twice_on_the_same_directory_and_leaves_the_spec_files() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        phantom(dir.path()).arg("demo").assert().success().stdout(
            predicate::str::contains("John Doe").and(predicate::str::contains("Jane Smith")),
        );
    }
    let files = all_files(&data(dir.path()));
    assert!(files.contains(&"my_database.db".to_owned()), "{files:?}");
    assert!(files.contains(&"my_database.log".to_owned()), "{files:?}");
    assert!(
        files.iter().any(|f| f.starts_with("my_database_snapshot_")),
        "{files:?}"
    );
    let log = phantom(dir.path())
        .args(["log", "my_database"])
        .assert()
        .success();
    let text = String::from_utf8(log.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("MAINTENANCE {user: admin, action: maintenance}"),
        "{text}"
    );
}

#[test]
fn export_then_import_round_trips_a_table_with_null_and_empty_strings() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(
        dir.path(),
        &format!(
            "CREATE TABLE src (id int PRIMARY KEY, s text, d date, f float); \
             CREATE TABLE dst (id int PRIMARY KEY, s text, d date, f float); \
             INSERT INTO src VALUES (1, {}, '2024-02-29', -0.5), (2, '', NULL, NULL), (3, NULL, '1999-12-31', 1e300)",
            tricky_sql_literal()
        ),
        &[],
    );
    let file = dir.path().join("src.csv");
    phantom(dir.path())
        .args(["export", "app", "src", "-o"])
        .arg(&file)
        .assert()
        .success();
    let exported = std::fs::read_to_string(&file).unwrap();
    let stdout = phantom(dir.path())
        .args(["export", "app", "src"])
        .assert()
        .success();
    assert_eq!(
        String::from_utf8(stdout.get_output().stdout.clone()).unwrap(),
        exported
    );
    assert!(exported.contains("\n2,\"\",,\n"), "{exported}");

    phantom(dir.path())
        .args(["import", "app", "dst"])
        .arg(&file)
        .assert()
        .success();
    assert_eq!(
        sql_ok(dir.path(), "SELECT * FROM dst ORDER BY id", &[]),
        sql_ok(dir.path(), "SELECT * FROM src ORDER BY id", &[])
    );

    // A bad value names the file line and the column, and nothing of its batch goes in.
    std::fs::write(&file, "id,d\n10,2024-01-01\n11,2024-02-30\n").unwrap();
    let out = phantom(dir.path())
        .args(["import", "app", "dst"])
        .arg(&file)
        .assert()
        .code(1);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        err.contains("line 3, column d") && err.contains("2024-02-30"),
        "{err}"
    );
    assert_eq!(
        sql_ok(dir.path(), "SELECT id FROM dst WHERE id >= 10", &[]),
        "id\n"
    );
}

#[test]
fn shell_runs_statements_from_piped_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = phantom(dir.path())
        .args(["shell", "app"])
        .write_stdin(
            "CREATE TABLE t (id int PRIMARY KEY,\n  name string NOT NULL);\nINSERT INTO t\nVALUES (1, 'a;b');\n\
             .tables\n.schema t\nSELECT * FROM nope;\nSELECT * FROM t;\n",
        )
        .assert()
        .code(1);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(
        stdout,
        "t\nCREATE TABLE t (id int PRIMARY KEY, name string NOT NULL);\nid,name\n1,a;b\n"
    );
    let stderr = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        stderr.contains("error: ") && stderr.contains("nope"),
        "{stderr}"
    );

    phantom(dir.path())
        .args(["shell", "app"])
        .write_stdin("BEGIN;\nINSERT INTO t VALUES (2, 'b');\nCOMMIT;\nSELECT count FROM t;\n.quit\nSELECT * FROM t;\n")
        .assert()
        .code(1)
        .stdout("");
    assert_eq!(sql_ok(dir.path(), "SELECT id FROM t", &[]), "id\n1\n2\n");
}

#[test]
fn snapshot_create_and_stats_report_real_figures() {
    let dir = tempfile::tempdir().unwrap();
    sql_ok(
        dir.path(),
        "CREATE TABLE t (id int); INSERT INTO t VALUES (1), (2)",
        &[],
    );
    let out = phantom(dir.path())
        .args(["snapshot", "create", "app"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains("app_snapshot_") && text.contains("lsn: 3"),
        "{text}"
    );

    let out = phantom(dir.path())
        .args(["stats", "app"])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for line in [
        "database: app",
        "tables: 1",
        "rows: 2",
        "last_lsn: 3",
        "recovery_lsn: 3",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let out = phantom(dir.path())
        .args(["stats", "--json"])
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(
        (v["databases"].as_u64(), v["rows"].as_u64()),
        (Some(1), Some(2))
    );
    phantom(dir.path())
        .args(["stats", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: unknown database"));
}
