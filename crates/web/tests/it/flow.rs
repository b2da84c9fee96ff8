//! Handler tests for the incident flow: pages and API, from opening to closing, with checks,
//! attachments, queues, administration, login, health and metrics.

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn runbook_walks_through_the_api_end_where_the_runbook_says() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let text = include_str!("../../test_data/flows.txt");
    let mut checked = 0;
    for line in text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let (answers, expected) = line.split_once('|').expect("answers | expected");
        let id = open_incident(&r, &lena, "flow-acc").await;
        let steps: Vec<(&str, &str)> = answers
            .split_whitespace()
            .map(|a| a.split_once('=').expect("step=answer"))
            .collect();
        walk(&r, &lena, id, &steps).await;
        let got = api(
            &r,
            Method::GET,
            &format!("/api/incidents/{id}"),
            &lena,
            None,
        )
        .await
        .json();
        let next = &got["next"];
        let exp: Vec<&str> = expected.split_whitespace().collect();
        match exp.as_slice() {
            ["ask", step] => assert_eq!(next["step"], *step, "{line}: {next}"),
            ["close", outcome] => {
                assert_eq!(next["kind"], "close", "{line}: {next}");
                assert_eq!(next["outcome"], *outcome, "{line}");
            }
            ["escalate", level, kind] => {
                assert_eq!(next["kind"], "escalate", "{line}: {next}");
                assert_eq!(next["level"], *level, "{line}");
                assert_eq!(next["escalation_kind"], *kind, "{line}");
            }
            ["redirect", runbook] => {
                // Redirects are followed: the next question is in the other runbook.
                assert_eq!(next["kind"], "ask", "{line}: {next}");
                assert_eq!(next["runbook"], *runbook, "{line}");
            }
            other => panic!("bad expectation {other:?}"),
        }
        // The timeline holds the gate answers and every answer given, in order.
        let recorded = api(
            &r,
            Method::GET,
            &format!("/api/incidents/{id}/steps"),
            &lena,
            None,
        )
        .await
        .json();
        let names: Vec<&str> = recorded
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["step"].as_str().expect("step"))
            .collect();
        let mut want = vec!["gate.operational_requirements", "gate.client_error"];
        want.extend(steps.iter().map(|(s, _)| *s));
        assert_eq!(names, want, "{line}");
        checked += 1;
    }
    assert_eq!(checked, 7);
}

#[tokio::test]
async fn l1_opens_walks_and_escalates_then_l2_takes_and_closes_through_the_pages() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let leo = agent(&app, "leo", "l2").await;

    let opened = send(
        &r,
        Method::POST,
        "/incidents",
        Some(&lena),
        false,
        form(&[
            ("csrf", &lena.csrf),
            ("account", "1001"),
            ("reporter", "Mario Rossi"),
            ("description", "calls fail since this morning"),
            ("runbook", "user-cant-call"),
            ("gate.gate.operational_requirements", "no"),
            ("gate.gate.client_error", "none"),
        ]),
    )
    .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER, "{}", opened.body);
    let path = opened.location().to_owned();
    let id: i64 = path.trim_start_matches("/incidents/").parse().expect("id");

    // The step page: question, the words to read, the answers, the automated check button.
    let page = send(&r, Method::GET, &path, Some(&lena), false, Payload::Empty).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("l1.connection_status"), "{}", page.body);
    assert!(page.body.contains("Read to the user"));
    assert!(page.body.contains("Run automated check"));
    assert!(page.body.contains("name=\"answer\" value=\"connected\""));

    for (step, answer) in [
        ("l1.connection_status", "connected"),
        ("l1.force_reconnection", "fine"),
        ("l1.echo_call", "fails"),
    ] {
        let v = version(&r, &lena, id).await;
        let res = send(
            &r,
            Method::POST,
            &format!("/incidents/{id}/answer"),
            Some(&lena),
            false,
            form(&[
                ("csrf", &lena.csrf),
                ("version", &v.to_string()),
                ("step", step),
                ("answer", answer),
                ("note", "asked on the phone"),
            ]),
        )
        .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{step}: {}", res.body);
        assert!(res.location().starts_with(&format!("/incidents/{id}?msg=")));
    }
    // The runbook now escalates: the page offers it, the escalate page shows the dossier.
    let page = send(&r, Method::GET, &path, Some(&lena), false, Payload::Empty).await;
    assert!(
        page.body.contains("The runbook escalates to L2"),
        "{}",
        page.body
    );
    let upload = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/attachments"),
        Some(&lena),
        false,
        Payload::File {
            csrf: Some(lena.csrf.clone()),
            name: "client.log".into(),
            bytes: b"REGISTER sip:example.org SIP/2.0\r\n".to_vec(),
        },
    )
    .await;
    assert_eq!(upload.status, StatusCode::SEE_OTHER, "{}", upload.body);
    let esc = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}/escalate"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(esc.status, StatusCode::OK);
    assert!(
        esc.body
            .contains("option value=\"server_status_check\" selected"),
        "{}",
        esc.body
    );
    assert!(esc.body.contains("client.log"));
    assert!(esc.body.contains("l1.echo_call"));
    let v = version(&r, &lena, id).await;
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/escalate"),
        Some(&lena),
        false,
        form(&[
            ("csrf", &lena.csrf),
            ("version", &v.to_string()),
            ("to_level", "L2"),
            ("kind", "server_status_check"),
            ("reason", "the echo test fails"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);

    // L2's escalated queue has it; L1 can no longer work it.
    let q = send(
        &r,
        Method::GET,
        "/queue/L2?tab=escalated",
        Some(&leo),
        false,
        Payload::Empty,
    )
    .await;
    assert!(q.body.contains(&format!("/incidents/{id}\"")), "{}", q.body);
    assert!(q.body.contains("Server status check"));
    let page = send(&r, Method::GET, &path, Some(&lena), false, Payload::Empty).await;
    assert!(!page.body.contains("name=\"answer\""));

    let v = version(&r, &leo, id).await;
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/take"),
        Some(&leo),
        false,
        form(&[("csrf", &leo.csrf), ("version", &v.to_string())]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let mine = send(
        &r,
        Method::GET,
        "/queue/L2?tab=mine",
        Some(&leo),
        false,
        Payload::Empty,
    )
    .await;
    assert!(mine.body.contains(&format!("/incidents/{id}\"")));
    let page = send(&r, Method::GET, &path, Some(&leo), false, Payload::Empty).await;
    assert!(page.body.contains("l2.server_services"), "{}", page.body);
    assert!(
        page.body
            .contains("Escalated from L1 by lena: the echo test fails"),
        "the escalation reason is part of the dossier"
    );

    for (step, answer) in [
        ("l2.server_services", "fine"),
        ("l2.network_status", "problem"),
    ] {
        let v = version(&r, &leo, id).await;
        let res = send(
            &r,
            Method::POST,
            &format!("/incidents/{id}/answer"),
            Some(&leo),
            false,
            form(&[
                ("csrf", &leo.csrf),
                ("version", &v.to_string()),
                ("step", step),
                ("answer", answer),
            ]),
        )
        .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{step}: {}", res.body);
    }
    let page = send(&r, Method::GET, &path, Some(&leo), false, Payload::Empty).await;
    assert!(
        page.body
            .contains("name=\"outcome\" value=\"network_problem\""),
        "{}",
        page.body
    );
    let v = version(&r, &leo, id).await;
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/close"),
        Some(&leo),
        false,
        form(&[
            ("csrf", &leo.csrf),
            ("version", &v.to_string()),
            ("outcome", "network_problem"),
            ("note", "NAT fixed"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let got = api(&r, Method::GET, &format!("/api/incidents/{id}"), &leo, None)
        .await
        .json();
    assert_eq!(got["incident"]["status"], "closed");
    assert_eq!(got["incident"]["outcome"], "network_problem");

    // The timeline and audit trail tell the whole story, with who did what.
    let tl = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}/timeline"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(tl.status, StatusCode::OK);
    for needle in [
        "l1.echo_call",
        "l2.network_status",
        "Escalated",
        "Closed",
        "Took the incident",
        "lena",
        "leo",
    ] {
        assert!(tl.body.contains(needle), "timeline lacks {needle}");
    }
    let audit = api(
        &r,
        Method::GET,
        &format!("/api/incidents/{id}/audit"),
        &leo,
        None,
    )
    .await
    .json();
    let actions: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .map(|a| a["action"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(actions.first(), Some(&"open"));
    assert_eq!(actions.last(), Some(&"close"));
    assert!(
        actions.contains(&"escalate") && actions.contains(&"attachment"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn automated_checks_answer_conclusive_steps_and_keep_inconclusive_evidence() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    // Conclusive (the table says connected): on the page the check proposes; nothing is
    // answered until the agent accepts.
    let v = version(&r, &lena, id).await;
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/check"),
        Some(&lena),
        false,
        form(&[("csrf", &lena.csrf), ("version", &v.to_string())]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(
        version(&r, &lena, id).await,
        v,
        "a proposal answers nothing"
    );
    let page = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}?msg=Check"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert!(
        page.body
            .contains("The automated check proposes: Connected"),
        "{}",
        page.body
    );
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/accept"),
        Some(&lena),
        false,
        form(&[
            ("csrf", &lena.csrf),
            ("version", &v.to_string()),
            ("step", "l1.connection_status"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let steps = api(
        &r,
        Method::GET,
        &format!("/api/incidents/{id}/steps"),
        &lena,
        None,
    )
    .await
    .json();
    let last = steps
        .as_array()
        .and_then(|s| s.last())
        .cloned()
        .expect("a step");
    assert_eq!(last["step"], "l1.connection_status");
    assert_eq!(last["answer"], "connected");
    assert_eq!(last["source"], "automated");
    assert_eq!(last["proposed"], "connected");
    assert_eq!(last["actor"], "lena");
    assert_eq!(last["evidence"]["evidence"]["account"], "1001");

    // Inconclusive (no table entry for force_reconnection): kept as evidence, step still asked.
    let v = version(&r, &lena, id).await;
    let res = api(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/check"),
        &lena,
        Some(json!({ "version": v })),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.json()["recorded"], false);
    let page = send(
        &r,
        Method::GET,
        &format!("/incidents/{id}"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert!(page.body.contains("automated check"), "{}", page.body);
    assert!(page.body.contains("1001: nothing conclusive"));
    assert!(page.body.contains("l1.force_reconnection"));

    // A failing check: the agent is told why, nothing is answered.
    walk(&r, &lena, id, &[("l1.force_reconnection", "fine")]).await;
    let v = version(&r, &lena, id).await;
    let res = api(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/check"),
        &lena,
        Some(json!({ "version": v })),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert!(
        res.json()["outcome"]["summary"]
            .as_str()
            .unwrap_or("")
            .contains("probe account is not configured")
    );
    let detail = api(
        &r,
        Method::GET,
        &format!("/api/incidents/{id}"),
        &lena,
        None,
    )
    .await
    .json();
    assert_eq!(detail["next"]["step"], "l1.echo_call");
    // Check durations are measured.
    let m = send(&r, Method::GET, "/metrics", None, false, Payload::Empty).await;
    assert!(
        m.body.contains(
            "dialtone_check_duration_seconds_count{step=\"l1.connection_status\",result=\"done\"} 1"
        ),
        "{}",
        m.body
    );
    assert!(m.body.contains("result=\"error\""));
}

#[tokio::test]
async fn attachments_round_trip_through_pages_and_api() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let content = b"INVITE sip:echo@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1\r\n".to_vec();
    let res = send(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/attachments"),
        Some(&lena),
        true,
        Payload::File {
            csrf: None,
            name: "../../etc/capture.log".into(),
            bytes: content.clone(),
        },
    )
    .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    let att = res.json();
    assert_eq!(att["name"], "capture.log", "path components are dropped");
    assert_eq!(att["size"], content.len());
    let list = api(
        &r,
        Method::GET,
        &format!("/api/incidents/{id}/attachments"),
        &lena,
        None,
    )
    .await
    .json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let aid = att["id"].as_i64().expect("id");
    for (path, bearer) in [
        (format!("/attachments/{aid}"), false),
        (format!("/api/attachments/{aid}"), true),
    ] {
        let dl = send(&r, Method::GET, &path, Some(&lena), bearer, Payload::Empty).await;
        assert_eq!(dl.status, StatusCode::OK);
        assert_eq!(dl.body.as_bytes(), content.as_slice());
        let cd = dl
            .headers
            .get(header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(cd, "attachment; filename=\"capture.log\"");
    }
}

#[tokio::test]
async fn queues_filter_by_tab_and_account() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let a = open_incident(&r, &lena, "alice-100").await;
    let b = open_incident(&r, &lena, "bob-200").await;
    let v = version(&r, &lena, b).await;
    let res = send(
        &r,
        Method::POST,
        &format!("/incidents/{b}/status"),
        Some(&lena),
        false,
        form(&[
            ("csrf", &lena.csrf),
            ("version", &v.to_string()),
            ("status", "waiting_user"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let table = [
        // The agent who opens an incident has it: nothing is "new" (unassigned).
        ("/queue/L1?tab=new", vec![], vec![a, b]),
        ("/queue/L1?tab=waiting", vec![b], vec![a]),
        ("/queue/L1?tab=all&account=ALICE", vec![a], vec![b]),
        ("/queue/L1?tab=all&account=bob", vec![b], vec![a]),
        ("/queue/L1?tab=mine", vec![], vec![a, b]),
        ("/queue/L2?tab=escalated", vec![], vec![a, b]),
    ];
    let leo = agent(&app, "leo", "l2").await;
    for (path, present, absent) in table {
        let page = send(&r, Method::GET, path, Some(&leo), false, Payload::Empty).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        for id in present {
            assert!(
                page.body.contains(&format!("/incidents/{id}\"")),
                "{path} lacks {id}"
            );
        }
        for id in absent {
            assert!(
                !page.body.contains(&format!("/incidents/{id}\"")),
                "{path} has {id}"
            );
        }
    }
    let bad = send(
        &r,
        Method::GET,
        "/queue/L1?tab=bogus",
        Some(&leo),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("unknown queue tab bogus"));
}

#[tokio::test]
async fn admin_manages_users_and_tokens() {
    let app = sqlite_app().await;
    let r = app.router();
    let root = agent(&app, "root", "admin").await;
    let page = send(
        &r,
        Method::GET,
        "/admin",
        Some(&root),
        false,
        Payload::Empty,
    )
    .await;
    assert!(
        page.body.contains("127.0.0.1:5060"),
        "the server configuration is shown"
    );
    assert!(page.body.contains("sqlite"));
    let res = send(
        &r,
        Method::POST,
        "/admin/users",
        Some(&root),
        false,
        form(&[
            ("csrf", &root.csrf),
            ("username", "nina"),
            ("password", PASSWORD),
            ("role", "l2"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(res.body.contains("User nina added."));
    let nina = login(&r, "nina").await;
    let me = send(
        &r,
        Method::GET,
        "/api/me",
        Some(&nina),
        false,
        Payload::Empty,
    )
    .await
    .json();
    assert_eq!(me["role"], "l2");
    // Bad input on the form: a clear reason, no user.
    let res = send(
        &r,
        Method::POST,
        "/admin/users",
        Some(&root),
        false,
        form(&[
            ("csrf", &root.csrf),
            ("username", "x y"),
            ("password", PASSWORD),
            ("role", "l1"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(app.store().user("x y").await.expect("lookup").is_none());
    // Disabling ends what the user can do, at once (sessions are checked on every request).
    let res = send(
        &r,
        Method::POST,
        "/admin/users/nina/disable",
        Some(&root),
        false,
        form(&[("csrf", &root.csrf), ("disabled", "true")]),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    let me = send(
        &r,
        Method::GET,
        "/api/me",
        Some(&nina),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    // A token is shown once, and works as a bearer token.
    let res = send(
        &r,
        Method::POST,
        "/admin/tokens",
        Some(&root),
        false,
        form(&[
            ("csrf", &root.csrf),
            ("username", "root"),
            ("label", "monitoring"),
        ]),
    )
    .await;
    let i = res.body.find("dt_").expect("token shown");
    let token: String = res.body[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let script = Agent {
        token: Some(token),
        ..Agent::default()
    };
    let me = api(&r, Method::GET, "/api/me", &script, None).await.json();
    assert_eq!(me["username"], "root");
}

#[tokio::test]
async fn login_logout_and_cookie_attributes() {
    let mut app = sqlite_app().await;
    app.user("lena", "l1").await;
    let r = app.router();
    let lena = login(&r, "lena").await;
    // Wrong password: 401 and the form again.
    let page = send(&r, Method::GET, "/login", None, false, Payload::Empty).await;
    let c = set_cookie(&page, "dialtone_login").expect("cookie");
    let csrf = scrape_csrf(&page.body).expect("csrf");
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::COOKIE, format!("dialtone_login={c}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    req = req.header("x-test", "1");
    let body = urlencode(&[
        ("username".into(), "lena".into()),
        ("password".into(), "wrong".into()),
        ("csrf".into(), csrf),
    ]);
    let res = tower::ServiceExt::oneshot(
        r.clone(),
        req.body(axum::body::Body::from(body)).expect("req"),
    )
    .await
    .expect("router");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(
        res.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .all(|v| !v.to_str().unwrap_or("").starts_with("dialtone_session="))
    );

    // Logging out ends the session server-side.
    let res = send(
        &r,
        Method::POST,
        "/logout",
        Some(&lena),
        false,
        form(&[("csrf", &lena.csrf)]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let after = send(
        &r,
        Method::GET,
        "/queue/L1",
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location().starts_with("/login"));

    // Cookie attributes: HttpOnly, SameSite=Lax, and Secure when configured.
    for secure in [false, true] {
        let mut cfg = config();
        cfg.secure_cookies = secure;
        let store = app.store().clone();
        app.state = web::AppState::new(cfg, store, runbook::RunbookSet::builtin(), None);
        let page = send(
            &app.router(),
            Method::GET,
            "/login",
            None,
            false,
            Payload::Empty,
        )
        .await;
        let sc: Vec<String> = page
            .headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap_or("").to_owned())
            .collect();
        assert!(
            sc.iter()
                .all(|c| c.contains("HttpOnly") && c.contains("SameSite=Lax")),
            "{sc:?}"
        );
        assert_eq!(sc.iter().all(|c| c.contains("; Secure")), secure, "{sc:?}");
        let agent = login(&app.router(), "lena").await;
        assert!(agent.session.is_some());
    }
}

#[tokio::test]
async fn health_metrics_and_runbook_api() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    open_incident(&r, &lena, "1001").await;
    let h = send(&r, Method::GET, "/healthz", None, false, Payload::Empty).await;
    assert_eq!((h.status, h.body.as_str()), (StatusCode::OK, "ok\n"));
    let m = send(&r, Method::GET, "/metrics", None, false, Payload::Empty).await;
    assert!(
        m.body
            .contains("dialtone_incidents{level=\"L1\",status=\"open\"} 1"),
        "{}",
        m.body
    );
    assert!(m.body.contains("dialtone_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/incidents\",status=\"2xx\",le=\"+Inf\"} 1"), "{}", m.body);
    assert!(m.body.contains("route=\"/healthz\""));
    let list = api(&r, Method::GET, "/api/runbooks", &lena, None)
        .await
        .json();
    let ids: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"user-cant-call") && ids.contains(&"connection-issues"),
        "{ids:?}"
    );
    let one = api(&r, Method::GET, "/api/runbooks/user-cant-call", &lena, None)
        .await
        .json();
    assert!(
        one["mermaid"]
            .as_str()
            .unwrap_or("")
            .contains("l1.echo_call")
            || one["mermaid"].as_str().unwrap_or("").contains("echo")
    );
    assert_eq!(one["runbook"]["start"], "gate.operational_requirements");
}

#[tokio::test]
async fn checks_see_the_incidents_attachments() {
    let app = sqlite_app().await;
    let r = app.router();
    let root = agent(&app, "root", "admin").await;
    let id = l2_incident(&r, &root, "1001").await;
    walk(
        &r,
        &root,
        id,
        &[
            ("l2.server_services", "fine"),
            ("l2.network_status", "fine"),
        ],
    )
    .await;
    async fn check(r: &axum::Router, who: &Agent, id: i64) -> Reply {
        let v = version(r, who, id).await;
        let path = format!("/api/incidents/{id}/check");
        api(r, Method::POST, &path, who, Some(json!({ "version": v }))).await
    }
    // No attachment yet: the runbook asks the step again (the incident waits for a log).
    let res = check(&r, &root, id).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert_eq!(res.json()["outcome"]["answer"], "no_attachment");
    let detail = api(
        &r,
        Method::GET,
        &format!("/api/incidents/{id}"),
        &root,
        None,
    )
    .await
    .json();
    assert_eq!(detail["next"]["step"], "l2.client_logs");
    let up = send(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/attachments"),
        Some(&root),
        true,
        Payload::File {
            csrf: None,
            name: "client.log".into(),
            bytes: b"SIP/2.0 401 Unauthorized\r\n".to_vec(),
        },
    )
    .await;
    assert_eq!(up.status, StatusCode::CREATED);
    let res = check(&r, &root, id).await;
    assert_eq!(
        res.json()["outcome"]["answer"],
        "authentication_failure",
        "{}",
        res.body
    );
    assert_eq!(
        res.json()["outcome"]["evidence"]["read"],
        json!(["client.log"])
    );
    let detail = api(
        &r,
        Method::GET,
        &format!("/api/incidents/{id}"),
        &root,
        None,
    )
    .await
    .json();
    assert_eq!(detail["next"]["kind"], "close");
    assert_eq!(detail["next"]["outcome"], "authentication_failure");
}
