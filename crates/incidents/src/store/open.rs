//! Opening a store: connecting to SQLite or PostgreSQL, migrating the schema (with the
//! audit chain backfill), and the SQLite backup.

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{CONNECT_TIMEOUT, DATA_FILE, Pool, Store};
use crate::error::{describe, redact_url};
use crate::{Error, Result, migrate};

/// How long an SQLite writer waits for another writer before failing with "locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
        /// What the first attempt leaves: a pool that writes, or the read-only form to open.
        enum Opened {
            Writable(SqlitePool),
            ReadOnly(Box<SqliteConnectOptions>),
        }
        let opened = match (opened, read_only_copy) {
            (Ok(pool), Some(ro)) if file_is_read_only(options_path(&ro)) => {
                // SQLite opened it read-only by itself, but WAL reads would still need to
                // create the -shm file: use the immutable read-only form.
                pool.close().await;
                tracing::info!("the database file cannot be written here; opened read-only");
                Opened::ReadOnly(Box::new(ro))
            }
            (Ok(pool), _) => Opened::Writable(pool),
            (Err(err), Some(ro)) if is_read_only_error(&err) => {
                tracing::info!("the database cannot be written here; opened read-only");
                Opened::ReadOnly(Box::new(ro))
            }
            (Err(err), _) => return Err(connect_error(describe(&err))),
        };
        let pool = match opened {
            Opened::Writable(pool) => pool,
            Opened::ReadOnly(ro) => tokio::time::timeout(
                CONNECT_TIMEOUT + Duration::from_secs(1),
                pool_options.connect_with(*ro),
            )
            .await
            .map_err(|_| connect_error(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|err| connect_error(describe(&err)))?,
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
