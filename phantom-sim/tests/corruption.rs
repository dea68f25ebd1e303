//! The corruption campaign (issue 7 item 4): every kind of file damaged in every way ends in a
//! named error, a visible repair, or a fallback that keeps every acknowledged commit — never
//! wrong data served silently, never a panic. `PHANTOM_CORRUPTION_CASES=N` runs more.

#![allow(clippy::print_stderr)] // the figures of a run are part of its output

use std::time::Instant;

use phantom_sim::run_corruptions;

#[test]
fn damaged_files_are_reported_repaired_or_skipped_never_served() {
    let cases = std::env::var("PHANTOM_CORRUPTION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400);
    let started = Instant::now();
    let summary = run_corruptions(cases, 1);
    eprintln!("{summary}in {:?}", started.elapsed());
    assert!(
        summary.cases >= cases * 9 / 10,
        "cases were skipped: {summary}"
    );
    assert_eq!(
        summary.by_kind.len(),
        4,
        "every file kind is damaged: {summary}"
    );
    assert!(summary.failures.is_empty(), "{summary}");
}
