//! Hygiene: request logs never carry passwords, cookies or tokens; user text is escaped in
//! pages; and the web crate stays off the SIP and diagnosis crates (the CLI plugs them in).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::{Method, StatusCode};

use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log of this test binary. A global subscriber (set once): a thread-local one misses events
/// whose callsites other tests, running in parallel, registered first.
fn captured() -> Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        captured
    })
    .clone()
}

#[tokio::test]
async fn logs_never_show_passwords_cookies_or_tokens() {
    let captured = captured();
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let page = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK);
    let bad = send(
        &r,
        Method::POST,
        "/login",
        None,
        false,
        form(&[
            ("username", "lena"),
            ("password", "Wrong-Secret-42"),
            ("csrf", "x"),
        ]),
    )
    .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let log = String::from_utf8_lossy(&captured.0.lock().expect("log").clone()).into_owned();
    assert!(
        log.contains("route=/incidents/{id}"),
        "request logs name the route: {log}"
    );
    assert!(log.contains("status=200"));
    let secrets = [
        lena.session.clone().unwrap_or_default(),
        lena.token.clone().unwrap_or_default(),
        lena.csrf.clone(),
        PASSWORD.to_owned(),
        "Wrong-Secret-42".to_owned(),
    ];
    for s in secrets {
        assert!(!s.is_empty());
        assert!(!log.contains(&s), "a secret reached the log");
    }
}

#[tokio::test]
async fn user_text_is_escaped_in_pages() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "<script>alert(1)</script>").await;
    for path in [
        format!("/incidents/{id}"),
        "/queue/L1?tab=mine".to_owned(),
        format!("/incidents/{id}?msg=%3Cb%3Ehi%3C/b%3E"),
    ] {
        let page = send(&r, Method::GET, &path, Some(&lena), false, Payload::Empty).await;
        assert!(
            !page.body.contains("<script>alert(1)</script>") && !page.body.contains("<b>hi</b>"),
            "{path}"
        );
        assert!(
            page.body.contains("&lt;script&gt;") || page.body.contains("&#60;script&#62;"),
            "{path}: {}",
            page.body
        );
    }
}

#[test]
fn web_depends_on_no_sip_or_diagnosis_crate() {
    let manifest = include_str!("../../Cargo.toml");
    let deps = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|s| s.split("\n[").next())
        .expect("a [dependencies] table");
    for banned in [
        "sip-message",
        "sip-probe",
        "captures",
        "server-state",
        "diagnosis",
        "testlab",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(banned)),
            "web must not depend on {banned}: the CLI plugs checks in through CheckRunner"
        );
    }
    assert!(deps.contains("incidents") && deps.contains("runbook"));
}
