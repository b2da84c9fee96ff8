//! The audit log's hash chain: each row's hash covers the previous row's hash and the row's own
//! content, so changing, removing or reordering a row breaks the chain at that row.

use sha2::{Digest, Sha256};

/// The `prev_hash` of the first row.
pub(crate) const GENESIS: &str = "";

/// SHA-256 (hex) of the previous hash and the row's fields, each length-prefixed so no two
/// different rows hash the same text.
pub(crate) fn row_hash(
    prev: &str,
    incident_id: Option<i64>,
    actor: &str,
    at: i64,
    action: &str,
    detail: &str,
) -> String {
    let mut h = Sha256::new();
    let incident = incident_id.map(|i| i.to_string()).unwrap_or_default();
    let at = at.to_string();
    for field in [prev, &incident, actor, &at, action, detail] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Takes the lock that orders audit appends (PostgreSQL: an advisory lock held to the end of
/// the transaction; SQLite's `BEGIN IMMEDIATE` already serializes writers).
pub(crate) trait ChainLock {
    async fn lock_chain(&mut self) -> Result<(), sqlx::Error>;
}

impl ChainLock for sqlx::SqliteConnection {
    async fn lock_chain(&mut self) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

impl ChainLock for sqlx::PgConnection {
    async fn lock_chain(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(AUDIT_LOCK_KEY)
            .execute(self)
            .await
            .map(drop)
    }
}

/// Advisory lock key of the audit chain ("dtaudit").
const AUDIT_LOCK_KEY: i64 = 0x0064_7461_7564_6974;

/// What `Store::verify_audit` found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AuditVerdict {
    /// Rows checked.
    pub rows: u64,
    /// The first row whose hashes do not match, and why; `None` when the chain is intact.
    pub first_broken: Option<BrokenRow>,
}

/// A row where the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokenRow {
    /// The row's id.
    pub id: i64,
    /// What does not match.
    pub reason: String,
}
