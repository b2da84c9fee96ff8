//! How evidence answers each runbook step. Pure: gathered evidence in, an answer (or none,
//! when the evidence is not conclusive) with its reason and the evidence that decided it out.
//!
//! The rules start from the design page's "How evidence answers a step" table; where SIP
//! practice says better, the rule says so in a comment.

mod accounts;
mod calls;
mod client;
mod registration;
mod server;
mod trunks;

use crate::evidence::Gathered;
use accounts::{
    account_and_registration, account_exists, account_registered, callee_exists,
    callee_number_unique, callee_registered, virtual_number_unique,
};
use calls::{calls_to_others, dialled_number, echo_call};
use client::{client_logs, client_provisioning, nat_keepalive};
use registration::{force_reconnection, register_attempts, register_result, registration_lookup};
use runbook::Check;
use serde::Serialize;
use serde_json::Value;
use server::{
    dns_resolution, license_service, network_status, server_services, tls_handshake,
    transport_reachability,
};
pub use trunks::outgoing_trunks;
use trunks::{trunk_health, trunk_inventory};

/// What evidence says about one step.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// The answer, when the evidence is conclusive; `None` leaves the step to an agent.
    pub answer: Option<String>,
    /// One sentence in plain words: what was found.
    pub summary: String,
    /// The evidence that decided it.
    pub evidence: Value,
}

fn answered(answer: &str, summary: impl Into<String>, evidence: Value) -> Decision {
    Decision {
        answer: Some(answer.to_string()),
        summary: summary.into(),
        evidence,
    }
}

fn inconclusive(summary: impl Into<String>, evidence: Value) -> Decision {
    Decision {
        answer: None,
        summary: summary.into(),
        evidence,
    }
}

/// A source of evidence `gather` reads (a server query, a probe, the client logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Account,
    Registrations,
    Attempts,
    Calls,
    EverRegistered,
    Trunks,
    Health,
    Watch,
    ClientLogs,
    Duplicates,
    Routes,
    Callee,
    Transports,
    Tls,
    Echo,
    SelfTest,
    Dns,
    License,
}

impl Source {
    /// Its name in timings, `doctor` and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Account => "account",
            Source::Registrations => "registrations",
            Source::Attempts => "attempts",
            Source::Calls => "calls",
            Source::EverRegistered => "ever_registered",
            Source::Trunks => "trunks",
            Source::Health => "health",
            Source::Watch => "watch",
            Source::ClientLogs => "client_logs",
            Source::Duplicates => "duplicates",
            Source::Routes => "routes",
            Source::Callee => "callee",
            Source::Transports => "transports",
            Source::Tls => "tls",
            Source::Echo => "echo",
            Source::SelfTest => "self_test",
            Source::Dns => "dns",
            Source::License => "license",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The evidence sources each check reads. Gathering uses it to read only what a check needs
/// (the web app's single-step check), and the report to time each step.
pub fn sources_of(check: Check) -> &'static [Source] {
    use Source::*;
    match check {
        Check::RegistrationLookup | Check::AccountRegistered => &[Registrations],
        // Without registrations, the transports can still tell that nobody can connect.
        Check::ForceReconnection => &[Registrations, Attempts, Watch, Transports],
        Check::EchoCall => &[Calls, Echo],
        Check::RecentCallsToOthers | Check::DialledNumber => &[Calls],
        Check::TrunkInventory => &[Trunks],
        Check::AccountAndRegistration => &[Account, Registrations],
        Check::TrunkHealth => &[Trunks, Calls, Routes],
        Check::AccountExists => &[Account],
        Check::VirtualNumberUnique => &[Duplicates],
        Check::ServerServices => &[Transports, Tls, Health, Echo, SelfTest, Trunks],
        Check::NetworkStatus => &[Dns, Transports, Registrations],
        Check::ClientLogs => &[ClientLogs],
        Check::DnsResolution => &[Dns],
        Check::TransportReachability => &[Transports],
        Check::TlsHandshake => &[Tls],
        Check::RegisterAttempts | Check::RegisterResult => &[Attempts],
        Check::ClientProvisioning => &[EverRegistered],
        Check::NatKeepalive => &[Registrations, Attempts],
        Check::LicenseService => &[License],
        Check::CalleeAccountExists | Check::CalleeRegistered | Check::CalleeVirtualNumberUnique => {
            &[Callee]
        }
    }
}

/// Which sources to gather: all of them (a diagnosis), or those some checks read.
#[derive(Debug, Clone, Default)]
pub struct Want(Option<std::collections::BTreeSet<Source>>);

impl Want {
    pub fn all() -> Want {
        Want(None)
    }

    /// The sources `checks` read, with what those sources are derived from.
    pub fn checks(checks: impl IntoIterator<Item = Check>) -> Want {
        let mut set = std::collections::BTreeSet::new();
        for c in checks {
            set.extend(sources_of(c).iter().copied());
        }
        // duplicates are looked up from the account's numbers; routes and the callee from calls.
        for (derived, from) in [
            (Source::Duplicates, Source::Account),
            (Source::Routes, Source::Calls),
            (Source::Callee, Source::Calls),
        ] {
            if set.contains(&derived) {
                set.insert(from);
            }
        }
        Want(Some(set))
    }

    pub fn has(&self, source: Source) -> bool {
        self.0.as_ref().is_none_or(|s| s.contains(&source))
    }
}

/// Thresholds the network decision uses.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub max_rtt_ms: f64,
    pub max_loss_percent: f64,
}

/// Decides a step whose automated check is `check` from `g`.
pub fn decide(check: Check, g: &Gathered, t: Thresholds) -> Decision {
    match check {
        Check::RegistrationLookup => registration_lookup(g),
        Check::ForceReconnection => force_reconnection(g),
        Check::EchoCall => echo_call(g),
        Check::RecentCallsToOthers => calls_to_others(g),
        Check::DialledNumber => dialled_number(g),
        Check::TrunkInventory => trunk_inventory(g),
        Check::AccountAndRegistration => account_and_registration(g),
        Check::TrunkHealth => trunk_health(g),
        Check::AccountExists => account_exists(g),
        Check::AccountRegistered => account_registered(g),
        Check::VirtualNumberUnique => virtual_number_unique(g),
        Check::ServerServices => server_services(g),
        Check::NetworkStatus => network_status(g, t),
        Check::ClientLogs => client_logs(g),
        Check::DnsResolution => dns_resolution(g),
        Check::TransportReachability => transport_reachability(g),
        Check::TlsHandshake => tls_handshake(g),
        Check::RegisterAttempts => register_attempts(g),
        Check::ClientProvisioning => client_provisioning(g),
        Check::RegisterResult => register_result(g),
        Check::NatKeepalive => nat_keepalive(g),
        Check::LicenseService => license_service(g),
        Check::CalleeAccountExists => callee_exists(g),
        Check::CalleeRegistered => callee_registered(g),
        Check::CalleeVirtualNumberUnique => callee_number_unique(g),
    }
}
