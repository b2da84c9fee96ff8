//! Shared set-up: a lab per test, targets and credentials from it, a runtime.

use sip_probe::{Category, Credentials, ProbeOptions, ProbeReport, ProbeTarget, Transport};
use std::time::Duration;
use testlab::Lab;

pub fn lab() -> Lab {
    Lab::start().unwrap_or_else(|e| panic!("lab did not start: {e}"))
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn target(lab: &Lab, transport: Transport) -> ProbeTarget {
    let port = match transport {
        Transport::Tls => lab.tls_port(),
        _ => lab.sip_port(),
    };
    let mut t = ProbeTarget::direct(&lab.ip().to_string(), port, transport, lab.domain());
    t.tls_trust = vec![lab.ca_cert()];
    t
}

pub fn creds(lab: &Lab, user: &str) -> Credentials {
    let a = lab
        .account(user)
        .unwrap_or_else(|| panic!("lab has no account {user}"));
    Credentials::new(&a.user, &a.password)
}

pub fn password(lab: &Lab, user: &str) -> String {
    lab.account(user)
        .map(|a| a.password.clone())
        .unwrap_or_default()
}

pub fn opts() -> ProbeOptions {
    ProbeOptions {
        timeout_total: Duration::from_secs(12),
        media_window: Duration::from_millis(1000),
        ..ProbeOptions::default()
    }
}

/// Asserts the category and that no secret of `secrets` leaks into the report (trace, JSON, ladder).
pub fn check(report: &ProbeReport, want: Category, secrets: &[&str]) {
    let ladder = sip_probe::ladder(report);
    eprintln!("{ladder}");
    assert_eq!(
        report.verdict.category, want,
        "verdict {:?}\n{ladder}",
        report.verdict
    );
    assert!(!report.verdict.summary.is_empty());
    let json = serde_json::to_string(report).expect("report serialises");
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        assert!(!json.contains(s), "secret leaked into the report JSON");
        assert!(!ladder.contains(s), "secret leaked into the ladder");
    }
    // Digest responses are always redacted in the trace.
    for e in &report.trace {
        if let Some(i) = e.text.find("response=") {
            assert!(
                e.text[i..].starts_with("response=\"<redacted>\""),
                "digest response not redacted:\n{}",
                e.text
            );
        }
    }
}
