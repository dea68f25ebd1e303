//! A table: a schema and its rows, keyed by stable row ids, with a primary-key index.
//!
//! Rows live in a persistent radix trie ([`crate::rowmap`]) and the primary key in a persistent
//! B+tree ([`crate::keyindex`]), both copy-on-write, so cloning a table is O(1) and a
//! snapshot can hold a consistent view while writers go on changing the live one. (Until
//! version 0.1 of this crate both were `imbl::OrdMap`s; loading 1M rows spent 78 % of its time
//! in their inserts — `docs/performance.md`.)
//!
//! Invariants, enforced by every mutating method (a failed call changes nothing):
//! - every row conforms to the schema (arity, types, NOT NULL);
//! - row ids are unique and `next_row_id` is greater than every id in the table;
//! - the primary-key index maps each key of a row to that row's id, and nothing else.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::keyindex::PrimaryIndex;
use crate::rowmap::RowMap;
use crate::schema::Schema;
use crate::value::Value;

/// Stable identifier of a row within its table; never reused while the table exists.
pub type RowId = u64;

/// The values of one row, one per column in schema order. Cheap to clone.
///
/// A [`triomphe::Arc`]: no weak count, so its header is 8 bytes, not 16 — the bench row (four
/// values, 96 bytes) fits a 112-byte heap chunk instead of a 128-byte one, 16 MB less for a
/// million rows (`docs/ARCHITECTURE.md`, "Decisions"). Build one with `Row::from(vec)` or
/// `vec.into()`, or collect an iterator of values.
pub type Row = triomphe::Arc<[Value]>;

/// A table of one database.
#[derive(Clone, Debug)]
pub struct Table {
    /// Shared with the catalog's key for the table: copying a table (copy on write, once per
    /// commit) copies no string.
    name: std::sync::Arc<str>,
    schema: Arc<Schema>,
    rows: RowMap,
    pk_index: PrimaryIndex,
    next_row_id: RowId,
}

impl Table {
    /// An empty table. The name is the caller's responsibility to validate (the catalog does).
    pub fn new(name: impl Into<String>, schema: Schema) -> Table {
        Table {
            name: std::sync::Arc::from(name.into()),
            schema: Arc::new(schema),
            rows: RowMap::default(),
            pk_index: PrimaryIndex::default(),
            next_row_id: 1,
        }
    }

    /// Table name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared (the catalog's key for this table).
    pub(crate) fn shared_name(&self) -> std::sync::Arc<str> {
        std::sync::Arc::clone(&self.name)
    }

    /// The schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// `true` when the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.len() == 0
    }

    /// The id the next inserted row will get.
    pub fn next_row_id(&self) -> RowId {
        self.next_row_id
    }

    /// Rows in row-id order (which is insertion order).
    pub fn rows(&self) -> impl ExactSizeIterator<Item = (RowId, &Row)> + '_ {
        self.rows.iter()
    }

    /// One row by id.
    pub fn get(&self, id: RowId) -> Option<&Row> {
        self.rows.get(id)
    }

    /// The id of the row whose primary key equals `key` (indexed; `None` without a primary key).
    pub fn lookup_primary_key(&self, key: &Value) -> Option<RowId> {
        self.schema.primary_key()?;
        self.pk_index.get(key)
    }

    fn duplicate_key(&self, pk: usize, key: &Value) -> Error {
        Error::DuplicateKey {
            table: self.name.to_string(),
            column: self.schema.columns()[pk].name.clone(),
            value: key.to_string(),
        }
    }

    /// Inserts a row under the next free row id and returns that id.
    pub fn insert(&mut self, values: Vec<Value>) -> Result<RowId> {
        let id = self.next_row_id;
        self.insert_with_id(id, values)?;
        Ok(id)
    }

    /// Inserts a row under a given id (log replay and image loading use this).
    pub fn insert_with_id(&mut self, id: RowId, values: Vec<Value>) -> Result<()> {
        self.insert_row(id, Row::from(values))
    }

    /// Inserts a shared row image under a given id (a mutation's rows go in without a copy).
    pub fn insert_row(&mut self, id: RowId, values: Row) -> Result<()> {
        self.schema.check_row(&self.name, &values)?;
        // One walk per structure on the hot path (image loading, replay): insert, and undo on
        // a clash, instead of a lookup followed by an insert.
        let pk = self.schema.primary_key();
        if let Some(pk) = pk
            && self.pk_index.insert(&values[pk], id).is_err()
        {
            return Err(self.duplicate_key(pk, &values[pk]));
        }
        if let Err(values) = self.rows.insert_new(id, values) {
            if let Some(pk) = pk {
                self.pk_index.remove(&values[pk]);
            }
            return Err(Error::RowIdInUse {
                table: self.name.to_string(),
                row_id: id,
            });
        }
        self.next_row_id = self.next_row_id.max(id.saturating_add(1));
        Ok(())
    }

    /// Replaces the row `id` with a new full image.
    pub fn update(&mut self, id: RowId, values: Vec<Value>) -> Result<()> {
        self.update_row(id, Row::from(values))
    }

    /// Replaces the row `id` with a new shared full image.
    pub fn update_row(&mut self, id: RowId, values: Row) -> Result<()> {
        self.schema.check_row(&self.name, &values)?;
        let Some(old) = self.rows.get(id) else {
            return Err(Error::RowNotFound {
                table: self.name.to_string(),
                row_id: id,
            });
        };
        if let Some(pk) = self.schema.primary_key()
            && old[pk] != values[pk]
        {
            let old_key = old[pk].clone();
            if self.pk_index.insert(&values[pk], id).is_err() {
                return Err(self.duplicate_key(pk, &values[pk]));
            }
            self.pk_index.remove(&old_key);
        }
        // Present: looked up above, and nothing since removed it.
        let _ = self.rows.replace(id, values);
        Ok(())
    }

    /// Removes the row `id` and returns it.
    pub fn delete(&mut self, id: RowId) -> Result<Row> {
        let Some(old) = self.rows.remove(id) else {
            return Err(Error::RowNotFound {
                table: self.name.to_string(),
                row_id: id,
            });
        };
        if let Some(pk) = self.schema.primary_key() {
            self.pk_index.remove(&old[pk]);
        }
        Ok(old)
    }

    /// Sets the next row id (image loading: ids of deleted rows are never reused). Values
    /// at or below an existing id are ignored.
    pub fn set_next_row_id(&mut self, next: RowId) {
        self.next_row_id = self.next_row_id.max(next);
    }
}

impl PartialEq for Table {
    /// Tables are equal when name, schema, rows (with their ids) and next row id are equal.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.schema == other.schema
            && self.next_row_id == other.next_row_id
            && self.rows == other.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Column, ColumnType};

    fn users() -> Table {
        let schema = Schema::new(
            "users",
            vec![
                Column::new("id", ColumnType::Int).primary_key(),
                Column::new("name", ColumnType::String),
            ],
        )
        .expect("schema");
        Table::new("users", schema)
    }

    #[test]
    fn rejected_rows_change_nothing() {
        let mut t = users();
        t.insert(vec![Value::Int(1), "a".into()]).expect("insert");
        let before = t.clone();
        assert!(matches!(
            t.insert(vec![Value::Int(1), "b".into()]),
            Err(Error::DuplicateKey { .. })
        ));
        assert!(matches!(
            t.insert(vec![Value::Null, "b".into()]),
            Err(Error::NullViolation { .. })
        ));
        assert!(matches!(
            t.insert(vec!["x".into(), "b".into()]),
            Err(Error::TypeMismatch { .. })
        ));
        assert!(matches!(
            t.insert(vec![Value::Int(2)]),
            Err(Error::Arity { .. })
        ));
        assert!(t == before);
    }

    #[test]
    fn a_clashing_row_id_leaves_rows_and_index_as_they_were() {
        let mut t = users();
        t.insert_with_id(1, vec![Value::Int(1), "a".into()])
            .expect("insert");
        let before = t.clone();
        assert!(matches!(
            t.insert_with_id(1, vec![Value::Int(2), "b".into()]),
            Err(Error::RowIdInUse { .. })
        ));
        assert!(t == before);
        assert_eq!(t.lookup_primary_key(&Value::Int(2)), None);
        assert_eq!(t.lookup_primary_key(&Value::Int(1)), Some(1));
    }

    #[test]
    fn primary_key_index_follows_updates_and_deletes() {
        let mut t = users();
        let id = t.insert(vec![Value::Int(1), "a".into()]).expect("insert");
        t.update(id, vec![Value::Int(5), "a".into()])
            .expect("update");
        assert_eq!(t.lookup_primary_key(&Value::Int(1)), None);
        assert_eq!(t.lookup_primary_key(&Value::Int(5)), Some(id));
        t.delete(id).expect("delete");
        assert_eq!(t.lookup_primary_key(&Value::Int(5)), None);
        // Row ids are never reused.
        assert_eq!(
            t.insert(vec![Value::Int(5), "b".into()]).expect("insert"),
            id + 1
        );
    }
}
