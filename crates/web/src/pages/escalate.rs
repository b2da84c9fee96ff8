//! Escalating an incident: the level and kind, the reason, and what to tell the user.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use incidents::StepRecord;

use super::step::back_to;
use super::views::{AttView, IncView, PathRow, att_views, path_rows};
use super::{Nav, PageResult, html, html_status};
use crate::AppState;
use crate::auth::{self, CsrfForm, CurrentUser, PageUser, csrf_form};
use crate::error::{AppError, AppResult};
use crate::flow::{self, Next};
use crate::{labels, ops};
use casework::actions::{Action, Escalate};

#[derive(Template)]
#[template(path = "escalate.html")]
struct EscalatePage {
    nav: Option<Nav>,
    csrf: String,
    inc: IncView,
    error: Option<String>,
    /// (value, words).
    levels: Vec<(String, String)>,
    to_level: String,
    /// (id, title).
    kinds: Vec<(String, String)>,
    kind: String,
    reason: String,
    /// What to tell the user, per kind (and level when there is no kind); the selected one shown.
    says: Vec<SayView>,
    path: Vec<PathRow>,
    attachments: Vec<AttView>,
}

/// Words for the user while an escalation is worked.
struct SayView {
    kind: String,
    level: String,
    text: String,
    shown: bool,
}

/// What to tell the user for each escalation the page offers: the runbook ending's own words
/// first (the answer that escalated), then each kind's, then a general line for L3.
fn escalation_says(
    state: &AppState,
    steps: &[StepRecord],
    to_level: &str,
    kind: &str,
    kinds: &[(String, String)],
) -> Vec<SayView> {
    let mut says = Vec::new();
    if let Some(last) = steps.last()
        && let Some(words) = labels::escalation_words(&state.runbooks, &last.step, &last.answer)
    {
        says.push(SayView {
            kind: kind.to_owned(),
            level: to_level.to_owned(),
            text: words,
            shown: false,
        });
    }
    for (k, _) in kinds {
        if let Some(text) = labels::escalation_tell_user(&state.runbooks, Some(k)) {
            says.push(SayView {
                kind: k.clone(),
                level: "L2".to_owned(),
                text,
                shown: false,
            });
        }
    }
    says.push(SayView {
        kind: String::new(),
        level: "L3".to_owned(),
        text: labels::L3_TELL_USER.to_owned(),
        shown: false,
    });
    if let Some(first) = says
        .iter_mut()
        .find(|s| s.kind == kind && (!kind.is_empty() || s.level == to_level))
    {
        first.shown = true;
    }
    says
}

async fn escalate_view(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    error: Option<String>,
    reason: String,
    form: Option<(String, String)>,
) -> AppResult<EscalatePage> {
    let inc = ops::load(state, id).await?;
    user.require(
        ops::can_work(user, &inc),
        &format!("escalating an {} incident", inc.level),
    )?;
    let steps = state.store.steps(id).await?;
    let atts = state.store.attachments(id).await?;
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    let here = auth::level_of(&inc.level);
    let levels: Vec<String> = [runbook::Level::L2, runbook::Level::L3]
        .into_iter()
        .filter(|l| Some(*l) > here)
        .map(|l| l.to_string())
        .collect();
    let (to_level, kind) = match (next, form) {
        (_, Some(f)) => f,
        (Next::Escalate { level, kind }, None) => (level.to_string(), kind.unwrap_or_default()),
        (_, None) => (levels.first().cloned().unwrap_or_default(), String::new()),
    };
    let kinds: Vec<(String, String)> = ops::known_kinds(state)
        .into_iter()
        .map(|k| {
            let t = labels::escalation_kind(&state.runbooks, Some(&k), "L2");
            (k, t)
        })
        .collect();
    Ok(EscalatePage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        inc: IncView::of(state, &inc),
        error,
        says: escalation_says(state, &steps, &to_level, &kind, &kinds),
        levels: levels
            .into_iter()
            .map(|l| {
                let w = labels::level(&l);
                (l, w)
            })
            .collect(),
        to_level,
        kinds,
        kind,
        reason,
        path: path_rows(state, &steps),
        attachments: att_views(state, &atts),
    })
}

pub(crate) async fn escalate_form(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
) -> PageResult {
    html(&escalate_view(&state, &user, id, None, String::new(), None).await?)
}

csrf_form! {
    pub(crate) struct EscalateForm {
        version: i64,
        #[serde(default)]
        to_level: Option<String>,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        reason: String,
    }
}

pub(crate) async fn escalate(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<EscalateForm>,
) -> PageResult {
    let reason = form.reason.clone();
    let chosen = (
        form.to_level.clone().unwrap_or_default(),
        form.kind.clone().unwrap_or_default(),
    );
    let action = Action::Escalate(Escalate {
        version: Some(form.version),
        to: form.to_level,
        kind: form.kind,
        reason: form.reason,
    });
    match ops::perform(&state, &user, id, action).await {
        Ok(_) => Ok(back_to(id, "Escalated")),
        Err(AppError::BadRequest(m)) => html_status(
            StatusCode::BAD_REQUEST,
            &escalate_view(&state, &user, id, Some(m), reason, Some(chosen)).await?,
        ),
        Err(AppError::Conflict { message, .. }) => html_status(
            StatusCode::CONFLICT,
            &escalate_view(&state, &user, id, Some(message), reason, Some(chosen)).await?,
        ),
        Err(e) => Err(e.into()),
    }
}
