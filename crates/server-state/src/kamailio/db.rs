//! Read-only SQL access to Kamailio's database, the same queries on SQLite, PostgreSQL and
//! MySQL/MariaDB.
//!
//! Rows come back in a neutral shape (text and real columns only) so the mapping code is written
//! once. Queries are written with `$n` placeholders; for MySQL they are rewritten to `?` and the
//! binds repeated in order. Timestamps are normalised in SQL to unix seconds: db_sqlite stores
//! DATETIME as a Julian day REAL (`(jd - 2440587.5) * 86400` = unix), which SQLite's `julianday()`
//! reads as well as text dates; PostgreSQL stores `timestamp without time zone`, read as UTC;
//! MySQL's `DATETIME` is read with `UNIX_TIMESTAMP()` in the session's time zone.
//!
//! [`Db::columns`] reads the database's own catalogue, so that queries name only the columns a
//! server really has (`schema.rs`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{AssertSqlSafe, Row};

use crate::{Error, Result};

/// Binds one [`Bind`] to a query of any engine (the query types differ per engine).
macro_rules! bind_one {
    ($q:expr, $b:expr) => {
        match $b {
            Bind::Text(s) => $q.bind(s.clone()),
            Bind::Real(f) => $q.bind(*f),
            Bind::Int(i) => $q.bind(*i),
        }
    };
}

/// Rows of any backend as neutral rows: `text` and `real` read column `i` of row `r`.
macro_rules! neutral_rows {
    ($rows:expr, $cols:expr, |$r:ident, $i:ident| { $text:expr, $real:expr }) => {
        $rows
            .iter()
            .map(|$r| {
                convert($cols, |$i, c| match c {
                    Col::Text => $text.map(V::T),
                    Col::Real => $real.map(V::R),
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
    };
}

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
    Mysql(MySqlPool),
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
        if let Some(rest) = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
        {
            let normalised = format!("mysql://{rest}");
            let opts = MySqlConnectOptions::from_str(&normalised).map_err(|e| {
                Error::Config(format!("db_url: {}", redact_error(&e.to_string(), url)))
            })?;
            let pool = MySqlPoolOptions::new()
                .max_connections(4)
                .acquire_timeout(timeout)
                .connect_lazy_with(opts);
            return Ok(Db::Mysql(pool));
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
            Db::Mysql(_) => "mysql",
        }
    }

    /// `expr` as text.
    pub fn t(&self, expr: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("CAST({expr} AS TEXT)"),
            Db::Postgres(_) => format!("CAST({expr} AS TEXT)"),
            Db::Mysql(_) => format!("CAST({expr} AS CHAR)"),
        }
    }

    /// `expr` as a double.
    pub fn f(&self, expr: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("CAST({expr} AS REAL)"),
            Db::Postgres(_) => format!("CAST({expr} AS DOUBLE PRECISION)"),
            Db::Mysql(_) => format!("CAST({expr} AS DOUBLE)"),
        }
    }

    /// A DATETIME column as unix seconds (double).
    pub fn epoch(&self, col: &str) -> String {
        match self {
            Db::Sqlite(_) => format!("((julianday({col}) - 2440587.5) * 86400.0)"),
            Db::Postgres(_) => format!("CAST(EXTRACT(EPOCH FROM {col}) AS DOUBLE PRECISION)"),
            Db::Mysql(_) => format!("CAST(UNIX_TIMESTAMP({col}) AS DOUBLE)"),
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
                        q = bind_one!(q, b);
                    }
                    neutral_rows!(q.fetch_all(pool).await?, cols, |r, i| {
                        r.try_get_unchecked::<Option<String>, _>(i),
                        r.try_get_unchecked::<Option<f64>, _>(i)
                    })
                }
                Db::Postgres(pool) => {
                    let mut q = sqlx::query::<sqlx::Postgres>(AssertSqlSafe(sql));
                    for b in binds {
                        q = bind_one!(q, b);
                    }
                    neutral_rows!(q.fetch_all(pool).await?, cols, |r, i| {
                        r.try_get::<Option<String>, _>(i),
                        r.try_get::<Option<f64>, _>(i)
                    })
                }
                Db::Mysql(pool) => {
                    let (sql, order) = mysql_placeholders(&sql);
                    let mut q = sqlx::query::<sqlx::MySql>(AssertSqlSafe(sql));
                    for i in order {
                        let Some(b) = binds.get(i) else {
                            return Err(sqlx::Error::Protocol(format!(
                                "query names ${} but has {} binds",
                                i + 1,
                                binds.len()
                            )));
                        };
                        q = bind_one!(q, b);
                    }
                    neutral_rows!(q.fetch_all(pool).await?, cols, |r, i| {
                        mysql_text(r, i),
                        r.try_get_unchecked::<Option<f64>, _>(i)
                    })
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

    /// The columns of `table` (lower case) from the database's own catalogue; `None` when the
    /// table does not exist.
    pub async fn columns(
        &self,
        table: &str,
        timeout: Duration,
    ) -> Result<Option<std::collections::BTreeSet<String>>> {
        let sql = match self {
            Db::Sqlite(_) => "SELECT CAST(name AS TEXT) FROM pragma_table_info($1)",
            Db::Postgres(_) => {
                "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1"
            }
            Db::Mysql(_) => {
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = $1"
            }
        };
        let rows = self
            .rows(
                &format!("catalogue of {table}"),
                sql.to_string(),
                &[Col::Text],
                &[Bind::Text(table.to_string())],
                timeout,
            )
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            rows.iter()
                .map(|r| r.text(0).to_ascii_lowercase())
                .collect(),
        ))
    }

    /// `SELECT 1` within the time bound.
    pub async fn ping(&self, timeout: Duration) -> Result<()> {
        self.rows("ping", "SELECT 1".into(), &[], &[], timeout)
            .await
            .map(|_| ())
    }
}

/// MySQL returns `CAST(.. AS CHAR)` as text, but catalogue and some driver paths hand back
/// binary strings: accept both.
fn mysql_text(r: &sqlx::mysql::MySqlRow, i: usize) -> Result<Option<String>, sqlx::Error> {
    match r.try_get_unchecked::<Option<String>, _>(i) {
        Ok(v) => Ok(v),
        Err(_) => r
            .try_get_unchecked::<Option<Vec<u8>>, _>(i)
            .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned())),
    }
}

/// Rewrites `$n` placeholders to MySQL's `?`, returning the bind index (0-based) for each `?` in
/// order. Text inside single quotes is left alone.
pub(crate) fn mysql_placeholders(sql: &str) -> (String, Vec<usize>) {
    let mut out = String::with_capacity(sql.len());
    let mut order = Vec::new();
    let mut quoted = false;
    let mut chars = sql.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
            out.push(c);
            continue;
        }
        if c == '$' && !quoted {
            let mut n = String::new();
            while let Some((_, d)) = chars.peek() {
                if d.is_ascii_digit() {
                    n.push(*d);
                    chars.next();
                } else {
                    break;
                }
            }
            if let Ok(k) = n.parse::<usize>()
                && k > 0
            {
                out.push('?');
                order.push(k - 1);
                continue;
            }
            out.push('$');
            out.push_str(&n);
            continue;
        }
        out.push(c);
    }
    (out, order)
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

/// The password of a URL's userinfo. The userinfo runs from `://` to the last `@` of the
/// authority; a password written raw may hold `/`, `?`, `#` or `@`, so the last `@` of the whole
/// URL is taken (hosts and database names have none).
fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.rsplit_once('@')?.0;
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
            ("mysql://u:a/b?c#d@h:3306/db", "mysql://u:***@h:3306/db"),
            ("postgres://u:x%2Fy@h/db", "postgres://u:***@h/db"),
        ] {
            assert_eq!(redact_url(url), want);
        }
    }

    #[test]
    fn mysql_placeholders_are_rewritten_in_order() {
        let (sql, order) = mysql_placeholders(
            "SELECT a FROM t WHERE x = $2 AND y LIKE '$1%' AND z >= $1 OR w = $2",
        );
        assert_eq!(
            sql,
            "SELECT a FROM t WHERE x = ? AND y LIKE '$1%' AND z >= ? OR w = ?"
        );
        assert_eq!(order, vec![1, 0, 1]);
    }
}
