//! `dialtone diagnose` and `dialtone sweep`: the automated walk of "User can't call" for one
//! account, and a look at every account of the server at once.

use crate::exit::{self, coded};
use crate::util::{Ctx, parse_kv, print_json};
use anyhow::Context as _;
use clap::Args;
use diagnosis::{Diagnoser, Report};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    /// The account (SIP user) of the user who can't call.
    pub account: String,
    /// The configuration file (server, management interface, probe accounts).
    #[arg(long, env = "DIALTONE_CONFIG")]
    pub config: Option<PathBuf>,
    /// An answer only a person can give, e.g. gate.client_error=none (repeatable).
    #[arg(long = "answer", value_parser = parse_kv)]
    pub answers: Vec<(String, String)>,
    /// Watch this long for a fresh REGISTER while the user forces a reconnection (e.g. 60s).
    #[arg(long, value_parser = parse_duration)]
    pub watch: Option<std::time::Duration>,
    /// Record every step and its evidence into this incident (its attachments are analysed too).
    #[arg(long)]
    pub incident: Option<i64>,
    /// A client log or capture to analyse for the client-logs step (repeatable).
    #[arg(long = "attach")]
    pub attach: Vec<PathBuf>,
    /// The runbook to walk.
    #[arg(long, default_value = "user-cant-call")]
    pub runbook: String,
    /// Judge the evidence as of this time (RFC 3339), e.g. when a file export was taken.
    #[arg(long)]
    pub as_of: Option<String>,
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[arg(long, env = "DIALTONE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print every account found, not only counts and the first 20 of each kind.
    #[arg(long)]
    pub all: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    diagnosis::config::parse_duration(s)
}

pub async fn diagnose(ctx: &Ctx, args: DiagnoseArgs) -> anyhow::Result<u8> {
    let cfg = crate::config::load(args.config.as_deref())?;
    let set = Arc::new(ctx.runbooks()?);
    let diag =
        Diagnoser::from_config(cfg, set.clone()).map_err(|e| coded(exit::CONFIG, e.to_string()))?;
    let mut attachments: Vec<(String, PathBuf)> = Vec::new();
    for p in &args.attach {
        if !p.exists() {
            return Err(coded(
                exit::NOT_FOUND,
                format!("cannot read {}: no such file", p.display()),
            ));
        }
        attachments.push((
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            p.clone(),
        ));
    }
    // The incident's attachments are written to a private temporary directory for analysis.
    let tmp = tempfile::tempdir().context("while creating a temporary directory")?;
    let store = match args.incident {
        Some(id) => {
            let store = ctx.store().await?;
            let inc = store.get(id).await?;
            if inc.account != args.account {
                return Err(coded(
                    exit::INVALID,
                    format!(
                        "incident {id} is about account {}, not {}",
                        inc.account, args.account
                    ),
                ));
            }
            let mut stored = Vec::new();
            for a in store.attachments(id).await? {
                stored.push(store.attachment(a.id).await?);
            }
            let items = stored
                .iter()
                .map(|(meta, bytes)| (meta.name.as_str(), bytes.as_slice()));
            attachments.extend(
                crate::util::write_attachments(tmp.path(), items)
                    .context("while writing an attachment for analysis")?,
            );
            Some((store, id))
        }
        None => None,
    };
    let at = match &args.as_of {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .map_err(|e| {
                    coded(
                        exit::INVALID,
                        format!("--as-of {t:?}: {e} (use RFC 3339, e.g. 2026-11-26T04:30:00Z)"),
                    )
                })?
                .to_utc(),
        ),
    };
    let req = diagnosis::Request {
        at,
        account: args.account.clone(),
        runbook: args.runbook.clone(),
        answers: args.answers.clone(),
        watch: args.watch,
        since: None,
        attachments,
    };
    if !ctx.json {
        eprintln!(
            "diagnosing {} against {} …",
            args.account,
            diag.state().describe()
        );
    }
    let report = diag.diagnose(&req).await.map_err(|e| match e {
        diagnosis::Error::UnknownRunbook(_) | diagnosis::Error::UnknownStep(_) => {
            coded(exit::NOT_FOUND, e.to_string())
        }
        other => coded(exit::INVALID, other.to_string()),
    })?;
    if let Some((store, id)) = &store {
        record(store, &set, *id, &report, &ctx.actor).await?;
    }
    if ctx.json {
        print_json(&report)?;
    } else {
        print_report(&report);
        if let Some((_, id)) = store {
            println!("\nRecorded into incident {id}.");
        }
    }
    Ok(exit::OK)
}

/// Records the report's path into the incident: each step not yet answered there, with its
/// evidence and source. Answers already recorded by people are left as they are.
async fn record(
    store: &incidents::Store,
    set: &runbook::RunbookSet,
    id: i64,
    report: &Report,
    actor: &str,
) -> anyhow::Result<()> {
    let existing = store.steps(id).await?;
    for p in &report.path {
        if existing.iter().any(|s| s.step == p.step) {
            continue;
        }
        let inc = store.get(id).await?;
        let evidence =
            json!({ "summary": p.summary, "duration_ms": p.duration_ms, "data": p.evidence });
        let note = Some(format!("dialtone diagnose: {}", p.summary));
        let answer = crate::incident_cmd::answer_of(
            Some(p.step.clone()),
            &p.answer,
            &p.source,
            evidence,
            note,
            Some(inc.version),
        );
        let action = casework::actions::Action::Answer(answer);
        crate::incident_cmd::perform(store, set, id, actor, action)
            .await
            .with_context(|| format!("while recording step {} into incident {id}", p.step))?;
    }
    Ok(())
}

pub fn print_report(r: &Report) {
    let verdict = match (&r.outcome, &r.escalation) {
        (Some(o), Some(e)) if o == "escalated" => format!(
            "ESCALATE to {}{}",
            e.level,
            e.kind
                .as_ref()
                .map(|k| format!(" ({k})"))
                .unwrap_or_default()
        ),
        (Some(o), _) => o.to_uppercase().replace('_', " "),
        (None, _) => "NEEDS AN AGENT".into(),
    };
    println!("\n{verdict}\n{}\n", r.summary);
    println!(
        "Path ({}{}):",
        r.runbook,
        if r.redirects.is_empty() {
            String::new()
        } else {
            format!(" → {}", r.redirects.join(" → "))
        }
    );
    for p in &r.path {
        println!(
            "  {:<30} {:<22} [{:<9}] {:>5} ms  {}",
            p.step, p.answer, p.source, p.duration_ms, p.summary
        );
        if let Some(n) = &p.note
            && n.starts_with("(gap)")
        {
            println!("  {:<30} note: {n}", "");
        }
    }
    if let Some(n) = &r.needs_agent {
        println!("  {:<30} {:<22} [waiting]        {}", n.step, "?", n.why);
    }
    if !r.findings.is_empty() {
        println!("\nAlso found:");
        for f in &r.findings {
            println!("  - {f}");
        }
    }
    if !r.assumed.is_empty() {
        println!("\nAssumed (nobody answered): {}", r.assumed.join(", "));
    }
    println!("\nNext: {}", r.next_action);
    println!(
        "\n({} ms in all, of which {} ms sending audio to the echo service)",
        r.duration_ms, r.media_window_ms
    );
}

pub async fn sweep(ctx: &Ctx, args: SweepArgs) -> anyhow::Result<u8> {
    let cfg = crate::config::load(args.config.as_deref())?;
    let state = diagnosis::open_state(&cfg).map_err(|e| coded(exit::CONFIG, e.to_string()))?;
    let bar = if ctx.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    bar.set_message(format!("reading every account from {}", state.describe()));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    let start = std::time::Instant::now();
    let (accounts, trunks) = tokio::join!(state.all_accounts(), state.trunks());
    let accounts =
        accounts.map_err(|e| coded(exit::STORAGE, format!("cannot read the accounts: {e}")))?;
    bar.finish_and_clear();
    let pb = if ctx.json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(accounts.len() as u64)
    };
    let mut never = Vec::new();
    let mut not_now = Vec::new();
    let mut by_number: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    // dialtone's own probe accounts register only while it probes: not users to worry about.
    let probe_accounts: Vec<&str> = cfg
        .probe
        .iter()
        .flat_map(|p| std::iter::once(p.user.as_str()).chain(p.peer_user.as_deref()))
        .collect();
    for (i, a) in accounts.iter().enumerate() {
        if probe_accounts.contains(&a.user.as_str()) {
        } else if !a.ever_registered {
            never.push(a.user.as_str());
        } else if !a.registered {
            not_now.push(a.user.as_str());
        }
        for n in &a.numbers {
            by_number
                .entry(n.number.as_str())
                .or_default()
                .push(a.user.as_str());
        }
        if i % 4096 == 0 {
            pb.set_position(i as u64);
        }
    }
    pb.finish_and_clear();
    let shared: Vec<_> = by_number
        .into_iter()
        .filter(|(_, users)| users.len() > 1)
        .collect();
    let (trunks_down, trunk_error): (Vec<_>, Option<String>) = match &trunks {
        Ok(t) => (
            t.iter()
                .filter(|t| !t.is_up() && !t.state_unknown())
                .map(|t| t.name.clone())
                .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let elapsed = start.elapsed();
    let problems = never.len() + not_now.len() + shared.len() + trunks_down.len();
    if ctx.json {
        print_json(&json!({
            "accounts": accounts.len(),
            "never_registered": never,
            "not_registered_now": not_now,
            "shared_numbers": shared.iter().map(|(n, u)| json!({"number": n, "accounts": u})).collect::<Vec<_>>(),
            "trunks_down": trunks_down,
            "trunks_error": trunk_error,
            "duration_ms": elapsed.as_millis() as u64,
        }))?;
    } else {
        let show = |label: &str, list: &[&str]| {
            println!("{label}: {}", list.len());
            let n = if args.all {
                list.len()
            } else {
                list.len().min(20)
            };
            if n > 0 {
                println!(
                    "  {}{}",
                    list[..n].join(", "),
                    if n < list.len() { ", …" } else { "" }
                );
            }
        };
        println!(
            "{} accounts read in {} ms from {}",
            accounts.len(),
            elapsed.as_millis(),
            state.describe()
        );
        show("never registered", &never);
        show("not registered now", &not_now);
        println!(
            "virtual numbers shared by several accounts: {}",
            shared.len()
        );
        for (n, users) in shared.iter().take(if args.all { usize::MAX } else { 20 }) {
            println!("  {n}: {}", users.join(", "));
        }
        match trunk_error {
            Some(e) => println!("trunks: could not be read ({e})"),
            None => println!(
                "trunks down: {}",
                if trunks_down.is_empty() {
                    "none".into()
                } else {
                    trunks_down.join(", ")
                }
            ),
        }
    }
    Ok(if problems == 0 {
        exit::OK
    } else {
        exit::FINDING
    })
}
