//! Read-only SQL access to Kamailio's database, the same queries on SQLite and PostgreSQL.
//!
//! Rows come back in a neutral shape (text and real columns only) so the mapping code is written
//! once. Timestamps are normalised in SQL to unix seconds: db_sqlite stores DATETIME as a Julian
//! day REAL (`(jd - 2440587.5) * 86400` = unix), which SQLite's `julianday()` reads as well as
//! text dates; PostgreSQL stores `timestamp without time zone`, read as UTC.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};

use crate::{Error, Result};

/// A value bound to a `$n` placeholder (SQLite accepts `$n` too).
#[derive(Debug, Clone)]
pub(crate) enum Bind {
    Text(String),
    Real(f64),
    Int(i64),
}

/// What a result column holds after the casts the query builder adds.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Col {
    Text,
    Real,
}

/// One neutral row: text columns as `Option<String>`, real columns as `Option<f64>`.
#[derive(Debug, Default)]
pub(crate) struct Row0 {
    texts: Vec<Option<String>>,
    reals: Vec<Option<f64>>,
    kinds: Vec<(Col, usize)>,
}

impl Row0 {
    /// Text at column `i`, empty when NULL.
    pub fn text(&self, i: usize) -> &str {
        match self.kinds.get(i) {
            Some((Col::Text, j)) => self.texts[*j].as_deref().unwrap_or(""),
            _ => "",
        }
    }

    pub fn real(&self, i: usize) -> Option<f64> {
        match self.kinds.get(i) {
            Some((Col::Real, j)) => self.reals[*j],
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl Db {
    /// Opens a lazy pool: nothing connects until the first query, so a down database shows up in
    /// `health()` and in each query's error, not at construction.
    pub fn open(url: &str, timeout: Duration) -> Result<Db> {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)
                .map_err(|e| {
                    Error::Config(format!("db_url: {}", redact_error(&e.to_string(), url)))
                })?
                .application_name("dialtone");
            let pool = PgPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(timeout)
                .connect_lazy_with(opts);
            return Ok(Db::Postgres(pool));
        }
        if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            return Err(Error::Config(
                "db_url: MySQL/MariaDB is documented but not built into this version; export the tables to files or use PostgreSQL/SQLite".into(),
            ));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let (path, _) = path.split_once('?').unwrap_or((path, ""));
        if path.is_empty() || url.contains("://") && !url.starts_with("sqlite://") {
            return Err(Error::Config(format!(
                "db_url: expected postgres://..., sqlite:///path or a file path, got scheme of {:?}",
                url.split("://").next().unwrap_or("")
            )));
        }
        // Read-only, with a busy timeout: Kamailio writes the file from several processes.
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .busy_timeout(timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(timeout)
            .connect_lazy_with(opts);
        Ok(Db::Sqlite(pool))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgresql",
        }
    }

    /// `expr` as text.
    pub fn t(&self, expr: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("CAST({expr} AS TEXT)"),
            Db::Postgres(_) => format!("CAST({expr} AS TEXT)"),
        }
    }

    /// `expr` as a double.
    pub fn f(&self, expr: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("CAST({expr} AS REAL)"),
            Db::Postgres(_) => format!("CAST({expr} AS DOUBLE PRECISION)"),
        }
    }

    /// A DATETIME column as unix seconds (double).
    pub fn epoch(&self, col: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("((julianday({col}) - 2440587.5) * 86400.0)"),
            Db::Postgres(_) => format!("CAST(EXTRACT(EPOCH FROM {col}) AS DOUBLE PRECISION)"),
        }
    }

    /// Runs a read query with a time bound and returns neutral rows.
    pub async fn rows(
        &self,
        what: &str,
        sql: String,
        cols: &[Col],
        binds: &[Bind],
        timeout: Duration,
    ) -> Result<Vec<Row0>> {
        let work = async {
            match self {
                Db::Sqlite(pool) => {
                    let mut q = sqlx::query::<sqlx::Sqlite>(AssertSqlSafe(sql));
                    for b in binds {
                        q = match b {
                            Bind::Text(s) => q.bind(s.clone()),
                            Bind::Real(f) => q.bind(*f),
                            Bind::Int(i) => q.bind(*i),
                        };
                    }
                    let rows = q.fetch_all(pool).await?;
                    rows.iter()
                        .map(|r| {
                            convert(cols, |i, c| match c {
                                Col::Text => r.try_get_unchecked::<Option<String>, _>(i).map(V::T),
                                Col::Real => r.try_get_unchecked::<Option<f64>, _>(i).map(V::R),
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                }
                Db::Postgres(pool) => {
                    let mut q = sqlx::query::<sqlx::Postgres>(AssertSqlSafe(sql));
                    for b in binds {
                        q = match b {
                            Bind::Text(s) => q.bind(s.clone()),
                            Bind::Real(f) => q.bind(*f),
                            Bind::Int(i) => q.bind(*i),
                        };
                    }
                    let rows = q.fetch_all(pool).await?;
                    rows.iter()
                        .map(|r| {
                            convert(cols, |i, c| match c {
                                Col::Text => r.try_get::<Option<String>, _>(i).map(V::T),
                                Col::Real => r.try_get::<Option<f64>, _>(i).map(V::R),
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                }
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Err(_) => Err(Error::Database(format!(
                "{what}: no answer within {} ms",
                timeout.as_millis()
            ))),
            Ok(Err(e)) => Err(Error::Database(format!("{what}: {}", describe_sqlx(&e)))),
            Ok(Ok(rows)) => Ok(rows),
        }
    }

    /// `SELECT 1` within the time bound.
    pub async fn ping(&self, timeout: Duration) -> Result<()> {
        self.rows("ping", "SELECT 1".into(), &[], &[], timeout)
            .await
            .map(|_| ())
    }
}

enum V {
    T(Option<String>),
    R(Option<f64>),
}

fn convert(
    cols: &[Col],
    mut get: impl FnMut(usize, Col) -> Result<V, sqlx::Error>,
) -> Result<Row0, sqlx::Error> {
    let mut row = Row0::default();
    for (i, c) in cols.iter().enumerate() {
        match get(i, *c)? {
            V::T(t) => {
                row.kinds.push((Col::Text, row.texts.len()));
                row.texts.push(t);
            }
            V::R(r) => {
                row.kinds.push((Col::Real, row.reals.len()));
                row.reals.push(r);
            }
        }
    }
    Ok(row)
}

/// sqlx errors never carry the connection URL, but keep the message short and single-line.
fn describe_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::PoolTimedOut => "cannot connect (timed out waiting for a connection)".into(),
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string().replace('\n', " "),
    }
}

/// Removes the URL's password from a message, in case a driver quotes the URL.
fn redact_error(msg: &str, url: &str) -> String {
    match password_of(url) {
        Some(pw) if !pw.is_empty() => msg.replace(pw, "***"),
        _ => msg.to_string(),
    }
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split('/').next()?.rsplit_once('@')?.0;
    userinfo.split_once(':').map(|(_, pw)| pw)
}

/// The URL with its password replaced by `***`, for `describe()` and Debug.
pub(crate) fn redact_url(url: &str) -> String {
    match password_of(url) {
        Some(pw) if !pw.is_empty() => {
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let (userinfo, after) = rest.rsplit_once('@').unwrap_or(("", rest));
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{after}")
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        for (url, want) in [
            (
                "postgres://kam:s3cret@db:5432/kamailio",
                "postgres://kam:***@db:5432/kamailio",
            ),
            ("postgres://kam@db/kamailio", "postgres://kam@db/kamailio"),
            (
                "/var/lib/kamailio/kam.sqlite",
                "/var/lib/kamailio/kam.sqlite",
            ),
            ("mysql://u:p@w@h/db", "mysql://u:***@h/db"),
        ] {
            assert_eq!(redact_url(url), want);
        }
    }
}
