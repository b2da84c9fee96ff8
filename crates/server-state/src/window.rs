//! A recent window of the server's SIP traffic kept outside the server: what a capture endpoint
//! (HEP) saw. Backends read it when the server's own database keeps no trace.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::{CallRecord, RegAttempt, Result};

/// Who called whom in one call, as the signalling said.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CallParties {
    /// From user.
    pub caller: String,
    /// The user the call reached (Request-URI user after rewriting when seen, else To user).
    pub callee: String,
    /// What the caller dialled (Request-URI user of the first INVITE).
    pub dialled: String,
}

/// A window of SIP events per account (see the `sip-events` crate's `EventWindow`).
#[async_trait::async_trait]
pub trait TraceWindow: Send + Sync + std::fmt::Debug {
    /// Where the window is read from, for reports (`HEP window /var/lib/dialtone/events.sqlite`).
    fn describe(&self) -> String;

    /// REGISTER requests of `user` since `since`, oldest first, each with its final response.
    async fn registration_attempts(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RegAttempt>>;

    /// Calls made or received by `user` since `since`, newest first, at most `limit`.
    async fn calls(&self, user: &str, since: DateTime<Utc>, max: usize) -> Result<Vec<CallRecord>>;

    /// The parties of each call the window saw, by Call-ID.
    async fn call_parties(&self, call_ids: &[String]) -> Result<HashMap<String, CallParties>>;

    /// The oldest and newest event in the window (`None` when it is empty).
    async fn span(&self) -> Result<Option<(DateTime<Utc>, DateTime<Utc>)>>;
}
