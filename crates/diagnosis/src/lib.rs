//! The automated diagnosis: runs the checks behind the runbook's steps against a server and
//! walks "User can't call" from the gate to an outcome with the evidence it gathered.
//!
//! The only crate that knows both the runbook and the server. Layers:
//! - [`gather`] reads every source concurrently, each under a time bound (IO);
//! - [`decide`] turns evidence into answers, step by step (pure);
//! - [`report`] walks the runbook with those answers and explains the result (pure).

pub mod config;
pub mod decide;
pub mod doctor;
pub mod events;
pub mod evidence;
pub mod gather;
mod logs;
pub mod probes;
pub mod report;

pub use config::{Config, EXAMPLE};
pub use decide::{Decision, Thresholds};
pub use evidence::Gathered;
pub use gather::GatherRequest;
pub use probes::{ProbeResults, Prober, RecordedProber, SipProber};
pub use report::Report;

use chrono::Utc;
use server_state::ServerState;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything this crate can fail with before a diagnosis starts (a diagnosis itself never
/// fails: what it cannot learn becomes part of its report).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("configuration: {0}")]
    Config(String),
    #[error("server state: {0}")]
    State(#[from] server_state::Error),
    #[error("unknown runbook `{0}`")]
    UnknownRunbook(String),
    #[error("unknown step `{0}`")]
    UnknownStep(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Opens the server-state backend the configuration names.
pub fn open_state(cfg: &Config) -> Result<Arc<dyn ServerState>> {
    let m = &cfg.management;
    if let Some(dir) = &m.export_dir {
        return Ok(Arc::new(server_state::FileState::open(dir)?));
    }
    let Some(db_url) = &m.database_url else {
        return Err(Error::Config(
            "management: set database_url (and rpc_url), or export_dir".into(),
        ));
    };
    let rpc_url = m.rpc_url.clone().unwrap_or_default();
    let mut trunk_prefixes = std::collections::BTreeMap::new();
    for (id, prefixes) in &cfg.server.trunk_prefixes {
        let set: u32 = id.parse().map_err(|_| {
            Error::Config(format!(
                "server.trunk_prefixes: trunk id `{id}` must be a dispatcher set number"
            ))
        })?;
        trunk_prefixes.insert(set, prefixes.clone());
    }
    let columns = server_state::ColumnMap {
        caller: m.columns.caller.clone(),
        callee: m.columns.callee.clone(),
        dialled: m.columns.dialled.clone(),
        route: m.columns.route.clone(),
    };
    let kc = server_state::KamailioConfig {
        rpc_url,
        db_url: db_url.clone(),
        domain: cfg.server.domain.clone(),
        trunk_prefixes,
        echo_numbers: vec![cfg.server.echo_number.clone(), "echo".into()],
        timeout: cfg.management_timeout(),
        columns,
        usrloc_db_mode: m.usrloc_db_mode,
        events: events_window(m.events_db.as_deref())?,
    };
    Ok(Arc::new(server_state::KamailioState::new(kc)?))
}

/// The HEP event window named by `[management] events_db`, when one is.
fn events_window(
    path: Option<&std::path::Path>,
) -> Result<Option<Arc<dyn server_state::TraceWindow>>> {
    Ok(path.map(|p| Arc::new(events::HepWindow::new(p)) as Arc<dyn server_state::TraceWindow>))
}

/// What to diagnose.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub account: String,
    /// The runbook to walk; `user-cant-call` when empty.
    pub runbook: String,
    /// Answers given by the agent (`--answer STEP=VALUE`), e.g. for gate steps.
    pub answers: Vec<(String, String)>,
    /// Watch this long for a fresh REGISTER (the user forces a reconnection meanwhile).
    pub watch: Option<Duration>,
    /// Calls and REGISTER attempts from this time on count (default: the configured window).
    pub since: Option<chrono::DateTime<Utc>>,
    /// Attached client logs and captures (name, path).
    pub attachments: Vec<(String, std::path::PathBuf)>,
    /// Judge as of this time instead of now (for exports taken earlier).
    pub at: Option<chrono::DateTime<Utc>>,
}

/// Runs diagnoses for one configured server.
pub struct Diagnoser {
    cfg: Config,
    state: Arc<dyn ServerState>,
    prober: Arc<dyn Prober>,
    runbooks: Arc<runbook::RunbookSet>,
}

impl Diagnoser {
    pub fn new(
        cfg: Config,
        state: Arc<dyn ServerState>,
        prober: Arc<dyn Prober>,
        runbooks: Arc<runbook::RunbookSet>,
    ) -> Self {
        Diagnoser {
            cfg,
            state,
            prober,
            runbooks,
        }
    }

    /// The usual set-up: the backend and the SIP prober the configuration names.
    pub fn from_config(cfg: Config, runbooks: Arc<runbook::RunbookSet>) -> Result<Self> {
        let state = open_state(&cfg)?;
        // An export may come with the probe results recorded where the server could be reached.
        let recorded = cfg
            .management
            .export_dir
            .as_ref()
            .map(|d| d.join("probes.json"))
            .filter(|p| p.exists());
        let prober: Arc<dyn Prober> = match recorded {
            Some(p) => Arc::new(RecordedProber::from_file(&p)?),
            None => Arc::new(SipProber::new(cfg.clone())),
        };
        Ok(Diagnoser::new(cfg, state, prober, runbooks))
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn state(&self) -> Arc<dyn ServerState> {
        self.state.clone()
    }

    fn thresholds(&self) -> Thresholds {
        Thresholds {
            max_rtt_ms: self.cfg.diagnosis.max_rtt.as_secs_f64() * 1000.0,
            max_loss_percent: self.cfg.diagnosis.max_loss_percent,
        }
    }

    /// Gathers the evidence for an account (bounded by the configured total time).
    pub async fn gather(&self, req: &Request) -> Gathered {
        self.gather_wanted(req, decide::Want::all()).await
    }

    async fn gather_wanted(&self, req: &Request, want: decide::Want) -> Gathered {
        let now = req.at.unwrap_or_else(Utc::now);
        let since = req.since.unwrap_or_else(|| {
            now - chrono::Duration::from_std(self.cfg.diagnosis.window)
                .unwrap_or(chrono::Duration::days(1))
        });
        let greq = GatherRequest {
            user: req.account.clone(),
            since,
            watch: req.watch,
            attachments: req.attachments.clone(),
            now,
            want,
        };
        let bound = self.cfg.diagnosis.total_timeout + req.watch.unwrap_or_default();
        match tokio::time::timeout(
            bound,
            gather::gather(&self.cfg, self.state.clone(), self.prober.as_ref(), &greq),
        )
        .await
        {
            Ok(g) => g,
            Err(_) => Gathered::empty(
                &req.account,
                now,
                since,
                &format!("the diagnosis did not finish within {} s", bound.as_secs()),
            ),
        }
    }

    /// Walks the runbook for `req.account` with evidence gathered now.
    pub async fn diagnose(&self, req: &Request) -> Result<Report> {
        let runbook = if req.runbook.is_empty() {
            "user-cant-call"
        } else {
            req.runbook.as_str()
        };
        if self.runbooks.get(runbook).is_none() {
            return Err(Error::UnknownRunbook(runbook.to_string()));
        }
        for (step, _) in &req.answers {
            if self.runbooks.step(step).is_none() {
                return Err(Error::UnknownStep(step.clone()));
            }
        }
        let start = Instant::now();
        let g = self.gather(req).await;
        let mut report = report::walk(&self.runbooks, runbook, &g, &req.answers, self.thresholds());
        report.duration_ms = start.elapsed().as_millis() as u64;
        report.media_window_ms = if g.echo.is_ok() {
            self.prober.media_window().as_millis() as u64
        } else {
            0
        };
        Ok(report)
    }

    /// Runs the check of one step for an account (the web app's "run automated check");
    /// `attachments` are the incident's client logs and captures (name, path).
    pub async fn check_step(
        &self,
        account: &str,
        step: &str,
        attachments: Vec<(String, std::path::PathBuf)>,
    ) -> Result<(Decision, u64)> {
        let (_, st) = self
            .runbooks
            .step(step)
            .ok_or_else(|| Error::UnknownStep(step.to_string()))?;
        let Some(check) = st.check else {
            return Ok((
                Decision {
                    answer: None,
                    summary: "this step has no automated check".into(),
                    evidence: serde_json::Value::Null,
                },
                0,
            ));
        };
        let start = Instant::now();
        // Only what this check reads: a click on "connection status" places no echo call.
        let req = Request {
            account: account.to_string(),
            attachments,
            ..Default::default()
        };
        let g = self
            .gather_wanted(&req, decide::Want::checks([check]))
            .await;
        let mut d = decide::decide(check, &g, self.thresholds());
        if d.answer.as_deref().is_some_and(|a| st.answer(a).is_none()) {
            d.answer = None;
        }
        Ok((d, start.elapsed().as_millis() as u64))
    }
}
