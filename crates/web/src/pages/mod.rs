//! The server-rendered pages: login, queues, opening an incident, the guided step page,
//! escalation, timeline, attachments and administration; plus health, metrics and static files.
//!
//! One module per part of the app; this one holds what every page shares (the navigation bar,
//! rendering, the error page).

pub(crate) mod actions;
pub(crate) mod attachments;
pub(crate) mod escalate;
pub(crate) mod login;
pub(crate) mod open;
pub(crate) mod operations;
pub(crate) mod queue;
pub(crate) mod step;
pub(crate) mod timeline;
pub(crate) mod views;

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use crate::auth::{CurrentUser, Role};
use crate::error::{AppError, PageError};
use crate::labels;

pub(crate) type PageResult = Result<Response, PageError>;

/// The navigation bar's view of the user.
pub(crate) struct Nav {
    pub(crate) username: String,
    /// The role in words ("L1 agent").
    pub(crate) role_words: String,
    pub(crate) csrf: String,
    pub(crate) l2: bool,
    pub(crate) admin: bool,
    /// Leads and admins see the reports.
    pub(crate) reports: bool,
}

impl Nav {
    pub(crate) fn of(u: &CurrentUser) -> Nav {
        Nav {
            username: u.username.clone(),
            role_words: labels::role(u.role.as_str()),
            csrf: u.csrf().to_owned(),
            l2: u.role >= Role::L2,
            admin: u.role == Role::Admin,
            reports: u.role >= Role::Lead,
        }
    }
}

pub(crate) fn html<T: Template>(t: &T) -> PageResult {
    Ok(Html(t.render().map_err(AppError::from)?).into_response())
}

pub(crate) fn html_status<T: Template>(status: StatusCode, t: &T) -> PageResult {
    Ok((status, Html(t.render().map_err(AppError::from)?)).into_response())
}

pub(crate) fn short_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub(crate) nav: Option<Nav>,
    pub(crate) status: u16,
    pub(crate) title: String,
    pub(crate) reason: String,
}
