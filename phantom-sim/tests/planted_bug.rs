//! The simulation is only worth something if it catches a durability bug: plant one in the
//! file system (a sync that claims success without making anything durable) and expect a
//! violation within the CI seed budget.

#![allow(clippy::print_stderr)] // the figures of a run are part of its output

use phantom_sim::{Bugs, SimConfig, run_seeds};

fn caught(bugs: Bugs) -> usize {
    let config = SimConfig {
        bugs,
        ..SimConfig::default()
    };
    let violations = run_seeds(0..60, &config);
    for v in violations.iter().take(3) {
        eprintln!("{v}");
    }
    violations.len()
}

#[test]
fn a_directory_fsync_that_lies_is_caught() {
    let n = caught(Bugs {
        sync_dir_lies: true,
        ..Bugs::default()
    });
    assert!(n > 0, "no violation with sync_dir as a no-op");
}

#[test]
fn a_data_fsync_that_lies_is_caught() {
    let n = caught(Bugs {
        sync_data_lies: true,
        ..Bugs::default()
    });
    assert!(n > 0, "no violation with sync_data as a no-op");
}
