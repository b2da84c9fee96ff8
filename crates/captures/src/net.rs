//! Link, IP, UDP and TCP decoding for captures: fragment reassembly and SIP-over-TCP framing.
//!
//! Everything here is bounded: the fragment pool and the TCP flow table have fixed caps and
//! evict idle entries, so memory depends on what is open at a time, not on the file size.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use etherparse::{Ipv6ExtensionSlice, LaxIpSlice};
use serde::Serialize;

use crate::scan;

/// `addr` as `Display` writes it, IPv4 by hand (it runs for every call summary).
pub(crate) fn push_addr(out: &mut String, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            for (i, o) in a.ip().octets().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u32(out, u32::from(*o));
            }
            out.push(':');
            push_u32(out, u32::from(a.port()));
        }
        SocketAddr::V6(_) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{addr}");
        }
    }
}

/// `n` in decimal.
pub(crate) fn push_u32(out: &mut String, n: u32) {
    crate::render::push_digits(out, i64::from(n), 1);
}

/// How a message travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// SIP over UDP (RFC 3261 §18.1.1).
    Udp,
    /// SIP over TCP, framed by Content-Length (RFC 3261 §18.3).
    Tcp,
    /// Seen in a text log: the transport is whatever the log line says, if anything.
    Log,
}

/// Receives decoded SIP messages and observations from the packet layer.
pub(crate) trait Sink {
    fn message(&mut self, ts: f64, src: SocketAddr, dst: SocketAddr, tr: Transport, msg: &[u8]);
    /// A UDP datagram that is not SIP (RTP, RTCP or anything else).
    fn udp(&mut self, ts: f64, src: SocketAddr, dst: SocketAddr, data: &[u8]);
    fn warn(&mut self, kind: WarnKind, text: String);
}

/// Categories of warnings, so a damaged file does not flood the report with one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum WarnKind {
    TruncatedPacket,
    BadPacket,
    LinkType,
    Fragments,
    TcpGap,
    Tls,
    File,
    Log,
}

// Link-layer header types (https://www.tcpdump.org/linktypes.html).
const LINKTYPE_NULL: i32 = 0;
const LINKTYPE_ETHERNET: i32 = 1;
const LINKTYPE_RAW_BSD: i32 = 12;
const LINKTYPE_RAW_BSD2: i32 = 14;
const LINKTYPE_RAW: i32 = 101;
const LINKTYPE_LOOP: i32 = 108;
const LINKTYPE_LINUX_SLL: i32 = 113;
const LINKTYPE_IPV4: i32 = 228;
const LINKTYPE_IPV6: i32 = 229;
const LINKTYPE_LINUX_SLL2: i32 = 276;

const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;

/// Upper bounds that keep memory independent of the capture size.
const MAX_FRAG_DATAGRAMS: usize = 256;
const MAX_DATAGRAM: usize = 65_535;
const FRAG_TIMEOUT_S: f64 = 30.0;
const MAX_TCP_FLOWS: usize = 4096;
const MAX_TCP_BUFFER: usize = 256 * 1024;
const MAX_TCP_PENDING: usize = 64;
const TCP_IDLE_S: f64 = 300.0;

#[derive(Default)]
pub(crate) struct NetDecoder {
    frags: HashMap<FragKey, FragBuf>,
    flows: HashMap<(SocketAddr, SocketAddr), Flow>,
    pub(crate) packets: u64,
    last_sweep: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

struct FragBuf {
    parts: Vec<(usize, Vec<u8>)>,
    total: Option<usize>,
    first_seen: f64,
    bytes: usize,
}

#[derive(Default)]
struct Flow {
    next_seq: Option<u32>,
    buf: Vec<u8>,
    pending: BTreeMap<u32, Vec<u8>>,
    last_seen: f64,
    tls: bool,
}

impl NetDecoder {
    /// Decode one captured frame of link type `linktype`.
    pub(crate) fn packet(
        &mut self,
        linktype: i32,
        ts: f64,
        frame: &[u8],
        offset: u64,
        sink: &mut impl Sink,
    ) {
        self.packets += 1;
        if ts - self.last_sweep > 10.0 {
            self.sweep(ts, sink);
        }
        let Some(ip) = strip_link(linktype, frame) else {
            if !matches!(
                linktype,
                LINKTYPE_NULL
                    | LINKTYPE_ETHERNET
                    | LINKTYPE_RAW
                    | LINKTYPE_RAW_BSD
                    | LINKTYPE_RAW_BSD2
                    | LINKTYPE_LOOP
                    | LINKTYPE_LINUX_SLL
                    | LINKTYPE_LINUX_SLL2
                    | LINKTYPE_IPV4
                    | LINKTYPE_IPV6
            ) {
                sink.warn(
                    WarnKind::LinkType,
                    format!("unsupported link type {linktype}: its packets were skipped"),
                );
            }
            return;
        };
        let Ok((slice, _)) = LaxIpSlice::from_slice(ip) else {
            sink.warn(
                WarnKind::BadPacket,
                format!("undecodable IP header in packet at offset {offset}"),
            );
            return;
        };
        let src = slice.source_addr();
        let dst = slice.destination_addr();
        let payload = slice.payload();
        if payload.incomplete {
            sink.warn(
                WarnKind::TruncatedPacket,
                format!("truncated packet at offset {offset}: decoded what was captured"),
            );
        }
        let proto = payload.ip_number.0;
        if payload.fragmented {
            let Some((id, frag_off, more)) = frag_info(&slice) else {
                return;
            };
            let key = FragKey {
                src,
                dst,
                id,
                proto,
            };
            if let Some(datagram) =
                self.add_fragment(key, frag_off, more, payload.payload, ts, sink)
            {
                self.transport(proto, src, dst, &datagram, ts, offset, sink);
            }
            return;
        }
        let data = payload.payload;
        self.transport(proto, src, dst, data, ts, offset, sink);
    }

    #[allow(clippy::too_many_arguments)]
    fn transport(
        &mut self,
        proto: u8,
        src: IpAddr,
        dst: IpAddr,
        data: &[u8],
        ts: f64,
        offset: u64,
        sink: &mut impl Sink,
    ) {
        match proto {
            IPPROTO_UDP => {
                if data.len() < 8 {
                    return;
                }
                let sport = u16::from_be_bytes([data[0], data[1]]);
                let dport = u16::from_be_bytes([data[2], data[3]]);
                let ulen = usize::from(u16::from_be_bytes([data[4], data[5]]));
                let end = if ulen >= 8 {
                    ulen.min(data.len())
                } else {
                    data.len()
                };
                let body = &data[8..end];
                let (src, dst) = (SocketAddr::new(src, sport), SocketAddr::new(dst, dport));
                if scan::looks_like_sip(body) {
                    sink.message(ts, src, dst, Transport::Udp, body);
                } else {
                    sink.udp(ts, src, dst, body);
                }
            }
            IPPROTO_TCP => self.tcp(src, dst, data, ts, offset, sink),
            _ => {}
        }
    }

    fn add_fragment(
        &mut self,
        key: FragKey,
        frag_off: usize,
        more: bool,
        data: &[u8],
        ts: f64,
        sink: &mut impl Sink,
    ) -> Option<Vec<u8>> {
        if !self.frags.contains_key(&key) && self.frags.len() >= MAX_FRAG_DATAGRAMS {
            // Evict the oldest incomplete datagram rather than grow.
            if remove_oldest(&mut self.frags, |f| f.first_seen) {
                sink.warn(
                    WarnKind::Fragments,
                    "too many incomplete fragmented datagrams: dropped the oldest".to_owned(),
                );
            }
        }
        let buf = self.frags.entry(key).or_insert_with(|| FragBuf {
            parts: Vec::new(),
            total: None,
            first_seen: ts,
            bytes: 0,
        });
        if frag_off + data.len() > MAX_DATAGRAM || buf.parts.len() >= 64 {
            self.frags.remove(&key);
            sink.warn(
                WarnKind::Fragments,
                "oversized fragmented datagram dropped".to_owned(),
            );
            return None;
        }
        if !more {
            buf.total = Some(frag_off + data.len());
        }
        buf.bytes += data.len();
        buf.parts.push((frag_off, data.to_vec()));
        let total = buf.total?;
        // Complete when the parts, sorted by offset, cover [0, total) without a hole.
        buf.parts.sort_by_key(|p| p.0);
        let mut covered = 0;
        for (off, part) in &buf.parts {
            if *off > covered {
                return None;
            }
            covered = covered.max(off + part.len());
        }
        if covered < total {
            return None;
        }
        let buf = self.frags.remove(&key)?;
        let mut out = vec![0u8; total];
        for (off, part) in buf.parts {
            let end = (off + part.len()).min(total);
            if off < end {
                out[off..end].copy_from_slice(&part[..end - off]);
            }
        }
        Some(out)
    }

    fn tcp(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        seg: &[u8],
        ts: f64,
        offset: u64,
        sink: &mut impl Sink,
    ) {
        if seg.len() < 20 {
            return;
        }
        let sport = u16::from_be_bytes([seg[0], seg[1]]);
        let dport = u16::from_be_bytes([seg[2], seg[3]]);
        let seq = u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]);
        let data_off = usize::from(seg[12] >> 4) * 4;
        let flags = seg[13];
        let (syn, fin, rst) = (flags & 0x02 != 0, flags & 0x01 != 0, flags & 0x04 != 0);
        let data = seg.get(data_off..).unwrap_or(b"");
        let key = (SocketAddr::new(src, sport), SocketAddr::new(dst, dport));
        if !self.flows.contains_key(&key) {
            if data.is_empty() && !syn {
                return;
            }
            if self.flows.len() >= MAX_TCP_FLOWS {
                self.evict_oldest_flow();
            }
        }
        let flow = self.flows.entry(key).or_default();
        flow.last_seen = ts;
        if syn {
            flow.next_seq = Some(seq.wrapping_add(1));
            flow.buf.clear();
            flow.pending.clear();
        }
        if !data.is_empty() && !flow.tls {
            // A TLS record header (handshake, version 3.x): the stream is encrypted.
            let looks_tls = data.len() > 1 && data[0] == 0x16 && data[1] == 0x03;
            if flow.next_seq.is_none() && flow.buf.is_empty() {
                // Joined mid-stream: start at this segment.
                flow.next_seq = Some(seq);
                if looks_tls {
                    mark_tls(flow, &key, sink);
                }
            }
            if let Some(next) = flow.next_seq {
                if !flow.tls && flow.buf.is_empty() && looks_tls {
                    mark_tls(flow, &key, sink);
                }
                if !flow.tls {
                    accept_segment(flow, next, seq, data, offset, sink);
                    frame_stream(flow, key, ts, sink);
                }
            }
        }
        if fin || rst {
            self.flows.remove(&key);
        }
    }

    fn evict_oldest_flow(&mut self) {
        remove_oldest(&mut self.flows, |f| f.last_seen);
    }

    fn sweep(&mut self, now: f64, sink: &mut impl Sink) {
        self.last_sweep = now;
        let before = self.frags.len();
        self.frags
            .retain(|_, b| now - b.first_seen < FRAG_TIMEOUT_S);
        if self.frags.len() < before {
            sink.warn(
                WarnKind::Fragments,
                format!(
                    "{} fragmented datagram(s) never completed",
                    before - self.frags.len()
                ),
            );
        }
        self.flows.retain(|_, f| now - f.last_seen < TCP_IDLE_S);
    }

    /// Report what is left open at the end of the input.
    pub(crate) fn finish(&mut self, sink: &mut impl Sink) {
        if !self.frags.is_empty() {
            sink.warn(
                WarnKind::Fragments,
                format!(
                    "{} fragmented datagram(s) never completed",
                    self.frags.len()
                ),
            );
        }
        self.frags.clear();
        self.flows.clear();
    }
}

/// Append an in-order segment, queue an out-of-order one, and drop what was already seen.
fn accept_segment(
    flow: &mut Flow,
    next: u32,
    seq: u32,
    data: &[u8],
    offset: u64,
    sink: &mut impl Sink,
) {
    let delta = seq.wrapping_sub(next) as i32;
    if delta > 0 {
        if flow.pending.len() >= MAX_TCP_PENDING {
            // A gap that never fills: resynchronise at this segment and say so.
            sink.warn(
                WarnKind::TcpGap,
                format!("TCP data missing before offset {offset}: stream resynchronised"),
            );
            flow.pending.clear();
            flow.buf.clear();
            flow.buf.extend_from_slice(data);
            flow.next_seq = Some(seq.wrapping_add(data.len() as u32));
        } else {
            flow.pending.insert(seq, data.to_vec());
        }
        return;
    }
    let skip = delta.unsigned_abs() as usize;
    if skip < data.len() {
        flow.buf.extend_from_slice(&data[skip..]);
        flow.next_seq = Some(seq.wrapping_add(data.len() as u32));
    }
    // Drain queued segments that are now in order.
    while let Some(next) = flow.next_seq {
        let Some((&pseq, _)) = flow.pending.iter().find(|(s, _)| {
            let d = s.wrapping_sub(next) as i32;
            d <= 0
        }) else {
            break;
        };
        let Some(pdata) = flow.pending.remove(&pseq) else {
            break;
        };
        let skip = next.wrapping_sub(pseq) as usize;
        if skip < pdata.len() {
            flow.buf.extend_from_slice(&pdata[skip..]);
            flow.next_seq = Some(pseq.wrapping_add(pdata.len() as u32));
        }
    }
    if flow.buf.len() > MAX_TCP_BUFFER {
        sink.warn(
            WarnKind::TcpGap,
            format!("TCP stream buffer over {MAX_TCP_BUFFER} bytes without a complete SIP message: dropped"),
        );
        flow.buf.clear();
    }
}

/// Cut complete SIP messages out of a flow's byte stream (RFC 3261 §18.3: Content-Length frames).
fn frame_stream(flow: &mut Flow, key: (SocketAddr, SocketAddr), ts: f64, sink: &mut impl Sink) {
    let mut start = 0;
    loop {
        // Skip CRLF keep-alives (RFC 5626 §4.4.1).
        while start < flow.buf.len() && (flow.buf[start] == b'\r' || flow.buf[start] == b'\n') {
            start += 1;
        }
        let rest = &flow.buf[start..];
        if rest.is_empty() {
            break;
        }
        let Some(head) = scan::scan(rest) else {
            // Not SIP at a message boundary: find the next start line or wait for more.
            match memchr::memmem::find(rest, b"\r\n\r\n") {
                Some(_) if rest.len() > 16 => {
                    sink.warn(
                        WarnKind::BadPacket,
                        format!("non-SIP data in TCP stream {} -> {}: skipped", key.0, key.1),
                    );
                    start = flow.buf.len();
                }
                _ => {}
            }
            break;
        };
        if !head.headers_complete {
            break;
        }
        let total = head.body_offset + head.content_length.unwrap_or(0);
        if rest.len() < total {
            break;
        }
        sink.message(ts, key.0, key.1, Transport::Tcp, &rest[..total]);
        start += total;
    }
    if start > 0 {
        flow.buf.drain(..start.min(flow.buf.len()));
    }
}

/// Identification, byte offset and more-fragments flag of a fragment (RFC 791 §3.1, RFC 8200 §4.5).
fn frag_info(slice: &LaxIpSlice<'_>) -> Option<(u32, usize, bool)> {
    match slice {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            Some((
                u32::from(h.identification()),
                usize::from(h.fragments_offset().byte_offset()),
                h.more_fragments(),
            ))
        }
        LaxIpSlice::Ipv6(v6) => v6
            .extensions()
            .clone()
            .into_iter()
            .find_map(|ext| match ext {
                Ipv6ExtensionSlice::Fragment(f) => Some((
                    f.identification(),
                    usize::from(f.fragment_offset().byte_offset()),
                    f.more_fragments(),
                )),
                _ => None,
            }),
    }
}

/// The IP packet inside a frame of the given link type, if any.
fn strip_link(linktype: i32, frame: &[u8]) -> Option<&[u8]> {
    match linktype {
        LINKTYPE_ETHERNET => {
            let mut pos = 12;
            loop {
                let et = u16::from_be_bytes([*frame.get(pos)?, *frame.get(pos + 1)?]);
                match et {
                    // 802.1Q / 802.1ad VLAN tags.
                    0x8100 | 0x88a8 | 0x9100 => pos += 4,
                    _ if is_ip_ethertype(et) => return frame.get(pos + 2..),
                    _ => return None,
                }
            }
        }
        LINKTYPE_LINUX_SLL => {
            let et = u16::from_be_bytes([*frame.get(14)?, *frame.get(15)?]);
            is_ip_ethertype(et).then(|| frame.get(16..)).flatten()
        }
        LINKTYPE_LINUX_SLL2 => {
            let et = u16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
            is_ip_ethertype(et).then(|| frame.get(20..)).flatten()
        }
        LINKTYPE_NULL | LINKTYPE_LOOP => {
            // The address family is in the capturing host's byte order (NULL) or big-endian (LOOP).
            let b = frame.get(..4)?;
            let le = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let be = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let family_ok = |f: u32| matches!(f, 2 | 10 | 24 | 28 | 30);
            (family_ok(le) || family_ok(be))
                .then(|| frame.get(4..))
                .flatten()
        }
        LINKTYPE_RAW | LINKTYPE_RAW_BSD | LINKTYPE_RAW_BSD2 | LINKTYPE_IPV4 | LINKTYPE_IPV6 => {
            match frame.first()? >> 4 {
                4 | 6 => Some(frame),
                _ => None,
            }
        }
        _ => None,
    }
}

fn is_ip_ethertype(ethertype: u16) -> bool {
    ethertype == 0x0800 || ethertype == 0x86dd
}

/// Marks a TCP stream as TLS, once, with a warning: the SIP inside is not decoded.
fn mark_tls(flow: &mut Flow, key: &(SocketAddr, SocketAddr), sink: &mut impl Sink) {
    flow.tls = true;
    sink.warn(
        WarnKind::Tls,
        format!(
            "TLS connection {} -> {}: encrypted, SIP inside not decoded",
            key.0, key.1
        ),
    );
}

/// Removes the entry with the smallest `age` (the oldest); false when the map is empty.
fn remove_oldest<K, V, S>(
    map: &mut std::collections::HashMap<K, V, S>,
    age: impl Fn(&V) -> f64,
) -> bool
where
    K: Copy + Eq + std::hash::Hash,
    S: std::hash::BuildHasher,
{
    let oldest = map
        .iter()
        .min_by(|a, b| age(a.1).total_cmp(&age(b.1)))
        .map(|(k, _)| *k);
    oldest.is_some_and(|k| map.remove(&k).is_some())
}
