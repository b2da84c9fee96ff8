//! The one error type of the incident store, with messages safe to show to a user.

/// Everything the store can refuse or fail with.
///
/// Messages never carry secrets: database URLs are shown with their password removed, and
/// password or token hashes never appear.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The incident, user, attachment... does not exist.
    #[error("{what} {id} not found")]
    NotFound {
        /// What was looked for: "incident", "user", "attachment".
        what: &'static str,
        /// Its id as given.
        id: String,
    },
    /// Optimistic concurrency: somebody changed the incident since the caller read it.
    /// Nothing was written; re-read the incident and try again.
    #[error(
        "incident {id} was changed by someone else (now at version {current_version}); reload it and try again"
    )]
    Conflict {
        /// The incident.
        id: i64,
        /// The version it has now.
        current_version: i64,
    },
    /// The incident is closed and takes no further steps, escalations or closing.
    #[error("incident {id} is closed")]
    Closed {
        /// The incident.
        id: i64,
    },
    /// Something with that key exists already (a username, an API token).
    #[error("{what} {id} already exists")]
    AlreadyExists {
        /// What: "user", "api token", "session".
        what: &'static str,
        /// Its key as given (never a token hash).
        id: String,
    },
    /// The caller's input is not acceptable; the message says why.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// The database cannot be reached or opened (down, wrong URL, not a database file).
    #[error("cannot open database {target}: {reason}")]
    Connect {
        /// The URL or path, password removed.
        target: String,
        /// Why, in words.
        reason: String,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Database(String),
    /// The database does not answer now (down, unreachable, no free connection); nothing was
    /// done and the same call may work later.
    #[error("the {backend} store is unavailable: {reason}")]
    Unavailable {
        /// "sqlite" or "postgres".
        backend: &'static str,
        /// Why, in words ("connection refused").
        reason: String,
    },
    /// The store is configured with something that cannot work (an unsupported URL scheme).
    #[error("store configuration: {0}")]
    Config(String),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        // Connection-level failures (and PostgreSQL's connection exceptions, class 08, and
        // shutdowns, 57P0x): the database is away, not the request wrong.
        let unavailable = match &err {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")),
            _ => false,
        };
        if unavailable {
            Error::Unavailable {
                backend: "database",
                reason: describe(&err),
            }
        } else {
            Error::Database(describe(&err))
        }
    }
}

/// Words for a sqlx error, with URLs in it stripped of passwords.
pub(crate) fn describe(err: &sqlx::Error) -> String {
    let text = match err {
        sqlx::Error::Database(db) => {
            // SQLite's primary codes: 5 busy, 11 corrupt, 26 not a database.
            match db.code().as_deref() {
                Some("26") => {
                    "the file is not a SQLite database (corrupt or another kind of file)".to_owned()
                }
                Some("11") => "the SQLite database file is corrupt".to_owned(),
                Some("5") => "the database stayed locked by another writer too long".to_owned(),
                _ => db.message().to_owned(),
            }
        }
        sqlx::Error::PoolTimedOut => "timed out waiting for a database connection".to_owned(),
        sqlx::Error::PoolClosed => "the store was closed".to_owned(),
        other => other.to_string(),
    };
    redact_urls(&text)
}

/// Removes the password from a database URL, `postgres://user:secret@host/db` ->
/// `postgres://user:***@host/db` (and `?password=...` -> `?password=***`), so that it can be
/// shown in errors and logs.
pub fn redact_url(url: &str) -> String {
    redact_query_password(&redact_userinfo(url))
}

fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    // A password may hold '/', '?', '#' or '@' (unencoded, however wrong): the userinfo ends at
    // the last '@' of the whole text. That may hide more than the password when a path or query
    // holds an '@' too, which is the safe side.
    let Some(at) = rest.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &rest[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    // A colon after the first '/' is not in a userinfo (e.g. `sqlite:///a:b@c`).
    if userinfo[..colon].contains(['/', '?', '#']) {
        return url.to_owned();
    }
    format!(
        "{}{}:***{}",
        &url[..scheme_end + 3],
        &userinfo[..colon],
        &rest[at..]
    )
}

/// Hides the value of a `password=` query parameter, which libpq-style URLs allow.
fn redact_query_password(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _))
                if key.eq_ignore_ascii_case("password") || key.eq_ignore_ascii_case("passwd") =>
            {
                format!("{key}=***")
            }
            _ => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Redacts every `scheme://user:pass@` found inside a longer text.
fn redact_urls(text: &str) -> String {
    if !text.contains("://") {
        return text.to_owned();
    }
    text.split(' ')
        .map(|word| {
            if word.contains("://") {
                redact_url(word)
            } else {
                word.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_are_removed_from_urls() {
        let table = [
            (
                "postgres://bob:s3cret@db:5432/x",
                "postgres://bob:***@db:5432/x",
            ),
            ("postgres://bob@db/x", "postgres://bob@db/x"),
            ("postgres://db/x?user=a", "postgres://db/x?user=a"),
            ("sqlite:///var/lib/d.sqlite", "sqlite:///var/lib/d.sqlite"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("not a url", "not a url"),
            (
                "postgres://db/x?user=a&password=pw&sslmode=disable",
                "postgres://db/x?user=a&password=***&sslmode=disable",
            ),
            (
                "postgres://u:p@h/x?PASSWORD=z",
                "postgres://u:***@h/x?PASSWORD=***",
            ),
            // Passwords holding URL delimiters, raw and percent-encoded.
            (
                "postgres://u:a/b?c#d@h:5432/db",
                "postgres://u:***@h:5432/db",
            ),
            ("postgres://u:a%2Fb%3Fc%23d@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:p#w@h/db?sslmode=disable",
                "postgres://u:***@h/db?sslmode=disable",
            ),
            ("postgres://u:?x@h/db", "postgres://u:***@h/db"),
        ];
        for (input, expected) in table {
            assert_eq!(redact_url(input), expected, "{input}");
        }
    }
}
