//! Test fixtures: an app on a fresh store (SQLite in a temp dir, or a fresh PostgreSQL database),
//! agents that log in through the real login form, and a small request helper over `oneshot`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::Connection;
use tower::ServiceExt;
use web::{
    AppState, AttachmentLadder, AttachmentView, AttachmentViewer, CheckAttachment, CheckContext,
    CheckOutcome, CheckRunner, WebConfig,
};

pub const PG_ENV: &str = "DIALTONE_TEST_PG_URL";
pub const PASSWORD: &str = "correct horse battery";
/// The upload limit of test apps: small, so the oversized upload test stays fast.
pub const UPLOAD_LIMIT: usize = 64 * 1024;

/// A check runner answering from a table (step -> answer, or inconclusive when absent): the
/// diagnosis crate is the CLI's; here we test what the web app does with an outcome.
pub struct TableChecks(pub BTreeMap<&'static str, &'static str>);

impl CheckRunner for TableChecks {
    /// `l2.client_logs` reads the attached client log, as the diagnosis crate does with its own
    /// analysis: a 401 in it is an authentication failure; no attachment asks for one.
    fn run_with_context(
        &self,
        ctx: CheckContext,
    ) -> BoxFuture<'static, Result<CheckOutcome, String>> {
        if ctx.step != "l2.client_logs" {
            return self.run(&ctx.account, &ctx.step);
        }
        Box::pin(async move {
            let logs: Vec<&CheckAttachment> = ctx.attachments.iter().collect();
            let names: Vec<&str> = logs.iter().map(|a| a.name.as_str()).collect();
            let answer = if logs.is_empty() {
                "no_attachment"
            } else if logs
                .iter()
                .any(|a| String::from_utf8_lossy(&a.bytes).contains("401 Unauthorized"))
            {
                "authentication_failure"
            } else {
                "nothing_found"
            };
            Ok(CheckOutcome {
                answer: Some(answer.to_owned()),
                evidence: serde_json::json!({ "incident": ctx.incident_id, "read": names }),
                summary: format!("{} attachment(s) read: {answer}", logs.len()),
            })
        })
    }

    fn run(&self, account: &str, step: &str) -> BoxFuture<'static, Result<CheckOutcome, String>> {
        let answer = self.0.get(step).map(|a| (*a).to_owned());
        let account = account.to_owned();
        let step = step.to_owned();
        Box::pin(async move {
            // A little latency, as a real check has; bounded.
            tokio::time::sleep(Duration::from_millis(5)).await;
            if step == "l1.echo_call" {
                return Err("the probe account is not configured".to_owned());
            }
            Ok(CheckOutcome {
                summary: match &answer {
                    Some(a) => format!("{account}: {a}"),
                    None => format!("{account}: nothing conclusive"),
                },
                evidence: serde_json::json!({ "account": account, "step": step, "seen": answer }),
                answer,
            })
        })
    }
}

/// An attachment viewer reading "Call-ID: X" lines (one ladder each) instead of SIP: the captures
/// crate is the CLI's; here we test what the page does with a view. The SVG is built without
/// escaping on purpose, so a hostile Call-ID shows whether the page ever inserts it as markup.
pub struct LineViewer;

impl AttachmentViewer for LineViewer {
    fn view(&self, name: &str, content_type: &str, bytes: &[u8]) -> Result<AttachmentView, String> {
        let text = String::from_utf8_lossy(bytes);
        let ids: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("Call-ID: "))
            .map(str::trim)
            .collect();
        if ids.is_empty() {
            return Err(format!("no SIP message in {name}"));
        }
        Ok(AttachmentView {
            kind: format!("line log ({content_type})"),
            summary: format!("{} call(s) in {name}\n<b>not bold</b>", ids.len()),
            ladders: ids
                .iter()
                .enumerate()
                .map(|(i, id)| AttachmentLadder {
                    call_id: (*id).to_owned(),
                    label: format!("call {}", i + 1),
                    svg: line_svg(id),
                })
                .collect(),
            ..AttachmentView::default()
        })
    }
}

/// The SVG the [`LineViewer`] draws for a Call-ID.
pub fn line_svg(call_id: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"300\" height=\"40\"><text x=\"5\" y=\"20\">{call_id}</text></svg>"
    )
}

pub fn table_checks() -> Arc<dyn CheckRunner> {
    Arc::new(TableChecks(BTreeMap::from([
        ("l1.connection_status", "connected"),
        ("l2.server_services", "fine"),
    ])))
}

pub struct TestApp {
    pub state: AppState,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<DropDatabase>,
}

pub fn config() -> WebConfig {
    WebConfig {
        session_ttl: Duration::from_secs(600),
        max_upload_bytes: UPLOAD_LIMIT,
        server_config_summary: serde_json::json!({ "registrar": "127.0.0.1:5060", "transports": ["udp", "tcp"] }),
        ..WebConfig::default()
    }
}

impl TestApp {
    /// An app on a state built by the test (no directory or database to clean up).
    pub fn from_state(state: AppState) -> TestApp {
        TestApp {
            state,
            url: String::new(),
            _dir: None,
            _pg: None,
        }
    }

    pub fn router(&self) -> Router {
        web::router(self.state.clone())
    }

    pub fn store(&self) -> &incidents::Store {
        self.state.store()
    }

    /// Creates a user with a cheap Argon2id hash (the costs travel in the PHC string).
    pub async fn user(&self, name: &str, role: &str) {
        let hash = web::hash_password_with_cost(PASSWORD, 256, 1).expect("hash");
        self.store()
            .create_user(name, &hash, role)
            .await
            .expect("create user");
    }

    /// A second app instance on the same database (what two `dialtone serve` processes are).
    pub async fn sibling(&self) -> AppState {
        let store = incidents::Store::connect(&self.url)
            .await
            .expect("reconnect");
        AppState::new(
            config(),
            store,
            runbook::RunbookSet::builtin(),
            Some(table_checks()),
        )
    }
}

pub async fn sqlite_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/dialtone.sqlite", dir.path().display());
    let store = incidents::Store::connect(&url).await.expect("sqlite store");
    TestApp {
        state: AppState::new(
            config(),
            store,
            runbook::RunbookSet::builtin(),
            Some(table_checks()),
        )
        .with_viewer(Arc::new(LineViewer)),
        url,
        _dir: Some(dir),
        _pg: None,
    }
}

pub async fn pg_app() -> TestApp {
    let admin = std::env::var(PG_ENV)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| {
            panic!("{PG_ENV} is not set; start PostgreSQL with scripts/pg.sh start and export {PG_ENV}=$(scripts/pg.sh url)")
        });
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "dialtone_web_test_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach {PG_ENV}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .expect("drop old test database");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    let base = admin.split('?').next().unwrap_or(&admin);
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    let url = format!("{base}/{name}");
    let guard = DropDatabase { admin, name };
    let store = incidents::Store::connect(&url)
        .await
        .expect("postgres store");
    TestApp {
        state: AppState::new(
            config(),
            store,
            runbook::RunbookSet::builtin(),
            Some(table_checks()),
        ),
        url,
        _dir: None,
        _pg: Some(guard),
    }
}

struct DropDatabase {
    admin: String,
    name: String,
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot block: use a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin).await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .ok()?;
                conn.close().await.ok()
            })
        })
        .join();
    }
}

/// What a request carries.
pub enum Payload {
    Empty,
    Form(Vec<(String, String)>),
    Json(Value),
    /// Multipart with a csrf field (when given) and a file part.
    File {
        csrf: Option<String>,
        name: String,
        bytes: Vec<u8>,
    },
}

/// Who sends a request.
#[derive(Clone, Debug, Default)]
pub struct Agent {
    pub name: String,
    /// Session cookie value.
    pub session: Option<String>,
    /// CSRF token scraped from a page.
    pub csrf: String,
    /// API bearer token.
    pub token: Option<String>,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

pub fn urlencode(pairs: &[(String, String)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn form(pairs: &[(&str, &str)]) -> Payload {
    Payload::Form(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

const BOUNDARY: &str = "dialtone-test-boundary-7f3a";

/// Sends one request through the router; `bearer` chooses the API token over the cookie.
pub async fn send(
    app: &Router,
    method: Method,
    path: &str,
    who: Option<&Agent>,
    bearer: bool,
    payload: Payload,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(a) = who {
        if bearer {
            if let Some(t) = &a.token {
                req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
            }
        } else if let Some(s) = &a.session {
            req = req.header(header::COOKIE, format!("dialtone_session={s}"));
        }
    }
    let body = match payload {
        Payload::Empty => Body::empty(),
        Payload::Form(pairs) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(urlencode(&pairs))
        }
        Payload::Json(v) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(v.to_string())
        }
        Payload::File { csrf, name, bytes } => {
            req = req.header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={BOUNDARY}"),
            );
            let mut b = Vec::new();
            if let Some(c) = csrf {
                b.extend_from_slice(
                    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{c}\r\n")
                        .as_bytes(),
                );
            }
            b.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: text/plain\r\n\r\n"
                )
                .as_bytes(),
            );
            b.extend_from_slice(&bytes);
            b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
            Body::from(b)
        }
    };
    let res = app
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("infallible router");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The value of a hidden `csrf` input in a page.
pub fn scrape_csrf(html: &str) -> Option<String> {
    let i = html.find("name=\"csrf\" value=\"")?;
    let rest = &html[i + "name=\"csrf\" value=\"".len()..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// The value of cookie `name` set by a reply.
pub fn set_cookie(reply: &Reply, name: &str) -> Option<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k == name && !val.is_empty()).then(|| val.to_owned())
        })
}

/// Logs in through the real form (GET /login, POST /login) and scrapes the session's CSRF token.
pub async fn login(app: &Router, name: &str) -> Agent {
    let page = send(app, Method::GET, "/login", None, false, Payload::Empty).await;
    assert_eq!(page.status, StatusCode::OK);
    let login_cookie = set_cookie(&page, "dialtone_login").expect("login cookie");
    let csrf = scrape_csrf(&page.body).expect("login csrf");
    let req = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header(header::COOKIE, format!("dialtone_login={login_cookie}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(urlencode(&[
            ("username".into(), name.into()),
            ("password".into(), PASSWORD.into()),
            ("csrf".into(), csrf),
        ])))
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("router");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "login of {name}");
    let reply = Reply {
        status: res.status(),
        headers: res.headers().clone(),
        body: String::new(),
    };
    let session = set_cookie(&reply, "dialtone_session").expect("session cookie");
    let mut agent = Agent {
        name: name.to_owned(),
        session: Some(session),
        ..Agent::default()
    };
    let page = send(
        app,
        Method::GET,
        "/incidents/new",
        Some(&agent),
        false,
        Payload::Empty,
    )
    .await;
    agent.csrf = scrape_csrf(&page.body).expect("session csrf");
    agent
}

/// Creates the user, logs in and gives the agent an API token too.
pub async fn agent(app: &TestApp, name: &str, role: &str) -> Agent {
    app.user(name, role).await;
    let mut a = login(&app.router(), name).await;
    a.token = Some(
        web::create_api_token(app.store(), name, "tests")
            .await
            .expect("api token"),
    );
    a
}

/// JSON API call with the agent's bearer token.
pub async fn api(
    app: &Router,
    method: Method,
    path: &str,
    who: &Agent,
    body: Option<Value>,
) -> Reply {
    let payload = body.map_or(Payload::Empty, Payload::Json);
    send(app, method, path, Some(who), true, payload).await
}

/// Opens an incident through the API, answering the gate, and returns its id.
pub async fn open_incident(app: &Router, who: &Agent, account: &str) -> i64 {
    let r = api(
        app,
        Method::POST,
        "/api/incidents",
        who,
        Some(serde_json::json!({
            "account": account, "reporter": "the user", "description": "cannot call anyone",
            "gate": { "gate.operational_requirements": "no", "gate.client_error": "none" }
        })),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.json()["incident"]["id"].as_i64().expect("id")
}

/// Answers the current step through the API (reads the version first).
pub async fn answer(app: &Router, who: &Agent, id: i64, step: &str, value: &str) -> Reply {
    let cur = api(app, Method::GET, &format!("/api/incidents/{id}"), who, None).await;
    let v = cur.json()["incident"]["version"].as_i64().expect("version");
    api(
        app,
        Method::POST,
        &format!("/api/incidents/{id}/answer"),
        who,
        Some(serde_json::json!({ "version": v, "step": step, "answer": value })),
    )
    .await
}

/// Answers a list of steps, asserting each is accepted.
pub async fn walk(app: &Router, who: &Agent, id: i64, steps: &[(&str, &str)]) {
    for (step, value) in steps {
        let r = answer(app, who, id, step, value).await;
        assert_eq!(r.status, StatusCode::OK, "{step}={value}: {}", r.body);
    }
}

pub const L1_TO_ECHO: &[(&str, &str)] = &[
    ("l1.connection_status", "connected"),
    ("l1.force_reconnection", "fine"),
];

pub async fn version(app: &Router, who: &Agent, id: i64) -> i64 {
    let cur = api(app, Method::GET, &format!("/api/incidents/{id}"), who, None).await;
    cur.json()["incident"]["version"].as_i64().expect("version")
}

/// An incident escalated to L2 (server status check), at `l2.server_services`.
pub async fn l2_incident(app: &Router, admin: &Agent, account: &str) -> i64 {
    let id = open_incident(app, admin, account).await;
    walk(app, admin, id, L1_TO_ECHO).await;
    walk(app, admin, id, &[("l1.echo_call", "fails")]).await;
    let v = version(app, admin, id).await;
    let r = api(
        app,
        Method::POST,
        &format!("/api/incidents/{id}/escalate"),
        admin,
        Some(serde_json::json!({ "version": v, "reason": "echo test fails" })),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    id
}
