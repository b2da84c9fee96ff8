//! How an incident's records drive its runbook: step records become facts, the incident's
//! level and escalation say where the walk starts and how far it goes. Shared by the CLI and
//! the web app so that both walk an incident the same way. No IO: values in, values out.

pub mod actions;
pub mod dossier;

pub use actions::{Actor, Case, Refusal, RefusalKind};

use incidents::{Incident, StepRecord};
use runbook::{EvalOptions, Evaluation, Fact, Facts, Level, RunbookSet, Source, Status};

/// The incident's level as the runbook engine's level ("L2" -> `Level::L2`), parsed by the one
/// rule every crate uses (`runbook::Level`'s `FromStr`). The store refuses any other level; a
/// row changed behind its back fails closed, as the highest level (only L3 may work it).
pub fn level_of(incident: &Incident) -> Level {
    match incident.level.parse::<Level>() {
        Ok(Level::Gate) | Err(_) => Level::L3,
        Ok(level) => level,
    }
}

/// The facts the current (not superseded) step records establish; a later record of the same
/// step wins.
pub fn facts_of(steps: &[StepRecord]) -> Facts {
    steps
        .iter()
        .filter(|r| r.is_current())
        .map(|r| {
            let source = r.source.parse().unwrap_or(Source::Agent);
            (r.step.clone(), Fact::new(r.answer.clone(), source))
        })
        .collect()
}

/// Where the walk starts: an incident escalated with a kind is worked from that kind's entry
/// step (the escalation may have been decided by an agent before the runbook reached it);
/// otherwise from the runbook's start.
#[derive(Debug, Clone, Copy)]
pub struct Start<'a> {
    pub runbook: &'a str,
    pub entry: Option<&'a str>,
}

impl<'a> Start<'a> {
    pub fn of(incident: &'a Incident) -> Start<'a> {
        Start {
            runbook: &incident.runbook,
            entry: incident
                .escalation_kind
                .as_deref()
                .filter(|_| level_of(incident) > Level::L1),
        }
    }
}

/// The runbook (the incident's own first) that defines the escalation entry `kind`.
pub fn runbook_with_entry<'s>(set: &'s RunbookSet, preferred: &str, kind: &str) -> Option<&'s str> {
    if let Some(rb) = set
        .get(preferred)
        .filter(|rb| rb.entries.contains_key(kind))
    {
        return Some(rb.id.as_str());
    }
    set.iter()
        .find(|rb| rb.entries.contains_key(kind))
        .map(|rb| rb.id.as_str())
}

/// The engine over `facts` from `start`, walking escalations up to `level` and redirects.
pub fn evaluate_at(
    set: &RunbookSet,
    start: Start<'_>,
    facts: &Facts,
    level: Level,
) -> runbook::Result<Evaluation> {
    let opts = EvalOptions {
        max_level: level,
        follow_redirects: true,
        use_defaults: false,
    };
    match start
        .entry
        .and_then(|kind| runbook_with_entry(set, start.runbook, kind).map(|rb| (rb, kind)))
    {
        Some((rb, kind)) => runbook::evaluate_from_entry(set, rb, kind, facts, &opts),
        None => runbook::evaluate(set, start.runbook, facts, &opts),
    }
}

/// The incident's walk with `facts` (its records, possibly with an answer about to be added).
pub fn evaluate(
    set: &RunbookSet,
    incident: &Incident,
    facts: &Facts,
) -> runbook::Result<Evaluation> {
    evaluate_at(set, Start::of(incident), facts, level_of(incident))
}

/// The step to store as the incident's current step after `facts` (None when finished).
pub fn current_step_after(
    set: &RunbookSet,
    start: Start<'_>,
    facts: &Facts,
    level: Level,
) -> runbook::Result<Option<String>> {
    Ok(match evaluate_at(set, start, facts, level)?.status {
        Status::NeedsAnswer { step, .. } => Some(step),
        Status::Finished(_) => None,
    })
}
