//! A real collector on 127.0.0.1:0, fed over UDP and TCP, read back through the window.

use chrono::Utc;
use sip_events::synth::{self, RegOutcome};
use sip_events::{Collector, EventWindow, StoreConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_and_tcp_packets_end_up_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let c = Collector::bind(Some(any), Some(any), StoreConfig::new(&path))
        .await
        .unwrap();
    let udp = c.udp_addr().unwrap();
    let tcp = c.tcp_addr().unwrap();
    let stats = c.stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(c.run(async {
        let _ = stop_rx.await;
    }));

    let client: SocketAddr = "127.0.0.1:5098".parse().unwrap();
    let server: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let t = Utc::now().timestamp_micros() - 10_000_000;
    // Over UDP: alice registers (challenge, then OK).
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for p in synth::wrap(synth::registration(
        "alice",
        "example.test",
        client,
        server,
        "u-1",
        t,
        RegOutcome::Registered,
    )) {
        sock.send_to(&p, udp).await.unwrap();
    }
    sock.send_to(b"HEP3\x00\x02garbage", udp).await.unwrap();
    // Over TCP: alice's call fails with 503; all packets in one write, garbage between, then
    // the last packet split over two writes.
    let mut stream = tokio::net::TcpStream::connect(tcp).await.unwrap();
    let packets = synth::wrap(synth::call(
        "alice",
        "95551234",
        "example.test",
        client,
        server,
        "t-1",
        t + 1_000_000,
        503,
    ));
    let (last, rest) = packets.split_last().unwrap();
    let mut bytes = rest.concat();
    bytes.extend_from_slice(b"junk between packets");
    bytes.extend_from_slice(&last[..7]);
    stream.write_all(&bytes).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&last[7..]).await.unwrap();
    stream.flush().await.unwrap();

    // Received: 4 + 1 garbage over UDP, 4 over TCP (INVITE, 100, 503, ACK).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let s = stats.snapshot();
        if s.received >= 9 && s.stored >= 7 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not stored in time: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Read while the collector runs (another connection, as another process would).
    let w = EventWindow::open(&path).await.unwrap();
    let since = Utc::now() - chrono::Duration::hours(1);
    let regs = w.registration_attempts("alice", since).await.unwrap();
    assert_eq!(regs.len(), 2);
    assert_eq!((regs[0].status, regs[1].status), (200, 401));
    let calls = w.calls("alice", since, 10).await.unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].status, 503);
    assert_eq!(calls[0].dialled, "95551234");
    let st = w.stats().await.unwrap();
    assert_eq!(st.events, 7);
    assert!(st.last_received.is_some());

    stop_tx.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("stops in time")
        .unwrap()
        .unwrap();
    assert_eq!(done.stored, 7);
    assert_eq!(done.ignored, 1, "the ACK");
    assert_eq!(
        done.malformed, 2,
        "the bad UDP packet and the TCP junk: {done:?}"
    );
    assert_eq!(done.dropped, 0);
}

#[tokio::test]
async fn same_port_binding_gives_one_port_for_both() {
    let dir = tempfile::tempdir().unwrap();
    let c = Collector::bind_same_port(
        "127.0.0.1:0".parse().unwrap(),
        StoreConfig::new(dir.path().join("e.sqlite")),
    )
    .await
    .unwrap();
    assert_eq!(c.udp_addr().unwrap(), c.tcp_addr().unwrap());
    assert_ne!(c.udp_addr().unwrap().port(), 0);
}
