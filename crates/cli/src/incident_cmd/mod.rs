//! `dialtone incident …`: open, list, show, answer, escalate, close, assign, attach and work incidents.

mod args;
mod show;
mod work;
mod write;

pub use args::IncidentCmd;
pub use write::{answer_of, perform};

use crate::exit::{self, coded};
use crate::util::Ctx;
use incidents::ListFilter;

pub async fn run(ctx: &Ctx, cmd: IncidentCmd) -> anyhow::Result<u8> {
    let set = ctx.runbooks()?;
    let store = ctx.store().await?;
    match cmd {
        IncidentCmd::Search(args) => crate::search_cmd::search(ctx, &store, args).await,
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
            show::list(ctx, &store, &filter).await
        }
        IncidentCmd::Open {
            account,
            reporter,
            description,
            runbook,
            answers,
        } => {
            let req = casework::actions::Open {
                account,
                reporter: reporter.unwrap_or_default(),
                description,
                runbook: Some(runbook),
                gate: answers,
            };
            let inc = write::open(&store, &set, req, &ctx.actor).await?;
            show::report_after_change(ctx, &store, &set, &inc).await
        }
        IncidentCmd::Note { id, text } => write::note(ctx, &store, &set, id, &text).await,
        IncidentCmd::Attach {
            id,
            file,
            content_type,
            max_size,
        } => write::attach(ctx, &store, id, &file, &content_type, max_size).await,
        IncidentCmd::Show { id } => show::show(ctx, &store, &set, id).await,
        IncidentCmd::Audit { id } => show::audit(ctx, &store, id).await,
        IncidentCmd::Dossier { id, out } => show::dossier(ctx, &store, &set, id, out).await,
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
            work::work(ctx, &store, &set, id, diag.as_ref()).await
        }
        change => write::run(ctx, &store, &set, change).await,
    }
}
