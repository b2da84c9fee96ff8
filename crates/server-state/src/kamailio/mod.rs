//! The Kamailio backend: JSON-RPC (memory state: registrations, dispatcher, core) plus read-only
//! SQL on Kamailio's own tables (subscriber, dbaliases, location, acc, acc_cdrs, sip_trace,
//! dispatcher, drouting), on SQLite, PostgreSQL or MySQL/MariaDB.
//!
//! Servers are built in many ways (`schema.rs` reads what this one has). Registrations come from
//! `ul.lookup`/`ul.dump` (usrloc memory is authoritative); only when the management interface is
//! unreachable does `fallback.rs` read the `location` table, and says how fresh it is.

mod capabilities;
mod db;
mod fallback;
mod records;
mod rpc;
mod schema;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use crate::model::{longest_prefix_route, split_user};
use crate::sipscan::{self, StartLine};
use crate::{
    Account, AccountSummary, CallRecord, CheckState, DestinationState, Error, NumberKind,
    RegAttempt, Registration, Result, ServerState, ServiceHealth, TlsListener, Transport, Trunk,
    TrunkDestination, VirtualNumber,
};
use db::{Bind, Col, Db, redact_url};
use rpc::RpcClient;
pub use schema::{AccColumns, ColumnMap, Schema};

pub use crate::window::{CallParties, TraceWindow};

#[cfg(test)]
pub(crate) use rpc::{
    complete_response as rpc_complete_response, finish_at_eof as rpc_finish_at_eof,
};

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

    /// SIP listeners (`proto:ip:port`, the management port left out) and the TLS ones with
    /// their certificate.
    async fn listeners(&self) -> (Vec<String>, Vec<TlsListener>) {
        let (mut sip, mut tls) = (Vec::new(), Vec::new());
        let Ok(sockets) = self.rpc.call("core.sockets_list", &[]).await else {
            return (sip, tls);
        };
        // With a tls.cfg file the per-domain certificate there wins over the module default
        // that tls.options also reports.
        let certificate = match self.rpc.call("tls.options", &[]).await {
            Ok(opts) => find_string(&opts, &["config"])
                .and_then(|cfg| server_certificate_from_tls_cfg(&cfg))
                .or_else(|| find_string(&opts, &["certificate", "Certificate"])),
            Err(_) => None,
        };
        let not_after = certificate.as_deref().and_then(read_not_after);
        let rpc_port = self.rpc.port().to_string();
        for_each_object(&sockets, &mut |o| {
            let Some(proto) = o.get("proto").and_then(Value::as_str) else {
                return;
            };
            let proto = proto.to_ascii_lowercase();
            let addr = ["address", "ipaddress", "name"]
                .iter()
                .find_map(|k| o.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            let port = o
                .get("port")
                .map(|p| match p {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            // xhttp serves JSON-RPC on a plain TCP listener: not a SIP transport.
            if proto == "tcp" && port == rpc_port {
                return;
            }
            let address = format!("{addr}:{port}");
            let listener = format!("{proto}:{address}");
            if sip.contains(&listener) {
                return;
            }
            sip.push(listener);
            if proto == "tls" {
                tls.push(TlsListener {
                    address,
                    certificate: certificate.clone(),
                    not_after,
                });
            }
        });
        (sip, tls)
    }
}

#[async_trait::async_trait]
impl ServerState for KamailioState {
    async fn account(&self, user: &str) -> Result<Option<Account>> {
        let (user, domain) = split_user(user);
        if user.is_empty() {
            return Ok(None);
        }
        if let Some(acc) = self.account_of(user, domain).await? {
            return Ok(Some(acc));
        }
        // No subscriber and no number, but still registered: a binding without an account.
        match self.registrations(user).await {
            Ok(r) if !r.is_empty() => Ok(Some(Account {
                user: user.to_string(),
                domain: domain.unwrap_or(&self.cfg.domain).to_string(),
                numbers: Vec::new(),
                exists: false,
            })),
            _ => Ok(None),
        }
    }

    async fn accounts_with_number(&self, number: &str) -> Result<Vec<Account>> {
        let d = &self.db;
        let sql = format!(
            "SELECT {} FROM dbaliases WHERE alias_username = $1 ORDER BY id",
            d.t("username")
        );
        let rows = self
            .rows(
                "dbaliases",
                sql,
                &[Col::Text],
                &[Bind::Text(number.trim().into())],
            )
            .await?;
        let mut out: Vec<Account> = Vec::new();
        for r in rows {
            let user = r.text(0);
            if out.iter().any(|a| a.user == user) {
                continue;
            }
            if let Some(acc) = self.account_of(user, None).await? {
                out.push(acc);
            }
        }
        Ok(out)
    }

    async fn registrations(&self, user: &str) -> Result<Vec<Registration>> {
        let (user, domain) = split_user(user);
        let domain = domain.or((!self.cfg.domain.is_empty()).then_some(self.cfg.domain.as_str()));
        // With usrloc `use_domain=0` the AoR is the bare user; with `use_domain=1` it is
        // user@domain. Ask for the bare user first and for user@domain when that finds nothing.
        let mut aors = vec![user.to_string()];
        if let Some(d) = domain {
            aors.push(format!("{user}@{d}"));
        }
        for aor in aors {
            match self
                .rpc
                .call("ul.lookup", &["location".into(), aor.into()])
                .await
            {
                Ok(v) => return Ok(parse_contacts(user, &v, Utc::now())),
                // Kamailio's way of saying "not registered" (code 500, told apart by message).
                // With use_domain=1 a bare user is refused ("Domain missing in AOR"): try
                // user@domain next.
                Err(Error::Rpc { message, .. })
                    if message.contains("not found")
                        || message.contains("no contacts")
                        || message.contains("Domain missing") => {}
                // No management interface: the location table, when usrloc keeps one.
                Err(Error::Management(why)) => {
                    return self.location_registrations(user, domain, &why).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Vec::new())
    }

    async fn registration_attempts(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RegAttempt>> {
        let (user, _) = split_user(user);
        self.attempts(user, since).await
    }

    async fn trunks(&self) -> Result<Vec<Trunk>> {
        self.all_trunks().await
    }

    async fn route_for(&self, dialled: &str) -> Result<Option<String>> {
        let dialled = dialled.trim();
        if let Some(r) = self.static_route(dialled) {
            return Ok(Some(r));
        }
        // drouting keeps its prefixes in the database.
        self.drouting_route(dialled).await
    }

    async fn calls(
        &self,
        user: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<CallRecord>> {
        let (user, _) = split_user(user);
        self.call_records(user, since, limit).await
    }

    async fn health(&self) -> Result<ServiceHealth> {
        let db = async {
            match self.db.ping(self.cfg.timeout).await {
                Ok(()) => CheckState::Up,
                Err(e) => CheckState::Down(e.to_string()),
            }
        };
        let rpc = async {
            let uptime = match self.rpc.call("core.uptime", &[]).await {
                Ok(v) => v.get("uptime").and_then(Value::as_u64),
                Err(e) => {
                    let down = CheckState::Down(e.to_string());
                    return (down, None, None, Vec::new(), Vec::new(), Vec::new());
                }
            };
            // The management interface answers: ask the rest at once, each call bounded.
            let (version, (sip, tls), dispatcher, shmem) = tokio::join!(
                self.rpc.call("core.version", &[]),
                self.listeners(),
                self.dispatcher(),
                self.shmem()
            );
            let version = version
                .ok()
                .and_then(|v| v.as_str().map(|s| s.trim().to_string()));
            let mut services = Vec::new();
            match dispatcher {
                Ok(trunks) => {
                    for t in trunks {
                        for dst in t.destinations {
                            let state = match dst.state {
                                DestinationState::Active => CheckState::Up,
                                other => CheckState::Down(format!(
                                    "{} ({})",
                                    other.as_str(),
                                    dst.last_probe.unwrap_or_default()
                                )),
                            };
                            let name = if t.name == dst.name {
                                format!("{} {}", dst.name, dst.uri)
                            } else {
                                format!("{} {} {}", t.name, dst.name, dst.uri)
                            };
                            services.push((name, state));
                        }
                    }
                }
                Err(e) => services.push(("dispatcher".into(), CheckState::Unknown(e.to_string()))),
            }
            services.push(("shared memory".into(), shmem));
            (CheckState::Up, uptime, version, sip, tls, services)
        };
        let (database, (management, uptime_s, version, sip_listeners, tls_listeners, services)) =
            tokio::join!(db, rpc);
        Ok(ServiceHealth {
            management,
            uptime_s,
            version,
            sip_listeners,
            tls_listeners,
            database,
            services,
        })
    }

    async fn all_accounts(&self) -> Result<Vec<AccountSummary>> {
        let d = &self.db;
        let subs_sql = if self.cfg.domain.is_empty() {
            format!(
                "SELECT {} FROM subscriber ORDER BY username",
                d.t("username")
            )
        } else {
            format!(
                "SELECT {} FROM subscriber WHERE domain = $1 ORDER BY username",
                d.t("username")
            )
        };
        let subs_binds: Vec<Bind> = if self.cfg.domain.is_empty() {
            Vec::new()
        } else {
            vec![Bind::Text(self.cfg.domain.clone())]
        };
        let aliases_sql = format!(
            "SELECT {}, {} FROM dbaliases ORDER BY id",
            d.t("username"),
            d.t("alias_username")
        );
        let location_sql = format!("SELECT DISTINCT {} FROM location", d.t("username"));
        // Accepted REGISTERs in the trace: replies (direction out) with a 2xx status.
        let trace_sql = format!(
            "SELECT DISTINCT {} FROM sip_trace WHERE method = 'REGISTER' AND status LIKE '2%' AND traced_user <> ''",
            d.t("traced_user")
        );
        let brief = [Value::from("brief")];
        let (subs, aliases, location, trace, live) = tokio::join!(
            self.rows("subscriber", subs_sql, &[Col::Text], &subs_binds),
            self.rows("dbaliases", aliases_sql, &[Col::Text, Col::Text], &[]),
            self.rows("location", location_sql, &[Col::Text], &[]),
            self.rows("sip_trace", trace_sql, &[Col::Text], &[]),
            self.rpc.call("ul.dump", &brief),
        );
        let (subs, aliases) = (subs?, aliases?);
        let mut registered: HashSet<String> = HashSet::new();
        match live {
            Ok(live) => collect_aors(&live, &mut registered),
            // No management interface: who is registered now comes from the location table.
            Err(Error::Management(why)) => registered = self.location_live_users(&why).await?,
            Err(e) => return Err(e),
        }
        let mut ever: HashSet<String> = registered.clone();
        // The history tables are optional on a real server: a missing one only narrows "ever".
        for rows in [location, trace].into_iter().flatten() {
            ever.extend(rows.iter().map(|r| r.text(0).to_string()));
        }
        let mut numbers: HashMap<&str, Vec<String>> = HashMap::new();
        for r in &aliases {
            numbers
                .entry(r.text(0))
                .or_default()
                .push(r.text(1).to_string());
        }
        Ok(subs
            .iter()
            .map(|r| {
                let user = r.text(0);
                let nums = numbers
                    .remove(user)
                    .map(|v| classify_numbers(v.into_iter()))
                    .unwrap_or_default();
                let is_reg = registered.contains(user);
                AccountSummary {
                    user: user.to_string(),
                    numbers: nums,
                    registered: is_reg,
                    ever_registered: is_reg || ever.contains(user),
                }
            })
            .collect())
    }

    async fn capabilities(&self) -> crate::Capabilities {
        self.discover_capabilities().await
    }

    fn describe(&self) -> String {
        format!(
            "kamailio (json-rpc {}, {} database {}{})",
            self.rpc.url(),
            self.db.kind(),
            redact_url(&self.cfg.db_url),
            if self.cfg.domain.is_empty() {
                String::new()
            } else {
                format!(", domain {}", self.cfg.domain)
            }
        )
    }
}

impl KamailioState {
    /// Shared memory: a nearly full pool makes Kamailio drop transactions silently.
    async fn shmem(&self) -> CheckState {
        match self.rpc.call("stats.fetch", &["shmem:".into()]).await {
            Ok(v) => {
                let num = |k: &str| {
                    v.get(k).and_then(|x| match x {
                        Value::String(s) => s.parse::<f64>().ok(),
                        other => other.as_f64(),
                    })
                };
                match (num("shmem.free_size"), num("shmem.total_size")) {
                    (Some(free), Some(total)) if total > 0.0 && free / total < 0.05 => {
                        CheckState::Down(format!(
                            "only {:.0}% shared memory free",
                            100.0 * free / total
                        ))
                    }
                    (Some(_), Some(_)) => CheckState::Up,
                    _ => {
                        CheckState::Unknown("stats.fetch shmem: has no free_size/total_size".into())
                    }
                }
            }
            Err(e) => CheckState::Unknown(e.to_string()),
        }
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

/// siptrace stores whole seconds in `time_stamp` and the microseconds in `time_us`.
fn trace_time(secs: Option<f64>, us: Option<f64>) -> DateTime<Utc> {
    match (secs, us) {
        (Some(s), Some(us)) if us > 0.0 && us < 1e6 => unix_time(Some(s.round() + us / 1e6)),
        (s, _) => unix_time(s),
    }
}

#[derive(Debug)]
pub(crate) struct TracedMsg {
    pub call_id: String,
    pub at: DateTime<Utc>,
    pub source: String,
    pub msg: String,
}

/// Pairs each REGISTER request of `user` with the final response to it (same Call-ID and CSeq
/// number, RFC 3261 §17.1.3), in trace order.
pub(crate) fn pair_register_attempts(user: &str, traced: &[TracedMsg]) -> Vec<RegAttempt> {
    let mut out: Vec<RegAttempt> = Vec::new();
    let mut open: HashMap<(String, u32), usize> = HashMap::new();
    for t in traced {
        let Some((seq, method)) = sipscan::cseq(&t.msg) else {
            continue;
        };
        if !method.eq_ignore_ascii_case("REGISTER") {
            continue;
        }
        match sipscan::start_line(&t.msg) {
            Some(StartLine::Request { method }) if method.eq_ignore_ascii_case("REGISTER") => {
                let to_user = sipscan::header(&t.msg, "To", Some("t")).and_then(sipscan::uri_user);
                let from_user =
                    sipscan::header(&t.msg, "From", Some("f")).and_then(sipscan::uri_user);
                if to_user != Some(user) && from_user != Some(user) {
                    continue;
                }
                open.insert((t.call_id.clone(), seq), out.len());
                out.push(RegAttempt {
                    at: t.at,
                    source: t.source.clone(),
                    status: RegAttempt::NO_REPLY,
                    reason: String::new(),
                    auth_user: sipscan::auth_username(&t.msg),
                });
            }
            Some(StartLine::Status { code, reason }) if code >= 200 => {
                if let Some(&i) = open.get(&(t.call_id.clone(), seq))
                    && out[i].status == RegAttempt::NO_REPLY
                {
                    out[i].status = code;
                    out[i].reason = reason.to_string();
                }
            }
            _ => {}
        }
    }
    for a in &mut out {
        if a.status == RegAttempt::NO_REPLY {
            a.reason = "no final response in the trace".into();
        }
    }
    out
}

/// Registrations from an `ul.lookup` answer (`{"AoR", "Contacts":[{"Contact":{...}}]}`).
pub(crate) fn parse_contacts(user: &str, v: &Value, now: DateTime<Utc>) -> Vec<Registration> {
    let mut out = Vec::new();
    let Some(contacts) = v.get("Contacts").and_then(Value::as_array) else {
        return out;
    };
    for c in contacts {
        let c = c.get("Contact").unwrap_or(c);
        let field = |k: &str| {
            c.get(k)
                .and_then(Value::as_str)
                .filter(|s| *s != "[not set]")
                .unwrap_or("")
                .to_string()
        };
        let expires_at = match c.get("Expires") {
            Some(Value::Number(n)) => match n
                .as_i64()
                .filter(|s| *s > 0)
                .and_then(chrono::Duration::try_seconds)
                .and_then(|d| now.checked_add_signed(d))
            {
                Some(t) => t,
                None => continue,
            },
            // "permanent" bindings never expire; "expired"/"deleted" are gone.
            Some(Value::String(s)) if s == "permanent" => DateTime::<Utc>::MAX_UTC,
            _ => continue,
        };
        let registered_at = c
            .get("Last-Modified")
            .and_then(Value::as_i64)
            .and_then(|t| Utc.timestamp_opt(t, 0).single())
            .unwrap_or(now);
        let contact = field("Address");
        let (transport, source) = binding_origin(&contact, &field("Received"), &field("Socket"));
        out.push(Registration {
            user: user.to_string(),
            contact,
            source,
            transport,
            user_agent: field("User-Agent"),
            expires_at,
            registered_at,
            call_id: field("Call-ID"),
            origin: None,
        });
    }
    out
}

/// A binding's transport (from the socket it came in on, else the contact's `transport=`) and
/// where it really came from (the `received` address, else the contact's host and port).
fn binding_origin(contact: &str, received: &str, socket: &str) -> (Transport, String) {
    let transport = socket
        .split_once(':')
        .map(|(p, _)| Transport::parse(p))
        .filter(|t| *t != Transport::Unknown)
        .or_else(|| uri_param(contact, "transport").map(Transport::parse))
        .unwrap_or(Transport::Udp);
    let source = if received.is_empty() {
        uri_hostport(contact).unwrap_or_default()
    } else {
        uri_hostport(received).unwrap_or_else(|| received.to_string())
    };
    (transport, source)
}

fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let uri = uri.trim_start_matches('<').split('>').next().unwrap_or(uri);
    uri.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

/// `host:port` of a SIP URI (`sip:user@host:port;params` -> `host:port`).
fn uri_hostport(uri: &str) -> Option<String> {
    let uri = uri.trim().trim_start_matches('<').split('>').next()?;
    let rest = uri
        .strip_prefix("sips:")
        .or_else(|| uri.strip_prefix("sip:"))
        .unwrap_or(uri);
    let rest = rest.rsplit_once('@').map(|(_, h)| h).unwrap_or(rest);
    let hp = rest.split([';', '?']).next()?;
    (!hp.is_empty()).then(|| hp.to_string())
}

/// Trunks from a `dispatcher.list` answer; FLAGS' first letter is the state (A/I/D/T), the
/// second whether the destination is probed (P) or not yet/never (X).
pub(crate) fn parse_dispatcher(v: &Value, prefixes: &BTreeMap<u32, Vec<String>>) -> Vec<Trunk> {
    let mut out = Vec::new();
    let Some(records) = v.get("RECORDS").and_then(Value::as_array) else {
        return Vec::new();
    };
    for rec in records {
        let set = rec.get("SET").unwrap_or(rec);
        let id = set.get("ID").and_then(Value::as_u64).unwrap_or(0);
        let mut destinations = Vec::new();
        for t in set
            .get("TARGETS")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let dest = t.get("DEST").unwrap_or(t);
            let uri = dest
                .get("URI")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let flags = dest.get("FLAGS").and_then(Value::as_str).unwrap_or("");
            let name = dest
                .get("ATTRS")
                .and_then(|a| a.get("BODY"))
                .and_then(Value::as_str)
                .and_then(|body| {
                    body.split(';').find_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        (k.trim() == "name").then(|| v.trim().to_string())
                    })
                })
                .unwrap_or_else(|| uri.clone());
            let (state, last_probe) = flags_state(flags, dest.get("LATENCY"));
            destinations.push(TrunkDestination {
                uri,
                state,
                last_probe,
                name,
            });
        }
        let name = set_name(id, &destinations);
        let id32 = u32::try_from(id).unwrap_or(u32::MAX);
        out.push((
            id,
            Trunk {
                id: id.to_string(),
                name,
                destinations,
                prefixes: prefixes.get(&id32).cloned().unwrap_or_default(),
            },
        ));
    }
    // Kamailio lists sets newest first; report them in id order.
    out.sort_by_key(|(id, _)| *id);
    out.into_iter().map(|(_, t)| t).collect()
}

fn flags_state(flags: &str, latency: Option<&Value>) -> (DestinationState, Option<String>) {
    let mut chars = flags.chars();
    let state = match chars.next() {
        Some('A') => DestinationState::Active,
        Some('I') => DestinationState::Inactive,
        Some('D') => DestinationState::Disabled,
        _ => DestinationState::Probing,
    };
    let probed = chars.next() == Some('P');
    let mut words = match (state, probed) {
        (DestinationState::Disabled, _) => "disabled by the administrator, not probed".to_string(),
        (_, false) => "not probed yet".to_string(),
        (DestinationState::Active, true) => "answered the last OPTIONS probe".to_string(),
        (DestinationState::Inactive, true) => {
            "did not answer the OPTIONS probes (timeout or error reply)".to_string()
        }
        (_, true) => "failing OPTIONS probes, retrying".to_string(),
    };
    if let Some(avg) = latency.and_then(|l| l.get("AVG")).and_then(Value::as_f64) {
        words.push_str(&format!("; average latency {avg:.0} ms"));
    }
    words.push_str(&format!(" [FLAGS {flags}]"));
    (state, Some(words))
}

/// A readable set name: the common stem of its destination names (`pstn-gw1`, `pstn-gw2` ->
/// `pstn-gw`), or `set N`.
fn set_name(id: u64, dests: &[TrunkDestination]) -> String {
    let names: Vec<&str> = dests.iter().map(|d| d.name.as_str()).collect();
    let Some(first) = names.first() else {
        return format!("set {id}");
    };
    let mut stem = first.len();
    for n in &names[1..] {
        stem = stem.min(
            first
                .bytes()
                .zip(n.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    // Stay on a character boundary: names are the server's data, not ASCII by contract.
    while !first.is_char_boundary(stem) {
        stem -= 1;
    }
    let stem = first[..stem].trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '_');
    if stem.is_empty() || stem.starts_with("sip:") {
        format!("set {id}")
    } else {
        stem.to_string()
    }
}

/// Every `AoR` string in a `ul.dump` answer (brief or full), without any `@domain`.
fn collect_aors(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::Object(map) => {
            for (k, val) in map {
                if k == "AoR" {
                    if let Some(s) = val.as_str() {
                        let user = s.split('@').next().unwrap_or(s);
                        out.insert(user.to_string());
                    }
                } else {
                    collect_aors(val, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_aors(i, out)),
        _ => {}
    }
}

fn for_each_object(v: &Value, f: &mut dyn FnMut(&serde_json::Map<String, Value>)) {
    match v {
        Value::Object(map) => {
            f(map);
            map.values().for_each(|x| for_each_object(x, f));
        }
        Value::Array(items) => items.iter().for_each(|x| for_each_object(x, f)),
        _ => {}
    }
}

fn find_string(v: &Value, keys: &[&str]) -> Option<String> {
    let mut found = None;
    for_each_object(v, &mut |m| {
        if found.is_none() {
            found = keys
                .iter()
                .find_map(|k| m.get(*k).and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_string);
        }
    });
    found
}

/// The certificate of the `[server:default]` profile (or the first server profile) of a tls.cfg.
fn server_certificate_from_tls_cfg(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut section = String::new();
    let mut first: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_ascii_lowercase();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        if k.trim() != "certificate" || !section.starts_with("[server:") {
            continue;
        }
        let v = v.trim().to_string();
        if section == "[server:default]" {
            return Some(v);
        }
        first.get_or_insert(v);
    }
    first
}

/// Expiry of a PEM certificate on this host (the server's own file, when dialtone runs beside it).
fn read_not_after(path: &str) -> Option<DateTime<Utc>> {
    let pem = std::fs::read(path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let cert = pem.parse_x509().ok()?;
    Utc.timestamp_opt(cert.validity().not_after.timestamp(), 0)
        .single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dispatcher_flags_and_names() {
        let v = json!({"NRSETS":2,"RECORDS":[
            {"SET":{"ID":1,"TARGETS":[
                {"DEST":{"URI":"sip:127.0.0.1:5092","FLAGS":"AP","PRIORITY":10,"ATTRS":{"BODY":"name=pstn-gw1"}}},
                {"DEST":{"URI":"sip:127.0.0.1:5094","FLAGS":"IP","PRIORITY":0,"ATTRS":{"BODY":"name=pstn-gw2;weight=1"}}}]}},
            {"SET":{"ID":2,"TARGETS":[{"DEST":{"URI":"sip:127.0.0.1:5090","FLAGS":"AX"}}]}}]});
        let prefixes = BTreeMap::from([(1, vec!["9".to_string()])]);
        let trunks = parse_dispatcher(&v, &prefixes);
        type Row<'a> = (
            String,
            String,
            Vec<(&'a str, DestinationState)>,
            Vec<String>,
        );
        let got: Vec<Row> = trunks
            .iter()
            .map(|t| {
                (
                    t.id.clone(),
                    t.name.clone(),
                    t.destinations
                        .iter()
                        .map(|d| (d.name.as_str(), d.state))
                        .collect(),
                    t.prefixes.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "1".into(),
                    "pstn-gw".into(),
                    vec![
                        ("pstn-gw1", DestinationState::Active),
                        ("pstn-gw2", DestinationState::Inactive)
                    ],
                    vec!["9".into()]
                ),
                (
                    "2".into(),
                    "set 2".into(),
                    vec![("sip:127.0.0.1:5090", DestinationState::Active)],
                    vec![]
                ),
            ]
        );
        assert!(
            trunks[1].destinations[0]
                .last_probe
                .as_deref()
                .unwrap()
                .contains("not probed")
        );
        // Names sharing a partial multi-byte character still give a valid stem.
        let v = json!({"RECORDS":[{"SET":{"ID":3,"TARGETS":[
            {"DEST":{"URI":"sip:a","FLAGS":"AP","ATTRS":{"BODY":"name=gé1"}}},
            {"DEST":{"URI":"sip:b","FLAGS":"AP","ATTRS":{"BODY":"name=gè2"}}}]}}]});
        assert_eq!(parse_dispatcher(&v, &prefixes)[0].name, "g");
    }

    #[test]
    fn contacts_from_ul_lookup() {
        let now = Utc.timestamp_opt(1_800_000_000, 0).unwrap();
        let v = json!({"AoR":"alice","Contacts":[
            {"Contact":{"Address":"sip:alice@10.0.0.5:5098;transport=tcp","Expires":3599,"Call-ID":"c1",
              "User-Agent":"PrivateGSM 1.0","Received":"[not set]","Socket":"tcp:127.0.0.1:5060","Last-Modified":1_799_999_990}},
            {"Contact":{"Address":"sip:alice@192.168.1.2:5060","Expires":"expired"}},
            {"Contact":{"Address":"sip:alice@192.168.1.2:5060","Expires":60,"Received":"sip:203.0.113.9:40000","Socket":"udp:127.0.0.1:5060"}}]});
        let regs = parse_contacts("alice", &v, now);
        assert_eq!(regs.len(), 2);
        assert_eq!(regs[0].source, "10.0.0.5:5098");
        assert_eq!(regs[0].transport, Transport::Tcp);
        assert_eq!(regs[0].expires_at, now + chrono::Duration::seconds(3599));
        assert_eq!(regs[0].registered_at.timestamp(), 1_799_999_990);
        assert_eq!(regs[1].source, "203.0.113.9:40000");
        assert_eq!(regs[1].transport, Transport::Udp);
    }

    #[test]
    fn register_attempts_are_paired_with_final_replies() {
        let t = |s: i64| Utc.timestamp_opt(s, 0).unwrap();
        let req = |cseq: u32, auth: bool| TracedMsg {
            call_id: "c1".into(),
            at: t(100 + i64::from(cseq)),
            source: "udp:127.0.0.1:5098".into(),
            msg: format!(
                "REGISTER sip:127.0.0.1 SIP/2.0\r\nFrom: <sip:alice@127.0.0.1>;tag=a\r\nTo: <sip:alice@127.0.0.1>\r\nCSeq: {cseq} REGISTER\r\n{}\r\n",
                if auth {
                    "Authorization: Digest username=\"alice\", response=\"x\"\r\n"
                } else {
                    ""
                }
            ),
        };
        let rep = |cseq: u32, status: &str| TracedMsg {
            call_id: "c1".into(),
            at: t(100 + i64::from(cseq)),
            source: "udp:127.0.0.1:5060".into(),
            msg: format!("SIP/2.0 {status}\r\nCSeq: {cseq} REGISTER\r\n\r\n"),
        };
        let traced = vec![
            req(1, false),
            rep(1, "100 Trying"),
            rep(1, "401 Unauthorized"),
            req(2, true),
            rep(2, "403 Forbidden"),
            req(3, true),
        ];
        let got: Vec<(u16, String, Option<String>)> = pair_register_attempts("alice", &traced)
            .into_iter()
            .map(|a| (a.status, a.reason, a.auth_user))
            .collect();
        assert_eq!(
            got,
            vec![
                (401, "Unauthorized".into(), None),
                (403, "Forbidden".into(), Some("alice".into())),
                (
                    0,
                    "no final response in the trace".into(),
                    Some("alice".into())
                ),
            ]
        );
        assert!(pair_register_attempts("bob", &traced).is_empty());
    }
}
