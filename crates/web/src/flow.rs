//! The incident flow: step records become runbook facts, the runbook engine says what comes next
//! (a step to ask, an escalation to offer, an outcome to close with).

use incidents::{Incident, StepRecord};
use runbook::{Ending, Evaluation, Facts, Level, RunbookSet, Status};

use crate::error::{AppError, AppResult};

/// What the incident's page should offer next.
#[derive(Debug, Clone)]
pub(crate) enum Next {
    /// Ask this step.
    Ask { runbook: String, step: String },
    /// The runbook hands the incident to a higher level.
    Escalate { level: Level, kind: Option<String> },
    /// The runbook reached an outcome: offer to close with it.
    Close { runbook: String, outcome: String },
    /// Continue in another runbook (only when it cannot be followed automatically).
    Redirected { runbook: String },
}

// The walk itself is shared with the CLI (crate `casework`); this module adds what the pages
// offer next and maps engine errors to a 400.
pub(crate) use casework::{Start, facts_of, level_of as incident_level};

fn not_followable(runbook: &str, e: runbook::Error) -> AppError {
    AppError::BadRequest(format!(
        "the runbook {runbook} cannot be followed with these answers: {e}"
    ))
}

/// Runs the engine over the facts, walking escalations up to `level`.
pub(crate) fn evaluate_at(
    set: &RunbookSet,
    start: Start<'_>,
    facts: &Facts,
    level: Level,
) -> AppResult<Evaluation> {
    casework::evaluate_at(set, start, facts, level).map_err(|e| not_followable(start.runbook, e))
}

/// What comes next for an incident, from its step records.
pub(crate) fn next_of(
    set: &RunbookSet,
    incident: &Incident,
    steps: &[StepRecord],
) -> AppResult<(Evaluation, Next)> {
    let eval = evaluate_at(
        set,
        Start::of(incident),
        &facts_of(steps),
        incident_level(incident),
    )?;
    let next = next_from(&eval);
    Ok((eval, next))
}

pub(crate) fn next_from(eval: &Evaluation) -> Next {
    match &eval.status {
        Status::NeedsAnswer { runbook, step } => Next::Ask {
            runbook: runbook.clone(),
            step: step.clone(),
        },
        Status::Finished(Ending::Outcome { runbook, outcome }) => Next::Close {
            runbook: runbook.clone(),
            outcome: outcome.clone(),
        },
        Status::Finished(Ending::Escalated { level, kind }) => Next::Escalate {
            level: *level,
            kind: kind.clone(),
        },
        Status::Finished(Ending::Redirected { runbook }) => Next::Redirected {
            runbook: runbook.clone(),
        },
    }
}
