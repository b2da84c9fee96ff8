//! Admin: where incidents go out to the ticket of record. The receivers (from the webhook file
//! and saved here, per runbook or for every runbook), a form to save or remove one, and the
//! delivery log with a redeliver button per event. Secrets are written, never shown again.

use std::time::Duration;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::AppState;
use crate::auth::{AdminUser, CsrfForm, CurrentUser, csrf_form};
use crate::error::{AppError, AppResult};
use crate::pages::{Nav, PageResult, html_status};

/// Events shown in the delivery log.
const LOG_ROWS: i64 = 50;

struct ReceiverRow {
    scope: String,
    scope_words: String,
    url: String,
    /// "webhook file" or "saved by NAME, WHEN".
    origin: String,
    /// Saved here (it can be removed here).
    saved: bool,
    /// A saved receiver of the same scope takes its place.
    overridden: bool,
}

struct LogRow {
    id: i64,
    incident_id: i64,
    event: &'static str,
    runbook: String,
    at: String,
    state: &'static str,
    failed: bool,
    attempts: i64,
    status: String,
    error: String,
}

#[derive(Default)]
struct Kept {
    scope: String,
    url: String,
    timeout: String,
}

#[derive(Template)]
#[template(path = "admin_webhooks.html")]
struct WebhooksPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    error: Option<String>,
    receivers: Vec<ReceiverRow>,
    /// (scope, words) choices for the form.
    scopes: Vec<(String, String)>,
    log: Vec<LogRow>,
    kept: Kept,
}

fn scope_words(state: &AppState, scope: &str) -> String {
    if scope == incidents::DEFAULT_SCOPE {
        return "Every runbook without its own".to_owned();
    }
    state
        .runbooks
        .get(scope)
        .map(|r| r.title.clone())
        .unwrap_or_else(|| "A runbook that is not loaded".to_owned())
}

fn event_words(e: &str) -> &'static str {
    match e {
        "open" => "Opened",
        "escalate" => "Escalated",
        "close" => "Closed",
        _ => "Other",
    }
}

/// The page for `user`, an administrator (every handler here takes an [`AdminUser`]).
async fn view(
    state: &AppState,
    user: &CurrentUser,
    message: Option<String>,
    error: Option<String>,
    kept: Kept,
) -> AppResult<WebhooksPage> {
    let saved = state.store.webhook_targets().await?;
    let mut receivers: Vec<ReceiverRow> = state
        .cfg
        .webhooks_from_file
        .iter()
        .map(|(scope, url)| ReceiverRow {
            scope: scope.clone(),
            scope_words: scope_words(state, scope),
            url: url.clone(),
            origin: "webhook file".to_owned(),
            saved: false,
            overridden: saved.iter().any(|t| &t.scope == scope),
        })
        .collect();
    receivers.extend(saved.iter().map(|t| ReceiverRow {
        scope: t.scope.clone(),
        scope_words: scope_words(state, &t.scope),
        url: t.url.clone(),
        origin: format!(
            "saved by {}, {}",
            t.actor,
            chrono::DateTime::from_timestamp_millis(t.at)
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        ),
        saved: true,
        overridden: false,
    }));
    let log = state
        .store
        .outbox_log(LOG_ROWS)
        .await?
        .into_iter()
        .map(|e| {
            let failed = e.delivered_at.is_none() && e.attempts > 0;
            let skipped = e.delivered_at.is_some() && e.last_status.is_none();
            LogRow {
                id: e.id,
                incident_id: e.incident_id,
                event: event_words(&e.event),
                runbook: state
                    .runbooks
                    .get(&e.runbook)
                    .map(|r| r.title.clone())
                    .unwrap_or_default(),
                at: e.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                state: match (&e.delivered_at, e.last_status) {
                    (Some(_), None) if skipped => "Not sent",
                    (Some(_), _) => "Delivered",
                    (None, _) if failed => "Failing, will retry",
                    (None, _) => "Waiting",
                },
                failed,
                attempts: e.attempts,
                status: e.last_status.map(|s| s.to_string()).unwrap_or_default(),
                // A skipped event's reason names the runbook by id: said in words here.
                error: if skipped {
                    "no receiver was configured for it then".to_owned()
                } else {
                    e.last_error.unwrap_or_default()
                },
            }
        })
        .collect();
    let mut scopes = vec![(
        incidents::DEFAULT_SCOPE.to_owned(),
        scope_words(state, incidents::DEFAULT_SCOPE),
    )];
    scopes.extend(
        state
            .runbooks
            .iter()
            .map(|r| (r.id.clone(), r.title.clone())),
    );
    Ok(WebhooksPage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        message,
        error,
        receivers,
        scopes,
        log,
        kept,
    })
}

/// The page again with the refusal's reason, keeping what was typed (never the secret).
async fn refused(state: &AppState, user: &CurrentUser, e: AppError, kept: Kept) -> PageResult {
    match e {
        AppError::BadRequest(_) | AppError::NotFound(_) => {
            let status = e.status();
            html_status(
                status,
                &view(state, user, None, Some(e.reason()), kept).await?,
            )
        }
        e => Err(e.into()),
    }
}

pub(crate) async fn page(State(state): State<AppState>, AdminUser(user): AdminUser) -> PageResult {
    html_status(
        StatusCode::OK,
        &view(&state, &user, None, None, Kept::default()).await?,
    )
}

csrf_form! {
    pub(crate) struct SaveForm {
        #[serde(default)]
        scope: String,
        #[serde(default)]
        url: String,
        #[serde(default)]
        secret: String,
        /// Seconds.
        #[serde(default)]
        timeout: String,
    }
}

pub(crate) async fn save(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    CsrfForm(form): CsrfForm<SaveForm>,
) -> PageResult {
    let kept = Kept {
        scope: form.scope.trim().to_owned(),
        url: form.url.trim().to_owned(),
        timeout: form.timeout.trim().to_owned(),
    };
    let timeout = match kept.timeout.as_str() {
        "" => Ok(Duration::from_secs(10)),
        t => t
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0 && *s <= 120.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| {
                AppError::BadRequest("the timeout is a number of seconds, 0 to 120".to_owned())
            }),
    };
    let saved = match timeout {
        Ok(timeout) => state
            .store
            .set_webhook_target(
                &kept.scope,
                &kept.url,
                &form.secret,
                timeout,
                &user.username,
            )
            .await
            .map_err(AppError::from),
        Err(e) => Err(e),
    };
    match saved {
        Ok(t) => {
            let msg = format!(
                "Saved: events of {} go to {}.",
                scope_words(&state, &t.scope).to_lowercase(),
                t.url
            );
            html_status(
                StatusCode::OK,
                &view(&state, &user, Some(msg), None, Kept::default()).await?,
            )
        }
        Err(e) => refused(&state, &user, e, kept).await,
    }
}

csrf_form! {
    pub(crate) struct RemoveForm {
        #[serde(default)]
        scope: String,
    }
}

pub(crate) async fn remove(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    CsrfForm(form): CsrfForm<RemoveForm>,
) -> PageResult {
    match state
        .store
        .remove_webhook_target(form.scope.trim(), &user.username)
        .await
        .map_err(AppError::from)
    {
        Ok(()) => {
            let msg = format!(
                "Removed the receiver of {}.",
                scope_words(&state, form.scope.trim()).to_lowercase()
            );
            html_status(
                StatusCode::OK,
                &view(&state, &user, Some(msg), None, Kept::default()).await?,
            )
        }
        Err(e) => refused(&state, &user, e, Kept::default()).await,
    }
}

pub(crate) async fn redeliver(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(id): Path<i64>,
    CsrfForm(_): CsrfForm<crate::pages::login::CsrfOnly>,
) -> PageResult {
    match state
        .store
        .outbox_redeliver(id, &user.username)
        .await
        .map_err(AppError::from)
    {
        Ok(ev) => {
            let msg = format!(
                "Event {} of incident {} will be sent again now, with the same idempotency key.",
                ev.id, ev.incident_id
            );
            html_status(
                StatusCode::OK,
                &view(&state, &user, Some(msg), None, Kept::default()).await?,
            )
        }
        Err(e) => refused(&state, &user, e, Kept::default()).await,
    }
}
