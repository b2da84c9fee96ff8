//! Opening an incident: the form with the default runbook's gate questions.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};

use super::{Nav, PageResult, html, html_status};
use crate::AppState;
use crate::auth::{CsrfForm, CurrentUser, PageUser};
use crate::error::AppError;
use crate::ops;

struct GateView {
    id: String,
    title: String,
    question: String,
    answers: Vec<(String, String)>,
}

#[derive(Default)]
struct OpenFormView {
    account: String,
    reporter: String,
    description: String,
}

#[derive(Template)]
#[template(path = "new_incident.html")]
struct NewIncidentPage {
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
    form: OpenFormView,
    runbooks: Vec<(String, String)>,
    gate: Vec<GateView>,
}

fn new_page(
    state: &AppState,
    user: &CurrentUser,
    error: Option<String>,
    form: OpenFormView,
) -> NewIncidentPage {
    let gate = state
        .runbooks
        .get(ops::DEFAULT_RUNBOOK)
        .map(|rb| {
            rb.steps
                .iter()
                .filter(|s| s.level == runbook::Level::Gate)
                .map(|s| GateView {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    question: s.question.clone(),
                    answers: s
                        .answers
                        .iter()
                        .map(|a| (a.value.clone(), a.label.clone()))
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    NewIncidentPage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        error,
        form,
        runbooks: state
            .runbooks
            .iter()
            .map(|r| (r.id.clone(), r.title.clone()))
            .collect(),
        gate,
    }
}

pub(crate) async fn new_incident_form(
    State(state): State<AppState>,
    PageUser(user): PageUser,
) -> PageResult {
    html(&new_page(&state, &user, None, OpenFormView::default()))
}

pub(crate) async fn open_incident(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    CsrfForm(fields): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let req = ops::OpenReq {
        account: get("account").unwrap_or_default(),
        reporter: get("reporter").unwrap_or_default(),
        description: get("description").unwrap_or_default(),
        runbook: get("runbook"),
        gate: fields
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("gate.").map(|s| (s.to_owned(), v.clone())))
            .collect(),
    };
    let form = OpenFormView {
        account: req.account.clone(),
        reporter: req.reporter.clone(),
        description: req.description.clone(),
    };
    match ops::open(&state, &user, req).await {
        Ok(inc) => Ok(Redirect::to(&format!("/incidents/{}", inc.id)).into_response()),
        // Keep what the agent typed: show the form again with the reason.
        Err(AppError::BadRequest(m)) => html_status(
            StatusCode::BAD_REQUEST,
            &new_page(&state, &user, Some(m), form),
        ),
        Err(e) => Err(e.into()),
    }
}
