//! Every call's media sessions and the streams found without signalling.

use super::judge::{codec_of, judge};
use super::*;

impl Candidate {
    /// A flow seen for the first time with this RTP header.
    fn first(h: &RtpHeader, ts: f64) -> Self {
        Candidate {
            ssrc: h.ssrc,
            seq: h.seq,
            pt: h.payload_type,
            count: 1,
            first: ts,
            last: ts,
        }
    }
}

impl Media {
    /// A new, empty session for a call.
    pub(crate) fn open_session(&mut self, ts: f64) -> u64 {
        self.next_id += 1;
        self.sessions.insert(
            self.next_id,
            Session {
                last: ts,
                ..Session::default()
            },
        );
        self.next_id
    }

    /// An SDP of `side` (offer or answer, first or re-INVITE): RTP and RTCP to its addresses
    /// belong to the call from now on.
    pub(crate) fn sdp(&mut self, id: u64, side: Side, sdp: SdpAudio) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let info = &mut s.sides[side.idx()];
        for a in [sdp.rtp_addr(), sdp.rtcp_addr()].into_iter().flatten() {
            if a.port() == 0 || a.ip().is_unspecified() {
                continue;
            }
            if !info.addrs.contains(&a) && info.addrs.len() < MAX_ADDRS_PER_SIDE * 2 {
                info.addrs.push(a);
            }
            self.endpoints.insert(a, Endpoint { session: id, side });
        }
        info.sdp = Some(sdp);
    }

    /// The call was answered at `ts` (2xx to the INVITE).
    pub(crate) fn answered(&mut self, id: u64, ts: f64) {
        if let Some(s) = self.sessions.get_mut(&id)
            && s.answered_at.is_none()
        {
            s.answered_at = Some(ts);
        }
    }

    /// The call ended at `ts` (BYE): its addresses stop claiming packets shortly after.
    pub(crate) fn ended(&mut self, id: u64, ts: f64) {
        if let Some(s) = self.sessions.get_mut(&id)
            && s.ended_at.is_none()
        {
            s.ended_at = Some(ts);
        }
    }

    /// The endpoint at `addr`, if its call is still live at `ts`.
    fn live_endpoint(&self, addr: &SocketAddr, ts: f64) -> Option<Endpoint> {
        let e = *self.endpoints.get(addr)?;
        let s = self.sessions.get(&e.session)?;
        s.ended_at
            .is_none_or(|end| ts - end < ENDED_GRACE_S)
            .then_some(e)
    }

    /// The last RTP or RTCP packet of a session: a call with media is not idle.
    pub(crate) fn last_activity(&self, id: u64) -> f64 {
        self.sessions.get(&id).map_or(0.0, |s| s.last)
    }

    /// Whether any RTP was seen so far.
    pub(crate) fn any_rtp(&self) -> bool {
        self.stats.rtp_packets > 0
    }

    /// Whether [`Media::udp`] could do more with a datagram than note its time: RTP, or RTCP.
    pub(crate) fn could_be_media(data: &[u8]) -> bool {
        parse_rtp(data).is_some()
            || (data.len() >= 2 && (192..=223).contains(&data[1]) && parse_rtcp(data).is_some())
    }

    /// A datagram that [`Media::could_be_media`] rejects, as [`Media::udp`] takes it when no
    /// stream without signalling is open: only its time counts.
    pub(crate) fn not_media(&mut self, ts: f64) {
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        if ts - self.last_sweep > 10.0 {
            self.sweep(ts);
        }
    }

    /// A UDP datagram that is not SIP.
    pub(crate) fn udp(&mut self, ts: f64, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        if ts - self.last_sweep > 10.0 {
            self.sweep(ts);
        }
        // Ports are reused from call to call, and a test tool may share one port among many
        // calls: when the source and the destination name two calls, the call whose SDPs name
        // both ends wins, else the newer SDP.
        let ep = match (self.live_endpoint(&dst, ts), self.live_endpoint(&src, ts)) {
            (Some(d), Some(s)) if d.session != s.session => {
                let names = |e: Endpoint, other: &SocketAddr| {
                    self.sessions
                        .get(&e.session)
                        .is_some_and(|x| x.sides[e.side.other().idx()].addrs.contains(other))
                };
                if names(s, &dst) && !names(d, &src) {
                    Some((s, s.side))
                } else if names(d, &src) && !names(s, &dst) {
                    Some((d, d.side.other()))
                } else if s.session > d.session {
                    Some((s, s.side))
                } else {
                    Some((d, d.side.other()))
                }
            }
            (Some(d), _) => Some((d, d.side.other())),
            (None, Some(s)) => Some((s, s.side)),
            (None, None) => None,
        };
        if let Some((ep, from)) = ep {
            self.session_packet(ep.session, from, ts, src, dst, data);
            return;
        }
        self.heuristic(ts, src, dst, data);
    }

    fn session_packet(
        &mut self,
        id: u64,
        from: Side,
        ts: f64,
        src: SocketAddr,
        dst: SocketAddr,
        data: &[u8],
    ) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if data.len() >= 2 && (192..=223).contains(&data[1]) {
            if let Some(packets) = parse_rtcp(data) {
                s.last = s.last.max(ts);
                s.rtcp_packets += 1;
                self.stats.rtcp_packets += 1;
                for b in packets.iter().flat_map(|p| p.blocks.iter()) {
                    if let Some(st) = s.streams.iter_mut().find(|st| st.ssrc == b.ssrc) {
                        let r = st.rtcp.get_or_insert(RtcpSeen {
                            reports: 0,
                            fraction_lost: 0,
                            cumulative_lost: 0,
                            jitter: 0,
                        });
                        r.reports += 1;
                        r.fraction_lost = b.fraction_lost;
                        r.cumulative_lost = b.cumulative_lost;
                        r.jitter = b.jitter;
                    }
                }
            }
            return;
        }
        let Some(h) = parse_rtp(data) else {
            return;
        };
        s.last = s.last.max(ts);
        self.stats.rtp_packets += 1;
        let answered = s.answered_at;
        if let Some(st) = s
            .streams
            .iter_mut()
            .find(|st| st.ssrc == h.ssrc && st.src == src && st.dst == dst)
        {
            st.packet(&h, ts, answered);
            return;
        }
        if s.streams.len() >= MAX_STREAMS_PER_CALL || self.open_streams >= MAX_OPEN_STREAMS {
            self.stats.streams_not_tracked += 1;
            return;
        }
        let mut st = Stream::new(src, dst, &h, Some(from), ts);
        // The sender uses the receiver's payload type numbers (RFC 3264 §5.1), else its own.
        let (name, clock) = codec_of(&s.sides, from.other(), from, h.payload_type);
        st.codec = name;
        st.clock = clock;
        st.packet(&h, ts, answered);
        s.streams.push(st);
        self.open_streams += 1;
        self.stats.rtp_streams += 1;
        self.stats.peak_open_streams = self.stats.peak_open_streams.max(self.open_streams as u64);
    }

    /// UDP without signalling: a flow becomes a stream after a few RTP packets in a row with
    /// one SSRC, one payload type and consecutive sequence numbers.
    fn heuristic(&mut self, ts: f64, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        let Some(h) = parse_rtp(data) else {
            return;
        };
        if !plausible_payload_type(h.payload_type) {
            return;
        }
        if let Some(st) = self.unsignalled.get_mut(&(src, dst, h.ssrc)) {
            self.stats.rtp_packets += 1;
            st.packet(&h, ts, None);
            return;
        }
        let promote = match self.candidates.get_mut(&(src, dst)) {
            Some(c)
                if c.ssrc == h.ssrc
                    && c.pt == h.payload_type
                    && (1..=3).contains(&h.seq.wrapping_sub(c.seq))
                    && ts - c.last < 2.0 =>
            {
                c.count += 1;
                c.seq = h.seq;
                c.last = ts;
                c.count >= HEURISTIC_PACKETS
            }
            Some(c) => {
                *c = Candidate::first(&h, ts);
                false
            }
            None => {
                if self.candidates.len() >= MAX_CANDIDATES {
                    // Bounded: forget half-seen flows rather than grow.
                    self.candidates.clear();
                }
                self.candidates.insert((src, dst), Candidate::first(&h, ts));
                false
            }
        };
        if !promote {
            return;
        }
        let first = self.candidates.remove(&(src, dst)).map_or(ts, |c| c.first);
        if self.open_streams >= MAX_OPEN_STREAMS {
            self.stats.streams_not_tracked += 1;
            return;
        }
        let mut st = Stream::new(src, dst, &h, None, ts);
        // The packets that made it a candidate count too.
        st.packets = u64::from(HEURISTIC_PACKETS - 1);
        st.base_seq = h.seq.wrapping_sub(st.packets as u16);
        st.first_ts = first;
        if let Some((name, clock)) = static_codec(h.payload_type) {
            st.codec = name.to_owned();
            st.clock = clock;
        }
        st.packet(&h, ts, None);
        self.stats.rtp_packets += u64::from(HEURISTIC_PACKETS);
        self.unsignalled.insert((src, dst, h.ssrc), st);
        self.open_streams += 1;
        self.stats.rtp_streams += 1;
        self.stats.unsignalled_streams += 1;
        self.stats.peak_open_streams = self.stats.peak_open_streams.max(self.open_streams as u64);
    }

    fn sweep(&mut self, now: f64) {
        self.last_sweep = now;
        self.candidates.retain(|_, c| now - c.last < 10.0);
        let idle: Vec<(SocketAddr, SocketAddr, u32)> = self
            .unsignalled
            .iter()
            .filter(|(_, s)| now - s.last_ts > UNSIGNALLED_IDLE_S)
            .map(|(k, _)| *k)
            .collect();
        for k in idle {
            if let Some(st) = self.unsignalled.remove(&k) {
                self.close_unsignalled(&st);
            }
        }
    }

    fn close_unsignalled(&mut self, st: &Stream) {
        self.open_streams = self.open_streams.saturating_sub(1);
        if self.listed.len() < MAX_UNSIGNALLED_LISTED {
            self.listed.push(st.summary(0.0));
        }
    }

    /// Close every stream without signalling (end of input); they are listed by start time.
    pub(crate) fn finish(&mut self) {
        let mut rest: Vec<Stream> = self.unsignalled.drain().map(|(_, s)| s).collect();
        rest.sort_by(|a, b| a.first_ts.total_cmp(&b.first_ts));
        for st in &rest {
            self.close_unsignalled(st);
        }
        self.listed.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    }

    /// Summarise and forget a call's session: its streams, verdict and problems.
    pub(crate) fn close(
        &mut self,
        id: u64,
        ctx: &CallContext,
    ) -> Option<(MediaSummary, Vec<MediaProblem>)> {
        let s = self.sessions.remove(&id)?;
        for side in &s.sides {
            for a in &side.addrs {
                if self.endpoints.get(a).is_some_and(|e| e.session == id) {
                    self.endpoints.remove(a);
                }
            }
        }
        self.open_streams = self.open_streams.saturating_sub(s.streams.len());
        let any_rtp = self.any_rtp();
        Some(judge(&s, ctx, any_rtp))
    }
}
