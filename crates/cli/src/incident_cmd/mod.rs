//! `dialtone incident …`: open, list, show, answer, escalate, close, assign, attach and work incidents.

use crate::exit::{self, coded};
use crate::util::{Ctx, fmt_time, parse_kv, print_json};
use anyhow::Context as _;
use clap::Subcommand;
use incidents::{Incident, ListFilter, Store};
use runbook::{Ending, Level, RunbookSet, Status};
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Open an incident for an account.
    Open {
        /// The account (SIP user) of the user who can't call.
        #[arg(long)]
        account: String,
        /// Who reported it (the user's name or phone); defaults to the account.
        #[arg(long)]
        reporter: Option<String>,
        /// What the user said.
        #[arg(long, default_value = "User can't call")]
        description: String,
        /// The runbook to follow.
        #[arg(long, default_value = "user-cant-call")]
        runbook: String,
        /// Gate answers known at opening, e.g. gate.client_error=none (repeatable).
        #[arg(long = "answer", value_parser = parse_kv)]
        answers: Vec<(String, String)>,
    },
    /// List incidents.
    List {
        #[arg(long)]
        level: Option<String>,
        /// open, waiting_user, escalated or closed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        /// Only accounts containing this text.
        #[arg(long)]
        account: Option<String>,
        /// Only incidents this agent escalated.
        #[arg(long)]
        escalated_by: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Find incidents: words in accounts, descriptions and notes; account:, reporter:, number:,
    /// outcome:, status:, from:YYYY-MM-DD, to:YYYY-MM-DD.
    Search(crate::search_cmd::SearchArgs),
    /// Show an incident: its steps, escalations, what comes next.
    Show { id: i64 },
    /// Answer a step of an incident.
    Answer {
        id: i64,
        /// The step id (e.g. l1.echo_call); defaults to the step the incident waits for.
        #[arg(long)]
        step: Option<String>,
        /// The answer (one of the step's allowed answers).
        value: String,
        #[arg(long)]
        note: Option<String>,
        /// Evidence as JSON, stored with the answer.
        #[arg(long)]
        evidence: Option<String>,
        /// Fail with a conflict unless the incident is still at this version.
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Change the answer of an earlier step: that answer and the ones after it are kept but
    /// marked replaced, and the runbook is walked again from the new answer.
    Revise {
        id: i64,
        /// The step whose answer changes (e.g. gate.client_error).
        #[arg(long)]
        step: String,
        /// The new answer.
        value: String,
        /// Why it changes (kept with the new record).
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Add an internal note (any time, by anyone following the incident).
    Note { id: i64, text: String },
    /// Escalate an incident to level 2 (with its kind) or level 3.
    Escalate {
        id: i64,
        /// l2 or l3; defaults to what the runbook says.
        #[arg(long)]
        to: Option<String>,
        /// user_configuration_check or server_status_check (level 2); defaults to the runbook's.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Close an incident with the outcome the runbook reached, or another one with --reason.
    Close {
        id: i64,
        #[arg(long)]
        outcome: Option<String>,
        /// Why another outcome than the one the runbook reached (required then).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Assign an incident (no name: unassign).
    Assign { id: i64, assignee: Option<String> },
    /// Set an incident's status: open, waiting_user (waiting for the user) or escalated.
    Status { id: i64, status: String },
    /// Attach a client log or a capture to an incident.
    Attach {
        id: i64,
        file: PathBuf,
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        /// Largest file accepted, in bytes (the web app's default upload limit).
        #[arg(long, env = "DIALTONE_MAX_UPLOAD", default_value_t = 20 * 1024 * 1024)]
        max_size: u64,
    },
    /// Show the audit trail of an incident.
    Audit { id: i64 },
    /// The escalation dossier: path, evidence, escalations, analysed attachments (Markdown).
    Dossier {
        id: i64,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Walk an incident interactively: the question, what to tell the user, the choices, and
    /// (with a configuration) the step's automated check.
    Work {
        id: i64,
        /// Server configuration: offers "c" to run a step's automated check.
        #[arg(long, env = "DIALTONE_CONFIG")]
        config: Option<PathBuf>,
    },
}

pub async fn run(ctx: &Ctx, cmd: IncidentCmd) -> anyhow::Result<u8> {
    let set = ctx.runbooks()?;
    let store = ctx.store().await?;
    match cmd {
        IncidentCmd::Search(args) => crate::search_cmd::search(ctx, &store, args).await,
        IncidentCmd::Open {
            account,
            reporter,
            description,
            runbook,
            answers,
        } => {
            open(
                ctx,
                &store,
                &set,
                account,
                reporter,
                description,
                runbook,
                answers,
            )
            .await
        }
        IncidentCmd::List {
            level,
            status,
            assignee,
            account,
            escalated_by,
            limit,
        } => {
            let filter = ListFilter {
                level,
                status: status.map(|s| s.parse()).transpose()?,
                assignee,
                account_contains: account,
                escalated_by,
                limit: Some(limit),
            };
            let list = store.list(&filter).await?;
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
        IncidentCmd::Show { id } => show(ctx, &store, &set, id).await,
        IncidentCmd::Answer {
            id,
            step,
            value,
            note,
            evidence,
            expect_version,
        } => {
            let evidence = match evidence {
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    coded(exit::INVALID, format!("--evidence is not valid JSON: {e}"))
                })?,
                None => json!(null),
            };
            let inc = answer(
                &store,
                &set,
                id,
                step,
                &value,
                "agent",
                evidence,
                note,
                expect_version,
                &ctx.actor,
            )
            .await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Escalate {
            id,
            to,
            kind,
            reason,
            expect_version,
        } => {
            let inc = escalate(
                &store,
                &set,
                id,
                to,
                kind,
                reason,
                expect_version,
                &ctx.actor,
            )
            .await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Close {
            id,
            outcome,
            reason,
            note,
            expect_version,
        } => {
            let req = casework::actions::Close {
                version: expect_version,
                outcome,
                reason,
                note,
            };
            let inc = act(&store, id, &ctx.actor, |a, case| {
                casework::actions::close(&set, a, case, req)
            })
            .await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Revise {
            id,
            step,
            value,
            note,
            expect_version,
        } => {
            let req = casework::actions::Revise {
                version: expect_version,
                step,
                answer: value,
                note,
            };
            let inc = act(&store, id, &ctx.actor, |a, case| {
                casework::actions::revise(&set, a, case, req)
            })
            .await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Note { id, text } => {
            let inc = act(&store, id, &ctx.actor, |a, case| {
                casework::actions::note(a, case, &text)
            })
            .await?;
            if ctx.json {
                print_json(&store.notes(inc.id).await?)?;
            } else {
                println!("note added to incident {id}");
            }
            Ok(exit::OK)
        }
        IncidentCmd::Assign { id, assignee } => {
            let known = match assignee.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                // The CLI may hand an incident to anybody the team knows by name; with web
                // users, a name must be one of them.
                Some(a) => store.users().await?.is_empty() || store.user(a).await?.is_some(),
                None => true,
            };
            let inc = act(&store, id, &ctx.actor, |a, case| {
                casework::actions::assign(a, case, None, assignee, |_| known)
            })
            .await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Status { id, status } => {
            let inc = act(&store, id, &ctx.actor, |a, case| {
                casework::actions::status(a, case, None, &status)
            })
            .await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Attach {
            id,
            file,
            content_type,
            max_size,
        } => {
            let reader = open_bounded(&file, max_size).await?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".into());
            // Streamed in chunks: memory stays flat whatever the file's size.
            let att = store
                .add_attachment_streamed(id, &name, &content_type, reader, max_size, &ctx.actor)
                .await?;
            if ctx.json {
                print_json(&att)?;
            } else {
                println!(
                    "attached {} ({} bytes) to incident {id} as attachment {}",
                    name, att.size, att.id
                );
            }
            Ok(exit::OK)
        }
        IncidentCmd::Audit { id } => {
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
        IncidentCmd::Work { id, config } => {
            let diag = match crate::config::locate(config.as_deref()) {
                Some(path) => {
                    let cfg = crate::config::load_file(&path)?;
                    Some(
                        diagnosis::Diagnoser::from_config(cfg, std::sync::Arc::new(set.clone()))
                            .map_err(|e| coded(exit::CONFIG, e.to_string()))?,
                    )
                }
                None => None,
            };
            work(ctx, &store, &set, id, diag.as_ref()).await
        }
        IncidentCmd::Dossier { id, out } => {
            let md = crate::dossier::render(&store, &set, id).await?;
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
    }
}

/// The CLI's operator works every level: the CLI runs on the server, for its administrators.
fn cli_actor(name: &str) -> casework::Actor<'_> {
    casework::Actor {
        name,
        level: Level::L3,
    }
}

/// A refusal of the rule book as an exit code and its message.
fn refused(r: casework::Refusal) -> anyhow::Error {
    // Exit 4 means "someone else changed it first"; a request the runbook does not allow now
    // (a step it does not ask, a closed incident, no outcome yet) is invalid input.
    let code = match r.kind() {
        casework::RefusalKind::NotFound => exit::NOT_FOUND,
        casework::RefusalKind::Conflict if r.current_version().is_some() => exit::CONFLICT,
        _ => exit::INVALID,
    };
    coded(code, r.to_string())
}

/// Loads the incident and its step records, plans the action with the rule book (`casework`)
/// and writes what it decided.
async fn act(
    store: &Store,
    id: i64,
    actor: &str,
    plan: impl FnOnce(
        &casework::Actor<'_>,
        casework::Case<'_>,
    ) -> Result<incidents::Write, casework::Refusal>,
) -> anyhow::Result<Incident> {
    let inc = store.get(id).await?;
    let steps = store.steps(id).await?;
    let write = plan(
        &cli_actor(actor),
        casework::Case {
            incident: &inc,
            steps: &steps,
        },
    )
    .map_err(refused)?;
    Ok(store.apply(id, inc.version, write, actor).await?)
}

#[allow(clippy::too_many_arguments)]
async fn open(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    account: String,
    reporter: Option<String>,
    description: String,
    runbook_id: String,
    answers: Vec<(String, String)>,
) -> anyhow::Result<u8> {
    let write = casework::actions::open(
        set,
        &cli_actor(&ctx.actor),
        casework::actions::Open {
            account,
            reporter: reporter.unwrap_or_default(),
            description,
            runbook: Some(runbook_id),
            gate: answers,
        },
    )
    .map_err(refused)?;
    // The incident and its gate answers are written in one transaction (a killed open leaves
    // nothing half-done).
    let inc = store.apply(0, 0, write, &ctx.actor).await?;
    report_after_change(ctx, store, set, &inc).await
}

/// Opens a file of at most `limit` bytes for streaming: the size is checked before reading (the
/// store refuses it too if it grows past the limit meanwhile).
async fn open_bounded(file: &std::path::Path, limit: u64) -> anyhow::Result<tokio::fs::File> {
    let cannot = |e: std::io::Error| {
        coded(
            exit::NOT_FOUND,
            format!("cannot read {}: {e}", file.display()),
        )
    };
    let f = tokio::fs::File::open(file).await.map_err(cannot)?;
    let size = f.metadata().await.map_err(cannot)?.len();
    if size > limit {
        return Err(coded(
            exit::INVALID,
            format!(
                "{} is larger than the attachment limit of {limit} bytes (--max-size or \
                 DIALTONE_MAX_UPLOAD to change it)",
                file.display()
            ),
        ));
    }
    Ok(f)
}

/// Records one answer, to the step the runbook asks now, and moves the incident on.
#[allow(clippy::too_many_arguments)]
pub async fn answer(
    store: &Store,
    set: &RunbookSet,
    id: i64,
    step: Option<String>,
    value: &str,
    source: &str,
    evidence: serde_json::Value,
    note: Option<String>,
    expect_version: Option<i64>,
    actor: &str,
) -> anyhow::Result<Incident> {
    let req = casework::actions::Answer {
        version: expect_version,
        step,
        answer: value.to_owned(),
        source: source.parse().unwrap_or(runbook::Source::Agent),
        evidence,
        note,
        proposed: None,
    };
    act(store, id, actor, |a, case| {
        casework::actions::answer(set, a, case, req)
    })
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn escalate(
    store: &Store,
    set: &RunbookSet,
    id: i64,
    to: Option<String>,
    kind: Option<String>,
    reason: String,
    expect_version: Option<i64>,
    actor: &str,
) -> anyhow::Result<Incident> {
    let req = casework::actions::Escalate {
        version: expect_version,
        to,
        kind,
        reason,
    };
    act(store, id, actor, |a, case| {
        casework::actions::escalate(set, a, case, req)
    })
    .await
}

/// After a change: the incident as JSON, or one line saying where it stands.
async fn report_after_change(
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

async fn show(ctx: &Ctx, store: &Store, set: &RunbookSet, id: i64) -> anyhow::Result<u8> {
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

/// The interactive walk. Plain line prompts, so it works in any terminal and through a pipe.
async fn work(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    id: i64,
    diag: Option<&diagnosis::Diagnoser>,
) -> anyhow::Result<u8> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    loop {
        let inc = store.get(id).await?;
        if inc.status == incidents::Status::Closed {
            println!(
                "Incident {id} is closed with outcome {}.",
                inc.outcome.as_deref().unwrap_or("?")
            );
            return Ok(exit::OK);
        }
        let steps = store.steps(id).await?;
        let ev = casework::evaluate(set, &inc, &casework::facts_of(&steps))?;
        match ev.status.clone() {
            Status::NeedsAnswer { step, .. } => {
                let (_, st) = set
                    .step(&step)
                    .context("the runbook names a step it does not define")?;
                println!("\n[{}] {} — {}", st.level, st.id, st.title);
                println!("Q: {}", st.question);
                if let Some(i) = &st.instruction {
                    println!("Tell the user: {i}");
                }
                if let Some(n) = &st.note {
                    println!("Note: {n}");
                }
                for (i, a) in st.answers.iter().enumerate() {
                    let to = crate::runbook_cmd::describe_target(&a.target);
                    println!("  {}) {:<24} {}  {}", i + 1, a.value, a.label, to);
                }
                let can_check = diag.is_some() && st.check.is_some();
                if can_check {
                    print!("Answer (number or value, c to run the automated check, q to stop): ");
                } else {
                    print!("Answer (number or value, q to stop): ");
                }
                out.flush()?;
                let Some(line) = lines.next().transpose()? else {
                    return Ok(exit::OK);
                };
                let line = line.trim().to_string();
                if line == "q" || line.is_empty() && st.answers.is_empty() {
                    return Ok(exit::OK);
                }
                if line == "c"
                    && let Some(d) = diag.filter(|_| can_check)
                {
                    println!(
                        "Running the automated check of {step} for {} …",
                        inc.account
                    );
                    let (decision, ms) = d
                        .check_step(&inc.account, &step, Vec::new())
                        .await
                        .map_err(|e| coded(exit::INVALID, e.to_string()))?;
                    println!("Found ({ms} ms): {}", decision.summary);
                    let Some(value) = decision.answer.clone() else {
                        println!("Not conclusive: answer from what the user tells you.");
                        continue;
                    };
                    print!("Record \"{value}\" from the check? [Y/n] ");
                    out.flush()?;
                    let yes = lines
                        .next()
                        .transpose()?
                        .is_none_or(|l| !l.trim().eq_ignore_ascii_case("n"));
                    if yes {
                        let evidence = json!({"summary": decision.summary, "duration_ms": ms, "data": decision.evidence});
                        let note = Some(format!("automated check: {}", decision.summary));
                        match answer(
                            store,
                            set,
                            id,
                            Some(step),
                            &value,
                            "automated",
                            evidence,
                            note,
                            Some(inc.version),
                            &ctx.actor,
                        )
                        .await
                        {
                            Ok(_) => {}
                            Err(e) if exit::code_for(&e) == exit::CONFLICT => {
                                println!(
                                    "Someone else changed this incident meanwhile; showing it again."
                                );
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    continue;
                }
                let value = match line.parse::<usize>() {
                    Ok(n) if n >= 1 && n <= st.answers.len() => st.answers[n - 1].value.clone(),
                    _ => line,
                };
                if st.answer(&value).is_none() {
                    println!("{value:?} is not one of the answers; try again.");
                    continue;
                }
                print!("Note (optional): ");
                out.flush()?;
                let note = lines
                    .next()
                    .transpose()?
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty());
                match answer(
                    store,
                    set,
                    id,
                    Some(step),
                    &value,
                    "agent",
                    json!(null),
                    note,
                    Some(inc.version),
                    &ctx.actor,
                )
                .await
                {
                    Ok(_) => {}
                    Err(e) if exit::code_for(&e) == exit::CONFLICT => {
                        println!("Someone else changed this incident meanwhile; showing it again.");
                    }
                    Err(e) => return Err(e),
                }
            }
            Status::Finished(Ending::Outcome { outcome, runbook }) => {
                let def = set.get(&runbook).and_then(|r| r.outcome(&outcome));
                println!(
                    "\nOutcome: {outcome} — {}",
                    def.map(|d| d.meaning.as_str()).unwrap_or("")
                );
                print!("Close the incident with this outcome? [y/N] ");
                out.flush()?;
                let yes = lines
                    .next()
                    .transpose()?
                    .is_some_and(|l| l.trim().eq_ignore_ascii_case("y"));
                if !yes {
                    return Ok(exit::OK);
                }
                let req = casework::actions::Close {
                    version: Some(inc.version),
                    outcome: Some(outcome),
                    reason: None,
                    note: None,
                };
                act(store, id, &ctx.actor, |a, case| {
                    casework::actions::close(set, a, case, req)
                })
                .await?;
                println!("Closed.");
                return Ok(exit::OK);
            }
            Status::Finished(Ending::Escalated { level, kind }) => {
                println!(
                    "\nThe runbook says: escalate to {level}{}.",
                    kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default()
                );
                print!("Reason (empty to stop without escalating): ");
                out.flush()?;
                let reason = lines
                    .next()
                    .transpose()?
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                if reason.is_empty() {
                    return Ok(exit::OK);
                }
                escalate(
                    store,
                    set,
                    id,
                    Some(level.to_string()),
                    kind,
                    reason,
                    Some(inc.version),
                    &ctx.actor,
                )
                .await?;
                println!("Escalated to {level}. The {level} engineer continues from here.");
                return Ok(exit::OK);
            }
            Status::Finished(Ending::Redirected { runbook }) => {
                println!("\nThe runbook says: continue with runbook {runbook}.");
                return Ok(exit::OK);
            }
        }
    }
}
