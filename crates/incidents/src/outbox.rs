//! The webhook outbox: an event row for every opening, escalation and closing, written in the
//! same transaction as the change (so no change goes unannounced and no event announces a
//! change that was rolled back), and what a delivery worker needs to deliver them exactly once
//! per idempotency key, in order per incident, with retries: the due events, the attempt log,
//! the ticket reference a receiver returns, and a manual redelivery.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::Row as _;

use crate::rows::from_millis;
use crate::store::Pool;
use crate::{Error, Result, Store};

/// Appends the outbox event `$event` ("open", "escalate", "close") of incident `$id` at
/// version `$version` inside the transaction `$tx`.
macro_rules! enqueue {
    ($tx:ident, $id:expr, $runbook:expr, $version:expr, $event:expr, $now:expr) => {{
        let id: i64 = $id;
        let version: i64 = $version;
        let event: &str = $event;
        sqlx::query(
            "INSERT INTO outbox (incident_id, event, runbook, version, idempotency_key, \
             created_at, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id)
        .bind(event)
        .bind($runbook)
        .bind(version)
        .bind(format!("dialtone-incident-{id}-v{version}-{event}"))
        .bind($now)
        .execute(&mut *$tx)
        .await?
    }};
}
pub(crate) use enqueue;

/// One event to announce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutboxEvent {
    /// Its id: events of one incident are delivered in id order.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// "open", "escalate" or "close".
    pub event: String,
    /// The incident's runbook (webhooks are configured per runbook or globally).
    pub runbook: String,
    /// The incident's version right after the change.
    pub version: i64,
    /// Sent as the `Idempotency-Key` header: the same on every attempt.
    pub idempotency_key: String,
    /// When the change happened.
    pub created_at: DateTime<Utc>,
    /// Attempts made so far.
    pub attempts: i64,
    /// When it may be tried next.
    pub next_attempt_at: DateTime<Utc>,
    /// When a receiver accepted it (or it was settled without a receiver).
    pub delivered_at: Option<DateTime<Utc>>,
    /// The last attempt's HTTP status, if one came back.
    pub last_status: Option<i64>,
    /// The last attempt's error (no secrets: no signature, no payload).
    pub last_error: Option<String>,
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver accepted it (2xx), maybe naming the ticket it filed.
    Delivered {
        /// HTTP status.
        status: u16,
        /// The receiver's ticket reference, kept on the incident.
        ticket_ref: Option<String>,
    },
    /// No receiver is configured for it: settled, with this reason in the log.
    Skipped(String),
    /// It failed; try again at `retry_at`.
    Failed {
        /// HTTP status, when one came back.
        status: Option<u16>,
        /// Why, for the log.
        error: String,
        /// The next try.
        retry_at: DateTime<Utc>,
    },
}

const COLS: &str = "id, incident_id, event, runbook, version, idempotency_key, created_at, \
     attempts, next_attempt_at, delivered_at, last_status, last_error";

macro_rules! event_of {
    ($row:expr) => {{
        let row = $row;
        OutboxEvent {
            id: row.try_get("id")?,
            incident_id: row.try_get("incident_id")?,
            event: row.try_get("event")?,
            runbook: row.try_get("runbook")?,
            version: row.try_get("version")?,
            idempotency_key: row.try_get("idempotency_key")?,
            created_at: from_millis(row.try_get("created_at")?)?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: from_millis(row.try_get("next_attempt_at")?)?,
            delivered_at: row
                .try_get::<Option<i64>, _>("delivered_at")?
                .map(from_millis)
                .transpose()?,
            last_status: row.try_get("last_status")?,
            last_error: row.try_get("last_error")?,
        }
    }};
}

impl Store {
    /// Events due now, oldest first, at most `limit`: only the oldest undelivered event of
    /// each incident (a later one waits for it, so each incident's events arrive in order).
    pub async fn outbox_due(&self, limit: i64) -> Result<Vec<OutboxEvent>> {
        let now = Utc::now().timestamp_millis();
        let sql = format!(
            "SELECT {COLS} FROM outbox o WHERE o.delivered_at IS NULL AND o.next_attempt_at <= $1 \
             AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.incident_id = o.incident_id \
             AND p.id < o.id AND p.delivered_at IS NULL) ORDER BY o.id LIMIT $2"
        );
        self.outbox_query(&sql, now, limit).await
    }

    /// The newest `limit` events with their state, for the delivery log.
    pub async fn outbox_log(&self, limit: i64) -> Result<Vec<OutboxEvent>> {
        let sql = format!("SELECT {COLS} FROM outbox WHERE $1 >= 0 ORDER BY id DESC LIMIT $2");
        self.outbox_query(&sql, 0, limit).await
    }

    async fn outbox_query(&self, sql: &str, a: i64, limit: i64) -> Result<Vec<OutboxEvent>> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        let mut out = Vec::new();
        match &self.pool {
            Pool::Sqlite(pool) => {
                for row in sqlx::query(sql).bind(a).bind(limit).fetch_all(pool).await? {
                    out.push(event_of!(&row));
                }
            }
            Pool::Postgres(pool) => {
                for row in sqlx::query(sql).bind(a).bind(limit).fetch_all(pool).await? {
                    out.push(event_of!(&row));
                }
            }
        }
        Ok(out)
    }

    /// Records one attempt at event `id` (the log keeps every attempt): delivered events are
    /// settled and their ticket reference kept on the incident; failed ones wait until
    /// `retry_at`. A settled event is not changed again (`Ok(false)`).
    pub async fn outbox_attempt(&self, id: i64, attempt: Attempt) -> Result<bool> {
        let now = Utc::now().timestamp_millis();
        let (status, error, delivered, retry_at, ticket) = match &attempt {
            Attempt::Delivered { status, ticket_ref } => (
                Some(i64::from(*status)),
                None,
                Some(now),
                now,
                ticket_ref.clone(),
            ),
            Attempt::Skipped(reason) => (None, Some(reason.clone()), Some(now), now, None),
            Attempt::Failed {
                status,
                error,
                retry_at,
            } => (
                status.map(i64::from),
                Some(error.clone()),
                None,
                retry_at.timestamp_millis(),
                None,
            ),
        };
        macro_rules! body {
            ($tx:ident) => {{
                let row = sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_status = $2, last_error = $3, \
                     delivered_at = $4, next_attempt_at = $5 WHERE id = $1 AND delivered_at IS NULL \
                     RETURNING incident_id, event",
                )
                .bind(id)
                .bind(status)
                .bind(&error)
                .bind(delivered)
                .bind(retry_at)
                .fetch_optional(&mut *$tx)
                .await?;
                let Some(row) = row else {
                    return Ok(false);
                };
                let incident: i64 = row.try_get("incident_id")?;
                sqlx::query(
                    "INSERT INTO outbox_attempts (outbox_id, at, status, error) VALUES ($1, $2, $3, $4)",
                )
                .bind(id)
                .bind(now)
                .bind(status)
                .bind(&error)
                .execute(&mut *$tx)
                .await?;
                if let Some(ticket) = &ticket {
                    // The incident's own version is not bumped: a ticket number arriving must not
                    // make an agent's open form stale.
                    sqlx::query("UPDATE incidents SET ticket_ref = $2 WHERE id = $1")
                        .bind(incident)
                        .bind(ticket)
                        .execute(&mut *$tx)
                        .await?;
                }
                $tx.commit().await?;
                Ok(true)
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                body!(tx)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                body!(tx)
            }
        }
    }

    /// Puts a settled or failing event back in line for delivery now (the admin's redeliver
    /// button), and audits who asked. The receiver sees the same idempotency key again.
    pub async fn outbox_redeliver(&self, id: i64, actor: &str) -> Result<OutboxEvent> {
        crate::store::check_actor(actor)?;
        let now = Utc::now().timestamp_millis();
        crate::store::in_write_tx!(self, |tx| {
            let incident: Option<i64> = sqlx::query_scalar(
                "UPDATE outbox SET delivered_at = NULL, next_attempt_at = $2 WHERE id = $1 \
                 RETURNING incident_id",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(incident) = incident else {
                return Err(Error::NotFound {
                    what: "outbox event",
                    id: id.to_string(),
                });
            };
            crate::store::audit!(
                tx,
                incident,
                actor,
                now,
                "webhook.redeliver",
                json!({ "event": id })
            );
        });
        tracing::info!(event = id, actor, "webhook event queued for redelivery");
        let sql = format!("SELECT {COLS} FROM outbox WHERE id = $1 AND $2 > 0");
        self.outbox_query(&sql, id, 1)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::NotFound {
                what: "outbox event",
                id: id.to_string(),
            })
    }
}

/// The JSON an event is announced with, around the incident's dossier (built by the caller).
pub fn envelope(
    event: &OutboxEvent,
    dossier_json: serde_json::Value,
    dossier_md: &str,
) -> serde_json::Value {
    json!({
        "event": event.event,
        "idempotency_key": event.idempotency_key,
        "incident_id": event.incident_id,
        "version": event.version,
        "runbook": event.runbook,
        "at": event.created_at,
        "dossier": dossier_json,
        "dossier_markdown": dossier_md,
    })
}
