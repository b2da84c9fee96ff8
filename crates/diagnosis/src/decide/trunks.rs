//! Trunk steps: which trunks go out, and how healthy they are.

use super::{Decision, answered, inconclusive};
use crate::evidence::Gathered;
use serde_json::json;

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

pub(super) fn trunk_inventory(g: &Gathered) -> Decision {
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

pub(super) fn trunk_health(g: &Gathered) -> Decision {
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
