//! The lead's reports page: only leads and admins see it; charts are SVG images; each report
//! downloads as CSV and JSON with the page's filters; the API and /metrics give the same figures.
//! And the search box on every page.

use axum::http::{Method, StatusCode};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leads_read_reports_as_page_csv_json_and_metrics() {
    let app = sqlite_app().await;
    let admin = agent(&app, "admin", "admin").await;
    let lead = agent(&app, "lina", "lead").await;
    let l2 = agent(&app, "leo", "l2").await;
    let r = app.router();
    // Two incidents closed: one at L1, one after an escalation to L2; one still open.
    let a = open_incident(&r, &admin, "acc-a").await;
    let b = l2_incident(&r, &admin, "acc-b").await;
    let _open = open_incident(&r, &admin, "acc-c").await;
    for (id, outcome) in [(a, "not_an_issue"), (b, "server_problem")] {
        let inc = app.store().get(id).await.expect("incident");
        app.store()
            .close(id, inc.version, outcome, None, "admin")
            .await
            .expect("close");
    }

    // The page: leads and admins only; the nav links it for them alone.
    let page = send(
        &r,
        Method::GET,
        "/reports",
        Some(&lead),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    for title in [
        "Time to resolve",
        "Time at each level",
        "First-level resolution",
        "Escalations per step",
        "Outcomes over time",
        "Automation",
        "Automated answers agents override",
    ] {
        assert!(page.body.contains(title), "missing {title}");
    }
    assert!(
        page.body
            .contains("<img class=\"chart\" src=\"data:image/svg+xml,")
    );
    assert!(
        page.body.contains("href=\"/reports\""),
        "nav link for the lead"
    );
    assert!(
        page.body.contains("<td>50.00%</td>"),
        "first-level rate 1 of 2"
    );
    let admin_page = send(
        &r,
        Method::GET,
        "/reports",
        Some(&admin),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(admin_page.status, StatusCode::OK);
    let denied = send(
        &r,
        Method::GET,
        "/reports",
        Some(&l2),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN);
    let l2_queue = send(
        &r,
        Method::GET,
        "/queue/L2",
        Some(&l2),
        false,
        Payload::Empty,
    )
    .await;
    assert!(!l2_queue.body.contains("href=\"/reports\""));
    // A lead works L2 incidents too.
    let lead_queue = send(
        &r,
        Method::GET,
        "/queue/L2",
        Some(&lead),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(lead_queue.status, StatusCode::OK);

    // CSV and JSON downloads carry the page's filters.
    let csv = send(
        &r,
        Method::GET,
        "/reports/first-level.csv",
        Some(&lead),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert_eq!(
        csv.body,
        "closed,closed_at_l1,escalated_then_closed,rate\r\n2,1,1,0.5\r\n"
    );
    let csv_l2 = send(
        &r,
        Method::GET,
        "/reports/first-level.csv?level=L2",
        Some(&lead),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(
        csv_l2.body,
        "closed,closed_at_l1,escalated_then_closed,rate\r\n1,0,1,0.0\r\n"
    );
    let json = send(
        &r,
        Method::GET,
        "/reports/outcomes.json",
        Some(&lead),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(json.status, StatusCode::OK);
    let j = json.json();
    assert_eq!(j["report"], "outcomes");
    let mut outcomes: Vec<(String, i64)> = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["outcome"].as_str().unwrap().to_owned(),
                row["incidents"].as_i64().unwrap(),
            )
        })
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec![
            ("(open)".to_owned(), 1),
            ("not_an_issue".to_owned(), 1),
            ("server_problem".to_owned(), 1)
        ]
    );
    let none = send(
        &r,
        Method::GET,
        "/reports/nope.csv",
        Some(&lead),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    let bad = send(
        &r,
        Method::GET,
        "/reports?from=yesterday",
        Some(&lead),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // The API: bearer tokens, JSON or CSV.
    let list = api(&r, Method::GET, "/api/reports", &lead, None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.json().as_array().map(Vec::len), Some(7));
    let esc = api(&r, Method::GET, "/api/reports/escalations", &lead, None).await;
    assert_eq!(esc.status, StatusCode::OK, "{}", esc.body);
    let rows = esc.json()["rows"].as_array().cloned().unwrap();
    let step = rows
        .iter()
        .find(|row| row["by"] == "step")
        .expect("a step row");
    assert_eq!(
        step["name"], "l1.echo_call",
        "escalated right after the echo call's answer"
    );
    assert_eq!(step["escalations"], 1);
    let csv = api(
        &r,
        Method::GET,
        "/api/reports/automation?format=csv",
        &lead,
        None,
    )
    .await;
    assert!(
        csv.body.starts_with("source,answers,share\r\n"),
        "{}",
        csv.body
    );
    let l2_api = api(&r, Method::GET, "/api/reports/automation", &l2, None).await;
    assert_eq!(l2_api.status, StatusCode::FORBIDDEN);
    let bad_level = api(
        &r,
        Method::GET,
        "/api/reports/outcomes?level=L7",
        &lead,
        None,
    )
    .await;
    assert_eq!(bad_level.status, StatusCode::BAD_REQUEST);
    assert!(bad_level.json()["error"].as_str().unwrap().contains("L7"));

    // /metrics: the time-to-resolve histogram from the same columns.
    let m = send(&r, Method::GET, "/metrics", None, false, Payload::Empty).await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(
        m.body.contains("dialtone_incident_resolve_seconds_count 2"),
        "{}",
        m.body
    );
    assert!(
        m.body
            .contains("dialtone_incident_resolve_seconds_bucket{le=\"300\"} 2")
    );
    assert!(
        m.body
            .contains("dialtone_incidents{level=\"L2\",status=\"closed\"} 1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_search_box_finds_incidents_by_number_and_by_a_word_in_a_note() {
    let app = sqlite_app().await;
    let admin = agent(&app, "admin", "admin").await;
    let l1 = agent(&app, "lena", "l1").await;
    let r = app.router();
    let a = open_incident(&r, &admin, "390655512345").await;
    let b = open_incident(&r, &admin, "carol").await;
    let inc = app.store().get(b).await.unwrap();
    app.store()
        .record_step(
            b,
            inc.version,
            incidents::NewStepRecord {
                runbook: "user-cant-call".into(),
                step: "l1.connection_status".into(),
                answer: "connected".into(),
                source: "agent".into(),
                evidence: serde_json::Value::Null,
                note: Some("the Milano office firewall drops RTP".into()),
                proposed: None,
            },
            None,
            "admin",
        )
        .await
        .unwrap();
    let escalated = l2_incident(&r, &admin, "milano-l2").await;
    // The box is on every page.
    let queue = send(
        &r,
        Method::GET,
        "/queue/L1",
        Some(&l1),
        false,
        Payload::Empty,
    )
    .await;
    assert!(
        queue.body.contains("action=\"/search\""),
        "search box in the layout"
    );
    let by_number = send(
        &r,
        Method::GET,
        "/search?q=390655512345",
        Some(&l1),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(by_number.status, StatusCode::OK);
    assert!(
        by_number.body.contains(&format!("href=\"/incidents/{a}\"")),
        "{}",
        by_number.body
    );
    assert!(!by_number.body.contains(&format!("href=\"/incidents/{b}\"")));
    let by_note = send(
        &r,
        Method::GET,
        "/search?q=firewall",
        Some(&l1),
        false,
        Payload::Empty,
    )
    .await;
    assert!(by_note.body.contains(&format!("href=\"/incidents/{b}\"")));
    assert!(!by_note.body.contains(&format!("href=\"/incidents/{a}\"")));
    // An L1 agent does not find the L2 escalation; an admin does.
    let l1_milano = api(&r, Method::GET, "/api/search?q=milano", &l1, None).await;
    let ids: Vec<i64> = l1_milano
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![b]);
    let admin_milano = api(&r, Method::GET, "/api/search?q=milano", &admin, None).await;
    let ids: Vec<i64> = admin_milano
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![escalated, b]);
    // A bad filter: the page says why; the API answers 400.
    let bad = send(
        &r,
        Method::GET,
        "/search?q=colour:red",
        Some(&l1),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(bad.status, StatusCode::OK);
    assert!(bad.body.contains("unknown search filter colour:"));
    let bad = api(&r, Method::GET, "/api/search?q=colour:red", &l1, None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
