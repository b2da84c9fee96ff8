//! sip-probe: a focused, instrumented SIP UAC that asks a server the runbook's questions
//! (does it answer OPTIONS, does this account register, does an echo call carry audio)
//! over UDP, TCP or TLS, and explains every failure with a trace and a verdict.
//!
//! The client transaction state machines ([`tsx`]) and digest computation ([`digest`]) are
//! sans-IO and unit-tested; the probes in [`probes`] drive them over real sockets.

pub mod digest;
mod media;
mod probes;
mod report;
mod resolve;
mod tls;
mod transport;
pub mod tsx;
mod uac;

pub use probes::{call, call_between, echo, options, register, unregister};
pub use report::{
    Category, Direction, MediaStats, ProbeReport, ResolutionStep, TlsInfo, TraceEvent, Verdict,
    ladder,
};

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Errors of this crate's own set-up work (reading trust anchors, building a TLS config).
/// Probe outcomes are never errors: they are verdicts in a [`ProbeReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A trust anchor file could not be read or holds no certificate.
    #[error("trust anchor {path}: {reason}")]
    TrustAnchor { path: String, reason: String },
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    TlsConfig(String),
    /// A digest challenge cannot be answered (unknown algorithm, missing nonce, ...).
    #[error("digest: {0}")]
    Digest(String),
    /// An input to the probe is unusable (bad host, bad number).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SIP transport (RFC 3261 §18; TLS per §26.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

impl Transport {
    /// The Via transport token.
    pub fn via_token(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// The default port (RFC 3261 §19.1.2).
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
    }

    /// True for TCP and TLS, where the transaction layer does not retransmit (§17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.via_token())
    }
}

/// Where to probe. With `host` an IP literal, or with `port` set, RFC 3263 NAPTR/SRV
/// lookups are skipped (an explicit target override).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeTarget {
    pub host: String,
    pub port: Option<u16>,
    pub transport: Transport,
    /// SIP domain for Request-URIs, From and To (often the same as `host`).
    pub domain: String,
    /// PEM CA files that anchor TLS verification; empty means nothing is trusted.
    pub tls_trust: Vec<PathBuf>,
    /// Go on past a certificate that fails verification (it is still reported).
    pub insecure_continue: bool,
}

impl ProbeTarget {
    /// A target at an explicit address, skipping DNS.
    pub fn direct(ip: &str, port: u16, transport: Transport, domain: &str) -> Self {
        Self {
            host: ip.to_owned(),
            port: Some(port),
            transport,
            domain: domain.to_owned(),
            tls_trust: Vec::new(),
            insecure_continue: false,
        }
    }
}

/// Account credentials. The password is a [`SecretString`]: it cannot be printed.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: SecretString,
    /// Digest user name when it differs from `user`.
    pub auth_user: Option<String>,
}

impl Credentials {
    /// Credentials where the auth user equals the SIP user.
    pub fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: SecretString::from(password.to_owned()),
            auth_user: None,
        }
    }
}

/// Knobs of a probe. Every wait is bounded by `timeout_total`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeOptions {
    /// Bound on the whole probe, signalling and media together.
    pub timeout_total: Duration,
    /// RFC 3261 T1 (RTT estimate, 500 ms by default); Timers A/B/E/F derive from it.
    pub t1: Duration,
    /// RFC 3261 T2 (retransmit cap for non-INVITE, 4 s).
    pub t2: Duration,
    /// RFC 3261 T4 (how long a message may linger in the network, 5 s): Timer K.
    pub t4: Duration,
    /// How long RTP is sent during a call.
    pub media_window: Duration,
    /// How long to wait for late echoes after the last packet.
    pub media_grace: Duration,
    /// Digest rounds allowed per request (a second challenge means wrong credentials).
    pub max_auth_rounds: u32,
    /// Expires asked for by REGISTER.
    pub register_expires: u32,
    /// Leave the probe's binding in place after a successful REGISTER (normally removed again).
    pub keep_registration: bool,
    /// Loss ratio above which media is called degraded.
    pub max_loss: f64,
    /// Jitter (ms) above which media is called degraded.
    pub max_jitter_ms: f64,
    /// Name server to use instead of the system's (tests, split-horizon DNS).
    pub dns_server: Option<std::net::SocketAddr>,
    /// User-Agent header value.
    pub user_agent: String,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        Self {
            timeout_total: Duration::from_secs(15),
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            media_window: Duration::from_secs(2),
            media_grace: Duration::from_millis(300),
            max_auth_rounds: 2,
            register_expires: 300,
            keep_registration: false,
            max_loss: 0.05,
            max_jitter_ms: 30.0,
            dns_server: None,
            user_agent: format!("dialtone-probe/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}
