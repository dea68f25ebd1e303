//! A read-only check of every file of a database: the main file, every snapshot and every log
//! segment, each verified in full. Nothing is modified, moved or cut.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use phantom_snapshot::SnapshotStore;
use phantom_storage::{FileSystem, Location, StorageFormat};
use phantom_wal::WalReader;

use crate::Result;
use crate::image::read_image;

/// One thing wrong with one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Where in it (`byte offset N` or `line N`), when known.
    pub location: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(at) => write!(f, "{}: {at}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// What [`verify`] checked and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Every file checked.
    pub files: Vec<PathBuf>,
    /// Log records read.
    pub records: u64,
    /// Every problem found; empty when the database is clean.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// `true` when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

fn storage_location(e: &phantom_storage::Error) -> Option<Location> {
    use phantom_storage::Error as E;
    match e {
        E::InFile { source, .. } => storage_location(source),
        E::ChecksumMismatch { location, .. }
        | E::Truncated { location, .. }
        | E::Malformed { location, .. }
        | E::BadRow { location, .. } => Some(*location),
        E::MissingChecksum { line, .. } => Some(Location::Line(*line)),
        E::BadMagic { .. } => Some(Location::Offset(0)),
        _ => None,
    }
}

fn wal_location(e: &phantom_wal::Error) -> (Option<PathBuf>, Option<String>) {
    use phantom_wal::Error as E;
    match e {
        E::Corrupt { file, offset, .. }
        | E::ChecksumMismatch { file, offset, .. }
        | E::Decode { file, offset, .. } => {
            (Some(file.clone()), Some(format!("byte offset {offset}")))
        }
        E::LsnGap { file, .. } | E::UnsupportedVersion { file, .. } => (Some(file.clone()), None),
        _ => (None, None),
    }
}

/// Checks every file of database `db` in `dir` without modifying anything.
pub fn verify(
    fs: &Arc<dyn FileSystem>,
    dir: &Path,
    db: &str,
    store: &SnapshotStore,
    extra: &[Arc<dyn StorageFormat>],
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let mut newest_image_lsn = None;
    let mut check_image =
        |path: &Path, report: &mut VerifyReport| match read_image(&**fs, path, extra) {
            Ok((meta, _)) => newest_image_lsn = Some(newest_image_lsn.unwrap_or(0).max(meta.lsn)),
            Err(e) => report.problems.push(Problem {
                file: path.to_path_buf(),
                location: storage_location(&e).map(|l| l.to_string()),
                message: e.to_string(),
            }),
        };
    let main = dir.join(format!("{db}.db"));
    if fs
        .file_len(&main)
        .map_err(phantom_storage::Error::from)?
        .is_some()
    {
        report.files.push(main.clone());
        check_image(&main, &mut report);
    }
    for entry in store.list()? {
        report.files.push(entry.path().to_path_buf());
        match entry.error() {
            Some(e) => report.problems.push(Problem {
                file: entry.path().to_path_buf(),
                location: Some(Location::Offset(0).to_string()),
                message: e.to_string(),
            }),
            None => check_image(entry.path(), &mut report),
        }
    }
    let mut reader = WalReader::open(Arc::clone(fs), dir, db, 0)?;
    let mut first_lsn = None;
    for record in reader.by_ref() {
        match record {
            Ok(r) => {
                first_lsn.get_or_insert(r.lsn);
                report.records += 1;
            }
            Err(e) => {
                let (file, location) = wal_location(&e);
                report.problems.push(Problem {
                    file: file.unwrap_or_else(|| dir.join(format!("{db}.log"))),
                    location,
                    message: e.to_string(),
                });
                break;
            }
        }
    }
    if let Some(t) = &reader.status().torn_tail {
        report.problems.push(Problem {
            file: t.file.clone(),
            location: Some(format!("byte offset {}", t.offset)),
            message: format!("torn tail: {} bytes after the last complete record (a crash left them; open cuts them)", t.bytes_cut),
        });
    }
    for seg in fs.list_dir(dir).map_err(phantom_storage::Error::from)? {
        if seg == phantom_wal::segment_file_name(db, 1)
            || (seg.starts_with(&format!("{db}.log."))
                && !seg.contains(".broken")
                && !seg.ends_with(phantom_storage::TEMP_SUFFIX))
        {
            report.files.push(dir.join(seg));
        }
    }
    if let (Some(image), Some(first)) = (newest_image_lsn, first_lsn)
        && first > image + 1
    {
        report.problems.push(Problem {
            file: dir.join(format!("{db}.log")),
            location: None,
            message: format!("log gap: the newest recovery point ends at LSN {image}, the log starts at LSN {first}"),
        });
    }
    Ok(report)
}
