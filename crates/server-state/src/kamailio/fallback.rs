//! What the database says when the management interface cannot: registrations from the
//! `location` table (with how fresh that is), trunks from the `dispatcher` table, and trunks kept
//! by `drouting` (`dr_gateways`, `dr_rules`), which Kamailio keeps no live state for at all.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};

use super::db::{Bind, Col};
use super::dispatcher::set_name;
use super::usrloc::binding_origin;
use super::{KamailioState, parse_dispatcher, unix_time};
use crate::{DestinationState, Error, Registration, Result, Trunk, TrunkDestination};

const FIX_RPC: &str = "make the management interface (xhttp + jsonrpcs) reachable from dialtone and set [management] rpc_url";

impl KamailioState {
    /// Words on how far the `location` table follows usrloc's memory.
    fn location_freshness(&self) -> String {
        match self.cfg.usrloc_db_mode {
            Some(1) => "usrloc writes it through (db_mode 1), so it is current".into(),
            Some(2) => "usrloc writes it back on its timer (db_mode 2, every timer_interval, 60 s by default), so it may lag by that much".into(),
            Some(3) => "usrloc works on the database only (db_mode 3), so it is current".into(),
            Some(n) => format!("usrloc db_mode {n}"),
            None => "usrloc's db_mode is not configured ([management] usrloc_db_mode): with write-back (2) it may lag by up to timer_interval".into(),
        }
    }

    fn memory_only(&self, rpc_down: &str) -> Error {
        Error::missing(
            format!(
                "the management interface is unreachable ({rpc_down}) and usrloc keeps registrations in memory only (db_mode 0), so no source says who is registered"
            ),
            Some(FIX_RPC),
        )
    }

    /// No db_mode configured and no row for anybody: memory only, by the look of it.
    fn location_empty(&self, rpc_down: &str) -> Error {
        Error::missing(
            format!(
                "the management interface is unreachable ({rpc_down}) and the location table is empty for every user: usrloc seems to keep registrations in memory only (db_mode 0)"
            ),
            Some(FIX_RPC),
        )
    }

    /// The user's bindings from the `location` table, each saying where it was read from.
    pub(crate) async fn location_registrations(
        &self,
        user: &str,
        domain: Option<&str>,
        rpc_down: &str,
    ) -> Result<Vec<Registration>> {
        if self.cfg.usrloc_db_mode == Some(0) {
            return Err(self.memory_only(rpc_down));
        }
        let schema = self.schema().await?;
        if !schema.has("location") {
            return Err(Error::missing(
                format!(
                    "the management interface is unreachable ({rpc_down}) and the database has no location table"
                ),
                Some(FIX_RPC),
            ));
        }
        let d = &self.db;
        let has = |c: &str| schema.has_col("location", c);
        let opt = |c: &str| {
            if has(c) { d.t(c) } else { "NULL".into() }
        };
        let mut sql = format!(
            "SELECT {}, {}, {}, {}, {}, {}, {} FROM location WHERE username = $1",
            d.t("contact"),
            opt("received"),
            d.epoch("expires"),
            opt("user_agent"),
            if has("last_modified") {
                d.epoch("last_modified")
            } else {
                "NULL".into()
            },
            opt("socket"),
            opt("callid"),
        );
        let mut binds = vec![Bind::Text(user.to_string())];
        if let Some(dom) = domain.filter(|_| has("domain")) {
            // use_domain=0 leaves the domain column empty or NULL.
            sql.push_str(" AND (domain = $2 OR domain = '' OR domain IS NULL)");
            binds.push(Bind::Text(dom.to_string()));
        }
        let rows = self
            .rows(
                "location",
                sql,
                &[
                    Col::Text,
                    Col::Text,
                    Col::Real,
                    Col::Text,
                    Col::Real,
                    Col::Text,
                    Col::Text,
                ],
                &binds,
            )
            .await?;
        if rows.is_empty() && self.cfg.usrloc_db_mode.is_none() {
            // Nobody at all in the table: usrloc most likely keeps memory only.
            let any = self
                .rows(
                    "location",
                    "SELECT 1 FROM location LIMIT 1".into(),
                    &[],
                    &[],
                )
                .await?;
            if any.is_empty() {
                return Err(self.location_empty(rpc_down));
            }
        }
        let now = Utc::now();
        let freshness = self.location_freshness();
        let mut out = Vec::new();
        for r in &rows {
            // db_mode 1 deletes expired rows lazily: skip what has expired.
            let expires_at = match r.real(2) {
                // Kamailio stores 0 (or its epoch) for a permanent binding.
                Some(e) if e <= 1.0 => DateTime::<Utc>::MAX_UTC,
                e => unix_time(e),
            };
            if expires_at <= now {
                continue;
            }
            let contact = r.text(0).to_string();
            let (transport, source) = binding_origin(&contact, r.text(1), r.text(5));
            let modified = r.real(4).map(|t| unix_time(Some(t)));
            out.push(Registration {
                user: user.to_string(),
                contact,
                source,
                transport,
                user_agent: r.text(3).to_string(),
                expires_at,
                registered_at: modified.unwrap_or(now),
                call_id: r.text(6).to_string(),
                origin: Some(format!(
                    "read from the location table because the management interface is unreachable ({rpc_down}); {freshness}{}",
                    modified
                        .map(|m| format!("; row last written {}", m.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_default()
                )),
            });
        }
        Ok(out)
    }

    /// Users with an unexpired row in `location`, for a sweep without the management interface.
    pub(crate) async fn location_live_users(&self, rpc_down: &str) -> Result<HashSet<String>> {
        if self.cfg.usrloc_db_mode == Some(0) {
            return Err(self.memory_only(rpc_down));
        }
        let d = &self.db;
        let sql = format!(
            "SELECT {}, {} FROM location",
            d.t("username"),
            d.epoch("expires")
        );
        let rows = self
            .rows("location", sql, &[Col::Text, Col::Real], &[])
            .await?;
        if rows.is_empty() && self.cfg.usrloc_db_mode.is_none() {
            return Err(self.location_empty(rpc_down));
        }
        let now = Utc::now().timestamp() as f64;
        Ok(rows
            .iter()
            .filter(|r| r.real(1).is_none_or(|e| e <= 1.0 || e > now))
            .map(|r| r.text(0).to_string())
            .collect())
    }

    /// Every outgoing trunk: dispatcher sets (live over RPC, else from the table with their state
    /// unknown) and drouting rules with their gateways.
    pub(crate) async fn all_trunks(&self) -> Result<Vec<Trunk>> {
        let schema = self.schema().await;
        let mut rpc_down = None;
        let mut out = match self.rpc.call("dispatcher.list", &[]).await {
            Ok(list) => parse_dispatcher(&list, &self.cfg.trunk_prefixes),
            // dispatcher not loaded on this server: no sets from it.
            Err(Error::Rpc { message, .. }) if message.contains("Method Not Found") => Vec::new(),
            Err(Error::Management(why)) => {
                let sets = match &schema {
                    Ok(s) if s.has("dispatcher") => self.dispatcher_table(&why).await?,
                    _ => Vec::new(),
                };
                rpc_down = Some(why);
                sets
            }
            Err(e) => return Err(e),
        };
        if let Ok(s) = &schema
            && s.has("dr_gateways")
            && s.has("dr_rules")
        {
            out.extend(self.drouting_trunks().await?);
        }
        match (&schema, rpc_down) {
            // Neither the management interface nor the database answers.
            (Err(e), Some(_)) => Err(Error::Database(e.to_string())),
            (Ok(_), Some(why)) if out.is_empty() => Err(Error::missing(
                format!(
                    "the management interface is unreachable ({why}) and the dispatcher and drouting tables hold no trunk (dispatcher may load its sets from a list file)"
                ),
                Some(FIX_RPC),
            )),
            _ => Ok(out),
        }
    }

    /// Dispatcher sets as the table configures them (state unknown without the live module).
    async fn dispatcher_table(&self, rpc_down: &str) -> Result<Vec<Trunk>> {
        let d = &self.db;
        let sql = format!(
            "SELECT {}, {}, {}, {} FROM dispatcher ORDER BY setid, id",
            d.t("setid"),
            d.t("destination"),
            d.t("attrs"),
            d.t("description"),
        );
        let rows = self
            .rows(
                "dispatcher",
                sql,
                &[Col::Text, Col::Text, Col::Text, Col::Text],
                &[],
            )
            .await?;
        let mut sets: BTreeMap<u32, Vec<TrunkDestination>> = BTreeMap::new();
        for r in &rows {
            let id: u32 = r.text(0).trim().parse().unwrap_or(0);
            let uri = r.text(1).to_string();
            let name = attr_name(r.text(2))
                .or_else(|| (!r.text(3).is_empty()).then(|| r.text(3).to_string()))
                .unwrap_or_else(|| uri.clone());
            sets.entry(id).or_default().push(TrunkDestination {
                uri,
                state: DestinationState::Unknown,
                last_probe: Some(format!(
                    "state unknown: read from the dispatcher table because the management interface is unreachable ({rpc_down})"
                )),
                name,
            });
        }
        Ok(sets
            .into_iter()
            .map(|(id, destinations)| Trunk {
                id: id.to_string(),
                name: set_name(u64::from(id), &destinations),
                destinations,
                prefixes: self
                    .cfg
                    .trunk_prefixes
                    .get(&id)
                    .cloned()
                    .unwrap_or_default(),
            })
            .collect())
    }

    /// drouting rules as trunks: the rule's gateways, with the prefixes it routes.
    async fn drouting_trunks(&self) -> Result<Vec<Trunk>> {
        let (gws, rules) = self.drouting_tables().await?;
        let mut out = Vec::new();
        for rule in rules {
            let destinations = rule
                .gateways
                .iter()
                .filter_map(|id| gws.get(id))
                .map(|(address, description)| {
                    let uri = if address.starts_with("sip:") || address.starts_with("sips:") {
                        address.clone()
                    } else {
                        format!("sip:{address}")
                    };
                    TrunkDestination {
                        name: if description.is_empty() {
                            uri.clone()
                        } else {
                            description.clone()
                        },
                        uri,
                        state: DestinationState::Unknown,
                        last_probe: Some(
                            "drouting keeps no gateway state: whether it takes calls shows only in calls through it".into(),
                        ),
                    }
                })
                .collect();
            out.push(Trunk {
                id: format!("dr:{}", rule.id),
                name: if rule.description.is_empty() {
                    format!("drouting rule {}", rule.id)
                } else {
                    rule.description
                },
                destinations,
                prefixes: rule.prefixes,
            });
        }
        Ok(out)
    }

    /// The drouting rule (as a trunk id) with the longest prefix matching `dialled`.
    pub(crate) async fn drouting_route(&self, dialled: &str) -> Result<Option<String>> {
        let schema = self.schema().await?;
        if !(schema.has("dr_gateways") && schema.has("dr_rules")) {
            return Ok(None);
        }
        let (_, rules) = self.drouting_tables().await?;
        Ok(rules
            .iter()
            .flat_map(|r| r.prefixes.iter().map(move |p| (p, r)))
            .filter(|(p, _)| dialled.starts_with(p.as_str()))
            .max_by_key(|(p, _)| p.len())
            .map(|(_, r)| format!("dr:{}", r.id)))
    }

    async fn drouting_tables(&self) -> Result<(BTreeMap<String, (String, String)>, Vec<DrRule>)> {
        let d = &self.db;
        let gw_sql = format!(
            "SELECT {}, {}, {} FROM dr_gateways ORDER BY gwid",
            d.t("gwid"),
            d.t("address"),
            d.t("description"),
        );
        let rule_sql = format!(
            "SELECT {}, {}, {}, {} FROM dr_rules ORDER BY ruleid",
            d.t("ruleid"),
            d.t("prefix"),
            d.t("gwlist"),
            d.t("description"),
        );
        let (gws, rules) = tokio::join!(
            self.rows(
                "dr_gateways",
                gw_sql,
                &[Col::Text, Col::Text, Col::Text],
                &[]
            ),
            self.rows(
                "dr_rules",
                rule_sql,
                &[Col::Text, Col::Text, Col::Text, Col::Text],
                &[]
            ),
        );
        let gws = gws?
            .iter()
            .map(|r| {
                (
                    r.text(0).trim().to_string(),
                    (r.text(1).trim().to_string(), r.text(2).to_string()),
                )
            })
            .collect();
        let rules = rules?
            .iter()
            .map(|r| DrRule {
                id: r.text(0).trim().to_string(),
                prefixes: r
                    .text(1)
                    .split([',', ';'])
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
                // gwlist: "1,2" or "1;2" (a "#list" reference names a dr_gw_lists row).
                gateways: r
                    .text(2)
                    .split([',', ';'])
                    .map(|g| g.trim().split('=').next().unwrap_or("").trim().to_string())
                    .filter(|g| !g.is_empty() && !g.starts_with('#'))
                    .collect(),
                description: r.text(3).to_string(),
            })
            .collect();
        Ok((gws, rules))
    }
}

#[derive(Debug)]
struct DrRule {
    id: String,
    prefixes: Vec<String>,
    gateways: Vec<String>,
    description: String,
}

/// `name=...` from a dispatcher attrs string (`name=pstn-gw1;weight=50`).
fn attr_name(attrs: &str) -> Option<String> {
    attrs.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == "name").then(|| v.trim().to_string())
    })
}
