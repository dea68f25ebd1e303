//! The spec's transaction-log text format, made parseable:
//! `[YYYY-MM-DD HH:MM:SS UTC] OPERATION {key: value, key: value}`.
//!
//! The original C++ wrote these lines and never read them back, and could not have: a value
//! holding `, ` or `}` was ambiguous. Here the operation, keys and values are escaped with a
//! backslash — `\\` `\,` `\:` `\{` `\}` and `\n` `\r` for line breaks — so [`parse_audit_line`]
//! gives back exactly what [`AuditLine`]'s `Display` wrote, for any strings.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use phantom_storage::{Mutation, Value};

use crate::entry::{LogEntry, Record};
use crate::error::{Error, Result};

/// Timestamp format inside the brackets (the ` UTC` suffix follows it).
const TIME_FMT: &str = "%Y-%m-%d %H:%M:%S";
/// Length of `YYYY-MM-DD HH:MM:SS UTC`.
const STAMP_LEN: usize = 23;

/// One line of the audit text format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditLine {
    /// When, in whole seconds (UTC).
    pub timestamp: DateTime<Utc>,
    /// Operation name (`INSERT`, `CREATE_TABLE`, … or a custom one).
    pub operation: String,
    /// Key/value pairs, in order (keys may repeat).
    pub fields: Vec<(String, String)>,
}

impl AuditLine {
    /// The lines that describe a record: one per mutation of a batch (one per row for INSERT and
    /// UPDATE), one for any other entry. An empty batch gives `BATCH {mutations: 0}`.
    pub fn from_record(record: &Record) -> Vec<AuditLine> {
        let timestamp = record
            .timestamp
            .with_nanosecond(0)
            .unwrap_or(record.timestamp);
        let line = |operation: &str, fields: Vec<(String, String)>| AuditLine {
            timestamp,
            operation: operation.to_owned(),
            fields,
        };
        match &record.entry {
            LogEntry::Batch(mutations) if mutations.is_empty() => {
                vec![line("BATCH", vec![("mutations".into(), "0".into())])]
            }
            LogEntry::Batch(mutations) => {
                let mut out = Vec::new();
                for m in mutations {
                    mutation_lines(m, &mut |op, fields| out.push(line(op, fields)));
                }
                out
            }
            LogEntry::Custom { operation, fields } => vec![line(operation, fields.clone())],
            LogEntry::CreateDatabase => vec![line("CREATE_DATABASE", Vec::new())],
            LogEntry::DropDatabase => vec![line("DROP_DATABASE", Vec::new())],
        }
    }
}

/// Key/value pairs of one line.
type Fields = Vec<(String, String)>;

fn mutation_lines(m: &Mutation, emit: &mut dyn FnMut(&str, Fields)) {
    let table = |t: &str| ("table".to_owned(), t.to_owned());
    match m {
        Mutation::CreateTable { table: t, schema } => {
            let mut fields = vec![table(t)];
            for c in schema.columns() {
                let mut ty = c.ty.to_string();
                if c.primary_key {
                    ty.push_str(" PRIMARY KEY");
                } else if c.not_null {
                    ty.push_str(" NOT NULL");
                }
                fields.push((c.name.clone(), ty));
            }
            emit("CREATE_TABLE", fields);
        }
        Mutation::DropTable { table: t } => emit("DROP_TABLE", vec![table(t)]),
        Mutation::Insert { table: t, rows } | Mutation::Update { table: t, rows } => {
            let op = if matches!(m, Mutation::Insert { .. }) {
                "INSERT"
            } else {
                "UPDATE"
            };
            for (id, values) in rows {
                let mut fields = vec![table(t), ("row_id".to_owned(), id.to_string())];
                fields.extend(
                    values
                        .iter()
                        .enumerate()
                        .map(|(i, v): (usize, &Value)| (format!("col{i}"), v.to_string())),
                );
                emit(op, fields);
            }
        }
        Mutation::Delete { table: t, row_ids } => {
            let ids: Vec<String> = row_ids.iter().map(u64::to_string).collect();
            emit(
                "DELETE",
                vec![table(t), ("row_ids".to_owned(), ids.join(" "))],
            );
        }
    }
}

/// Writes `s` with the audit escapes.
fn escape_into(out: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    for c in s.chars() {
        match c {
            '\\' => out.write_str("\\\\")?,
            ',' => out.write_str("\\,")?,
            ':' => out.write_str("\\:")?,
            '{' => out.write_str("\\{")?,
            '}' => out.write_str("\\}")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            c => fmt::Write::write_char(out, c)?,
        }
    }
    Ok(())
}

impl fmt::Display for AuditLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} UTC] ", self.timestamp.format(TIME_FMT))?;
        escape_into(f, &self.operation)?;
        f.write_str(" {")?;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            escape_into(f, k)?;
            f.write_str(": ")?;
            escape_into(f, v)?;
        }
        f.write_str("}")
    }
}

/// Parses one audit line (a trailing `\n` or `\r\n` is allowed). Errors name the column.
///
/// ```
/// let line = phantom_wal::parse_audit_line(
///     r"[2023-12-01 12:00:00 UTC] MAINTENANCE {user: admin, note: a\, b\: c}",
/// )?;
/// assert_eq!(line.operation, "MAINTENANCE");
/// assert_eq!(line.fields[1], ("note".to_owned(), "a, b: c".to_owned()));
/// # Ok::<(), phantom_wal::Error>(())
/// ```
pub fn parse_audit_line(line: &str) -> Result<AuditLine> {
    let line = line
        .strip_suffix("\r\n")
        .or_else(|| line.strip_suffix('\n'))
        .unwrap_or(line);
    let chars: Vec<char> = line.chars().collect();
    let err = |pos: usize, reason: &str| Error::AuditParse {
        column: pos + 1,
        reason: reason.to_owned(),
    };
    if chars.first() != Some(&'[') {
        return Err(err(0, "expected `[` and a timestamp"));
    }
    let stamp: String = chars.iter().skip(1).take(STAMP_LEN).collect();
    let naive = stamp
        .strip_suffix(" UTC")
        .and_then(|s| NaiveDateTime::parse_from_str(s, TIME_FMT).ok())
        .ok_or_else(|| err(1, "expected a timestamp `YYYY-MM-DD HH:MM:SS UTC`"))?;
    let mut pos = 1 + STAMP_LEN;
    if chars.get(pos) != Some(&']') || chars.get(pos + 1) != Some(&' ') {
        return Err(err(pos, "expected `] ` after the timestamp"));
    }
    pos += 2;

    // Operation: up to the first unescaped `{`, which must follow a space.
    let (operation, stop, at) =
        read_escaped(&chars, pos, &['{']).map_err(|(p, reason)| err(p, reason))?;
    if stop.is_none() {
        return Err(err(at, "expected ` {` after the operation"));
    }
    let operation = operation
        .strip_suffix(' ')
        .ok_or_else(|| err(at, "expected a space between the operation and `{`"))?
        .to_owned();
    pos = at + 1;

    let mut fields = Vec::new();
    if chars.get(pos) == Some(&'}') {
        pos += 1;
    } else {
        loop {
            let (key, stop, at) =
                read_escaped(&chars, pos, &[':']).map_err(|(p, reason)| err(p, reason))?;
            pos = at + 1;
            if stop.is_none() || chars.get(pos) != Some(&' ') {
                return Err(err(at, "expected `: ` after a key"));
            }
            pos += 1;
            let (value, stop, at) =
                read_escaped(&chars, pos, &[',', '}']).map_err(|(p, reason)| err(p, reason))?;
            pos = at + 1;
            fields.push((key, value));
            match stop {
                Some('}') => break,
                Some(',') if chars.get(pos) == Some(&' ') => pos += 1,
                _ => return Err(err(at, "expected `, ` or `}` after a value")),
            }
        }
    }
    if pos != chars.len() {
        return Err(err(pos, "unexpected text after `}`"));
    }
    Ok(AuditLine {
        timestamp: naive.and_utc(),
        operation,
        fields,
    })
}

/// Reads escaped text from `start` up to the first unescaped char in `stops`; returns the
/// unescaped text, the stop char (`None` at end of line) and its position. Unescaped special
/// characters that are not stops are errors.
fn read_escaped(
    chars: &[char],
    start: usize,
    stops: &[char],
) -> std::result::Result<(String, Option<char>, usize), (usize, &'static str)> {
    let mut out = String::new();
    let mut i = start;
    while let Some(&c) = chars.get(i) {
        if stops.contains(&c) {
            return Ok((out, Some(c), i));
        }
        match c {
            '\\' => {
                let next = chars.get(i + 1).ok_or((i, "dangling backslash"))?;
                out.push(match next {
                    'n' => '\n',
                    'r' => '\r',
                    '\\' | ',' | ':' | '{' | '}' => *next,
                    _ => return Err((i, "unknown escape")),
                });
                i += 2;
            }
            ',' | ':' | '{' | '}' => return Err((i, "unescaped special character")),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok((out, None, i))
}
