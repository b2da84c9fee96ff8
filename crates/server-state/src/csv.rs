//! A small RFC 4180 CSV reader for the export files: a header row naming the columns, quoted fields
//! with `""` escapes, LF or CRLF line ends; blank lines and lines starting with `#` are skipped.
//!
//! Columns are found by header name, so exports may add columns or reorder them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// One data row: its 1-based line number in the file and its fields.
#[derive(Debug)]
pub(crate) struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A parsed CSV file: header positions and the data rows.
#[derive(Debug)]
pub(crate) struct Table {
    pub file: PathBuf,
    columns: HashMap<String, usize>,
    pub records: Vec<Record>,
}

impl Table {
    pub fn parse(file: &Path, text: &str) -> Result<Table> {
        let mut rows = split_records(file, text)?.into_iter();
        let Some(header) = rows.next() else {
            return Err(Error::Export {
                file: file.to_path_buf(),
                line: 1,
                reason: "empty file: a header row is required".into(),
            });
        };
        let columns = header
            .fields
            .iter()
            .enumerate()
            .map(|(i, name)| (name.trim().to_ascii_lowercase(), i))
            .collect();
        Ok(Table {
            file: file.to_path_buf(),
            columns,
            records: rows.collect(),
        })
    }

    /// The index of a column the file must have.
    pub fn require(&self, name: &str) -> Result<usize> {
        self.columns
            .get(name)
            .copied()
            .ok_or_else(|| Error::Export {
                file: self.file.clone(),
                line: 1,
                reason: format!("missing column `{name}` in the header"),
            })
    }

    /// The index of a column the file may have.
    pub fn optional(&self, name: &str) -> Option<usize> {
        self.columns.get(name).copied()
    }

    /// An error about one row.
    pub fn error(&self, line: usize, reason: impl Into<String>) -> Error {
        Error::Export {
            file: self.file.clone(),
            line,
            reason: reason.into(),
        }
    }
}

impl Record {
    /// The trimmed field at `index`, empty when the row is short.
    pub fn get(&self, index: usize) -> &str {
        self.fields.get(index).map(|s| s.trim()).unwrap_or("")
    }

    pub fn get_opt(&self, index: Option<usize>) -> &str {
        index.map(|i| self.get(i)).unwrap_or("")
    }
}

fn split_records(file: &Path, text: &str) -> Result<Vec<Record>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1usize;
    loop {
        // Skip blank and comment lines between records.
        match chars.peek() {
            None => break,
            Some('\n') => {
                chars.next();
                line += 1;
                continue;
            }
            Some('\r') => {
                chars.next();
                continue;
            }
            Some('#') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                line += 1;
                continue;
            }
            Some(_) => {}
        }
        let start_line = line;
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut was_quoted = false;
        loop {
            let Some(c) = chars.next() else {
                if quoted {
                    return Err(Error::Export {
                        file: file.to_path_buf(),
                        line: start_line,
                        reason: "unterminated quoted field".into(),
                    });
                }
                fields.push(std::mem::take(&mut field));
                break;
            };
            if quoted {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => quoted = false,
                    '\n' => {
                        line += 1;
                        field.push(c);
                    }
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' if field.trim().is_empty() && !was_quoted => {
                    field.clear();
                    quoted = true;
                    was_quoted = true;
                }
                '"' => {
                    return Err(Error::Export {
                        file: file.to_path_buf(),
                        line,
                        reason: "stray quote inside an unquoted field".into(),
                    });
                }
                ',' => {
                    fields.push(std::mem::take(&mut field));
                    was_quoted = false;
                }
                '\r' if chars.peek() == Some(&'\n') => {}
                '\n' => {
                    line += 1;
                    fields.push(std::mem::take(&mut field));
                    break;
                }
                _ => field.push(c),
            }
        }
        out.push(Record {
            line: start_line,
            fields,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<(usize, Vec<String>)> {
        split_records(Path::new("t.csv"), text)
            .unwrap()
            .into_iter()
            .map(|r| (r.line, r.fields))
            .collect()
    }

    #[test]
    fn quoting_comments_and_line_numbers() {
        type Case<'a> = (&'a str, &'a [(usize, &'a [&'a str])]);
        let cases: &[Case] = &[
            ("a,b\n1,2\n", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            ("a,b\r\n1,2", &[(1, &["a", "b"]), (2, &["1", "2"])]),
            (
                "# c\na\n\n\"x,\"\"y\"\"\"\n",
                &[(2, &["a"]), (4, &["x,\"y\""])],
            ),
            (
                "a\n\"multi\nline\"\nz\n",
                &[(1, &["a"]), (2, &["multi\nline"]), (4, &["z"])],
            ),
            ("a,,c\n", &[(1, &["a", "", "c"])]),
        ];
        for (text, expected) in cases {
            let got = rows(text);
            let want: Vec<(usize, Vec<String>)> = expected
                .iter()
                .map(|(l, f)| (*l, f.iter().map(|s| s.to_string()).collect()))
                .collect();
            assert_eq!(got, want, "input {text:?}");
        }
    }

    #[test]
    fn malformed_quotes_name_the_line() {
        for (text, line) in [("a\nb\"c\n", 2), ("a\n\"open\n", 2)] {
            let err = split_records(Path::new("t.csv"), text).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("t.csv:{line}:")),
                "{err}"
            );
        }
    }
}
