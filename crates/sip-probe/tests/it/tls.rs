//! TLS findings: a trusted, an untrusted, an expired certificate and no trust anchor.

use crate::helpers::*;
use sip_probe::{Category, ProbeTarget, Transport};

#[test]
fn certificate_findings() {
    let lab = lab();
    let rt = rt();
    let good = target(&lab, Transport::Tls);
    let r = rt.block_on(sip_probe::options(&good, &opts()));
    check(&r, Category::Ok, &[]);
    let info = r.tls.expect("tls info");
    assert!(info.verified && info.error.is_none());
    assert!(!info.subject.is_empty() && !info.issuer.is_empty() && !info.not_after.is_empty());
    assert!(info.protocol.is_some());

    let unreadable = ProbeTarget {
        tls_trust: vec![lab.run_dir().join("no-such-ca.pem")],
        ..good.clone()
    };
    let r = rt.block_on(sip_probe::options(&unreadable, &opts()));
    check(&r, Category::Tls, &[]);
    assert!(
        r.verdict.summary.contains("trust anchor"),
        "{}",
        r.verdict.summary
    );

    let no_anchor = ProbeTarget {
        tls_trust: vec![],
        ..good.clone()
    };
    let r = rt.block_on(sip_probe::options(&no_anchor, &opts()));
    check(&r, Category::Tls, &[]);
    assert!(
        r.verdict.summary.contains("no trust anchor"),
        "{}",
        r.verdict.summary
    );

    // (fault, words expected in the finding)
    for (fault, words) in [("tls-untrusted", "unknown CA"), ("tls-expired", "expired")] {
        lab.fault(fault, &[]).expect("fault");
        let r = rt.block_on(sip_probe::options(&good, &opts()));
        check(&r, Category::Tls, &[]);
        let info = r
            .tls
            .as_ref()
            .expect("certificate captured even though the handshake failed");
        assert!(!info.verified);
        assert!(
            info.error.as_deref().unwrap_or("").contains(words),
            "{info:?}"
        );
        assert!(r.verdict.summary.contains(words), "{}", r.verdict.summary);
        assert!(
            r.trace.iter().all(|e| e.bytes_len == 0),
            "nothing sent over an unverified channel"
        );
        if fault == "tls-expired" {
            assert!(info.not_after.starts_with("2020-02-01"), "{info:?}");
        }
        // With insecure_continue the probe goes on: the finding stays, and SIP is answered.
        let past = ProbeTarget {
            insecure_continue: true,
            ..good.clone()
        };
        let r = rt.block_on(sip_probe::options(&past, &opts()));
        check(&r, Category::Tls, &[]);
        assert_eq!(r.verdict.status, Some(200), "{:?}", r.verdict);
        assert!(r.verdict.summary.contains("going on past it"));
        lab.fault("tls-restore", &[]).expect("fault");
    }
}
