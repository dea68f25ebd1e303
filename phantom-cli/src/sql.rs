//! The SQL subset of `phantom sql` and `phantom shell`, mapped onto phantom-core calls.
//!
//! Statements are parsed with `sqlparser` (generic dialect) and converted into [`Op`]s, which
//! run on a [`Transaction`]. Anything outside the subset is refused before anything runs, with
//! an error naming the unsupported part. Outside `BEGIN … COMMIT` every statement is its own
//! atomic commit; between them, the statements are collected and run as one
//! `Database::transaction` at `COMMIT`: one log record, all or nothing.
//!
//! Identifiers are used as written (no case folding); names are validated by phantom-core.

use std::io::Write;

use anyhow::{Context as _, anyhow, bail};
use phantom_core::sqlparser::ast::helpers::stmt_create_table::CreateTableBuilder;
use phantom_core::sqlparser::ast::{
    AssignmentTarget, ColumnOption, CreateTable, Delete, Expr, FromTable, GroupByExpr, Insert,
    LimitClause, ObjectName, ObjectNamePart, ObjectType, OrderByKind, Query as SqlQuery,
    SelectFlavor, SelectItem, SetExpr, Statement, TableConstraint, TableFactor, TableObject,
    TableWithJoins, Value as SqlValue, WildcardAdditionalOptions,
};
use phantom_core::sqlparser::dialect::GenericDialect;
use phantom_core::sqlparser::parser::Parser;
use phantom_core::{
    Column, ColumnType, Database, Filter, Literal, Order, Query, Rows, Transaction,
};

use crate::output::{Format, write_rows};

/// How statements run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    /// `DELETE FROM t` without WHERE is allowed (`--all`).
    pub(crate) allow_delete_all: bool,
    /// Output format of SELECT results.
    pub(crate) format: Format,
}

/// One supported statement, resolved to the names and literals phantom-core takes.
#[derive(Debug)]
pub(crate) enum Op {
    /// `CREATE TABLE [IF NOT EXISTS] t (…)`.
    CreateTable {
        table: String,
        columns: Vec<Column>,
        if_not_exists: bool,
    },
    /// `DROP TABLE [IF EXISTS] t, …`.
    DropTable {
        tables: Vec<String>,
        if_exists: bool,
    },
    /// `INSERT INTO t [(cols)] VALUES (…), …`.
    Insert {
        table: String,
        columns: Option<Vec<String>>,
        rows: Vec<Vec<Literal>>,
    },
    /// `SELECT …`.
    Select { table: String, query: Query },
    /// `UPDATE t SET … [WHERE …]` (`None`: every row).
    Update {
        table: String,
        filter: Option<Filter>,
        set: Vec<(String, Literal)>,
    },
    /// `DELETE FROM t [WHERE …]` (`None`: every row, only with `--all`).
    Delete {
        table: String,
        filter: Option<Filter>,
    },
    /// `TRUNCATE [TABLE] t, …`.
    Truncate { tables: Vec<String> },
}

/// A statement: an operation or transaction control.
#[derive(Debug)]
pub(crate) enum Stmt {
    /// A data or schema operation.
    Op(Op),
    /// `BEGIN` / `START TRANSACTION`.
    Begin,
    /// `COMMIT` / `END`.
    Commit,
    /// `ROLLBACK`.
    Rollback,
}

/// What an operation produced.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Rows to print on stdout.
    Rows(Rows),
    /// A summary for stderr.
    Summary(String),
}

// ----- splitting input into statements -----

/// Splits `text` at the `;` that end statements (ignoring those in quotes and comments).
/// Returns the complete statements and the text after the last `;` (an unfinished statement,
/// or only blanks and comments).
pub(crate) fn split_statements(text: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\'' | b'"' | b'`' => {
                // Skip to the matching quote; a doubled quote is an escaped one and simply
                // closes and reopens.
                i += 1;
                while let Some(&c) = bytes.get(i) {
                    i += 1;
                    if c == b {
                        break;
                    }
                }
                continue;
            }
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while let Some(&c) = bytes.get(i) {
                    if c == b'\n' {
                        break;
                    }
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < bytes.len()
                    && !(bytes.get(i) == Some(&b'*') && bytes.get(i + 1) == Some(&b'/'))
                {
                    i += 1;
                }
                i += 2;
                continue;
            }
            b';' => {
                let stmt = text.get(start..i).unwrap_or_default();
                if !is_blank(stmt) {
                    out.push(stmt.trim().to_owned());
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let rest = text.get(start.min(text.len())..).unwrap_or_default();
    (
        out,
        if is_blank(rest) {
            String::new()
        } else {
            rest.to_owned()
        },
    )
}

/// `true` when `text` holds nothing but whitespace and comments.
pub(crate) fn is_blank(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if rest.is_empty() {
            return true;
        }
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.find('\n').map_or("", |n| &after[n..]).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after
                .find("*/")
                .map_or("", |n| &after[n + 2..])
                .trim_start();
        } else {
            return false;
        }
    }
}

// ----- conversion -----

fn unsupported(part: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("unsupported: {part}")
}

/// The leading keywords of a statement, e.g. `CREATE INDEX`, `ALTER TABLE`, `SHOW TABLES`.
fn statement_kind(stmt: &Statement) -> String {
    const OBJECT_WORDS: &[&str] = &[
        "TABLE",
        "TABLES",
        "INDEX",
        "UNIQUE",
        "VIEW",
        "MATERIALIZED",
        "SCHEMA",
        "DATABASE",
        "DATABASES",
        "FUNCTION",
        "PROCEDURE",
        "TRIGGER",
        "SEQUENCE",
        "TYPE",
        "ROLE",
        "USER",
        "EXTENSION",
        "VIRTUAL",
        "EXTERNAL",
        "TEMPORARY",
        "TEMP",
        "OR",
        "REPLACE",
        "COLUMNS",
        "DOMAIN",
        "POLICY",
    ];
    let text = stmt.to_string();
    let mut words = text.split_whitespace();
    let mut kind = vec![words.next().unwrap_or("?").to_ascii_uppercase()];
    for w in words.take(3) {
        let upper = w.to_ascii_uppercase();
        if !OBJECT_WORDS.contains(&upper.as_str()) {
            break;
        }
        kind.push(upper);
    }
    kind.join(" ")
}

/// A table name: one unqualified identifier.
fn table_name(name: &ObjectName) -> anyhow::Result<String> {
    match name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Ok(ident.value.clone()),
        _ => Err(unsupported(format_args!(
            "qualified or computed name `{name}` (use a plain table name)"
        ))),
    }
}

/// A column reference: one unqualified identifier.
fn column_ref(expr: &Expr, place: &str) -> anyhow::Result<String> {
    match expr {
        Expr::Identifier(ident) => Ok(ident.value.clone()),
        Expr::CompoundIdentifier(_) => Err(unsupported(format_args!(
            "qualified column `{expr}` in {place} (use the plain column name)"
        ))),
        other => Err(unsupported(format_args!(
            "expression `{other}` in {place} (only column names)"
        ))),
    }
}

fn value_literal(expr: &Expr, place: &str) -> anyhow::Result<Literal> {
    phantom_core::literal(expr).map_err(|_| {
        unsupported(format_args!(
            "`{expr}` in {place} (only literals: numbers, 'strings', TRUE, FALSE, NULL)"
        ))
    })
}

fn where_filter(selection: Option<&Expr>) -> anyhow::Result<Option<Filter>> {
    selection
        .map(|e| Filter::from_sql_expr(e).context("in WHERE"))
        .transpose()
}

/// The table of a single-table FROM / UPDATE target.
fn single_table(tables: &[TableWithJoins], place: &str) -> anyhow::Result<String> {
    let [t] = tables else {
        return Err(if tables.is_empty() {
            unsupported(format_args!("{place} without a table"))
        } else {
            unsupported(format_args!("several tables in {place} (one table only)"))
        });
    };
    if !t.joins.is_empty() {
        return Err(unsupported("JOIN"));
    }
    match &t.relation {
        TableFactor::Table {
            name,
            alias: None,
            args: None,
            ..
        } => table_name(name),
        TableFactor::Table { alias: Some(_), .. } => Err(unsupported("table alias")),
        TableFactor::Table { args: Some(_), .. } => Err(unsupported("table function")),
        TableFactor::Derived { .. } => Err(unsupported("subquery in FROM")),
        other => Err(unsupported(format_args!("`{other}` in {place}"))),
    }
}

/// Converts one parsed statement.
pub(crate) fn convert(stmt: &Statement, options: &Options) -> anyhow::Result<Stmt> {
    Ok(match stmt {
        Statement::StartTransaction {
            statements,
            exception,
            modes,
            ..
        } => {
            if !statements.is_empty() || exception.is_some() {
                return Err(unsupported("BEGIN … END block (use BEGIN; …; COMMIT;)"));
            }
            if !modes.is_empty() {
                return Err(unsupported("transaction modes"));
            }
            Stmt::Begin
        }
        Statement::Commit {
            chain: false,
            modifier: None,
            ..
        } => Stmt::Commit,
        Statement::Rollback {
            savepoint: Some(_), ..
        } => return Err(unsupported("ROLLBACK TO SAVEPOINT")),
        Statement::Rollback {
            chain: false,
            savepoint: None,
        } => Stmt::Rollback,
        Statement::CreateTable(ct) => Stmt::Op(create_table(ct)?),
        Statement::Drop {
            object_type: ObjectType::Table,
            if_exists,
            names,
            cascade,
            restrict,
            purge,
            temporary,
            table,
        } => {
            if *cascade || *restrict || *purge || *temporary || table.is_some() {
                return Err(unsupported(
                    "DROP TABLE options (CASCADE, RESTRICT, PURGE, TEMPORARY)",
                ));
            }
            Stmt::Op(Op::DropTable {
                tables: names
                    .iter()
                    .map(table_name)
                    .collect::<anyhow::Result<_>>()?,
                if_exists: *if_exists,
            })
        }
        Statement::Insert(insert) => Stmt::Op(insert_op(insert)?),
        Statement::Query(q) => Stmt::Op(select_op(q)?),
        Statement::Update {
            table,
            assignments,
            from,
            selection,
            returning,
            or,
            limit,
        } => {
            if from.is_some() {
                return Err(unsupported("UPDATE … FROM"));
            }
            if returning.is_some() {
                return Err(unsupported("RETURNING"));
            }
            if or.is_some() {
                return Err(unsupported("UPDATE OR …"));
            }
            if limit.is_some() {
                return Err(unsupported("LIMIT in UPDATE"));
            }
            let table = single_table(std::slice::from_ref(table), "UPDATE")?;
            let mut set = Vec::with_capacity(assignments.len());
            for a in assignments {
                let AssignmentTarget::ColumnName(name) = &a.target else {
                    return Err(unsupported("tuple assignment in SET"));
                };
                let column = table_name(name)
                    .map_err(|_| unsupported(format_args!("qualified column `{name}` in SET")))?;
                set.push((column, value_literal(&a.value, "SET")?));
            }
            Stmt::Op(Op::Update {
                table,
                filter: where_filter(selection.as_ref())?,
                set,
            })
        }
        Statement::Delete(delete) => Stmt::Op(delete_op(delete, options)?),
        Statement::Truncate {
            table_names,
            partitions,
            identity,
            cascade,
            on_cluster,
            ..
        } => {
            if partitions.is_some()
                || identity.is_some()
                || cascade.is_some()
                || on_cluster.is_some()
            {
                return Err(unsupported("TRUNCATE options"));
            }
            let mut tables = Vec::new();
            for t in table_names {
                if t.only {
                    return Err(unsupported("TRUNCATE ONLY"));
                }
                tables.push(table_name(&t.name)?);
            }
            Stmt::Op(Op::Truncate { tables })
        }
        other => bail!("unsupported statement: {}", statement_kind(other)),
    })
}

fn create_table(ct: &CreateTable) -> anyhow::Result<Op> {
    if ct.query.is_some() {
        return Err(unsupported("CREATE TABLE … AS SELECT"));
    }
    if ct.or_replace {
        return Err(unsupported("CREATE OR REPLACE TABLE"));
    }
    if ct.temporary {
        return Err(unsupported("TEMPORARY tables"));
    }
    if ct.like.is_some() || ct.clone.is_some() {
        return Err(unsupported("CREATE TABLE … LIKE/CLONE"));
    }
    // Anything else beyond columns and constraints shows as a difference from the same
    // statement rebuilt from just those parts.
    let plain = CreateTableBuilder::new(ct.name.clone())
        .if_not_exists(ct.if_not_exists)
        .columns(ct.columns.clone())
        .constraints(ct.constraints.clone())
        .build();
    if plain.to_string() != Statement::CreateTable(ct.clone()).to_string() {
        return Err(unsupported(format_args!(
            "CREATE TABLE clauses beyond the column list (`{}`)",
            Statement::CreateTable(ct.clone())
        )));
    }
    let table = table_name(&ct.name)?;
    let mut columns = Vec::with_capacity(ct.columns.len());
    for def in &ct.columns {
        let type_text = def.data_type.to_string();
        // `VARCHAR(255)` → `VARCHAR`: sizes and precisions are accepted and ignored.
        let base = type_text.split('(').next().unwrap_or_default().trim();
        let ty = ColumnType::parse(base).with_context(|| format!("column {}", def.name.value))?;
        let mut column = Column::new(def.name.value.clone(), ty);
        for opt in &def.options {
            if opt.name.is_some() {
                return Err(unsupported(format_args!(
                    "named constraint on column {}",
                    def.name.value
                )));
            }
            match &opt.option {
                ColumnOption::Null => {}
                ColumnOption::NotNull => column = column.not_null(),
                ColumnOption::Unique {
                    is_primary: true, ..
                } => column = column.primary_key(),
                other => {
                    return Err(unsupported(format_args!(
                        "column option `{other}` on {}",
                        def.name.value
                    )));
                }
            }
        }
        columns.push(column);
    }
    for constraint in &ct.constraints {
        match constraint {
            TableConstraint::PrimaryKey { columns: key, .. } => {
                let [key] = key.as_slice() else {
                    return Err(unsupported("composite PRIMARY KEY (one column only)"));
                };
                let name = column_ref(&key.column.expr, "PRIMARY KEY")?;
                let col = columns.iter_mut().find(|c| c.name == name).ok_or_else(|| {
                    anyhow!("PRIMARY KEY ({name}): no column {name:?} in table {table}")
                })?;
                *col = col.clone().primary_key();
            }
            other => return Err(unsupported(format_args!("table constraint `{other}`"))),
        }
    }
    Ok(Op::CreateTable {
        table,
        columns,
        if_not_exists: ct.if_not_exists,
    })
}

fn insert_op(insert: &Insert) -> anyhow::Result<Op> {
    let checks: [(bool, &str); 11] = [
        (insert.or.is_some(), "INSERT OR …"),
        (insert.ignore, "INSERT IGNORE"),
        (insert.overwrite, "INSERT OVERWRITE"),
        (insert.partitioned.is_some(), "PARTITION"),
        (!insert.after_columns.is_empty(), "columns after PARTITION"),
        (insert.on.is_some(), "ON CONFLICT / ON DUPLICATE KEY"),
        (insert.returning.is_some(), "RETURNING"),
        (insert.replace_into, "REPLACE INTO"),
        (insert.table_alias.is_some(), "table alias"),
        (!insert.assignments.is_empty(), "INSERT … SET"),
        (
            insert.settings.is_some()
                || insert.format_clause.is_some()
                || insert.priority.is_some()
                || insert.insert_alias.is_some(),
            "INSERT options",
        ),
    ];
    if let Some((_, what)) = checks.iter().find(|(bad, _)| *bad) {
        return Err(unsupported(what));
    }
    let TableObject::TableName(name) = &insert.table else {
        return Err(unsupported("INSERT INTO a table function"));
    };
    let table = table_name(name)?;
    let Some(source) = &insert.source else {
        return Err(unsupported("INSERT without VALUES"));
    };
    if source.with.is_some() || source.order_by.is_some() || source.limit_clause.is_some() {
        return Err(unsupported("WITH/ORDER BY/LIMIT in INSERT"));
    }
    let SetExpr::Values(values) = source.body.as_ref() else {
        return Err(unsupported("INSERT … SELECT (only VALUES)"));
    };
    let columns = if insert.columns.is_empty() {
        None
    } else {
        Some(
            insert
                .columns
                .iter()
                .map(|c| c.value.clone())
                .collect::<Vec<_>>(),
        )
    };
    let mut rows = Vec::with_capacity(values.rows.len());
    for (i, row) in values.rows.iter().enumerate() {
        if let Some(cols) = &columns
            && cols.len() != row.len()
        {
            bail!(
                "INSERT INTO {table}: row {} has {} values for {} columns",
                i + 1,
                row.len(),
                cols.len()
            );
        }
        rows.push(
            row.iter()
                .map(|e| value_literal(e, "VALUES"))
                .collect::<anyhow::Result<Vec<_>>>()?,
        );
    }
    Ok(Op::Insert {
        table,
        columns,
        rows,
    })
}

fn select_op(q: &SqlQuery) -> anyhow::Result<Op> {
    if q.with.is_some() {
        return Err(unsupported("WITH"));
    }
    if q.fetch.is_some() {
        return Err(unsupported("FETCH"));
    }
    if !q.locks.is_empty() || q.for_clause.is_some() {
        return Err(unsupported("FOR UPDATE / FOR clause"));
    }
    if q.settings.is_some() || q.format_clause.is_some() || !q.pipe_operators.is_empty() {
        return Err(unsupported("query options"));
    }
    let select = match q.body.as_ref() {
        SetExpr::Select(s) => s,
        SetExpr::SetOperation { op, .. } => return Err(unsupported(op)),
        SetExpr::Query(_) => return Err(unsupported("parenthesized subquery")),
        SetExpr::Values(_) => return Err(unsupported("VALUES as a query")),
        other => return Err(unsupported(format_args!("query `{other}`"))),
    };
    let extras: [(bool, &str); 9] = [
        (select.distinct.is_some(), "DISTINCT"),
        (select.top.is_some(), "TOP"),
        (select.into.is_some(), "SELECT INTO"),
        (!select.lateral_views.is_empty(), "LATERAL VIEW"),
        (select.prewhere.is_some(), "PREWHERE"),
        (select.having.is_some(), "HAVING"),
        (
            !select.named_window.is_empty() || select.qualify.is_some(),
            "WINDOW/QUALIFY",
        ),
        (
            !select.cluster_by.is_empty()
                || !select.distribute_by.is_empty()
                || !select.sort_by.is_empty(),
            "CLUSTER/DISTRIBUTE/SORT BY",
        ),
        (
            select.connect_by.is_some()
                || select.exclude.is_some()
                || select.value_table_mode.is_some(),
            "SELECT options",
        ),
    ];
    if let Some((_, what)) = extras.iter().find(|(bad, _)| *bad) {
        return Err(unsupported(what));
    }
    if !matches!(&select.group_by, GroupByExpr::Expressions(e, m) if e.is_empty() && m.is_empty()) {
        return Err(unsupported("GROUP BY"));
    }
    if select.flavor != SelectFlavor::Standard {
        return Err(unsupported("FROM-first query syntax"));
    }
    if select.from.is_empty() {
        return Err(unsupported("SELECT without FROM"));
    }
    let table = single_table(&select.from, "FROM")?;
    let mut query = Query::all();
    let mut columns = Vec::new();
    let mut star = false;
    for item in &select.projection {
        match item {
            SelectItem::Wildcard(opts) if *opts == WildcardAdditionalOptions::default() => {
                star = true
            }
            SelectItem::Wildcard(_) => {
                return Err(unsupported("wildcard options (EXCLUDE, EXCEPT, REPLACE …)"));
            }
            SelectItem::QualifiedWildcard(..) => {
                return Err(unsupported("qualified wildcard (use *)"));
            }
            SelectItem::ExprWithAlias { .. } => return Err(unsupported("column alias (AS)")),
            SelectItem::UnnamedExpr(e) => columns.push(column_ref(e, "the select list")?),
        }
    }
    if star && !columns.is_empty() {
        return Err(unsupported("* together with column names"));
    }
    if !star {
        query = query.columns(columns);
    }
    query.filter = where_filter(select.selection.as_ref())?;
    if let Some(order_by) = &q.order_by {
        if order_by.interpolate.is_some() {
            return Err(unsupported("INTERPOLATE"));
        }
        let OrderByKind::Expressions(keys) = &order_by.kind else {
            return Err(unsupported("ORDER BY ALL"));
        };
        for key in keys {
            if key.options.nulls_first.is_some() {
                return Err(unsupported("NULLS FIRST/LAST (NULL sorts first)"));
            }
            if key.with_fill.is_some() {
                return Err(unsupported("WITH FILL"));
            }
            let order = if key.options.asc == Some(false) {
                Order::Desc
            } else {
                Order::Asc
            };
            query = query.order_by(column_ref(&key.expr, "ORDER BY")?, order);
        }
    }
    match &q.limit_clause {
        None => {}
        Some(LimitClause::LimitOffset {
            limit,
            offset,
            limit_by,
        }) => {
            if offset.is_some() {
                return Err(unsupported("OFFSET"));
            }
            if !limit_by.is_empty() {
                return Err(unsupported("LIMIT BY"));
            }
            match limit {
                None => {}
                Some(Expr::Value(v)) if let SqlValue::Number(n, _) = &v.value => {
                    let n = n
                        .parse::<usize>()
                        .map_err(|_| anyhow!("LIMIT {n}: expected a non-negative whole number"))?;
                    query = query.limit(n);
                }
                Some(other) => {
                    return Err(unsupported(format_args!("LIMIT `{other}` (only a number)")));
                }
            }
        }
        Some(LimitClause::OffsetCommaLimit { .. }) => {
            return Err(unsupported("LIMIT offset, count"));
        }
    }
    Ok(Op::Select { table, query })
}

fn delete_op(delete: &Delete, options: &Options) -> anyhow::Result<Op> {
    if !delete.tables.is_empty() {
        return Err(unsupported("multi-table DELETE"));
    }
    if delete.using.is_some() {
        return Err(unsupported("DELETE … USING"));
    }
    if delete.returning.is_some() {
        return Err(unsupported("RETURNING"));
    }
    if !delete.order_by.is_empty() || delete.limit.is_some() {
        return Err(unsupported("ORDER BY/LIMIT in DELETE"));
    }
    let tables = match &delete.from {
        FromTable::WithFromKeyword(t) | FromTable::WithoutKeyword(t) => t,
    };
    let table = single_table(tables, "DELETE")?;
    let filter = where_filter(delete.selection.as_ref())?;
    if filter.is_none() && !options.allow_delete_all {
        bail!(
            "DELETE FROM {table} without WHERE would delete every row: add a WHERE clause, pass --all, or use TRUNCATE {table}"
        );
    }
    Ok(Op::Delete { table, filter })
}

/// Parses `text` (one or more statements) and converts each.
pub(crate) fn parse(text: &str, options: &Options) -> anyhow::Result<Vec<(String, Stmt)>> {
    let statements = {
        phantom_core::check_nesting(text).map_err(|e| anyhow!("syntax error: {e}"))?;
        Parser::parse_sql(&GenericDialect {}, text).map_err(|e| anyhow!("syntax error: {e}"))?
    };
    statements
        .iter()
        .map(|s| Ok((s.to_string(), convert(s, options)?)))
        .collect()
}

// ----- running -----

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// Adds the column (and row) to a value error of an INSERT or UPDATE.
fn locate_value_error<'l>(
    e: phantom_core::Error,
    place: &str,
    mut cells: impl Iterator<Item = (String, &'l Literal)>,
) -> anyhow::Error {
    if let phantom_core::Error::Storage(phantom_storage::Error::InvalidValue { text, .. }) = &e
        && let Some((at, _)) =
            cells.find(|(_, lit)| matches!(lit, Literal::Text(t) if t.as_str() == text.as_str()))
    {
        return anyhow::Error::new(e).context(format!("{place}, {at}"));
    }
    anyhow::Error::new(e).context(place.to_owned())
}

impl Op {
    /// Runs the operation on `tx`.
    pub(crate) fn run(&self, tx: &mut Transaction) -> anyhow::Result<Outcome> {
        Ok(match self {
            Op::CreateTable {
                table,
                columns,
                if_not_exists,
            } => match tx.create_table(table, columns.clone()) {
                Ok(()) => Outcome::Summary(format!("table {table} created")),
                Err(phantom_core::Error::Storage(phantom_storage::Error::TableExists {
                    ..
                })) if *if_not_exists => Outcome::Summary(format!("table {table} exists, skipped")),
                Err(e) => {
                    return Err(anyhow::Error::new(e).context(format!("CREATE TABLE {table}")));
                }
            },
            Op::DropTable { tables, if_exists } => {
                let mut dropped = 0;
                for t in tables {
                    match tx.drop_table(t) {
                        Ok(()) => dropped += 1,
                        Err(phantom_core::Error::Storage(
                            phantom_storage::Error::UnknownTable { .. },
                        )) if *if_exists => {}
                        Err(e) => {
                            return Err(anyhow::Error::new(e).context(format!("DROP TABLE {t}")));
                        }
                    }
                }
                Outcome::Summary(format!("{} dropped", plural(dropped, "table")))
            }
            Op::Insert {
                table,
                columns,
                rows,
            } => {
                let columns = match columns {
                    Some(c) => c.clone(),
                    None => tx.query(table, &Query::all().limit(0))?.columns,
                };
                let mut assignments = Vec::with_capacity(rows.len());
                for (i, row) in rows.iter().enumerate() {
                    if row.len() != columns.len() {
                        bail!(
                            "INSERT INTO {table}: row {} has {} values for {} columns",
                            i + 1,
                            row.len(),
                            columns.len()
                        );
                    }
                    assignments.push(
                        columns
                            .iter()
                            .cloned()
                            .zip(row.iter().cloned())
                            .collect::<Vec<_>>(),
                    );
                }
                let n = rows.len();
                if let Err(e) = tx.insert_many(table, assignments) {
                    let cells = rows.iter().enumerate().flat_map(|(r, row)| {
                        columns
                            .iter()
                            .zip(row)
                            .map(move |(c, lit)| (format!("row {}, column {c}", r + 1), lit))
                    });
                    return Err(locate_value_error(
                        e,
                        &format!("INSERT INTO {table}"),
                        cells,
                    ));
                }
                Outcome::Summary(format!("{} inserted", plural(n, "row")))
            }
            Op::Select { table, query } => Outcome::Rows(
                tx.query(table, query)
                    .with_context(|| format!("SELECT FROM {table}"))?,
            ),
            Op::Update { table, filter, set } => {
                let result = match filter {
                    Some(f) => tx.update(table, f, set.clone()),
                    None => tx.update_all(table, set.clone()),
                };
                match result {
                    Ok(n) => Outcome::Summary(format!("{} updated", plural(n, "row"))),
                    Err(e) => {
                        let cells = set.iter().map(|(c, lit)| (format!("column {c}"), lit));
                        return Err(locate_value_error(e, &format!("UPDATE {table}"), cells));
                    }
                }
            }
            Op::Delete { table, filter } => {
                let n = match filter {
                    Some(f) => tx.delete(table, f),
                    None => tx.delete_all(table),
                }
                .with_context(|| format!("DELETE FROM {table}"))?;
                Outcome::Summary(format!("{} deleted", plural(n, "row")))
            }
            Op::Truncate { tables } => {
                let mut n = 0;
                for t in tables {
                    n += tx.delete_all(t).with_context(|| format!("TRUNCATE {t}"))?;
                }
                Outcome::Summary(format!("{} deleted", plural(n, "row")))
            }
        })
    }
}

/// An open `BEGIN` block.
#[derive(Debug, Default)]
struct Block {
    ops: Vec<(String, Op)>,
    /// Set when a statement of the block was refused: COMMIT then applies nothing.
    failed: Option<String>,
}

/// A connection to one database: runs statements, keeps the open transaction block.
#[derive(Debug)]
pub(crate) struct Session<'a> {
    db: &'a Database,
    name: String,
    options: Options,
    block: Option<Block>,
}

impl<'a> Session<'a> {
    /// Opens database `name` (creating it if missing).
    pub(crate) fn open(
        db: &'a Database,
        name: &str,
        options: Options,
    ) -> anyhow::Result<Session<'a>> {
        if db.ensure_database(name)? {
            eprintln!("created database {name}");
        }
        Ok(Session {
            db,
            name: name.to_owned(),
            options,
            block: None,
        })
    }

    /// The database.
    pub(crate) fn database(&self) -> &Database {
        self.db
    }

    /// The database name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `true` inside `BEGIN … COMMIT`.
    pub(crate) fn in_transaction(&self) -> bool {
        self.block.is_some()
    }

    /// Discards an open block (end of input); returns how many statements were discarded.
    pub(crate) fn discard_block(&mut self) -> Option<usize> {
        self.block.take().map(|b| b.ops.len())
    }

    /// Runs the statements in `text`; SELECT results go to `out`, summaries to stderr.
    pub(crate) fn execute(&mut self, text: &str, out: &mut dyn Write) -> anyhow::Result<()> {
        let parsed = match parse(text, &self.options) {
            Ok(p) => p,
            Err(e) => {
                if let Some(block) = &mut self.block {
                    block.failed.get_or_insert_with(|| format!("{e:#}"));
                }
                return Err(e);
            }
        };
        for (sql, stmt) in parsed {
            match stmt {
                Stmt::Begin => {
                    if self.block.is_some() {
                        bail!("BEGIN inside a transaction (nested transactions are not supported)");
                    }
                    self.block = Some(Block::default());
                }
                Stmt::Rollback => {
                    let Some(block) = self.block.take() else {
                        bail!("ROLLBACK without BEGIN");
                    };
                    eprintln!(
                        "rolled back ({} discarded)",
                        plural(block.ops.len(), "statement")
                    );
                }
                Stmt::Commit => {
                    let Some(block) = self.block.take() else {
                        bail!("COMMIT without BEGIN");
                    };
                    if let Some(why) = block.failed {
                        bail!(
                            "transaction rolled back, nothing applied: a statement in it failed ({why})"
                        );
                    }
                    self.run_batch(block.ops, out)
                        .context("transaction rolled back, nothing applied")?;
                }
                Stmt::Op(op) => match &mut self.block {
                    Some(block) => block.ops.push((sql, op)),
                    None => self.run_batch(vec![(sql, op)], out)?,
                },
            }
        }
        Ok(())
    }

    /// Runs `ops` as one atomic commit, then prints their results.
    fn run_batch(&self, ops: Vec<(String, Op)>, out: &mut dyn Write) -> anyhow::Result<()> {
        let several = ops.len() > 1;
        tracing::debug!(database = %self.name, statements = ops.len(), "running one atomic batch");
        let mut failure: Option<anyhow::Error> = None;
        let result = self.db.transaction(&self.name, |tx| {
            let mut outcomes = Vec::with_capacity(ops.len());
            for (i, (sql, op)) in ops.iter().enumerate() {
                match op.run(tx) {
                    Ok(o) => outcomes.push(o),
                    Err(e) => {
                        failure = Some(if several {
                            e.context(format!("statement {} `{sql}`", i + 1))
                        } else {
                            e
                        });
                        // Any error aborts the transaction; the real one is in `failure`.
                        return Err(phantom_core::Error::EmptyFilter);
                    }
                }
            }
            Ok(outcomes)
        });
        let outcomes = match (result, failure) {
            (Ok(o), _) => o,
            (Err(_), Some(e)) => return Err(e),
            (Err(e), None) => return Err(e.into()),
        };
        for outcome in outcomes {
            match outcome {
                Outcome::Rows(rows) => write_rows(out, &rows, self.options.format)?,
                Outcome::Summary(s) => eprintln!("{s}"),
            }
        }
        out.flush()?;
        Ok(())
    }
}

/// `phantom sql`: checks that every statement of `script` parses and is supported (before
/// anything runs, the database included), then runs them in order and stops at the first
/// error. A `BEGIN` without `COMMIT` at the end is an error and applies nothing.
pub(crate) fn run_script(
    db: &Database,
    name: &str,
    script: &str,
    options: Options,
) -> anyhow::Result<()> {
    let (mut statements, rest) = split_statements(script);
    if !rest.is_empty() {
        statements.push(rest);
    }
    for text in &statements {
        parse(text, &options)?;
    }
    let mut session = Session::open(db, name, options)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for text in &statements {
        session.execute(text, &mut out)?;
    }
    if let Some(n) = session.discard_block() {
        bail!(
            "BEGIN without COMMIT: the transaction was rolled back ({} discarded)",
            plural(n, "statement")
        );
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: Options = Options {
        allow_delete_all: false,
        format: Format::Csv,
    };

    #[test]
    fn splitting_ignores_semicolons_in_quotes_and_comments() {
        let (stmts, rest) = split_statements(
            "INSERT INTO t VALUES ('a;b', \"c;\"); -- x;y\nSELECT 1 /* ; */; SELECT",
        );
        assert_eq!(
            stmts,
            vec![
                "INSERT INTO t VALUES ('a;b', \"c;\")".to_owned(),
                "-- x;y\nSELECT 1 /* ; */".to_owned()
            ]
        );
        assert_eq!(rest, " SELECT");
        let (stmts, rest) = split_statements("SELECT 'it''s;'; -- done\n");
        assert_eq!(stmts, vec!["SELECT 'it''s;'".to_owned()]);
        assert_eq!(rest, "");
    }

    #[test]
    fn create_table_maps_types_aliases_and_keys() {
        let p = parse("CREATE TABLE t (id INTEGER, name VARCHAR(255) NOT NULL, at DATETIME, PRIMARY KEY (id))", &OPTS).unwrap();
        let Some((_, Stmt::Op(Op::CreateTable { table, columns, .. }))) = p.into_iter().next()
        else {
            panic!()
        };
        assert_eq!(table, "t");
        assert_eq!(
            columns,
            vec![
                Column::new("id", ColumnType::Int).primary_key(),
                Column::new("name", ColumnType::String).not_null(),
                Column::new("at", ColumnType::Timestamp)
            ]
        );
    }

    fn refused(sql: &str) -> String {
        format!("{:#}", parse(sql, &OPTS).unwrap_err())
    }

    #[test]
    fn outside_the_subset_is_refused_by_name() {
        assert_eq!(
            refused("CREATE INDEX i ON t (a)"),
            "unsupported statement: CREATE INDEX"
        );
        assert_eq!(
            refused("SELECT * FROM a JOIN b ON a.x = b.x"),
            "unsupported: JOIN"
        );
        assert_eq!(
            refused("SELECT count(*) FROM t"),
            "unsupported: expression `count(*)` in the select list (only column names)"
        );
        assert_eq!(
            refused("SELECT * FROM t GROUP BY a"),
            "unsupported: GROUP BY"
        );
        assert_eq!(
            refused("SELECT * FROM t LIMIT 1 OFFSET 2"),
            "unsupported: OFFSET"
        );
        assert_eq!(
            refused("SELECT * FROM t UNION SELECT * FROM u"),
            "unsupported: UNION"
        );
        assert!(
            refused("CREATE TABLE t (a int DEFAULT 1)")
                .starts_with("unsupported: column option `DEFAULT 1`")
        );
        assert!(refused("DELETE FROM t").contains("without WHERE"));
        assert!(
            refused("SELECT * FROM t WHERE a LIKE 'x%'")
                .starts_with("in WHERE: unsupported in a filter")
        );
    }

    #[test]
    fn select_maps_projection_filter_order_and_limit() {
        let p = parse(
            "SELECT b, a FROM t WHERE a > 1 ORDER BY b DESC, a LIMIT 5",
            &OPTS,
        )
        .unwrap();
        let Some((_, Stmt::Op(Op::Select { table, query }))) = p.into_iter().next() else {
            panic!()
        };
        assert_eq!(table, "t");
        assert_eq!(query.columns, Some(vec!["b".to_owned(), "a".to_owned()]));
        assert_eq!(
            query.order_by,
            vec![("b".to_owned(), Order::Desc), ("a".to_owned(), Order::Asc)]
        );
        assert_eq!(query.limit, Some(5));
        assert_eq!(
            query.filter,
            Some(Filter::cmp("a", phantom_core::CmpOp::Gt, "1"))
        );
    }

    #[test]
    fn transaction_control_parses() {
        let p = parse("BEGIN; COMMIT; START TRANSACTION; ROLLBACK; END", &OPTS).unwrap();
        let kinds: Vec<&str> = p
            .iter()
            .map(|(_, s)| match s {
                Stmt::Begin => "begin",
                Stmt::Commit => "commit",
                Stmt::Rollback => "rollback",
                Stmt::Op(_) => "op",
            })
            .collect();
        assert_eq!(
            kinds,
            vec!["begin", "commit", "begin", "rollback", "commit"]
        );
    }
}
