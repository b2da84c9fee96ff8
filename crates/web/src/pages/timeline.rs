//! An incident's timeline: the path of answers and the audit log in words.

use askama::Template;
use axum::extract::{Path, State};

use super::views::{AttView, IncView, PathRow, att_views, path_rows};
use super::{Nav, PageResult, html, short_time};
use crate::AppState;
use crate::auth::PageUser;
use crate::error::AppError;
use crate::{labels, ops};

#[derive(Template)]
#[template(path = "timeline.html")]
struct TimelinePage {
    nav: Option<Nav>,
    inc: IncView,
    path: Vec<PathRow>,
    audit: Vec<AuditRow>,
    attachments: Vec<AttView>,
}

/// One audit entry in words, its raw detail behind a toggle.
struct AuditRow {
    at: String,
    actor: String,
    action: String,
    sentence: String,
    raw: String,
}

pub(crate) async fn timeline(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
) -> PageResult {
    let inc = ops::load(&state, id).await?;
    let steps = state.store.steps(id).await.map_err(AppError::from)?;
    let audit = state.store.audit(id).await.map_err(AppError::from)?;
    let atts = state.store.attachments(id).await.map_err(AppError::from)?;
    html(&TimelinePage {
        attachments: att_views(&state, &atts),
        nav: Some(Nav::of(&user)),
        inc: IncView::of(&state, &inc),
        path: path_rows(&state, &steps),
        audit: audit
            .iter()
            .map(|a| AuditRow {
                at: short_time(&a.at),
                actor: a.actor.clone(),
                action: labels::audit_action(&a.action),
                sentence: labels::audit_detail(&state.runbooks, &a.action, &a.detail),
                raw: serde_json::to_string_pretty(&a.detail).unwrap_or_default(),
            })
            .collect(),
    })
}
