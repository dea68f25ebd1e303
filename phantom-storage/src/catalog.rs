//! The catalog: the tables of one database, and the physical mutations that change it.
//!
//! A [`Mutation`] is what the write-ahead log records: it carries row ids and full row images,
//! never a predicate, so applying it is deterministic and cheap. [`Catalog::apply`] either
//! applies a mutation entirely or returns an error and changes nothing (commits use it);
//! [`Catalog::apply_owned`] applies it in place and by value, for log replay, which discards
//! the catalog on any error. Both go through the same row operations.

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::name::validate_name;
use crate::schema::Schema;
use crate::table::{Row, RowId, Table};

/// One physical change to a catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Mutation {
    /// Create a table with a full schema.
    CreateTable {
        /// Table name.
        table: String,
        /// Its schema.
        schema: Schema,
    },
    /// Drop a table and all its rows.
    DropTable {
        /// Table name.
        table: String,
    },
    /// Insert rows under the given ids.
    Insert {
        /// Table name.
        table: String,
        /// Row id and full row image, per row. The images are shared ([`Row`]): applying the
        /// mutation puts the same allocation into the table that the log record is encoded
        /// from (on the wire a row is a plain sequence of values, as a `Vec` would be).
        #[serde(
            serialize_with = "row_images::serialize",
            deserialize_with = "row_images::deserialize"
        )]
        rows: Vec<(RowId, Row)>,
    },
    /// Replace rows with new full images.
    Update {
        /// Table name.
        table: String,
        /// Row id and new full row image, per row (shared, as for `Insert`).
        #[serde(
            serialize_with = "row_images::serialize",
            deserialize_with = "row_images::deserialize"
        )]
        rows: Vec<(RowId, Row)>,
    },
    /// Delete rows by id.
    Delete {
        /// Table name.
        table: String,
        /// The ids removed.
        row_ids: Vec<RowId>,
    },
}

/// Deserializing the `(row id, row)` pairs of an `Insert` or `Update` with one allocation per
/// row. serde's own `Arc<[Value]>` goes through a `Vec<Value>` that is then copied into the
/// `Arc` and freed: two allocations and a free per row, on the path every log replay takes.
/// Here the values are read into a scratch `Vec` kept per thread, and each row is moved from
/// it into an `Arc` of exactly its length. The wire format is serde's: a sequence
/// of 2-tuples `(u64, sequence of values)`.
mod row_images {
    use std::fmt;

    use serde::de::{DeserializeSeed, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::table::{Row, RowId};
    use crate::value::Value;

    /// Each pair as the tuple `(id, values)`: the bytes serde's `rc` feature writes for a
    /// `(u64, std::sync::Arc<[Value]>)`, which rows were until 2026-12-02 (the WAL golden test
    /// holds them to it).
    pub(super) fn serialize<S: Serializer>(
        rows: &[(RowId, Row)],
        s: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        s.collect_seq(rows.iter().map(|(id, row)| (id, &**row)))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> std::result::Result<Vec<(RowId, Row)>, D::Error> {
        d.deserialize_seq(Pairs)
    }

    thread_local! {
        /// The values of the row being read (empty between rows).
        static SCRATCH: std::cell::RefCell<Vec<Value>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    /// Caps what a length prefix from the input may make us reserve up front.
    const MAX_PREALLOC: usize = 4096;

    struct Pairs;

    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(RowId, Row)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of (row id, row) pairs")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_PREALLOC));
            // The scratch buffer is per thread, so a log of single-row records does not pay an
            // allocation for it per record. Taken out of its slot while in use (a nested call
            // cannot happen, but would only get a fresh buffer).
            let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
            let result = (|| {
                while let Some(pair) = seq.next_element_seed(Pair(&mut scratch))? {
                    out.push(pair);
                }
                Ok(())
            })();
            scratch.clear();
            SCRATCH.with(|s| *s.borrow_mut() = scratch);
            result.map(|()| out)
        }
    }

    /// One `(row id, row)` tuple, its values read through the shared scratch buffer.
    struct Pair<'a>(&'a mut Vec<Value>);

    impl<'de> DeserializeSeed<'de> for Pair<'_> {
        type Value = (RowId, Row);

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_tuple(2, self)
        }
    }

    impl<'de> Visitor<'de> for Pair<'_> {
        type Value = (RowId, Row);

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a (row id, row) pair")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            use serde::de::Error;
            let id: RowId = seq
                .next_element()?
                .ok_or_else(|| A::Error::invalid_length(0, &self))?;
            let row = seq
                .next_element_seed(Values(&mut *self.0))?
                .ok_or_else(|| A::Error::invalid_length(1, &self))?;
            Ok((id, row))
        }
    }

    /// A row's values: into the scratch buffer, then moved into one `Arc` of exactly that length
    /// (a drained `Vec` is an exact-size iterator, so `Arc::from_iter` allocates once).
    struct Values<'a>(&'a mut Vec<Value>);

    impl<'de> DeserializeSeed<'de> for Values<'_> {
        type Value = Row;

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Values<'_> {
        type Value = Row;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence of values")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            self.0.clear();
            while let Some(v) = seq.next_element::<Value>()? {
                self.0.push(v);
            }
            Ok(self.0.drain(..).collect::<Row>())
        }
    }
}

impl Mutation {
    /// The table this mutation touches.
    pub fn table(&self) -> &str {
        match self {
            Mutation::CreateTable { table, .. }
            | Mutation::DropTable { table }
            | Mutation::Insert { table, .. }
            | Mutation::Update { table, .. }
            | Mutation::Delete { table, .. } => table,
        }
    }
}

/// The tables of one database, ordered by name. Cloning is O(1) (persistent maps).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Catalog {
    /// Keyed by the table's own shared name ([`Table::shared_name`]).
    tables: OrdMap<std::sync::Arc<str>, Table>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// Creates an empty table. The name is validated first.
    pub fn create_table(&mut self, name: &str, schema: Schema) -> Result<()> {
        validate_name(name)?;
        if self.tables.contains_key(name) {
            return Err(Error::TableExists {
                name: name.to_owned(),
            });
        }
        let table = Table::new(name, schema);
        self.tables.insert(table.shared_name(), table);
        Ok(())
    }

    /// Adds a whole table (image loading). Fails if the name is taken or invalid.
    pub fn add_table(&mut self, table: Table) -> Result<()> {
        validate_name(table.name())?;
        if self.tables.contains_key(table.name()) {
            return Err(Error::TableExists {
                name: table.name().to_owned(),
            });
        }
        self.tables.insert(table.shared_name(), table);
        Ok(())
    }

    /// Drops a table and returns it.
    pub fn drop_table(&mut self, name: &str) -> Result<Table> {
        self.tables.remove(name).ok_or_else(|| Error::UnknownTable {
            name: name.to_owned(),
        })
    }

    /// A table by name.
    pub fn table(&self, name: &str) -> Result<&Table> {
        self.tables.get(name).ok_or_else(|| Error::UnknownTable {
            name: name.to_owned(),
        })
    }

    /// A table by name, for changing it.
    pub fn table_mut(&mut self, name: &str) -> Result<&mut Table> {
        self.tables
            .get_mut(name)
            .ok_or_else(|| Error::UnknownTable {
                name: name.to_owned(),
            })
    }

    /// Tables in name order (the deterministic order every format writes them in).
    pub fn tables(&self) -> impl Iterator<Item = &Table> + '_ {
        self.tables.values()
    }

    /// Table names in order.
    pub fn table_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tables.keys().map(|k| &**k)
    }

    /// Number of tables.
    pub fn len(&self) -> usize {
        self.tables.len()
    }

    /// `true` when there are no tables.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Total number of rows over all tables.
    pub fn row_count(&self) -> usize {
        self.tables.values().map(Table::len).sum()
    }

    /// Applies one mutation entirely, or returns an error and leaves the catalog unchanged.
    pub fn apply(&mut self, mutation: &Mutation) -> Result<()> {
        match mutation {
            Mutation::CreateTable { table, schema } => self.create_table(table, schema.clone()),
            Mutation::DropTable { table } => self.drop_table(table).map(drop),
            // One row (every single-row commit): changed in place, since `insert_row` leaves
            // the table as it was when it fails. Saves copying the table and its name twice
            // and a second walk of the table map, per commit.
            Mutation::Insert { table, rows } if rows.len() == 1 => {
                let t = self.table_mut(table)?;
                rows.iter()
                    .try_for_each(|(id, row)| t.insert_row(*id, Row::clone(row)))
            }
            Mutation::Insert { table, rows } => {
                let mut t = self.table(table)?.clone();
                for (id, row) in rows {
                    t.insert_row(*id, Row::clone(row))?;
                }
                self.tables.insert(t.shared_name(), t);
                Ok(())
            }
            Mutation::Update { table, rows } => {
                let mut t = self.table(table)?.clone();
                for (id, row) in rows {
                    t.update_row(*id, Row::clone(row))?;
                }
                self.tables.insert(t.shared_name(), t);
                Ok(())
            }
            Mutation::Delete { table, row_ids } => {
                let mut t = self.table(table)?.clone();
                for id in row_ids {
                    t.delete(*id)?;
                }
                self.tables.insert(t.shared_name(), t);
                Ok(())
            }
        }
    }

    /// Applies one mutation in place, taking it by value, so its rows move into the table
    /// instead of being copied and the table is changed where it is (no copy-on-write of a
    /// shared version). On error the catalog may be left **partly changed**: this is for
    /// callers that discard the catalog on any error, such as log replay, where a mutation that
    /// does not apply fails the whole recovery. Everyone else uses [`Catalog::apply`].
    pub fn apply_owned(&mut self, mut mutation: Mutation) -> Result<()> {
        self.apply_taking(&mut mutation)
    }

    /// [`Catalog::apply_owned`] through a reference: the rows (and row ids) are moved out of
    /// `mutation`, which keeps its table name and its emptied vectors, capacity included. A
    /// caller that decoded the mutation on another thread can hand those allocations back to
    /// be freed or reused there (log replay does: glibc frees a block fastest on the thread
    /// that allocated it). The same partial-change caveat applies.
    pub fn apply_taking(&mut self, mutation: &mut Mutation) -> Result<()> {
        match mutation {
            Mutation::CreateTable { table, schema } => self.create_table(table, schema.clone()),
            Mutation::DropTable { table } => self.drop_table(table).map(drop),
            Mutation::Insert { table, rows } => {
                let t = self.table_mut(table)?;
                for (id, row) in rows.drain(..) {
                    t.insert_row(id, row)?;
                }
                Ok(())
            }
            Mutation::Update { table, rows } => {
                let t = self.table_mut(table)?;
                for (id, row) in rows.drain(..) {
                    t.update_row(id, row)?;
                }
                Ok(())
            }
            Mutation::Delete { table, row_ids } => {
                let t = self.table_mut(table)?;
                for id in row_ids.drain(..) {
                    t.delete(id)?;
                }
                Ok(())
            }
        }
    }

    /// Applies mutations in order, all or nothing.
    pub fn apply_all<'a>(
        &mut self,
        mutations: impl IntoIterator<Item = &'a Mutation>,
    ) -> Result<()> {
        let mut next = self.clone();
        for m in mutations {
            next.apply(m)?;
        }
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;
    use crate::{Column, ColumnType};

    fn schema() -> Schema {
        Schema::new("t", vec![Column::new("id", ColumnType::Int).primary_key()]).expect("schema")
    }

    #[test]
    fn a_failing_batch_applies_nothing() {
        let mut c = Catalog::new();
        let batch = vec![
            Mutation::CreateTable {
                table: "t".into(),
                schema: schema(),
            },
            Mutation::Insert {
                table: "t".into(),
                rows: vec![(1, vec![Value::Int(1)].into())],
            },
            Mutation::Insert {
                table: "t".into(),
                rows: vec![(2, vec![Value::Int(1)].into())],
            },
        ];
        assert!(matches!(
            c.apply_all(&batch),
            Err(Error::DuplicateKey { .. })
        ));
        assert!(c.is_empty());
    }

    #[test]
    fn a_failing_single_row_insert_leaves_the_catalog_unchanged() {
        let mut c = Catalog::new();
        c.apply(&Mutation::CreateTable {
            table: "t".into(),
            schema: schema(),
        })
        .expect("create");
        let insert = |id: RowId, key: i64| Mutation::Insert {
            table: "t".into(),
            rows: vec![(id, vec![Value::Int(key)].into())],
        };
        c.apply(&insert(1, 10)).expect("first row");
        let before = c.clone();
        // The key clashes; then the row id does.
        assert!(matches!(
            c.apply(&insert(2, 10)),
            Err(Error::DuplicateKey { .. })
        ));
        assert_eq!(c, before);
        assert!(matches!(
            c.apply(&insert(1, 11)),
            Err(Error::RowIdInUse { .. })
        ));
        assert_eq!(c, before);
        // And the key freed by the undo is still free.
        c.apply(&insert(2, 11)).expect("a fresh key and id");
        assert_eq!(c.table("t").expect("t").len(), 2);
    }

    #[test]
    fn apply_owned_gives_the_same_catalog_as_apply() {
        let batch = vec![
            Mutation::CreateTable {
                table: "t".into(),
                schema: schema(),
            },
            Mutation::Insert {
                table: "t".into(),
                rows: vec![
                    (1, vec![Value::Int(1)].into()),
                    (2, vec![Value::Int(2)].into()),
                ],
            },
            Mutation::Update {
                table: "t".into(),
                rows: vec![(2, vec![Value::Int(5)].into())],
            },
            Mutation::Delete {
                table: "t".into(),
                row_ids: vec![1],
            },
        ];
        let mut a = Catalog::new();
        a.apply_all(&batch).expect("apply");
        let mut b = Catalog::new();
        for m in batch {
            b.apply_owned(m).expect("apply_owned");
        }
        assert!(a == b);
        assert!(matches!(
            b.apply_owned(Mutation::Delete {
                table: "t".into(),
                row_ids: vec![9]
            }),
            Err(Error::RowNotFound { .. })
        ));
    }

    #[test]
    fn table_names_are_validated() {
        let mut c = Catalog::new();
        assert!(matches!(
            c.create_table("../x", schema()),
            Err(Error::InvalidName { .. })
        ));
    }
}
