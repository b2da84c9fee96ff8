//! Changes to an incident (answers, revisions, escalations, closing, assignment, status):
//! each computed from the incident's current state and written by `Store::mutate`.

use serde_json::json;

use super::{
    SELECT_INCIDENT, Store, check_actor, check_step, not_found_incident, now_ms, optional,
    refuse_closed, required,
};
use crate::model::{Incident, NewEscalation, NewStepRecord, Status, level_rank, normalize_level};
use crate::rows::{self, incident_cols};
use crate::{Error, Result};

/// A change to one incident, computed from its current state by a mutation.
struct Change {
    /// The incident as it must be afterwards (only the mutable fields are written).
    next: Incident,
    side: Side,
    action: &'static str,
    detail: serde_json::Value,
}

/// The row a change adds beside the incident update.
enum Side {
    Nothing,
    Step(NewStepRecord),
    /// A revised answer: records from `supersede_from` on are marked superseded, then `step`
    /// is recorded.
    Revision {
        step: NewStepRecord,
        supersede_from: i64,
    },
    Escalation {
        from_level: String,
        escalation: NewEscalation,
    },
}

impl Store {
    /// Records the answer to one step and moves the incident to `next_step`.
    pub async fn record_step(
        &self,
        id: i64,
        expected_version: i64,
        step: NewStepRecord,
        next_step: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        self.answer_step(id, expected_version, None, step, next_step, actor)
            .await
    }

    /// Revises an earlier answer: the step record `supersedes` and every record after it are
    /// marked superseded (kept, never deleted), `step` is recorded, and the incident moves to
    /// `next_step`. The audit row names the records replaced.
    pub async fn revise_step(
        &self,
        id: i64,
        expected_version: i64,
        supersedes: i64,
        step: NewStepRecord,
        next_step: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        self.answer_step(
            id,
            expected_version,
            Some(supersedes),
            step,
            next_step,
            actor,
        )
        .await
    }

    /// Records `step` (revising from the record `supersedes` on, when given) and moves the
    /// incident to `next_step`.
    async fn answer_step(
        &self,
        id: i64,
        expected_version: i64,
        supersedes: Option<i64>,
        step: NewStepRecord,
        next_step: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        let step = check_step(step)?;
        let next_step = optional("next step", next_step.as_deref())?;
        self.mutate(id, expected_version, actor, move |current| {
            refuse_closed(&current)?;
            let mut detail = json!({
                "runbook": step.runbook, "step": step.step, "answer": step.answer,
                "source": step.source, "note": step.note,
                "from_step": current.current_step, "next_step": next_step,
            });
            // The detail's keys are kept sorted, so adding one here changes nothing in its text.
            let (side, action) = match supersedes {
                None => {
                    detail["proposed"] = json!(step.proposed);
                    (Side::Step(step), "step")
                }
                Some(supersede_from) => {
                    detail["supersedes"] = json!(supersede_from);
                    (
                        Side::Revision {
                            step,
                            supersede_from,
                        },
                        "revise",
                    )
                }
            };
            Ok(Change {
                next: Incident {
                    current_step: next_step,
                    ..current
                },
                side,
                action,
                detail,
            })
        })
        .await
    }

    /// Hands the incident to a higher level (`to_level` must be above the current one); its
    /// status becomes escalated and its current step `next_step`.
    pub async fn escalate(
        &self,
        id: i64,
        expected_version: i64,
        escalation: NewEscalation,
        next_step: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        let to_level = normalize_level(&escalation.to_level)?;
        let reason = required("reason", &escalation.reason)?;
        let kind = optional("kind", escalation.kind.as_deref())?;
        let next_step = optional("next step", next_step.as_deref())?;
        self.mutate(id, expected_version, actor, move |current| {
            refuse_closed(&current)?;
            if level_rank(&to_level)? <= level_rank(&current.level)? {
                return Err(Error::Invalid(format!(
                    "incident {} is already at {}; an escalation must go to a higher level, not {to_level}",
                    current.id, current.level
                )));
            }
            let detail = json!({
                "from_level": current.level, "to_level": to_level, "kind": kind,
                "reason": reason, "next_step": next_step,
            });
            let from_level = current.level.clone();
            Ok(Change {
                next: Incident {
                    level: to_level.clone(),
                    status: Status::Escalated,
                    escalation_kind: kind.clone(),
                    current_step: next_step,
                    ..current
                },
                side: Side::Escalation {
                    from_level,
                    escalation: NewEscalation {
                        to_level,
                        kind,
                        reason,
                    },
                },
                action: "escalate",
                detail,
            })
        })
        .await
    }

    /// Closes the incident with an outcome id; it then refuses steps and escalations.
    pub async fn close(
        &self,
        id: i64,
        expected_version: i64,
        outcome: &str,
        note: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        self.close_overriding(id, expected_version, outcome, note, None, actor)
            .await
    }

    /// Closes the incident with an outcome id; `overriding` is `(reached, reason)` when the
    /// agent closes with another outcome than the one the runbook reached, recorded in the
    /// audit trail.
    pub async fn close_overriding(
        &self,
        id: i64,
        expected_version: i64,
        outcome: &str,
        note: Option<String>,
        overriding: Option<(Option<String>, String)>,
        actor: &str,
    ) -> Result<Incident> {
        let outcome = required("outcome", outcome)?;
        self.mutate(id, expected_version, actor, move |current| {
            refuse_closed(&current)?;
            let mut detail = json!({
                "outcome": outcome, "note": note, "from_status": current.status,
                "at_step": current.current_step,
            });
            if let Some((reached, reason)) = overriding {
                detail["reached_outcome"] = json!(reached);
                detail["override_reason"] = json!(reason);
            }
            Ok(Change {
                next: Incident {
                    status: Status::Closed,
                    outcome: Some(outcome),
                    current_step: None,
                    ..current
                },
                side: Side::Nothing,
                action: "close",
                detail,
            })
        })
        .await
    }

    /// Takes the incident for `assignee` in one write: it becomes theirs, and an escalated
    /// incident is being worked again (status open).
    pub async fn take(
        &self,
        id: i64,
        expected_version: i64,
        assignee: &str,
        actor: &str,
    ) -> Result<Incident> {
        let assignee = required("assignee", assignee)?;
        self.mutate(id, expected_version, actor, move |current| {
            refuse_closed(&current)?;
            let status = if current.status == Status::Escalated {
                Status::Open
            } else {
                current.status
            };
            let detail = json!({
                "from": current.assignee, "to": assignee,
                "from_status": current.status, "to_status": status,
            });
            Ok(Change {
                next: Incident {
                    assignee: Some(assignee),
                    status,
                    ..current
                },
                side: Side::Nothing,
                action: "take",
                detail,
            })
        })
        .await
    }

    /// Gives the incident to an agent (`None` unassigns). Allowed on closed incidents too.
    pub async fn assign(
        &self,
        id: i64,
        expected_version: i64,
        assignee: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        let assignee = optional("assignee", assignee.as_deref())?;
        self.mutate(id, expected_version, actor, move |current| {
            let detail = json!({ "from": current.assignee, "to": assignee });
            Ok(Change {
                next: Incident {
                    assignee,
                    ..current
                },
                side: Side::Nothing,
                action: "assign",
                detail,
            })
        })
        .await
    }

    /// Sets the status to open, waiting_user or escalated. Closing needs an outcome, so
    /// `Status::Closed` is refused here (use [`Store::close`]); setting a closed incident back
    /// to open reopens it and clears its outcome.
    pub async fn set_status(
        &self,
        id: i64,
        expected_version: i64,
        status: Status,
        actor: &str,
    ) -> Result<Incident> {
        if status == Status::Closed {
            return Err(Error::Invalid(
                "an incident is closed with an outcome (close), not by setting its status".into(),
            ));
        }
        self.mutate(id, expected_version, actor, move |current| {
            let reopen = current.status == Status::Closed;
            let detail = json!({
                "from": current.status, "to": status,
                "reopened_from_outcome": if reopen { current.outcome.clone() } else { None },
            });
            let outcome = if reopen {
                None
            } else {
                current.outcome.clone()
            };
            Ok(Change {
                next: Incident {
                    status,
                    outcome,
                    ..current
                },
                side: Side::Nothing,
                action: "status",
                detail,
            })
        })
        .await
    }

    /// The one write path for incident changes: see the module comment.
    async fn mutate(
        &self,
        id: i64,
        expected_version: i64,
        actor: &str,
        plan: impl FnOnce(Incident) -> Result<Change>,
    ) -> Result<Incident> {
        check_actor(actor)?;
        let now = now_ms();
        let incident = in_write_tx!(self, |tx| {
            let current = sqlx::query(SELECT_INCIDENT)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|row| rows::incident(&row))
                .transpose()?
                .ok_or_else(|| not_found_incident(id))?;
            if current.version != expected_version {
                return Err(Error::Conflict {
                    id,
                    current_version: current.version,
                });
            }
            let Change {
                next,
                side,
                action,
                mut detail,
            } = plan(current)?;
            let updated = sqlx::query(concat!(
                "UPDATE incidents SET level = $3, status = $4, current_step = $5, outcome = $6, \
                 escalation_kind = $7, assignee = $8, version = version + 1, updated_at = $9, ",
                crate::reports::phase_accounting!(),
                " WHERE id = $1 AND version = $2 RETURNING ",
                incident_cols!()
            ))
            .bind(id)
            .bind(expected_version)
            .bind(&next.level)
            .bind(next.status.as_str())
            .bind(&next.current_step)
            .bind(&next.outcome)
            .bind(&next.escalation_kind)
            .bind(&next.assignee)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(updated) = updated else {
                // PostgreSQL: a concurrent writer committed between our read and our update
                // (READ COMMITTED re-checks the WHERE after waiting for its row lock).
                let current_version: i64 =
                    sqlx::query_scalar("SELECT version FROM incidents WHERE id = $1")
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                return Err(Error::Conflict {
                    id,
                    current_version,
                });
            };
            let incident = rows::incident(&updated)?;
            match side {
                Side::Nothing => {}
                Side::Step(step) => {
                    let step_id = insert_step_record!(tx, id, &step, actor, now);
                    detail["step_record_id"] = json!(step_id);
                }
                Side::Revision {
                    step,
                    supersede_from,
                } => {
                    let superseded = sqlx::query(
                        "UPDATE step_records SET superseded_at = $3, superseded_by = $4 \
                         WHERE incident_id = $1 AND id >= $2 AND superseded_at IS NULL",
                    )
                    .bind(id)
                    .bind(supersede_from)
                    .bind(now)
                    .bind(actor)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    let step_id = insert_step_record!(tx, id, &step, actor, now);
                    detail["step_record_id"] = json!(step_id);
                    detail["superseded_records"] = json!(superseded);
                }
                Side::Escalation {
                    from_level,
                    escalation,
                } => {
                    let escalation_id: i64 = sqlx::query_scalar(
                        "INSERT INTO escalations \
                         (incident_id, from_level, to_level, kind, reason, actor, at, after_step) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, (SELECT step FROM step_records \
                         WHERE incident_id = $1 ORDER BY id DESC LIMIT 1)) RETURNING id",
                    )
                    .bind(id)
                    .bind(&from_level)
                    .bind(&escalation.to_level)
                    .bind(&escalation.kind)
                    .bind(&escalation.reason)
                    .bind(actor)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    detail["escalation_id"] = json!(escalation_id);
                }
            }
            detail["version"] = json!(incident.version);
            audit!(tx, id, actor, now, action, detail);
            if matches!(action, "escalate" | "close") {
                crate::outbox::enqueue!(tx, id, &incident.runbook, incident.version, action, now);
            }
            incident
        });
        tracing::info!(
            incident = id,
            version = incident.version,
            actor,
            "incident changed"
        );
        Ok(incident)
    }
}
