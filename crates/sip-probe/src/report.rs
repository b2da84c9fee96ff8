//! What a probe returns: the trace of every message, the verdict, TLS, media and DNS findings,
//! and a compact text ladder of the exchange for the CLI.

use crate::Transport;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// Direction of a traced message, seen from the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Sent,
    Received,
}

/// One message on the wire (or one notable event such as a retransmission timer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Milliseconds since the probe started.
    pub at_ms: u64,
    pub direction: Direction,
    pub transport: Transport,
    pub local: String,
    pub remote: String,
    pub bytes_len: usize,
    /// The message text with digest responses and URI passwords redacted.
    pub text: String,
    /// Why it was sent or what it meant ("retransmission 2 (Timer E)", "challenge 1").
    pub note: String,
}

/// The verdict's category (stable ids, serialised in snake_case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Ok,
    Dns,
    Unreachable,
    Refused,
    Timeout,
    Tls,
    AuthRejected,
    NotFound,
    Unavailable,
    ServerError,
    BadResponse,
    MediaNoEcho,
    MediaDegraded,
}

impl Category {
    /// The snake_case id.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Ok => "ok",
            Category::Dns => "dns",
            Category::Unreachable => "unreachable",
            Category::Refused => "refused",
            Category::Timeout => "timeout",
            Category::Tls => "tls",
            Category::AuthRejected => "auth_rejected",
            Category::NotFound => "not_found",
            Category::Unavailable => "unavailable",
            Category::ServerError => "server_error",
            Category::BadResponse => "bad_response",
            Category::MediaNoEcho => "media_no_echo",
            Category::MediaDegraded => "media_degraded",
        }
    }
}

/// The conclusion in plain words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub category: Category,
    pub summary: String,
    /// Final SIP status that decided it, if any.
    pub status: Option<u16>,
}

/// What the TLS handshake showed about the server certificate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsInfo {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    /// RFC 3339.
    pub not_before: String,
    /// RFC 3339.
    pub not_after: String,
    /// True when the chain verified against the configured trust anchors for the server name.
    pub verified: bool,
    /// The verification error in plain words, when not verified.
    pub error: Option<String>,
    /// Negotiated protocol version and cipher suite, when the handshake completed.
    pub protocol: Option<String>,
    pub cipher: Option<String>,
}

/// Media measured during a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaStats {
    /// Where we sent RTP (from the SDP answer).
    pub remote: String,
    pub local: String,
    pub codec: String,
    pub sent: u32,
    /// Our own packets that came back.
    pub echoed: u32,
    /// Packets received that were not our marked packets (other side's media).
    pub foreign: u32,
    /// 0.0 to 1.0.
    pub loss: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    /// RFC 3550 §6.4.1 interarrival jitter of the returning stream, in ms.
    pub jitter_ms: Option<f64>,
    /// The address RTP came back from, when it differs from `remote` (NAT or media relay).
    pub unexpected_source: Option<String>,
}

/// One step of RFC 3263 target resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResolutionStep {
    /// `literal`, `naptr`, `srv`, `a/aaaa`, `override`.
    pub kind: String,
    pub query: String,
    /// Records found, one per line (`10 5 5060 sip.example.com.`).
    pub answers: Vec<String>,
    pub ttl: Option<u32>,
    pub elapsed_ms: u64,
    pub error: Option<String>,
}

/// Everything a probe found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// `options`, `register`, `unregister`, `call`, `echo`, `call_between`.
    pub probe: String,
    pub trace: Vec<TraceEvent>,
    pub verdict: Verdict,
    pub tls: Option<TlsInfo>,
    pub media: Option<MediaStats>,
    pub resolution: Vec<ResolutionStep>,
    pub duration_ms: u64,
    /// Time from the first INVITE to the 200 OK, for calls.
    pub setup_ms: Option<u64>,
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("").trim_end()
}

/// A compact text ladder: one line per message with time, arrow and start line, then the verdict.
pub fn ladder(report: &ProbeReport) -> String {
    let mut out = String::new();
    let (local, remote) = report
        .trace
        .first()
        .map(|e| (e.local.clone(), e.remote.clone()))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{:>8}  {:<28}    {}",
        "ms",
        format!("probe {local}"),
        remote
    );
    for step in &report.resolution {
        let answer = if let Some(e) = &step.error {
            format!("error: {e}")
        } else {
            step.answers.join(", ")
        };
        let _ = writeln!(
            out,
            "{:>8}  dns {} {} -> {}",
            step.elapsed_ms, step.kind, step.query, answer
        );
    }
    for e in &report.trace {
        if e.bytes_len == 0 {
            let _ = writeln!(
                out,
                "{:>8}  {:<5} .. {}",
                e.at_ms,
                e.transport.via_token(),
                e.note
            );
            continue;
        }
        let line = first_line(&e.text);
        let arrow = match e.direction {
            crate::Direction::Sent => format!("{line} -->"),
            crate::Direction::Received => format!("<-- {line}"),
        };
        let note = if e.note.is_empty() {
            String::new()
        } else {
            format!("  ({})", e.note)
        };
        let _ = writeln!(
            out,
            "{:>8}  {:<5} {arrow}{note}",
            e.at_ms,
            e.transport.via_token()
        );
    }
    if let Some(t) = &report.tls {
        let _ = writeln!(
            out,
            "tls: subject {} issuer {} valid {}..{} {}",
            t.subject,
            t.issuer,
            t.not_before,
            t.not_after,
            if t.verified {
                "verified".to_owned()
            } else {
                format!("NOT verified: {}", t.error.as_deref().unwrap_or("unknown"))
            }
        );
    }
    if let Some(m) = &report.media {
        let _ = writeln!(
            out,
            "media: {} sent {} echoed {} loss {:.1}% rtt {}/{}/{} ms jitter {} ms",
            m.codec,
            m.sent,
            m.echoed,
            m.loss * 100.0,
            fmt_ms(m.rtt_min_ms),
            fmt_ms(m.rtt_avg_ms),
            fmt_ms(m.rtt_max_ms),
            fmt_ms(m.jitter_ms)
        );
    }
    let _ = writeln!(
        out,
        "verdict: {} - {} ({} ms)",
        report.verdict.category.as_str(),
        report.verdict.summary,
        report.duration_ms
    );
    out
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |v| format!("{v:.2}"))
}
