//! OPTIONS and REGISTER verdicts from real lab conditions, over UDP, TCP and TLS.

use crate::helpers::*;
use sip_probe::{Category, Credentials, Direction, ProbeOptions, Transport};

#[test]
fn options_and_register_on_every_transport() {
    let lab = lab();
    let rt = rt();
    let pw = password(&lab, "alice");
    for transport in [Transport::Udp, Transport::Tcp, Transport::Tls] {
        let t = target(&lab, transport);
        let r = rt.block_on(sip_probe::options(&t, &opts()));
        check(&r, Category::Ok, &[]);
        assert_eq!(r.verdict.status, Some(200));
        assert_eq!(
            r.trace
                .iter()
                .filter(|e| e.direction == Direction::Received)
                .count(),
            1
        );
        assert_eq!(r.tls.is_some(), transport == Transport::Tls);
        if let Some(tls) = &r.tls {
            assert!(tls.verified, "{tls:?}");
        }

        let r = rt.block_on(sip_probe::register(&t, &creds(&lab, "alice"), &opts()));
        check(&r, Category::Ok, &[&pw]);
        // 401 challenge then 200, then the un-REGISTER of our binding (401 + 200 again).
        let statuses: Vec<&str> = r
            .trace
            .iter()
            .filter(|e| e.direction == Direction::Received)
            .map(|e| e.text.lines().next().unwrap_or(""))
            .collect();
        assert_eq!(
            statuses.first(),
            Some(&"SIP/2.0 401 Unauthorized"),
            "{statuses:?}"
        );
        assert!(statuses.contains(&"SIP/2.0 200 OK"), "{statuses:?}");
    }
    // The probe left no binding behind.
    assert!(
        lab.rpc("ul.lookup", serde_json::json!(["location", "alice"]))
            .is_err()
    );
}

#[test]
fn registration_is_visible_on_the_server_and_unregister_removes_it() {
    let lab = lab();
    let rt = rt();
    let t = target(&lab, Transport::Udp);
    let keep = ProbeOptions {
        keep_registration: true,
        ..opts()
    };
    let r = rt.block_on(sip_probe::register(&t, &creds(&lab, "bob"), &keep));
    check(&r, Category::Ok, &[]);
    let found = lab
        .rpc("ul.lookup", serde_json::json!(["location", "bob"]))
        .expect("bob is registered on the server");
    let local = &r.trace[0].local;
    assert!(
        found.to_string().contains(local.as_str()),
        "{found} lacks {local}"
    );
    let r = rt.block_on(sip_probe::unregister(&t, &creds(&lab, "bob"), &opts()));
    check(&r, Category::Ok, &[]);
    assert!(
        lab.rpc("ul.lookup", serde_json::json!(["location", "bob"]))
            .is_err()
    );
}

#[test]
fn wrong_password_unknown_and_removed_accounts() {
    let lab = lab();
    let rt = rt();
    let t = target(&lab, Transport::Udp);
    // (credentials, expected category, expected status)
    let cases = [
        (
            Credentials::new("alice", "not-the-password"),
            Category::AuthRejected,
            403,
        ),
        (
            Credentials::new("nosuchuser", "whatever"),
            Category::NotFound,
            404,
        ),
    ];
    for (c, want, status) in cases {
        let r = rt.block_on(sip_probe::register(&t, &c, &opts()));
        check(&r, want, &["not-the-password"]);
        assert_eq!(r.verdict.status, Some(status));
        assert!(
            r.verdict.summary.contains("Warning"),
            "{}",
            r.verdict.summary
        );
    }
    lab.fault("remove-account", &["carol"]).expect("fault");
    let r = rt.block_on(sip_probe::register(&t, &creds(&lab, "carol"), &opts()));
    check(&r, Category::NotFound, &[&password(&lab, "carol")]);
}

#[test]
fn stock_rechallenge_is_auth_rejected_after_bounded_rounds() {
    let lab = testlab::Lab::start_with(testlab::LabOptions {
        auth: testlab::AuthMode::Rechallenge401,
        digest: testlab::DigestAlgorithm::Sha256,
        ..testlab::LabOptions::default()
    })
    .expect("lab");
    let rt = rt();
    let t = target(&lab, Transport::Tcp);
    let r = rt.block_on(sip_probe::register(
        &t,
        &Credentials::new("alice", "wrong"),
        &opts(),
    ));
    check(&r, Category::AuthRejected, &["wrong\""]);
    let sent = r
        .trace
        .iter()
        .filter(|e| e.direction == Direction::Sent && e.bytes_len > 0)
        .count();
    assert_eq!(sent, 2, "one try, one answered challenge, then stop");
    // SHA-256 challenges are answered with SHA-256 (RFC 8760).
    let r = rt.block_on(sip_probe::register(&t, &creds(&lab, "dave"), &opts()));
    check(&r, Category::Ok, &[&password(&lab, "dave")]);
    assert!(r.trace.iter().any(|e| e.text.contains("algorithm=SHA-256")));
}

#[test]
fn blocked_transport_is_refused() {
    let lab = lab();
    let rt = rt();
    for (transport, word) in [(Transport::Udp, "udp"), (Transport::Tcp, "tcp")] {
        lab.fault("block-transport", &[word]).expect("fault");
        let r = rt.block_on(sip_probe::options(&target(&lab, transport), &opts()));
        check(&r, Category::Refused, &[]);
        lab.fault("unblock-transport", &[word]).expect("fault");
        let r = rt.block_on(sip_probe::options(&target(&lab, transport), &opts()));
        check(&r, Category::Ok, &[]);
    }
}
