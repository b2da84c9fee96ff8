//! Opening incidents and reading them with their step records and escalations.

use serde_json::json;

use super::{
    SELECT_INCIDENT, Store, check_actor, check_step, escape_like, not_found_incident, now_ms,
    optional, required,
};
use crate::model::{
    Escalation, Incident, ListFilter, NewIncident, NewStepRecord, Status, StepRecord,
    normalize_level,
};
use crate::rows::{self, incident_cols};
use crate::{Error, Result};

impl Store {
    /// Opens an incident at `new.level` with status open, and logs it.
    pub async fn open_incident(&self, new: NewIncident, actor: &str) -> Result<Incident> {
        self.open_with_steps(new, Vec::new(), None, actor).await
    }

    /// Opens an incident and records answers to its first steps (each with the step it moves
    /// the incident to) in one transaction: either all of it is written or nothing is.
    pub async fn open_incident_with_steps(
        &self,
        new: NewIncident,
        steps: Vec<(NewStepRecord, Option<String>)>,
        assignee: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        let assignee = optional("assignee", assignee.as_deref())?;
        self.open_with_steps(new, steps, Some(assignee), actor)
            .await
    }

    /// Opens an incident with its first steps. `assignee` is `None` for a plain open, which
    /// names no assignee in its audit line.
    async fn open_with_steps(
        &self,
        new: NewIncident,
        steps: Vec<(NewStepRecord, Option<String>)>,
        assignee: Option<Option<String>>,
        actor: &str,
    ) -> Result<Incident> {
        check_actor(actor)?;
        let account = required("account", &new.account)?;
        let reporter = required("reporter", &new.reporter)?;
        let runbook = required("runbook", &new.runbook)?;
        let level = normalize_level(&new.level)?;
        let current_step = optional("current step", new.current_step.as_deref())?;
        let mut checked = Vec::with_capacity(steps.len());
        for (step, next) in steps {
            checked.push((check_step(step)?, optional("next step", next.as_deref())?));
        }
        let now = now_ms();
        let mut detail = json!({
            "account": account, "reporter": reporter, "runbook": runbook,
            "level": level, "current_step": current_step,
        });
        // The detail's keys are kept sorted, so adding one here changes nothing in its text.
        if let Some(assignee) = &assignee {
            detail["assignee"] = json!(assignee);
        }
        let assignee = assignee.flatten();
        let incident = in_write_tx!(self, |tx| {
            let row = sqlx::query(concat!(
                "INSERT INTO incidents (account, reporter, description, level, status, runbook, \
                 current_step, version, created_at, updated_at, assignee) \
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, 1, $7, $7, $8) RETURNING ",
                incident_cols!()
            ))
            .bind(&account)
            .bind(&reporter)
            .bind(&new.description)
            .bind(&level)
            .bind(&runbook)
            .bind(&current_step)
            .bind(now)
            .bind(&assignee)
            .fetch_one(&mut *tx)
            .await?;
            let mut incident = rows::incident(&row)?;
            audit!(tx, incident.id, actor, now, "open", detail);
            crate::outbox::enqueue!(
                tx,
                incident.id,
                &incident.runbook,
                incident.version,
                "open",
                now
            );
            for (step, next_step) in &checked {
                let row = sqlx::query(concat!(
                    "UPDATE incidents SET current_step = $2, version = version + 1, \
                     updated_at = $3 WHERE id = $1 RETURNING ",
                    incident_cols!()
                ))
                .bind(incident.id)
                .bind(next_step)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let from_step = incident.current_step.clone();
                incident = rows::incident(&row)?;
                let step_id = insert_step_record!(tx, incident.id, step, actor, now);
                let detail = json!({
                    "runbook": step.runbook, "step": step.step, "answer": step.answer,
                    "source": step.source, "note": step.note,
                    "from_step": from_step, "next_step": next_step,
                    "step_record_id": step_id, "version": incident.version,
                });
                audit!(tx, incident.id, actor, now, "step", detail);
            }
            incident
        });
        tracing::info!(incident = incident.id, actor, "incident opened");
        Ok(incident)
    }

    /// The incident `id`, or `Error::NotFound`.
    pub async fn get(&self, id: i64) -> Result<Incident> {
        let row = with_pool!(self, |pool| {
            sqlx::query(SELECT_INCIDENT)
                .bind(id)
                .fetch_optional(pool)
                .await?
                .map(|row| rows::incident(&row))
        });
        row.transpose()?.ok_or_else(|| not_found_incident(id))
    }

    /// Incidents matching `filter`, newest first.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<Incident>> {
        let level = filter.level.as_deref().map(normalize_level).transpose()?;
        let status = filter.status.map(Status::as_str);
        let assignee = filter.assignee.as_deref();
        let pattern = filter
            .account_contains
            .as_deref()
            .map(|needle| format!("%{}%", escape_like(&needle.to_ascii_lowercase())));
        let limit = match filter.limit {
            Some(limit) if limit < 0 => {
                return Err(Error::Invalid(format!(
                    "limit must not be negative (got {limit})"
                )));
            }
            Some(limit) => limit,
            None => i64::MAX,
        };
        const SQL: &str = concat!(
            "SELECT ",
            incident_cols!(),
            " FROM incidents \
             WHERE ($1 IS NULL OR level = $1) AND ($2 IS NULL OR status = $2) \
             AND ($3 IS NULL OR assignee = $3) \
             AND ($4 IS NULL OR LOWER(account) LIKE $4 ESCAPE '\\') \
             AND ($6 IS NULL OR EXISTS (SELECT 1 FROM escalations e \
                  WHERE e.incident_id = incidents.id AND e.actor = $6)) \
             ORDER BY id DESC LIMIT $5"
        );
        query_all!(
            self,
            rows::incident,
            SQL,
            &level,
            status,
            assignee,
            &pattern,
            limit,
            filter.escalated_by.as_deref()
        )
    }

    /// How many incidents there are per (level, status): one aggregate query, for `/metrics`.
    pub async fn incident_counts(&self) -> Result<Vec<(String, String, i64)>> {
        with_pool!(self, |pool| {
            let rows: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT level, status, COUNT(*) FROM incidents GROUP BY level, status",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows)
        })
    }

    /// The answered steps of incident `id`, in answer order.
    pub async fn steps(&self, id: i64) -> Result<Vec<StepRecord>> {
        self.get(id).await?;
        query_all!(
            self,
            rows::step_record,
            "SELECT id, incident_id, runbook, step, answer, source, evidence, note, actor, at, \
             proposed, superseded_at, superseded_by \
             FROM step_records WHERE incident_id = $1 ORDER BY id",
            id
        )
    }

    /// The escalations of incident `id`, oldest first.
    pub async fn escalations(&self, id: i64) -> Result<Vec<Escalation>> {
        self.get(id).await?;
        query_all!(
            self,
            rows::escalation,
            "SELECT id, incident_id, from_level, to_level, kind, reason, actor, at \
             FROM escalations WHERE incident_id = $1 ORDER BY id",
            id
        )
    }
}
