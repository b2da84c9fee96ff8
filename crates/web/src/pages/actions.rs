//! The step page's forms: answering, running the check, taking the incident, setting its
//! status, closing it. A stale page comes back as the incident is now, with the reason (409).

use axum::extract::{Path, State};
use axum::http::StatusCode;

use super::step::{back_to, step_page_view};
use super::{PageResult, html_status};
use crate::AppState;
use crate::auth::{CsrfForm, CurrentUser, PageUser, csrf_form};
use crate::error::AppError;
use crate::ops;
use casework::actions::{Action, Close};

csrf_form! {
    /// An answer to a step, given now or changed later (revised).
    pub(crate) struct AnswerForm {
        pub(crate) version: i64,
        pub(crate) step: String,
        pub(crate) answer: String,
        #[serde(default)]
        pub(crate) note: Option<String>,
    }
}

pub(crate) async fn answer(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<AnswerForm>,
) -> PageResult {
    let note = form.note.clone().unwrap_or_default();
    let req = ops::AnswerReq {
        version: form.version,
        step: form.step,
        answer: form.answer.clone(),
        note: form.note,
        evidence: None,
    };
    match ops::answer(&state, &user, id, req, "agent").await {
        Ok(_) => Ok(back_to(id, "Recorded")),
        // A stale page: show the incident as it is now, with the agent's note kept.
        Err(AppError::Conflict { message, .. }) => {
            let page = step_page_view(
                &state,
                &user,
                id,
                None,
                Some(format!(
                    "Your answer \"{}\" was not recorded: {message}. The page shows the incident as it \
                     is now; your note is kept below.",
                    form.answer
                )),
                note,
            )
            .await?;
            html_status(StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(e.into()),
    }
}

csrf_form! {
    pub(crate) struct VersionForm {
        version: i64,
        #[serde(default)]
        status: Option<String>,
    }
}

pub(crate) async fn run_check(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<VersionForm>,
) -> PageResult {
    match ops::run_check(&state, &user, id, form.version, false).await {
        Ok(_) => Ok(back_to(id, "Check")),
        Err(e) => conflict_or(&state, &user, id, e).await,
    }
}

/// Performs `action` from a page form: back to the step page, with `done` in its banner; a
/// refusal shows the step page again with the reason, led by `what` when given ("The note was
/// not added"); other errors are error pages.
pub(crate) async fn on_page(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    action: Action,
    done: &str,
    what: Option<&str>,
) -> PageResult {
    let e = match ops::perform(state, user, id, action).await {
        Ok(_) => return Ok(back_to(id, done)),
        Err(e) => e,
    };
    match (what, e) {
        (Some(what), AppError::Conflict { message, .. } | AppError::BadRequest(message)) => {
            let e = AppError::Conflict {
                current_version: None,
                message: format!("{what}: {message}"),
            };
            conflict_or(state, user, id, e).await
        }
        (_, e) => conflict_or(state, user, id, e).await,
    }
}

/// A conflict re-renders the incident with the message (status 409); other errors are pages.
pub(crate) async fn conflict_or(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    e: AppError,
) -> PageResult {
    match e {
        AppError::Conflict { message, .. } => {
            let page = step_page_view(state, user, id, None, Some(message), String::new()).await?;
            html_status(StatusCode::CONFLICT, &page)
        }
        e => Err(e.into()),
    }
}

pub(crate) async fn take(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<VersionForm>,
) -> PageResult {
    let action = Action::Take {
        version: Some(form.version),
    };
    on_page(&state, &user, id, action, "Taken", None).await
}

pub(crate) async fn set_status(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<VersionForm>,
) -> PageResult {
    let action = Action::Status {
        version: Some(form.version),
        status: form.status.unwrap_or_default(),
    };
    on_page(&state, &user, id, action, "Status", None).await
}

csrf_form! {
    pub(crate) struct CloseForm {
        version: i64,
        #[serde(default)]
        outcome: Option<String>,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        note: Option<String>,
    }
}

pub(crate) async fn close(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<CloseForm>,
) -> PageResult {
    let action = Action::Close(Close {
        version: Some(form.version),
        outcome: form.outcome,
        reason: form.reason,
        note: form.note,
    });
    on_page(&state, &user, id, action, "Closed", None).await
}
