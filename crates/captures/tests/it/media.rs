//! Hand-made media edge cases (sequence wrap, SSRC change, a late stream, loss with RTCP, NAT,
//! a re-INVITE, a codec the offer lacked, streams without signalling), the seeded mutation test
//! of the RTP/RTCP/SDP parsers and the replay of their corpus.

use std::path::Path;

use captures::{Cause, MediaVerdict, OutcomeHint, StreamSummary};

use crate::pcapgen::{Link, Pcap, rtcp_rr, rtp, sip};

const T0: f64 = 1_795_665_600.0;
const CALLER_SIP: &str = "198.51.100.1:5060";
const PROXY: &str = "198.51.100.2:5060";
const CALLER_RTP: &str = "198.51.100.1:4000";
const CALLEE_RTP: &str = "203.0.113.9:5000";

/// INVITE (offer `caller_media`) at T0, 200 (answer `callee_media`) and ACK at T0+1.
fn call(p: &mut Pcap, id: &str, caller_media: &str, callee_media: &str, answer_pts: &str) {
    let invite = sip(
        "INVITE sip:bob@example.com SIP/2.0",
        id,
        "1 INVITE",
        false,
        Some((caller_media, "0 8")),
    );
    p.udp(T0, CALLER_SIP, PROXY, &invite);
    let ok = sip(
        "SIP/2.0 200 OK",
        id,
        "1 INVITE",
        true,
        Some((callee_media, answer_pts)),
    );
    p.udp(T0 + 1.0, PROXY, CALLER_SIP, &ok);
    let ack = sip("ACK sip:bob@example.com SIP/2.0", id, "1 ACK", true, None);
    p.udp(T0 + 1.01, CALLER_SIP, PROXY, &ack);
}

fn hang_up(p: &mut Pcap, id: &str, at: f64) {
    let bye = sip("BYE sip:bob@example.com SIP/2.0", id, "2 BYE", true, None);
    p.udp(at, CALLER_SIP, PROXY, &bye);
    let ok = sip("SIP/2.0 200 OK", id, "2 BYE", true, None);
    p.udp(at + 0.01, PROXY, CALLER_SIP, &ok);
}

fn analyse(p: &Pcap) -> captures::Analysis {
    captures::analyze_reader(p.bytes.as_slice(), &captures::AnalyzeOptions::default())
        .expect("analyse")
}

fn from(m: &captures::MediaSummary, side: &str) -> Vec<StreamSummary> {
    m.streams
        .iter()
        .filter(|s| serde_json::to_value(s.from).ok() == Some(side.into()))
        .cloned()
        .collect()
}

#[test]
fn sequence_wrap_ssrc_change_and_a_late_stream() {
    let mut p = Pcap::new(Link::Ipv4);
    call(&mut p, "wrap", CALLER_RTP, CALLEE_RTP, "0");
    // The caller: 150 packets whose sequence numbers wrap at 65535.
    p.rtp_run(
        T0 + 1.02,
        CALLER_RTP,
        CALLEE_RTP,
        0xaaaa,
        0,
        65_500,
        150,
        |_| false,
    );
    // The callee starts 5 s after the answer, then restarts with another SSRC.
    p.rtp_run(T0 + 6.0, CALLEE_RTP, CALLER_RTP, 0xbbbb, 0, 100, 50, |_| {
        false
    });
    p.rtp_run(
        T0 + 7.0,
        CALLEE_RTP,
        CALLER_RTP,
        0xcccc,
        0,
        9000,
        50,
        |_| false,
    );
    hang_up(&mut p, "wrap", T0 + 8.5);
    let a = analyse(&p);
    let m = a.calls[0].media.as_ref().expect("media");
    assert_eq!(m.verdict, MediaVerdict::BothWays, "{}", m.reason);
    let caller = from(m, "caller");
    assert_eq!(caller.len(), 1);
    assert_eq!(
        (caller[0].packets, caller[0].expected, caller[0].lost),
        (150, 150, 0),
        "{caller:?}"
    );
    assert_eq!(caller[0].sequence_gaps, 0);
    assert_eq!(caller[0].jitter_ms, Some(0.0));
    assert_eq!(caller[0].codec, "PCMU");
    let callee = from(m, "callee");
    assert_eq!(callee.len(), 2, "{callee:?}");
    assert!(callee.iter().all(|s| s.lost == 0 && s.packets == 50));
    assert_eq!(callee[0].ssrc, "0x0000bbbb");
    assert!(
        m.reason
            .contains("RTP from the callee started 5.0 s after 200 OK"),
        "{}",
        m.reason
    );
    assert!(
        m.reason.contains("the callee changed SSRC (2 sources)"),
        "{}",
        m.reason
    );
    assert!(a.calls[0].causes.is_empty(), "{:?}", a.calls[0].causes);
    assert_eq!(a.stats.media.rtp_packets, 250);
    assert_eq!(a.stats.media.rtp_streams, 3);
}

#[test]
fn loss_and_rtcp_reports_are_a_quality_finding() {
    let mut p = Pcap::new(Link::Ipv4);
    call(&mut p, "loss", CALLER_RTP, CALLEE_RTP, "0");
    // Every tenth packet of the caller is lost.
    p.rtp_run(T0 + 1.02, CALLER_RTP, CALLEE_RTP, 0x1111, 0, 1, 100, |i| {
        i % 10 == 3
    });
    p.rtp_run(T0 + 1.02, CALLEE_RTP, CALLER_RTP, 0x2222, 0, 1, 100, |_| {
        false
    });
    // The callee's receiver report about it, to the caller's RTCP port (RTP + 1).
    p.udp(
        T0 + 3.0,
        "203.0.113.9:5001",
        "198.51.100.1:4001",
        &rtcp_rr(0x2222, 0x1111, 26, 10, 160),
    );
    hang_up(&mut p, "loss", T0 + 3.1);
    let a = analyse(&p);
    let m = a.calls[0].media.as_ref().expect("media");
    assert_eq!(m.verdict, MediaVerdict::BothWays, "{}", m.reason);
    let st = &from(m, "caller")[0];
    assert_eq!((st.expected, st.lost, st.loss_percent), (100, 10, 10.0));
    assert_eq!(st.sequence_gaps, 10);
    assert_eq!(st.max_gap_ms, 40);
    let r = st.rtcp.as_ref().expect("rtcp");
    assert_eq!((r.reports, r.cumulative_lost), (1, 10));
    assert_eq!(r.fraction_lost_percent, 10.2);
    assert_eq!(r.jitter_ms, Some(20.0));
    assert_eq!(a.stats.media.rtcp_packets, 1);
    let f = a.calls[0]
        .causes
        .iter()
        .find(|f| f.cause == Cause::PoorAudio)
        .expect("poor audio");
    assert!(
        f.text
            .contains("caller to callee lost 10% of RTP (10 of 100)"),
        "{}",
        f.text
    );
    assert!(
        f.text.contains("RTCP from the callee reports 10.2% lost"),
        "{}",
        f.text
    );
    assert_eq!(f.outcome, None);
}

#[test]
fn rtp_sent_to_the_private_address_from_the_sdp() {
    let mut p = Pcap::new(Link::Ipv4);
    // The caller behind NAT: SIP and RTP leave from 203.0.113.7, its SDP names 192.168.1.10.
    let invite = sip(
        "INVITE sip:bob@example.com SIP/2.0",
        "nat",
        "1 INVITE",
        false,
        Some(("192.168.1.10:4000", "0")),
    );
    p.udp(T0, "203.0.113.7:5060", PROXY, &invite);
    let ok = sip(
        "SIP/2.0 200 OK",
        "nat",
        "1 INVITE",
        true,
        Some(("198.51.100.20:5000", "0")),
    );
    p.udp(T0 + 1.0, PROXY, "203.0.113.7:5060", &ok);
    p.rtp_run(
        T0 + 1.1,
        "203.0.113.7:4000",
        "198.51.100.20:5000",
        1,
        0,
        1,
        100,
        |_| false,
    );
    p.rtp_run(
        T0 + 1.1,
        "198.51.100.20:5000",
        "192.168.1.10:4000",
        2,
        0,
        1,
        100,
        |_| false,
    );
    let bye = sip(
        "BYE sip:bob@example.com SIP/2.0",
        "nat",
        "2 BYE",
        true,
        None,
    );
    p.udp(T0 + 3.5, "203.0.113.7:5060", PROXY, &bye);
    let a = analyse(&p);
    let m = a.calls[0].media.as_ref().expect("media");
    assert_eq!(m.verdict, MediaVerdict::OneWay, "{}", m.reason);
    assert!(
        m.reason.contains("RTP sent to a private address from the SDP (NAT): the callee sends to 192.168.1.10:4000"),
        "{}",
        m.reason
    );
    let f = a.calls[0]
        .causes
        .iter()
        .find(|f| f.cause == Cause::OneWayAudio)
        .expect("one-way");
    assert_eq!(f.outcome, Some(OutcomeHint::NetworkProblem));
    let svg = captures::ladder_svg(&a, "nat").expect("svg");
    assert!(svg.contains("media: one-way audio"), "{svg}");
}

#[test]
fn a_re_invite_moves_the_media_and_a_codec_the_offer_lacked_is_named() {
    let mut p = Pcap::new(Link::Ipv4);
    call(&mut p, "move", CALLER_RTP, CALLEE_RTP, "0");
    p.rtp_run(T0 + 1.02, CALLER_RTP, CALLEE_RTP, 1, 0, 1, 50, |_| false);
    // A re-INVITE from the caller moves its media to port 4100.
    let reinvite = sip(
        "INVITE sip:bob@example.com SIP/2.0",
        "move",
        "2 INVITE",
        true,
        Some(("198.51.100.1:4100", "0")),
    );
    p.udp(T0 + 2.1, CALLER_SIP, PROXY, &reinvite);
    let ok = sip(
        "SIP/2.0 200 OK",
        "move",
        "2 INVITE",
        true,
        Some((CALLEE_RTP, "0")),
    );
    p.udp(T0 + 2.2, PROXY, CALLER_SIP, &ok);
    p.rtp_run(
        T0 + 2.3,
        "198.51.100.1:4100",
        CALLEE_RTP,
        1,
        0,
        51,
        50,
        |_| false,
    );
    p.rtp_run(
        T0 + 2.3,
        CALLEE_RTP,
        "198.51.100.1:4100",
        2,
        0,
        1,
        50,
        |_| false,
    );
    hang_up(&mut p, "move", T0 + 3.5);
    // A second call: the answer picks G.729, which the offer did not have, and stays silent.
    call(
        &mut p,
        "codec",
        "198.51.100.1:4200",
        "203.0.113.9:5200",
        "18",
    );
    p.rtp_run(
        T0 + 1.02,
        "198.51.100.1:4200",
        "203.0.113.9:5200",
        3,
        0,
        1,
        50,
        |_| false,
    );
    hang_up(&mut p, "codec", T0 + 2.5);
    let a = analyse(&p);
    let moved = a.calls.iter().find(|c| c.call_id == "move").expect("move");
    let m = moved.media.as_ref().expect("media");
    assert_eq!(m.verdict, MediaVerdict::BothWays, "{}", m.reason);
    assert!(
        m.caller_sdp.starts_with("198.51.100.1:4100"),
        "{}",
        m.caller_sdp
    );
    assert_eq!(
        from(m, "caller").iter().map(|s| s.packets).sum::<u64>(),
        100
    );
    assert_eq!(from(m, "callee")[0].dst, "198.51.100.1:4100");
    let codec = a
        .calls
        .iter()
        .find(|c| c.call_id == "codec")
        .expect("codec");
    let m = codec.media.as_ref().expect("media");
    assert_eq!(m.verdict, MediaVerdict::OneWay, "{}", m.reason);
    assert!(
        m.reason
            .contains("codec in the answer not in the offer (G729 (18))"),
        "{}",
        m.reason
    );
    assert!(
        codec.causes.iter().any(|f| f.cause == Cause::OneWayAudio
            && f.outcome == Some(OutcomeHint::ClientMisconfiguration)),
        "{:?}",
        codec.causes
    );
}

#[test]
fn rtp_without_signalling_is_found_by_its_headers() {
    let mut p = Pcap::new(Link::Ipv4);
    // Joined mid-call: no SIP at all, 200 packets of PCMA one way.
    p.rtp_run(
        T0,
        "192.0.2.1:30000",
        "192.0.2.2:40000",
        0xfeed,
        8,
        40_000,
        200,
        |_| false,
    );
    // Noise: DNS-like datagrams and version-2 packets whose sequence jumps about.
    for i in 0..50u16 {
        p.udp(
            T0 + f64::from(i) * 0.1,
            "192.0.2.5:53",
            "192.0.2.6:3333",
            &[0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
        );
        p.udp(
            T0 + f64::from(i) * 0.1,
            "192.0.2.7:7000",
            "192.0.2.8:7000",
            &rtp(0, i.wrapping_mul(7919), 0, 5, 20),
        );
    }
    let a = analyse(&p);
    assert_eq!(
        a.unsignalled_streams.len(),
        1,
        "{:?}",
        a.unsignalled_streams
    );
    let st = &a.unsignalled_streams[0];
    assert_eq!(st.from, None);
    assert_eq!(
        (st.src.as_str(), st.dst.as_str()),
        ("192.0.2.1:30000", "192.0.2.2:40000")
    );
    assert_eq!((st.codec.as_str(), st.packets, st.lost), ("PCMA", 200, 0));
    assert_eq!(st.duration_ms, 3980);
    assert_eq!(a.stats.media.unsignalled_streams, 1);
    assert_eq!(a.stats.media.rtp_packets, 200);
    assert!(captures::summary_table(&a).contains("RTP streams without signalling: 1"));
}

#[test]
fn a_capture_without_rtp_does_not_blame_the_media() {
    let mut p = Pcap::new(Link::Ipv4);
    call(&mut p, "sig", CALLER_RTP, CALLEE_RTP, "0");
    hang_up(&mut p, "sig", T0 + 10.0);
    let a = analyse(&p);
    let m = a.calls[0].media.as_ref().expect("media");
    assert_eq!(m.verdict, MediaVerdict::NotJudged);
    assert!(m.reason.contains("filtered to signalling"), "{}", m.reason);
    assert!(a.calls[0].causes.is_empty());
}

// --------------------------------------------------------------------- mutation test and corpus

/// xorshift64*: a seeded generator, so a failure names the iteration that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0xff, 0x80, 0x7f, 0x20, 0x10, 200, 201][rng.below(8)];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 if !v.is_empty() => {
                let a = rng.below(v.len());
                let b = (a + rng.below(32)).min(v.len());
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len());
                v.splice(at..at, chunk);
            }
            4 => {
                let at = rng.below(v.len() + 1);
                let n = rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                v.splice(at..at, bytes);
            }
            _ => {
                let at = rng.below(v.len() + 1);
                v.truncate(at);
                v.extend((0..rng.below(64)).map(|_| rng.next() as u8));
            }
        }
    }
    v
}

fn corpus_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/captures/corpus/rtp")
}

fn corpus() -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/captures/corpus/rtp")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("read"))
        .collect()
}

/// The parsers' promises on any input: no panic, and what they return stays inside the input.
fn check_parsers(bytes: &[u8]) {
    if let Some(h) = captures::rtp::parse_rtp(bytes) {
        assert!(h.payload_len + 12 <= bytes.len());
        assert!(h.payload_type < 128);
    }
    if let Some(packets) = captures::rtp::parse_rtcp(bytes) {
        assert!(!packets.is_empty() && packets.len() <= 16);
        assert!(packets.iter().all(|p| p.blocks.len() <= 31));
    }
    if let Some(sdp) = captures::rtp::sdp_audio(bytes) {
        assert!(sdp.payload_types.len() <= 32 && sdp.rtpmap.len() <= 32);
        let _ = (sdp.rtp_addr(), sdp.rtcp_addr());
    }
}

/// A call whose RTP and RTCP are the given datagrams, as a capture, through the whole analysis.
fn through_analysis(datagrams: &[Vec<u8>]) {
    let mut p = Pcap::new(Link::Ipv4);
    call(&mut p, "fuzz", CALLER_RTP, CALLEE_RTP, "0 8");
    for (i, d) in datagrams.iter().enumerate() {
        let t = T0 + 1.02 + i as f64 * 0.02;
        let (src, dst) = match i % 4 {
            0 => (CALLER_RTP, CALLEE_RTP),
            1 => (CALLEE_RTP, CALLER_RTP),
            2 => ("203.0.113.9:5001", "198.51.100.1:4001"),
            _ => ("192.0.2.1:30000", "192.0.2.2:40000"),
        };
        p.udp(t, src, dst, d);
    }
    hang_up(&mut p, "fuzz", T0 + 5.0);
    let a = analyse(&p);
    let _ = captures::summary_table(&a);
    let _ = captures::markdown_section(&a);
    let _ = captures::ladder_svg(&a, "fuzz");
    let _ = captures::ladder_text(&a, "fuzz");
    let _ = serde_json::to_string(&a).expect("json");
}

#[test]
fn rtp_rtcp_and_sdp_parsers_survive_20000_seeded_mutations() {
    let seeds = corpus();
    assert!(seeds.len() >= 8, "corpus too small: {}", seeds.len());
    let mut rng = Rng(0x005e_ed0f_d1a1_70e5);
    let mut batch = Vec::new();
    for i in 0..20_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let m = mutate(&mut rng, seed);
        let r = std::panic::catch_unwind(|| check_parsers(&m));
        assert!(r.is_ok(), "iteration {i}: input {m:02x?}");
        batch.push(m);
        // Every 40 mutations also go through a whole analysis as one call's media.
        if batch.len() == 40 {
            through_analysis(&batch);
            batch.clear();
        }
    }
}

#[test]
fn rtp_corpus_replays_through_the_parsers_and_the_analysis() {
    let seeds = corpus();
    for s in &seeds {
        check_parsers(s);
    }
    through_analysis(&seeds);
    // The corpus holds real packets: each parser accepts some of it.
    assert!(seeds.iter().any(|s| captures::rtp::parse_rtp(s).is_some()));
    assert!(seeds.iter().any(|s| captures::rtp::parse_rtcp(s).is_some()));
    assert!(seeds.iter().any(|s| captures::rtp::sdp_audio(s).is_some()));
}
