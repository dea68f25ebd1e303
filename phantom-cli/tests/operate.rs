//! End-to-end tests of the recovery commands: `verify`, `recover`, and the directory lock
//! seen from another process.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;

fn phantom(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phantom"));
    cmd.arg("--data-dir").arg(data).env_remove("RUST_LOG");
    cmd
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().success().get_output().stdout.clone()).unwrap()
}

/// A database `d` with 30 rows, a snapshot after 10, the main file after 20.
fn seed(data: &Path) {
    phantom(data)
        .args(["sql", "d", "CREATE TABLE t (id INT PRIMARY KEY, v TEXT)"])
        .assert()
        .success();
    for i in 0..30 {
        phantom(data)
            .args([
                "sql",
                "d",
                &format!("INSERT INTO t VALUES ({i}, 'value {i}')"),
            ])
            .assert()
            .success();
        if i == 9 {
            phantom(data)
                .args(["snapshot", "create", "d"])
                .assert()
                .success();
        }
        if i == 19 {
            phantom(data).args(["save", "d"]).assert().success();
        }
    }
}

/// Flips a bit of the byte at `offset`, in place.
fn flip(path: &Path, offset: usize) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut byte = [0u8];
    f.read_exact_at(&mut byte, offset as u64).unwrap();
    byte[0] ^= 0x20;
    f.write_all_at(&byte, offset as u64).unwrap();
}

/// Where the records of log segment `path` end: it is preallocated, zeros follow them.
fn records_end(path: &Path) -> usize {
    let bytes = std::fs::read(path).unwrap();
    // Block by block from the end (a byte-by-byte scan of 64 MiB is slow in a debug build).
    let block = bytes
        .chunks(4096)
        .rposition(|c| c != &[0u8; 4096][..c.len()])
        .unwrap();
    let base = block * 4096;
    base + bytes[base..].iter().rposition(|&b| b != 0).unwrap() + 1
}

fn snapshot_of(data: &Path) -> PathBuf {
    std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("d_snapshot_")
        })
        .unwrap()
}

#[test]
fn verify_exits_0_on_clean_data_and_1_naming_file_and_offset_of_each_planted_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let out = stdout_of(phantom(&data).args(["verify", "d"]));
    assert!(out.starts_with("ok: "), "{out}");

    let log = data.join("d.log");
    flip(&log, records_end(&log) / 2);
    flip(&data.join("d.db"), 250);
    let assert = phantom(&data).args(["verify", "d"]).assert().code(1);
    let out = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("d.log") && l.contains("byte offset")),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("d.db") && l.contains("line ")),
        "{out}"
    );
    let assert = phantom(&data)
        .args(["verify", "d", "--json"])
        .assert()
        .code(1);
    let json = String::from_utf8(assert.get_output().stdout.clone()).unwrap();
    assert!(json.contains("\"clean\":false"), "{json}");
}

#[test]
fn recover_to_an_lsn_into_another_directory_leaves_the_source_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    let before: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let out_dir = dir.path().join("restored");
    // LSN 1 created the database, 2 the table, 3.. the inserts: LSN 14 holds ids 0..=11.
    let out = stdout_of(
        phantom(&data)
            .args(["recover", "d", "--to-lsn", "14", "--out"])
            .arg(&out_dir),
    );
    assert!(out.contains("final_lsn: 14"), "{out}");
    let rows = stdout_of(phantom(&out_dir).args([
        "sql",
        "d",
        "SELECT id FROM t ORDER BY id DESC LIMIT 1",
    ]));
    assert_eq!(rows, "id\n11\n");
    let after: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before.len(), after.len());
    let dry = stdout_of(phantom(&data).args(["recover", "d", "--dry-run"]));
    assert!(
        dry.contains("final_lsn: 32") && dry.contains("dry_run: true"),
        "{dry}"
    );
}

#[test]
fn recover_in_salvage_mode_keeps_the_valid_prefix_and_reports_what_it_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    seed(&data);
    std::fs::remove_file(data.join("d.db")).unwrap();
    std::fs::remove_file(snapshot_of(&data)).unwrap();
    let log = data.join("d.log");
    flip(&log, records_end(&log) / 2);
    phantom(&data)
        .args(["sql", "d", "SELECT * FROM t"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("d.log"));
    phantom(&data)
        .args(["recover", "d", "--mode", "strict"])
        .assert()
        .code(1);
    let out = stdout_of(phantom(&data).args(["recover", "d", "--mode", "salvage"]));
    assert!(
        out.contains("salvaged: cut") && out.contains("salvaged_dropped_lsns:"),
        "{out}"
    );
    let ids = stdout_of(phantom(&data).args(["sql", "d", "SELECT id FROM t"]));
    let n = ids.lines().count() - 1;
    assert!(n > 0 && n < 30, "a prefix: {ids}");
    phantom(&data).args(["verify", "d"]).assert().success();
}

#[test]
fn a_second_process_gets_locked_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    phantom(&data)
        .args(["sql", "d", "CREATE TABLE t (id INT)"])
        .assert()
        .success();
    // A shell waiting on its (piped, still open) stdin holds the directory.
    let mut holder = StdCommand::new(env!("CARGO_BIN_EXE_phantom"))
        .arg("--data-dir")
        .arg(&data)
        .args(["shell", "d"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = holder.id();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(data.join("LOCK"))
        .unwrap_or_default()
        .trim()
        != pid.to_string()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the shell never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    phantom(&data)
        .args(["sql", "d", "INSERT INTO t VALUES (1)"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("locked by process {pid}")));
    writeln!(holder.stdin.take().unwrap(), "INSERT INTO t VALUES (2);").unwrap();
    assert!(holder.wait().unwrap().success());
    assert_eq!(
        stdout_of(phantom(&data).args(["sql", "d", "SELECT id FROM t"])),
        "id\n2\n"
    );
}
