//! The L1 and L2 queues, by tab.

use askama::Template;
use axum::extract::{Path, Query, State};
use incidents::Incident;
use serde::Deserialize;

use super::{Nav, PageResult, html, short_time};
use crate::AppState;
use crate::auth::PageUser;
use crate::error::AppError;
use crate::{labels, ops};

struct Row {
    id: i64,
    account: String,
    reporter: String,
    /// The status's CSS class (its stored name) and its words.
    status: &'static str,
    status_words: &'static str,
    /// The current step's title; its id only in the engineers' line.
    current_step: String,
    current_step_id: String,
    /// The escalation kind's title, empty when not escalated.
    escalation_kind: String,
    assignee: String,
    updated: String,
}

impl Row {
    fn of(set: &runbook::RunbookSet, i: &Incident) -> Row {
        let step = i.current_step.clone().unwrap_or_default();
        Row {
            id: i.id,
            account: i.account.clone(),
            reporter: i.reporter.clone(),
            status: i.status.as_str(),
            status_words: labels::status(i.status),
            current_step: if step.is_empty() {
                match i.status {
                    incidents::Status::Closed => i
                        .outcome
                        .as_deref()
                        .map(|o| labels::outcome_title(set, Some(&i.runbook), o))
                        .unwrap_or_default(),
                    incidents::Status::Escalated => format!("Handed to {}", i.level),
                    _ => String::new(),
                }
            } else {
                labels::step_title(set, &step)
            },
            current_step_id: step,
            escalation_kind: match &i.escalation_kind {
                Some(k) => labels::escalation_kind(set, Some(k), &i.level),
                None => String::new(),
            },
            assignee: i.assignee.clone().unwrap_or_default(),
            updated: short_time(&i.updated_at),
        }
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    nav: Option<Nav>,
    level: String,
    tab: String,
    tabs: Vec<(&'static str, &'static str)>,
    account: String,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
pub(crate) struct QueueQuery {
    #[serde(default)]
    tab: Option<String>,
    #[serde(default)]
    account: Option<String>,
}

pub(crate) async fn queue(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(level): Path<String>,
    Query(q): Query<QueueQuery>,
) -> PageResult {
    let level = level.to_ascii_uppercase();
    if level != "L1" && level != "L2" {
        return Err(AppError::NotFound(format!("no queue {level} (L1 or L2)")).into());
    }
    user.require(
        ops::can_see_queue(&user, &level),
        &format!("the {level} queue"),
    )?;
    let default_tab = if level == "L2" { "escalated" } else { "new" };
    let tab = q.tab.unwrap_or_else(|| default_tab.to_owned());
    let account = q.account.unwrap_or_default();
    let list = ops::queue(&state, &user, &level, &tab, Some(account.clone())).await?;
    html(&QueuePage {
        nav: Some(Nav::of(&user)),
        level,
        tab,
        tabs: vec![
            ("new", "New"),
            ("mine", "Mine"),
            ("waiting", "Waiting for the user"),
            ("escalated", "Escalated"),
            ("escalated_by_me", "Escalated by me"),
            ("closed", "Closed"),
        ],
        account: account.trim().to_owned(),
        rows: list.iter().map(|i| Row::of(&state.runbooks, i)).collect(),
    })
}
