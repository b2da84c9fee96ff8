//! The incident flow: step records become runbook facts, the runbook engine says what comes next
//! (a step to ask, an escalation to offer, an outcome to close with).

use incidents::{Incident, StepRecord};
use runbook::{Ending, EvalOptions, Evaluation, Fact, Facts, Level, RunbookSet, Source, Status};

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

/// The incident's level as the runbook engine's level ("L2" -> `Level::L2`).
pub(crate) fn incident_level(incident: &Incident) -> Level {
    match incident.level.as_str() {
        "L2" => Level::L2,
        "L3" => Level::L3,
        // Unknown levels are treated as the lowest working level: it can only offer less.
        _ => Level::L1,
    }
}

fn source_of(s: &str) -> Source {
    match s {
        "automated" => Source::Automated,
        "assumed" => Source::Assumed,
        _ => Source::Agent,
    }
}

/// The facts the step records establish; a later record of the same step wins (an answer can
/// be corrected by answering again).
pub(crate) fn facts_of(steps: &[StepRecord]) -> Facts {
    let mut facts = Facts::new();
    for r in steps {
        facts.insert(
            r.step.clone(),
            Fact {
                value: r.answer.clone(),
                source: source_of(&r.source),
            },
        );
    }
    facts
}

/// Where the walk starts: an incident escalated with a kind is worked from that kind's entry
/// step (the escalation may have been decided by an agent before the runbook reached it);
/// otherwise from the runbook's start.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start<'a> {
    pub(crate) runbook: &'a str,
    pub(crate) entry: Option<&'a str>,
}

impl<'a> Start<'a> {
    pub(crate) fn of(incident: &'a Incident) -> Start<'a> {
        Start {
            runbook: &incident.runbook,
            entry: incident
                .escalation_kind
                .as_deref()
                .filter(|_| incident_level(incident) > Level::L1),
        }
    }
}

/// The runbook (the incident's own first) that defines the escalation entry `kind`.
pub(crate) fn runbook_with_entry<'s>(
    set: &'s RunbookSet,
    preferred: &str,
    kind: &str,
) -> Option<&'s str> {
    if set
        .get(preferred)
        .is_some_and(|rb| rb.entries.contains_key(kind))
    {
        return set.get(preferred).map(|rb| rb.id.as_str());
    }
    set.iter()
        .find(|rb| rb.entries.contains_key(kind))
        .map(|rb| rb.id.as_str())
}

/// Runs the engine over the facts, walking escalations up to `level`.
pub(crate) fn evaluate_at(
    set: &RunbookSet,
    start: Start<'_>,
    facts: &Facts,
    level: Level,
) -> AppResult<Evaluation> {
    let opts = EvalOptions {
        max_level: level,
        follow_redirects: true,
        use_defaults: false,
    };
    let result = match start
        .entry
        .and_then(|kind| runbook_with_entry(set, start.runbook, kind).map(|rb| (rb, kind)))
    {
        Some((rb, kind)) => runbook::evaluate_from_entry(set, rb, kind, facts, &opts),
        None => runbook::evaluate(set, start.runbook, facts, &opts),
    };
    result.map_err(|e| {
        AppError::BadRequest(format!(
            "the runbook {} cannot be followed with these answers: {e}",
            start.runbook
        ))
    })
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

/// The step to store as the incident's current step after `facts` (None when finished).
pub(crate) fn current_step_after(
    set: &RunbookSet,
    start: Start<'_>,
    facts: &Facts,
    level: Level,
) -> AppResult<Option<String>> {
    let eval = evaluate_at(set, start, facts, level)?;
    Ok(match eval.status {
        Status::NeedsAnswer { step, .. } => Some(step),
        Status::Finished(_) => None,
    })
}

/// The store's spelling of a level ("L2").
pub(crate) fn level_name(level: Level) -> String {
    level.to_string()
}
