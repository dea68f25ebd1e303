//! Durability against real crashes: the real `phantom` binary is killed with SIGKILL at random
//! moments, and what the next process recovers is checked against what was acknowledged.
//!
//! `PHANTOM_KILLS` (default 20) sets how many processes are killed in each test;
//! `PHANTOM_KILL_SEED` replays a run (the seed is printed).
#![allow(clippy::unwrap_used, clippy::print_stderr)]
#![cfg(unix)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use phantom_core::{Database, Value};

struct Rng(u64);

impl Rng {
    fn from_env() -> Rng {
        let seed = std::env::var("PHANTOM_KILL_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("PHANTOM_KILL_SEED={seed}");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn kills() -> usize {
    std::env::var("PHANTOM_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

fn phantom(data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_phantom"));
    cmd.arg("--data-dir").arg(data).env_remove("RUST_LOG");
    cmd
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("not an int: {other:?}"),
    }
}

/// Every `phantom sql` whose process exited 0 committed its whole batch; a killed one
/// committed all of its batch or none of it.
#[test]
fn kill_9_during_phantom_sql_never_loses_an_acknowledged_batch_nor_shows_part_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let status = phantom(&data)
        .args([
            "sql",
            "d",
            "CREATE TABLE t (k INT PRIMARY KEY, batch INT NOT NULL)",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rng = Rng::from_env();
    let (mut acked, mut killed) = (BTreeSet::new(), 0);
    let mut batch = 0i64;
    while killed < kills() {
        batch += 1;
        assert!(
            batch < 50 * kills() as i64,
            "could not kill a running process often enough"
        );
        let values: Vec<String> = (0..5)
            .map(|i| format!("({}, {batch})", batch * 10 + i))
            .collect();
        let script = format!(
            "BEGIN; INSERT INTO t VALUES {}; INSERT INTO t VALUES ({}, {batch}); COMMIT",
            values.join(", "),
            batch * 10 + 5
        );
        let mut child = phantom(&data)
            .args(["sql", "d", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        match child.try_wait().unwrap() {
            Some(status) => {
                assert!(status.success(), "batch {batch} failed: {status}");
                acked.insert(batch);
            }
            None => {
                child.kill().unwrap(); // SIGKILL
                let status = child.wait().unwrap();
                if status.success() {
                    acked.insert(batch); // it finished before the signal landed
                } else {
                    killed += 1;
                }
            }
        }
    }
    let db = Database::open(&data).unwrap();
    let rows = db.select_all("d", "t").unwrap().rows;
    let mut by_batch: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for r in &rows {
        by_batch.entry(int(&r[1])).or_default().push(int(&r[0]));
    }
    for b in &acked {
        assert!(
            by_batch.contains_key(b),
            "acknowledged batch {b} is missing"
        );
    }
    for (b, keys) in &by_batch {
        assert_eq!(
            keys,
            &(b * 10..b * 10 + 6).collect::<Vec<_>>(),
            "batch {b} is partial"
        );
    }
    eprintln!(
        "{killed} kills, {} batches acknowledged, {} present",
        acked.len(),
        by_batch.len()
    );
}

/// `phantom stress` with several writers, killed at random, again and again: after each kill
/// every acknowledged operation is in the recovered table and nothing else is, except the one
/// operation each writer had in flight, which may or may not have committed.
#[test]
fn kill_9_during_phantom_stress_recovers_exactly_the_acknowledged_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = Rng::from_env();
    let mut model: BTreeMap<i64, i64> = BTreeMap::new();
    let rounds = (kills() / 4).max(3);
    for round in 0..rounds {
        let mut child = phantom(&data)
            .args([
                "stress",
                "d",
                "--writers",
                "4",
                "--ops",
                "100000",
                "--seed",
                &(round as u64 + 1).to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(100 + rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        let lines = reader.join().unwrap();

        // Replay the printed history: per writer, `try` then `ack`, strictly in turn.
        let mut pending: BTreeMap<u64, (String, i64, i64)> = BTreeMap::new();
        let mut maybe: Vec<(String, i64, i64)> = Vec::new();
        let mut acks = 0;
        for line in &lines {
            let f: Vec<&str> = line.split(' ').collect();
            match f.first().copied() {
                Some("try") => {
                    let w: u64 = f[1].parse().unwrap();
                    pending.insert(
                        w,
                        (
                            f[3].to_owned(),
                            f[4].parse().unwrap(),
                            f[5].parse().unwrap(),
                        ),
                    );
                }
                Some("ack") => {
                    let w: u64 = f[1].parse().unwrap();
                    let (op, key, value) = pending.remove(&w).unwrap();
                    apply(&mut model, &op, key, value);
                    acks += 1;
                }
                Some("err") => panic!("a writer failed: {line}"),
                _ => {} // a line cut by the kill
            }
        }
        maybe.extend(pending.into_values());

        let db = Database::open(&data).unwrap();
        let actual: BTreeMap<i64, i64> = db
            .select_all("d", "stress")
            .unwrap()
            .rows
            .iter()
            .map(|r| (int(&r[0]), int(&r[1])))
            .collect();
        drop(db);
        // The in-flight operations may have committed: accept the state with any subset of them.
        let maybe_keys: BTreeSet<i64> = maybe
            .iter()
            .flat_map(|(op, k, _)| {
                if op == "batch" {
                    (*k..*k + 4).collect()
                } else {
                    vec![*k]
                }
            })
            .collect();
        for (k, v) in &model {
            if !maybe_keys.contains(k) {
                assert_eq!(
                    actual.get(k),
                    Some(v),
                    "round {round}: acknowledged key {k} lost or wrong"
                );
            }
        }
        for (k, v) in &actual {
            if !maybe_keys.contains(k) {
                assert_eq!(
                    model.get(k),
                    Some(v),
                    "round {round}: key {k} present but never acknowledged"
                );
            }
        }
        for (op, key, value) in &maybe {
            let mut with = model.clone();
            apply(&mut with, op, *key, *value);
            let keys: Vec<i64> = if op == "batch" {
                (*key..*key + 4).collect()
            } else {
                vec![*key]
            };
            let matches = |m: &BTreeMap<i64, i64>| keys.iter().all(|k| m.get(k) == actual.get(k));
            assert!(
                matches(&model) || matches(&with),
                "round {round}: in-flight {op} {key} is half applied"
            );
        }
        eprintln!(
            "round {round}: {acks} acknowledged operations, {} rows",
            actual.len()
        );
        model = actual;
    }
}

fn apply(model: &mut BTreeMap<i64, i64>, op: &str, key: i64, value: i64) {
    match op {
        "insert" | "update" => {
            model.insert(key, value);
        }
        "delete" => {
            model.remove(&key);
        }
        "batch" => {
            for k in key..key + 4 {
                model.insert(k, value);
            }
        }
        other => panic!("unknown op {other}"),
    }
}
