//! HEPv3 (HOMER Encapsulation Protocol): decode, encode and frame packets, without IO.
//!
//! A packet is the magic `HEP3`, its total length (u16, big endian, header included), then
//! chunks of `vendor u16, type u16, length u16 (chunk header included), value`. Generic chunks
//! (vendor 0) used here: 1 IP family, 2 IP protocol, 3/4 IPv4 source/destination, 5/6 IPv6
//! source/destination, 7/8 source/destination port, 9/10 timestamp seconds/microseconds, 11
//! protocol type (1 = SIP), 12 capture agent id, 14 auth key, 15 payload, 16 compressed payload,
//! 17 correlation id. Other vendors' chunks and unknown types are skipped.
//!
//! Decoding never panics and never allocates from a declared length: every length is checked
//! against the bytes actually present, and the payload is borrowed from the input. The auth key's
//! value is never kept: [`HepPacket::has_auth_key`] only says that one was sent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The four bytes every HEPv3 packet starts with.
pub const MAGIC: &[u8; 4] = b"HEP3";
/// Size of the packet header (magic + total length) and of a chunk header.
pub const HEADER_LEN: usize = 6;
/// The largest packet the 16-bit total length can describe.
pub const MAX_PACKET: usize = u16::MAX as usize;

/// Protocol type 1 of chunk 11: the payload is a SIP message.
pub const PROTO_SIP: u8 = 1;

/// Why a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HepError {
    #[error("truncated: {needed} bytes needed, {got} present")]
    Truncated { needed: usize, got: usize },
    #[error("bad magic: not a HEPv3 packet (starts with {0:02x?})")]
    BadMagic([u8; 4]),
    #[error("length mismatch: the header says {declared} bytes, the datagram has {actual}")]
    LengthMismatch { declared: usize, actual: usize },
    #[error(
        "chunk type {chunk_type} at offset {offset} has length {length}, less than its 6-byte header"
    )]
    ChunkTooShort {
        chunk_type: u16,
        offset: usize,
        length: usize,
    },
    #[error(
        "chunk type {chunk_type} at offset {offset} runs {length} bytes, past the packet's end ({packet_len})"
    )]
    ChunkBeyondPacket {
        chunk_type: u16,
        offset: usize,
        length: usize,
        packet_len: usize,
    },
    #[error("chunk type {chunk_type} ({name}) has {got} value bytes, {expected} expected")]
    BadChunkValue {
        chunk_type: u16,
        name: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("no payload chunk (type 15)")]
    MissingPayload,
    #[error(
        "compressed payload (chunk type 16) is not supported: set the capture agent to send it uncompressed"
    )]
    CompressedPayload,
    #[error("packet too large to encode: {0} bytes (at most 65535)")]
    TooLarge(usize),
}

/// A decoded packet; the payload is borrowed from the input buffer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HepPacket<'a> {
    /// 2 = IPv4, 10 = IPv6 (chunk 1).
    pub ip_family: Option<u8>,
    /// 17 = UDP, 6 = TCP, 132 = SCTP (chunk 2).
    pub ip_proto: Option<u8>,
    pub src_ip: Option<IpAddr>,
    pub dst_ip: Option<IpAddr>,
    pub src_port: Option<u16>,
    pub dst_port: Option<u16>,
    pub ts_sec: Option<u32>,
    pub ts_usec: Option<u32>,
    /// 1 = SIP (chunk 11).
    pub proto_type: Option<u8>,
    pub capture_id: Option<u32>,
    /// Whether an auth key (chunk 14) was present; its value is never kept.
    pub has_auth_key: bool,
    pub correlation_id: Option<&'a [u8]>,
    /// The captured message (chunk 15).
    pub payload: &'a [u8],
}

impl HepPacket<'_> {
    /// The source as `ip:port`, when both were sent.
    pub fn src(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.src_ip?, self.src_port?))
    }

    /// The destination as `ip:port`, when both were sent.
    pub fn dst(&self) -> Option<SocketAddr> {
        Some(SocketAddr::new(self.dst_ip?, self.dst_port?))
    }

    /// The capture time in microseconds since the Unix epoch, when the agent sent one.
    pub fn timestamp_micros(&self) -> Option<i64> {
        let s = i64::from(self.ts_sec?);
        let us = i64::from(self.ts_usec.unwrap_or(0).min(999_999));
        Some(s * 1_000_000 + us)
    }

    /// The transport in words, from the IP protocol.
    pub fn transport(&self) -> Option<&'static str> {
        match self.ip_proto? {
            17 => Some("udp"),
            6 => Some("tcp"),
            132 => Some("sctp"),
            _ => None,
        }
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn fixed<const N: usize>(
    value: &[u8],
    chunk_type: u16,
    name: &'static str,
) -> Result<[u8; N], HepError> {
    value.try_into().map_err(|_| HepError::BadChunkValue {
        chunk_type,
        name,
        expected: N,
        got: value.len(),
    })
}

/// Decodes one packet that must fill `buf` exactly (a UDP datagram, or a frame cut by
/// [`Framer`]).
pub fn decode(buf: &[u8]) -> Result<HepPacket<'_>, HepError> {
    if buf.len() < HEADER_LEN {
        return Err(HepError::Truncated {
            needed: HEADER_LEN,
            got: buf.len(),
        });
    }
    if &buf[..4] != MAGIC {
        return Err(HepError::BadMagic([buf[0], buf[1], buf[2], buf[3]]));
    }
    let declared = usize::from(be16(&buf[4..6]));
    if declared < HEADER_LEN {
        return Err(HepError::LengthMismatch {
            declared,
            actual: buf.len(),
        });
    }
    if declared > buf.len() {
        return Err(HepError::Truncated {
            needed: declared,
            got: buf.len(),
        });
    }
    if declared != buf.len() {
        return Err(HepError::LengthMismatch {
            declared,
            actual: buf.len(),
        });
    }
    let mut p = HepPacket::default();
    let mut payload = None;
    let mut compressed = false;
    let mut off = HEADER_LEN;
    while off < declared {
        if declared - off < HEADER_LEN {
            return Err(HepError::Truncated {
                needed: off + HEADER_LEN,
                got: declared,
            });
        }
        let vendor = be16(&buf[off..]);
        let chunk_type = be16(&buf[off + 2..]);
        let length = usize::from(be16(&buf[off + 4..]));
        if length < HEADER_LEN {
            return Err(HepError::ChunkTooShort {
                chunk_type,
                offset: off,
                length,
            });
        }
        if length > declared - off {
            return Err(HepError::ChunkBeyondPacket {
                chunk_type,
                offset: off,
                length,
                packet_len: declared,
            });
        }
        let value = &buf[off + HEADER_LEN..off + length];
        off += length;
        if vendor != 0 {
            continue;
        }
        match chunk_type {
            1 => p.ip_family = Some(fixed::<1>(value, 1, "IP family")?[0]),
            2 => p.ip_proto = Some(fixed::<1>(value, 2, "IP protocol")?[0]),
            3 => {
                p.src_ip = Some(IpAddr::V4(Ipv4Addr::from(fixed::<4>(
                    value,
                    3,
                    "IPv4 source",
                )?)))
            }
            4 => {
                p.dst_ip = Some(IpAddr::V4(Ipv4Addr::from(fixed::<4>(
                    value,
                    4,
                    "IPv4 destination",
                )?)))
            }
            5 => {
                p.src_ip = Some(IpAddr::V6(Ipv6Addr::from(fixed::<16>(
                    value,
                    5,
                    "IPv6 source",
                )?)))
            }
            6 => {
                p.dst_ip = Some(IpAddr::V6(Ipv6Addr::from(fixed::<16>(
                    value,
                    6,
                    "IPv6 destination",
                )?)))
            }
            7 => p.src_port = Some(u16::from_be_bytes(fixed(value, 7, "source port")?)),
            8 => p.dst_port = Some(u16::from_be_bytes(fixed(value, 8, "destination port")?)),
            9 => p.ts_sec = Some(u32::from_be_bytes(fixed(value, 9, "timestamp seconds")?)),
            10 => {
                p.ts_usec = Some(u32::from_be_bytes(fixed(
                    value,
                    10,
                    "timestamp microseconds",
                )?))
            }
            11 => p.proto_type = Some(fixed::<1>(value, 11, "protocol type")?[0]),
            12 => p.capture_id = Some(u32::from_be_bytes(fixed(value, 12, "capture agent id")?)),
            14 => p.has_auth_key = true,
            15 => payload = Some(value),
            16 => compressed = true,
            17 => p.correlation_id = Some(value),
            _ => {}
        }
    }
    match payload {
        Some(v) => p.payload = v,
        None if compressed => return Err(HepError::CompressedPayload),
        None => return Err(HepError::MissingPayload),
    }
    Ok(p)
}

fn put_chunk(out: &mut Vec<u8>, chunk_type: u16, value: &[u8]) {
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&chunk_type.to_be_bytes());
    // Callers check the total size first, so every chunk fits in u16.
    let len = u16::try_from(value.len() + HEADER_LEN).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(value);
}

/// Encodes a packet (for tests, the benchmark and the fuzz corpus). The auth key is never
/// encoded; `has_auth_key` adds an empty auth chunk.
pub fn encode(p: &HepPacket<'_>) -> Result<Vec<u8>, HepError> {
    let mut out = Vec::with_capacity(p.payload.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0, 0]);
    let family = p.ip_family.or(match p.src_ip.or(p.dst_ip) {
        Some(IpAddr::V4(_)) => Some(2),
        Some(IpAddr::V6(_)) => Some(10),
        None => None,
    });
    if let Some(f) = family {
        put_chunk(&mut out, 1, &[f]);
    }
    if let Some(v) = p.ip_proto {
        put_chunk(&mut out, 2, &[v]);
    }
    for (ip, v4, v6) in [(p.src_ip, 3, 5), (p.dst_ip, 4, 6)] {
        match ip {
            Some(IpAddr::V4(a)) => put_chunk(&mut out, v4, &a.octets()),
            Some(IpAddr::V6(a)) => put_chunk(&mut out, v6, &a.octets()),
            None => {}
        }
    }
    if let Some(v) = p.src_port {
        put_chunk(&mut out, 7, &v.to_be_bytes());
    }
    if let Some(v) = p.dst_port {
        put_chunk(&mut out, 8, &v.to_be_bytes());
    }
    if let Some(v) = p.ts_sec {
        put_chunk(&mut out, 9, &v.to_be_bytes());
    }
    if let Some(v) = p.ts_usec {
        put_chunk(&mut out, 10, &v.to_be_bytes());
    }
    if let Some(v) = p.proto_type {
        put_chunk(&mut out, 11, &[v]);
    }
    if let Some(v) = p.capture_id {
        put_chunk(&mut out, 12, &v.to_be_bytes());
    }
    if p.has_auth_key {
        put_chunk(&mut out, 14, &[]);
    }
    if let Some(v) = p.correlation_id {
        if v.len() > MAX_PACKET {
            return Err(HepError::TooLarge(v.len()));
        }
        put_chunk(&mut out, 17, v);
    }
    if out.len() + HEADER_LEN + p.payload.len() > MAX_PACKET {
        return Err(HepError::TooLarge(out.len() + HEADER_LEN + p.payload.len()));
    }
    put_chunk(&mut out, 15, p.payload);
    let total = out.len();
    if total > MAX_PACKET {
        return Err(HepError::TooLarge(total));
    }
    out[4..6].copy_from_slice(&(total as u16).to_be_bytes());
    Ok(out)
}

/// What [`Framer::next_frame`] found at the start of the buffered stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole packet of this many bytes (decode `&buf[..n]`, then [`Framer::consume`] it).
    Packet(usize),
    /// Garbage of this many bytes before the next `HEP3` (or all of it): skip it.
    Garbage(usize),
    /// Not enough bytes yet.
    NeedMore,
}

/// Cuts a TCP byte stream into packets: several per read, or one split over reads. Holds at
/// most one packet plus one read of bytes.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The buffered bytes (frames start at 0).
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    /// How many bytes are buffered.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Drops the first `n` bytes (a packet or garbage already looked at).
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        self.buf.drain(..n);
    }

    /// Looks at the start of the buffer.
    pub fn next_frame(&self) -> Frame {
        frame(&self.buf)
    }
}

/// Finds the first frame of `buf`; pure, see [`Framer`].
pub fn frame(buf: &[u8]) -> Frame {
    if buf.is_empty() {
        return Frame::NeedMore;
    }
    let magic_at = |from: usize| {
        buf[from..]
            .windows(4)
            .position(|w| w == MAGIC)
            .map(|i| i + from)
    };
    if buf.len() < 4 {
        // A prefix of the magic may still complete.
        return if MAGIC.starts_with(buf) {
            Frame::NeedMore
        } else {
            Frame::Garbage(buf.len())
        };
    }
    if &buf[..4] != MAGIC {
        return match magic_at(1) {
            Some(i) => Frame::Garbage(i),
            // Keep the last 3 bytes: they may be the start of a magic split over reads.
            None => Frame::Garbage(buf.len() - 3),
        };
    }
    if buf.len() < HEADER_LEN {
        return Frame::NeedMore;
    }
    let declared = usize::from(be16(&buf[4..6]));
    if declared < HEADER_LEN {
        return Frame::Garbage(magic_at(4).unwrap_or(4));
    }
    if buf.len() < declared {
        return Frame::NeedMore;
    }
    Frame::Packet(declared)
}
