//! `phantom-core`: PhantomDB, an embedded, durable table store. Typed tables live in memory;
//! every change is written to a checksummed write-ahead log (and, by default, fsynced with
//! group commit) before the call returns; periodic timestamped snapshots bound recovery time;
//! on open, the newest valid snapshot is loaded and the log after it replayed.
//!
//! [`Database`] is the spec's API in Rust naming (`save_to_disk`, `load_from_disk`,
//! `set_data_directory`, `set_snapshot_enabled`, `set_snapshot_interval`,
//! `append_transaction_log`, `create_snapshot`), returning `Result` instead of `bool`. Its
//! [`Builder`] takes any [`StorageFormat`], log ([`LogFactory`] → `LogSink`) and
//! [`SnapshotPolicy`].
//!
//! ```
//! use phantom_core::{Column, ColumnType, Database, Filter, Literal};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path())?;
//! db.create_database("my_database")?;
//! db.create_table("my_database", "users", vec![
//!     Column::new("id", ColumnType::Int).primary_key(),
//!     Column::new("name", ColumnType::String),
//!     Column::new("email", ColumnType::String),
//! ])?;
//! db.insert("my_database", "users", [("id", Literal::from(1)), ("name", "John Doe".into())])?;
//! db.save_to_disk("my_database")?;                      // data/my_database.db, spec CSV
//! let snap = db.create_snapshot("my_database")?;        // my_database_snapshot_YYYYMMDD_HHMMSS
//! assert_eq!(snap.lsn, 3);
//! drop(db);
//!
//! let again = Database::open(dir.path())?;              // recovery: snapshot + log
//! let rows = again.select("my_database", "users", &Filter::eq("id", 1))?;
//! assert_eq!(rows.get(0, "name"), Some(&"John Doe".into()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod background;
mod database;
mod error;
mod filter;
mod handle;
mod lock;
mod log;
mod tx;

pub use database::{
    Builder, DEFAULT_DATA_DIR, DEFAULT_SNAPSHOT_INTERVAL, Database, DatabaseStats, Health, Stats,
};
pub use error::{Error, Result};
pub use filter::{BoundFilter, CmpOp, Filter, Literal, MAX_SQL_NESTING, check_nesting, literal};
pub use lock::LOCK_FILE;
pub use log::{LogFactory, OpenedLog, WalFactory};
pub use tx::{Assignments, Order, Query, Rows, Transaction, assignments};

pub use phantom_recovery::{
    Problem, RecoveryMode, RecoveryReport, Restored, Salvaged, Target, VerifyReport,
};
pub use phantom_snapshot::{SnapshotInfo, SnapshotPolicy};
pub use phantom_storage::{
    Column, ColumnType, Row, RowId, Schema, StorageFormat, Value, WriteBack,
};
pub use phantom_wal::{LogSink, Lsn, SyncMode};
/// The SQL parser used by [`Filter::parse`] (re-exported so callers of
/// [`Filter::from_sql_expr`] use the same version).
pub use sqlparser;
