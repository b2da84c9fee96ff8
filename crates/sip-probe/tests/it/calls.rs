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
        assert!(m.rtt_max_ms.is_some_and(|v| v < 50.0), "{m:?}");
        assert!(r.setup_ms.is_some());
        let ladder = sip_probe::ladder(&r);
        for step in ["INVITE", "407", "200 OK", "ACK", "BYE"] {
            assert!(ladder.contains(step), "{step} missing:\n{ladder}");
        }
    }
    // The server saw a whole call: one CDR with a duration, routed to the echo service.
    let cdrs = lab
        .sql("SELECT route, duration > 0.5 FROM acc_cdrs WHERE caller='alice'")
        .expect("sql");
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
    let t = target(&lab, Transport::Udp);
    let r = rt.block_on(sip_probe::call_between(
        &t,
        &creds(&lab, "probe1"),
        &creds(&lab, "probe2"),
        &opts(),
    ));
    check(
        &r,
        Category::Ok,
        &[&password(&lab, "probe1"), &password(&lab, "probe2")],
    );
    let m = r.media.as_ref().expect("media");
    assert_eq!(m.echoed, m.sent, "{m:?}");
    assert!(r.trace.iter().any(|e| e.note.starts_with("callee")));
    // Media both ways: every packet reached the callee and was sent back by it.
    assert!(
        r.verdict
            .summary
            .contains(&format!("reflected {} packets", m.sent)),
        "{}",
        r.verdict.summary
    );
    // The callee's binding was removed again.
    assert!(
        lab.rpc("ul.lookup", serde_json::json!(["location", "probe2"]))
            .is_err()
    );
}
