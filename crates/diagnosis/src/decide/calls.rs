//! Call steps: the echo call, recent calls to others, the dialled number.

use super::{Decision, answered, inconclusive};
use crate::evidence::{Gathered, same_user};
use serde_json::json;

pub(super) fn echo_call(g: &Gathered) -> Decision {
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

pub(super) fn calls_to_others(g: &Gathered) -> Decision {
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

pub(super) fn dialled_number(g: &Gathered) -> Decision {
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
