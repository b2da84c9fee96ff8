//! The agents' web app behind `dialtone serve`: server-rendered pages, a JSON API, login and roles.
//!
//! Only this crate knows HTTP. It works incidents (the `incidents` store) through runbooks (the
//! `runbook` engine) and asks a [`CheckRunner`] for automated evidence and an
//! [`AttachmentViewer`] for ladder diagrams of client logs and captures; the CLI plugs the
//! diagnosis and captures crates in, so `web` knows nothing of SIP.

mod admin;
mod api;
mod auth;
mod error;
mod flow;
mod idem;
pub(crate) mod labels;
mod metrics;
mod ops;
mod pages;
mod reports;
mod search;
mod throttle;
mod webhooks;
mod workspace;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use futures::future::BoxFuture;

pub use auth::{
    DEFAULT_TOKEN_TTL, create_api_token, create_api_token_for, hash_password,
    hash_password_with_cost,
};
pub use error::{Error, Result};

/// How `dialtone serve` runs the app.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where to listen; the default is loopback only.
    pub listen: SocketAddr,
    /// Mark the session cookie `Secure` (set it when the app sits behind TLS); always on when
    /// `listen` is not a loopback address.
    pub secure_cookies: bool,
    /// How long a login lasts.
    pub session_ttl: Duration,
    /// Largest attachment accepted; bigger uploads get 413.
    pub max_upload_bytes: usize,
    /// The server configuration in use, shown on the admin page (secrets already removed).
    pub server_config_summary: serde_json::Value,
    /// Password verifications (Argon2, memory- and CPU-hungry) running at once.
    pub login_slots: usize,
    /// How long a login waits for a verification slot before it gets 503.
    pub login_wait: Duration,
    /// How long API tokens made on the admin page last.
    pub token_ttl: Duration,
    /// Upper bound on showing one attachment (waiting for an analysis slot included); past it
    /// the analysis is cancelled and its slot freed.
    pub view_timeout: Duration,
    /// Upper bound on one request, from its head to its answer (bodies included); past it the
    /// answer is 408. Downloads stream their answer after it.
    pub request_timeout: Duration,
    /// A request body that sends nothing for this long is dropped (slow uploads keep going as
    /// long as bytes arrive).
    pub body_idle_timeout: Duration,
    /// A connection must send a whole request head within this time (idle keep-alive
    /// connections included), else it is closed.
    pub header_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Webhook receivers from the file given to `serve --webhooks`: (scope, URL), shown on the
    /// admin page beside those saved there (which take precedence).
    pub webhooks_from_file: Vec<(String, String)>,
}

/// Largest request head (request line and headers) read; bigger ones get 431.
pub const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// Most headers in a request; more get 431.
pub const MAX_HEADERS: usize = 100;

/// Largest login form body; bigger ones get 413.
pub const LOGIN_BODY_LIMIT: usize = 16 * 1024;

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            secure_cookies: false,
            session_ttl: Duration::from_secs(8 * 3600),
            max_upload_bytes: 20 * 1024 * 1024,
            server_config_summary: serde_json::Value::Null,
            login_slots: std::thread::available_parallelism()
                .map_or(2, std::num::NonZeroUsize::get)
                .clamp(1, 4),
            login_wait: Duration::from_secs(2),
            token_ttl: auth::DEFAULT_TOKEN_TTL,
            view_timeout: VIEW_TIMEOUT,
            request_timeout: Duration::from_secs(300),
            body_idle_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            max_connections: 1024,
            webhooks_from_file: Vec::new(),
        }
    }
}

/// What an automated check found for one runbook step.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckOutcome {
    /// The answer the evidence supports, when it is conclusive; `None` leaves the step to the agent.
    pub answer: Option<String>,
    /// The evidence gathered, kept with the step record.
    pub evidence: serde_json::Value,
    /// One line for the agent.
    pub summary: String,
}

/// A file attached to the incident, handed to a check (client logs and captures for
/// `l2.client_logs`).
#[derive(Clone)]
pub struct CheckAttachment {
    /// The file name as uploaded.
    pub name: String,
    /// The MIME type as uploaded.
    pub content_type: String,
    /// The content.
    pub bytes: Vec<u8>,
}

// Debug without the content: it may be a large capture.
impl std::fmt::Debug for CheckAttachment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckAttachment")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// Everything the web app knows when it asks for a check.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The incident the check is for.
    pub incident_id: i64,
    /// The customer's account.
    pub account: String,
    /// The runbook step whose check runs, e.g. `l1.echo_call`.
    pub step: String,
    /// The incident's attachments (the app's own evidence files left out), oldest first, up to
    /// [`CHECK_ATTACHMENT_BUDGET`] bytes in all.
    pub attachments: Vec<CheckAttachment>,
}

/// The most attachment bytes handed to one check.
pub const CHECK_ATTACHMENT_BUDGET: usize = 64 * 1024 * 1024;

/// Runs the automated check behind a runbook step for an account (the CLI implements it with the
/// diagnosis crate). The error is a message for the agent.
pub trait CheckRunner: Send + Sync {
    /// Runs the check of `step` for `account`.
    fn run(
        &self,
        account: &str,
        step: &str,
    ) -> BoxFuture<'static, std::result::Result<CheckOutcome, String>>;

    /// Runs the check with the incident's context; what the web app calls. The default ignores
    /// the context; a runner that analyses attached logs or captures overrides it.
    fn run_with_context(
        &self,
        ctx: CheckContext,
    ) -> BoxFuture<'static, std::result::Result<CheckOutcome, String>> {
        self.run(&ctx.account, &ctx.step)
    }
}

/// One ladder diagram of an attachment: a call (or a registration) and its SIP messages.
#[derive(Debug, Clone)]
pub struct AttachmentLadder {
    /// The dialog's Call-ID.
    pub call_id: String,
    /// One line saying what it is, e.g. "alice -> 600: 486 Busy Here".
    pub label: String,
    /// The diagram as a standalone SVG document. The page never inserts it as markup: it goes
    /// into an `<img>` as a `data:` URI, where scripts and external loads do not run.
    pub svg: String,
}

/// What an [`AttachmentViewer`] found in a client log or capture.
#[derive(Debug, Clone, Default)]
pub struct AttachmentView {
    /// What the file is, e.g. "pcap" or "baresip log".
    pub kind: String,
    /// The analysis summary as plain text (the page escapes it and keeps its layout); shown
    /// only when `rows` is empty.
    pub summary: String,
    /// The ladders, in the order to show them.
    pub ladders: Vec<AttachmentLadder>,
    /// One line about the input ("pcap: 1,234 bytes, 12 SIP messages over 3.2 s").
    pub input: String,
    /// The calls and registrations found, for the page's table (filtered by the incident's
    /// account, failed ones first).
    pub rows: Vec<CaptureRow>,
    /// The causes found, one sentence each.
    pub findings: Vec<String>,
    /// Problems reading the file (truncated packets…).
    pub warnings: Vec<String>,
}

/// One call or registration found in an attachment.
#[derive(Debug, Clone, Default)]
pub struct CaptureRow {
    /// Its Call-ID: the key of its ladder in [`AttachmentView::ladders`].
    pub call_id: String,
    /// A registration rather than a call.
    pub registration: bool,
    /// When it started, as text.
    pub start: String,
    /// The caller, or the registering user.
    pub from: String,
    /// The callee, or the registrar.
    pub to: String,
    /// The caller's user agent, when known.
    pub user_agent: String,
    /// The final answer ("200 OK", "no final response").
    pub result: String,
    /// It failed (no final answer, or one of 300 and above).
    pub failed: bool,
    /// The first cause found, empty when none.
    pub cause: String,
    /// The accounts it involves (caller and callee, or the registering user), to filter by the
    /// incident's account.
    pub accounts: Vec<String>,
}

/// Analyses an attachment for the "view" page (the CLI implements it with the captures crate).
/// It runs on a blocking thread under a time bound; the error is a message for the agent.
pub trait AttachmentViewer: Send + Sync {
    /// Analyses one attachment as uploaded.
    fn view(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> std::result::Result<AttachmentView, String>;

    /// The attachment's analysis as a Markdown section for the dossier; `None` when it is not
    /// something the viewer reads.
    fn markdown(&self, _name: &str, _content_type: &str, _bytes: &[u8]) -> Option<String> {
        None
    }

    /// Analyses one attachment, stopping early once `cancel` is cancelled (the page stopped
    /// waiting: the time bound passed or the agent went away); what the web app calls. A
    /// blocking thread cannot be stopped from outside, so a viewer that takes long overrides
    /// this and checks `cancel` as it works; the default ignores it.
    fn view_cancellable(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
        cancel: &Cancel,
    ) -> std::result::Result<AttachmentView, String> {
        let _ = cancel;
        self.view(name, content_type, bytes)
    }
}

/// Tells work running on another thread that nobody waits for it any more. Cheap to clone;
/// every clone sees the same flag.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Cancel {
    /// Whether the work should stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The flag itself, for code that takes an `AtomicBool` (the captures crate's reader loop).
    pub fn flag(&self) -> &std::sync::atomic::AtomicBool {
        &self.0
    }

    /// Asks the work to stop.
    pub fn cancel(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One line of an account's recent SIP traffic, as a capture endpoint saw it.
#[derive(Debug, Clone)]
pub struct SipEventLine {
    /// When, as the page shows it (e.g. "12:01:05").
    pub at: String,
    /// What happened, in plain words ("REGISTER from 198.51.100.7:5098 udp → 403 Forbidden").
    pub text: String,
    /// The request failed (a final status of 300 or more that is not a challenge).
    pub failed: bool,
}

/// An account's recent SIP events, newest first, for the step page's "SIP events" panel (the CLI
/// implements it with the HEP window of the `sip-events` crate). The error is a message for the
/// agent.
pub trait SipEvents: Send + Sync {
    fn recent(
        &self,
        account: &str,
    ) -> BoxFuture<'static, std::result::Result<Vec<SipEventLine>, String>>;
}

/// Upper bound on reading the SIP events panel, so the step page never waits on it.
pub(crate) const EVENTS_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) store: incidents::Store,
    pub(crate) runbooks: Arc<runbook::RunbookSet>,
    pub(crate) checks: Option<Arc<dyn CheckRunner>>,
    pub(crate) viewer: Option<Arc<dyn AttachmentViewer>>,
    pub(crate) events: Option<Arc<dyn SipEvents>>,
    /// Analyses of attachments running at once: they are CPU-bound, so a few at a time.
    pub(crate) view_slots: Arc<tokio::sync::Semaphore>,
    pub(crate) cfg: Arc<WebConfig>,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Failed logins per account and per client address.
    pub(crate) throttle: Arc<throttle::LoginThrottle>,
    /// Password verifications running at once.
    pub(crate) login_slots: Arc<tokio::sync::Semaphore>,
    /// The threads password verifications run on.
    pub(crate) verifier: Arc<auth::Verifier>,
}

impl AppState {
    /// Builds the state from its parts.
    pub fn new(
        cfg: WebConfig,
        store: incidents::Store,
        runbooks: runbook::RunbookSet,
        checks: Option<Arc<dyn CheckRunner>>,
    ) -> Self {
        let mut cfg = cfg;
        // Anything but loopback is reached over a network: cookies only over TLS then.
        if !cfg.listen.ip().is_loopback() {
            cfg.secure_cookies = true;
        }
        Self {
            store,
            runbooks: Arc::new(runbooks),
            checks,
            viewer: None,
            events: None,
            view_slots: Arc::new(tokio::sync::Semaphore::new(VIEW_SLOTS)),
            login_slots: Arc::new(tokio::sync::Semaphore::new(cfg.login_slots.max(1))),
            verifier: Arc::new(auth::Verifier::new(cfg.login_slots)),
            cfg: Arc::new(cfg),
            metrics: Arc::new(metrics::Metrics::default()),
            throttle: Arc::default(),
        }
    }

    /// Shows client logs and captures as ladder diagrams with this viewer; without one the
    /// attachment page says the analysis is not configured.
    #[must_use]
    pub fn with_viewer(mut self, viewer: Arc<dyn AttachmentViewer>) -> Self {
        self.viewer = Some(viewer);
        self
    }

    /// Shows each incident account's recent SIP events (REGISTERs, calls) on the step page.
    #[must_use]
    pub fn with_events(mut self, events: Arc<dyn SipEvents>) -> Self {
        self.events = Some(events);
        self
    }

    /// The incident store this app works on.
    pub fn store(&self) -> &incidents::Store {
        &self.store
    }
}

/// Upper bound on one automated check, so a page never hangs on a stuck probe.
pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(90);

/// Default upper bound on showing one attachment (waiting for a slot included).
pub const VIEW_TIMEOUT: Duration = Duration::from_secs(60);

/// How often `serve_on` removes expired sessions.
const SESSION_PURGE_EVERY: Duration = Duration::from_secs(600);

/// How many attachment analyses run at once.
const VIEW_SLOTS: usize = 2;

/// The whole app: pages, API, health and metrics.
pub fn router(state: AppState) -> Router {
    let upload_limit = state.cfg.max_upload_bytes;
    // Multipart bodies carry some framing around the file itself, so the transport limit is a bit
    // above the attachment limit; the handlers enforce the exact limit with a clear message.
    let body_limit = axum::extract::DefaultBodyLimit::max(upload_limit.saturating_add(64 * 1024));
    let (request_timeout, body_idle) = (state.cfg.request_timeout, state.cfg.body_idle_timeout);
    Router::new()
        // operations
        .route("/healthz", get(pages::healthz))
        .route("/metrics", get(reports::metrics))
        .route("/static/style.css", get(pages::style_css))
        .route("/static/app.js", get(pages::app_js))
        // pages
        .route("/", get(pages::home))
        .route(
            "/login",
            get(pages::login_form)
                .post(pages::login)
                .layer(axum::extract::DefaultBodyLimit::max(LOGIN_BODY_LIMIT)),
        )
        .route("/logout", post(pages::logout))
        .route("/queue/{level}", get(pages::queue))
        .route("/incidents/new", get(pages::new_incident_form))
        .route("/incidents", post(pages::open_incident))
        .route("/incidents/{id}", get(pages::step_page))
        .route("/incidents/{id}/answer", post(pages::answer))
        .route("/incidents/{id}/check", post(pages::run_check))
        .route(
            "/incidents/{id}/escalate",
            get(pages::escalate_form).post(pages::escalate),
        )
        .route("/incidents/{id}/close", post(pages::close))
        .route("/incidents/{id}/accept", post(workspace::accept))
        .route("/incidents/{id}/revise", post(workspace::revise))
        .route("/incidents/{id}/notes", post(workspace::note))
        .route("/incidents/{id}/dossier.md", get(workspace::dossier_md))
        .route("/incidents/{id}/take", post(pages::take))
        .route("/incidents/{id}/status", post(pages::set_status))
        .route("/incidents/{id}/timeline", get(pages::timeline))
        .route(
            "/incidents/{id}/attachments",
            post(pages::upload).layer(body_limit),
        )
        .route("/attachments/{att}", get(pages::download))
        .route(
            "/incidents/{id}/attachments/{att}/view",
            get(pages::view_attachment),
        )
        .route("/search", get(search::page))
        .route("/reports", get(reports::page))
        .route("/reports/{file}", get(reports::download))
        .route("/admin", get(admin::admin))
        .route("/admin/users", post(admin::admin_create_user))
        .route(
            "/admin/users/{name}/disable",
            post(admin::admin_disable_user),
        )
        .route("/admin/users/{name}/role", post(admin::admin_set_role))
        .route("/admin/tokens", post(admin::admin_create_token))
        .route("/admin/tokens/revoke", post(admin::admin_revoke_tokens))
        .route("/admin/webhooks", get(webhooks::page).post(webhooks::save))
        .route("/admin/webhooks/remove", post(webhooks::remove))
        .route("/admin/webhooks/{id}/redeliver", post(webhooks::redeliver))
        // API
        .route("/api/openapi.json", get(api::openapi))
        .route("/api/me", get(api::me))
        .route("/api/tokens/revoke", post(api::revoke_own_token))
        .route("/api/runbooks", get(api::runbooks))
        .route("/api/runbooks/{id}", get(api::runbook))
        .route("/api/incidents", get(api::list).post(api::open))
        .route("/api/incidents/{id}", get(api::get))
        .route("/api/incidents/{id}/answer", post(api::answer))
        .route("/api/incidents/{id}/check", post(api::check))
        .route("/api/incidents/{id}/escalate", post(api::escalate))
        .route("/api/incidents/{id}/close", post(api::close))
        .route("/api/incidents/{id}/assign", post(api::assign))
        .route("/api/incidents/{id}/steps", get(api::steps))
        .route("/api/incidents/{id}/audit", get(api::audit))
        .route("/api/incidents/{id}/revise", post(workspace::api_revise))
        .route(
            "/api/incidents/{id}/notes",
            get(workspace::api_notes).post(workspace::api_add_note),
        )
        .route("/api/incidents/{id}/dossier", get(workspace::api_dossier))
        .route("/api/incidents/{id}/events", get(api::events))
        .route(
            "/api/incidents/{id}/attachments",
            get(api::attachments).post(api::upload).layer(body_limit),
        )
        .route("/api/attachments/{att}", get(api::download))
        .route("/api/search", get(search::api))
        .route("/api/reports", get(reports::api_list))
        .route("/api/reports/{name}", get(reports::api_report))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::from_fn(api_errors_as_json))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idem::layer,
        ))
        .layer(axum::middleware::from_fn(security_headers))
        // Outermost: no request outlives its bound, whatever runs inside.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(body_idle))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .with_state(state)
}

/// The browser's protections, on every response (pages, API, errors, static files): no framing,
/// no content sniffing, scripts and styles from this origin only, images also as `data:` URIs
/// (the ladder diagrams), no referrer sent elsewhere.
async fn security_headers(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::HeaderValue;
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // A page may set a stricter policy of its own (the attachment view does): keep it, with
    // framing forbidden.
    let own = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let csp = match own {
        Some(p) if p.contains("frame-ancestors") => p,
        Some(p) => format!("{p}; frame-ancestors 'none'"),
        None => "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                 object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
            .to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert("content-security-policy", v);
    }
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

/// The API's errors are `{"error": reason}` (documented in the OpenAPI): the extractors'
/// plain-text refusals (a body over the limit, a wrong content type, malformed JSON) are
/// rewrapped so.
async fn api_errors_as_json(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::header::CONTENT_TYPE;
    use axum::response::IntoResponse;
    let is_api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    let is_json = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let retry = res.headers().get(axum::http::header::RETRY_AFTER).cloned();
    let text = axum::body::to_bytes(res.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let reason = if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        format!("the request body is larger than the limit ({text})")
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        text
    };
    let mut out = (status, axum::Json(serde_json::json!({ "error": reason }))).into_response();
    if let Some(r) = retry {
        out.headers_mut().insert(axum::http::header::RETRY_AFTER, r);
    }
    out
}

/// Removes expired login sessions every `every`, for as long as the store is open.
pub fn spawn_session_purger(
    store: incidents::Store,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.purge_expired_sessions().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired sessions purged"),
                Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
            }
        }
    })
}

/// Listens on `cfg.listen` and serves until Ctrl-C (or SIGTERM).
pub async fn serve(
    cfg: WebConfig,
    store: incidents::Store,
    runbooks: runbook::RunbookSet,
    checks: Option<Arc<dyn CheckRunner>>,
) -> Result<()> {
    let addr = cfg.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let state = AppState::new(cfg, store, runbooks, checks);
    serve_on(listener, state, shutdown_signal()).await
}

/// Serves on an already bound listener until `shutdown` completes (tests and the example binary
/// bind port 0 and read the address back).
///
/// HTTP/1.1 with the bounds of [`WebConfig`]: request heads of at most [`MAX_REQUEST_HEAD`]
/// bytes read within `header_timeout`, at most `max_connections` connections at once. On
/// shutdown, connections finish the request they are in (for at most 10 s).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, backend = state.store.backend(), "dialtone web listening");
    }
    let purger = spawn_session_purger(state.store.clone(), SESSION_PURGE_EVERY);
    let header_timeout = state.cfg.header_timeout;
    let max_connections = state.cfg.max_connections.max(1);
    let app = router(state);
    let slots = Arc::new(tokio::sync::Semaphore::new(max_connections));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _slot = slot;
            // The client address feeds the login throttle.
            let service = hyper::service::service_fn(
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(remote));
                    tower::ServiceExt::oneshot(app.clone(), req.map(axum::body::Body::new))
                },
            );
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_headers(MAX_HEADERS)
                .max_header_size(MAX_REQUEST_HEAD)
                .max_buf_size(MAX_REQUEST_HEAD);
            let conn = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every slot back means every connection ended.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(Duration::from_secs(10), slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("connections still open 10 s after shutdown; closing them");
    }
    purger.abort();
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        // An error here means no signal handler can be installed; then only SIGTERM stops us.
        if tokio::signal::ctrl_c().await.is_err() {
            futures::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
