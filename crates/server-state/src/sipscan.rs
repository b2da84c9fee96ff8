//! Lenient reading of the few fields needed from SIP messages stored by Kamailio's `siptrace`
//! (start line, To, CSeq, Authorization) with sip-message's lean head scanner: these are the
//! server's own copies, and a field that cannot be read only leaves that field empty.

use sip_message::scan::{self, Scanned};

/// The start line of a message (RFC 3261 §7.1 Request-Line, §7.2 Status-Line).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StartLine<'a> {
    Request { method: &'a str },
    Status { code: u16, reason: &'a str },
}

fn head(msg: &str) -> Option<Scanned<'_>> {
    scan::scan(msg.trim_start().as_bytes()).ok()
}

pub(crate) fn start_line(msg: &str) -> Option<StartLine<'_>> {
    Some(match head(msg)?.start {
        scan::StartLine::Request { method, .. } => StartLine::Request { method },
        scan::StartLine::Response { status, reason } => StartLine::Status {
            code: status,
            reason,
        },
    })
}

/// The value of the first header with this name or its compact form (RFC 3261 §7.3.3), unfolded
/// only as far as its first line.
pub(crate) fn header<'a>(msg: &'a str, name: &str, compact: Option<&str>) -> Option<&'a str> {
    let h = head(msg)?
        .headers()
        .find(|h| h.is(name) || compact.is_some_and(|c| h.is(c)))?;
    Some(h.value.lines().next().unwrap_or_default().trim())
}

/// The user part of the URI in a From/To/Contact value (`"Bob" <sip:bob@host>;tag=x` -> `bob`);
/// a password in the user part (`user:pw@`, RFC 3261 §19.1.1) is never kept.
pub(crate) fn uri_user(value: &str) -> Option<&str> {
    scan::uri_user(scan::addr_uri(value)?)
}

/// The `username` parameter of a Digest Authorization header (RFC 3261 §22.4, RFC 7616 §3.4).
pub(crate) fn auth_username(msg: &str) -> Option<String> {
    let value = header(msg, "Authorization", None)?;
    let scheme = value.split_ascii_whitespace().next()?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    scan::auth_param(value, "username").map(|u| u.into_owned())
}

/// The sequence number and method of the CSeq header (RFC 3261 §20.16).
pub(crate) fn cseq(msg: &str) -> Option<(u32, &str)> {
    scan::cseq(header(msg, "CSeq", None)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REGISTER: &str = "REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5098\r\nf: <sip:alice@127.0.0.1>;tag=1\r\nTo: \"Alice\" <sip:alice@127.0.0.1>\r\nCSeq: 2 REGISTER\r\nAuthorization: Digest username=\"alice\", realm=\"127.0.0.1\", response=\"0123\"\r\n\r\n";

    #[test]
    fn reads_the_fields_diagnosis_needs() {
        assert_eq!(
            start_line(REGISTER),
            Some(StartLine::Request { method: "REGISTER" })
        );
        assert_eq!(
            start_line("SIP/2.0 403 Forbidden\r\n\r\n"),
            Some(StartLine::Status {
                code: 403,
                reason: "Forbidden"
            })
        );
        assert_eq!(
            header(REGISTER, "From", Some("f")),
            Some("<sip:alice@127.0.0.1>;tag=1")
        );
        assert_eq!(
            uri_user(header(REGISTER, "To", Some("t")).unwrap()),
            Some("alice")
        );
        assert_eq!(uri_user("sip:bob:secret@h"), Some("bob"));
        assert_eq!(uri_user("<sip:127.0.0.1>"), None);
        assert_eq!(auth_username(REGISTER).as_deref(), Some("alice"));
        assert_eq!(cseq(REGISTER), Some((2, "REGISTER")));
        assert_eq!(start_line(""), None);
        assert_eq!(start_line("SIP/2.0 abc\r\n"), None);
    }
}
