//! Attachments shown as ladder diagrams, automated evidence kept in the path, and admins changing
//! a user's role: the pages and what they refuse.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

/// Decodes standard base64 (the test's own decoder, so the page's encoder is checked).
fn unbase64(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let s = s.as_bytes();
    if !s.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::new();
    for q in s.chunks(4) {
        let pad = q.iter().rev().take_while(|c| **c == b'=').count();
        let mut n = 0u32;
        for &c in &q[..4 - pad] {
            n = (n << 6) | val(c)?;
        }
        n <<= 6 * pad as u32;
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..3 - pad]);
    }
    Some(out)
}

/// Undoes HTML escaping (named and numeric character references), to read text as shown.
fn unescape(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';').filter(|e| *e <= 8) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix('#')
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The decoded `data:image/svg+xml;base64,` images of a page, in order.
fn images(html: &str) -> Vec<String> {
    const PREFIX: &str = "<img src=\"data:image/svg+xml;base64,";
    html.split(PREFIX)
        .skip(1)
        .map(|rest| {
            let b64 = &rest[..rest.find('"').expect("end of src")];
            String::from_utf8(unbase64(b64).expect("valid base64")).expect("utf-8 svg")
        })
        .collect()
}

async fn get(r: &axum::Router, path: &str, who: Option<&Agent>) -> Reply {
    send(r, Method::GET, path, who, false, Payload::Empty).await
}

#[test]
fn the_tests_base64_decoder_agrees_with_rfc4648_vectors() {
    // RFC 4648 §10.
    for (plain, enc) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(unbase64(enc).as_deref(), Some(plain.as_bytes()), "{enc}");
    }
}

#[tokio::test]
async fn attachments_are_shown_as_ladders_inside_images_never_as_markup() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let leo = agent(&app, "leo", "l2").await;
    let id = open_incident(&r, &lena, "1001").await;
    // Call-IDs of every length modulo 3 (base64 padding), one hostile.
    let hostile = "x\"><script>alert(1)</script>";
    let log = format!("Call-ID: a@b\nCall-ID: 1-9030@127.0.0.1\nCall-ID: {hostile}\n");
    let up = send(
        &r,
        Method::POST,
        &format!("/incidents/{id}/attachments"),
        Some(&lena),
        false,
        Payload::File {
            csrf: Some(lena.csrf.clone()),
            name: "client.log".to_owned(),
            bytes: log.into_bytes(),
        },
    )
    .await;
    assert_eq!(up.status, StatusCode::SEE_OTHER, "{}", up.body);
    let att = app.store().attachments(id).await.expect("list")[0].id;
    let view = format!("/incidents/{id}/attachments/{att}/view");

    // The step page and the timeline link to the view.
    for page in [
        format!("/incidents/{id}"),
        format!("/incidents/{id}/timeline"),
    ] {
        let p = get(&r, &page, Some(&lena)).await;
        assert_eq!(p.status, StatusCode::OK);
        assert!(p.body.contains(&format!("href=\"{view}\"")), "{page}");
    }

    // Both roles see the same analysis (as both may download the file).
    for who in [&lena, &leo] {
        let p = get(&r, &view, Some(who)).await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        let csp = p
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert!(csp.contains("img-src 'self' data:"), "{csp}");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(p.body.contains("3 call(s) in client.log"), "{}", p.body);
        assert!(!p.body.contains("<b>not bold"), "summary escaped");
        assert!(unescape(&p.body).contains("<b>not bold</b>"));
        assert!(p.body.contains("<code>1-9030@127.0.0.1</code>"));
        let imgs = images(&p.body);
        assert_eq!(
            imgs,
            vec![
                line_svg("a@b"),
                line_svg("1-9030@127.0.0.1"),
                line_svg(hostile)
            ]
        );
        // The SVG and the hostile Call-ID never appear as markup.
        assert!(!p.body.contains("<svg"), "{}", p.body);
        assert!(!p.body.contains("<script>alert"), "{}", p.body);
        assert!(unescape(&p.body).contains(&format!("<code>{hostile}</code>")));
    }

    // Not a file the viewer reads: its reason, no image, still the download link.
    let other = app
        .store()
        .add_attachment(id, "notes.txt", "text/plain", b"hello", "lena")
        .await
        .expect("attach")
        .id;
    let p = get(
        &r,
        &format!("/incidents/{id}/attachments/{other}/view"),
        Some(&lena),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("no SIP message in notes.txt"), "{}", p.body);
    assert!(images(&p.body).is_empty());
    assert!(p.body.contains(&format!("href=\"/attachments/{other}\"")));

    // Anonymous: to the login form. Another incident's attachment, or an unknown one: 404.
    let anon = get(&r, &view, None).await;
    assert_eq!(anon.status, StatusCode::SEE_OTHER);
    assert!(anon.location().starts_with("/login"));
    let id2 = open_incident(&r, &lena, "1002").await;
    let wrong = get(
        &r,
        &format!("/incidents/{id2}/attachments/{att}/view"),
        Some(&lena),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::NOT_FOUND);
    assert!(
        wrong
            .body
            .contains(&format!("incident {id2} has no attachment {att}"))
    );
    for path in [
        format!("/incidents/{id}/attachments/999999/view"),
        format!("/incidents/999999/attachments/{att}/view"),
    ] {
        assert_eq!(
            get(&r, &path, Some(&lena)).await.status,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let junk = get(
        &r,
        &format!("/incidents/{id}/attachments/abc/view"),
        Some(&lena),
    )
    .await;
    assert_eq!(junk.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_a_viewer_the_page_says_so_and_lists_no_ladder_links() {
    let base = sqlite_app().await;
    // Same store, no viewer: what `dialtone serve` would be without the captures crate.
    let state = web::AppState::new(
        config(),
        base.store().clone(),
        runbook::RunbookSet::builtin(),
        Some(table_checks()),
    );
    let r = web::router(state);
    let lena = agent(&base, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let att = base
        .store()
        .add_attachment(id, "call.log", "text/plain", b"Call-ID: a@b\n", "lena")
        .await
        .expect("attach")
        .id;
    let step = get(&r, &format!("/incidents/{id}"), Some(&lena)).await;
    assert!(step.body.contains(&format!("href=\"/attachments/{att}\"")));
    assert!(
        !step.body.contains("/view\""),
        "no ladder link without a viewer"
    );
    let p = get(
        &r,
        &format!("/incidents/{id}/attachments/{att}/view"),
        Some(&lena),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.body.contains("not configured on this server"),
        "{}",
        p.body
    );
    assert!(images(&p.body).is_empty());
}

#[tokio::test]
async fn files_above_the_upload_limit_are_not_analysed() {
    // The CLI can attach bigger files than the web form accepts; the page does not analyse them.
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    let mut big = b"Call-ID: big@host\n".to_vec();
    big.resize(UPLOAD_LIMIT + 1, b' ');
    let att = app
        .store()
        .add_attachment(id, "big.log", "text/plain", &big, "lena")
        .await
        .expect("attach")
        .id;
    let p = get(
        &r,
        &format!("/incidents/{id}/attachments/{att}/view"),
        Some(&lena),
    )
    .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.body.contains("larger than the"), "{}", p.body);
    assert!(
        p.body
            .contains("analyse it with dialtone&#39;s capture tool")
            || p.body
                .contains("analyse it with dialtone&#x27;s capture tool"),
        "{}",
        p.body
    );
    assert!(images(&p.body).is_empty());
}

#[tokio::test]
async fn the_path_keeps_each_automated_answers_evidence_collapsed_and_escaped() {
    let app = sqlite_app().await;
    let r = app.router();
    let lena = agent(&app, "lena", "l1").await;
    let id = open_incident(&r, &lena, "1001").await;
    // A conclusive check proposes an answer to l1.connection_status; the agent accepts it.
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
    // An agent's answer without evidence, then one through the API with hostile evidence.
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
            ("step", "l1.force_reconnection"),
            ("answer", "fine"),
        ]),
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let v = version(&r, &lena, id).await;
    let res = api(
        &r,
        Method::POST,
        &format!("/api/incidents/{id}/answer"),
        &lena,
        Some(json!({
            "version": v, "step": "l1.echo_call", "answer": "works",
            "evidence": { "seen": "<script>alert(2)</script>" }
        })),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);

    for page in [
        format!("/incidents/{id}"),
        format!("/incidents/{id}/timeline"),
    ] {
        let p = get(&r, &page, Some(&lena)).await;
        assert_eq!(p.status, StatusCode::OK);
        let details: Vec<&str> = p
            .body
            .split("<details class=\"path-evidence\"")
            .skip(1)
            .map(|d| &d[..d.find("</details>").expect("closed details")])
            .collect();
        assert_eq!(details.len(), 2, "{page}: the two answers with evidence");
        // Collapsed: no `open` attribute.
        assert!(details.iter().all(|d| d.starts_with('>')), "{page}");
        assert!(details[0].contains("Evidence from the automated check"));
        // Pretty JSON (one key per line), escaped.
        assert!(
            unescape(details[0]).contains("\n    \"account\": \"1001\""),
            "{}",
            details[0]
        );
        assert!(details[0].contains("l1.connection_status"));
        assert!(!details[1].contains("automated check"));
        assert!(unescape(details[1]).contains("\"seen\": \"<script>alert(2)</script>\""));
        assert!(!p.body.contains("<script>alert(2)"), "{page}");
    }
}

#[tokio::test]
async fn an_admin_changes_a_role_and_the_old_session_ends() {
    let app = sqlite_app().await;
    let r = app.router();
    let root = agent(&app, "root", "admin").await;
    let lena = agent(&app, "lena", "l1").await;
    let leo = agent(&app, "leo", "l2").await;

    // The admin page has a role form for others, not for oneself.
    let page = get(&r, "/admin", Some(&root)).await;
    assert!(page.body.contains("action=\"/admin/users/lena/role\""));
    assert!(!page.body.contains("action=\"/admin/users/root/role\""));

    let set = |who: &Agent, name: &str, role: &str| {
        let path = format!("/admin/users/{name}/role");
        let body = form(&[("csrf", &who.csrf), ("role", role)]);
        let r = r.clone();
        let who = who.clone();
        async move { send(&r, Method::POST, &path, Some(&who), false, body).await }
    };
    let role_of = |name: &'static str| {
        let store = app.store().clone();
        async move {
            store
                .user(name)
                .await
                .expect("lookup")
                .map(|u| u.role)
                .unwrap_or_default()
        }
    };

    // Refusals change nothing: the wrong role, a forged token, a bad role, oneself, nobody.
    let res = set(&leo, "lena", "admin").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let forged = Agent {
        csrf: "forged".to_owned(),
        ..root.clone()
    };
    assert_eq!(
        set(&forged, "lena", "l2").await.status,
        StatusCode::FORBIDDEN
    );
    let res = set(&root, "lena", "superuser").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body.contains("unknown role"), "{}", res.body);
    let res = set(&root, "root", "l1").await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(res.body.contains("you cannot change your own role"));
    let res = set(&root, "nobody", "l2").await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert!(res.body.contains("user nobody not found"));
    assert_eq!(role_of("lena").await, "l1");
    assert_eq!(role_of("root").await, "admin");
    let me = api(&r, Method::GET, "/api/me", &lena, None).await.json();
    assert_eq!(me["role"], "l1");

    // The change: a message, the new role, the old session gone, the API token on the new role.
    let res = set(&root, "lena", "L2").await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(
        res.body
            .contains("User lena is now L2 engineer (was L1 agent)"),
        "{}",
        res.body
    );
    assert_eq!(role_of("lena").await, "l2");
    let old = send(
        &r,
        Method::GET,
        "/queue/L2",
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(old.status, StatusCode::SEE_OTHER, "the old session ended");
    let me = api(&r, Method::GET, "/api/me", &lena, None).await.json();
    assert_eq!(me["role"], "l2");
    let again = login(&r, "lena").await;
    let q = send(
        &r,
        Method::GET,
        "/queue/L2",
        Some(&again),
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(q.status, StatusCode::OK);
    // The same role again is said so.
    let res = set(&root, "lena", "l2").await;
    assert!(
        res.body.contains("already has the role L2 engineer"),
        "{}",
        res.body
    );

    // Audited: who changed whom from what to what.
    let audit = app.store().audit_users().await.expect("audit");
    let changes: Vec<(String, String, String)> = audit
        .iter()
        .filter(|a| a.action == "user.role")
        .map(|a| {
            (
                a.actor.clone(),
                a.detail["from"].as_str().unwrap_or("").to_owned(),
                a.detail["to"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        vec![("root".to_owned(), "l1".to_owned(), "l2".to_owned())]
    );
}
