//! `cargo xtask`: the entry point for everything beyond `cargo test`.
//!
//! - `cargo xtask ci` — what CI runs: `cargo fmt --check`, clippy with `-D warnings` on every
//!   target, the whole test suite (unit, integration and doc tests), and the short forms of the
//!   long campaigns once they exist.
//! - `cargo xtask bench [--quick] [--only W1,W3] [--json FILE] [--reps N]` — PhantomDB side by
//!   side with SQLite, redb, fjall (and Redis) in release mode; writes `target/bench/`.
//!
//! xtask depends on none of the engine crates at build time: it drives them through `cargo`.

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

mod crash;
mod fuzz;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("xtask: error: {e:#}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("crash") => crash::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("miri") => miri(),
        Some("help") | Some("--help") | Some("-h") | None => {
            usage();
            Ok(())
        }
        Some(other) => bail!("unknown task {other:?}; run `cargo xtask help`"),
    }
}

fn usage() {
    #[allow(clippy::print_stdout)]
    {
        println!(
            "cargo xtask <task>\n\n\
             tasks:\n  \
             ci      fmt --check, clippy -D warnings, all tests and doc tests, rustdoc -D warnings, with the\n          \
                     CI budgets of the durability campaigns (3,000 simulation seeds, 20 kills,\n          \
                     2,000 corruption cases, every fuzz corpus replayed)\n  \
             crash   [--sim-seeds N] [--kills N] [--corruptions N] [--debug]: the durability\n          \
                     campaigns at any length (release mode)\n  \
             bench   [--quick] [--only W1,W3] [--json FILE] [--reps N]: PhantomDB side by side\n          \
                     with SQLite, redb, fjall and Redis (release mode; writes target/bench/)\n  \
             fuzz    [--time SECS] [--sanitizer NAME] [TARGET]: cargo-fuzz on every target (or\n          \
                     one) for SECS seconds each (default 60; installs cargo-fuzz if missing)\n  \
             miri    the tests of the engine's `unsafe` code under Miri (nightly toolchain with\n          \
                     the miri component; `rustup +nightly component add miri`)"
        );
    }
}

/// Runs `cargo <args>` in the workspace root, failing on a non-zero exit.
fn cargo(args: &[&str]) -> Result<()> {
    cargo_env(args, &[])
}

/// Runs `cargo <args>` with extra environment variables.
pub(crate) fn cargo_env(args: &[&str], env: &[(&str, String)]) -> Result<()> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let started = Instant::now();
    #[allow(clippy::print_stderr)]
    {
        eprintln!("xtask: cargo {}", args.join(" "));
    }
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "xtask: cargo {} took {:.1?}",
            args.join(" "),
            started.elapsed()
        );
    }
    if !status.success() {
        bail!("`cargo {}` failed with {status}", args.join(" "));
    }
    Ok(())
}

fn workspace_root() -> std::path::PathBuf {
    let manifest_dir = env!("CARGO_MANIFEST_DIR");
    std::path::Path::new(manifest_dir)
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::PathBuf::from("."))
}

fn ci() -> Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // The default test run, with the CI budgets of the durability campaigns (see `crash`).
    cargo_env(
        &["test", "--workspace", "--all-targets"],
        &crash::Budget::CI.env(),
    )?;
    cargo(&["test", "--workspace", "--doc"])?;
    // Every crate documents on its own, without broken links.
    cargo_env(
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings".to_owned())],
    )?;
    Ok(())
}

/// The tests that exercise `unsafe` code, by name filter and package. Each is small enough for
/// Miri's interpreter (seconds, not the proptest runs of the same code).
const MIRI_TESTS: &[(&str, &str)] = &[("phantom-storage", "shared_row_decoding")];

/// `cargo xtask miri`: runs [`MIRI_TESTS`] under Miri, which fails on undefined behaviour and
/// on leaked memory. Not part of `ci`: it needs a nightly toolchain, which CI does not install.
fn miri() -> Result<()> {
    for (package, filter) in MIRI_TESTS {
        // Through rustup, not `$CARGO`: under `cargo xtask` that is the stable toolchain's
        // own cargo, which does not take a `+nightly` override.
        let args = [
            "run", "nightly", "cargo", "miri", "test", "-p", package, "--lib", filter,
        ];
        #[allow(clippy::print_stderr)]
        {
            eprintln!("xtask: rustup {}", args.join(" "));
        }
        let status = Command::new("rustup")
            .args(args)
            .current_dir(workspace_root())
            .status()
            .context("running rustup (Miri needs a nightly toolchain through rustup)")?;
        if !status.success() {
            bail!("`rustup {}` failed with {status}", args.join(" "));
        }
    }
    Ok(())
}

/// `cargo xtask bench ARGS`: `cargo run --release -p phantom-bench -- ARGS`.
fn bench(args: &[String]) -> Result<()> {
    let mut cmd = vec!["run", "--release", "-p", "phantom-bench", "--"];
    cmd.extend(args.iter().map(String::as_str));
    cargo(&cmd)
}
