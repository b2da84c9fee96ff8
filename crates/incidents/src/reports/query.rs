//! The SQL the reports share: the cohort's conditions, the percentile queries of both
//! backends, and running a report query into rows of JSON values.

use serde_json::{Value, json};
use sqlx::Row as _;

use super::ReportFilter;
use crate::store::Pool;
use crate::{Result, Store};

/// The cohort's conditions on `incidents` aliased `i`, with the binds $1..$5. The agent's half
/// reads the incident row only: `assignee`, and `agents`, the actors of its step records (see
/// migration 13 and `NOTE_STEP`), searched for the agent's name between commas.
pub(super) fn cohort(backend: &str) -> String {
    let find = if backend == "postgres" {
        "strpos"
    } else {
        "instr"
    };
    format!(
        "($1 IS NULL OR i.created_at >= $1) AND ($2 IS NULL OR i.created_at < $2) \
         AND ($3 IS NULL OR i.runbook = $3) AND ($4 IS NULL OR i.level = $4) \
         AND ($5 IS NULL OR i.assignee = $5 OR {find}(i.agents, \
         ',' || replace(replace($5, '%', '%25'), ',', '%2C') || ',') > 0)"
    )
}

/// Nearest-rank median and p90 of `d` per group `g` of the derived table `values`, with the
/// count, minimum, maximum and sum: columns g, n, p50, p90, lo, hi, total.
pub(super) fn percentiles(backend: &str, values: &str) -> String {
    if backend == "postgres" {
        // One sort per group for both percentiles (the array form).
        format!(
            "SELECT g, n, p[1] AS p50, p[2] AS p90, lo, hi, total FROM (SELECT g, COUNT(*) AS n, \
             percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY d) AS p, \
             MIN(d) AS lo, MAX(d) AS hi, CAST(SUM(d) AS BIGINT) AS total \
             FROM ({values}) v GROUP BY g) a ORDER BY g"
        )
    } else {
        format!(
            "SELECT g, COUNT(*) AS n, \
             MAX(CASE WHEN rn = (cnt + 1) / 2 THEN d END) AS p50, \
             MAX(CASE WHEN rn = (9 * cnt + 9) / 10 THEN d END) AS p90, \
             MIN(d) AS lo, MAX(d) AS hi, CAST(SUM(d) AS BIGINT) AS total \
             FROM (SELECT g, d, ROW_NUMBER() OVER (PARTITION BY g ORDER BY d) AS rn, \
             COUNT(*) OVER (PARTITION BY g) AS cnt FROM ({values}) v0) v GROUP BY g ORDER BY g"
        )
    }
}

/// Rows of a report query: each column read as an integer or text by name.
pub(super) enum Col {
    Int(&'static str),
    Text(&'static str),
}

/// The columns of a [`percentiles`] query.
pub(super) fn pct_cols() -> [Col; 7] {
    [
        Col::Text("g"),
        Col::Int("n"),
        Col::Int("p50"),
        Col::Int("p90"),
        Col::Int("lo"),
        Col::Int("hi"),
        Col::Int("total"),
    ]
}

impl Store {
    /// Runs a report query with the cohort binds and reads `cols` from every row.
    pub(super) async fn report_rows(
        &self,
        sql: &str,
        filter: &ReportFilter,
        cols: &[Col],
    ) -> Result<Vec<Vec<Value>>> {
        let from = filter.from.map(|t| t.timestamp_millis());
        let to = filter.to.map(|t| t.timestamp_millis());
        macro_rules! run {
            ($pool:expr) => {{
                let query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
                // A query for every incident names no cohort parameter: bind none then.
                let query = if sql.contains("$1") {
                    query
                        .bind(from)
                        .bind(to)
                        .bind(filter.runbook.as_deref())
                        .bind(filter.level.as_deref())
                        .bind(filter.agent.as_deref())
                } else {
                    query
                };
                let rows = query.fetch_all($pool).await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let mut cells = Vec::with_capacity(cols.len());
                    for col in cols {
                        cells.push(match col {
                            Col::Int(name) => row
                                .try_get::<Option<i64>, _>(*name)?
                                .map_or(Value::Null, |v| json!(v)),
                            Col::Text(name) => row
                                .try_get::<Option<String>, _>(*name)?
                                .map_or(Value::Null, |v| json!(v)),
                        });
                    }
                    out.push(cells);
                }
                out
            }};
        }
        Ok(match &self.pool {
            Pool::Sqlite(pool) => run!(pool),
            Pool::Postgres(pool) => {
                // Percentiles sort up to a million values: let them sort in memory, for this
                // read-only transaction only.
                let mut tx = pool.begin().await?;
                sqlx::query("SET TRANSACTION READ ONLY")
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("SET LOCAL work_mem = '64MB'")
                    .execute(&mut *tx)
                    .await?;
                // Compiling a report's plan costs more than it saves (a quarter of a second
                // for the escalations report on a million incidents).
                sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
                // A UNION ALL of aggregates (escalations) as a parallel append gives each
                // branch to one process: the step records' would be read by one core alone.
                sqlx::query("SET LOCAL enable_parallel_append = off")
                    .execute(&mut *tx)
                    .await?;
                let out = run!(&mut *tx);
                tx.commit().await?;
                out
            }
        })
    }
}
