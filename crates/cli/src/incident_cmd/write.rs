//! Changing incidents: each change is planned by the rule book (`casework`) and written in one
//! store transaction; open, answer, revise, escalate, close, note, assign, status and attach.

use super::IncidentCmd;
use super::show::report_after_change;
use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};
use casework::actions::{Action, Answer, Close, Escalate, Revise};
use incidents::{Incident, Store};
use runbook::{Level, RunbookSet};
use serde_json::json;
use std::path::Path;

/// Runs one of the commands that change an incident through the rule book, then says where it
/// stands.
pub(super) async fn run(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    cmd: IncidentCmd,
) -> anyhow::Result<u8> {
    let actor = ctx.actor.as_str();
    let action = match cmd {
        IncidentCmd::Answer {
            id,
            step,
            value,
            note,
            evidence,
            expect_version,
        } => {
            let evidence = parse_evidence(evidence)?;
            let a = answer_of(step, &value, "agent", evidence, note, expect_version);
            (id, Action::Answer(a))
        }
        IncidentCmd::Escalate {
            id,
            to,
            kind,
            reason,
            expect_version,
        } => {
            let e = Escalate {
                version: expect_version,
                to,
                kind,
                reason,
            };
            (id, Action::Escalate(e))
        }
        IncidentCmd::Close {
            id,
            outcome,
            reason,
            note,
            expect_version,
        } => {
            let c = Close {
                version: expect_version,
                outcome,
                reason,
                note,
            };
            (id, Action::Close(c))
        }
        IncidentCmd::Revise {
            id,
            step,
            value,
            note,
            expect_version,
        } => {
            let r = Revise {
                version: expect_version,
                step,
                answer: value,
                note,
            };
            (id, Action::Revise(r))
        }
        IncidentCmd::Status { id, status } => (
            id,
            Action::Status {
                version: None,
                status,
            },
        ),
        IncidentCmd::Assign { id, assignee } => {
            let inc = assign(store, id, assignee, actor).await?;
            return report_after_change(ctx, store, set, &inc).await;
        }
        IncidentCmd::Search(_)
        | IncidentCmd::Open { .. }
        | IncidentCmd::Note { .. }
        | IncidentCmd::Attach { .. }
        | IncidentCmd::List { .. }
        | IncidentCmd::Show { .. }
        | IncidentCmd::Audit { .. }
        | IncidentCmd::Dossier { .. }
        | IncidentCmd::Work { .. } => {
            unreachable!("incident_cmd::run runs these itself")
        }
    };
    let inc = perform(store, set, action.0, actor, action.1).await?;
    report_after_change(ctx, store, set, &inc).await
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
pub(super) async fn act(
    store: &Store,
    id: i64,
    actor: &str,
    plan: impl FnOnce(
        &casework::Actor<'_>,
        casework::Case<'_>,
    ) -> Result<incidents::Write, casework::Refusal>,
) -> anyhow::Result<Incident> {
    // The steps before the incident, as the web reads them (see web's ops::act).
    let steps = store.steps(id).await?;
    let inc = store.get(id).await?;
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

/// `--evidence`: JSON, stored with the answer.
fn parse_evidence(text: Option<String>) -> anyhow::Result<serde_json::Value> {
    Ok(match text {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| coded(exit::INVALID, format!("--evidence is not valid JSON: {e}")))?,
        None => json!(null),
    })
}

/// Opens a file of at most `limit` bytes for streaming: the size is checked before reading (the
/// store refuses it too if it grows past the limit meanwhile).
async fn open_bounded(file: &Path, limit: u64) -> anyhow::Result<tokio::fs::File> {
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
/// An answer to `step` (`None`: the step asked now) from `source` ("agent", "automated").
pub fn answer_of(
    step: Option<String>,
    value: &str,
    source: &str,
    evidence: serde_json::Value,
    note: Option<String>,
    expect_version: Option<i64>,
) -> Answer {
    Answer {
        version: expect_version,
        step,
        answer: value.to_owned(),
        source: source.parse().unwrap_or(runbook::Source::Agent),
        evidence,
        note,
        proposed: None,
    }
}

/// Plans `action` on incident `id` with the rule book and writes it.
pub async fn perform(
    store: &Store,
    set: &RunbookSet,
    id: i64,
    actor: &str,
    action: Action,
) -> anyhow::Result<Incident> {
    act(store, id, actor, |a, case| {
        casework::actions::plan(set, a, case, action)
    })
    .await
}

/// Opens an incident with its gate answers, in one transaction (a killed open leaves nothing
/// half-done).
pub(super) async fn open(
    store: &Store,
    set: &RunbookSet,
    req: casework::actions::Open,
    actor: &str,
) -> anyhow::Result<Incident> {
    let write = casework::actions::open(set, &cli_actor(actor), req).map_err(refused)?;
    Ok(store.apply(0, 0, write, actor).await?)
}

/// Adds an internal note (any time, closed incidents included).
pub(super) async fn note(
    ctx: &Ctx,
    store: &Store,
    set: &RunbookSet,
    id: i64,
    text: &str,
) -> anyhow::Result<u8> {
    let note = Action::Note(text.to_owned());
    let inc = perform(store, set, id, &ctx.actor, note).await?;
    if ctx.json {
        print_json(&store.notes(inc.id).await?)?;
    } else {
        println!("note added to incident {id}");
    }
    Ok(exit::OK)
}

/// Gives the incident to `assignee` (`None`: unassigns it).
async fn assign(
    store: &Store,
    id: i64,
    assignee: Option<String>,
    actor: &str,
) -> anyhow::Result<Incident> {
    let known = match assignee.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        // The CLI may hand an incident to anybody the team knows by name; with web
        // users, a name must be one of them.
        Some(a) => store.users().await?.is_empty() || store.user(a).await?.is_some(),
        None => true,
    };
    act(store, id, actor, |a, case| {
        casework::actions::assign(a, case, None, assignee, |_| known)
    })
    .await
}

/// Attaches `file`, streamed in chunks: memory stays flat whatever the file's size.
pub(super) async fn attach(
    ctx: &Ctx,
    store: &Store,
    id: i64,
    file: &Path,
    content_type: &str,
    max_size: u64,
) -> anyhow::Result<u8> {
    let reader = open_bounded(file, max_size).await?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "attachment".into());
    let att = store
        .add_attachment_streamed(id, &name, content_type, reader, max_size, &ctx.actor)
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
