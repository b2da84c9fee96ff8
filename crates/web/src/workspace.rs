//! The agent's workspace on an incident beyond answering: accepting what a check proposed,
//! revising an earlier answer, internal notes, and the dossier. Pages and API both; every
//! rule is the rule book's (`casework`), reached through `ops`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;
use crate::api::ApiResult;
use crate::auth::{ApiUser, CsrfForm, CurrentUser, PageUser, csrf_form};
use crate::error::{AppError, AppResult};
use crate::ops;
use crate::pages::PageResult;
use crate::pages::actions::{AnswerForm, conflict_or, on_page};
use crate::pages::step::back_to;
use casework::actions::{Action, Revise};

/// Evidence as facts an agent reads: `(what, value)` rows from a JSON value, nested objects
/// flattened with dotted names, arrays of scalars joined, long arrays summarized. At most
/// `limit` rows.
pub(crate) fn facts(value: &serde_json::Value, limit: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    flatten("", value, 0, limit, &mut out);
    out
}

fn words(key: &str) -> String {
    key.replace(['_', '.'], " ")
}

fn scalar(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::Null => Some("none".to_owned()),
        serde_json::Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

fn flatten(
    prefix: &str,
    v: &serde_json::Value,
    depth: usize,
    limit: usize,
    out: &mut Vec<(String, String)>,
) {
    if out.len() >= limit {
        return;
    }
    let name = |k: &str| {
        if prefix.is_empty() {
            words(k)
        } else {
            format!("{prefix} · {}", words(k))
        }
    };
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if out.len() >= limit {
                    return;
                }
                match v {
                    serde_json::Value::Object(_) if depth < 2 => {
                        flatten(&name(k), v, depth + 1, limit, out)
                    }
                    serde_json::Value::Array(items) => out.push((name(k), list(items))),
                    other => out.push((name(k), scalar(other).unwrap_or_else(|| compact(other)))),
                }
            }
        }
        serde_json::Value::Array(items) => out.push((prefix.to_owned(), list(items))),
        other => out.push((
            if prefix.is_empty() {
                "value".to_owned()
            } else {
                prefix.to_owned()
            },
            scalar(other).unwrap_or_default(),
        )),
    }
}

fn list(items: &[serde_json::Value]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    let scalars: Option<Vec<String>> = items.iter().map(scalar).collect();
    match scalars {
        Some(s) if s.len() <= 8 => s.join(", "),
        Some(s) => format!("{} … ({} in all)", s[..8].join(", "), s.len()),
        None => format!("{} entries (see the raw data)", items.len()),
    }
}

fn compact(v: &serde_json::Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        let cut = (0..=200)
            .rev()
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

/// Whether a check's evidence says the check itself failed (unreachable server, timeout).
pub(crate) fn check_failed(evidence: &serde_json::Value, summary: &str) -> bool {
    evidence.get("error").is_some_and(|e| !e.is_null())
        || evidence
            .get("evidence")
            .and_then(|e| e.get("error"))
            .is_some_and(|e| !e.is_null())
        || summary.starts_with("the check failed")
        || summary.starts_with("the check did not finish")
}

// ------------------------------------------------------------------ pages

csrf_form! {
    pub(crate) struct AcceptForm {
        version: i64,
        step: String,
    }
}

/// Accepting the answer the step's automated check proposed.
pub(crate) async fn accept(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<AcceptForm>,
) -> PageResult {
    match ops::accept_proposal(&state, &user, id, form.version, &form.step).await {
        Ok(_) => Ok(back_to(id, "Recorded")),
        Err(e) => conflict_or(&state, &user, id, e).await,
    }
}

/// Changing an earlier answer; the steps after it are asked again.
pub(crate) async fn revise(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<AnswerForm>,
) -> PageResult {
    let action = Action::Revise(Revise {
        version: Some(form.version),
        step: form.step,
        answer: form.answer,
        note: form.note,
    });
    let what = Some("The answer was not changed");
    on_page(&state, &user, id, action, "Revised", what).await
}

csrf_form! {
    pub(crate) struct NoteForm {
        #[serde(default)]
        text: String,
    }
}

/// An internal note, from any agent, at any time.
pub(crate) async fn note(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    CsrfForm(form): CsrfForm<NoteForm>,
) -> PageResult {
    let what = Some("The note was not added");
    on_page(&state, &user, id, Action::Note(form.text), "Noted", what).await
}

/// The dossier as Markdown, for download.
pub(crate) async fn dossier_md(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
) -> PageResult {
    let md = dossier(&state, &user, id).await?;
    let md = casework::dossier::markdown(&state.runbooks, &md);
    let mut resp = (StatusCode::OK, md).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/markdown; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"incident-{id}-dossier.md\""
    )) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// The records of the dossier (attachments analysed by the configured viewer).
async fn dossier(
    state: &AppState,
    _user: &CurrentUser,
    id: i64,
) -> AppResult<casework::dossier::Dossier> {
    let incident = ops::load(state, id).await?;
    let steps = state.store.steps(id).await?;
    let escalations = state.store.escalations(id).await?;
    let notes = state.store.notes(id).await?;
    let audit = state.store.audit(id).await?;
    let mut attachments = Vec::new();
    for a in state.store.attachments(id).await? {
        let section = match &state.viewer {
            Some(viewer) if a.size as usize <= state.cfg.max_upload_bytes => {
                let (meta, bytes) = state.store.attachment(a.id).await?;
                let viewer = viewer.clone();
                tokio::task::spawn_blocking(move || {
                    viewer.markdown(&meta.name, &meta.content_type, &bytes)
                })
                .await
                .ok()
                .flatten()
            }
            _ => None,
        };
        attachments.push((a, section));
    }
    Ok(casework::dossier::Dossier {
        incident,
        steps,
        escalations,
        notes,
        attachments,
        audit,
    })
}

// ------------------------------------------------------------------ API

pub(crate) async fn api_revise(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    Json(req): Json<Revise>,
) -> ApiResult<Json<crate::api::Detail>> {
    let inc = ops::perform(&state, &user, id, Action::Revise(req)).await?;
    Ok(Json(crate::api::detail(&state, inc).await?))
}

#[derive(Deserialize)]
pub(crate) struct NoteReq {
    text: String,
}

pub(crate) async fn api_add_note(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
    Json(req): Json<NoteReq>,
) -> ApiResult<Json<Vec<incidents::Note>>> {
    ops::perform(&state, &user, id, Action::Note(req.text)).await?;
    Ok(Json(state.store.notes(id).await.map_err(AppError::from)?))
}

pub(crate) async fn api_notes(
    State(state): State<AppState>,
    ApiUser(_user): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<incidents::Note>>> {
    Ok(Json(state.store.notes(id).await.map_err(AppError::from)?))
}

/// The dossier as JSON, with the Markdown inside.
pub(crate) async fn api_dossier(
    State(state): State<AppState>,
    ApiUser(user): ApiUser,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let d = dossier(&state, &user, id).await?;
    Ok(Json(casework::dossier::json(&state.runbooks, &d)).into_response())
}

#[cfg(test)]
mod tests {
    use super::{check_failed, facts};
    use serde_json::json;

    #[test]
    fn evidence_reads_as_facts() {
        let v = json!({
            "registered": true,
            "contacts": [{"uri": "sip:a@b"}],
            "transports": ["udp", "tls"],
            "server": {"reachable": false, "error_text": "Connection refused"},
            "empty": null,
        });
        let rows = facts(&v, 50);
        assert!(
            rows.contains(&("registered".into(), "yes".into())),
            "{rows:?}"
        );
        assert!(rows.contains(&("transports".into(), "udp, tls".into())));
        assert!(rows.contains(&("server · reachable".into(), "no".into())));
        assert!(rows.contains(&("server · error text".into(), "Connection refused".into())));
        assert!(rows.contains(&("contacts".into(), "1 entries (see the raw data)".into())));
        assert!(rows.contains(&("empty".into(), "none".into())));
        assert_eq!(
            facts(&json!(null), 5),
            vec![("value".into(), "none".into())]
        );
        assert_eq!(facts(&v, 2).len(), 2);
    }

    #[test]
    fn failed_checks_are_told_apart() {
        assert!(check_failed(&json!({"error": "timed out"}), "x"));
        assert!(check_failed(
            &json!({"evidence": {"error": "refused"}}),
            "x"
        ));
        assert!(check_failed(&json!({}), "the check failed: refused"));
        assert!(!check_failed(&json!({"registered": true}), "registered"));
    }
}
