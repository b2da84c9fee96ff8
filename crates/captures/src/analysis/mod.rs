//! SIP messages -> transactions -> dialogs: per-call and per-registration summaries and causes.
//!
//! Only open dialogs are kept in memory. A dialog is summarised (and forgotten) once it has
//! ended and been quiet for a while, so a capture of any size is analysed in bounded memory.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use crate::net::{Sink, Transport, WarnKind};
use crate::rtp::{self, CallContext, FxMap, Media};
use crate::scan::{self, StartLine};
use sip_message::is_private;

mod causes;
mod dialog;
mod report;

pub use causes::{Cause, Finding, OutcomeHint};
use causes::{codec_names, media_finding};
pub use report::{
    CallSummary, Ladder, LadderEvent, LogEvent, RegistrationSummary, Stats, UserIndex,
};

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
            Peer::Addr(a) => {
                let mut s = String::with_capacity(21);
                crate::net::push_addr(&mut s, a);
                s
            }
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

/// One Call-ID's messages: a call (INVITE dialog) or a registration (REGISTER transactions
/// sharing a Call-ID); what only one of them has is in its [`Role`].
struct Dialog {
    role: Role,
    call_id: String,
    from_user: String,
    to_user: String,
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
    final_status: Option<u16>,
    final_reason: String,
    warning: String,
    retransmissions: u32,
    attempts: u32,
    /// The credentials exchange (RFC 3261 §22).
    auth: Auth,
    offer_private: Option<String>,
    finished: bool,
    cut_by_end: bool,
    messages: u32,
    seen: Vec<u64>,
    ladder: Ladder,
    peers: Vec<Peer>,
}

/// The credentials exchange of a dialog (RFC 3261 §22): challenges and what followed them.
#[derive(Default)]
struct Auth {
    /// 401/407 challenges received.
    rounds: u32,
    last_request_had_credentials: bool,
    challenged_after_credentials: bool,
    rejected_after_credentials: bool,
}

/// What kind of exchange a dialog is, with what only that kind has.
enum Role {
    /// An INVITE dialog.
    Call(CallState),
    /// REGISTER transactions sharing a Call-ID.
    Registration {
        /// Registrar host (Request-URI host of the first REGISTER).
        registrar: String,
    },
}

/// What only a call has: its timing, its SDP offer and answer, its media session.
#[derive(Default)]
struct CallState {
    first_18x: Option<f64>,
    answered_at: Option<f64>,
    bye_at: Option<f64>,
    cancelled: bool,
    answer_refused: bool,
    /// Audio payload types of the first SDP offer (INVITE outside a dialog).
    offer_pts: Vec<u16>,
    /// Payload types of the SDP answer that the offer did not contain (RFC 3264 §6.1).
    answer_not_offered: Vec<u16>,
    /// From tag of the first request: tells the caller's requests from the callee's.
    caller_tag: Vec<u8>,
    /// The call's media session (opened at its first SDP).
    media_id: Option<u64>,
}

/// Collects messages and produces the `Analysis`.
pub(crate) struct Analyzer<'s> {
    keep: usize,
    on_summary: Option<&'s dyn Fn(crate::Summary<'_>)>,
    /// Findings of the summaries not kept, grouped by (cause, user, outcome).
    not_kept_findings: HashMap<(Cause, Option<String>, Option<OutcomeHint>), Finding>,
    /// Open dialogs by Call-ID (a fast hasher: one lookup per message).
    /// Boxed: a dialog is large, and the map moves its entries as it grows.
    open: FxMap<Box<[u8]>, Box<Dialog>>,
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
    /// Set when this analyzer follows a share of the dialogs on a thread of its own.
    pub(crate) shard: Option<crate::parallel::Shard>,
}

/// What a thread of a parallel read hands back at its end, besides its summaries.
pub(crate) struct ShareEnd {
    pub(crate) stats: Stats,
    warnings: Vec<String>,
    warn_counts: BTreeMap<WarnKind, u32>,
    first_ts: Option<f64>,
    last_ts: f64,
    pub(crate) saw_media: bool,
}

/// A summarised dialog, before it is counted and kept.
pub(crate) struct Done {
    summary: Summarised,
    /// Whether it passes the `user` filter.
    matches: bool,
}

enum Summarised {
    Call(CallSummary),
    Registration(RegistrationSummary),
}

impl Done {
    /// The listing order: start, then Call-ID.
    pub(crate) fn key(&self) -> (f64, &str) {
        match &self.summary {
            Summarised::Call(s) => (s.start, &s.call_id),
            Summarised::Registration(s) => (s.start, &s.call_id),
        }
    }
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
            open: FxMap::default(),
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
            shard: None,
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
        if let Some(shard) = &self.shard {
            // Another thread follows this dialog: only its time counts here, for the sweeps.
            match scan::call_id(msg) {
                None => return,
                Some(id) if !id.is_empty() && !shard.mine(id) => {
                    self.tick(ts);
                    return;
                }
                Some(_) => {}
            }
        }
        let Some(head) = scan::scan(msg) else {
            return;
        };
        self.tick(ts);
        if head.call_id.is_empty() {
            self.warn(
                WarnKind::BadPacket,
                "SIP message without Call-ID ignored".to_owned(),
            );
            return;
        }
        self.dialog_message(ts, src, dst, tr, msg, &head);
    }

    /// The bookkeeping of every SIP message: counters, times, and the sweep of ended dialogs.
    fn tick(&mut self, ts: f64) {
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
    }

    fn dialog_message(
        &mut self,
        ts: f64,
        src: Peer,
        dst: Peer,
        tr: Transport,
        msg: &[u8],
        head: &scan::SipHead<'_>,
    ) {
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
                    d.record(ts, src, dst, head, msg, &mut self.media);
                }
                return;
            }
        };
        // One hash lookup for the common case: the dialog is already open.
        if let Some(d) = self.open.get_mut(head.call_id) {
            d.record(ts, src, dst, head, msg, &mut self.media);
        } else {
            let mut d = Box::new(Dialog::new(kind, head, ts, src, dst, tr));
            d.record(ts, src, dst, head, msg, &mut self.media);
            self.open.insert(head.call_id.into(), d);
        }
    }

    fn sweep(&mut self, now: f64) {
        self.last_sweep = now;
        self.peak_open();
        let media = &self.media;
        let mut done: Vec<Box<Dialog>> = self
            .open
            .extract_if(|_, d| {
                // RTP keeps a call alive between its SIP messages.
                let last = match d.call().and_then(|c| c.media_id) {
                    Some(id) => d.last.max(media.last_activity(id)),
                    None => d.last,
                };
                let idle = now - last;
                (d.finished && idle > LINGER_S)
                    || (d.kind() == Kind::Call && idle > CALL_IDLE_S)
                    || idle > REG_IDLE_S
            })
            .map(|(_, d)| d)
            .collect();
        // In a fixed order (the map's is not): the same input lists the same summaries.
        done.sort_by(|a, b| by_start(a, b));
        let open_before = self.open.len() + done.len();
        for d in done {
            self.summarise(d);
        }
        if let Some(shard) = &mut self.shard {
            shard.epoch(open_before);
        }
    }

    /// Dialogs only open between sweeps: their number just before one is a peak candidate.
    fn peak_open(&mut self) {
        self.stats.peak_open_dialogs = self.stats.peak_open_dialogs.max(self.open.len() as u64);
    }

    fn summarise(&mut self, d: Box<Dialog>) {
        let done = self.build(d);
        match &mut self.shard {
            Some(shard) => shard.done.push(done),
            None => self.account(done),
        }
    }

    /// The summary of a dialog that ended (its media session closed).
    fn build(&mut self, d: Box<Dialog>) -> Done {
        let matches = self.user_filter.as_deref().is_none_or(|u| d.concerns(u));
        let summary = match d.kind() {
            Kind::Call => {
                let media = d.call().and_then(|call| {
                    let id = call.media_id?;
                    let ctx = CallContext {
                        start: d.start,
                        answered_at: call.answered_at,
                        bye_at: call.bye_at,
                        capture_end: self.last_ts.max(self.media.last_ts),
                        caller_public: d.client.ip().filter(|ip| !is_private(*ip)),
                        answer_not_offered: (!call.answer_not_offered.is_empty())
                            .then(|| codec_names(&call.answer_not_offered)),
                    };
                    self.media.close(id, &ctx)
                });
                let mut s = d.call_summary();
                if let Some((summary, problems)) = media {
                    s.media = Some(summary);
                    if !problems.is_empty() {
                        let user = (!s.from_user.is_empty()).then(|| s.from_user.clone());
                        for p in problems {
                            s.causes.push(media_finding(p, &user, &s.call_id));
                        }
                    }
                }
                Summarised::Call(s)
            }
            Kind::Registration => Summarised::Registration(d.registration_summary()),
        };
        Done { summary, matches }
    }

    /// Count a summary in the users index and the stats, stream it, and keep it if there is room.
    pub(crate) fn account(&mut self, done: Done) {
        let Done { summary, matches } = done;
        match summary {
            Summarised::Call(s) => {
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
                    if self.room_for(&s.causes) {
                        self.calls.push(s);
                    }
                }
            }
            Summarised::Registration(s) => {
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
                    if self.room_for(&s.causes) {
                        self.registrations.push(s);
                    }
                }
            }
        }
    }

    /// Whether one more summary fits in the kept listing (`AnalyzeOptions::keep`); when not,
    /// its findings are counted.
    fn room_for(&mut self, causes: &[Finding]) -> bool {
        let room = self.calls.len() + self.registrations.len() < self.keep;
        if !room {
            self.not_kept(causes);
        }
        room
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

    /// Summarise every dialog still open (the end of the input).
    fn summarise_open(&mut self) {
        self.peak_open();
        let mut open: Vec<Box<Dialog>> = self.open.drain().map(|(_, d)| d).collect();
        // In the order they started, as a streamed listing reads best.
        open.sort_by(|a, b| by_start(a, b));
        let open_before = open.len();
        for mut d in open {
            // Still unfinished when the input ended: say so rather than blame the peer.
            d.cut_by_end = !d.finished && self.last_ts - d.last < LINGER_S;
            self.summarise(d);
        }
        if let Some(shard) = &mut self.shard {
            shard.epoch(open_before);
        }
    }

    /// The end of a thread's share (see `parallel`): its last summaries handed over, what it
    /// knows besides its dialogs (the same on every thread).
    pub(crate) fn end_share(&mut self) -> ShareEnd {
        self.summarise_open();
        ShareEnd {
            stats: std::mem::take(&mut self.stats),
            warnings: std::mem::take(&mut self.warnings),
            warn_counts: std::mem::take(&mut self.warn_counts),
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            saw_media: self.shard.as_ref().is_some_and(|s| s.saw_media),
        }
    }

    /// Take over what the threads of a parallel read know besides the dialogs, which were
    /// counted here (`account`).
    pub(crate) fn adopt(&mut self, end: ShareEnd, other_requests: u64) {
        let mine = std::mem::replace(&mut self.stats, end.stats);
        self.stats.calls = mine.calls;
        self.stats.registrations = mine.registrations;
        self.stats.summaries_not_kept = mine.summaries_not_kept;
        self.stats.peak_open_dialogs = mine.peak_open_dialogs;
        self.stats.other_requests = other_requests;
        self.warnings = end.warnings;
        self.warn_counts = end.warn_counts;
        self.first_ts = end.first_ts;
        self.last_ts = end.last_ts;
    }

    /// Summarise everything still open and build the result.
    pub(crate) fn finish(mut self, input_kind: crate::InputKind) -> crate::Analysis {
        self.summarise_open();
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
        match &mut self.shard {
            // Keep-alives, DNS…: only their time counts. RTP or RTCP: one thread must read.
            Some(shard) if Media::could_be_media(data) => shard.media(),
            Some(_) => self.media.not_media(ts),
            None => self.media.udp(ts, src, dst, data),
        }
    }
    fn warn(&mut self, kind: WarnKind, text: String) {
        Analyzer::warn(self, kind, text);
    }
}

/// Dialogs by start, then Call-ID.
fn by_start(a: &Dialog, b: &Dialog) -> std::cmp::Ordering {
    a.start
        .total_cmp(&b.start)
        .then_with(|| a.call_id.cmp(&b.call_id))
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
