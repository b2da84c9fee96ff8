//! `dialtone serve` (the agents' web app) and `dialtone user …` (its accounts).

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};
use clap::{Args, Subcommand};
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default; port 0 picks a free one).
    #[arg(long, env = "DIALTONE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Mark session cookies Secure (when the app is served behind TLS).
    #[arg(long)]
    pub secure_cookies: bool,
    /// Server configuration: enables the "run automated check" buttons.
    #[arg(long, env = "DIALTONE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Largest attachment accepted, in bytes.
    #[arg(long, default_value_t = 20 * 1024 * 1024)]
    pub max_upload: usize,
    /// Session lifetime, e.g. 8h.
    #[arg(long, default_value = "8h", value_parser = |s: &str| diagnosis::config::parse_duration(s))]
    pub session_ttl: std::time::Duration,
    /// Upper bound on analysing one attachment for its page (e.g. 60s); past it the analysis
    /// is stopped.
    #[arg(long, default_value = "60s", value_parser = |s: &str| diagnosis::config::parse_duration(s))]
    pub view_timeout: std::time::Duration,
    /// Also receive HEPv3 on this address (UDP and TCP), into events.sqlite in the data
    /// directory (as `dialtone collect`).
    #[arg(long, env = "DIALTONE_HEP")]
    pub hep: Option<SocketAddr>,
    /// Post openings, escalations and closings to the receivers in this file (see
    /// `dialtone webhook check`).
    #[arg(long, env = "DIALTONE_WEBHOOKS")]
    pub webhooks: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user; the password is read from standard input (one line).
    Add {
        name: String,
        /// l1, l2, lead (L2 rights and the reports) or admin.
        #[arg(long)]
        role: String,
    },
    /// List users.
    List,
    /// Disable a user (their sessions stop working).
    Disable { name: String },
    /// Create an API token for a user's scripts; printed once.
    Token {
        name: String,
        #[arg(long, default_value = "cli")]
        label: String,
        /// How long the token works, e.g. 90d, 12h; "never" for no expiry.
        #[arg(long, default_value = "90d")]
        ttl: String,
    },
    /// Revoke a user's API tokens (all, or those with a label); they stop working at once.
    TokenRevoke {
        name: String,
        #[arg(long)]
        label: Option<String>,
    },
}

/// The web app's "run automated check" buttons, answered by the diagnosis crate.
struct Checks(Arc<diagnosis::Diagnoser>);

impl web::CheckRunner for Checks {
    fn run(
        &self,
        account: &str,
        step: &str,
    ) -> futures::future::BoxFuture<'static, Result<web::CheckOutcome, String>> {
        self.run_with_context(web::CheckContext {
            incident_id: 0,
            account: account.to_string(),
            step: step.to_string(),
            attachments: Vec::new(),
        })
    }

    fn run_with_context(
        &self,
        ctx: web::CheckContext,
    ) -> futures::future::BoxFuture<'static, Result<web::CheckOutcome, String>> {
        let d = self.0.clone();
        Box::pin(async move {
            // The incident's logs and captures go to a private temporary directory for analysis.
            let tmp = tempfile::tempdir()
                .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
            let items = ctx
                .attachments
                .iter()
                .map(|a| (a.name.as_str(), a.bytes.as_slice()));
            let files = crate::util::write_attachments(tmp.path(), items)
                .map_err(|e| format!("cannot write an attachment for analysis: {e}"))?;
            let (decision, ms) = d
                .check_step(&ctx.account, &ctx.step, files)
                .await
                .map_err(|e| e.to_string())?;
            Ok(web::CheckOutcome {
                answer: decision.answer,
                evidence: serde_json::json!({"summary": decision.summary, "duration_ms": ms, "data": decision.evidence}),
                summary: decision.summary,
            })
        })
    }
}

/// The web app's attachment pages: client logs and captures analysed by the captures crate,
/// each call and registration drawn as a ladder. The web app calls it on a blocking thread, for
/// files up to its upload limit.
struct Viewer;

impl web::AttachmentViewer for Viewer {
    fn markdown(&self, _name: &str, _content_type: &str, bytes: &[u8]) -> Option<String> {
        match captures::analyze_reader(bytes, &captures::AnalyzeOptions::default()) {
            Ok(an) if an.stats.sip_messages > 0 => Some(captures::markdown_section(&an)),
            _ => None,
        }
    }

    fn view(
        &self,
        name: &str,
        content_type: &str,
        bytes: &[u8],
    ) -> Result<web::AttachmentView, String> {
        self.view_cancellable(name, content_type, bytes, &web::Cancel::default())
    }

    fn view_cancellable(
        &self,
        name: &str,
        _content_type: &str,
        bytes: &[u8],
        cancel: &web::Cancel,
    ) -> Result<web::AttachmentView, String> {
        // The content decides (magic numbers, log markers), not the type the browser sent. The
        // reader loop checks `cancel`, so a page that stopped waiting stops the analysis.
        let opts = captures::AnalyzeOptions {
            cancel: Some(cancel.flag()),
            ..captures::AnalyzeOptions::default()
        };
        let a = captures::analyze_reader(bytes, &opts)
            .map_err(|e| format!("{name} cannot be analysed: {e}"))?;
        let status = |code: Option<u16>, reason: &str| match code {
            Some(c) => format!("{c} {reason}"),
            None => "no final response".to_owned(),
        };
        // (Call-ID, a title: what it was and how it ended)
        let titled = |call_id: &str, what: String, code: Option<u16>, reason: &str| {
            (
                call_id.to_owned(),
                format!("{what}: {}", status(code, reason)),
            )
        };
        let calls = a.calls.iter().map(|c| {
            let what = format!("Call {} -> {}", c.from_user, c.to_user);
            titled(&c.call_id, what, c.final_status, &c.final_reason)
        });
        let registrations = a.registrations.iter().map(|r| {
            let what = format!("Registration of {} at {}", r.user, r.registrar);
            titled(&r.call_id, what, r.final_status, &r.final_reason)
        });
        let ladders = calls
            .chain(registrations)
            // Drawing stops too once nobody waits.
            .take_while(|_| !cancel.is_cancelled())
            .filter_map(|(call_id, label)| {
                captures::ladder_svg(&a, &call_id).map(|svg| web::AttachmentLadder {
                    call_id,
                    label,
                    svg,
                })
            })
            .collect();
        if cancel.is_cancelled() {
            return Err(format!("the analysis of {name} was cancelled"));
        }
        let failed = |code: Option<u16>| code.is_none_or(|c| c >= 300);
        let cause = |c: &[captures::Finding]| c.first().map(|f| f.text.clone()).unwrap_or_default();
        let rows = a
            .calls
            .iter()
            .map(|c| web::CaptureRow {
                call_id: c.call_id.clone(),
                registration: false,
                start: c.start_text.clone(),
                from: c.from_user.clone(),
                to: c.to_user.clone(),
                user_agent: c.user_agent.clone(),
                result: status(c.final_status, &c.final_reason),
                failed: failed(c.final_status),
                cause: cause(&c.causes),
                accounts: vec![c.from_user.clone(), c.to_user.clone()],
            })
            .chain(a.registrations.iter().map(|r| web::CaptureRow {
                call_id: r.call_id.clone(),
                registration: true,
                start: r.start_text.clone(),
                from: r.user.clone(),
                to: r.registrar.clone(),
                user_agent: r.user_agent.clone(),
                result: status(r.final_status, &r.final_reason),
                failed: failed(r.final_status),
                cause: cause(&r.causes),
                accounts: vec![r.user.clone()],
            }))
            .collect();
        // One line per distinct sentence (the same cause for several users is counted once).
        let mut grouped: Vec<(String, u32)> = Vec::new();
        for f in captures::causes(&a) {
            match grouped.iter_mut().find(|(t, _)| *t == f.text) {
                Some((_, n)) => *n += f.count,
                None => grouped.push((f.text.clone(), f.count)),
            }
        }
        let findings = grouped
            .into_iter()
            .map(|(text, n)| {
                if n > 1 {
                    format!("{text} ({n} times)")
                } else {
                    text
                }
            })
            .collect();
        Ok(web::AttachmentView {
            kind: a.input_kind.name().to_owned(),
            // Calls, registrations, findings and reading warnings, as `dialtone capture analyze`.
            summary: captures::summary_table(&a),
            ladders,
            input: format!(
                "{} bytes, {} SIP messages over {:.1} s",
                a.stats.bytes, a.stats.sip_messages, a.stats.duration
            ),
            rows,
            findings,
            warnings: a.warnings.clone(),
        })
    }
}

/// The step page's "Recent SIP events" from the HEP window (`sip-events`), opened on the first
/// page that asks (a collector may create the file after serve starts) and kept.
struct Events {
    path: std::path::PathBuf,
    window: Arc<tokio::sync::OnceCell<sip_events::EventWindow>>,
}

impl web::SipEvents for Events {
    fn recent(
        &self,
        account: &str,
    ) -> futures::future::BoxFuture<'static, Result<Vec<web::SipEventLine>, String>> {
        let (path, window) = (self.path.clone(), self.window.clone());
        let account = account.to_string();
        Box::pin(async move {
            let w = window
                .get_or_try_init(|| sip_events::EventWindow::open(&path))
                .await
                .map_err(|e| e.to_string())?;
            let since = chrono::Utc::now() - chrono::Duration::hours(1);
            let events = w
                .timeline(&account, since, 30)
                .await
                .map_err(|e| e.to_string())?;
            Ok(events
                .iter()
                .map(|e| {
                    let (status, challenge) = match e {
                        sip_events::TimelineEvent::Registration(r) => (r.status, r.challenge),
                        sip_events::TimelineEvent::Call(c) => (c.status, false),
                    };
                    web::SipEventLine {
                        at: e.at().format("%H:%M:%S").to_string(),
                        text: e.describe(&account),
                        failed: status >= 300 && !challenge,
                    }
                })
                .collect())
        })
    }
}

pub async fn serve(ctx: &Ctx, args: ServeArgs) -> anyhow::Result<u8> {
    let store = ctx.store().await?;
    let set = ctx.runbooks()?;
    let webhooks = args
        .webhooks
        .as_deref()
        .map(crate::webhook::Webhooks::load)
        .transpose()?
        .unwrap_or_default();
    let mut events_db = None;
    let (checks, summary): (Option<Arc<dyn web::CheckRunner>>, serde_json::Value) =
        match crate::config::locate(args.config.as_deref()) {
            Some(path) => {
                let cfg = crate::config::load_file(&path)?;
                let summary = cfg.summary();
                events_db = cfg.management.events_db.clone();
                let d = diagnosis::Diagnoser::from_config(cfg, Arc::new(set.clone()))
                    .map_err(|e| coded(exit::CONFIG, e.to_string()))?;
                (Some(Arc::new(Checks(Arc::new(d)))), summary)
            }
            None => (
                None,
                serde_json::json!({"note": "no server configuration: automated checks are off"}),
            ),
        };
    let cfg = web::WebConfig {
        listen: args.listen,
        secure_cookies: args.secure_cookies,
        session_ttl: args.session_ttl,
        max_upload_bytes: args.max_upload,
        server_config_summary: summary,
        view_timeout: args.view_timeout,
        webhooks_from_file: webhooks.summary(),
        ..web::WebConfig::default()
    };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| {
            coded(
                exit::CONFIG,
                format!("cannot listen on {}: {e}", args.listen),
            )
        })?;
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find the port.
    println!(
        "dialtone web listening on http://{addr} ({} store)",
        store.backend()
    );
    let collector = match args.hep {
        Some(hep) => {
            let path = crate::events_cmd::events_path(ctx, None);
            events_db.get_or_insert_with(|| path.clone());
            let c =
                crate::events_cmd::start_collector(hep, sip_events::StoreConfig::new(path)).await?;
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(c.run(async move {
                let _ = stopped.await;
            }));
            Some((stop, task))
        }
        None => None,
    };
    let mut state = web::AppState::new(cfg, store, set, checks).with_viewer(Arc::new(Viewer));
    if let Some(path) = events_db {
        state = state.with_events(Arc::new(Events {
            path,
            window: Arc::default(),
        }));
    }
    // Always running: receivers may be saved in the admin page at any time.
    let worker = tokio::spawn(crate::webhook::run(
        state.store().clone(),
        ctx.runbooks()
            .unwrap_or_else(|_| runbook::RunbookSet::builtin()),
        webhooks,
    ));
    let served = web::serve_on(listener, state, shutdown()).await;
    worker.abort();
    if let Some((stop, task)) = collector {
        // The collector commits what it has queued before the web app's exit.
        let _ = stop.send(());
        task.await?
            .map_err(|e| coded(exit::STORAGE, e.to_string()))?;
    }
    served?;
    Ok(exit::OK)
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}

pub async fn user(ctx: &Ctx, cmd: UserCmd) -> anyhow::Result<u8> {
    let store = ctx.store().await?;
    match cmd {
        UserCmd::Add { name, role } => {
            let role = role.to_ascii_lowercase();
            if !incidents::ROLES.contains(&role.as_str()) {
                return Err(coded(
                    exit::INVALID,
                    format!("unknown role {role:?} (expected l1, l2, lead or admin)"),
                ));
            }
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            let password = line.trim_end_matches(['\n', '\r']);
            if password.len() < 8 {
                return Err(coded(
                    exit::INVALID,
                    "the password (read from standard input) must have at least 8 characters",
                ));
            }
            let hash =
                web::hash_password(password).map_err(|e| coded(exit::INTERNAL, e.to_string()))?;
            let u = store
                .create_user_by(&name, &hash, &role, &ctx.actor)
                .await?;
            if ctx.json {
                print_json(&serde_json::json!({"username": u.username, "role": u.role}))?;
            } else {
                println!("created {} user {}", u.role, u.username);
            }
        }
        UserCmd::List => {
            let users = store.users().await?;
            if ctx.json {
                let list: Vec<_> = users.iter().map(|u| serde_json::json!({"username": u.username, "role": u.role, "disabled": u.disabled})).collect();
                print_json(&list)?;
            } else {
                for u in users {
                    println!(
                        "{:<20} {:<6} {}",
                        u.username,
                        u.role,
                        if u.disabled { "disabled" } else { "" }
                    );
                }
            }
        }
        UserCmd::Disable { name } => {
            store.set_user_disabled(&name, true, &ctx.actor).await?;
            println!("disabled {name}");
        }
        UserCmd::Token { name, label, ttl } => {
            let ttl = if ttl.eq_ignore_ascii_case("never") {
                None
            } else {
                Some(
                    diagnosis::config::parse_duration(&ttl)
                        .map_err(|e| coded(exit::INVALID, format!("--ttl: {e}")))?,
                )
            };
            if store.user(&name).await?.is_none() {
                return Err(coded(exit::NOT_FOUND, format!("user {name} not found")));
            }
            let token = web::create_api_token_for(&store, &name, &label, ttl, &ctx.actor)
                .await
                .map_err(|e| coded(exit::INTERNAL, e.to_string()))?;
            println!("{token}");
        }
        UserCmd::TokenRevoke { name, label } => {
            if store.user(&name).await?.is_none() {
                return Err(coded(exit::NOT_FOUND, format!("user {name} not found")));
            }
            let n = store
                .revoke_api_tokens(&name, label.as_deref(), &ctx.actor)
                .await?;
            println!("revoked {n} API token(s) of {name}");
        }
    }
    Ok(exit::OK)
}
