//! Hand-made captures for the media tests: a pcap writer with UDP over IPv4, SIP messages with
//! SDP, RTP and RTCP packets.

use std::net::SocketAddrV4;

/// Link type of the packets written.
#[derive(Clone, Copy)]
pub enum Link {
    /// LINKTYPE_ETHERNET (what SIPp's `play_pcap_audio` reads).
    Ethernet,
    /// LINKTYPE_IPV4.
    Ipv4,
}

/// A libpcap file being written in memory.
pub struct Pcap {
    link: Link,
    pub bytes: Vec<u8>,
    ident: u16,
}

impl Pcap {
    pub fn new(link: Link) -> Pcap {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        bytes.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        let lt: u32 = match link {
            Link::Ethernet => 1,
            Link::Ipv4 => 228,
        };
        bytes.extend_from_slice(&lt.to_le_bytes());
        Pcap {
            link,
            bytes,
            ident: 1,
        }
    }

    /// One UDP datagram at `t` (Unix seconds).
    pub fn udp(&mut self, t: f64, src: &str, dst: &str, payload: &[u8]) {
        let src: SocketAddrV4 = src.parse().expect("src");
        let dst: SocketAddrV4 = dst.parse().expect("dst");
        let mut frame = Vec::new();
        if let Link::Ethernet = self.link {
            frame.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, 0x08, 0x00]);
        }
        let total = (20 + 8 + payload.len()) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&self.ident.to_be_bytes());
        self.ident = self.ident.wrapping_add(1);
        ip.extend_from_slice(&[0x40, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&src.ip().octets());
        ip.extend_from_slice(&dst.ip().octets());
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&src.port().to_be_bytes());
        frame.extend_from_slice(&dst.port().to_be_bytes());
        frame.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(payload);
        let secs = t.floor();
        let micros = ((t - secs) * 1e6).round() as u32;
        self.bytes.extend_from_slice(&(secs as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&micros.min(999_999).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes
            .extend_from_slice(&(frame.len() as u32).to_le_bytes());
        self.bytes.extend_from_slice(&frame);
    }

    /// `n` RTP packets of 20 ms (160 samples at 8 kHz) starting at `t`.
    #[allow(clippy::too_many_arguments)]
    pub fn rtp_run(
        &mut self,
        t: f64,
        src: &str,
        dst: &str,
        ssrc: u32,
        pt: u8,
        first_seq: u16,
        n: u32,
        skip: impl Fn(u32) -> bool,
    ) {
        for i in 0..n {
            if skip(i) {
                continue;
            }
            let seq = first_seq.wrapping_add(i as u16);
            self.udp(
                t + f64::from(i) * 0.02,
                src,
                dst,
                &rtp(pt, seq, i * 160, ssrc, 160),
            );
        }
    }
}

fn checksum(hdr: &[u8]) -> u16 {
    let mut s: u32 = hdr
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An RTP packet with `len` payload bytes.
pub fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, len: usize) -> Vec<u8> {
    let mut p = vec![0x80, pt & 0x7f];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.resize(12 + len, 0xff);
    p
}

/// An RTCP receiver report from `ssrc` about `about` with the given fraction lost (of 256),
/// cumulative lost and jitter (timestamp units).
pub fn rtcp_rr(ssrc: u32, about: u32, fraction: u8, cumulative: u32, jitter: u32) -> Vec<u8> {
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&about.to_be_bytes());
    p.push(fraction);
    p.extend_from_slice(&cumulative.to_be_bytes()[1..]);
    p.extend_from_slice(&[0, 0, 1, 0]);
    p.extend_from_slice(&jitter.to_be_bytes());
    p.extend_from_slice(&[0; 8]);
    p
}

/// A SIP message of a call `call_id` between caller tag `a` and callee tag `b`, with an SDP
/// body announcing `media` (`ip:port`) and payload types `pts` when given.
pub fn sip(
    start: &str,
    call_id: &str,
    cseq: &str,
    to_tag: bool,
    media: Option<(&str, &str)>,
) -> Vec<u8> {
    let body = media.map_or(String::new(), |(addr, pts)| {
        let (ip, port) = addr.split_once(':').expect("ip:port");
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {pts}\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
        )
    });
    let mut m = format!(
        "{start}\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK-{call_id}-{}\r\nFrom: <sip:alice@example.com>;tag=a\r\nTo: <sip:bob@example.com>{}\r\nCall-ID: {call_id}\r\nCSeq: {cseq}\r\n",
        cseq.replace(' ', "-"),
        if to_tag { ";tag=b" } else { "" }
    );
    if !body.is_empty() {
        m.push_str("Content-Type: application/sdp\r\n");
    }
    m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    m.into_bytes()
}
