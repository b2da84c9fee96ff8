//! The pages as a support team reads them: words from the runbooks instead of ids, what to tell
//! the user when escalating, a capture's calls filtered by the incident's account, and admin
//! refusals that keep the page and what was typed.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use web::{AttachmentLadder, AttachmentView, AttachmentViewer, CaptureRow};

use crate::support::*;

async fn get(r: &axum::Router, path: &str, who: Option<&Agent>) -> Reply {
    send(r, Method::GET, path, who, false, Payload::Empty).await
}

/// The page's text without its tags and attribute values (what a reader sees, roughly).
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn queue_escalate_and_timeline_speak_the_runbooks_words() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let leo = agent(&app, "leo", "l2").await;
    let id = open_incident(&r, &lena, "1001").await;
    walk(&r, &lena, id, L1_TO_ECHO).await;
    walk(&r, &lena, id, &[("l1.echo_call", "fails")]).await;

    // The escalate page: the level and kind in words, and the runbook's words for the user.
    let set = runbook::RunbookSet::builtin();
    let (_, echo) = set.step("l1.echo_call").expect("step");
    let words = echo
        .answer("fails")
        .and_then(|a| a.tell_user.clone())
        .expect("the escalating answer has words for the user");
    let page = get(&r, &format!("/incidents/{id}/escalate"), Some(&lena)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let text = visible(&page.body);
    assert!(text.contains(&words), "{text}");
    assert!(text.contains("Tell the user while it is worked"), "{text}");
    assert!(text.contains("Server status check"), "{text}");
    assert!(text.contains("Second level (L2)"), "{text}");
    for id in [
        "l1.echo_call",
        "server_status_check",
        "user_configuration_check",
    ] {
        assert!(
            !text.contains(id),
            "{id} shown on the escalate page: {text}"
        );
    }

    let v = version(&r, &lena, id).await;
    let esc = api(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/escalate"),
        &lena,
        Some(serde_json::json!({ "version": v, "reason": "echo test fails" })),
    )
    .await;
    assert_eq!(esc.status, StatusCode::OK, "{}", esc.body);

    // The L2 queue: the current step's title, the status and the kind in words.
    let q = get(&r, "/queue/L2?tab=escalated", Some(&leo)).await;
    let text = visible(&q.body);
    assert!(text.contains("Server services"), "{text}");
    assert!(text.contains("Server status check"), "{text}");
    assert!(text.contains("Escalated"), "{text}");
    for raw in ["l2.server_services", "server_status_check"] {
        assert!(!text.contains(raw), "{raw} shown in the queue: {text}");
    }
    // The step id stays available to engineers, as a tooltip.
    assert!(
        q.body
            .contains("title=\"Step id (for engineers): l2.server_services\"")
    );

    // The timeline: answers and audit entries in words; raw records behind a toggle.
    let t = get(&r, &format!("/incidents/{id}/timeline"), Some(&leo)).await;
    let text = visible(&t.body);
    assert!(
        text.contains("Call the echo service: It fails (agent)"),
        "{text}"
    );
    assert!(
        text.contains("Answered a step") && text.contains("Escalated"),
        "{text}"
    );
    assert!(t.body.contains("Raw record (for engineers)"));
}

/// A viewer that finds the same calls in any file: alice's failed and answered calls, a
/// challenged registration of hers, and a call between two other users.
struct CallsViewer;

impl AttachmentViewer for CallsViewer {
    fn view(&self, _: &str, _: &str, _: &[u8]) -> Result<AttachmentView, String> {
        let row = |id: &str, from: &str, to: &str, result: &str, failed: bool| CaptureRow {
            call_id: id.to_owned(),
            registration: false,
            start: format!("12:00:0{}", id.len() % 10),
            from: from.to_owned(),
            to: to.to_owned(),
            user_agent: "PrivateGSM 9".to_owned(),
            result: result.to_owned(),
            failed,
            cause: if failed {
                "the callee is offline".to_owned()
            } else {
                String::new()
            },
            accounts: vec![from.to_owned(), to.to_owned()],
        };
        let rows = vec![
            row("ok-1", "alice", "bob", "200 OK", false),
            row("other-1", "carol", "dave", "486 Busy Here", true),
            row(
                "fail-1",
                "alice",
                "erin",
                "480 Temporarily Unavailable",
                true,
            ),
        ];
        let ladders = rows
            .iter()
            .map(|r| AttachmentLadder {
                call_id: r.call_id.clone(),
                label: format!("{} -> {}", r.from, r.to),
                svg: line_svg(&r.call_id),
            })
            .collect();
        Ok(AttachmentView {
            kind: "pcap".to_owned(),
            summary: "fixed-width dump".to_owned(),
            ladders,
            input: "1234 bytes, 9 SIP messages over 2.0 s".to_owned(),
            rows,
            findings: vec!["alice's call to erin failed: 480".to_owned()],
            warnings: Vec::new(),
        })
    }
}

#[tokio::test]
async fn a_capture_shows_the_accounts_calls_failed_first_with_a_jump_to_each_ladder() {
    let mut app = sqlite_app().await;
    app.state = app.state.clone().with_viewer(Arc::new(CallsViewer));
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "alice").await;
    let up = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/attachments"),
        Some(&lena),
        false,
        Payload::File {
            csrf: Some(lena.csrf.clone()),
            name: "phone.pcap".to_owned(),
            bytes: b"not really a capture".to_vec(),
        },
    )
    .await;
    assert_eq!(up.status, StatusCode::SEE_OTHER, "{}", up.body);
    let att = app.store().attachments(id).await.expect("list")[0].id;
    let view = format!("/incidents/{id}/attachments/{att}/view");

    let p = get(&r, &view, Some(&lena)).await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    // A table, not the text dump; only alice's calls, the failed one first.
    assert!(!p.body.contains("fixed-width dump"));
    assert!(p.body.contains("<table class=\"list calls\">"));
    let fail = p
        .body
        .find("480 Temporarily Unavailable")
        .expect("failed call");
    let ok = p.body.find("200 OK").expect("answered call");
    assert!(fail < ok, "failed calls first");
    assert!(
        !p.body.contains("486 Busy Here"),
        "another account's call is filtered out"
    );
    assert!(p.body.contains("Show all 3 in the file"));
    // Each row jumps to its ladder, and the ladders follow the table's order.
    assert!(p.body.contains("href=\"#ladder-1\"") && p.body.contains("id=\"ladder-1\""));
    assert!(p.body.contains("href=\"#ladder-2\"") && p.body.contains("id=\"ladder-2\""));
    let l1 = p.body.find("id=\"ladder-1\"").expect("ladder 1");
    assert!(p.body[l1..].starts_with("id=\"ladder-1\" data-call-id=\"fail-1\""));
    assert_eq!(p.body.matches("<figure").count(), 2);

    // Everything on demand: the other account's call too.
    let all = get(&r, &format!("{view}?all=1"), Some(&lena)).await;
    assert!(all.body.contains("486 Busy Here"));
    assert_eq!(all.body.matches("<figure").count(), 3);
    assert!(all.body.contains("Show only those of alice (2)"));
}

#[tokio::test]
async fn admin_refusals_keep_the_page_and_nobody_locks_themselves_out() {
    let app = sqlite_app().await;
    let r = app.router();
    let root = agent(&app, "root", "admin").await;
    let _lena = agent(&app, "lena", "l1").await;

    let page = get(&r, "/admin", Some(&root)).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = visible(&page.body);
    // The role once per user, in words; what each role may do; no disable button for oneself.
    assert!(text.contains("What each role may do"), "{text}");
    assert!(text.contains("Everything an L2 engineer may do"), "{text}");
    assert!(!page.body.contains("action=\"/admin/users/root/disable\""));
    assert!(page.body.contains("action=\"/admin/users/lena/disable\""));
    assert_eq!(page.body.matches("aria-label=\"Role of lena\"").count(), 1);

    // A duplicate user: the admin page again, with the reason and the name typed.
    let dup = send(
        &r,
        Method::POST,
        "/admin/users",
        Some(&root),
        false,
        form(&[
            ("csrf", &root.csrf),
            ("username", "lena"),
            ("password", "long enough pw"),
            ("role", "l2"),
        ]),
    )
    .await;
    assert_eq!(dup.status, StatusCode::BAD_REQUEST);
    assert!(dup.body.contains("Log out"), "inside the normal layout");
    assert!(
        dup.body.contains("a user named lena already exists"),
        "{}",
        dup.body
    );
    assert!(
        dup.body
            .contains("name=\"username\" required value=\"lena\"")
    );
    assert!(dup.body.contains("<option value=\"l2\" selected>"));
    assert!(
        !dup.body.contains("long enough pw"),
        "the password is never sent back"
    );

    // Disabling oneself (a forged form: the page has no such button) is refused on the page.
    let me = send(
        &r,
        Method::POST,
        "/admin/users/root/disable",
        Some(&root),
        false,
        form(&[("csrf", &root.csrf), ("disabled", "true")]),
    )
    .await;
    assert_eq!(me.status, StatusCode::BAD_REQUEST);
    assert!(me.body.contains("you cannot disable your own account"));
    assert!(me.body.contains("<h1>Administration</h1>"));
    let users = app.store().users().await.expect("users");
    assert!(users.iter().all(|u| !u.disabled), "nobody was disabled");

    // An unknown incident is an error page inside the layout, with a way back.
    let missing = get(&r, "/incidents/987654", Some(&root)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Not found"));
    assert!(missing.body.contains("href=\"/\""));
    assert!(missing.body.contains("/static/style.css"));
}

#[tokio::test]
async fn a_refused_login_keeps_the_user_name_and_never_the_password() {
    use axum::body::Body;
    use axum::http::{Request, header};
    use tower::ServiceExt;

    let app = sqlite_app().await;
    app.user("lena", "l1").await;
    let r = app.router();
    let page = get(&r, "/login", None).await;
    let cookie = set_cookie(&page, "dialtone_login").expect("login cookie");
    let csrf = scrape_csrf(&page.body).expect("csrf");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::COOKIE, format!("dialtone_login={cookie}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(urlencode(&[
            ("username".into(), "lena".into()),
            ("password".into(), "not her password 42".into()),
            ("csrf".into(), csrf),
        ])))
        .expect("request");
    let res = r.oneshot(req).await.expect("router");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("value=\"lena\""), "{body}");
    assert!(body.contains("Wrong user name or password"));
    assert!(!body.contains("not her password 42"));
}
