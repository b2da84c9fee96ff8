//! Registration steps: is the account registered, does a forced reconnection register, and
//! what the server answered the client's REGISTERs.

use super::server::{list_transports, server_silent_everywhere};
use super::{Decision, answered, inconclusive};
use crate::evidence::Gathered;
use serde_json::{Value, json};

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

pub(super) fn registration_lookup(g: &Gathered) -> Decision {
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

pub(super) fn force_reconnection(g: &Gathered) -> Decision {
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

fn status_text(s: u16) -> String {
    if s == 0 {
        "no answer".into()
    } else {
        s.to_string()
    }
}

pub(super) fn register_attempts(g: &Gathered) -> Decision {
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

pub(super) fn register_result(g: &Gathered) -> Decision {
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
