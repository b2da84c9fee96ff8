//! `Store`: the incident store's API over an SQLite file or a PostgreSQL database.
//!
//! Both backends run the same SQL text (SQLite accepts PostgreSQL's `$n` parameters), and a
//! macro expands each method body once per pool type, so the two cannot drift apart.
//!
//! Every mutation is one transaction that re-reads the incident, checks the caller's
//! `expected_version`, writes `version = version + 1 ... WHERE version = expected`, and adds
//! its step/escalation row and its audit line; any failure rolls all of it back.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::{describe, redact_url};
use crate::model::{
    ApiToken, Attachment, AuditEntry, CheckRun, Escalation, Idempotency, Incident, LEVELS,
    ListFilter, NewEscalation, NewIncident, NewStepRecord, Note, ROLES, SOURCES, Session, Status,
    StepRecord, User, normalize_level,
};
use crate::rows::{self, incident_cols};
use crate::{Error, Result, migrate};

/// How long opening a database may take before we give up; also the pool's acquire timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an SQLite writer waits for another writer before failing with "locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
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
        let out: Result<_> = match &$store.pool {
            Pool::Sqlite(pool) => {
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
            Pool::Postgres(pool) => {
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

/// Appends one audit line inside the transaction `$tx`, chained to the last one (see
/// `chain`): the chain lock orders appends, the new row's hash covers the previous row's hash.
/// Inserts one step record inside a write transaction; evaluates to its id.
macro_rules! insert_step_record {
    ($tx:ident, $incident:expr, $step:expr, $actor:expr, $now:expr) => {{
        let step: &NewStepRecord = $step;
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
        id
    }};
}

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

/// Fills the chain of audit rows written before it existed (migration 5), inside the
/// migration's transaction, then puts the append-only trigger back.
macro_rules! backfill_chain {
    ($tx:ident, $restore:expr, $err:expr) => {{
        use sqlx::Row as _;
        let rows = sqlx::query(
            "SELECT id, incident_id, actor, at, action, detail FROM audit_log \
             WHERE row_hash IS NULL ORDER BY id",
        )
        .fetch_all(&mut *$tx)
        .await
        .map_err($err)?;
        if !rows.is_empty() {
            let mut prev: String = sqlx::query_scalar::<_, Option<String>>(
                "SELECT row_hash FROM audit_log WHERE row_hash IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .fetch_optional(&mut *$tx)
            .await
            .map_err($err)?
            .flatten()
            .unwrap_or_else(|| crate::chain::GENESIS.to_owned());
            for row in &rows {
                let id: i64 = row.try_get("id").map_err($err)?;
                let hash = crate::chain::row_hash(
                    &prev,
                    row.try_get("incident_id").map_err($err)?,
                    &row.try_get::<String, _>("actor").map_err($err)?,
                    row.try_get("at").map_err($err)?,
                    &row.try_get::<String, _>("action").map_err($err)?,
                    &row.try_get::<String, _>("detail").map_err($err)?,
                );
                sqlx::query("UPDATE audit_log SET prev_hash = $2, row_hash = $3 WHERE id = $1")
                    .bind(id)
                    .bind(&prev)
                    .bind(&hash)
                    .execute(&mut *$tx)
                    .await
                    .map_err($err)?;
                prev = hash;
            }
            tracing::info!(rows = rows.len(), "audit chain computed for existing rows");
        }
        sqlx::raw_sql($restore)
            .execute(&mut *$tx)
            .await
            .map_err($err)?;
    }};
}

/// Puts SQLite's no-update trigger back after the backfill (no-op when it is there).
const SQLITE_RESTORE_TRIGGER: &str = "CREATE TRIGGER IF NOT EXISTS audit_log_no_update \
     BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;";

/// Enables PostgreSQL's append-only trigger again after the backfill.
const PG_RESTORE_TRIGGER: &str = "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only";

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
    /// Opens (and migrates) the store at `url`: `sqlite:///path/file.sqlite` (the file and its
    /// directory are created), `sqlite::memory:`, or `postgres://user@host:port/db`.
    /// Gives up after [`CONNECT_TIMEOUT`].
    pub async fn connect(url: &str) -> Result<Store> {
        let target = redact_url(url.trim());
        let url = url.trim();
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url).map_err(|err| Error::Connect {
                target: target.clone(),
                reason: describe(&err),
            })?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            Self::open_sqlite(options, in_memory, target).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|err| Error::Connect {
                target: target.clone(),
                reason: describe(&err),
            })?;
            Self::open_postgres(options, target).await
        } else {
            Err(Error::Config(format!(
                "unsupported database URL {target:?}: expected sqlite:///path/file.sqlite, \
                 sqlite::memory: or postgres://user@host/db"
            )))
        }
    }

    /// Opens (and migrates) `dir/dialtone.sqlite`, creating the directory and the file.
    pub async fn open_data_dir(dir: &Path) -> Result<Store> {
        let path = dir.join(DATA_FILE);
        let options = SqliteConnectOptions::new().filename(&path);
        Self::open_sqlite(options, false, path.display().to_string()).await
    }

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

    async fn open_sqlite(
        options: SqliteConnectOptions,
        in_memory: bool,
        target: String,
    ) -> Result<Store> {
        let connect_error = |reason: String| Error::Connect {
            target: target.clone(),
            reason,
        };
        if !in_memory
            && let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|err| {
                connect_error(format!(
                    "cannot create directory {}: {err}",
                    parent.display()
                ))
            })?;
        }
        let options = options
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(SQLITE_BUSY_TIMEOUT);
        let options = if in_memory {
            options
        } else {
            // WAL lets readers work while one agent writes; NORMAL sync is durable in WAL
            // mode except for the last transactions on power loss, which is fine for a
            // support tool and makes commits several times cheaper.
            options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        };
        // An in-memory database lives as long as its connection: keep exactly one, forever.
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new().max_connections(8)
        };
        // A connection left inside a transaction (a COMMIT that failed on a full disk leaves
        // sqlx's transaction depth behind) would refuse every later BEGIN: never hand it out.
        let pool_options = pool_options.before_acquire(|conn, _meta| {
            Box::pin(async move {
                if conn.is_in_transaction() {
                    tracing::warn!(
                        "discarding a pooled SQLite connection left inside a transaction"
                    );
                    return Ok(false);
                }
                Ok(true)
            })
        });
        let read_only_copy = (!in_memory).then(|| {
            // The same file, read-only and immutable (no -shm or -wal needed): for a file or a
            // medium this process cannot write, where read commands must still work.
            options
                .clone()
                .read_only(true)
                .immutable(true)
                .create_if_missing(false)
                .journal_mode(SqliteJournalMode::Delete)
        });
        let pool_options = pool_options.acquire_timeout(CONNECT_TIMEOUT);
        let opened = tokio::time::timeout(
            CONNECT_TIMEOUT + Duration::from_secs(1),
            pool_options.clone().connect_with(options),
        )
        .await
        .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))?;
        let pool = match (opened, read_only_copy) {
            (Ok(pool), Some(ro)) if file_is_read_only(options_path(&ro)) => {
                // SQLite opened it read-only by itself, but WAL reads would still need to
                // create the -shm file: use the immutable read-only form.
                pool.close().await;
                tracing::info!("the database file cannot be written here; opened read-only");
                tokio::time::timeout(
                    CONNECT_TIMEOUT + Duration::from_secs(1),
                    pool_options.connect_with(ro),
                )
                .await
                .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))?
                .map_err(|err| connect_error(describe(&err)))?
            }
            (Ok(pool), _) => pool,
            (Err(err), Some(ro)) if is_read_only_error(&err) => {
                tracing::info!("the database cannot be written here; opened read-only");
                tokio::time::timeout(
                    CONNECT_TIMEOUT + Duration::from_secs(1),
                    pool_options.connect_with(ro),
                )
                .await
                .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))?
                .map_err(|err| connect_error(describe(&err)))?
            }
            (Err(err), _) => return Err(connect_error(describe(&err))),
        };
        let store = Store {
            pool: Pool::Sqlite(pool),
            sqlite_writer: Arc::default(),
            target,
            write_fault: Arc::default(),
            pg_options: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn open_postgres(options: PgConnectOptions, target: String) -> Result<Store> {
        let connect_error = |reason: String| Error::Connect {
            target: target.clone(),
            reason,
        };
        let options_for_health = options.clone();
        // One direct connection first: a pool retries until its timeout and then says only
        // "timed out", where this says "connection refused" or "password authentication failed".
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
            }
            Ok(Err(err)) => return Err(connect_error(describe(&err))),
            Err(_) => {
                return Err(connect_error(format!(
                    "no answer within {CONNECT_TIMEOUT:?}"
                )));
            }
        }
        // sqlx bounds each connection attempt by the acquire timeout; the outer timeout is a
        // second guard in case DNS or the startup exchange hangs outside it.
        let pool = tokio::time::timeout(
            CONNECT_TIMEOUT + Duration::from_secs(1),
            PgPoolOptions::new()
                .max_connections(10)
                .before_acquire(|conn, _meta| {
                    Box::pin(async move { Ok(!conn.is_in_transaction()) })
                })
                .acquire_timeout(CONNECT_TIMEOUT)
                .connect_with(options),
        )
        .await
        .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|err| connect_error(describe(&err)))?;
        let store = Store {
            pg_options: Some(options_for_health),
            pool: Pool::Postgres(pool),
            sqlite_writer: Arc::default(),
            target,
            write_fault: Arc::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// The schema version the database has, read without any lock (`None`: no schema yet).
    async fn schema_version(&self) -> Option<i64> {
        let q = "SELECT MAX(version) FROM schema_version";
        let v: std::result::Result<Option<i64>, sqlx::Error> = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_scalar(q).fetch_one(pool).await,
            Pool::Postgres(pool) => sqlx::query_scalar(q).fetch_one(pool).await,
        };
        v.ok().flatten()
    }

    /// Brings the schema up to date, in one transaction; a database already up to date is only
    /// read (no write lock), so read commands work beside a writer and on read-only files.
    async fn migrate(&self) -> Result<()> {
        if self.schema_version().await == Some(migrate::SCHEMA_VERSION) {
            return Ok(());
        }
        let migration_error = |err: sqlx::Error| Error::Migration(describe(&err));
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx =
                    pool.begin_with("BEGIN IMMEDIATE")
                        .await
                        .map_err(|err| Error::Connect {
                            target: self.target.clone(),
                            reason: describe(&err),
                        })?;
                migrate::apply!(tx, migrate::SQLITE, migration_error);
                backfill_chain!(tx, SQLITE_RESTORE_TRIGGER, migration_error);
                tx.commit().await.map_err(migration_error)?;
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await.map_err(migration_error)?;
                // Two processes starting at once must not both create the tables.
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(migrate::PG_LOCK_KEY)
                    .execute(&mut *tx)
                    .await
                    .map_err(migration_error)?;
                migrate::apply!(tx, migrate::POSTGRES, migration_error);
                backfill_chain!(tx, PG_RESTORE_TRIGGER, migration_error);
                tx.commit().await.map_err(migration_error)?;
            }
        }
        Ok(())
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

    // ----- incidents -------------------------------------------------------------------

    /// Opens an incident at `new.level` with status open, and logs it.
    pub async fn open_incident(&self, new: NewIncident, actor: &str) -> Result<Incident> {
        check_actor(actor)?;
        let account = required("account", &new.account)?;
        let reporter = required("reporter", &new.reporter)?;
        let runbook = required("runbook", &new.runbook)?;
        let level = normalize_level(&new.level)?;
        let current_step = optional("current step", new.current_step.as_deref())?;
        let now = now_ms();
        let detail = json!({
            "account": account, "reporter": reporter, "runbook": runbook,
            "level": level, "current_step": current_step,
        });
        let incident = in_write_tx!(self, |tx| {
            let row = sqlx::query(concat!(
                "INSERT INTO incidents (account, reporter, description, level, status, runbook, \
                 current_step, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'open', $5, $6, 1, $7, $7) RETURNING ",
                incident_cols!()
            ))
            .bind(&account)
            .bind(&reporter)
            .bind(&new.description)
            .bind(&level)
            .bind(&runbook)
            .bind(&current_step)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let incident = rows::incident(&row)?;
            audit!(tx, incident.id, actor, now, "open", detail);
            crate::outbox::enqueue!(
                tx,
                incident.id,
                &incident.runbook,
                incident.version,
                "open",
                now
            );
            incident
        });
        tracing::info!(incident = incident.id, actor, "incident opened");
        Ok(incident)
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
        check_actor(actor)?;
        let account = required("account", &new.account)?;
        let reporter = required("reporter", &new.reporter)?;
        let runbook = required("runbook", &new.runbook)?;
        let level = normalize_level(&new.level)?;
        let current_step = optional("current step", new.current_step.as_deref())?;
        let mut checked = Vec::with_capacity(steps.len());
        for (step, next) in steps {
            checked.push((
                NewStepRecord {
                    runbook: required("runbook", &step.runbook)?,
                    step: required("step", &step.step)?,
                    answer: required("answer", &step.answer)?,
                    source: check_source(&step.source)?,
                    evidence: step.evidence,
                    note: step.note,
                    proposed: step.proposed,
                },
                optional("next step", next.as_deref())?,
            ));
        }
        let now = now_ms();
        let detail = json!({
            "account": account, "reporter": reporter, "runbook": runbook,
            "level": level, "current_step": current_step, "assignee": assignee,
        });
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
        with_pool!(self, |pool| {
            sqlx::query(SQL)
                .bind(&level)
                .bind(status)
                .bind(assignee)
                .bind(&pattern)
                .bind(limit)
                .bind(filter.escalated_by.as_deref())
                .fetch_all(pool)
                .await?
                .iter()
                .map(rows::incident)
                .collect()
        })
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
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, incident_id, runbook, step, answer, source, evidence, note, actor, at, \
                 proposed, superseded_at, superseded_by \
                 FROM step_records WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::step_record)
            .collect()
        })
    }

    /// The escalations of incident `id`, oldest first.
    pub async fn escalations(&self, id: i64) -> Result<Vec<Escalation>> {
        self.get(id).await?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, incident_id, from_level, to_level, kind, reason, actor, at \
                 FROM escalations WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::escalation)
            .collect()
        })
    }

    /// The audit log of incident `id`, oldest first.
    pub async fn audit(&self, id: i64) -> Result<Vec<AuditEntry>> {
        self.get(id).await?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, incident_id, actor, at, action, detail \
                 FROM audit_log WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::audit_entry)
            .collect()
        })
    }

    /// Checks the audit log's hash chain from the first row: each row's `prev_hash` must be the
    /// row before's `row_hash`, and its `row_hash` must match its content. Names the first row
    /// where either fails (an edited row, or the row after a removed one).
    pub async fn verify_audit(&self) -> Result<crate::AuditVerdict> {
        use sqlx::Row as _;
        let rows = with_pool!(self, |pool| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, incident_id, actor, at, action, detail, prev_hash, row_hash \
                 FROM audit_log ORDER BY id",
            )
            .fetch_all(pool)
            .await?
            {
                out.push((
                    row.try_get::<i64, _>("id")?,
                    row.try_get::<Option<i64>, _>("incident_id")?,
                    row.try_get::<String, _>("actor")?,
                    row.try_get::<i64, _>("at")?,
                    row.try_get::<String, _>("action")?,
                    row.try_get::<String, _>("detail")?,
                    row.try_get::<Option<String>, _>("prev_hash")?,
                    row.try_get::<Option<String>, _>("row_hash")?,
                ));
            }
            out
        });
        let mut expected_prev = crate::chain::GENESIS.to_owned();
        let mut checked = 0u64;
        for (id, incident, actor, at, action, detail, prev, hash) in rows {
            checked += 1;
            let broken = |reason: &str| crate::AuditVerdict {
                rows: checked,
                first_broken: Some(crate::BrokenRow {
                    id,
                    reason: reason.to_owned(),
                }),
            };
            let (Some(prev), Some(hash)) = (prev, hash) else {
                return Ok(broken("the row has no hashes"));
            };
            if prev != expected_prev {
                return Ok(broken(
                    "its previous-row hash does not match the row before it (a row was removed, \
                     inserted or changed before it)",
                ));
            }
            if crate::chain::row_hash(&prev, incident, &actor, at, &action, &detail) != hash {
                return Ok(broken(
                    "its content does not match its hash (the row was changed)",
                ));
            }
            expected_prev = hash;
        }
        Ok(crate::AuditVerdict {
            rows: checked,
            first_broken: None,
        })
    }

    /// Writes a consistent copy of the whole SQLite database to `dest` (`VACUUM INTO`: one
    /// file, write-ahead log included, safe while others write). `dest` must not exist.
    /// PostgreSQL is backed up with its own tools (`pg_dump`): that is a configuration error.
    pub async fn backup_to(&self, dest: &Path) -> Result<()> {
        let Pool::Sqlite(pool) = &self.pool else {
            return Err(Error::Config(
                "dialtone backup copies SQLite stores; back up PostgreSQL with pg_dump \
                 (e.g. pg_dump -Fc -f dialtone.dump DBNAME)"
                    .to_owned(),
            ));
        };
        if dest.exists() {
            return Err(Error::Invalid(format!(
                "{} exists already; choose a new file name",
                dest.display()
            )));
        }
        let dest_text = dest
            .to_str()
            .ok_or_else(|| Error::Invalid("the backup path is not valid UTF-8".to_owned()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(dest_text)
            .execute(pool)
            .await?;
        Ok(())
    }

    /// The audit lines that concern no incident (user administration), oldest first.
    pub async fn audit_users(&self) -> Result<Vec<AuditEntry>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, incident_id, actor, at, action, detail \
                 FROM audit_log WHERE incident_id IS NULL ORDER BY id",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::audit_entry)
            .collect()
        })
    }

    /// Records the answer to one step and moves the incident to `next_step`.
    pub async fn record_step(
        &self,
        id: i64,
        expected_version: i64,
        step: NewStepRecord,
        next_step: Option<String>,
        actor: &str,
    ) -> Result<Incident> {
        let step = NewStepRecord {
            runbook: required("runbook", &step.runbook)?,
            step: required("step", &step.step)?,
            answer: required("answer", &step.answer)?,
            source: check_source(&step.source)?,
            evidence: step.evidence,
            note: step.note,
            proposed: step.proposed,
        };
        let next_step = optional("next step", next_step.as_deref())?;
        self.mutate(id, expected_version, actor, move |current| {
            refuse_closed(&current)?;
            let detail = json!({
                "runbook": step.runbook, "step": step.step, "answer": step.answer,
                "source": step.source, "note": step.note, "proposed": step.proposed,
                "from_step": current.current_step, "next_step": next_step,
            });
            Ok(Change {
                next: Incident {
                    current_step: next_step,
                    ..current
                },
                side: Side::Step(step),
                action: "step",
                detail,
            })
        })
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
        let step = NewStepRecord {
            runbook: required("runbook", &step.runbook)?,
            step: required("step", &step.step)?,
            answer: required("answer", &step.answer)?,
            source: check_source(&step.source)?,
            evidence: step.evidence,
            note: step.note,
            proposed: step.proposed,
        };
        let next_step = optional("next step", next_step.as_deref())?;
        self.mutate(id, expected_version, actor, move |current| {
            refuse_closed(&current)?;
            let detail = json!({
                "runbook": step.runbook, "step": step.step, "answer": step.answer,
                "source": step.source, "note": step.note, "supersedes": supersedes,
                "from_step": current.current_step, "next_step": next_step,
            });
            Ok(Change {
                next: Incident {
                    current_step: next_step,
                    ..current
                },
                side: Side::Revision {
                    step,
                    supersede_from: supersedes,
                },
                action: "revise",
                detail,
            })
        })
        .await
    }

    /// Adds an internal note. Notes are allowed at any time, closed incidents included, and do
    /// not change the incident's version (a note never conflicts with an answer).
    pub async fn add_note(&self, id: i64, text: &str, actor: &str) -> Result<Note> {
        check_actor(actor)?;
        let text = required("note", text)?;
        let now = now_ms();
        let note = in_write_tx!(self, |tx| {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(not_found_incident(id));
            }
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
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, incident_id, text, actor, at FROM notes WHERE incident_id = $1 \
                 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::note)
            .collect()
        })
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
            if level_rank(&to_level) <= level_rank(&current.level) {
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

    // ----- idempotency -----------------------------------------------------------------

    /// Claims `key` for a call by `scope` (a credential's hash) with `fingerprint` (method and
    /// path). Keys are kept a day; a claim whose call never finished is taken over after a
    /// minute.
    pub async fn idempotency_begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Idempotency> {
        const KEEP_MS: i64 = 24 * 3600 * 1000;
        const STALE_MS: i64 = 60 * 1000;
        let now = now_ms();
        let state = in_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
                .bind(now - KEEP_MS)
                .execute(&mut *tx)
                .await?;
            let row: Option<(String, Option<i64>, Option<String>, i64)> = sqlx::query_as(
                "SELECT fingerprint, status, body, created_at FROM idempotency \
                 WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some((fp, _, _, _)) if fp != fingerprint => Idempotency::Mismatch,
                Some((_, Some(status), body, _)) => Idempotency::Done {
                    status: u16::try_from(status).unwrap_or(500),
                    body: body.unwrap_or_default(),
                },
                Some((_, None, _, at)) if now - at < STALE_MS => Idempotency::InProgress,
                Some(_) => {
                    sqlx::query(
                        "UPDATE idempotency SET created_at = $3 WHERE scope = $1 AND key = $2",
                    )
                    .bind(scope)
                    .bind(key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    Idempotency::New
                }
                None => {
                    sqlx::query(
                        "INSERT INTO idempotency (scope, key, fingerprint, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(scope)
                    .bind(key)
                    .bind(fingerprint)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    Idempotency::New
                }
            }
        });
        Ok(state)
    }

    /// Records the answer of a claimed key; `None` releases the claim (the call failed and
    /// changed nothing, so a retry may run it again).
    pub async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        answer: Option<(u16, &str)>,
    ) -> Result<()> {
        in_write_tx!(self, |tx| {
            match answer {
                Some((status, body)) => {
                    sqlx::query(
                        "UPDATE idempotency SET status = $3, body = $4 \
                         WHERE scope = $1 AND key = $2",
                    )
                    .bind(scope)
                    .bind(key)
                    .bind(i64::from(status))
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM idempotency WHERE scope = $1 AND key = $2")
                        .bind(scope)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        });
        Ok(())
    }

    // ----- check runs ------------------------------------------------------------------

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
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(not_found_incident(id));
            }
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
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, incident_id, step, answer, summary, evidence, actor, at \
                 FROM check_runs WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::check_run)
            .collect()
        })
    }

    // ----- attachments -----------------------------------------------------------------

    /// Stores a file with the incident (the caller enforces a size limit). Does not change
    /// the incident's version: attachments only add, so they cannot conflict.
    pub async fn add_attachment(
        &self,
        id: i64,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        actor: &str,
    ) -> Result<Attachment> {
        check_actor(actor)?;
        let name = required("attachment name", name)?;
        if name.len() > 255 || name.contains(['/', '\\', '\0']) {
            return Err(Error::Invalid(format!(
                "attachment name {name:?} must be a plain file name of at most 255 bytes"
            )));
        }
        let content_type = required("content type", content_type)?;
        let size = i64::try_from(bytes.len())
            .map_err(|_| Error::Invalid("attachment is too large".into()))?;
        let now = now_ms();
        let attachment = in_write_tx!(self, |tx| {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(not_found_incident(id));
            }
            let row = sqlx::query(
                "INSERT INTO attachments \
                 (incident_id, name, content_type, size, content, actor, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 RETURNING id, incident_id, name, content_type, size, actor, created_at",
            )
            .bind(id)
            .bind(&name)
            .bind(&content_type)
            .bind(size)
            .bind(bytes)
            .bind(actor)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let attachment = rows::attachment(&row)?;
            let detail = json!({
                "attachment_id": attachment.id, "name": name,
                "content_type": content_type, "size": size,
            });
            audit!(tx, id, actor, now, "attachment", detail);
            attachment
        });
        Ok(attachment)
    }

    /// Stores a file read from `reader` with the incident, in chunks of [`ATTACHMENT_CHUNK`]
    /// bytes, so memory stays bounded whatever the file's size. More than `limit` bytes is
    /// `Error::Invalid` and stores nothing (the whole write is one transaction: a writer killed
    /// half-way leaves no partial attachment). Like [`Store::add_attachment`] otherwise; the
    /// audit row also records the content's SHA-256.
    pub async fn add_attachment_streamed<R>(
        &self,
        id: i64,
        name: &str,
        content_type: &str,
        mut reader: R,
        limit: u64,
        actor: &str,
    ) -> Result<Attachment>
    where
        R: tokio::io::AsyncRead + Unpin + Send,
    {
        use sha2::Digest as _;
        use tokio::io::AsyncReadExt as _;
        check_actor(actor)?;
        let name = required("attachment name", name)?;
        if name.len() > 255 || name.contains(['/', '\\', '\0']) {
            return Err(Error::Invalid(format!(
                "attachment name {name:?} must be a plain file name of at most 255 bytes"
            )));
        }
        let content_type = required("content type", content_type)?;
        let now = now_ms();
        let mut chunk = vec![0u8; ATTACHMENT_CHUNK];
        let attachment = in_write_tx!(self, |tx| {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Err(not_found_incident(id));
            }
            let att_id: i64 = sqlx::query_scalar(
                "INSERT INTO attachments \
                 (incident_id, name, content_type, size, content, actor, created_at) \
                 VALUES ($1, $2, $3, 0, $4, $5, $6) RETURNING id",
            )
            .bind(id)
            .bind(&name)
            .bind(&content_type)
            .bind(&[] as &[u8])
            .bind(actor)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let mut size: u64 = 0;
            let mut sha = sha2::Sha256::new();
            let mut seq: i64 = 0;
            loop {
                // Fill the chunk (a reader may return short reads), so rows are full-sized.
                let mut filled = 0;
                while filled < chunk.len() {
                    let n = reader
                        .read(&mut chunk[filled..])
                        .await
                        .map_err(|e| Error::Invalid(format!("cannot read {name}: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    break;
                }
                size += filled as u64;
                if size > limit {
                    return Err(Error::Invalid(format!(
                        "{name} is larger than the attachment limit of {limit} bytes"
                    )));
                }
                sha.update(&chunk[..filled]);
                sqlx::query(
                    "INSERT INTO attachment_chunks (attachment_id, seq, data) VALUES ($1, $2, $3)",
                )
                .bind(att_id)
                .bind(seq)
                .bind(&chunk[..filled])
                .execute(&mut *tx)
                .await?;
                seq += 1;
                if filled < chunk.len() {
                    break;
                }
            }
            let size = i64::try_from(size)
                .map_err(|_| Error::Invalid("attachment is too large".into()))?;
            let row = sqlx::query(
                "UPDATE attachments SET size = $2 WHERE id = $1 \
                 RETURNING id, incident_id, name, content_type, size, actor, created_at",
            )
            .bind(att_id)
            .bind(size)
            .fetch_one(&mut *tx)
            .await?;
            let attachment = rows::attachment(&row)?;
            let sha256: String = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
            let detail = json!({
                "attachment_id": attachment.id, "name": name,
                "content_type": content_type, "size": size, "sha256": sha256,
            });
            audit!(tx, id, actor, now, "attachment", detail);
            attachment
        });
        Ok(attachment)
    }

    /// The attachments of incident `id` (without their bytes), oldest first.
    pub async fn attachments(&self, id: i64) -> Result<Vec<Attachment>> {
        self.get(id).await?;
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT id, incident_id, name, content_type, size, actor, created_at \
                 FROM attachments WHERE incident_id = $1 ORDER BY id",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::attachment)
            .collect()
        })
    }

    /// One attachment with its bytes.
    pub async fn attachment(&self, attachment_id: i64) -> Result<(Attachment, Vec<u8>)> {
        let found = with_pool!(self, |pool| {
            match sqlx::query(
                "SELECT id, incident_id, name, content_type, size, actor, created_at, content \
                 FROM attachments WHERE id = $1",
            )
            .bind(attachment_id)
            .fetch_optional(pool)
            .await?
            {
                Some(row) => {
                    let meta = rows::attachment(&row)?;
                    let mut bytes = rows::RowGet::bytes(&row, "content")?;
                    if bytes.is_empty() && meta.size > 0 {
                        // Streamed in: the content is in numbered chunks.
                        let chunks: Vec<Vec<u8>> = sqlx::query_scalar(
                            "SELECT data FROM attachment_chunks WHERE attachment_id = $1 \
                             ORDER BY seq",
                        )
                        .bind(attachment_id)
                        .fetch_all(pool)
                        .await?;
                        bytes = chunks.concat();
                    }
                    Some((meta, bytes))
                }
                None => None,
            }
        });
        found.ok_or_else(|| Error::NotFound {
            what: "attachment",
            id: attachment_id.to_string(),
        })
    }

    // ----- people ----------------------------------------------------------------------

    /// Creates a web user. `password_hash` is a PHC string made by the caller; `role` is
    /// l1, l2 or admin. A taken username gives `Error::AlreadyExists`.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<User> {
        self.create_user_by(username, password_hash, role, "system")
            .await
    }

    /// [`Store::create_user`], logged with `actor` as who did it (an admin, the CLI's user).
    pub async fn create_user_by(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
        actor: &str,
    ) -> Result<User> {
        check_actor(actor)?;
        let username = check_username(username)?;
        let password_hash = required("password hash", password_hash)?;
        let role = check_role(role)?;
        let now = now_ms();
        let detail = json!({ "username": username, "role": role });
        let result = in_write_tx!(self, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO users (username, password_hash, role, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 RETURNING username, password_hash, role, disabled, created_at",
            )
            .bind(&username)
            .bind(&password_hash)
            .bind(&role)
            .bind(false)
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
            let row = match inserted {
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Err(Error::AlreadyExists {
                        what: "user",
                        id: username,
                    });
                }
                other => other?,
            };
            let user = rows::user(&row)?;
            audit!(tx, None::<i64>, actor, now, "user.create", detail);
            user
        });
        Ok(result)
    }

    /// The user, if it exists (disabled users included).
    pub async fn user(&self, username: &str) -> Result<Option<User>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT username, password_hash, role, disabled, created_at \
                 FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?
            .map(|row| rows::user(&row))
            .transpose()
        })
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT username, password_hash, role, disabled, created_at \
                 FROM users ORDER BY username",
            )
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::user)
            .collect()
        })
    }

    /// Disables (or re-enables) a user; disabling also ends their sessions.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<User> {
        check_actor(actor)?;
        let now = now_ms();
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        let user = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "UPDATE users SET disabled = $2 WHERE username = $1 \
                 RETURNING username, password_hash, role, disabled, created_at",
            )
            .bind(username)
            .bind(disabled)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(Error::NotFound {
                    what: "user",
                    id: username.to_owned(),
                });
            };
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
            }
            audit!(
                tx,
                None::<i64>,
                actor,
                now,
                action,
                json!({ "username": username })
            );
            rows::user(&row)?
        });
        Ok(user)
    }

    /// Gives a user another role (l1, l2 or admin) and ends their sessions, so nothing keeps
    /// running with the old role's rights. Setting the role a user already has changes nothing
    /// (no audit line, sessions kept). API tokens stay: they take the role at each request.
    pub async fn set_user_role(&self, username: &str, role: &str, actor: &str) -> Result<User> {
        check_actor(actor)?;
        let role = check_role(role)?;
        let now = now_ms();
        let user = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "SELECT username, password_hash, role, disabled, created_at \
                 FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(Error::NotFound {
                    what: "user",
                    id: username.to_owned(),
                });
            };
            let before = rows::user(&row)?;
            if before.role == role {
                before
            } else {
                let row = sqlx::query(
                    "UPDATE users SET role = $2 WHERE username = $1 \
                     RETURNING username, password_hash, role, disabled, created_at",
                )
                .bind(username)
                .bind(&role)
                .fetch_one(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM sessions WHERE username = $1")
                    .bind(username)
                    .execute(&mut *tx)
                    .await?;
                audit!(
                    tx,
                    None::<i64>,
                    actor,
                    now,
                    "user.role",
                    json!({ "username": username, "from": before.role, "to": role })
                );
                rows::user(&row)?
            }
        });
        Ok(user)
    }

    /// Replaces a user's password hash and ends their sessions.
    pub async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<()> {
        check_actor(actor)?;
        let password_hash = required("password hash", password_hash)?;
        let now = now_ms();
        in_write_tx!(self, |tx| {
            let changed = sqlx::query("UPDATE users SET password_hash = $2 WHERE username = $1")
                .bind(username)
                .bind(&password_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(Error::NotFound {
                    what: "user",
                    id: username.to_owned(),
                });
            }
            sqlx::query("DELETE FROM sessions WHERE username = $1")
                .bind(username)
                .execute(&mut *tx)
                .await?;
            audit!(
                tx,
                None::<i64>,
                actor,
                now,
                "user.password",
                json!({ "username": username })
            );
        });
        Ok(())
    }

    /// Stores a login session under the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Session> {
        let token_hash = required("token hash", token_hash)?;
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, username, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING token_hash, username, expires_at, created_at",
            )
            .bind(&token_hash)
            .bind(username)
            .bind(expires_at.timestamp_millis())
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|err| people_error(err, "session", username))
            .and_then(|row| rows::session(&row))
        })
    }

    /// The session with this token hash, unless it does not exist or has expired.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT token_hash, username, expires_at, created_at FROM sessions \
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|row| rows::session(&row))
            .transpose()
        })
    }

    /// Ends a session (logout). Ending an unknown session is not an error.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let now = now_ms();
        Ok(with_pool!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Stores an API token under its hash, valid until `expires_at` (`None`: no expiry), and
    /// logs its creation (never the token or its hash).
    pub async fn create_api_token(
        &self,
        token_hash: &str,
        username: &str,
        label: &str,
        expires_at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<ApiToken> {
        check_actor(actor)?;
        let token_hash = required("token hash", token_hash)?;
        let now = now_ms();
        let expires = expires_at.map(|t| t.timestamp_millis());
        let token = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "INSERT INTO api_tokens (token_hash, username, label, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 RETURNING token_hash, username, label, created_at, expires_at, revoked_at",
            )
            .bind(&token_hash)
            .bind(username)
            .bind(label)
            .bind(now)
            .bind(expires)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| people_error(err, "api token", username))?;
            let token = rows::api_token(&row)?;
            audit!(
                tx,
                None::<i64>,
                actor,
                now,
                "token.create",
                json!({ "username": username, "label": label, "expires_at": expires })
            );
            token
        });
        Ok(token)
    }

    /// The API token with this hash, if it exists, is not revoked and has not expired.
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT token_hash, username, label, created_at, expires_at, revoked_at \
                 FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|row| rows::api_token(&row))
            .transpose()
        })
    }

    /// The API tokens of a user (revoked and expired ones included), oldest first.
    pub async fn api_tokens(&self, username: &str) -> Result<Vec<ApiToken>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT token_hash, username, label, created_at, expires_at, revoked_at \
                 FROM api_tokens WHERE username = $1 ORDER BY created_at",
            )
            .bind(username)
            .fetch_all(pool)
            .await?
            .iter()
            .map(rows::api_token)
            .collect()
        })
    }

    /// Revokes a user's live tokens (those labelled `label`, or all), logs it, and returns how
    /// many were revoked.
    pub async fn revoke_api_tokens(
        &self,
        username: &str,
        label: Option<&str>,
        actor: &str,
    ) -> Result<u64> {
        check_actor(actor)?;
        let now = now_ms();
        let n = in_write_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $3 WHERE username = $1 \
                 AND ($2 IS NULL OR label = $2) AND revoked_at IS NULL",
            )
            .bind(username)
            .bind(label)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            audit!(
                tx,
                None::<i64>,
                actor,
                now,
                "token.revoke",
                json!({ "username": username, "label": label, "revoked": n })
            );
            n
        });
        Ok(n)
    }

    /// Revokes the one token with this hash (a script giving up its own token), and logs it.
    pub async fn revoke_api_token(&self, token_hash: &str, actor: &str) -> Result<bool> {
        check_actor(actor)?;
        let now = now_ms();
        let done = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $2 WHERE token_hash = $1 \
                 AND revoked_at IS NULL RETURNING username, label",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(row) => {
                    let username = rows::RowGet::text(&row, "username")?;
                    let label = rows::RowGet::text(&row, "label")?;
                    audit!(
                        tx,
                        None::<i64>,
                        actor,
                        now,
                        "token.revoke",
                        json!({ "username": username, "label": label, "revoked": 1 })
                    );
                    true
                }
                None => false,
            }
        });
        Ok(done)
    }

    /// Revokes an API token. Revoking an unknown token is not an error.
    pub async fn delete_api_token(&self, token_hash: &str) -> Result<()> {
        with_pool!(self, |pool| {
            sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}

fn options_path(o: &SqliteConnectOptions) -> &Path {
    o.get_filename()
}

/// Whether an existing file cannot be opened for writing (read-only medium or permissions).
fn file_is_read_only(path: &Path) -> bool {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
        ),
    }
}

/// SQLite refusing to open a file for writing: read-only file or medium (codes 8 READONLY,
/// 14 CANTOPEN, or an extended code of either).
fn is_read_only_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| matches!(c & 0xff, 8 | 14)),
        _ => false,
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

/// Position of a level in `LEVELS` (unknown levels rank lowest; they are validated earlier).
fn level_rank(level: &str) -> usize {
    LEVELS.iter().position(|l| *l == level).unwrap_or(0)
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

fn check_role(role: &str) -> Result<String> {
    let wanted = role.trim().to_ascii_lowercase();
    if ROLES.contains(&wanted.as_str()) {
        Ok(wanted)
    } else {
        Err(Error::Invalid(format!(
            "unknown role {role:?} (expected l1, l2, lead or admin)"
        )))
    }
}

fn check_username(username: &str) -> Result<String> {
    let username = required("username", username)?;
    if username.len() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::Invalid(format!(
            "username {username:?} must be at most 64 characters without spaces"
        )));
    }
    Ok(username)
}

/// Session and token inserts: a missing user or a reused hash get their own errors.
fn people_error(err: sqlx::Error, what: &'static str, username: &str) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => Error::NotFound {
            what: "user",
            id: username.to_owned(),
        },
        // The key is a hash: say whose it is rather than showing it.
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::AlreadyExists {
            what,
            id: format!("for user {username}"),
        },
        _ => Error::from(err),
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
