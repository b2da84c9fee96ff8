//! How an incident's step records drive the runbook engine: facts in, next step or ending out.

use incidents::{Incident, StepRecord};
use runbook::{EvalOptions, Evaluation, Fact, Facts, Level, RunbookSet};

/// The incident's level as the engine's level; escalations up to it are followed.
pub fn level_of(incident: &Incident) -> Level {
    incident
        .level
        .to_ascii_lowercase()
        .parse()
        .unwrap_or(Level::L1)
}

/// Step records as facts; a later answer to the same step replaces the earlier one.
pub fn facts_from(steps: &[StepRecord]) -> Facts {
    steps
        .iter()
        .map(|r| {
            let source = r.source.parse().unwrap_or(runbook::Source::Agent);
            (r.step.clone(), Fact::new(r.answer.clone(), source))
        })
        .collect()
}

pub fn options_for(level: Level) -> EvalOptions {
    EvalOptions {
        max_level: level,
        follow_redirects: true,
        use_defaults: false,
    }
}

/// Walks the incident's runbook with its recorded answers.
pub fn evaluate(
    set: &RunbookSet,
    incident: &Incident,
    facts: &Facts,
) -> anyhow::Result<Evaluation> {
    let opts = options_for(level_of(incident));
    Ok(runbook::evaluate(set, &incident.runbook, facts, &opts)?)
}
