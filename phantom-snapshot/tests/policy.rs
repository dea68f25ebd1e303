//! Snapshot policies are pure functions of the stats: these tables are their specification.

use std::time::Duration;

use phantom_snapshot::{
    AllOf, AnyOf, Decision, EveryOps, Interval, LogBytes, Never, SnapshotPolicy, SnapshotStats,
    default_policy,
};
use rstest::rstest;

use Decision::{Snapshot, Wait};

fn stats(ops: u64, bytes: u64, secs: u64) -> SnapshotStats {
    SnapshotStats {
        ops_since: ops,
        log_bytes_since: bytes,
        elapsed_since: Duration::from_secs(secs),
    }
}

#[rstest]
#[case(EveryOps(5), 0, Wait)]
#[case(EveryOps(5), 4, Wait)]
#[case(EveryOps(5), 5, Snapshot)]
#[case(EveryOps(5), 6, Snapshot)] // overdue (e.g. a batch crossed the threshold): still fires
#[case(EveryOps(1), 1, Snapshot)]
#[case(EveryOps(0), 0, Wait)]
#[case(EveryOps(0), u64::MAX, Wait)]
#[case(EveryOps(1000), 999, Wait)]
#[case(EveryOps(1000), 1000, Snapshot)]
fn every_ops_fires_once_n_operations_are_committed(
    #[case] policy: EveryOps,
    #[case] ops: u64,
    #[case] expected: Decision,
) {
    // Time and log bytes are irrelevant to EveryOps.
    assert_eq!(policy.decide(&stats(ops, 0, 0)), expected);
    assert_eq!(policy.decide(&stats(ops, 1 << 40, 1 << 20)), expected);
}

#[test]
fn every_5_ops_fires_at_operations_5_and_10_when_the_engine_resets_its_counter() {
    let policy = EveryOps(5);
    let mut since = 0;
    let mut fired_at = Vec::new();
    for op in 1..=12 {
        since += 1;
        if policy.decide(&stats(since, 0, 0)) == Snapshot {
            fired_at.push(op);
            since = 0;
        }
    }
    assert_eq!(fired_at, vec![5, 10]);
}

#[test]
fn the_default_is_the_specs_every_1000_operations() {
    assert_eq!(EveryOps::default(), EveryOps(1000));
    assert_eq!(default_policy(), EveryOps(1000));
}

#[rstest]
#[case(Duration::from_secs(60), 0, 120, Wait)] // nothing changed: no identical copy
#[case(Duration::from_secs(60), 1, 59, Wait)]
#[case(Duration::from_secs(60), 1, 60, Snapshot)]
#[case(Duration::from_secs(60), 1, 3600, Snapshot)]
#[case(Duration::ZERO, 1, 0, Wait)]
#[case(Duration::ZERO, 1, 3600, Wait)]
fn interval_fires_after_the_duration_when_something_changed(
    #[case] every: Duration,
    #[case] ops: u64,
    #[case] secs: u64,
    #[case] expected: Decision,
) {
    assert_eq!(Interval(every).decide(&stats(ops, 0, secs)), expected);
}

#[test]
fn interval_counts_log_bytes_as_a_change_too() {
    // A custom log entry (not an operation) still changes what recovery would replay.
    let policy = Interval(Duration::from_millis(10));
    let s = SnapshotStats {
        ops_since: 0,
        log_bytes_since: 64,
        elapsed_since: Duration::from_millis(10),
    };
    assert_eq!(policy.decide(&s), Snapshot);
}

#[rstest]
#[case(LogBytes(1024), 1023, Wait)]
#[case(LogBytes(1024), 1024, Snapshot)]
#[case(LogBytes(1024), 4096, Snapshot)]
#[case(LogBytes(0), 0, Wait)]
#[case(LogBytes(0), u64::MAX, Wait)]
fn log_bytes_fires_once_the_log_has_grown_enough(
    #[case] policy: LogBytes,
    #[case] bytes: u64,
    #[case] expected: Decision,
) {
    assert_eq!(policy.decide(&stats(1, bytes, 0)), expected);
}

#[rstest]
#[case(stats(0, 0, 0))]
#[case(stats(u64::MAX, u64::MAX, u64::MAX))]
fn never_never_fires(#[case] s: SnapshotStats) {
    assert_eq!(Never.decide(&s), Wait);
}

fn ops_or_minute() -> AnyOf {
    AnyOf(vec![
        Box::new(EveryOps(100)),
        Box::new(Interval(Duration::from_secs(60))),
    ])
}

#[rstest]
#[case(stats(99, 0, 59), Wait)]
#[case(stats(100, 0, 0), Snapshot)] // the ops member
#[case(stats(1, 0, 60), Snapshot)] // the interval member
#[case(stats(100, 0, 60), Snapshot)] // both
fn any_of_fires_when_any_member_fires(#[case] s: SnapshotStats, #[case] expected: Decision) {
    assert_eq!(ops_or_minute().decide(&s), expected);
}

#[rstest]
#[case(stats(99, 0, 59), Wait)]
#[case(stats(100, 0, 0), Wait)]
#[case(stats(1, 0, 60), Wait)]
#[case(stats(100, 0, 60), Snapshot)]
fn all_of_fires_when_every_member_fires(#[case] s: SnapshotStats, #[case] expected: Decision) {
    let policy = AllOf(vec![
        Box::new(EveryOps(100)),
        Box::new(Interval(Duration::from_secs(60))),
    ]);
    assert_eq!(policy.decide(&s), expected);
}

#[test]
fn empty_combinators_never_fire() {
    let s = stats(u64::MAX, u64::MAX, u64::MAX);
    assert_eq!(AnyOf(Vec::new()).decide(&s), Wait);
    assert_eq!(AllOf(Vec::new()).decide(&s), Wait);
}

#[test]
fn combinators_nest_and_policies_work_behind_box_arc_and_references() {
    let nested = AnyOf(vec![
        Box::new(Never),
        Box::new(AnyOf(vec![Box::new(LogBytes(10))])),
    ]);
    assert_eq!(nested.decide(&stats(0, 10, 0)), Snapshot);
    assert_eq!(nested.decide(&stats(0, 9, 0)), Wait);

    let boxed: Box<dyn SnapshotPolicy> = Box::new(EveryOps(2));
    let shared: std::sync::Arc<dyn SnapshotPolicy> = std::sync::Arc::new(EveryOps(2));
    fn decide_generic(p: impl SnapshotPolicy, s: &SnapshotStats) -> Decision {
        p.decide(s)
    }
    assert_eq!(decide_generic(&boxed, &stats(2, 0, 0)), Snapshot);
    assert_eq!(decide_generic(shared.clone(), &stats(1, 0, 0)), Wait);
    assert_eq!(decide_generic(boxed, &stats(1, 0, 0)), Wait);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Deciding is monotone: more of everything never turns a Snapshot into a Wait.
        #[test]
        fn more_progress_never_withdraws_a_snapshot(
            n in 0u64..50, ops in 0u64..100, bytes in 0u64..100, secs in 0u64..100,
            d_ops in 0u64..100, d_bytes in 0u64..100, d_secs in 0u64..100,
        ) {
            let policy = AnyOf(vec![
                Box::new(EveryOps(n)),
                Box::new(LogBytes(n * 7)),
                Box::new(Interval(Duration::from_secs(n))),
            ]);
            let before = policy.decide(&stats(ops, bytes, secs));
            let after = policy.decide(&stats(ops + d_ops, bytes + d_bytes, secs + d_secs));
            prop_assert!(!(before == Snapshot && after == Wait));
        }

        /// AnyOf is exactly the disjunction of its members.
        #[test]
        fn any_of_is_the_disjunction(a in 0u64..20, b in 0u64..20, ops in 0u64..40, bytes in 0u64..40) {
            let s = stats(ops, bytes, 0);
            let expected = EveryOps(a).decide(&s) == Snapshot || LogBytes(b).decide(&s) == Snapshot;
            let any = AnyOf(vec![Box::new(EveryOps(a)), Box::new(LogBytes(b))]);
            prop_assert_eq!(any.decide(&s) == Snapshot, expected);
        }
    }
}
