//! The incident store: incidents worked through runbooks, their answered steps, escalations,
//! attachments and append-only audit log, plus the web app's users, sessions and API tokens;
//! on an embedded SQLite file or a PostgreSQL database, with the same behaviour.
//!
//! This crate knows nothing of SIP, HTTP or runbook semantics: steps, outcomes and runbooks
//! are opaque ids here. Changes use optimistic concurrency: every mutation names the
//! `version` it read, and a stale version gets [`Error::Conflict`] with nothing written.
//!
//! ```no_run
//! # async fn demo() -> incidents::Result<()> {
//! use incidents::{NewIncident, Store};
//! let store = Store::connect("sqlite:///var/lib/dialtone/dialtone.sqlite").await?;
//! let incident = store
//!     .open_incident(
//!         NewIncident {
//!             account: "alice@example.org".into(),
//!             reporter: "alice".into(),
//!             description: "calls fail".into(),
//!             runbook: "user-cant-call".into(),
//!             level: "L1".into(),
//!             current_step: Some("gate.account_exists".into()),
//!         },
//!         "agent-bob",
//!     )
//!     .await?;
//! store.close(incident.id, incident.version, "not_an_issue", None, "agent-bob").await?;
//! # Ok(()) }
//! ```

mod chain;
mod error;
mod migrate;
mod model;
mod outbox;
mod reports;
mod rows;
mod search;
mod store;
mod webhook_targets;
mod write;

pub use chain::{AuditVerdict, BrokenRow};
pub use error::{Error, Result, redact_url};
pub use migrate::SCHEMA_VERSION;
pub use model::{
    ApiToken, Attachment, AuditEntry, CheckRun, Escalation, Idempotency, Incident, LEVELS,
    ListFilter, NewEscalation, NewIncident, NewStepRecord, Note, ROLES, SOURCES, Session, Status,
    StepRecord, User, normalize_level,
};
pub use outbox::{Attempt, OutboxEvent, envelope};
pub use reports::{
    Bucket, Report, ReportFilter, ReportKind, ResolveHistogram, cell_text, duration_words, rate,
};
pub use search::{SEARCH_LIMIT, SearchQuery, parse_when};
pub use store::{ATTACHMENT_CHUNK, CONNECT_TIMEOUT, DATA_FILE, Store};
pub use webhook_targets::{DEFAULT_SCOPE, Endpoint, MIN_SECRET, WebhookTarget, check_target};
pub use write::Write;
