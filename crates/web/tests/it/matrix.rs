//! The role x route matrix (test_data/role_matrix.txt): each role, and anonymous, against each
//! route, on fresh fixtures per cell, with the expected status.

use axum::http::{Method, StatusCode};

use crate::support::*;

struct Row {
    line: usize,
    method: Method,
    path: String,
    expected: [u16; 4],
    body: String,
}

fn rows() -> Vec<Row> {
    let text = include_str!("../../test_data/role_matrix.txt");
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        assert!(f.len() >= 7, "line {}: 7 columns expected: {line}", i + 1);
        let method = Method::from_bytes(f[0].as_bytes()).expect("method");
        let expected = [f[2], f[3], f[4], f[5]].map(|s| s.parse::<u16>().expect("status"));
        out.push(Row {
            line: i + 1,
            method,
            path: f[1].to_owned(),
            expected,
            body: f[6..].join(" "),
        });
    }
    out
}

struct Fixtures {
    l1: i64,
    l1done: i64,
    l2: i64,
    l2done: i64,
    att: i64,
}

async fn fixtures(app: &TestApp, admin: &Agent) -> Fixtures {
    let r = app.router();
    let l1 = open_incident(&r, admin, "acc-l1").await;
    let l1done = open_incident(&r, admin, "acc-l1done").await;
    walk(&r, admin, l1done, L1_TO_ECHO).await;
    walk(
        &r,
        admin,
        l1done,
        &[("l1.echo_call", "works"), ("l1.call_other_user", "yes")],
    )
    .await;
    let l2 = l2_incident(&r, admin, "acc-l2").await;
    let l2done = l2_incident(&r, admin, "acc-l2done").await;
    walk(&r, admin, l2done, &[("l2.server_services", "failure")]).await;
    let att = app
        .store()
        .add_attachment(l1, "client.log", "text/plain", b"REGISTER 401", "admin")
        .await
        .expect("attachment")
        .id;
    Fixtures {
        l1,
        l1done,
        l2,
        l2done,
        att,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_route() {
    let app = sqlite_app().await;
    let admin = agent(&app, "admin", "admin").await;
    let l1 = agent(&app, "lena", "l1").await;
    let l2 = agent(&app, "leo", "l2").await;
    let router = app.router();
    let mut failures = Vec::new();
    let rows = rows();
    assert!(rows.len() > 50, "the matrix lost rows");
    for row in &rows {
        for (col, who) in [None, Some(&l1), Some(&l2), Some(&admin)]
            .into_iter()
            .enumerate()
        {
            // Fresh fixtures per cell, so one cell's change cannot decide another's status.
            let fx = if row.path.contains('{') {
                fixtures(&app, &admin).await
            } else {
                Fixtures {
                    l1: 0,
                    l1done: 0,
                    l2: 0,
                    l2done: 0,
                    att: 0,
                }
            };
            let needs_victim =
                row.path.contains("/admin/users/victim") || row.path == "/admin/tokens";
            if needs_victim && app.store().user("victim").await.expect("user").is_none() {
                app.user("victim", "l1").await;
            }
            // Logging out ends the session: use a fresh one for that row.
            let who_owned = match (who, row.path.as_str()) {
                (Some(a), "/logout") => Some(login(&router, &a.name).await),
                (Some(a), _) => Some(a.clone()),
                (None, _) => None,
            };
            let who = who_owned.as_ref();
            let path = row
                .path
                .replace("{l1done}", &fx.l1done.to_string())
                .replace("{l2done}", &fx.l2done.to_string())
                .replace("{l1}", &fx.l1.to_string())
                .replace("{l2}", &fx.l2.to_string())
                .replace("{att}", &fx.att.to_string());
            let target = [
                ("{l1done}", fx.l1done),
                ("{l2done}", fx.l2done),
                ("{l1}", fx.l1),
                ("{l2}", fx.l2),
            ]
            .into_iter()
            .find(|(k, _)| row.path.contains(k))
            .map(|(_, id)| id);
            let v = match target {
                Some(id) => version(&router, &admin, id).await,
                None => 0,
            };
            let csrf = who.map(|a| a.csrf.clone()).unwrap_or_default();
            let body = row
                .body
                .replace("{v}", &v.to_string())
                .replace("{csrf}", &csrf);
            let api = path.starts_with("/api/");
            let payload = if body == "-" {
                Payload::Empty
            } else if body == "@file" {
                Payload::File {
                    csrf: Some(csrf.clone()),
                    name: "client.log".to_owned(),
                    bytes: b"SIP/2.0 403 Forbidden".to_vec(),
                }
            } else if body.starts_with('{') {
                Payload::Json(serde_json::from_str(&body).expect("json body"))
            } else {
                Payload::Form(
                    body.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.replace('+', " ")))
                        .collect(),
                )
            };
            let reply = send(&router, row.method.clone(), &path, who, api, payload).await;
            let want = row.expected[col];
            if reply.status.as_u16() != want {
                failures.push(format!(
                    "line {}: {} {} as {}: got {}, expected {want}: {}",
                    row.line,
                    row.method,
                    row.path,
                    who.map_or("anonymous", |a| a.name.as_str()),
                    reply.status.as_u16(),
                    reply.body.chars().take(200).collect::<String>()
                ));
            }
            if reply.status == StatusCode::FORBIDDEN && api {
                assert!(reply.json()["error"].is_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cells differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
