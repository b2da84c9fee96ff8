//! Reading incidents: the list, one incident with what comes next, its audit trail and its
//! dossier.

use crate::exit::{self, coded};
use crate::util::{Ctx, fmt_time, print_json};
use incidents::{Incident, ListFilter, Store};
use runbook::{Ending, RunbookSet, Status};
use serde_json::json;
use std::path::PathBuf;

/// `incident list`: the incidents `filter` selects, as JSON or a table.
pub(super) async fn list(ctx: &Ctx, store: &Store, filter: &ListFilter) -> anyhow::Result<u8> {
    let list = store.list(filter).await?;
    if ctx.json {
        print_json(&list)?;
    } else if list.is_empty() {
        println!("no incidents");
    } else {
        println!(
            "{:>5}  {:<16} {:<3} {:<12} {:<28} ASSIGNEE",
            "ID", "ACCOUNT", "LVL", "STATUS", "STEP / OUTCOME"
        );
        for i in &list {
            let where_ = i
                .outcome
                .clone()
                .or(i.current_step.clone())
                .unwrap_or_default();
            println!(
                "{:>5}  {:<16} {:<3} {:<12} {:<28} {}",
                i.id,
                i.account,
                i.level,
                i.status.as_str(),
                where_,
                i.assignee.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(exit::OK)
}

/// `incident audit`: the audit trail of incident `id`.
pub(super) async fn audit(ctx: &Ctx, store: &Store, id: i64) -> anyhow::Result<u8> {
    store.get(id).await?;
    let audit = store.audit(id).await?;
    if ctx.json {
        print_json(&audit)?;
    } else {
        for a in audit {
            println!(
                "{}  {:<10} {:<14} {}",
                fmt_time(&a.at),
                a.actor,
                a.action,
                a.detail
            );
        }
    }
    Ok(exit::OK)
}

/// `incident dossier`: the Markdown dossier, to standard output or to `out`.
pub(super) async fn dossier(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    id: i64,
    out: Option<PathBuf>,
) -> anyhow::Result<u8> {
    let md = crate::dossier::render(store, set, id).await?;
    match out {
        Some(path) => {
            std::fs::write(&path, &md).map_err(|e| {
                coded(
                    exit::INVALID,
                    format!("cannot write {}: {e}", path.display()),
                )
            })?;
            if !ctx.json {
                println!("dossier of incident {id} written to {}", path.display());
            }
        }
        None => print!("{md}"),
    }
    Ok(exit::OK)
}

/// After a change: the incident as JSON, or one line saying where it stands.
pub(super) async fn report_after_change(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    inc: &Incident,
) -> anyhow::Result<u8> {
    if ctx.json {
        let steps = store.steps(inc.id).await?;
        let ev = casework::evaluate(set, inc, &casework::facts_of(&steps)).ok();
        print_json(&json!({ "incident": inc, "evaluation": ev }))?;
        return Ok(exit::OK);
    }
    println!(
        "incident {} ({}, {}, {}, version {})",
        inc.id,
        inc.account,
        inc.level,
        inc.status.as_str(),
        inc.version
    );
    let steps = store.steps(inc.id).await?;
    print_next(set, inc, &casework::facts_of(&steps))?;
    Ok(exit::OK)
}

/// Where the incident stands: its outcome, the next question, or what the runbook says to do.
fn print_next(set: &RunbookSet, inc: &Incident, facts: &runbook::Facts) -> anyhow::Result<()> {
    if let Some(o) = &inc.outcome {
        println!("closed with outcome {o}");
        return Ok(());
    }
    let ev = casework::evaluate(set, inc, facts)?;
    match &ev.status {
        Status::NeedsAnswer { step, .. } => {
            if let Some((_, st)) = set.step(step) {
                println!("next: {step} ({}) — {}", st.level, st.question);
                println!("      answers: {}", st.allowed_answers().join(", "));
            }
        }
        Status::Finished(Ending::Outcome { outcome, runbook }) => {
            let title = set
                .get(runbook)
                .and_then(|r| r.outcome(outcome))
                .map(|o| o.title.clone())
                .unwrap_or_default();
            println!(
                "runbook reached outcome {outcome}: {title} — close with `dialtone incident close {}`",
                inc.id
            );
        }
        Status::Finished(Ending::Escalated { level, .. }) if *level <= casework::level_of(inc) => {
            println!(
                "escalated to {level}: waiting for the {level} team (close it with an outcome when they answer)"
            );
        }
        Status::Finished(Ending::Escalated { level, kind }) => {
            println!(
                "runbook says: escalate to {level}{} — `dialtone incident escalate {} --reason …`",
                kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default(),
                inc.id
            );
        }
        Status::Finished(Ending::Redirected { runbook }) => {
            println!("runbook says: continue with runbook {runbook}");
        }
    }
    Ok(())
}

pub(super) async fn show(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    id: i64,
) -> anyhow::Result<u8> {
    let inc = store.get(id).await?;
    let steps = store.steps(id).await?;
    let escalations = store.escalations(id).await?;
    let attachments = store.attachments(id).await?;
    let notes = store.notes(id).await?;
    let facts = casework::facts_of(&steps);
    let ev = casework::evaluate(set, &inc, &facts).ok();
    if ctx.json {
        print_json(&json!({
            "incident": inc, "steps": steps, "escalations": escalations,
            "attachments": attachments, "notes": notes, "evaluation": ev,
        }))?;
        return Ok(exit::OK);
    }
    println!("Incident {} — {} ({})", inc.id, inc.account, inc.runbook);
    println!("  reporter:    {}", inc.reporter);
    println!("  description: {}", inc.description);
    println!(
        "  level {} · status {} · assignee {} · version {}",
        inc.level,
        inc.status.as_str(),
        inc.assignee.as_deref().unwrap_or("-"),
        inc.version
    );
    if let Some(t) = &inc.ticket_ref {
        println!("  ticket {t} (filed by the webhook receiver)");
    }
    println!(
        "  opened {} · updated {}",
        fmt_time(&inc.created_at),
        fmt_time(&inc.updated_at)
    );
    println!("\nSteps:");
    if steps.is_empty() {
        println!("  (none yet)");
    }
    for s in &steps {
        println!(
            "  {}  {:<28} = {:<22} [{}] by {}",
            fmt_time(&s.at),
            s.step,
            s.answer,
            s.source,
            s.actor
        );
        if let Some(by) = &s.superseded_by {
            println!("      replaced by a revision ({by})");
        }
        if let Some(n) = &s.note {
            println!("      note: {n}");
        }
        if !s.evidence.is_null() {
            let text = s.evidence.to_string();
            let short: String = text.chars().take(160).collect();
            println!(
                "      evidence: {short}{}",
                if text.len() > short.len() { "…" } else { "" }
            );
        }
    }
    if !escalations.is_empty() {
        println!("\nEscalations:");
        for e in &escalations {
            println!(
                "  {}  {} -> {} {}  by {}: {}",
                fmt_time(&e.at),
                e.from_level,
                e.to_level,
                e.kind.as_deref().unwrap_or(""),
                e.actor,
                e.reason
            );
        }
    }
    if !notes.is_empty() {
        println!("\nNotes:");
        for n in &notes {
            println!("  {}  {}: {}", fmt_time(&n.at), n.actor, n.text);
        }
    }
    if !attachments.is_empty() {
        println!("\nAttachments:");
        for a in &attachments {
            println!(
                "  #{} {} ({} bytes, {})",
                a.id, a.name, a.size, a.content_type
            );
        }
    }
    println!();
    print_next(set, &inc, &facts)?;
    Ok(exit::OK)
}
