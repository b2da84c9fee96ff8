//! The schema migrations of both backends, embedded in the binary and applied in order.
//!
//! Each backend has its own directory (`migrations/sqlite`, `migrations/postgres`) because DDL
//! differs (identity columns, BYTEA, triggers); the tables and columns are the same. Applied
//! versions are tracked in `schema_version`.

/// One migration: its version, a name for humans, and the SQL script.
pub(crate) struct Migration {
    pub(crate) version: i64,
    pub(crate) name: &'static str,
    pub(crate) sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/sqlite/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "check_runs",
        sql: include_str!("../migrations/sqlite/0002_check_runs.sql"),
    },
    Migration {
        version: 3,
        name: "token_expiry",
        sql: include_str!("../migrations/sqlite/0003_token_expiry.sql"),
    },
    Migration {
        version: 4,
        name: "health_probe",
        sql: include_str!("../migrations/sqlite/0004_health_probe.sql"),
    },
    Migration {
        version: 5,
        name: "audit_chain",
        sql: include_str!("../migrations/sqlite/0005_audit_chain.sql"),
    },
    Migration {
        version: 6,
        name: "idempotency",
        sql: include_str!("../migrations/sqlite/0006_idempotency.sql"),
    },
    Migration {
        version: 7,
        name: "casework",
        sql: include_str!("../migrations/sqlite/0007_casework.sql"),
    },
    Migration {
        version: 8,
        name: "attachment_chunks",
        sql: include_str!("../migrations/sqlite/0008_attachment_chunks.sql"),
    },
    Migration {
        version: 9,
        name: "reports",
        sql: include_str!("../migrations/sqlite/0009_reports.sql"),
    },
    Migration {
        version: 10,
        name: "search",
        sql: include_str!("../migrations/sqlite/0010_search.sql"),
    },
    Migration {
        version: 11,
        name: "outbox",
        sql: include_str!("../migrations/sqlite/0011_outbox.sql"),
    },
    Migration {
        version: 12,
        name: "webhook_targets",
        sql: include_str!("../migrations/sqlite/0012_webhook_targets.sql"),
    },
    Migration {
        version: 13,
        name: "report_per_incident",
        sql: include_str!("../migrations/sqlite/0013_report_per_incident.sql"),
    },
    Migration {
        version: 14,
        name: "report_overrides_index",
        sql: include_str!("../migrations/sqlite/0014_report_overrides_index.sql"),
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sql: include_str!("../migrations/postgres/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "check_runs",
        sql: include_str!("../migrations/postgres/0002_check_runs.sql"),
    },
    Migration {
        version: 3,
        name: "token_expiry",
        sql: include_str!("../migrations/postgres/0003_token_expiry.sql"),
    },
    Migration {
        version: 4,
        name: "health_probe",
        sql: include_str!("../migrations/postgres/0004_health_probe.sql"),
    },
    Migration {
        version: 5,
        name: "audit_chain",
        sql: include_str!("../migrations/postgres/0005_audit_chain.sql"),
    },
    Migration {
        version: 6,
        name: "idempotency",
        sql: include_str!("../migrations/postgres/0006_idempotency.sql"),
    },
    Migration {
        version: 7,
        name: "casework",
        sql: include_str!("../migrations/postgres/0007_casework.sql"),
    },
    Migration {
        version: 8,
        name: "attachment_chunks",
        sql: include_str!("../migrations/postgres/0008_attachment_chunks.sql"),
    },
    Migration {
        version: 9,
        name: "reports",
        sql: include_str!("../migrations/postgres/0009_reports.sql"),
    },
    Migration {
        version: 10,
        name: "search",
        sql: include_str!("../migrations/postgres/0010_search.sql"),
    },
    Migration {
        version: 11,
        name: "outbox",
        sql: include_str!("../migrations/postgres/0011_outbox.sql"),
    },
    Migration {
        version: 12,
        name: "webhook_targets",
        sql: include_str!("../migrations/postgres/0012_webhook_targets.sql"),
    },
    Migration {
        version: 13,
        name: "report_per_incident",
        sql: include_str!("../migrations/postgres/0013_report_per_incident.sql"),
    },
    Migration {
        version: 14,
        name: "report_overrides_index",
        sql: include_str!("../migrations/postgres/0014_report_overrides_index.sql"),
    },
];

/// Key of the PostgreSQL advisory lock that serializes concurrent migrations.
pub(crate) const PG_LOCK_KEY: i64 = 0x6469_616c_746f_6e65; // "dialtone"

/// The schema version this build brings databases to (the last migration of both backends).
pub const SCHEMA_VERSION: i64 = 14;

/// Newest schema this build knows.
pub(crate) fn latest(migrations: &[Migration]) -> i64 {
    migrations.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Applies the pending `$migrations` inside the open transaction `$tx`, mapping sqlx errors
/// with `$err`. A database newer than this build is refused rather than touched.
macro_rules! apply {
    ($tx:ident, $migrations:expr, $err:expr) => {{
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS schema_version (\
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
        )
        .execute(&mut *$tx)
        .await
        .map_err($err)?;
        let applied: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
            .fetch_one(&mut *$tx)
            .await
            .map_err($err)?;
        let applied = applied.unwrap_or(0);
        let latest = $crate::migrate::latest($migrations);
        if applied > latest {
            return Err($crate::Error::Migration(format!(
                "the database has schema version {applied}, newer than this program knows \
                 ({latest}); upgrade dialtone"
            )));
        }
        for migration in $migrations.iter().filter(|m| m.version > applied) {
            sqlx::raw_sql(migration.sql)
                .execute(&mut *$tx)
                .await
                .map_err(|err| {
                    $crate::Error::Migration(format!(
                        "{:04}_{}: {}",
                        migration.version,
                        migration.name,
                        $crate::error::describe(&err)
                    ))
                })?;
            sqlx::query(
                "INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
            )
            .bind(migration.version)
            .bind(migration.name)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *$tx)
            .await
            .map_err($err)?;
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "schema migrated"
            );
        }
    }};
}
pub(crate) use apply;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_end_at_the_same_version() {
        assert_eq!(latest(SQLITE), SCHEMA_VERSION);
        assert_eq!(latest(POSTGRES), SCHEMA_VERSION);
        assert_eq!(SQLITE.len(), POSTGRES.len());
    }
}
