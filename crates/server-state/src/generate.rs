//! Builds Kamailio databases and file exports for tests and benchmarks: the genuine Kamailio 5.6
//! schema (Debian's `*-create.sql` files, with the lab's relaxations and extra acc columns) and a
//! generated population of accounts, numbers, registrations and trace rows.
//!
//! A generated SQLite file is a valid Kamailio database: start the lab on it (`LAB_KEEP_DB=1`) and
//! usrloc loads the `location` rows into memory, so `ul.dump` sees them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AssertSqlSafe, Connection};

use crate::{Error, Result};

/// Where Debian's kamailio-sqlite-modules / kamailio-postgres-modules put the schema.
pub const SQLITE_SCHEMA_DIR: &str = "/usr/share/kamailio/db_sqlite";
pub const POSTGRES_SCHEMA_DIR: &str = "/usr/share/kamailio/postgres";

/// The tables dialtone reads, in creation order (`standard` holds the `version` table).
/// The columns the stock kamailio.cfg's `acc` extras add (and `missed_calls` alike).
pub(crate) const COMMON_ACC_EXTRAS: [&str; 6] = [
    "src_user",
    "src_domain",
    "src_ip",
    "dst_ouser",
    "dst_user",
    "dst_domain",
];

const MODULES: [&str; 6] = [
    "standard",
    "auth_db",
    "usrloc",
    "alias_db",
    "dispatcher",
    "acc",
];

/// A generated server: `accounts` users `u000000`.., each with a primary number; every
/// `alternate_every`-th also an alternate; every `registered_every`-th registered now; every
/// `attempted_every`-th with an accepted REGISTER in the trace (ever registered); every
/// `duplicate_every`-th giving its primary number to the next user as well.
#[derive(Debug, Clone)]
pub struct Population {
    pub accounts: usize,
    pub domain: String,
    pub alternate_every: usize,
    pub registered_every: usize,
    pub attempted_every: usize,
    pub duplicate_every: usize,
    /// Unix time the rows are stamped with; registrations expire an hour later.
    pub now: i64,
}

impl Population {
    pub fn new(accounts: usize, now: i64) -> Population {
        Population {
            accounts,
            domain: "127.0.0.1".into(),
            alternate_every: 4,
            registered_every: 3,
            attempted_every: 2,
            duplicate_every: 1000,
            now,
        }
    }

    pub fn user(&self, i: usize) -> String {
        format!("u{i:06}")
    }

    pub fn primary(&self, i: usize) -> String {
        format!("{}", 2_000_000 + i)
    }

    pub fn alternate(&self, i: usize) -> String {
        format!("{}", 5_000_000 + i)
    }

    fn every(n: usize, i: usize) -> bool {
        n != 0 && i.is_multiple_of(n)
    }

    pub fn is_registered(&self, i: usize) -> bool {
        Self::every(self.registered_every, i)
    }

    pub fn ever_registered(&self, i: usize) -> bool {
        self.is_registered(i) || Self::every(self.attempted_every, i)
    }

    /// Whether user `i` also carries user `i - 1`'s primary number.
    pub fn has_duplicate(&self, i: usize) -> bool {
        i > 0 && Self::every(self.duplicate_every, i - 1)
    }
}

/// A writable connection to a database being built.
enum Conn {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Conn {
    async fn open(url: &str) -> Result<Conn> {
        let db = |e: sqlx::Error| Error::Database(format!("generator: {e}"));
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url).map_err(db)?;
            return Ok(Conn::Postgres(
                sqlx::PgConnection::connect_with(&opts).await.map_err(db)?,
            ));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        Ok(Conn::Sqlite(
            sqlx::SqliteConnection::connect_with(&opts)
                .await
                .map_err(db)?,
        ))
    }

    async fn exec(&mut self, sql: String) -> Result<()> {
        let r = match self {
            Conn::Sqlite(c) => sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(c)
                .await
                .map(|_| ()),
            Conn::Postgres(c) => sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(c)
                .await
                .map(|_| ()),
        };
        r.map_err(|e| Error::Database(format!("generator: {e}")))
    }

    fn is_sqlite(&self) -> bool {
        matches!(self, Conn::Sqlite(_))
    }

    /// A DATETIME literal as the Kamailio driver stores it (Julian day REAL in SQLite).
    fn ts(&self, unix: i64) -> String {
        match self {
            Conn::Sqlite(_) => format!("{:.8}", unix as f64 / 86400.0 + 2440587.5),
            Conn::Postgres(_) => format!("to_timestamp({unix}) AT TIME ZONE 'UTC'"),
        }
    }
}

/// Creates Kamailio's tables from the Debian schema files in `schema_dir`, the way the lab does:
/// `DEFAULT ... NOT NULL` relaxed to nullable in acc and siptrace (lab-notes pitfall 4) and the
/// extra accounting columns added.
pub async fn create_kamailio_schema(url: &str, schema_dir: &Path) -> Result<()> {
    let mut conn = Conn::open(url).await?;
    let mut sql = String::new();
    for m in MODULES.iter().chain(["siptrace"].iter()) {
        let path: PathBuf = schema_dir.join(format!("{m}-create.sql"));
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        if *m == "acc" || *m == "siptrace" {
            sql.push_str(&relax_not_null(&text));
        } else {
            sql.push_str(&text);
        }
        sql.push('\n');
    }
    for t in ["acc", "missed_calls"] {
        for c in COMMON_ACC_EXTRAS.iter().chain(&["route"]) {
            let _ = writeln!(sql, "ALTER TABLE {t} ADD COLUMN {c} VARCHAR(128);");
        }
    }
    for c in ["callid", "caller", "callee", "dialed", "route"] {
        let _ = writeln!(sql, "ALTER TABLE acc_cdrs ADD COLUMN {c} VARCHAR(255);");
    }
    conn.exec(sql).await
}

/// `DEFAULT x NOT NULL` -> `DEFAULT x` (the lab's `sed` in lab/lib.sh, in Rust).
fn relax_not_null(schema: &str) -> String {
    schema
        .lines()
        .map(|line| {
            if line.contains(" DEFAULT ")
                && line.trim_end().trim_end_matches(',').ends_with("NOT NULL")
            {
                line.replacen(" NOT NULL", "", 1)
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs SQL in which `TS('YYYY-MM-DD HH:MM:SS')` stands for a DATETIME literal as Kamailio
/// stores it on this database (seed files shared by SQLite and PostgreSQL).
pub async fn run_seed_sql(url: &str, sql: &str) -> Result<()> {
    let mut conn = Conn::open(url).await?;
    let sqlite = conn.is_sqlite();
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find("TS('") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 4..];
        let Some(j) = after.find("')") else {
            return Err(Error::Config("seed: TS(' without closing ')".into()));
        };
        let lit = &after[..j];
        if sqlite {
            let _ = write!(out, "julianday('{lit}')");
        } else {
            let _ = write!(out, "TIMESTAMP '{lit}'");
        }
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    conn.exec(out).await
}

/// Fills a database created by [`create_kamailio_schema`] with `pop`, in batched inserts.
pub async fn fill_population(url: &str, pop: &Population) -> Result<()> {
    let mut conn = Conn::open(url).await?;
    const BATCH: usize = 1000;
    let now = pop.now;
    let d = &pop.domain;
    let mut start = 0;
    while start < pop.accounts {
        let end = (start + BATCH).min(pop.accounts);
        let mut subs =
            String::from("INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES ");
        let mut aliases = String::from(
            "INSERT INTO dbaliases (alias_username, alias_domain, username, domain) VALUES ",
        );
        let mut locs = String::new();
        let mut trace = String::new();
        for i in start..end {
            let u = pop.user(i);
            if i > start {
                subs.push(',');
                aliases.push(',');
            }
            let _ = write!(subs, "('{u}','{d}','','','')");
            let _ = write!(aliases, "('{}','{d}','{u}','{d}')", pop.primary(i));
            if Population::every(pop.alternate_every, i) {
                let _ = write!(aliases, ",('{}','{d}','{u}','{d}')", pop.alternate(i));
            }
            if pop.has_duplicate(i) {
                let _ = write!(aliases, ",('{}','{d}','{u}','{d}')", pop.primary(i - 1));
            }
            if pop.is_registered(i) {
                locs.push(if locs.is_empty() { ' ' } else { ',' });
                let port = 10_000 + i % 50_000;
                let _ = write!(
                    locs,
                    "('uloc-gen-{i}','{u}',NULL,'sip:{u}@10.{}.{}.{}:{port}',{exp},-1.0,'gen-{i}',1,{lm},0,0,'generated','udp:127.0.0.1:5060',0,0,0,0,0,0)",
                    i >> 16 & 255,
                    i >> 8 & 255,
                    i & 255,
                    exp = conn.ts(now + 3600),
                    lm = conn.ts(now),
                );
            }
            if Population::every(pop.attempted_every, i) {
                trace.push(if trace.is_empty() { ' ' } else { ',' });
                let _ = write!(
                    trace,
                    "({ts},0,'gen-{i}','{u}','SIP/2.0 200 OK\r\nCSeq: 2 REGISTER\r\n\r\n','REGISTER','200','udp:127.0.0.1:5060','udp:10.0.0.1:5060','','','out')",
                    ts = conn.ts(now - 86_400),
                );
            }
        }
        let mut sql = format!("BEGIN;\n{subs};\n{aliases};\n");
        if !locs.is_empty() {
            let _ = writeln!(
                sql,
                "INSERT INTO location (ruid, username, domain, contact, expires, q, callid, cseq, last_modified, flags, cflags, user_agent, socket, methods, reg_id, server_id, connection_id, keepalive, partition) VALUES{locs};"
            );
        }
        if !trace.is_empty() {
            let _ = writeln!(
                sql,
                "INSERT INTO sip_trace (time_stamp, time_us, callid, traced_user, msg, method, status, fromip, toip, fromtag, totag, direction) VALUES{trace};"
            );
        }
        sql.push_str("COMMIT;\n");
        conn.exec(sql).await?;
        start = end;
    }
    Ok(())
}

/// Writes `pop` as a file export (accounts.csv, registrations.json, registration_attempts.csv).
pub fn write_population_export(dir: &Path, pop: &Population) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut accounts = String::from("user,domain,primary_number,alternate_number\n");
    let mut attempts = String::from("at,user,source,status,reason,auth_user\n");
    let mut regs = Vec::new();
    let at = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap_or_default()
            .to_rfc3339()
    };
    for i in 0..pop.accounts {
        let u = pop.user(i);
        let alt = if Population::every(pop.alternate_every, i) {
            pop.alternate(i)
        } else if pop.has_duplicate(i) {
            pop.primary(i - 1)
        } else {
            String::new()
        };
        let _ = writeln!(accounts, "{u},{},{},{alt}", pop.domain, pop.primary(i));
        if Population::every(pop.attempted_every, i) {
            let _ = writeln!(
                attempts,
                "{},{u},udp:10.0.0.1:5060,200,OK,{u}",
                at(pop.now - 86_400)
            );
        }
        if pop.is_registered(i) {
            regs.push(serde_json::json!({
                "user": u, "contact": format!("sip:{u}@10.0.0.1:5060"), "source": "10.0.0.1:5060",
                "transport": "udp", "user_agent": "generated", "expires_at": at(pop.now + 3600),
                "registered_at": at(pop.now), "call_id": format!("gen-{i}")
            }));
        }
    }
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(io(&path))
    };
    write("accounts.csv", accounts)?;
    write("registration_attempts.csv", attempts)?;
    write(
        "registrations.json",
        serde_json::Value::Array(regs).to_string(),
    )?;
    Ok(())
}
