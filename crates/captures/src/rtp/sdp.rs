//! The audio stream of an SDP body (RFC 4566, RFC 3264): addresses, codecs, direction.

use std::net::{IpAddr, SocketAddr};

use memchr::memchr;
use serde::Serialize;

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
                    let raw = parts.next().unwrap_or(b"");
                    // At most 32 characters; a short valid name is taken as it is.
                    let name = match std::str::from_utf8(raw) {
                        Ok(n) if n.len() <= 32 => n.to_owned(),
                        _ => String::from_utf8_lossy(raw).chars().take(32).collect(),
                    };
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
