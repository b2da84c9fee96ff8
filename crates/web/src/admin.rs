//! The administration page: users (add, disable, change role), API tokens, what each role may
//! do, and the server configuration in use. A refused form comes back on the same page with
//! the reason and what was typed (never the password); nobody can lock out their own account
//! or the last administrator.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::CACHE_CONTROL;
use axum::http::{HeaderValue, StatusCode};

use crate::AppState;
use crate::auth::{AdminUser, CsrfForm, CurrentUser, Role, csrf_form};
use crate::error::{AppError, AppResult};
use crate::labels;
use crate::pages::{Nav, PageResult, html_status};

struct UserRow {
    name: String,
    role: String,
    role_words: String,
    disabled: bool,
    /// The admin looking at the page: no disable button, no role form.
    me: bool,
}

/// What the forms had when one was refused, so the agent does not type it again.
#[derive(Default)]
struct Kept {
    new_username: String,
    new_role: String,
    token_username: String,
    token_label: String,
    revoke_username: String,
    revoke_label: String,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
    users: Vec<UserRow>,
    /// The roles an admin can give: (value, words, what it may do).
    roles: Vec<(&'static str, &'static str, &'static str)>,
    kept: Kept,
    /// The server configuration as (section, key, value) rows.
    config: Vec<(String, String, String)>,
    backend: &'static str,
    runbooks: String,
}

/// The page for `user`, an administrator (every handler here takes an [`AdminUser`]).
async fn admin_view(
    state: &AppState,
    user: &CurrentUser,
    message: Option<String>,
    error: Option<String>,
    new_token: Option<String>,
    kept: Kept,
) -> AppResult<AdminPage> {
    let users = state.store.users().await?;
    Ok(AdminPage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        message,
        error,
        new_token,
        users: users
            .iter()
            .map(|u| UserRow {
                name: u.username.clone(),
                role: u.role.clone(),
                role_words: labels::role(&u.role),
                disabled: u.disabled,
                me: u.username == user.username,
            })
            .collect(),
        roles: labels::ROLE_RIGHTS.to_vec(),
        kept,
        config: config_rows(&state.cfg.server_config_summary),
        backend: state.store.backend(),
        runbooks: state
            .runbooks
            .iter()
            .map(|r| r.title.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Flattens the configuration summary into rows: top-level tables are sections, nested keys
/// are joined with dots, lists and scalars become text.
fn config_rows(v: &serde_json::Value) -> Vec<(String, String, String)> {
    fn text(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::Null => "(not set)".to_owned(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) => a.iter().map(text).collect::<Vec<_>>().join(", "),
            other => other.to_string(),
        }
    }
    fn walk(
        section: &str,
        prefix: &str,
        v: &serde_json::Value,
        out: &mut Vec<(String, String, String)>,
    ) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(section, &key, v, out);
                }
            }
            other => out.push((section.to_owned(), prefix.to_owned(), text(other))),
        }
    }
    let mut out = Vec::new();
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                match v {
                    serde_json::Value::Object(_) => walk(k, "", v, &mut out),
                    other => out.push((String::new(), k.clone(), text(other))),
                }
            }
        }
        serde_json::Value::Null => {}
        other => out.push((String::new(), String::new(), text(other))),
    }
    out
}

fn ok_page(page: &AdminPage) -> PageResult {
    html_status(StatusCode::OK, page)
}

/// The admin page again with the refusal's reason and status, keeping what was typed. Errors
/// that are not the form's fault (the store is down, the role is not admin) stay error pages.
async fn refused(state: &AppState, user: &CurrentUser, e: AppError, kept: Kept) -> PageResult {
    match e {
        AppError::BadRequest(_) | AppError::NotFound(_) | AppError::Conflict { .. } => {
            let status = e.status();
            let page = admin_view(state, user, None, Some(e.reason()), None, kept).await?;
            html_status(status, &page)
        }
        e => Err(e.into()),
    }
}

/// The admin page after a form: the message of `result`, or why it was refused with what was
/// typed kept.
async fn after(
    state: &AppState,
    user: &CurrentUser,
    result: AppResult<String>,
    kept: Kept,
) -> PageResult {
    match result {
        Ok(msg) => ok_page(&admin_view(state, user, Some(msg), None, None, Kept::default()).await?),
        Err(e) => refused(state, user, e, kept).await,
    }
}

pub(crate) async fn admin(State(state): State<AppState>, AdminUser(user): AdminUser) -> PageResult {
    ok_page(&admin_view(&state, &user, None, None, None, Kept::default()).await?)
}

csrf_form! {
    pub(crate) struct NewUserForm {
        #[serde(default)]
        username: String,
        #[serde(default)]
        password: String,
        #[serde(default)]
        role: String,
    }
}

pub(crate) async fn admin_create_user(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    CsrfForm(form): CsrfForm<NewUserForm>,
) -> PageResult {
    let name = form.username.trim().to_owned();
    let kept = Kept {
        new_username: name.clone(),
        new_role: form.role.clone(),
        ..Kept::default()
    };
    let result = create_user(&state, &user.username, &name, form.password, &form.role).await;
    let result = result.map(|()| format!("User {name} added."));
    after(&state, &user, result, kept).await
}

/// Creates a user after checking the name, role and password length.
pub(crate) async fn create_user(
    state: &AppState,
    actor: &str,
    name: &str,
    password: String,
    role: &str,
) -> AppResult<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(AppError::BadRequest(
            "a user name is 1 to 64 letters, digits, '.', '_', '-' or '@'".to_owned(),
        ));
    }
    if Role::parse(role).is_none() {
        return Err(AppError::BadRequest(format!(
            "unknown role {role} (l1, l2, lead or admin)"
        )));
    }
    if password.chars().count() < 8 {
        return Err(AppError::BadRequest(
            "the password needs at least 8 characters".to_owned(),
        ));
    }
    if state.store.user(name).await?.is_some() {
        return Err(AppError::BadRequest(format!(
            "a user named {name} already exists: choose another name"
        )));
    }
    let hash = tokio::task::spawn_blocking(move || crate::hash_password(&password))
        .await
        .map_err(|e| AppError::Internal(crate::Error::PasswordHash(e.to_string())))??;
    state.store.create_user_by(name, &hash, role, actor).await?;
    Ok(())
}

/// Refuses a change that would leave no active administrator.
async fn keeps_an_admin(state: &AppState, name: &str, what: &str) -> AppResult<()> {
    let users = state.store.users().await?;
    let target_is_active_admin = users
        .iter()
        .any(|u| u.username == name && u.role == "admin" && !u.disabled);
    let active_admins = users
        .iter()
        .filter(|u| u.role == "admin" && !u.disabled)
        .count();
    if target_is_active_admin && active_admins <= 1 {
        return Err(AppError::BadRequest(format!(
            "{name} is the last active administrator: make another administrator before you \
             {what}"
        )));
    }
    Ok(())
}

csrf_form! {
    pub(crate) struct DisableForm {
        disabled: bool,
    }
}

pub(crate) async fn admin_disable_user(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<DisableForm>,
) -> PageResult {
    let result = async {
        if form.disabled {
            if name == user.username {
                return Err(AppError::BadRequest(
                    "you cannot disable your own account".to_owned(),
                ));
            }
            keeps_an_admin(&state, &name, "disable this account").await?;
        }
        state
            .store
            .set_user_disabled(&name, form.disabled, &user.username)
            .await?;
        Ok(())
    }
    .await;
    let done = if form.disabled { "disabled" } else { "enabled" };
    let result = result.map(|()| format!("User {name} {done}."));
    after(&state, &user, result, Kept::default()).await
}

csrf_form! {
    pub(crate) struct RoleForm {
        #[serde(default)]
        role: String,
    }
}

/// Gives a user another role; the store ends their sessions so the old rights stop at once.
pub(crate) async fn admin_set_role(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    Path(name): Path<String>,
    CsrfForm(form): CsrfForm<RoleForm>,
) -> PageResult {
    let result = async {
        let role = form.role.trim().to_ascii_lowercase();
        let Some(role) = Role::parse(&role) else {
            return Err(AppError::BadRequest(format!(
                "unknown role {:?} (l1, l2, lead or admin)",
                form.role
            )));
        };
        // An admin demoting themselves could leave the server without any admin.
        if name == user.username {
            return Err(AppError::BadRequest(
                "you cannot change your own role".to_owned(),
            ));
        }
        let before = state
            .store
            .user(&name)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("user {name} not found")))?;
        if role != Role::Admin {
            keeps_an_admin(&state, &name, "change this role").await?;
        }
        let after = state
            .store
            .set_user_role(&name, role.as_str(), &user.username)
            .await?;
        Ok(if before.role == after.role {
            format!(
                "User {name} already has the role {}.",
                labels::role(&after.role)
            )
        } else {
            format!(
                "User {name} is now {} (was {}); their sessions were ended.",
                labels::role(&after.role),
                labels::role(&before.role)
            )
        })
    }
    .await;
    after(&state, &user, result, Kept::default()).await
}

csrf_form! {
    /// A user's API tokens: the one to make, or those to revoke (all of them without a label).
    pub(crate) struct TokenForm {
        #[serde(default)]
        username: String,
        #[serde(default)]
        label: String,
    }
}

pub(crate) async fn admin_create_token(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> PageResult {
    let made = crate::create_api_token_for(
        &state.store,
        form.username.trim(),
        form.label.trim(),
        Some(state.cfg.token_ttl),
        &user.username,
    )
    .await
    .map_err(AppError::from);
    let token = match made {
        Ok(t) => t,
        Err(e) => {
            let kept = Kept {
                token_username: form.username.trim().to_owned(),
                token_label: form.label.trim().to_owned(),
                ..Kept::default()
            };
            return refused(&state, &user, e, kept).await;
        }
    };
    let mut res =
        ok_page(&admin_view(&state, &user, None, None, Some(token), Kept::default()).await?)?;
    // The page shows a secret once: no cache may keep it.
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Revokes a user's API tokens (all, or those with a label).
pub(crate) async fn admin_revoke_tokens(
    State(state): State<AppState>,
    AdminUser(user): AdminUser,
    CsrfForm(form): CsrfForm<TokenForm>,
) -> PageResult {
    let name = form.username.trim();
    let label = Some(form.label.trim()).filter(|l| !l.is_empty());
    let result = state
        .store
        .revoke_api_tokens(name, label, &user.username)
        .await
        .map(|n| format!("{n} API token(s) of {name} revoked."))
        .map_err(AppError::from);
    let kept = Kept {
        revoke_username: name.to_owned(),
        revoke_label: form.label.trim().to_owned(),
        ..Kept::default()
    };
    after(&state, &user, result, kept).await
}
