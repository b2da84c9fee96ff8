//! Lenient reading of the few fields needed from SIP messages stored by Kamailio's `siptrace`
//! (start line, To, CSeq, Authorization), without a full parser: these are the server's own copies,
//! and a field that cannot be read only leaves that field empty.

/// The start line of a message (RFC 3261 §7.1 Request-Line, §7.2 Status-Line).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StartLine<'a> {
    Request { method: &'a str },
    Status { code: u16, reason: &'a str },
}

pub(crate) fn start_line(msg: &str) -> Option<StartLine<'_>> {
    let first = msg.trim_start().lines().next()?.trim_end();
    if let Some(rest) = first.strip_prefix("SIP/2.0 ") {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        return Some(StartLine::Status {
            code: code.parse().ok()?,
            reason: reason.trim(),
        });
    }
    let method = first.split(' ').next()?;
    (!method.is_empty()).then_some(StartLine::Request { method })
}

/// The value of the first header with this name or its compact form (RFC 3261 §7.3.3), unfolded
/// only as far as its first line.
pub(crate) fn header<'a>(msg: &'a str, name: &str, compact: Option<&str>) -> Option<&'a str> {
    for line in msg.lines().skip(1) {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        let Some((n, v)) = line.split_once(':') else {
            continue;
        };
        let n = n.trim();
        if n.eq_ignore_ascii_case(name) || compact.is_some_and(|c| n.eq_ignore_ascii_case(c)) {
            return Some(v.trim());
        }
    }
    None
}

/// The user part of the URI in a From/To/Contact value (`"Bob" <sip:bob@host>;tag=x` -> `bob`).
pub(crate) fn uri_user(value: &str) -> Option<&str> {
    let uri = match (value.find('<'), value.find('>')) {
        (Some(a), Some(b)) if a < b => &value[a + 1..b],
        _ => value.split(';').next().unwrap_or(value),
    };
    let uri = uri.trim();
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .or_else(|| uri.strip_prefix("tel:"))
        .unwrap_or(uri);
    let user = rest.split_once('@').map(|(u, _)| u)?;
    // A user part may carry a password (`user:pw@`, RFC 3261 §19.1.1): never keep it.
    let user = user.split(':').next().unwrap_or(user);
    (!user.is_empty()).then_some(user)
}

/// The `username` parameter of a Digest Authorization header (RFC 3261 §22.4, RFC 7616 §3.4).
pub(crate) fn auth_username(msg: &str) -> Option<String> {
    let value = header(msg, "Authorization", None)?;
    let params = value
        .strip_prefix("Digest")
        .or_else(|| value.strip_prefix("digest"))?;
    for part in params.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            continue;
        };
        if k.trim().eq_ignore_ascii_case("username") {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// The sequence number and method of the CSeq header (RFC 3261 §20.16).
pub(crate) fn cseq(msg: &str) -> Option<(u32, &str)> {
    let value = header(msg, "CSeq", None)?;
    let (n, m) = value.split_once(char::is_whitespace)?;
    Some((n.trim().parse().ok()?, m.trim()))
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
