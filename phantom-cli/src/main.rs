//! `phantom`: the command-line front end of PhantomDB.
//!
//! Every subcommand opens the data directory (`--data-dir`, default `./data`) through
//! [`phantom_core::Database`], does its work, and exits 0 on success, 1 on a user or data error
//! (a message starting with `error:` on stderr) and 2 on a usage error (clap's default).
//! Results go to stdout; summaries, warnings and logs go to stderr, so stdout stays clean for
//! scripts. See `docs/cli.md` for the contract of every command.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod csvio;
mod operate;
mod output;
mod shell;
mod sql;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use phantom_core::{Database, SyncMode};
use phantom_storage::{BinaryFormat, CsvFormat, StorageFormat};

use crate::output::Format;

/// PhantomDB: an embedded, durable table store — SQL subset, shell and operator tools.
#[derive(Debug, Parser)]
#[command(name = "phantom", version, about, long_about = None)]
struct Cli {
    /// The data directory holding the databases.
    #[arg(long, global = true, value_name = "DIR", default_value = phantom_core::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); `RUST_LOG` also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run `;`-separated SQL statements against a database (created if missing).
    Sql {
        /// Database name.
        db: String,
        /// The statements.
        statements: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Interactive SQL prompt (reads statements from stdin when it is not a terminal).
    Shell {
        /// Database name.
        db: String,
        #[command(flatten)]
        session: SessionArgs,
    },
    /// Write the main file `<DB>.db` of a database and print its path.
    Save {
        /// Database name.
        db: String,
    },
    /// Write a table as CSV with a header row.
    Export {
        /// Database name.
        db: String,
        /// Table name.
        table: String,
        /// Output file (default: stdout).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Insert the rows of a CSV file (with a header row) into an existing table.
    Import {
        /// Database name.
        db: String,
        /// Table name.
        table: String,
        /// The CSV file.
        file: PathBuf,
    },
    /// The spec's quickstart, done for real on the data directory.
    Demo,
    /// Print a database's write-ahead log, one record (or mutation) per line.
    Log {
        /// Database name.
        db: String,
        /// Start at this LSN.
        #[arg(long, value_name = "N", default_value_t = 0)]
        from_lsn: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Create or list snapshots.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// Check every file of a database (main file, snapshots, log) without modifying anything;
    /// exit 1 and print one line per problem (file, line or byte offset) when anything is wrong.
    Verify {
        /// Database name.
        db: String,
        /// One JSON object instead.
        #[arg(long)]
        json: bool,
    },
    /// Run recovery explicitly and print its report; with a target, point-in-time recovery.
    Recover {
        /// Database name.
        db: String,
        /// Recover the state as of this LSN.
        #[arg(long, value_name = "N", conflicts_with = "to_time")]
        to_lsn: Option<u64>,
        /// Recover the state after the last commit at or before this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        to_time: Option<String>,
        /// Write the recovered state into this directory instead of rewinding the live one.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// tolerate (cut a torn tail; default), strict (refuse it) or salvage (keep the
        /// longest valid prefix of a corrupt log).
        #[arg(long, value_name = "MODE", default_value = "tolerate")]
        mode: phantom_core::RecoveryMode,
        /// Compute and print what recovery would do; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Commit random operations from several threads, printing each one as it is tried and
    /// acknowledged (for crash tests: kill it at any moment and check the history).
    Stress {
        /// Database name.
        db: String,
        /// Writer threads.
        #[arg(long, default_value_t = 4)]
        writers: u64,
        /// Operations per writer.
        #[arg(long, default_value_t = 1000)]
        ops: u64,
        /// Seed of the random choices.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print live figures of the data directory (or of one database) as `key: value` lines.
    Stats {
        /// Only this database (adds its recovery report).
        db: Option<String>,
        /// One JSON object instead.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SnapshotAction {
    /// Take a snapshot now; print its path and LSN.
    Create {
        /// Database name.
        db: String,
    },
    /// List the snapshots of a database, oldest first.
    List {
        /// Database name.
        db: String,
    },
}

/// Options shared by `sql` and `shell`.
#[derive(Debug, Args)]
struct SessionArgs {
    /// Allow `DELETE FROM t` without a WHERE clause (deletes every row).
    #[arg(long)]
    all: bool,
    /// Output format of SELECT results.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Durability: `always` (fsync before each statement returns), `interval=MS` or `never`.
    #[arg(long, value_name = "MODE", default_value = "always", value_parser = parse_sync)]
    sync: SyncMode,
    /// Take an automatic snapshot every N committed operations (0: never).
    #[arg(long, value_name = "N")]
    snapshot_interval: Option<u64>,
    /// Format of snapshots written by this call.
    #[arg(long, value_enum, value_name = "FORMAT")]
    snapshot_format: Option<SnapshotFormat>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SnapshotFormat {
    /// The spec's CSV layout.
    Csv,
    /// The checksummed binary format (faster).
    Binary,
}

fn parse_sync(text: &str) -> Result<SyncMode, String> {
    match text {
        "always" => Ok(SyncMode::Always),
        "never" => Ok(SyncMode::Never),
        other => match other.strip_prefix("interval=") {
            Some(ms) => match ms.parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(SyncMode::Interval(Duration::from_millis(ms))),
                _ => Err(format!(
                    "interval needs a positive number of milliseconds, got {ms:?}"
                )),
            },
            None => Err("expected always, interval=MS or never".to_owned()),
        },
    }
}

impl SessionArgs {
    /// Opens the data directory with this session's durability and snapshot settings.
    fn open(&self, dir: &std::path::Path) -> anyhow::Result<Database> {
        let db = Database::builder()
            .data_dir(dir)
            .sync_mode(self.sync)
            .open()?;
        if let Some(n) = self.snapshot_interval {
            db.set_snapshot_interval(n);
        }
        if let Some(f) = self.snapshot_format {
            let format: Arc<dyn StorageFormat> = match f {
                SnapshotFormat::Csv => Arc::new(CsvFormat),
                SnapshotFormat::Binary => Arc::new(BinaryFormat),
            };
            db.set_snapshot_format(format);
        }
        Ok(db)
    }

    fn options(&self) -> sql::Options {
        sql::Options {
            allow_delete_all: self.all,
            format: self.format,
        }
    }

    /// In the modes that do not fsync every commit, forces the log to disk before exiting.
    fn finish(&self, db: &Database, name: &str) -> anyhow::Result<()> {
        if self.sync != SyncMode::Always && db.database_exists(name)? {
            db.sync(name)
                .with_context(|| format!("syncing the log of {name}"))?;
        }
        Ok(())
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let filter = match (std::env::var("RUST_LOG"), verbose) {
        (Ok(spec), 0) if !spec.is_empty() => EnvFilter::new(spec),
        (_, 0) => return,
        // sqlparser's own debug output is parser tracing, noise for users of -v/-vv.
        (_, 1) => EnvFilter::new("info,sqlparser=warn"),
        (_, 2) => EnvFilter::new("debug,sqlparser=warn"),
        _ => EnvFilter::new("trace"),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = cli.data_dir;
    match cli.command {
        Command::Sql {
            db: name,
            statements,
            session,
        } => {
            let db = session.open(&dir)?;
            let result = sql::run_script(&db, &name, &statements, session.options());
            // Whatever ran before an error was committed: make it durable in every mode.
            let synced = session.finish(&db, &name);
            result.and(synced)
        }
        Command::Shell { db: name, session } => {
            let db = session.open(&dir)?;
            let result = shell::run(&db, &name, &dir, session.options());
            let synced = session.finish(&db, &name);
            result.and(synced)
        }
        Command::Save { db } => commands::save(&dir, &db),
        Command::Export { db, table, output } => {
            commands::export(&dir, &db, &table, output.as_deref())
        }
        Command::Import { db, table, file } => commands::import(&dir, &db, &table, &file),
        Command::Demo => commands::demo(&dir),
        Command::Log { db, from_lsn, json } => commands::log(&dir, &db, from_lsn, json),
        Command::Snapshot { action } => match action {
            SnapshotAction::Create { db } => commands::snapshot_create(&dir, &db),
            SnapshotAction::List { db } => commands::snapshot_list(&dir, &db),
        },
        Command::Stats { db, json } => commands::stats(&dir, db.as_deref(), json),
        Command::Verify { db, json } => {
            if operate::verify(&dir, &db, json)? {
                Ok(())
            } else {
                anyhow::bail!("database {db} has problems (listed on stdout)")
            }
        }
        Command::Recover {
            db,
            to_lsn,
            to_time,
            out,
            mode,
            dry_run,
        } => operate::recover(
            &dir,
            &db,
            &operate::RecoverArgs {
                to_lsn,
                to_time: to_time.as_deref(),
                out: out.as_deref(),
                mode,
                dry_run,
            },
        ),
        Command::Stress {
            db,
            writers,
            ops,
            seed,
        } => operate::stress(&dir, &db, writers, ops, seed),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A SELECT piped into `head` closes stdout early: that is not an error.
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
