//! `FaultFs` behaves like the disk the fault model describes: unsynced data may be lost,
//! synced data is kept, entries are durable only after a directory sync, writes tear at sector
//! boundaries, and the Nth operation fails once or for ever.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use phantom_sim::{Bugs, CrashOptions, FaultFs, FaultKind, FaultPlan, SECTOR};
use phantom_storage::FileSystem;

fn setup() -> (FaultFs, PathBuf) {
    let fs = FaultFs::new(1);
    let dir = PathBuf::from("/sim");
    fs.create_dir_all(&dir).expect("mkdir");
    (fs, dir)
}

fn read(fs: &FaultFs, path: &Path) -> Option<Vec<u8>> {
    let mut f = fs.open_read(path).ok()?;
    let mut out = Vec::new();
    f.read_to_end(&mut out).expect("read");
    Some(out)
}

/// A crash that keeps nothing beyond what was synced.
fn strict(fs: &FaultFs) {
    fs.set_crash_options(CrashOptions {
        garbage_tail: false,
        keep_dir_op_prefix: false,
        reorder: false,
    });
}

#[test]
fn synced_data_and_entries_survive_a_crash() {
    let (fs, dir) = setup();
    let path = dir.join("a");
    let mut f = fs.create(&path).expect("create");
    f.write_all(b"durable").expect("write");
    f.sync_data().expect("sync");
    fs.sync_dir(&dir).expect("sync dir");
    for seed in 0..20 {
        fs.crash(seed);
        assert_eq!(read(&fs, &path).as_deref(), Some(&b"durable"[..]));
    }
}

#[test]
fn unsynced_writes_can_be_lost_and_synced_ones_cannot() {
    let (fs, dir) = setup();
    let path = dir.join("a");
    let mut f = fs.create(&path).expect("create");
    f.write_all(b"synced").expect("write");
    f.sync_data().expect("sync");
    fs.sync_dir(&dir).expect("sync dir");
    f.write_all(b"+unsynced").expect("write");
    let base = fs.fork();
    let mut lost = 0;
    for seed in 0..50 {
        let fs = base.fork();
        fs.crash(seed);
        let content = read(&fs, &path).expect("file survives");
        assert!(content.starts_with(b"synced"), "{content:?}");
        if content.len() == 6 {
            lost += 1;
        }
    }
    assert!(lost > 0, "some crash must lose the unsynced write");
}

#[test]
fn a_crash_invalidates_open_handles() {
    let (fs, dir) = setup();
    let mut f = fs.create(&dir.join("a")).expect("create");
    fs.crash(0);
    assert!(f.write_all(b"x").is_err());
    assert!(f.sync_data().is_err());
}

#[test]
fn a_rename_is_durable_only_after_the_directory_sync() {
    let (fs, dir) = setup();
    strict(&fs);
    let (tmp, target) = (dir.join("t.tmp"), dir.join("t"));
    let mut f = fs.create(&tmp).expect("create");
    f.write_all(b"new").expect("write");
    f.sync_all().expect("sync");
    fs.sync_dir(&dir).expect("sync dir");
    fs.rename(&tmp, &target).expect("rename");
    let before = fs.fork();
    fs.crash(3);
    assert_eq!(read(&fs, &target), None, "the rename was not synced");
    assert_eq!(
        read(&fs, &tmp).as_deref(),
        Some(&b"new"[..]),
        "old name is back"
    );

    before.sync_dir(&dir).expect("sync dir");
    before.crash(3);
    assert_eq!(read(&before, &target).as_deref(), Some(&b"new"[..]));
    assert_eq!(read(&before, &tmp), None);
}

#[test]
fn a_created_but_unsynced_file_vanishes() {
    let (fs, dir) = setup();
    strict(&fs);
    let path = dir.join("new");
    let mut f = fs.create(&path).expect("create");
    f.write_all(b"data").expect("write");
    f.sync_all().expect("sync data but not the entry");
    fs.crash(0);
    assert_eq!(read(&fs, &path), None);
}

#[test]
fn writes_tear_at_sector_boundaries() {
    let (fs, dir) = setup();
    let path = dir.join("a");
    let mut f = fs.create(&path).expect("create");
    f.write_all(&vec![0u8; 4 * SECTOR as usize]).expect("zeros");
    f.sync_data().expect("sync");
    fs.sync_dir(&dir).expect("sync dir");
    f.seek_to(0).expect("seek");
    f.write_all(&vec![0xAB; 4 * SECTOR as usize])
        .expect("overwrite");
    let base = fs.fork();
    let mut torn = 0;
    for seed in 0..100 {
        let fs = base.fork();
        fs.crash(seed);
        let content = read(&fs, &path).expect("file");
        assert_eq!(content.len(), 4 * SECTOR as usize);
        let sectors: Vec<u8> = content.chunks(SECTOR as usize).map(|s| s[0]).collect();
        for (i, chunk) in content.chunks(SECTOR as usize).enumerate() {
            assert!(
                chunk.iter().all(|&b| b == sectors[i]),
                "sector {i} is a mix of old and new bytes"
            );
        }
        if sectors.contains(&0) && sectors.contains(&0xAB) {
            torn += 1;
        }
    }
    assert!(torn > 0, "some crash must tear the 4-sector write");
}

#[test]
fn the_nth_operation_fails_once() {
    let (fs, dir) = setup();
    let mut f = fs.create(&dir.join("a")).expect("create");
    fs.arm(FaultPlan {
        at_op: 2,
        kind: FaultKind::Enospc,
        persistent: false,
        include_reads: false,
    });
    f.write_all(b"1").expect("op 1");
    let err = f.write_all(b"2").expect_err("op 2 fails");
    assert_eq!(err.raw_os_error(), Some(28));
    f.write_all(b"3").expect("op 3");
    assert!(fs.fault_fired());
    assert_eq!(fs.counters().faults, 1);
}

#[test]
fn a_persistent_fault_fails_every_later_operation() {
    let (fs, dir) = setup();
    let mut f = fs.create(&dir.join("a")).expect("create");
    fs.arm(FaultPlan {
        at_op: 1,
        kind: FaultKind::Eio,
        persistent: true,
        include_reads: false,
    });
    assert_eq!(f.sync_data().expect_err("1").raw_os_error(), Some(5));
    assert!(fs.rename(&dir.join("a"), &dir.join("b")).is_err());
    assert!(fs.sync_dir(&dir).is_err());
    assert!(fs.list_dir(&dir).is_ok(), "reads are not counted");
    assert!(fs.disarm());
    assert!(fs.sync_dir(&dir).is_ok());
}

#[test]
fn power_loss_fails_everything_until_the_crash() {
    let (fs, dir) = setup();
    fs.arm(FaultPlan {
        at_op: 1,
        kind: FaultKind::PowerLoss,
        persistent: false,
        include_reads: false,
    });
    assert!(fs.create(&dir.join("a")).is_err());
    assert!(fs.is_powered_off());
    assert!(fs.list_dir(&dir).is_err());
    fs.crash(0);
    assert!(fs.list_dir(&dir).is_ok());
}

#[test]
fn planted_bugs_make_syncs_lie() {
    let (fs, dir) = setup();
    strict(&fs);
    fs.set_bugs(Bugs {
        sync_dir_lies: true,
        sync_data_lies: false,
    });
    let mut f = fs.create(&dir.join("a")).expect("create");
    f.sync_all().expect("sync");
    fs.sync_dir(&dir).expect("the lie");
    fs.crash(0);
    assert_eq!(fs.file_names(&dir), Vec::<String>::new());
}
