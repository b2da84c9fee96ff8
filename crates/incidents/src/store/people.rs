//! The web app's users, their sessions and their API tokens.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Store, check_actor, now_ms, required};
use crate::model::{ApiToken, ROLES, Session, User};
use crate::rows;
use crate::{Error, Result};

/// Inside a write transaction: ends every login session of `$username`.
macro_rules! end_sessions {
    ($tx:ident, $username:expr) => {
        sqlx::query("DELETE FROM sessions WHERE username = $1")
            .bind($username)
            .execute(&mut *$tx)
            .await?
    };
}

impl Store {
    /// Creates a web user. `password_hash` is a PHC string made by the caller; `role` is
    /// l1, l2 or admin. A taken username gives `Error::AlreadyExists`.
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<User> {
        self.create_user_by(username, password_hash, role, "system")
            .await
    }

    /// [`Store::create_user`], logged with `actor` as who did it (an admin, the CLI's user).
    pub async fn create_user_by(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
        actor: &str,
    ) -> Result<User> {
        check_actor(actor)?;
        let username = check_username(username)?;
        let password_hash = required("password hash", password_hash)?;
        let role = check_role(role)?;
        let now = now_ms();
        let detail = json!({ "username": username, "role": role });
        let result = in_write_tx!(self, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO users (username, password_hash, role, disabled, created_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 RETURNING username, password_hash, role, disabled, created_at",
            )
            .bind(&username)
            .bind(&password_hash)
            .bind(&role)
            .bind(false)
            .bind(now)
            .fetch_one(&mut *tx)
            .await;
            let row = match inserted {
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                    return Err(Error::AlreadyExists {
                        what: "user",
                        id: username,
                    });
                }
                other => other?,
            };
            let user = rows::user(&row)?;
            audit!(tx, None::<i64>, actor, now, "user.create", detail);
            user
        });
        Ok(result)
    }

    /// The user, if it exists (disabled users included).
    pub async fn user(&self, username: &str) -> Result<Option<User>> {
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT username, password_hash, role, disabled, created_at \
                 FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(pool)
            .await?
            .map(|row| rows::user(&row))
            .transpose()
        })
    }

    /// Every user, by name.
    pub async fn users(&self) -> Result<Vec<User>> {
        query_all!(
            self,
            rows::user,
            "SELECT username, password_hash, role, disabled, created_at \
             FROM users ORDER BY username"
        )
    }

    /// Disables (or re-enables) a user; disabling also ends their sessions.
    pub async fn set_user_disabled(
        &self,
        username: &str,
        disabled: bool,
        actor: &str,
    ) -> Result<User> {
        check_actor(actor)?;
        let now = now_ms();
        let action = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        let user = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "UPDATE users SET disabled = $2 WHERE username = $1 \
                 RETURNING username, password_hash, role, disabled, created_at",
            )
            .bind(username)
            .bind(disabled)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(user_not_found(username));
            };
            if disabled {
                end_sessions!(tx, username);
            }
            let detail = json!({ "username": username });
            audit!(tx, None::<i64>, actor, now, action, detail);
            rows::user(&row)?
        });
        Ok(user)
    }

    /// Gives a user another role (l1, l2 or admin) and ends their sessions, so nothing keeps
    /// running with the old role's rights. Setting the role a user already has changes nothing
    /// (no audit line, sessions kept). API tokens stay: they take the role at each request.
    pub async fn set_user_role(&self, username: &str, role: &str, actor: &str) -> Result<User> {
        check_actor(actor)?;
        let role = check_role(role)?;
        let now = now_ms();
        let user = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "SELECT username, password_hash, role, disabled, created_at \
                 FROM users WHERE username = $1",
            )
            .bind(username)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Err(user_not_found(username));
            };
            let before = rows::user(&row)?;
            if before.role == role {
                before
            } else {
                let row = sqlx::query(
                    "UPDATE users SET role = $2 WHERE username = $1 \
                     RETURNING username, password_hash, role, disabled, created_at",
                )
                .bind(username)
                .bind(&role)
                .fetch_one(&mut *tx)
                .await?;
                end_sessions!(tx, username);
                let detail = json!({ "username": username, "from": before.role, "to": role });
                audit!(tx, None::<i64>, actor, now, "user.role", detail);
                rows::user(&row)?
            }
        });
        Ok(user)
    }

    /// Replaces a user's password hash and ends their sessions.
    pub async fn set_user_password(
        &self,
        username: &str,
        password_hash: &str,
        actor: &str,
    ) -> Result<()> {
        check_actor(actor)?;
        let password_hash = required("password hash", password_hash)?;
        let now = now_ms();
        in_write_tx!(self, |tx| {
            let changed = sqlx::query("UPDATE users SET password_hash = $2 WHERE username = $1")
                .bind(username)
                .bind(&password_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(user_not_found(username));
            }
            end_sessions!(tx, username);
            let detail = json!({ "username": username });
            audit!(tx, None::<i64>, actor, now, "user.password", detail);
        });
        Ok(())
    }

    /// Stores a login session under the hash of its token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Session> {
        let token_hash = required("token hash", token_hash)?;
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, username, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING token_hash, username, expires_at, created_at",
            )
            .bind(&token_hash)
            .bind(username)
            .bind(expires_at.timestamp_millis())
            .bind(now)
            .fetch_one(pool)
            .await
            .map_err(|err| people_error(err, "session", username))
            .and_then(|row| rows::session(&row))
        })
    }

    /// The session with this token hash, unless it does not exist or has expired.
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT token_hash, username, expires_at, created_at FROM sessions \
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|row| rows::session(&row))
            .transpose()
        })
    }

    /// Ends a session (logout). Ending an unknown session is not an error.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        execute!(
            self,
            "DELETE FROM sessions WHERE token_hash = $1",
            token_hash
        );
        Ok(())
    }

    /// Removes expired sessions; returns how many.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let now = now_ms();
        Ok(execute!(
            self,
            "DELETE FROM sessions WHERE expires_at <= $1",
            now
        ))
    }

    /// Stores an API token under its hash, valid until `expires_at` (`None`: no expiry), and
    /// logs its creation (never the token or its hash).
    pub async fn create_api_token(
        &self,
        token_hash: &str,
        username: &str,
        label: &str,
        expires_at: Option<DateTime<Utc>>,
        actor: &str,
    ) -> Result<ApiToken> {
        check_actor(actor)?;
        let token_hash = required("token hash", token_hash)?;
        let now = now_ms();
        let expires = expires_at.map(|t| t.timestamp_millis());
        let token = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "INSERT INTO api_tokens (token_hash, username, label, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 RETURNING token_hash, username, label, created_at, expires_at, revoked_at",
            )
            .bind(&token_hash)
            .bind(username)
            .bind(label)
            .bind(now)
            .bind(expires)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| people_error(err, "api token", username))?;
            let token = rows::api_token(&row)?;
            let detail = json!({ "username": username, "label": label, "expires_at": expires });
            audit!(tx, None::<i64>, actor, now, "token.create", detail);
            token
        });
        Ok(token)
    }

    /// The API token with this hash, if it exists, is not revoked and has not expired.
    pub async fn api_token(&self, token_hash: &str) -> Result<Option<ApiToken>> {
        let now = now_ms();
        with_pool!(self, |pool| {
            sqlx::query(
                "SELECT token_hash, username, label, created_at, expires_at, revoked_at \
                 FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL \
                 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|row| rows::api_token(&row))
            .transpose()
        })
    }

    /// The API tokens of a user (revoked and expired ones included), oldest first.
    pub async fn api_tokens(&self, username: &str) -> Result<Vec<ApiToken>> {
        query_all!(
            self,
            rows::api_token,
            "SELECT token_hash, username, label, created_at, expires_at, revoked_at \
             FROM api_tokens WHERE username = $1 ORDER BY created_at",
            username
        )
    }

    /// Revokes a user's live tokens (those labelled `label`, or all), logs it, and returns how
    /// many were revoked.
    pub async fn revoke_api_tokens(
        &self,
        username: &str,
        label: Option<&str>,
        actor: &str,
    ) -> Result<u64> {
        check_actor(actor)?;
        let now = now_ms();
        let n = in_write_tx!(self, |tx| {
            let n = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $3 WHERE username = $1 \
                 AND ($2 IS NULL OR label = $2) AND revoked_at IS NULL",
            )
            .bind(username)
            .bind(label)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let detail = json!({ "username": username, "label": label, "revoked": n });
            audit!(tx, None::<i64>, actor, now, "token.revoke", detail);
            n
        });
        Ok(n)
    }

    /// Revokes the one token with this hash (a script giving up its own token), and logs it.
    pub async fn revoke_api_token(&self, token_hash: &str, actor: &str) -> Result<bool> {
        check_actor(actor)?;
        let now = now_ms();
        let done = in_write_tx!(self, |tx| {
            let row = sqlx::query(
                "UPDATE api_tokens SET revoked_at = $2 WHERE token_hash = $1 \
                 AND revoked_at IS NULL RETURNING username, label",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            match row {
                Some(row) => {
                    let username = rows::RowGet::text(&row, "username")?;
                    let label = rows::RowGet::text(&row, "label")?;
                    let detail = json!({ "username": username, "label": label, "revoked": 1 });
                    audit!(tx, None::<i64>, actor, now, "token.revoke", detail);
                    true
                }
                None => false,
            }
        });
        Ok(done)
    }

    /// Revokes an API token. Revoking an unknown token is not an error.
    pub async fn delete_api_token(&self, token_hash: &str) -> Result<()> {
        execute!(
            self,
            "DELETE FROM api_tokens WHERE token_hash = $1",
            token_hash
        );
        Ok(())
    }
}

fn check_role(role: &str) -> Result<String> {
    let wanted = role.trim().to_ascii_lowercase();
    if ROLES.contains(&wanted.as_str()) {
        Ok(wanted)
    } else {
        Err(Error::Invalid(format!(
            "unknown role {role:?} (expected l1, l2, lead or admin)"
        )))
    }
}

fn check_username(username: &str) -> Result<String> {
    let username = required("username", username)?;
    if username.len() > 64
        || username
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::Invalid(format!(
            "username {username:?} must be at most 64 characters without spaces"
        )));
    }
    Ok(username)
}

/// Session and token inserts: a missing user or a reused hash get their own errors.
fn people_error(err: sqlx::Error, what: &'static str, username: &str) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => user_not_found(username),
        // The key is a hash: say whose it is rather than showing it.
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::AlreadyExists {
            what,
            id: format!("for user {username}"),
        },
        _ => Error::from(err),
    }
}

/// No user of that name.
fn user_not_found(username: &str) -> Error {
    Error::NotFound {
        what: "user",
        id: username.to_owned(),
    }
}
