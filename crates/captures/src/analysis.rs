//! SIP messages -> transactions -> dialogs: per-call and per-registration summaries and causes.
//!
//! Only open dialogs are kept in memory. A dialog is summarised (and forgotten) once it has
//! ended and been quiet for a while, so a capture of any size is analysed in bounded memory.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use crate::net::{Sink, Transport, WarnKind};
use crate::rtp::{self, CallContext, Media, MediaProblem, MediaSummary, MediaVerdict, Side};
use crate::scan::{self, SipHead, StartLine};

/// Where a message came from or went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Peer {
    /// A network address seen in a capture or printed by a log.
    Addr(SocketAddr),
    /// The device that wrote the log.
    Local,
    /// The other side, address unknown.
    Remote,
}

impl Peer {
    pub(crate) fn label(&self) -> String {
        match self {
            Peer::Addr(a) => a.to_string(),
            Peer::Local => "client".to_owned(),
            Peer::Remote => "server".to_owned(),
        }
    }
    fn ip(&self) -> Option<IpAddr> {
        match self {
            Peer::Addr(a) => Some(a.ip()),
            _ => None,
        }
    }
}

/// What went wrong, in the runbook's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cause {
    /// Credentials were sent and refused: 403 after Authorization, or 401/407 again (a loop).
    AuthenticationRejected,
    /// 403 without a credentials exchange.
    Forbidden,
    /// TLS errors reported by the client.
    TlsError,
    /// Transport errors reported by the client (connection refused, unreachable, timeouts).
    TransportError,
    /// A request got no final response.
    NoFinalResponse,
    /// The client advertises a private address while the server saw another one (NAT).
    PrivateAddressBehindNat,
    /// 488/415/606, or an SDP answer refusing every audio stream.
    CodecRefused,
    /// 404/484/604: the number or account does not exist.
    UnknownNumber,
    /// 480: the callee is not registered.
    NotRegistered,
    /// 486/600: busy.
    Busy,
    /// 408 from the server: the callee did not answer in time.
    RequestTimeout,
    /// 5xx from the server.
    ServerError,
    /// 603: declined by the callee.
    Declined,
    /// 487 after a CANCEL: the caller hung up before an answer.
    Cancelled,
    /// Any other failure status.
    OtherFailure,
    /// An answered call with RTP in one direction only.
    OneWayAudio,
    /// An answered call with no RTP in either direction.
    NoAudio,
    /// RTP loss or jitter high enough to be heard.
    PoorAudio,
}

/// The runbook outcome a cause points to (`runbook-user-cant-call.md`, step `l2.client_logs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeHint {
    /// `authentication_failure`.
    AuthenticationFailure,
    /// `client_misconfiguration`.
    ClientMisconfiguration,
    /// `tls_failure`.
    TlsFailure,
    /// `network_problem`.
    NetworkProblem,
}

impl OutcomeHint {
    /// The outcome id used by the runbook.
    pub fn id(self) -> &'static str {
        match self {
            OutcomeHint::AuthenticationFailure => "authentication_failure",
            OutcomeHint::ClientMisconfiguration => "client_misconfiguration",
            OutcomeHint::TlsFailure => "tls_failure",
            OutcomeHint::NetworkProblem => "network_problem",
        }
    }
}

impl Cause {
    /// The outcome this cause points to, if it is a fault on the user's side or path.
    pub fn outcome(self, registration: bool) -> Option<OutcomeHint> {
        match self {
            Cause::AuthenticationRejected => Some(OutcomeHint::AuthenticationFailure),
            Cause::Forbidden | Cause::CodecRefused => Some(OutcomeHint::ClientMisconfiguration),
            // An unknown account on REGISTER means the client points at the wrong account/domain.
            Cause::UnknownNumber if registration => Some(OutcomeHint::ClientMisconfiguration),
            Cause::TlsError => Some(OutcomeHint::TlsFailure),
            Cause::TransportError
            | Cause::NoFinalResponse
            | Cause::PrivateAddressBehindNat
            | Cause::OneWayAudio
            | Cause::NoAudio => Some(OutcomeHint::NetworkProblem),
            Cause::RequestTimeout if registration => Some(OutcomeHint::NetworkProblem),
            _ => None,
        }
    }

    fn from_status(code: u16) -> Option<Cause> {
        Some(match code {
            200..=399 => return None,
            403 => Cause::Forbidden,
            404 | 484 | 604 => Cause::UnknownNumber,
            408 => Cause::RequestTimeout,
            415 | 488 | 606 => Cause::CodecRefused,
            480 => Cause::NotRegistered,
            486 | 600 => Cause::Busy,
            487 => Cause::Cancelled,
            603 => Cause::Declined,
            500..=599 => Cause::ServerError,
            _ => Cause::OtherFailure,
        })
    }
}

/// One cause found, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The cause.
    pub cause: Cause,
    /// The runbook outcome it points to, if any.
    pub outcome: Option<OutcomeHint>,
    /// Plain words for the support agent.
    pub text: String,
    /// The account concerned, when known.
    pub user: Option<String>,
    /// The Call-ID of an example dialog, when the finding comes from one.
    pub call_id: Option<String>,
    /// How many calls, registrations or log lines showed it.
    pub count: u32,
}

/// The ladder diagram of one dialog: columns, arrows and their labels.
///
/// Labels live in one string per dialog rather than one allocation per message: building the
/// ladder runs for every message of a capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ladder {
    /// Columns: the addresses (or "client"/"server" in logs) in order of appearance.
    pub endpoints: Vec<String>,
    /// Arrows, in order (capped at 64).
    pub events: Vec<LadderEvent>,
    labels: String,
}

impl Ladder {
    /// The label of an arrow (`INVITE`, `180 Ringing`, ...).
    pub fn label(&self, e: &LadderEvent) -> &str {
        let start = e.label_at as usize;
        self.labels
            .get(start..start + usize::from(e.label_len))
            .unwrap_or("")
    }

    /// Arrows with their labels.
    pub fn iter(&self) -> impl Iterator<Item = (&LadderEvent, &str)> {
        self.events.iter().map(|e| (e, self.label(e)))
    }
}

/// One arrow of a ladder diagram.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LadderEvent {
    /// Seconds since the dialog's first message.
    pub t: f64,
    /// Sender: index into the summary's `endpoints`.
    pub from: u8,
    /// Receiver: index into the summary's `endpoints`.
    pub to: u8,
    label_at: u32,
    label_len: u16,
    /// Same transaction and message seen before (RFC 3261 §17 retransmission).
    pub retransmission: bool,
}

/// A call (INVITE dialog) as seen in the input.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallSummary {
    /// Call-ID.
    pub call_id: String,
    /// Caller (From user).
    pub from_user: String,
    /// Callee (Request-URI user, else To user).
    pub to_user: String,
    /// Time of the first message (seconds; Unix time for captures, log time for logs).
    pub start: f64,
    /// `start` as text.
    pub start_text: String,
    /// Final response to the INVITE, if any (the last one after authentication rounds).
    pub final_status: Option<u16>,
    /// Its reason phrase.
    pub final_reason: String,
    /// INVITE -> first 18x, milliseconds.
    pub post_dial_delay_ms: Option<u64>,
    /// INVITE -> 2xx, milliseconds.
    pub setup_time_ms: Option<u64>,
    /// 2xx -> BYE, milliseconds.
    pub duration_ms: Option<u64>,
    /// Retransmitted requests and responses.
    pub retransmissions: u32,
    /// 401/407 challenges received.
    pub auth_rounds: u32,
    /// Transport of the INVITE.
    pub transport: Transport,
    /// Where the INVITE came from.
    pub client: String,
    /// Where it went.
    pub server: String,
    /// User-Agent of the caller.
    pub user_agent: String,
    /// Warning or Reason text of the final response.
    pub warning: String,
    /// Messages seen.
    pub messages: u32,
    /// Causes, most important first; empty for a successful call.
    pub causes: Vec<Finding>,
    /// The media side: RTP streams from the SDP and the verdict (`None`: the call had no SDP).
    pub media: Option<MediaSummary>,
    /// The ladder (capped at 64 arrows); not serialised.
    #[serde(skip)]
    pub ladder: Ladder,
}

/// A registration (REGISTER transactions sharing a Call-ID).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistrationSummary {
    /// Call-ID.
    pub call_id: String,
    /// Address-of-record user (To user).
    pub user: String,
    /// Registrar host (Request-URI host).
    pub registrar: String,
    /// First message time.
    pub start: f64,
    /// `start` as text.
    pub start_text: String,
    /// REGISTER requests sent (not counting retransmissions).
    pub attempts: u32,
    /// 401/407 challenges received.
    pub auth_rounds: u32,
    /// The last final response that was not a challenge, or the last challenge.
    pub final_status: Option<u16>,
    /// Its reason phrase.
    pub final_reason: String,
    /// Retransmissions.
    pub retransmissions: u32,
    /// Transport.
    pub transport: Transport,
    /// Where the REGISTER came from.
    pub client: String,
    /// Host in the Contact header.
    pub contact_host: String,
    /// User-Agent.
    pub user_agent: String,
    /// Warning text of the final response.
    pub warning: String,
    /// Causes; empty for a successful registration.
    pub causes: Vec<Finding>,
    /// The ladder (capped at 64 arrows); not serialised.
    #[serde(skip)]
    pub ladder: Ladder,
}

/// Counters over the whole input.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Stats {
    /// Bytes read (after decompression).
    pub bytes: u64,
    /// Files read (several files of a ring buffer make one analysis).
    pub files: u64,
    /// Packets (captures) or lines (logs) read.
    pub packets: u64,
    /// SIP messages found.
    pub sip_messages: u64,
    /// Seconds between the first and the last message.
    pub duration: f64,
    /// Requests outside calls and registrations (OPTIONS, SUBSCRIBE, ...).
    pub other_requests: u64,
    /// Most dialogs held open at once: memory follows this, not the input size.
    pub peak_open_dialogs: u64,
    /// Calls found (matching the `user` filter), kept or not.
    pub calls: u64,
    /// Registrations found (matching the `user` filter), kept or not.
    pub registrations: u64,
    /// Summaries past `AnalyzeOptions::keep` that were streamed or counted but not kept in the
    /// [`crate::Analysis`]; their findings are still counted.
    pub summaries_not_kept: u64,
    /// RTP and RTCP counters.
    pub media: rtp::MediaStats,
}

/// Per-account counters: the index behind `--user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UserIndex {
    /// Calls placed or received.
    pub calls: u32,
    /// Of which failed.
    pub failed_calls: u32,
    /// Registrations.
    pub registrations: u32,
    /// Of which failed.
    pub failed_registrations: u32,
}

/// A problem the client wrote in its own log (TLS, transport).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEvent {
    /// Line number (1-based).
    pub line: u64,
    /// TLS or transport.
    pub cause: Cause,
    /// The log line, shortened and with secrets removed.
    pub text: String,
}

const LADDER_CAP: usize = 64;
const SEEN_CAP: usize = 64;
/// A finished dialog stays open this long for late retransmissions (RFC 3261 Timer H / J: 64*T1).
const LINGER_S: f64 = 32.0;
/// A call without a final response is given up after this long.
const CALL_IDLE_S: f64 = 300.0;
const REG_IDLE_S: f64 = 3600.0;
const MAX_LOG_EVENTS: usize = 50;
const MAX_WARNINGS_PER_KIND: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Call,
    Registration,
}

struct Dialog {
    kind: Kind,
    call_id: String,
    from_user: String,
    to_user: String,
    registrar: String,
    start: f64,
    last: f64,
    transport: Transport,
    client: Peer,
    server: Peer,
    user_agent: String,
    contact_host: String,
    via_host: String,
    received: String,
    first_request_ts: Option<f64>,
    first_18x: Option<f64>,
    answered_at: Option<f64>,
    bye_at: Option<f64>,
    final_status: Option<u16>,
    final_reason: String,
    warning: String,
    retransmissions: u32,
    auth_rounds: u32,
    attempts: u32,
    last_request_had_credentials: bool,
    challenged_after_credentials: bool,
    rejected_after_credentials: bool,
    cancelled: bool,
    offer_private: Option<String>,
    answer_refused: bool,
    /// Audio payload types of the first SDP offer (INVITE outside a dialog).
    offer_pts: Vec<u16>,
    /// Payload types of the SDP answer that the offer did not contain (RFC 3264 §6.1).
    answer_not_offered: Vec<u16>,
    /// From tag of the first request: tells the caller's requests from the callee's.
    caller_tag: Vec<u8>,
    /// The call's media session (opened at its first SDP).
    media_id: Option<u64>,
    finished: bool,
    cut_by_end: bool,
    messages: u32,
    seen: Vec<u64>,
    ladder: Ladder,
    peers: Vec<Peer>,
}

/// Collects messages and produces the `Analysis`.
pub(crate) struct Analyzer<'s> {
    keep: usize,
    on_summary: Option<&'s dyn Fn(crate::Summary<'_>)>,
    /// Findings of the summaries not kept, grouped by (cause, user, outcome).
    not_kept_findings: HashMap<(Cause, Option<String>, Option<OutcomeHint>), Finding>,
    open: HashMap<Box<[u8]>, Dialog>,
    calls: Vec<CallSummary>,
    registrations: Vec<RegistrationSummary>,
    users: BTreeMap<String, UserIndex>,
    user_filter: Option<String>,
    pub(crate) stats: Stats,
    first_ts: Option<f64>,
    last_ts: f64,
    last_sweep: f64,
    warnings: Vec<String>,
    warn_counts: BTreeMap<WarnKind, u32>,
    pub(crate) log_events: Vec<LogEvent>,
    log_event_count: u32,
    pub(crate) media: Media,
}

impl<'s> Analyzer<'s> {
    pub(crate) fn new(
        user: Option<String>,
        keep: Option<usize>,
        on_summary: Option<&'s dyn Fn(crate::Summary<'_>)>,
    ) -> Self {
        Analyzer {
            keep: keep.unwrap_or(usize::MAX),
            on_summary,
            not_kept_findings: HashMap::new(),
            open: HashMap::new(),
            calls: Vec::new(),
            registrations: Vec::new(),
            users: BTreeMap::new(),
            user_filter: user,
            stats: Stats::default(),
            first_ts: None,
            last_ts: 0.0,
            last_sweep: 0.0,
            warnings: Vec::new(),
            warn_counts: BTreeMap::new(),
            log_events: Vec::new(),
            log_event_count: 0,
            media: Media::default(),
        }
    }

    pub(crate) fn log_event(&mut self, line: u64, cause: Cause, text: String) {
        self.log_event_count += 1;
        if self.log_events.len() < MAX_LOG_EVENTS {
            self.log_events.push(LogEvent { line, cause, text });
        }
    }

    /// One SIP message between two peers.
    pub(crate) fn on_message(&mut self, ts: f64, src: Peer, dst: Peer, tr: Transport, msg: &[u8]) {
        let Some(head) = scan::scan(msg) else {
            return;
        };
        self.stats.sip_messages += 1;
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
        }
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        if ts - self.last_sweep > 5.0 {
            self.sweep(ts);
        }
        if head.call_id.is_empty() {
            self.warn(
                WarnKind::BadPacket,
                "SIP message without Call-ID ignored".to_owned(),
            );
            return;
        }
        let method = match head.start {
            Some(StartLine::Request { method, .. }) => method,
            _ => head.cseq_method,
        };
        let kind = match method {
            b"REGISTER" => Kind::Registration,
            b"INVITE" | b"ACK" | b"BYE" | b"CANCEL" | b"PRACK" | b"UPDATE" | b"INFO" => Kind::Call,
            _ => {
                if head.method().is_some() {
                    self.stats.other_requests += 1;
                }
                // A stray in-dialog request of a known call still belongs to its ladder.
                if let Some(d) = self.open.get_mut(head.call_id) {
                    d.record(ts, src, dst, &head, msg, &mut self.media);
                }
                return;
            }
        };
        // One hash lookup for the common case: the dialog is already open.
        if let Some(d) = self.open.get_mut(head.call_id) {
            d.record(ts, src, dst, &head, msg, &mut self.media);
        } else {
            let mut d = Dialog::new(kind, &head, ts, src, dst, tr);
            d.record(ts, src, dst, &head, msg, &mut self.media);
            self.open.insert(head.call_id.into(), d);
            self.stats.peak_open_dialogs = self.stats.peak_open_dialogs.max(self.open.len() as u64);
        }
    }

    fn sweep(&mut self, now: f64) {
        self.last_sweep = now;
        let done: Vec<Box<[u8]>> = self
            .open
            .iter()
            .filter(|(_, d)| {
                // RTP keeps a call alive between its SIP messages.
                let last = match d.media_id {
                    Some(id) => d.last.max(self.media.last_activity(id)),
                    None => d.last,
                };
                let idle = now - last;
                (d.finished && idle > LINGER_S)
                    || (d.kind == Kind::Call && idle > CALL_IDLE_S)
                    || idle > REG_IDLE_S
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in done {
            if let Some(d) = self.open.remove(&k) {
                self.summarise(d);
            }
        }
    }

    fn summarise(&mut self, d: Dialog) {
        let matches = self.user_filter.as_deref().is_none_or(|u| d.concerns(u));
        match d.kind {
            Kind::Call => {
                let media = d.media_id.and_then(|id| {
                    let ctx = CallContext {
                        start: d.start,
                        answered_at: d.answered_at,
                        bye_at: d.bye_at,
                        capture_end: self.last_ts.max(self.media.last_ts),
                        caller_public: d.client.ip().filter(|ip| !is_private(ip)),
                        answer_not_offered: (!d.answer_not_offered.is_empty())
                            .then(|| codec_names(&d.answer_not_offered)),
                    };
                    self.media.close(id, &ctx)
                });
                let user = (!d.from_user.is_empty()).then(|| d.from_user.clone());
                let call_id = d.call_id.clone();
                let mut s = d.call_summary();
                if let Some((summary, problems)) = media {
                    s.media = Some(summary);
                    for p in problems {
                        s.causes.push(media_finding(p, &user, &call_id));
                    }
                }
                for u in [&s.from_user, &s.to_user] {
                    if u.is_empty() {
                        continue;
                    }
                    let e = self.users.entry(u.clone()).or_default();
                    e.calls += 1;
                    if !s.causes.is_empty() {
                        e.failed_calls += 1;
                    }
                }
                if matches {
                    self.stats.calls += 1;
                    if let Some(f) = self.on_summary {
                        f(crate::Summary::Call(&s));
                    }
                    if self.calls.len() + self.registrations.len() < self.keep {
                        self.calls.push(s);
                    } else {
                        self.not_kept(&s.causes);
                    }
                }
            }
            Kind::Registration => {
                let s = d.registration_summary();
                if !s.user.is_empty() {
                    let e = self.users.entry(s.user.clone()).or_default();
                    e.registrations += 1;
                    if !s.causes.is_empty() {
                        e.failed_registrations += 1;
                    }
                }
                if matches {
                    self.stats.registrations += 1;
                    if let Some(f) = self.on_summary {
                        f(crate::Summary::Registration(&s));
                    }
                    if self.calls.len() + self.registrations.len() < self.keep {
                        self.registrations.push(s);
                    } else {
                        self.not_kept(&s.causes);
                    }
                }
            }
        }
    }

    fn not_kept(&mut self, causes: &[Finding]) {
        self.stats.summaries_not_kept += 1;
        for f in causes {
            self.not_kept_findings
                .entry((f.cause, f.user.clone(), f.outcome))
                .and_modify(|g| g.count += f.count)
                .or_insert_with(|| f.clone());
        }
    }

    /// Summarise everything still open and build the result.
    pub(crate) fn finish(mut self, input_kind: crate::InputKind) -> crate::Analysis {
        let mut open: Vec<Dialog> = self.open.drain().map(|(_, d)| d).collect();
        // In the order they started, as a streamed listing reads best.
        open.sort_by(|a, b| a.start.total_cmp(&b.start));
        for mut d in open {
            // Still unfinished when the input ended: say so rather than blame the peer.
            d.cut_by_end = !d.finished && self.last_ts - d.last < LINGER_S;
            self.summarise(d);
        }
        self.media.finish();
        self.stats.media = self.media.stats.clone();
        if self.stats.media.streams_not_tracked > 0 {
            self.warnings.push(format!(
                "{} RTP stream(s) not followed: more than {} streams were open at once",
                self.stats.media.streams_not_tracked,
                rtp::MAX_OPEN_STREAMS
            ));
        }
        if self.stats.media.unsignalled_streams > self.media.listed.len() as u64 {
            self.warnings.push(format!(
                "{} RTP stream(s) without signalling past the first {} are counted, not listed",
                self.stats.media.unsignalled_streams - self.media.listed.len() as u64,
                self.media.listed.len()
            ));
        }
        let calls = std::mem::take(&mut self.calls);
        self.calls = sort_moving_once(calls, |c| (c.start, c.call_id.as_str()));
        let regs = std::mem::take(&mut self.registrations);
        self.registrations = sort_moving_once(regs, |r| (r.start, r.call_id.as_str()));
        for (kind, n) in &self.warn_counts {
            if *n > MAX_WARNINGS_PER_KIND {
                self.warnings.push(format!(
                    "{} more warning(s) of the same kind ({kind:?})",
                    n - MAX_WARNINGS_PER_KIND
                ));
            }
        }
        if self.log_event_count as usize > self.log_events.len() {
            self.warnings.push(format!(
                "{} more client log error line(s) not listed",
                self.log_event_count as usize - self.log_events.len()
            ));
        }
        self.stats.duration = self.first_ts.map_or(0.0, |f| round_ms(self.last_ts - f));
        // Streamed summaries were delivered whole: only a truncated listing needs a word.
        if self.stats.summaries_not_kept > 0 && self.on_summary.is_none() {
            self.warnings.push(format!(
                "{} call(s) and registration(s) past the first {} are not listed (their findings are counted)",
                self.stats.summaries_not_kept, self.keep
            ));
        }
        let mut findings: Vec<Finding> = Vec::new();
        let mut add = |f: &Finding| {
            if let Some(g) = findings
                .iter_mut()
                .find(|g| g.cause == f.cause && g.user == f.user && g.outcome == f.outcome)
            {
                g.count += f.count;
            } else {
                findings.push(f.clone());
            }
        };
        for r in &self.registrations {
            r.causes.iter().for_each(&mut add);
        }
        for c in &self.calls {
            c.causes.iter().for_each(&mut add);
        }
        let mut rest: Vec<Finding> = self.not_kept_findings.into_values().collect();
        rest.sort_by(|a, b| (a.cause, &a.user).cmp(&(b.cause, &b.user)));
        rest.iter().for_each(&mut add);
        crate::Analysis {
            findings,
            unsignalled_streams: std::mem::take(&mut self.media.listed),
            input_kind,
            calls: self.calls,
            registrations: self.registrations,
            users: self.users,
            log_events: self.log_events,
            warnings: self.warnings,
            stats: self.stats,
        }
    }

    pub(crate) fn warn(&mut self, kind: WarnKind, text: String) {
        let n = self.warn_counts.entry(kind).or_insert(0);
        *n += 1;
        if *n <= MAX_WARNINGS_PER_KIND {
            self.warnings.push(text);
        }
    }
}

impl Sink for Analyzer<'_> {
    fn message(&mut self, ts: f64, src: SocketAddr, dst: SocketAddr, tr: Transport, msg: &[u8]) {
        self.on_message(ts, Peer::Addr(src), Peer::Addr(dst), tr, msg);
    }
    fn udp(&mut self, ts: f64, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        self.media.udp(ts, src, dst, data);
    }
    fn warn(&mut self, kind: WarnKind, text: String) {
        Analyzer::warn(self, kind, text);
    }
}

/// Sort by (start, Call-ID), moving each (large) summary once: sort indices, then permute.
fn sort_moving_once<T>(v: Vec<T>, key: impl Fn(&T) -> (f64, &str)) -> Vec<T> {
    let order = |a: &T, b: &T| {
        let (ka, kb) = (key(a), key(b));
        ka.0.total_cmp(&kb.0).then(ka.1.cmp(kb.1))
    };
    if v.is_sorted_by(|a, b| order(a, b).is_le()) {
        return v;
    }
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| order(&v[a], &v[b]));
    let mut slots: Vec<Option<T>> = v.into_iter().map(Some).collect();
    idx.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Text for a ladder label: ASCII in practice, so validate rather than copy-and-replace.
fn label_text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("?")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Bound what one header can add to a ladder label.
fn clip(b: &[u8]) -> &[u8] {
    &b[..b.len().min(64)]
}

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

fn ms(from: f64, to: f64) -> u64 {
    ((to - from).max(0.0) * 1000.0).round() as u64
}

/// A 64-bit fingerprint of the parts that identify a message within its transaction, eight
/// bytes at a time (multiply-rotate, as in FxHash): it runs for every message.
fn fingerprint(parts: &[&[u8]], n: u32) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = u64::from(n);
    for p in parts {
        let mut chunks = p.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = (h.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        // The length separates ("ab","c") from ("a","bc").
        h = (h.rotate_left(5) ^ u64::from_le_bytes(tail) ^ ((p.len() as u64) << 56))
            .wrapping_mul(K);
    }
    h
}

/// RFC 1918, RFC 6598 (carrier-grade NAT) and RFC 4193 addresses.
pub(crate) fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

impl Dialog {
    fn new(kind: Kind, head: &SipHead<'_>, ts: f64, src: Peer, dst: Peer, tr: Transport) -> Self {
        // The side that sent the first request is the client; a response first means we joined late.
        let (client, server) = if head.method().is_some() {
            (src, dst)
        } else {
            (dst, src)
        };
        let to_user = match head.ruri_user() {
            b"" => head.to_user,
            u => u,
        };
        let registrar = match head.start {
            Some(StartLine::Request { uri, .. }) => text(scan::uri_host(uri)),
            _ => String::new(),
        };
        Dialog {
            kind,
            call_id: text(head.call_id),
            from_user: text(head.from_user),
            to_user: text(if kind == Kind::Registration {
                head.to_user
            } else {
                to_user
            }),
            registrar,
            start: ts,
            last: ts,
            transport: tr,
            client,
            server,
            user_agent: String::new(),
            contact_host: String::new(),
            via_host: String::new(),
            received: String::new(),
            first_request_ts: None,
            first_18x: None,
            answered_at: None,
            bye_at: None,
            final_status: None,
            final_reason: String::new(),
            warning: String::new(),
            retransmissions: 0,
            auth_rounds: 0,
            attempts: 0,
            last_request_had_credentials: false,
            challenged_after_credentials: false,
            rejected_after_credentials: false,
            cancelled: false,
            offer_private: None,
            answer_refused: false,
            offer_pts: Vec::new(),
            answer_not_offered: Vec::new(),
            caller_tag: head.from_tag.to_vec(),
            media_id: None,
            finished: false,
            cut_by_end: false,
            messages: 0,
            // Sized for a typical call (about ten messages, two peers): no regrowth on the hot path.
            seen: Vec::with_capacity(16),
            ladder: Ladder {
                endpoints: Vec::new(),
                events: Vec::with_capacity(12),
                labels: String::with_capacity(192),
            },
            peers: Vec::with_capacity(2),
        }
    }

    fn concerns(&self, user: &str) -> bool {
        let norm = |s: &str| s.trim_start_matches('+').to_ascii_lowercase();
        let u = norm(user);
        [&self.from_user, &self.to_user]
            .iter()
            .any(|x| !x.is_empty() && norm(x) == u)
    }

    fn record(
        &mut self,
        ts: f64,
        src: Peer,
        dst: Peer,
        head: &SipHead<'_>,
        msg: &[u8],
        media: &mut Media,
    ) {
        self.messages += 1;
        self.last = self.last.max(ts);
        let status = head.status().unwrap_or(0);
        let fp = fingerprint(
            &[
                head.via_branch,
                head.cseq_method,
                head.to_tag,
                head.method().unwrap_or(b""),
            ],
            head.cseq.wrapping_mul(1000).wrapping_add(u32::from(status)),
        );
        let retrans = self.seen.contains(&fp);
        if retrans {
            self.retransmissions += 1;
        } else if self.seen.len() < SEEN_CAP {
            self.seen.push(fp);
        }
        if self.ladder.events.len() < LADDER_CAP && self.ladder.labels.len() < 8192 {
            // Labels are appended to one string without `format!`: this runs for every message.
            let label = &mut self.ladder.labels;
            let at = label.len();
            match head.start {
                Some(StartLine::Request { method, .. }) => {
                    label.push_str(label_text(clip(method)));
                    if head.has_credentials {
                        label.push_str(" (with credentials)");
                    }
                }
                Some(StartLine::Response { code, reason }) => {
                    for d in [code / 100, code / 10 % 10, code % 10] {
                        label.push(char::from(b'0' + d as u8));
                    }
                    label.push(' ');
                    label.push_str(label_text(clip(reason)));
                    if head.cseq_method != b"INVITE" || code >= 200 {
                        label.push_str(" (");
                        label.push_str(label_text(clip(head.cseq_method)));
                        label.push(')');
                    }
                }
                None => {}
            }
            let len = (label.len() - at) as u16;
            let from = self.peer_index(src);
            let to = self.peer_index(dst);
            self.ladder.events.push(LadderEvent {
                t: round_ms(ts - self.start),
                from,
                to,
                label_at: at as u32,
                label_len: len,
                retransmission: retrans,
            });
        }
        if retrans {
            return;
        }
        match head.start {
            Some(StartLine::Request { method, .. }) => self.request(ts, src, method, head, msg),
            Some(StartLine::Response { code, reason }) => {
                self.response(ts, code, reason, head, msg);
            }
            None => {}
        }
        if self.kind == Kind::Call {
            self.media(ts, head, msg, media);
        }
    }

    /// SDP of an offer or answer (INVITE, re-INVITE, UPDATE, PRACK, ACK and their 1xx/2xx):
    /// RTP and RTCP to its addresses belong to this call.
    fn media(&mut self, ts: f64, head: &SipHead<'_>, msg: &[u8], media: &mut Media) {
        let is_request = head.method().is_some();
        let carries_sdp = match head.start {
            Some(StartLine::Request { method, .. }) => {
                matches!(method, b"INVITE" | b"UPDATE" | b"ACK" | b"PRACK")
            }
            Some(StartLine::Response { code, .. }) => {
                (101..300).contains(&code)
                    && matches!(head.cseq_method, b"INVITE" | b"UPDATE" | b"PRACK")
            }
            None => false,
        };
        if carries_sdp
            && let Some(body) = sdp_body(head, msg)
            && let Some(sdp) = rtp::sdp_audio(body)
        {
            // A request with the caller's From tag comes from the caller; a response to it
            // from the callee (and the other way round for the callee's requests).
            let from_caller = (head.from_tag == self.caller_tag.as_slice()) == is_request;
            let side = if from_caller {
                Side::Caller
            } else {
                Side::Callee
            };
            let id = match self.media_id {
                Some(id) => id,
                None => {
                    let id = media.open_session(ts);
                    self.media_id = Some(id);
                    id
                }
            };
            media.sdp(id, side, sdp);
        }
        if let Some(id) = self.media_id {
            if let Some(a) = self.answered_at {
                media.answered(id, a);
            }
            if let Some(b) = self.bye_at {
                media.ended(id, b);
            }
        }
    }

    fn peer_index(&mut self, p: Peer) -> u8 {
        if let Some(i) = self.peers.iter().position(|q| *q == p) {
            return i as u8;
        }
        if self.peers.len() >= 16 {
            // A dialog spread over more hosts than a ladder can show: fold the rest together.
            return 15;
        }
        self.peers.push(p);
        (self.peers.len() - 1) as u8
    }

    fn finish_ladder(&mut self) -> Ladder {
        let mut ladder = std::mem::take(&mut self.ladder);
        ladder.endpoints = self.peers.iter().map(Peer::label).collect();
        ladder
    }

    fn request(&mut self, ts: f64, src: Peer, method: &[u8], head: &SipHead<'_>, msg: &[u8]) {
        match method {
            b"INVITE" | b"REGISTER" => {
                self.attempts += 1;
                if self.first_request_ts.is_none() {
                    self.first_request_ts = Some(ts);
                }
                self.last_request_had_credentials = head.has_credentials;
                if self.user_agent.is_empty() {
                    self.user_agent = text(head.user_agent);
                }
                // Usually unchanged from the previous request: do not reallocate then.
                if !head.contact_host.is_empty()
                    && self.contact_host.as_bytes() != head.contact_host
                {
                    self.contact_host = text(head.contact_host);
                }
                if !head.via_host.is_empty() && self.via_host.as_bytes() != head.via_host {
                    self.via_host = text(head.via_host);
                }
                // A new request to a finished registration is a refresh: reopen it.
                self.finished = false;
                if method == b"INVITE"
                    && head.to_tag.is_empty()
                    && let Some(sdp) = body_sdp(head, msg)
                {
                    self.check_private(src, &sdp.connection);
                    if self.offer_pts.is_empty() {
                        self.offer_pts = sdp.payload_types;
                    }
                }
                if let Ok(ip) = self.contact_host.parse::<IpAddr>()
                    && is_private(&ip)
                    && let Some(seen) = src.ip()
                    && seen != ip
                    && !is_private(&seen)
                    && self.offer_private.is_none()
                {
                    self.offer_private = Some(format!(
                        "Contact {} but packets came from {}",
                        self.contact_host, seen
                    ));
                }
            }
            b"CANCEL" => self.cancelled = true,
            b"BYE" => {
                if self.bye_at.is_none() {
                    self.bye_at = Some(ts);
                }
                if self.answered_at.is_some() || self.final_status.is_some() {
                    self.finished = true;
                }
            }
            _ => {}
        }
    }

    fn check_private(&mut self, src: Peer, addr: &str) {
        let Ok(ip) = addr.parse::<IpAddr>() else {
            return;
        };
        if !is_private(&ip) || self.offer_private.is_some() {
            return;
        }
        if let Some(seen) = src.ip()
            && seen != ip
            && !is_private(&seen)
        {
            self.offer_private = Some(format!(
                "SDP offers media at private {ip} but packets came from {seen}"
            ));
        }
    }

    fn response(&mut self, ts: f64, code: u16, reason: &[u8], head: &SipHead<'_>, msg: &[u8]) {
        let method = head.cseq_method;
        if method != b"INVITE" && method != b"REGISTER" {
            return;
        }
        if !head.via_received.is_empty() && self.received.is_empty() {
            self.received = text(head.via_received);
            self.check_received();
        }
        if (180..200).contains(&code) && self.first_18x.is_none() {
            self.first_18x = Some(ts);
        }
        if code < 200 {
            return;
        }
        if code == 401 || code == 407 {
            self.auth_rounds += 1;
            if self.last_request_had_credentials {
                self.challenged_after_credentials = true;
            }
        } else if code == 403 && self.last_request_had_credentials {
            self.rejected_after_credentials = true;
        }
        self.final_status = Some(code);
        self.final_reason = text(reason);
        self.warning = text(if head.warning.is_empty() {
            head.reason
        } else {
            head.warning
        });
        if (200..300).contains(&code) {
            if method == b"INVITE" {
                if self.answered_at.is_none() {
                    self.answered_at = Some(ts);
                }
                if let Some(sdp) = body_sdp(head, msg) {
                    if sdp.audio_port == Some(0) {
                        self.answer_refused = true;
                    } else if !self.offer_pts.is_empty() && self.answer_not_offered.is_empty() {
                        self.answer_not_offered = sdp
                            .payload_types
                            .iter()
                            .copied()
                            // Dynamic numbers (96-127) may be remapped by the answer: static ones only.
                            .filter(|pt| *pt < 96 && !self.offer_pts.contains(pt))
                            .collect();
                    }
                }
            } else {
                self.finished = true;
            }
        } else if code != 401 && code != 407 {
            self.finished = true;
        }
    }

    fn check_received(&mut self) {
        // The server writes the address it saw into Via `received` (RFC 3261 §18.2.1).
        let (Ok(seen), Ok(sent)) = (
            self.received.parse::<IpAddr>(),
            self.via_host.parse::<IpAddr>(),
        ) else {
            return;
        };
        if seen != sent && is_private(&sent) && self.offer_private.is_none() {
            self.offer_private = Some(format!(
                "the client announces private {sent} but the server saw {seen}"
            ));
        }
    }

    fn causes(&self) -> Vec<Finding> {
        let registration = self.kind == Kind::Registration;
        let user = if registration || self.from_user.is_empty() {
            &self.to_user
        } else {
            &self.from_user
        };
        let what = if registration { "registration" } else { "call" };
        let mut out = Vec::new();
        let mut push = |cause: Cause, text: String| {
            out.push(Finding {
                cause,
                outcome: cause.outcome(registration),
                text,
                user: (!user.is_empty()).then(|| user.clone()),
                call_id: Some(self.call_id.clone()),
                count: 1,
            });
        };
        let warning = if self.warning.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.warning)
        };
        let status = self.final_status.unwrap_or(0);
        let ok = (200..300).contains(&status);
        if !ok {
            if self.rejected_after_credentials
                || (self.challenged_after_credentials && (status == 401 || status == 407))
            {
                push(
                    Cause::AuthenticationRejected,
                    format!(
                        "{what} rejected: the server refused the credentials ({status} {}{warning} after {} challenge(s)); check the username and password",
                        self.final_reason, self.auth_rounds
                    ),
                );
            } else if status == 401 || status == 407 {
                push(
                    Cause::AuthenticationRejected,
                    format!(
                        "{what} challenged ({status} {}) and the client never answered with credentials",
                        self.final_reason
                    ),
                );
            } else if status == 0 {
                let target = if self.kind == Kind::Call {
                    "INVITE"
                } else {
                    "REGISTER"
                };
                if self.cancelled {
                    push(
                        Cause::Cancelled,
                        format!("{what} cancelled by the caller before any final response"),
                    );
                } else {
                    push(
                        Cause::NoFinalResponse,
                        format!(
                            "no final response to the {target} ({} attempt(s), {} retransmission(s)): the server or the path to it did not answer",
                            self.attempts.max(1),
                            self.retransmissions
                        ),
                    );
                }
            } else if let Some(cause) = Cause::from_status(status) {
                let words = match cause {
                    Cause::Forbidden => "forbidden by the server",
                    Cause::UnknownNumber if registration => "the account is unknown to this server",
                    Cause::UnknownNumber => "the dialled number or user does not exist",
                    Cause::NotRegistered => "the callee is not registered (offline)",
                    Cause::Busy => "the callee is busy",
                    Cause::RequestTimeout => "no answer in time (request timeout)",
                    Cause::CodecRefused => "no common codec: the media offer was refused",
                    Cause::ServerError => "server or gateway error",
                    Cause::Declined => "declined by the callee",
                    Cause::Cancelled => "cancelled by the caller before an answer",
                    _ => "failed",
                };
                let offered = if cause == Cause::CodecRefused && !self.offer_pts.is_empty() {
                    format!("; the offer had {}", codec_names(&self.offer_pts))
                } else {
                    String::new()
                };
                push(
                    cause,
                    format!(
                        "{what} failed: {words} ({status} {}{warning}){offered}",
                        self.final_reason
                    ),
                );
            }
        } else if self.answer_refused {
            let offered = if self.offer_pts.is_empty() {
                String::new()
            } else {
                format!("; the offer had {}", codec_names(&self.offer_pts))
            };
            push(
                Cause::CodecRefused,
                format!(
                    "no common codec: the SDP answer refused the audio stream (port 0){offered}"
                ),
            );
        } else if !self.answer_not_offered.is_empty() {
            push(
                Cause::CodecRefused,
                format!(
                    "codec in the answer not in the offer: the answer has {}, the offer had {}",
                    codec_names(&self.answer_not_offered),
                    codec_names(&self.offer_pts)
                ),
            );
        }
        if let Some(nat) = &self.offer_private {
            push(
                Cause::PrivateAddressBehindNat,
                format!("private address behind NAT: {nat}"),
            );
        }
        if self.cut_by_end
            && let Some(f) = out.first_mut()
            && matches!(
                f.cause,
                Cause::NoFinalResponse | Cause::AuthenticationRejected
            )
            && !self.rejected_after_credentials
        {
            f.text
                .push_str(" (the input ends before this exchange finished)");
            // An exchange cut by the end of the file proves nothing about the user.
            f.outcome = None;
        }
        out
    }

    fn call_summary(mut self) -> CallSummary {
        let causes = self.causes();
        let invite = self.first_request_ts.unwrap_or(self.start);
        let ladder = self.finish_ladder();
        CallSummary {
            ladder,
            start_text: crate::render::time_text(self.start),
            post_dial_delay_ms: self.first_18x.map(|t| ms(invite, t)),
            setup_time_ms: self.answered_at.map(|t| ms(invite, t)),
            duration_ms: match (self.answered_at, self.bye_at) {
                (Some(a), Some(b)) => Some(ms(a, b)),
                _ => None,
            },
            call_id: self.call_id,
            from_user: self.from_user,
            to_user: self.to_user,
            start: self.start,
            final_status: self.final_status,
            final_reason: self.final_reason,
            retransmissions: self.retransmissions,
            auth_rounds: self.auth_rounds,
            transport: self.transport,
            client: self.client.label(),
            server: self.server.label(),
            user_agent: self.user_agent,
            warning: self.warning,
            messages: self.messages,
            causes,
            media: None,
        }
    }

    fn registration_summary(mut self) -> RegistrationSummary {
        let causes = self.causes();
        RegistrationSummary {
            ladder: self.finish_ladder(),
            start_text: crate::render::time_text(self.start),
            call_id: self.call_id,
            user: self.to_user,
            registrar: self.registrar,
            start: self.start,
            attempts: self.attempts,
            auth_rounds: self.auth_rounds,
            final_status: self.final_status,
            final_reason: self.final_reason,
            retransmissions: self.retransmissions,
            transport: self.transport,
            client: self.client.label(),
            contact_host: self.contact_host,
            user_agent: self.user_agent,
            warning: self.warning,
            causes,
        }
    }
}

/// Payload types in words: static ones by name (RFC 3551 §6), dynamic ones by number.
fn codec_names(pts: &[u16]) -> String {
    pts.iter()
        .map(|pt| match pt {
            0 => "PCMU (0)".to_owned(),
            3 => "GSM (3)".to_owned(),
            4 => "G723 (4)".to_owned(),
            8 => "PCMA (8)".to_owned(),
            9 => "G722 (9)".to_owned(),
            18 => "G729 (18)".to_owned(),
            other => format!("payload type {other}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn body_sdp(head: &SipHead<'_>, msg: &[u8]) -> Option<scan::SdpInfo> {
    sdp_body(head, msg).map(scan::scan_sdp)
}

/// The body of a message when it is SDP.
fn sdp_body<'m>(head: &SipHead<'_>, msg: &'m [u8]) -> Option<&'m [u8]> {
    let body = msg.get(head.body_offset..head.message_len(msg.len()))?;
    if body.is_empty() {
        return None;
    }
    let is_sdp = head
        .content_type
        .windows(3)
        .any(|w| w.eq_ignore_ascii_case(b"sdp"))
        || body.starts_with(b"v=0");
    is_sdp.then_some(body)
}

/// A media problem of a call as a finding: one-way or no audio points to the network, unless
/// the SDP explains it (a codec the offer lacked: the client; a hold: nobody).
fn media_finding(p: MediaProblem, user: &Option<String>, call_id: &str) -> Finding {
    let (cause, outcome, text) = match p {
        MediaProblem::Audio {
            verdict,
            text,
            codec,
            hold,
            ..
        } => {
            let cause = if verdict == MediaVerdict::NoMedia {
                Cause::NoAudio
            } else {
                Cause::OneWayAudio
            };
            let outcome = if hold {
                None
            } else if codec {
                Some(OutcomeHint::ClientMisconfiguration)
            } else {
                cause.outcome(false)
            };
            (cause, outcome, text)
        }
        MediaProblem::Quality(text) => (Cause::PoorAudio, None, text),
    };
    Finding {
        cause,
        outcome,
        text,
        user: user.clone(),
        call_id: Some(call_id.to_owned()),
        count: 1,
    }
}
