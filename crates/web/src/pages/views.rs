//! What several incident pages show alike: the incident's head, the path of answers and the
//! attachments.

use incidents::{Incident, StepRecord};

use super::short_time;
use crate::AppState;
use crate::labels;

/// The incident's head, as every incident page shows it.
pub(crate) struct IncView {
    pub(crate) id: i64,
    pub(crate) account: String,
    pub(crate) reporter: String,
    pub(crate) description: String,
    pub(crate) level: String,
    pub(crate) status: &'static str,
    pub(crate) runbook: String,
    pub(crate) assignee: String,
    pub(crate) escalation_kind: String,
    pub(crate) version: i64,
    /// The status, runbook and escalation kind in words.
    pub(crate) status_words: &'static str,
    pub(crate) runbook_title: String,
    pub(crate) kind_words: String,
    /// The ticket a webhook receiver filed for it, if one did.
    pub(crate) ticket: String,
}

impl IncView {
    pub(crate) fn of(state: &AppState, i: &Incident) -> IncView {
        IncView {
            status_words: labels::status(i.status),
            runbook_title: state
                .runbooks
                .get(&i.runbook)
                .map_or_else(|| labels::humanize(&i.runbook), |r| r.title.clone()),
            kind_words: i
                .escalation_kind
                .as_deref()
                .map(|k| labels::escalation_kind(&state.runbooks, Some(k), &i.level))
                .unwrap_or_default(),
            ticket: i.ticket_ref.clone().unwrap_or_default(),
            id: i.id,
            account: i.account.clone(),
            reporter: i.reporter.clone(),
            description: i.description.clone(),
            level: i.level.clone(),
            status: i.status.as_str(),
            runbook: i.runbook.clone(),
            assignee: i.assignee.clone().unwrap_or_default(),
            escalation_kind: i.escalation_kind.clone().unwrap_or_default(),
            version: i.version,
        }
    }
}

/// One step record of the path of answers.
pub(super) struct PathRow {
    pub(super) record_id: i64,
    pub(super) step: String,
    pub(super) title: String,
    /// The answer's value, and every answer the step allows (value, label), to revise it.
    pub(super) value: String,
    pub(super) choices: Vec<(String, String)>,
    /// "revised by X, when" for a superseded record; empty for a current one.
    pub(super) superseded: String,
    pub(super) answer: String,
    pub(super) source: String,
    /// The source in words ("Automated check").
    pub(super) source_words: String,
    pub(super) actor: String,
    pub(super) at: String,
    pub(super) note: String,
    pub(super) evidence: String,
}

pub(super) fn path_rows(state: &AppState, steps: &[StepRecord]) -> Vec<PathRow> {
    steps
        .iter()
        .map(|r| {
            let def = state.runbooks.step(&r.step).map(|(_, s)| s);
            PathRow {
                record_id: r.id,
                step: r.step.clone(),
                title: def.map(|s| s.title.clone()).unwrap_or_default(),
                value: r.answer.clone(),
                choices: def
                    .map(|s| {
                        s.answers
                            .iter()
                            .map(|a| (a.value.clone(), a.label.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                superseded: match (&r.superseded_by, &r.superseded_at) {
                    (Some(by), Some(at)) => format!("revised by {by}, {}", short_time(at)),
                    _ => String::new(),
                },
                answer: def
                    .and_then(|s| s.answer(&r.answer))
                    .map_or_else(|| r.answer.clone(), |a| a.label.clone()),
                source: r.source.clone(),
                source_words: labels::source(&r.source),
                actor: r.actor.clone(),
                at: short_time(&r.at),
                note: r.note.clone().unwrap_or_default(),
                evidence: if r.evidence.is_null() {
                    String::new()
                } else {
                    serde_json::to_string_pretty(&r.evidence).unwrap_or_default()
                },
            }
        })
        .collect()
}

/// One attachment in the list.
pub(super) struct AttView {
    pub(super) id: i64,
    pub(super) name: String,
    pub(super) size: i64,
    pub(super) actor: String,
    /// Whether the page links to its analysis (not for the app's own evidence files).
    pub(super) viewable: bool,
}

pub(super) fn att_views(state: &AppState, atts: &[incidents::Attachment]) -> Vec<AttView> {
    atts.iter()
        .map(|a| AttView {
            id: a.id,
            name: a.name.clone(),
            size: a.size,
            actor: a.actor.clone(),
            viewable: state.viewer.is_some(),
        })
        .collect()
}
