//! The deterministic simulation over a fixed budget of seeds (`PHANTOM_SIM_SEEDS=N` runs
//! more; `PHANTOM_SIM_SEED=N` replays one seed with its report).

use std::time::Instant;

use phantom_sim::{SimConfig, run_seeds, simulate};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[test]
fn every_seed_keeps_every_acknowledged_commit() {
    let seeds = env_u64("PHANTOM_SIM_SEEDS").unwrap_or(150);
    let started = Instant::now();
    let violations = run_seeds(0..seeds, &SimConfig::default());
    eprintln!("{seeds} seeds in {:?}, {} violations", started.elapsed(), violations.len());
    for v in &violations {
        eprintln!("{v}");
    }
    assert!(violations.is_empty(), "{} violations, first: {}", violations.len(), violations[0]);
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
