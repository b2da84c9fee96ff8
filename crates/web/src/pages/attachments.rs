//! Attachments on the pages: uploading, downloading, and the analysis of a client log or
//! capture with a ladder diagram per call.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::HeaderValue;
use base64::Engine as _;
use serde::Deserialize;

use super::step::back_to;
use super::views::{AttView, IncView, att_views};
use super::{Nav, PageResult, html};
use crate::AppState;
use crate::auth::PageUser;
use crate::error::AppError;
use crate::{files, ops};

pub(crate) async fn upload(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> PageResult {
    files::receive(
        &state,
        &user,
        id,
        multipart,
        files::Csrf::InForm,
        "choose a file to attach",
    )
    .await?;
    Ok(back_to(id, "Attached"))
}

pub(crate) async fn download(
    State(state): State<AppState>,
    PageUser(_user): PageUser,
    Path(att): Path<i64>,
) -> PageResult {
    Ok(files::download(&state, att).await?)
}

struct LadderView {
    call_id: String,
    label: String,
    /// `data:image/svg+xml;base64,…`: only base64 characters after the prefix.
    src: String,
    /// The anchor the table's jump link points to.
    anchor: String,
    failed: bool,
}

/// One row of the calls table, with the anchor of its ladder (empty when not drawn).
struct CaptureRowView {
    row: crate::CaptureRow,
    anchor: String,
    mine: bool,
}

#[derive(Deserialize)]
pub(crate) struct ViewQuery {
    /// `1`: every call in the file, not only the incident account's.
    #[serde(default)]
    all: Option<String>,
}

/// Whether `row` involves the incident's `account` (its user part, case-insensitively).
fn involves(row: &crate::CaptureRow, account: &str) -> bool {
    let user = |s: &str| {
        let s = s.trim();
        let s = s.strip_prefix("sip:").unwrap_or(s);
        s.split('@').next().unwrap_or(s).to_lowercase()
    };
    let want = user(account);
    !want.is_empty() && row.accounts.iter().any(|a| user(a) == want)
}

#[derive(Template)]
#[template(path = "attachment.html")]
struct AttachmentPage {
    nav: Option<Nav>,
    inc: IncView,
    att: AttView,
    kind: String,
    summary: String,
    input: String,
    findings: Vec<String>,
    warnings: Vec<String>,
    rows: Vec<CaptureRowView>,
    /// Rows in the file, all accounts.
    total_rows: usize,
    /// Rows of the incident's account.
    mine_rows: usize,
    /// Only the incident account's rows are shown.
    filtered: bool,
    ladders: Vec<LadderView>,
    /// Ladders found but not drawn (the page shows the first [`MAX_LADDERS`]).
    more: usize,
    error: Option<String>,
}

/// The most ladders drawn on one page; the rest are in the summary.
const MAX_LADDERS: usize = 40;

/// The capture or log analysis of an attachment with a ladder diagram per call. Anyone logged
/// in may read it, as anyone logged in may download the file.
pub(crate) async fn view_attachment(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path((id, att)): Path<(i64, i64)>,
    Query(q): Query<ViewQuery>,
) -> PageResult {
    let inc = ops::load(&state, id).await?;
    let atts = state.store.attachments(id).await.map_err(AppError::from)?;
    let Some(meta) = atts.iter().find(|a| a.id == att) else {
        return Err(AppError::NotFound(format!("incident {id} has no attachment {att}")).into());
    };
    let mut page = AttachmentPage {
        nav: Some(Nav::of(&user)),
        inc: IncView::of(&state, &inc),
        att: att_views(&state, std::slice::from_ref(meta)).remove(0),
        kind: String::new(),
        summary: String::new(),
        input: String::new(),
        findings: Vec::new(),
        warnings: Vec::new(),
        rows: Vec::new(),
        total_rows: 0,
        mine_rows: 0,
        filtered: false,
        ladders: Vec::new(),
        more: 0,
        error: None,
    };
    match analyse(&state, meta).await {
        Ok(view) => {
            page.kind = view.kind;
            page.input = view.input;
            page.findings = view.findings;
            page.warnings = view.warnings;
            if view.rows.is_empty() {
                page.summary = view.summary;
            }
            page.total_rows = view.rows.len();
            let mut rows: Vec<CaptureRowView> = view
                .rows
                .into_iter()
                .map(|row| CaptureRowView {
                    mine: involves(&row, &inc.account),
                    row,
                    anchor: String::new(),
                })
                .collect();
            page.mine_rows = rows.iter().filter(|r| r.mine).count();
            // The account's own calls by default, when the file has any.
            page.filtered = q.all.as_deref() != Some("1") && page.mine_rows > 0;
            if page.filtered {
                rows.retain(|r| r.mine);
            }
            // Failed first, then in time order (the sort is stable).
            rows.sort_by_key(|r| !r.row.failed);
            let mut ladders: Vec<crate::AttachmentLadder> = view.ladders;
            let mut drawn = Vec::new();
            if rows.is_empty() {
                drawn = ladders
                    .drain(..)
                    .enumerate()
                    .map(|(i, l)| (l, i, false))
                    .collect();
            } else {
                for (i, r) in rows.iter_mut().enumerate() {
                    if let Some(k) = ladders.iter().position(|l| l.call_id == r.row.call_id) {
                        let l = ladders.swap_remove(k);
                        r.anchor = format!("ladder-{}", i + 1);
                        drawn.push((l, i, r.row.failed));
                    }
                }
            }
            page.more = drawn.len().saturating_sub(MAX_LADDERS);
            page.ladders = drawn
                .into_iter()
                .take(MAX_LADDERS)
                .map(|(l, i, failed)| LadderView {
                    src: format!(
                        "data:image/svg+xml;base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(l.svg.as_bytes())
                    ),
                    call_id: l.call_id,
                    label: l.label,
                    anchor: format!("ladder-{}", i + 1),
                    failed,
                })
                .collect();
            // Rows whose ladder is not drawn lose their jump link.
            let drawn_anchors: Vec<String> =
                page.ladders.iter().map(|l| l.anchor.clone()).collect();
            for r in &mut rows {
                if !drawn_anchors.contains(&r.anchor) {
                    r.anchor.clear();
                }
            }
            page.rows = rows;
        }
        Err(msg) => page.error = Some(msg),
    }
    let mut res = html(&page)?;
    // The diagrams are images; nothing on this page needs inline script or foreign content.
    res.headers_mut().insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    Ok(res)
}

/// Runs the viewer on a blocking thread, a few at a time, under `WebConfig::view_timeout`;
/// cancelled once nobody waits for it. The error is a sentence for the agent.
async fn analyse(
    state: &AppState,
    meta: &incidents::Attachment,
) -> Result<crate::AttachmentView, String> {
    let Some(viewer) = state.viewer.clone() else {
        return Err(
            "Capture and log analysis is not configured on this server; download the file \
             instead."
                .to_owned(),
        );
    };
    let limit = state.cfg.max_upload_bytes;
    if usize::try_from(meta.size).map_or(true, |n| n > limit) {
        return Err(format!(
            "This file ({} bytes) is larger than the {limit} bytes analysed here; download it \
             and ask an engineer to analyse it with dialtone's capture tool.",
            meta.size
        ));
    }
    let (_, bytes) = state
        .store
        .attachment(meta.id)
        .await
        .map_err(|e| AppError::from(e).reason())?;
    let slots = state.view_slots.clone();
    let name = meta.name.clone();
    let content_type = meta.content_type.clone();
    // Cancelled when this request stops waiting, whether by the time bound or because the
    // agent went away (the handler is dropped): the analysis then stops at its next read.
    struct CancelOnDrop(crate::Cancel);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    let cancel = crate::Cancel::default();
    let _guard = CancelOnDrop(cancel.clone());
    let work = async move {
        let slot = slots
            .acquire_owned()
            .await
            .map_err(|_| "the server is shutting down".to_owned())?;
        // The slot goes with the work, not with the waiting request: an analysis keeps its
        // slot until it has really stopped, so analyses never run beyond the slot count.
        tokio::task::spawn_blocking(move || {
            let view = viewer.view_cancellable(&name, &content_type, &bytes, &cancel);
            drop(slot);
            view
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "attachment analysis panicked");
            "the analysis failed; the details are in the server log".to_owned()
        })?
    };
    let bound = state.cfg.view_timeout;
    match tokio::time::timeout(bound, work).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "The analysis took longer than {:.1} s and was stopped; download the file and ask \
             an engineer to analyse it with dialtone's capture tool.",
            bound.as_secs_f64()
        )),
    }
}
