//! The data a VoIP server knows about its users, trunks, calls and services, independent of any backend.
//!
//! Every type here is plain data (serde both ways) so that the file backend can read the same shapes it
//! documents in EXPORT.md, and diagnosis can put them into evidence and JSON reports unchanged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether a virtual number is an account's main one ("Caller Id") or its second one ("Caller Id 2").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberKind {
    Primary,
    Alternate,
}

/// A virtual number (DID) that reaches an account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VirtualNumber {
    pub number: String,
    pub kind: NumberKind,
}

/// One account as the server sees it.
///
/// `exists` is false when the server has traces of the user (a virtual number pointing to it, a
/// registration) but no subscriber record: that is a misconfiguration worth reporting, not "missing".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub user: String,
    pub domain: String,
    pub numbers: Vec<VirtualNumber>,
    pub exists: bool,
}

/// The SIP transport a contact was registered over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Ws,
    Wss,
    Sctp,
    Unknown,
}

impl Transport {
    /// Reads a transport name as Kamailio and RFC 3261 §19.1.1 (`transport=` parameter) spell it.
    pub fn parse(s: &str) -> Transport {
        match s.trim().to_ascii_lowercase().as_str() {
            "udp" => Transport::Udp,
            "tcp" => Transport::Tcp,
            "tls" => Transport::Tls,
            "ws" => Transport::Ws,
            "wss" => Transport::Wss,
            "sctp" => Transport::Sctp,
            _ => Transport::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Ws => "ws",
            Transport::Wss => "wss",
            Transport::Sctp => "sctp",
            Transport::Unknown => "unknown",
        }
    }
}

/// A live binding of an address-of-record to a contact (RFC 3261 §10).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    pub user: String,
    /// The Contact URI the client registered.
    pub contact: String,
    /// Where the REGISTER really came from (the `received` address when the server recorded one,
    /// otherwise the contact's host and port).
    pub source: String,
    pub transport: Transport,
    pub user_agent: String,
    pub expires_at: DateTime<Utc>,
    /// When the binding was last refreshed.
    pub registered_at: DateTime<Utc>,
    pub call_id: String,
    /// Where the binding was read from when it is not the server's live memory (e.g. the
    /// `location` table while the management interface is down), and how fresh that is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// One REGISTER request seen by the server and the final response it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegAttempt {
    pub at: DateTime<Utc>,
    /// Source of the request, as `proto:ip:port` when the backend knows the transport.
    pub source: String,
    /// Final status code, or [`RegAttempt::NO_REPLY`] when no final response was recorded.
    pub status: u16,
    pub reason: String,
    /// The username of the Authorization header (RFC 3261 §22.4), if the request carried credentials.
    pub auth_user: Option<String>,
}

impl RegAttempt {
    /// `status` of a REGISTER the trace holds no final response for (dropped, or still pending).
    pub const NO_REPLY: u16 = 0;
}

/// The state of one trunk destination, as a dispatcher sees it after its OPTIONS probing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationState {
    Active,
    Inactive,
    Probing,
    Disabled,
    /// The server keeps no state for it (drouting in Kamailio, a row read from a table while the
    /// management interface is down): whether it takes calls is known only from calls through it.
    Unknown,
}

impl DestinationState {
    /// The state in words, as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationState::Active => "active",
            DestinationState::Inactive => "inactive",
            DestinationState::Probing => "probing",
            DestinationState::Disabled => "disabled",
            DestinationState::Unknown => "state unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrunkDestination {
    pub uri: String,
    pub state: DestinationState,
    /// What the last keep-alive probe said, in words, when known.
    pub last_probe: Option<String>,
    pub name: String,
}

/// An outgoing trunk: a set of gateways and the dialled prefixes routed to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trunk {
    pub id: String,
    pub name: String,
    pub destinations: Vec<TrunkDestination>,
    #[serde(default)]
    pub prefixes: Vec<String>,
}

impl Trunk {
    /// True when at least one destination can take calls.
    pub fn is_up(&self) -> bool {
        self.destinations
            .iter()
            .any(|d| d.state == DestinationState::Active)
    }

    /// True when the server reports no state for any destination (see
    /// [`DestinationState::Unknown`]): neither up nor down can be told from the inventory.
    pub fn state_unknown(&self) -> bool {
        !self.destinations.is_empty()
            && self
                .destinations
                .iter()
                .all(|d| d.state == DestinationState::Unknown)
    }
}

/// One kind of evidence, as a backend can (or cannot) read it on this server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceStatus {
    /// The evidence, as diagnosis names its sources: `account`, `duplicates`, `registrations`,
    /// `attempts`, `ever_registered`, `calls`, `trunks`, `routes`, `health`.
    pub evidence: String,
    /// Whether it can be read at all.
    pub available: bool,
    /// Where it comes from (e.g. "acc (src_user, dst_user) + acc_cdrs.route").
    pub from: String,
    /// What is missing and why, when something is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// The config key or server setting that would fix it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// What a backend can read on this server, and the schema it found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub backend: String,
    pub sources: Vec<SourceStatus>,
    /// Tables found, with their columns (database backends).
    #[serde(default)]
    pub schema: std::collections::BTreeMap<String, Vec<String>>,
    /// Anything else worth telling an operator (unreachable interfaces, misnamed columns).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// One call attempt and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    pub at: DateTime<Utc>,
    pub caller: String,
    /// The user the call reached after alias resolution or prefix stripping.
    pub callee: String,
    /// What the caller dialled (Request-URI user before any rewriting).
    pub dialled: String,
    pub status: u16,
    pub reason: String,
    pub duration_s: f64,
    /// `echo`, `trunk` or `local` when known.
    pub route: Option<String>,
    pub call_id: String,
}

/// The outcome of one health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "lowercase")]
pub enum CheckState {
    Up,
    Down(String),
    Unknown(String),
}

impl CheckState {
    pub fn is_up(&self) -> bool {
        matches!(self, CheckState::Up)
    }
}

/// A TLS listener and the certificate it serves, when the backend can see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsListener {
    /// `ip:port`.
    pub address: String,
    /// Where the server loads its certificate from.
    #[serde(default)]
    pub certificate: Option<String>,
    /// Expiry of that certificate, when it could be read.
    #[serde(default)]
    pub not_after: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceHealth {
    /// Whether the management interface (JSON-RPC) answers.
    pub management: CheckState,
    #[serde(default)]
    pub uptime_s: Option<u64>,
    #[serde(default)]
    pub version: Option<String>,
    /// SIP listeners as `proto:ip:port` (`udp:203.0.113.1:5060`); a transport missing here is
    /// not served.
    #[serde(default)]
    pub sip_listeners: Vec<String>,
    #[serde(default)]
    pub tls_listeners: Vec<TlsListener>,
    pub database: CheckState,
    /// Other services: the echo service, each trunk destination, ...
    #[serde(default)]
    pub services: Vec<(String, CheckState)>,
}

/// One line of a whole-server sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub user: String,
    pub numbers: Vec<VirtualNumber>,
    pub registered: bool,
    pub ever_registered: bool,
}

/// Splits `user@domain` into its parts; a bare user has no domain.
pub(crate) fn split_user(user: &str) -> (&str, Option<&str>) {
    let user = user.trim();
    let user = user
        .strip_prefix("sips:")
        .or_else(|| user.strip_prefix("sip:"))
        .unwrap_or(user);
    match user.split_once('@') {
        Some((u, d)) => (u, Some(d)),
        None => (user, None),
    }
}

/// The longest prefix of `dialled` among the trunks' prefixes, as a trunk id.
pub(crate) fn longest_prefix_route<'a>(
    trunks: impl IntoIterator<Item = (&'a str, &'a [String])>,
    dialled: &str,
) -> Option<String> {
    let mut best: Option<(&str, usize)> = None;
    for (id, prefixes) in trunks {
        for p in prefixes {
            if !p.is_empty()
                && dialled.starts_with(p.as_str())
                && best.is_none_or(|(_, len)| p.len() > len)
            {
                best = Some((id, p.len()));
            }
        }
    }
    best.map(|(id, _)| id.to_string())
}
