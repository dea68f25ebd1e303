//! `cargo xtask crash [--sim-seeds N] [--kills N] [--corruptions N] [--debug]`: the durability
//! campaigns at any length — the deterministic simulation (phantom-sim), the corruption
//! campaign (phantom-sim) and real `kill -9` runs of the `phantom` binary (phantom-cli) —
//! in release mode unless `--debug`.

use anyhow::{Result, bail};

use crate::cargo_env;

/// Budgets of one campaign.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Budget {
    pub(crate) sim_seeds: u64,
    pub(crate) kills: u64,
    pub(crate) corruptions: u64,
}

impl Budget {
    /// What `cargo xtask ci` runs.
    pub(crate) const CI: Budget = Budget {
        sim_seeds: 3000,
        kills: 20,
        corruptions: 2000,
    };

    /// The environment the campaign tests read their budgets from.
    pub(crate) fn env(self) -> Vec<(&'static str, String)> {
        vec![
            ("PHANTOM_SIM_SEEDS", self.sim_seeds.to_string()),
            ("PHANTOM_KILLS", self.kills.to_string()),
            ("PHANTOM_CORRUPTION_CASES", self.corruptions.to_string()),
        ]
    }
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut budget = Budget::CI;
    let mut release = true;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || -> Result<u64> {
            match it.next().map(|v| v.parse::<u64>()) {
                Some(Ok(n)) => Ok(n),
                _ => bail!("{arg} needs a number"),
            }
        };
        match arg.as_str() {
            "--sim-seeds" => budget.sim_seeds = value()?,
            "--kills" => budget.kills = value()?,
            "--corruptions" => budget.corruptions = value()?,
            "--debug" => release = false,
            other => bail!("unknown option {other:?} for `cargo xtask crash`"),
        }
    }
    let env = budget.env();
    let profile: &[&str] = if release { &["--release"] } else { &[] };
    let mut sim = vec!["test"];
    sim.extend_from_slice(profile);
    sim.extend_from_slice(&[
        "-p",
        "phantom-sim",
        "--test",
        "simulation",
        "--test",
        "corruption",
        "--",
        "--nocapture",
    ]);
    cargo_env(&sim, &env)?;
    let mut kill = vec!["test"];
    kill.extend_from_slice(profile);
    kill.extend_from_slice(&["-p", "phantom-cli", "--test", "kill", "--", "--nocapture"]);
    cargo_env(&kill, &env)?;
    Ok(())
}
