//! One probe's signalling session: a connection, the request builders (RFC 3261 §8.1.1), the
//! client transaction driver with retransmissions and the overall bound, the digest retry
//! loop (§22.2), and the trace of every message.

use crate::digest;
use crate::report::{Category, Direction, TraceEvent, Verdict};
use crate::transport::{Conn, Recv};
use crate::tsx::{Action, ClientTsx, Kind, Timers};
use crate::{Credentials, ProbeOptions, Transport};
use secrecy::ExposeSecret;
use sip_message::{Message, Method, NameAddr, Request, Response, Uri, parse, redact_text};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How a client transaction ended.
#[derive(Debug)]
pub(crate) enum TsxResult {
    Final(Response),
    /// Timer B or F fired.
    Timeout(char),
    /// The probe's overall bound (or a caller's give-up instant) came first.
    Bound,
    Refused(String),
    Failed(String),
}

pub(crate) struct Session {
    pub conn: Conn,
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub start: Instant,
    pub deadline: Instant,
    pub trace: Vec<TraceEvent>,
    pub timers: Timers,
    pub domain: String,
    pub call_id: String,
    pub from_tag: String,
    pub cseq: u32,
    pub user_agent: String,
    /// Requests the server sent us (an INVITE for a UAS, OPTIONS keep-alives), in arrival order.
    pub incoming: VecDeque<Request>,
    /// Responses that could not be read, as plain words, for a bad_response verdict.
    pub malformed: Vec<String>,
    /// Provisional statuses seen in the last transaction.
    pub provisional: Vec<u16>,
    /// INVITE transactions in Completed state (Timer D): branch and the ACK to resend when
    /// the final response is retransmitted (§17.1.1.2).
    pub completed_invites: Vec<(String, Vec<u8>)>,
}

pub(crate) fn random_token(n: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Session {
    pub(crate) fn new(
        conn: Conn,
        transport: Transport,
        domain: &str,
        opts: &ProbeOptions,
        start: Instant,
    ) -> Self {
        let (local, remote) = conn.addrs();
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Self {
            conn,
            transport,
            local: local.unwrap_or(unspecified),
            remote: remote.unwrap_or(unspecified),
            start,
            deadline: start + opts.timeout_total,
            trace: Vec::new(),
            timers: Timers {
                t1: opts.t1,
                t2: opts.t2,
                t4: opts.t4,
            },
            domain: domain.to_owned(),
            call_id: format!("{}@dialtone", random_token(20)),
            from_tag: random_token(10),
            cseq: 0,
            user_agent: opts.user_agent.clone(),
            incoming: VecDeque::new(),
            malformed: Vec::new(),
            provisional: Vec::new(),
            completed_invites: Vec::new(),
        }
    }

    pub(crate) fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn record(&mut self, direction: Direction, bytes: &[u8], note: impl Into<String>) {
        self.trace.push(TraceEvent {
            at_ms: self.elapsed_ms(),
            direction,
            transport: self.transport,
            local: self.local.to_string(),
            remote: self.remote.to_string(),
            bytes_len: bytes.len(),
            text: redact_text(&String::from_utf8_lossy(bytes)),
            note: note.into(),
        });
    }

    /// A note-only trace event (timers, give-ups), with no bytes.
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        self.trace.push(TraceEvent {
            at_ms: self.elapsed_ms(),
            direction: Direction::Sent,
            transport: self.transport,
            local: self.local.to_string(),
            remote: self.remote.to_string(),
            bytes_len: 0,
            text: String::new(),
            note: text,
        });
    }

    /// The `sip:user@domain` address of record.
    pub(crate) fn aor(&self, user: &str) -> Uri {
        Uri::sip(Some(user), &self.domain, None)
    }

    /// Our Contact URI (where the server can reach this session).
    pub(crate) fn contact_uri(&self, user: &str) -> Uri {
        // RFC 3261 §25.1: an IPv6 host in a SIP URI is a bracketed IPv6reference.
        let host = match self.local.ip() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        let mut u = Uri::sip(Some(user), &host, Some(self.local.port()));
        if self.transport != Transport::Udp {
            u = u.with_param(
                "transport",
                Some(&self.transport.via_token().to_ascii_lowercase()),
            );
        }
        u
    }

    fn via(&self) -> String {
        // RFC 3261 §8.1.1.7 magic cookie; RFC 3581 rport so the server answers where we sent from.
        format!(
            "SIP/2.0/{} {};branch=z9hG4bK-dt-{};rport",
            self.transport.via_token(),
            self.local,
            random_token(16)
        )
    }

    /// A new out-of-dialog request with fresh branch and the next CSeq (§8.1.1).
    pub(crate) fn request(
        &mut self,
        method: Method,
        ruri: Uri,
        from_user: &str,
        to: Uri,
        to_tag: Option<&str>,
    ) -> Request {
        self.cseq += 1;
        let mut r = Request::new(method.clone(), ruri);
        r.headers.push("Via", self.via());
        r.headers.push("Max-Forwards", "70");
        r.headers.push(
            "From",
            NameAddr::new(self.aor(from_user))
                .with_param("tag", Some(&self.from_tag))
                .to_string(),
        );
        let mut to = NameAddr::new(to);
        if let Some(t) = to_tag {
            to = to.with_param("tag", Some(t));
        }
        r.headers.push("To", to.to_string());
        r.headers.push("Call-ID", self.call_id.clone());
        r.headers.push("CSeq", format!("{} {method}", self.cseq));
        r.headers.push("User-Agent", self.user_agent.clone());
        r.headers.push("Content-Length", "0");
        r
    }

    /// Re-issues `req` with a new branch and CSeq (for a digest retry, §22.2).
    pub(crate) fn renew(&mut self, req: &Request) -> Request {
        self.cseq += 1;
        let mut r = req.clone();
        r.headers.set("Via", self.via());
        r.headers
            .set("CSeq", format!("{} {}", self.cseq, req.method));
        r
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8], note: &str) -> Result<(), TsxResult> {
        self.record(Direction::Sent, bytes, note);
        match self.conn.send(bytes).await {
            Ok(()) => Ok(()),
            Err(Recv::Refused(e)) => Err(TsxResult::Refused(e)),
            Err(Recv::Failed(e)) => Err(TsxResult::Failed(e)),
            Err(_) => Err(TsxResult::Failed("send failed".into())),
        }
    }

    /// Reads one message until `until`: a request or a response. Unreadable input is traced,
    /// remembered for a bad_response verdict, and skipped.
    pub(crate) async fn next_message(&mut self, until: Instant) -> Result<Message, TsxResult> {
        loop {
            let until = until.min(self.deadline);
            match self.conn.recv(until).await {
                Recv::Deadline => return Err(TsxResult::Bound),
                Recv::Refused(e) => return Err(TsxResult::Refused(e)),
                Recv::Closed => {
                    return Err(TsxResult::Failed("connection closed by the server".into()));
                }
                Recv::Failed(e) => return Err(TsxResult::Failed(e)),
                Recv::Data(bytes) => {
                    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
                        continue; // RFC 5626 keep-alive
                    }
                    let parsed = parse(&bytes);
                    let errors: Vec<String> = parsed
                        .diagnostics
                        .iter()
                        .filter(|d| d.severity == sip_message::Severity::Error)
                        .map(|d| d.message.clone())
                        .collect();
                    let note = if errors.is_empty() {
                        String::new()
                    } else {
                        format!("malformed: {}", errors.join("; "))
                    };
                    self.record(Direction::Received, &bytes, note);
                    match parsed.message {
                        Some(Message::Response(r))
                            if !errors.is_empty()
                                && (r.headers.cseq().ok().flatten().is_none()
                                    || r.headers.via().is_err()) =>
                        {
                            // Without a readable Via and CSeq it cannot be matched to a transaction (§17.1.3).
                            self.malformed.push(errors.join("; "));
                        }
                        Some(m) => return Ok(m),
                        None => self.malformed.push(if errors.is_empty() {
                            "unreadable message".to_owned()
                        } else {
                            errors.join("; ")
                        }),
                    }
                }
            }
        }
    }

    /// The next response; requests that arrive meanwhile are queued in `incoming`.
    pub(crate) async fn next_response(&mut self, until: Instant) -> Result<Response, TsxResult> {
        loop {
            match self.next_message(until).await? {
                Message::Response(r) => return Ok(r),
                Message::Request(r) => self.incoming.push_back(r),
            }
        }
    }

    /// Runs one client transaction for `req` (§17.1) until a final response, a timer, the
    /// overall bound or `give_up` (for INVITE: the caller then CANCELs).
    #[tracing::instrument(name = "tsx", skip_all, fields(method = %req.method))]
    pub(crate) async fn transact(
        &mut self,
        req: &Request,
        note: &str,
        give_up: Option<Instant>,
    ) -> TsxResult {
        let bytes = req.to_bytes();
        let kind = if req.method == Method::Invite {
            Kind::Invite
        } else {
            Kind::NonInvite
        };
        let branch = top_branch(&req.headers);
        if let Err(e) = self.send_raw(&bytes, note).await {
            return e;
        }
        self.provisional.clear();
        let origin = self.start;
        let now = || origin.elapsed();
        let mut tsx = ClientTsx::start(kind, self.transport.is_reliable(), self.timers, now());
        loop {
            let mut until = self.deadline;
            if let Some(g) = give_up {
                until = until.min(g);
            }
            if let Some(d) = tsx.next_deadline() {
                until = until.min(origin + d);
            }
            match self.next_response(until).await {
                Ok(resp) => {
                    if top_branch(&resp.headers) != branch
                        || resp.headers.cseq().ok().flatten().map(|c| c.method)
                            != Some(req.method.clone())
                    {
                        let rb = top_branch(&resp.headers);
                        let ack = self
                            .completed_invites
                            .iter()
                            .find(|(b, _)| Some(b) == rb.as_ref())
                            .map(|(_, a)| a.clone());
                        match ack {
                            Some(ack) if resp.status >= 300 => {
                                if let Some(last) = self.trace.last_mut() {
                                    last.note =
                                        "retransmitted final response (Timer D running)".into();
                                }
                                let _ = self.send_raw(&ack, "ACK again (§17.1.1.2)").await;
                            }
                            _ => {
                                if let Some(last) = self.trace.last_mut() {
                                    last.note = "stray response (other transaction)".into();
                                }
                            }
                        }
                        continue;
                    }
                    match tsx.on_response(resp.status, now()) {
                        Action::PassUp if resp.status < 200 => self.provisional.push(resp.status),
                        Action::PassUp => return TsxResult::Final(resp),
                        Action::AckAndPassUp => {
                            let ack = ack_for_non_2xx(req, &resp).to_bytes();
                            let _ = self
                                .send_raw(&ack, "ACK for non-2xx (same branch, §17.1.1.3)")
                                .await;
                            if let Some(b) = &branch {
                                self.completed_invites.push((b.clone(), ack));
                            }
                            return TsxResult::Final(resp);
                        }
                        _ => {}
                    }
                }
                Err(TsxResult::Bound) => {
                    if Instant::now() >= self.deadline
                        || give_up.is_some_and(|g| Instant::now() >= g)
                    {
                        return TsxResult::Bound;
                    }
                    match tsx.on_timer(now()) {
                        Action::Retransmit { n, timer } => {
                            let note = format!("retransmission {n} (Timer {timer})");
                            if let Err(e) = self.send_raw(&bytes, &note).await {
                                return e;
                            }
                        }
                        Action::Timeout { timer } => {
                            self.note(format!("Timer {timer} fired: no final response"));
                            return TsxResult::Timeout(timer);
                        }
                        _ => {}
                    }
                }
                Err(e) => return e,
            }
        }
    }

    /// Sends `req`, answering 401/407 challenges (RFC 3261 §22.2, §22.3) up to
    /// `opts.max_auth_rounds` times. Returns the last result and the request last sent.
    pub(crate) async fn transact_with_auth(
        &mut self,
        mut req: Request,
        creds: &Credentials,
        opts: &ProbeOptions,
        give_up: Option<Instant>,
    ) -> (TsxResult, Request) {
        let mut rounds = 0;
        let mut note = "initial request".to_owned();
        loop {
            let res = self.transact(&req, &note, give_up).await;
            let TsxResult::Final(resp) = &res else {
                return (res, req);
            };
            if resp.status != 401 && resp.status != 407 {
                return (res, req);
            }
            let challenges = if resp.status == 401 {
                resp.headers.www_authenticate()
            } else {
                resp.headers.proxy_authenticate()
            };
            let challenges = match challenges {
                Ok(c) => c,
                Err(e) => {
                    self.malformed.push(format!("unreadable challenge: {e}"));
                    return (res, req);
                }
            };
            let stale = challenges.iter().any(|c| c.stale);
            // A second challenge after credentials were sent means they were refused, unless stale=true (RFC 7616 §3.3).
            let answered_this = if resp.status == 401 {
                "Authorization"
            } else {
                "Proxy-Authorization"
            };
            if rounds >= opts.max_auth_rounds
                || (req.headers.get(answered_this).is_some() && !stale)
            {
                return (res, req);
            }
            let Some(ch) = digest::pick_challenge(&challenges) else {
                self.malformed.push("no supported digest challenge".into());
                return (res, req);
            };
            let user = creds.auth_user.as_deref().unwrap_or(&creds.user);
            let uri = req.uri.to_string();
            let value = match digest::authorization(
                ch,
                user,
                creds.password.expose_secret(),
                req.method.as_str(),
                &uri,
                1,
                &random_token(16),
            ) {
                Ok(v) => v,
                Err(e) => {
                    self.malformed.push(e.to_string());
                    return (res, req);
                }
            };
            rounds += 1;
            let header = if resp.status == 401 {
                "Authorization"
            } else {
                "Proxy-Authorization"
            };
            req = self.renew(&req);
            req.headers.set(header, value);
            note = format!(
                "answering {} challenge {rounds} ({}, realm {})",
                resp.status,
                ch.algorithm.as_deref().unwrap_or("MD5"),
                ch.realm.as_deref().unwrap_or("?")
            );
        }
    }
}

pub(crate) fn top_branch(h: &sip_message::Headers) -> Option<String> {
    h.via().ok()?.first()?.branch().map(str::to_owned)
}

/// ACK for a non-2xx final response: same branch, Request-URI, Call-ID, From and CSeq number
/// as the INVITE, To from the response (RFC 3261 §17.1.1.3).
pub(crate) fn ack_for_non_2xx(invite: &Request, resp: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(v) = invite.headers.get_list("Via").first() {
        ack.headers.push("Via", *v);
    }
    ack.headers.push("Max-Forwards", "70");
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            ack.headers.push(name, v);
        }
    }
    if let Some(v) = resp.headers.get("To") {
        ack.headers.push("To", v);
    }
    let seq = invite.headers.cseq().ok().flatten().map_or(1, |c| c.seq);
    ack.headers.push("CSeq", format!("{seq} ACK"));
    for route in invite.headers.get_all("Route") {
        ack.headers.push("Route", route);
    }
    ack.headers.push("Content-Length", "0");
    ack
}

/// Maps a final status to a verdict category (the runbook's vocabulary).
pub(crate) fn category_for_status(status: u16) -> Category {
    match status {
        200..=299 => Category::Ok,
        401 | 403 | 407 => Category::AuthRejected,
        404 | 410 | 484 | 604 => Category::NotFound,
        408 | 480 | 486 | 487 | 503 | 600 | 603 => Category::Unavailable,
        500..=599 => Category::ServerError,
        _ => Category::BadResponse,
    }
}

/// A verdict from a transaction result, for the request that was `what` ("OPTIONS", "REGISTER").
pub(crate) fn verdict_for(res: &TsxResult, what: &str, session: &Session) -> Verdict {
    match res {
        TsxResult::Final(r) => {
            let warning = r
                .headers
                .warnings()
                .ok()
                .and_then(|w| w.first().map(|w| format!(" (Warning: {})", w.text)))
                .unwrap_or_default();
            let category = category_for_status(r.status);
            let summary = match category {
                Category::Ok => format!("{what} answered {} {}", r.status, r.reason),
                Category::AuthRejected => format!(
                    "the server refused the credentials: {} {}{warning}",
                    r.status, r.reason
                ),
                Category::NotFound => format!(
                    "the server does not know this user or number: {} {}{warning}",
                    r.status, r.reason
                ),
                Category::Unavailable => format!(
                    "the destination is unavailable: {} {}{warning}",
                    r.status, r.reason
                ),
                Category::ServerError => {
                    format!("the server failed: {} {}{warning}", r.status, r.reason)
                }
                _ => format!(
                    "unexpected answer to {what}: {} {}{warning}",
                    r.status, r.reason
                ),
            };
            Verdict {
                category,
                summary,
                status: Some(r.status),
            }
        }
        TsxResult::Timeout(timer) => {
            if let Some(m) = session.malformed.last() {
                return Verdict {
                    category: Category::BadResponse,
                    summary: format!("the server answered {what} with an unreadable message: {m}"),
                    status: None,
                };
            }
            Verdict {
                category: Category::Timeout,
                summary: format!(
                    "no final answer to {what} from {} over {} (Timer {timer}, {} provisional)",
                    session.remote,
                    session.transport,
                    session.provisional.len()
                ),
                status: None,
            }
        }
        TsxResult::Bound => Verdict {
            category: if session.malformed.is_empty() {
                Category::Timeout
            } else {
                Category::BadResponse
            },
            summary: match session.malformed.last() {
                Some(m) => format!("the server answered {what} with an unreadable message: {m}"),
                None => format!(
                    "no final answer to {what} from {} over {} within the probe's time bound",
                    session.remote, session.transport
                ),
            },
            status: None,
        },
        TsxResult::Refused(e) => Verdict {
            category: Category::Refused,
            summary: format!(
                "nothing listens on {} over {} ({e})",
                session.remote, session.transport
            ),
            status: None,
        },
        TsxResult::Failed(e) => Verdict {
            category: Category::Unreachable,
            summary: format!(
                "the connection to {} over {} failed: {e}",
                session.remote, session.transport
            ),
            status: None,
        },
    }
}

/// Milliseconds to wait, as a Duration, bounded below by zero.
pub(crate) fn until(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
