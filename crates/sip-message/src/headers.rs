//! The ordered header list of a SIP message, with compact forms and comma-separated lists (RFC 3261 §7.3).

use serde::Serialize;
use std::fmt;

/// One header line as received (folded lines already joined with a single space).
/// Debug and Serialize redact digest responses and URI passwords, so a logged or stored
/// message never carries a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

impl fmt::Debug for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, crate::redact_text(&self.value))
    }
}

impl Serialize for Header {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Header", 2)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("value", &crate::redact_text(&self.value))?;
        st.end()
    }
}

/// Headers in wire order; lookups are by canonical name so `i:` finds `Call-ID` (RFC 3261 §7.3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Headers(pub Vec<Header>);

/// The long form of a compact header name (RFC 3261 §7.3.3 and RFC 3515/3903/4028), else the name itself.
fn long_form(name: &str) -> &str {
    if name.len() != 1 {
        return name;
    }
    match name.as_bytes()[0].to_ascii_lowercase() {
        b'i' => "call-id",
        b'm' => "contact",
        b'e' => "content-encoding",
        b'l' => "content-length",
        b'c' => "content-type",
        b'f' => "from",
        b's' => "subject",
        b'k' => "supported",
        b't' => "to",
        b'v' => "via",
        b'r' => "refer-to",
        b'o' => "event",
        b'u' => "allow-events",
        b'x' => "session-expires",
        _ => name,
    }
}

/// Maps a header name to its lowercase long form, so `i` and `CALL-ID` both give `call-id`.
pub fn canonical_name(name: &str) -> String {
    long_form(name.trim()).to_ascii_lowercase()
}

// Header names compare case-insensitively after expanding compact forms; no allocation,
// because lookups run many times per parsed message.
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    long_form(a).eq_ignore_ascii_case(long_form(b))
}

/// Splits a header value holding a comma-separated list (RFC 3261 §7.3.1), ignoring commas in
/// quotes or `<...>`. Do not use it on WWW-Authenticate and friends, whose params contain commas.
pub fn split_list(value: &str) -> Vec<&str> {
    crate::params::split_outside_quotes(value, b',')
        .into_iter()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

impl Headers {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a header.
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.push(Header {
            name: name.into(),
            value: value.into(),
        });
    }

    /// Replaces every header of this name with one value (appended where the first one was, or at the end).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| same_name(&h.name, name)) {
            Some(i) => {
                self.0[i].value = value;
                let mut idx = 0;
                self.0.retain(|h| {
                    let keep = idx <= i || !same_name(&h.name, name);
                    idx += 1;
                    keep
                });
            }
            None => self.push(name.to_owned(), value),
        }
    }

    /// Inserts a header at the top (a proxy adding its Via would do this).
    pub fn push_front(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(
            0,
            Header {
                name: name.into(),
                value: value.into(),
            },
        );
    }

    /// Removes all headers of this name.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|h| !same_name(&h.name, name));
    }

    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every header line of this name, in order (not split on commas).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |h| same_name(&h.name, name))
            .map(|h| h.value.as_str())
    }

    /// Every element of a list header (Via, Contact, Route, ...) across all lines, in order.
    pub fn get_list<'a>(&'a self, name: &'a str) -> Vec<&'a str> {
        self.get_all(name).flat_map(split_list).collect()
    }

    /// Iterates over the headers in wire order.
    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there is no header.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
