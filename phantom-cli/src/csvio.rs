//! A small RFC 4180 reader that keeps what the `csv` crate's reader loses: whether a field was
//! quoted. An empty *unquoted* field is NULL (`None`); `""` is the empty string. It reads what
//! [`crate::output`] writes and what the `csv` crate writes (LF or CRLF line ends, a UTF-8 BOM
//! at the start), and rejects malformed input with the line it is on: a quote inside an
//! unquoted field, text after a closing quote, an unterminated quoted field, invalid UTF-8.
//!
//! An empty line is a record of one NULL field (that is how a one-column row holding NULL is
//! written); the newline that ends the last record does not start another one.

use std::io::BufRead;

/// A malformed CSV input, with the 1-based line it was found on.
#[derive(Debug)]
pub(crate) struct CsvError {
    /// The 1-based line.
    pub(crate) line: u64,
    /// What is wrong.
    pub(crate) reason: String,
}

impl std::fmt::Display for CsvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for CsvError {}

/// One record: its first line and its fields.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct CsvRecord {
    /// The 1-based line the record starts on.
    pub(crate) line: u64,
    /// The fields (`None`: NULL).
    pub(crate) fields: Vec<Option<String>>,
}

/// Reads records from a `BufRead`.
#[derive(Debug)]
pub(crate) struct CsvReader<R> {
    input: R,
    line: u64,
    bytes: u64,
    first: bool,
}

enum State {
    Start,
    Unquoted,
    Quoted,
    AfterQuote,
}

impl<R: BufRead> CsvReader<R> {
    /// A reader over `input`.
    pub(crate) fn new(input: R) -> CsvReader<R> {
        CsvReader {
            input,
            line: 0,
            bytes: 0,
            first: true,
        }
    }

    /// Bytes consumed so far (for progress reporting).
    pub(crate) fn bytes_read(&self) -> u64 {
        self.bytes
    }

    fn read_line(&mut self, buf: &mut Vec<u8>) -> Result<usize, CsvError> {
        buf.clear();
        let n = self.input.read_until(b'\n', buf).map_err(|e| CsvError {
            line: self.line + 1,
            reason: e.to_string(),
        })?;
        if n > 0 {
            self.line += 1;
            self.bytes += n as u64;
            if self.first {
                self.first = false;
                if buf.starts_with(b"\xEF\xBB\xBF") {
                    buf.drain(..3);
                }
            }
        }
        Ok(n)
    }

    /// The next record, `None` at the end of the input.
    pub(crate) fn next_record(&mut self) -> Result<Option<CsvRecord>, CsvError> {
        let mut buf = Vec::new();
        if self.read_line(&mut buf)? == 0 {
            return Ok(None);
        }
        let start = self.line;
        let mut fields: Vec<Option<String>> = Vec::new();
        let mut field: Vec<u8> = Vec::new();
        let mut state = State::Start;
        let err = |line: u64, reason: &str| CsvError {
            line,
            reason: reason.to_owned(),
        };
        let finish =
            |field: &mut Vec<u8>, quoted: bool, line: u64| -> Result<Option<String>, CsvError> {
                let bytes = std::mem::take(field);
                if !quoted && bytes.is_empty() {
                    return Ok(None);
                }
                String::from_utf8(bytes)
                    .map(Some)
                    .map_err(|_| err(line, "invalid UTF-8 in a field"))
            };
        loop {
            let mut i = 0;
            while let Some(&b) = buf.get(i) {
                i += 1;
                let at_end = |i: usize| {
                    buf.get(i..)
                        .is_some_and(|rest| rest == b"\n" || rest == b"\r\n" || rest.is_empty())
                };
                match state {
                    State::Start => match b {
                        b'"' => state = State::Quoted,
                        b',' => fields.push(None),
                        b'\n' => {
                            fields.push(None);
                            return Ok(Some(CsvRecord {
                                line: start,
                                fields,
                            }));
                        }
                        b'\r' if at_end(i) => {
                            fields.push(None);
                            return Ok(Some(CsvRecord {
                                line: start,
                                fields,
                            }));
                        }
                        other => {
                            field.push(other);
                            state = State::Unquoted;
                        }
                    },
                    State::Unquoted => match b {
                        b',' => {
                            fields.push(finish(&mut field, false, self.line)?);
                            state = State::Start;
                        }
                        b'\n' => {
                            fields.push(finish(&mut field, false, self.line)?);
                            return Ok(Some(CsvRecord {
                                line: start,
                                fields,
                            }));
                        }
                        b'\r' if at_end(i) => {
                            fields.push(finish(&mut field, false, self.line)?);
                            return Ok(Some(CsvRecord {
                                line: start,
                                fields,
                            }));
                        }
                        b'"' => {
                            return Err(err(
                                self.line,
                                "a quote inside an unquoted field (quote the whole field)",
                            ));
                        }
                        other => field.push(other),
                    },
                    State::Quoted => match b {
                        b'"' => state = State::AfterQuote,
                        other => field.push(other),
                    },
                    State::AfterQuote => match b {
                        b'"' => {
                            field.push(b'"');
                            state = State::Quoted;
                        }
                        b',' => {
                            fields.push(finish(&mut field, true, self.line)?);
                            state = State::Start;
                        }
                        b'\n' => {
                            fields.push(finish(&mut field, true, self.line)?);
                            return Ok(Some(CsvRecord {
                                line: start,
                                fields,
                            }));
                        }
                        b'\r' if at_end(i) => {
                            fields.push(finish(&mut field, true, self.line)?);
                            return Ok(Some(CsvRecord {
                                line: start,
                                fields,
                            }));
                        }
                        _ => {
                            return Err(err(
                                self.line,
                                "text after a closing quote (double a quote inside a quoted field)",
                            ));
                        }
                    },
                }
            }
            // The line ended without a record end: either the input ended, or a quoted field
            // goes on in the next line.
            if self.read_line(&mut buf)? == 0 {
                return match state {
                    State::Quoted => Err(err(start, "unterminated quoted field")),
                    State::Start => {
                        fields.push(None);
                        Ok(Some(CsvRecord {
                            line: start,
                            fields,
                        }))
                    }
                    State::Unquoted => {
                        fields.push(finish(&mut field, false, self.line)?);
                        Ok(Some(CsvRecord {
                            line: start,
                            fields,
                        }))
                    }
                    State::AfterQuote => {
                        fields.push(finish(&mut field, true, self.line)?);
                        Ok(Some(CsvRecord {
                            line: start,
                            fields,
                        }))
                    }
                };
            }
            if !matches!(state, State::Quoted) {
                // Only a quoted field can hold a line break; any other state ended its line.
                return Err(err(self.line, "internal: record continued outside quotes"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> Result<Vec<Vec<Option<String>>>, CsvError> {
        let mut r = CsvReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(rec) = r.next_record()? {
            out.push(rec.fields);
        }
        Ok(out)
    }

    fn s(t: &str) -> Option<String> {
        Some(t.to_owned())
    }

    #[test]
    fn unquoted_empty_is_null_and_quoted_empty_is_the_empty_string() {
        assert_eq!(
            read_all("a,b,c\n,\"\",x\n").unwrap(),
            vec![vec![s("a"), s("b"), s("c")], vec![None, s(""), s("x")]]
        );
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_newlines_and_crlf() {
        assert_eq!(
            read_all("\"a,\"\"b\"\"\nc\r\nd\",é\r\nlast,\"\"").unwrap(),
            vec![vec![s("a,\"b\"\nc\r\nd"), s("é")], vec![s("last"), s("")]]
        );
    }

    #[test]
    fn empty_line_is_one_null_field_and_trailing_comma_is_a_null() {
        assert_eq!(
            read_all("x\n\n1,\n").unwrap(),
            vec![vec![s("x")], vec![None], vec![s("1"), None]]
        );
    }

    #[test]
    fn reads_what_the_writer_writes() {
        let values = [None, s(""), s(" a "), s("\"q\""), s("x\ny"), s("ü,")];
        let line = crate::output::csv_record(values.iter().map(Option::as_deref));
        assert_eq!(read_all(&line).unwrap(), vec![values.to_vec()]);
    }

    #[test]
    fn malformed_input_names_the_line() {
        let e = read_all("a\nb\"c\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = read_all("a\n\"open\nstill open\n").unwrap_err();
        assert_eq!(
            (e.line, e.reason.as_str()),
            (2, "unterminated quoted field")
        );
        assert_eq!(read_all("\"a\"b\n").unwrap_err().line, 1);
        assert!(read_all("\u{FEFF}a,b\n").unwrap() == vec![vec![s("a"), s("b")]]);
    }
}
