//! The guided step page: what the runbook asks next, with the evidence, the proposal of the
//! step's automated check, the path so far, notes and attachments; and the notices the page
//! shows after a redirect.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use incidents::StepRecord;
use serde::Deserialize;

use super::views::{AttView, IncView, PathRow, att_views, path_rows};
use super::{Nav, PageResult, html, short_time};
use crate::AppState;
use crate::auth::{CurrentUser, PageUser};
use crate::error::AppResult;
use crate::flow::{self, Next};
use crate::ops;

struct StepView {
    runbook: String,
    id: String,
    level: String,
    title: String,
    question: String,
    instruction: Option<String>,
    note: Option<String>,
    check: Option<String>,
    answers: Vec<(String, String)>,
}

struct EvidenceView {
    origin: String,
    summary: String,
    /// The evidence as (what, value) rows; the raw JSON stays behind a toggle.
    facts: Vec<(String, String)>,
    /// The check itself failed (server unreachable, timeout): shown as a failure.
    failed: bool,
    json: String,
}

/// What the step's automated check proposes; the agent accepts it or answers otherwise.
struct ProposalView {
    value: String,
    label: String,
    summary: String,
    at: String,
}

struct NoteView {
    text: String,
    actor: String,
    at: String,
}

struct OutcomeView {
    id: String,
    title: String,
    meaning: String,
    disposition: String,
}

#[derive(Template)]
#[template(path = "step.html")]
pub(super) struct StepPage {
    nav: Option<Nav>,
    csrf: String,
    inc: IncView,
    message: Option<String>,
    error: Option<String>,
    ask: Option<StepView>,
    escalate: Option<(String, String)>,
    outcome: Option<OutcomeView>,
    redirected: Option<String>,
    closed: Option<String>,
    evidence: Vec<EvidenceView>,
    path: Vec<PathRow>,
    attachments: Vec<AttView>,
    /// The last escalation: (from level, who, reason).
    escalated_by: Option<(String, String, String)>,
    can_work: bool,
    can_close: bool,
    /// What the step's automated check proposes, if it ran and was conclusive.
    proposal: Option<ProposalView>,
    /// The internal notes, oldest first.
    notes: Vec<NoteView>,
    /// Announces a switch to another runbook ("Continuing in … because …").
    switch: Option<String>,
    /// Every outcome of the incident's runbooks (id, title), to close with another one.
    outcomes: Vec<(String, String)>,
    can_take: bool,
    can_upload: bool,
    checks_enabled: bool,
    note: String,
    max_upload: String,
    /// The account's recent SIP events, when a capture endpoint keeps them.
    sip_events: Option<std::result::Result<Vec<crate::SipEventLine>, String>>,
}

/// The account's recent SIP events, bounded in time; `None` when no window is configured.
async fn sip_events_of(
    state: &AppState,
    account: &str,
) -> Option<std::result::Result<Vec<crate::SipEventLine>, String>> {
    let events = state.events.as_ref()?;
    Some(
        match tokio::time::timeout(crate::EVENTS_TIMEOUT, events.recent(account)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the event window did not answer within {} s",
                crate::EVENTS_TIMEOUT.as_secs()
            )),
        },
    )
}

/// Builds the step page for the incident's current state; `error` and `note` carry a refused
/// answer back to the agent so nothing typed is lost.
pub(super) async fn step_page_view(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    message: Option<String>,
    error: Option<String>,
    note: String,
) -> AppResult<StepPage> {
    let inc = ops::load(state, id).await?;
    let steps = state.store.steps(id).await?;
    let atts = state.store.attachments(id).await?;
    let escalations = state.store.escalations(id).await?;
    let can_work = ops::can_work(user, &inc);
    let mut page = StepPage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        inc: IncView::of(state, &inc),
        message,
        error,
        ask: None,
        escalate: None,
        outcome: None,
        redirected: None,
        closed: None,
        evidence: Vec::new(),
        path: path_rows(state, &steps),
        attachments: att_views(state, &atts),
        escalated_by: escalations
            .last()
            .map(|e| (e.from_level.clone(), e.actor.clone(), e.reason.clone())),
        can_work,
        // Only when the runbook offers to close, below.
        can_close: false,
        proposal: None,
        notes: state
            .store
            .notes(id)
            .await?
            .into_iter()
            .map(|n| NoteView {
                text: n.text,
                actor: n.actor,
                at: short_time(&n.at),
            })
            .collect(),
        switch: None,
        outcomes: state
            .runbooks
            .iter()
            .flat_map(|rb| rb.outcomes.iter().map(|o| (o.id.clone(), o.title.clone())))
            .collect(),
        can_take: ops::can_take(user, &inc),
        can_upload: inc.status != incidents::Status::Closed,
        checks_enabled: state.checks.is_some(),
        note,
        max_upload: format!("{} MiB", state.cfg.max_upload_bytes / (1024 * 1024)),
        sip_events: sip_events_of(state, &inc.account).await,
    };
    if inc.status == incidents::Status::Closed {
        page.closed = Some(
            inc.outcome
                .as_deref()
                .map(|o| crate::labels::outcome_title(&state.runbooks, Some(&inc.runbook), o))
                .unwrap_or_default(),
        );
        return Ok(page);
    }
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    match next {
        Next::Ask { runbook, step } => {
            if runbook != inc.runbook {
                page.switch = Some(runbook_switch(state, &inc.runbook, &runbook, &steps));
            }
            if let Some((_, s)) = state.runbooks.step(&step) {
                page.evidence = evidence_for(state, inc.id, &step, &steps).await?;
                page.proposal = state
                    .store
                    .check_runs(inc.id)
                    .await?
                    .into_iter()
                    .rev()
                    .find(|r| r.step == step)
                    .and_then(|r| {
                        let value = r.answer.clone()?;
                        let label = s.answer(&value)?.label.clone();
                        Some(ProposalView {
                            value,
                            label,
                            summary: r.summary.clone(),
                            at: short_time(&r.at),
                        })
                    });
                page.ask = Some(StepView {
                    runbook,
                    id: s.id.clone(),
                    level: s.level.to_string(),
                    title: s.title.clone(),
                    question: s.question.clone(),
                    instruction: s.instruction.clone(),
                    note: s.note.clone(),
                    check: s.check.map(|c| c.as_str().to_owned()),
                    answers: s
                        .answers
                        .iter()
                        .map(|a| (a.value.clone(), a.label.clone()))
                        .collect(),
                });
            }
        }
        Next::Escalate { level, kind } => {
            page.escalate = Some((level.to_string(), kind.unwrap_or_default()));
        }
        Next::Close { runbook, outcome } => {
            let def = state
                .runbooks
                .get(&runbook)
                .and_then(|rb| rb.outcome(&outcome));
            page.outcome = Some(OutcomeView {
                id: outcome.clone(),
                title: def.map_or_else(|| outcome.clone(), |d| d.title.clone()),
                meaning: def.map(|d| d.meaning.clone()).unwrap_or_default(),
                disposition: def.map(|d| d.disposition.to_string()).unwrap_or_default(),
            });
            page.can_close = can_work;
        }
        Next::Redirected { runbook } => {
            page.redirected = Some(
                state
                    .runbooks
                    .get(&runbook)
                    .map_or(runbook, |r| r.title.clone()),
            );
        }
    }
    Ok(page)
}

/// "Continuing in Connection issues, because …": why the walk left the incident's runbook.
fn runbook_switch(state: &AppState, from: &str, to: &str, steps: &[StepRecord]) -> String {
    let title = |id: &str| {
        state
            .runbooks
            .get(id)
            .map_or_else(|| id.to_owned(), |r| r.title.clone())
    };
    let because = steps
        .iter()
        .rev()
        .filter(|r| r.is_current() && r.runbook == from)
        .find_map(|r| {
            let (_, def) = state.runbooks.step(&r.step)?;
            let label = def.answer(&r.answer)?.label.clone();
            Some(format!(
                ", because the answer to \u{201c}{}\u{201d} was \u{201c}{label}\u{201d}",
                def.title
            ))
        })
        .unwrap_or_default();
    format!(
        "Continuing in \u{201c}{}\u{201d}{because}: the runbook \u{201c}{}\u{201d} sends this case there.",
        title(to),
        title(from)
    )
}

/// The evidence recorded for one step: earlier answers to it and the server's own check runs
/// (never attachments: an upload can be named anything).
async fn evidence_for(
    state: &AppState,
    inc: i64,
    step: &str,
    steps: &[StepRecord],
) -> AppResult<Vec<EvidenceView>> {
    let mut out = Vec::new();
    let runs = state.store.check_runs(inc).await?;
    // Newest first; a handful is plenty on a page.
    for run in runs.iter().rev().filter(|r| r.step == step).take(5) {
        let failed = crate::workspace::check_failed(&run.evidence, &run.summary);
        out.push(EvidenceView {
            origin: if failed {
                format!("automated check failed, {}", short_time(&run.at))
            } else {
                format!("automated check, {}", short_time(&run.at))
            },
            summary: run.summary.clone(),
            facts: crate::workspace::facts(&run.evidence["evidence"], 30),
            failed,
            json: serde_json::to_string_pretty(&run.evidence["evidence"]).unwrap_or_default(),
        });
    }
    for r in steps.iter().rev().filter(|r| r.step == step) {
        out.push(EvidenceView {
            origin: format!("earlier answer by {} ({})", r.actor, r.source),
            summary: r.answer.clone(),
            facts: if r.evidence.is_null() {
                Vec::new()
            } else {
                crate::workspace::facts(&r.evidence, 30)
            },
            failed: false,
            json: serde_json::to_string_pretty(&r.evidence).unwrap_or_default(),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
pub(crate) struct MsgQuery {
    #[serde(default)]
    msg: Option<String>,
}

pub(crate) async fn step_page(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Query(q): Query<MsgQuery>,
) -> PageResult {
    let (message, error) = match q.msg.as_deref() {
        Some(code) => match notice(&state, id, code).await? {
            Some((text, true)) => (None, Some(text)),
            Some((text, false)) => (Some(text), None),
            None => (None, None),
        },
        None => (None, None),
    };
    let page = step_page_view(&state, &user, id, message, error, String::new()).await?;
    html(&page)
}

/// The notices a redirect may ask for (`?msg=CODE`), with whether it reports a failure. The
/// text is built from what the store holds, never from the URL, so a link cannot put words in
/// the notice.
async fn notice(state: &AppState, id: i64, code: &str) -> AppResult<Option<(String, bool)>> {
    let inc = ops::load(state, id).await?;
    let title = |step: &str| {
        state
            .runbooks
            .step(step)
            .map_or_else(|| step.to_owned(), |(_, s)| s.title.clone())
    };
    let label = |step: &str, value: &str| {
        state
            .runbooks
            .step(step)
            .and_then(|(_, s)| s.answer(value).map(|a| a.label.clone()))
            .unwrap_or_else(|| value.to_owned())
    };
    let ok = |t: String| Some((t, false));
    let text = match code {
        "Recorded" | "Revised" => {
            let steps = state.store.steps(id).await?;
            steps.last().and_then(|s| {
                ok(format!(
                    "{} \u{201c}{}\u{201d}: {}",
                    if code == "Revised" {
                        "Changed"
                    } else {
                        "Recorded"
                    },
                    title(&s.step),
                    label(&s.step, &s.answer)
                ))
            })
        }
        "Check" => {
            let runs = state.store.check_runs(id).await?;
            runs.last().map(|r| {
                if crate::workspace::check_failed(&r.evidence, &r.summary) {
                    (
                        format!(
                            "The automated check of \u{201c}{}\u{201d} could not run: {}. Answer from what the user tells you, or try again.",
                            title(&r.step),
                            r.summary
                        ),
                        true,
                    )
                } else if let Some(a) = &r.answer {
                    (
                        format!(
                            "The automated check of \u{201c}{}\u{201d} proposes \u{201c}{}\u{201d}. Accept it or choose another answer.",
                            title(&r.step),
                            label(&r.step, a)
                        ),
                        false,
                    )
                } else {
                    (
                        format!(
                            "The automated check of \u{201c}{}\u{201d} was not conclusive: {}. Answer it yourself.",
                            title(&r.step),
                            r.summary
                        ),
                        false,
                    )
                }
            })
        }
        "Taken" => ok("You have it now.".to_owned()),
        "Noted" => ok("Note added.".to_owned()),
        "Status" => ok(match inc.status {
            incidents::Status::WaitingUser => "Waiting for the user.".to_owned(),
            _ => "Back to work on this incident.".to_owned(),
        }),
        "Closed" => {
            let title = inc
                .outcome
                .as_deref()
                .and_then(|o| state.runbooks.iter().find_map(|rb| rb.outcome(o)))
                .map(|o| o.title.clone())
                .unwrap_or_default();
            ok(format!("Closed: {title}"))
        }
        "Escalated" => ok(format!("Handed over to {}.", inc.level)),
        "Attached" => {
            let atts = state.store.attachments(id).await?;
            atts.last()
                .and_then(|a| ok(format!("Attached {} ({} bytes)", a.name, a.size)))
        }
        _ => None,
    };
    Ok(text)
}

/// Back to the step page with a notice code (see [`notice`]).
pub(crate) fn back_to(id: i64, code: &str) -> Response {
    Redirect::to(&format!("/incidents/{id}?msg={code}")).into_response()
}
