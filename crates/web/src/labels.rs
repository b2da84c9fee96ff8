//! Plain words for everything the pages show: step, answer, outcome and escalation titles come
//! from the runbooks; statuses, levels, answer sources, dispositions and roles from fixed tables.
//!
//! Pages never show a step id, an answer value or an enum spelling to the agent: they call one
//! of these functions and keep the id for the engineers' details line only. Every function
//! falls back to a readable form of the id when the runbook no longer knows it (an old incident
//! recorded with a since-renamed step), so a page never shows nothing.
//!
//! ```text
//! use crate::labels;
//! let set = runbook::RunbookSet::builtin();
//! assert_eq!(labels::step_title(&set, "l1.echo_call"), "Call the echo service");
//! assert_eq!(labels::status(incidents::Status::WaitingUser), "Waiting for the user");
//! ```

// Some helpers exist for the step page and the close form (worked on elsewhere): keep them even
// when no page of this branch calls them yet.
#![allow(dead_code)]

use incidents::Status;
use runbook::{Disposition, Level, OutcomeDef, RunbookSet, Target};

/// The step's title (`l1.echo_call` → "Call the echo service").
pub(crate) fn step_title(set: &RunbookSet, step: &str) -> String {
    set.step(step)
        .map_or_else(|| humanize(step), |(_, s)| s.title.clone())
}

/// The label of answer `value` at `step` (`l1.echo_call`, `fails` → "It fails").
pub(crate) fn answer_label(set: &RunbookSet, step: &str, value: &str) -> String {
    set.step(step)
        .and_then(|(_, s)| s.answer(value))
        .map_or_else(|| humanize(value), |a| a.label.clone())
}

/// The runbook's title (`connection-issues` → "Connection issues").
pub(crate) fn runbook_title(set: &RunbookSet, runbook: &str) -> String {
    set.get(runbook)
        .map_or_else(|| humanize(runbook), |r| r.title.clone())
}

/// An outcome's definition: looked up in `runbook` first, then in every runbook (an incident
/// may have been redirected since the outcome was reached).
pub(crate) fn outcome<'a>(
    set: &'a RunbookSet,
    runbook: Option<&str>,
    outcome: &str,
) -> Option<&'a OutcomeDef> {
    runbook
        .and_then(|r| set.get(r))
        .and_then(|r| r.outcome(outcome))
        .or_else(|| set.iter().find_map(|r| r.outcome(outcome)))
}

/// An outcome's title (`trunk_problem` → "Trunk problem").
pub(crate) fn outcome_title(set: &RunbookSet, runbook: Option<&str>, id: &str) -> String {
    outcome(set, runbook, id).map_or_else(|| humanize(id), |o| o.title.clone())
}

/// What an escalation of `kind` is called (`server_status_check` → "Server status check");
/// without a kind, what the level does ("Third-level investigation").
pub(crate) fn escalation_kind(set: &RunbookSet, kind: Option<&str>, to_level: &str) -> String {
    match kind.filter(|k| !k.is_empty()) {
        Some(k) => set
            .iter()
            .find_map(|r| r.escalations.get(k))
            .map_or_else(|| humanize(k), |e| e.title.clone()),
        None => match to_level.to_ascii_uppercase().as_str() {
            "L3" => "Third-level investigation".to_owned(),
            "L2" => "Second-level check".to_owned(),
            other => format!("Escalation to {other}"),
        },
    }
}

/// What the agent tells the user while an escalation of `kind` is worked (from the runbook).
pub(crate) fn escalation_tell_user(set: &RunbookSet, kind: Option<&str>) -> Option<String> {
    let k = kind.filter(|k| !k.is_empty())?;
    set.iter()
        .find_map(|r| r.escalations.get(k))
        .map(|e| e.tell_user.clone())
}

/// What to tell the user when the incident leaves `step` by escalating (the answer's own words,
/// else the kind's). `None` when the step does not escalate.
pub(crate) fn escalation_words_at(set: &RunbookSet, step: &str) -> Option<String> {
    let (_, s) = set.step(step)?;
    s.answers.iter().find_map(|a| match &a.target {
        Target::Escalate { kind, .. } => a
            .tell_user
            .clone()
            .or_else(|| escalation_tell_user(set, kind.as_deref())),
        _ => None,
    })
}

/// What to tell the user when the incident leaves `step` with `answer` and that answer
/// escalates: the answer's own words, else its kind's. `None` when it does not escalate.
pub(crate) fn escalation_words(set: &RunbookSet, step: &str, answer: &str) -> Option<String> {
    let (_, s) = set.step(step)?;
    let a = s.answer(answer)?;
    match &a.target {
        Target::Escalate { kind, .. } => a
            .tell_user
            .clone()
            .or_else(|| escalation_tell_user(set, kind.as_deref())),
        _ => None,
    }
}

/// What to tell the user for an escalation to L3 chosen by hand (no runbook words apply).
pub(crate) const L3_TELL_USER: &str = "We are passing your case to our engineering team for a \
    deeper look. This can take longer; we will keep you informed.";

/// An incident status in words (`waiting_user` → "Waiting for the user").
pub(crate) fn status(s: Status) -> &'static str {
    match s {
        Status::Open => "Open",
        Status::WaitingUser => "Waiting for the user",
        Status::Escalated => "Escalated",
        Status::Closed => "Closed",
    }
}

/// A stored status string in words; unknown spellings are humanized.
pub(crate) fn status_str(s: &str) -> String {
    s.parse::<Status>()
        .map_or_else(|_| humanize(s), |s| status(s).to_owned())
}

/// A support level in words (`L2` → "Second level (L2)"); accepts `gate`, `l1`, `L1`…
pub(crate) fn level(l: &str) -> String {
    match l.trim().to_ascii_uppercase().as_str() {
        "GATE" => "Scope check".to_owned(),
        "L1" => "First level (L1)".to_owned(),
        "L2" => "Second level (L2)".to_owned(),
        "L3" => "Third level (L3)".to_owned(),
        other => other.to_owned(),
    }
}

/// A runbook level in words, as [`level`].
pub(crate) fn runbook_level(l: Level) -> String {
    level(l.as_str())
}

/// Where an answer came from (`automated` → "Automated check").
pub(crate) fn source(s: &str) -> String {
    match s {
        "agent" => "Agent".to_owned(),
        "automated" => "Automated check".to_owned(),
        "assumed" => "Assumed (nobody answered)".to_owned(),
        other => humanize(other),
    }
}

/// What closing with an outcome means (`closed_after_fix` → "Closed after a fix").
pub(crate) fn disposition(d: Disposition) -> &'static str {
    match d {
        Disposition::Closed => "Closed",
        Disposition::ClosedNotAnIssue => "Closed: not an issue",
        Disposition::ClosedAfterFix => "Closed after a fix",
        Disposition::OutOfScope => "Out of scope: another procedure applies",
    }
}

/// A user role in words (`l2` → "L2 engineer").
pub(crate) fn role(r: &str) -> String {
    match r {
        "l1" => "L1 agent".to_owned(),
        "l2" => "L2 engineer".to_owned(),
        "lead" => "Support lead".to_owned(),
        "admin" => "Administrator".to_owned(),
        other => humanize(other),
    }
}

/// What each role may do, for the admin page: (role, words, what it may do).
pub(crate) const ROLE_RIGHTS: [(&str, &str, &str); 4] = [
    (
        "l1",
        "L1 agent",
        "Opens incidents, works and closes incidents at first level, escalates them to L2, \
         adds notes and attachments, and follows the incidents they escalated.",
    ),
    (
        "l2",
        "L2 engineer",
        "Everything an L1 agent may do, plus the L2 queue: takes escalated incidents, works and \
         closes them at second level, and escalates to L3.",
    ),
    (
        "lead",
        "Support lead",
        "Everything an L2 engineer may do, plus the reports: time to resolve, escalations, \
         automation and overrides, with CSV and JSON downloads.",
    ),
    (
        "admin",
        "Administrator",
        "Everything a support lead may do, plus this page: adds users, changes roles, disables \
         accounts and manages API tokens.",
    ),
];

/// An audit action in words (`escalate` → "Escalated").
pub(crate) fn audit_action(a: &str) -> String {
    match a {
        "open" => "Opened".to_owned(),
        "step" => "Answered a step".to_owned(),
        "escalate" => "Escalated".to_owned(),
        "close" => "Closed".to_owned(),
        "assign" => "Assigned".to_owned(),
        "take" => "Took the incident".to_owned(),
        "revise" => "Changed an answer".to_owned(),
        "webhook.redeliver" => "Sent to the ticket system again".to_owned(),
        "status" => "Changed the status".to_owned(),
        "check" => "Ran an automated check".to_owned(),
        "attachment" => "Attached a file".to_owned(),
        "note" => "Added a note".to_owned(),
        other => humanize(other),
    }
}

/// One audit entry's detail as a sentence, from its JSON (ids turned into titles). Unknown
/// shapes give an empty string: the page then shows only the raw detail behind a toggle.
pub(crate) fn audit_detail(set: &RunbookSet, action: &str, d: &serde_json::Value) -> String {
    let s = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let mut out = match action {
        "step" | "revise" => {
            let step = s("step");
            format!(
                "{}: {} ({})",
                step_title(set, step),
                answer_label(set, step, s("answer")),
                source(s("source")).to_lowercase()
            )
        }
        "escalate" => {
            let to = s("to_level");
            let kind = Some(s("kind")).filter(|k| !k.is_empty());
            format!(
                "From {} to {}: {}. Reason: {}",
                s("from_level"),
                to,
                escalation_kind(set, kind, to),
                s("reason")
            )
        }
        "close" => {
            let o = s("outcome");
            if o.is_empty() {
                "Closed".to_owned()
            } else {
                format!("Outcome: {}", outcome_title(set, None, o))
            }
        }
        "assign" => match (s("from"), s("to")) {
            ("", to) => format!("To {to}"),
            (from, "") => format!("{from} released it"),
            (from, to) => format!("From {from} to {to}"),
        },
        "status" => format!("{} → {}", status_str(s("from")), status_str(s("to"))),
        "check" => {
            let step = s("step");
            let answer = s("answer");
            if answer.is_empty() {
                format!("{}: not conclusive", step_title(set, step))
            } else {
                format!(
                    "{}: {}",
                    step_title(set, step),
                    answer_label(set, step, answer)
                )
            }
        }
        "attachment" => s("name").to_owned(),
        "open" => s("account").to_owned(),
        _ => String::new(),
    };
    if let Some(note) = d.get("note").and_then(|v| v.as_str())
        && !note.is_empty()
        && !out.is_empty()
    {
        out.push_str(". Note: ");
        out.push_str(note);
    }
    out
}

/// An id made readable: the part after the last `.`, `_` and `-` as spaces, first letter
/// capitalised (`l2.server_services` → "Server services").
pub(crate) fn humanize(id: &str) -> String {
    let tail = id.rsplit('.').next().unwrap_or(id);
    let words = tail.replace(['_', '-'], " ");
    let mut chars = words.trim().chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_come_from_the_runbooks() {
        let set = RunbookSet::builtin();
        assert_eq!(step_title(&set, "l1.echo_call"), "Call the echo service");
        assert_eq!(answer_label(&set, "l1.echo_call", "fails"), "It fails");
        assert_eq!(
            outcome_title(&set, Some("user-cant-call"), "trunk_problem"),
            "Trunk problem"
        );
        assert_eq!(
            escalation_kind(&set, Some("server_status_check"), "L2"),
            "Server status check"
        );
        assert_eq!(
            escalation_kind(&set, None, "L3"),
            "Third-level investigation"
        );
        assert!(escalation_words_at(&set, "l1.echo_call").is_some());
        assert!(escalation_words_at(&set, "l1.connection_status").is_none());
    }

    #[test]
    fn unknown_ids_are_humanized_not_blank() {
        let set = RunbookSet::builtin();
        assert_eq!(step_title(&set, "l9.some_old_step"), "Some old step");
        assert_eq!(status_str("waiting_user"), "Waiting for the user");
        assert_eq!(status_str("weird_state"), "Weird state");
        assert_eq!(level("l2"), "Second level (L2)");
        assert_eq!(humanize(""), "");
    }

    #[test]
    fn audit_details_name_titles_not_ids() {
        let set = RunbookSet::builtin();
        let d = serde_json::json!({"step": "l1.echo_call", "answer": "fails", "source": "agent"});
        let s = audit_detail(&set, "step", &d);
        assert_eq!(s, "Call the echo service: It fails (agent)");
        let d = serde_json::json!({"from_level": "L1", "to_level": "L2",
            "kind": "server_status_check", "reason": "echo fails"});
        let s = audit_detail(&set, "escalate", &d);
        assert!(s.contains("Server status check"), "{s}");
        assert!(!s.contains("server_status_check"), "{s}");
    }
}
