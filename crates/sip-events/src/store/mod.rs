//! The persisted window: one SQLite file (WAL) holding compact message rows, registration
//! attempts and calls, bounded by count and age; [`EventStore`] writes it in batches,
//! [`EventWindow`] reads it (from any process).

mod schema;
mod window;

use crate::Error;
use crate::events::{SipRecord, call_rank};
use chrono::Utc;
use schema::{LAYOUT, MIGRATE_V1, SCHEMA, SET_LAYOUT, method_code};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
pub use window::{EventWindow, WindowStats};

/// The events file's name in dialtone's data directory.
pub const DEFAULT_FILE: &str = "events.sqlite";
/// Every read gives up after this long.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// No read returns more rows than this, whatever the limit asked.
pub const MAX_READ_ROWS: usize = 10_000;
/// How long a write or read waits for the file's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per multi-row statement (SQLite allows 32766 bound values).
const ROWS_PER_STATEMENT: usize = 500;
/// Rows looked at per pruning step (oldest first, by arrival).
const PRUNE_STEP: i64 = 10_000;

/// Bounds and batching of the window.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The SQLite file (created with its directory).
    pub path: PathBuf,
    /// Most SIP message rows kept; registration and call rows older than the oldest kept
    /// message go with it (there is at most one per message).
    pub max_events: u64,
    /// Rows older than this are pruned.
    pub max_age: Duration,
    /// Messages waiting for the writer; past this, new ones are dropped and counted.
    pub queue_capacity: usize,
    /// A batch is committed when it has this many messages…
    pub batch_max: usize,
    /// …or this long after the previous commit.
    pub batch_interval: Duration,
}

impl StoreConfig {
    /// The defaults: 1,000,000 events, 7 days, a 50,000-message queue, batches of 5,000 or
    /// every 100 ms.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_events: 1_000_000,
            max_age: Duration::from_secs(7 * 24 * 3600),
            queue_capacity: 50_000,
            batch_max: 5_000,
            batch_interval: Duration::from_millis(100),
        }
    }
}

fn store_err(path: &Path) -> impl Fn(sqlx::Error) -> Error + '_ {
    move |source| Error::Store {
        path: path.to_path_buf(),
        source,
    }
}

/// The writer of the window (one per file).
pub struct EventStore {
    pool: SqlitePool,
    cfg: StoreConfig,
}

impl std::fmt::Debug for EventStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStore")
            .field("path", &self.cfg.path)
            .finish()
    }
}

/// A registration row being merged (one REGISTER transaction), borrowing from the batch.
#[derive(Debug, Clone)]
struct RegRow<'a> {
    call_id: &'a str,
    cseq: u32,
    at: i64,
    user: &'a str,
    source: &'a str,
    transport: &'a str,
    user_agent: &'a str,
    auth_user: &'a str,
    from_request: bool,
    status: u16,
    reason: &'a str,
    challenge: bool,
}

impl<'a> RegRow<'a> {
    fn from_record(r: &'a SipRecord) -> Self {
        let request = r.status.is_none();
        let user = if r.to_user.is_empty() {
            &r.from_user
        } else {
            &r.to_user
        };
        Self {
            call_id: &r.call_id,
            cseq: r.cseq,
            at: r.at,
            user,
            // The client sent the request, and receives the response.
            source: if request { &r.src } else { &r.dst },
            transport: &r.transport,
            user_agent: if request { &r.user_agent } else { "" },
            auth_user: &r.auth_user,
            from_request: request,
            status: r.status.unwrap_or(0),
            reason: &r.reason,
            challenge: r.challenge,
        }
    }

    /// Same rules as the SQL upsert: the first request's fields, the last final response.
    fn merge(&mut self, o: RegRow<'a>) {
        if o.from_request && !self.from_request {
            self.at = o.at;
            self.user = o.user;
            self.source = o.source;
            self.transport = o.transport;
            self.user_agent = o.user_agent;
            self.auth_user = o.auth_user;
            self.from_request = true;
        }
        if o.status >= 200 || (self.status < 200 && o.status > 0) {
            self.status = o.status;
            self.reason = o.reason;
            self.challenge = o.challenge;
        }
    }
}

/// A call row being merged (all INVITE transactions of a Call-ID), borrowing from the batch.
#[derive(Debug, Clone)]
struct CallRow<'a> {
    call_id: &'a str,
    at: i64,
    caller: &'a str,
    callee: &'a str,
    dialled: &'a str,
    source: &'a str,
    from_request: bool,
    status: u16,
    reason: &'a str,
    rank: i64,
    answered_at: Option<i64>,
    ended_at: Option<i64>,
}

impl<'a> CallRow<'a> {
    fn from_invite(r: &'a SipRecord) -> Self {
        let request = r.status.is_none();
        let status = r.status.unwrap_or(0);
        Self {
            call_id: &r.call_id,
            at: r.at,
            caller: &r.from_user,
            callee: &r.to_user,
            dialled: if request { &r.ruri_user } else { "" },
            source: if request { &r.src } else { &r.dst },
            from_request: request,
            status,
            reason: &r.reason,
            rank: if request {
                -1
            } else {
                call_rank(status, r.cseq)
            },
            answered_at: (200..300).contains(&status).then_some(r.at),
            ended_at: None,
        }
    }

    fn merge(&mut self, o: CallRow<'a>) {
        if o.from_request && !self.from_request {
            self.at = o.at;
            self.caller = o.caller;
            self.callee = o.callee;
            self.dialled = o.dialled;
            self.source = o.source;
            self.from_request = true;
        }
        if o.rank > self.rank {
            self.rank = o.rank;
            self.status = o.status;
            self.reason = o.reason;
        }
        self.answered_at = self.answered_at.or(o.answered_at);
        self.ended_at = self.ended_at.or(o.ended_at);
    }
}

fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

impl EventStore {
    /// Opens (creating it and its directory) the window's file for writing.
    pub async fn open(cfg: StoreConfig) -> Result<EventStore, Error> {
        let path = cfg.path.clone();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                what: format!("cannot create directory {}", parent.display()),
                source,
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a committed batch survives a crash of the process.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(BUSY_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(store_err(&path))?;
        let err = store_err(&path);
        let layout: i64 = sqlx::query_scalar("PRAGMA user_version")
            .fetch_one(&pool)
            .await
            .map_err(&err)?;
        if layout > LAYOUT {
            return Err(Error::Layout {
                path: path.clone(),
                found: layout,
                known: LAYOUT,
            });
        }
        if layout < LAYOUT {
            let v1: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM pragma_table_info('messages') WHERE name = 'src'",
            )
            .fetch_one(&pool)
            .await
            .map_err(&err)?;
            let mut tx = pool.begin().await.map_err(&err)?;
            if v1 > 0 {
                sqlx::raw_sql(MIGRATE_V1)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
            }
            sqlx::raw_sql(SCHEMA)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
            sqlx::raw_sql(SET_LAYOUT)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
            tx.commit().await.map_err(&err)?;
        }
        Ok(EventStore { pool, cfg })
    }

    pub fn config(&self) -> &StoreConfig {
        &self.cfg
    }

    /// Writes one batch in one transaction: message rows, then the registration and call rows
    /// they make or complete. Returns how many message rows were stored.
    pub async fn write_batch(&self, records: &[SipRecord]) -> Result<usize, Error> {
        if records.is_empty() {
            return Ok(0);
        }
        let err = store_err(&self.cfg.path);
        let mut regs: Vec<RegRow<'_>> = Vec::new();
        let mut reg_index: HashMap<(&str, u32), usize> = HashMap::new();
        let mut calls: Vec<CallRow<'_>> = Vec::new();
        let mut call_index: HashMap<&str, usize> = HashMap::new();
        let mut ends: Vec<(&str, i64)> = Vec::new();
        for r in records {
            match (r.method.as_str(), r.status) {
                ("REGISTER", _) => {
                    let row = RegRow::from_record(r);
                    match reg_index.get(&(row.call_id, r.cseq)) {
                        Some(&i) => regs[i].merge(row),
                        None => {
                            reg_index.insert((row.call_id, r.cseq), regs.len());
                            regs.push(row);
                        }
                    }
                }
                ("INVITE", _) => {
                    let row = CallRow::from_invite(r);
                    match call_index.get(r.call_id.as_str()) {
                        Some(&i) => calls[i].merge(row),
                        None => {
                            call_index.insert(r.call_id.as_str(), calls.len());
                            calls.push(row);
                        }
                    }
                }
                ("BYE" | "CANCEL", None) => ends.push((r.call_id.as_str(), r.at)),
                _ => {}
            }
        }
        // Ends of calls whose INVITE is in this batch merge in memory; the others update rows.
        let mut late_ends = Vec::new();
        for (call_id, at) in ends {
            match call_index.get(call_id) {
                Some(&i) => calls[i].ended_at = calls[i].ended_at.or(Some(at)),
                None => late_ends.push((call_id, at)),
            }
        }

        let mut tx = self.pool.begin().await.map_err(&err)?;
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO messages (at, call_id, cseq, method, status) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.at)
                    .push_bind(r.call_id.as_str())
                    .push_bind(i64::from(r.cseq))
                    .push_bind(method_code(&r.method))
                    .push_bind(r.status.map(i64::from));
            });
            q.build().execute(&mut *tx).await.map_err(&err)?;
        }
        for chunk in regs.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO registrations (call_id, cseq, at, user, source, transport, user_agent, \
                 auth_user, from_request, status, reason, challenge) ",
            );
            q.push_values(chunk, |mut b, r| {
                b.push_bind(r.call_id)
                    .push_bind(i64::from(r.cseq))
                    .push_bind(r.at)
                    .push_bind(r.user)
                    .push_bind(r.source)
                    .push_bind(r.transport)
                    .push_bind(r.user_agent)
                    .push_bind(r.auth_user)
                    .push_bind(r.from_request)
                    .push_bind(i64::from(r.status))
                    .push_bind(r.reason)
                    .push_bind(r.challenge);
            });
            // Same rules as RegRow::merge; SET expressions see the row as it was.
            q.push(
                " ON CONFLICT (call_id, cseq) DO UPDATE SET
                  at = CASE WHEN excluded.from_request AND NOT registrations.from_request THEN excluded.at ELSE registrations.at END,
                  user = CASE WHEN excluded.from_request AND NOT registrations.from_request THEN excluded.user ELSE registrations.user END,
                  source = CASE WHEN excluded.from_request AND NOT registrations.from_request THEN excluded.source ELSE registrations.source END,
                  transport = CASE WHEN excluded.from_request AND NOT registrations.from_request THEN excluded.transport ELSE registrations.transport END,
                  user_agent = CASE WHEN excluded.from_request AND NOT registrations.from_request THEN excluded.user_agent ELSE registrations.user_agent END,
                  auth_user = CASE WHEN excluded.from_request AND NOT registrations.from_request THEN excluded.auth_user ELSE registrations.auth_user END,
                  from_request = MAX(registrations.from_request, excluded.from_request),
                  status = CASE WHEN excluded.status >= 200 OR (registrations.status < 200 AND excluded.status > 0) THEN excluded.status ELSE registrations.status END,
                  reason = CASE WHEN excluded.status >= 200 OR (registrations.status < 200 AND excluded.status > 0) THEN excluded.reason ELSE registrations.reason END,
                  challenge = CASE WHEN excluded.status >= 200 OR (registrations.status < 200 AND excluded.status > 0) THEN excluded.challenge ELSE registrations.challenge END",
            );
            q.build().execute(&mut *tx).await.map_err(&err)?;
        }
        for chunk in calls.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO calls (call_id, at, caller, callee, dialled, source, from_request, \
                 status, reason, rank, answered_at, ended_at) ",
            );
            q.push_values(chunk, |mut b, c| {
                b.push_bind(c.call_id)
                    .push_bind(c.at)
                    .push_bind(c.caller)
                    .push_bind(c.callee)
                    .push_bind(c.dialled)
                    .push_bind(c.source)
                    .push_bind(c.from_request)
                    .push_bind(i64::from(c.status))
                    .push_bind(c.reason)
                    .push_bind(c.rank)
                    .push_bind(c.answered_at)
                    .push_bind(c.ended_at);
            });
            // Same rules as CallRow::merge.
            q.push(
                " ON CONFLICT (call_id) DO UPDATE SET
                  at = CASE WHEN excluded.from_request AND NOT calls.from_request THEN excluded.at ELSE calls.at END,
                  caller = CASE WHEN excluded.from_request AND NOT calls.from_request THEN excluded.caller ELSE calls.caller END,
                  callee = CASE WHEN excluded.from_request AND NOT calls.from_request THEN excluded.callee ELSE calls.callee END,
                  dialled = CASE WHEN excluded.from_request AND NOT calls.from_request THEN excluded.dialled ELSE calls.dialled END,
                  source = CASE WHEN excluded.from_request AND NOT calls.from_request THEN excluded.source ELSE calls.source END,
                  from_request = MAX(calls.from_request, excluded.from_request),
                  status = CASE WHEN excluded.rank > calls.rank THEN excluded.status ELSE calls.status END,
                  reason = CASE WHEN excluded.rank > calls.rank THEN excluded.reason ELSE calls.reason END,
                  rank = MAX(calls.rank, excluded.rank),
                  answered_at = COALESCE(calls.answered_at, excluded.answered_at),
                  ended_at = COALESCE(calls.ended_at, excluded.ended_at)",
            );
            q.build().execute(&mut *tx).await.map_err(&err)?;
        }
        for (call_id, at) in late_ends {
            sqlx::query("UPDATE calls SET ended_at = COALESCE(ended_at, ?) WHERE call_id = ?")
                .bind(at)
                .bind(call_id)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        sqlx::query(
            "INSERT INTO meta (key, value) VALUES ('last_received', ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(now_micros())
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(records.len())
    }

    /// Applies the bounds: the oldest messages beyond `max_events`, then everything older than
    /// `max_age`, then registration and call rows older than the oldest message kept. Returns the
    /// number of message rows removed.
    pub async fn prune(&self) -> Result<u64, Error> {
        let err = store_err(&self.cfg.path);
        let max = i64::try_from(self.cfg.max_events).unwrap_or(i64::MAX);
        // Row ids grow with arrival, so the lowest are the oldest.
        let mut removed =
            sqlx::query("DELETE FROM messages WHERE id <= (SELECT MAX(id) FROM messages) - ?")
                .bind(max)
                .execute(&self.pool)
                .await
                .map_err(&err)?
                .rows_affected();
        let by_count = removed;
        let age = i64::try_from(self.cfg.max_age.as_micros()).unwrap_or(i64::MAX);
        let cutoff = now_micros().saturating_sub(age);
        removed += self.prune_older(&err, "messages", cutoff).await?;
        // Derived rows follow their messages. Messages reach the store out of capture order (UDP
        // and TCP are read apart, agents batch), so the lowest id is not the oldest capture
        // time: after a count prune the cutoff is the oldest capture time left (one scan, and
        // only then); otherwise the age cutoff alone. With no message left, nothing derived stays.
        let derived_cutoff = if by_count > 0 {
            let oldest: Option<i64> = sqlx::query_scalar("SELECT MIN(at) FROM messages")
                .fetch_one(&self.pool)
                .await
                .map_err(&err)?;
            oldest.map_or(i64::MAX, |o| o.max(cutoff))
        } else {
            let any: Option<i64> = sqlx::query_scalar("SELECT id FROM messages LIMIT 1")
                .fetch_optional(&self.pool)
                .await
                .map_err(&err)?;
            if any.is_some() { cutoff } else { i64::MAX }
        };
        self.prune_older(&err, "registrations", derived_cutoff)
            .await?;
        self.prune_older(&err, "calls", derived_cutoff).await?;
        Ok(removed)
    }

    /// Deletes rows with `at < cutoff`, looking only at the oldest rows by arrival, step by step.
    async fn prune_older(
        &self,
        err: &impl Fn(sqlx::Error) -> Error,
        table: &'static str,
        cutoff: i64,
    ) -> Result<u64, Error> {
        let sql = match table {
            "messages" => {
                "DELETE FROM messages WHERE id IN (SELECT id FROM (SELECT id, at FROM messages ORDER BY id LIMIT ?) WHERE at < ?)"
            }
            "registrations" => {
                "DELETE FROM registrations WHERE id IN (SELECT id FROM (SELECT id, at FROM registrations ORDER BY id LIMIT ?) WHERE at < ?)"
            }
            _ => {
                "DELETE FROM calls WHERE id IN (SELECT id FROM (SELECT id, at FROM calls ORDER BY id LIMIT ?) WHERE at < ?)"
            }
        };
        let mut total = 0;
        // Bounded: at most 1,000 steps per call.
        for _ in 0..1_000 {
            let n = sqlx::query(sql)
                .bind(PRUNE_STEP)
                .bind(cutoff)
                .execute(&self.pool)
                .await
                .map_err(err)?
                .rows_affected();
            total += n;
            if n < PRUNE_STEP as u64 {
                break;
            }
        }
        Ok(total)
    }

    /// Closes the file (a checkpoint folds the WAL back into it).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
