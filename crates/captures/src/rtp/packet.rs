//! RTP and RTCP packet headers (RFC 3550 §5.1, §6.4-6.6).

use serde::Serialize;

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
