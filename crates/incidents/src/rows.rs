//! Turns database rows of either backend into the crate's records.
//!
//! Both backends store the same column types (BIGINT milliseconds, TEXT JSON), so one mapping
//! serves both; `RowGet` hides the two row types behind the few accessors the mapping needs.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use crate::model::{
    ApiToken, Attachment, AuditEntry, CheckRun, Escalation, Incident, Note, Session, StepRecord,
    User,
};
use crate::{Error, Result};

/// Typed column access shared by `SqliteRow` and `PgRow`.
pub(crate) trait RowGet {
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn flag(&self, col: &str) -> Result<bool>;
    fn bytes(&self, col: &str) -> Result<Vec<u8>>;

    fn time(&self, col: &str) -> Result<DateTime<Utc>> {
        from_millis(self.int(col)?)
    }

    fn json(&self, col: &str) -> Result<serde_json::Value> {
        let text = self.text(col)?;
        serde_json::from_str(&text)
            .map_err(|err| Error::Database(format!("column {col} holds invalid JSON: {err}")))
    }
}

macro_rules! impl_row_get {
    ($row:ty) => {
        impl RowGet for $row {
            fn int(&self, col: &str) -> Result<i64> {
                Ok(self.try_get::<i64, _>(col)?)
            }
            fn opt_int(&self, col: &str) -> Result<Option<i64>> {
                Ok(self.try_get::<Option<i64>, _>(col)?)
            }
            fn text(&self, col: &str) -> Result<String> {
                Ok(self.try_get::<String, _>(col)?)
            }
            fn opt_text(&self, col: &str) -> Result<Option<String>> {
                Ok(self.try_get::<Option<String>, _>(col)?)
            }
            fn flag(&self, col: &str) -> Result<bool> {
                Ok(self.try_get::<bool, _>(col)?)
            }
            fn bytes(&self, col: &str) -> Result<Vec<u8>> {
                Ok(self.try_get::<Vec<u8>, _>(col)?)
            }
        }
    };
}

impl_row_get!(SqliteRow);
impl_row_get!(PgRow);

/// Unix milliseconds -> UTC time; out-of-range values mean a damaged row.
pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| Error::Database(format!("timestamp {ms} is out of range")))
}

/// Columns of `incidents`, in the order `incident` reads them.
macro_rules! incident_cols {
    () => {
        "id, account, reporter, description, level, status, runbook, current_step, outcome, \
         escalation_kind, assignee, ticket_ref, version, created_at, updated_at"
    };
}
pub(crate) use incident_cols;

pub(crate) fn incident(row: &impl RowGet) -> Result<Incident> {
    let status = row.text("status")?;
    Ok(Incident {
        id: row.int("id")?,
        account: row.text("account")?,
        reporter: row.text("reporter")?,
        description: row.text("description")?,
        level: row.text("level")?,
        status: status
            .parse()
            .map_err(|_| Error::Database(format!("stored status {status:?} is unknown")))?,
        runbook: row.text("runbook")?,
        current_step: row.opt_text("current_step")?,
        outcome: row.opt_text("outcome")?,
        escalation_kind: row.opt_text("escalation_kind")?,
        assignee: row.opt_text("assignee")?,
        ticket_ref: row.opt_text("ticket_ref")?,
        version: row.int("version")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

pub(crate) fn step_record(row: &impl RowGet) -> Result<StepRecord> {
    Ok(StepRecord {
        id: row.int("id")?,
        incident_id: row.int("incident_id")?,
        given: crate::model::NewStepRecord {
            runbook: row.text("runbook")?,
            step: row.text("step")?,
            answer: row.text("answer")?,
            source: row.text("source")?,
            evidence: row.json("evidence")?,
            note: row.opt_text("note")?,
            proposed: row.opt_text("proposed")?,
        },
        actor: row.text("actor")?,
        at: row.time("at")?,
        superseded_at: row.opt_int("superseded_at")?.map(from_millis).transpose()?,
        superseded_by: row.opt_text("superseded_by")?,
    })
}

pub(crate) fn note(row: &impl RowGet) -> Result<Note> {
    Ok(Note {
        id: row.int("id")?,
        incident_id: row.int("incident_id")?,
        text: row.text("text")?,
        actor: row.text("actor")?,
        at: row.time("at")?,
    })
}

pub(crate) fn escalation(row: &impl RowGet) -> Result<Escalation> {
    Ok(Escalation {
        id: row.int("id")?,
        incident_id: row.int("incident_id")?,
        from_level: row.text("from_level")?,
        to_level: row.text("to_level")?,
        kind: row.opt_text("kind")?,
        reason: row.text("reason")?,
        actor: row.text("actor")?,
        at: row.time("at")?,
    })
}

pub(crate) fn audit_entry(row: &impl RowGet) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: row.int("id")?,
        incident_id: row.opt_int("incident_id")?,
        actor: row.text("actor")?,
        at: row.time("at")?,
        action: row.text("action")?,
        detail: row.json("detail")?,
    })
}

pub(crate) fn attachment(row: &impl RowGet) -> Result<Attachment> {
    Ok(Attachment {
        id: row.int("id")?,
        incident_id: row.int("incident_id")?,
        name: row.text("name")?,
        content_type: row.text("content_type")?,
        size: row.int("size")?,
        actor: row.text("actor")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn user(row: &impl RowGet) -> Result<User> {
    Ok(User {
        username: row.text("username")?,
        password_hash: row.text("password_hash")?,
        role: row.text("role")?,
        disabled: row.flag("disabled")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn session(row: &impl RowGet) -> Result<Session> {
    Ok(Session {
        token_hash: row.text("token_hash")?,
        username: row.text("username")?,
        expires_at: row.time("expires_at")?,
        created_at: row.time("created_at")?,
    })
}

pub(crate) fn api_token(row: &impl RowGet) -> Result<ApiToken> {
    Ok(ApiToken {
        token_hash: row.text("token_hash")?,
        username: row.text("username")?,
        label: row.text("label")?,
        created_at: row.time("created_at")?,
        expires_at: row.opt_int("expires_at")?.map(from_millis).transpose()?,
        revoked_at: row.opt_int("revoked_at")?.map(from_millis).transpose()?,
    })
}

pub(crate) fn check_run(row: &impl RowGet) -> Result<CheckRun> {
    Ok(CheckRun {
        id: row.int("id")?,
        incident_id: row.int("incident_id")?,
        step: row.text("step")?,
        answer: row.opt_text("answer")?,
        summary: row.text("summary")?,
        evidence: row.json("evidence")?,
        actor: row.text("actor")?,
        at: row.time("at")?,
    })
}
