//! The deterministic simulation over a fixed budget of seeds (`PHANTOM_SIM_SEEDS=N` runs
//! more; `PHANTOM_SIM_SEED=N` replays one seed with its report).

#![allow(clippy::print_stderr)] // the figures of a run are part of its output

use std::time::Instant;

use phantom_sim::{SimConfig, run_seeds, simulate};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[test]
fn every_seed_keeps_every_acknowledged_commit() {
    let seeds = env_u64("PHANTOM_SIM_SEEDS").unwrap_or(200);
    let started = Instant::now();
    let violations = run_seeds(0..seeds, &SimConfig::default());
    eprintln!(
        "{seeds} seeds in {:?}, {} violations",
        started.elapsed(),
        violations.len()
    );
    for v in &violations {
        eprintln!("{v}");
    }
    assert!(
        violations.is_empty(),
        "{} violations, first: {}",
        violations.len(),
        violations[0]
    );
}

#[test]
fn replay_seed() {
    let Some(seed) = env_u64("PHANTOM_SIM_SEED") else {
        return;
    };
    match simulate(seed, &SimConfig::default()) {
        Ok(report) => eprintln!("{report:#?}"),
        Err(v) => panic!("{v}"),
    }
}

#[test]
fn the_workload_reaches_every_failure_path() {
    let config = SimConfig::default();
    let mut total = phantom_sim::SimReport::default();
    for seed in 1000..1040 {
        let r = simulate(seed, &config).unwrap_or_else(|v| panic!("{v}"));
        total.commits += r.commits;
        total.failed_commits += r.failed_commits;
        total.crashes += r.crashes;
        total.clean_reopens += r.clean_reopens;
        total.recoveries += r.recoveries;
        total.recovery_failures += r.recovery_failures;
        total.maybe_included += r.maybe_included;
        total.images_written += r.images_written;
        total.fs.faults += r.fs.faults;
        total.fs.file_syncs += r.fs.file_syncs;
    }
    eprintln!("{total:#?}");
    assert!(total.commits > 500, "{total:?}");
    assert!(total.failed_commits > 0, "{total:?}");
    assert!(total.crashes > 40, "{total:?}");
    assert!(
        total.recovery_failures > 0,
        "crashes during recovery: {total:?}"
    );
    assert!(
        total.maybe_included > 0,
        "a failed commit that survived: {total:?}"
    );
    assert!(total.images_written > 20, "{total:?}");
    assert!(total.fs.faults > 0, "{total:?}");
}

#[test]
fn a_seed_replays_the_same_run() {
    let config = SimConfig::default();
    for seed in [3, 11, 42] {
        let a = simulate(seed, &config).unwrap_or_else(|v| panic!("{v}"));
        let b = simulate(seed, &config).unwrap_or_else(|v| panic!("{v}"));
        let key = |r: &phantom_sim::SimReport| {
            (
                r.commits,
                r.failed_commits,
                r.last_lsn,
                r.crashes,
                r.recoveries,
                r.fs.ops,
            )
        };
        assert_eq!(key(&a), key(&b), "seed {seed}");
    }
}
