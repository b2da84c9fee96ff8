//! Conditions produced with plain local sockets: nothing listening, a peer that never answers,
//! a peer that answers garbage, and a name that does not resolve.

use crate::helpers::{check, rt};
use sip_probe::{Category, Direction, ProbeOptions, ProbeTarget, Transport};
use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    // Bind then drop: the port is free right after (both UDP and TCP checked).
    let u = UdpSocket::bind("127.0.0.1:0").expect("bind");
    u.local_addr().expect("addr").port()
}

#[test]
fn nothing_listening_is_refused_at_once() {
    let rt = rt();
    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let t = ProbeTarget::direct("127.0.0.1", free_port(), transport, "127.0.0.1");
        let started = Instant::now();
        let r = rt.block_on(sip_probe::options(&t, &ProbeOptions::default()));
        check(&r, Category::Refused, &[]);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{transport}: refused must not wait for Timer F"
        );
    }
}

#[test]
fn silent_peer_times_out_after_retransmissions() {
    let rt = rt();
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = sink.local_addr().expect("addr").port();
    let t = ProbeTarget::direct("127.0.0.1", port, Transport::Udp, "127.0.0.1");
    let o = ProbeOptions {
        t1: Duration::from_millis(20),
        ..ProbeOptions::default()
    };
    let r = rt.block_on(sip_probe::options(&t, &o));
    check(&r, Category::Timeout, &[]);
    // Timer E with T1 = 20 ms doubling (T2 = 4 s is never reached): retransmissions at
    // 20, 60, 140, 300, 620, 1260 ms, then Timer F at 64*T1 = 1280 ms.
    let sent = r
        .trace
        .iter()
        .filter(|e| e.direction == Direction::Sent && e.bytes_len > 0)
        .count();
    assert_eq!(sent, 7, "{}", sip_probe::ladder(&r));
    assert!(r.trace.iter().any(|e| e.note.contains("Timer F")));
    let mut buf = [0u8; 2048];
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    assert!(sink.recv(&mut buf).is_ok(), "the OPTIONS really arrived");
}

#[test]
fn garbage_answer_is_bad_response() {
    let rt = rt();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let port = peer.local_addr().expect("addr").port();
    let answers: Vec<&[u8]> = vec![
        b"HTTP/1.1 400 Bad Request\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: nonsense\r\n\r\n",
    ];
    for answer in answers {
        let t = ProbeTarget::direct("127.0.0.1", port, Transport::Udp, "127.0.0.1");
        let o = ProbeOptions {
            t1: Duration::from_millis(50),
            timeout_total: Duration::from_secs(2),
            ..ProbeOptions::default()
        };
        let responder = {
            let peer = peer.try_clone().expect("clone");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                if let Ok((_, from)) = peer.recv_from(&mut buf) {
                    let _ = peer.send_to(answer, from);
                }
            })
        };
        let r = rt.block_on(sip_probe::options(&t, &o));
        let _ = responder.join();
        check(&r, Category::BadResponse, &[]);
        assert!(r.trace.iter().any(|e| e.direction == Direction::Received));
        // Drain retransmissions before the next case.
        let mut buf = [0u8; 4096];
        peer.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        while peer.recv(&mut buf).is_ok() {}
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
    }
}

#[test]
fn peer_closing_the_connection_is_unreachable() {
    let rt = rt();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let closer = std::thread::spawn(move || {
        if let Ok((s, _)) = listener.accept() {
            drop(s);
        }
    });
    let t = ProbeTarget::direct("127.0.0.1", port, Transport::Tcp, "127.0.0.1");
    let r = rt.block_on(sip_probe::options(&t, &ProbeOptions::default()));
    let _ = closer.join();
    check(&r, Category::Unreachable, &[]);
    // A close with our request unread reaches us as a reset: both say the peer went away.
    assert!(
        r.verdict.summary.contains("closed") || r.verdict.summary.contains("reset"),
        "{}",
        r.verdict.summary
    );
}

/// A scripted UAS on a local socket: the first INVITE gets 407 twice (a retransmitted final),
/// the authenticated INVITE gets 486. The probe must ACK each 407 copy on the same branch
/// (Timer D, RFC 3261 §17.1.1.2) and answer the challenge exactly once.
#[test]
fn retransmitted_challenge_is_acked_again() {
    use sip_message::{Message, Response, parse};
    let rt = rt();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let port = peer.local_addr().expect("addr").port();
    let script = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut log: Vec<String> = Vec::new();
        while let Ok((n, from)) = peer.recv_from(&mut buf) {
            let Some(Message::Request(req)) = parse(&buf[..n]).message else {
                continue;
            };
            let branch = req
                .headers
                .via()
                .ok()
                .and_then(|v| v.first().and_then(|v| v.branch().map(str::to_owned)));
            log.push(format!("{} {}", req.method, branch.unwrap_or_default()));
            if req.method.as_str() != "INVITE" {
                continue;
            }
            let status = if req.headers.get("Proxy-Authorization").is_some() {
                486
            } else {
                407
            };
            let mut r = Response::new(status);
            for name in ["Via", "From", "Call-ID", "CSeq"] {
                if let Some(v) = req.headers.get(name) {
                    r.headers.push(name, v);
                }
            }
            r.headers.push(
                "To",
                format!("{};tag=peer", req.headers.get("To").unwrap_or_default()),
            );
            if status == 407 {
                r.headers.push(
                    "Proxy-Authenticate",
                    r#"Digest realm="local", nonce="n1", qop="auth""#,
                );
            }
            r.headers.push("Content-Length", "0");
            let copies = if status == 407 { 2 } else { 1 };
            for _ in 0..copies {
                let _ = peer.send_to(&r.to_bytes(), from);
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        log
    });
    let t = ProbeTarget::direct("127.0.0.1", port, Transport::Udp, "127.0.0.1");
    let o = ProbeOptions {
        timeout_total: Duration::from_secs(5),
        ..ProbeOptions::default()
    };
    let creds = sip_probe::Credentials::new("alice", "s3cret-pw");
    let r = rt.block_on(sip_probe::call(&t, &creds, "bob", &o));
    let log = script.join().expect("peer thread");
    check(&r, Category::Unavailable, &["s3cret-pw"]);
    assert_eq!(r.verdict.status, Some(486));
    let first_branch = log[0].split(' ').nth(1).unwrap_or_default().to_owned();
    let acks_first = log
        .iter()
        .filter(|l| **l == format!("ACK {first_branch}"))
        .count();
    assert_eq!(acks_first, 2, "{log:?}\n{}", sip_probe::ladder(&r));
    let invites = log.iter().filter(|l| l.starts_with("INVITE")).count();
    assert_eq!(invites, 2, "{log:?}");
}

/// A scripted UAS that rings and never answers: the probe gives up inside its bound, CANCELs
/// (same branch, §9.1), and ACKs the 487.
#[test]
fn unanswered_call_is_cancelled() {
    use sip_message::{Message, Response, parse};
    let rt = rt();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.set_read_timeout(Some(Duration::from_millis(2500)))
        .expect("timeout");
    let port = peer.local_addr().expect("addr").port();
    let script = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut log: Vec<String> = Vec::new();
        let mut invite = None;
        while let Ok((n, from)) = peer.recv_from(&mut buf) {
            let Some(Message::Request(req)) = parse(&buf[..n]).message else {
                continue;
            };
            let branch = req
                .headers
                .via()
                .ok()
                .and_then(|v| v.first().and_then(|v| v.branch().map(str::to_owned)));
            log.push(format!("{} {}", req.method, branch.unwrap_or_default()));
            let reply = |status: u16, req: &sip_message::Request| {
                let mut r = Response::new(status);
                for name in ["Via", "From", "Call-ID", "CSeq"] {
                    if let Some(v) = req.headers.get(name) {
                        r.headers.push(name, v);
                    }
                }
                r.headers.push(
                    "To",
                    format!("{};tag=peer", req.headers.get("To").unwrap_or_default()),
                );
                r.headers.push("Content-Length", "0");
                r.to_bytes()
            };
            match req.method.as_str() {
                "INVITE" => {
                    let _ = peer.send_to(&reply(180, &req), from);
                    invite = Some(req);
                }
                "CANCEL" => {
                    let _ = peer.send_to(&reply(200, &req), from);
                    if let Some(inv) = &invite {
                        let _ = peer.send_to(&reply(487, inv), from);
                    }
                }
                _ => {}
            }
        }
        log
    });
    let t = ProbeTarget::direct("127.0.0.1", port, Transport::Udp, "127.0.0.1");
    let o = ProbeOptions {
        timeout_total: Duration::from_secs(4),
        media_window: Duration::from_millis(500),
        ..ProbeOptions::default()
    };
    let started = Instant::now();
    let r = rt.block_on(sip_probe::call(
        &t,
        &sip_probe::Credentials::new("alice", "pw"),
        "bob",
        &o,
    ));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by timeout_total"
    );
    let log = script.join().expect("peer thread");
    check(&r, Category::Unavailable, &[]);
    assert_eq!(r.verdict.status, Some(180));
    let branch = log[0].split(' ').nth(1).unwrap_or_default().to_owned();
    assert_eq!(
        log,
        vec![
            format!("INVITE {branch}"),
            format!("CANCEL {branch}"),
            format!("ACK {branch}")
        ]
    );
}

/// A scripted UAS that answers, sends its 200 again after our ACK (as if the ACK were lost),
/// reflects RTP, then hangs up itself: the probe re-ACKs, answers the BYE and sends none.
#[test]
fn far_end_retransmits_200_and_hangs_up() {
    use sip_message::{Message, Request, Response, parse};
    let rt = rt();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.set_read_timeout(Some(Duration::from_millis(2000)))
        .expect("timeout");
    let port = peer.local_addr().expect("addr").port();
    let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind rtp");
    rtp.set_read_timeout(Some(Duration::from_millis(1500)))
        .expect("timeout");
    let rtp_port = rtp.local_addr().expect("addr").port();
    let reflector = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let mut n = 0;
        while let Ok((len, from)) = rtp.recv_from(&mut buf) {
            let _ = rtp.send_to(&buf[..len], from);
            n += 1;
        }
        n
    });
    let script = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut log: Vec<String> = Vec::new();
        let mut ok_bytes = Vec::new();
        let mut invite: Option<Request> = None;
        let mut client = None;
        let mut hung_up_at = None;
        loop {
            if let (Some(at), Some(inv), Some(to)) = (hung_up_at, &invite, client)
                && Instant::now() >= at
            {
                let mut bye = Request::new(
                    sip_message::Method::Bye,
                    sip_message::Uri::sip(Some("alice"), "127.0.0.1", None),
                );
                bye.headers.push(
                    "Via",
                    format!("SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-peer-bye"),
                );
                bye.headers.push("Max-Forwards", "70");
                bye.headers.push(
                    "From",
                    format!("{};tag=peer", inv.headers.get("To").unwrap_or_default()),
                );
                bye.headers
                    .push("To", inv.headers.get("From").unwrap_or_default());
                bye.headers
                    .push("Call-ID", inv.headers.get("Call-ID").unwrap_or_default());
                bye.headers.push("CSeq", "1 BYE");
                bye.headers.push("Content-Length", "0");
                let _ = peer.send_to(&bye.to_bytes(), to);
                log.push("sent BYE".into());
                hung_up_at = None;
            }
            peer.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let Ok((n, from)) = peer.recv_from(&mut buf) else {
                if log.len() > 12
                    || (hung_up_at.is_none() && log.iter().any(|l| l == "got 200 BYE"))
                {
                    break;
                }
                continue;
            };
            match parse(&buf[..n]).message {
                Some(Message::Request(req)) => {
                    log.push(format!("got {}", req.method));
                    match req.method.as_str() {
                        "INVITE" => {
                            let mut r = Response::new(200);
                            for name in ["Via", "From", "Call-ID", "CSeq"] {
                                if let Some(v) = req.headers.get(name) {
                                    r.headers.push(name, v);
                                }
                            }
                            r.headers.push(
                                "To",
                                format!("{};tag=peer", req.headers.get("To").unwrap_or_default()),
                            );
                            r.headers
                                .push("Contact", format!("<sip:peer@127.0.0.1:{port}>"));
                            let sdp = format!(
                                "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0\r\n"
                            );
                            r.set_body("application/sdp", sdp.into_bytes());
                            ok_bytes = r.to_bytes();
                            let _ = peer.send_to(&ok_bytes, from);
                            invite = Some(req);
                            client = Some(from);
                        }
                        "ACK" if log.iter().filter(|l| *l == "got ACK").count() == 1 => {
                            // Pretend the ACK was lost: the 200 goes out again (§13.3.1.4).
                            let _ = peer.send_to(&ok_bytes, from);
                            hung_up_at = Some(Instant::now() + Duration::from_millis(300));
                        }
                        _ => {}
                    }
                }
                Some(Message::Response(r)) => log.push(format!(
                    "got {} {}",
                    r.status,
                    r.headers
                        .cseq()
                        .ok()
                        .flatten()
                        .map(|c| c.method.to_string())
                        .unwrap_or_default()
                )),
                None => {}
            }
        }
        log
    });
    let t = ProbeTarget::direct("127.0.0.1", port, Transport::Udp, "127.0.0.1");
    let o = ProbeOptions {
        timeout_total: Duration::from_secs(5),
        media_window: Duration::from_millis(800),
        ..ProbeOptions::default()
    };
    let r = rt.block_on(sip_probe::call(
        &t,
        &sip_probe::Credentials::new("alice", "pw"),
        "peer",
        &o,
    ));
    let log = script.join().expect("peer thread");
    let reflected = reflector.join().expect("rtp thread");
    check(&r, Category::Ok, &[]);
    assert_eq!(
        log,
        [
            "got INVITE",
            "got ACK",
            "got ACK",
            "sent BYE",
            "got 200 BYE"
        ],
        "{}",
        sip_probe::ladder(&r)
    );
    assert!(
        r.verdict.summary.contains("far end hung up"),
        "{}",
        r.verdict.summary
    );
    assert!(reflected > 0);
    assert!(r.media.as_ref().is_some_and(|m| m.echoed > 0));
}

/// Starts a scripted UAS: `answer` gets each request and returns the responses to send.
/// Returns its port and a handle yielding `METHOD Expires` lines for the requests seen.
fn scripted(
    mut answer: impl FnMut(&sip_message::Request) -> Vec<sip_message::Response> + Send + 'static,
) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.set_read_timeout(Some(Duration::from_millis(800)))
        .expect("timeout");
    let port = peer.local_addr().expect("addr").port();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut log = Vec::new();
        while let Ok((n, from)) = peer.recv_from(&mut buf) {
            let Some(sip_message::Message::Request(req)) = sip_message::parse(&buf[..n]).message
            else {
                continue;
            };
            log.push(format!(
                "{} {}",
                req.method,
                req.headers.get("Expires").unwrap_or("-")
            ));
            for r in answer(&req) {
                let _ = peer.send_to(&r.to_bytes(), from);
            }
        }
        log
    });
    (port, h)
}

fn reply(
    req: &sip_message::Request,
    status: u16,
    extra: &[(&str, String)],
) -> sip_message::Response {
    let mut r = sip_message::Response::new(status);
    for name in ["Via", "From", "Call-ID", "CSeq", "Contact"] {
        if let Some(v) = req.headers.get(name) {
            r.headers.push(name, v);
        }
    }
    r.headers.push(
        "To",
        format!("{};tag=peer", req.headers.get("To").unwrap_or_default()),
    );
    for (n, v) in extra {
        r.headers.push(*n, v.clone());
    }
    r.headers.push("Content-Length", "0");
    r
}

/// 423 Interval Too Brief with Min-Expires: the probe retries once with the server's minimum.
#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let rt = rt();
    let (port, peer) = scripted(|req| {
        let expires: u32 = req
            .headers
            .get("Expires")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if expires == 0 {
            vec![reply(req, 200, &[])]
        } else if expires < 3600 {
            vec![reply(req, 423, &[("Min-Expires", "3600".into())])]
        } else {
            vec![reply(req, 200, &[("Expires", expires.to_string())])]
        }
    });
    let t = ProbeTarget::direct("127.0.0.1", port, Transport::Udp, "127.0.0.1");
    let r = rt.block_on(sip_probe::register(
        &t,
        &sip_probe::Credentials::new("alice", "pw"),
        &ProbeOptions::default(),
    ));
    let log = peer.join().expect("peer");
    check(&r, Category::Ok, &[]);
    assert!(
        r.verdict.summary.contains("expires in 3600 s"),
        "{}",
        r.verdict.summary
    );
    assert_eq!(log, ["REGISTER 300", "REGISTER 3600", "REGISTER 0"]);
}
