//! Hiding secrets before a message is logged, stored or shown: digest `response=` values
//! (RFC 7616 §3.4) and passwords in SIP URIs (RFC 3261 §19.1.1 `user:password@`).

use crate::message::Message;

/// What replaces a secret.
pub const REDACTED: &str = "<redacted>";

fn is_boundary(b: u8) -> bool {
    !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Redacts digest responses and URI passwords anywhere in a text (a header value, a whole
/// message, a log line). Only ASCII ranges are replaced, so UTF-8 stays valid.
pub fn redact_text(s: &str) -> String {
    let b = s.as_bytes();
    let lower = s.to_ascii_lowercase();
    let l = lower.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        // `response=` auth-param of Authorization / Proxy-Authorization.
        if l[i..].starts_with(b"response") && (i == 0 || is_boundary(l[i - 1])) {
            let mut j = i + 8;
            while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                j += 1;
            }
            if j < b.len() && b[j] == b'=' {
                j += 1;
                while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
                    j += 1;
                }
                let (start, end, quoted) = if j < b.len() && b[j] == b'"' {
                    let mut k = j + 1;
                    while k < b.len() && b[k] != b'"' && b[k] != b'\n' {
                        k += 1;
                    }
                    // Keep a line end that cut an unterminated quote short.
                    let end = if k < b.len() && b[k] == b'"' {
                        k + 1
                    } else {
                        k
                    };
                    (j, end, true)
                } else {
                    let mut k = j;
                    while k < b.len() && !matches!(b[k], b',' | b';' | b' ' | b'\t' | b'\r' | b'\n')
                    {
                        k += 1;
                    }
                    (j, k, false)
                };
                out.push_str(&s[copied..start]);
                if quoted {
                    out.push('"');
                    out.push_str(REDACTED);
                    out.push('"');
                } else {
                    out.push_str(REDACTED);
                }
                copied = end;
                i = end;
                continue;
            }
        }
        // `sip:user:password@` / `sips:user:password@`.
        let scheme_len = if l[i..].starts_with(b"sips:") {
            5
        } else if l[i..].starts_with(b"sip:") {
            4
        } else {
            0
        };
        if scheme_len > 0 && (i == 0 || is_boundary(l[i - 1])) {
            let ui_start = i + scheme_len;
            let mut k = ui_start;
            while k < b.len()
                && !matches!(
                    b[k],
                    b'@' | b'>' | b'"' | b',' | b' ' | b'\t' | b'\r' | b'\n'
                )
            {
                k += 1;
            }
            if k < b.len()
                && b[k] == b'@'
                && let Some(colon) = memchr::memchr(b':', &b[ui_start..k])
            {
                let pw_start = ui_start + colon + 1;
                out.push_str(&s[copied..pw_start]);
                out.push_str(REDACTED);
                copied = k;
            }
            i = k.max(i + 1);
            continue;
        }
        i += 1;
    }
    out.push_str(&s[copied..]);
    out
}

/// A copy of the message with every secret replaced by [`REDACTED`].
pub fn redact(message: &Message) -> Message {
    let mut m = message.clone();
    if let Message::Request(r) = &mut m
        && r.uri.password.is_some()
    {
        r.uri.password = Some(REDACTED.to_owned());
    }
    for h in m.headers_mut().0.iter_mut() {
        h.value = redact_text(&h.value);
    }
    m
}
