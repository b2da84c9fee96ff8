//! A lean, lenient scanner for the head of a SIP message: the start line and the header lines,
//! borrowed from the input, without building a [`crate::Message`].
//!
//! [`crate::parse`] reads everything (typed URIs, every header, the body) and reports what is
//! wrong; that costs microseconds per message. Hot paths that need a handful of headers (a HEP
//! collector, a capture indexer) use [`scan`] instead: one pass to find the end of the head, one
//! UTF-8 check, then header lines on demand. It never allocates (except [`HeaderLine::unfolded`]
//! on a folded line) and never panics: bytes that are not a SIP start line give a [`ScanError`];
//! header lines it cannot read (no colon, bad name, continuation before any header) are skipped
//! and counted ([`HeaderLines::skipped`]).
//!
//! Leniencies, the same as [`crate::parse`]: leading CRLFs are skipped (RFC 3261 §7.5), lines
//! may end in CRLF or a bare LF, header names compare case-insensitively and compact forms match
//! their long names (`i` is `Call-ID`, RFC 3261 §7.3.3), folded lines (a line starting with
//! space or tab continues the previous header, §7.3.1) belong to the header above, and a head
//! without its empty line (a truncated message) is scanned as far as it goes
//! ([`Scanned::complete`] says which).
//!
//! The value helpers ([`cseq`], [`first_element`], [`addr_uri`], [`uri_user`],
//! [`via_transport`], [`auth_param`], [`header_param`]) read the usual forms and return `None`
//! for what they cannot read.

use crate::headers::same_name;
use memchr::{memchr, memmem, memrchr};
use std::borrow::Cow;

/// Why bytes could not be scanned as a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// Nothing but line ends.
    #[error("empty message")]
    Empty,
    /// The start line or a header is not UTF-8 (`offset` is where the first bad byte is).
    #[error("the message head is not valid UTF-8 (byte {offset})")]
    NotUtf8 { offset: usize },
    /// The first line is neither a Request-Line nor a Status-Line (RFC 3261 §7.1, §7.2).
    #[error("not a SIP start line: {reason}")]
    BadStartLine { reason: &'static str },
}

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP-Version` (the method as written; methods are case-sensitive).
    Request { method: &'a str, uri: &'a str },
    /// `SIP-Version SP Status-Code SP Reason-Phrase` (the reason may be empty).
    Response { status: u16, reason: &'a str },
}

/// The scanned head of one message; every field borrows from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned<'a> {
    pub start: StartLine<'a>,
    /// The header lines as written (without the start line and the empty line).
    head: &'a str,
    /// Whether the empty line ending the headers was found (else the message was cut short).
    pub complete: bool,
    /// Offset of the body in the input (the input's length when the head is not complete).
    pub body_offset: usize,
}

/// One header line; `value` is trimmed and, for a folded header, still holds the line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderLine<'a> {
    pub name: &'a str,
    pub value: &'a str,
    /// Whether continuation lines were folded into this value.
    pub folded: bool,
}

impl<'a> HeaderLine<'a> {
    /// Whether this is the header `name` (case-insensitive; compact forms match long names).
    pub fn is(&self, name: &str) -> bool {
        same_name(self.name, name)
    }

    /// The value with folded line breaks replaced by one space (borrowed when not folded).
    pub fn unfolded(&self) -> Cow<'a, str> {
        if !self.folded {
            return Cow::Borrowed(self.value);
        }
        let mut out = String::with_capacity(self.value.len());
        for (i, part) in self.value.split('\n').enumerate() {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if i > 0 && !out.is_empty() {
                out.push(' ');
            }
            out.push_str(part);
        }
        Cow::Owned(out)
    }
}

/// Splits off one line (without CR/LF) and what follows it.
fn split_line(s: &str) -> (&str, &str) {
    match memchr(b'\n', s.as_bytes()) {
        Some(i) => (s[..i].strip_suffix('\r').unwrap_or(&s[..i]), &s[i + 1..]),
        None => (s.strip_suffix('\r').unwrap_or(s), ""),
    }
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

fn parse_start_line(line: &str) -> Result<StartLine<'_>, ScanError> {
    let bad = |reason| Err(ScanError::BadStartLine { reason });
    if let Some(rest) = line.strip_prefix("SIP/") {
        let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
        let rest = rest.trim_start_matches([' ', '\t']);
        let code = rest.get(..3).unwrap_or(rest);
        let after = &rest[code.len()..];
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return bad("the status code is not three digits");
        }
        if !after.is_empty() && !after.starts_with([' ', '\t']) {
            return bad("the status code is not three digits");
        }
        let status: u16 = code.parse().unwrap_or(0);
        if !(100..=699).contains(&status) {
            return bad("the status code is not between 100 and 699");
        }
        return Ok(StartLine::Response {
            status,
            reason: after.trim(),
        });
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return bad("a request line has three parts: method, Request-URI and SIP version");
    };
    if !version.starts_with("SIP/") {
        return bad("no SIP version at the end of the request line");
    }
    if !is_token(method) {
        return bad("the method is not a token");
    }
    Ok(StartLine::Request { method, uri })
}

/// Reads one start line (without its line end): for callers that find the head themselves (a
/// log reader looking for a message inside a line, a capture indexer with its own header pass).
/// Bytes that are not UTF-8 give [`ScanError::NotUtf8`], with the offset in `line`.
pub fn start_line(line: &[u8]) -> Result<StartLine<'_>, ScanError> {
    let line = std::str::from_utf8(line).map_err(|e| ScanError::NotUtf8 {
        offset: e.valid_up_to(),
    })?;
    parse_start_line(line)
}

/// Scans the head of one message (a datagram, a HEP payload or a framed stream chunk).
pub fn scan(buf: &[u8]) -> Result<Scanned<'_>, ScanError> {
    let lead = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or(ScanError::Empty)?;
    let rest = &buf[lead..];
    // The head ends at the first empty line ("\n\n" or "\n\r\n").
    let (head_len, body_offset, complete) = match (
        memmem::find(rest, b"\n\r\n").map(|i| (i + 1, i + 3)),
        memmem::find(rest, b"\n\n").map(|i| (i + 1, i + 2)),
    ) {
        (Some(a), Some(b)) => {
            let e = if a.0 <= b.0 { a } else { b };
            (e.0, lead + e.1, true)
        }
        (Some(e), None) | (None, Some(e)) => (e.0, lead + e.1, true),
        (None, None) => (rest.len(), buf.len(), false),
    };
    let head = std::str::from_utf8(&rest[..head_len]).map_err(|e| ScanError::NotUtf8 {
        offset: lead + e.valid_up_to(),
    })?;
    let (first, headers) = split_line(head);
    Ok(Scanned {
        start: parse_start_line(first)?,
        head: headers,
        complete,
        body_offset,
    })
}

impl<'a> Scanned<'a> {
    /// The header lines in wire order.
    pub fn headers(&self) -> HeaderLines<'a> {
        HeaderLines {
            rest: self.head,
            skipped: 0,
        }
    }

    /// The first header called `name` (compact forms and case ignored).
    pub fn get(&self, name: &str) -> Option<HeaderLine<'a>> {
        self.headers().find(|h| h.is(name))
    }
}

/// The header lines of a [`Scanned`] head; unreadable lines are skipped and counted.
#[derive(Debug, Clone)]
pub struct HeaderLines<'a> {
    rest: &'a str,
    skipped: usize,
}

impl HeaderLines<'_> {
    /// How many lines were skipped so far: no colon, an invalid name, or a continuation line
    /// with no header before it.
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}

impl<'a> Iterator for HeaderLines<'a> {
    type Item = HeaderLine<'a>;

    fn next(&mut self) -> Option<HeaderLine<'a>> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let start = self.rest;
            let (line, mut after) = split_line(start);
            if line.trim().is_empty() && after.is_empty() {
                // The empty line's own CR (the head slice ends after its first LF).
                self.rest = "";
                return None;
            }
            if line.starts_with([' ', '\t']) {
                // A continuation line with no header above it.
                self.skipped += 1;
                self.rest = after;
                continue;
            }
            // Continuation lines belong to this header.
            let mut folded = false;
            while after.starts_with([' ', '\t']) {
                folded = true;
                after = split_line(after).1;
            }
            self.rest = after;
            let Some(colon) = memchr(b':', line.as_bytes()) else {
                self.skipped += 1;
                continue;
            };
            let name = line[..colon].trim_end();
            if !is_token(name) {
                self.skipped += 1;
                continue;
            }
            // The value runs to the end of the last continuation line.
            let end = start.len() - after.len();
            let value = start[colon + 1..end].trim();
            return Some(HeaderLine {
                name,
                value,
                folded,
            });
        }
    }
}

/// Finds `needle` outside double quotes (quoted-pairs skipped).
pub(crate) fn find_unquoted(s: &str, needle: u8) -> Option<usize> {
    find_at_top(s, needle, false)
}

/// Finds `needle` outside double quotes (quoted-pairs skipped) and outside `<...>`.
fn find_outside(s: &str, needle: u8) -> Option<usize> {
    find_at_top(s, needle, true)
}

fn find_at_top(s: &str, needle: u8, skip_angles: bool) -> Option<usize> {
    let (mut in_q, mut in_angle) = (false, false);
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_q => i += 1,
            b'"' => in_q = !in_q,
            b'<' if skip_angles && !in_q => in_angle = true,
            b'>' if skip_angles && !in_q => in_angle = false,
            c if c == needle && !in_q && !in_angle => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// `CSeq: 42 INVITE` as (42, "INVITE"); `None` unless exactly a 32-bit number and a method.
pub fn cseq(value: &str) -> Option<(u32, &str)> {
    let mut it = value.split_ascii_whitespace();
    let (Some(n), Some(m), None) = (it.next(), it.next(), it.next()) else {
        return None;
    };
    Some((n.parse().ok()?, m))
}

/// The first element of a comma-separated header value (Via, Contact, Route…), trimmed;
/// commas in quotes or `<...>` do not count.
pub fn first_element(value: &str) -> &str {
    match find_outside(value, b',') {
        Some(i) => value[..i].trim(),
        None => value.trim(),
    }
}

/// The URI of a `name-addr` or `addr-spec` (From, To, one Contact element): the text inside
/// `<...>`, else what comes before the header parameters.
pub fn addr_uri(value: &str) -> Option<&str> {
    let v = value.trim();
    let uri = match find_unquoted(v, b'<') {
        Some(lt) => {
            let after = &v[lt + 1..];
            &after[..memchr(b'>', after.as_bytes())?]
        }
        None => {
            // Not inside quotes: a display name without <uri> is not an addr-spec.
            let end = memchr(b';', v.as_bytes()).unwrap_or(v.len());
            &v[..end]
        }
    };
    let uri = uri.trim();
    (!uri.is_empty() && !uri.contains(|c: char| c.is_ascii_whitespace())).then_some(uri)
}

/// The user part of a `sip:`/`sips:` URI (before any `:password`); `None` for other schemes or
/// when there is none.
pub fn uri_user(uri: &str) -> Option<&str> {
    let uri = uri.trim();
    let colon = memchr(b':', uri.as_bytes())?;
    let scheme = &uri[..colon];
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return None;
    }
    let rest = &uri[colon + 1..];
    let main = &rest[..memchr(b'?', rest.as_bytes()).unwrap_or(rest.len())];
    let at = memrchr(b'@', main.as_bytes())?;
    let userinfo = &main[..at];
    let user = &userinfo[..memchr(b':', userinfo.as_bytes()).unwrap_or(userinfo.len())];
    (!user.is_empty()).then_some(user)
}

/// The transport of the first via-parm of a Via value (`SIP/2.0/UDP host` gives `UDP`), as
/// written.
pub fn via_transport(value: &str) -> Option<&str> {
    let v = first_element(value);
    let second = memchr(b'/', v.as_bytes())
        .and_then(|a| memchr(b'/', &v.as_bytes()[a + 1..]).map(|b| a + 1 + b))?;
    let t = v[second + 1..].trim_start();
    let end = t.find(|c: char| c.is_ascii_whitespace()).unwrap_or(t.len());
    let t = &t[..end];
    (!t.is_empty() && is_token(t)).then_some(t)
}

/// Removes one level of double quotes, resolving quoted-pairs (borrowed when there are none).
fn unquote(s: &str) -> Cow<'_, str> {
    let s = s.trim();
    let Some(inner) = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
    else {
        return Cow::Borrowed(s);
    };
    if !inner.contains('\\') {
        return Cow::Borrowed(inner);
    }
    let mut out = String::with_capacity(inner.len());
    let mut esc = false;
    for c in inner.chars() {
        if esc || c != '\\' {
            out.push(c);
            esc = false;
        } else {
            esc = true;
        }
    }
    Cow::Owned(out)
}

/// An auth-param of an Authorization / WWW-Authenticate style value (`Digest username="bob",
/// realm=...`), unquoted; the name compares case-insensitively.
pub fn auth_param<'a>(value: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let v = value.trim();
    let mut rest = &v[v.find(|c: char| c.is_ascii_whitespace())?..];
    while !rest.is_empty() {
        let end = find_outside(rest, b',').unwrap_or(rest.len());
        let item = rest[..end].trim();
        if let Some((n, val)) = item.split_once('=')
            && n.trim().eq_ignore_ascii_case(name)
        {
            return Some(unquote(val));
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    None
}

/// A `;name=value` header parameter after the first element's URI (`;tag=`, `;expires=`),
/// unquoted; `Some("")` for a bare flag.
pub fn header_param<'a>(value: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let v = first_element(value);
    // Parameters start after the <uri>, or after the addr-spec.
    let params = match find_unquoted(v, b'<') {
        Some(lt) => &v[lt + memchr(b'>', &v.as_bytes()[lt..])? + 1..],
        None => v,
    };
    let mut rest = &params[find_outside(params, b';')? + 1..];
    loop {
        let end = find_outside(rest, b';').unwrap_or(rest.len());
        let item = rest[..end].trim();
        let (n, val) = item.split_once('=').unwrap_or((item, ""));
        if n.trim().eq_ignore_ascii_case(name) {
            return Some(unquote(val));
        }
        if end >= rest.len() {
            return None;
        }
        rest = &rest[end + 1..];
    }
}
