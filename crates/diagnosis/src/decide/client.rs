//! Client-side steps: attached logs, provisioning, NAT keep-alive.

use super::{Decision, answered, inconclusive};
use crate::evidence::Gathered;
use serde_json::{Value, json};
use sip_message::{host_of, is_private_host as is_private};

/// A contact with a private address while the server saw the client elsewhere: the client is
/// behind NAT and its keep-alive must hold the binding open.
pub(super) fn nat_hint(g: &Gathered) -> Option<String> {
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

pub(super) fn client_logs(g: &Gathered) -> Decision {
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

pub(super) fn client_provisioning(g: &Gathered) -> Decision {
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

pub(super) fn nat_keepalive(g: &Gathered) -> Decision {
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
