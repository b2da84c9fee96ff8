//! Finding message boundaries on stream transports (RFC 3261 §18.3: Content-Length is mandatory
//! on TCP/TLS) and skipping RFC 5626 CRLF keep-alives and garbage.

use memchr::memmem;

/// Longest header section accepted before the input is called garbage; real SIP heads are a few kB.
const MAX_HEAD: usize = 64 * 1024;

/// What the next bytes of a stream hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameResult {
    /// A whole message of this many bytes starts at offset 0 (parse `&buf[..n]`).
    Complete(usize),
    /// Not enough bytes yet.
    NeedMore,
    /// Drop this many bytes: keep-alive CRLFs or a line that cannot start a SIP message.
    Skip(usize),
}

fn looks_like_start_line(line: &[u8]) -> bool {
    line.starts_with(b"SIP/2.0 ") || {
        // Request-Line: token SP ... SP SIP/x.y
        let tok_end = line.iter().position(|&b| b == b' ').unwrap_or(0);
        tok_end > 0
            && line[..tok_end]
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(b))
            && memmem::find(line, b" SIP/").is_some()
    }
}

fn content_length(head: &[u8]) -> Option<Result<usize, ()>> {
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let v = line[colon + 1..].trim_ascii();
            return Some(
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
                    .ok_or(()),
            );
        }
    }
    None
}

/// Frames the next message in a stream buffer. A head without Content-Length is taken to have
/// no body, which keeps the stream going; the parser then reports the missing header.
pub fn frame(buf: &[u8]) -> FrameResult {
    let crlf = buf
        .iter()
        .take_while(|&&b| b == b'\r' || b == b'\n')
        .count();
    if crlf > 0 {
        return FrameResult::Skip(crlf);
    }
    if buf.is_empty() {
        return FrameResult::NeedMore;
    }
    let first_line_end = memchr::memchr(b'\n', buf);
    match first_line_end {
        Some(e) if !looks_like_start_line(&buf[..e]) => return FrameResult::Skip(e + 1),
        None if buf.len() > MAX_HEAD => return FrameResult::Skip(buf.len()),
        None => return FrameResult::NeedMore,
        _ => {}
    }
    let (head_end, sep) = match (memmem::find(buf, b"\r\n\r\n"), memmem::find(buf, b"\n\n")) {
        (Some(a), Some(b)) if b + 1 < a => (b, 2),
        (Some(a), _) => (a, 4),
        (None, Some(b)) => (b, 2),
        (None, None) => {
            if buf.len() > MAX_HEAD {
                return FrameResult::Skip(first_line_end.map_or(buf.len(), |e| e + 1));
            }
            return FrameResult::NeedMore;
        }
    };
    let head = &buf[..head_end];
    let body_start = head_end + sep;
    match content_length(head) {
        Some(Ok(n)) => {
            if n > 16 * 1024 * 1024 {
                return FrameResult::Skip(body_start);
            }
            if buf.len() >= body_start + n {
                FrameResult::Complete(body_start + n)
            } else {
                FrameResult::NeedMore
            }
        }
        // An unreadable length cannot be framed: drop the head, resynchronise on the next start line.
        Some(Err(())) => FrameResult::Skip(body_start),
        None => FrameResult::Complete(body_start),
    }
}
