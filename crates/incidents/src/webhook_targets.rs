//! Webhook receivers configured in the admin page: one per scope ("*" for every runbook without
//! its own, else a runbook id), kept in the store so that every `dialtone serve` sharing it
//! delivers to the same place. Saving and removing one are audited (who, when, which URL; never
//! the secret). The same URL rules apply to the webhook file (`Endpoint::parse`).

use std::time::Duration;

use crate::store::{Pool, audit, check_actor, in_write_tx, now_ms};
use crate::{Error, Result, Store};
use serde::Serialize;

/// The scope of the receiver for every runbook without its own.
pub const DEFAULT_SCOPE: &str = "*";
/// The shortest secret accepted: it keys the HMAC.
pub const MIN_SECRET: usize = 16;

/// Where a receiver listens: `http://HOST[:PORT][/PATH]` (this build posts over plain HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl Endpoint {
    /// Parses a receiver URL; the error says what is wrong with it in words.
    pub fn parse(url: &str) -> std::result::Result<Endpoint, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("url {url:?}: only http:// URLs are supported"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("url {url:?}: bad port"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(format!("url {url:?}: no host"));
        }
        if path.chars().any(char::is_control) {
            return Err(format!("url {url:?}: control characters in the path"));
        }
        Ok(Endpoint {
            host: host.to_owned(),
            port,
            path: path.to_owned(),
        })
    }
}

/// A receiver saved in the admin page.
#[derive(Clone, Serialize)]
pub struct WebhookTarget {
    /// "*" (every runbook without its own) or a runbook id.
    pub scope: String,
    pub url: String,
    /// The HMAC key; never serialized, never logged.
    #[serde(skip)]
    pub secret: String,
    pub timeout_ms: i64,
    /// Who saved it, and when (ms since the epoch).
    pub actor: String,
    pub at: i64,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("scope", &self.scope)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

impl WebhookTarget {
    /// The wait for the receiver's answer.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.timeout_ms).unwrap_or(0))
    }
}

/// Checks a receiver before it is saved or used: scope, URL, secret length, timeout.
pub fn check_target(
    scope: &str,
    url: &str,
    secret: &str,
    timeout: Duration,
) -> std::result::Result<Endpoint, String> {
    if scope.is_empty()
        || scope.len() > 100
        || !(scope == DEFAULT_SCOPE
            || scope
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)))
    {
        return Err(format!(
            "scope {scope:?}: \"*\" for every runbook, or a runbook id"
        ));
    }
    let endpoint = Endpoint::parse(url)?;
    if secret.chars().count() < MIN_SECRET {
        return Err(format!(
            "the secret must be at least {MIN_SECRET} characters"
        ));
    }
    if timeout.is_zero() || timeout > Duration::from_secs(120) {
        return Err("the timeout must be between 1 ms and 120 s".to_owned());
    }
    Ok(endpoint)
}

impl Store {
    /// The receivers saved in the admin page, by scope.
    pub async fn webhook_targets(&self) -> Result<Vec<WebhookTarget>> {
        let q = "SELECT scope, url, secret, timeout_ms, actor, at FROM webhook_targets \
                 ORDER BY scope";
        type Row = (String, String, String, i64, String, i64);
        let rows: Vec<Row> = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_as(q).fetch_all(pool).await?,
            Pool::Postgres(pool) => sqlx::query_as(q).fetch_all(pool).await?,
        };
        let rows = rows
            .into_iter()
            .map(
                |(scope, url, secret, timeout_ms, actor, at)| WebhookTarget {
                    scope,
                    url,
                    secret,
                    timeout_ms,
                    actor,
                    at,
                },
            )
            .collect();
        Ok(rows)
    }

    /// Saves (or replaces) the receiver of `scope`, and audits it without the secret.
    pub async fn set_webhook_target(
        &self,
        scope: &str,
        url: &str,
        secret: &str,
        timeout: Duration,
        actor: &str,
    ) -> Result<WebhookTarget> {
        check_actor(actor)?;
        let scope = scope.trim();
        let url = url.trim();
        check_target(scope, url, secret, timeout).map_err(Error::Invalid)?;
        let now = now_ms();
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let detail = serde_json::json!({ "scope": scope, "url": url, "timeout_ms": timeout_ms });
        in_write_tx!(self, |tx| {
            sqlx::query(
                "INSERT INTO webhook_targets (scope, url, secret, timeout_ms, actor, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope) DO UPDATE SET \
                 url = excluded.url, secret = excluded.secret, \
                 timeout_ms = excluded.timeout_ms, actor = excluded.actor, at = excluded.at",
            )
            .bind(scope)
            .bind(url)
            .bind(secret)
            .bind(timeout_ms)
            .bind(actor)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            audit!(tx, None::<i64>, actor, now, "webhook.set", detail);
        });
        tracing::info!(scope, url, actor, "webhook receiver saved");
        Ok(WebhookTarget {
            scope: scope.to_owned(),
            url: url.to_owned(),
            secret: secret.to_owned(),
            timeout_ms,
            actor: actor.to_owned(),
            at: now,
        })
    }

    /// Removes the receiver of `scope`; audited.
    pub async fn remove_webhook_target(&self, scope: &str, actor: &str) -> Result<()> {
        check_actor(actor)?;
        let now = now_ms();
        let detail = serde_json::json!({ "scope": scope });
        let removed = in_write_tx!(self, |tx| {
            let n = sqlx::query("DELETE FROM webhook_targets WHERE scope = $1")
                .bind(scope)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                return Err(Error::NotFound {
                    what: "webhook receiver",
                    id: scope.to_owned(),
                });
            }
            audit!(tx, None::<i64>, actor, now, "webhook.remove", detail);
            n
        });
        tracing::info!(scope, actor, removed, "webhook receiver removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receiver_urls_and_secrets_are_checked_in_words() {
        let ok = Endpoint::parse("http://127.0.0.1:9000/hook").unwrap();
        assert_eq!(
            (ok.host.as_str(), ok.port, ok.path.as_str()),
            ("127.0.0.1", 9000, "/hook")
        );
        assert_eq!(Endpoint::parse("http://tickets.example").unwrap().port, 80);
        for (url, why) in [
            ("https://x.example/", "only http://"),
            ("http://:80/", "no host"),
            ("http://x.example:99999/", "bad port"),
            ("http://user@x.example/", "no host"),
        ] {
            let e = Endpoint::parse(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        let t = Duration::from_secs(5);
        assert!(check_target("*", "http://h/", "0123456789abcdef", t).is_ok());
        assert!(
            check_target("user-cant-call", "http://h/", "short", t)
                .unwrap_err()
                .contains("at least 16")
        );
        assert!(check_target("a b", "http://h/", "0123456789abcdef", t).is_err());
        assert!(check_target("*", "http://h/", "0123456789abcdef", Duration::ZERO).is_err());
    }
}
