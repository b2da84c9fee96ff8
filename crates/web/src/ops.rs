//! The actions on incidents, shared by the pages and the API: who may do what, and what is
//! written to the store (always with the version the agent read, so a stale write is refused).

use std::collections::BTreeMap;
use std::time::Instant;

use incidents::{
    Incident, ListFilter, NewEscalation, NewIncident, NewStepRecord, Status as IncStatus,
};
use runbook::{Fact, Level, Source};
use serde::Deserialize;

use crate::auth::{CurrentUser, Role, level_rank};
use crate::error::{AppError, AppResult};
use crate::flow::{self, Next};
use crate::{AppState, CHECK_TIMEOUT, CheckOutcome};

/// The runbook incidents follow unless told otherwise.
pub(crate) const DEFAULT_RUNBOOK: &str = "user-cant-call";

pub(crate) async fn load(state: &AppState, id: i64) -> AppResult<Incident> {
    Ok(state.store.get(id).await?)
}

/// May `user` see this incident? Every agent may read every incident (an L1 agent follows what
/// became of an escalation); writing is narrower.
pub(crate) fn can_work(user: &CurrentUser, inc: &Incident) -> bool {
    inc.status != IncStatus::Closed && level_rank(&inc.level) <= user.role.max_level()
}

/// Closing needs the right to work the incident at its level: an L1 agent cannot close an L2
/// escalation.
pub(crate) fn can_close(user: &CurrentUser, inc: &Incident) -> bool {
    can_work(user, inc)
}

pub(crate) fn can_take(user: &CurrentUser, inc: &Incident) -> bool {
    can_work(user, inc) && inc.assignee.as_deref() != Some(user.username.as_str())
}

pub(crate) fn can_open(_user: &CurrentUser) -> bool {
    // Every role takes calls: an L2 engineer may open an incident found on their own.
    true
}

pub(crate) fn can_see_queue(user: &CurrentUser, level: &str) -> bool {
    level_rank(level) <= user.role.max_level()
}

fn require_work(user: &CurrentUser, inc: &Incident) -> AppResult<()> {
    if inc.status == IncStatus::Closed {
        return Err(AppError::Conflict {
            current_version: Some(inc.version),
            message: format!("incident {} is closed", inc.id),
        });
    }
    user.require(
        can_work(user, inc),
        &format!("working an {} incident", inc.level),
    )
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
    user.require(can_open(user), "opening incidents")?;
    let account = req.account.trim();
    let reporter = req.reporter.trim();
    if account.is_empty() || reporter.is_empty() {
        return Err(AppError::BadRequest(
            "the account and the reporter are required".to_owned(),
        ));
    }
    let runbook_id = req
        .runbook
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(DEFAULT_RUNBOOK)
        .to_owned();
    let Some(rb) = state.runbooks.get(&runbook_id) else {
        return Err(AppError::BadRequest(format!(
            "no runbook named {runbook_id}"
        )));
    };
    // Validate the gate answers before anything is written.
    for (step, answer) in &req.gate {
        if answer.is_empty() {
            continue;
        }
        let Some((_, s)) = state.runbooks.step(step) else {
            return Err(AppError::BadRequest(format!("no step named {step}")));
        };
        if s.answer(answer).is_none() {
            return Err(AppError::BadRequest(format!(
                "{answer} is not an answer of {step} (allowed: {})",
                s.allowed_answers().join(", ")
            )));
        }
    }
    // Work out the gate answers in the order the runbook asks them (answers to steps the path
    // does not reach are ignored), then write the incident and its answers in one
    // transaction: a failure leaves nothing half-opened, a success is all of it.
    let mut facts = runbook::Facts::new();
    let mut steps = Vec::new();
    for _ in 0..req.gate.len() {
        let start = flow::Start {
            runbook: &runbook_id,
            entry: None,
        };
        let eval = flow::evaluate_at(&state.runbooks, start, &facts, Level::L1)?;
        let runbook::Status::NeedsAnswer { runbook, step } = eval.status else {
            break;
        };
        let Some(answer) = req.gate.get(&step).filter(|a| !a.is_empty()) else {
            break;
        };
        facts.insert(
            step.clone(),
            Fact {
                value: answer.clone(),
                source: Source::Agent,
            },
        );
        let next = flow::current_step_after(&state.runbooks, start, &facts, Level::L1)?;
        steps.push((
            NewStepRecord {
                runbook,
                step,
                answer: answer.clone(),
                source: "agent".to_owned(),
                evidence: serde_json::Value::Null,
                note: Some("answered when the incident was opened".to_owned()),
            },
            next,
        ));
    }
    let inc = state
        .store
        .open_incident_with_steps(
            NewIncident {
                account: account.to_owned(),
                reporter: reporter.to_owned(),
                description: req.description.trim().to_owned(),
                runbook: runbook_id.clone(),
                level: "L1".to_owned(),
                current_step: Some(rb.start.clone()),
            },
            steps,
            &user.username,
        )
        .await?;
    Ok(inc)
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

pub(crate) async fn answer(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    req: AnswerReq,
    source: &str,
) -> AppResult<Incident> {
    let inc = load(state, id).await?;
    require_work(user, &inc)?;
    if inc.version != req.version {
        // Refuse before evaluating: the agent answered a question asked of an older state.
        return Err(incidents::Error::Conflict {
            id,
            current_version: inc.version,
        }
        .into());
    }
    let steps = state.store.steps(id).await?;
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    let asked = matches!(&next, Next::Ask { step, .. } if *step == req.step);
    if !asked {
        // The incident and its steps are two reads: another agent may have answered between
        // them. Then this is a plain version conflict, reported with the version now current.
        let now = load(state, id).await?;
        if now.version != req.version {
            return Err(incidents::Error::Conflict {
                id,
                current_version: now.version,
            }
            .into());
        }
    }
    let Next::Ask { runbook, step } = next else {
        return Err(AppError::Conflict {
            current_version: Some(inc.version),
            message: "the runbook asks no question now (it reached an ending)".to_owned(),
        });
    };
    if step != req.step {
        return Err(AppError::Conflict {
            current_version: Some(inc.version),
            message: format!(
                "the runbook now asks {step}, not {}; reload the incident",
                req.step
            ),
        });
    }
    let Some((_, def)) = state.runbooks.step(&step) else {
        return Err(AppError::BadRequest(format!("no step named {step}")));
    };
    if def.answer(&req.answer).is_none() {
        return Err(AppError::BadRequest(format!(
            "{} is not an answer of {step} (allowed: {})",
            req.answer,
            def.allowed_answers().join(", ")
        )));
    }
    let mut facts = flow::facts_of(&steps);
    facts.insert(
        step.clone(),
        Fact {
            value: req.answer.clone(),
            source: if source == "automated" {
                Source::Automated
            } else {
                Source::Agent
            },
        },
    );
    let next_step = flow::current_step_after(
        &state.runbooks,
        flow::Start::of(&inc),
        &facts,
        flow::incident_level(&inc),
    )?;
    let note = req
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    Ok(state
        .store
        .record_step(
            id,
            req.version,
            NewStepRecord {
                runbook,
                step,
                answer: req.answer,
                source: source.to_owned(),
                evidence: req.evidence.unwrap_or(serde_json::Value::Null),
                note,
            },
            next_step,
            &user.username,
        )
        .await?)
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

/// Runs the automated check of the step the runbook asks now; conclusive evidence answers the
/// step (source "automated"), inconclusive evidence is kept as a check run for the agent.
pub(crate) async fn run_check(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
) -> AppResult<CheckResult> {
    let inc = load(state, id).await?;
    require_work(user, &inc)?;
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
        return Err(AppError::BadRequest(format!(
            "step {step} has no automated check"
        )));
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
    let conclusive = outcome.answer.as_deref().is_some_and(|a| {
        state
            .runbooks
            .step(&step)
            .is_some_and(|(_, s)| s.answer(a).is_some())
    });
    if let (true, Some(a)) = (conclusive, outcome.answer.clone()) {
        let incident = answer(
            state,
            user,
            id,
            AnswerReq {
                version,
                step: step.clone(),
                answer: a,
                note: Some(outcome.summary.clone()),
                evidence: Some(evidence),
            },
            "automated",
        )
        .await?;
        return Ok(CheckResult {
            step,
            outcome,
            recorded: true,
            incident,
        });
    }
    // Kept as a check run: a record only the server writes, so no upload can pass for one.
    state
        .store
        .add_check_run(
            id,
            &step,
            outcome.answer.as_deref(),
            &outcome.summary,
            &evidence,
            &user.username,
        )
        .await?;
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

/// Handing the incident to a higher level.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EscalateReq {
    pub(crate) version: i64,
    /// "L2" or "L3"; by default the level the runbook escalates to, else the next one up.
    #[serde(default)]
    pub(crate) to_level: Option<String>,
    #[serde(default)]
    pub(crate) kind: Option<String>,
    pub(crate) reason: String,
}

pub(crate) async fn escalate(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    req: EscalateReq,
) -> AppResult<Incident> {
    let inc = load(state, id).await?;
    require_work(user, &inc)?;
    if req.reason.trim().is_empty() {
        return Err(AppError::BadRequest(
            "say why you escalate (the reason is required)".to_owned(),
        ));
    }
    let steps = state.store.steps(id).await?;
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    let suggested = match &next {
        Next::Escalate { level, kind } => Some((*level, kind.clone())),
        _ => None,
    };
    let to_level = match req
        .to_level
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(l) => l
            .parse::<Level>()
            .map_err(|_| AppError::BadRequest(format!("unknown level {l} (expected L2 or L3)")))?,
        None => match &suggested {
            Some((l, _)) => *l,
            None if inc.level == "L1" => Level::L2,
            None => Level::L3,
        },
    };
    if to_level <= flow::incident_level(&inc) {
        return Err(AppError::BadRequest(format!(
            "an {} incident can only be escalated to a higher level",
            inc.level
        )));
    }
    let kind = req
        .kind
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .or_else(|| suggested.clone().and_then(|(_, k)| k));
    if let Some(k) = &kind
        && flow::runbook_with_entry(&state.runbooks, &inc.runbook, k).is_none()
    {
        return Err(AppError::BadRequest(format!(
            "unknown escalation kind {k} (known: {})",
            known_kinds(state).join(", ")
        )));
    }
    // The new level's first step: walked from the kind's entry when there is one, so an
    // escalation the agent decided before the runbook reached it starts at that entry too.
    let next_step = flow::current_step_after(
        &state.runbooks,
        flow::Start {
            runbook: &inc.runbook,
            entry: kind.as_deref().filter(|_| to_level > Level::L1),
        },
        &flow::facts_of(&steps),
        to_level,
    )?;
    Ok(state
        .store
        .escalate(
            id,
            req.version,
            NewEscalation {
                to_level: flow::level_name(to_level),
                kind,
                reason: req.reason.trim().to_owned(),
            },
            next_step,
            &user.username,
        )
        .await?)
}

/// Every escalation kind of the runbook set.
pub(crate) fn known_kinds(state: &AppState) -> Vec<String> {
    let mut kinds: Vec<String> = state
        .runbooks
        .iter()
        .flat_map(|rb| rb.entries.keys().cloned())
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Closing with the outcome the runbook reached.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CloseReq {
    pub(crate) version: i64,
    #[serde(default)]
    pub(crate) outcome: Option<String>,
    #[serde(default)]
    pub(crate) note: Option<String>,
}

pub(crate) async fn close(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    req: CloseReq,
) -> AppResult<Incident> {
    let inc = load(state, id).await?;
    require_work(user, &inc)?;
    user.require(
        can_close(user, &inc),
        &format!("closing an {} incident", inc.level),
    )?;
    let steps = state.store.steps(id).await?;
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    let Next::Close { outcome, .. } = next else {
        return Err(AppError::Conflict {
            current_version: Some(inc.version),
            message: "the runbook has not reached an outcome yet; answer its steps first"
                .to_owned(),
        });
    };
    if let Some(asked) = req.outcome.as_deref().filter(|s| !s.is_empty())
        && asked != outcome
    {
        return Err(AppError::BadRequest(format!(
            "the runbook reached {outcome}, not {asked}"
        )));
    }
    let note = req
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    Ok(state
        .store
        .close(id, req.version, &outcome, note, &user.username)
        .await?)
}

/// Taking an incident: it becomes mine, and an escalated one is being worked again.
pub(crate) async fn take(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
) -> AppResult<Incident> {
    let inc = load(state, id).await?;
    require_work(user, &inc)?;
    let mut inc = state
        .store
        .assign(id, version, Some(user.username.clone()), &user.username)
        .await?;
    if inc.status == IncStatus::Escalated {
        inc = state
            .store
            .set_status(id, inc.version, IncStatus::Open, &user.username)
            .await?;
    }
    Ok(inc)
}

pub(crate) async fn assign(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
    assignee: Option<String>,
) -> AppResult<Incident> {
    let inc = load(state, id).await?;
    require_work(user, &inc)?;
    let assignee = assignee
        .map(|a| a.trim().to_owned())
        .filter(|a| !a.is_empty());
    if let Some(a) = &assignee
        && state.store.user(a).await?.is_none()
    {
        return Err(AppError::BadRequest(format!("no user named {a}")));
    }
    Ok(state
        .store
        .assign(id, version, assignee, &user.username)
        .await?)
}

/// Waiting for the user, or back to work; closing and escalating have their own actions.
pub(crate) async fn set_status(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    version: i64,
    status: &str,
) -> AppResult<Incident> {
    let inc = load(state, id).await?;
    require_work(user, &inc)?;
    let status = match status {
        "waiting_user" => IncStatus::WaitingUser,
        "open" => IncStatus::Open,
        other => {
            return Err(AppError::BadRequest(format!(
                "cannot set status {other} here (use waiting_user or open)"
            )));
        }
    };
    Ok(state
        .store
        .set_status(id, version, status, &user.username)
        .await?)
}

/// Attaching a client log or capture.
/// Whether `user` may attach files to incident `id`: checked before an upload's body is read.
pub(crate) async fn may_upload(state: &AppState, user: &CurrentUser, id: i64) -> AppResult<()> {
    let inc = load(state, id).await?;
    user.require(
        inc.status != IncStatus::Closed && (can_work(user, &inc) || user.role >= Role::L2),
        "attaching files to this incident",
    )
}

pub(crate) async fn upload(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    name: &str,
    content_type: &str,
    bytes: &[u8],
) -> AppResult<incidents::Attachment> {
    may_upload(state, user, id).await?;
    if bytes.len() > state.cfg.max_upload_bytes {
        return Err(too_large(state.cfg.max_upload_bytes));
    }
    let name = sanitize_name(name);
    if name.is_empty() {
        return Err(AppError::BadRequest("choose a file to attach".to_owned()));
    }
    let ct = if content_type.trim().is_empty() {
        "application/octet-stream"
    } else {
        content_type.trim()
    };
    Ok(state
        .store
        .add_attachment(id, &name, ct, bytes, &user.username)
        .await?)
}

pub(crate) fn too_large(limit: usize) -> AppError {
    AppError::TooLarge(format!(
        "the file is larger than the limit of {} bytes ({} MiB)",
        limit,
        limit / (1024 * 1024)
    ))
}

/// Keeps only the last path component and printable characters of an uploaded file name, so a
/// name cannot smuggle a path or header-breaking characters into a download.
pub(crate) fn sanitize_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
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
        "all" => {}
        other => {
            return Err(AppError::BadRequest(format!(
                "unknown queue tab {other} (new, mine, waiting, escalated, closed, all)"
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

#[cfg(test)]
mod tests {
    use super::sanitize_name;

    #[test]
    fn uploaded_file_names_lose_paths_and_control_characters() {
        let table = [
            ("client.log", "client.log"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\capture.pcapng", "capture.pcapng"),
            ("evil\"\r\nX-Header: 1.txt", "evilX-Header: 1.txt"),
            ("  spaced.txt  ", "spaced.txt"),
            ("dir/", ""),
        ];
        for (input, expected) in table {
            assert_eq!(sanitize_name(input), expected, "{input:?}");
        }
    }
}
