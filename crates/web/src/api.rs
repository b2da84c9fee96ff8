//! The JSON API under /api/: the same actions as the pages, for scripts (bearer API tokens) and
//! for the pages' own scripts (session cookie plus the `x-csrf-token` header).

use axum::Json;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use incidents::{Incident, ListFilter};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::ApiUser;
use crate::error::{ApiError, AppError};
use crate::files;
use crate::flow::{self, Next};
use crate::ops;
use casework::actions::Action;

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The hand-written OpenAPI 3 document (kept beside the routes; a test checks they match).
pub(crate) const OPENAPI: &str = include_str!("../openapi.json");

pub(crate) async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Serialize)]
pub(crate) struct Me {
    username: String,
    role: &'static str,
}

pub(crate) async fn me(ApiUser(user): ApiUser) -> Json<Me> {
    Json(Me {
        username: user.username.clone(),
        role: user.role.as_str(),
    })
}

/// Revokes the bearer token the request carries (a script retiring its own token).
pub(crate) async fn revoke_own_token(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
) -> ApiResult<Json<serde_json::Value>> {
    let crate::auth::Via::Token { token_hash } = &user.via else {
        return Err(AppError::BadRequest(
            "only an API token can revoke itself; an admin revokes tokens on the admin page"
                .to_owned(),
        )
        .into());
    };
    let revoked = state
        .store
        .revoke_api_token(token_hash, &user.username)
        .await?;
    Ok(Json(serde_json::json!({ "revoked": revoked })))
}

#[derive(Serialize)]
pub(crate) struct RunbookSummary {
    id: String,
    title: String,
    description: String,
    steps: usize,
}

pub(crate) async fn runbooks(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
) -> Json<Vec<RunbookSummary>> {
    Json(
        state
            .runbooks
            .iter()
            .map(|r| RunbookSummary {
                id: r.id.clone(),
                title: r.title.clone(),
                description: r.description.clone(),
                steps: r.steps.len(),
            })
            .collect(),
    )
}

pub(crate) async fn runbook(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    let Some(rb) = state.runbooks.get(&id) else {
        return Err(AppError::NotFound(format!("no runbook named {id}")).into());
    };
    Ok(Json(serde_json::json!({
        "runbook": rb,
        "mermaid": runbook::to_mermaid(rb),
    })))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    level: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    assignee: Option<String>,
    #[serde(default)]
    account: Option<String>,
    #[serde(default)]
    limit: Option<i64>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Vec<Incident>>> {
    // One rule with the queue pages: a level above the role's is not listed (an L1 agent
    // without a level filter lists L1 incidents).
    let level = match q.level.as_deref() {
        Some(level) => {
            let level = incidents::normalize_level(level).map_err(AppError::from)?;
            user.require(
                ops::can_see_queue(&user, &level),
                &format!("listing {level} incidents"),
            )?;
            Some(level)
        }
        None if !ops::can_see_queue(&user, "L2") => Some("L1".to_owned()),
        None => None,
    };
    let status = match q.status.as_deref() {
        Some(s) => Some(
            s.parse::<incidents::Status>()
                .map_err(|e| AppError::BadRequest(e.to_string()))?,
        ),
        None => None,
    };
    let filter = ListFilter {
        level,
        status,
        assignee: q.assignee,
        account_contains: q.account,
        escalated_by: None,
        limit: Some(q.limit.unwrap_or(100).clamp(1, 1000)),
    };
    Ok(Json(state.store.list(&filter).await?))
}

pub(crate) async fn open(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Json(req): Json<ops::OpenReq>,
) -> ApiResult<(StatusCode, Json<Detail>)> {
    let inc = ops::open(&state, &user, req).await?;
    Ok((StatusCode::CREATED, Json(detail(&state, inc).await?)))
}

/// An incident with what the runbook asks or offers next.
#[derive(Serialize)]
pub(crate) struct Detail {
    incident: Incident,
    next: serde_json::Value,
}

/// The answer after a write: the incident as written plus what comes next. The write is
/// committed by now, so failing to read the next step (the store going away just then) still
/// answers success, from what was written, with the next step left to a later read.
pub(crate) async fn detail(state: &AppState, inc: Incident) -> Result<Detail, AppError> {
    match next_of(state, &inc).await {
        Ok(next) => Ok(Detail {
            incident: inc,
            next,
        }),
        Err(e) => {
            tracing::warn!(incident = inc.id, error = ?e, "written, but the next step could not be read");
            Ok(Detail {
                incident: inc,
                next: serde_json::json!({
                    "kind": "unknown",
                    "note": "the change was saved; read the incident again for the next step",
                }),
            })
        }
    }
}

async fn next_of(state: &AppState, inc: &Incident) -> Result<serde_json::Value, AppError> {
    let next = if inc.status == incidents::Status::Closed {
        serde_json::json!({ "kind": "closed", "outcome": inc.outcome })
    } else {
        let steps = state.store.steps(inc.id).await?;
        let (_, next) = flow::next_of(&state.runbooks, inc, &steps)?;
        match next {
            Next::Ask { runbook, step } => {
                let def = state.runbooks.step(&step).map(|(_, s)| s);
                serde_json::json!({
                    "kind": "ask",
                    "runbook": runbook,
                    "step": step,
                    "question": def.map(|s| s.question.clone()),
                    "instruction": def.and_then(|s| s.instruction.clone()),
                    "check": def.and_then(|s| s.check),
                    "answers": def.map(|s| s.allowed_answers()).unwrap_or_default(),
                })
            }
            Next::Escalate { level, kind } => serde_json::json!({
                "kind": "escalate", "level": level.to_string(), "escalation_kind": kind,
            }),
            Next::Close { runbook, outcome } => serde_json::json!({
                "kind": "close", "runbook": runbook, "outcome": outcome,
            }),
            Next::Redirected { runbook } => serde_json::json!({
                "kind": "redirected", "runbook": runbook,
            }),
        }
    };
    Ok(next)
}

pub(crate) async fn get(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Detail>> {
    let inc = ops::load(&state, id).await?;
    Ok(Json(detail(&state, inc).await?))
}

pub(crate) async fn answer(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    Json(req): Json<ops::AnswerReq>,
) -> ApiResult<Json<Detail>> {
    let inc = ops::answer(&state, &user, id, req, "agent").await?;
    Ok(Json(detail(&state, inc).await?))
}

/// Running a step's check over the API: a conclusive answer is recorded at once unless
/// `"propose": true` asks for a proposal only (as the web page does).
#[derive(Deserialize)]
pub(crate) struct CheckReq {
    version: i64,
    #[serde(default)]
    propose: bool,
}

pub(crate) async fn check(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    Json(req): Json<CheckReq>,
) -> ApiResult<Json<ops::CheckResult>> {
    Ok(Json(
        ops::run_check(&state, &user, id, req.version, !req.propose).await?,
    ))
}

pub(crate) async fn escalate(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    Json(req): Json<casework::actions::Escalate>,
) -> ApiResult<Json<Detail>> {
    let inc = ops::perform(&state, &user, id, Action::Escalate(req)).await?;
    Ok(Json(detail(&state, inc).await?))
}

pub(crate) async fn close(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    Json(req): Json<casework::actions::Close>,
) -> ApiResult<Json<Detail>> {
    let inc = ops::perform(&state, &user, id, Action::Close(req)).await?;
    Ok(Json(detail(&state, inc).await?))
}

#[derive(Deserialize)]
pub(crate) struct AssignReq {
    version: i64,
    /// The agent to assign; `null` unassigns. Missing means "me".
    #[serde(default = "me_marker")]
    assignee: Option<String>,
}

fn me_marker() -> Option<String> {
    Some(String::new())
}

pub(crate) async fn assign(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    Json(req): Json<AssignReq>,
) -> ApiResult<Json<Detail>> {
    let inc = match req.assignee {
        Some(a) if a.is_empty() => {
            let action = Action::Take {
                version: Some(req.version),
            };
            ops::perform(&state, &user, id, action).await?
        }
        other => ops::assign(&state, &user, id, req.version, other).await?,
    };
    Ok(Json(detail(&state, inc).await?))
}

pub(crate) async fn steps(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<incidents::StepRecord>>> {
    ops::load(&state, id).await?;
    Ok(Json(state.store.steps(id).await?))
}

pub(crate) async fn audit(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<incidents::AuditEntry>>> {
    ops::load(&state, id).await?;
    Ok(Json(state.store.audit(id).await?))
}

/// One line of `GET /api/incidents/{id}/events`.
#[derive(Serialize)]
pub(crate) struct EventLine {
    at: String,
    text: String,
    failed: bool,
}

/// The incident account's recent SIP events from the HEP window (404 when none is configured,
/// 503 when it cannot be read).
pub(crate) async fn events(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<EventLine>>> {
    let inc = ops::load(&state, id).await?;
    let Some(events) = &state.events else {
        return Err(AppError::NotFound(
            "no SIP event window is configured (dialtone serve --hep, or [management] events_db)"
                .into(),
        )
        .into());
    };
    match tokio::time::timeout(crate::EVENTS_TIMEOUT, events.recent(&inc.account)).await {
        Ok(Ok(lines)) => Ok(Json(
            lines
                .into_iter()
                .map(|l| EventLine {
                    at: l.at,
                    text: l.text,
                    failed: l.failed,
                })
                .collect(),
        )),
        Ok(Err(why)) => Err(AppError::Unavailable(format!("SIP event window: {why}")).into()),
        Err(_) => Err(AppError::Unavailable("SIP event window: no answer in time".into()).into()),
    }
}

pub(crate) async fn attachments(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<incidents::Attachment>>> {
    ops::load(&state, id).await?;
    Ok(Json(state.store.attachments(id).await?))
}

pub(crate) async fn upload(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> ApiResult<(StatusCode, Json<incidents::Attachment>)> {
    // A body over the limit is answered with the documented JSON error, not the extractor's
    // plain text; ApiUser checked the x-csrf-token header of a session already.
    let a = files::receive(
        &state,
        &user,
        id,
        multipart,
        files::Csrf::Checked,
        "send the file in a part named \"file\"",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(a)))
}

pub(crate) async fn download(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(att): Path<i64>,
) -> ApiResult<Response> {
    Ok(files::download(&state, att).await?)
}
