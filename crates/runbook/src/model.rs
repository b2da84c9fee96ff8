//! The validated runbook model: runbooks, steps, answers and where each answer leads.
//!
//! Values of these types only come out of [`crate::RunbookSet::from_sources`], so every
//! reference inside a [`RunbookSet`] (next step, outcome, redirect, escalation entry) resolves.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::load::{self, Diagnostic};

/// The support level a step belongs to, or an escalation goes to.
///
/// Ordered: `Gate < L1 < L2 < L3`, so "escalate when the target level is above what we may
/// walk" is a plain comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The scope gate before First Level.
    Gate,
    /// First-level support.
    L1,
    /// Second-level support.
    L2,
    /// Third-level support (no steps: an escalation to L3 always ends the runbook).
    L3,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 4] = [Level::Gate, Level::L1, Level::L2, Level::L3];

    /// The spelling used in runbook files: `gate`, `l1`, `l2`, `l3`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Gate => "gate",
            Level::L1 => "l1",
            Level::L2 => "l2",
            Level::L3 => "l3",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Gate => "Gate",
            Level::L1 => "L1",
            Level::L2 => "L2",
            Level::L3 => "L3",
        })
    }
}

impl FromStr for Level {
    type Err = crate::Error;

    /// Accepts both spellings, `l2` (files) and `L2` (display), case-insensitively.
    fn from_str(s: &str) -> crate::Result<Self> {
        Level::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| crate::Error::UnknownLevel(s.to_owned()))
    }
}

/// Where an answer leads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// Another step of the same runbook.
    Step(String),
    /// An outcome of the same runbook: the run is finished.
    Outcome(String),
    /// Hand the incident to another level; `kind` names the runbook entry where that level
    /// starts (e.g. `server_status_check`). L3 has no entries.
    Escalate { level: Level, kind: Option<String> },
    /// Continue in another runbook, at its start.
    Redirect { runbook: String },
}

/// One allowed answer of a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerDef {
    /// Machine id, e.g. `yes` or `connection_problem`; what facts carry.
    pub value: String,
    /// What the agent sees.
    pub label: String,
    pub target: Target,
    /// For an answer that escalates: what the agent tells the user while the escalation is
    /// worked (required on every escalating answer; `None` on the others).
    pub tell_user: Option<String>,
}

/// An automated check a step can name: evidence `diagnosis` knows how to gather and decide. A
/// runbook naming another check is refused when it is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    RegistrationLookup,
    AccountRegistered,
    ForceReconnection,
    EchoCall,
    RecentCallsToOthers,
    DialledNumber,
    TrunkInventory,
    AccountAndRegistration,
    TrunkHealth,
    AccountExists,
    VirtualNumberUnique,
    ServerServices,
    NetworkStatus,
    ClientLogs,
    DnsResolution,
    TransportReachability,
    TlsHandshake,
    RegisterAttempts,
    RegisterResult,
    ClientProvisioning,
    NatKeepalive,
    LicenseService,
    CalleeAccountExists,
    CalleeRegistered,
    CalleeVirtualNumberUnique,
}

impl Check {
    /// Every check, in a stable order.
    pub const ALL: [Check; 25] = [
        Check::RegistrationLookup,
        Check::AccountRegistered,
        Check::ForceReconnection,
        Check::EchoCall,
        Check::RecentCallsToOthers,
        Check::DialledNumber,
        Check::TrunkInventory,
        Check::AccountAndRegistration,
        Check::TrunkHealth,
        Check::AccountExists,
        Check::VirtualNumberUnique,
        Check::ServerServices,
        Check::NetworkStatus,
        Check::ClientLogs,
        Check::DnsResolution,
        Check::TransportReachability,
        Check::TlsHandshake,
        Check::RegisterAttempts,
        Check::RegisterResult,
        Check::ClientProvisioning,
        Check::NatKeepalive,
        Check::LicenseService,
        Check::CalleeAccountExists,
        Check::CalleeRegistered,
        Check::CalleeVirtualNumberUnique,
    ];

    /// The name runbook files use, e.g. `registration_lookup`.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::RegistrationLookup => "registration_lookup",
            Check::AccountRegistered => "account_registered",
            Check::ForceReconnection => "force_reconnection",
            Check::EchoCall => "echo_call",
            Check::RecentCallsToOthers => "recent_calls_to_others",
            Check::DialledNumber => "dialled_number",
            Check::TrunkInventory => "trunk_inventory",
            Check::AccountAndRegistration => "account_and_registration",
            Check::TrunkHealth => "trunk_health",
            Check::AccountExists => "account_exists",
            Check::VirtualNumberUnique => "virtual_number_unique",
            Check::ServerServices => "server_services",
            Check::NetworkStatus => "network_status",
            Check::ClientLogs => "client_logs",
            Check::DnsResolution => "dns_resolution",
            Check::TransportReachability => "transport_reachability",
            Check::TlsHandshake => "tls_handshake",
            Check::RegisterAttempts => "register_attempts",
            Check::RegisterResult => "register_result",
            Check::ClientProvisioning => "client_provisioning",
            Check::NatKeepalive => "nat_keepalive",
            Check::LicenseService => "license_service",
            Check::CalleeAccountExists => "callee_account_exists",
            Check::CalleeRegistered => "callee_registered",
            Check::CalleeVirtualNumberUnique => "callee_virtual_number_unique",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Check {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        Check::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| crate::Error::UnknownCheck(s.to_owned()))
    }
}

/// One step: a question an agent (or an automated check) answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Unique across the whole set, e.g. `l1.echo_call`.
    pub id: String,
    pub level: Level,
    pub title: String,
    pub question: String,
    /// What the agent reads to the user, where there is something to read.
    pub instruction: Option<String>,
    /// The automated check that can answer this step (see the `diagnosis` crate).
    pub check: Option<Check>,
    pub answers: Vec<AnswerDef>,
    /// Shown in reports; gaps in the source article start with "(gap)".
    pub note: Option<String>,
    /// Answer assumed (source `assumed`) when nobody answers and defaults are enabled.
    pub default: Option<String>,
}

impl Step {
    /// The answer definition for `value`, if `value` is allowed here.
    pub fn answer(&self, value: &str) -> Option<&AnswerDef> {
        self.answers.iter().find(|a| a.value == value)
    }

    /// The allowed answer values, in file order.
    pub fn allowed_answers(&self) -> Vec<&str> {
        self.answers.iter().map(|a| a.value.as_str()).collect()
    }
}

/// The allowed answer values of `step`, in file order.
pub fn allowed_answers(step: &Step) -> Vec<&str> {
    step.allowed_answers()
}

/// What happens to the incident when a run ends in an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Closed,
    ClosedNotAnIssue,
    ClosedAfterFix,
    OutOfScope,
}

impl Disposition {
    /// Every disposition, as spelled in files.
    pub const ALL: [Disposition; 4] = [
        Disposition::Closed,
        Disposition::ClosedNotAnIssue,
        Disposition::ClosedAfterFix,
        Disposition::OutOfScope,
    ];

    /// The spelling used in runbook files, e.g. `closed_after_fix`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Closed => "closed",
            Disposition::ClosedNotAnIssue => "closed_not_an_issue",
            Disposition::ClosedAfterFix => "closed_after_fix",
            Disposition::OutOfScope => "out_of_scope",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A way a run can finish, with what it means for the incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeDef {
    pub id: String,
    pub title: String,
    pub meaning: String,
    pub disposition: Disposition,
    /// What the agent does: the fix steps before closing (or the procedure to follow).
    pub what_to_do: String,
    /// What the agent tells the user when the incident ends here.
    pub tell_user: String,
}

/// An escalation kind of a runbook (an `[entries]` key): its title and the words for the user
/// while the receiving level works it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationDef {
    /// What the escalation is called, e.g. "Server status check".
    pub title: String,
    /// What the agent tells the user while it is worked.
    pub tell_user: String,
}

/// One runbook, e.g. `user-cant-call`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runbook {
    pub id: String,
    pub title: String,
    pub description: String,
    /// The first step id.
    pub start: String,
    /// Escalation kind (e.g. `user_configuration_check`) -> the step where that escalation starts.
    /// The step may belong to another runbook of the set (step ids are global).
    pub entries: BTreeMap<String, String>,
    /// Escalation kind -> its title and words for the user (one per `[entries]` key).
    pub escalations: BTreeMap<String, EscalationDef>,
    pub steps: Vec<Step>,
    pub outcomes: Vec<OutcomeDef>,
    /// Free-text notes for the reader (e.g. where the runbook refines its source).
    pub notes: Vec<String>,
}

impl Runbook {
    /// A step of this runbook by id.
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// An outcome of this runbook by id.
    pub fn outcome(&self, id: &str) -> Option<&OutcomeDef> {
        self.outcomes.iter().find(|o| o.id == id)
    }
}

/// The runbook files shipped with dialtone: (file name, text).
pub const BUILTIN_SOURCES: &[(&str, &str)] = &[
    (
        "user-cant-call.toml",
        include_str!("../../../runbooks/user-cant-call.toml"),
    ),
    (
        "connection-issues.toml",
        include_str!("../../../runbooks/connection-issues.toml"),
    ),
    (
        "license-problem.toml",
        include_str!("../../../runbooks/license-problem.toml"),
    ),
    (
        "user-not-found.toml",
        include_str!("../../../runbooks/user-not-found.toml"),
    ),
];

/// A validated set of runbooks whose cross-references all resolve.
#[derive(Debug, Clone, Serialize)]
pub struct RunbookSet {
    runbooks: Vec<Runbook>,
    /// step id -> (runbook index, step index), so evaluation does not scan.
    #[serde(skip)]
    index: HashMap<String, (usize, usize)>,
}

impl RunbookSet {
    /// The runbooks shipped in `runbooks/` (embedded at build time).
    ///
    /// Their validity is a test of this crate, so failing here is a build defect, not bad input.
    pub fn builtin() -> RunbookSet {
        static SET: OnceLock<RunbookSet> = OnceLock::new();
        SET.get_or_init(|| {
            let sources: Vec<(String, String)> = BUILTIN_SOURCES
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect();
            match RunbookSet::from_sources(&sources) {
                Ok(set) => set,
                Err(diags) => {
                    let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
                    panic!("built-in runbooks are invalid:\n{}", text.join("\n"))
                }
            }
        })
        .clone()
    }

    /// Parses and validates runbook files given as (file name, text); the file name only
    /// labels diagnostics. Every problem found is reported, not only the first.
    pub fn from_sources(sources: &[(String, String)]) -> Result<RunbookSet, Vec<Diagnostic>> {
        load::load(sources)
    }

    /// Like [`RunbookSet::from_sources`], but on top of the built-in files: a built-in file is
    /// replaced by a given one with the same file name or the same runbook id. This is what
    /// `runbook check FILE` needs, so a file may redirect to the shipped runbooks.
    pub fn from_sources_over_builtin(
        sources: &[(String, String)],
    ) -> Result<RunbookSet, Vec<Diagnostic>> {
        let given_ids: BTreeSet<String> = sources
            .iter()
            .filter_map(|(_, text)| load::peek_id(text))
            .collect();
        let given_names: BTreeSet<&str> = sources.iter().map(|(name, _)| base_name(name)).collect();
        let mut all: Vec<(String, String)> = BUILTIN_SOURCES
            .iter()
            .filter(|(name, text)| {
                !given_names.contains(name)
                    && load::peek_id(text).is_none_or(|id| !given_ids.contains(&id))
            })
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        all.extend(sources.iter().cloned());
        load::load(&all)
    }

    pub(crate) fn new(runbooks: Vec<Runbook>) -> RunbookSet {
        let mut index = HashMap::new();
        for (ri, rb) in runbooks.iter().enumerate() {
            for (si, step) in rb.steps.iter().enumerate() {
                index.insert(step.id.clone(), (ri, si));
            }
        }
        RunbookSet { runbooks, index }
    }

    /// A runbook by id.
    pub fn get(&self, id: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.id == id)
    }

    /// The runbooks, in the order their files were given.
    pub fn iter(&self) -> impl Iterator<Item = &Runbook> {
        self.runbooks.iter()
    }

    /// A step by its (globally unique) id, with the runbook it belongs to.
    pub fn step(&self, step_id: &str) -> Option<(&Runbook, &Step)> {
        let &(ri, si) = self.index.get(step_id)?;
        let rb = self.runbooks.get(ri)?;
        Some((rb, rb.steps.get(si)?))
    }

    /// Every automated check some step refers to.
    pub fn checks(&self) -> BTreeSet<Check> {
        self.runbooks
            .iter()
            .flat_map(|r| r.steps.iter())
            .filter_map(|s| s.check)
            .collect()
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}
