//! Realistic SIP traffic wrapped in HEPv3, for tests, the benchmark and the fuzz corpus:
//! registration flows (REGISTER, 401, REGISTER with credentials, 200 or 403) and calls
//! (INVITE, 100, 180, 200, ACK, BYE, 200, or a failure) as a Kamailio siptrace would send them.

use crate::hep::{self, HepPacket, PROTO_SIP};
use std::net::SocketAddr;

/// Wraps a SIP message in a HEPv3 packet (IP protocol UDP, capture agent 2001).
pub fn hep_sip(payload: &[u8], src: SocketAddr, dst: SocketAddr, at_micros: i64) -> Vec<u8> {
    let secs = u32::try_from(at_micros.div_euclid(1_000_000)).unwrap_or(0);
    let usecs = u32::try_from(at_micros.rem_euclid(1_000_000)).unwrap_or(0);
    let p = HepPacket {
        ip_proto: Some(17),
        src_ip: Some(src.ip()),
        dst_ip: Some(dst.ip()),
        src_port: Some(src.port()),
        dst_port: Some(dst.port()),
        ts_sec: Some(secs),
        ts_usec: Some(usecs),
        proto_type: Some(PROTO_SIP),
        capture_id: Some(2001),
        payload,
        ..HepPacket::default()
    };
    // Payloads built here are far below the 64 KiB limit.
    hep::encode(&p).unwrap_or_default()
}

/// How a synthetic registration ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegOutcome {
    /// 401 challenge, then 200 OK.
    Registered,
    /// 401 challenge, then 403 Forbidden (wrong password).
    Refused,
    /// 401 challenge and nothing more (the phone gives up).
    ChallengeOnly,
}

fn via(client: SocketAddr, branch: &str) -> String {
    format!("Via: SIP/2.0/UDP {client};rport;branch=z9hG4bK{branch}\r\n")
}

/// The messages of one registration, each as (payload, src, dst, time µs).
pub fn registration(
    user: &str,
    domain: &str,
    client: SocketAddr,
    server: SocketAddr,
    call_id: &str,
    at: i64,
    outcome: RegOutcome,
) -> Vec<(Vec<u8>, SocketAddr, SocketAddr, i64)> {
    let common = |cseq: u32, branch: &str| {
        format!(
            "{}From: <sip:{user}@{domain}>;tag=r{call_id}\r\nTo: <sip:{user}@{domain}>\r\nCall-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n",
            via(client, branch)
        )
    };
    let req = |cseq: u32, auth: bool| {
        let mut m = format!(
            "REGISTER sip:{domain} SIP/2.0\r\n{}Max-Forwards: 70\r\nContact: <sip:{user}@{client}>\r\nExpires: 600\r\nUser-Agent: baresip 1.0\r\n",
            common(cseq, &format!("{call_id}{cseq}"))
        );
        if auth {
            m.push_str(&format!(
                "Authorization: Digest username=\"{user}\", realm=\"{domain}\", nonce=\"abc\", uri=\"sip:{domain}\", response=\"0123456789abcdef0123456789abcdef\"\r\n"
            ));
        }
        m.push_str("Content-Length: 0\r\n\r\n");
        m.into_bytes()
    };
    let resp = |cseq: u32, status: &str, extra: &str| {
        format!(
            "SIP/2.0 {status}\r\n{}{extra}Server: kamailio (5.6.4 (x86_64/linux))\r\nContent-Length: 0\r\n\r\n",
            common(cseq, &format!("{call_id}{cseq}"))
        )
        .into_bytes()
    };
    let mut out = vec![
        (req(1, false), client, server, at),
        (
            resp(
                1,
                "401 Unauthorized",
                &format!("WWW-Authenticate: Digest realm=\"{domain}\", nonce=\"abc\"\r\n"),
            ),
            server,
            client,
            at + 2_000,
        ),
    ];
    match outcome {
        RegOutcome::ChallengeOnly => {}
        RegOutcome::Registered => {
            out.push((req(2, true), client, server, at + 10_000));
            out.push((
                resp(
                    2,
                    "200 OK",
                    &format!("Contact: <sip:{user}@{client}>;expires=600\r\n"),
                ),
                server,
                client,
                at + 12_000,
            ));
        }
        RegOutcome::Refused => {
            out.push((req(2, true), client, server, at + 10_000));
            out.push((resp(2, "403 Forbidden", ""), server, client, at + 12_000));
        }
    }
    out
}

/// The messages of one call from `caller` dialling `dialled`, each as (payload, src, dst,
/// time µs). `final_status` 200 makes an answered call ended by a BYE after 30 s; any other
/// makes a failed call (with its ACK, which the window ignores).
#[allow(clippy::too_many_arguments)]
pub fn call(
    caller: &str,
    dialled: &str,
    domain: &str,
    client: SocketAddr,
    server: SocketAddr,
    call_id: &str,
    at: i64,
    final_status: u16,
) -> Vec<(Vec<u8>, SocketAddr, SocketAddr, i64)> {
    let hdrs = |cseq: u32, method: &str, to_tag: bool| {
        format!(
            "{}From: <sip:{caller}@{domain}>;tag=c{call_id}\r\nTo: <sip:{dialled}@{domain}>{}\r\nCall-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n",
            via(client, &format!("{call_id}{method}")),
            if to_tag { ";tag=s1" } else { "" }
        )
    };
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:{dialled}@{domain} SIP/2.0\r\n{}Max-Forwards: 70\r\nContact: <sip:{caller}@{client}>\r\nUser-Agent: baresip 1.0\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        hdrs(1, "INVITE", false),
        sdp.len()
    );
    let resp = |status: &str, method: &str, tag: bool| {
        format!(
            "SIP/2.0 {status}\r\n{}Server: kamailio\r\nContent-Length: 0\r\n\r\n",
            hdrs(if method == "BYE" { 2 } else { 1 }, method, tag)
        )
        .into_bytes()
    };
    let ack = format!(
        "ACK sip:{dialled}@{domain} SIP/2.0\r\n{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
        hdrs(1, "ACK", true)
    );
    let mut out = vec![
        (invite.into_bytes(), client, server, at),
        (
            resp("100 Trying", "INVITE", false),
            server,
            client,
            at + 1_000,
        ),
    ];
    if final_status == 200 {
        out.push((
            resp("180 Ringing", "INVITE", true),
            server,
            client,
            at + 50_000,
        ));
        out.push((
            resp("200 OK", "INVITE", true),
            server,
            client,
            at + 2_000_000,
        ));
        out.push((ack.into_bytes(), client, server, at + 2_010_000));
        let bye = format!(
            "BYE sip:{dialled}@{domain} SIP/2.0\r\n{}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            hdrs(2, "BYE", true)
        );
        out.push((bye.into_bytes(), client, server, at + 32_000_000));
        out.push((resp("200 OK", "BYE", true), server, client, at + 32_002_000));
    } else {
        let status = format!(
            "{final_status} {}",
            sip_message::default_reason(final_status)
        );
        out.push((resp(&status, "INVITE", true), server, client, at + 40_000));
        out.push((ack.into_bytes(), client, server, at + 41_000));
    }
    out
}

/// The same, wrapped in HEP.
pub fn wrap(messages: Vec<(Vec<u8>, SocketAddr, SocketAddr, i64)>) -> Vec<Vec<u8>> {
    messages
        .into_iter()
        .map(|(m, s, d, t)| hep_sip(&m, s, d, t))
        .collect()
}
