//! Attachment files over HTTP, for the pages and the API alike: who may attach, reading a
//! multipart upload within the size limit, storing it, and serving a download.

use axum::extract::Multipart;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use incidents::Status as IncStatus;

use crate::AppState;
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::ops;

/// Where an upload's CSRF token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Csrf {
    /// In the form's `csrf` field, sent before the file (the pages).
    InForm,
    /// Already, by the extractor (the API: the `x-csrf-token` header of a session).
    Checked,
}

/// A file as uploaded.
struct UploadedFile {
    name: String,
    content_type: String,
    bytes: Vec<u8>,
}

/// Receives a file for incident `id`: the role first, then the CSRF token, so a refused upload
/// is not read; then the file, within the size limit, is stored. `missing` is the refusal when
/// the form has no `file` part.
pub(crate) async fn receive(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    multipart: Result<Multipart, MultipartRejection>,
    csrf: Csrf,
    missing: &str,
) -> AppResult<incidents::Attachment> {
    // A body over the limit (by its Content-Length) is refused before the handler reads it.
    let multipart = multipart.map_err(|e| multipart_rejection(state, &e))?;
    may_upload(state, user, id).await?;
    let Some(file) = read_multipart(state, user, csrf, multipart).await? else {
        return Err(AppError::BadRequest(missing.to_owned()));
    };
    store(state, user, id, &file).await
}

/// Whether `user` may attach files to incident `id`: checked before an upload's body is read.
async fn may_upload(state: &AppState, user: &CurrentUser, id: i64) -> AppResult<()> {
    let inc = ops::load(state, id).await?;
    // Every agent who can see the incident may add to it while it is open: an L1 agent keeps
    // following, with files and notes, what they escalated.
    user.require(
        inc.status != IncStatus::Closed,
        "attaching files to a closed incident",
    )
}

/// Stores a file attached to incident `id`.
async fn store(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    file: &UploadedFile,
) -> AppResult<incidents::Attachment> {
    may_upload(state, user, id).await?;
    if file.bytes.len() > state.cfg.max_upload_bytes {
        return Err(too_large(state.cfg.max_upload_bytes));
    }
    let name = sanitize_name(&file.name);
    if name.is_empty() {
        return Err(AppError::BadRequest("choose a file to attach".to_owned()));
    }
    let ct = if file.content_type.trim().is_empty() {
        "application/octet-stream"
    } else {
        file.content_type.trim()
    };
    Ok(state
        .store
        .add_attachment(id, &name, ct, &file.bytes, &user.username)
        .await?)
}

fn too_large(limit: usize) -> AppError {
    AppError::TooLarge(format!(
        "the file is larger than the limit of {} bytes ({} MiB)",
        limit,
        limit / (1024 * 1024)
    ))
}

/// Keeps only the last path component and printable characters of an uploaded file name, so a
/// name cannot smuggle a path or header-breaking characters into a download.
fn sanitize_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    base.chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Reads a multipart form: a `csrf` field (required before the file for a browser session, so
/// a forged upload is refused before its file is read) and one `file` field, within the size
/// limit.
async fn read_multipart(
    state: &AppState,
    user: &CurrentUser,
    csrf: Csrf,
    mut mp: Multipart,
) -> AppResult<Option<UploadedFile>> {
    let limit = state.cfg.max_upload_bytes;
    let mut token: Option<String> = None;
    let mut file = None;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e, limit)),
        };
        match field.name() {
            Some("csrf") => {
                token = Some(field.text().await.map_err(|e| multipart_error(&e, limit))?);
            }
            Some("file") => {
                if csrf == Csrf::InForm {
                    user.check_csrf(token.as_deref())?;
                }
                let name = field.file_name().unwrap_or("").to_owned();
                let ct = field.content_type().unwrap_or("").to_owned();
                let mut field = field;
                let mut bytes = Vec::new();
                // Read chunk by chunk so an oversized file is refused as soon as it passes the
                // limit, not after it is all in memory.
                loop {
                    match field.chunk().await {
                        Ok(Some(c)) => {
                            bytes.extend_from_slice(&c);
                            if bytes.len() > limit {
                                return Err(too_large(limit));
                            }
                        }
                        Ok(None) => break,
                        Err(e) => return Err(multipart_error(&e, limit)),
                    }
                }
                file = Some(UploadedFile {
                    name,
                    content_type: ct,
                    bytes,
                });
            }
            _ => {}
        }
    }
    Ok(file)
}

/// A refused multipart body as our error (413 with the limit, else 400).
fn unreadable(status: StatusCode, text: &str, limit: usize) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        AppError::BadRequest(format!("the upload could not be read: {text}"))
    }
}

/// The multipart extractor's refusal as our error.
fn multipart_rejection(state: &AppState, e: &MultipartRejection) -> AppError {
    unreadable(e.status(), &e.body_text(), state.cfg.max_upload_bytes)
}

fn multipart_error(e: &MultipartError, limit: usize) -> AppError {
    unreadable(e.status(), &e.body_text(), limit)
}

/// Serves an attachment as a download (never rendered inline: it is user-supplied content).
pub(crate) async fn download(state: &AppState, att: i64) -> AppResult<Response> {
    let (a, bytes) = state.store.attachment(att).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        sanitize_name(&a.name).replace(|c: char| !c.is_ascii(), "_")
    )) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok((headers, bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::sanitize_name;

    #[test]
    fn uploaded_file_names_lose_paths_and_control_characters() {
        let table = [
            ("client.log", "client.log"),
            ("../../etc/passwd", "passwd"),
            ("C:\\Users\\me\\capture.pcapng", "capture.pcapng"),
            ("evil\"\r\nX-Header: 1.txt", "evilX-Header: 1.txt"),
            ("  spaced.txt  ", "spaced.txt"),
            ("dir/", ""),
        ];
        for (input, expected) in table {
            assert_eq!(sanitize_name(input), expected, "{input:?}");
        }
    }
}
