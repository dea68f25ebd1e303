//! Snapshot file names: `<db>_snapshot_YYYYMMDD_HHMMSS` (UTC), the spec's contract, plus a
//! `_NNN` suffix (`_001` … `_999`) when more than one snapshot is taken in the same second.
//!
//! Invariant: for one database, the lexicographic order of valid names is their
//! `(timestamp, sequence)` order — the fixed-width digits make this so, and `..._120000`
//! sorts before `..._120000_001`, which sorts before `..._120001`. The store additionally
//! never hands out a name that sorts before an existing one, so name order is creation order.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// What separates the database name from the timestamp in a snapshot file name.
pub const SNAPSHOT_INFIX: &str = "_snapshot_";

/// The largest same-second sequence number (`_999`); the suffix is always three digits.
pub const MAX_SEQ: u32 = 999;

/// `chrono` format of the timestamp part of a name.
const STAMP_FORMAT: &str = "%Y%m%d_%H%M%S";

/// The file name of the snapshot of `db` taken at `stamp` (seconds; anything finer is dropped)
/// with same-second sequence number `seq` (0 = no suffix, 1..=999 = `_001`..`_999`).
///
/// `seq` above [`MAX_SEQ`] yields a name that [`parse_snapshot_name`] rejects; the store never
/// asks for one.
///
/// ```
/// use chrono::NaiveDate;
/// use phantom_snapshot::snapshot_file_name;
/// let t = NaiveDate::from_ymd_opt(2023, 12, 1).unwrap().and_hms_opt(12, 0, 0).unwrap();
/// assert_eq!(snapshot_file_name("my_database", t, 0), "my_database_snapshot_20231201_120000");
/// assert_eq!(snapshot_file_name("my_database", t, 2), "my_database_snapshot_20231201_120000_002");
/// ```
pub fn snapshot_file_name(db: &str, stamp: NaiveDateTime, seq: u32) -> String {
    let mut name = format!("{db}{SNAPSHOT_INFIX}{}", stamp.format(STAMP_FORMAT));
    if seq > 0 {
        name.push_str(&format!("_{seq:03}"));
    }
    name
}

/// Parses a snapshot file name of database `db`: `Some((timestamp, seq))` when `file_name` is
/// exactly `<db>_snapshot_YYYYMMDD_HHMMSS` (seq 0) or that plus `_001` … `_999`, with a real
/// calendar date and time of day; `None` for anything else — another database's snapshot
/// (`ab_snapshot_…` for `a`), a temp file (`….tmp`), a quarantined one (`….broken`), `_000`,
/// non-ASCII digits, trailing text.
///
/// ```
/// use phantom_snapshot::parse_snapshot_name;
/// let (t, seq) = parse_snapshot_name("a", "a_snapshot_20231201_120000_001").unwrap();
/// assert_eq!((t.to_string().as_str(), seq), ("2023-12-01 12:00:00", 1));
/// assert_eq!(parse_snapshot_name("a", "ab_snapshot_20231201_120000"), None);
/// assert_eq!(parse_snapshot_name("a", "a_snapshot_20231201_120000.tmp"), None);
/// ```
pub fn parse_snapshot_name(db: &str, file_name: &str) -> Option<(NaiveDateTime, u32)> {
    let rest = file_name.strip_prefix(db)?.strip_prefix(SNAPSHOT_INFIX)?;
    // Layout of `rest`: YYYYMMDD '_' HHMMSS [ '_' NNN ]
    //                   0..8     8   9..15    15  16..19
    let bytes = rest.as_bytes();
    if !(bytes.len() == 15 || bytes.len() == 19) || bytes.get(8) != Some(&b'_') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = bytes.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')),
        )
    };
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(number(0..4)?).ok()?,
        number(4..6)?,
        number(6..8)?,
    )?;
    let time = NaiveTime::from_hms_opt(number(9..11)?, number(11..13)?, number(13..15)?)?;
    let seq = if bytes.len() == 19 {
        if bytes.get(15) != Some(&b'_') {
            return None;
        }
        match number(16..19)? {
            0 => return None, // `_000` is not canonical: the first snapshot has no suffix.
            n => n,
        }
    } else {
        0
    };
    Some((date.and_time(time), seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, mo, d)
            .and_then(|d| d.and_hms_opt(h, mi, s))
            .expect("valid test time")
    }

    #[test]
    fn names_round_trip_through_the_parser() {
        for seq in [0, 1, 42, MAX_SEQ] {
            let t = at(2023, 12, 1, 23, 59, 59);
            let name = snapshot_file_name("db_1", t, seq);
            assert_eq!(parse_snapshot_name("db_1", &name), Some((t, seq)), "{name}");
        }
    }

    #[test]
    fn sub_second_precision_is_dropped_from_the_name() {
        let t = at(2023, 12, 1, 12, 0, 0) + chrono::Duration::milliseconds(999);
        assert_eq!(snapshot_file_name("a", t, 0), "a_snapshot_20231201_120000");
    }
}
