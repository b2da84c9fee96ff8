//! Two app instances on one PostgreSQL database: agents on each answer the same incident at once;
//! the second write gets a conflict, nothing is lost, and both see the same timeline.

use axum::http::{Method, StatusCode};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_same_incident() {
    let app_a = pg_app().await;
    let state_b = app_a.sibling().await;
    let ra = app_a.router();
    let rb = web::router(state_b);
    app_a.user("lena", "l1").await;
    app_a.user("luca", "l1").await;
    let lena = login(&ra, "lena").await; // on instance A
    let luca = login(&rb, "luca").await; // on instance B
    assert_eq!(lena.session.is_some(), luca.session.is_some());

    // API: both answer the same step from the same version at the same time.
    let mut lena_api = lena.clone();
    lena_api.token = Some(
        web::create_api_token(app_a.store(), "lena", "t")
            .await
            .expect("token"),
    );
    let mut luca_api = luca.clone();
    luca_api.token = Some(
        web::create_api_token(app_a.store(), "luca", "t")
            .await
            .expect("token"),
    );
    let id = open_incident(&ra, &lena_api, "1001").await;
    let v = version(&rb, &luca_api, id).await;
    let path = format!("/api/incidents/{id}/answer");
    let (a, b) = tokio::join!(
        api(
            &ra,
            Method::POST,
            &path,
            &lena_api,
            Some(
                json!({"version": v, "step": "l1.connection_status", "answer": "connected", "note": "lena"})
            )
        ),
        api(
            &rb,
            Method::POST,
            &path,
            &luca_api,
            Some(
                json!({"version": v, "step": "l1.connection_status", "answer": "not_connected", "note": "luca"})
            )
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::CONFLICT],
        "a: {} b: {}",
        a.body,
        b.body
    );
    let loser = if a.status == StatusCode::CONFLICT {
        &a
    } else {
        &b
    };
    assert_eq!(loser.json()["current_version"], v + 1, "{}", loser.body);
    let winner_answer = if a.status == StatusCode::OK {
        "connected"
    } else {
        "not_connected"
    };

    // Both instances show one record, the winner's, and the same timeline.
    let steps_a = api(
        &ra,
        Method::GET,
        &format!("/api/incidents/{id}/steps"),
        &lena_api,
        None,
    )
    .await
    .json();
    let steps_b = api(
        &rb,
        Method::GET,
        &format!("/api/incidents/{id}/steps"),
        &luca_api,
        None,
    )
    .await
    .json();
    assert_eq!(steps_a, steps_b);
    let l1: Vec<&serde_json::Value> = steps_a
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["step"] == "l1.connection_status")
        .collect();
    assert_eq!(l1.len(), 1);
    assert_eq!(l1[0]["answer"], winner_answer);

    // Pages: the same race through the forms; the loser sees the conflict message and the note.
    let v = version(&ra, &lena_api, id).await;
    let page = |r: axum::Router, who: Agent, answer: &'static str, note: &'static str| async move {
        send(
            &r,
            Method::POST,
            &format!("/incidents/{id}/answer"),
            Some(&who),
            false,
            form(&[
                ("csrf", &who.csrf),
                ("version", &v.to_string()),
                ("step", "l1.force_reconnection"),
                ("answer", answer),
                ("note", note),
            ]),
        )
        .await
    };
    let (a, b) = tokio::join!(
        page(ra.clone(), lena.clone(), "fine", "lena says fine"),
        page(
            rb.clone(),
            luca.clone(),
            "connection_problem",
            "luca says problem"
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::SEE_OTHER, StatusCode::CONFLICT]);
    let (loser, loser_note) = if a.status == StatusCode::CONFLICT {
        (&a, "lena says fine")
    } else {
        (&b, "luca says problem")
    };
    assert!(loser.body.contains("was not recorded"), "{}", loser.body);
    assert!(
        loser.body.contains(loser_note),
        "the loser's note is kept on the page"
    );
    let tl_a = send(
        &ra,
        Method::GET,
        &format!("/incidents/{id}/timeline"),
        Some(&lena),
        false,
        Payload::Empty,
    )
    .await;
    let tl_b = send(
        &rb,
        Method::GET,
        &format!("/incidents/{id}/timeline"),
        Some(&luca),
        false,
        Payload::Empty,
    )
    .await;
    let table = |html: &str| html[html.find("<h2>Steps</h2>").unwrap_or(0)..].to_owned();
    assert_eq!(table(&tl_a.body), table(&tl_b.body));
    let steps = api(
        &rb,
        Method::GET,
        &format!("/api/incidents/{id}/steps"),
        &luca_api,
        None,
    )
    .await
    .json();
    assert_eq!(
        steps.as_array().map(Vec::len),
        Some(4),
        "gate x2 + two winners: {steps}"
    );
    assert_eq!(app_a.store().backend(), "postgres");
}
