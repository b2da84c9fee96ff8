//! Logging in and out, and the home page that sends each role to its queue.

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::{Nav, PageResult, html_status};
use crate::AppState;
use crate::auth::{self, CsrfForm, PageUser, Role, Via, csrf_form};
use crate::error::AppError;
use crate::throttle;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    nav: Option<Nav>,
    csrf: String,
    message: Option<String>,
    /// The user name typed, kept when the login is refused (never the password).
    username: String,
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    #[serde(default)]
    expired: Option<String>,
}

fn login_page(state: &AppState, status: StatusCode, message: Option<String>) -> PageResult {
    login_page_for(state, status, message, String::new())
}

fn login_page_for(
    state: &AppState,
    status: StatusCode,
    message: Option<String>,
    username: String,
) -> PageResult {
    // Double-submit cookie: the form carries the same random value as a cookie only our origin
    // can set, so another site cannot log a victim into the attacker's account.
    let token = auth::new_token();
    let page = LoginPage {
        nav: None,
        csrf: token.clone(),
        message,
        username,
    };
    let mut res = html_status(status, &page)?;
    let cookie = format!(
        "{}={token}; Path=/login; HttpOnly; SameSite=Lax; Max-Age=3600{}",
        auth::LOGIN_COOKIE,
        if state.cfg.secure_cookies {
            "; Secure"
        } else {
            ""
        }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    Ok(res)
}

pub(crate) async fn login_form(
    State(state): State<AppState>,
    Query(q): Query<LoginQuery>,
) -> PageResult {
    let message = q
        .expired
        .map(|_| "Your session expired or you are not logged in. Please log in.".to_owned());
    login_page(&state, StatusCode::OK, message)
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    csrf: String,
}

pub(crate) async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Form(form): Form<LoginForm>,
) -> PageResult {
    let cookie = auth::cookie(&parts, auth::LOGIN_COOKIE).unwrap_or("");
    if cookie.is_empty() || !auth::same(cookie, &form.csrf) {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            Some("The login form expired (CSRF check failed). Please try again.".to_owned()),
        );
    }
    let name = form.username.trim().to_owned();
    let user_key = format!(
        "user:{}",
        name.chars().take(128).collect::<String>().to_lowercase()
    );
    let addr_key = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| format!("addr:{}", c.0.ip()));
    let locked = state
        .throttle
        .locked(&user_key)
        .or_else(|| addr_key.as_deref().and_then(|k| state.throttle.locked(k)));
    if let Some(wait) = locked {
        tracing::info!(username = %throttle::log_safe(&name), "login refused: throttled");
        let secs = wait.as_secs() + 1;
        let mut res = login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(format!(
                "Too many failed logins. Please wait {secs} seconds and try again."
            )),
        )?;
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
        return Ok(res);
    }
    // Argon2 takes tens of MB and milliseconds of CPU each: a few at a time, the rest wait a
    // bounded time and then get 503.
    let Ok(Ok(permit)) = tokio::time::timeout(
        state.cfg.login_wait,
        state.login_slots.clone().acquire_owned(),
    )
    .await
    else {
        let mut res = login_page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            Some("The server is busy checking other logins. Please try again.".to_owned()),
        )?;
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(1u32));
        return Ok(res);
    };
    let user = state.store.user(&name).await.map_err(AppError::from)?;
    // Unknown and disabled users verify against a dummy hash: the same work, so the answer's
    // timing does not tell whether the account exists.
    let hash = match &user {
        Some(u) if !u.disabled => Some(u.password_hash.clone()),
        _ => None,
    };
    let usable = hash.is_some();
    let password = form.password;
    let verified = state.verifier.verify(password, hash, permit).await;
    let Some(user) = user.filter(|_| verified && usable) else {
        state
            .throttle
            .failed(&user_key, throttle::ACCOUNT_FREE_FAILURES);
        if let Some(k) = &addr_key {
            state.throttle.failed(k, throttle::ADDRESS_FREE_FAILURES);
        }
        tracing::info!(username = %throttle::log_safe(&name), "login refused");
        return login_page_for(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("Wrong user name or password, or the account is disabled.".to_owned()),
            name.chars().take(128).collect(),
        );
    };
    state.throttle.succeeded(&user_key);
    let token = auth::new_token();
    let ttl = state.cfg.session_ttl;
    let expires = chrono::Utc::now()
        + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::hours(8));
    state
        .store
        .create_session(&auth::sha256_hex(&token), &user.username, expires)
        .await
        .map_err(AppError::from)?;
    tracing::info!(username = %user.username, "login");
    let mut res = Redirect::to("/").into_response();
    let headers = res.headers_mut();
    for c in [
        auth::session_cookie(&token, ttl.as_secs(), state.cfg.secure_cookies),
        format!(
            "{}=; Path=/login; HttpOnly; SameSite=Lax; Max-Age=0",
            auth::LOGIN_COOKIE
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            headers.append(SET_COOKIE, v);
        }
    }
    Ok(res)
}

csrf_form! {
    /// A form of a button only: its token.
    pub(crate) struct CsrfOnly {}
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    CsrfForm(_): CsrfForm<CsrfOnly>,
) -> PageResult {
    if let Via::Session { token_hash, .. } = &user.via {
        state
            .store
            .delete_session(token_hash)
            .await
            .map_err(AppError::from)?;
    }
    let mut res = Redirect::to("/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::clear_cookie(
        auth::SESSION_COOKIE,
        state.cfg.secure_cookies,
    )) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    Ok(res)
}

pub(crate) async fn home(PageUser(user): PageUser) -> Redirect {
    if user.role == Role::L1 {
        Redirect::to("/queue/L1")
    } else if user.role == Role::L2 {
        Redirect::to("/queue/L2?tab=escalated")
    } else {
        Redirect::to("/queue/L2")
    }
}
