//! `Store`: the incident store's API over an SQLite file or a PostgreSQL database.
//!
//! Both backends run the same SQL text (SQLite accepts PostgreSQL's `$n` parameters), and a
//! macro expands each method body once per pool type, so the two cannot drift apart.
//!
//! Every mutation is one transaction that re-reads the incident, checks the caller's
//! `expected_version`, writes `version = version + 1 ... WHERE version = expected`, and adds
//! its step/escalation row and its audit line; any failure rolls all of it back.
//!
//! This module holds `Store`, the pool and the macros every part shares; the methods are in
//! one `impl Store` block per responsibility: `open` (connecting, migrating, backup),
//! `incidents` (opening and reading), `changes` (every versioned change), `notes` (notes and
//! check runs), `attachments`, `audit_log`, `idempotency` and `people` (users, sessions, tokens).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool};
use sqlx::sqlite::SqlitePool;

use crate::error::describe;
use crate::model::{Incident, NewStepRecord, SOURCES, Status};
use crate::rows::incident_cols;
use crate::{Error, Result};

/// How long opening a database may take before we give up; also the pool's acquire timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Name of the SQLite file `open_data_dir` uses.
pub const DATA_FILE: &str = "dialtone.sqlite";

/// Size of the chunks a streamed attachment is stored in (`Store::add_attachment_streamed`).
pub const ATTACHMENT_CHUNK: usize = 256 * 1024;

#[derive(Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs a read-only body once per backend, with `$pool` bound to the concrete pool.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            crate::store::Pool::Sqlite($pool) => $body,
            crate::store::Pool::Postgres($pool) => $body,
        }
    };
}

/// Runs a read-only query on either backend, with `$bind`s, and reads every row it returns
/// with `$read` (a `rows::` reader); evaluates to `Result<Vec<_>>`.
macro_rules! query_all {
    ($store:expr, $read:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        with_pool!($store, |pool| {
            sqlx::query($sql)
                $(.bind($bind))*
                .fetch_all(pool)
                .await?
                .iter()
                .map($read)
                .collect()
        })
    };
}

/// Runs one statement outside a transaction on either backend, with `$bind`s; evaluates to
/// the number of rows it affected.
macro_rules! execute {
    ($store:expr, $sql:expr $(, $bind:expr)* $(,)?) => {
        with_pool!($store, |pool| {
            sqlx::query($sql)
                $(.bind($bind))*
                .execute(pool)
                .await?
                .rows_affected()
        })
    };
}

/// Runs `$body` inside a write transaction `$tx` and commits it when the body yields a value;
/// an early `return`/`?` drops the transaction, which rolls it back.
///
/// SQLite opens it with `BEGIN IMMEDIATE` so that the write lock is taken up front: a deferred
/// transaction that reads first and writes later fails with `SQLITE_BUSY_SNAPSHOT` instead of
/// waiting when another writer got in between. Other processes on the same file still wait
/// through `busy_timeout`.
macro_rules! in_write_tx {
    ($store:expr, |$tx:ident| $body:block) => {{
        // The body runs in an async block, so its `return`s and `?`s end the block: every
        // outcome passes through `note_write` before it is returned.
        let out: crate::Result<_> = match &$store.pool {
            crate::store::Pool::Sqlite(pool) => {
                // Writers of this process queue here instead of in SQLite's busy handler,
                // which polls with sleeps and halves throughput under contention.
                let _writer = $store.sqlite_writer.lock().await;
                async {
                    let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                    let out = $body;
                    $tx.commit().await?;
                    Ok(out)
                }
                .await
            }
            crate::store::Pool::Postgres(pool) => {
                async {
                    let mut $tx = pool.begin().await?;
                    let out = $body;
                    $tx.commit().await?;
                    Ok(out)
                }
                .await
            }
        };
        $store.note_write(&out);
        out?
    }};
}
pub(crate) use in_write_tx;

/// Inserts one step record inside a write transaction, counted on its incident
/// (see `reports::NOTE_STEP`); evaluates to its id.
macro_rules! insert_step_record {
    ($tx:ident, $incident:expr, $step:expr, $actor:expr, $now:expr) => {{
        let step: &crate::model::NewStepRecord = $step;
        let id: i64 = sqlx::query_scalar(crate::reports::INSERT_STEP)
            .bind($incident)
            .bind(&step.runbook)
            .bind(&step.step)
            .bind(&step.answer)
            .bind(&step.source)
            .bind(step.evidence.to_string())
            .bind(&step.note)
            .bind($actor)
            .bind($now)
            .bind(&step.proposed)
            .fetch_one(&mut *$tx)
            .await?;
        sqlx::query(crate::reports::NOTE_STEP)
            .bind($incident)
            .bind($actor)
            .bind(&step.source)
            .execute(&mut *$tx)
            .await?;
        id
    }};
}

/// Inside a write transaction: returns `Error::NotFound` from the enclosing body unless incident
/// `$id` exists.
macro_rules! require_incident {
    ($tx:ident, $id:expr) => {{
        let id: i64 = $id;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *$tx)
            .await?;
        if exists.is_none() {
            return Err(crate::store::not_found_incident(id));
        }
    }};
}

/// Appends one audit line inside the transaction `$tx`, chained to the last one (see
/// `chain`): the chain lock orders appends, the new row's hash covers the previous row's hash.
macro_rules! audit {
    ($tx:ident, $incident:expr, $actor:expr, $now:expr, $action:expr, $detail:expr) => {{
        crate::chain::ChainLock::lock_chain(&mut *$tx).await?;
        let prev: Option<Option<String>> =
            sqlx::query_scalar("SELECT row_hash FROM audit_log ORDER BY id DESC LIMIT 1")
                .fetch_optional(&mut *$tx)
                .await?;
        let prev = prev
            .flatten()
            .unwrap_or_else(|| crate::chain::GENESIS.to_owned());
        let incident: Option<i64> = $incident.into();
        let actor: &str = $actor;
        let now: i64 = $now;
        let action: &str = $action;
        let detail = ($detail).to_string();
        let hash = crate::chain::row_hash(&prev, incident, actor, now, action, &detail);
        sqlx::query(
            "INSERT INTO audit_log (incident_id, actor, at, action, detail, prev_hash, row_hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(incident)
        .bind(actor)
        .bind(now)
        .bind(action)
        .bind(&detail)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut *$tx)
        .await?
    }};
}
pub(crate) use audit;

// Declared after the macros above, so that they are in scope in these modules.
mod attachments;
mod audit_log;
mod changes;
mod idempotency;
mod incidents;
mod notes;
mod open;
mod people;

const SELECT_INCIDENT: &str = concat!("SELECT ", incident_cols!(), " FROM incidents WHERE id = $1");

/// The incident store. Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    /// Serializes this process's SQLite write transactions (unused for PostgreSQL).
    pub(crate) sqlite_writer: Arc<tokio::sync::Mutex<()>>,
    /// Where it points, password removed, for messages.
    target: String,
    /// Why the last write failed, when the store itself failed it (disk full, I/O, connection)
    /// and no write has succeeded since; the health check then probes with a write.
    write_fault: Arc<std::sync::Mutex<Option<String>>>,
    /// PostgreSQL: how to open one connection outside the pool, for the health check's reason.
    pg_options: Option<PgConnectOptions>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend())
            .field("target", &self.target)
            .finish()
    }
}

impl Store {
    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Where the store points, with any password removed.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes every connection; later calls fail with a database error.
    pub async fn shutdown(&self) {
        with_pool!(self, |pool| pool.close().await)
    }

    /// Remembers whether the store could write (see `write_fault`).
    pub(crate) fn note_write<T>(&self, out: &Result<T>) {
        let fault = match out {
            Ok(_) => None,
            Err(
                Error::Database(m)
                | Error::Connect { reason: m, .. }
                | Error::Unavailable { reason: m, .. },
            ) => Some(m.clone()),
            // Refusals (conflict, not found, invalid...) say nothing about the store.
            Err(_) => return,
        };
        // Not logged here: the caller reports the error once.
        if let Ok(mut f) = self.write_fault.lock() {
            *f = fault;
        }
    }

    /// Whether the store answers and, when a write failed since the last success, whether it
    /// can write again (a one-row probe write). Bounded by `within`. `Err` says why not.
    pub async fn health(&self, within: Duration) -> std::result::Result<(), String> {
        let check = async {
            with_pool!(self, |pool| {
                sqlx::query_scalar::<_, i64>("SELECT CAST(1 AS BIGINT)")
                    .fetch_one(pool)
                    .await
                    .map_err(|e| describe(&e))?;
            });
            let faulted = self.write_fault.lock().map(|f| f.clone()).unwrap_or(None);
            if let Some(reason) = faulted {
                let probe = async {
                    in_write_tx!(self, |tx| {
                        sqlx::query(
                            "INSERT INTO health_probe (id, at) VALUES (1, $1) \
                             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                        )
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                    });
                    Ok::<(), Error>(())
                };
                probe
                    .await
                    .map_err(|e| format!("the store cannot write: {e} (first: {reason})"))?;
            }
            Ok(())
        };
        // Half the time for the pool; if it does not answer, one direct connection says why.
        match tokio::time::timeout(within / 2, check).await {
            Ok(r) => r,
            Err(_) => {
                let Some(options) = &self.pg_options else {
                    return Err(format!("the store did not answer within {:?}", within / 2));
                };
                match tokio::time::timeout(within / 2, PgConnection::connect_with(options)).await {
                    Ok(Ok(conn)) => {
                        let _ = conn.close().await;
                        Err(
                            "the database accepts connections but the pool got none in time"
                                .to_owned(),
                        )
                    }
                    Ok(Err(err)) => Err(describe(&err)),
                    Err(_) => Err(format!("the database did not answer within {within:?}")),
                }
            }
        }
    }
}

/// Now, to the millisecond, as stored.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn not_found_incident(id: i64) -> Error {
    Error::NotFound {
        what: "incident",
        id: id.to_string(),
    }
}

fn refuse_closed(incident: &Incident) -> Result<()> {
    if incident.status == Status::Closed {
        Err(Error::Closed { id: incident.id })
    } else {
        Ok(())
    }
}

/// A trimmed, non-empty field.
fn required(field: &str, value: &str) -> Result<String> {
    let value = value.trim();
    if value.is_empty() {
        Err(Error::Invalid(format!("{field} must not be empty")))
    } else {
        Ok(value.to_owned())
    }
}

/// An optional field: absent stays absent; present must not be blank.
fn optional(field: &str, value: Option<&str>) -> Result<Option<String>> {
    value.map(|v| required(field, v)).transpose()
}

pub(crate) fn check_actor(actor: &str) -> Result<()> {
    required("actor", actor).map(drop)
}

/// A step record's fields checked and trimmed (runbook, step and answer required, a known
/// source).
fn check_step(step: NewStepRecord) -> Result<NewStepRecord> {
    Ok(NewStepRecord {
        runbook: required("runbook", &step.runbook)?,
        step: required("step", &step.step)?,
        answer: required("answer", &step.answer)?,
        source: check_source(&step.source)?,
        evidence: step.evidence,
        note: step.note,
        proposed: step.proposed,
    })
}

fn check_source(source: &str) -> Result<String> {
    let wanted = source.trim().to_ascii_lowercase();
    if SOURCES.contains(&wanted.as_str()) {
        Ok(wanted)
    } else {
        Err(Error::Invalid(format!(
            "unknown answer source {source:?} (expected agent, automated or assumed)"
        )))
    }
}

/// Escapes `%`, `_` and `\` for `LIKE ... ESCAPE '\'`.
pub(crate) fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
