//! The crate's error enum, and `AppError`: how a failure becomes an HTTP answer (JSON for the API,
//! a page for the browser) with a reason for 4xx and a generic text for 5xx.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};

/// Errors of the web crate's library functions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The incident store failed.
    #[error("incident store: {0}")]
    Store(#[from] incidents::Error),
    /// The runbook engine refused the facts.
    #[error("runbook evaluation: {0}")]
    Runbook(#[from] runbook::Error),
    /// A template failed to render.
    #[error("template rendering: {0}")]
    Template(#[from] askama::Error),
    /// Hashing a password failed (never carries the password).
    #[error("password hashing failed: {0}")]
    PasswordHash(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The HTTP server stopped with an error.
    #[error("http server: {0}")]
    Serve(std::io::Error),
    /// A user name or role that cannot be used.
    #[error("invalid input: {0}")]
    Invalid(String),
}

/// Result with this crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A failed request, before it is rendered for the API or for a page.
#[derive(Debug)]
pub(crate) enum AppError {
    BadRequest(String),
    /// Not logged in, or the session expired.
    Unauthorized,
    Forbidden(String),
    NotFound(String),
    /// A stale version, or a change the incident's state no longer allows.
    Conflict {
        current_version: Option<i64>,
        message: String,
    },
    TooLarge(String),
    /// The store does not answer now: 503 with Retry-After; the message names the store.
    Unavailable(String),
    Internal(Error),
}

pub(crate) type AppResult<T> = std::result::Result<T, AppError>;

impl AppError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text shown to the client: the reason for 4xx, a generic text for 5xx (the chain is
    /// logged instead, because it may name internals).
    pub(crate) fn reason(&self) -> String {
        match self {
            AppError::BadRequest(m)
            | AppError::Forbidden(m)
            | AppError::NotFound(m)
            | AppError::TooLarge(m)
            | AppError::Unavailable(m) => m.clone(),
            AppError::Conflict { message, .. } => message.clone(),
            AppError::Unauthorized => "not logged in, or the session expired".to_owned(),
            AppError::Internal(e) => {
                log_chain(e);
                "internal error; the details are in the server log".to_owned()
            }
        }
    }

    pub(crate) fn forbidden(what: &str) -> Self {
        AppError::Forbidden(format!("your role does not allow this: {what}"))
    }
}

fn log_chain(e: &(dyn std::error::Error + 'static)) {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    tracing::error!(error = %chain, "request failed");
}

impl From<incidents::Error> for AppError {
    fn from(e: incidents::Error) -> Self {
        match e {
            incidents::Error::NotFound { .. } => AppError::NotFound(e.to_string()),
            incidents::Error::Conflict {
                current_version, ..
            } => AppError::Conflict {
                current_version: Some(current_version),
                message: format!(
                    "someone else changed this incident first (it is now at version \
                     {current_version}); reload it and try again"
                ),
            },
            incidents::Error::Closed { .. } => AppError::Conflict {
                current_version: None,
                message: e.to_string(),
            },
            incidents::Error::AlreadyExists { .. } | incidents::Error::Invalid(_) => {
                AppError::BadRequest(e.to_string())
            }
            incidents::Error::Unavailable { .. } | incidents::Error::Connect { .. } => {
                tracing::warn!(error = %e, "store unavailable");
                AppError::Unavailable(format!("{e}; nothing was changed, try again shortly"))
            }
            other => AppError::Internal(Error::Store(other)),
        }
    }
}

impl From<Error> for AppError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => s.into(),
            Error::Invalid(m) => AppError::BadRequest(m),
            other => AppError::Internal(other),
        }
    }
}

impl From<askama::Error> for AppError {
    fn from(e: askama::Error) -> Self {
        AppError::Internal(Error::Template(e))
    }
}

impl From<runbook::Error> for AppError {
    fn from(e: runbook::Error) -> Self {
        AppError::Internal(Error::Runbook(e))
    }
}

/// An error rendered as JSON `{ "error": reason }` (the API).
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) AppError);

impl<E: Into<AppError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let mut body = serde_json::json!({ "error": self.0.reason() });
        if let AppError::Conflict {
            current_version: Some(current_version),
            ..
        } = &self.0
        {
            body["current_version"] = serde_json::json!(current_version);
        }
        let mut res = (status, axum::Json(body)).into_response();
        retry_after(&self.0, &mut res);
        res
    }
}

/// An error rendered as a page (the browser); an expired session goes back to the login form.
#[derive(Debug)]
pub(crate) struct PageError(pub(crate) AppError);

impl<E: Into<AppError>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let AppError::Unauthorized = self.0 {
            return Redirect::to("/login?expired=1").into_response();
        }
        let status = self.0.status();
        let reason = self.0.reason();
        // The error page has no navigation: it may be shown to anyone.
        let page = crate::pages::ErrorPage {
            nav: None,
            status: status.as_u16(),
            title: heading(status).to_owned(),
            reason,
        };
        let mut res = match askama::Template::render(&page) {
            Ok(html) => (status, Html(html)).into_response(),
            // The error page itself failed: fall back to plain text rather than loop.
            Err(_) => (status, page.reason).into_response(),
        };
        retry_after(&self.0, &mut res);
        res
    }
}

/// The error page's heading: what happened, in words an agent understands.
fn heading(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "That could not be done",
        403 => "Not allowed",
        404 => "Not found",
        409 => "Someone changed this first",
        413 => "The file is too large",
        429 => "Too many attempts",
        503 => "Not available right now",
        _ => "Something went wrong",
    }
}

/// A 503 tells the client when to try again.
fn retry_after(e: &AppError, res: &mut Response) {
    if let AppError::Unavailable(_) = e {
        res.headers_mut().insert(
            axum::http::header::RETRY_AFTER,
            axum::http::HeaderValue::from_static("5"),
        );
    }
}
