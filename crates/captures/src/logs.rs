//! Client log scanner: finds SIP messages printed by softphones (baresip, linphone, pjsip,
//! generic text logs) after timestamps and prefixes, and the TLS/transport errors they report.
//!
//! Works line by line with a bounded line buffer, so a log larger than memory is fine.

use std::io::BufRead;
use std::net::SocketAddr;

use memchr::memmem;

use crate::analysis::{Analyzer, Cause, Peer};
use crate::net::{Transport, WarnKind};
use crate::scan;

/// Longest line kept; the rest of a longer line is skipped.
const MAX_LINE: usize = 64 * 1024;
/// Largest SIP message assembled from a log.
const MAX_MESSAGE: usize = 64 * 1024;
/// A direction line ("TX ... to UDP 1.2.3.4:5060") applies to a start line this close after it.
const HINT_REACH: u64 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Sent,
    Received,
    Unknown,
}

#[derive(Debug, Clone, Copy)]
struct Hint {
    line: u64,
    dir: Dir,
    addrs: [Option<SocketAddr>; 2],
    ts: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    Headers,
    Body(usize),
}

/// Scans a text log and feeds the analyzer. Returns (lines, bytes, saw a timestamp).
pub(crate) fn scan_log(
    input: &mut dyn BufRead,
    an: &mut Analyzer,
    progress: &mut dyn FnMut(u64),
) -> std::io::Result<(u64, u64, bool)> {
    let mut s = LogScanner {
        msg: Vec::with_capacity(4096),
        state: State::Idle,
        prefix_len: 0,
        strip: None,
        hint: None,
        msg_ts: 0.0,
        msg_peers: (Peer::Local, Peer::Remote),
        last_ts: 0.0,
        any_ts: false,
        line_no: 0,
    };
    let mut line = Vec::with_capacity(1024);
    let mut bytes: u64 = 0;
    let mut next_progress: u64 = 1 << 22;
    loop {
        line.clear();
        let (n, clipped) = read_line_bounded(input, &mut line)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if clipped {
            an.warn(
                WarnKind::Log,
                format!("line {} longer than {MAX_LINE} bytes: cut", s.line_no + 1),
            );
        }
        if bytes >= next_progress {
            progress(bytes);
            next_progress = bytes + (1 << 22);
        }
        s.line_no += 1;
        let clean = strip_ansi(&line);
        s.line(&clean, an);
    }
    s.flush(an);
    Ok((s.line_no, bytes, s.any_ts))
}

fn read_line_bounded(input: &mut dyn BufRead, out: &mut Vec<u8>) -> std::io::Result<(usize, bool)> {
    let mut total = 0;
    let mut clipped = false;
    loop {
        let buf = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok((total, clipped));
        }
        let (take, done) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = MAX_LINE.saturating_sub(out.len());
        if take > room {
            clipped = true;
        }
        out.extend_from_slice(&buf[..take.min(room)]);
        input.consume(take);
        total += take;
        if done {
            return Ok((total, clipped));
        }
    }
}

/// Remove ANSI colour sequences (baresip colours its SIP trace) and the line ending.
fn strip_ansi(line: &[u8]) -> Vec<u8> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if memchr::memchr(0x1b, line).is_none() {
        return line.to_vec();
    }
    let mut out = Vec::with_capacity(line.len());
    let mut i = 0;
    while i < line.len() {
        if line[i] == 0x1b && line.get(i + 1) == Some(&b'[') {
            i += 2;
            while i < line.len() && !line[i].is_ascii_alphabetic() {
                i += 1;
            }
            i += 1;
        } else {
            out.push(line[i]);
            i += 1;
        }
    }
    out
}

struct LogScanner {
    msg: Vec<u8>,
    state: State,
    prefix_len: usize,
    strip: Option<bool>,
    hint: Option<Hint>,
    msg_ts: f64,
    msg_peers: (Peer, Peer),
    last_ts: f64,
    any_ts: bool,
    line_no: u64,
}

impl LogScanner {
    fn line(&mut self, line: &[u8], an: &mut Analyzer) {
        match self.state {
            State::Idle => {}
            State::Headers => {
                let body = self.content(line);
                match body {
                    Some(b"") => {
                        self.msg.extend_from_slice(b"\r\n");
                        let cl = scan::scan(&self.msg)
                            .and_then(|h| h.content_length)
                            .unwrap_or(0);
                        if cl == 0 {
                            self.flush(an);
                        } else {
                            self.state = State::Body(cl);
                        }
                        return;
                    }
                    Some(h) if looks_like_header(h) && find_start(line).is_none() => {
                        let h = h.to_vec();
                        self.push(&h, an);
                        return;
                    }
                    _ => self.flush(an),
                }
            }
            State::Body(remaining) => {
                let end_marker = is_end_marker(line);
                if end_marker || find_start(line).is_some() {
                    self.flush(an);
                    if end_marker {
                        return;
                    }
                } else {
                    let b = self.content(line).unwrap_or(line).to_vec();
                    self.push(&b, an);
                    let left = remaining.saturating_sub(b.len() + 2);
                    if left == 0 {
                        self.flush(an);
                    } else {
                        self.state = State::Body(left);
                    }
                    return;
                }
            }
        }
        self.idle(line, an);
    }

    /// The part of a message line after the log's prefix, if it is a message line at all.
    fn content<'l>(&mut self, line: &'l [u8]) -> Option<&'l [u8]> {
        if self.prefix_len == 0 {
            return Some(scan::trim_cr(line));
        }
        let stripped = line.get(self.prefix_len..).unwrap_or(b"");
        match self.strip {
            Some(true) => Some(stripped),
            Some(false) => Some(line),
            None => {
                if scan::trim(line).len() <= self.prefix_len && stripped.iter().all(|c| *c == b' ')
                {
                    return Some(b"");
                }
                if looks_like_header(stripped) {
                    self.strip = Some(true);
                    Some(stripped)
                } else if looks_like_header(line) {
                    self.strip = Some(false);
                    Some(line)
                } else {
                    None
                }
            }
        }
    }

    fn push(&mut self, l: &[u8], an: &mut Analyzer) {
        if self.msg.len() + l.len() + 2 > MAX_MESSAGE {
            an.warn(
                WarnKind::Log,
                format!(
                    "SIP message ending at line {} larger than {MAX_MESSAGE} bytes: cut",
                    self.line_no
                ),
            );
            self.flush(an);
            return;
        }
        self.msg.extend_from_slice(l);
        self.msg.extend_from_slice(b"\r\n");
    }

    fn flush(&mut self, an: &mut Analyzer) {
        if self.state != State::Idle && !self.msg.is_empty() {
            let (src, dst) = self.msg_peers;
            an.on_message(self.msg_ts, src, dst, Transport::Log, &self.msg);
        }
        self.msg.clear();
        self.state = State::Idle;
    }

    fn idle(&mut self, line: &[u8], an: &mut Analyzer) {
        if let Some(start) = find_start(line) {
            let prefix = &line[..start];
            let ts = parse_time(prefix).or_else(|| self.recent_hint().and_then(|h| h.ts));
            if let Some(t) = ts {
                self.last_ts = t;
                self.any_ts = true;
            }
            self.msg_ts = self.last_ts;
            let is_request = !line[start..].starts_with(b"SIP/2.0 ");
            let mut hint = self.recent_hint().unwrap_or(Hint {
                line: self.line_no,
                dir: Dir::Unknown,
                addrs: [None, None],
                ts: None,
            });
            if hint.dir == Dir::Unknown {
                hint.dir = direction(prefix);
            }
            self.msg_peers = peers(&hint, is_request);
            self.hint = None;
            self.prefix_len = start;
            self.strip = None;
            self.msg.clear();
            self.msg.extend_from_slice(&line[start..]);
            self.msg.extend_from_slice(b"\r\n");
            self.state = State::Headers;
            return;
        }
        if let Some(cause) = error_cause(line) {
            an.log_event(self.line_no, cause, scrub(line));
        }
        let addrs = socket_addrs(line);
        let dir = direction(line);
        let ts = parse_time(line);
        if addrs[0].is_some() || dir != Dir::Unknown {
            self.hint = Some(Hint {
                line: self.line_no,
                dir,
                addrs,
                ts,
            });
        } else if let Some(t) = ts {
            self.last_ts = t;
            self.any_ts = true;
        }
    }

    fn recent_hint(&self) -> Option<Hint> {
        self.hint
            .filter(|h| self.line_no.saturating_sub(h.line) <= HINT_REACH)
    }
}

/// Sender and receiver of a message from a log, from what the log line says.
fn peers(h: &Hint, is_request: bool) -> (Peer, Peer) {
    let a = |i: usize| h.addrs[i].map(Peer::Addr);
    match (h.dir, a(0), a(1)) {
        // "UDP 10.0.0.2:5060 -> 192.0.2.1:5060" (baresip): explicit source and destination.
        (_, Some(x), Some(y)) => (x, y),
        (Dir::Sent, Some(r), None) => (Peer::Local, r),
        (Dir::Received, Some(r), None) => (r, Peer::Local),
        (Dir::Sent, None, _) => (Peer::Local, Peer::Remote),
        (Dir::Received, None, _) => (Peer::Remote, Peer::Local),
        // Unknown: a client log mostly shows its own requests and the server's responses.
        (Dir::Unknown, r, _) => {
            let remote = r.unwrap_or(Peer::Remote);
            if is_request {
                (Peer::Local, remote)
            } else {
                (remote, Peer::Local)
            }
        }
    }
}

fn is_end_marker(line: &[u8]) -> bool {
    memmem::find(line, b"--end msg--").is_some() || memmem::find(line, b"--- end of").is_some()
}

/// Offset of a SIP start line inside a log line (after any prefix), if there is one.
pub(crate) fn find_start(line: &[u8]) -> Option<usize> {
    let line = scan::trim_cr(line);
    // Status-Line: "SIP/2.0 NNN ..." anywhere (Via values contain "SIP/2.0/", never "SIP/2.0 ").
    let mut from = 0;
    while let Some(i) = memmem::find(&line[from..], b"SIP/2.0 ") {
        let at = from + i;
        let ok_before = at == 0 || !line[at - 1].is_ascii_alphanumeric();
        if ok_before && scan::parse_start_line(&line[at..]).is_some() {
            return Some(at);
        }
        from = at + 8;
    }
    // Request-Line: "... METHOD URI SIP/2.0" at the end of the line.
    let lead = leading_ws(line);
    let body = scan::trim(line);
    let no_version = body.strip_suffix(b" SIP/2.0")?;
    let uri_sp = no_version.iter().rposition(|c| *c == b' ')?;
    let method_start = no_version[..uri_sp]
        .iter()
        .rposition(|c| *c == b' ')
        .map_or(0, |p| p + 1);
    let at = lead + method_start;
    scan::parse_start_line(scan::trim(&line[at..])).map(|_| at)
}

fn leading_ws(line: &[u8]) -> usize {
    line.iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(line.len())
}

fn looks_like_header(l: &[u8]) -> bool {
    if l.first().is_some_and(|c| *c == b' ' || *c == b'\t') {
        return !scan::trim(l).is_empty();
    }
    let Some(colon) = memchr::memchr(b':', l) else {
        return false;
    };
    let name = scan::trim(&l[..colon]);
    !name.is_empty()
        && name.len() <= 40
        && name[0].is_ascii_alphabetic()
        && name
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.!%*+`'~".contains(c))
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn direction(text: &[u8]) -> Dir {
    const SENT: [&str; 8] = [
        "sent to", "send ", "sending", " tx ", ".tx ", "outgoing", "-->", "transmit",
    ];
    const RECV: [&str; 8] = [
        "received from",
        "recv ",
        "receiving",
        " rx ",
        ".rx ",
        "incoming",
        "<--",
        "received ",
    ];
    let padded: Vec<u8> = [b" ", text, b" "].concat();
    let s = SENT.iter().any(|k| contains_ci(&padded, k));
    let r = RECV.iter().any(|k| contains_ci(&padded, k));
    match (s, r) {
        (true, false) => Dir::Sent,
        (false, true) => Dir::Received,
        _ => Dir::Unknown,
    }
}

/// Up to two socket addresses written in a line ("1.2.3.4:5060", "[udp://1.2.3.4:5060]").
fn socket_addrs(line: &[u8]) -> [Option<SocketAddr>; 2] {
    let mut out = [None, None];
    let mut n = 0;
    let Ok(text) = std::str::from_utf8(line) else {
        return out;
    };
    for tok in text.split([' ', '\t', ',', '(', ')', '"']) {
        if n == 2 {
            break;
        }
        if !tok.contains(':') || !tok.contains(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let mut t = tok.trim_end_matches([':', ']', '.', ';', '>']);
        if let Ok(a) = t.parse::<SocketAddr>() {
            out[n] = Some(a);
            n += 1;
            continue;
        }
        t = t.trim_start_matches(['[', '<']);
        if let Some(p) = t.find("://") {
            t = &t[p + 3..];
        }
        for cand in [t, tok.trim_start_matches('<').trim_end_matches(['>', ':'])] {
            if let Ok(a) = cand.parse::<SocketAddr>() {
                out[n] = Some(a);
                n += 1;
                break;
            }
        }
    }
    out
}

/// A time written in a log prefix: "2026-11-26 04:06:00.123" (Unix seconds) or "04:06:00.123"
/// (seconds of the day). Linphone writes milliseconds after a colon.
pub(crate) fn parse_time(text: &[u8]) -> Option<f64> {
    let text = &text[..text.len().min(96)];
    let d = |i: usize| {
        text.get(i)
            .filter(|c| c.is_ascii_digit())
            .map(|c| i64::from(c - b'0'))
    };
    let mut i = 0;
    while i + 8 <= text.len() {
        if text[i + 2] == b':'
            && text[i + 5] == b':'
            && let (Some(h1), Some(h2), Some(m1), Some(m2), Some(s1), Some(s2)) =
                (d(i), d(i + 1), d(i + 3), d(i + 4), d(i + 6), d(i + 7))
        {
            if i > 0 && text[i - 1].is_ascii_digit() {
                i += 1;
                continue;
            }
            let (h, m, s) = (h1 * 10 + h2, m1 * 10 + m2, s1 * 10 + s2);
            if h > 23 || m > 59 || s > 60 {
                i += 1;
                continue;
            }
            let mut t = (h * 3600 + m * 60 + s) as f64;
            if matches!(text.get(i + 8), Some(b'.' | b',' | b':')) {
                let mut scale = 0.1;
                let mut k = i + 9;
                while let Some(v) = d(k) {
                    if k > i + 14 {
                        break;
                    }
                    t += v as f64 * scale;
                    scale /= 10.0;
                    k += 1;
                }
            }
            // "YYYY-MM-DD " or "YYYY/MM/DD" just before.
            if i >= 11 && matches!(text[i - 1], b' ' | b'T') {
                let b = i - 11;
                if let (
                    Some(y1),
                    Some(y2),
                    Some(y3),
                    Some(y4),
                    Some(mo1),
                    Some(mo2),
                    Some(d1),
                    Some(d2),
                ) = (
                    d(b),
                    d(b + 1),
                    d(b + 2),
                    d(b + 3),
                    d(b + 5),
                    d(b + 6),
                    d(b + 8),
                    d(b + 9),
                ) {
                    let sep_ok = matches!(text[b + 4], b'-' | b'/') && text[b + 7] == text[b + 4];
                    let (y, mo, day) = (
                        y1 * 1000 + y2 * 100 + y3 * 10 + y4,
                        mo1 * 10 + mo2,
                        d1 * 10 + d2,
                    );
                    if sep_ok
                        && let Some(date) =
                            chrono::NaiveDate::from_ymd_opt(y as i32, mo as u32, day as u32)
                    {
                        let midnight = date.and_time(chrono::NaiveTime::MIN).and_utc();
                        return Some(midnight.timestamp() as f64 + t);
                    }
                }
            }
            return Some(t);
        }
        i += 1;
    }
    None
}

/// TLS or transport trouble reported by the client in a non-SIP line.
fn error_cause(line: &[u8]) -> Option<Cause> {
    const BAD: [&str; 9] = [
        "error",
        "fail",
        "alert",
        "invalid",
        "expired",
        "verify",
        "refused",
        "unreachable",
        "timed out",
    ];
    let bad = BAD.iter().any(|k| contains_ci(line, k));
    if !bad {
        return None;
    }
    let tls = ["tls", "ssl", "certificate", "handshake", "x509"]
        .iter()
        .any(|k| contains_ci(line, k));
    if tls {
        return Some(Cause::TlsError);
    }
    let transport = [
        "connection refused",
        "unreachable",
        "no route to host",
        "connection reset",
        "timed out",
        "could not resolve",
        "name resolution",
        "dns",
        "network",
        "socket",
        "connect",
    ]
    .iter()
    .any(|k| contains_ci(line, k));
    transport.then_some(Cause::TransportError)
}

/// Shorten a log line for a report and remove anything that may be a secret.
fn scrub(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let mut t: String = text.trim().chars().take(200).collect();
    for key in [
        "pass",
        "secret",
        "response=",
        "authorization",
        "nonce",
        "cookie",
    ] {
        if let Some(p) = t.to_ascii_lowercase().find(key) {
            t.truncate(p);
            t.push_str("[redacted]");
        }
    }
    t
}
