//! The Kamailio backend: JSON-RPC (memory state: registrations, dispatcher, core) plus read-only
//! SQL on Kamailio's own tables (subscriber, dbaliases, location, acc, acc_cdrs, sip_trace,
//! dispatcher, drouting), on SQLite, PostgreSQL or MySQL/MariaDB.
//!
//! Servers are built in many ways (`schema.rs` reads what this one has). Registrations come from
//! `ul.lookup`/`ul.dump` (usrloc memory is authoritative); only when the management interface is
//! unreachable does `fallback.rs` read the `location` table, and says how fresh it is.

mod attempts;
mod capabilities;
mod db;
mod dispatcher;
mod fallback;
mod listeners;
mod records;
mod rpc;
mod schema;
mod state;
mod usrloc;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::model::longest_prefix_route;
use crate::{Account, Error, NumberKind, Result, Trunk, VirtualNumber};
use db::{Bind, Col, Db, redact_url};
use rpc::RpcClient;
pub use schema::{AccColumns, ColumnMap, Schema};

pub use crate::window::{CallParties, TraceWindow};

pub(crate) use attempts::{TracedMsg, pair_register_attempts};
pub(crate) use dispatcher::parse_dispatcher;
#[cfg(test)]
pub(crate) use rpc::{
    complete_response as rpc_complete_response, finish_at_eof as rpc_finish_at_eof,
};
#[cfg(test)]
pub(crate) use usrloc::parse_contacts;

/// Where a Kamailio server is and how its routing is set up.
#[derive(Clone)]
pub struct KamailioConfig {
    /// JSON-RPC endpoint served by xhttp + jsonrpcs, e.g. `http://127.0.0.1:5071/RPC`.
    pub rpc_url: String,
    /// `sqlite:///path/kamailio.sqlite` (or a bare path), `postgres://user:pw@host/db`.
    pub db_url: String,
    /// SIP domain of the accounts (subscriber.domain); empty means any.
    pub domain: String,
    /// Dispatcher set id -> dialled prefixes routed to it (Kamailio's routing script is not
    /// introspectable, so this comes from configuration).
    pub trunk_prefixes: BTreeMap<u32, Vec<String>>,
    /// Numbers (Request-URI users) that reach the echo service.
    pub echo_numbers: Vec<String>,
    /// Bound for each RPC exchange and each query.
    pub timeout: Duration,
    /// `acc` columns for what cannot be guessed from the usual names.
    pub columns: ColumnMap,
    /// usrloc's `db_mode` when known (0 memory only, 1 write-through, 2 write-back, 3 DB only):
    /// says how far the `location` table can be trusted when the management interface is down.
    pub usrloc_db_mode: Option<u8>,
    /// A window of the server's SIP traffic kept by a HEP capture endpoint, read when the
    /// database keeps no trace.
    pub events: Option<std::sync::Arc<dyn TraceWindow>>,
}

impl KamailioConfig {
    /// A configuration with no trunk prefixes, no echo numbers, any domain and a 2 s timeout.
    pub fn new(rpc_url: impl Into<String>, db_url: impl Into<String>) -> KamailioConfig {
        KamailioConfig {
            rpc_url: rpc_url.into(),
            db_url: db_url.into(),
            domain: String::new(),
            trunk_prefixes: BTreeMap::new(),
            echo_numbers: Vec::new(),
            timeout: Duration::from_secs(2),
            columns: ColumnMap::default(),
            usrloc_db_mode: None,
            events: None,
        }
    }
}

impl fmt::Debug for KamailioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KamailioConfig")
            .field("rpc_url", &redact_url(&self.rpc_url))
            .field("db_url", &redact_url(&self.db_url))
            .field("domain", &self.domain)
            .field("trunk_prefixes", &self.trunk_prefixes)
            .field("echo_numbers", &self.echo_numbers)
            .field("timeout", &self.timeout)
            .field("columns", &self.columns)
            .field("usrloc_db_mode", &self.usrloc_db_mode)
            .field("events", &self.events.as_ref().map(|e| e.describe()))
            .finish()
    }
}

/// A Kamailio server, read through its management interface and database.
#[derive(Debug)]
pub struct KamailioState {
    cfg: KamailioConfig,
    rpc: RpcClient,
    db: Db,
    schema: tokio::sync::Mutex<Option<std::sync::Arc<Schema>>>,
}

impl KamailioState {
    /// Checks the configuration; connects lazily, so a server that is down is reported by the
    /// calls (and by `health()`), not here.
    pub fn new(cfg: KamailioConfig) -> Result<KamailioState> {
        if cfg.timeout.is_zero() {
            return Err(Error::Config("timeout must be greater than zero".into()));
        }
        let rpc = if cfg.rpc_url.trim().is_empty() {
            RpcClient::none(cfg.timeout)
        } else {
            RpcClient::new(&cfg.rpc_url, cfg.timeout)?
        };
        let db = Db::open(&cfg.db_url, cfg.timeout)?;
        Ok(KamailioState {
            cfg,
            rpc,
            db,
            schema: tokio::sync::Mutex::new(None),
        })
    }

    async fn rows(
        &self,
        what: &str,
        sql: String,
        cols: &[Col],
        binds: &[Bind],
    ) -> Result<Vec<db::Row0>> {
        self.db.rows(what, sql, cols, binds, self.cfg.timeout).await
    }

    async fn subscriber(&self, user: &str, domain: Option<&str>) -> Result<Option<String>> {
        let d = &self.db;
        let mut sql = format!(
            "SELECT {}, {} FROM subscriber WHERE username = $1",
            d.t("username"),
            d.t("domain")
        );
        let mut binds = vec![Bind::Text(user.to_string())];
        if let Some(dom) =
            domain.or((!self.cfg.domain.is_empty()).then_some(self.cfg.domain.as_str()))
        {
            sql.push_str(" AND domain = $2");
            binds.push(Bind::Text(dom.to_string()));
        }
        let rows = self
            .rows("subscriber", sql, &[Col::Text, Col::Text], &binds)
            .await?;
        Ok(rows.first().map(|r| r.text(1).to_string()))
    }

    /// Virtual numbers of a user: dbaliases rows in id order, the first one primary.
    async fn numbers_of(&self, user: &str) -> Result<Vec<VirtualNumber>> {
        let d = &self.db;
        let sql = format!(
            "SELECT {} FROM dbaliases WHERE username = $1 ORDER BY id",
            d.t("alias_username")
        );
        let rows = self
            .rows("dbaliases", sql, &[Col::Text], &[Bind::Text(user.into())])
            .await?;
        Ok(classify_numbers(rows.iter().map(|r| r.text(0).to_string())))
    }

    async fn account_of(&self, user: &str, domain: Option<&str>) -> Result<Option<Account>> {
        let sub = self.subscriber(user, domain).await?;
        let numbers = self.numbers_of(user).await?;
        match sub {
            Some(domain) => Ok(Some(Account {
                user: user.to_string(),
                domain,
                numbers,
                exists: true,
            })),
            None if !numbers.is_empty() => Ok(Some(Account {
                user: user.to_string(),
                domain: domain.unwrap_or(&self.cfg.domain).to_string(),
                numbers,
                exists: false,
            })),
            None => Ok(None),
        }
    }

    async fn dispatcher(&self) -> Result<Vec<Trunk>> {
        let list = self.rpc.call("dispatcher.list", &[]).await?;
        Ok(parse_dispatcher(&list, &self.cfg.trunk_prefixes))
    }

    fn derive_route(&self, dialled: &str, callee: &str) -> Option<String> {
        if self
            .cfg
            .echo_numbers
            .iter()
            .any(|n| n == dialled || n == callee)
        {
            return Some("echo".into());
        }
        if self.static_route(dialled).is_some() {
            return Some("trunk".into());
        }
        None
    }

    fn static_route(&self, dialled: &str) -> Option<String> {
        let ids: Vec<(String, &[String])> = self
            .cfg
            .trunk_prefixes
            .iter()
            .map(|(id, p)| (id.to_string(), p.as_slice()))
            .collect();
        longest_prefix_route(ids.iter().map(|(id, p)| (id.as_str(), *p)), dialled)
    }
}

/// The first alias (lowest id) is the account's primary number, the others alternates.
fn classify_numbers(numbers: impl Iterator<Item = String>) -> Vec<VirtualNumber> {
    let mut out: Vec<VirtualNumber> = Vec::new();
    for n in numbers {
        if n.is_empty() || out.iter().any(|v| v.number == n) {
            continue;
        }
        let kind = if out.is_empty() {
            NumberKind::Primary
        } else {
            NumberKind::Alternate
        };
        out.push(VirtualNumber { number: n, kind });
    }
    out
}

fn unix_time(secs: Option<f64>) -> DateTime<Utc> {
    let ms = secs
        .filter(|s| s.is_finite())
        .map(|s| (s * 1000.0).round() as i64);
    ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or(DateTime::UNIX_EPOCH)
}
