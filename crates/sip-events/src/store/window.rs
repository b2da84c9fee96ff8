//! [`EventWindow`]: reads the window (from any process), each read bounded in time and rows.

use super::{BUSY_TIMEOUT, MAX_READ_ROWS, READ_TIMEOUT, ROWS_PER_STATEMENT, store_err};
use crate::Error;
use crate::events::{CallEvent, CallParties, RegAttemptEvent, TimelineEvent, time_of};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteRow};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the window holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WindowStats {
    /// Message rows kept (from the row ids, which grow with arrival and are pruned oldest
    /// first: exact unless rows arrived with capture times far out of order).
    pub events: u64,
    pub registration_attempts: u64,
    pub calls: u64,
    pub oldest_event: Option<DateTime<Utc>>,
    pub newest_event: Option<DateTime<Utc>>,
    /// When the collector last stored a message.
    pub last_received: Option<DateTime<Utc>>,
}

/// A reader of the window: opens an existing file (another process may be writing it).
pub struct EventWindow {
    pool: SqlitePool,
    path: PathBuf,
}

impl std::fmt::Debug for EventWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventWindow")
            .field("path", &self.path)
            .finish()
    }
}

const REG_COLUMNS: &str =
    "at, user, source, transport, user_agent, status, reason, auth_user, challenge, call_id, cseq";
const CALL_COLUMNS: &str =
    "at, call_id, caller, callee, dialled, status, reason, answered_at, ended_at, source";

fn reg_of(row: &SqliteRow) -> Result<RegAttemptEvent, sqlx::Error> {
    let auth: String = row.try_get("auth_user")?;
    Ok(RegAttemptEvent {
        at: time_of(row.try_get("at")?),
        user: row.try_get("user")?,
        source: row.try_get("source")?,
        transport: row.try_get("transport")?,
        user_agent: row.try_get("user_agent")?,
        status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0),
        reason: row.try_get("reason")?,
        auth_user: (!auth.is_empty()).then_some(auth),
        challenge: row.try_get("challenge")?,
        call_id: row.try_get("call_id")?,
        cseq: u32::try_from(row.try_get::<i64, _>("cseq")?).unwrap_or(0),
    })
}

fn call_of(row: &SqliteRow) -> Result<CallEvent, sqlx::Error> {
    Ok(CallEvent {
        at: time_of(row.try_get("at")?),
        call_id: row.try_get("call_id")?,
        caller: row.try_get("caller")?,
        callee: row.try_get("callee")?,
        dialled: row.try_get("dialled")?,
        status: u16::try_from(row.try_get::<i64, _>("status")?).unwrap_or(0),
        reason: row.try_get("reason")?,
        answered_at: row.try_get::<Option<i64>, _>("answered_at")?.map(time_of),
        ended_at: row.try_get::<Option<i64>, _>("ended_at")?.map(time_of),
        source: row.try_get("source")?,
    })
}

impl EventWindow {
    /// Opens the window's file; it must exist (`dialtone collect` creates it).
    pub async fn open(path: &Path) -> Result<EventWindow, Error> {
        if !path.exists() {
            return Err(Error::NoWindow(path.to_path_buf()));
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(false)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = tokio::time::timeout(
            READ_TIMEOUT,
            SqlitePoolOptions::new()
                .max_connections(2)
                .acquire_timeout(BUSY_TIMEOUT)
                .connect_with(options),
        )
        .await
        .map_err(|_| Error::Timeout(READ_TIMEOUT))?
        .map_err(store_err(path))?;
        let w = EventWindow {
            pool,
            path: path.to_path_buf(),
        };
        // A file that is not a window says so now, not at the first query.
        w.stats().await?;
        Ok(w)
    }

    async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, Error> {
        tokio::time::timeout(READ_TIMEOUT, f)
            .await
            .map_err(|_| Error::Timeout(READ_TIMEOUT))?
            .map_err(store_err(&self.path))
    }

    /// The account's registration attempts since `since`, newest first (at most
    /// [`MAX_READ_ROWS`]).
    pub async fn registration_attempts(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RegAttemptEvent>, Error> {
        let sql = format!(
            "SELECT {REG_COLUMNS} FROM registrations WHERE user = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT ?"
        );
        let rows = self
            .bounded(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user)
                    .bind(since.timestamp_micros())
                    .bind(MAX_READ_ROWS as i64)
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(reg_of)
            .collect::<Result<_, _>>()
            .map_err(store_err(&self.path))
    }

    /// Calls the account made or received (caller, callee or dialled) since `since`, newest first.
    pub async fn calls(
        &self,
        user: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CallEvent>, Error> {
        let limit = limit.min(MAX_READ_ROWS) as i64;
        // One indexed branch per party; UNION drops a call seen through two of them.
        let sql = format!(
            "SELECT {CALL_COLUMNS} FROM (
               SELECT * FROM calls WHERE caller = ?1 AND at >= ?2
               UNION SELECT * FROM calls WHERE callee = ?1 AND at >= ?2
               UNION SELECT * FROM calls WHERE dialled = ?1 AND at >= ?2)
             ORDER BY at DESC, id DESC LIMIT ?3"
        );
        let rows = self
            .bounded(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(user)
                    .bind(since.timestamp_micros())
                    .bind(limit)
                    .fetch_all(&self.pool),
            )
            .await?;
        rows.iter()
            .map(call_of)
            .collect::<Result<_, _>>()
            .map_err(store_err(&self.path))
    }

    /// The parties of the calls whose Call-IDs are given (those the window has).
    pub async fn call_parties(
        &self,
        call_ids: &[String],
    ) -> Result<HashMap<String, CallParties>, Error> {
        let mut out = HashMap::new();
        for chunk in call_ids
            .chunks(ROWS_PER_STATEMENT)
            .take(MAX_READ_ROWS / ROWS_PER_STATEMENT)
        {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT call_id, caller, callee, dialled FROM calls WHERE call_id IN (",
            );
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id.clone());
            }
            q.push(")");
            let rows = self.bounded(q.build().fetch_all(&self.pool)).await?;
            for row in rows {
                let get = |c: &str| row.try_get::<String, _>(c).map_err(store_err(&self.path));
                out.insert(
                    get("call_id")?,
                    CallParties {
                        caller: get("caller")?,
                        callee: get("callee")?,
                        dialled: get("dialled")?,
                    },
                );
            }
        }
        Ok(out)
    }

    /// Every event of the account since `since`, newest first.
    pub async fn timeline(
        &self,
        user: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<TimelineEvent>, Error> {
        let limit = limit.min(MAX_READ_ROWS);
        let mut regs = self.registration_attempts(user, since).await?;
        regs.truncate(limit);
        let calls = self.calls(user, since, limit).await?;
        let mut all: Vec<TimelineEvent> = regs
            .into_iter()
            .map(TimelineEvent::Registration)
            .chain(calls.into_iter().map(TimelineEvent::Call))
            .collect();
        all.sort_by_key(|e| std::cmp::Reverse(e.at()));
        all.truncate(limit);
        Ok(all)
    }

    /// How much the window holds and how fresh it is.
    pub async fn stats(&self) -> Result<WindowStats, Error> {
        let row = self
            .bounded(
                sqlx::query(
                    "SELECT
                       (SELECT MAX(id) - MIN(id) + 1 FROM messages) AS events,
                       (SELECT COUNT(*) FROM registrations) AS regs,
                       (SELECT COUNT(*) FROM calls) AS calls,
                       (SELECT at FROM messages ORDER BY id LIMIT 1) AS oldest,
                       (SELECT at FROM messages ORDER BY id DESC LIMIT 1) AS newest,
                       (SELECT value FROM meta WHERE key = 'last_received') AS last",
                )
                .fetch_one(&self.pool),
            )
            .await?;
        let n = |c: &str| -> Result<u64, Error> {
            Ok(row
                .try_get::<Option<i64>, _>(c)
                .map_err(store_err(&self.path))?
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or(0))
        };
        let t = |c: &str| -> Result<Option<DateTime<Utc>>, Error> {
            Ok(row
                .try_get::<Option<i64>, _>(c)
                .map_err(store_err(&self.path))?
                .map(time_of))
        };
        Ok(WindowStats {
            events: n("events")?,
            registration_attempts: n("regs")?,
            calls: n("calls")?,
            oldest_event: t("oldest")?,
            newest_event: t("newest")?,
            last_received: t("last")?,
        })
    }
}
