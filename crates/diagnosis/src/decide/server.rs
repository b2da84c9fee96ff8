//! Server-side steps: its services, the network to it, DNS, transports, TLS, the license.

use super::client::nat_hint;
use super::trunks::outgoing_trunks;
use super::{Decision, Thresholds, answered, inconclusive};
use crate::evidence::{Gathered, ProbeSummary};
use serde_json::{Value, json};
use server_state::{CheckState, Transport};
use sip_probe::Category;

/// Every probed transport failed to reach the server (refused, silent, unreachable).
pub(super) fn server_silent_everywhere(g: &Gathered) -> bool {
    !g.transports.is_empty()
        && g.transports.iter().all(|t| {
            matches!(
                t.options.category,
                Category::Refused | Category::Timeout | Category::Unreachable
            )
        })
}

pub(super) fn server_services(g: &Gathered) -> Decision {
    let mut failures: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for t in &g.transports {
        if !t.options.ok() {
            failures.push(format!(
                "SIP over {} (port {}): {}",
                t.transport.as_str().to_uppercase(),
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

pub(super) fn network_status(g: &Gathered, t: Thresholds) -> Decision {
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
                    tp.transport.as_str().to_uppercase(),
                    b.loss_percent
                ));
            }
            if let Some(avg) = b.rtt_avg_ms
                && avg > t.max_rtt_ms
            {
                problems.push(format!(
                    "{}: round trip {avg:.0} ms (limit {:.0} ms)",
                    tp.transport.as_str().to_uppercase(),
                    t.max_rtt_ms
                ));
            }
        } else if !tp.options.ok() {
            problems.push(format!(
                "{}: {}",
                tp.transport.as_str().to_uppercase(),
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
                        .map(|r| format!("{} {r:.1} ms", tp.transport.as_str().to_uppercase()))
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

pub(super) fn dns_resolution(g: &Gathered) -> Decision {
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

pub(super) fn transport_reachability(g: &Gathered) -> Decision {
    if g.transports.is_empty() {
        return inconclusive("no transport probed", Value::Null);
    }
    let ev = json!({"transports": g.transports});
    // A TLS certificate problem is a TLS finding, not an unreachable server; it is decided at
    // the TLS step.
    let down: Vec<&crate::evidence::TransportProbe> = g
        .transports
        .iter()
        .filter(|t| {
            !(t.options.ok()
                || t.transport == Transport::Tls && t.options.category == Category::Tls)
        })
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
                    t.transport.as_str().to_uppercase(),
                    t.port,
                    t.options.summary
                )
            })
            .collect();
        answered("unreachable", parts.join("; "), ev)
    }
}

pub(super) fn list_transports(g: &Gathered) -> String {
    g.transports
        .iter()
        .map(|t| t.transport.as_str().to_uppercase())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn tls_handshake(g: &Gathered) -> Decision {
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
    if p.category == Category::Tls {
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

pub(super) fn license_service(g: &Gathered) -> Decision {
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
