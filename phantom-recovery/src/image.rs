//! Choosing and loading the recovery point: the newest image (main file or snapshot) that
//! verifies; corrupt candidates are moved aside as `*.broken` and reported.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantom_snapshot::SnapshotStore;
use phantom_storage::{Catalog, FileSystem, ImageMeta, StorageFormat, backends};
use phantom_wal::Lsn;

use crate::{Error, LoadedImage, Rejected, Result};

fn main_file(dir: &Path, db: &str) -> PathBuf {
    dir.join(format!("{db}.db"))
}

/// Reads a whole image file, detecting its format from its first bytes: `extra` formats are
/// tried first, then the shipped ones (CSV, binary).
pub fn read_image(
    fs: &dyn FileSystem,
    path: &Path,
    extra: &[Arc<dyn StorageFormat>],
) -> phantom_storage::Result<(ImageMeta, Catalog)> {
    let inner = || -> phantom_storage::Result<_> {
        let (format, mut input) = open_detected(fs, path, extra)?;
        format.read(&mut input)
    };
    inner().map_err(|e| e.in_file(path))
}

/// Reads only the header of an image file.
pub fn read_image_meta(
    fs: &dyn FileSystem,
    path: &Path,
    extra: &[Arc<dyn StorageFormat>],
) -> phantom_storage::Result<ImageMeta> {
    let inner = || -> phantom_storage::Result<_> {
        let (format, mut input) = open_detected(fs, path, extra)?;
        format.read_meta(&mut input)
    };
    inner().map_err(|e| e.in_file(path))
}

fn open_detected(
    fs: &dyn FileSystem,
    path: &Path,
    extra: &[Arc<dyn StorageFormat>],
) -> phantom_storage::Result<(Arc<dyn StorageFormat>, impl Read)> {
    let mut file = fs.open_read(path)?;
    let mut head = Vec::with_capacity(64);
    (&mut file).take(64).read_to_end(&mut head)?;
    let format = extra
        .iter()
        .find(|f| f.detect(&head))
        .cloned()
        .or_else(|| backends::detect(&head).map(Arc::from))
        .ok_or_else(|| phantom_storage::Error::Malformed {
            location: phantom_storage::Location::Offset(0),
            reason: "not a PhantomDB image (no known format recognises its first bytes)".into(),
        })?;
    Ok((format, std::io::Cursor::new(head).chain(file)))
}

enum Candidate {
    Main(PathBuf),
    Snapshot(PathBuf),
}

/// Picks the newest recovery point that verifies: the main file `<db>.db` (read with `extra`
/// formats or the shipped ones) or a snapshot of `store`. Corrupt candidates are moved aside
/// as `<file>.broken` and reported; an I/O error (not a verification failure) aborts instead,
/// since a transient error must not make recovery silently pick an older state.
pub fn load_newest_image(
    fs: &dyn FileSystem,
    dir: &Path,
    db: &str,
    store: &SnapshotStore,
    extra: &[Arc<dyn StorageFormat>],
) -> Result<LoadedImage> {
    load_image(fs, dir, db, store, extra, &|_| true, true)
}

/// Like [`load_newest_image`], restricted to images `accept` takes (by header), and only moving
/// corrupt candidates aside when `move_aside` (point-in-time recovery leaves its source untouched).
pub(crate) fn load_image(
    fs: &dyn FileSystem,
    dir: &Path,
    db: &str,
    store: &SnapshotStore,
    extra: &[Arc<dyn StorageFormat>],
    accept: &dyn Fn(&ImageMeta) -> bool,
    move_aside: bool,
) -> Result<LoadedImage> {
    let mut candidates: Vec<(Lsn, Candidate)> = Vec::new();
    let main = main_file(dir, db);
    if fs
        .file_len(&main)
        .map_err(phantom_storage::Error::from)?
        .is_some()
    {
        // An unreadable header sorts first so it is tried, fails verification and is reported.
        match read_image_meta(fs, &main, extra) {
            Ok(m) if !accept(&m) => {}
            Ok(m) => candidates.push((m.lsn, Candidate::Main(main))),
            Err(_) => candidates.push((u64::MAX, Candidate::Main(main))),
        }
    }
    for entry in store.list()? {
        match entry.info() {
            Some(i) => {
                let meta = ImageMeta {
                    database: db.to_owned(),
                    lsn: i.lsn,
                    created: i.created,
                    kind: phantom_storage::ImageKind::Snapshot,
                };
                if accept(&meta) {
                    candidates.push((i.lsn, Candidate::Snapshot(entry.path().to_path_buf())));
                }
            }
            None => candidates.push((u64::MAX, Candidate::Snapshot(entry.path().to_path_buf()))),
        }
    }
    // Newest first. Two candidates with one LSN hold the same state; either will do.
    candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut rejected = Vec::new();
    for (_, candidate) in candidates {
        let (path, loaded) = match candidate {
            Candidate::Main(path) => {
                let r = read_image(fs, &path, extra).map_err(|e| (is_io(&e), Error::from(e)));
                (path, r)
            }
            Candidate::Snapshot(path) => {
                let r = store
                    .load(&path)
                    .map_err(|e| (is_snapshot_io(&e), Error::from(e)));
                (path, r)
            }
        };
        match loaded {
            Ok((meta, _)) if !accept(&meta) => {}
            Ok((meta, catalog)) => {
                return Ok(LoadedImage {
                    source: Some(path),
                    catalog,
                    lsn: meta.lsn,
                    rejected,
                });
            }
            Err((true, e)) => return Err(e),
            Err((false, e)) => {
                let broken = PathBuf::from(format!("{}.broken", path.display()));
                let moved_to = if !move_aside {
                    None
                } else {
                    match fs.rename(&path, &broken) {
                        Ok(()) => Some(broken),
                        Err(io) => {
                            tracing::warn!(file = %path.display(), error = %io, "could not move a corrupt recovery point aside");
                            None
                        }
                    }
                };
                tracing::warn!(file = %path.display(), error = %e, "recovery point rejected");
                rejected.push(Rejected {
                    path,
                    reason: e.to_string(),
                    moved_to,
                });
            }
        }
    }
    Ok(LoadedImage {
        source: None,
        catalog: Catalog::new(),
        lsn: 0,
        rejected,
    })
}

fn is_snapshot_io(e: &phantom_snapshot::Error) -> bool {
    match e {
        phantom_snapshot::Error::Io { .. } => true,
        phantom_snapshot::Error::Storage(inner) => is_io(inner),
        _ => false,
    }
}

fn is_io(e: &phantom_storage::Error) -> bool {
    match e {
        phantom_storage::Error::Io(_) => true,
        phantom_storage::Error::InFile { source, .. } => is_io(source),
        _ => false,
    }
}
