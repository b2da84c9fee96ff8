//! What this Kamailio server lets dialtone read, per kind of evidence, with the schema found and
//! the setting that would fill each gap (`dialtone doctor`).

use super::KamailioState;
use crate::{Capabilities, SourceStatus};

fn ok(evidence: &str, from: impl Into<String>) -> SourceStatus {
    SourceStatus {
        evidence: evidence.into(),
        available: true,
        from: from.into(),
        missing: None,
        fix: None,
    }
}

fn gap(evidence: &str, from: impl Into<String>, missing: String, fix: &str) -> SourceStatus {
    SourceStatus {
        evidence: evidence.into(),
        available: false,
        from: from.into(),
        missing: Some(missing),
        fix: Some(fix.into()),
    }
}

/// The evidence a table gives when it is there, else what is missing and how to mend it.
fn table_source(
    present: bool,
    (evidence, table): (&str, &str),
    missing: &str,
    fix: &str,
) -> SourceStatus {
    if present {
        ok(evidence, table)
    } else {
        gap(evidence, "", missing.to_owned(), fix)
    }
}

impl KamailioState {
    pub(crate) async fn discover_capabilities(&self) -> Capabilities {
        let mut caps = Capabilities {
            backend: crate::ServerState::describe(self),
            ..Capabilities::default()
        };
        let rpc = self.rpc.call("core.uptime", &[]).await;
        let rpc_down = match &rpc {
            Ok(_) => None,
            Err(e) => {
                caps.notes.push(format!("management interface: {e}"));
                Some(e.to_string())
            }
        };
        let schema = match self.schema().await {
            Ok(s) => s,
            Err(e) => {
                caps.notes.push(format!("database: {e}"));
                for ev in [
                    "account",
                    "duplicates",
                    "attempts",
                    "ever_registered",
                    "calls",
                ] {
                    caps.sources.push(gap(
                        ev,
                        "database",
                        format!("the database does not answer: {e}"),
                        "set [management] database_url to the server's database (sqlite://, postgres://, mysql://) with a read-only user",
                    ));
                }
                caps.sources.push(match &rpc_down {
                    None => ok("registrations", "management interface (ul.lookup)"),
                    Some(why) => gap(
                        "registrations",
                        "",
                        format!(
                            "neither the management interface ({why}) nor the database answers"
                        ),
                        "set [management] rpc_url and database_url",
                    ),
                });
                return caps;
            }
        };
        caps.schema = schema
            .tables
            .iter()
            .map(|(t, c)| (t.clone(), c.iter().cloned().collect()))
            .collect();
        let used = |t: &'static str| {
            let schema = schema.clone();
            async move { self.table_in_use(&schema, t).await.unwrap_or(false) }
        };
        let filled = |t: &'static str| {
            let schema = schema.clone();
            async move { self.table_has_rows(&schema, t).await.unwrap_or(false) }
        };
        let (acc_used, trace_used, location_used, acc_rows, trace_rows) = tokio::join!(
            used("acc"),
            used("sip_trace"),
            filled("location"),
            filled("acc"),
            filled("sip_trace")
        );
        for (t, present, rows) in [
            ("acc", acc_used, acc_rows),
            ("sip_trace", trace_used, trace_rows),
        ] {
            if present && !rows {
                caps.notes.push(format!(
                    "the {t} table is empty so far: either nothing happened yet, or the server does not write it"
                ));
            }
        }
        let window = match &self.cfg.events {
            Some(w) => match w.span().await {
                Ok(Some((from, to))) => Some(format!(
                    "{} ({} to {})",
                    w.describe(),
                    from.format("%Y-%m-%d %H:%M"),
                    to.format("%Y-%m-%d %H:%M")
                )),
                Ok(None) => {
                    caps.notes.push(format!(
                        "{}: empty (is the server sending HEP to it?)",
                        w.describe()
                    ));
                    Some(format!("{} (empty so far)", w.describe()))
                }
                Err(e) => {
                    caps.notes.push(format!("{}: {e}", w.describe()));
                    None
                }
            },
            None => None,
        };

        caps.sources.push(table_source(
            schema.has("subscriber"),
            ("account", "subscriber table"),
            "the database has no subscriber table",
            "point [management] database_url at the database auth_db reads",
        ));
        caps.sources.push(table_source(
            schema.has("dbaliases"),
            ("duplicates", "dbaliases table"),
            "there is no dbaliases table: virtual numbers are unknown",
            "virtual numbers kept elsewhere (dialplan, htable, a provisioning system) can be given as a file export (server-state EXPORT.md)",
        ));
        caps.sources.push(match (&rpc_down, self.cfg.usrloc_db_mode) {
            (None, _) => ok("registrations", "management interface (ul.lookup)"),
            (Some(why), Some(0)) => gap(
                "registrations",
                "",
                format!("the management interface is unreachable ({why}) and usrloc keeps memory only (db_mode 0)"),
                "make the management interface reachable ([management] rpc_url)",
            ),
            (Some(why), _) if schema.has("location") && location_used => ok(
                "registrations",
                format!("location table (management interface unreachable: {why}; {})", self.location_freshness_short()),
            ),
            (Some(why), _) => gap(
                "registrations",
                "",
                format!("the management interface is unreachable ({why}) and the location table is {}", if schema.has("location") { "empty" } else { "missing" }),
                "make the management interface reachable ([management] rpc_url), or run usrloc with db_mode 1 or 2",
            ),
        });
        let attempts = if trace_used {
            ok("attempts", "sip_trace table")
        } else if let Some(w) = &window {
            ok("attempts", w.clone())
        } else {
            gap(
                "attempts",
                "",
                format!(
                    "{} and no HEP event window is configured",
                    if schema.has("sip_trace") {
                        "the sip_trace table is empty"
                    } else {
                        "there is no sip_trace table"
                    }
                ),
                "trace REGISTER/INVITE with siptrace into sip_trace, or over HEP to `dialtone collect` and set [management] events_db",
            )
        };
        let mut ever = attempts.clone();
        ever.evidence = "ever_registered".into();
        if !ever.available && schema.has("location") {
            ever = ok("ever_registered", "location table (current bindings only)");
        }
        caps.sources.push(attempts);
        caps.sources.push(ever);

        let acc = schema.acc_columns(&self.cfg.columns);
        caps.notes.extend(acc.notes.iter().cloned());
        let parties = |acc: &super::AccColumns| {
            [
                ("caller", &acc.caller),
                ("callee", &acc.callee),
                ("dialled", &acc.dialled),
            ]
            .iter()
            .map(|(k, c)| format!("{k}={}", c.as_deref().unwrap_or("?")))
            .collect::<Vec<_>>()
            .join(", ")
        };
        caps.sources.push(if acc_used && acc.has_parties() {
            ok("calls", format!("acc ({})", parties(&acc)))
        } else if acc_used && trace_used {
            ok("calls", "acc (stock columns) joined by Call-ID with sip_trace for the parties")
        } else if acc_used && let Some(w) = &window {
            ok("calls", format!("acc (stock columns) joined by Call-ID with the {w}"))
        } else if trace_used {
            ok("calls", "sip_trace (INVITEs and their final replies; no acc records)")
        } else if let Some(w) = &window {
            ok("calls", w.clone())
        } else {
            let why = if !acc.present {
                "there is no acc table and no SIP trace"
            } else if !acc_used {
                "the acc table is empty and there is no SIP trace"
            } else {
                "acc has no caller or callee column and there is no SIP trace to join by Call-ID"
            };
            gap(
                "calls",
                "acc",
                why.to_string(),
                "add caller/callee db_extra columns to acc (name unusual ones in [management.columns]), or send the trace over HEP to `dialtone collect` and set [management] events_db",
            )
        });
        let mut trunk_from = Vec::new();
        if rpc_down.is_none() {
            trunk_from.push("dispatcher (live, management interface)".to_string());
        } else if schema.has("dispatcher") {
            trunk_from.push(
                "dispatcher table (state unknown without the management interface)".to_string(),
            );
        }
        if schema.has("dr_gateways") && schema.has("dr_rules") {
            trunk_from.push("drouting tables (no live gateway state)".to_string());
        }
        caps.sources.push(if trunk_from.is_empty() {
            gap(
                "trunks",
                "",
                "neither dispatcher (live or table) nor drouting tables can be read".into(),
                "make the management interface reachable, or give trunks as a file export",
            )
        } else {
            ok("trunks", trunk_from.join(" + "))
        });
        caps.sources.push(ok(
            "routes",
            if self.cfg.trunk_prefixes.is_empty() && !schema.has("dr_rules") {
                "none configured: [server] trunk_prefixes is empty, so every trunk counts"
                    .to_string()
            } else {
                "[server] trunk_prefixes and dr_rules prefixes".to_string()
            },
        ));
        caps.sources.push(match &rpc_down {
            None => ok("health", "management interface (core, tls, dispatcher, stats)"),
            Some(why) => gap(
                "health",
                "",
                format!("the management interface is unreachable ({why}): listeners, certificates and memory are not read (the SIP probes still run)"),
                "make the management interface reachable ([management] rpc_url)",
            ),
        });
        caps
    }

    fn location_freshness_short(&self) -> &'static str {
        match self.cfg.usrloc_db_mode {
            Some(1) | Some(3) => "current",
            Some(2) => "may lag by usrloc's timer_interval (write-back)",
            _ => "freshness depends on usrloc db_mode, not configured",
        }
    }
}
