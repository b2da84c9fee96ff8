//! The media verdict of one call: which side hears the other, and why not.

use super::*;

pub(super) fn codec_of(sides: &[SideInfo; 2], first: Side, second: Side, pt: u8) -> (String, u32) {
    for side in [first, second] {
        if let Some(sdp) = &sides[side.idx()].sdp
            && let Some((_, name, clock)) = sdp.rtpmap.iter().find(|(p, _, _)| *p == pt)
        {
            // G.722's RTP clock is 8000 whatever its rtpmap says (RFC 3551 §4.5.2).
            let clock = if name.eq_ignore_ascii_case("G722") {
                8000
            } else {
                *clock
            };
            return (name.clone(), clock);
        }
    }
    static_codec(pt).map_or((String::new(), 0), |(n, c)| (n.to_owned(), c))
}

fn sdp_text(side: &SideInfo) -> String {
    let Some(sdp) = &side.sdp else {
        return String::new();
    };
    // "addr codec, codec a=dir", without a `format!` per part: it runs for every call.
    let mut out = String::with_capacity(48);
    match sdp.rtp_addr() {
        Some(a) => crate::net::push_addr(&mut out, &a),
        None => out.push('?'),
    }
    out.push(' ');
    for (i, pt) in sdp.payload_types.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        match sdp.rtpmap.iter().find(|(p, _, _)| p == pt) {
            Some((_, n, _)) => out.push_str(n),
            None => match static_codec(*pt) {
                Some((n, _)) => out.push_str(n),
                None => crate::net::push_u32(&mut out, u32::from(*pt)),
            },
        }
    }
    out.push_str(match sdp.direction {
        Direction::Sendrecv => "",
        Direction::Sendonly => " a=sendonly",
        Direction::Recvonly => " a=recvonly",
        Direction::Inactive => " a=inactive",
    });
    out
}

pub(super) fn judge(
    s: &Session,
    ctx: &CallContext,
    any_rtp: bool,
) -> (MediaSummary, Vec<MediaProblem>) {
    let rel = |t: f64| ((t - ctx.start) * 1000.0).round() / 1000.0;
    let mut summary = MediaSummary {
        verdict: MediaVerdict::NotJudged,
        reason: String::new(),
        caller_sdp: sdp_text(&s.sides[0]),
        callee_sdp: sdp_text(&s.sides[1]),
        streams: s.streams.iter().map(|st| st.summary(ctx.start)).collect(),
        phase_start_s: ctx.answered_at.map(rel),
        phase_end_s: ctx
            .answered_at
            .map(|_| rel(ctx.bye_at.unwrap_or(ctx.capture_end))),
    };
    let mut problems = Vec::new();
    let Some(answered) = ctx.answered_at else {
        summary.verdict = MediaVerdict::NotAnswered;
        summary.reason = if s.streams.is_empty() {
            "not answered".to_owned()
        } else {
            "not answered: early media only".to_owned()
        };
        return (summary, problems);
    };
    let end = ctx.bye_at.unwrap_or(ctx.capture_end);
    if !any_rtp {
        summary.reason = "no RTP anywhere in the capture up to this call's end: it was probably filtered to signalling, so the media cannot be judged".to_owned();
        return (summary, problems);
    }
    if end - answered < MIN_JUDGED_S && s.streams.is_empty() {
        summary.reason = format!(
            "the call lasted {:.0} ms after the answer: too short to judge the media",
            (end - answered).max(0.0) * 1000.0
        );
        return (summary, problems);
    }
    // Where each side's RTP really comes from (its NAT's public address when behind one).
    let public_source = |side: Side| -> Option<IpAddr> {
        s.streams
            .iter()
            .filter(|st| st.from == Some(side))
            .map(|st| st.src.ip())
            .find(|ip| !is_private(*ip))
            .or(if side == Side::Caller {
                ctx.caller_public
            } else {
                None
            })
    };
    let mut delivered = [0u64; 2];
    let mut to_private: [Option<(SocketAddr, IpAddr)>; 2] = [None, None];
    for st in &s.streams {
        let Some(from) = st.from else { continue };
        let to = from.other();
        let private_target = is_private(st.dst.ip())
            && s.sides[to.idx()].addrs.contains(&st.dst)
            && public_source(to).is_some_and(|p| p != st.dst.ip());
        if private_target {
            if let Some(p) = public_source(to) {
                to_private[from.idx()].get_or_insert((st.dst, p));
            }
            continue;
        }
        delivered[from.idx()] += st.after_answer;
    }
    let codec_list = |side: Side| -> String {
        let mut names: Vec<String> = Vec::new();
        for st in s.streams.iter().filter(|st| st.from == Some(side)) {
            let n = if st.codec.is_empty() {
                format!("payload type {}", st.pt)
            } else {
                st.codec.clone()
            };
            if !names.contains(&n) {
                names.push(n);
            }
        }
        names.join(", ")
    };
    let missing_reason = |from: Side| -> (String, bool, bool, bool) {
        let to = from.other();
        if let Some((dst, public)) = to_private[from.idx()] {
            return (
                format!(
                    "RTP sent to a private address from the SDP (NAT): the {} sends to {dst}, the {}'s private address from its SDP, while the {}'s own traffic comes from {public}",
                    from.name(),
                    to.name(),
                    to.name()
                ),
                true,
                false,
                false,
            );
        }
        let dir_of = |side: Side| s.sides[side.idx()].sdp.as_ref().map(|d| d.direction);
        let hold = match (dir_of(from), dir_of(to)) {
            (Some(Direction::Recvonly | Direction::Inactive), _) => Some(format!(
                "the {}'s SDP says a={} (on hold): it does not send",
                from.name(),
                if dir_of(from) == Some(Direction::Inactive) {
                    "inactive"
                } else {
                    "recvonly"
                }
            )),
            (_, Some(Direction::Sendonly | Direction::Inactive)) => Some(format!(
                "the {}'s SDP says a={} (on hold): the {} is not meant to send",
                to.name(),
                if dir_of(to) == Some(Direction::Inactive) {
                    "inactive"
                } else {
                    "sendonly"
                },
                from.name()
            )),
            _ => None,
        };
        if let Some(h) = hold {
            return (h, false, false, true);
        }
        if let Some(c) = &ctx.answer_not_offered {
            return (
                format!(
                    "codec in the answer not in the offer ({c}): no RTP from the {} after 200 OK",
                    from.name()
                ),
                false,
                true,
                false,
            );
        }
        let early = s
            .streams
            .iter()
            .any(|st| st.from == Some(from) && st.packets > st.after_answer);
        (
            format!(
                "no RTP from the {} after 200 OK{}",
                from.name(),
                if early {
                    " (early media before the answer only)"
                } else {
                    ""
                }
            ),
            false,
            false,
            false,
        )
    };
    let (caller_ok, callee_ok) = (delivered[0] > 0, delivered[1] > 0);
    let count = |side: Side| -> String {
        format!("{} packets ({})", delivered[side.idx()], codec_list(side))
    };
    match (caller_ok, callee_ok) {
        (true, true) => {
            summary.verdict = MediaVerdict::BothWays;
            summary.reason = format!(
                "audio both ways: caller to callee {}, callee to caller {}",
                count(Side::Caller),
                count(Side::Callee)
            );
        }
        (true, false) | (false, true) => {
            let (ok, missing) = if caller_ok {
                (Side::Caller, Side::Callee)
            } else {
                (Side::Callee, Side::Caller)
            };
            let (why, nat, codec, hold) = missing_reason(missing);
            summary.verdict = MediaVerdict::OneWay;
            summary.reason = format!(
                "one-way audio: {why}; the {} to the {} got {}",
                ok.name(),
                missing.name(),
                count(ok)
            );
            problems.push(MediaProblem::Audio {
                verdict: MediaVerdict::OneWay,
                text: summary.reason.clone(),
                nat,
                codec,
                hold,
            });
        }
        (false, false) => {
            let (a, nat_a, codec_a, hold_a) = missing_reason(Side::Caller);
            let (b, nat_b, codec_b, hold_b) = missing_reason(Side::Callee);
            summary.verdict = MediaVerdict::NoMedia;
            summary.reason = if a.starts_with("no RTP from") && b.starts_with("no RTP from") {
                "no audio: no RTP in either direction after 200 OK".to_owned()
            } else {
                format!("no audio: {a}; {b}")
            };
            problems.push(MediaProblem::Audio {
                verdict: MediaVerdict::NoMedia,
                text: summary.reason.clone(),
                nat: nat_a || nat_b,
                codec: codec_a || codec_b,
                hold: hold_a && hold_b,
            });
        }
    }
    // Late starts, loss and jitter.
    let mut notes = Vec::new();
    let mut quality = Vec::new();
    for st in &s.streams {
        let Some(from) = st.from else { continue };
        let dir = format!("{} to {}", from.name(), from.other().name());
        if st.first_ts - answered > LATE_S && st.after_answer > 0 {
            notes.push(format!(
                "RTP from the {} started {:.1} s after 200 OK",
                from.name(),
                st.first_ts - answered
            ));
        }
        let sum = st.summary(ctx.start);
        if sum.expected >= 20 && sum.loss_percent > LOSS_WARN_PERCENT {
            quality.push(format!(
                "{} lost {}% of RTP ({} of {})",
                dir, sum.loss_percent, sum.lost, sum.expected
            ));
        }
        if let Some(r) = &sum.rtcp
            && r.fraction_lost_percent > LOSS_WARN_PERCENT
        {
            quality.push(format!(
                "RTCP from the {} reports {}% lost",
                from.other().name(),
                r.fraction_lost_percent
            ));
        }
        if let Some(j) = sum.jitter_ms
            && j > JITTER_WARN_MS
        {
            quality.push(format!("{dir} jitter {j} ms"));
        }
        if st.restarts > 0 {
            notes.push(format!(
                "the {}'s RTP sequence restarted {} time(s)",
                from.name(),
                st.restarts
            ));
        }
    }
    let ssrcs = |side: Side| {
        let mut v: Vec<u32> = s
            .streams
            .iter()
            .filter(|st| st.from == Some(side))
            .map(|st| st.ssrc)
            .collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    for side in [Side::Caller, Side::Callee] {
        let announced = s.sides[side.idx()]
            .sdp
            .as_ref()
            .and_then(SdpAudio::rtp_addr);
        if let Some(sdp) = announced
            && let Some(st) = s
                .streams
                .iter()
                .find(|st| st.from == Some(side) && st.src.ip() != sdp.ip())
        {
            notes.push(format!(
                "the {}'s SDP announces {sdp} but its RTP comes from {}{}",
                side.name(),
                st.src,
                if is_private(sdp.ip()) {
                    " (NAT: the far end must send to where RTP comes from)"
                } else {
                    ""
                }
            ));
        }
        if ssrcs(side) > 1 {
            notes.push(format!(
                "the {} changed SSRC ({} sources)",
                side.name(),
                ssrcs(side)
            ));
        }
    }
    if !notes.is_empty() {
        summary.reason.push_str("; ");
        summary.reason.push_str(&notes.join("; "));
    }
    if !quality.is_empty() {
        problems.push(MediaProblem::Quality(format!(
            "poor audio: {}",
            quality.join("; ")
        )));
    }
    (summary, problems)
}
