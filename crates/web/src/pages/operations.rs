//! Health, metrics, the static files and the fallback 404.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::PageResult;
use crate::AppState;
use crate::error::{AppError, PageError};

pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    // Within a second, whatever the store does: a health check that hangs is no answer.
    match state.store.health(HEALTH_WITHIN).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => {
            tracing::error!(error = %reason, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, HeaderValue::from_static("5"))],
                format!("unavailable: {} store: {reason}\n", state.store.backend()),
            )
                .into_response()
        }
    }
}

/// How long `/healthz` waits for the store.
const HEALTH_WITHIN: std::time::Duration = std::time::Duration::from_millis(900);

pub(crate) async fn metrics(State(state): State<AppState>) -> PageResult {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for level in incidents::LEVELS {
        for status in incidents::Status::ALL {
            counts.insert((level.to_owned(), status.as_str().to_owned()), 0);
        }
    }
    // One aggregate query; only known levels and statuses become labels.
    for (level, status, n) in state
        .store
        .incident_counts()
        .await
        .map_err(AppError::from)?
    {
        if let Some(c) = counts.get_mut(&(level, status)) {
            *c = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&counts),
    )
        .into_response())
}

pub(crate) async fn style_css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/style.css"),
    )
        .into_response()
}

pub(crate) async fn app_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../static/app.js"),
    )
        .into_response()
}

pub(crate) async fn not_found() -> PageError {
    PageError(AppError::NotFound("no such page".to_owned()))
}
