//! Walking a runbook with gathered evidence, and the report that comes out of it.

use crate::decide::{Decision, Thresholds, decide, sources_of};
use crate::evidence::Gathered;
use runbook::{Ending, EvalOptions, Fact, Facts, Level, RunbookSet, Source, Status};
use serde::Serialize;
use std::collections::BTreeMap;

/// One step of the path, with what decided it.
#[derive(Debug, Clone, Serialize)]
pub struct PathStep {
    pub runbook: String,
    pub step: String,
    pub title: String,
    pub answer: String,
    /// automated, agent or assumed.
    pub source: String,
    /// What the evidence says, in plain words.
    pub summary: String,
    pub evidence: serde_json::Value,
    /// Time spent gathering this step's evidence.
    pub duration_ms: u64,
    /// The runbook's note for this step (e.g. a gap the design page marks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EscalationOut {
    pub level: String,
    pub kind: Option<String>,
}

/// The step where the walk stopped for want of conclusive evidence.
#[derive(Debug, Clone, Serialize)]
pub struct NeedsAgent {
    pub runbook: String,
    pub step: String,
    pub question: String,
    pub instruction: Option<String>,
    pub allowed: Vec<String>,
    /// Why no evidence could answer it.
    pub why: String,
}

/// The result of a diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub account: String,
    pub runbook: String,
    /// An outcome id of the runbook (`escalated` and `redirected` included), or null when the
    /// walk stopped at a step only an agent can answer.
    pub outcome: Option<String>,
    pub escalation: Option<EscalationOut>,
    /// Runbooks the walk continued in, in order.
    pub redirects: Vec<String>,
    pub path: Vec<PathStep>,
    /// The verdict in plain words.
    pub summary: String,
    /// What the agent should do now.
    pub next_action: String,
    pub needs_agent: Option<NeedsAgent>,
    /// Problems found on the way that do not decide a step (a management interface down…).
    pub findings: Vec<String>,
    /// Steps answered by assumption (nobody answered, the runbook's default was taken).
    pub assumed: Vec<String>,
    pub duration_ms: u64,
    /// Time spent sending audio on the echo call (part of `duration_ms`).
    pub media_window_ms: u64,
    /// How long each source of evidence took.
    pub timings: BTreeMap<String, u64>,
}

/// Walks `runbook` for the gathered evidence and the agent's answers; never fails: a step the
/// evidence cannot answer ends the walk with `needs_agent`.
pub fn walk(
    set: &RunbookSet,
    runbook: &str,
    g: &Gathered,
    agent_answers: &[(String, String)],
    thresholds: Thresholds,
) -> Report {
    let mut facts = Facts::new();
    for (step, value) in agent_answers {
        facts.insert(step.clone(), Fact::agent(value.clone()));
    }
    let opts = EvalOptions {
        max_level: Level::L2,
        follow_redirects: true,
        use_defaults: false,
    };
    let mut decisions: BTreeMap<String, Decision> = BTreeMap::new();
    let mut assumed = Vec::new();
    let mut needs_agent = None;
    let mut evaluation = None;
    // Each round answers one more step, so the number of steps bounds the loop.
    let bound = set.iter().map(|r| r.steps.len()).sum::<usize>() + 2;
    for _ in 0..bound {
        let ev = match runbook::evaluate(set, runbook, &facts, &opts) {
            Ok(ev) => ev,
            Err(e) => {
                needs_agent = Some(NeedsAgent {
                    runbook: runbook.to_string(),
                    step: String::new(),
                    question: String::new(),
                    instruction: None,
                    allowed: Vec::new(),
                    why: format!("the runbook cannot be followed: {e}"),
                });
                break;
            }
        };
        let Status::NeedsAnswer {
            runbook: rb_id,
            step,
        } = ev.status.clone()
        else {
            evaluation = Some(ev);
            break;
        };
        let Some((_, st)) = set.step(&step) else {
            break;
        };
        let tried = decisions.contains_key(&step);
        if !tried && let Some(check) = st.check {
            let d = decide(check, g, thresholds);
            let valid = d.answer.as_deref().is_some_and(|a| st.answer(a).is_some());
            if valid {
                facts.insert(
                    step.clone(),
                    Fact::automated(d.answer.clone().unwrap_or_default()),
                );
            }
            decisions.insert(step.clone(), d);
            if valid {
                continue;
            }
        }
        decisions.entry(step.clone()).or_insert_with(|| Decision {
            answer: None,
            summary: "no automated check: an agent must answer".into(),
            evidence: serde_json::Value::Null,
        });
        if let Some(default) = &st.default {
            facts.insert(step.clone(), Fact::new(default.clone(), Source::Assumed));
            assumed.push(format!("{step} = {default}"));
            continue;
        }
        let why = decisions
            .get(&step)
            .map(|d| d.summary.clone())
            .unwrap_or_default();
        needs_agent = Some(NeedsAgent {
            runbook: rb_id,
            step: step.clone(),
            question: st.question.clone(),
            instruction: st.instruction.clone(),
            allowed: st.allowed_answers().iter().map(|s| s.to_string()).collect(),
            why,
        });
        evaluation = Some(ev);
        break;
    }

    let ev = evaluation;
    // Steps the agent answered keep what the evidence said too, for the dossier.
    if let Some(ev) = &ev {
        for entry in ev.path.iter().filter(|e| e.source == Source::Agent) {
            if let Some((_, st)) = set.step(&entry.step)
                && let Some(check) = st.check
                && !decisions.contains_key(&entry.step)
            {
                decisions.insert(entry.step.clone(), decide(check, g, thresholds));
            }
        }
    }
    let mut path = Vec::new();
    let mut redirects: Vec<String> = Vec::new();
    if let Some(ev) = &ev {
        for entry in &ev.path {
            if entry.runbook != runbook && !redirects.contains(&entry.runbook) {
                redirects.push(entry.runbook.clone());
            }
            let st = set.step(&entry.step).map(|(_, s)| s);
            let d = decisions.get(&entry.step);
            let check = st.and_then(|s| s.check);
            // Only an automated answer cost gathering time.
            let duration_ms = match check {
                Some(check) if entry.source == Source::Automated => sources_of(check)
                    .iter()
                    .filter_map(|s| g.timings.get(s.as_str()))
                    .copied()
                    .max()
                    .unwrap_or(0),
                _ => 0,
            };
            path.push(PathStep {
                runbook: entry.runbook.clone(),
                step: entry.step.clone(),
                title: st.map(|s| s.title.clone()).unwrap_or_default(),
                answer: entry.answer.clone(),
                source: entry.source.as_str().to_string(),
                summary: match (entry.source, d) {
                    (Source::Assumed, _) => format!(
                        "nobody answered: the runbook's default ({}) is assumed",
                        entry.answer
                    ),
                    // The agent's answer stands; what the evidence said is kept beside it.
                    (Source::Agent, Some(d)) if d.answer.is_some() => {
                        format!("answered by the agent (the evidence says: {})", d.summary)
                    }
                    (Source::Agent, _) => "answered by the agent".into(),
                    (Source::Automated, Some(d)) => d.summary.clone(),
                    (Source::Automated, None) => String::new(),
                },
                evidence: d
                    .map(|d| d.evidence.clone())
                    .unwrap_or(serde_json::Value::Null),
                duration_ms,
                note: st.and_then(|s| s.note.clone()),
            });
        }
    }

    // A walk that stopped to ask inside a runbook it was sent to has entered that runbook too.
    if let Some(n) = &needs_agent
        && !n.runbook.is_empty()
        && n.runbook != runbook
        && !redirects.contains(&n.runbook)
    {
        redirects.push(n.runbook.clone());
    }

    let mut findings = Vec::new();
    if let Ok(h) = &g.health
        && let server_state::CheckState::Down(why) = &h.management
    {
        findings.push(format!("the management interface is down: {why}"));
    }
    if let Ok(h) = &g.health
        && let server_state::CheckState::Down(why) = &h.database
    {
        findings.push(format!("the server's database is down: {why}"));
    }
    if let Err(e) = &g.health {
        findings.push(format!("the server's state could not be read: {e}"));
    }
    for a in &g.client_logs {
        for w in &a.warnings {
            findings.push(format!("{}: {w}", a.attachment));
        }
    }

    let (outcome, escalation) = match ev.as_ref().and_then(|e| e.ending().cloned()) {
        Some(Ending::Outcome { outcome, .. }) => (Some(outcome), None),
        Some(Ending::Escalated { level, kind }) => (
            Some("escalated".to_string()),
            Some(EscalationOut {
                level: level.to_string(),
                kind,
            }),
        ),
        Some(Ending::Redirected { runbook }) => {
            redirects.push(runbook);
            (Some("redirected".to_string()), None)
        }
        None => (None, None),
    };
    let (summary, next_action) =
        explain(set, &outcome, &escalation, &needs_agent, &path, &findings);
    Report {
        account: g.user.clone(),
        runbook: runbook.to_string(),
        outcome,
        escalation,
        redirects,
        path,
        summary,
        next_action,
        needs_agent,
        findings,
        assumed,
        duration_ms: 0,
        media_window_ms: 0,
        timings: g.timings.clone(),
    }
}

fn explain(
    set: &RunbookSet,
    outcome: &Option<String>,
    escalation: &Option<EscalationOut>,
    needs: &Option<NeedsAgent>,
    path: &[PathStep],
    findings: &[String],
) -> (String, String) {
    let deciding = path
        .iter()
        .rev()
        .find(|p| !p.summary.is_empty())
        .map(|p| p.summary.clone())
        .unwrap_or_default();
    if let Some(n) = needs {
        let mut s = format!(
            "Not decided yet: step {} needs an answer ({}).",
            n.step, n.why
        );
        if !findings.is_empty() {
            s.push_str(&format!(" Found on the way: {}.", findings.join("; ")));
        }
        let mut next = format!("Ask: {}", n.question);
        if let Some(i) = &n.instruction {
            next.push_str(&format!(" Tell the user: {i}"));
        }
        next.push_str(&format!(
            " Then re-run with --answer {}=<{}>.",
            n.step,
            n.allowed.join("|")
        ));
        return (s, next);
    }
    match (outcome.as_deref(), escalation) {
        (Some("escalated"), Some(e)) => (
            format!(
                "Escalate to {}{}: {}",
                e.level,
                e.kind
                    .as_ref()
                    .map(|k| format!(" ({})", k.replace('_', " ")))
                    .unwrap_or_default(),
                deciding
            ),
            format!(
                "Escalate the incident to {} with this report as the dossier{}.",
                e.level,
                e.kind
                    .as_ref()
                    .map(|k| format!(" (kind {k})"))
                    .unwrap_or_default()
            ),
        ),
        (Some(o), _) => {
            let def = set.iter().find_map(|r| r.outcome(o));
            let title = def
                .map(|d| d.title.clone())
                .unwrap_or_else(|| o.to_string());
            let next = match def.map(|d| d.disposition) {
                Some(runbook::Disposition::Closed) => format!("Close the incident as {o}: {}", def.map(|d| d.meaning.as_str()).unwrap_or("")),
                Some(runbook::Disposition::ClosedNotAnIssue) => format!("Close the incident as not an issue ({o}): {}", def.map(|d| d.meaning.as_str()).unwrap_or("")),
                Some(runbook::Disposition::ClosedAfterFix) => format!("Fix it, then close the incident as {o}: {}", def.map(|d| d.meaning.as_str()).unwrap_or("")),
                Some(runbook::Disposition::OutOfScope) => "Handle it with the operational-requirements procedure; close here as out_of_scope.".into(),
                _ => format!("Close the incident as {o}."),
            };
            (format!("{title}: {deciding}"), next)
        }
        (None, _) => (
            "The runbook could not be walked.".into(),
            "Work the incident by hand.".into(),
        ),
    }
}
