//! Account steps, for the caller and the callee: does the account exist, is it registered, is
//! its virtual number unique.

use super::registration::registration_lookup;
use super::{Decision, answered, inconclusive};
use crate::evidence::Gathered;
use serde_json::{Value, json};

pub(super) fn account_and_registration(g: &Gathered) -> Decision {
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

pub(super) fn account_exists(g: &Gathered) -> Decision {
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

pub(super) fn account_registered(g: &Gathered) -> Decision {
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

pub(super) fn virtual_number_unique(g: &Gathered) -> Decision {
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

pub(super) fn callee_exists(g: &Gathered) -> Decision {
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

pub(super) fn callee_registered(g: &Gathered) -> Decision {
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

pub(super) fn callee_number_unique(g: &Gathered) -> Decision {
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
