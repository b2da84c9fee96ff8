//! Reading the audit log and checking its hash chain.

use super::Store;
use crate::Result;
use crate::model::AuditEntry;
use crate::rows;

impl Store {
    /// The audit log of incident `id`, oldest first.
    pub async fn audit(&self, id: i64) -> Result<Vec<AuditEntry>> {
        self.get(id).await?;
        query_all!(
            self,
            rows::audit_entry,
            "SELECT id, incident_id, actor, at, action, detail \
             FROM audit_log WHERE incident_id = $1 ORDER BY id",
            id
        )
    }

    /// Checks the audit log's hash chain from the first row: each row's `prev_hash` must be the
    /// row before's `row_hash`, and its `row_hash` must match its content. Names the first row
    /// where either fails (an edited row, or the row after a removed one).
    pub async fn verify_audit(&self) -> Result<crate::AuditVerdict> {
        use sqlx::Row as _;
        let rows = with_pool!(self, |pool| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, incident_id, actor, at, action, detail, prev_hash, row_hash \
                 FROM audit_log ORDER BY id",
            )
            .fetch_all(pool)
            .await?
            {
                out.push((
                    row.try_get::<i64, _>("id")?,
                    row.try_get::<Option<i64>, _>("incident_id")?,
                    row.try_get::<String, _>("actor")?,
                    row.try_get::<i64, _>("at")?,
                    row.try_get::<String, _>("action")?,
                    row.try_get::<String, _>("detail")?,
                    row.try_get::<Option<String>, _>("prev_hash")?,
                    row.try_get::<Option<String>, _>("row_hash")?,
                ));
            }
            out
        });
        let mut expected_prev = crate::chain::GENESIS.to_owned();
        let mut checked = 0u64;
        for (id, incident, actor, at, action, detail, prev, hash) in rows {
            checked += 1;
            let broken = |reason: &str| crate::AuditVerdict {
                rows: checked,
                first_broken: Some(crate::BrokenRow {
                    id,
                    reason: reason.to_owned(),
                }),
            };
            let (Some(prev), Some(hash)) = (prev, hash) else {
                return Ok(broken("the row has no hashes"));
            };
            if prev != expected_prev {
                return Ok(broken(
                    "its previous-row hash does not match the row before it (a row was removed, \
                     inserted or changed before it)",
                ));
            }
            if crate::chain::row_hash(&prev, incident, &actor, at, &action, &detail) != hash {
                return Ok(broken(
                    "its content does not match its hash (the row was changed)",
                ));
            }
            expected_prev = hash;
        }
        Ok(crate::AuditVerdict {
            rows: checked,
            first_broken: None,
        })
    }

    /// The audit lines that concern no incident (user administration), oldest first.
    pub async fn audit_users(&self) -> Result<Vec<AuditEntry>> {
        query_all!(
            self,
            rows::audit_entry,
            "SELECT id, incident_id, actor, at, action, detail \
             FROM audit_log WHERE incident_id IS NULL ORDER BY id"
        )
    }
}
