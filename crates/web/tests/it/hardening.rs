//! Hardening: the unauthenticated routes stay bounded (metrics, login), uploads cannot forge
//! automated evidence, tokens expire and are revoked, and every response carries the security
//! headers.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tower::ServiceExt;

use crate::support::*;

async fn raw(app: &axum::Router, method: &str, path: &str) -> StatusCode {
    let req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).expect("method"))
        .uri(path)
        .body(Body::empty())
        .expect("request");
    app.clone().oneshot(req).await.expect("router").status()
}

#[tokio::test]
async fn metrics_stay_bounded_whatever_methods_and_paths_are_invented() {
    let app = sqlite_app().await;
    let r = app.router();
    // Every route class once, so the baseline holds the labels a normal day has.
    for (m, p) in [("GET", "/healthz"), ("GET", "/login"), ("GET", "/nope")] {
        raw(&r, m, p).await;
    }
    let before = send(&r, Method::GET, "/metrics", None, false, Payload::Empty).await;
    assert_eq!(before.status, StatusCode::OK);
    for i in 0..100 {
        let method = format!("X{}{}", "M".repeat(2000), i);
        let path = format!("/invented/{i}/{}", "p".repeat(1000));
        raw(&r, &method, &path).await;
        raw(&r, "GET", &format!("/incidents/{i}")).await;
    }
    let after = send(&r, Method::GET, "/metrics", None, false, Payload::Empty).await;
    assert_eq!(after.status, StatusCode::OK);
    assert!(
        !after.body.contains("MMMM") && !after.body.contains("/invented/"),
        "an invented method or path became a label"
    );
    assert!(after.body.contains("method=\"other\""), "{}", after.body);
    assert!(after.body.contains("route=\"/incidents/{id}\""));
    // Two new label sets at most (method other; the page route), each one histogram.
    let growth = after.body.len().saturating_sub(before.body.len());
    assert!(
        growth < 8 * 1024,
        "/metrics grew by {growth} bytes (from {} to {})",
        before.body.len(),
        after.body.len()
    );
}
