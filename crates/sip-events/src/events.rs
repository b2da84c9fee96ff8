//! From a captured SIP message to the little a "can't call" diagnosis needs, and the events
//! (registration attempts, call outcomes) that requests and responses make once paired by
//! Call-ID and CSeq. Pure: no IO.

use crate::hep::HepPacket;
use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use sip_message::Scanned;
use sip_message::scan::{
    HeaderLine, StartLine, addr_uri, auth_param, cseq, uri_user, via_transport,
};

/// Longest text kept from any header (user agents, reasons, users); longer is cut.
pub const MAX_FIELD: usize = 120;

/// The compact row kept for each message of interest (no body, no credentials).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipRecord {
    /// Capture time (the agent's timestamp, else the arrival time), microseconds since the epoch.
    pub at: i64,
    pub call_id: String,
    pub cseq: u32,
    /// REGISTER, INVITE, BYE or CANCEL: the CSeq method.
    pub method: String,
    /// `None` for a request.
    pub status: Option<u16>,
    pub reason: String,
    pub from_user: String,
    pub to_user: String,
    /// Request-URI user (requests only).
    pub ruri_user: String,
    /// `ip:port` of the sender and the receiver.
    pub src: String,
    pub dst: String,
    /// udp, tcp, tls, ws, wss, sctp.
    pub transport: String,
    /// User-Agent of a request, Server of a response.
    pub user_agent: String,
    /// The `username` of an Authorization / Proxy-Authorization header (never the response).
    pub auth_user: String,
    /// Whether a 401/407 carried a challenge.
    pub challenge: bool,
}

/// Why a message was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Not SIP (HEP protocol type other than 1), or no SIP message could be read.
    NotSip,
    /// A method the window does not keep (OPTIONS, ACK, MESSAGE, ...).
    Uninteresting,
    /// No Call-ID or no readable CSeq: it cannot be paired.
    Unpairable,
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_FIELD {
        return s.to_owned();
    }
    let mut end = MAX_FIELD;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Reads a HEP packet's SIP payload into a record; `received_at` (µs) is used when the agent
/// sent no timestamp.
pub fn record_from_hep(p: &HepPacket<'_>, received_at: i64) -> Result<SipRecord, Skip> {
    if p.proto_type.is_some_and(|t| t != crate::hep::PROTO_SIP) {
        return Err(Skip::NotSip);
    }
    // Requests the window never keeps are skipped before parsing (about one message in ten).
    const SKIPPED: [&[u8]; 8] = [
        b"ACK ",
        b"OPTIONS ",
        b"NOTIFY ",
        b"SUBSCRIBE ",
        b"MESSAGE ",
        b"PUBLISH ",
        b"INFO ",
        b"UPDATE ",
    ];
    if SKIPPED.iter().any(|m| p.payload.starts_with(m)) {
        return Err(Skip::Uninteresting);
    }
    let at = p.timestamp_micros().unwrap_or(received_at);
    let src = p.src().map(|a| a.to_string()).unwrap_or_default();
    let dst = p.dst().map(|a| a.to_string()).unwrap_or_default();
    match sip_message::scan(p.payload) {
        Ok(head) => record_from_head(&head, at, src, dst, p.transport()),
        // A head that is not UTF-8 (a Latin-1 display name, say) is read lossily. Rare, so the
        // copy does not matter.
        Err(sip_message::ScanError::NotUtf8 { .. }) => {
            let text = String::from_utf8_lossy(p.payload);
            match sip_message::scan(text.as_bytes()) {
                Ok(head) => record_from_head(&head, at, src, dst, p.transport()),
                Err(_) => Err(Skip::NotSip),
            }
        }
        Err(_) => Err(Skip::NotSip),
    }
}

/// The method token of the four the window keeps, as a static string.
fn wanted_token(m: &str) -> Option<&'static str> {
    Some(match m {
        "REGISTER" => "REGISTER",
        "INVITE" => "INVITE",
        "BYE" => "BYE",
        "CANCEL" => "CANCEL",
        _ => return None,
    })
}

/// Reads a scanned head into a record: one pass over the header lines, the first of each header
/// counts, without parsing the whole message (the tests hold it to a reference built on the
/// full parser).
pub fn record_from_head(
    head: &Scanned<'_>,
    at: i64,
    src: String,
    dst: String,
    ip_transport: Option<&str>,
) -> Result<SipRecord, Skip> {
    let (mut call_id, mut cseq_v, mut from, mut to, mut via) = (None, None, None, None, None);
    let (mut agent, mut auth, mut proxy_auth, mut challenge_hdr) = (None, None, None, false);
    let agent_name = match head.start {
        StartLine::Request { .. } => "User-Agent",
        StartLine::Response { .. } => "Server",
    };
    for h in head.headers() {
        let slot = if h.is("Call-ID") {
            &mut call_id
        } else if h.is("CSeq") {
            &mut cseq_v
        } else if h.is("From") {
            &mut from
        } else if h.is("To") {
            &mut to
        } else if h.is("Via") {
            &mut via
        } else if h.is(agent_name) {
            &mut agent
        } else if h.is("Authorization") {
            &mut auth
        } else if h.is("Proxy-Authorization") {
            &mut proxy_auth
        } else {
            challenge_hdr |= h.is("WWW-Authenticate") || h.is("Proxy-Authenticate");
            continue;
        };
        if slot.is_none() {
            *slot = Some(h);
        }
    }
    let request_method = match head.start {
        StartLine::Request { method, .. } => Some(method),
        StartLine::Response { .. } => None,
    };
    let Some((seq, method)) =
        cseq_v.and_then(|h| cseq(&h.unfolded()).map(|(n, m)| (n, wanted_token(m))))
    else {
        return Err(match request_method {
            Some(m) if wanted_token(m).is_none() => Skip::Uninteresting,
            _ => Skip::Unpairable,
        });
    };
    let Some(method) = method else {
        return Err(Skip::Uninteresting);
    };
    let call_id = match call_id.map(|h| h.unfolded()) {
        Some(c) if !c.trim().is_empty() => cut(c.trim()),
        _ => return Err(Skip::Unpairable),
    };
    let user_of = |h: Option<HeaderLine<'_>>| {
        h.and_then(|h| addr_uri(&h.unfolded()).and_then(uri_user).map(cut))
            .unwrap_or_default()
    };
    let from_user = user_of(from);
    let to_user = user_of(to);
    let transport = via
        .and_then(|h| via_transport(&h.unfolded()).map(str::to_ascii_lowercase))
        .filter(|t| !t.is_empty())
        .or_else(|| ip_transport.map(str::to_owned))
        .unwrap_or_default();
    let agent = agent.map(|h| cut(&h.unfolded())).unwrap_or_default();
    let (status, reason, ruri_user, auth_user, challenge) = match head.start {
        StartLine::Request { method: m, uri } => {
            if m != method {
                // An ACK or other request inside an INVITE transaction's CSeq: not kept.
                return Err(Skip::Uninteresting);
            }
            let auth_user = auth
                .or(proxy_auth)
                .and_then(|h| auth_param(&h.unfolded(), "username").map(|u| cut(&u)))
                .unwrap_or_default();
            (
                None,
                String::new(),
                uri_user(uri).map(cut).unwrap_or_default(),
                auth_user,
                false,
            )
        }
        StartLine::Response { status, reason } => (
            Some(status),
            cut(reason),
            String::new(),
            String::new(),
            matches!(status, 401 | 407) && challenge_hdr,
        ),
    };
    Ok(SipRecord {
        at,
        call_id,
        cseq: seq,
        method: method.to_owned(),
        status,
        reason,
        from_user,
        to_user,
        ruri_user,
        src: cut(&src),
        dst: cut(&dst),
        transport: cut(&transport),
        user_agent: agent,
        auth_user,
        challenge,
    })
}

/// Microseconds since the epoch as a time (the epoch for out-of-range values).
pub fn time_of(micros: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(micros)
        .single()
        .unwrap_or(DateTime::UNIX_EPOCH)
}

/// One REGISTER transaction: the request and its final (or last) response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegAttemptEvent {
    pub at: DateTime<Utc>,
    /// The account: the To user of the REGISTER (its From user when To has none).
    pub user: String,
    /// The client's `ip:port` as the server saw it.
    pub source: String,
    pub transport: String,
    pub user_agent: String,
    /// 0 while no response was seen.
    pub status: u16,
    pub reason: String,
    /// The username of the credentials sent, when the REGISTER carried some.
    pub auth_user: Option<String>,
    /// A 401/407 with a challenge: the normal first answer, not a failure.
    pub challenge: bool,
    pub call_id: String,
    pub cseq: u32,
}

/// One call (all INVITE transactions of a Call-ID) and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallEvent {
    pub at: DateTime<Utc>,
    pub call_id: String,
    /// From user of the first INVITE.
    pub caller: String,
    /// To user of the first INVITE.
    pub callee: String,
    /// Request-URI user of the first INVITE: what was dialled.
    pub dialled: String,
    /// The deciding response (2xx beats a later failure, a final beats a provisional); 0 when none.
    pub status: u16,
    pub reason: String,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The caller's `ip:port` (sender of the first INVITE).
    pub source: String,
}

/// The parties of a call, for joining call records that have only a Call-ID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallParties {
    pub caller: String,
    pub callee: String,
    pub dialled: String,
}

/// An account's event, for its timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimelineEvent {
    Registration(RegAttemptEvent),
    Call(CallEvent),
}

impl TimelineEvent {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            TimelineEvent::Registration(r) => r.at,
            TimelineEvent::Call(c) => c.at,
        }
    }

    /// A stable key (for following a timeline whose events get their answers later).
    pub fn key(&self) -> String {
        match self {
            TimelineEvent::Registration(r) => format!("r {} {}", r.call_id, r.cseq),
            TimelineEvent::Call(c) => format!("c {}", c.call_id),
        }
    }

    /// The event in plain words, as seen from `account`:
    /// `REGISTER from 127.0.0.1:5098 udp (baresip 1.0) → 401 challenge`,
    /// `call to 95551234 → 503 Service Unavailable`.
    pub fn describe(&self, account: &str) -> String {
        match self {
            TimelineEvent::Registration(r) => {
                let mut s = format!("REGISTER from {}", or_unknown(&r.source));
                if !r.transport.is_empty() {
                    s.push(' ');
                    s.push_str(&r.transport);
                }
                if !r.user_agent.is_empty() {
                    s.push_str(&format!(" ({})", r.user_agent));
                }
                let result = match r.status {
                    0 => "no response seen".to_owned(),
                    401 | 407 if r.challenge => format!("{} challenge", r.status),
                    200..=299 => format!("{} {} registered", r.status, r.reason),
                    _ => format!("{} {}", r.status, r.reason),
                };
                format!("{s} → {}", result.trim_end())
            }
            TimelineEvent::Call(c) => {
                let outgoing = c.caller == account || c.callee != account && c.dialled != account;
                let who = if outgoing {
                    format!(
                        "call to {}",
                        or_unknown(if c.dialled.is_empty() {
                            &c.callee
                        } else {
                            &c.dialled
                        })
                    )
                } else {
                    format!("call from {}", or_unknown(&c.caller))
                };
                let mut result = match c.status {
                    0 => "no response seen".to_owned(),
                    s => format!("{s} {}", c.reason).trim_end().to_owned(),
                };
                if c.answered_at.is_some() {
                    result.push_str(" answered");
                }
                if let Some(end) = c.ended_at {
                    let secs = c
                        .answered_at
                        .map(|a| (end - a).num_seconds().max(0))
                        .unwrap_or(0);
                    if c.answered_at.is_some() {
                        result.push_str(&format!(", ended after {secs}s"));
                    } else if c.status == 0 || c.status == 487 {
                        result.push_str(" (cancelled)");
                    }
                }
                format!("{who} → {result}")
            }
        }
    }
}

fn or_unknown(s: &str) -> &str {
    if s.is_empty() { "?" } else { s }
}

/// How strongly a response decides a call's outcome: a 2xx beats everything (a later failed
/// re-INVITE does not undo an answered call), then later transactions beat earlier ones, and
/// within one a final response beats a provisional one.
pub fn call_rank(status: u16, cseq: u32) -> i64 {
    let class = if status >= 200 { 1 } else { 0 };
    let base = i64::from(cseq) * 2 + class;
    if (200..300).contains(&status) {
        base + (1 << 40)
    } else {
        base
    }
}

/// Whether a response status is final.
pub fn is_final(status: u16) -> bool {
    status >= 200
}
