//! Rendering of query results: CSV (the default and the export format), an aligned table for
//! people, and JSON.
//!
//! The CSV encoding is RFC 4180 as the `csv` crate writes it with `QuoteStyle::Necessary`
//! (a field is quoted when it holds `,`, `"`, CR or LF; quotes are doubled; records end with
//! LF), with one addition that keeps NULL and the empty string apart: NULL is an empty
//! *unquoted* field and the empty string is always written quoted, as `""`. `csv` cannot quote
//! one field of a record on its own, so records are encoded here; [`crate::csvio`] reads them
//! back.

use std::fmt::Write as _;
use std::io::Write;

use clap::ValueEnum;
use phantom_core::{Rows, Value};

/// How SELECT results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// CSV with a header line (NULL: empty unquoted field; empty string: `""`).
    #[default]
    Csv,
    /// Aligned columns with a header, for people.
    Table,
    /// One JSON array of objects.
    Json,
}

/// Writes `rows` in `format`.
pub(crate) fn write_rows(out: &mut dyn Write, rows: &Rows, format: Format) -> std::io::Result<()> {
    match format {
        Format::Csv => write_csv(out, rows),
        Format::Table => write_table(out, &rows.columns, &rows.rows),
        Format::Json => write_json(out, rows),
    }
}

/// Appends one CSV field: `None` is NULL (nothing), `Some("")` is `""`.
pub(crate) fn push_csv_field(line: &mut String, text: Option<&str>) {
    match text {
        None => {}
        Some("") => line.push_str("\"\""),
        Some(t) if t.contains([',', '"', '\r', '\n']) => {
            line.push('"');
            for c in t.chars() {
                if c == '"' {
                    line.push('"');
                }
                line.push(c);
            }
            line.push('"');
        }
        Some(t) => line.push_str(t),
    }
}

/// One CSV record, terminated by LF.
pub(crate) fn csv_record<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> String {
    let mut line = String::new();
    for (i, f) in fields.into_iter().enumerate() {
        if i > 0 {
            line.push(',');
        }
        push_csv_field(&mut line, f);
    }
    line.push('\n');
    line
}

/// The header line and one line per row.
pub(crate) fn write_csv(out: &mut dyn Write, rows: &Rows) -> std::io::Result<()> {
    out.write_all(csv_record(rows.columns.iter().map(|c| Some(c.as_str()))).as_bytes())?;
    for row in &rows.rows {
        let texts: Vec<Option<String>> = row.iter().map(Value::to_text).collect();
        out.write_all(csv_record(texts.iter().map(Option::as_deref)).as_bytes())?;
    }
    Ok(())
}

/// A value as shown in the table view: NULL as `NULL`, control characters escaped.
fn display_cell(v: &Value) -> String {
    match v.to_text() {
        None => "NULL".to_owned(),
        Some(t) => t
            .escape_debug()
            .to_string()
            .replace("\\\"", "\"")
            .replace("\\'", "'"),
    }
}

/// Aligned columns: header, a rule, the rows, then `(N rows)`.
pub(crate) fn write_table(
    out: &mut dyn Write,
    columns: &[String],
    rows: &[Vec<Value>],
) -> std::io::Result<()> {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(display_cell).collect())
        .collect();
    let texts: Vec<Vec<String>> = cells;
    write_text_table(out, columns, &texts)?;
    let n = rows.len();
    writeln!(out, "({n} row{})", if n == 1 { "" } else { "s" })
}

/// Aligned columns of ready-made text cells (no footer).
pub(crate) fn write_text_table(
    out: &mut dyn Write,
    columns: &[String],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            let _ = write!(s, "{cell:<w$}");
        }
        s.trim_end().to_owned()
    };
    writeln!(out, "{}", line(&mut columns.iter().map(String::as_str)))?;
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    writeln!(out, "{}", rule.join("-+-"))?;
    for row in rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

/// A value as JSON: NULL → null, int and finite float → number, NaN/±inf → string, bool →
/// bool, everything else → its text form as a string.
pub(crate) fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or_else(
            || serde_json::Value::String(v.to_text().unwrap_or_default()),
            serde_json::Value::Number,
        ),
        Value::Bool(b) => serde_json::Value::Bool(*b),
        other => serde_json::Value::String(other.to_text().unwrap_or_default()),
    }
}

/// One JSON array of objects, keys in column order, on one line.
pub(crate) fn write_json(out: &mut dyn Write, rows: &Rows) -> std::io::Result<()> {
    // Written by hand so keys keep the column order (serde_json's map would sort them).
    let mut s = String::from("[");
    for (i, row) in rows.rows.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push('{');
        for (j, (col, v)) in rows.columns.iter().zip(row).enumerate() {
            if j > 0 {
                s.push(',');
            }
            s.push_str(&serde_json::Value::String(col.clone()).to_string());
            s.push(':');
            s.push_str(&json_value(v).to_string());
        }
        s.push('}');
    }
    s.push_str("]\n");
    out.write_all(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: Vec<Vec<Value>>) -> Rows {
        Rows {
            columns: vec!["a".into(), "b".into()],
            ids: (1..=values.len() as u64).collect(),
            rows: values,
        }
    }

    #[test]
    fn csv_keeps_null_and_empty_string_apart_and_quotes_what_needs_it() {
        let r = rows(vec![
            vec![Value::Null, Value::String("".into())],
            vec![Value::String("x, \"y\"\nz".into()), Value::Int(-3)],
        ]);
        let mut out = Vec::new();
        write_csv(&mut out, &r).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a,b\n,\"\"\n\"x, \"\"y\"\"\nz\",-3\n"
        );
    }

    #[test]
    fn json_keeps_column_order_and_types() {
        let r = rows(vec![
            vec![Value::Float(f64::NAN), Value::Bool(true)],
            vec![Value::Float(1.5), Value::Null],
        ]);
        let mut out = Vec::new();
        write_json(&mut out, &r).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[{\"a\":\"NaN\",\"b\":true},{\"a\":1.5,\"b\":null}]\n"
        );
    }

    #[test]
    fn table_aligns_columns_and_counts_rows() {
        let r = rows(vec![
            vec![Value::Int(10), Value::String("x\ny".into())],
            vec![Value::Null, Value::String("é".into())],
        ]);
        let mut out = Vec::new();
        write_table(&mut out, &r.columns, &r.rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a    | b\n-----+-----\n10   | x\\ny\nNULL | é\n(2 rows)\n"
        );
    }
}
