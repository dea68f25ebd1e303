//! `cargo xtask fuzz [--time SECS] [--sanitizer NAME] [TARGET]`: runs the cargo-fuzz targets
//! of `fuzz/` (every one, or the one named) for SECS seconds each (default 60), installing
//! cargo-fuzz first if it is missing.
//!
//! Each target starts from its committed seeds (`fuzz/corpus/<target>/`, read only) and keeps
//! what it discovers in `fuzz/target/corpus/<target>/` (ignored by git), so a run never
//! floods the committed corpus. A crash leaves its input in `fuzz/artifacts/<target>/`; the
//! task runs the remaining targets, prints a summary (runs, execs/s, crash file) and fails.
//!
//! Targets are built in release mode with debug assertions and overflow checks. The default
//! sanitizer is `none`, which builds on the stable toolchain; any other
//! (`address`, …) needs `-Zsanitizer`, so the task then sets `RUSTC_BOOTSTRAP=1`.

use std::env;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

const DEFAULT_SECS: u64 = 60;

/// What one target's run gave.
struct Outcome {
    target: String,
    runs: Option<u64>,
    secs: f64,
    crash: Option<String>,
    success: bool,
}

fn say(line: &str) {
    #[allow(clippy::print_stderr)]
    {
        eprintln!("{line}");
    }
}

/// Entry point of the `fuzz` task; `args` are the arguments after `fuzz`.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let mut secs = DEFAULT_SECS;
    let mut sanitizer = "none".to_owned();
    let mut only: Option<String> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |flag: &str| -> Result<String> {
            match arg.split_once('=') {
                Some((_, v)) => Ok(v.to_owned()),
                None => it
                    .next()
                    .cloned()
                    .with_context(|| format!("{flag} needs a value")),
            }
        };
        match arg.as_str() {
            "-h" | "--help" => {
                say(
                    "cargo xtask fuzz [--time SECS] [--sanitizer none|address|...] [TARGET]\n\n\
                     Runs each fuzz target (or TARGET) for SECS seconds (default 60).",
                );
                return Ok(());
            }
            a if a == "--time" || a.starts_with("--time=") => {
                let v = value("--time")?;
                secs = v
                    .parse()
                    .with_context(|| format!("--time takes whole seconds, not {v:?}"))?;
            }
            a if a == "--sanitizer" || a.starts_with("--sanitizer=") => {
                sanitizer = value("--sanitizer")?;
            }
            a if a.starts_with('-') => bail!("unknown option {a:?} of `cargo xtask fuzz`"),
            a => {
                if only.replace(a.to_owned()).is_some() {
                    bail!("`cargo xtask fuzz` takes at most one target");
                }
            }
        }
    }

    let fuzz_dir = crate::workspace_root().join("fuzz");
    let all = targets(&fuzz_dir)?;
    let chosen = match only {
        Some(t) if all.contains(&t) => vec![t],
        Some(t) => bail!("no fuzz target {t:?}; targets: {}", all.join(", ")),
        None => all,
    };
    ensure_cargo_fuzz()?;

    let mut outcomes = Vec::new();
    for target in &chosen {
        outcomes.push(run_target(&fuzz_dir, target, secs, &sanitizer)?);
    }

    say("\nxtask fuzz: summary");
    say(&format!(
        "{:<16} {:>12} {:>8} {:>10}  result",
        "target", "runs", "secs", "execs/s"
    ));
    for o in &outcomes {
        let rate = o
            .runs
            .filter(|_| o.secs > 0.0)
            .map_or("-".to_owned(), |r| format!("{:.0}", r as f64 / o.secs));
        let runs = o.runs.map_or("-".to_owned(), |r| r.to_string());
        let result = match (&o.crash, o.success) {
            // libFuzzer keeps inputs slower than its limit as `slow-unit-*` without failing.
            (Some(file), true) if file.contains("slow-unit-") => format!("ok, SLOW INPUT: {file}"),
            (Some(file), _) => format!("CRASH: {file}"),
            (None, true) => "ok".to_owned(),
            (None, false) => "FAILED (see the output above)".to_owned(),
        };
        say(&format!(
            "{:<16} {:>12} {:>8.0} {:>10}  {result}",
            o.target, runs, o.secs, rate
        ));
    }
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.success)
        .map(|o| o.target.as_str())
        .collect();
    if !failed.is_empty() {
        bail!(
            "fuzzing found problems in {}: reproduce with `cargo fuzz run --sanitizer none <target> <file>` in fuzz/",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Target names: the files of `fuzz/fuzz_targets/`, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>> {
    let dir = fuzz_dir.join("fuzz_targets");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn cargo() -> String {
    env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Installs cargo-fuzz unless `cargo fuzz --version` already works.
fn ensure_cargo_fuzz() -> Result<()> {
    let present = Command::new(cargo())
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if present {
        return Ok(());
    }
    say("xtask: cargo-fuzz is missing: cargo install --locked cargo-fuzz");
    let status = Command::new(cargo())
        .args(["install", "--locked", "cargo-fuzz"])
        .status()
        .context("running cargo install")?;
    if !status.success() {
        bail!("`cargo install --locked cargo-fuzz` failed with {status}");
    }
    Ok(())
}

/// Runs one target for `secs` seconds, echoing libFuzzer's output and picking out the run
/// count and any crash file.
fn run_target(fuzz_dir: &Path, target: &str, secs: u64, sanitizer: &str) -> Result<Outcome> {
    let scratch: PathBuf = fuzz_dir.join("target").join("corpus").join(target);
    std::fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
    let seeds = fuzz_dir.join("corpus").join(target);
    let mut cmd = Command::new(cargo());
    cmd.current_dir(fuzz_dir)
        // Debug assertions and overflow checks on: an arithmetic overflow on hostile input
        // is a finding, not a silent wrap.
        .args([
            "fuzz",
            "run",
            "--debug-assertions",
            "--sanitizer",
            sanitizer,
            target,
        ])
        .arg(&scratch)
        .arg(&seeds)
        .args(["--", &format!("-max_total_time={secs}")])
        // The harness has its own target dir (fuzz/target); a target dir meant for the
        // workspace would mix instrumented and plain builds.
        .env_remove("CARGO_TARGET_DIR")
        .stderr(Stdio::piped());
    if sanitizer != "none" {
        cmd.env("RUSTC_BOOTSTRAP", "1");
    }
    say(&format!(
        "xtask: fuzzing {target} for {secs} s (sanitizer {sanitizer}; new inputs go to {})",
        scratch.display()
    ));
    let started = Instant::now();
    let mut child = cmd.spawn().context("running cargo fuzz")?;
    let mut runs = None;
    let mut fuzzed_secs: Option<f64> = None;
    let mut crash = None;
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading cargo fuzz output")?;
            say(&line);
            // libFuzzer's last line: "Done 1321405 runs in 21 second(s)".
            if let Some(rest) = line.strip_prefix("Done ") {
                let words: Vec<&str> = rest.split_whitespace().collect();
                if let [n, "runs", "in", s, ..] = words[..] {
                    runs = n.parse().ok();
                    fuzzed_secs = s.parse().ok();
                }
            }
            // "Test unit written to ./artifacts/csv_reader/crash-…"
            if let Some((_, file)) = line.split_once("Test unit written to ") {
                crash = Some(file.trim().to_owned());
            }
        }
    }
    let status = child.wait().context("waiting for cargo fuzz")?;
    Ok(Outcome {
        target: target.to_owned(),
        runs,
        // libFuzzer's own figure excludes the build; the wall time is the fallback.
        secs: fuzzed_secs.unwrap_or_else(|| started.elapsed().as_secs_f64()),
        crash,
        success: status.success(),
    })
}
