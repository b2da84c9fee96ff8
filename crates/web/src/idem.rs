//! `Idempotency-Key` on the write API: a repeated call with the same key (from the same
//! credential, to the same method and path) gets the first call's answer instead of being done
//! twice; a call still running gets 409, a key reused for another request 422.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use incidents::Idempotency;

use crate::AppState;
use crate::error::{ApiError, AppError};

/// The header.
const HEADER: &str = "idempotency-key";
/// Largest answer kept for a replay (write answers are small JSON documents).
const MAX_BODY: usize = 1024 * 1024;

pub(crate) async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(key) = req.headers().get(HEADER) else {
        return next.run(req).await;
    };
    if req.method() != Method::POST || !req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 200 && k.bytes().all(|b| b.is_ascii_graphic()) => {
            k.to_owned()
        }
        _ => {
            return ApiError(AppError::BadRequest(
                "Idempotency-Key must be 1 to 200 visible ASCII characters".to_owned(),
            ))
            .into_response();
        }
    };
    // The scope is the credential: the same key from two users is two keys.
    let credential = req
        .headers()
        .get(AUTHORIZATION)
        .or_else(|| req.headers().get(COOKIE))
        .and_then(|v| v.to_str().ok())
        .map(crate::auth::sha256_hex);
    let Some(scope) = credential else {
        return next.run(req).await;
    };
    // Only a valid credential claims a key: a request with a made-up token writes nothing
    // (it gets its 401 from the handler), so keys cannot be used to fill the store.
    let (parts, body) = req.into_parts();
    if !matches!(crate::auth::authenticate(&parts, &state).await, Ok(Some(_))) {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let req = Request::from_parts(parts, body);
    let fingerprint = format!("{} {}", req.method(), req.uri().path());
    match state
        .store
        .idempotency_begin(&scope, &key, &fingerprint)
        .await
    {
        Err(e) => ApiError(e.into()).into_response(),
        Ok(Idempotency::InProgress) => {
            let mut res = ApiError(AppError::Conflict {
                current_version: None,
                message: "a request with this Idempotency-Key is still running; retry shortly"
                    .to_owned(),
            })
            .into_response();
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
            res
        }
        Ok(Idempotency::Mismatch) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(serde_json::json!({
                "error": "this Idempotency-Key was used for another request"
            })),
        )
            .into_response(),
        Ok(Idempotency::Done { status, body }) => replay(status, body),
        Ok(Idempotency::New) => {
            let res = next.run(req).await;
            let status = res.status();
            if status.is_server_error() {
                // Nothing is known to be written: release the key so a retry runs again.
                let _ = state.store.idempotency_finish(&scope, &key, None).await;
                return res;
            }
            let (parts, body) = res.into_parts();
            let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
                let _ = state.store.idempotency_finish(&scope, &key, None).await;
                return ApiError(AppError::Internal(crate::Error::Invalid(
                    "the answer was too large to keep for Idempotency-Key".to_owned(),
                )))
                .into_response();
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Err(e) = state
                .store
                .idempotency_finish(&scope, &key, Some((status.as_u16(), &text)))
                .await
            {
                tracing::warn!(error = %e, "could not keep the answer of an Idempotency-Key");
            }
            Response::from_parts(parts, Body::from(bytes))
        }
    }
}

fn replay(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut res = (status, body).into_response();
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.headers_mut()
        .insert("idempotency-replayed", HeaderValue::from_static("true"));
    res
}
