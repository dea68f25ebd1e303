//! The operator commands: `save`, `export`, `import`, `demo`, `log`, `snapshot create|list`
//! and `stats`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, IsTerminal as _, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, anyhow, bail};
use phantom_core::{Column, ColumnType, Database, DatabaseStats, Literal, RecoveryReport, Value};
use phantom_storage::Mutation;
use phantom_storage::StdFs;
use phantom_wal::{AuditLine, LogEntry, WalReader};

use crate::csvio::CsvReader;
use crate::output::{write_csv, write_table};

/// Rows per `insert_many` commit in `import`.
pub(crate) const IMPORT_BATCH: usize = 10_000;
/// Files larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_MIN_BYTES: u64 = 1 << 20;

fn open(dir: &Path) -> anyhow::Result<Database> {
    Ok(Database::open(dir)?)
}

/// Fails with `UnknownDatabase` unless `name` exists.
fn require(db: &Database, name: &str) -> anyhow::Result<()> {
    if !db.database_exists(name)? {
        return Err(phantom_core::Error::UnknownDatabase {
            name: name.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// `phantom save DB`.
pub(crate) fn save(dir: &Path, name: &str) -> anyhow::Result<()> {
    let db = open(dir)?;
    let path = db.save_to_disk(name)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", path.display())?;
    Ok(())
}

/// `phantom export DB TABLE [-o FILE]`.
pub(crate) fn export(
    dir: &Path,
    name: &str,
    table: &str,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let db = open(dir)?;
    let rows = db.select_all(name, table)?;
    match output {
        None => {
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            write_csv(&mut out, &rows)?;
            out.flush()?;
        }
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("creating {}", path.display()))?;
            let mut out = BufWriter::new(file);
            write_csv(&mut out, &rows).with_context(|| format!("writing {}", path.display()))?;
            let file = out
                .into_inner()
                .map_err(|e| anyhow!("writing {}: {}", path.display(), e.error()))?;
            file.sync_all()
                .with_context(|| format!("syncing {}", path.display()))?;
            eprintln!("{} rows exported to {}", rows.len(), path.display());
        }
    }
    Ok(())
}

/// `phantom import DB TABLE FILE`: header row names the columns (any order, any subset);
/// values are parsed by column type; an empty unquoted field is NULL, `""` the empty string.
/// Rows are committed in batches of [`IMPORT_BATCH`]: on an error, the batches before it stay.
pub(crate) fn import(dir: &Path, name: &str, table: &str, file: &Path) -> anyhow::Result<()> {
    let db = open(dir)?;
    let schema = db.table_schema(name, table)?;
    let shown = file.display();
    let f = File::open(file).with_context(|| format!("opening {shown}"))?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = CsvReader::new(BufReader::new(f));
    let header = reader
        .next_record()
        .with_context(|| format!("{shown}"))?
        .ok_or_else(|| anyhow!("{shown}: empty file, expected a header row"))?;
    let mut columns: Vec<&Column> = Vec::with_capacity(header.fields.len());
    for field in &header.fields {
        let Some(col_name) = field else {
            bail!("{shown}: line 1: empty column name in the header row");
        };
        let column = schema
            .columns()
            .iter()
            .find(|c| &c.name == col_name)
            .ok_or_else(|| anyhow!("{shown}: line 1: table {table} has no column {col_name:?}"))?;
        if columns.iter().any(|c| c.name == column.name) {
            bail!("{shown}: line 1: column {col_name:?} appears twice in the header row");
        }
        columns.push(column);
    }
    let bar = (std::io::stderr().is_terminal() && size > PROGRESS_MIN_BYTES).then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(size),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
        {
            bar.set_style(style);
        }
        bar
    });
    let mut imported = 0usize;
    let mut batch: Vec<Vec<(String, Literal)>> = Vec::with_capacity(IMPORT_BATCH);
    let mut batch_first_line = 0;
    let flush = |batch: &mut Vec<Vec<(String, Literal)>>,
                 first_line: u64,
                 imported: &mut usize|
     -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len();
        db.insert_many(name, table, batch.drain(..)).with_context(|| {
            format!("{shown}: the batch of {n} rows starting at line {first_line} was not imported ({imported} rows before it were)")
        })?;
        *imported += n;
        Ok(())
    };
    while let Some(record) = reader.next_record().with_context(|| format!("{shown}"))? {
        if record.fields.len() != columns.len() {
            bail!(
                "{shown}: line {}: {} fields, the header has {} (nothing from this line on was imported; {imported} rows before it were)",
                record.line,
                record.fields.len(),
                columns.len()
            );
        }
        let mut row = Vec::with_capacity(columns.len());
        for (column, field) in columns.iter().zip(record.fields) {
            let value = match field {
                None => Value::Null,
                Some(text) => Value::parse(column.ty, &text).with_context(|| {
                    format!("{shown}: line {}, column {}", record.line, column.name)
                })?,
            };
            row.push((column.name.clone(), Literal::from(value)));
        }
        if batch.is_empty() {
            batch_first_line = record.line;
        }
        batch.push(row);
        if batch.len() >= IMPORT_BATCH {
            flush(&mut batch, batch_first_line, &mut imported)?;
            if let Some(bar) = &bar {
                bar.set_position(reader.bytes_read());
            }
        }
    }
    flush(&mut batch, batch_first_line, &mut imported)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    eprintln!("{imported} rows imported into {name}.{table}");
    Ok(())
}

/// `phantom demo`: the spec's "API Usage", for real. A `my_database` left by an earlier run is
/// dropped first, so every run starts from the same state.
///
/// The output is collected and written at the end (also after an error), so a closed stdout
/// cannot stop the demo half-way.
pub(crate) fn demo(dir: &Path) -> anyhow::Result<()> {
    let mut out = Vec::new();
    let result = demo_steps(dir, &mut out);
    std::io::stdout().lock().write_all(&out)?;
    result
}

fn demo_steps(dir: &Path, out: &mut Vec<u8>) -> anyhow::Result<()> {
    const DB: &str = "my_database";
    let db = Database::new();
    db.set_data_directory(dir)?;
    db.set_snapshot_enabled(true);
    writeln!(out, "data directory: {}", dir.display())?;
    if db.database_exists(DB)? {
        db.drop_database(DB)?;
        writeln!(out, "dropped {DB} left by an earlier run")?;
    }
    db.create_database(DB)?;
    writeln!(out, "created database {DB}")?;
    db.create_table(
        DB,
        "users",
        vec![
            Column::new("id", ColumnType::Int).primary_key(),
            Column::new("name", ColumnType::String),
            Column::new("email", ColumnType::String),
        ],
    )?;
    writeln!(
        out,
        "created table users (id int PRIMARY KEY, name string, email string)"
    )?;
    for (id, name, email) in [
        (1, "John Doe", "john@example.com"),
        (2, "Jane Smith", "jane@example.com"),
    ] {
        db.insert(
            DB,
            "users",
            [
                ("id", Literal::from(id)),
                ("name", name.into()),
                ("email", email.into()),
            ],
        )?;
        writeln!(out, "inserted {id}, {name}, {email}")?;
    }
    db.set_snapshot_interval(500);
    writeln!(out, "snapshot interval: every 500 operations")?;
    let lsn = db.append_transaction_log(
        DB,
        "MAINTENANCE",
        [("user", "admin"), ("action", "maintenance")],
    )?;
    writeln!(
        out,
        "appended MAINTENANCE {{user: admin, action: maintenance}} to the log at LSN {lsn}"
    )?;
    let snap = db.create_snapshot(DB)?;
    writeln!(
        out,
        "created snapshot {} (LSN {}, {} bytes)",
        snap.path.display(),
        snap.lsn,
        snap.size
    )?;
    let main = db.save_to_disk(DB)?;
    writeln!(out, "saved {}", main.display())?;
    drop(db);

    let fresh = Database::new();
    fresh.set_data_directory(dir)?;
    fresh.load_from_disk(DB)?;
    let report = fresh.recovery_report(DB)?;
    writeln!(
        out,
        "reloaded {DB} in a fresh Database: recovery point {}, {} log records replayed, final LSN {}",
        report
            .recovery_point
            .as_ref()
            .map_or_else(|| "none".to_owned(), |p| p.display().to_string()),
        report.replay.records,
        report.final_lsn
    )?;
    let rows = fresh.select_all(DB, "users")?;
    write_table(out, &rows.columns, &rows.rows)?;
    drop(fresh);

    writeln!(out, "files in {}:", dir.display())?;
    let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            Some((
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().ok()?.len(),
            ))
        })
        .collect();
    files.sort();
    let width = files.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (file, size) in files {
        writeln!(out, "  {file:<width$}  {size:>8} bytes")?;
    }
    Ok(())
}

/// `phantom log DB`: reads the log without modifying it. The directory lock is taken when it
/// is free; when another process holds it, the log is read anyway (the reader never writes)
/// with a warning.
pub(crate) fn log(dir: &Path, name: &str, from: u64, json: bool) -> anyhow::Result<()> {
    phantom_storage::validate_name(name)?;
    let _lock = match Database::open(dir) {
        Ok(db) => Some(db),
        Err(phantom_core::Error::Locked { path, pid }) => {
            let holder =
                pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}"));
            eprintln!(
                "warning: {} is held by {holder}; reading the log without the lock",
                path.display()
            );
            None
        }
        Err(e) => return Err(e.into()),
    };
    let has_files = std::fs::read_dir(dir).map(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file == format!("{name}.db")
                || file
                    .strip_prefix(name)
                    .is_some_and(|r| r.starts_with(".log"))
        })
    });
    if !has_files.unwrap_or(false) {
        return Err(phantom_core::Error::UnknownDatabase {
            name: name.to_owned(),
        }
        .into());
    }
    // Column names for the `colN` keys of INSERT/UPDATE lines (a mutation carries values in
    // schema order, not names): from the current schemas, then from every CREATE_TABLE the log
    // shows, which wins for the records after it. Read from the start so none is missed.
    let mut columns: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(db) = &_lock
        && db.database_exists(name).unwrap_or(false)
    {
        for table in db.list_tables(name).unwrap_or_default() {
            if let Ok(schema) = db.table_schema(name, &table) {
                columns.insert(
                    table,
                    schema.columns().iter().map(|c| c.name.clone()).collect(),
                );
            }
        }
    }
    let mut reader = WalReader::open(Arc::new(StdFs), dir, name, 0)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for record in reader.by_ref() {
        let record = record?;
        if let LogEntry::Batch(mutations) = &record.entry {
            for m in mutations {
                if let Mutation::CreateTable { table, schema } = m {
                    columns.insert(
                        table.clone(),
                        schema.columns().iter().map(|c| c.name.clone()).collect(),
                    );
                }
            }
        }
        if record.lsn < from {
            continue;
        }
        let lines: Vec<AuditLine> = AuditLine::from_record(&record)
            .into_iter()
            .map(|line| name_columns(line, &columns))
            .collect();
        if json {
            for line in lines {
                let fields: Vec<serde_json::Value> = line
                    .fields
                    .iter()
                    .map(|(k, v)| serde_json::json!([k, v]))
                    .collect();
                // Written by hand to keep the keys in this order.
                let obj = format!(
                    "{{\"lsn\":{},\"timestamp\":{},\"operation\":{},\"fields\":{}}}",
                    record.lsn,
                    serde_json::Value::from(
                        record
                            .timestamp
                            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                    ),
                    serde_json::Value::from(line.operation.clone()),
                    serde_json::Value::from(fields),
                );
                writeln!(out, "{obj}")?;
            }
        } else {
            for line in lines {
                writeln!(out, "{} {line}", record.lsn)?;
            }
        }
    }
    out.flush()?;
    if let Some(torn) = &reader.status().torn_tail {
        eprintln!(
            "warning: the log ends with a torn tail ({} bytes at offset {} of {}), not shown; the next open cuts it",
            torn.bytes_cut,
            torn.offset,
            torn.file.display()
        );
    }
    Ok(())
}

/// Replaces the `col0`, `col1`, … keys of a line about `table` with the column names.
fn name_columns(mut line: AuditLine, columns: &HashMap<String, Vec<String>>) -> AuditLine {
    let table = line
        .fields
        .iter()
        .find(|(k, _)| k == "table")
        .map(|(_, v)| v.clone());
    if let Some(names) = table.and_then(|t| columns.get(&t)) {
        for (key, _) in &mut line.fields {
            if let Some(name) = key
                .strip_prefix("col")
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|i| names.get(i))
            {
                key.clone_from(name);
            }
        }
    }
    line
}

/// `phantom snapshot create DB`.
pub(crate) fn snapshot_create(dir: &Path, name: &str) -> anyhow::Result<()> {
    let db = open(dir)?;
    let info = db.create_snapshot(name)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "path: {}", info.path.display())?;
    writeln!(out, "lsn: {}", info.lsn)?;
    Ok(())
}

/// `phantom snapshot list DB`: a header line, then one line per snapshot, oldest first.
pub(crate) fn snapshot_list(dir: &Path, name: &str) -> anyhow::Result<()> {
    let db = open(dir)?;
    require(&db, name)?;
    let snaps = db.list_snapshots(name)?;
    let mut rows = vec![
        ["file", "lsn", "created", "size", "format"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for s in snaps {
        rows.push(vec![
            s.file_name.clone(),
            s.lsn.to_string(),
            s.created.map_or_else(
                || "-".to_owned(),
                |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            s.size.to_string(),
            s.format.to_owned(),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
    }
    Ok(())
}

fn database_figures(s: &DatabaseStats) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::Value as J;
    vec![
        ("tables", J::from(s.tables)),
        ("rows", J::from(s.rows)),
        ("last_lsn", J::from(s.last_lsn)),
        ("durable_lsn", J::from(s.log.durable_lsn)),
        ("bytes_on_disk", J::from(s.bytes_on_disk)),
        ("log_records_appended", J::from(s.log.appended)),
        ("log_syncs", J::from(s.log.syncs)),
        ("log_bytes_appended", J::from(s.log.bytes)),
        (
            "last_snapshot",
            s.last_snapshot
                .as_ref()
                .map_or(J::Null, |i| J::from(i.file_name.clone())),
        ),
        (
            "last_snapshot_lsn",
            s.last_snapshot.as_ref().map_or(J::Null, |i| J::from(i.lsn)),
        ),
        ("snapshots_taken", J::from(s.snapshots_taken)),
    ]
}

pub(crate) fn recovery_figures(r: &RecoveryReport) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::Value as J;
    vec![
        (
            "recovery_point",
            r.recovery_point
                .as_ref()
                .map_or(J::Null, |p| J::from(p.display().to_string())),
        ),
        ("recovery_lsn", J::from(r.recovery_lsn)),
        ("recovery_records_replayed", J::from(r.replay.records)),
        ("recovery_records_skipped", J::from(r.replay.skipped)),
        ("recovery_final_lsn", J::from(r.final_lsn)),
        (
            "recovery_rejected",
            J::from(
                r.rejected
                    .iter()
                    .map(|x| format!("{}: {}", x.path.display(), x.reason))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("recovery_torn_bytes_cut", J::from(r.torn_bytes_cut)),
        (
            "recovery_ms",
            J::from(r.duration.as_micros() as f64 / 1000.0),
        ),
    ]
}

pub(crate) fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "none".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(items) if items.is_empty() => "none".to_owned(),
        serde_json::Value::Array(items) => items.iter().map(text_of).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

/// `phantom stats [DB]`: figures of the whole directory, or of one database plus the report
/// of its recovery, as `key: value` lines (or one JSON object).
pub(crate) fn stats(dir: &Path, name: Option<&str>, json: bool) -> anyhow::Result<()> {
    let db = open(dir)?;
    if let Some(name) = name {
        require(&db, name)?;
    }
    let stats = db.stats()?;
    let mut figures: Vec<(String, serde_json::Value)> = vec![(
        "data_dir".to_owned(),
        stats.data_dir.display().to_string().into(),
    )];
    match name {
        Some(name) => {
            let s = stats
                .databases
                .iter()
                .find(|d| d.name == name)
                .ok_or_else(|| phantom_core::Error::UnknownDatabase {
                    name: name.to_owned(),
                })?;
            figures.push(("database".to_owned(), name.into()));
            figures.extend(
                database_figures(s)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v)),
            );
            figures.extend(
                recovery_figures(&s.recovery)
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v)),
            );
        }
        None => {
            figures.push(("databases".to_owned(), stats.databases.len().into()));
            figures.push(("tables".to_owned(), stats.tables.into()));
            figures.push(("rows".to_owned(), stats.rows.into()));
            figures.push(("bytes_on_disk".to_owned(), stats.bytes_on_disk.into()));
            for s in &stats.databases {
                figures.extend(
                    database_figures(s)
                        .into_iter()
                        .map(|(k, v)| (format!("{}.{k}", s.name), v)),
                );
            }
        }
    }
    let health = db.health();
    figures.push(("healthy".to_owned(), health.healthy.into()));
    if !health.problems.is_empty() {
        figures.push(("problems".to_owned(), health.problems.into()));
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if json {
        // Written by hand to keep the keys in this order.
        let body: Vec<String> = figures
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.clone())))
            .collect();
        writeln!(out, "{{{}}}", body.join(","))?;
    } else {
        for (k, v) in &figures {
            writeln!(out, "{k}: {}", text_of(v))?;
        }
    }
    Ok(())
}
