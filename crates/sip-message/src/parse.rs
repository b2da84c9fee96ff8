//! The lenient message parser (RFC 3261 §7, §25): always returns what it could read plus diagnostics.

use crate::headers::{Header, Headers};
use crate::message::{Message, Method, Request, Response};
use crate::uri::Uri;
use memchr::memchr;
use serde::Serialize;

/// How bad a finding is: `Error` means the message breaks RFC 3261 in a way a strict peer would
/// reject; `Warning` means it is odd but usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// A finding about the input, with the byte offset where it was noticed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub offset: usize,
    pub message: String,
}

/// The outcome of [`parse`]: `message` is `None` only when not even a start line could be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Parsed {
    pub message: Option<Message>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Parsed {
    /// True if some diagnostic has `Error` severity.
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }
}

struct Ctx {
    diags: Vec<Diagnostic>,
}

impl Ctx {
    fn error(&mut self, offset: usize, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Error,
            offset,
            message: message.into(),
        });
    }
    fn warn(&mut self, offset: usize, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            severity: Severity::Warning,
            offset,
            message: message.into(),
        });
    }
}

/// Returns the line starting at `pos` (without CR/LF) and the position after its terminator;
/// `lf_only` tells whether the line ended with a bare LF.
fn line_at(buf: &[u8], pos: usize) -> (&[u8], usize, bool) {
    match memchr(b'\n', &buf[pos..]) {
        Some(i) => {
            let end = pos + i;
            if end > pos && buf[end - 1] == b'\r' {
                (&buf[pos..end - 1], end + 1, false)
            } else {
                (&buf[pos..end], end + 1, true)
            }
        }
        None => {
            let mut line = &buf[pos..];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            (line, buf.len(), false)
        }
    }
}

fn text(ctx: &mut Ctx, offset: usize, bytes: &[u8], what: &str) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => {
            ctx.error(offset, format!("{what} is not valid UTF-8"));
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

enum StartLine {
    Request(Method, Uri, String),
    Response(String, u16, String),
}

fn parse_start_line(ctx: &mut Ctx, line: &str, offset: usize) -> Option<StartLine> {
    if line.starts_with("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§7.2); the reason may be empty.
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let code_str = parts.next().unwrap_or_default();
        let reason = parts.next().unwrap_or_default().to_owned();
        if version != "SIP/2.0" {
            ctx.error(offset, format!("unsupported SIP version {version:?}"));
        }
        let code = match code_str.parse::<u16>() {
            Ok(c) if (100..=699).contains(&c) && code_str.len() == 3 => c,
            _ => {
                ctx.error(offset, format!("invalid status code {code_str:?}"));
                return None;
            }
        };
        return Some(StartLine::Response(version, code, reason));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (§7.1): exactly single spaces.
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.len() == 3 && tokens[2].starts_with("SIP/") {
            ctx.error(offset, "request line does not use single spaces");
            return finish_request_line(ctx, tokens[0], tokens[1], tokens[2], offset);
        }
        ctx.error(
            offset,
            format!("not a SIP start line: {:?}", crate::redact_text(line)),
        );
        return None;
    }
    finish_request_line(ctx, parts[0], parts[1], parts[2], offset)
}

fn finish_request_line(
    ctx: &mut Ctx,
    method: &str,
    uri: &str,
    version: &str,
    offset: usize,
) -> Option<StartLine> {
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        ctx.error(offset, format!("invalid method token {method:?}"));
        return None;
    }
    if !version.starts_with("SIP/") {
        ctx.error(
            offset,
            format!("not a SIP start line (version {version:?})"),
        );
        return None;
    }
    if version != "SIP/2.0" {
        ctx.error(offset, format!("unsupported SIP version {version:?}"));
    }
    let uri = match Uri::parse(uri) {
        Ok(u) => u,
        Err(e) => {
            ctx.error(offset, format!("bad Request-URI: {e}"));
            return None;
        }
    };
    Some(StartLine::Request(
        Method::from_token(method),
        uri,
        version.to_owned(),
    ))
}

/// Parses one SIP message from a datagram or a framed stream chunk.
///
/// Leading CRLFs are skipped (RFC 3261 §7.5). LF-only line endings are accepted with a warning.
/// The body is read by Content-Length; without one the rest of the buffer is the body, as
/// RFC 3261 §18.3 allows for datagrams.
pub fn parse(buf: &[u8]) -> Parsed {
    let mut ctx = Ctx { diags: Vec::new() };
    let mut pos = 0;
    while pos < buf.len() && (buf[pos] == b'\r' || buf[pos] == b'\n') {
        pos += 1;
    }
    if pos >= buf.len() {
        ctx.error(pos, "empty message");
        return Parsed {
            message: None,
            diagnostics: ctx.diags,
        };
    }
    let mut lf_only_seen = false;
    let (line, next, lf) = line_at(buf, pos);
    lf_only_seen |= lf;
    let start_text = text(&mut ctx, pos, line, "start line");
    let start = parse_start_line(&mut ctx, &start_text, pos);
    let Some(start) = start else {
        return Parsed {
            message: None,
            diagnostics: ctx.diags,
        };
    };
    pos = next;

    let mut headers = Headers::new();
    let mut ended = false;
    while pos < buf.len() {
        let line_start = pos;
        let (line, next, lf) = line_at(buf, pos);
        lf_only_seen |= lf;
        pos = next;
        if line.is_empty() {
            ended = true;
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Header folding (LWS, §7.3.1): the continuation joins the previous value with one space.
            let cont = text(&mut ctx, line_start, line, "header continuation");
            match headers.0.last_mut() {
                Some(h) => {
                    let cont = cont.trim();
                    if !cont.is_empty() {
                        if !h.value.is_empty() {
                            h.value.push(' ');
                        }
                        h.value.push_str(cont);
                    }
                }
                None => ctx.error(line_start, "continuation line before any header"),
            }
            continue;
        }
        let Some(colon) = memchr(b':', line) else {
            ctx.error(
                line_start,
                format!(
                    "header line without a colon: {:?}",
                    crate::redact_text(&String::from_utf8_lossy(line))
                ),
            );
            continue;
        };
        let name = text(&mut ctx, line_start, &line[..colon], "header name");
        let name_trimmed = name.trim_end();
        if name_trimmed.is_empty()
            || !name_trimmed
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
        {
            ctx.error(line_start, format!("invalid header name {name:?}"));
            continue;
        }
        let value = text(
            &mut ctx,
            line_start + colon + 1,
            &line[colon + 1..],
            "header value",
        );
        headers.0.push(Header {
            name: name_trimmed.to_owned(),
            value: value.trim().to_owned(),
        });
    }
    if lf_only_seen {
        ctx.warn(0, "lines end with LF only, not CRLF (RFC 3261 §7)");
    }
    if !ended {
        ctx.warn(pos, "no empty line after the headers (message truncated?)");
    }

    let rest = &buf[pos.min(buf.len())..];
    let body = match headers.get("Content-Length") {
        Some(cl) => match cl.trim().parse::<usize>() {
            Ok(n) if n <= rest.len() => {
                if n < rest.len() && rest[n..].iter().any(|b| !b.is_ascii_whitespace()) {
                    ctx.warn(
                        pos + n,
                        format!(
                            "{} bytes after the body that Content-Length does not cover",
                            rest.len() - n
                        ),
                    );
                }
                rest[..n].to_vec()
            }
            Ok(n) => {
                ctx.error(
                    pos,
                    format!(
                        "Content-Length {n} but only {} body bytes (truncated)",
                        rest.len()
                    ),
                );
                rest.to_vec()
            }
            Err(_) => {
                ctx.error(pos, format!("invalid Content-Length {cl:?}"));
                rest.to_vec()
            }
        },
        None => rest.to_vec(),
    };

    // Mandatory headers, RFC 3261 §8.1.1 for requests and §8.2.6.2 / §20 for responses.
    let mut required = vec!["Via", "From", "To", "Call-ID", "CSeq"];
    if matches!(start, StartLine::Request(..)) {
        required.push("Max-Forwards");
    }
    for name in required {
        if headers.get(name).is_none() {
            let sev_err = name != "Max-Forwards";
            let msg = format!("missing mandatory {name} header");
            if sev_err {
                ctx.error(0, msg);
            } else {
                ctx.warn(0, msg);
            }
        }
    }
    for name in [
        "Call-ID",
        "CSeq",
        "From",
        "To",
        "Max-Forwards",
        "Content-Length",
        "Content-Type",
    ] {
        if headers.get_all(name).count() > 1 {
            ctx.error(0, format!("{name} header appears more than once"));
        }
    }
    for (name, check) in [
        ("From", check_name_addr as fn(&Headers) -> Option<String>),
        ("To", check_to),
        ("CSeq", check_cseq),
        ("Via", check_via),
        ("Max-Forwards", check_max_forwards),
        ("Contact", check_contact),
    ] {
        if headers.get(name).is_some()
            && let Some(problem) = check(&headers)
        {
            ctx.error(0, problem);
        }
    }

    let message = match start {
        StartLine::Request(method, uri, version) => {
            if let Ok(Some(cseq)) = headers.cseq()
                && cseq.method != method
                && method != Method::Ack
                && method != Method::Cancel
            {
                ctx.error(
                    0,
                    format!(
                        "CSeq method {} differs from request method {method}",
                        cseq.method
                    ),
                );
            }
            Message::Request(Request {
                method,
                uri,
                version,
                headers,
                body,
            })
        }
        StartLine::Response(version, status, reason) => Message::Response(Response {
            version,
            status,
            reason,
            headers,
            body,
        }),
    };
    Parsed {
        message: Some(message),
        diagnostics: ctx.diags,
    }
}

fn check_name_addr(h: &Headers) -> Option<String> {
    h.from().err().map(|e| e.to_string())
}
fn check_to(h: &Headers) -> Option<String> {
    h.to().err().map(|e| e.to_string())
}
fn check_cseq(h: &Headers) -> Option<String> {
    h.cseq().err().map(|e| e.to_string())
}
fn check_via(h: &Headers) -> Option<String> {
    h.via().err().map(|e| e.to_string())
}
fn check_max_forwards(h: &Headers) -> Option<String> {
    h.max_forwards().err().map(|e| e.to_string())
}
fn check_contact(h: &Headers) -> Option<String> {
    h.contacts().err().map(|e| e.to_string())
}
