//! How evidence answers each runbook step. Pure: gathered evidence in, an answer (or none,
//! when the evidence is not conclusive) with its reason and the evidence that decided it out.
//!
//! The rules start from the design page's "How evidence answers a step" table; where SIP
//! practice says better, the rule says so in a comment.

use crate::evidence::{Gathered, ProbeSummary, same_user};
use runbook::Check;
use serde::Serialize;
use serde_json::{Value, json};
use server_state::CheckState;

/// What evidence says about one step.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The answer, when the evidence is conclusive; `None` leaves the step to an agent.
    pub answer: Option<String>,
    /// One sentence in plain words: what was found.
    pub summary: String,
    /// The evidence that decided it.
    pub evidence: Value,
}

fn answered(answer: &str, summary: impl Into<String>, evidence: Value) -> Decision {
    Decision {
        answer: Some(answer.to_string()),
        summary: summary.into(),
        evidence,
    }
}

fn inconclusive(summary: impl Into<String>, evidence: Value) -> Decision {
    Decision {
        answer: None,
        summary: summary.into(),
        evidence,
    }
}

/// A source of evidence `gather` reads (a server query, a probe, the client logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Account,
    Registrations,
    Attempts,
    Calls,
    EverRegistered,
    Trunks,
    Health,
    Watch,
    ClientLogs,
    Duplicates,
    Routes,
    Callee,
    Transports,
    Tls,
    Echo,
    SelfTest,
    Dns,
    License,
}

impl Source {
    /// Its name in timings, `doctor` and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Account => "account",
            Source::Registrations => "registrations",
            Source::Attempts => "attempts",
            Source::Calls => "calls",
            Source::EverRegistered => "ever_registered",
            Source::Trunks => "trunks",
            Source::Health => "health",
            Source::Watch => "watch",
            Source::ClientLogs => "client_logs",
            Source::Duplicates => "duplicates",
            Source::Routes => "routes",
            Source::Callee => "callee",
            Source::Transports => "transports",
            Source::Tls => "tls",
            Source::Echo => "echo",
            Source::SelfTest => "self_test",
            Source::Dns => "dns",
            Source::License => "license",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The evidence sources each check reads. Gathering uses it to read only what a check needs
/// (the web app's single-step check), and the report to time each step.
pub fn sources_of(check: Check) -> &'static [Source] {
    use Source::*;
    match check {
        Check::RegistrationLookup | Check::AccountRegistered => &[Registrations],
        // Without registrations, the transports can still tell that nobody can connect.
        Check::ForceReconnection => &[Registrations, Attempts, Watch, Transports],
        Check::EchoCall => &[Calls, Echo],
        Check::RecentCallsToOthers | Check::DialledNumber => &[Calls],
        Check::TrunkInventory => &[Trunks],
        Check::AccountAndRegistration => &[Account, Registrations],
        Check::TrunkHealth => &[Trunks, Calls, Routes],
        Check::AccountExists => &[Account],
        Check::VirtualNumberUnique => &[Duplicates],
        Check::ServerServices => &[Transports, Tls, Health, Echo, SelfTest, Trunks],
        Check::NetworkStatus => &[Dns, Transports, Registrations],
        Check::ClientLogs => &[ClientLogs],
        Check::DnsResolution => &[Dns],
        Check::TransportReachability => &[Transports],
        Check::TlsHandshake => &[Tls],
        Check::RegisterAttempts | Check::RegisterResult => &[Attempts],
        Check::ClientProvisioning => &[EverRegistered],
        Check::NatKeepalive => &[Registrations, Attempts],
        Check::LicenseService => &[License],
        Check::CalleeAccountExists | Check::CalleeRegistered | Check::CalleeVirtualNumberUnique => {
            &[Callee]
        }
    }
}

/// Which sources to gather: all of them (a diagnosis), or those some checks read.
#[derive(Debug, Clone, Default)]
pub struct Want(Option<std::collections::BTreeSet<Source>>);

impl Want {
    pub fn all() -> Want {
        Want(None)
    }

    /// The sources `checks` read, with what those sources are derived from.
    pub fn checks(checks: impl IntoIterator<Item = Check>) -> Want {
        let mut set = std::collections::BTreeSet::new();
        for c in checks {
            set.extend(sources_of(c).iter().copied());
        }
        // duplicates are looked up from the account's numbers; routes and the callee from calls.
        for (derived, from) in [
            (Source::Duplicates, Source::Account),
            (Source::Routes, Source::Calls),
            (Source::Callee, Source::Calls),
        ] {
            if set.contains(&derived) {
                set.insert(from);
            }
        }
        Want(Some(set))
    }

    pub fn has(&self, source: Source) -> bool {
        self.0.as_ref().is_none_or(|s| s.contains(&source))
    }
}

/// Thresholds the network decision uses.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub max_rtt_ms: f64,
    pub max_loss_percent: f64,
}

/// Decides a step whose automated check is `check` from `g`.
pub fn decide(check: Check, g: &Gathered, t: Thresholds) -> Decision {
    match check {
        Check::RegistrationLookup => registration_lookup(g),
        Check::ForceReconnection => force_reconnection(g),
        Check::EchoCall => echo_call(g),
        Check::RecentCallsToOthers => calls_to_others(g),
        Check::DialledNumber => dialled_number(g),
        Check::TrunkInventory => trunk_inventory(g),
        Check::AccountAndRegistration => account_and_registration(g),
        Check::TrunkHealth => trunk_health(g),
        Check::AccountExists => account_exists(g),
        Check::AccountRegistered => account_registered(g),
        Check::VirtualNumberUnique => virtual_number_unique(g),
        Check::ServerServices => server_services(g),
        Check::NetworkStatus => network_status(g, t),
        Check::ClientLogs => client_logs(g),
        Check::DnsResolution => dns_resolution(g),
        Check::TransportReachability => transport_reachability(g),
        Check::TlsHandshake => tls_handshake(g),
        Check::RegisterAttempts => register_attempts(g),
        Check::ClientProvisioning => client_provisioning(g),
        Check::RegisterResult => register_result(g),
        Check::NatKeepalive => nat_keepalive(g),
        Check::LicenseService => license_service(g),
        Check::CalleeAccountExists => callee_exists(g),
        Check::CalleeRegistered => callee_registered(g),
        Check::CalleeVirtualNumberUnique => callee_number_unique(g),
    }
}

/// The registrations, unless they were read from a table while the server answers SIP on no
/// transport at all: a dead server's `location` rows say who was registered, not who is.
fn live_registrations(g: &Gathered) -> Result<&Vec<server_state::Registration>, String> {
    match &g.registrations {
        Ok(r) if server_silent_everywhere(g) && r.iter().any(|r| r.origin.is_some()) => {
            Err(format!(
                "the server answers SIP on none of its transports ({}); the registrations read from its database are stale",
                list_transports(g)
            ))
        }
        Ok(r) => Ok(r),
        Err(e) => Err(e.clone()),
    }
}

fn registration_lookup(g: &Gathered) -> Decision {
    match live_registrations(g) {
        Err(e) => inconclusive(
            format!("registration lookup failed: {e}"),
            json!({"error": e}),
        ),
        Ok(regs) => {
            let live: Vec<_> = regs.iter().filter(|r| r.expires_at > g.now).collect();
            match live.first() {
                Some(r) => answered(
                    "connected",
                    format!(
                        "registered from {} over {} ({}), contact {}, expires in {} s{}",
                        r.source,
                        r.transport.as_str(),
                        if r.user_agent.is_empty() {
                            "no user agent"
                        } else {
                            &r.user_agent
                        },
                        r.contact,
                        (r.expires_at - g.now).num_seconds(),
                        r.origin
                            .as_deref()
                            .map(|o| format!(" ({o})"))
                            .unwrap_or_default()
                    ),
                    json!({"registrations": live}),
                ),
                None => answered(
                    "not_connected",
                    "no live registration for this account",
                    json!({"registrations": regs}),
                ),
            }
        }
    }
}

fn force_reconnection(g: &Gathered) -> Decision {
    if let Some(watch) = &g.watch {
        return match watch {
            Err(e) => inconclusive(
                format!("could not watch for a new REGISTER: {e}"),
                json!({"error": e}),
            ),
            Ok(w) => {
                let accepted = w.attempts.iter().find(|a| (200..300).contains(&a.status));
                match accepted {
                    Some(a) => answered(
                        "fine",
                        format!(
                            "a fresh REGISTER from {} was accepted during the {} s watch",
                            a.source, w.seconds
                        ),
                        json!({"watch": w}),
                    ),
                    None if w.attempts.is_empty() => answered(
                        "connection_problem",
                        format!(
                            "no REGISTER reached the server during the {} s watch",
                            w.seconds
                        ),
                        json!({"watch": w}),
                    ),
                    None => {
                        let last = &w.attempts[w.attempts.len() - 1];
                        answered(
                            "connection_problem",
                            format!(
                                "{} REGISTER attempt(s) during the watch, none accepted (last: {} {})",
                                w.attempts.len(),
                                last.status,
                                last.reason
                            ),
                            json!({"watch": w}),
                        )
                    }
                }
            }
        };
    }
    // Not watching: the latest registration and the latest attempt stand in for the reconnection.
    let regs = match live_registrations(g) {
        Ok(r) => r,
        // Without the registrations, the probes can still tell: a server that answers SIP on
        // no transport at all accepts no client's reconnection.
        Err(e) if server_silent_everywhere(g) => {
            return answered(
                "connection_problem",
                format!(
                    "the server answers SIP on none of its transports ({}); registrations unreadable: {e}",
                    list_transports(g)
                ),
                json!({"error": e, "transports": g.transports}),
            );
        }
        Err(e) => {
            return inconclusive(
                format!("registration lookup failed: {e}"),
                json!({"error": e}),
            );
        }
    };
    let live = regs.iter().any(|r| r.expires_at > g.now);
    let last_attempt = g.attempts.as_ref().ok().and_then(|a| a.last());
    let ev = json!({"registered": live, "latest_attempt": last_attempt, "attempts_error": g.attempts.as_ref().err()});
    match (live, last_attempt) {
        (true, None) => answered(
            "fine",
            "registered now (no REGISTER attempt traced in the window)",
            ev,
        ),
        (true, Some(a)) if (200..300).contains(&a.status) => answered(
            "fine",
            format!(
                "registered now; the latest REGISTER was accepted ({})",
                a.status
            ),
            ev,
        ),
        (true, Some(a)) => answered(
            "connection_problem",
            format!(
                "registered, but the latest REGISTER was rejected: {} {}",
                a.status, a.reason
            ),
            ev,
        ),
        (false, Some(a)) if !(200..300).contains(&a.status) => answered(
            "connection_problem",
            format!(
                "not registered; the latest REGISTER from {} got {} {}",
                a.source,
                status_text(a.status),
                a.reason
            ),
            ev,
        ),
        (false, _) => answered("connection_problem", "not registered now", ev),
    }
}

/// Every probed transport failed to reach the server (refused, silent, unreachable).
fn server_silent_everywhere(g: &Gathered) -> bool {
    !g.transports.is_empty()
        && g.transports.iter().all(|t| {
            matches!(
                t.options.category.as_str(),
                "refused" | "timeout" | "unreachable"
            )
        })
}

fn status_text(s: u16) -> String {
    if s == 0 {
        "no answer".into()
    } else {
        s.to_string()
    }
}

fn echo_call(g: &Gathered) -> Decision {
    let own = match &g.calls {
        Ok(calls) => calls
            .iter()
            .find(|c| same_user(&c.caller, &g.user) && g.is_echo(c)),
        Err(_) => None,
    };
    let synthetic = g.echo.as_ref();
    let ev = json!({"own_echo_call": own, "synthetic_echo_call": synthetic.ok(), "synthetic_error": synthetic.err()});
    let own_failed = own.is_some_and(|c| c.status >= 300);
    match synthetic {
        Ok(p) if !p.ok() => answered(
            "fails",
            format!(
                "the echo service fails dialtone's own echo call: {}",
                p.summary
            ),
            ev,
        ),
        _ if own_failed => {
            let c = own
                .map(|c| format!("{} {}", c.status, c.reason))
                .unwrap_or_default();
            answered(
                "fails",
                format!("the user's own latest echo call failed: {c}"),
                ev,
            )
        }
        Ok(p) => {
            let own_s = match own {
                Some(c) => format!("; the user's latest echo call was answered ({})", c.status),
                None => String::new(),
            };
            answered(
                "works",
                format!(
                    "the echo service answers and echoes audio: {}{own_s}",
                    p.summary
                ),
                ev,
            )
        }
        Err(e) => match own {
            Some(c) => answered(
                "works",
                format!(
                    "the user's latest echo call was answered ({}); no synthetic call: {e}",
                    c.status
                ),
                ev,
            ),
            None => inconclusive(
                format!("no echo call by the user in the window, and no synthetic call: {e}"),
                ev,
            ),
        },
    }
}

fn calls_to_others(g: &Gathered) -> Decision {
    if let Err(e) = &g.calls {
        return inconclusive(
            format!("call records unavailable: {e}"),
            json!({"error": e}),
        );
    }
    let calls = g.calls_to_others();
    let ev = json!({"calls": calls.iter().take(10).collect::<Vec<_>>()});
    if let Some(c) = calls.iter().find(|c| (200..300).contains(&c.status)) {
        return answered(
            "yes",
            format!(
                "a call to {} was answered at {}",
                c.dialled,
                c.at.format("%H:%M:%S")
            ),
            ev,
        );
    }
    match calls.first() {
        Some(c) => answered(
            "no",
            format!(
                "{} call(s) to others, none answered (latest to {}: {} {})",
                calls.len(),
                c.dialled,
                c.status,
                c.reason
            ),
            ev,
        ),
        None => inconclusive(
            "no call to another user in the window: ask the user to try one",
            ev,
        ),
    }
}

fn dialled_number(g: &Gathered) -> Decision {
    if let Err(e) = &g.calls {
        return inconclusive(
            format!("call records unavailable: {e}"),
            json!({"error": e}),
        );
    }
    let calls = g.calls_to_others();
    let failed = calls.iter().find(|c| c.status >= 300);
    match failed {
        Some(c) if c.status == 404 || c.status == 484 => answered(
            "wrong",
            format!(
                "the latest failed call dialled {} and got {} {}: no such number",
                c.dialled, c.status, c.reason
            ),
            json!({"call": c}),
        ),
        Some(c) => answered(
            "right",
            format!(
                "the latest failed call dialled {} ({} {})",
                c.dialled, c.status, c.reason
            ),
            json!({"call": c}),
        ),
        None => inconclusive(
            "no failed call to another user in the window",
            json!({"calls": calls.len()}),
        ),
    }
}

/// The outgoing trunks among the server's destination sets. When the configuration says which
/// prefixes reach a trunk, sets without prefixes (the echo service, say) are not trunks; when it
/// says nothing, every set counts.
pub fn outgoing_trunks(trunks: &[server_state::Trunk]) -> Vec<&server_state::Trunk> {
    let with_prefixes: Vec<_> = trunks.iter().filter(|t| !t.prefixes.is_empty()).collect();
    if with_prefixes.is_empty() {
        trunks.iter().collect()
    } else {
        with_prefixes
    }
}

fn trunk_inventory(g: &Gathered) -> Decision {
    match &g.trunks {
        Err(e) => inconclusive(
            format!("trunk inventory unavailable: {e}"),
            json!({"error": e}),
        ),
        Ok(trunks) => {
            let usable: Vec<_> = outgoing_trunks(trunks)
                .into_iter()
                .filter(|t| !t.destinations.is_empty())
                .collect();
            let ev = json!({"trunks": trunks});
            if usable.is_empty() {
                answered("none", "the server has no outgoing trunk", ev)
            } else {
                let names: Vec<_> = usable.iter().map(|t| t.name.clone()).collect();
                answered(
                    "some",
                    format!("{} outgoing trunk(s): {}", usable.len(), names.join(", ")),
                    ev,
                )
            }
        }
    }
}

fn account_and_registration(g: &Gathered) -> Decision {
    let exists = match &g.account {
        Ok(a) => a.as_ref().is_some_and(|a| a.exists),
        Err(e) => return inconclusive(format!("account lookup failed: {e}"), json!({"error": e})),
    };
    let registered = match &g.registrations {
        Ok(r) => r.iter().any(|r| r.expires_at > g.now),
        Err(e) => {
            return inconclusive(
                format!("registration lookup failed: {e}"),
                json!({"error": e}),
            );
        }
    };
    let ev = json!({"account": g.account.as_ref().ok(), "registered": registered});
    match (exists, registered) {
        (true, true) => answered("yes", "the account exists and is registered", ev),
        (false, _) => answered(
            "no",
            format!("there is no account {} on this server", g.user),
            ev,
        ),
        (true, false) => answered("no", "the account exists but is not registered", ev),
    }
}

fn trunk_health(g: &Gathered) -> Decision {
    let trunks = match &g.trunks {
        Ok(t) => t,
        Err(e) => {
            return inconclusive(
                format!("trunk inventory unavailable: {e}"),
                json!({"error": e}),
            );
        }
    };
    let failing: Vec<_> = g
        .calls_to_others()
        .into_iter()
        .filter(|c| c.status >= 300)
        .collect();
    // Which trunks do the failing calls need? From the route recorded with the call, else from
    // the server's routing of the dialled string; when neither says, every trunk counts.
    let mut needed: Vec<String> = Vec::new();
    let routes = g.routes.as_ref().ok();
    for c in &failing {
        if let Some(Some(t)) = routes.and_then(|r| r.get(&c.dialled))
            && !needed.contains(t)
        {
            needed.push(t.clone());
        }
    }
    let routed = |c: &server_state::CallRecord| {
        c.route.as_deref() == Some("trunk")
            || routes.is_some_and(|r| matches!(r.get(&c.dialled), Some(Some(_))))
    };
    let via_trunk: Vec<_> = failing.iter().filter(|c| routed(c)).collect();
    let considered: Vec<_> = if needed.is_empty() {
        outgoing_trunks(trunks)
    } else {
        trunks.iter().filter(|t| needed.contains(&t.id)).collect()
    };
    // A trunk whose state the server does not keep (drouting) is judged by the calls through it.
    let down: Vec<_> = considered
        .iter()
        .filter(|t| !t.is_up() && !t.state_unknown())
        .collect();
    let ev = json!({
        "trunks_considered": considered,
        "failing_calls": failing.iter().take(10).collect::<Vec<_>>(),
        "routes": routes,
    });
    if let Some(t) = down.first() {
        let states: Vec<_> = t
            .destinations
            .iter()
            .map(|d| format!("{} {}", d.uri, d.state.as_str()))
            .collect();
        return answered(
            "trunk_problem",
            format!(
                "trunk {} has no usable destination ({})",
                t.name,
                states.join(", ")
            ),
            ev,
        );
    }
    // SIP practice: a proxy turns a gateway's 503 into 500 (RFC 3261 §16.7), and answers 503
    // itself when no destination is left; either, on calls that took the trunk, is the trunk's.
    if let Some(c) = via_trunk.iter().find(|c| c.status >= 500) {
        return answered(
            "trunk_problem",
            format!(
                "calls through the trunk fail at the trunk: {} to {} got {} {}",
                c.caller, c.dialled, c.status, c.reason
            ),
            ev,
        );
    }
    let unknown: Vec<_> = considered.iter().filter(|t| t.state_unknown()).collect();
    // The failing calls stay local (the routes say so): the trunks are not their cause.
    let routes_known = routes.is_some_and(|r| {
        failing
            .iter()
            .all(|c| matches!(r.get(&c.dialled), Some(None)))
    });
    if !unknown.is_empty() && !failing.is_empty() && routes_known {
        return answered(
            "fine",
            format!(
                "the failing calls route through no trunk (latest to {}: {} {}); the server reports no state for its trunks",
                failing[0].dialled, failing[0].status, failing[0].reason
            ),
            ev,
        );
    }
    if !unknown.is_empty() {
        let calls = g.calls_to_others();
        let answered_call = calls
            .iter()
            .filter(|c| routed(c))
            .find(|c| (200..300).contains(&c.status));
        return match answered_call {
            Some(c) => answered(
                "fine",
                format!(
                    "the server reports no state for trunk {} ({}), but a call through it to {} was answered at {}",
                    unknown[0].name,
                    unknown[0]
                        .destinations
                        .first()
                        .and_then(|d| d.last_probe.as_deref())
                        .unwrap_or("no state kept"),
                    c.dialled,
                    c.at.format("%H:%M:%S")
                ),
                ev,
            ),
            None => inconclusive(
                format!(
                    "the server reports no state for trunk {} ({}) and no call through it in the window tells whether it works: ask the user to call an outside number",
                    unknown[0].name,
                    unknown[0]
                        .destinations
                        .first()
                        .and_then(|d| d.last_probe.as_deref())
                        .unwrap_or("no state kept")
                ),
                ev,
            ),
        };
    }
    answered(
        "fine",
        format!(
            "{} trunk(s) checked, each with an active destination{}",
            considered.len(),
            if needed.is_empty() {
                " (the failing calls route through none of them)"
            } else {
                ""
            }
        ),
        ev,
    )
}

fn account_exists(g: &Gathered) -> Decision {
    match &g.account {
        Err(e) => inconclusive(format!("account lookup failed: {e}"), json!({"error": e})),
        Ok(Some(a)) if a.exists => {
            let nums: Vec<_> = a.numbers.iter().map(|n| n.number.clone()).collect();
            answered(
                "yes",
                format!(
                    "account {} exists (numbers: {})",
                    a.user,
                    if nums.is_empty() {
                        "none".into()
                    } else {
                        nums.join(", ")
                    }
                ),
                json!({"account": a}),
            )
        }
        Ok(a) => answered(
            "no",
            format!("there is no account {} on this server", g.user),
            json!({"account": a}),
        ),
    }
}

fn account_registered(g: &Gathered) -> Decision {
    match registration_lookup(g) {
        Decision {
            answer: Some(a),
            summary,
            evidence,
        } => Decision {
            answer: Some(if a == "connected" { "yes" } else { "no" }.into()),
            summary,
            evidence,
        },
        d => d,
    }
}

fn virtual_number_unique(g: &Gathered) -> Decision {
    match &g.duplicates {
        Err(e) => inconclusive(format!("number lookup failed: {e}"), json!({"error": e})),
        Ok(owners) => {
            let dups: Vec<_> = owners.iter().filter(|o| !o.others.is_empty()).collect();
            let ev = json!({"numbers": owners});
            if dups.is_empty() {
                if owners.is_empty() {
                    return answered(
                        "unique",
                        "the account has no virtual number, so none is shared",
                        ev,
                    );
                }
                let nums: Vec<_> = owners.iter().map(|o| o.number.clone()).collect();
                answered(
                    "unique",
                    format!("no other account carries {}", nums.join(" or ")),
                    ev,
                )
            } else {
                let parts: Vec<_> = dups
                    .iter()
                    .map(|d| format!("{} is also carried by {}", d.number, d.others.join(", ")))
                    .collect();
                answered("duplicate", parts.join("; "), ev)
            }
        }
    }
}

fn server_services(g: &Gathered) -> Decision {
    let mut failures: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for t in &g.transports {
        if !t.options.ok() {
            failures.push(format!(
                "SIP over {} (port {}): {}",
                t.transport.to_uppercase(),
                t.port,
                t.options.summary
            ));
        }
    }
    if let Some(tls) = &g.tls
        && let Some(c) = &tls.certificate
        && c.verification != "valid"
    {
        failures.push(format!(
            "TLS certificate ({}): {}",
            c.subject, c.verification
        ));
    }
    match &g.health {
        Ok(h) => {
            if let CheckState::Down(why) = &h.management {
                failures.push(format!("management interface: {why}"));
            }
            if let CheckState::Down(why) = &h.database {
                failures.push(format!("database: {why}"));
            }
            // Trunk destinations are judged at the trunk step, not as the server's own services.
            let trunk_uris: Vec<String> = g
                .trunks
                .as_ref()
                .map(|t| {
                    outgoing_trunks(t)
                        .iter()
                        .flat_map(|t| t.destinations.iter().map(|d| d.uri.clone()))
                        .collect()
                })
                .unwrap_or_default();
            for (name, state) in &h.services {
                if trunk_uris.iter().any(|u| name.contains(u.as_str())) {
                    continue;
                }
                if let CheckState::Down(why) = state {
                    failures.push(format!("{name}: {why}"));
                }
            }
        }
        Err(e) => failures.push(format!("management interface: {e}")),
    }
    if let Ok(p) = &g.self_test
        && !p.ok()
    {
        failures.push(format!(
            "self-test call between the probe accounts: {}",
            p.summary
        ));
    }
    match &g.echo {
        Ok(p) if !p.ok() => failures.push(format!("echo service: {}", p.summary)),
        Ok(_) => {}
        Err(e) => unknown.push(format!("echo service not probed: {e}")),
    }
    let ev = json!({
        "transports": g.transports, "tls": g.tls, "health": g.health.as_ref().ok(),
        "health_error": g.health.as_ref().err(), "echo": g.echo.as_ref().ok(),
        "self_test": g.self_test.as_ref().ok(), "not_checked": unknown,
    });
    if failures.is_empty() {
        if g.transports.is_empty() {
            return inconclusive("no SIP transport could be probed", ev);
        }
        answered(
            "fine",
            format!(
                "every service answers ({} transport(s), management, database, echo)",
                g.transports.len()
            ),
            ev,
        )
    } else {
        answered("failure", failures.join("; "), ev)
    }
}

fn network_status(g: &Gathered, t: Thresholds) -> Decision {
    let mut problems: Vec<String> = Vec::new();
    if let Some(d) = &g.dns
        && !d.skipped
        && !d.ok
    {
        problems.push(format!(
            "DNS: {}",
            d.steps.last().cloned().unwrap_or_default()
        ));
    }
    for tp in &g.transports {
        if let Some(b) = &tp.burst {
            if b.loss_percent > t.max_loss_percent {
                problems.push(format!(
                    "{}: {:.0}% of OPTIONS lost",
                    tp.transport.to_uppercase(),
                    b.loss_percent
                ));
            }
            if let Some(avg) = b.rtt_avg_ms
                && avg > t.max_rtt_ms
            {
                problems.push(format!(
                    "{}: round trip {avg:.0} ms (limit {:.0} ms)",
                    tp.transport.to_uppercase(),
                    t.max_rtt_ms
                ));
            }
        } else if !tp.options.ok() {
            problems.push(format!(
                "{}: {}",
                tp.transport.to_uppercase(),
                tp.options.summary
            ));
        }
    }
    if let Some(hint) = nat_hint(g) {
        problems.push(hint);
    }
    let ev = json!({"dns": g.dns, "transports": g.transports});
    if g.transports.is_empty() {
        return inconclusive("no transport could be measured", ev);
    }
    if problems.is_empty() {
        let rtts: Vec<String> = g
            .transports
            .iter()
            .filter_map(|tp| {
                tp.burst.as_ref().and_then(|b| {
                    b.rtt_avg_ms
                        .map(|r| format!("{} {r:.1} ms", tp.transport.to_uppercase()))
                })
            })
            .collect();
        answered(
            "fine",
            format!(
                "the path answers on every transport, no loss ({})",
                rtts.join(", ")
            ),
            ev,
        )
    } else {
        answered("problem", problems.join("; "), ev)
    }
}

/// A contact with a private address while the server saw the client elsewhere: the client is
/// behind NAT and its keep-alive must hold the binding open.
fn nat_hint(g: &Gathered) -> Option<String> {
    let regs = g.registrations.as_ref().ok()?;
    for r in regs {
        let contact_host = host_of(&r.contact)?;
        let source_host = r
            .source
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&r.source);
        let source_host = source_host
            .trim_start_matches("udp:")
            .trim_start_matches("tcp:")
            .trim_start_matches("tls:");
        if is_private(contact_host) && contact_host != source_host && !source_host.is_empty() {
            return Some(format!(
                "NAT: the contact {} is a private address but the server sees the client at {}",
                r.contact, r.source
            ));
        }
    }
    None
}

fn host_of(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':').map(|(_, r)| r)?;
    let rest = rest.split_once('@').map(|(_, r)| r).unwrap_or(rest);
    let end = rest.find([':', ';', '>']).unwrap_or(rest.len());
    Some(&rest[..end])
}

fn is_private(host: &str) -> bool {
    match host.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => {
            ip.is_private()
                || ip.is_link_local()
                || ip.octets()[0] == 100 && (64..128).contains(&ip.octets()[1])
        }
        Err(_) => false,
    }
}

fn client_logs(g: &Gathered) -> Decision {
    if g.client_logs.is_empty() {
        return answered(
            "no_attachment",
            "no client log or capture is attached: ask the user for one",
            Value::Null,
        );
    }
    let ev = json!({"analyses": g.client_logs});
    // The most specific cause wins: authentication, then TLS, then configuration.
    for hint in [
        "authentication_failure",
        "tls_failure",
        "client_misconfiguration",
    ] {
        if let Some(f) = g
            .client_logs
            .iter()
            .flat_map(|a| a.findings.iter())
            .find(|f| f.outcome_hint.as_deref() == Some(hint))
        {
            return answered(hint, format!("{}: {}", f.attachment, f.cause), ev);
        }
    }
    // No cause on the client's side; a network one (one-way or no audio, NAT) is named for
    // the next level.
    if let Some(f) = g
        .client_logs
        .iter()
        .flat_map(|a| a.findings.iter())
        .find(|f| f.outcome_hint.as_deref() == Some("network_problem"))
    {
        return answered(
            "nothing_found",
            format!(
                "no cause on the client's side; the network is suspect: {}: {}",
                f.attachment, f.cause
            ),
            ev,
        );
    }
    answered(
        "nothing_found",
        "the attached logs show no failure cause",
        ev,
    )
}

fn dns_resolution(g: &Gathered) -> Decision {
    match &g.dns {
        None => inconclusive("DNS was not checked", Value::Null),
        Some(d) if d.skipped => answered(
            "resolves",
            "a host is configured; nothing to resolve",
            json!({"dns": d}),
        ),
        Some(d) if d.ok => answered("resolves", d.steps.join("; "), json!({"dns": d})),
        Some(d) => answered("fails", d.steps.join("; "), json!({"dns": d})),
    }
}

fn transport_reachability(g: &Gathered) -> Decision {
    if g.transports.is_empty() {
        return inconclusive("no transport probed", Value::Null);
    }
    let ev = json!({"transports": g.transports});
    // A TLS certificate problem is a TLS finding, not an unreachable server; it is decided at
    // the TLS step.
    let down: Vec<&crate::evidence::TransportProbe> = g
        .transports
        .iter()
        .filter(|t| !(t.options.ok() || t.transport == "tls" && t.options.category == "tls"))
        .collect();
    if down.is_empty() {
        answered(
            "reachable",
            format!("the server answers OPTIONS on {}", list_transports(g)),
            ev,
        )
    } else {
        let parts: Vec<_> = down
            .iter()
            .map(|t| {
                format!(
                    "{} port {}: {}",
                    t.transport.to_uppercase(),
                    t.port,
                    t.options.summary
                )
            })
            .collect();
        answered("unreachable", parts.join("; "), ev)
    }
}

fn list_transports(g: &Gathered) -> String {
    g.transports
        .iter()
        .map(|t| t.transport.to_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

fn tls_handshake(g: &Gathered) -> Decision {
    match &g.tls {
        None => answered("not_used", "the clients do not use TLS", Value::Null),
        Some(p) => tls_decision(p),
    }
}

fn tls_decision(p: &ProbeSummary) -> Decision {
    let ev = json!({"tls": p});
    if let Some(c) = &p.certificate
        && c.verification != "valid"
    {
        return answered(
            "failure",
            format!(
                "the server's certificate ({}, issued by {}, valid until {}) fails verification: {}",
                c.subject, c.issuer, c.not_after, c.verification
            ),
            ev,
        );
    }
    if p.category == "tls" {
        return answered(
            "failure",
            format!("TLS handshake failed: {}", p.summary),
            ev,
        );
    }
    if p.certificate.is_some() {
        answered(
            "ok",
            "TLS handshake completed and the certificate verifies",
            ev,
        )
    } else {
        inconclusive(format!("TLS could not be tried: {}", p.summary), ev)
    }
}

fn register_attempts(g: &Gathered) -> Decision {
    match &g.attempts {
        Err(e) => inconclusive(
            format!("REGISTER attempts unavailable: {e}"),
            json!({"error": e}),
        ),
        Ok(a) if a.is_empty() => answered(
            "none_seen",
            "no REGISTER from this account reached the server in the window",
            json!({"attempts": a}),
        ),
        Ok(a) => answered(
            "seen",
            format!("{} REGISTER attempt(s) in the window", a.len()),
            json!({"attempts": a.iter().rev().take(10).collect::<Vec<_>>()}),
        ),
    }
}

fn client_provisioning(g: &Gathered) -> Decision {
    // No REGISTER reaches this server. If the account never registered at all, the client was
    // most likely never set up for it (or for this server); which one, only the user can tell.
    match &g.ever_registered {
        // The design page: an account that never registered is not provisioned yet.
        Ok(false) => answered(
            "never_set_up",
            "the account has never registered with this server and no REGISTER arrives: it was never set up on the client",
            json!({"ever_registered": false}),
        ),
        Ok(true) => answered(
            "other_server",
            "the account registered here before, but no REGISTER arrives now: the client points elsewhere",
            json!({"ever_registered": true}),
        ),
        Err(e) => inconclusive(
            format!("registration history unavailable: {e}"),
            Value::Null,
        ),
    }
}

fn register_result(g: &Gathered) -> Decision {
    let attempts = match &g.attempts {
        Ok(a) => a,
        Err(e) => {
            return inconclusive(
                format!("REGISTER attempts unavailable: {e}"),
                json!({"error": e}),
            );
        }
    };
    let Some(last) = attempts.last() else {
        return inconclusive("no REGISTER attempt in the window", Value::Null);
    };
    let ev =
        json!({"latest": last, "attempts": attempts.iter().rev().take(10).collect::<Vec<_>>()});
    match last.status {
        200..=299 => answered(
            "accepted",
            format!("the latest REGISTER was accepted ({})", last.status),
            ev,
        ),
        // A 401/407 is normally the first half of digest authentication; only a challenge that is
        // never followed by success (or a 403) means the credentials are wrong.
        403 => answered(
            "auth_rejected",
            format!("the server rejects the credentials: 403 {}", last.reason),
            ev,
        ),
        // A challenge to a request that already carried credentials refuses them.
        401 | 407 if last.auth_user.as_deref().is_some_and(|u| !u.is_empty()) => answered(
            "auth_rejected",
            format!(
                "the server challenged the REGISTER again although it carried credentials for {}: the password is wrong",
                last.auth_user.as_deref().unwrap_or_default()
            ),
            ev,
        ),
        401 | 407 => {
            let challenged = attempts
                .iter()
                .rev()
                .take_while(|a| a.status == 401 || a.status == 407)
                .count();
            if challenged >= 2 {
                answered(
                    "auth_rejected",
                    format!(
                        "{challenged} challenges in a row without success: the password is wrong"
                    ),
                    ev,
                )
            } else {
                inconclusive(
                    "the latest REGISTER was challenged; waiting for the authenticated retry",
                    ev,
                )
            }
        }
        0 => answered("other_error", "the latest REGISTER got no answer", ev),
        s => answered(
            "other_error",
            format!("the latest REGISTER got {s} {}", last.reason),
            ev,
        ),
    }
}

fn nat_keepalive(g: &Gathered) -> Decision {
    if g.registrations.is_err() {
        return inconclusive("registration lookup failed", Value::Null);
    }
    let live = g
        .registrations
        .as_ref()
        .map(|r| r.iter().any(|r| r.expires_at > g.now))
        .unwrap_or(false);
    let last_ok = g
        .attempts
        .as_ref()
        .ok()
        .and_then(|a| a.last())
        .filter(|a| (200..300).contains(&a.status));
    if !live && let Some(a) = last_ok {
        // Accepted, then lapsed with no refresh: the client stopped refreshing its binding,
        // the signature of a NAT or firewall dropping an idle connection (or a killed app).
        return answered(
            "problem",
            format!(
                "the registration accepted at {} from {} lapsed and no refresh arrived: the client's connection is being dropped (NAT/firewall idle timeout; enable keep-alive)",
                a.at.format("%H:%M:%S"),
                a.source
            ),
            json!({"latest_accepted": a}),
        );
    }
    match nat_hint(g) {
        Some(h) => answered(
            "problem",
            h,
            json!({"registrations": g.registrations.as_ref().ok()}),
        ),
        None => answered(
            "fine",
            "the contact address matches where the server sees the client",
            json!({"registrations": g.registrations.as_ref().ok()}),
        ),
    }
}

fn license_service(g: &Gathered) -> Decision {
    match &g.license {
        Ok(true) => answered("up", "the licence service accepts connections", Value::Null),
        Ok(false) => answered(
            "down",
            "the licence service does not accept connections",
            Value::Null,
        ),
        Err(e) => inconclusive(format!("licence service not checked: {e}"), Value::Null),
    }
}

fn callee_exists(g: &Gathered) -> Decision {
    match &g.callee {
        Ok(Some(c)) => match &c.account {
            Some(a) => answered(
                "yes",
                format!("{} is account {}", c.dialled, a.user),
                json!({"callee": c}),
            ),
            None => answered(
                "no",
                format!("no account carries {}", c.dialled),
                json!({"callee": c}),
            ),
        },
        Ok(None) => inconclusive("no failed call to look at", Value::Null),
        Err(e) => inconclusive(format!("callee lookup failed: {e}"), Value::Null),
    }
}

fn callee_registered(g: &Gathered) -> Decision {
    match &g.callee {
        Ok(Some(c)) if c.account.is_some() => answered(
            if c.registered { "yes" } else { "no" },
            format!(
                "the callee {} ({}) is {}registered",
                c.account.as_ref().map(|a| a.user.as_str()).unwrap_or("?"),
                c.dialled,
                if c.registered { "" } else { "not " }
            ),
            json!({"callee": c}),
        ),
        Ok(_) => inconclusive("no callee account to look at", Value::Null),
        Err(e) => inconclusive(format!("callee lookup failed: {e}"), Value::Null),
    }
}

fn callee_number_unique(g: &Gathered) -> Decision {
    match &g.callee {
        Ok(Some(c)) if c.others_with_number.is_empty() => answered(
            "unique",
            format!("only one account carries {}", c.dialled),
            json!({"callee": c}),
        ),
        Ok(Some(c)) => answered(
            "duplicate",
            format!(
                "{} is carried by {}",
                c.dialled,
                c.others_with_number.join(", ")
            ),
            json!({"callee": c}),
        ),
        Ok(None) => inconclusive("no callee to look at", Value::Null),
        Err(e) => inconclusive(format!("callee lookup failed: {e}"), Value::Null),
    }
}
