//! The systems under test behind one trait, each configured for durable commits:
//!
//! - PhantomDB: `Database` with the default `SyncMode::Always` (group commit), binary
//!   snapshots, automatic snapshots off (snapshots are measured on their own in W4/W5);
//! - SQLite (rusqlite, bundled): WAL mode, `synchronous=FULL`, one connection per thread
//!   (a pool), `busy_timeout` 60 s;
//! - redb: one write transaction per commit with `Durability::Immediate`;
//! - fjall: insert (or write batch) then `Database::persist(PersistMode::SyncAll)`;
//! - Redis (when `redis-server` is installed, see [`crate::redis`]): a server per workload,
//!   `appendonly yes`, `appendfsync always`, one connection per thread.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use phantom_core::{Column, ColumnType, Database, Filter, Literal, Value, WalFactory};
use phantom_storage::BinaryFormat;
use phantom_wal::WalOptions;
use redb::{ReadableDatabase, ReadableTable};

use crate::rows::Row;

/// The database name PhantomDB uses.
pub(crate) const DB: &str = "bench";
/// The table name every system uses.
pub(crate) const TABLE: &str = "users";

/// Which system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// PhantomDB (the system under test).
    Phantom,
    /// SQLite, WAL, synchronous=FULL.
    Sqlite,
    /// redb, Durability::Immediate.
    Redb,
    /// fjall, PersistMode::SyncAll.
    Fjall,
    /// Redis, appendonly yes + appendfsync always (a server process; not in [`Kind::ALL`]:
    /// only when installed).
    Redis,
}

impl Kind {
    /// Every embedded system, PhantomDB first.
    pub(crate) const ALL: [Kind; 4] = [Kind::Phantom, Kind::Sqlite, Kind::Redb, Kind::Fjall];

    /// Display name (also used on the child command line).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Phantom => "PhantomDB",
            Kind::Sqlite => "SQLite",
            Kind::Redb => "redb",
            Kind::Fjall => "fjall",
            Kind::Redis => crate::report::REDIS,
        }
    }

    /// The kind named `name`.
    pub(crate) fn parse(name: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name))
            .ok_or_else(|| anyhow!("unknown system {name:?}"))
    }
}

/// What every system can do.
pub(crate) trait Store: Send + Sync {
    /// One row, committed durably on its own.
    fn insert_one(&self, row: &Row) -> Result<()>;
    /// Many rows, committed durably as one transaction.
    fn insert_batch(&self, rows: &[Row]) -> Result<()>;
    /// The row with primary key `id`, decoded.
    fn get(&self, id: i64) -> Result<Option<Row>>;
    /// Reads every row (every column); returns how many.
    fn scan(&self) -> Result<usize>;
}

/// Opens (creating when needed) `kind`'s store in `dir`.
pub(crate) fn open(kind: Kind, dir: &Path) -> Result<Box<dyn Store>> {
    Ok(match kind {
        Kind::Phantom => Box::new(Phantom::open(dir)?),
        Kind::Sqlite => Box::new(Sqlite::open(dir)?),
        Kind::Redb => Box::new(Redb::open(dir)?),
        Kind::Fjall => Box::new(Fjall::open(dir)?),
        Kind::Redis => Box::new(crate::redis::Redis::open(dir)?),
    })
}

// ----- PhantomDB -----

/// PhantomDB with default durability.
pub(crate) struct Phantom {
    /// The database (public for the snapshot workloads).
    pub(crate) db: Database,
}

impl Phantom {
    /// Opens the data directory `dir` (recovering what is there) and ensures the table.
    pub(crate) fn open(dir: &Path) -> Result<Phantom> {
        Phantom::open_with(dir, WalOptions::default().preallocate)
    }

    /// Like [`Phantom::open`]; `preallocate` extends each WAL segment up front
    /// (`WalOptions::preallocate`, on by default).
    pub(crate) fn open_with(dir: &Path, preallocate: bool) -> Result<Phantom> {
        Phantom::open_options(
            dir,
            WalOptions {
                preallocate,
                ..WalOptions::default()
            },
        )
    }

    /// Like [`Phantom::open`] with `SyncMode::Never`: for writing a data set quickly whose
    /// log is then opened with the defaults (the log's bytes do not depend on the sync mode).
    pub(crate) fn open_unsynced(dir: &Path) -> Result<Phantom> {
        Phantom::open_options(
            dir,
            WalOptions {
                sync_mode: phantom_wal::SyncMode::Never,
                ..WalOptions::default()
            },
        )
    }

    fn open_options(dir: &Path, options: WalOptions) -> Result<Phantom> {
        let log = WalFactory { options };
        let db = Database::builder()
            .data_dir(dir.join("phantom"))
            .log_factory(Arc::new(log))
            .snapshots_enabled(false)
            .snapshot_format(Arc::new(BinaryFormat))
            .open()?;
        db.ensure_database(DB)?;
        if !db.list_tables(DB)?.iter().any(|t| t == TABLE) {
            db.create_table(
                DB,
                TABLE,
                vec![
                    Column::new("id", ColumnType::Int).primary_key(),
                    Column::new("name", ColumnType::String),
                    Column::new("email", ColumnType::String),
                    Column::new("score", ColumnType::Float),
                ],
            )?;
        }
        Ok(Phantom { db })
    }
}

fn literals(r: &Row) -> [(&'static str, Literal); 4] {
    [
        ("id", Literal::from(r.id)),
        ("name", Literal::from(r.name.as_str())),
        ("email", Literal::from(r.email.as_str())),
        ("score", Literal::from(r.score)),
    ]
}

/// A row as values in schema order (the strings copied: `rows` is borrowed, as the peers'
/// encoders copy it into their own buffers), built straight into the shared row the table
/// will keep (one allocation, no `Vec` on the way).
pub(crate) fn values(r: &Row) -> phantom_core::Row {
    [
        Value::Int(r.id),
        Value::from(r.name.as_str()),
        Value::from(r.email.as_str()),
        Value::Float(r.score),
    ]
    .into_iter()
    .collect()
}

/// Moves a returned row into a [`Row`] (`select` already returned owned values; short strings
/// are inline in them, so making `String`s allocates, as the peers' decoders do).
fn phantom_row(values: Vec<Value>) -> Result<Row> {
    let mut it = values.into_iter();
    match (it.next(), it.next(), it.next(), it.next(), it.next()) {
        (
            Some(Value::Int(id)),
            Some(Value::String(name)),
            Some(Value::String(email)),
            Some(Value::Float(score)),
            None,
        ) => Ok(Row {
            id,
            name: name.into_string(),
            email: email.into_string(),
            score,
        }),
        other => bail!("unexpected PhantomDB row {other:?}"),
    }
}

impl Store for Phantom {
    fn insert_one(&self, row: &Row) -> Result<()> {
        self.db.insert(DB, TABLE, literals(row))?;
        Ok(())
    }

    fn insert_batch(&self, rows: &[Row]) -> Result<()> {
        // Positional typed values, as SQLite binds its prepared statement's parameters.
        self.db.insert_values(DB, TABLE, rows.iter().map(values))?;
        Ok(())
    }

    fn get(&self, id: i64) -> Result<Option<Row>> {
        let rows = self.db.select(DB, TABLE, &Filter::eq("id", id))?;
        rows.rows.into_iter().next().map(phantom_row).transpose()
    }

    fn scan(&self) -> Result<usize> {
        let rows = self.db.select_all(DB, TABLE)?;
        let mut n = 0;
        for r in rows.rows {
            phantom_row(r)?;
            n += 1;
        }
        Ok(n)
    }
}

// ----- SQLite -----

/// SQLite through a pool of connections (one per concurrent thread).
pub(crate) struct Sqlite {
    path: PathBuf,
    pool: Mutex<Vec<rusqlite::Connection>>,
}

impl Sqlite {
    /// Opens `dir/bench.sqlite` in WAL mode with `synchronous=FULL`.
    pub(crate) fn open(dir: &Path) -> Result<Sqlite> {
        let s = Sqlite {
            path: dir.join("bench.sqlite"),
            pool: Mutex::new(Vec::new()),
        };
        s.with(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
                 email TEXT NOT NULL, score REAL NOT NULL)",
            )?;
            Ok(())
        })?;
        Ok(s)
    }

    /// The database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<rusqlite::Connection> {
        let c = rusqlite::Connection::open(&self.path)?;
        c.busy_timeout(Duration::from_secs(60))?;
        let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            bail!("SQLite refused WAL mode (got {mode})");
        }
        c.pragma_update(None, "synchronous", "FULL")?;
        Ok(c)
    }

    /// Runs `f` on a pooled connection.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        let pooled = self.pool.lock().map_err(|_| anyhow!("poisoned"))?.pop();
        let mut c = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        let out = f(&mut c);
        self.pool.lock().map_err(|_| anyhow!("poisoned"))?.push(c);
        out
    }
}

const SQL_INSERT: &str = "INSERT INTO users (id, name, email, score) VALUES (?1, ?2, ?3, ?4)";

impl Store for Sqlite {
    fn insert_one(&self, r: &Row) -> Result<()> {
        self.with(|c| {
            c.prepare_cached(SQL_INSERT)?
                .execute(rusqlite::params![r.id, r.name, r.email, r.score])?;
            Ok(())
        })
    }

    fn insert_batch(&self, rows: &[Row]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut st = tx.prepare_cached(SQL_INSERT)?;
                for r in rows {
                    st.execute(rusqlite::params![r.id, r.name, r.email, r.score])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn get(&self, id: i64) -> Result<Option<Row>> {
        self.with(|c| {
            let mut st =
                c.prepare_cached("SELECT id, name, email, score FROM users WHERE id = ?1")?;
            let mut rows = st.query([id])?;
            match rows.next()? {
                Some(r) => Ok(Some(Row {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    email: r.get(2)?,
                    score: r.get(3)?,
                })),
                None => Ok(None),
            }
        })
    }

    fn scan(&self) -> Result<usize> {
        self.with(|c| {
            let mut st = c.prepare_cached("SELECT id, name, email, score FROM users")?;
            let mut rows = st.query([])?;
            let mut n = 0;
            while let Some(r) = rows.next()? {
                let _row = Row {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    email: r.get(2)?,
                    score: r.get(3)?,
                };
                n += 1;
            }
            Ok(n)
        })
    }
}

// ----- redb -----

const REDB_TABLE: redb::TableDefinition<'static, u64, &'static [u8]> =
    redb::TableDefinition::new("users");

/// redb with immediate durability.
pub(crate) struct Redb {
    db: redb::Database,
}

fn redb_key(id: i64) -> u64 {
    u64::from_be_bytes(Row::key(id))
}

fn redb_id(key: u64) -> i64 {
    i64::from_be_bytes(key.to_be_bytes())
}

impl Redb {
    /// Opens `dir/bench.redb`, creating the table.
    pub(crate) fn open(dir: &Path) -> Result<Redb> {
        let db = redb::Database::create(dir.join("bench.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(REDB_TABLE)?;
        tx.commit()?;
        Ok(Redb { db })
    }

    fn write(&self, rows: &[Row]) -> Result<()> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::Immediate)?;
        {
            let mut t = tx.open_table(REDB_TABLE)?;
            for r in rows {
                t.insert(redb_key(r.id), r.encode().as_slice())?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

impl Store for Redb {
    fn insert_one(&self, row: &Row) -> Result<()> {
        self.write(std::slice::from_ref(row))
    }

    fn insert_batch(&self, rows: &[Row]) -> Result<()> {
        self.write(rows)
    }

    fn get(&self, id: i64) -> Result<Option<Row>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REDB_TABLE)?;
        let v = t.get(redb_key(id))?;
        v.map(|v| Row::decode(id, v.value())).transpose()
    }

    fn scan(&self) -> Result<usize> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(REDB_TABLE)?;
        let mut n = 0;
        for item in t.iter()? {
            let (k, v) = item?;
            Row::decode(redb_id(k.value()), v.value())?;
            n += 1;
        }
        Ok(n)
    }
}

// ----- fjall -----

/// fjall with `PersistMode::SyncAll` after every commit.
pub(crate) struct Fjall {
    db: fjall::Database,
    ks: fjall::Keyspace,
}

impl Fjall {
    /// Opens `dir/fjall` and its `users` keyspace.
    pub(crate) fn open(dir: &Path) -> Result<Fjall> {
        let db = fjall::Database::builder(dir.join("fjall")).open()?;
        let ks = db.keyspace(TABLE, fjall::KeyspaceCreateOptions::default)?;
        Ok(Fjall { db, ks })
    }
}

fn fjall_id(key: &[u8]) -> Result<i64> {
    let k = <[u8; 8]>::try_from(key).context("fjall key is not 8 bytes")?;
    Ok(i64::from_be_bytes(k))
}

impl Store for Fjall {
    fn insert_one(&self, r: &Row) -> Result<()> {
        self.ks.insert(&Row::key(r.id)[..], r.encode())?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    fn insert_batch(&self, rows: &[Row]) -> Result<()> {
        let mut b = self.db.batch();
        for r in rows {
            b.insert(&self.ks, &Row::key(r.id)[..], r.encode());
        }
        b.commit()?;
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    fn get(&self, id: i64) -> Result<Option<Row>> {
        self.ks
            .get(Row::key(id))?
            .map(|v| Row::decode(id, &v))
            .transpose()
    }

    fn scan(&self) -> Result<usize> {
        let mut n = 0;
        for g in self.ks.iter() {
            let (k, v) = g.into_inner()?;
            Row::decode(fjall_id(&k)?, &v)?;
            n += 1;
        }
        Ok(n)
    }
}
