//! Internal notes and automated check runs: records added beside an incident without
//! changing its version.

use serde_json::json;

use super::{Store, check_actor, now_ms, required};
use crate::Result;
use crate::model::{CheckRun, Note};
use crate::rows;

impl Store {
    /// Adds an internal note. Notes are allowed at any time, closed incidents included, and do
    /// not change the incident's version (a note never conflicts with an answer).
    pub async fn add_note(&self, id: i64, text: &str, actor: &str) -> Result<Note> {
        check_actor(actor)?;
        let text = required("note", text)?;
        let now = now_ms();
        let note = in_write_tx!(self, |tx| {
            require_incident!(tx, id);
            let row = sqlx::query(
                "INSERT INTO notes (incident_id, text, actor, at) VALUES ($1, $2, $3, $4) \
                 RETURNING id, incident_id, text, actor, at",
            )
            .bind(id)
            .bind(&text)
            .bind(actor)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let note = rows::note(&row)?;
            audit!(
                tx,
                id,
                actor,
                now,
                "note",
                json!({ "note_id": note.id, "text": text })
            );
            note
        });
        Ok(note)
    }

    /// The internal notes of incident `id`, oldest first.
    pub async fn notes(&self, id: i64) -> Result<Vec<Note>> {
        self.get(id).await?;
        query_all!(
            self,
            rows::note,
            "SELECT id, incident_id, text, actor, at FROM notes WHERE incident_id = $1 \
             ORDER BY id",
            id
        )
    }

    /// Records an automated check's result with the incident, and logs it. Only the server's
    /// own check runner calls this; uploads never become check runs.
    pub async fn add_check_run(
        &self,
        id: i64,
        step: &str,
        answer: Option<&str>,
        summary: &str,
        evidence: &serde_json::Value,
        actor: &str,
    ) -> Result<CheckRun> {
        check_actor(actor)?;
        let step = required("step", step)?;
        let now = now_ms();
        let run = in_write_tx!(self, |tx| {
            require_incident!(tx, id);
            let row = sqlx::query(
                "INSERT INTO check_runs (incident_id, step, answer, summary, evidence, actor, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 RETURNING id, incident_id, step, answer, summary, evidence, actor, at",
            )
            .bind(id)
            .bind(&step)
            .bind(answer)
            .bind(summary)
            .bind(evidence.to_string())
            .bind(actor)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let run = rows::check_run(&row)?;
            audit!(
                tx,
                id,
                actor,
                now,
                "check",
                json!({ "check_run_id": run.id, "step": step, "answer": answer })
            );
            run
        });
        Ok(run)
    }

    /// The automated check results of incident `id`, oldest first.
    pub async fn check_runs(&self, id: i64) -> Result<Vec<CheckRun>> {
        self.get(id).await?;
        query_all!(
            self,
            rows::check_run,
            "SELECT id, incident_id, step, answer, summary, evidence, actor, at \
             FROM check_runs WHERE incident_id = $1 ORDER BY id",
            id
        )
    }
}
