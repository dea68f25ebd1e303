//! Columns and schemas.
//!
//! Invariants enforced by [`Schema::new`]: at least one column; every column name is valid and
//! unique; at most one PRIMARY KEY; a PRIMARY KEY column is NOT NULL.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::name::validate_name;
use crate::types::ColumnType;
use crate::value::Value;

/// One column of a table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Column name (validated by [`Schema::new`]).
    pub name: String,
    /// Column type.
    pub ty: ColumnType,
    /// NULL is rejected.
    pub not_null: bool,
    /// Unique, NOT NULL, indexed.
    pub primary_key: bool,
}

impl Column {
    /// A nullable column without constraints.
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Column {
        Column {
            name: name.into(),
            ty,
            not_null: false,
            primary_key: false,
        }
    }

    /// This column, NOT NULL.
    pub fn not_null(mut self) -> Column {
        self.not_null = true;
        self
    }

    /// This column, as the PRIMARY KEY (implies NOT NULL).
    pub fn primary_key(mut self) -> Column {
        self.primary_key = true;
        self.not_null = true;
        self
    }
}

/// The ordered columns of a table (creation order is kept everywhere).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    columns: Vec<Column>,
}

impl Schema {
    /// Validates and builds a schema; `table` names the table in errors.
    ///
    /// ```
    /// use phantom_storage::{Column, ColumnType, Schema};
    /// let schema = Schema::new("users", vec![
    ///     Column::new("id", ColumnType::Int).primary_key(),
    ///     Column::new("name", ColumnType::String),
    /// ]).unwrap();
    /// assert_eq!(schema.primary_key(), Some(0));
    /// ```
    pub fn new(table: &str, mut columns: Vec<Column>) -> Result<Schema> {
        let invalid = |reason: String| Error::InvalidSchema {
            table: table.to_owned(),
            reason,
        };
        if columns.is_empty() {
            return Err(invalid("a table needs at least one column".into()));
        }
        let mut pk = None;
        for c in columns.iter_mut() {
            validate_name(&c.name)?;
            if c.primary_key {
                if let Some(first) = pk {
                    return Err(invalid(format!(
                        "two PRIMARY KEY columns ({first} and {})",
                        c.name
                    )));
                }
                pk = Some(c.name.clone());
                c.not_null = true;
            }
        }
        for (i, c) in columns.iter().enumerate() {
            if columns[..i].iter().any(|p| p.name == c.name) {
                return Err(invalid(format!("duplicate column {:?}", c.name)));
            }
        }
        Ok(Schema { columns })
    }

    /// The columns, in creation order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Always `false`: a schema has at least one column.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// Position of a column by name.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Position of the PRIMARY KEY column, if any.
    pub fn primary_key(&self) -> Option<usize> {
        self.columns.iter().position(|c| c.primary_key)
    }

    /// Checks a full row (one value per column, in order) against types and NOT NULL.
    pub fn check_row(&self, table: &str, values: &[Value]) -> Result<()> {
        if values.len() != self.columns.len() {
            return Err(Error::Arity {
                table: table.to_owned(),
                expected: self.columns.len(),
                found: values.len(),
            });
        }
        for (c, v) in self.columns.iter().zip(values) {
            if v.is_null() {
                if c.not_null {
                    return Err(Error::NullViolation {
                        table: table.to_owned(),
                        column: c.name.clone(),
                    });
                }
            } else if !v.fits(c.ty) {
                return Err(Error::TypeMismatch {
                    table: table.to_owned(),
                    column: c.name.clone(),
                    expected: c.ty,
                    found: v.describe(),
                });
            }
        }
        Ok(())
    }
}
