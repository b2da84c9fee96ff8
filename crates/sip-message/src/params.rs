//! Generic `;name=value` parameters (RFC 3261 §25.1 `generic-param`, `uri-parameter`).

use serde::Serialize;
use std::fmt;

/// One parameter; `value` is `None` for a bare flag such as `;lr` or `;rport`.
/// Quoted values keep their quotes so printing gives back what was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub name: String,
    pub value: Option<String>,
}

impl Param {
    /// Builds a parameter.
    pub fn new(name: impl Into<String>, value: Option<&str>) -> Self {
        Self {
            name: name.into(),
            value: value.map(str::to_owned),
        }
    }

    /// The value without surrounding quotes and with `\"` escapes resolved (RFC 3261 §25.1 quoted-pair).
    pub fn unquoted(&self) -> Option<String> {
        self.value.as_deref().map(unquote)
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}={}", self.name, v),
            None => f.write_str(&self.name),
        }
    }
}

/// Removes one level of double quotes and resolves quoted-pairs; unquoted input is returned trimmed.
pub(crate) fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        let inner = &s[1..s.len() - 1];
        let mut out = String::with_capacity(inner.len());
        let mut esc = false;
        for c in inner.chars() {
            if esc {
                out.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else {
                out.push(c);
            }
        }
        out
    } else {
        s.to_owned()
    }
}

/// Splits `s` on `sep`, ignoring separators inside double quotes and angle brackets.
pub(crate) fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_quotes = false;
    let mut angle = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_quotes = false;
            }
        } else if b == b'"' {
            in_quotes = true;
        } else if b == b'<' {
            angle += 1;
        } else if b == b'>' {
            angle = angle.saturating_sub(1);
        } else if b == sep && angle == 0 {
            out.push(&s[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    out.push(&s[start.min(s.len())..]);
    out
}

/// Parses a `;`-separated parameter list (without the leading `;`).
pub(crate) fn parse_params(s: &str) -> Vec<Param> {
    split_outside_quotes(s, b';')
        .into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => Param {
                name: n.trim().to_owned(),
                value: Some(v.trim().to_owned()),
            },
            None => Param {
                name: p.to_owned(),
                value: None,
            },
        })
        .collect()
}

/// Finds a parameter by case-insensitive name (parameter names are case-insensitive, RFC 3261 §7.3.1).
pub(crate) fn find<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

/// Writes `;a=b;c` for a parameter list.
pub(crate) fn write_params(f: &mut fmt::Formatter<'_>, params: &[Param]) -> fmt::Result {
    for p in params {
        write!(f, ";{p}")?;
    }
    Ok(())
}
