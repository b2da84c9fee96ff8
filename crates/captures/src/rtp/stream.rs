//! Sequence, loss and jitter bookkeeping of one RTP stream (RFC 3550 A.1, A.8).

use super::*;

impl Stream {
    pub(super) fn new(
        src: SocketAddr,
        dst: SocketAddr,
        h: &RtpHeader,
        from: Option<Side>,
        ts: f64,
    ) -> Self {
        Stream {
            src,
            dst,
            ssrc: h.ssrc,
            from,
            pt: h.payload_type,
            other_pts: 0,
            clock: 0,
            codec: String::new(),
            packets: 0,
            after_answer: 0,
            first_ts: ts,
            last_ts: ts,
            base_seq: h.seq,
            max_seq: h.seq,
            cycles: 0,
            expected_before: 0,
            restarts: 0,
            gaps: 0,
            out_of_order: 0,
            jitter: 0.0,
            last_transit: None,
            max_gap: 0.0,
            rtcp: None,
        }
    }

    pub(super) fn packet(&mut self, h: &RtpHeader, ts: f64, answered: Option<f64>) {
        if self.packets > 0 {
            let gap = ts - self.last_ts;
            if gap > self.max_gap {
                self.max_gap = gap;
            }
            let delta = h.seq.wrapping_sub(self.max_seq);
            if delta == 0 {
                self.out_of_order += 1;
            } else if delta < MAX_DROPOUT {
                if h.seq < self.max_seq {
                    self.cycles += 1 << 16;
                }
                if delta > 1 {
                    self.gaps += 1;
                }
                self.max_seq = h.seq;
            } else if delta <= u16::MAX - MAX_MISORDER {
                // A jump: the sender restarted its sequence (RFC 3550 A.1 resynchronises).
                self.expected_before += self.expected_run();
                self.restarts += 1;
                self.base_seq = h.seq;
                self.max_seq = h.seq;
                self.cycles = 0;
                self.last_transit = None;
            } else {
                self.out_of_order += 1;
            }
        }
        self.packets += 1;
        if answered.is_some_and(|a| ts >= a) {
            self.after_answer += 1;
        }
        if ts > self.last_ts {
            self.last_ts = ts;
        }
        if h.payload_type != self.pt {
            // Telephone events and comfort noise have their own timing: no jitter from them.
            self.other_pts += 1;
            return;
        }
        if self.clock > 0 {
            let transit = ts * f64::from(self.clock) - f64::from(h.timestamp);
            if let Some(last) = self.last_transit {
                let mut d = (transit - last).abs();
                // The RTP timestamp wraps at 2^32.
                if d > 2_147_483_648.0 {
                    d = (d - 4_294_967_296.0).abs();
                }
                self.jitter += (d - self.jitter) / 16.0;
            }
            self.last_transit = Some(transit);
        }
    }

    fn expected_run(&self) -> u64 {
        (self.cycles + u64::from(self.max_seq) + 1).saturating_sub(u64::from(self.base_seq))
    }

    pub(super) fn summary(&self, call_start: f64) -> StreamSummary {
        let expected = self.expected_before + self.expected_run();
        let lost = expected.saturating_sub(self.packets);
        let ms = |s: f64| (s * 1000.0).round().max(0.0) as u64;
        StreamSummary {
            from: self.from,
            src: self.src.to_string(),
            dst: self.dst.to_string(),
            ssrc: format!("0x{:08x}", self.ssrc),
            payload_type: self.pt,
            codec: self.codec.clone(),
            packets: self.packets,
            expected,
            lost,
            loss_percent: if expected > 0 {
                (lost as f64 * 1000.0 / expected as f64).round() / 10.0
            } else {
                0.0
            },
            sequence_gaps: self.gaps,
            sequence_restarts: self.restarts,
            out_of_order: self.out_of_order,
            jitter_ms: (self.clock > 0)
                .then(|| (self.jitter * 1000.0 / f64::from(self.clock) * 10.0).round() / 10.0),
            max_gap_ms: ms(self.max_gap),
            start_s: ((self.first_ts - call_start) * 1000.0).round() / 1000.0,
            duration_ms: ms(self.last_ts - self.first_ts),
            rtcp: self.rtcp.map(|r| RtcpSummary {
                reports: r.reports,
                fraction_lost_percent: (f64::from(r.fraction_lost) * 1000.0 / 256.0).round() / 10.0,
                cumulative_lost: r.cumulative_lost,
                jitter_ms: (self.clock > 0).then(|| {
                    (f64::from(r.jitter) * 1000.0 / f64::from(self.clock) * 10.0).round() / 10.0
                }),
            }),
        }
    }
}
