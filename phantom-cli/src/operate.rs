//! The recovery and durability commands: `verify`, `recover` and `stress`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, bail};
use phantom_core::{Column, ColumnType, Database, Filter, Literal, RecoveryMode, Restored, Target};

use crate::commands::{recovery_figures, text_of};

/// `phantom verify DB [--json]`: read-only check of every file; exit 1 when anything is wrong.
pub(crate) fn verify(dir: &Path, name: &str, json: bool) -> anyhow::Result<bool> {
    let db = Database::builder().data_dir(dir).build()?;
    let report = db.verify(name)?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        let problems: Vec<serde_json::Value> = report
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "file": p.file.display().to_string(),
                    "location": p.location,
                    "message": p.message,
                })
            })
            .collect();
        let body = serde_json::json!({
            "database": name,
            "clean": report.is_clean(),
            "files": report.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "log_records": report.records,
            "problems": problems,
        });
        writeln!(out, "{body}")?;
    } else if report.is_clean() {
        writeln!(
            out,
            "ok: {} files checked, {} log records, no problem",
            report.files.len(),
            report.records
        )?;
    } else {
        for p in &report.problems {
            writeln!(out, "{p}")?;
        }
    }
    Ok(report.is_clean())
}

/// Arguments of `phantom recover`.
#[derive(Debug)]
pub(crate) struct RecoverArgs<'a> {
    pub(crate) to_lsn: Option<u64>,
    pub(crate) to_time: Option<&'a str>,
    pub(crate) out: Option<&'a Path>,
    pub(crate) mode: RecoveryMode,
    pub(crate) dry_run: bool,
}

fn print_restored(out: &mut dyn Write, r: &Restored, dry_run: bool) -> anyhow::Result<()> {
    writeln!(out, "dry_run: {dry_run}")?;
    writeln!(
        out,
        "recovery_point: {}",
        r.source
            .as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.display().to_string())
    )?;
    writeln!(out, "recovery_lsn: {}", r.source_lsn)?;
    writeln!(out, "records_replayed: {}", r.replayed)?;
    writeln!(out, "final_lsn: {}", r.lsn)?;
    writeln!(out, "tables: {}", r.catalog.len())?;
    writeln!(out, "rows: {}", r.catalog.row_count())?;
    for x in &r.rejected {
        writeln!(out, "rejected: {}: {}", x.path.display(), x.reason)?;
    }
    Ok(())
}

/// `phantom recover DB [--to-lsn N | --to-time T] [--out DIR] [--mode M] [--dry-run]`.
pub(crate) fn recover(dir: &Path, name: &str, args: &RecoverArgs<'_>) -> anyhow::Result<()> {
    let target = match (args.to_lsn, args.to_time) {
        (Some(_), Some(_)) => bail!("give --to-lsn or --to-time, not both"),
        (Some(lsn), None) => Some(Target::Lsn(lsn)),
        (None, Some(t)) => Some(Target::Time(
            chrono::DateTime::parse_from_rfc3339(t)
                .with_context(|| format!("--to-time {t:?} is not an RFC 3339 time"))?
                .to_utc(),
        )),
        (None, None) => None,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.dry_run {
        // Nothing is written, cut or moved: the state is computed read-only.
        let db = Database::builder()
            .data_dir(dir)
            .recovery_mode(args.mode)
            .open()?;
        let restored = db.restore_preview(name, target.unwrap_or(Target::End))?;
        print_restored(&mut out, &restored, true)?;
        let report = db.verify(name)?;
        for p in &report.problems {
            writeln!(out, "problem: {p}")?;
        }
        return Ok(());
    }
    match target {
        Some(target) => {
            let db = Database::builder()
                .data_dir(dir)
                .recovery_mode(args.mode)
                .open()?;
            let restored = db.restore(name, target, args.out)?;
            print_restored(&mut out, &restored, false)?;
            if let Some(o) = args.out {
                writeln!(out, "written: {}", o.join(format!("{name}.db")).display())?;
            }
        }
        None => {
            if args.out.is_some() {
                bail!(
                    "--out needs --to-lsn or --to-time (a copy of the latest state: `phantom save`)"
                );
            }
            let db = Database::builder()
                .data_dir(dir)
                .recovery_mode(args.mode)
                .open()?;
            db.load_from_disk(name)?;
            let report = db.recovery_report(name)?;
            writeln!(out, "mode: {:?}", report.mode)?;
            for (k, v) in recovery_figures(&report) {
                writeln!(out, "{k}: {}", text_of(&v))?;
            }
            if let Some(s) = &report.salvaged {
                writeln!(
                    out,
                    "salvaged: cut {} at byte offset {}: {}",
                    s.file.display(),
                    s.offset,
                    s.reason
                )?;
                writeln!(
                    out,
                    "salvaged_dropped_lsns: {}..{}",
                    s.last_kept_lsn + 1,
                    s.last_dropped_lsn
                        .map_or_else(|| "?".to_owned(), |l| l.to_string())
                )?;
                writeln!(out, "salvaged_bytes_dropped: {}", s.bytes_dropped)?;
            }
        }
    }
    Ok(())
}

/// `phantom stress DB --writers N --ops M [--seed S]`: random committed operations from N
/// threads, for crash tests. Before each commit a writer prints
/// `try <writer> <seq> <op> <key> <value>`, and right after it is acknowledged
/// `ack <writer> <seq>`, each line flushed at once; a harness kills the process at random
/// and checks the recovered table against the printed history. Every writer works on its
/// own keys (`key = writer * 1_000_000_000 + n`), so the history of each key is sequential.
/// `op` is `insert`, `update`, `delete` or `batch` (an atomic transaction inserting keys
/// `key..key+3`, all with `value`).
pub(crate) fn stress(
    dir: &Path,
    name: &str,
    writers: u64,
    ops: u64,
    seed: u64,
) -> anyhow::Result<()> {
    let db = Arc::new(Database::open(dir)?);
    db.ensure_database(name)?;
    if !db.list_tables(name)?.iter().any(|t| t == "stress") {
        db.create_table(
            name,
            "stress",
            vec![
                Column::new("k", ColumnType::Int).primary_key(),
                Column::new("v", ColumnType::Int).not_null(),
            ],
        )?;
    }
    // Continue numbering after every key an earlier (killed) run used, in any writer's range.
    let start = db
        .select_all(name, "stress")?
        .rows
        .iter()
        .filter_map(|r| match r.first() {
            Some(phantom_core::Value::Int(k)) => Some(k % 1_000_000_000 + 10),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let failures = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..writers)
        .map(|w| {
            let db = Arc::clone(&db);
            let stdout = Arc::clone(&stdout);
            let failures = Arc::clone(&failures);
            let name = name.to_owned();
            std::thread::spawn(move || {
                let mut rng = seed ^ (w + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut next = || {
                    // xorshift64*: deterministic per writer, no dependency needed.
                    rng ^= rng >> 12;
                    rng ^= rng << 25;
                    rng ^= rng >> 27;
                    rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
                };
                let base = w as i64 * 1_000_000_000;
                let mut live: Vec<i64> = Vec::new();
                let mut n = start;
                let say = |line: String| {
                    let mut out = stdout
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let _ = writeln!(out, "{line}");
                    let _ = out.flush();
                };
                for seq in 0..ops {
                    let value = (next() % 1_000_000) as i64;
                    let pick = next() % 10;
                    let (op, key, result) = if live.is_empty() || pick < 4 {
                        let key = base + n;
                        n += 1;
                        say(format!("try {w} {seq} insert {key} {value}"));
                        let r = db.insert(
                            &name,
                            "stress",
                            [("k", Literal::from(key)), ("v", Literal::from(value))],
                        );
                        (r.is_ok().then_some(()), key, r.map(drop))
                    } else if pick < 7 {
                        let key = live[(next() as usize) % live.len()];
                        say(format!("try {w} {seq} update {key} {value}"));
                        let r = db.update(&name, "stress", &Filter::eq("k", key), [("v", value)]);
                        (None, key, r.map(drop))
                    } else if pick < 9 {
                        let i = (next() as usize) % live.len();
                        let key = live[i];
                        say(format!("try {w} {seq} delete {key} {value}"));
                        let r = db.delete(&name, "stress", &Filter::eq("k", key));
                        if r.is_ok() {
                            live.swap_remove(i);
                        }
                        (None, key, r.map(drop))
                    } else {
                        let key = base + n;
                        n += 4;
                        say(format!("try {w} {seq} batch {key} {value}"));
                        let r = db.transaction(&name, |tx| {
                            for k in key..key + 4 {
                                tx.insert(
                                    "stress",
                                    [("k", Literal::from(k)), ("v", Literal::from(value))],
                                )?;
                            }
                            Ok(())
                        });
                        if r.is_ok() {
                            live.extend(key..key + 3);
                        }
                        (r.is_ok().then_some(()), key + 3, r.map(drop))
                    };
                    match result {
                        Ok(()) => {
                            if op.is_some() {
                                live.push(key);
                            }
                            say(format!("ack {w} {seq}"));
                        }
                        Err(e) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            say(format!("err {w} {seq} {e}"));
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} writers stopped on an error");
    }
    Ok(())
}
