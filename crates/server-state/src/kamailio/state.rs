//! What Kamailio answers to each `ServerState` question, from JSON-RPC or SQL.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::db::{Bind, Col, redact_url};
use crate::model::split_user;
use crate::{
    Account, AccountSummary, CallRecord, CheckState, DestinationState, Error, RegAttempt,
    Registration, Result, ServerState, ServiceHealth, Trunk,
};

use super::usrloc::{collect_aors, parse_contacts};
use super::{KamailioState, classify_numbers};

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

    async fn calls(&self, user: &str, since: DateTime<Utc>, max: usize) -> Result<Vec<CallRecord>> {
        let (user, _) = split_user(user);
        self.call_records(user, since, max).await
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
