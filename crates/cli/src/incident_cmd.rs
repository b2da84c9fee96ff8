//! `dialtone incident …`: open, list, show, answer, escalate, close, assign, attach and work incidents.

use crate::exit::{self, coded};
use crate::util::{Ctx, fmt_time, parse_kv, print_json};
use anyhow::Context as _;
use clap::Subcommand;
use incidents::{Incident, ListFilter, NewEscalation, NewIncident, NewStepRecord, Store};
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
    /// Close an incident with an outcome (defaults to the outcome the runbook reached).
    Close {
        id: i64,
        #[arg(long)]
        outcome: Option<String>,
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
            limit,
        } => {
            let filter = ListFilter {
                level,
                status: status.map(|s| s.parse()).transpose()?,
                assignee,
                account_contains: account,
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
            note,
            expect_version,
        } => {
            let inc = close(&store, &set, id, outcome, note, expect_version, &ctx.actor).await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Assign { id, assignee } => {
            let inc = store.get(id).await?;
            let inc = store.assign(id, inc.version, assignee, &ctx.actor).await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Status { id, status } => {
            let status: incidents::Status = status.parse()?;
            let inc = store.get(id).await?;
            let inc = store
                .set_status(id, inc.version, status, &ctx.actor)
                .await?;
            report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Attach {
            id,
            file,
            content_type,
            max_size,
        } => {
            let bytes = read_bounded(&file, max_size)?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "attachment".into());
            let att = store
                .add_attachment(id, &name, &content_type, &bytes, &ctx.actor)
                .await?;
            if ctx.json {
                print_json(&att)?;
            } else {
                println!(
                    "attached {} ({} bytes) to incident {id} as attachment {}",
                    name,
                    bytes.len(),
                    att.id
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
            let inc = store.get(id).await?;
            let md = crate::dossier::render(&store, &set, &inc).await?;
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
    let rb = set
        .get(&runbook_id)
        .ok_or_else(|| coded(exit::NOT_FOUND, format!("unknown runbook {runbook_id:?}")))?;
    // Validate every gate answer before writing anything, so a typo opens nothing.
    for (step, value) in &answers {
        check_answer(set, step, value)?;
    }
    let reporter = reporter
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| account.clone());
    let new = NewIncident {
        account,
        reporter,
        description,
        runbook: rb.id.clone(),
        level: "L1".into(),
        current_step: Some(rb.start.clone()),
    };
    // Where each answer leads, worked out on the incident as it will be, so the incident and
    // its gate answers are written in one transaction (a killed open leaves nothing half-done).
    let now = chrono::Utc::now();
    let mut draft = Incident {
        id: 0,
        account: new.account.clone(),
        reporter: new.reporter.clone(),
        description: new.description.clone(),
        level: new.level.clone(),
        status: incidents::Status::Open,
        runbook: new.runbook.clone(),
        current_step: new.current_step.clone(),
        outcome: None,
        escalation_kind: None,
        assignee: None,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    let mut facts = runbook::Facts::new();
    let mut steps = Vec::with_capacity(answers.len());
    for (step, value) in answers {
        let (step_rb, _) = set
            .step(&step)
            .ok_or_else(|| coded(exit::NOT_FOUND, format!("unknown step {step:?}")))?;
        facts.insert(
            step.clone(),
            runbook::Fact::new(&value, runbook::Source::Agent),
        );
        let after = casework::evaluate(set, &draft, &facts)?;
        let next = after.next_step().map(str::to_string);
        draft.current_step.clone_from(&next);
        steps.push((
            NewStepRecord {
                runbook: step_rb.id.clone(),
                step,
                answer: value,
                source: "agent".to_owned(),
                evidence: json!(null),
                note: None,
            },
            next,
        ));
    }
    let inc = store
        .open_incident_with_steps(new, steps, &ctx.actor)
        .await?;
    report_after_change(ctx, store, set, &inc).await
}

/// Reads a file of at most `limit` bytes: the size is checked before reading, and the read
/// stops one byte past the limit (a file growing meanwhile), so memory stays bounded.
fn read_bounded(file: &std::path::Path, limit: u64) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let cannot = |e: std::io::Error| {
        coded(
            exit::NOT_FOUND,
            format!("cannot read {}: {e}", file.display()),
        )
    };
    let too_large = || {
        coded(
            exit::INVALID,
            format!(
                "{} is larger than the attachment limit of {limit} bytes (--max-size or \
                 DIALTONE_MAX_UPLOAD to change it)",
                file.display()
            ),
        )
    };
    let f = std::fs::File::open(file).map_err(cannot)?;
    let size = f.metadata().map_err(cannot)?.len();
    if size > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    f.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The step and its runbook, or a not-found error naming it.
fn check_answer(set: &RunbookSet, step: &str, value: &str) -> anyhow::Result<()> {
    let (_, st) = set
        .step(step)
        .ok_or_else(|| coded(exit::NOT_FOUND, format!("unknown step {step:?}")))?;
    if st.answer(value).is_none() {
        return Err(coded(
            exit::INVALID,
            format!(
                "{value:?} is not an allowed answer at step {step} (allowed: {})",
                st.allowed_answers().join(", ")
            ),
        ));
    }
    Ok(())
}

/// Records one answer and moves the incident to its next step.
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
    let inc = store.get(id).await?;
    if inc.status == incidents::Status::Closed {
        return Err(coded(exit::INVALID, format!("incident {id} is closed")));
    }
    let steps = store.steps(id).await?;
    let mut facts = casework::facts_of(&steps);
    let before = casework::evaluate(set, &inc, &facts)?;
    let step = match step {
        Some(s) => s,
        None => before.next_step().map(str::to_string).ok_or_else(|| {
            coded(
                exit::INVALID,
                format!("incident {id} waits for no answer; name the step with --step"),
            )
        })?,
    };
    check_answer(set, &step, value)?;
    let (rb, _) = set
        .step(&step)
        .ok_or_else(|| coded(exit::NOT_FOUND, format!("unknown step {step:?}")))?;
    facts.insert(
        step.clone(),
        runbook::Fact::new(value, source.parse().unwrap_or(runbook::Source::Agent)),
    );
    let after = casework::evaluate(set, &inc, &facts)?;
    let rec = NewStepRecord {
        runbook: rb.id.clone(),
        step: step.clone(),
        answer: value.to_string(),
        source: source.to_string(),
        evidence,
        note,
    };
    let version = expect_version.unwrap_or(inc.version);
    Ok(store
        .record_step(
            id,
            version,
            rec,
            after.next_step().map(str::to_string),
            actor,
        )
        .await?)
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
    let inc = store.get(id).await?;
    let steps = store.steps(id).await?;
    let facts = casework::facts_of(&steps);
    let ev = casework::evaluate(set, &inc, &facts)?;
    let (suggested_level, suggested_kind) = match ev.ending() {
        Some(Ending::Escalated { level, kind }) => (Some(*level), kind.clone()),
        _ => (None, None),
    };
    let level: Level = match to {
        Some(t) => t
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| coded(exit::INVALID, format!("--to must be l2 or l3, got {t:?}")))?,
        None => suggested_level.unwrap_or(match casework::level_of(&inc) {
            Level::L1 | Level::Gate => Level::L2,
            _ => Level::L3,
        }),
    };
    if level <= casework::level_of(&inc) {
        return Err(coded(
            exit::INVALID,
            format!("incident {id} is already at {}", inc.level),
        ));
    }
    let kind = kind.or(suggested_kind);
    let rb = set
        .get(&inc.runbook)
        .ok_or_else(|| coded(exit::NOT_FOUND, format!("unknown runbook {}", inc.runbook)))?;
    if level == Level::L2 {
        match &kind {
            None => {
                return Err(coded(
                    exit::INVALID,
                    format!(
                        "an escalation to L2 needs --kind ({})",
                        rb.entries.keys().cloned().collect::<Vec<_>>().join(" or ")
                    ),
                ));
            }
            Some(k) if !rb.entries.contains_key(k) => {
                return Err(coded(
                    exit::INVALID,
                    format!(
                        "unknown escalation kind {k:?} (expected {})",
                        rb.entries.keys().cloned().collect::<Vec<_>>().join(" or ")
                    ),
                ));
            }
            _ => {}
        }
    }
    // The next step is where the higher level picks the incident up: the walk of the incident
    // as it will be stored (its new level and kind), the same one the web app shows.
    let mut escalated = inc.clone();
    escalated.level = level.to_string();
    escalated.escalation_kind = kind.clone();
    let next = casework::evaluate(set, &escalated, &facts)?
        .next_step()
        .map(str::to_string);
    let esc = NewEscalation {
        to_level: level.to_string(),
        kind,
        reason,
    };
    Ok(store
        .escalate(id, expect_version.unwrap_or(inc.version), esc, next, actor)
        .await?)
}

pub async fn close(
    store: &Store,
    set: &RunbookSet,
    id: i64,
    outcome: Option<String>,
    note: Option<String>,
    expect_version: Option<i64>,
    actor: &str,
) -> anyhow::Result<Incident> {
    let inc = store.get(id).await?;
    let steps = store.steps(id).await?;
    let ev = casework::evaluate(set, &inc, &casework::facts_of(&steps))?;
    let outcome = match (outcome, ev.ending()) {
        (Some(o), _) => o,
        (None, Some(Ending::Outcome { outcome, .. })) => outcome.clone(),
        (None, _) => {
            return Err(coded(
                exit::INVALID,
                format!("incident {id} has reached no outcome yet; name one with --outcome"),
            ));
        }
    };
    if !set.iter().any(|rb| rb.outcome(&outcome).is_some()) {
        return Err(coded(exit::INVALID, format!("unknown outcome {outcome:?}")));
    }
    Ok(store
        .close(
            id,
            expect_version.unwrap_or(inc.version),
            &outcome,
            note,
            actor,
        )
        .await?)
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
    let facts = casework::facts_of(&steps);
    let ev = casework::evaluate(set, &inc, &facts).ok();
    if ctx.json {
        print_json(&json!({
            "incident": inc, "steps": steps, "escalations": escalations,
            "attachments": attachments, "evaluation": ev,
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
                close(
                    store,
                    set,
                    id,
                    Some(outcome),
                    None,
                    Some(inc.version),
                    &ctx.actor,
                )
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
