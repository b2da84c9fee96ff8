//! Bad input: forged CSRF tokens, expired sessions, oversized uploads, unknown incidents, the
//! wrong role, stale versions and malformed bodies get the right status and message, and
//! nothing changes.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::support::*;

/// The incident as the API shows it, and its step records: what "nothing changed" compares.
async fn snapshot(
    r: &axum::Router,
    who: &Agent,
    id: i64,
) -> (serde_json::Value, serde_json::Value, usize) {
    let inc = api(r, Method::GET, &format!("/api/incidents/{id}"), who, None)
        .await
        .json();
    let steps = api(
        r,
        Method::GET,
        &format!("/api/incidents/{id}/steps"),
        who,
        None,
    )
    .await
    .json();
    let atts = api(
        r,
        Method::GET,
        &format!("/api/incidents/{id}/attachments"),
        who,
        None,
    )
    .await
    .json();
    (
        inc["incident"].clone(),
        steps,
        atts.as_array().map_or(0, Vec::len),
    )
}

#[tokio::test]
async fn forged_or_missing_csrf_is_refused_and_changes_nothing() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let before = snapshot(&r, &lena, id).await;
    let v = version(&r, &lena, id).await.to_string();
    let forged = "0".repeat(64);
    let cases: Vec<(Method, String, Payload)> = vec![
        (
            Method::POST,
            format!("/incidents/{id}/answer"),
            form(&[
                ("csrf", &forged),
                ("version", &v),
                ("step", "l1.connection_status"),
                ("answer", "connected"),
            ]),
        ),
        (
            Method::POST,
            format!("/incidents/{id}/answer"),
            form(&[
                ("version", &v),
                ("step", "l1.connection_status"),
                ("answer", "connected"),
            ]),
        ),
        (
            Method::POST,
            format!("/incidents/{id}/escalate"),
            form(&[("csrf", &forged), ("version", &v), ("reason", "x")]),
        ),
        (
            Method::POST,
            format!("/incidents/{id}/status"),
            form(&[
                ("csrf", &forged),
                ("version", &v),
                ("status", "waiting_user"),
            ]),
        ),
        (
            Method::POST,
            format!("/incidents/{id}/attachments"),
            Payload::File {
                csrf: Some(forged.clone()),
                name: "a.log".into(),
                bytes: b"x".to_vec(),
            },
        ),
        (
            Method::POST,
            format!("/incidents/{id}/attachments"),
            Payload::File {
                csrf: None,
                name: "a.log".into(),
                bytes: b"x".to_vec(),
            },
        ),
        (
            Method::POST,
            "/incidents".to_owned(),
            form(&[("csrf", &forged), ("account", "2"), ("reporter", "x")]),
        ),
        // The API with a session cookie (a browser) needs the x-csrf-token header on writes.
        (
            Method::POST,
            format!("/api/incidents/{id}/answer"),
            Payload::Json(
                json!({"version": v.parse::<i64>().unwrap_or(0), "step": "l1.connection_status", "answer": "connected"}),
            ),
        ),
    ];
    for (method, path, payload) in cases {
        let res = send(&r, method, &path, Some(&lena), false, payload).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{path}: {}", res.body);
        assert!(res.body.contains("CSRF"), "{path}: {}", res.body);
    }
    assert_eq!(snapshot(&r, &lena, id).await, before);
    let all = api(&r, Method::GET, "/api/incidents", &lena, None)
        .await
        .json();
    assert_eq!(
        all.as_array().map(Vec::len),
        Some(1),
        "no incident was opened"
    );
    // The login form has its own double-submit token.
    let res = send(
        &r,
        Method::POST,
        "/login",
        None,
        false,
        form(&[
            ("username", "lena"),
            ("password", PASSWORD),
            ("csrf", &forged),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(set_cookie(&res, "dialtone_session").is_none());
}

#[tokio::test]
async fn expired_sessions_go_back_to_login_or_get_401() {
    let app = sqlite_app().await;
    app.user("lena", "l1").await;
    let r = app.router();
    let token = "a".repeat(64);
    let hash = {
        use sha2::Digest;
        sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    app.store()
        .create_session(
            &hash,
            "lena",
            chrono::Utc::now() - chrono::Duration::seconds(5),
        )
        .await
        .expect("session");
    let stale = Agent {
        name: "lena".into(),
        session: Some(token),
        ..Agent::default()
    };
    let page = send(
        &r,
        Method::GET,
        "/queue/L1",
        Some(&stale),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.location(), "/login?expired=1");
    let login = send(
        &r,
        Method::GET,
        page.location(),
        None,
        false,
        Payload::Empty,
    )
    .await;
    assert!(login.body.contains("session expired"));
    let apires = send(
        &r,
        Method::GET,
        "/api/incidents",
        Some(&stale),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(apires.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        apires.json()["error"],
        "not logged in, or the session expired"
    );
    // A garbage bearer token is no better.
    let bogus = Agent {
        token: Some("dt_nope".into()),
        ..Agent::default()
    };
    let res = api(&r, Method::GET, "/api/me", &bogus, None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn oversized_uploads_get_413_with_a_message_and_store_nothing() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let big = vec![b'x'; UPLOAD_LIMIT + 1];
    let ok = vec![b'y'; UPLOAD_LIMIT];
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/attachments"),
        Some(&lena),
        false,
        Payload::File {
            csrf: Some(lena.csrf.clone()),
            name: "huge.pcap".into(),
            bytes: big.clone(),
        },
    )
    .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
    assert!(
        res.body.contains("larger than the limit of 65536 bytes"),
        "{}",
        res.body
    );
    let res = send(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/attachments"),
        Some(&lena),
        true,
        Payload::File {
            csrf: None,
            name: "huge.pcap".into(),
            bytes: big.repeat(3),
        },
    )
    .await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        res.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("larger than the limit")
    );
    assert_eq!(snapshot(&r, &lena, id).await.2, 0);
    // Exactly at the limit is accepted.
    let res = send(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/attachments"),
        Some(&lena),
        true,
        Payload::File {
            csrf: None,
            name: "edge.pcap".into(),
            bytes: ok,
        },
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
}

#[tokio::test]
async fn unknown_incidents_and_attachments_are_404_with_a_reason() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    for path in [
        "/incidents/424242",
        "/incidents/424242/timeline",
        "/incidents/424242/escalate",
        "/attachments/99",
    ] {
        let res = send(&r, Method::GET, path, Some(&lena), false, Payload::Empty).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(res.body.contains("not found"), "{path}: {}", res.body);
    }
    for path in [
        "/api/incidents/424242",
        "/api/incidents/424242/steps",
        "/api/incidents/424242/audit",
        "/api/attachments/99",
    ] {
        let res = api(&r, Method::GET, path, &lena, None).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            res.json()["error"]
                .as_str()
                .unwrap_or("")
                .contains("not found"),
            "{path}"
        );
    }
    let res = api(
        &r,
        Method::POST,
        "/api/incidents/424242/answer",
        &lena,
        Some(json!({"version": 1, "step": "l1.connection_status", "answer": "connected"})),
    )
    .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    // A non-numeric id is bad input, not a crash.
    let res = api(&r, Method::GET, "/api/incidents/abc", &lena, None).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_wrong_role_is_refused_and_nothing_changes() {
    let app = sqlite_app().await;
    let r = app.router();
    let root = agent(&app, "root", "admin").await;
    let lena = agent(&app, "lena", "l1").await;
    let id = l2_incident(&r, &root, "1001").await;
    walk(&r, &root, id, &[("l2.server_services", "failure")]).await;
    let before = snapshot(&r, &root, id).await;
    let v = version(&r, &root, id).await;
    // An L1 agent cannot close an L2 escalation, on the page or through the API.
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/close"),
        Some(&lena),
        false,
        form(&[("csrf", &lena.csrf), ("version", &v.to_string())]),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(
        res.body.contains("your role does not allow this"),
        "{}",
        res.body
    );
    let res = api(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/close"),
        &lena,
        Some(json!({"version": v})),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(
        res.json()["error"],
        "your role does not allow this: working an L2 incident"
    );
    // Nor manage users.
    let res = send(
        &r,
        Method::POST,
        "/admin/users",
        Some(&lena),
        false,
        form(&[
            ("csrf", &lena.csrf),
            ("username", "mallory"),
            ("password", PASSWORD),
            ("role", "admin"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(app.store().user("mallory").await.expect("lookup").is_none());
    assert_eq!(snapshot(&r, &root, id).await, before);
}

#[tokio::test]
async fn stale_versions_and_wrong_answers_are_refused_with_reasons() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let v = version(&r, &lena, id).await;
    let table: Vec<(serde_json::Value, StatusCode, &str)> = vec![
        (
            json!({"version": v - 1, "step": "l1.connection_status", "answer": "connected"}),
            StatusCode::CONFLICT,
            "someone else changed this incident",
        ),
        (
            json!({"version": v, "step": "l1.echo_call", "answer": "works"}),
            StatusCode::CONFLICT,
            "the runbook now asks l1.connection_status",
        ),
        (
            json!({"version": v, "step": "l1.connection_status", "answer": "maybe"}),
            StatusCode::BAD_REQUEST,
            "maybe is not an answer of l1.connection_status",
        ),
    ];
    let before = snapshot(&r, &lena, id).await;
    for (body, status, reason) in table {
        let res = api(
            &r,
            Method::POST,
            &format!("/api/incidents/{id}/answer"),
            &lena,
            Some(body.clone()),
        )
        .await;
        assert_eq!(res.status, status, "{body}: {}", res.body);
        assert!(
            res.json()["error"].as_str().unwrap_or("").contains(reason),
            "{body}: {}",
            res.body
        );
    }
    // Malformed JSON and missing fields are 4xx, never a 500.
    for raw in ["{", "{\"version\": \"x\"}", "[]"] {
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri(format!("/api/incidents/{id}/answer"))
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", lena.token.clone().unwrap_or_default()),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(raw))
            .expect("req");
        let res = tower::ServiceExt::oneshot(r.clone(), req)
            .await
            .expect("router");
        assert!(res.status().is_client_error(), "{raw}: {}", res.status());
    }
    // Closing before the runbook reached an outcome is a conflict with a reason.
    let res = api(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/close"),
        &lena,
        Some(json!({"version": v})),
    )
    .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(
        res.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("the runbook has reached no outcome yet")
    );
    assert_eq!(snapshot(&r, &lena, id).await, before);

    // On the page, a stale answer shows the conflict and keeps the note.
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/answer"),
        Some(&lena),
        false,
        form(&[
            ("csrf", &lena.csrf),
            ("version", &(v - 1).to_string()),
            ("step", "l1.connection_status"),
            ("answer", "connected"),
            ("note", "user on 4G, retried twice"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.body.contains("was not recorded"), "{}", res.body);
    assert!(res.body.contains("user on 4G, retried twice"));
    assert_eq!(snapshot(&r, &lena, id).await, before);
}
