//! The server-rendered pages: login, queues, opening an incident, the guided step page,
//! escalation, timeline, attachments and administration; plus health, metrics and static files.

use std::collections::BTreeMap;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, RETRY_AFTER, SET_COOKIE,
};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use incidents::{Incident, StepRecord};
use serde::Deserialize;

use crate::AppState;
use crate::auth::{self, CurrentUser, PageUser, Role, Via};
use crate::error::{AppError, AppResult, PageError};
use crate::flow::{self, Next};
use crate::labels;
use crate::ops;
use crate::throttle;

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

fn short_time(t: &chrono::DateTime<chrono::Utc>) -> String {
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

// ---------------------------------------------------------------- operations

pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    // Within a second, whatever the store does: a health check that hangs is no answer.
    match state.store.health(HEALTH_WITHIN).await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => {
            tracing::error!(error = %reason, "health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, HeaderValue::from_static("5"))],
                format!("unavailable: {} store: {reason}\n", state.store.backend()),
            )
                .into_response()
        }
    }
}

/// How long `/healthz` waits for the store.
const HEALTH_WITHIN: std::time::Duration = std::time::Duration::from_millis(900);

pub(crate) async fn metrics(State(state): State<AppState>) -> PageResult {
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for level in incidents::LEVELS {
        for status in incidents::Status::ALL {
            counts.insert((level.to_owned(), status.as_str().to_owned()), 0);
        }
    }
    // One aggregate query; only known levels and statuses become labels.
    for (level, status, n) in state
        .store
        .incident_counts()
        .await
        .map_err(AppError::from)?
    {
        if let Some(c) = counts.get_mut(&(level, status)) {
            *c = u64::try_from(n).unwrap_or(0);
        }
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&counts),
    )
        .into_response())
}

pub(crate) async fn style_css() -> Response {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../static/style.css"),
    )
        .into_response()
}

pub(crate) async fn app_js() -> Response {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../static/app.js"),
    )
        .into_response()
}

pub(crate) async fn not_found() -> PageError {
    PageError(AppError::NotFound("no such page".to_owned()))
}

// ---------------------------------------------------------------- login

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

#[derive(Deserialize)]
pub(crate) struct CsrfOnly {
    #[serde(default)]
    csrf: Option<String>,
}

pub(crate) async fn logout(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    user.check_csrf(form.csrf.as_deref())?;
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

// ---------------------------------------------------------------- queues

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

// ---------------------------------------------------------------- opening

struct GateView {
    id: String,
    title: String,
    question: String,
    answers: Vec<(String, String)>,
}

#[derive(Default)]
struct OpenFormView {
    account: String,
    reporter: String,
    description: String,
}

#[derive(Template)]
#[template(path = "new_incident.html")]
struct NewIncidentPage {
    nav: Option<Nav>,
    csrf: String,
    error: Option<String>,
    form: OpenFormView,
    runbooks: Vec<(String, String)>,
    gate: Vec<GateView>,
}

fn new_page(
    state: &AppState,
    user: &CurrentUser,
    error: Option<String>,
    form: OpenFormView,
) -> NewIncidentPage {
    let gate = state
        .runbooks
        .get(ops::DEFAULT_RUNBOOK)
        .map(|rb| {
            rb.steps
                .iter()
                .filter(|s| s.level == runbook::Level::Gate)
                .map(|s| GateView {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    question: s.question.clone(),
                    answers: s
                        .answers
                        .iter()
                        .map(|a| (a.value.clone(), a.label.clone()))
                        .collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    NewIncidentPage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        error,
        form,
        runbooks: state
            .runbooks
            .iter()
            .map(|r| (r.id.clone(), r.title.clone()))
            .collect(),
        gate,
    }
}

pub(crate) async fn new_incident_form(
    State(state): State<AppState>,
    PageUser(user): PageUser,
) -> PageResult {
    html(&new_page(&state, &user, None, OpenFormView::default()))
}

pub(crate) async fn open_incident(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    user.check_csrf(get("csrf").as_deref())?;
    let req = ops::OpenReq {
        account: get("account").unwrap_or_default(),
        reporter: get("reporter").unwrap_or_default(),
        description: get("description").unwrap_or_default(),
        runbook: get("runbook"),
        gate: fields
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("gate.").map(|s| (s.to_owned(), v.clone())))
            .collect(),
    };
    let form = OpenFormView {
        account: req.account.clone(),
        reporter: req.reporter.clone(),
        description: req.description.clone(),
    };
    match ops::open(&state, &user, req).await {
        Ok(inc) => Ok(Redirect::to(&format!("/incidents/{}", inc.id)).into_response()),
        // Keep what the agent typed: show the form again with the reason.
        Err(AppError::BadRequest(m)) => html_status(
            StatusCode::BAD_REQUEST,
            &new_page(&state, &user, Some(m), form),
        ),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- the step page

struct IncView {
    id: i64,
    account: String,
    reporter: String,
    description: String,
    level: String,
    status: &'static str,
    runbook: String,
    assignee: String,
    escalation_kind: String,
    version: i64,
}

impl IncView {
    fn of(i: &Incident) -> IncView {
        IncView {
            id: i.id,
            account: i.account.clone(),
            reporter: i.reporter.clone(),
            description: i.description.clone(),
            level: i.level.clone(),
            status: i.status.as_str(),
            runbook: i.runbook.clone(),
            assignee: i.assignee.clone().unwrap_or_default(),
            escalation_kind: i.escalation_kind.clone().unwrap_or_default(),
            version: i.version,
        }
    }
}

struct StepView {
    runbook: String,
    id: String,
    level: String,
    title: String,
    question: String,
    instruction: Option<String>,
    note: Option<String>,
    check: Option<String>,
    answers: Vec<(String, String)>,
}

struct PathRow {
    record_id: i64,
    step: String,
    title: String,
    /// The answer's value, and every answer the step allows (value, label), to revise it.
    value: String,
    choices: Vec<(String, String)>,
    /// "revised by X, when" for a superseded record; empty for a current one.
    superseded: String,
    answer: String,
    source: String,
    /// The source in words ("Automated check").
    source_words: String,
    actor: String,
    at: String,
    note: String,
    evidence: String,
}

fn path_rows(state: &AppState, steps: &[StepRecord]) -> Vec<PathRow> {
    steps
        .iter()
        .map(|r| {
            let def = state.runbooks.step(&r.step).map(|(_, s)| s);
            PathRow {
                record_id: r.id,
                step: r.step.clone(),
                title: def.map(|s| s.title.clone()).unwrap_or_default(),
                value: r.answer.clone(),
                choices: def
                    .map(|s| {
                        s.answers
                            .iter()
                            .map(|a| (a.value.clone(), a.label.clone()))
                            .collect()
                    })
                    .unwrap_or_default(),
                superseded: match (&r.superseded_by, &r.superseded_at) {
                    (Some(by), Some(at)) => format!("revised by {by}, {}", short_time(at)),
                    _ => String::new(),
                },
                answer: def
                    .and_then(|s| s.answer(&r.answer))
                    .map_or_else(|| r.answer.clone(), |a| a.label.clone()),
                source: r.source.clone(),
                source_words: labels::source(&r.source),
                actor: r.actor.clone(),
                at: short_time(&r.at),
                note: r.note.clone().unwrap_or_default(),
                evidence: if r.evidence.is_null() {
                    String::new()
                } else {
                    serde_json::to_string_pretty(&r.evidence).unwrap_or_default()
                },
            }
        })
        .collect()
}

struct EvidenceView {
    origin: String,
    summary: String,
    /// The evidence as (what, value) rows; the raw JSON stays behind a toggle.
    facts: Vec<(String, String)>,
    /// The check itself failed (server unreachable, timeout): shown as a failure.
    failed: bool,
    json: String,
}

/// What the step's automated check proposes; the agent accepts it or answers otherwise.
struct ProposalView {
    value: String,
    label: String,
    summary: String,
    at: String,
}

struct NoteView {
    text: String,
    actor: String,
    at: String,
}

struct AttView {
    id: i64,
    name: String,
    size: i64,
    actor: String,
    /// Whether the page links to its analysis (not for the app's own evidence files).
    viewable: bool,
}

fn att_views(state: &AppState, atts: &[incidents::Attachment]) -> Vec<AttView> {
    atts.iter()
        .map(|a| AttView {
            id: a.id,
            name: a.name.clone(),
            size: a.size,
            actor: a.actor.clone(),
            viewable: state.viewer.is_some(),
        })
        .collect()
}

struct OutcomeView {
    id: String,
    title: String,
    meaning: String,
    disposition: String,
}

#[derive(Template)]
#[template(path = "step.html")]
struct StepPage {
    nav: Option<Nav>,
    csrf: String,
    inc: IncView,
    message: Option<String>,
    error: Option<String>,
    ask: Option<StepView>,
    escalate: Option<(String, String)>,
    outcome: Option<OutcomeView>,
    redirected: Option<String>,
    closed: Option<String>,
    evidence: Vec<EvidenceView>,
    path: Vec<PathRow>,
    attachments: Vec<AttView>,
    /// The last escalation: (from level, who, reason).
    escalated_by: Option<(String, String, String)>,
    can_work: bool,
    can_close: bool,
    /// What the step's automated check proposes, if it ran and was conclusive.
    proposal: Option<ProposalView>,
    /// The internal notes, oldest first.
    notes: Vec<NoteView>,
    /// Announces a switch to another runbook ("Continuing in … because …").
    switch: Option<String>,
    /// Every outcome of the incident's runbooks (id, title), to close with another one.
    outcomes: Vec<(String, String)>,
    can_take: bool,
    can_upload: bool,
    checks_enabled: bool,
    note: String,
    max_upload: String,
    /// The account's recent SIP events, when a capture endpoint keeps them.
    sip_events: Option<std::result::Result<Vec<crate::SipEventLine>, String>>,
}

/// The account's recent SIP events, bounded in time; `None` when no window is configured.
async fn sip_events_of(
    state: &AppState,
    account: &str,
) -> Option<std::result::Result<Vec<crate::SipEventLine>, String>> {
    let events = state.events.as_ref()?;
    Some(
        match tokio::time::timeout(crate::EVENTS_TIMEOUT, events.recent(account)).await {
            Ok(r) => r,
            Err(_) => Err(format!(
                "the event window did not answer within {} s",
                crate::EVENTS_TIMEOUT.as_secs()
            )),
        },
    )
}

/// Builds the step page for the incident's current state; `error` and `note` carry a refused
/// answer back to the agent so nothing typed is lost.
async fn step_page_view(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    message: Option<String>,
    error: Option<String>,
    note: String,
) -> AppResult<StepPage> {
    let inc = ops::load(state, id).await?;
    let steps = state.store.steps(id).await?;
    let atts = state.store.attachments(id).await?;
    let escalations = state.store.escalations(id).await?;
    let can_work = ops::can_work(user, &inc);
    let mut page = StepPage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        inc: IncView::of(&inc),
        message,
        error,
        ask: None,
        escalate: None,
        outcome: None,
        redirected: None,
        closed: None,
        evidence: Vec::new(),
        path: path_rows(state, &steps),
        attachments: att_views(state, &atts),
        escalated_by: escalations
            .last()
            .map(|e| (e.from_level.clone(), e.actor.clone(), e.reason.clone())),
        can_work,
        can_close: can_work,
        proposal: None,
        notes: state
            .store
            .notes(id)
            .await?
            .into_iter()
            .map(|n| NoteView {
                text: n.text,
                actor: n.actor,
                at: short_time(&n.at),
            })
            .collect(),
        switch: None,
        outcomes: state
            .runbooks
            .iter()
            .flat_map(|rb| rb.outcomes.iter().map(|o| (o.id.clone(), o.title.clone())))
            .collect(),
        can_take: ops::can_take(user, &inc),
        can_upload: inc.status != incidents::Status::Closed,
        checks_enabled: state.checks.is_some(),
        note,
        max_upload: format!("{} MiB", state.cfg.max_upload_bytes / (1024 * 1024)),
        sip_events: sip_events_of(state, &inc.account).await,
    };
    if inc.status == incidents::Status::Closed {
        page.closed = Some(inc.outcome.clone().unwrap_or_default());
        page.can_close = false;
        return Ok(page);
    }
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    match next {
        Next::Ask { runbook, step } => {
            if runbook != inc.runbook {
                page.switch = Some(runbook_switch(state, &inc.runbook, &runbook, &steps));
            }
            if let Some((_, s)) = state.runbooks.step(&step) {
                page.evidence = evidence_for(state, inc.id, &step, &steps).await?;
                page.proposal = state
                    .store
                    .check_runs(inc.id)
                    .await?
                    .into_iter()
                    .rev()
                    .find(|r| r.step == step)
                    .and_then(|r| {
                        let value = r.answer.clone()?;
                        let label = s.answer(&value)?.label.clone();
                        Some(ProposalView {
                            value,
                            label,
                            summary: r.summary.clone(),
                            at: short_time(&r.at),
                        })
                    });
                page.ask = Some(StepView {
                    runbook,
                    id: s.id.clone(),
                    level: s.level.to_string(),
                    title: s.title.clone(),
                    question: s.question.clone(),
                    instruction: s.instruction.clone(),
                    note: s.note.clone(),
                    check: s.check.map(|c| c.as_str().to_owned()),
                    answers: s
                        .answers
                        .iter()
                        .map(|a| (a.value.clone(), a.label.clone()))
                        .collect(),
                });
            }
            page.can_close = false;
        }
        Next::Escalate { level, kind } => {
            page.escalate = Some((level.to_string(), kind.unwrap_or_default()));
            page.can_close = false;
        }
        Next::Close { runbook, outcome } => {
            let def = state
                .runbooks
                .get(&runbook)
                .and_then(|rb| rb.outcome(&outcome));
            page.outcome = Some(OutcomeView {
                id: outcome.clone(),
                title: def.map_or_else(|| outcome.clone(), |d| d.title.clone()),
                meaning: def.map(|d| d.meaning.clone()).unwrap_or_default(),
                disposition: def.map(|d| d.disposition.to_string()).unwrap_or_default(),
            });
        }
        Next::Redirected { runbook } => {
            page.redirected = Some(runbook);
            page.can_close = false;
        }
    }
    Ok(page)
}

/// "Continuing in Connection issues, because …": why the walk left the incident's runbook.
fn runbook_switch(state: &AppState, from: &str, to: &str, steps: &[StepRecord]) -> String {
    let title = |id: &str| {
        state
            .runbooks
            .get(id)
            .map_or_else(|| id.to_owned(), |r| r.title.clone())
    };
    let because = steps
        .iter()
        .rev()
        .filter(|r| r.is_current() && r.runbook == from)
        .find_map(|r| {
            let (_, def) = state.runbooks.step(&r.step)?;
            let label = def.answer(&r.answer)?.label.clone();
            Some(format!(
                ", because the answer to \u{201c}{}\u{201d} was \u{201c}{label}\u{201d}",
                def.title
            ))
        })
        .unwrap_or_default();
    format!(
        "Continuing in \u{201c}{}\u{201d}{because}: the runbook \u{201c}{}\u{201d} sends this case there.",
        title(to),
        title(from)
    )
}

/// The evidence recorded for one step: earlier answers to it and the server's own check runs
/// (never attachments: an upload can be named anything).
async fn evidence_for(
    state: &AppState,
    inc: i64,
    step: &str,
    steps: &[StepRecord],
) -> AppResult<Vec<EvidenceView>> {
    let mut out = Vec::new();
    let runs = state.store.check_runs(inc).await?;
    // Newest first; a handful is plenty on a page.
    for run in runs.iter().rev().filter(|r| r.step == step).take(5) {
        let failed = crate::workspace::check_failed(&run.evidence, &run.summary);
        out.push(EvidenceView {
            origin: if failed {
                format!("automated check failed, {}", short_time(&run.at))
            } else {
                format!("automated check, {}", short_time(&run.at))
            },
            summary: run.summary.clone(),
            facts: crate::workspace::facts(&run.evidence["evidence"], 30),
            failed,
            json: serde_json::to_string_pretty(&run.evidence["evidence"]).unwrap_or_default(),
        });
    }
    for r in steps.iter().rev().filter(|r| r.step == step) {
        out.push(EvidenceView {
            origin: format!("earlier answer by {} ({})", r.actor, r.source),
            summary: r.answer.clone(),
            facts: if r.evidence.is_null() {
                Vec::new()
            } else {
                crate::workspace::facts(&r.evidence, 30)
            },
            failed: false,
            json: serde_json::to_string_pretty(&r.evidence).unwrap_or_default(),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
pub(crate) struct MsgQuery {
    #[serde(default)]
    msg: Option<String>,
}

pub(crate) async fn step_page(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Query(q): Query<MsgQuery>,
) -> PageResult {
    let (message, error) = match q.msg.as_deref() {
        Some(code) => match notice(&state, id, code).await? {
            Some((text, true)) => (None, Some(text)),
            Some((text, false)) => (Some(text), None),
            None => (None, None),
        },
        None => (None, None),
    };
    let page = step_page_view(&state, &user, id, message, error, String::new()).await?;
    html(&page)
}

/// The notices a redirect may ask for (`?msg=CODE`), with whether it reports a failure. The
/// text is built from what the store holds, never from the URL, so a link cannot put words in
/// the notice.
async fn notice(state: &AppState, id: i64, code: &str) -> AppResult<Option<(String, bool)>> {
    let inc = ops::load(state, id).await?;
    let title = |step: &str| {
        state
            .runbooks
            .step(step)
            .map_or_else(|| step.to_owned(), |(_, s)| s.title.clone())
    };
    let label = |step: &str, value: &str| {
        state
            .runbooks
            .step(step)
            .and_then(|(_, s)| s.answer(value).map(|a| a.label.clone()))
            .unwrap_or_else(|| value.to_owned())
    };
    let ok = |t: String| Some((t, false));
    let text = match code {
        "Recorded" | "Revised" => {
            let steps = state.store.steps(id).await?;
            steps.last().and_then(|s| {
                ok(format!(
                    "{} \u{201c}{}\u{201d}: {}",
                    if code == "Revised" {
                        "Changed"
                    } else {
                        "Recorded"
                    },
                    title(&s.step),
                    label(&s.step, &s.answer)
                ))
            })
        }
        "Check" => {
            let runs = state.store.check_runs(id).await?;
            runs.last().map(|r| {
                if crate::workspace::check_failed(&r.evidence, &r.summary) {
                    (
                        format!(
                            "The automated check of \u{201c}{}\u{201d} could not run: {}. Answer from what the user tells you, or try again.",
                            title(&r.step),
                            r.summary
                        ),
                        true,
                    )
                } else if let Some(a) = &r.answer {
                    (
                        format!(
                            "The automated check of \u{201c}{}\u{201d} proposes \u{201c}{}\u{201d}. Accept it or choose another answer.",
                            title(&r.step),
                            label(&r.step, a)
                        ),
                        false,
                    )
                } else {
                    (
                        format!(
                            "The automated check of \u{201c}{}\u{201d} was not conclusive: {}. Answer it yourself.",
                            title(&r.step),
                            r.summary
                        ),
                        false,
                    )
                }
            })
        }
        "Taken" => ok("You have it now.".to_owned()),
        "Noted" => ok("Note added.".to_owned()),
        "Status" => ok(match inc.status {
            incidents::Status::WaitingUser => "Waiting for the user.".to_owned(),
            _ => "Back to work on this incident.".to_owned(),
        }),
        "Closed" => {
            let title = inc
                .outcome
                .as_deref()
                .and_then(|o| state.runbooks.iter().find_map(|rb| rb.outcome(o)))
                .map(|o| o.title.clone())
                .unwrap_or_default();
            ok(format!("Closed: {title}"))
        }
        "Escalated" => ok(format!("Handed over to {}.", inc.level)),
        "Attached" => {
            let atts = state.store.attachments(id).await?;
            atts.last()
                .and_then(|a| ok(format!("Attached {} ({} bytes)", a.name, a.size)))
        }
        _ => None,
    };
    Ok(text)
}

/// Back to the step page with a notice code (see [`notice`]).
pub(crate) fn back_to(id: i64, code: &str) -> Response {
    Redirect::to(&format!("/incidents/{id}?msg={code}")).into_response()
}

#[derive(Deserialize)]
pub(crate) struct AnswerForm {
    #[serde(default)]
    csrf: Option<String>,
    version: i64,
    step: String,
    answer: String,
    #[serde(default)]
    note: Option<String>,
}

pub(crate) async fn answer(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Form(form): Form<AnswerForm>,
) -> PageResult {
    user.check_csrf(form.csrf.as_deref())?;
    let note = form.note.clone().unwrap_or_default();
    let req = ops::AnswerReq {
        version: form.version,
        step: form.step,
        answer: form.answer.clone(),
        note: form.note,
        evidence: None,
    };
    match ops::answer(&state, &user, id, req, "agent").await {
        Ok(_) => Ok(back_to(id, "Recorded")),
        // A stale page: show the incident as it is now, with the agent's note kept.
        Err(AppError::Conflict { message, .. }) => {
            let page = step_page_view(
                &state,
                &user,
                id,
                None,
                Some(format!(
                    "Your answer \"{}\" was not recorded: {message}. The page shows the incident as it \
                     is now; your note is kept below.",
                    form.answer
                )),
                note,
            )
            .await?;
            html_status(StatusCode::CONFLICT, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(crate) struct VersionForm {
    #[serde(default)]
    csrf: Option<String>,
    version: i64,
    #[serde(default)]
    status: Option<String>,
}

pub(crate) async fn run_check(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Form(form): Form<VersionForm>,
) -> PageResult {
    user.check_csrf(form.csrf.as_deref())?;
    match ops::run_check(&state, &user, id, form.version, false).await {
        Ok(_) => Ok(back_to(id, "Check")),
        Err(e) => conflict_or(&state, &user, id, e).await,
    }
}

/// A conflict re-renders the incident with the message (status 409); other errors are pages.
pub(crate) async fn conflict_or(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    e: AppError,
) -> PageResult {
    match e {
        AppError::Conflict { message, .. } => {
            let page = step_page_view(state, user, id, None, Some(message), String::new()).await?;
            html_status(StatusCode::CONFLICT, &page)
        }
        e => Err(e.into()),
    }
}

pub(crate) async fn take(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Form(form): Form<VersionForm>,
) -> PageResult {
    user.check_csrf(form.csrf.as_deref())?;
    match ops::take(&state, &user, id, form.version).await {
        Ok(_) => Ok(back_to(id, "Taken")),
        Err(e) => conflict_or(&state, &user, id, e).await,
    }
}

pub(crate) async fn set_status(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Form(form): Form<VersionForm>,
) -> PageResult {
    user.check_csrf(form.csrf.as_deref())?;
    let status = form.status.unwrap_or_default();
    match ops::set_status(&state, &user, id, form.version, &status).await {
        Ok(_) => Ok(back_to(id, "Status")),
        Err(e) => conflict_or(&state, &user, id, e).await,
    }
}

#[derive(Deserialize)]
pub(crate) struct CloseForm {
    #[serde(default)]
    csrf: Option<String>,
    version: i64,
    #[serde(default)]
    outcome: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    note: Option<String>,
}

pub(crate) async fn close(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Form(form): Form<CloseForm>,
) -> PageResult {
    user.check_csrf(form.csrf.as_deref())?;
    let req = ops::CloseReq {
        version: form.version,
        outcome: form.outcome,
        reason: form.reason,
        note: form.note,
    };
    match ops::close(&state, &user, id, req).await {
        Ok(_) => Ok(back_to(id, "Closed")),
        Err(e) => conflict_or(&state, &user, id, e).await,
    }
}

// ---------------------------------------------------------------- escalation

#[derive(Template)]
#[template(path = "escalate.html")]
struct EscalatePage {
    nav: Option<Nav>,
    csrf: String,
    inc: IncView,
    error: Option<String>,
    /// (value, words).
    levels: Vec<(String, String)>,
    to_level: String,
    /// (id, title).
    kinds: Vec<(String, String)>,
    kind: String,
    reason: String,
    /// What to tell the user, per kind (and level when there is no kind); the selected one shown.
    says: Vec<SayView>,
    path: Vec<PathRow>,
    attachments: Vec<AttView>,
}

/// Words for the user while an escalation is worked.
struct SayView {
    kind: String,
    level: String,
    text: String,
    shown: bool,
}

/// What to tell the user for each escalation the page offers: the runbook ending's own words
/// first (the answer that escalated), then each kind's, then a general line for L3.
fn escalation_says(
    state: &AppState,
    steps: &[StepRecord],
    to_level: &str,
    kind: &str,
    kinds: &[(String, String)],
) -> Vec<SayView> {
    let mut says = Vec::new();
    if let Some(last) = steps.last()
        && let Some(words) = labels::escalation_words(&state.runbooks, &last.step, &last.answer)
    {
        says.push(SayView {
            kind: kind.to_owned(),
            level: to_level.to_owned(),
            text: words,
            shown: false,
        });
    }
    for (k, _) in kinds {
        if let Some(text) = labels::escalation_tell_user(&state.runbooks, Some(k)) {
            says.push(SayView {
                kind: k.clone(),
                level: "L2".to_owned(),
                text,
                shown: false,
            });
        }
    }
    says.push(SayView {
        kind: String::new(),
        level: "L3".to_owned(),
        text: labels::L3_TELL_USER.to_owned(),
        shown: false,
    });
    if let Some(first) = says
        .iter_mut()
        .find(|s| s.kind == kind && (!kind.is_empty() || s.level == to_level))
    {
        first.shown = true;
    }
    says
}

async fn escalate_view(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    error: Option<String>,
    reason: String,
    form: Option<(String, String)>,
) -> AppResult<EscalatePage> {
    let inc = ops::load(state, id).await?;
    user.require(
        ops::can_work(user, &inc),
        &format!("escalating an {} incident", inc.level),
    )?;
    let steps = state.store.steps(id).await?;
    let atts = state.store.attachments(id).await?;
    let (_, next) = flow::next_of(&state.runbooks, &inc, &steps)?;
    let here = auth::level_of(&inc.level);
    let levels: Vec<String> = [runbook::Level::L2, runbook::Level::L3]
        .into_iter()
        .filter(|l| Some(*l) > here)
        .map(|l| l.to_string())
        .collect();
    let (to_level, kind) = match (next, form) {
        (_, Some(f)) => f,
        (Next::Escalate { level, kind }, None) => (level.to_string(), kind.unwrap_or_default()),
        (_, None) => (levels.first().cloned().unwrap_or_default(), String::new()),
    };
    let kinds: Vec<(String, String)> = ops::known_kinds(state)
        .into_iter()
        .map(|k| {
            let t = labels::escalation_kind(&state.runbooks, Some(&k), "L2");
            (k, t)
        })
        .collect();
    Ok(EscalatePage {
        nav: Some(Nav::of(user)),
        csrf: user.csrf().to_owned(),
        inc: IncView::of(&inc),
        error,
        says: escalation_says(state, &steps, &to_level, &kind, &kinds),
        levels: levels
            .into_iter()
            .map(|l| {
                let w = labels::level(&l);
                (l, w)
            })
            .collect(),
        to_level,
        kinds,
        kind,
        reason,
        path: path_rows(state, &steps),
        attachments: att_views(state, &atts),
    })
}

pub(crate) async fn escalate_form(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
) -> PageResult {
    html(&escalate_view(&state, &user, id, None, String::new(), None).await?)
}

#[derive(Deserialize)]
pub(crate) struct EscalateForm {
    #[serde(default)]
    csrf: Option<String>,
    version: i64,
    #[serde(default)]
    to_level: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn escalate(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    Form(form): Form<EscalateForm>,
) -> PageResult {
    user.check_csrf(form.csrf.as_deref())?;
    let reason = form.reason.clone();
    let chosen = (
        form.to_level.clone().unwrap_or_default(),
        form.kind.clone().unwrap_or_default(),
    );
    let req = ops::EscalateReq {
        version: form.version,
        to_level: form.to_level,
        kind: form.kind,
        reason: form.reason,
    };
    match ops::escalate(&state, &user, id, req).await {
        Ok(_) => Ok(back_to(id, "Escalated")),
        Err(AppError::BadRequest(m)) => html_status(
            StatusCode::BAD_REQUEST,
            &escalate_view(&state, &user, id, Some(m), reason, Some(chosen)).await?,
        ),
        Err(AppError::Conflict { message, .. }) => html_status(
            StatusCode::CONFLICT,
            &escalate_view(&state, &user, id, Some(message), reason, Some(chosen)).await?,
        ),
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------- timeline

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
        inc: IncView::of(&inc),
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

// ---------------------------------------------------------------- attachments

pub(crate) async fn upload(
    State(state): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<i64>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> PageResult {
    // The role first, then the CSRF token (the form sends it before the file), so a refused
    // upload is not read.
    let multipart = multipart.map_err(|e| multipart_rejection(&state, &e))?;
    ops::may_upload(&state, &user, id).await?;
    let (_, file) = read_multipart(&state, &user, false, multipart).await?;
    let Some((name, ct, bytes)) = file else {
        return Err(AppError::BadRequest("choose a file to attach".to_owned()).into());
    };
    ops::upload(&state, &user, id, &name, &ct, &bytes).await?;
    Ok(back_to(id, "Attached"))
}

type Upload = (Option<String>, Option<(String, String, Vec<u8>)>);

/// Reads a multipart form: a `csrf` field (required before the file for a browser session, so
/// a forged upload is refused before its file is read) and one `file` field, within the size
/// limit.
pub(crate) async fn read_multipart(
    state: &AppState,
    user: &CurrentUser,
    csrf_checked: bool,
    mut mp: Multipart,
) -> AppResult<Upload> {
    let limit = state.cfg.max_upload_bytes;
    let mut csrf: Option<String> = None;
    let mut file = None;
    loop {
        let field = match mp.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e, limit)),
        };
        match field.name() {
            Some("csrf") => {
                csrf = Some(field.text().await.map_err(|e| multipart_error(&e, limit))?);
            }
            Some("file") => {
                if !csrf_checked {
                    user.check_csrf(csrf.as_deref())?;
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
                                return Err(ops::too_large(limit));
                            }
                        }
                        Ok(None) => break,
                        Err(e) => return Err(multipart_error(&e, limit)),
                    }
                }
                file = Some((name, ct, bytes));
            }
            _ => {}
        }
    }
    Ok((csrf, file))
}

/// The multipart extractor's refusal as our error (413 with the limit, else 400).
pub(crate) fn multipart_rejection(
    state: &AppState,
    e: &axum::extract::multipart::MultipartRejection,
) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ops::too_large(state.cfg.max_upload_bytes)
    } else {
        AppError::BadRequest(format!("the upload could not be read: {}", e.body_text()))
    }
}

fn multipart_error(e: &axum::extract::multipart::MultipartError, limit: usize) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ops::too_large(limit)
    } else {
        AppError::BadRequest(format!("the upload could not be read: {}", e.body_text()))
    }
}

/// Serves an attachment as a download (never rendered inline: it is user-supplied content).
pub(crate) async fn attachment_response(state: &AppState, att: i64) -> AppResult<Response> {
    let (a, bytes) = state.store.attachment(att).await?;
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}\"",
        ops::sanitize_name(&a.name).replace(|c: char| !c.is_ascii(), "_")
    )) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    Ok((headers, bytes).into_response())
}

pub(crate) async fn download(
    State(state): State<AppState>,
    PageUser(_user): PageUser,
    Path(att): Path<i64>,
) -> PageResult {
    Ok(attachment_response(&state, att).await?)
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
        inc: IncView::of(&inc),
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
                    src: format!("data:image/svg+xml;base64,{}", base64(l.svg.as_bytes())),
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

/// Standard base64 (RFC 4648 §4) with padding, for `data:` URIs.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
