//! The writes an incident action makes, as one value: `casework` decides them (who may, what
//! the runbook allows, what comes next), and [`Store::apply`] writes them, each in one
//! transaction with its audit row. The CLI, the web pages and the API all go through here.

use serde::Serialize;

use crate::model::{Incident, NewEscalation, NewIncident, NewStepRecord, Status};
use crate::{Result, Store};

/// What an incident action writes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Write {
    /// A new incident with the answers given when it was opened (each with the step it moves
    /// the incident to), assigned to `assignee`.
    Open {
        incident: NewIncident,
        steps: Vec<(NewStepRecord, Option<String>)>,
        assignee: Option<String>,
    },
    /// The answer to the step the runbook asks now.
    Answer {
        record: NewStepRecord,
        next_step: Option<String>,
    },
    /// A revised earlier answer: the record `supersedes` and every later record are kept but
    /// marked superseded.
    Revise {
        supersedes: i64,
        record: NewStepRecord,
        next_step: Option<String>,
    },
    /// An internal note.
    Note { text: String },
    /// A hand-over to a higher level.
    Escalate {
        escalation: NewEscalation,
        next_step: Option<String>,
    },
    /// Who has the incident (`None`: nobody).
    Assign { assignee: Option<String> },
    /// Taking the incident: it becomes `assignee`'s, and an escalated one is worked again.
    Take { assignee: String },
    /// Waiting for the user, or back to work.
    Status { status: Status },
    /// Closing with an outcome; `overriding` is `(reached, reason)` when it is not the outcome
    /// the runbook reached.
    Close {
        outcome: String,
        note: Option<String>,
        overriding: Option<(Option<String>, String)>,
    },
}

impl Write {
    /// The action's name in the audit trail and in messages.
    pub fn action(&self) -> &'static str {
        match self {
            Write::Open { .. } => "open",
            Write::Answer { .. } => "answer",
            Write::Revise { .. } => "revise",
            Write::Note { .. } => "note",
            Write::Escalate { .. } => "escalate",
            Write::Assign { .. } => "assign",
            Write::Take { .. } => "take",
            Write::Status { .. } => "status",
            Write::Close { .. } => "close",
        }
    }
}

impl Store {
    /// Writes what an action decided. `id` and `expected_version` are those of the incident
    /// the action was planned on (ignored by `Open`; a note never conflicts). Returns the
    /// incident as written.
    pub async fn apply(
        &self,
        id: i64,
        expected_version: i64,
        write: Write,
        actor: &str,
    ) -> Result<Incident> {
        match write {
            Write::Open {
                incident,
                steps,
                assignee,
            } => {
                self.open_incident_with_steps(incident, steps, assignee, actor)
                    .await
            }
            Write::Answer { record, next_step } => {
                self.record_step(id, expected_version, record, next_step, actor)
                    .await
            }
            Write::Revise {
                supersedes,
                record,
                next_step,
            } => {
                self.revise_step(id, expected_version, supersedes, record, next_step, actor)
                    .await
            }
            Write::Note { text } => {
                self.add_note(id, &text, actor).await?;
                self.get(id).await
            }
            Write::Escalate {
                escalation,
                next_step,
            } => {
                self.escalate(id, expected_version, escalation, next_step, actor)
                    .await
            }
            Write::Assign { assignee } => self.assign(id, expected_version, assignee, actor).await,
            Write::Take { assignee } => self.take(id, expected_version, &assignee, actor).await,
            Write::Status { status } => self.set_status(id, expected_version, status, actor).await,
            Write::Close {
                outcome,
                note,
                overriding,
            } => {
                self.close_overriding(id, expected_version, &outcome, note, overriding, actor)
                    .await
            }
        }
    }
}
