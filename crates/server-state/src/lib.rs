//! What the VoIP server knows — accounts, virtual numbers, registrations, attempts, trunks, calls,
//! health — behind one trait, [`ServerState`], so that diagnosis never talks to a server directly.
//!
//! Backends:
//! - [`KamailioState`]: Kamailio's JSON-RPC management interface (memory is authoritative for
//!   registrations and dispatcher states) plus read-only SQL on its database (SQLite or PostgreSQL).
//! - [`FileState`]: a directory of CSV/JSON exports, documented in `EXPORT.md`, for servers
//!   without an API.

mod csv;
mod file;
#[cfg(test)]
mod fuzz;
pub mod generate;
mod kamailio;
mod model;
mod sipscan;
mod window;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

pub use file::FileState;
pub use kamailio::{
    AccColumns, CallParties, ColumnMap, KamailioConfig, KamailioState, Schema, TraceWindow,
};
pub use model::{
    Account, AccountSummary, CallRecord, Capabilities, CheckState, DestinationState, NumberKind,
    RegAttempt, Registration, ServiceHealth, SourceStatus, TlsListener, Transport, Trunk,
    TrunkDestination, VirtualNumber,
};

/// Everything that can go wrong while asking a server what it knows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The management interface could not be reached or did not answer in time.
    #[error("management interface: {0}")]
    Management(String),
    /// The management interface answered a JSON-RPC error (Kamailio uses code 500 for all of them).
    #[error("management interface: {method} failed: {message}")]
    Rpc { method: String, message: String },
    /// The server's database could not be queried.
    #[error("database: {0}")]
    Database(String),
    /// An export file is malformed.
    #[error("{file}:{line}: {reason}")]
    Export {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The backend configuration is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The backend cannot answer this question at all.
    #[error("not available from this backend: {0}")]
    Unsupported(String),
    /// This server keeps no source for the evidence: says which and how to get it.
    #[error("missing because {why}{}", fix.as_deref().map(|f| format!(" (to fix: {f})")).unwrap_or_default())]
    Missing { why: String, fix: Option<String> },
}

impl Error {
    /// Evidence this server does not keep.
    pub fn missing(why: impl Into<String>, fix: Option<&str>) -> Error {
        Error::Missing {
            why: why.into(),
            fix: fix.map(str::to_string),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a VoIP server knows, as diagnosis needs it.
///
/// Users may be given as `alice` or `alice@domain`. Methods that need the management interface
/// return [`Error::Management`] promptly (within the backend's timeout) when it is down;
/// [`ServerState::health`] never fails because of that and reports it instead.
#[async_trait::async_trait]
pub trait ServerState: Send + Sync {
    /// The account, or `None` when the server has no trace of this user at all.
    async fn account(&self, user: &str) -> Result<Option<Account>>;

    /// Every account reached by this virtual number, as primary or alternate. More than one means
    /// the number is duplicated.
    async fn accounts_with_number(&self, number: &str) -> Result<Vec<Account>>;

    /// The user's live registrations (empty when not registered).
    async fn registrations(&self, user: &str) -> Result<Vec<Registration>>;

    /// REGISTER requests from this user since `since`, oldest first, each with its final response.
    async fn registration_attempts(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RegAttempt>>;

    /// Outgoing trunks and the state of their destinations.
    async fn trunks(&self) -> Result<Vec<Trunk>>;

    /// The trunk id a dialled string is routed to, `None` when it stays local.
    async fn route_for(&self, dialled: &str) -> Result<Option<String>>;

    /// Calls made or received by this user since `since`, newest first, at most `max`.
    async fn calls(&self, user: &str, since: DateTime<Utc>, max: usize) -> Result<Vec<CallRecord>>;

    /// Service health; every part is checked with a time bound and reported, never raised.
    async fn health(&self) -> Result<ServiceHealth>;

    /// Every account at once, for a sweep (bulk queries only).
    async fn all_accounts(&self) -> Result<Vec<AccountSummary>>;

    /// Backend name and where it reads from, without secrets.
    fn describe(&self) -> String;

    /// What this backend can read on this server, per kind of evidence (for `dialtone doctor`).
    async fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: self.describe(),
            ..Capabilities::default()
        }
    }
}
