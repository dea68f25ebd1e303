//! Transactions: a working copy of one database's catalog plus the physical mutations that
//! produced it. Every write of the [`Database`](crate::Database) API is a transaction of one
//! operation; [`Database::transaction`](crate::Database::transaction) groups several into one
//! atomic log record.
//!
//! Invariant: each operation builds a [`Mutation`] and applies it to the working catalog with
//! [`Catalog::apply`] — the mutation log replay applies later (with the same row operations,
//! through `Catalog::apply_owned`) — so what recovery rebuilds is exactly what the transaction
//! saw. A failed operation leaves the working copy unchanged.

use std::cmp::Ordering;

use phantom_storage::{Catalog, Column, Mutation, Row, RowId, Schema, Table, Value};

use crate::error::{Error, Result};
use crate::filter::{BoundFilter, Filter, Literal, coerce};

/// Checks `row` against `columns` (as [`coerce`] does) and widens ints in float columns, in
/// place. A row nobody else holds (one just made from a `Vec`) changes where it is; a row the
/// caller still holds is copied first, so the caller's row never changes.
fn widen_in_place(table: &str, columns: &[Column], row: &mut Row) -> Result<()> {
    if Row::get_mut(row).is_none() {
        *row = row.iter().cloned().collect();
    }
    if let Some(values) = Row::get_mut(row) {
        for (v, column) in values.iter_mut().zip(columns) {
            coerce(table, column, v)?;
        }
    }
    Ok(())
}

/// Column/value pairs of a row to insert or of an update's `SET` list.
///
/// Values are [`Literal`]s: typed values must fit the column (an int fits a float column);
/// text (`&str`, `String`) is parsed by the column's type. Columns not named are NULL on insert.
pub type Assignments = Vec<(String, Literal)>;

/// Builds [`Assignments`] from any iterator of `(name, value)` pairs.
pub fn assignments<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Assignments
where
    K: Into<String>,
    V: Into<Literal>,
{
    pairs
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// Sort direction for [`Query::order_by`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Smallest first (NULL first).
    Asc,
    /// Largest first.
    Desc,
}

/// A read: which rows (filter), which columns, in which order, how many.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Query {
    /// Rows to return; `None` returns every row (a read of everything is harmless).
    pub filter: Option<Filter>,
    /// Columns to return, in this order; `None` returns all in schema order.
    pub columns: Option<Vec<String>>,
    /// Sort keys; rows otherwise come in row-id (insertion) order.
    pub order_by: Vec<(String, Order)>,
    /// At most this many rows.
    pub limit: Option<usize>,
}

impl Query {
    /// Every row, every column.
    pub fn all() -> Query {
        Query::default()
    }

    /// Rows matching `filter`.
    pub fn filter(filter: Filter) -> Query {
        Query {
            filter: Some(filter),
            ..Query::default()
        }
    }

    /// Only these columns.
    pub fn columns<S: Into<String>>(mut self, columns: impl IntoIterator<Item = S>) -> Query {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Adds a sort key.
    pub fn order_by(mut self, column: impl Into<String>, order: Order) -> Query {
        self.order_by.push((column.into(), order));
        self
    }

    /// At most `n` rows.
    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self
    }
}

/// The result of a read.
#[derive(Clone, Debug, PartialEq)]
pub struct Rows {
    /// Column names, in output order.
    pub columns: Vec<String>,
    /// The row id of each returned row.
    pub ids: Vec<RowId>,
    /// The values, one `Vec` per row, in `columns` order.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// `true` when no row matched.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The value of `column` in row `i`.
    pub fn get(&self, i: usize, column: &str) -> Option<&Value> {
        let c = self.columns.iter().position(|n| n == column)?;
        self.rows.get(i)?.get(c)
    }
}

/// A set of changes to one database that commits as one log record: all or nothing.
#[derive(Debug)]
pub struct Transaction {
    pub(crate) catalog: Catalog,
    pub(crate) mutations: Vec<Mutation>,
}

impl Transaction {
    pub(crate) fn new(catalog: Catalog) -> Transaction {
        Transaction {
            catalog,
            mutations: Vec::new(),
        }
    }

    fn apply(&mut self, m: Mutation) -> Result<()> {
        self.catalog.apply(&m)?;
        self.mutations.push(m);
        Ok(())
    }

    /// Creates a table; columns keep their order.
    pub fn create_table(&mut self, table: &str, columns: Vec<Column>) -> Result<()> {
        let schema = Schema::new(table, columns)?;
        self.apply(Mutation::CreateTable {
            table: table.to_owned(),
            schema,
        })
    }

    /// Drops a table.
    pub fn drop_table(&mut self, table: &str) -> Result<()> {
        self.catalog.table(table)?;
        self.apply(Mutation::DropTable {
            table: table.to_owned(),
        })
    }

    /// Inserts one row of `(column, value)` pairs (missing columns are NULL); returns its id.
    pub fn insert<K: Into<String>, V: Into<Literal>>(
        &mut self,
        table: &str,
        row: impl IntoIterator<Item = (K, V)>,
    ) -> Result<RowId> {
        Ok(self
            .insert_rows(table, vec![assignments(row)])?
            .first()
            .copied()
            .unwrap_or_default())
    }

    /// Inserts rows, all or none; returns their ids.
    pub fn insert_many<K: Into<String>, V: Into<Literal>, R: IntoIterator<Item = (K, V)>>(
        &mut self,
        table: &str,
        rows: impl IntoIterator<Item = R>,
    ) -> Result<Vec<RowId>> {
        self.insert_rows(table, rows.into_iter().map(assignments).collect())
    }

    /// Inserts rows of values in schema order, all or none; returns their ids. See
    /// [`Database::insert_values`](crate::Database::insert_values).
    pub fn insert_values<R: Into<Row>>(
        &mut self,
        table: &str,
        rows: impl IntoIterator<Item = R>,
    ) -> Result<Vec<RowId>> {
        let t = self.catalog.table(table)?;
        let columns = t.schema().columns();
        let images = rows
            .into_iter()
            .map(|row| {
                let mut row: Row = row.into();
                // A row of the wrong length is refused by the table's own check when applied.
                if row.len() == columns.len() {
                    widen_in_place(table, columns, &mut row)?;
                }
                Ok(row)
            })
            .collect::<Result<Vec<Row>>>()?;
        self.insert_images(table, images)
    }

    fn insert_rows(&mut self, table: &str, rows: Vec<Assignments>) -> Result<Vec<RowId>> {
        let t = self.catalog.table(table)?;
        let mut images = Vec::with_capacity(rows.len());
        for row in rows {
            let mut values = vec![Value::Null; t.schema().len()];
            for (name, lit) in row {
                let (pos, column) = column(t, &name)?;
                values[pos] = lit.bind(table, column)?;
            }
            images.push(Row::from(values));
        }
        self.insert_images(table, images)
    }

    /// Logs and applies full row images under the table's next row ids.
    fn insert_images(&mut self, table: &str, images: Vec<Row>) -> Result<Vec<RowId>> {
        let first = self.catalog.table(table)?.next_row_id();
        let ids: Vec<RowId> = (0..images.len() as RowId).map(|i| first + i).collect();
        self.apply(Mutation::Insert {
            table: table.to_owned(),
            rows: ids.iter().copied().zip(images).collect(),
        })?;
        Ok(ids)
    }

    /// Sets columns of the rows matching `filter`; returns how many rows changed.
    pub fn update<K: Into<String>, V: Into<Literal>>(
        &mut self,
        table: &str,
        filter: &Filter,
        set: impl IntoIterator<Item = (K, V)>,
    ) -> Result<usize> {
        let set = assignments(set);
        let t = self.catalog.table(table)?;
        let bound = filter.bind(table, t.schema())?;
        let ids = matching(t, Some(&bound));
        self.update_ids(table, ids, set)
    }

    /// Sets columns of every row of the table (the explicit form of an unfiltered update).
    pub fn update_all<K: Into<String>, V: Into<Literal>>(
        &mut self,
        table: &str,
        set: impl IntoIterator<Item = (K, V)>,
    ) -> Result<usize> {
        let set = assignments(set);
        let ids = matching(self.catalog.table(table)?, None);
        self.update_ids(table, ids, set)
    }

    fn update_ids(&mut self, table: &str, ids: Vec<RowId>, set: Assignments) -> Result<usize> {
        let t = self.catalog.table(table)?;
        let mut bound = Vec::with_capacity(set.len());
        for (name, lit) in set {
            let (pos, column) = column(t, &name)?;
            bound.push((pos, lit.bind(table, column)?));
        }
        if ids.is_empty() {
            return Ok(0);
        }
        let mut rows = Vec::with_capacity(ids.len());
        for id in &ids {
            let Some(old) = t.get(*id) else { continue };
            let mut values = old.to_vec();
            for (pos, v) in &bound {
                values[*pos] = v.clone();
            }
            rows.push((*id, Row::from(values)));
        }
        let n = rows.len();
        self.apply(Mutation::Update {
            table: table.to_owned(),
            rows,
        })?;
        Ok(n)
    }

    /// Deletes the rows matching `filter`; returns how many.
    pub fn delete(&mut self, table: &str, filter: &Filter) -> Result<usize> {
        let t = self.catalog.table(table)?;
        let bound = filter.bind(table, t.schema())?;
        let ids = matching(t, Some(&bound));
        self.delete_ids(table, ids)
    }

    /// Deletes every row of the table (the explicit form: an empty filter never means "all").
    pub fn delete_all(&mut self, table: &str) -> Result<usize> {
        let ids = matching(self.catalog.table(table)?, None);
        self.delete_ids(table, ids)
    }

    fn delete_ids(&mut self, table: &str, row_ids: Vec<RowId>) -> Result<usize> {
        let n = row_ids.len();
        if n > 0 {
            self.apply(Mutation::Delete {
                table: table.to_owned(),
                row_ids,
            })?;
        }
        Ok(n)
    }

    /// Reads from the transaction's working copy (sees its own writes).
    pub fn query(&self, table: &str, query: &Query) -> Result<Rows> {
        run_query(&self.catalog, table, query)
    }
}

fn column<'t>(t: &'t Table, name: &str) -> Result<(usize, &'t Column)> {
    let pos = t.schema().position(name).ok_or_else(|| {
        Error::from(phantom_storage::Error::UnknownColumn {
            table: t.name().to_owned(),
            column: name.to_owned(),
        })
    })?;
    Ok((pos, &t.schema().columns()[pos]))
}

/// Ids of the rows matching `filter` (all rows for `None`), in row-id order.
pub(crate) fn matching(t: &Table, filter: Option<&BoundFilter>) -> Vec<RowId> {
    matching_rows(t, filter)
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

/// The rows matching `filter` (all rows for `None`) with their ids, in row-id order. Uses the
/// primary-key index when the filter pins the key.
fn matching_rows<'t>(t: &'t Table, filter: Option<&BoundFilter>) -> Vec<(RowId, &'t Row)> {
    let Some(f) = filter else {
        return t.rows().collect();
    };
    if let Some(pk) = t.schema().primary_key()
        && let Some(key) = f.required_eq(pk)
    {
        return t
            .lookup_primary_key(key)
            .and_then(|id| t.get(id).map(|row| (id, row)))
            .filter(|(_, row)| f.matches(row))
            .into_iter()
            .collect();
    }
    t.rows().filter(|(_, row)| f.matches(row)).collect()
}

/// Runs a read against a catalog.
pub(crate) fn run_query(catalog: &Catalog, table: &str, query: &Query) -> Result<Rows> {
    let t = catalog.table(table)?;
    let bound = query
        .filter
        .as_ref()
        .map(|f| f.bind(table, t.schema()))
        .transpose()?;
    let projection: Vec<usize> = match &query.columns {
        None => (0..t.schema().len()).collect(),
        Some(cols) => cols
            .iter()
            .map(|c| column(t, c).map(|(i, _)| i))
            .collect::<Result<_>>()?,
    };
    let keys: Vec<(usize, Order)> = query
        .order_by
        .iter()
        .map(|(c, o)| column(t, c).map(|(i, _)| (i, *o)))
        .collect::<Result<_>>()?;
    let mut found = matching_rows(t, bound.as_ref());
    if !keys.is_empty() {
        // Stable sort: ties keep row-id order.
        found.sort_by(|(_, ra), (_, rb)| {
            for (i, o) in &keys {
                let ord = ra[*i].cmp(&rb[*i]);
                let ord = if *o == Order::Desc {
                    ord.reverse()
                } else {
                    ord
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
            Ordering::Equal
        });
    }
    if let Some(n) = query.limit {
        found.truncate(n);
    }
    let columns = projection
        .iter()
        .map(|i| t.schema().columns()[*i].name.clone())
        .collect();
    let ids = found.iter().map(|(id, _)| *id).collect();
    let rows = found
        .iter()
        .map(|(_, row)| projection.iter().map(|i| row[*i].clone()).collect())
        .collect();
    Ok(Rows { columns, ids, rows })
}
