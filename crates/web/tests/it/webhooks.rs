//! Admin: webhook receivers saved in the page (checked in words, the secret never shown again,
//! audited without it), only for admins, and the delivery log with "Send again".

use axum::http::{Method, StatusCode};

use crate::support::*;

const SECRET: &str = "a-receiver-secret-1234";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_save_receivers_and_redeliver_from_the_log() {
    let app = sqlite_app().await;
    let admin = agent(&app, "admin", "admin").await;
    let l2 = agent(&app, "leo", "l2").await;
    let r = app.router();
    let id = open_incident(&r, &admin, "alice").await;

    let post = |who: &Agent, path: &str, pairs: Vec<(&str, &str)>| {
        let mut all = vec![("csrf", who.csrf.as_str())];
        all.extend(pairs);
        let payload = form(&all);
        let r = r.clone();
        let path = path.to_owned();
        let who = who.clone();
        async move { send(&r, Method::POST, &path, Some(&who), false, payload).await }
    };

    // Refused in words, what was typed kept (the secret never).
    let bad = post(
        &admin,
        "/admin/webhooks",
        vec![
            ("scope", "*"),
            ("url", "https://tickets.example/hook"),
            ("secret", SECRET),
        ],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        bad.body.contains("only http:// URLs are supported"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"https://tickets.example/hook\""));
    assert!(!bad.body.contains(SECRET));
    let short = post(
        &admin,
        "/admin/webhooks",
        vec![
            ("scope", "*"),
            ("url", "http://127.0.0.1:9/hook"),
            ("secret", "short"),
        ],
    )
    .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(
        short.body.contains("at least 16 characters"),
        "{}",
        short.body
    );

    // Saved for one runbook: listed with who saved it; the secret is not on the page.
    let ok = post(
        &admin,
        "/admin/webhooks",
        vec![
            ("scope", "user-cant-call"),
            ("url", "http://127.0.0.1:9/hook"),
            ("secret", SECRET),
            ("timeout", "2.5"),
        ],
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert!(ok.body.contains("Saved: events of"), "{}", ok.body);
    assert!(ok.body.contains("<code>http://127.0.0.1:9/hook</code>"));
    assert!(ok.body.contains("saved by admin"));
    assert!(!ok.body.contains(SECRET));
    let saved = app.store().webhook_targets().await.expect("targets");
    assert_eq!(saved.len(), 1);
    assert_eq!(
        (saved[0].scope.as_str(), saved[0].timeout_ms),
        ("user-cant-call", 2500)
    );
    let audit = app.store().audit_users().await.expect("audit");
    let line = audit
        .iter()
        .find(|a| a.action == "webhook.set")
        .expect("audited");
    assert_eq!(line.actor, "admin");
    assert!(!line.detail.to_string().contains(SECRET));

    // Not for an L2 engineer.
    let denied = send(
        &r,
        Method::GET,
        "/admin/webhooks",
        Some(&l2),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let denied = post(
        &l2,
        "/admin/webhooks",
        vec![
            ("scope", "*"),
            ("url", "http://127.0.0.1:9/x"),
            ("secret", SECRET),
        ],
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    assert_eq!(app.store().webhook_targets().await.unwrap().len(), 1);

    // The log lists the opening; "Send again" puts it back in line.
    let page = send(
        &r,
        Method::GET,
        "/admin/webhooks",
        Some(&admin),
        false,
        Payload::Empty,
    )
    .await;
    assert!(
        page.body.contains(&format!("href=\"/incidents/{id}\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("Opened"));
    let ev = app.store().outbox_log(10).await.unwrap();
    let ev = ev.iter().find(|e| e.incident_id == id).expect("event");
    let again = post(
        &admin,
        &format!("/admin/webhooks/{}/redeliver", ev.id),
        vec![],
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert!(
        again.body.contains("will be sent again now"),
        "{}",
        again.body
    );
    let trail = app.store().audit(id).await.expect("audit");
    assert!(
        trail
            .iter()
            .any(|a| a.action == "webhook.redeliver" && a.actor == "admin"),
        "the redelivery is in the incident's audit trail"
    );
    let missing = post(&admin, "/admin/webhooks/999999/redeliver", vec![]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // Removed.
    let gone = post(
        &admin,
        "/admin/webhooks/remove",
        vec![("scope", "user-cant-call")],
    )
    .await;
    assert_eq!(gone.status, StatusCode::OK);
    assert!(app.store().webhook_targets().await.unwrap().is_empty());
}
