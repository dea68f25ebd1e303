//! `phantom shell`: statements read interactively (rustyline, with history in the data
//! directory) or, when stdin is not a terminal, from stdin without a prompt.
//!
//! A statement may span lines and ends at `;`. Errors are printed and the shell goes on.
//! Dot commands (`.tables`, `.schema [T]`, `.help`, `.quit`, `.exit`) are recognised at the
//! start of a statement. From piped stdin, the exit status is 1 when any statement failed.

use std::io::{BufRead, IsTerminal as _, Write};
use std::path::Path;

use anyhow::{anyhow, bail};
use phantom_core::{Database, Schema};
use rustyline::error::ReadlineError;

use crate::sql::{Options, Session, is_blank, split_statements};

/// File name of the history, in the data directory.
pub(crate) const HISTORY_FILE: &str = ".phantom_history";

const HELP: &str = "\
Statements end with ';' and may span lines. Supported: CREATE TABLE, DROP TABLE, INSERT,
SELECT, UPDATE, DELETE (WHERE required unless --all), TRUNCATE, BEGIN/COMMIT/ROLLBACK.
.tables          list the tables
.schema [TABLE]  show CREATE TABLE statements
.help            this text
.quit / .exit    leave (Ctrl-D too)";

/// What a line did to the shell.
enum Flow {
    Continue,
    Quit,
}

/// The `CREATE TABLE` statement of a schema.
fn create_statement(table: &str, schema: &Schema) -> String {
    let columns: Vec<String> = schema
        .columns()
        .iter()
        .map(|c| {
            let mut s = format!("{} {}", c.name, c.ty);
            if c.primary_key {
                s.push_str(" PRIMARY KEY");
            } else if c.not_null {
                s.push_str(" NOT NULL");
            }
            s
        })
        .collect();
    format!("CREATE TABLE {table} ({});", columns.join(", "))
}

fn dot_command(db: &Database, name: &str, line: &str, out: &mut dyn Write) -> anyhow::Result<Flow> {
    let mut words = line.split_whitespace();
    match (words.next().unwrap_or_default(), words.next(), words.next()) {
        (".quit" | ".exit", None, _) => return Ok(Flow::Quit),
        (".help", None, _) => writeln!(out, "{HELP}")?,
        (".tables", None, _) => {
            for t in db.list_tables(name)? {
                writeln!(out, "{t}")?;
            }
        }
        (".schema", table, None) => {
            let tables = match table {
                Some(t) => vec![t.to_owned()],
                None => db.list_tables(name)?,
            };
            for t in tables {
                writeln!(out, "{}", create_statement(&t, &db.table_schema(name, &t)?))?;
            }
        }
        (cmd, ..) => bail!("unknown or malformed command {cmd:?} (try .help)"),
    }
    out.flush()?;
    Ok(Flow::Continue)
}

/// The shell's state between lines: the session and the unfinished statement.
struct Shell<'a> {
    session: Session<'a>,
    buffer: String,
    failures: usize,
}

impl Shell<'_> {
    fn report(&mut self, e: &anyhow::Error) {
        self.failures += 1;
        eprintln!("error: {e:#}");
    }

    /// Feeds one line of input; runs every statement it completes.
    fn feed(&mut self, line: &str, out: &mut dyn Write) -> Flow {
        if is_blank(&self.buffer) && line.trim_start().starts_with('.') {
            self.buffer.clear();
            let (db, name) = (self.session.database(), self.session.name().to_owned());
            return match dot_command(db, &name, line.trim(), out) {
                Ok(flow) => flow,
                Err(e) => {
                    self.report(&e);
                    Flow::Continue
                }
            };
        }
        self.buffer.push_str(line);
        self.buffer.push('\n');
        let (statements, rest) = split_statements(&self.buffer);
        self.buffer = rest;
        for text in statements {
            if let Err(e) = self.session.execute(&text, out) {
                self.report(&e);
            }
        }
        Flow::Continue
    }

    /// End of input: runs an unterminated last statement, discards an open transaction.
    fn finish(&mut self, out: &mut dyn Write) {
        let rest = std::mem::take(&mut self.buffer);
        if !is_blank(&rest)
            && let Err(e) = self.session.execute(&rest, out)
        {
            self.report(&e);
        }
        if let Some(n) = self.session.discard_block() {
            self.report(&anyhow!("end of input inside BEGIN: the transaction was rolled back ({n} statements discarded)"));
        }
    }

    fn prompt(&self) -> &'static str {
        match (is_blank(&self.buffer), self.session.in_transaction()) {
            (true, false) => "phantom> ",
            (true, true) => "phantom*> ",
            (false, _) => "     ...> ",
        }
    }
}

/// Runs the shell on database `name` (created if missing).
pub(crate) fn run(db: &Database, name: &str, dir: &Path, options: Options) -> anyhow::Result<()> {
    let mut shell = Shell {
        session: Session::open(db, name, options)?,
        buffer: String::new(),
        failures: 0,
    };
    let stdout = std::io::stdout();
    if std::io::stdin().is_terminal() {
        interactive(&mut shell, dir, &mut stdout.lock())?;
        shell.finish(&mut stdout.lock());
        return Ok(());
    }
    let mut out = std::io::BufWriter::new(stdout.lock());
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(|e| anyhow!("reading stdin: {e}"))?;
        if let Flow::Quit = shell.feed(&line, &mut out) {
            break;
        }
    }
    shell.finish(&mut out);
    out.flush()?;
    if shell.failures > 0 {
        bail!("{} statement(s) failed", shell.failures);
    }
    Ok(())
}

fn interactive(shell: &mut Shell<'_>, dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut editor =
        rustyline::DefaultEditor::new().map_err(|e| anyhow!("starting the line editor: {e}"))?;
    let history = dir.join(HISTORY_FILE);
    // History is a convenience: a missing or unreadable file is not an error.
    let _ = editor.load_history(&history);
    eprintln!(
        "phantom shell on database {}; .help for help, .quit or Ctrl-D to leave",
        shell.session.name()
    );
    loop {
        match editor.readline(shell.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if let Flow::Quit = shell.feed(&line, out) {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => {
                // Ctrl-C drops the unfinished statement, like psql.
                shell.buffer.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                let _ = editor.save_history(&history);
                return Err(anyhow!("reading input: {e}"));
            }
        }
    }
    let _ = editor.save_history(&history);
    Ok(())
}
