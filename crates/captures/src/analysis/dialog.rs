//! One dialog (a call or a registration): its messages, transactions, ladder and summary.

use std::net::IpAddr;

use crate::net::Transport;
use crate::rtp::{self, Media, Side};
use crate::scan::{self, SipHead, StartLine};

use super::*;

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

impl Dialog {
    pub(super) fn new(
        kind: Kind,
        head: &SipHead<'_>,
        ts: f64,
        src: Peer,
        dst: Peer,
        tr: Transport,
    ) -> Self {
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
        let role = match kind {
            Kind::Call => Role::Call(CallState {
                caller_tag: head.from_tag.to_vec(),
                ..CallState::default()
            }),
            Kind::Registration => Role::Registration {
                registrar: match head.start {
                    Some(StartLine::Request { uri, .. }) => text(scan::uri_host(uri)),
                    _ => String::new(),
                },
            },
        };
        Dialog {
            role,
            call_id: text(head.call_id),
            from_user: text(head.from_user),
            to_user: text(if kind == Kind::Registration {
                head.to_user
            } else {
                to_user
            }),
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
            final_status: None,
            final_reason: String::new(),
            warning: String::new(),
            retransmissions: 0,
            attempts: 0,
            offer_private: None,
            auth: Auth::default(),
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

    pub(super) fn kind(&self) -> Kind {
        match self.role {
            Role::Call(_) => Kind::Call,
            Role::Registration { .. } => Kind::Registration,
        }
    }

    /// What only a call has; `None` for a registration.
    pub(super) fn call(&self) -> Option<&CallState> {
        match &self.role {
            Role::Call(call) => Some(call),
            Role::Registration { .. } => None,
        }
    }

    fn call_mut(&mut self) -> Option<&mut CallState> {
        match &mut self.role {
            Role::Call(call) => Some(call),
            Role::Registration { .. } => None,
        }
    }

    pub(super) fn concerns(&self, user: &str) -> bool {
        let norm = |s: &str| s.trim_start_matches('+').to_ascii_lowercase();
        let u = norm(user);
        [&self.from_user, &self.to_user]
            .iter()
            .any(|x| !x.is_empty() && norm(x) == u)
    }

    pub(super) fn record(
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
        if let Some(call) = self.call_mut() {
            call.media(ts, head, msg, media);
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

    /// The label of `p`, copied from the ladder's columns when it is one of them.
    fn label_in(&self, ladder: &Ladder, p: Peer) -> String {
        self.peers
            .iter()
            .position(|q| *q == p)
            .and_then(|i| ladder.endpoints.get(i))
            .cloned()
            .unwrap_or_else(|| p.label())
    }

    fn request(&mut self, ts: f64, src: Peer, method: &[u8], head: &SipHead<'_>, msg: &[u8]) {
        match method {
            b"INVITE" | b"REGISTER" => {
                self.attempts += 1;
                if self.first_request_ts.is_none() {
                    self.first_request_ts = Some(ts);
                }
                self.auth.last_request_had_credentials = head.has_credentials;
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
                    if let Some(call) = self.call_mut()
                        && call.offer_pts.is_empty()
                    {
                        call.offer_pts = sdp.payload_types;
                    }
                }
                if let Ok(ip) = self.contact_host.parse::<IpAddr>()
                    && is_private(ip)
                    && let Some(seen) = src.ip()
                    && seen != ip
                    && !is_private(seen)
                    && self.offer_private.is_none()
                {
                    self.offer_private = Some(format!(
                        "Contact {} but packets came from {}",
                        self.contact_host, seen
                    ));
                }
            }
            b"CANCEL" => {
                if let Some(call) = self.call_mut() {
                    call.cancelled = true;
                }
            }
            b"BYE" => {
                let answered = self.call_mut().is_some_and(|call| {
                    if call.bye_at.is_none() {
                        call.bye_at = Some(ts);
                    }
                    call.answered_at.is_some()
                });
                if answered || self.final_status.is_some() {
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
        if !is_private(ip) || self.offer_private.is_some() {
            return;
        }
        if let Some(seen) = src.ip()
            && seen != ip
            && !is_private(seen)
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
        if (180..200).contains(&code)
            && let Some(call) = self.call_mut()
            && call.first_18x.is_none()
        {
            call.first_18x = Some(ts);
        }
        if code < 200 {
            return;
        }
        if code == 401 || code == 407 {
            self.auth.rounds += 1;
            if self.auth.last_request_had_credentials {
                self.auth.challenged_after_credentials = true;
            }
        } else if code == 403 && self.auth.last_request_had_credentials {
            self.auth.rejected_after_credentials = true;
        }
        self.final_status = Some(code);
        set_text(&mut self.final_reason, reason);
        set_text(
            &mut self.warning,
            if head.warning.is_empty() {
                head.reason
            } else {
                head.warning
            },
        );
        if (200..300).contains(&code) {
            if method == b"INVITE" {
                if let Some(call) = self.call_mut() {
                    call.answered(ts, body_sdp(head, msg));
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
        if seen != sent && is_private(sent) && self.offer_private.is_none() {
            self.offer_private = Some(format!(
                "the client announces private {sent} but the server saw {seen}"
            ));
        }
    }

    pub(super) fn call_summary(mut self) -> CallSummary {
        let causes = self.causes();
        let invite = self.first_request_ts.unwrap_or(self.start);
        let ladder = self.finish_ladder();
        let client = self.label_in(&ladder, self.client);
        let server = self.label_in(&ladder, self.server);
        let (first_18x, answered_at, bye_at) = self.call().map_or((None, None, None), |c| {
            (c.first_18x, c.answered_at, c.bye_at)
        });
        CallSummary {
            ladder,
            start_text: crate::render::time_text(self.start),
            post_dial_delay_ms: first_18x.map(|t| ms(invite, t)),
            setup_time_ms: answered_at.map(|t| ms(invite, t)),
            duration_ms: match (answered_at, bye_at) {
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
            auth_rounds: self.auth.rounds,
            transport: self.transport,
            client,
            server,
            user_agent: self.user_agent,
            warning: self.warning,
            messages: self.messages,
            causes,
            media: None,
        }
    }

    pub(super) fn registration_summary(mut self) -> RegistrationSummary {
        let causes = self.causes();
        let registrar = match &mut self.role {
            Role::Registration { registrar } => std::mem::take(registrar),
            Role::Call(_) => String::new(),
        };
        RegistrationSummary {
            ladder: self.finish_ladder(),
            start_text: crate::render::time_text(self.start),
            call_id: self.call_id,
            user: self.to_user,
            registrar,
            start: self.start,
            attempts: self.attempts,
            auth_rounds: self.auth.rounds,
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

/// `text(b)` into `s`, reusing its allocation (final responses repeat after challenges).
fn set_text(s: &mut String, b: &[u8]) {
    s.clear();
    match std::str::from_utf8(b) {
        Ok(t) => s.push_str(t),
        Err(_) => s.push_str(&String::from_utf8_lossy(b)),
    }
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

impl CallState {
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

    /// A 2xx to the INVITE: answered, and what its SDP answer says about the offer.
    fn answered(&mut self, ts: f64, sdp: Option<scan::SdpInfo>) {
        if self.answered_at.is_none() {
            self.answered_at = Some(ts);
        }
        if let Some(sdp) = sdp {
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
    }
}
