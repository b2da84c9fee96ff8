//! Fast, lenient SIP head scanner: finds the start line and the correlation headers with memchr.
//!
//! This is the hot path of capture analysis, so it never allocates and never fails on bad
//! input: it returns `None` when the bytes do not start with a SIP start line (RFC 3261 §7.1,
//! §7.2) and otherwise indexes what it can. Typed decoding of a whole message belongs to the
//! `sip-message` crate; here we only need enough to correlate transactions and dialogs.

use memchr::{memchr, memchr2};

/// The first line of a SIP message (RFC 3261 §7.1 Request-Line, §7.2 Status-Line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    /// `Method SP Request-URI SP SIP-Version`.
    Request {
        /// The method token, e.g. `INVITE`.
        method: &'a [u8],
        /// The Request-URI as written.
        uri: &'a [u8],
    },
    /// `SIP-Version SP Status-Code SP Reason-Phrase`.
    Response {
        /// The three-digit status code.
        code: u16,
        /// The reason phrase (may be empty).
        reason: &'a [u8],
    },
}

/// The indexed head of one SIP message. Every field borrows from the scanned buffer.
#[derive(Debug, Clone, Default)]
pub struct SipHead<'a> {
    /// The start line, `None` only in the `Default` value.
    pub start: Option<StartLine<'a>>,
    /// `Call-ID` / compact `i` (RFC 3261 §20.8).
    pub call_id: &'a [u8],
    /// `CSeq` sequence number (RFC 3261 §20.16).
    pub cseq: u32,
    /// `CSeq` method.
    pub cseq_method: &'a [u8],
    /// `branch` parameter of the topmost `Via` (RFC 3261 §8.1.1.7).
    pub via_branch: &'a [u8],
    /// `sent-by` host of the topmost `Via`.
    pub via_host: &'a [u8],
    /// `received` parameter of the topmost `Via` (RFC 3261 §18.2.1): the address the server saw.
    pub via_received: &'a [u8],
    /// `From` tag.
    pub from_tag: &'a [u8],
    /// User part of the `From` URI.
    pub from_user: &'a [u8],
    /// `To` tag.
    pub to_tag: &'a [u8],
    /// User part of the `To` URI.
    pub to_user: &'a [u8],
    /// Host part of the first `Contact` URI.
    pub contact_host: &'a [u8],
    /// `Content-Length` / compact `l`, when present and numeric.
    pub content_length: Option<usize>,
    /// `User-Agent` or `Server`.
    pub user_agent: &'a [u8],
    /// `Warning` (RFC 3261 §20.43).
    pub warning: &'a [u8],
    /// `Reason` (RFC 3326).
    pub reason: &'a [u8],
    /// `Content-Type` / compact `c`.
    pub content_type: &'a [u8],
    /// Whether the request carries `Authorization` or `Proxy-Authorization` (value never kept).
    pub has_credentials: bool,
    /// Offset of the body: just after the empty line ending the headers.
    pub body_offset: usize,
    /// Whether the empty line ending the headers was found.
    pub headers_complete: bool,
}

impl<'a> SipHead<'a> {
    /// The request method, for requests.
    pub fn method(&self) -> Option<&'a [u8]> {
        match self.start {
            Some(StartLine::Request { method, .. }) => Some(method),
            _ => None,
        }
    }

    /// The status code, for responses.
    pub fn status(&self) -> Option<u16> {
        match self.start {
            Some(StartLine::Response { code, .. }) => Some(code),
            _ => None,
        }
    }

    /// The user part of the Request-URI, for requests.
    pub fn ruri_user(&self) -> &'a [u8] {
        match self.start {
            Some(StartLine::Request { uri, .. }) => uri_user(uri),
            _ => b"",
        }
    }

    /// Total message length implied by `Content-Length`, clamped to `available` bytes.
    pub fn message_len(&self, available: usize) -> usize {
        let body = self.content_length.unwrap_or(0);
        self.body_offset.saturating_add(body).min(available)
    }
}

/// Cheap test: could these bytes begin a SIP start line? Used to skip RTP and other UDP quickly.
pub fn looks_like_sip(buf: &[u8]) -> bool {
    match buf.first() {
        Some(b'A'..=b'Z') => {}
        _ => return false,
    }
    if buf.starts_with(b"SIP/2.0 ") {
        return true;
    }
    // A method token is upper-case letters followed by a space (RFC 3261 §25.1 `Method`).
    let n = buf.len().min(20);
    for (i, &c) in buf[..n].iter().enumerate() {
        if c == b' ' {
            return i >= 3;
        }
        if !c.is_ascii_uppercase() && c != b'-' {
            return false;
        }
    }
    false
}

/// Parse a start line (without its line ending) with [`sip_message::scan::start_line`], keeping
/// what a capture can hold for SIP: version `SIP/2.0` and an upper-case method of three or more
/// letters (RFC 3261 §7.1, §7.2). Anything else in a capture or a log line is not SIP.
pub fn parse_start_line(line: &[u8]) -> Option<StartLine<'_>> {
    let is_response = line.starts_with(b"SIP/2.0 ");
    if !is_response && !trim(line).ends_with(b" SIP/2.0") {
        return None;
    }
    match sip_message::scan::start_line(line).ok()? {
        sip_message::scan::StartLine::Response { status, reason } if is_response => {
            Some(StartLine::Response {
                code: status,
                reason: reason.as_bytes(),
            })
        }
        sip_message::scan::StartLine::Request { method, uri }
            if method.len() >= 3 && method.bytes().all(|c| c.is_ascii_uppercase() || c == b'-') =>
        {
            Some(StartLine::Request {
                method: method.as_bytes(),
                uri: uri.as_bytes(),
            })
        }
        _ => None,
    }
}

/// Scan the head of a SIP message that starts at `buf[0]`.
///
/// Accepts CRLF and bare LF line endings (logs often lose the CR), stops at the first empty
/// line, and tolerates a missing end of headers (truncated packet): then `headers_complete`
/// is false and `body_offset == buf.len()`.
pub fn scan(buf: &[u8]) -> Option<SipHead<'_>> {
    let first_end = memchr(b'\n', buf).unwrap_or(buf.len());
    let start = parse_start_line(trim_cr(&buf[..first_end]))?;
    let mut head = SipHead {
        start: Some(start),
        body_offset: buf.len(),
        ..SipHead::default()
    };
    let mut pos = first_end + 1;
    let mut seen_via = false;
    let mut seen_contact = false;
    while pos < buf.len() {
        // One search finds the colon of a header line, or the end of a line without one.
        let hit = memchr2(b':', b'\n', &buf[pos..]).map_or(buf.len(), |e| pos + e);
        if hit < buf.len() && buf[hit] == b':' {
            let end = memchr(b'\n', &buf[hit..]).map_or(buf.len(), |e| hit + e);
            // `trim` also drops the CR before the LF.
            let name = trim(&buf[pos..hit]);
            let value = trim(&buf[hit + 1..end]);
            index_header(&mut head, name, value, &mut seen_via, &mut seen_contact);
            pos = end + 1;
            continue;
        }
        let next = hit + 1;
        if trim_cr(&buf[pos..hit]).is_empty() {
            head.body_offset = next.min(buf.len());
            head.headers_complete = true;
            break;
        }
        pos = next;
    }
    Some(head)
}

/// The Call-ID of a SIP message, as [`scan`] would index it (empty when there is none), or
/// `None` when [`scan`] would not take the bytes for SIP. Reads only header names: it decides
/// which thread follows a message's dialog.
pub fn call_id(buf: &[u8]) -> Option<&[u8]> {
    let first_end = memchr(b'\n', buf).unwrap_or(buf.len());
    parse_start_line(trim_cr(&buf[..first_end]))?;
    let mut id: &[u8] = b"";
    let mut pos = first_end + 1;
    while pos < buf.len() {
        let end = memchr(b'\n', &buf[pos..]).map_or(buf.len(), |e| pos + e);
        let line = trim_cr(&buf[pos..end]);
        let Some(&first) = line.first() else {
            break;
        };
        // Only a line that can name Call-ID (after `trim`) needs its colon found.
        let candidate = matches!(first, b'C' | b'c' | b'I' | b'i' | b' ' | b'\t' | b'\r');
        if candidate && let Some(colon) = memchr(b':', line) {
            let name = trim(&line[..colon]);
            if (name.len() == 1 && name[0].eq_ignore_ascii_case(&b'i'))
                || (name.len() == 7 && name.eq_ignore_ascii_case(b"Call-ID"))
            {
                id = trim(&line[colon + 1..]);
            }
        }
        pos = end + 1;
    }
    Some(id)
}

fn index_header<'a>(
    head: &mut SipHead<'a>,
    name: &[u8],
    value: &'a [u8],
    seen_via: &mut bool,
    seen_contact: &mut bool,
) {
    // Dispatch on length first: one compare per header on the hot path.
    match name.len() {
        1 => match name[0].to_ascii_lowercase() {
            b'i' => head.call_id = value,
            b'v' => via(head, value, seen_via),
            b'f' => (head.from_user, head.from_tag) = name_addr(value),
            b't' => (head.to_user, head.to_tag) = name_addr(value),
            b'm' => contact(head, value, seen_contact),
            b'l' => head.content_length = parse_usize(value),
            b'c' => head.content_type = value,
            _ => {}
        },
        2 if name.eq_ignore_ascii_case(b"To") => (head.to_user, head.to_tag) = name_addr(value),
        3 if name.eq_ignore_ascii_case(b"Via") => via(head, value, seen_via),
        4 if name.eq_ignore_ascii_case(b"From") => {
            (head.from_user, head.from_tag) = name_addr(value);
        }
        4 if name.eq_ignore_ascii_case(b"CSeq") => {
            let sp = memchr(b' ', value).unwrap_or(value.len());
            head.cseq = parse_usize(&value[..sp])
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0);
            head.cseq_method = trim(value.get(sp..).unwrap_or(b""));
        }
        6 if name.eq_ignore_ascii_case(b"Reason") => head.reason = value,
        6 if name.eq_ignore_ascii_case(b"Server") && head.user_agent.is_empty() => {
            head.user_agent = value;
        }
        7 if name.eq_ignore_ascii_case(b"Call-ID") => head.call_id = value,
        7 if name.eq_ignore_ascii_case(b"Contact") => contact(head, value, seen_contact),
        7 if name.eq_ignore_ascii_case(b"Warning") => head.warning = value,
        10 if name.eq_ignore_ascii_case(b"User-Agent") => head.user_agent = value,
        12 if name.eq_ignore_ascii_case(b"Content-Type") => head.content_type = value,
        13 if name.eq_ignore_ascii_case(b"Authorization") => head.has_credentials = true,
        14 if name.eq_ignore_ascii_case(b"Content-Length") => {
            head.content_length = parse_usize(value);
        }
        19 if name.eq_ignore_ascii_case(b"Proxy-Authorization") => head.has_credentials = true,
        _ => {}
    }
}

fn via<'a>(head: &mut SipHead<'a>, value: &'a [u8], seen: &mut bool) {
    // Only the topmost Via identifies the transaction (RFC 3261 §17.1.3, §17.2.3).
    if *seen {
        return;
    }
    *seen = true;
    let value = match memchr(b',', value) {
        Some(c) => &value[..c],
        None => value,
    };
    // "SIP/2.0/UDP host:port;params"
    let after_proto = memchr(b' ', value).map_or(value, |s| trim(&value[s + 1..]));
    let host_end = after_proto
        .iter()
        .position(|&c| c == b';' || c == b' ')
        .unwrap_or(after_proto.len());
    head.via_host = strip_port(&after_proto[..host_end]);
    head.via_branch = param(value, b"branch=");
    head.via_received = param(value, b"received=");
}

fn contact<'a>(head: &mut SipHead<'a>, value: &'a [u8], seen: &mut bool) {
    if *seen {
        return;
    }
    *seen = true;
    head.contact_host = uri_host(value);
}

/// `(user, tag)` of a From/To value (RFC 3261 §20.20, §20.39).
fn name_addr(value: &[u8]) -> (&[u8], &[u8]) {
    // Parameters after '>' belong to the header; without brackets, after the URI.
    let params_from = memchr(b'>', value).unwrap_or(0);
    (uri_user(value), param(&value[params_from..], b"tag="))
}

/// Value of `;name=value` (name given with its '='), empty when absent.
fn param<'a>(value: &'a [u8], name: &[u8]) -> &'a [u8] {
    let mut from = 0;
    while let Some(i) = find(&value[from..], name) {
        let at = from + i;
        let before = if at == 0 { b' ' } else { value[at - 1] };
        if before == b';' || before == b' ' {
            let v = &value[at + name.len()..];
            let end = v
                .iter()
                .position(|&c| c == b';' || c == b',' || c == b' ' || c == b'>')
                .unwrap_or(v.len());
            return &v[..end];
        }
        from = at + name.len();
    }
    b""
}

/// The user part of the first SIP/SIPS/TEL URI in `value` (RFC 3261 §19.1.1).
pub fn uri_user(value: &[u8]) -> &[u8] {
    if let Some(rest) = sip_uri_rest(value) {
        let end = rest
            .iter()
            .position(|&c| c == b'@' || c == b';' || c == b'>' || c == b' ' || c == b'?')
            .unwrap_or(rest.len());
        if rest.get(end) != Some(&b'@') {
            return b"";
        }
        // Drop a password in "user:password@host" (RFC 3261 §19.1.1 discourages it).
        let user = &rest[..end];
        return match memchr(b':', user) {
            Some(c) => &user[..c],
            None => user,
        };
    }
    if let Some(i) = find(value, b"tel:") {
        let number = &value[i + 4..];
        let end = number
            .iter()
            .position(|&c| c == b';' || c == b'>' || c == b' ')
            .unwrap_or(number.len());
        return &number[..end];
    }
    b""
}

/// The host part of the first SIP URI in `value`.
pub fn uri_host(value: &[u8]) -> &[u8] {
    let Some(rest) = sip_uri_rest(value) else {
        return b"";
    };
    let end = rest
        .iter()
        .position(|&c| c == b';' || c == b'>' || c == b' ' || c == b'?')
        .unwrap_or(rest.len());
    let hostport = &rest[..end];
    let hostport = match memchr(b'@', hostport) {
        Some(a) => &hostport[a + 1..],
        None => hostport,
    };
    strip_port(hostport)
}

fn sip_uri_rest(value: &[u8]) -> Option<&[u8]> {
    if let Some(i) = find(value, b"sip:") {
        return Some(&value[i + 4..]);
    }
    find(value, b"sips:").map(|i| &value[i + 5..])
}

/// First occurrence of a short `needle`: memchr on its first byte, then compare. Header values
/// are short, so this beats building a `memmem` searcher per call.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn strip_port(hostport: &[u8]) -> &[u8] {
    if hostport.first() == Some(&b'[') {
        // IPv6 reference (RFC 3261 §25.1 `IPv6reference`).
        return match memchr(b']', hostport) {
            Some(e) => &hostport[1..e],
            None => &hostport[1..],
        };
    }
    match memchr(b':', hostport) {
        Some(c) => &hostport[..c],
        None => hostport,
    }
}

fn parse_usize(v: &[u8]) -> Option<usize> {
    let v = trim(v);
    if v.is_empty() || v.len() > 9 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

/// Strip one trailing `\r`.
pub fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Strip ASCII spaces and tabs (and CR) at both ends.
pub fn trim(v: &[u8]) -> &[u8] {
    let is_ws = |c: &u8| *c == b' ' || *c == b'\t' || *c == b'\r';
    let start = v.iter().position(|c| !is_ws(c)).unwrap_or(v.len());
    let end = v.iter().rposition(|c| !is_ws(c)).map_or(start, |e| e + 1);
    &v[start..end]
}

/// What the SDP body (RFC 4566) says about media: connection address and audio payload types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpInfo {
    /// Address of the first `c=` line.
    pub connection: String,
    /// Port of the first `m=audio` line (0 means the stream is refused, RFC 3264 §6).
    pub audio_port: Option<u16>,
    /// Payload types offered or accepted on the first `m=audio` line.
    pub payload_types: Vec<u16>,
}

/// Index the `c=` and `m=audio` lines of an SDP body.
pub fn scan_sdp(body: &[u8]) -> SdpInfo {
    let mut info = SdpInfo::default();
    let mut pos = 0;
    while pos < body.len() {
        let end = memchr(b'\n', &body[pos..]).map_or(body.len(), |e| pos + e);
        let line = trim_cr(&body[pos..end]);
        if let Some(c) = line.strip_prefix(b"c=") {
            if info.connection.is_empty() {
                // "IN IP4 192.0.2.1"
                if let Some(addr) = c.split(|&b| b == b' ').nth(2) {
                    info.connection = String::from_utf8_lossy(addr).into_owned();
                }
            }
        } else if let Some(m) = line.strip_prefix(b"m=audio ")
            && info.audio_port.is_none()
        {
            let mut parts = m.split(|&b| b == b' ');
            info.audio_port = parts
                .next()
                .and_then(parse_usize)
                .and_then(|p| u16::try_from(p).ok());
            info.payload_types = parts
                .skip(1)
                .filter_map(parse_usize)
                .filter_map(|p| u16::try_from(p).ok())
                .take(32)
                .collect();
        }
        pos = end + 1;
    }
    info
}
