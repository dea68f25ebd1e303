//! `phantom-storage`: the data model of PhantomDB — values, column types, schemas, tables and
//! catalogs — and the on-disk image formats that hold a whole database: the spec's CSV layout
//! ([`CsvFormat`]) and a faster binary one ([`BinaryFormat`]), both behind the
//! [`StorageFormat`] trait. It also owns the [`FileSystem`] seam every engine file operation
//! goes through, and [`atomic_write`].
//!
//! ```
//! use phantom_storage::{Catalog, Column, ColumnType, CsvFormat, ImageKind, ImageMeta, Schema,
//!     StorageFormat, Value};
//!
//! let mut catalog = Catalog::new();
//! let schema = Schema::new("users", vec![
//!     Column::new("id", ColumnType::Int).primary_key(),
//!     Column::new("name", ColumnType::String),
//! ])?;
//! catalog.create_table("users", schema)?;
//! catalog.table_mut("users")?.insert(vec![Value::Int(1), "Doe, John".into()])?;
//!
//! let meta = ImageMeta { database: "demo".into(), lsn: 0, created: None, kind: ImageKind::Database };
//! let mut bytes = Vec::new();
//! CsvFormat.write(&meta, &catalog, &mut bytes)?;
//! let (_, back) = CsvFormat.read(&mut bytes.as_slice())?;
//! assert_eq!(back, catalog);
//! # Ok::<(), phantom_storage::Error>(())
//! ```

mod catalog;
mod codec;
mod error;
mod format;
mod fs;
mod keyindex;
mod name;
mod rowmap;
mod schema;
mod table;
mod types;
mod value;

pub mod backends;

pub use backends::{BinaryFormat, CsvFormat};
pub use catalog::{Catalog, Mutation};
pub use codec::decode_mutations;
/// The string type of [`Value::String`] (from the `compact_str` crate): strings of up to 24
/// bytes are stored inline, without an allocation of their own.
pub use compact_str::CompactString;
pub use error::{Error, Location, Result};
pub use format::{ImageKind, ImageMeta, StorageFormat};
pub use fs::{
    FileRead, FileSystem, FileWrite, StdFs, TEMP_SUFFIX, WriteBack, atomic_write,
    atomic_write_reusing, atomic_write_with, remove_temp_files, temp_path,
};
pub use name::{MAX_NAME_LEN, validate_name};
pub use schema::{Column, Schema};
pub use table::{Row, RowId, Table};
pub use types::ColumnType;
pub use value::Value;
