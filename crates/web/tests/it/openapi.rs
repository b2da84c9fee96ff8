//! The OpenAPI document covers every /api route of the router, and every path it documents is
//! served.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};

use crate::support::*;

/// The (method, path) pairs of /api routes, read from the router's source.
fn routes() -> BTreeSet<(String, String)> {
    let src = include_str!("../../src/lib.rs");
    let mut out = BTreeSet::new();
    for chunk in src.split(".route(").skip(1) {
        let Some(rest) = chunk.trim_start().strip_prefix('"') else {
            continue;
        };
        let Some(end) = rest.find('"') else { continue };
        let path = &rest[..end];
        if !path.starts_with("/api/") {
            continue;
        }
        for m in ["get", "post", "put", "delete", "patch"] {
            if rest.contains(&format!("{m}(")) {
                out.insert((m.to_owned(), path.to_owned()));
            }
        }
    }
    out
}

#[tokio::test]
async fn every_api_route_is_documented_and_every_documented_path_is_served() {
    let app = sqlite_app().await;
    let r = app.router();
    let doc = send(
        &r,
        Method::GET,
        "/api/openapi.json",
        None,
        false,
        Payload::Empty,
    )
    .await;
    assert_eq!(doc.status, StatusCode::OK);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().unwrap_or("").starts_with("3."));
    let routes = routes();
    assert!(routes.len() >= 17, "{routes:?}");
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, ops) in paths {
        for m in ops.as_object().expect("ops").keys() {
            documented.insert((m.clone(), path.clone()));
        }
    }
    assert_eq!(routes, documented, "router and OpenAPI document differ");
    // Every documented path reaches a handler (not the fallback), anonymously: 200 or 401.
    for (m, path) in &documented {
        let concrete = path.replace("{id}", "1").replace("{att}", "1");
        let method = Method::from_bytes(m.to_uppercase().as_bytes()).expect("method");
        let res = send(&r, method, &concrete, None, true, Payload::Empty).await;
        assert!(
            matches!(res.status.as_u16(), 200 | 401),
            "{m} {path}: {}",
            res.status
        );
        // Every $ref resolves.
    }
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/components/").skip(1) {
        let target = &piece[..piece.find('"').unwrap_or(0)];
        let mut node = &doc["components"];
        for part in target.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref {target}");
    }
}
