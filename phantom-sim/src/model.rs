//! The simulation's model of a database: tables of rows keyed by primary key, kept apart from
//! the engine's own data structures, and the random operations the workload draws from it.
//!
//! Every table has an `id INT PRIMARY KEY` first column, so a row is identified by its key and
//! the model never needs the engine's row ids.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use phantom_core::{CmpOp, Column, ColumnType, Database, Filter, Literal, Transaction, Value};
use rand::Rng;
use rand::rngs::StdRng;

/// One table of the model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelTable {
    /// Columns after `id`, with their types.
    pub columns: Vec<(String, ColumnType)>,
    /// Full rows (the `id` value first) by primary key.
    pub rows: BTreeMap<i64, Vec<Value>>,
}

/// The state of one database: tables by name.
pub type ModelState = BTreeMap<String, ModelTable>;

/// One operation of a transaction.
#[derive(Clone, Debug)]
pub(crate) enum Op {
    /// `CREATE TABLE name (id INT PRIMARY KEY, columns…)`.
    CreateTable {
        /// Table name.
        name: String,
        /// Columns after `id`.
        columns: Vec<(String, ColumnType)>,
    },
    /// `DROP TABLE name`.
    DropTable {
        /// Table name.
        name: String,
    },
    /// Insert full rows (keys not in the table).
    Insert {
        /// Table name.
        table: String,
        /// Full rows, `id` first.
        rows: Vec<Vec<Value>>,
    },
    /// Set columns of the rows with `id < below` (or `id = key` when `exact`).
    Update {
        /// Table name.
        table: String,
        /// The key bound.
        key: i64,
        /// `id = key` instead of `id < key`.
        exact: bool,
        /// Column positions (≥ 1) and new values.
        set: Vec<(usize, Value)>,
    },
    /// Delete the rows with `id < below` (or `id = key` when `exact`).
    Delete {
        /// Table name.
        table: String,
        /// The key bound.
        key: i64,
        /// `id = key` instead of `id < key`.
        exact: bool,
    },
}

const TYPES: [ColumnType; 7] = [
    ColumnType::String,
    ColumnType::Int,
    ColumnType::Float,
    ColumnType::Bool,
    ColumnType::Date,
    ColumnType::Time,
    ColumnType::Timestamp,
];

const STRINGS: [&str; 14] = [
    "",
    "plain",
    "Doe, John",
    "say \"hi\"",
    "two\nlines",
    "crlf\r\nend",
    "ünïcødé ✓",
    " padded ",
    "# not a comment",
    "[TABLE:fake]",
    "ROW:1,2",
    "NULL",
    "\"",
    ",",
];

fn random_value(rng: &mut StdRng, ty: ColumnType) -> Value {
    if rng.random_bool(0.1) {
        return Value::Null;
    }
    match ty {
        ColumnType::Int => Value::Int(match rng.random_range(0..4) {
            0 => i64::MIN,
            1 => i64::MAX,
            _ => rng.random_range(-1000..1000),
        }),
        ColumnType::Float => Value::Float(match rng.random_range(0..5) {
            0 => -0.0,
            1 => 1e300,
            2 => f64::MIN_POSITIVE,
            _ => f64::from(rng.random_range(-1000..1000)) / 7.0,
        }),
        ColumnType::Bool => Value::Bool(rng.random()),
        ColumnType::Date => Value::Date(
            NaiveDate::from_num_days_from_ce_opt(rng.random_range(1..800_000)).unwrap_or_default(),
        ),
        ColumnType::Time => Value::Time(
            NaiveTime::from_num_seconds_from_midnight_opt(rng.random_range(0..86_400), 0)
                .unwrap_or_default(),
        ),
        ColumnType::Timestamp => Value::Timestamp(NaiveDateTime::from_timestamp_opt_compat(
            rng.random_range(0..4_000_000_000),
        )),
        _ => {
            let i = rng.random_range(0..STRINGS.len());
            let mut s = STRINGS[i].to_owned();
            if rng.random_bool(0.3) {
                s.push_str(&"x".repeat(rng.random_range(0..300)));
            }
            Value::String(s.into())
        }
    }
}

trait FromTimestamp {
    fn from_timestamp_opt_compat(secs: i64) -> NaiveDateTime;
}

impl FromTimestamp for NaiveDateTime {
    fn from_timestamp_opt_compat(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap_or_default()
            .naive_utc()
    }
}

fn random_row(rng: &mut StdRng, id: i64, table: &ModelTable) -> Vec<Value> {
    let mut row = vec![Value::Int(id)];
    for (_, ty) in &table.columns {
        row.push(random_value(rng, *ty));
    }
    row
}

fn fresh_key(rng: &mut StdRng, table: &ModelTable) -> i64 {
    loop {
        let k = rng.random_range(0..500);
        if !table.rows.contains_key(&k) {
            return k;
        }
    }
}

/// Draws a valid operation against `state`.
pub(crate) fn random_op(rng: &mut StdRng, state: &ModelState) -> Op {
    let names: Vec<&String> = state.keys().collect();
    let roll = rng.random_range(0..100);
    if names.is_empty() || (roll < 6 && names.len() < 4) {
        let name = loop {
            let n = format!("t{}", rng.random_range(0..6));
            if !state.contains_key(&n) {
                break n;
            }
        };
        let columns = (0..rng.random_range(1..=4))
            .map(|i| {
                let ty = TYPES[rng.random_range(0..TYPES.len())];
                (format!("c{i}"), ty)
            })
            .collect();
        return Op::CreateTable { name, columns };
    }
    let name = names[rng.random_range(0..names.len())].clone();
    let table = &state[&name];
    if roll < 9 {
        return Op::DropTable { name };
    }
    if roll < 55 || table.rows.is_empty() {
        let mut rows = Vec::new();
        let mut scratch = table.clone();
        for _ in 0..rng.random_range(1..=4) {
            let k = fresh_key(rng, &scratch);
            let row = random_row(rng, k, &scratch);
            scratch.rows.insert(k, row.clone());
            rows.push(row);
        }
        return Op::Insert { table: name, rows };
    }
    let keys: Vec<i64> = table.rows.keys().copied().collect();
    let exact = rng.random_bool(0.7);
    let key = if exact {
        keys[rng.random_range(0..keys.len())]
    } else {
        rng.random_range(0..500)
    };
    if roll < 82 {
        let mut set = Vec::new();
        for (i, (_, ty)) in table.columns.iter().enumerate() {
            if rng.random_bool(0.6) {
                set.push((i + 1, random_value(rng, *ty)));
            }
        }
        if set.is_empty() {
            let (i, (_, ty)) = (0, &table.columns[0]);
            set.push((i + 1, random_value(rng, *ty)));
        }
        Op::Update {
            table: name,
            key,
            exact,
            set,
        }
    } else {
        Op::Delete {
            table: name,
            key,
            exact,
        }
    }
}

fn matches(id: i64, key: i64, exact: bool) -> bool {
    if exact { id == key } else { id < key }
}

/// Applies `op` to the model; returns whether it changed anything (whether the engine logs a
/// mutation for it).
pub(crate) fn apply(state: &mut ModelState, op: &Op) -> bool {
    match op {
        Op::CreateTable { name, columns } => {
            state.insert(
                name.clone(),
                ModelTable {
                    columns: columns.clone(),
                    rows: BTreeMap::new(),
                },
            );
            true
        }
        Op::DropTable { name } => state.remove(name).is_some(),
        Op::Insert { table, rows } => {
            let Some(t) = state.get_mut(table) else {
                return false;
            };
            for row in rows {
                if let Some(Value::Int(id)) = row.first() {
                    t.rows.insert(*id, row.clone());
                }
            }
            !rows.is_empty()
        }
        Op::Update {
            table,
            key,
            exact,
            set,
        } => {
            let Some(t) = state.get_mut(table) else {
                return false;
            };
            let mut changed = false;
            for (id, row) in t.rows.iter_mut() {
                if matches(*id, *key, *exact) {
                    for (pos, v) in set {
                        row[*pos] = v.clone();
                    }
                    changed = true;
                }
            }
            changed
        }
        Op::Delete { table, key, exact } => {
            let Some(t) = state.get_mut(table) else {
                return false;
            };
            let before = t.rows.len();
            t.rows.retain(|id, _| !matches(*id, *key, *exact));
            t.rows.len() != before
        }
    }
}

fn literal(v: &Value) -> Literal {
    match v {
        Value::Null => Literal::Null,
        other => Literal::Value(other.clone()),
    }
}

fn filter(key: i64, exact: bool) -> Filter {
    if exact {
        Filter::eq("id", key)
    } else {
        Filter::cmp("id", CmpOp::Lt, key)
    }
}

/// Runs `op` in an engine transaction. `columns` gives the column names of the table as the
/// model knows them.
pub(crate) fn run(tx: &mut Transaction, op: &Op, state: &ModelState) -> phantom_core::Result<()> {
    let names = |table: &str| -> Vec<String> {
        let mut n = vec!["id".to_owned()];
        if let Some(t) = state.get(table) {
            n.extend(t.columns.iter().map(|(c, _)| c.clone()));
        }
        n
    };
    match op {
        Op::CreateTable { name, columns } => {
            let mut cols = vec![Column::new("id", ColumnType::Int).primary_key()];
            cols.extend(columns.iter().map(|(n, ty)| Column::new(n.clone(), *ty)));
            tx.create_table(name, cols)
        }
        Op::DropTable { name } => tx.drop_table(name),
        Op::Insert { table, rows } => {
            let names = names(table);
            let rows: Vec<Vec<(String, Literal)>> = rows
                .iter()
                .map(|r| names.iter().cloned().zip(r.iter().map(literal)).collect())
                .collect();
            tx.insert_many(table, rows).map(drop)
        }
        Op::Update {
            table,
            key,
            exact,
            set,
        } => {
            let names = names(table);
            let set: Vec<(String, Literal)> = set
                .iter()
                .map(|(pos, v)| (names[*pos].clone(), literal(v)))
                .collect();
            tx.update(table, &filter(*key, *exact), set).map(drop)
        }
        Op::Delete { table, key, exact } => tx.delete(table, &filter(*key, *exact)).map(drop),
    }
}

/// Reads the whole state of database `db` from the engine, in model form.
pub fn read_state(db: &Database, name: &str) -> Result<ModelState, String> {
    let mut out = ModelState::new();
    for table in db.list_tables(name).map_err(|e| e.to_string())? {
        let schema = db.table_schema(name, &table).map_err(|e| e.to_string())?;
        let cols = schema.columns();
        if cols.first().map(|c| (c.name.as_str(), c.ty)) != Some(("id", ColumnType::Int)) {
            return Err(format!("table {table}: first column is not `id int`"));
        }
        let columns = cols
            .iter()
            .skip(1)
            .map(|c| (c.name.clone(), c.ty))
            .collect();
        let rows = db.select_all(name, &table).map_err(|e| e.to_string())?;
        let mut map = BTreeMap::new();
        for row in rows.rows {
            let Some(Value::Int(id)) = row.first() else {
                return Err(format!("table {table}: a row without an int id"));
            };
            if map.insert(*id, row.clone()).is_some() {
                return Err(format!("table {table}: duplicate id {id}"));
            }
        }
        out.insert(table, ModelTable { columns, rows: map });
    }
    Ok(out)
}

/// A short description of how two states differ (for violation reports).
pub fn diff(expected: &ModelState, found: &ModelState) -> String {
    let mut parts = Vec::new();
    for (name, t) in expected {
        match found.get(name) {
            None => parts.push(format!("table {name} missing")),
            Some(f) if f.columns != t.columns => {
                parts.push(format!("table {name}: columns differ"))
            }
            Some(f) => {
                for (id, row) in &t.rows {
                    match f.rows.get(id) {
                        None => parts.push(format!("{name}: row id={id} missing")),
                        Some(r) if r != row => {
                            parts.push(format!("{name}: row id={id} is {r:?}, expected {row:?}"))
                        }
                        _ => {}
                    }
                }
                for id in f.rows.keys() {
                    if !t.rows.contains_key(id) {
                        parts.push(format!("{name}: unexpected row id={id}"));
                    }
                }
            }
        }
    }
    for name in found.keys() {
        if !expected.contains_key(name) {
            parts.push(format!("unexpected table {name}"));
        }
    }
    parts.truncate(5);
    parts.join("; ")
}
