//! The escalation dossier: everything known about an incident as one document an engineer at
//! the next level reads without opening anything else, in Markdown and in JSON (with the
//! Markdown inside). Built here only; the CLI and the web app load the records and offer it.

use std::fmt::Write as _;

use incidents::{Attachment, AuditEntry, Escalation, Incident, Note, StepRecord};
use runbook::{Ending, RunbookSet, Status};
use serde::Serialize;

use crate::{evaluate, facts_of};

/// Evidence longer than this is cut in the Markdown (the full record stays in the store).
const EVIDENCE_LIMIT: usize = 4000;

/// The records of one incident, as loaded, plus the analysis of each attachment (a Markdown
/// section, or `None` when it is not a capture or client log dialtone reads).
#[derive(Debug, Clone, Serialize)]
pub struct Dossier {
    pub incident: Incident,
    pub steps: Vec<StepRecord>,
    pub escalations: Vec<Escalation>,
    pub notes: Vec<Note>,
    pub attachments: Vec<(Attachment, Option<String>)>,
    pub audit: Vec<AuditEntry>,
}

/// Where the runbook stands for this incident, in words.
fn where_it_stands(set: &RunbookSet, d: &Dossier) -> Option<String> {
    let ev = evaluate(set, &d.incident, &facts_of(&d.steps)).ok()?;
    Some(match &ev.status {
        Status::NeedsAnswer { step, .. } => format!("waiting at {}", step_title(set, step)),
        Status::Finished(Ending::Outcome { outcome, runbook }) => format!(
            "reached the outcome {}",
            set.get(runbook)
                .and_then(|r| r.outcome(outcome))
                .map(|o| o.title.clone())
                .unwrap_or_else(|| outcome.clone())
        ),
        Status::Finished(Ending::Escalated { level, kind }) => format!(
            "escalation to {level}{}",
            kind.as_ref()
                .map(|k| format!(" ({})", k.replace('_', " ")))
                .unwrap_or_default()
        ),
        Status::Finished(Ending::Redirected { runbook }) => format!("continues in {runbook}"),
    })
}

fn step_title(set: &RunbookSet, step: &str) -> String {
    set.step(step)
        .map(|(_, s)| s.title.clone())
        .unwrap_or_else(|| step.to_owned())
}

/// The dossier as JSON: the records, where the runbook stands, and the Markdown.
pub fn json(set: &RunbookSet, d: &Dossier) -> serde_json::Value {
    serde_json::json!({
        "incident": d.incident,
        "runbook_says": where_it_stands(set, d),
        "steps": d.steps,
        "escalations": d.escalations,
        "notes": d.notes,
        "attachments": d.attachments.iter().map(|(a, _)| a).collect::<Vec<_>>(),
        "audit": d.audit,
        "markdown": markdown(set, d),
    })
}

/// The dossier as Markdown.
pub fn markdown(set: &RunbookSet, d: &Dossier) -> String {
    let inc = &d.incident;
    let mut md = String::new();
    let _ = writeln!(md, "# Incident {} — {} can't call\n", inc.id, inc.account);
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| account | `{}` |", inc.account);
    let _ = writeln!(md, "| reported by | {} |", cell(&inc.reporter));
    let _ = writeln!(md, "| description | {} |", cell(&inc.description));
    let _ = writeln!(md, "| runbook | `{}` |", inc.runbook);
    let _ = writeln!(
        md,
        "| level · status | {} · {} |",
        inc.level,
        inc.status.as_str()
    );
    if let Some(k) = &inc.escalation_kind {
        let _ = writeln!(md, "| escalation kind | {} |", k.replace('_', " "));
    }
    let _ = writeln!(
        md,
        "| assignee | {} |",
        inc.assignee.as_deref().unwrap_or("nobody")
    );
    if let Some(t) = &inc.ticket_ref {
        let _ = writeln!(md, "| ticket | {} |", cell(t));
    }
    let _ = writeln!(
        md,
        "| opened · updated | {} · {} |",
        inc.created_at.to_rfc3339(),
        inc.updated_at.to_rfc3339()
    );
    if let Some(o) = &inc.outcome {
        let _ = writeln!(md, "| outcome | `{o}` |");
    }
    if let Some(w) = where_it_stands(set, d) {
        let _ = writeln!(md, "| the runbook says | {} |", cell(&w));
    }

    let _ = writeln!(md, "\n## Path\n");
    if d.steps.is_empty() {
        let _ = writeln!(md, "No step answered yet.");
    } else {
        let _ = writeln!(
            md,
            "| # | step | answer | source | by | when | what was found |\n|---|---|---|---|---|---|---|"
        );
        for (i, s) in d.steps.iter().enumerate() {
            let found = s
                .evidence
                .get("summary")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .or_else(|| s.note.clone())
                .unwrap_or_default();
            let answer = match &s.superseded_by {
                Some(by) => format!("~~{}~~ (revised by {by})", s.answer),
                None => format!("**{}**", s.answer),
            };
            let _ = writeln!(
                md,
                "| {} | `{}` {} | {} | {} | {} | {} | {} |",
                i + 1,
                s.step,
                cell(&step_title(set, &s.step)),
                answer,
                s.source,
                s.actor,
                s.at.format("%Y-%m-%d %H:%M:%S"),
                cell(&found)
            );
        }
        let with_evidence: Vec<_> = d
            .steps
            .iter()
            .filter(|s| !s.evidence.is_null() && s.is_current())
            .collect();
        if !with_evidence.is_empty() {
            let _ = writeln!(md, "\n## Evidence\n");
            for s in with_evidence {
                let mut text = serde_json::to_string_pretty(&s.evidence).unwrap_or_default();
                if text.len() > EVIDENCE_LIMIT {
                    let cut = (0..=EVIDENCE_LIMIT)
                        .rev()
                        .find(|i| text.is_char_boundary(*i))
                        .unwrap_or(0);
                    text.truncate(cut);
                    text.push_str("\n… (cut; the full evidence is in the incident record)");
                }
                let _ = writeln!(
                    md,
                    "### `{}` = {} ({})\n\n```json\n{}\n```\n",
                    s.step, s.answer, s.source, text
                );
            }
        }
    }

    if !d.notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for n in &d.notes {
            let _ = writeln!(
                md,
                "- {} {}: {}",
                n.at.format("%Y-%m-%d %H:%M:%S"),
                n.actor,
                n.text.replace(['\n', '\r'], " ")
            );
        }
    }

    if !d.escalations.is_empty() {
        let _ = writeln!(md, "\n## Escalations\n");
        for e in &d.escalations {
            let _ = writeln!(
                md,
                "- {} {} → {}{} by {}: {}",
                e.at.format("%Y-%m-%d %H:%M:%S"),
                e.from_level,
                e.to_level,
                e.kind
                    .as_ref()
                    .map(|k| format!(" ({})", k.replace('_', " ")))
                    .unwrap_or_default(),
                e.actor,
                e.reason
            );
        }
    }

    if !d.attachments.is_empty() {
        let _ = writeln!(md, "\n## Attachments\n");
        for (a, section) in &d.attachments {
            let _ = writeln!(
                md,
                "### {} ({} bytes, {}, from {})\n",
                a.name, a.size, a.content_type, a.actor
            );
            match section {
                Some(s) => {
                    let _ = writeln!(md, "{s}");
                }
                None => {
                    let _ = writeln!(md, "Not a capture or client log dialtone can read.\n");
                }
            }
        }
    }

    let _ = writeln!(md, "\n## Audit trail\n");
    for a in &d.audit {
        let _ = writeln!(
            md,
            "- {} {} {}",
            a.at.format("%Y-%m-%d %H:%M:%S"),
            a.actor,
            a.action
        );
    }
    md
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}
