//! `phantom-bench`: PhantomDB against SQLite, redb, fjall (and Redis, when installed) side by
//! side on the workloads of issue 8 (W1–W6 plus the raw device limit).
//!
//! ```text
//! phantom-bench [--quick] [--only W1,W3] [--json FILE] [--reps N]
//! ```
//!
//! Systems run in alternation, at least 3 repetitions each, each run after waiting for an idle
//! CPU. Prints a table of medians (min – max) with the ratio PhantomDB / best peer, and writes
//! `target/bench/report.md`, `target/bench/report.json` and `target/bench/ratios.svg`. All
//! data lives in temp dirs under the system temp dir. Run it with `cargo xtask bench`.

// A command-line tool whose output is its report.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod measure;
mod redis;
mod report;
mod rows;
mod systems;
mod workloads;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::measure::Machine;
use crate::report::Report;
use crate::workloads::{Bench, Sizes};

const WORKLOADS: [&str; 6] = ["W1", "W2", "W3", "W4", "W5", "W6"];

const USAGE: &str = "phantom-bench [--quick] [--only W1,W3] [--json FILE] [--reps N]

  --quick        small counts (finishes in under 2 minutes on 2 cores)
  --only LIST    run only these workloads (W1..W6; W1 includes the raw fdatasync limit)
  --json FILE    also write the JSON report to FILE
  --reps N       repetitions per system (at least 3; default 3)

phantom-bench --render REPORT.json   rewrite report.md and ratios.svg from a saved report

Redis is measured when redis-server is on PATH (a server child per workload, unix socket only);
PHANTOM_BENCH_NO_REDIS=1 skips it.";

#[derive(Debug)]
struct Args {
    quick: bool,
    only: Vec<String>,
    json: Option<PathBuf>,
    reps: usize,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut out = Args {
        quick: false,
        only: WORKLOADS.iter().map(|w| (*w).to_owned()).collect(),
        json: None,
        reps: 3,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => out.quick = true,
            "--only" => {
                let list = it.next().context("--only needs a list, e.g. W1,W3")?;
                out.only = list
                    .split(',')
                    .map(|w| w.trim().to_ascii_uppercase())
                    .filter(|w| !w.is_empty())
                    .collect();
                if let Some(bad) = out.only.iter().find(|w| !WORKLOADS.contains(&w.as_str())) {
                    bail!("unknown workload {bad:?} (expected W1..W6)");
                }
            }
            "--json" => out.json = Some(PathBuf::from(it.next().context("--json needs a file")?)),
            "--reps" => {
                let n: usize = it
                    .next()
                    .context("--reps needs a number")?
                    .parse()
                    .context("--reps needs a number")?;
                if n < 3 {
                    bail!("--reps must be at least 3");
                }
                out.reps = n;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    Ok(out)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().map(String::as_str) == Some("--child") {
        child(&args)
    } else if args.first().map(String::as_str) == Some("--render") {
        render(&args)
    } else {
        run(&args)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("phantom-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--child open SYSTEM DIR`: used by W4 to measure an open in a fresh process.
/// `--child load SYSTEM DIR`: one W3 load of the full size into `DIR` (which must not hold
/// data yet), printing the seconds; for profiling one system's load on its own.
/// `--child single-commits DIR`: W4's log of 1M single-row commits into `DIR`.
/// `--child group-commits DIR THREADS PER`: W2's workload with `THREADS` writers of `PER`
/// commits each into a fresh `DIR`, printing commits/s, fsyncs and CPU seconds; for profiling.
fn child(args: &[String]) -> Result<()> {
    match args {
        [_, op, system, dir] if op == "load" => {
            println!(
                "{}",
                workloads::child_load_main(system, &PathBuf::from(dir))?
            );
            Ok(())
        }
        [_, op, system, dir] if op == "open" => {
            println!(
                "{}",
                workloads::child_open_main(system, &PathBuf::from(dir))?
            );
            Ok(())
        }
        [_, op, dir] if op == "single-commits" => {
            println!(
                "{}",
                workloads::child_single_commits_main(&PathBuf::from(dir))?
            );
            Ok(())
        }
        [_, op, dir, threads, per] if op == "group-commits" => {
            println!(
                "{}",
                workloads::child_group_commits_main(
                    &PathBuf::from(dir),
                    threads.parse()?,
                    per.parse()?
                )?
            );
            Ok(())
        }
        _ => bail!(
            "usage: phantom-bench --child open|load SYSTEM DIR | single-commits DIR \
             | group-commits DIR THREADS PER"
        ),
    }
}

/// `--render REPORT.json`: rewrites report.md, report.json and ratios.svg from a saved JSON
/// report (to change the presentation without measuring again).
fn render(args: &[String]) -> Result<()> {
    let [_, file] = args else {
        bail!("usage: phantom-bench --render REPORT.json");
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let mut report: Report = serde_json::from_str(&text)?;
    report.finish();
    let dir = out_dir()?;
    report.write(&dir, None)?;
    println!("{}", report.markdown());
    Ok(())
}

/// `target/bench` of the workspace.
fn out_dir() -> Result<PathBuf> {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(|p| p.join("target").join("bench"))
        .context("no workspace root")
}

fn run(raw: &[String]) -> Result<()> {
    let args = parse_args(raw)?;
    let started = Instant::now();
    let sizes = if args.quick {
        Sizes::QUICK
    } else {
        Sizes::FULL
    };
    let report = Report {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        command: std::iter::once("phantom-bench".to_owned())
            .chain(raw.iter().cloned())
            .collect::<Vec<_>>()
            .join(" "),
        machine: Some(Machine::detect()),
        reps: args.reps,
        quick: args.quick,
        sizes: sizes.list(),
        notes: vec![
            "PhantomDB runs with its defaults (SyncMode::Always, group commit) and automatic \
             snapshots off; W4/W5 take snapshots explicitly (binary format unless stated)."
                .to_owned(),
            "Durability: SQLite WAL + synchronous=FULL; redb Durability::Immediate; fjall \
             PersistMode::SyncAll after every commit."
                .to_owned(),
            "Before every measured repetition the bench runs `sync` (so no earlier workload's \
             writes are flushed during it) and waits for the CPUs to be idle."
                .to_owned(),
        ],
        ..Report::default()
    };
    let mut bench = Bench::new(sizes, args.reps, report);
    if args.quick {
        bench.idle_wait = std::time::Duration::from_millis(400);
    }
    let on = |w: &str| args.only.iter().any(|o| o == w);
    // W6 reads the loaded data set before W5 adds rows to PhantomDB's.
    if on("W1") {
        bench.w1()?;
    }
    if on("W2") {
        bench.w2()?;
    }
    if on("W3") {
        bench.w3()?;
    }
    if on("W4") {
        bench.w4()?;
    }
    if on("W6") {
        bench.w6()?;
    }
    if on("W5") {
        bench.w5()?;
    }
    let mut report = bench.report;
    report.wall_seconds = started.elapsed().as_secs_f64();
    report.finish();
    println!("\n{}", report.table());
    println!("Goals (issues 4 and 8):\n\n{}", report.goals_table());
    let dir = out_dir()?;
    report.write(&dir, args.json.as_deref())?;
    println!(
        "wrote {0}/report.md, {0}/report.json, {0}/ratios.svg ({1:.0} s)",
        dir.display(),
        report.wall_seconds
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_select_workloads_and_reject_fewer_than_three_reps() {
        let a = parse_args(&strings(&["--quick", "--only", "w1,W3", "--reps", "4"])).unwrap();
        assert!(a.quick);
        assert_eq!(a.only, ["W1", "W3"]);
        assert_eq!(a.reps, 4);
        assert!(parse_args(&strings(&["--reps", "2"])).is_err());
        assert!(parse_args(&strings(&["--only", "W9"])).is_err());
    }
}
