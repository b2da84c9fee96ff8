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
fn unresolvable_name_is_dns() {
    let rt = rt();
    // RFC 2606 reserves .invalid: it can never resolve.
    let t = ProbeTarget {
        host: "sip.dialtone.invalid".into(),
        port: None,
        transport: Transport::Udp,
        domain: "dialtone.invalid".into(),
        tls_trust: vec![],
        insecure_continue: false,
    };
    let r = rt.block_on(sip_probe::options(&t, &ProbeOptions::default()));
    check(&r, Category::Dns, &[]);
    assert!(!r.resolution.is_empty());
    assert!(
        r.resolution.iter().any(|s| s.kind == "naptr"),
        "{:?}",
        r.resolution
    );
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
    assert!(
        r.verdict.summary.contains("closed"),
        "{}",
        r.verdict.summary
    );
}
