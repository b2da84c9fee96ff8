//! RTP and RTCP (RFC 3550): header parsing, media descriptions from SDP, per-stream statistics
//! and the per-call media verdict (audio both ways, one way or none, with the reason).
//!
//! Pure: packets come in from the capture reader, summaries go out. Parsing never panics on
//! any input. Memory is bounded by the streams open at a time ([`MAX_OPEN_STREAMS`]), not by
//! the number of packets or calls.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};

use memchr::memchr;
use serde::Serialize;

use crate::analysis::is_private;

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

// ------------------------------------------------------------------------------------- parsing

/// The fixed header of an RTP packet (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (7 bits).
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// RTP timestamp (in units of the codec clock).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
    /// Payload bytes after the header, CSRCs, extension and padding.
    pub payload_len: usize,
}

/// Parse an RTP header: version 2, CSRC list, header extension and padding within the packet.
/// `None` for anything else, including RTCP (payload types 72-76 with the marker bit, RFC 5761 §4).
pub fn parse_rtp(buf: &[u8]) -> Option<RtpHeader> {
    if buf.len() < 12 || buf[0] >> 6 != 2 {
        return None;
    }
    let pt = buf[1] & 0x7f;
    if (72..=76).contains(&pt) {
        return None;
    }
    let cc = usize::from(buf[0] & 0x0f);
    let mut len = 12 + 4 * cc;
    if buf[0] & 0x10 != 0 {
        let ext = buf.get(len..len + 4)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = buf.len();
    if buf[0] & 0x20 != 0 {
        let pad = usize::from(*buf.last()?);
        if pad == 0 {
            return None;
        }
        end = end.checked_sub(pad)?;
    }
    if len > end {
        return None;
    }
    Some(RtpHeader {
        marker: buf[1] & 0x80 != 0,
        payload_type: pt,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload_len: end - len,
    })
}

/// Whether an RTP header looks like audio or video a phone would send: a static payload type
/// of RFC 3551 or a dynamic one (96-127). Used before following a flow without signalling.
pub fn plausible_payload_type(pt: u8) -> bool {
    matches!(pt, 0..=34 | 96..=127)
}

/// The kind of one RTCP packet (RFC 3550 §6.4-6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RtcpKind {
    /// Sender report (200).
    SenderReport,
    /// Receiver report (201).
    ReceiverReport,
    /// Any other RTCP packet type (SDES, BYE, APP, feedback, XR).
    Other(u8),
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportBlock {
    /// The stream reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, out of 256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, in timestamp units.
    pub jitter: u32,
}

/// One packet of an RTCP compound packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpPacket {
    /// Its type.
    pub kind: RtcpKind,
    /// SSRC of the sender of the report (0 for types without one).
    pub ssrc: u32,
    /// Packets sent, from a sender report.
    pub sender_packets: Option<u32>,
    /// Report blocks (at most 31).
    pub blocks: Vec<ReportBlock>,
}

/// Parse an RTCP compound packet. `None` when the first packet is not RTCP version 2 with a
/// type in 192-223; a damaged later packet ends the list.
pub fn parse_rtcp(buf: &[u8]) -> Option<Vec<RtcpPacket>> {
    let first = buf.get(..4)?;
    if first[0] >> 6 != 2 || !(192..=223).contains(&first[1]) {
        return None;
    }
    let mut out = Vec::new();
    let mut pos = 0usize;
    while let Some(h) = buf.get(pos..pos + 4) {
        if h[0] >> 6 != 2 || !(192..=223).contains(&h[1]) || out.len() >= 16 {
            break;
        }
        let count = usize::from(h[0] & 0x1f);
        let words = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let len = 4 + 4 * words;
        let Some(body) = buf.get(pos + 4..pos + len) else {
            break;
        };
        let ssrc = body
            .get(..4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        let (kind, blocks_at, sender_packets) = match h[1] {
            200 => (
                RtcpKind::SenderReport,
                24,
                body.get(16..20)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            ),
            201 => (RtcpKind::ReceiverReport, 4, None),
            other => (RtcpKind::Other(other), usize::MAX, None),
        };
        let mut blocks = Vec::new();
        if blocks_at != usize::MAX {
            for i in 0..count {
                let at = blocks_at + i * 24;
                let Some(b) = body.get(at..at + 24) else {
                    break;
                };
                let raw = u32::from_be_bytes([0, b[5], b[6], b[7]]);
                // Sign-extend the 24-bit cumulative count.
                let cumulative_lost = ((raw << 8) as i32) >> 8;
                blocks.push(ReportBlock {
                    ssrc: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    fraction_lost: b[4],
                    cumulative_lost,
                    highest_seq: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                    jitter: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
                });
            }
        }
        out.push(RtcpPacket {
            kind,
            ssrc,
            sender_packets,
            blocks,
        });
        pos += len;
    }
    (!out.is_empty()).then_some(out)
}

// ----------------------------------------------------------------------------------------- SDP

/// Media direction (RFC 3264 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Send and receive (the default).
    #[default]
    Sendrecv,
    /// Send only (the other side is on hold).
    Sendonly,
    /// Receive only.
    Recvonly,
    /// Neither.
    Inactive,
}

/// The first audio stream of an SDP body (RFC 4566): where it wants RTP and RTCP, and codecs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdpAudio {
    /// The connection address that applies to the audio stream (media-level `c=` first).
    pub addr: Option<IpAddr>,
    /// RTP port (0: the stream is refused, RFC 3264 §6).
    pub port: u16,
    /// `a=rtcp:` port and address (RFC 3605), else RTP port + 1.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
    /// `a=rtcp-mux` (RFC 5761): RTCP on the RTP port.
    pub rtcp_mux: bool,
    /// Payload types in the `m=` line (at most 32).
    pub payload_types: Vec<u8>,
    /// `a=rtpmap:` entries: payload type, encoding name, clock rate (at most 32).
    pub rtpmap: Vec<(u8, String, u32)>,
    /// Direction attribute (media level over session level).
    pub direction: Direction,
}

impl SdpAudio {
    /// The address RTP should be sent to.
    pub fn rtp_addr(&self) -> Option<SocketAddr> {
        self.addr.map(|a| SocketAddr::new(a, self.port))
    }

    /// The address RTCP should be sent to.
    pub fn rtcp_addr(&self) -> Option<SocketAddr> {
        if self.rtcp_mux {
            return None;
        }
        let (port, addr) = self.rtcp.unwrap_or((self.port.wrapping_add(1), None));
        addr.or(self.addr).map(|a| SocketAddr::new(a, port))
    }
}

/// The first `m=audio` of an SDP body, or `None` when there is none.
pub fn sdp_audio(body: &[u8]) -> Option<SdpAudio> {
    let mut session_addr = None;
    let mut session_dir = Direction::Sendrecv;
    let mut media_dir = None;
    let mut audio: Option<SdpAudio> = None;
    let mut in_audio = false;
    let mut pos = 0;
    while pos < body.len() {
        let end = memchr(b'\n', &body[pos..]).map_or(body.len(), |e| pos + e);
        let line = crate::scan::trim_cr(&body[pos..end]);
        pos = end + 1;
        if line.len() < 2 || line[1] != b'=' {
            continue;
        }
        let value = &line[2..];
        match line[0] {
            b'm' => {
                if audio.is_some() {
                    if in_audio {
                        // The next media section: the audio one is complete.
                        in_audio = false;
                    }
                    continue;
                }
                if let Some(m) = value.strip_prefix(b"audio ") {
                    let mut parts = m.split(|&b| b == b' ').filter(|p| !p.is_empty());
                    let port = parts.next().and_then(|p| {
                        // "port/count": the first port.
                        let p = p.split(|&b| b == b'/').next().unwrap_or(p);
                        number(p).and_then(|n| u16::try_from(n).ok())
                    })?;
                    let _proto = parts.next();
                    let payload_types = parts
                        .filter_map(|p| number(p).and_then(|n| u8::try_from(n).ok()))
                        .take(32)
                        .collect();
                    audio = Some(SdpAudio {
                        addr: session_addr,
                        port,
                        payload_types,
                        ..SdpAudio::default()
                    });
                    in_audio = true;
                }
            }
            b'c' => {
                // "IN IP4 192.0.2.1" (possibly "/ttl").
                let addr = value
                    .split(|&b| b == b' ')
                    .nth(2)
                    .map(|a| a.split(|&b| b == b'/').next().unwrap_or(a))
                    .and_then(|a| std::str::from_utf8(a).ok())
                    .and_then(|a| a.parse::<IpAddr>().ok());
                if in_audio {
                    if let Some(a) = audio.as_mut() {
                        a.addr = addr;
                    }
                } else if audio.is_none() {
                    session_addr = addr;
                }
            }
            b'a' => {
                let dir = match value {
                    b"sendrecv" => Some(Direction::Sendrecv),
                    b"sendonly" => Some(Direction::Sendonly),
                    b"recvonly" => Some(Direction::Recvonly),
                    b"inactive" => Some(Direction::Inactive),
                    _ => None,
                };
                if let Some(d) = dir {
                    if in_audio {
                        media_dir = Some(d);
                    } else if audio.is_none() {
                        session_dir = d;
                    }
                    continue;
                }
                if !in_audio {
                    continue;
                }
                let Some(a) = audio.as_mut() else { continue };
                if value == b"rtcp-mux" {
                    a.rtcp_mux = true;
                } else if let Some(r) = value.strip_prefix(b"rtcp:") {
                    // "53020" or "53020 IN IP4 126.16.64.4" (RFC 3605).
                    let mut parts = r.split(|&b| b == b' ');
                    if let Some(port) = parts
                        .next()
                        .and_then(number)
                        .and_then(|n| u16::try_from(n).ok())
                    {
                        let addr = parts
                            .nth(2)
                            .and_then(|x| std::str::from_utf8(x).ok())
                            .and_then(|x| x.parse::<IpAddr>().ok());
                        a.rtcp = Some((port, addr));
                    }
                } else if let Some(r) = value.strip_prefix(b"rtpmap:")
                    && a.rtpmap.len() < 32
                {
                    // "8 PCMA/8000" or "101 telephone-event/8000/1".
                    let sp = memchr(b' ', r).unwrap_or(r.len());
                    let Some(pt) = number(&r[..sp]).and_then(|n| u8::try_from(n).ok()) else {
                        continue;
                    };
                    let enc = r.get(sp + 1..).unwrap_or(b"");
                    let mut parts = enc.split(|&b| b == b'/');
                    let name = String::from_utf8_lossy(parts.next().unwrap_or(b""))
                        .chars()
                        .take(32)
                        .collect();
                    let clock = parts
                        .next()
                        .and_then(number)
                        .and_then(|n| u32::try_from(n).ok())
                        .unwrap_or(0);
                    a.rtpmap.push((pt, name, clock));
                }
            }
            _ => {}
        }
    }
    let mut a = audio?;
    a.direction = media_dir.unwrap_or(session_dir);
    Some(a)
}

fn number(v: &[u8]) -> Option<u64> {
    let v = crate::scan::trim(v);
    if v.is_empty() || v.len() > 10 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Name and clock rate of a static payload type (RFC 3551 §6).
pub fn static_codec(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        5 => ("DVI4", 8000),
        6 => ("DVI4", 16000),
        7 => ("LPC", 8000),
        8 => ("PCMA", 8000),
        9 => ("G722", 8000),
        10 | 11 => ("L16", 44100),
        12 => ("QCELP", 8000),
        13 => ("CN", 8000),
        14 => ("MPA", 90000),
        15 => ("G728", 8000),
        16 => ("DVI4", 11025),
        17 => ("DVI4", 22050),
        18 => ("G729", 8000),
        25 => ("CelB", 90000),
        26 => ("JPEG", 90000),
        28 => ("nv", 90000),
        31 => ("H261", 90000),
        32 => ("MPV", 90000),
        33 => ("MP2T", 90000),
        34 => ("H263", 90000),
        _ => return None,
    })
}

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

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

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

impl Stream {
    fn new(src: SocketAddr, dst: SocketAddr, h: &RtpHeader, from: Option<Side>, ts: f64) -> Self {
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

    fn packet(&mut self, h: &RtpHeader, ts: f64, answered: Option<f64>) {
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

    fn summary(&self, call_start: f64) -> StreamSummary {
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
                *c = Candidate {
                    ssrc: h.ssrc,
                    seq: h.seq,
                    pt: h.payload_type,
                    count: 1,
                    first: ts,
                    last: ts,
                };
                false
            }
            None => {
                if self.candidates.len() >= MAX_CANDIDATES {
                    // Bounded: forget half-seen flows rather than grow.
                    self.candidates.clear();
                }
                self.candidates.insert(
                    (src, dst),
                    Candidate {
                        ssrc: h.ssrc,
                        seq: h.seq,
                        pt: h.payload_type,
                        count: 1,
                        first: ts,
                        last: ts,
                    },
                );
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

fn codec_of(sides: &[SideInfo; 2], first: Side, second: Side, pt: u8) -> (String, u32) {
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
    let addr = sdp
        .rtp_addr()
        .map_or_else(|| "?".to_owned(), |a| a.to_string());
    let codecs: Vec<String> = sdp
        .payload_types
        .iter()
        .map(|pt| {
            sdp.rtpmap
                .iter()
                .find(|(p, _, _)| p == pt)
                .map(|(_, n, _)| n.clone())
                .or_else(|| static_codec(*pt).map(|(n, _)| n.to_owned()))
                .unwrap_or_else(|| pt.to_string())
        })
        .collect();
    let dir = match sdp.direction {
        Direction::Sendrecv => String::new(),
        d => format!(
            " a={}",
            serde_json::to_value(d)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        ),
    };
    format!("{addr} {}{dir}", codecs.join(", "))
}

/// Streams of one side that reach the other: not sent to a private SDP address while that
/// side's own RTP (or SIP) comes from a public one.
fn judge(s: &Session, ctx: &CallContext, any_rtp: bool) -> (MediaSummary, Vec<MediaProblem>) {
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
            .find(|ip| !is_private(ip))
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
        let private_target = is_private(&st.dst.ip())
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
                if is_private(&sdp.ip()) {
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
