//! Snapshot file names: the spec's `<db>_snapshot_YYYYMMDD_HHMMSS` (UTC), a `_NNN` suffix for
//! more snapshots in one second, strict parsing, and name order = creation order.

mod common;

use chrono::{NaiveDate, NaiveDateTime};
use common::{LineFormat, files, sample_catalog, store, t};
use phantom_snapshot::{MAX_SEQ, parse_snapshot_name, snapshot_file_name};
use rstest::rstest;

fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|d| d.and_hms_opt(h, mi, s))
        .expect("valid")
}

#[rstest]
#[case("a_snapshot_20231201_120000", at(2023, 12, 1, 12, 0, 0), 0)]
#[case("a_snapshot_20231201_120000_001", at(2023, 12, 1, 12, 0, 0), 1)]
#[case("a_snapshot_20231201_120000_999", at(2023, 12, 1, 12, 0, 0), 999)]
#[case("a_snapshot_20240229_235959", at(2024, 2, 29, 23, 59, 59), 0)]
#[case("a_snapshot_00010101_000000", at(1, 1, 1, 0, 0, 0), 0)]
fn parses_the_names_it_writes(#[case] name: &str, #[case] stamp: NaiveDateTime, #[case] seq: u32) {
    assert_eq!(parse_snapshot_name("a", name), Some((stamp, seq)));
    assert_eq!(snapshot_file_name("a", stamp, seq), name);
}

#[rstest]
#[case::other_database_with_our_name_as_prefix("ab_snapshot_20231201_120000")]
#[case::case_differs("A_snapshot_20231201_120000")]
#[case::no_timestamp("a_snapshot_")]
#[case::not_a_timestamp("a_snapshot_x")]
#[case::timestamp_of_a_longer_db_name("a_snapshot_20231201_120000_snapshot_20231201_120000")]
#[case::temp_file("a_snapshot_20231201_120000.tmp")]
#[case::quarantined("a_snapshot_20231201_120000.broken")]
#[case::suffix_zero("a_snapshot_20231201_120000_000")]
#[case::suffix_too_short("a_snapshot_20231201_120000_01")]
#[case::suffix_too_long("a_snapshot_20231201_120000_1000")]
#[case::two_suffixes("a_snapshot_20231201_120000_001_002")]
#[case::trailing_text("a_snapshot_20231201_120000x")]
#[case::wrong_separator("a_snapshot_20231201-120000")]
#[case::short_date("a_snapshot_2023121_120000")]
#[case::not_a_leap_year("a_snapshot_20230229_120000")]
#[case::month_13("a_snapshot_20231301_120000")]
#[case::hour_24("a_snapshot_20231201_240000")]
#[case::second_60("a_snapshot_20231201_235960")]
#[case::signed_digits("a_snapshot_+2023120_120000")]
#[case::non_ascii_digits("a_snapshot_２０２３1201_120000")]
#[case::main_file("a.db")]
#[case::log_file("a.log")]
fn rejects_everything_else(#[case] name: &str) {
    assert_eq!(parse_snapshot_name("a", name), None, "{name}");
}

#[test]
fn name_order_is_time_then_sequence_order() {
    let a = "db_snapshot_20231201_120000";
    let b = "db_snapshot_20231201_120000_001";
    let c = "db_snapshot_20231201_120000_002";
    let d = "db_snapshot_20231201_120001";
    assert!(a < b && b < c && c < d);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn stamp() -> impl Strategy<Value = NaiveDateTime> {
        // Years 1000..=9999 keep four digits; every second of them is a valid name.
        (
            1000i32..=9999,
            1u32..=12,
            1u32..=28,
            0u32..24,
            0u32..60,
            0u32..60,
        )
            .prop_map(|(y, mo, d, h, mi, s)| at(y, mo, d, h, mi, s))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn lexicographic_order_equals_time_then_sequence_order(
            a in (stamp(), 0u32..=MAX_SEQ), b in (stamp(), 0u32..=MAX_SEQ),
        ) {
            let na = snapshot_file_name("db", a.0, a.1);
            let nb = snapshot_file_name("db", b.0, b.1);
            prop_assert_eq!(na.cmp(&nb), a.cmp(&b), "{} vs {}", na, nb);
            prop_assert_eq!(parse_snapshot_name("db", &na), Some(a));
        }
    }
}

// ----- names handed out by the store -----

#[test]
fn snapshots_in_the_same_second_get_suffixes_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let catalog = sample_catalog(2);
    for millis in [0, 100, 999] {
        s.write(&LineFormat, 1, &catalog, t(0, millis))
            .expect("write");
    }
    s.write(&LineFormat, 1, &catalog, t(1, 0)).expect("write");
    assert_eq!(
        files(dir.path()),
        vec![
            "shop_snapshot_20231201_120000",
            "shop_snapshot_20231201_120000_001",
            "shop_snapshot_20231201_120000_002",
            "shop_snapshot_20231201_120001",
        ]
    );
}

#[test]
fn fifty_manual_snapshots_as_fast_as_possible_give_fifty_files_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let catalog = sample_catalog(1);
    let mut written = Vec::new();
    for lsn in 1..=50 {
        // The real clock: most of these fall into the same second.
        let info = s
            .write(&LineFormat, lsn, &catalog, chrono::Utc::now())
            .expect("write");
        written.push(info.file_name);
    }
    let mut sorted = written.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, written, "names are distinct and in creation order");
    assert_eq!(files(dir.path()), written);
    let lsns: Vec<u64> = s
        .list()
        .expect("list")
        .iter()
        .map(|e| e.info().expect("readable").lsn)
        .collect();
    assert_eq!(lsns, (1..=50).collect::<Vec<_>>());
}

#[test]
fn the_suffix_continues_after_the_highest_existing_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Retention removed `_000` .. `_002`; `_003` remains.
    std::fs::write(dir.path().join("shop_snapshot_20231201_120000_003"), b"x").expect("seed");
    let s = store(dir.path(), "shop");
    let path = s.path_for(t(0, 500)).expect("path_for");
    assert!(
        path.ends_with("shop_snapshot_20231201_120000_004"),
        "{}",
        path.display()
    );
}

#[test]
fn a_clock_that_steps_back_never_produces_a_name_that_sorts_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(dir.path(), "shop");
    let catalog = sample_catalog(1);
    s.write(&LineFormat, 1, &catalog, t(10, 0)).expect("write");
    let info = s.write(&LineFormat, 2, &catalog, t(0, 0)).expect("write");
    assert_eq!(info.file_name, "shop_snapshot_20231201_120010_001");
    assert_eq!(
        info.created,
        Some(t(0, 0)),
        "the header keeps the real time"
    );
}

#[test]
fn a_full_second_moves_on_to_the_next_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("shop_snapshot_20231201_120000_999"), b"x").expect("seed");
    let s = store(dir.path(), "shop");
    let path = s.path_for(t(0, 0)).expect("path_for");
    assert!(
        path.ends_with("shop_snapshot_20231201_120001"),
        "{}",
        path.display()
    );
}

#[test]
fn path_for_an_empty_or_missing_directory_is_the_plain_spec_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = store(&dir.path().join("not_yet"), "my_database");
    let path = s.path_for(t(0, 0)).expect("path_for");
    assert_eq!(
        path,
        dir.path()
            .join("not_yet/my_database_snapshot_20231201_120000")
    );
    assert!(
        !dir.path().join("not_yet").exists(),
        "path_for creates nothing"
    );
}

#[test]
fn listing_picks_up_only_this_databases_snapshots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let catalog = sample_catalog(1);
    let a = store(dir.path(), "a");
    let ab = store(dir.path(), "ab");
    let long = store(dir.path(), "a_snapshot_20231201_120000");
    a.write(&LineFormat, 1, &catalog, t(0, 0)).expect("write");
    ab.write(&LineFormat, 2, &catalog, t(0, 0)).expect("write");
    long.write(&LineFormat, 3, &catalog, t(0, 0))
        .expect("write");
    for other in [
        "a_snapshot_x",
        "a_snapshot_20231201_120005.tmp",
        "a_snapshot_20231201_120006.broken",
        "a.db",
        "a.log",
    ] {
        std::fs::write(dir.path().join(other), b"PHLINES 1\n").expect("seed");
    }
    let listed = |s: &phantom_snapshot::SnapshotStore| -> Vec<String> {
        s.list()
            .expect("list")
            .iter()
            .map(|e| e.file_name().to_owned())
            .collect()
    };
    assert_eq!(listed(&a), vec!["a_snapshot_20231201_120000"]);
    assert_eq!(listed(&ab), vec!["ab_snapshot_20231201_120000"]);
    assert_eq!(
        listed(&long),
        vec!["a_snapshot_20231201_120000_snapshot_20231201_120000"]
    );
    // The naming of `a` is not disturbed by the other databases' files either.
    assert!(
        a.path_for(t(0, 0))
            .expect("path_for")
            .ends_with("a_snapshot_20231201_120000_001")
    );
}
