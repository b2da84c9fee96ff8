//! Finding incidents: free text in the account, reporter, description and the agents' step
//! notes (PostgreSQL full-text search over a GIN index, SQLite FTS5), plus exact filters.
//!
//! A query is words and `key:value` filters: `account:` (contains), `reporter:` (contains),
//! `outcome:`, `status:`, `from:` and `to:` (opening date, YYYY-MM-DD, UTC). A word matches
//! incidents with a word starting with it in any of the texts; several words must all match
//! (each anywhere). Words are runs of letters and digits on both backends (PostgreSQL indexes
//! the text with every other character turned into a space, as FTS5's tokenizer splits it), so
//! "alice@example.org" is found by "alice" and "example" alike, and a number by its digits.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::model::{Incident, Status};
use crate::rows::{self, incident_cols};
use crate::store::Pool;
use crate::{Error, Result, Store};

/// At most this many incidents per search, newest first.
pub const SEARCH_LIMIT: i64 = 100;

/// A parsed search.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SearchQuery {
    /// Words that must all appear (as word prefixes) in the incident's texts or notes.
    pub words: Vec<String>,
    /// Account contains (case-insensitive).
    pub account: Option<String>,
    /// Reporter contains (case-insensitive).
    pub reporter: Option<String>,
    /// Exact outcome.
    pub outcome: Option<String>,
    /// Status.
    pub status: Option<Status>,
    /// Opened at or after.
    pub from: Option<DateTime<Utc>>,
    /// Opened before.
    pub to: Option<DateTime<Utc>>,
}

impl SearchQuery {
    /// Parses "words key:value ..."; an unknown key or a bad value is `Error::Invalid`.
    pub fn parse(text: &str) -> Result<SearchQuery> {
        let mut q = SearchQuery::default();
        for token in text.split_whitespace() {
            if let Some((key, value)) = token.split_once(':')
                && !key.is_empty()
                && key.chars().all(|c| c.is_ascii_alphabetic())
            {
                let value = value.trim();
                if value.is_empty() {
                    return Err(Error::Invalid(format!("{key}: needs a value")));
                }
                match key.to_ascii_lowercase().as_str() {
                    "account" => q.account = Some(value.to_owned()),
                    "reporter" => q.reporter = Some(value.to_owned()),
                    "outcome" => q.outcome = Some(value.to_owned()),
                    "status" => q.status = Some(value.parse()?),
                    "from" => q.from = Some(date(key, value)?),
                    "to" => q.to = Some(date(key, value)?),
                    // A number is words like any other.
                    "number" => q.words.extend(words_of(value)),
                    _ => {
                        return Err(Error::Invalid(format!(
                            "unknown search filter {key}: (expected account:, reporter:, \
                             number:, outcome:, status:, from: or to:)"
                        )));
                    }
                }
            } else {
                q.words.extend(words_of(token));
            }
        }
        q.words.dedup();
        Ok(q)
    }

    /// Whether the query asks for nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == SearchQuery::default()
    }
}

fn date(key: &str, value: &str) -> Result<DateTime<Utc>> {
    parse_when(value)
        .ok_or_else(|| Error::Invalid(format!("{key}:{value}: expected a date YYYY-MM-DD")))
}

/// A date (midnight UTC) or an RFC 3339 time, as searches and report filters take them.
pub fn parse_when(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The letter-and-digit runs of a text, lowercased (the words both backends index).
fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .take(16)
        .collect()
}

impl Store {
    /// Incidents matching `query`, newest first, at most [`SEARCH_LIMIT`].
    pub async fn search(&self, query: &SearchQuery) -> Result<Vec<Incident>> {
        if query.is_empty() {
            return Err(Error::Invalid(
                "an empty search: give words or filters (account:, reporter:, number:, \
                 outcome:, status:, from:, to:)"
                    .to_owned(),
            ));
        }
        let pattern = |s: &Option<String>| {
            s.as_deref()
                .map(|v| format!("%{}%", crate::store::escape_like(&v.to_lowercase())))
        };
        // Each word ($7, $8...): a prefix match in the incident's own text or in one of its
        // notes, each side through its full-text index.
        let pg = matches!(self.pool, Pool::Postgres(_));
        let per_word: Vec<String> = (0..query.words.len())
            .map(|i| {
                let n = i + 7;
                if pg {
                    format!(
                        " AND i.id IN (SELECT x.id FROM incidents x WHERE to_tsvector('simple', \
                         regexp_replace(x.account || ' ' || x.reporter || ' ' || x.description, \
                         '[^[:alnum:]]+', ' ', 'g')) @@ to_tsquery('simple', ${n}) \
                         UNION SELECT s.incident_id FROM step_records s WHERE s.note IS NOT NULL \
                         AND to_tsvector('simple', regexp_replace(s.note, '[^[:alnum:]]+', ' ', 'g')) \
                         @@ to_tsquery('simple', ${n}) \
                         UNION SELECT m.incident_id FROM notes m WHERE to_tsvector('simple', \
                         regexp_replace(m.text, '[^[:alnum:]]+', ' ', 'g')) @@ to_tsquery('simple', ${n}))"
                    )
                } else {
                    format!(
                        " AND i.id IN (SELECT rowid FROM incidents_fts WHERE incidents_fts MATCH ${n} \
                         UNION SELECT s.incident_id FROM notes_fts JOIN step_records s \
                         ON s.id = notes_fts.rowid WHERE notes_fts MATCH ${n} \
                         UNION SELECT m.incident_id FROM incident_notes_fts JOIN notes m \
                         ON m.id = incident_notes_fts.rowid WHERE incident_notes_fts MATCH ${n})"
                    )
                }
            })
            .collect();
        // Words are letters and digits only: quoting makes each one plain text to the parser.
        let terms: Vec<String> = query
            .words
            .iter()
            .map(|w| {
                if pg {
                    format!("{w}:*")
                } else {
                    format!("\"{w}\"*")
                }
            })
            .collect();
        let sql = format!(
            concat!(
                "SELECT ",
                incident_cols!(),
                " FROM incidents i WHERE ($1 IS NULL OR LOWER(i.account) LIKE $1 ESCAPE '\\') \
                 AND ($2 IS NULL OR LOWER(i.reporter) LIKE $2 ESCAPE '\\') \
                 AND ($3 IS NULL OR i.outcome = $3) AND ($4 IS NULL OR i.status = $4) \
                 AND ($5 IS NULL OR i.created_at >= $5) AND ($6 IS NULL OR i.created_at < $6)\
                 {} ORDER BY i.id DESC LIMIT {}"
            ),
            per_word.concat(),
            SEARCH_LIMIT
        );
        let account = pattern(&query.account);
        let reporter = pattern(&query.reporter);
        let status = query.status.map(Status::as_str);
        let from = query.from.map(|t| t.timestamp_millis());
        let to = query.to.map(|t| t.timestamp_millis());
        macro_rules! run {
            ($pool:expr) => {{
                let q = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(&account)
                    .bind(&reporter)
                    .bind(&query.outcome)
                    .bind(status)
                    .bind(from)
                    .bind(to);
                let q = terms.iter().fold(q, |q, t| q.bind(t));
                q.fetch_all($pool)
                    .await?
                    .iter()
                    .map(rows::incident)
                    .collect()
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => run!(pool),
            Pool::Postgres(pool) => run!(pool),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_into_words_and_filters() {
        let q = SearchQuery::parse(
            "Trunk   alice@example.org account:bob status:closed from:2026-01-02",
        )
        .unwrap();
        assert_eq!(q.words, ["trunk", "alice", "example", "org"]);
        assert_eq!(q.account.as_deref(), Some("bob"));
        assert_eq!(q.status, Some(Status::Closed));
        assert_eq!(q.from.unwrap().to_rfc3339(), "2026-01-02T00:00:00+00:00");
        assert_eq!(
            SearchQuery::parse("number:+39 06-555").unwrap().words,
            ["39", "06", "555"]
        );
        assert!(SearchQuery::parse("colour:red").is_err());
        assert!(SearchQuery::parse("from:yesterday").is_err());
        assert!(SearchQuery::parse("'; DROP TABLE x; --").unwrap().words == ["drop", "table", "x"]);
        assert!(SearchQuery::parse("  ").unwrap().is_empty());
    }
}
