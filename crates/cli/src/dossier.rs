//! The escalation dossier: everything known about an incident, as one Markdown document an
//! engineer at the next level can read without opening anything else.

use incidents::{Incident, Store};
use runbook::RunbookSet;
use std::fmt::Write as _;

/// Evidence longer than this is cut in the dossier (the full record stays in the store).
const EVIDENCE_LIMIT: usize = 4000;

pub async fn render(store: &Store, set: &RunbookSet, inc: &Incident) -> anyhow::Result<String> {
    let steps = store.steps(inc.id).await?;
    let escalations = store.escalations(inc.id).await?;
    let attachments = store.attachments(inc.id).await?;
    let audit = store.audit(inc.id).await?;
    let ev = casework::evaluate(set, inc, &casework::facts_of(&steps)).ok();
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
    let _ = writeln!(
        md,
        "| opened · updated | {} · {} |",
        inc.created_at.to_rfc3339(),
        inc.updated_at.to_rfc3339()
    );
    if let Some(o) = &inc.outcome {
        let _ = writeln!(md, "| outcome | `{o}` |");
    }
    if let Some(ev) = &ev {
        let where_ = match &ev.status {
            runbook::Status::NeedsAnswer { step, .. } => format!("waiting at `{step}`"),
            runbook::Status::Finished(runbook::Ending::Outcome { outcome, .. }) => {
                format!("reached outcome `{outcome}`")
            }
            runbook::Status::Finished(runbook::Ending::Escalated { level, kind }) => format!(
                "escalation to {level}{}",
                kind.as_ref()
                    .map(|k| format!(" ({})", k.replace('_', " ")))
                    .unwrap_or_default()
            ),
            runbook::Status::Finished(runbook::Ending::Redirected { runbook }) => {
                format!("continues in `{runbook}`")
            }
        };
        let _ = writeln!(md, "| the runbook says | {where_} |");
    }

    let _ = writeln!(md, "\n## Path\n");
    if steps.is_empty() {
        let _ = writeln!(md, "No step answered yet.");
    } else {
        let _ = writeln!(
            md,
            "| # | step | answer | source | by | when | what was found |\n|---|---|---|---|---|---|---|"
        );
        for (i, s) in steps.iter().enumerate() {
            let title = set
                .step(&s.step)
                .map(|(_, st)| st.title.clone())
                .unwrap_or_default();
            let found = s
                .evidence
                .get("summary")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .or_else(|| s.note.clone())
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "| {} | `{}` {} | **{}** | {} | {} | {} | {} |",
                i + 1,
                s.step,
                cell(&title),
                s.answer,
                s.source,
                s.actor,
                s.at.format("%Y-%m-%d %H:%M:%S"),
                cell(&found)
            );
        }
        let with_evidence: Vec<_> = steps.iter().filter(|s| !s.evidence.is_null()).collect();
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

    if !escalations.is_empty() {
        let _ = writeln!(md, "\n## Escalations\n");
        for e in &escalations {
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

    if !attachments.is_empty() {
        let _ = writeln!(md, "\n## Attachments\n");
        for a in &attachments {
            let _ = writeln!(
                md,
                "### {} ({} bytes, {}, from {})\n",
                a.name, a.size, a.content_type, a.actor
            );
            let (_, bytes) = store.attachment(a.id).await?;
            // Client logs and captures are analysed; anything else is only listed.
            let account = inc.account.clone();
            let analysis = tokio::task::spawn_blocking(move || {
                captures::analyze_for_user(|| Ok(std::io::Cursor::new(&bytes)), &account)
            })
            .await;
            match analysis {
                Ok(Ok(an)) if an.stats.sip_messages > 0 => {
                    let _ = writeln!(md, "{}", captures::markdown_section(&an));
                }
                _ => {
                    let _ = writeln!(md, "Not a capture or client log dialtone can read.\n");
                }
            }
        }
    }

    let _ = writeln!(md, "\n## Audit trail\n");
    for a in &audit {
        let _ = writeln!(
            md,
            "- {} {} {}",
            a.at.format("%Y-%m-%d %H:%M:%S"),
            a.actor,
            a.action
        );
    }
    Ok(md)
}

/// Text safe inside a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}
