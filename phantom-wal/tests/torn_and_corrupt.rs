//! Crash damage: a torn last record is cut (and saved to `.broken`) with every earlier record
//! kept; a damaged record with valid records after it, or any damage in a sealed segment, is an
//! error naming the file and the record's byte offset.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too: a failure is a test failure

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::{CountingFs, SyncTrackingFs, insert, not_preallocated, open, tiny_segments};
use phantom_storage::StdFs;
use phantom_wal::{
    DEFAULT_SEGMENT_SIZE, Error, LogSink, SEGMENT_HEADER_LEN, SyncMode, Wal, WalOptions, WalReader,
    ZERO_CHECK_WINDOW,
};

/// Writes `n` committed records and returns the log's segments and each record's
/// (segment index, offset, length), in LSN order.
fn write_log(dir: &Path, n: u64, options: WalOptions) -> Vec<(usize, u64, u64)> {
    let (wal, _) = open(dir, options);
    let mut spans = Vec::new();
    let mut prev = (0usize, SEGMENT_HEADER_LEN as u64);
    for i in 1..=n {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
        let segs = wal.segments();
        let idx = segs.len() - 1;
        let start = if idx == prev.0 {
            prev.1
        } else {
            SEGMENT_HEADER_LEN as u64
        };
        let end = segs[idx].bytes;
        spans.push((idx, start, end - start));
        prev = (idx, end);
    }
    spans
}

fn segment_path(dir: &Path, idx: usize) -> PathBuf {
    dir.join(phantom_wal::segment_file_name("db", idx as u64 + 1))
}

fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn assert_points_at(err: &Error, file: &Path, offset: u64) {
    assert_eq!(
        err.location(),
        Some((file, offset)),
        "error should name {} at offset {offset}: {err}",
        file.display()
    );
}

#[test]
fn truncating_inside_the_last_record_cuts_it_and_keeps_every_earlier_record() {
    let pristine = tempfile::tempdir().unwrap();
    let spans = write_log(pristine.path(), 5, not_preallocated());
    let (_, start, len) = spans[4];
    let seg = segment_path(pristine.path(), 0);
    let original = std::fs::read(&seg).unwrap();
    for keep in 1..len {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let path = segment_path(dir.path(), 0);
        let cut_at = (start + keep) as usize;
        std::fs::write(&path, &original[..cut_at]).unwrap();

        // A read-only reader reports the tail without touching the file.
        let mut reader = WalReader::open(Arc::new(StdFs), dir.path(), "db", 1).unwrap();
        let got: Vec<u64> = reader.by_ref().map(|r| r.unwrap().lsn).collect();
        assert_eq!(got, vec![1, 2, 3, 4]);
        let tail = reader.status().torn_tail.clone().expect("torn tail seen");
        assert_eq!((tail.offset, tail.bytes_cut), (start, keep));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), cut_at as u64);

        let (wal, report) = open(dir.path(), not_preallocated());
        assert_eq!(report.records, 4, "kept {keep} bytes");
        assert_eq!(report.last_lsn, 4);
        let tail = report.torn_tail.expect("torn tail reported");
        assert_eq!(tail.file, path);
        assert_eq!((tail.offset, tail.bytes_cut), (start, keep));
        let mut broken = path.clone().into_os_string();
        broken.push(".broken");
        assert_eq!(
            std::fs::read(&broken).unwrap(),
            &original[start as usize..cut_at]
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), start);
        // The log continues where valid data ended.
        let lsn = wal.append(&insert(5)).unwrap();
        assert_eq!(lsn, 5);
        wal.commit(lsn).unwrap();
        drop(wal);
        let (_, report) = open(dir.path(), not_preallocated());
        assert_eq!((report.records, report.torn_tail), (5, None));
    }
}

#[test]
fn garbage_or_zeros_after_the_last_record_are_a_torn_tail() {
    for junk in [vec![0u8; 100], vec![0xAB; 7], b"hello world".to_vec()] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path(), 3, not_preallocated());
        let path = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len() as u64;
        bytes.extend_from_slice(&junk);
        std::fs::write(&path, &bytes).unwrap();
        let (_, report) = open(dir.path(), not_preallocated());
        assert_eq!(report.records, 3);
        let tail = report.torn_tail.expect("tail");
        assert_eq!((tail.offset, tail.bytes_cut), (len, junk.len() as u64));
    }
}

#[test]
fn flipping_any_byte_of_a_record_followed_by_valid_records_fails_the_open() {
    let pristine = tempfile::tempdir().unwrap();
    let spans = write_log(pristine.path(), 4, not_preallocated());
    let original = std::fs::read(segment_path(pristine.path(), 0)).unwrap();
    // Records 1..=3 each have valid records after them.
    for &(_, start, len) in &spans[..3] {
        for i in 0..len {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(pristine.path(), dir.path());
            let path = segment_path(dir.path(), 0);
            let mut bytes = original.clone();
            bytes[(start + i) as usize] ^= 0x41;
            std::fs::write(&path, &bytes).unwrap();

            let err = Wal::open(Arc::new(StdFs), dir.path(), "db", not_preallocated()).unwrap_err();
            assert_points_at(&err, &path, start);
            // Nothing was cut or written.
            assert_eq!(std::fs::read(&path).unwrap(), bytes);
            let reader = WalReader::open(Arc::new(StdFs), dir.path(), "db", 1).unwrap();
            let last = reader.last().expect("something yielded");
            assert_points_at(&last.unwrap_err(), &path, start);
        }
    }
}

#[test]
fn flipping_any_byte_of_a_sealed_segment_fails_the_open() {
    let pristine = tempfile::tempdir().unwrap();
    let spans = write_log(pristine.path(), 12, tiny_segments());
    assert!(spans.last().unwrap().0 >= 2, "need sealed segments");
    let original = std::fs::read(segment_path(pristine.path(), 0)).unwrap();
    // Every record of the sealed segment 0, including its last one.
    let sealed: Vec<_> = spans.iter().filter(|s| s.0 == 0).collect();
    for &&(_, start, len) in &sealed {
        for i in 0..len {
            let dir = tempfile::tempdir().unwrap();
            copy_dir(pristine.path(), dir.path());
            let path = segment_path(dir.path(), 0);
            let mut bytes = original.clone();
            bytes[(start + i) as usize] ^= 0x01;
            std::fs::write(&path, &bytes).unwrap();
            let err = Wal::open(Arc::new(StdFs), dir.path(), "db", tiny_segments()).unwrap_err();
            assert_points_at(&err, &path, start);
        }
    }
    // The header, too: every byte of it.
    for i in 0..SEGMENT_HEADER_LEN {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let path = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[i] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::open(Arc::new(StdFs), dir.path(), "db", tiny_segments()).unwrap_err();
        assert!(
            matches!(
                &err,
                Error::Corrupt { file, .. } | Error::ChecksumMismatch { file, .. } if file == &path
            ),
            "header byte {i}: {err}"
        );
    }
}

#[test]
fn a_truncated_sealed_segment_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 12, tiny_segments());
    let (_, start, len) = *spans.iter().rfind(|s| s.0 == 0).unwrap();
    let path = segment_path(dir.path(), 0);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..(start + len / 2) as usize]).unwrap();
    let err = Wal::open(Arc::new(StdFs), dir.path(), "db", tiny_segments()).unwrap_err();
    assert_points_at(&err, &path, start);
}

#[test]
fn a_missing_middle_segment_or_an_lsn_gap_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20, tiny_segments());
    std::fs::remove_file(segment_path(dir.path(), 1)).unwrap();
    let err = Wal::open(Arc::new(StdFs), dir.path(), "db", tiny_segments()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn an_lsn_gap_between_segments_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 20, tiny_segments());
    // Segment 2 claims to start one LSN later than segment 1 ends (header CRC kept valid).
    let path = segment_path(dir.path(), 1);
    let mut bytes = std::fs::read(&path).unwrap();
    let first = u64::from_le_bytes(bytes[16..24].try_into().unwrap());
    bytes[16..24].copy_from_slice(&(first + 1).to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..36]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = Wal::open(Arc::new(StdFs), dir.path(), "db", tiny_segments()).unwrap_err();
    assert!(
        matches!(&err, Error::LsnGap { file, expected, found } if file == &path && *expected == first && *found == first + 1),
        "{err}"
    );
    let reader = WalReader::open(Arc::new(StdFs), dir.path(), "db", 1).unwrap();
    let last = reader.last().unwrap();
    assert!(matches!(last, Err(Error::LsnGap { .. })), "{last:?}");
}

#[test]
fn a_segment_from_another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 2, not_preallocated());
    let path = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8] = 9;
    let crc = crc32c::crc32c(&bytes[..36]);
    bytes[36..40].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = Wal::open(Arc::new(StdFs), dir.path(), "db", not_preallocated()).unwrap_err();
    assert!(
        matches!(err, Error::UnsupportedVersion { found: 9, .. }),
        "{err}"
    );
}

#[test]
fn an_interrupted_roll_over_leaves_a_headerless_segment_that_is_set_aside() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 12, tiny_segments());
    let next = spans.last().unwrap().0 + 1;
    let path = segment_path(dir.path(), next);
    std::fs::write(&path, b"PHDB").unwrap();
    let (wal, report) = open(dir.path(), tiny_segments());
    assert_eq!(report.records, 12);
    let tail = report.torn_tail.expect("tail");
    assert_eq!(
        (tail.file, tail.offset, tail.bytes_cut),
        (path.clone(), 0, 4)
    );
    assert!(!path.exists());
    for i in 13..=30 {
        let lsn = wal.append(&insert(i)).unwrap();
        wal.commit(lsn).unwrap();
    }
    drop(wal);
    let (_, report) = open(dir.path(), tiny_segments());
    assert_eq!(report.records, 30);
}

#[test]
fn a_torn_tail_in_a_preallocated_segment_is_cut_and_the_space_zeroed_again() {
    let dir = tempfile::tempdir().unwrap();
    let options = WalOptions {
        segment_size: 4096,
        preallocate: true,
        ..WalOptions::default()
    };
    let spans = write_log(dir.path(), 5, options.clone());
    let (_, start, len) = spans[4];
    let path = segment_path(dir.path(), 0);
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[(start + len / 2) as usize..(start + len) as usize] {
        *b = 0;
    }
    std::fs::write(&path, &bytes).unwrap();
    let (wal, report) = open(dir.path(), options.clone());
    assert_eq!(report.records, 4);
    let tail = report.torn_tail.expect("tail");
    assert_eq!(tail.offset, start);
    assert!(tail.bytes_cut > 0 && tail.bytes_cut <= len);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
    let lsn = wal.append(&insert(5)).unwrap();
    wal.commit(lsn).unwrap();
    drop(wal);
    let (_, report) = open(dir.path(), options);
    assert_eq!((report.records, report.torn_tail), (5, None));
}

// Default (64 MiB, preallocated) segments: opening reads the records and a window of the free
// space after them, never the whole file, and damage is classified as in a segment read whole.

/// Overwrites `bytes` at `offset` of `path` in place (the file keeps its length).
/// Opens the log in `dir` with the default options through a [`CountingFs`]; also returns
/// how many bytes the open read.
fn open_counting_reads(dir: &Path) -> (Wal, phantom_wal::OpenReport, u64) {
    let fs = CountingFs::default();
    let (wal, report) = Wal::open(Arc::new(fs.clone()), dir, "db", WalOptions::default()).unwrap();
    (wal, report, fs.bytes_read())
}

fn write_at(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all_at(bytes, offset).unwrap();
}

fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

/// A bound on what opening a segment with a few records may read: the records, the window of
/// free space checked after them, and one read's worth of slack.
const READ_BOUND: u64 = (ZERO_CHECK_WINDOW as u64) + (4 << 20);

#[test]
fn opening_a_preallocated_segment_reads_its_records_not_its_free_space() {
    assert!(WalOptions::default().preallocate);
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path(), 5, WalOptions::default());
    let path = segment_path(dir.path(), 0);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        DEFAULT_SEGMENT_SIZE
    );

    let (wal, report, read) = open_counting_reads(dir.path());
    assert_eq!((report.records, report.torn_tail), (5, None));
    assert!(
        read < READ_BOUND,
        "open read {read} bytes of a {DEFAULT_SEGMENT_SIZE}-byte segment"
    );
    let lsn = wal.append(&insert(6)).unwrap();
    wal.commit(lsn).unwrap();
    drop(wal);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        DEFAULT_SEGMENT_SIZE
    );

    let fs = CountingFs::default();
    let mut reader = WalReader::open(Arc::new(fs.clone()), dir.path(), "db", 1).unwrap();
    let got: Vec<u64> = reader.by_ref().map(|r| r.unwrap().lsn).collect();
    assert_eq!(got, (1..=6).collect::<Vec<_>>());
    assert!(reader.status().complete && reader.status().torn_tail.is_none());
    let read = fs.bytes_read();
    assert!(read < READ_BOUND, "the reader read {read} bytes");
}

#[test]
fn a_fresh_preallocated_segment_opens_without_being_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), WalOptions::default()));
    let (_, report, read) = open_counting_reads(dir.path());
    assert_eq!((report.records, report.torn_tail), (0, None));
    assert!(read < READ_BOUND, "{read}");
}

#[test]
fn garbage_after_the_last_record_of_a_preallocated_segment_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 3, WalOptions::default());
    let (_, start, len) = spans[2];
    let end = start + len;
    let path = segment_path(dir.path(), 0);
    write_at(&path, end, b"hello world");

    let mut reader = WalReader::open(Arc::new(StdFs), dir.path(), "db", 1).unwrap();
    assert_eq!(reader.by_ref().count(), 3);
    let tail = reader
        .status()
        .torn_tail
        .clone()
        .expect("reader sees the tail");
    assert_eq!(tail.offset, end);

    let (wal, report) = open(dir.path(), WalOptions::default());
    assert_eq!(report.records, 3);
    let tail = report.torn_tail.expect("tail");
    assert_eq!((tail.offset, tail.bytes_cut), (end, 11));
    let mut broken = path.clone().into_os_string();
    broken.push(".broken");
    assert_eq!(std::fs::read(&broken).unwrap(), b"hello world");
    // Cut, and the free space preallocated again.
    assert_eq!(
        std::fs::metadata(&path).unwrap().len(),
        DEFAULT_SEGMENT_SIZE
    );
    assert_eq!(read_at(&path, end, 11), vec![0u8; 11]);
    let lsn = wal.append(&insert(4)).unwrap();
    wal.commit(lsn).unwrap();
    drop(wal);
    let (_, report) = open(dir.path(), WalOptions::default());
    assert_eq!((report.records, report.torn_tail), (4, None));
}

#[test]
fn a_zeroed_record_header_followed_by_valid_records_in_a_preallocated_segment_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 5, WalOptions::default());
    let (_, start, _) = spans[3];
    let path = segment_path(dir.path(), 0);
    write_at(&path, start, &[0u8; 32]);
    let err = Wal::open(Arc::new(StdFs), dir.path(), "db", WalOptions::default()).unwrap_err();
    assert_points_at(&err, &path, start);
    assert!(err.to_string().contains("valid records follow"), "{err}");
    let reader = WalReader::open(Arc::new(StdFs), dir.path(), "db", 1).unwrap();
    assert_points_at(&reader.last().unwrap().unwrap_err(), &path, start);
}

#[test]
fn a_zeroed_last_record_header_with_its_payload_left_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 3, WalOptions::default());
    let (_, start, len) = spans[2];
    let path = segment_path(dir.path(), 0);
    let payload = read_at(&path, start + 32, (len - 32) as usize);
    write_at(&path, start, &[0u8; 32]);
    let (_, report) = open(dir.path(), WalOptions::default());
    assert_eq!(report.records, 2);
    let tail = report.torn_tail.expect("tail");
    assert_eq!((tail.offset, tail.bytes_cut), (start, len));
    let mut broken = path.clone().into_os_string();
    broken.push(".broken");
    let saved = std::fs::read(&broken).unwrap();
    assert_eq!(&saved[32..], &payload[..]);
}

#[test]
fn bytes_beyond_the_checked_window_are_free_space_and_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 3, WalOptions::default());
    let (_, start, len) = spans[2];
    let end = start + len;
    let path = segment_path(dir.path(), 0);
    // A copy of record 3 past the window. No crash leaves this (the writer never has more than
    // the window unsynced); bit rot or another program could, and it is not looked at.
    let stale_at = end + ZERO_CHECK_WINDOW as u64 + 100;
    let record = read_at(&path, start, len as usize);
    write_at(&path, stale_at, &record);

    let fs = CountingFs::default();
    let mut reader = WalReader::open(Arc::new(fs.clone()), dir.path(), "db", 1).unwrap();
    assert_eq!(reader.by_ref().count(), 3);
    assert!(reader.status().complete && reader.status().torn_tail.is_none());
    assert!(fs.bytes_read() < stale_at, "{}", fs.bytes_read());

    let (wal, report) = open(dir.path(), WalOptions::default());
    assert_eq!((report.records, report.torn_tail), (3, None));
    let lsn = wal.append(&insert(4)).unwrap();
    wal.commit(lsn).unwrap();
    drop(wal);
    let (_, report) = open(dir.path(), WalOptions::default());
    assert_eq!((report.records, report.torn_tail), (4, None));
}

#[test]
fn the_writer_never_has_more_than_the_window_unsynced_in_a_preallocated_segment() {
    let big = |i: u64, len: usize| phantom_wal::LogEntry::Custom {
        operation: format!("BLOB{i}"),
        fields: vec![("b".into(), "x".repeat(len))],
    };
    for (preallocate, sync_mode) in [
        (true, SyncMode::Never),
        (false, SyncMode::Never),
        (true, SyncMode::Always),
        (false, SyncMode::Always),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let fs = SyncTrackingFs::default();
        let options = WalOptions {
            sync_mode,
            preallocate,
            ..WalOptions::default()
        };
        let (wal, _) = Wal::open(Arc::new(fs.clone()), dir.path(), "db", options.clone()).unwrap();
        // Many records buffered together, then one record larger than the window.
        let mut last = 0;
        for i in 0..12 {
            last = wal.append(&big(i, 1 << 20)).unwrap();
        }
        wal.commit(last).unwrap();
        let lsn = wal.append(&big(99, 9 << 20)).unwrap();
        wal.commit(lsn).unwrap();
        let max = fs.max_unsynced();
        if preallocate {
            assert!(max <= ZERO_CHECK_WINDOW as u64, "{max} bytes unsynced");
        } else {
            assert!(
                max > ZERO_CHECK_WINDOW as u64,
                "growing segments are not limited: {max}"
            );
        }
        drop(wal);
        let (_, report) = open(dir.path(), options);
        assert_eq!((report.records, report.torn_tail), (13, None));
    }
}

/// A record of about 16 KiB: 800 of them fill 12.5 MiB of one segment, three times the window
/// a scan keeps loaded.
fn big_insert(i: u64) -> phantom_wal::LogEntry {
    use phantom_storage::{Mutation, Value};
    phantom_wal::LogEntry::Batch(vec![Mutation::Insert {
        table: "t".into(),
        rows: vec![(
            i,
            vec![Value::Int(i as i64), Value::from("x".repeat(16 << 10))].into(),
        )],
    }])
}

#[test]
fn scans_far_into_a_segment_still_name_offsets_in_the_file() {
    for options in [not_preallocated(), WalOptions::default()] {
        let pristine = tempfile::tempdir().unwrap();
        let n = 800u64;
        let mut spans = Vec::new();
        {
            let (wal, _) = open(pristine.path(), options.clone());
            let mut start = SEGMENT_HEADER_LEN as u64;
            for i in 1..=n {
                wal.commit(wal.append(&big_insert(i)).unwrap()).unwrap();
                let end = wal.segments()[0].bytes;
                spans.push((start, end - start));
                start = end;
            }
            assert_eq!(wal.segments().len(), 1, "one segment holds them all");
        }
        let seg = segment_path(pristine.path(), 0);
        let original = std::fs::read(&seg).unwrap();

        // Read whole, and from far into the segment.
        let fs = Arc::new(StdFs);
        for from in [1, 700] {
            let got: Vec<u64> = WalReader::open(fs.clone(), pristine.path(), "db", from)
                .unwrap()
                .map(|r| r.unwrap().lsn)
                .collect();
            assert_eq!(got, (from..=n).collect::<Vec<_>>());
        }

        // A flipped byte in record 700 (about 11 MiB in) is named at that record's offset.
        let (start, len) = spans[699];
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let path = segment_path(dir.path(), 0);
        let mut bytes = original.clone();
        bytes[(start + len / 2) as usize] ^= 0x41;
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::open(fs.clone(), dir.path(), "db", options.clone()).unwrap_err();
        assert_points_at(&err, &path, start);
        let last = WalReader::open(fs.clone(), dir.path(), "db", 1)
            .unwrap()
            .last()
            .expect("something yielded");
        assert_points_at(&last.unwrap_err(), &path, start);

        // A cut inside the last record is a torn tail at its start, every earlier record kept.
        let (start, len) = spans[n as usize - 1];
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let path = segment_path(dir.path(), 0);
        let keep = len / 3;
        let mut cut = original[..(start + keep) as usize].to_vec();
        if options.preallocate {
            // A preallocated segment keeps its length: the rest of it is zeros.
            cut.resize(original.len(), 0);
        }
        std::fs::write(&path, &cut).unwrap();
        let mut reader = WalReader::open(fs.clone(), dir.path(), "db", 1).unwrap();
        assert_eq!(reader.by_ref().map(|r| r.unwrap().lsn).last(), Some(n - 1));
        let tail = reader.status().torn_tail.clone().expect("torn tail seen");
        assert_eq!((tail.file, tail.offset), (path.clone(), start));
        let (_, report) = open(dir.path(), options.clone());
        assert_eq!((report.records, report.last_lsn), (n - 1, n - 1));
        let tail = report.torn_tail.expect("torn tail reported");
        assert_eq!(
            (tail.file, tail.offset, tail.bytes_cut),
            (path, start, keep)
        );
    }
}

#[test]
fn a_last_segment_with_a_torn_header_and_nothing_after_it_is_an_interrupted_roll_over() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 12, tiny_segments());
    let segments = spans.last().unwrap().0 + 1;
    assert!(segments >= 2, "{segments} segments");
    let header = read_at(&segment_path(dir.path(), 0), 0, SEGMENT_HEADER_LEN);
    // A roll-over to the next segment that a crash cut short: only part of its header reached
    // the disk (here the first 12 bytes, magic and version), the rest is zeros, and so is the
    // preallocated space after it.
    let next = segment_path(dir.path(), segments);
    let mut torn = header[..12].to_vec();
    torn.resize(4096, 0);
    std::fs::write(&next, &torn).unwrap();

    // A read-only reader sees the same: every record, then a torn tail at the segment's start.
    let mut reader = WalReader::open(Arc::new(StdFs), dir.path(), "db", 1).unwrap();
    assert_eq!(reader.by_ref().map(|r| r.unwrap().lsn).last(), Some(12));
    let seen = reader.status().torn_tail.clone().expect("torn tail seen");
    assert_eq!((seen.file.as_path(), seen.offset), (next.as_path(), 0));

    let (wal, report) = open(dir.path(), tiny_segments());
    assert_eq!(report.records, 12);
    let tail = report.torn_tail.expect("reported");
    assert_eq!((tail.file.as_path(), tail.offset), (next.as_path(), 0));
    // The log goes on: the next record lands in a fresh segment of that number.
    let lsn = wal.append(&insert(13)).unwrap();
    assert_eq!(lsn, 13);
    wal.commit(lsn).unwrap();
    drop(wal);
    let (_, report) = open(dir.path(), tiny_segments());
    assert_eq!((report.records, report.torn_tail), (13, None));
}

#[test]
fn a_damaged_header_with_records_after_it_is_corruption_not_a_torn_roll_over() {
    let dir = tempfile::tempdir().unwrap();
    let spans = write_log(dir.path(), 12, tiny_segments());
    let last = segment_path(dir.path(), spans.last().unwrap().0);
    // One flipped byte in the magic of the active segment, whose records follow the header.
    let mut b = read_at(&last, 2, 1);
    b[0] ^= 0x40;
    write_at(&last, 2, &b);
    let err = Wal::open(Arc::new(StdFs), dir.path(), "db", tiny_segments()).unwrap_err();
    assert_points_at(&err, &last, 0);
}
