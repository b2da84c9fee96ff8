//! RTP and RTCP (RFC 3550): header parsing, media descriptions from SDP, per-stream statistics
//! and the per-call media verdict (audio both ways, one way or none, with the reason).
//!
//! Pure: packets come in from the capture reader, summaries go out. Parsing never panics on
//! any input. Memory is bounded by the streams open at a time ([`MAX_OPEN_STREAMS`]), not by
//! the number of packets or calls.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use serde::Serialize;

use sip_message::is_private;

mod judge;
mod media;
mod packet;
mod sdp;
mod stream;

pub use packet::{
    ReportBlock, RtcpKind, RtcpPacket, RtpHeader, parse_rtcp, parse_rtp, plausible_payload_type,
};
pub use sdp::{Direction, SdpAudio, sdp_audio, static_codec};

/// Most RTP streams (signalled or found by heuristics) followed at once; past it, new streams
/// are counted in [`MediaStats::streams_not_tracked`] and not followed.
pub const MAX_OPEN_STREAMS: usize = 20_000;
/// Most streams followed in one call (several legs through proxies, SSRC changes).
const MAX_STREAMS_PER_CALL: usize = 16;
/// Most addresses remembered per side of a call (re-INVITEs, SDP rewritten on each leg).
const MAX_ADDRS_PER_SIDE: usize = 8;
/// Candidate flows for the RTP heuristics (UDP without signalling).
const MAX_CANDIDATES: usize = 4096;
/// Packets in a row that make a UDP flow an RTP stream without signalling.
const HEURISTIC_PACKETS: u32 = 4;
/// A stream without signalling is closed after this long without packets.
const UNSIGNALLED_IDLE_S: f64 = 60.0;
/// Streams without signalling listed in the analysis (all are counted).
const MAX_UNSIGNALLED_LISTED: usize = 100;
/// RFC 3550 A.1: a jump of more than this is a restart, not loss.
const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: a step back of less than this is reordering.
const MAX_MISORDER: u16 = 100;
/// RTP to or from a call's addresses still belongs to it this long after its BYE.
const ENDED_GRACE_S: f64 = 2.0;
/// An answered call shorter than this is not judged on its media.
const MIN_JUDGED_S: f64 = 0.4;
/// A stream that starts later than this after the answer is named as late.
const LATE_S: f64 = 2.0;
/// Loss (percent) or jitter (ms) above these is a media-quality finding.
const LOSS_WARN_PERCENT: f64 = 5.0;
const JITTER_WARN_MS: f64 = 50.0;

// ------------------------------------------------------------------------------ stream tracking

/// A small, fast hasher for addresses and ids (multiply-rotate, as in FxHash): it runs for
/// every RTP packet, and the keys are not chosen by an attacker who could profit from collisions
/// beyond slowing one analysis down.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A side of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The party that sent the first INVITE.
    Caller,
    /// The party it called.
    Callee,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::Caller => Side::Callee,
            Side::Callee => Side::Caller,
        }
    }
    fn idx(self) -> usize {
        match self {
            Side::Caller => 0,
            Side::Callee => 1,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Side::Caller => "caller",
            Side::Callee => "callee",
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Endpoint {
    session: u64,
    side: Side,
}

/// Sequence, loss and jitter bookkeeping of one RTP stream (RFC 3550 A.1, A.8).
#[derive(Debug, Clone)]
struct Stream {
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    /// Sender side; `None` for a stream found without signalling.
    from: Option<Side>,
    pt: u8,
    other_pts: u32,
    clock: u32,
    codec: String,
    packets: u64,
    after_answer: u64,
    first_ts: f64,
    last_ts: f64,
    base_seq: u16,
    max_seq: u16,
    cycles: u64,
    /// Expected packets of earlier runs, before a sequence restart.
    expected_before: u64,
    restarts: u32,
    gaps: u32,
    out_of_order: u32,
    jitter: f64,
    last_transit: Option<f64>,
    max_gap: f64,
    rtcp: Option<RtcpSeen>,
}

#[derive(Debug, Clone, Copy)]
struct RtcpSeen {
    reports: u32,
    fraction_lost: u8,
    cumulative_lost: i32,
    jitter: u32,
}

/// One RTP stream (one SSRC from one address to another), as summarised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamSummary {
    /// The side that sent it (`None`: found without signalling).
    pub from: Option<Side>,
    /// Source address.
    pub src: String,
    /// Destination address.
    pub dst: String,
    /// Synchronisation source, `0x` and eight hex digits.
    pub ssrc: String,
    /// Payload type of its first packet.
    pub payload_type: u8,
    /// Codec name from the SDP `rtpmap` or the static table (empty when unknown).
    pub codec: String,
    /// Packets received.
    pub packets: u64,
    /// Packets expected from the sequence numbers (RFC 3550 A.3).
    pub expected: u64,
    /// Expected minus received (never below 0).
    pub lost: u64,
    /// `lost` as a percentage of `expected`.
    pub loss_percent: f64,
    /// Jumps forward in the sequence (each one or more packets missing).
    pub sequence_gaps: u32,
    /// Sequence restarts (a jump of more than 3000).
    pub sequence_restarts: u32,
    /// Duplicates and packets that came late.
    pub out_of_order: u32,
    /// RFC 3550 interarrival jitter in milliseconds (`None`: clock rate unknown).
    pub jitter_ms: Option<f64>,
    /// Largest time between two packets, milliseconds.
    pub max_gap_ms: u64,
    /// First packet, seconds after the call's first message (absolute time for streams
    /// without signalling).
    pub start_s: f64,
    /// First to last packet, milliseconds.
    pub duration_ms: u64,
    /// What the receiver's RTCP reports say about this stream, if any were captured.
    pub rtcp: Option<RtcpSummary>,
}

/// The last RTCP reception report about a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RtcpSummary {
    /// Report blocks seen about the stream.
    pub reports: u32,
    /// Fraction lost of the last report, percent.
    pub fraction_lost_percent: f64,
    /// Cumulative lost of the last report.
    pub cumulative_lost: i32,
    /// Jitter of the last report, milliseconds (`None`: clock rate unknown).
    pub jitter_ms: Option<f64>,
}

/// Audio in a call, in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaVerdict {
    /// RTP in both directions.
    BothWays,
    /// RTP in one direction only.
    OneWay,
    /// No RTP at all after the answer.
    NoMedia,
    /// The capture holds no RTP at all, or the call was too short to judge.
    NotJudged,
    /// The call was not answered; only early media, if any.
    NotAnswered,
}

impl MediaVerdict {
    /// A short word for tables.
    pub fn word(self) -> &'static str {
        match self {
            MediaVerdict::BothWays => "both ways",
            MediaVerdict::OneWay => "one way",
            MediaVerdict::NoMedia => "none",
            MediaVerdict::NotJudged => "-",
            MediaVerdict::NotAnswered => "-",
        }
    }
}

/// The media side of one call.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MediaSummary {
    /// Both ways, one way, none…
    pub verdict: MediaVerdict,
    /// Why, in plain words.
    pub reason: String,
    /// Where the caller's last SDP asks for RTP, and its codecs.
    pub caller_sdp: String,
    /// Where the callee's last SDP asks for RTP, and its codecs.
    pub callee_sdp: String,
    /// The streams seen.
    pub streams: Vec<StreamSummary>,
    /// Start of the media phase (the answer), seconds after the call's first message.
    pub phase_start_s: Option<f64>,
    /// End of the media phase (the BYE), seconds after the call's first message.
    pub phase_end_s: Option<f64>,
}

/// What the call around the media knows, passed when a session is summarised.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallContext {
    pub(crate) start: f64,
    pub(crate) answered_at: Option<f64>,
    pub(crate) bye_at: Option<f64>,
    /// The last time anything of the capture was seen (the end when the call has no BYE).
    pub(crate) capture_end: f64,
    /// Where the caller's SIP came from, if it is a public address (the NAT's).
    pub(crate) caller_public: Option<IpAddr>,
    /// Static codecs in the answer that the offer lacked, in words.
    pub(crate) answer_not_offered: Option<String>,
}

/// Media problem found in a call, for the caller to turn into a `Finding`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MediaProblem {
    /// One-way or no audio; `nat` when the reason is a private SDP address, `codec` when
    /// it is a codec mismatch, `hold` when the SDP asked for it.
    Audio {
        verdict: MediaVerdict,
        text: String,
        nat: bool,
        codec: bool,
        hold: bool,
    },
    /// Loss or jitter.
    Quality(String),
}

#[derive(Debug, Default)]
struct SideInfo {
    addrs: Vec<SocketAddr>,
    sdp: Option<SdpAudio>,
}

#[derive(Debug, Default)]
struct Session {
    sides: [SideInfo; 2],
    streams: Vec<Stream>,
    answered_at: Option<f64>,
    ended_at: Option<f64>,
    last: f64,
    rtcp_packets: u64,
}

/// Counters of the media side of a capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaStats {
    /// RTP packets of the streams followed (signalled or found by heuristics).
    pub rtp_packets: u64,
    /// RTCP packets on the RTCP addresses of calls.
    pub rtcp_packets: u64,
    /// Streams followed.
    pub rtp_streams: u64,
    /// Of which found without signalling.
    pub unsignalled_streams: u64,
    /// Most streams open at once (memory follows this).
    pub peak_open_streams: u64,
    /// Streams not followed because [`MAX_OPEN_STREAMS`] were open.
    pub streams_not_tracked: u64,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    ssrc: u32,
    seq: u16,
    pt: u8,
    count: u32,
    first: f64,
    last: f64,
}

/// Every call's media sessions and the streams without signalling.
#[derive(Default)]
pub(crate) struct Media {
    endpoints: FxMap<SocketAddr, Endpoint>,
    sessions: FxMap<u64, Session>,
    next_id: u64,
    candidates: FxMap<(SocketAddr, SocketAddr), Candidate>,
    unsignalled: FxMap<(SocketAddr, SocketAddr, u32), Stream>,
    pub(crate) listed: Vec<StreamSummary>,
    open_streams: usize,
    last_sweep: f64,
    /// Time of the last non-SIP UDP datagram.
    pub(crate) last_ts: f64,
    pub(crate) stats: MediaStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_header_with_csrc_extension_and_padding() {
        let mut p = vec![0xb1, 0x88, 0, 7, 0, 0, 0, 160, 1, 2, 3, 4];
        p.extend_from_slice(&[9, 9, 9, 9]); // one CSRC
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // extension, one word
        p.extend_from_slice(&[0x55; 10]);
        p.extend_from_slice(&[0, 0, 3]); // padding 3
        let h = parse_rtp(&p).expect("rtp");
        assert_eq!((h.payload_type, h.seq, h.ssrc), (8, 7, 0x0102_0304));
        assert!(h.marker);
        assert_eq!(h.payload_len, 10);
        // Padding longer than the packet, extension past the end: not RTP.
        let mut bad = p.clone();
        *bad.last_mut().unwrap() = 200;
        assert!(parse_rtp(&bad).is_none());
        assert!(parse_rtp(&p[..18]).is_none());
    }

    #[test]
    fn rtcp_sr_and_rr_blocks() {
        let mut sr = vec![0x81, 200, 0, 12, 0, 0, 0, 1];
        sr.extend_from_slice(&[0; 8]); // NTP
        sr.extend_from_slice(&[0, 0, 0, 0]); // RTP ts
        sr.extend_from_slice(&[0, 0, 0, 50]); // packets
        sr.extend_from_slice(&[0, 0, 1, 0]); // octets
        sr.extend_from_slice(&[0, 0, 0, 2, 64, 0xff, 0xff, 0xfe, 0, 1, 0, 5, 0, 0, 0, 80]);
        sr.extend_from_slice(&[0; 8]);
        let mut rr = vec![0x80, 201, 0, 1, 0, 0, 0, 2];
        sr.append(&mut rr);
        let p = parse_rtcp(&sr).expect("rtcp");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].kind, RtcpKind::SenderReport);
        assert_eq!(p[0].sender_packets, Some(50));
        let b = p[0].blocks[0];
        assert_eq!(
            (b.ssrc, b.fraction_lost, b.cumulative_lost, b.jitter),
            (2, 64, -2, 80)
        );
        assert_eq!(p[1].kind, RtcpKind::ReceiverReport);
    }

    #[test]
    fn sdp_media_level_address_rtcp_and_direction() {
        let sdp = b"v=0\r\nc=IN IP4 192.0.2.1\r\na=sendonly\r\nm=video 5000 RTP/AVP 96\r\nc=IN IP4 192.0.2.99\r\nm=audio 4000 RTP/AVP 0 101\r\nc=IN IP4 10.0.0.5\r\na=rtcp:4005\r\na=rtpmap:101 telephone-event/8000\r\n";
        let a = sdp_audio(sdp).expect("audio");
        assert_eq!(a.rtp_addr(), Some("10.0.0.5:4000".parse().unwrap()));
        assert_eq!(a.rtcp_addr(), Some("10.0.0.5:4005".parse().unwrap()));
        assert_eq!(a.payload_types, vec![0, 101]);
        assert_eq!(a.direction, Direction::Sendonly);
        assert_eq!(a.rtpmap, vec![(101, "telephone-event".to_owned(), 8000)]);
    }

    #[test]
    fn sequence_wrap_is_not_loss() {
        let src: SocketAddr = "192.0.2.1:4000".parse().unwrap();
        let dst: SocketAddr = "192.0.2.2:5000".parse().unwrap();
        let h = |seq: u16| RtpHeader {
            marker: false,
            payload_type: 0,
            seq,
            timestamp: 0,
            ssrc: 1,
            payload_len: 160,
        };
        let mut st = Stream::new(src, dst, &h(65530), None, 0.0);
        st.clock = 8000;
        for (i, seq) in (65530u16..=65535).chain(0..10).enumerate() {
            let mut p = h(seq);
            p.timestamp = i as u32 * 160;
            st.packet(&p, i as f64 * 0.02, None);
        }
        let s = st.summary(0.0);
        assert_eq!((s.packets, s.expected, s.lost), (16, 16, 0));
        assert_eq!(s.jitter_ms, Some(0.0));
    }
}
