//! The actions on incidents, shared by the pages and the API: who may do what, and what is
//! written to the store (always with the version the agent read, so a stale write is refused).

use std::collections::BTreeMap;
use std::time::Instant;

use casework::actions::{Action, Answer};
use casework::{Actor, Case, Refusal, RefusalKind};
use incidents::{Incident, ListFilter, Status as IncStatus, Write};
use runbook::Source;
use serde::Deserialize;

use crate::auth::{CurrentUser, level_of};
use crate::error::{AppError, AppResult};
use crate::flow::{self, Next};
use crate::{AppState, CHECK_TIMEOUT, CheckOutcome};

/// The runbook incidents follow unless told otherwise.
pub(crate) const DEFAULT_RUNBOOK: &str = casework::actions::DEFAULT_RUNBOOK;

pub(crate) async fn load(state: &AppState, id: i64) -> AppResult<Incident> {
    Ok(state.store.get(id).await?)
}

/// The user as an actor of the incident rules (`casework`): their name and the highest level
/// they work.
pub(crate) fn actor(user: &CurrentUser) -> Actor<'_> {
    Actor {
        name: &user.username,
        level: user.role.level(),
    }
}

/// May `user` work this incident (answer, escalate, close)? Every agent may read every
/// incident, and add notes and files to it; working it is the rule book's.
pub(crate) fn can_work(user: &CurrentUser, inc: &Incident) -> bool {
    casework::actions::can_work(&actor(user), inc)
}

pub(crate) fn can_take(user: &CurrentUser, inc: &Incident) -> bool {
    can_work(user, inc) && inc.assignee.as_deref() != Some(user.username.as_str())
}

pub(crate) fn can_see_queue(user: &CurrentUser, level: &str) -> bool {
    level_of(level).is_some_and(|l| l <= user.role.level())
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> AppError {
        let message = r.to_string();
        match r.kind() {
            RefusalKind::NotFound => AppError::NotFound(message),
            RefusalKind::Forbidden => AppError::forbidden(&message),
            RefusalKind::Conflict => AppError::Conflict {
                current_version: r.current_version(),
                message,
            },
            RefusalKind::Invalid => AppError::BadRequest(message),
        }
    }
}

/// Loads the incident and its step records, plans `action` on them with the rule book, and
/// writes what it decided.
async fn act(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    plan: impl FnOnce(Case<'_>) -> Result<Write, Refusal>,
) -> AppResult<Incident> {
    // The steps first: a write that lands between the two reads then shows in the incident's
    // version too, and the plan is refused as stale (409 with the current version) instead of
    // being made against steps newer than the version it names.
    let steps = state.store.steps(id).await?;
    let inc = load(state, id).await?;
    let write = plan(Case {
        incident: &inc,
        steps: &steps,
    })?;
    Ok(state
        .store
        .apply(id, inc.version, write, &user.username)
        .await?)
}

/// Revises, notes, escalates, closes, takes or sets the status of an incident, by the rule
/// book. Every action but a note carries the version the agent read, so a stale tab is refused.
pub(crate) async fn perform(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    action: Action,
) -> AppResult<Incident> {
    if action.version().is_none() && !matches!(action, Action::Note(_)) {
        return Err(AppError::BadRequest(
            "the version of the incident you read is required (field \"version\")".to_owned(),
        ));
    }
    act(state, user, id, |case| {
        casework::actions::plan(&state.runbooks, &actor(user), case, action)
    })
    .await
}

/// Opening an incident, with the gate answers given on the form.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct OpenReq {
    pub(crate) account: String,
    pub(crate) reporter: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) runbook: Option<String>,
    /// Gate step id -> answer.
    #[serde(default)]
    pub(crate) gate: BTreeMap<String, String>,
}

pub(crate) async fn open(
    state: &AppState,
    user: &CurrentUser,
    req: OpenReq,
) -> AppResult<Incident> {
    if req.reporter.trim().is_empty() {
        return Err(AppError::BadRequest(
            "the account and the reporter are required".to_owned(),
        ));
    }
    let write = casework::actions::open(
        &state.runbooks,
        &actor(user),
        casework::actions::Open {
            account: req.account,
            reporter: req.reporter,
            description: req.description,
            runbook: req.runbook,
            gate: req.gate.into_iter().collect(),
        },
    )?;
    Ok(state.store.apply(0, 0, write, &user.username).await?)
}

/// Answering the step the runbook asks now.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AnswerReq {
    pub(crate) version: i64,
    pub(crate) step: String,
    pub(crate) answer: String,
    #[serde(default)]
    pub(crate) note: Option<String>,
    #[serde(default)]
    pub(crate) evidence: Option<serde_json::Value>,
}

/// The latest conclusive proposal of an automated check for `step`, if any.
async fn proposal(state: &AppState, id: i64, step: &str) -> AppResult<Option<incidents::CheckRun>> {
    Ok(state
        .store
        .check_runs(id)
        .await?
        .into_iter()
        .rev()
        .find(|r| r.step == step)
        .filter(|r| r.answer.is_some()))
}

pub(crate) async fn answer(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    req: AnswerReq,
    source: &str,
) -> AppResult<Incident> {
    let proposed = proposal(state, id, &req.step).await?.and_then(|r| r.answer);
    let answer = casework::actions::Answer {
        version: Some(req.version),
        step: Some(req.step),
        answer: req.answer,
        source: source.parse().unwrap_or(Source::Agent),
        evidence: req.evidence.unwrap_or(serde_json::Value::Null),
        note: req.note,
        proposed,
    };
    perform(state, user, id, Action::Answer(answer)).await
}

/// Accepting what the step's automated check proposed: the answer is the check's, with its
/// evidence, confirmed by the agent.
pub(crate) async fn accept_proposal(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
    step: &str,
) -> AppResult<Incident> {
    let Some(run) = proposal(state, id, step).await? else {
        return Err(AppError::Conflict {
            current_version: None,
            message: "no automated check has proposed an answer for this step; run it first"
                .to_owned(),
        });
    };
    let note = format!(
        "proposed by the automated check, confirmed: {}",
        run.summary
    );
    let answer = run.answer.unwrap_or_default();
    let answer = Answer::automated(version, step.to_owned(), answer, run.evidence, note);
    perform(state, user, id, Action::Answer(answer)).await
}

/// What running a check did.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct CheckResult {
    pub(crate) step: String,
    pub(crate) outcome: CheckOutcome,
    /// Whether the evidence was conclusive and the step was answered with it.
    pub(crate) recorded: bool,
    pub(crate) incident: Incident,
}

/// Runs the automated check of the step the runbook asks now. The result is kept as a check
/// run (a record only the server writes, so no upload can pass for one); a conclusive one is a
/// proposal the agent accepts or overrides. With `record`, as API clients ask, a conclusive
/// answer is recorded at once (source "automated").
pub(crate) async fn run_check(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
    record: bool,
) -> AppResult<CheckResult> {
    let inc = load(state, id).await?;
    user.require(
        can_work(user, &inc),
        &format!("working an {} incident", inc.level),
    )?;
    let Some(checks) = state.checks.clone() else {
        return Err(AppError::BadRequest(
            "automated checks are not configured on this server".to_owned(),
        ));
    };
    let steps = state.store.steps(id).await?;
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    let Next::Ask { step, .. } = next else {
        return Err(AppError::BadRequest(
            "the runbook asks no question now".to_owned(),
        ));
    };
    let has_check = state
        .runbooks
        .step(&step)
        .is_some_and(|(_, s)| s.check.is_some());
    if !has_check {
        return Err(AppError::BadRequest(
            "this step has no automated check".to_owned(),
        ));
    }
    let ctx = crate::CheckContext {
        incident_id: id,
        account: inc.account.clone(),
        step: step.clone(),
        attachments: check_attachments(state, id).await?,
    };
    let start = Instant::now();
    let run = checks.run_with_context(ctx);
    let result = tokio::time::timeout(CHECK_TIMEOUT, run).await;
    let outcome = match result {
        Ok(Ok(o)) => {
            state.metrics.observe_check(&step, "done", start.elapsed());
            o
        }
        Ok(Err(msg)) => {
            state.metrics.observe_check(&step, "error", start.elapsed());
            CheckOutcome {
                answer: None,
                evidence: serde_json::json!({ "error": msg }),
                summary: format!("the check failed: {msg}"),
            }
        }
        Err(_) => {
            state
                .metrics
                .observe_check(&step, "timeout", start.elapsed());
            CheckOutcome {
                answer: None,
                evidence: serde_json::json!({ "error": "timed out" }),
                summary: format!(
                    "the check did not finish within {} s",
                    CHECK_TIMEOUT.as_secs()
                ),
            }
        }
    };
    let evidence = serde_json::json!({
        "check": step,
        "summary": outcome.summary,
        "answer": outcome.answer,
        "evidence": outcome.evidence,
        "at": chrono::Utc::now().to_rfc3339(),
        "duration_ms": start.elapsed().as_millis() as u64,
    });
    let conclusive = outcome.answer.as_deref().filter(|a| {
        state
            .runbooks
            .step(&step)
            .is_some_and(|(_, s)| s.answer(a).is_some())
    });
    state
        .store
        .add_check_run(
            id,
            &step,
            conclusive,
            &outcome.summary,
            &evidence,
            &user.username,
        )
        .await?;
    if let (true, Some(a)) = (record, conclusive.map(str::to_owned)) {
        let note = outcome.summary.clone();
        let answer = Answer::automated(version, step.clone(), a, evidence, note);
        let incident = perform(state, user, id, Action::Answer(answer)).await?;
        return Ok(CheckResult {
            step,
            outcome,
            recorded: true,
            incident,
        });
    }
    let incident = load(state, id).await?;
    Ok(CheckResult {
        step,
        outcome,
        recorded: false,
        incident,
    })
}

/// The incident's attachments for a check (all uploads: check results are kept apart),
/// oldest first, within the byte budget.
async fn check_attachments(state: &AppState, id: i64) -> AppResult<Vec<crate::CheckAttachment>> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for a in state.store.attachments(id).await? {
        let size = usize::try_from(a.size).unwrap_or(usize::MAX);
        if total.saturating_add(size) > crate::CHECK_ATTACHMENT_BUDGET {
            tracing::warn!(
                incident = id,
                attachment = a.id,
                "attachment left out of a check: over the budget"
            );
            continue;
        }
        let (meta, bytes) = state.store.attachment(a.id).await?;
        total += bytes.len();
        out.push(crate::CheckAttachment {
            name: meta.name,
            content_type: meta.content_type,
            bytes,
        });
    }
    Ok(out)
}

/// Every escalation kind of the runbook set.
pub(crate) fn known_kinds(state: &AppState) -> Vec<String> {
    casework::actions::known_kinds(&state.runbooks)
}

pub(crate) async fn assign(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
    assignee: Option<String>,
) -> AppResult<Incident> {
    let known = match assignee.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        Some(a) => state.store.user(a).await?.map(|u| u.username),
        None => None,
    };
    act(state, user, id, |case| {
        casework::actions::assign(&actor(user), case, Some(version), assignee, |a| {
            known.as_deref() == Some(a)
        })
    })
    .await
}

/// The incidents of a queue tab.
pub(crate) async fn queue(
    state: &AppState,
    user: &CurrentUser,
    level: &str,
    tab: &str,
    account: Option<String>,
) -> AppResult<Vec<Incident>> {
    let mut filter = ListFilter {
        level: Some(level.to_owned()),
        account_contains: account.filter(|a| !a.trim().is_empty()),
        limit: Some(200),
        ..ListFilter::default()
    };
    match tab {
        "new" => filter.status = Some(IncStatus::Open),
        "mine" => filter.assignee = Some(user.username.clone()),
        "waiting" => filter.status = Some(IncStatus::WaitingUser),
        "escalated" => filter.status = Some(IncStatus::Escalated),
        "closed" => filter.status = Some(IncStatus::Closed),
        "escalated_by_me" => {
            // What I handed over, at whatever level it is now.
            filter.level = None;
            filter.escalated_by = Some(user.username.clone());
        }
        "all" => {}
        other => {
            return Err(AppError::BadRequest(format!(
                "unknown queue tab {other} (new, mine, waiting, escalated, escalated_by_me, closed, all)"
            )));
        }
    }
    let mut list = state.store.list(&filter).await?;
    if tab == "new" {
        // "New" means nobody has it yet.
        list.retain(|i| i.assignee.is_none());
    }
    if tab == "mine" {
        list.retain(|i| i.status != IncStatus::Closed);
    }
    Ok(list)
}
