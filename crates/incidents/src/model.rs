//! The records the store keeps: incidents, their steps, escalations, audit entries,
//! attachments, and the people and sessions of the web app.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Where an incident stands in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Being worked.
    Open,
    /// The agent waits for the user (a test call, a screenshot...).
    WaitingUser,
    /// Handed to a higher support level.
    Escalated,
    /// Finished with an outcome; takes no further steps.
    Closed,
}

impl Status {
    /// Every status, in life order.
    pub const ALL: [Status; 4] = [
        Status::Open,
        Status::WaitingUser,
        Status::Escalated,
        Status::Closed,
    ];

    /// The stored and serialized name: "open", "waiting_user", "escalated", "closed".
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::WaitingUser => "waiting_user",
            Status::Escalated => "escalated",
            Status::Closed => "closed",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = Error;

    /// Accepts the stored names, case-insensitively, and "waiting-user".
    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == wanted)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown status {s:?} (expected open, waiting_user, escalated or closed)"
                ))
            })
    }
}

/// Support levels an incident can be at, lowest first.
pub const LEVELS: [&str; 3] = ["L1", "L2", "L3"];

/// Checks and normalizes a support level: "l2" -> "L2".
pub fn normalize_level(level: &str) -> Result<String> {
    level_rank(level).map(|rank| LEVELS[rank].to_owned())
}

/// Position of a support level in [`LEVELS`] ("l2" -> 1), for comparing levels. The one rule
/// for levels: an unknown one (a typo, or a stored value no version wrote) is refused with
/// `Error::Invalid`, never ranked as if it were some known level.
pub(crate) fn level_rank(level: &str) -> Result<usize> {
    let wanted = level.trim().to_ascii_uppercase();
    LEVELS
        .iter()
        .position(|known| *known == wanted)
        .ok_or_else(|| Error::Invalid(format!("unknown level {level:?} (expected L1, L2 or L3)")))
}

/// Who may set a step record's source: the runbook engine's `Source` names.
pub const SOURCES: [&str; 3] = ["agent", "automated", "assumed"];

/// Roles of web users (`lead`: an L2 agent who also reads the reports).
pub const ROLES: [&str; 4] = ["l1", "l2", "lead", "admin"];

/// A support case: one user's "can't call" problem, worked through a runbook.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    /// Store-assigned id.
    pub id: i64,
    /// The customer's account (SIP user or number) the problem concerns.
    pub account: String,
    /// Who reported it (the user, a colleague, a monitor).
    pub reporter: String,
    /// The problem in the reporter's words.
    pub description: String,
    /// Support level now working it: "L1", "L2" or "L3".
    pub level: String,
    /// Where it stands.
    pub status: Status,
    /// The runbook being followed, e.g. "user-cant-call".
    pub runbook: String,
    /// The next step to ask, if known.
    pub current_step: Option<String>,
    /// The outcome id once closed.
    pub outcome: Option<String>,
    /// Kind of the last escalation, e.g. "user_configuration_check".
    pub escalation_kind: Option<String>,
    /// The agent who has it.
    pub assignee: Option<String>,
    /// The ticket a webhook receiver filed for it (its answer's `ticket`), if one did.
    pub ticket_ref: Option<String>,
    /// Bumped by every change; mutations must name the version they read.
    pub version: i64,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What `open_incident` needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NewIncident {
    /// The customer's account; must not be empty.
    pub account: String,
    /// Who reported it; must not be empty.
    pub reporter: String,
    /// The problem in the reporter's words (may be empty).
    pub description: String,
    /// The runbook to follow; must not be empty.
    pub runbook: String,
    /// "L1", "L2" or "L3" (case-insensitive).
    pub level: String,
    /// The first step, usually the runbook's start.
    pub current_step: Option<String>,
}

/// One answered runbook step: the answer as it was given ([`NewStepRecord`], whose fields it
/// also shows through `Deref`: `record.step`), and what the store adds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepRecord {
    /// Store-assigned id; records of one incident are in answer order by id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// The runbook, step, answer, source, evidence, note and proposal.
    #[serde(flatten)]
    pub given: NewStepRecord,
    /// Who recorded it.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
    /// When a revision replaced this record (it then no longer counts).
    pub superseded_at: Option<DateTime<Utc>>,
    /// Who revised it.
    pub superseded_by: Option<String>,
}

impl std::ops::Deref for StepRecord {
    type Target = NewStepRecord;

    fn deref(&self) -> &NewStepRecord {
        &self.given
    }
}

impl StepRecord {
    /// Whether the record still counts (no revision replaced it).
    pub fn is_current(&self) -> bool {
        self.superseded_at.is_none()
    }
}

/// An internal note on an incident: an action of its own, at any time, by any agent who can
/// see the incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// Store-assigned id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// What the agent wrote.
    pub text: String,
    /// Who wrote it.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What `record_step` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewStepRecord {
    /// The runbook the step belongs to.
    pub runbook: String,
    /// The step id.
    pub step: String,
    /// The answer value.
    pub answer: String,
    /// "agent", "automated" or "assumed".
    pub source: String,
    /// Supporting evidence; `Value::Null` when there is none.
    pub evidence: serde_json::Value,
    /// The agent's note.
    pub note: Option<String>,
    /// The answer an automated check proposed for this step, if one did.
    #[serde(default)]
    pub proposed: Option<String>,
}

/// A hand-over to a higher support level.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Escalation {
    /// Store-assigned id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// Level before.
    pub from_level: String,
    /// Level after.
    pub to_level: String,
    /// The runbook's escalation kind, e.g. "user_configuration_check".
    pub kind: Option<String>,
    /// Why, in the agent's words.
    pub reason: String,
    /// Who escalated.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// What `escalate` needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEscalation {
    /// "L2" or "L3"; must be above the incident's level.
    pub to_level: String,
    /// The runbook's escalation kind.
    pub kind: Option<String>,
    /// Why; must not be empty.
    pub reason: String,
}

/// One line of the append-only audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// Store-assigned id; gives the order of changes.
    pub id: i64,
    /// The incident changed, or `None` for changes to users.
    pub incident_id: Option<i64>,
    /// Who made the change.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
    /// What: "open", "step", "escalate", "close", "assign", "status", "attachment",
    /// "user.create", "user.disable", "user.enable", "user.password".
    pub action: String,
    /// The change's details (never secrets).
    pub detail: serde_json::Value,
}

/// A file attached to an incident (a client log, a capture, a screenshot).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attachment {
    /// Store-assigned id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// File name as uploaded.
    pub name: String,
    /// MIME type as given.
    pub content_type: String,
    /// Size in bytes.
    pub size: i64,
    /// Who attached it.
    pub actor: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Filter for `list`; every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListFilter {
    /// Only this level ("L1"...; case-insensitive).
    pub level: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only incidents assigned to this agent.
    pub assignee: Option<String>,
    /// Only accounts containing this text (case-insensitive).
    pub account_contains: Option<String>,
    /// Only incidents this agent escalated (an L1 agent follows what they handed over).
    pub escalated_by: Option<String>,
    /// At most this many, newest first.
    pub limit: Option<i64>,
}

/// `Debug` that prints `<redacted>` in place of the secret field.
macro_rules! debug_redacting {
    ($t:ident, $secret:ident; $($field:ident),+) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field(stringify!($secret), &"<redacted>")
                    $(.field(stringify!($field), &self.$field))+
                    .finish()
            }
        }
    };
}

debug_redacting!(User, password_hash; username, role, disabled, created_at);
debug_redacting!(Session, token_hash; username, expires_at, created_at);
debug_redacting!(ApiToken, token_hash; username, label, created_at, expires_at, revoked_at);

/// A person who logs into the web app.
#[derive(Clone, PartialEq, Serialize)]
pub struct User {
    /// Unique login name.
    pub username: String,
    /// PHC string (argon2); never serialized or printed.
    #[serde(skip_serializing)]
    pub password_hash: String,
    /// "l1", "l2", "lead" or "admin".
    pub role: String,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// A web login session, keyed by the hash of its cookie.
#[derive(Clone, PartialEq, Serialize)]
pub struct Session {
    /// Hash of the session token; never serialized or printed.
    #[serde(skip_serializing)]
    pub token_hash: String,
    /// Whose session.
    pub username: String,
    /// When it stops being valid.
    pub expires_at: DateTime<Utc>,
    /// When created.
    pub created_at: DateTime<Utc>,
}

/// A token for scripts calling the HTTP API, keyed by its hash.
#[derive(Clone, PartialEq, Serialize)]
pub struct ApiToken {
    /// Hash of the token; never serialized or printed.
    #[serde(skip_serializing)]
    pub token_hash: String,
    /// Whose token.
    pub username: String,
    /// What it is for, e.g. "monitoring".
    pub label: String,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When it stops working (`None`: never; only tokens made so on purpose).
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// An automated check's result, as the server recorded it (uploads never land here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    /// Its id.
    pub id: i64,
    /// The incident.
    pub incident_id: i64,
    /// The runbook step whose check ran.
    pub step: String,
    /// The answer the check found, when conclusive.
    pub answer: Option<String>,
    /// One line for the agent.
    pub summary: String,
    /// What the check gathered.
    pub evidence: serde_json::Value,
    /// Who asked for the check.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Where a call with an idempotency key stands (see `Store::idempotency_begin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// First time: the caller runs the call and then records its answer.
    New,
    /// The first call with this key is still running.
    InProgress,
    /// The key was used for another request (method and path).
    Mismatch,
    /// Done before: this is its answer.
    Done {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: String,
    },
}

#[cfg(test)]
mod level_tests {
    use super::*;

    #[test]
    fn levels_are_ranked_and_normalized_by_one_rule() {
        assert_eq!(level_rank("L1").ok(), Some(0));
        assert_eq!(level_rank(" l2 ").ok(), Some(1));
        assert_eq!(level_rank("L3").ok(), Some(2));
        assert_eq!(normalize_level("l3").ok().as_deref(), Some("L3"));
        for wrong in ["L0", "L4", "", "gate", "level 2"] {
            let rank = level_rank(wrong).expect_err(wrong);
            let normalized = normalize_level(wrong).expect_err(wrong);
            assert!(matches!(rank, Error::Invalid(_)), "{wrong:?}: {rank:?}");
            assert_eq!(rank.to_string(), normalized.to_string());
            assert!(rank.to_string().contains("unknown level"), "{rank}");
        }
    }
}
