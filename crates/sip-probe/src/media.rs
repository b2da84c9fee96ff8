//! RTP echo measurement (RFC 3550): marked 20 ms PCMU frames whose payload carries our SSRC,
//! a sequence number and the send time, so every packet that comes back gives a round trip;
//! loss, RTT and the interarrival jitter of the returning stream are computed from them.

use crate::MediaStats;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Payload marker: "dialtone probe".
const MAGIC: &[u8; 4] = b"DTPR";
/// 20 ms of 8 kHz PCMU (RFC 3551 §4.5.14).
const FRAME_SAMPLES: u32 = 160;
const FRAME: Duration = Duration::from_millis(20);

/// Builds one RTP packet (RFC 3550 §5.1): V=2, no padding/extension/CSRC, M on the first.
pub(crate) fn rtp_packet(
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    sent_us: u64,
) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + FRAME_SAMPLES as usize);
    p.push(0x80);
    p.push(if marker {
        0x80 | (pt & 0x7f)
    } else {
        pt & 0x7f
    });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(MAGIC);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&u32::from(seq).to_be_bytes());
    p.extend_from_slice(&sent_us.to_be_bytes());
    // The rest of the frame is PCMU silence (0xFF), so a real phone hears nothing odd.
    p.resize(12 + FRAME_SAMPLES as usize, 0xFF);
    p
}

/// Reads our marker back: (seq, sent_us) if `pkt` is one of our packets for `ssrc`.
pub(crate) fn read_marker(pkt: &[u8], ssrc: u32) -> Option<(u16, u64)> {
    if pkt.len() < 12 || pkt[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(pkt[0] & 0x0f) * 4;
    let body = pkt.get(12 + csrc..)?;
    if body.len() < 20 || &body[..4] != MAGIC || body[4..8] != ssrc.to_be_bytes() {
        return None;
    }
    let seq = u32::from_be_bytes(body[8..12].try_into().ok()?) as u16;
    let sent = u64::from_be_bytes(body[12..20].try_into().ok()?);
    Some((seq, sent))
}

/// Running statistics over echoed packets.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub sent: u32,
    pub echoed: u32,
    pub foreign: u32,
    rtts_ms: Vec<f64>,
    seen: std::collections::HashSet<u16>,
    jitter: f64,
    last_transit: Option<f64>,
    pub unexpected_source: Option<SocketAddr>,
}

impl Tally {
    /// Accounts one received packet at `now_us` (µs since the media start).
    pub(crate) fn on_packet(&mut self, pkt: &[u8], ssrc: u32, now_us: u64) {
        match read_marker(pkt, ssrc) {
            Some((seq, sent)) if now_us >= sent => {
                if !self.seen.insert(seq) {
                    return; // duplicate
                }
                self.echoed += 1;
                let rtt = (now_us - sent) as f64 / 1000.0;
                self.rtts_ms.push(rtt);
                // RFC 3550 §6.4.1 / A.8: J += (|D| - J) / 16, with transit = arrival - send time.
                let transit = rtt;
                if let Some(prev) = self.last_transit {
                    let d = (transit - prev).abs();
                    self.jitter += (d - self.jitter) / 16.0;
                }
                self.last_transit = Some(transit);
            }
            _ => self.foreign += 1,
        }
    }

    pub(crate) fn stats(&self, local: SocketAddr, remote: SocketAddr, codec: &str) -> MediaStats {
        let n = self.rtts_ms.len();
        let (min, avg, max) = if n == 0 {
            (None, None, None)
        } else {
            let min = self.rtts_ms.iter().copied().fold(f64::INFINITY, f64::min);
            let max = self.rtts_ms.iter().copied().fold(0.0, f64::max);
            (
                Some(min),
                Some(self.rtts_ms.iter().sum::<f64>() / n as f64),
                Some(max),
            )
        };
        MediaStats {
            remote: remote.to_string(),
            local: local.to_string(),
            codec: codec.to_owned(),
            sent: self.sent,
            echoed: self.echoed,
            foreign: self.foreign,
            loss: if self.sent == 0 {
                1.0
            } else {
                1.0 - f64::from(self.echoed.min(self.sent)) / f64::from(self.sent)
            },
            rtt_min_ms: min,
            rtt_avg_ms: avg,
            rtt_max_ms: max,
            jitter_ms: (n > 1).then_some(self.jitter),
            unexpected_source: self.unexpected_source.map(|a| a.to_string()),
        }
    }
}

/// Sends marked frames to `remote` for `window`, then listens `grace` more; returns the tally.
/// The socket is not connected, so packets from an unexpected address are seen and reported.
pub(crate) async fn run_echo(
    sock: &UdpSocket,
    remote: SocketAddr,
    pt: u8,
    window: Duration,
    grace: Duration,
    hard_deadline: Instant,
) -> Tally {
    let ssrc: u32 = rand::random();
    let start = Instant::now();
    let send_until = (start + window).min(hard_deadline);
    let listen_until = (send_until + grace).min(hard_deadline);
    let mut tally = Tally::default();
    let mut next_send = start;
    let mut seq: u16 = rand::random::<u16>() & 0x7fff;
    let mut ts: u32 = rand::random();
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        // The grace period is for late echoes; once every packet sent has come back there is
        // nothing left to wait for.
        if now >= listen_until
            || (now >= send_until && tally.sent > 0 && tally.echoed >= tally.sent)
        {
            break;
        }
        if now >= next_send && now < send_until {
            let sent_us = start.elapsed().as_micros() as u64;
            let pkt = rtp_packet(pt, seq, ts, ssrc, tally.sent == 0, sent_us);
            if sock.send_to(&pkt, remote).await.is_ok() {
                tally.sent += 1;
            }
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(FRAME_SAMPLES);
            next_send += FRAME;
            continue;
        }
        let wake = if now < send_until {
            next_send.min(listen_until)
        } else {
            listen_until
        };
        let wait = wake.saturating_duration_since(now);
        // An error here is ICMP port unreachable from the media peer on some systems: keep sending.
        if let Ok(Ok((n, from))) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
            if from != remote && tally.unexpected_source.is_none() {
                tally.unexpected_source = Some(from);
            }
            tally.on_packet(&buf[..n], ssrc, start.elapsed().as_micros() as u64);
        }
    }
    tally
}

/// Sends every packet received back to where it came from, until `until` (the UAS side of
/// `call_between`, like an echo service), counting them in `count` as they go (the caller
/// may drop this future at any time).
pub(crate) async fn reflect(
    sock: &UdpSocket,
    until: Instant,
    count: &std::sync::atomic::AtomicU32,
) {
    let mut buf = vec![0u8; 2048];
    loop {
        let wait = until.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return;
        }
        match tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
            Ok(Ok((len, from))) => {
                if sock.send_to(&buf[..len], from).await.is_ok() {
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(Err(_)) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip_and_foreign_packets() {
        let p = rtp_packet(0, 65535, 1234, 0xdead_beef, true, 42_000);
        assert_eq!(p.len(), 172);
        assert_eq!(p[1], 0x80);
        assert_eq!(read_marker(&p, 0xdead_beef), Some((65535, 42_000)));
        assert_eq!(read_marker(&p, 1), None, "other SSRC");
        assert_eq!(read_marker(&p[..20], 0xdead_beef), None, "truncated");
        let mut t = Tally {
            sent: 4,
            ..Tally::default()
        };
        t.on_packet(&rtp_packet(0, 1, 0, 7, false, 1_000), 7, 2_000);
        t.on_packet(&rtp_packet(0, 1, 0, 7, false, 1_000), 7, 2_500); // duplicate ignored
        t.on_packet(&rtp_packet(0, 2, 0, 7, false, 21_000), 7, 24_000);
        t.on_packet(b"not rtp at all", 7, 30_000);
        let local = SocketAddr::from(([127, 0, 0, 1], 1));
        let s = t.stats(local, local, "PCMU/8000");
        assert_eq!((s.echoed, s.foreign), (2, 1));
        assert_eq!(s.loss, 0.5);
        assert_eq!((s.rtt_min_ms, s.rtt_max_ms), (Some(1.0), Some(3.0)));
        assert_eq!(s.jitter_ms, Some(2.0 / 16.0));
    }
}
