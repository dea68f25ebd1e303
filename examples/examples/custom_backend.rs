//! Plugs a storage format, a log and a snapshot policy of your own into PhantomDB.
//!
//! Run: `cargo run -p phantom-examples --example custom_backend [DATA_DIR]`

#![allow(clippy::print_stdout)]

use std::sync::Arc;

use phantom_core::{Column, ColumnType, Database, Filter, Literal};
use phantom_examples::{AuditedWal, JsonLinesFormat, OpsOrBytes};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args().nth(1) {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("phantom-custom-backend-{}", std::process::id())),
    };
    let db = Database::builder()
        .data_dir(&dir)
        .main_format(Arc::new(JsonLinesFormat))
        .snapshot_format(Arc::new(JsonLinesFormat))
        .log_factory(Arc::new(AuditedWal::default()))
        .snapshot_policy(Arc::new(OpsOrBytes {
            ops: 100,
            log_bytes: 1 << 20,
            min_ops: 10,
        }))
        .open()?;
    db.ensure_database("shop")?;
    if db.list_tables("shop")?.is_empty() {
        db.create_table(
            "shop",
            "items",
            vec![
                Column::new("id", ColumnType::Int).primary_key(),
                Column::new("name", ColumnType::String),
            ],
        )?;
    }
    let start = db.select_all("shop", "items")?.len() as i64;
    for i in start..start + 250 {
        db.insert(
            "shop",
            "items",
            [
                ("id", Literal::from(i)),
                ("name", format!("item {i}").into()),
            ],
        )?;
    }
    db.wait_for_snapshots("shop")?;
    db.save_to_disk("shop")?;
    println!(
        "{} rows; item 7 = {:?}",
        db.select_all("shop", "items")?.len(),
        db.select("shop", "items", &Filter::eq("id", 7))?.rows
    );
    for s in db.list_snapshots("shop")? {
        println!("snapshot {} lsn={} format={}", s.file_name, s.lsn, s.format);
    }
    println!("files in {}:", dir.display());
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        println!(
            "  {:>8}  {}",
            entry.metadata()?.len(),
            entry.file_name().to_string_lossy()
        );
    }
    Ok(())
}
