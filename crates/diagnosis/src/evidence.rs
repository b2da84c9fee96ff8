//! What a diagnosis gathers before it decides anything: server state, probe results, analysed
//! client logs. Plain data, so that the decisions in `decide` are pure and testable.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use server_state::{
    Account, CallRecord, RegAttempt, Registration, ServiceHealth, Transport, Trunk,
};
use sip_probe::Category;
use std::collections::BTreeMap;

/// A piece of evidence, or why it could not be gathered (server down, timeout, not configured).
pub type Got<T> = Result<T, String>;

/// A probe's result reduced to what a decision needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeSummary {
    /// ok, dns, unreachable, refused, timeout, tls, auth_rejected, not_found, unavailable,
    /// server_error, bad_response, media_no_echo, media_degraded.
    pub category: Category,
    /// The verdict in plain words.
    pub summary: String,
    /// The final SIP status, when one came.
    pub status: Option<u16>,
    pub duration_ms: u64,
    /// Round trip of the request that got the final answer.
    pub rtt_ms: Option<f64>,
    /// The certificate the server presented (TLS only).
    pub certificate: Option<CertSummary>,
    /// Media measured on an echo call.
    pub media: Option<MediaSummary>,
    /// The compact ladder of the exchange (secrets redacted).
    pub ladder: String,
}

impl ProbeSummary {
    pub fn ok(&self) -> bool {
        self.category == Category::Ok
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertSummary {
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub not_before: String,
    pub not_after: String,
    /// "valid", or why not: "expired", "unknown issuer", "name mismatch"…
    pub verification: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MediaSummary {
    pub sent: u32,
    pub echoed: u32,
    pub loss_percent: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
    pub jitter_ms: Option<f64>,
}

/// A burst of OPTIONS on one transport.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BurstStats {
    pub sent: u32,
    pub answered: u32,
    pub loss_percent: f64,
    pub rtt_min_ms: Option<f64>,
    pub rtt_avg_ms: Option<f64>,
    pub rtt_max_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TransportProbe {
    pub transport: Transport,
    pub port: u16,
    pub options: ProbeSummary,
    pub burst: Option<BurstStats>,
}

/// RFC 3263 resolution of the server's domain, step by step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DnsSummary {
    /// Nothing was resolved because a host or address is configured.
    pub skipped: bool,
    pub ok: bool,
    pub steps: Vec<String>,
}

/// Watching for a fresh REGISTER after the agent asked the user to reconnect.
#[derive(Debug, Clone, Serialize)]
pub struct WatchResult {
    pub started: DateTime<Utc>,
    pub seconds: u64,
    /// Attempts seen during the watch, oldest first.
    pub attempts: Vec<RegAttempt>,
}

/// One attached client log or capture, analysed.
#[derive(Debug, Clone, Serialize)]
pub struct LogFinding {
    pub attachment: String,
    /// authentication_failure, client_misconfiguration, tls_failure, network_problem, or none.
    pub outcome_hint: Option<String>,
    pub cause: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LogAnalysis {
    pub attachment: String,
    pub calls: usize,
    pub registrations: usize,
    pub findings: Vec<LogFinding>,
    pub warnings: Vec<String>,
}

/// Other accounts that carry one of the user's numbers.
#[derive(Debug, Clone, Serialize)]
pub struct NumberOwners {
    pub number: String,
    pub others: Vec<String>,
}

/// The callee of the user's latest failed call (for the "user not found" runbook).
#[derive(Debug, Clone, Serialize)]
pub struct CalleeInfo {
    pub dialled: String,
    pub status: u16,
    pub account: Option<Account>,
    pub registered: bool,
    pub others_with_number: Vec<String>,
}

/// Everything gathered for one account.
#[derive(Debug, Clone, Serialize)]
pub struct Gathered {
    pub user: String,
    pub now: DateTime<Utc>,
    pub since: DateTime<Utc>,
    pub echo_numbers: Vec<String>,
    pub account: Got<Option<Account>>,
    pub registrations: Got<Vec<Registration>>,
    pub attempts: Got<Vec<RegAttempt>>,
    pub ever_registered: Got<bool>,
    pub watch: Option<Got<WatchResult>>,
    pub calls: Got<Vec<CallRecord>>,
    pub trunks: Got<Vec<Trunk>>,
    /// Dialled string of each failed call -> the trunk it routes to (None: stays local).
    pub routes: Got<BTreeMap<String, Option<String>>>,
    pub health: Got<ServiceHealth>,
    pub duplicates: Got<Vec<NumberOwners>>,
    pub transports: Vec<TransportProbe>,
    pub tls: Option<ProbeSummary>,
    /// The synthetic echo call by the probe account; Err when no probe account is configured.
    pub echo: Got<ProbeSummary>,
    /// The self-test call between the two probe accounts; Err when not configured.
    pub self_test: Got<ProbeSummary>,
    pub dns: Option<DnsSummary>,
    pub client_logs: Vec<LogAnalysis>,
    pub callee: Got<Option<CalleeInfo>>,
    /// The licence service: Ok(true) reachable, Ok(false) not, Err not configured.
    pub license: Got<bool>,
    /// How long each source took to gather (milliseconds).
    pub timings: BTreeMap<String, u64>,
}

impl Gathered {
    /// An empty record where nothing could be gathered (every source says why).
    pub fn empty(user: &str, now: DateTime<Utc>, since: DateTime<Utc>, why: &str) -> Gathered {
        Gathered {
            user: user.to_string(),
            now,
            since,
            echo_numbers: Vec::new(),
            account: Err(why.to_string()),
            registrations: Err(why.to_string()),
            attempts: Err(why.to_string()),
            ever_registered: Err(why.to_string()),
            watch: None,
            calls: Err(why.to_string()),
            trunks: Err(why.to_string()),
            routes: Err(why.to_string()),
            health: Err(why.to_string()),
            duplicates: Err(why.to_string()),
            transports: Vec::new(),
            tls: None,
            echo: Err(why.to_string()),
            self_test: Err(why.to_string()),
            dns: None,
            client_logs: Vec::new(),
            callee: Err(why.to_string()),
            license: Err(why.to_string()),
            timings: BTreeMap::new(),
        }
    }

    /// The user's own calls, newest first, that were not to the echo service.
    pub fn calls_to_others(&self) -> Vec<&CallRecord> {
        match &self.calls {
            Ok(calls) => calls
                .iter()
                .filter(|c| same_user(&c.caller, &self.user) && !self.is_echo(c))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn is_echo(&self, c: &CallRecord) -> bool {
        c.route.as_deref() == Some("echo")
            || self
                .echo_numbers
                .iter()
                .any(|n| n == &c.dialled || n == &c.callee)
    }
}

/// `alice` and `alice@domain` name the same user.
pub fn same_user(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        let s = s.trim_start_matches("sip:").trim_start_matches("sips:");
        s.split('@').next().unwrap_or(s).to_string()
    };
    strip(a) == strip(b)
}
