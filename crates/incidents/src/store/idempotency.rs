//! Idempotency keys of HTTP calls: claiming a key and recording its answer.

use super::{Store, now_ms};
use crate::Result;
use crate::model::Idempotency;

impl Store {
    /// Claims `key` for a call by `scope` (a credential's hash) with `fingerprint` (method and
    /// path). Keys are kept a day; a claim whose call never finished is taken over after a
    /// minute.
    pub async fn idempotency_begin(
        &self,
        scope: &str,
        key: &str,
        fingerprint: &str,
    ) -> Result<Idempotency> {
        const KEEP_MS: i64 = 24 * 3600 * 1000;
        const STALE_MS: i64 = 60 * 1000;
        let now = now_ms();
        let state = in_write_tx!(self, |tx| {
            sqlx::query("DELETE FROM idempotency WHERE created_at < $1")
                .bind(now - KEEP_MS)
                .execute(&mut *tx)
                .await?;
            let row: Option<(String, Option<i64>, Option<String>, i64)> = sqlx::query_as(
                "SELECT fingerprint, status, body, created_at FROM idempotency \
                 WHERE scope = $1 AND key = $2",
            )
            .bind(scope)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some((fp, _, _, _)) if fp != fingerprint => Idempotency::Mismatch,
                Some((_, Some(status), body, _)) => Idempotency::Done {
                    status: u16::try_from(status).unwrap_or(500),
                    body: body.unwrap_or_default(),
                },
                Some((_, None, _, at)) if now - at < STALE_MS => Idempotency::InProgress,
                Some(_) => {
                    sqlx::query(
                        "UPDATE idempotency SET created_at = $3 WHERE scope = $1 AND key = $2",
                    )
                    .bind(scope)
                    .bind(key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    Idempotency::New
                }
                None => {
                    sqlx::query(
                        "INSERT INTO idempotency (scope, key, fingerprint, created_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(scope)
                    .bind(key)
                    .bind(fingerprint)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    Idempotency::New
                }
            }
        });
        Ok(state)
    }

    /// Records the answer of a claimed key; `None` releases the claim (the call failed and
    /// changed nothing, so a retry may run it again).
    pub async fn idempotency_finish(
        &self,
        scope: &str,
        key: &str,
        answer: Option<(u16, &str)>,
    ) -> Result<()> {
        in_write_tx!(self, |tx| {
            match answer {
                Some((status, body)) => {
                    sqlx::query(
                        "UPDATE idempotency SET status = $3, body = $4 \
                         WHERE scope = $1 AND key = $2",
                    )
                    .bind(scope)
                    .bind(key)
                    .bind(i64::from(status))
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM idempotency WHERE scope = $1 AND key = $2")
                        .bind(scope)
                        .bind(key)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        });
        Ok(())
    }
}
