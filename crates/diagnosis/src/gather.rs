//! Gathering evidence: every source is read concurrently, each under a time bound; a source
//! that fails (server down, timeout) becomes evidence that says so, never an error.

use crate::config::Config;
use crate::decide::{Source, Want};
use crate::evidence::{
    CalleeInfo, Gathered, Got, LogAnalysis, NumberOwners, WatchResult, same_user,
};
use crate::probes::Prober;
use chrono::{DateTime, Utc};
use server_state::ServerState;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What to gather for.
#[derive(Debug, Clone)]
pub struct GatherRequest {
    pub user: String,
    /// Calls and attempts from this time on count.
    pub since: DateTime<Utc>,
    /// Watch for a fresh REGISTER this long (the user forces a reconnection meanwhile).
    pub watch: Option<Duration>,
    /// Attached client logs and captures: (name, path).
    pub attachments: Vec<(String, std::path::PathBuf)>,
    /// The time the evidence is judged at (now, or when an export was taken).
    pub now: DateTime<Utc>,
    /// Which sources to read (a single step's check reads only its own).
    pub want: Want,
}

/// What an unread source says about itself.
const NOT_GATHERED: &str = "not gathered for this check";

/// Runs `fut` under `bound`, timing it; a timeout or an error becomes `Err(reason)`.
async fn timed<T, E: std::fmt::Display>(
    timings: &std::sync::Mutex<BTreeMap<String, u64>>,
    name: &str,
    bound: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Got<T> {
    let start = Instant::now();
    let r = match tokio::time::timeout(bound, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", bound.as_millis())),
    };
    if let Ok(mut t) = timings.lock() {
        t.insert(name.to_string(), start.elapsed().as_millis() as u64);
    }
    r
}

/// [`timed`] when `source` is wanted; otherwise the future is never polled (no IO at all).
async fn timed_if<T, E: std::fmt::Display>(
    want: &Want,
    timings: &std::sync::Mutex<BTreeMap<String, u64>>,
    source: Source,
    bound: Duration,
    fut: impl Future<Output = Result<T, E>>,
) -> Got<T> {
    if !want.has(source) {
        return Err(NOT_GATHERED.into());
    }
    timed(timings, source.as_str(), bound, fut).await
}

/// Gathers every piece of evidence the runbooks' checks use (or those `req.want` names),
/// concurrently.
pub async fn gather(
    cfg: &Config,
    state: Arc<dyn ServerState>,
    prober: &dyn Prober,
    req: &GatherRequest,
) -> Gathered {
    let now = req.now;
    let timings = std::sync::Mutex::new(BTreeMap::new());
    let bound = cfg.management_timeout() * 2;
    let user = req.user.as_str();
    let st = state.as_ref();

    let want = &req.want;
    let account = timed_if(want, &timings, Source::Account, bound, st.account(user));
    let registrations = timed_if(
        want,
        &timings,
        Source::Registrations,
        bound,
        st.registrations(user),
    );
    let attempts = timed_if(
        want,
        &timings,
        Source::Attempts,
        bound,
        st.registration_attempts(user, req.since),
    );
    let calls = timed_if(
        want,
        &timings,
        Source::Calls,
        bound,
        st.calls(user, req.since, 200),
    );
    let trunks = timed_if(want, &timings, Source::Trunks, bound, st.trunks());
    let health = timed_if(want, &timings, Source::Health, bound, st.health());
    // The trace as far back as it goes, for "has this account ever registered".
    let far = now - chrono::Duration::days(3650);
    let history = timed_if(
        want,
        &timings,
        Source::EverRegistered,
        bound,
        st.registration_attempts(user, far),
    );
    let probes = async {
        let start = Instant::now();
        let r = prober.run_all(want).await;
        if let Ok(mut t) = timings.lock() {
            t.insert("probes".into(), start.elapsed().as_millis() as u64);
        }
        r
    };
    let watch = async {
        match req.watch {
            Some(w) if want.has(Source::Watch) => {
                let bound = w + cfg.management_timeout() * 2;
                Some(timed(&timings, "watch", bound, watch_register(st, user, w)).await)
            }
            _ => None,
        }
    };
    let logs = async {
        let start = Instant::now();
        let r = if want.has(Source::ClientLogs) {
            analyse_logs(user, &req.attachments).await
        } else {
            Vec::new()
        };
        if let Ok(mut t) = timings.lock() {
            t.insert("client_logs".into(), start.elapsed().as_millis() as u64);
        }
        r
    };
    // Every source at once: the server's own state, and what is seen from outside it.
    let server = async { tokio::join!(account, registrations, attempts, calls, trunks) };
    let outside = async { tokio::join!(health, history, probes, watch, logs) };
    let (
        (account, registrations, attempts, calls, trunks),
        (health, history, probes, watch, client_logs),
    ) = tokio::join!(server, outside);
    // Registered now, or an accepted REGISTER in the trace: the registrations already read count.
    let ever = history.map(|h| {
        registrations.as_ref().is_ok_and(|r| !r.is_empty())
            || h.iter().any(|a| (200..300).contains(&a.status))
    });

    // Second round: what depends on the first (numbers of the account, routes of failed calls).
    let duplicates = match &account {
        _ if !want.has(Source::Duplicates) => Err(NOT_GATHERED.into()),
        Ok(Some(a)) => {
            let a = a.clone();
            timed(&timings, "duplicates", bound, async {
                let mut out = Vec::new();
                for n in &a.numbers {
                    let owners = st.accounts_with_number(&n.number).await?;
                    let others = owners
                        .into_iter()
                        .filter(|o| !same_user(&o.user, &a.user))
                        .map(|o| o.user)
                        .collect();
                    out.push(NumberOwners {
                        number: n.number.clone(),
                        others,
                    });
                }
                Ok::<_, server_state::Error>(out)
            })
            .await
        }
        Ok(None) => Ok(Vec::new()),
        Err(e) => Err(e.clone()),
    };
    let echo_numbers: Vec<String> = vec![cfg.server.echo_number.clone(), "echo".to_string()];
    let failed: Vec<_> = match &calls {
        Ok(c) => c
            .iter()
            .filter(|c| same_user(&c.caller, user) && c.status >= 300)
            .filter(|c| !echo_numbers.contains(&c.dialled))
            .cloned()
            .collect(),
        Err(_) => Vec::new(),
    };
    let routes = match &calls {
        _ if !want.has(Source::Routes) => Err(NOT_GATHERED.into()),
        Err(e) => Err(e.clone()),
        Ok(_) => {
            let dialled: Vec<String> = failed.iter().map(|c| c.dialled.clone()).collect();
            timed(&timings, "routes", bound, async {
                let mut m = BTreeMap::new();
                for d in dialled {
                    if let std::collections::btree_map::Entry::Vacant(slot) = m.entry(d) {
                        let r = st.route_for(slot.key()).await?;
                        slot.insert(r);
                    }
                }
                Ok::<_, server_state::Error>(m)
            })
            .await
        }
    };
    let callee = match failed.first() {
        _ if !want.has(Source::Callee) => Err(NOT_GATHERED.into()),
        None => Ok(None),
        Some(c) => {
            let c = c.clone();
            timed(&timings, "callee", bound, callee_info(st, c)).await
        }
    };
    let timings = timings.into_inner().unwrap_or_default();
    let mut timings = timings;
    for (k, v) in &probes.timings {
        timings.insert(k.clone(), *v);
    }
    Gathered {
        user: user.to_string(),
        now,
        since: req.since,
        echo_numbers,
        account,
        registrations,
        attempts,
        ever_registered: ever,
        watch,
        calls,
        trunks,
        routes,
        health,
        duplicates,
        transports: probes.transports,
        tls: probes.tls,
        echo: probes.echo,
        self_test: probes.self_test,
        dns: probes.dns,
        client_logs,
        callee,
        license: probes.license,
        timings,
    }
}

/// Polls the server's REGISTER trace for `window`, stopping at the first accepted one.
async fn watch_register(
    st: &dyn ServerState,
    user: &str,
    window: Duration,
) -> server_state::Result<WatchResult> {
    let started = Utc::now();
    let deadline = Instant::now() + window;
    loop {
        let attempts = st.registration_attempts(user, started).await?;
        let accepted = attempts.iter().any(|a| (200..300).contains(&a.status));
        if accepted || Instant::now() >= deadline {
            return Ok(WatchResult {
                started,
                seconds: window.as_secs(),
                attempts,
            });
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(left.min(Duration::from_millis(500))).await;
    }
}

async fn callee_info(
    st: &dyn ServerState,
    call: server_state::CallRecord,
) -> server_state::Result<Option<CalleeInfo>> {
    let owners = st.accounts_with_number(&call.dialled).await?;
    let account = match owners.first() {
        Some(a) => Some(a.clone()),
        None => st.account(&call.dialled).await?.filter(|a| a.exists),
    };
    let registered = match &account {
        Some(a) => !st.registrations(&a.user).await?.is_empty(),
        None => false,
    };
    let others = if owners.len() > 1 {
        owners.iter().map(|o| o.user.clone()).collect()
    } else {
        Vec::new()
    };
    Ok(Some(CalleeInfo {
        dialled: call.dialled,
        status: call.status,
        account,
        registered,
        others_with_number: others,
    }))
}

async fn analyse_logs(
    user: &str,
    attachments: &[(String, std::path::PathBuf)],
) -> Vec<LogAnalysis> {
    let mut out = Vec::new();
    for (name, path) in attachments {
        let name = name.clone();
        let path = path.clone();
        let user = user.to_string();
        // Capture analysis is CPU work on a file: keep it off the async workers.
        let r =
            tokio::task::spawn_blocking(move || crate::logs::analyse(&name, &path, &user)).await;
        match r {
            Ok(a) => out.push(a),
            Err(e) => out.push(LogAnalysis {
                attachment: "?".into(),
                calls: 0,
                registrations: 0,
                findings: Vec::new(),
                warnings: vec![format!("analysis failed: {e}")],
            }),
        }
    }
    out
}
