//! Calls: echo with media measured, echo service stopped, trunk gateway down, unknown number,
//! and a call between the two probe accounts.

use crate::helpers::*;
use sip_probe::{Category, Transport};

#[test]
fn echo_call_carries_audio_on_every_transport() {
    let lab = lab();
    let rt = rt();
    let pw = password(&lab, "alice");
    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let r = rt.block_on(sip_probe::echo(
            &target(&lab, transport),
            &creds(&lab, "alice"),
            lab.echo_number(),
            &opts(),
        ));
        check(&r, Category::Ok, &[&pw]);
        let m = r.media.as_ref().expect("media measured");
        assert!(m.sent >= 40, "{m:?}");
        assert_eq!(m.echoed, m.sent, "no loss on loopback: {m:?}");
        assert_eq!(m.loss, 0.0);
        // Loopback answers in well under a millisecond; a loaded 2-core CI machine can stall a
        // packet for tens of milliseconds, so the bound only catches a stalled echo.
        assert!(m.rtt_max_ms.is_some_and(|v| v < 500.0), "{m:?}");
        assert!(r.setup_ms.is_some());
        let ladder = sip_probe::ladder(&r);
        for step in ["INVITE", "407", "200 OK", "ACK", "BYE"] {
            assert!(ladder.contains(step), "{step} missing:\n{ladder}");
        }
    }
    // The server saw each whole call: one CDR with a duration, routed to the echo service.
    // Kamailio writes the CDR when the dialog ends, just after its 200 to our BYE: poll, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut cdrs;
    loop {
        cdrs = lab
            .sql("SELECT route, duration > 0.5 FROM acc_cdrs WHERE caller='alice'")
            .expect("sql");
        if cdrs.lines().filter(|l| *l == "echo|1").count() >= 3
            || std::time::Instant::now() > deadline
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(cdrs.lines().filter(|l| *l == "echo|1").count(), 3, "{cdrs}");
}

#[test]
fn echo_stopped_gateway_down_and_unknown_number() {
    let lab = lab();
    let rt = rt();
    let t = target(&lab, Transport::Udp);
    let alice = creds(&lab, "alice");
    let trunk_number = format!("{}5551234", lab.trunk_prefix());
    // A working trunk call first, so the failure below is the fault's doing.
    let r = rt.block_on(sip_probe::call(&t, &alice, &trunk_number, &opts()));
    check(&r, Category::Ok, &[]);

    let r = rt.block_on(sip_probe::call(&t, &alice, "nosuchuser", &opts()));
    check(&r, Category::NotFound, &[]);
    assert_eq!(r.verdict.status, Some(404));

    // The gateway answers 503 for numbers starting 503; Kamailio relays it as 500 (RFC 3261 §16.7).
    let r = rt.block_on(sip_probe::call(
        &t,
        &alice,
        &format!("{}5035550000", lab.trunk_prefix()),
        &opts(),
    ));
    check(&r, Category::ServerError, &[]);
    assert_eq!(r.verdict.status, Some(500));

    lab.fault("stop-echo", &[]).expect("fault");
    let r = rt.block_on(sip_probe::echo(&t, &alice, lab.echo_number(), &opts()));
    check(&r, Category::Unavailable, &[]);
    assert_eq!(r.verdict.status, Some(503));

    lab.fault("kill-gateway", &[]).expect("fault");
    let r = rt.block_on(sip_probe::call(&t, &alice, &trunk_number, &opts()));
    check(&r, Category::Unavailable, &[]);
    assert_eq!(r.verdict.status, Some(503));
}

#[test]
fn call_between_the_two_probe_accounts() {
    let lab = lab();
    let rt = rt();
    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let t = target(&lab, transport);
        let (p1, p2) = (creds(&lab, "probe1"), creds(&lab, "probe2"));
        let r = rt.block_on(sip_probe::call_between(&t, &p1, &p2, &opts()));
        check(
            &r,
            Category::Ok,
            &[&password(&lab, "probe1"), &password(&lab, "probe2")],
        );
        let m = r.media.as_ref().expect("media");
        assert_eq!(m.echoed, m.sent, "{transport}: {m:?}");
        assert!(r.trace.iter().any(|e| e.note.starts_with("callee")));
        // Media both ways: every packet reached the callee and was sent back by it.
        let want = format!("reflected {} packets", m.sent);
        assert!(r.verdict.summary.contains(&want), "{}", r.verdict.summary);
        // The callee's binding was removed again.
        assert!(
            lab.rpc("ul.lookup", serde_json::json!(["location", "probe2"]))
                .is_err()
        );
    }
}

/// A phone that answers but sends no audio back (SIPp UAS without -rtp_echo), and an echo
/// judged against a jitter bound loopback cannot meet.
#[test]
fn no_echo_and_degraded_media() {
    let lab = lab();
    let rt = rt();
    let t = target(&lab, Transport::Udp);
    let alice = creds(&lab, "alice");
    let free = || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    };
    let (port, media) = (free(), free());
    let scenario = testlab::Lab::lab_dir()
        .expect("lab dir")
        .join("sipp/echo_uas.xml");
    let mut phone = std::process::Command::new("sipp")
        .current_dir(lab.run_dir())
        .arg("-sf")
        .arg(&scenario)
        .args([
            "-t",
            "u1",
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-mi",
            "127.0.0.1",
        ])
        .args(["-p", &port.to_string(), "-mp", &media.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sipp starts");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let reg = lab.sipp_register_contact(
        "bob",
        &password(&lab, "bob"),
        &format!("sip:bob@127.0.0.1:{port}"),
    );
    let r = rt.block_on(sip_probe::echo(&t, &alice, "bob", &opts()));
    let _ = phone.kill();
    let _ = phone.wait();
    assert_eq!(
        reg.expect("register the silent phone").final_status,
        Some(200)
    );
    check(&r, Category::MediaNoEcho, &[]);
    let m = r.media.as_ref().expect("media");
    assert!(m.sent > 0 && m.echoed == 0, "{m:?}");

    let strict = sip_probe::ProbeOptions {
        max_jitter_ms: 0.0,
        ..opts()
    };
    let r = rt.block_on(sip_probe::echo(&t, &alice, lab.echo_number(), &strict));
    check(&r, Category::MediaDegraded, &[]);
    assert!(
        r.media
            .as_ref()
            .is_some_and(|m| m.jitter_ms.is_some_and(|j| j > 0.0))
    );
}
