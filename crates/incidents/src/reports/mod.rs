//! The support lead's reports: aggregates computed by the database, never by listing incidents.
//!
//! Every report looks at one *cohort*: the incidents opened in `[from, to)`, of a runbook, at a
//! level (the level they are at now) and worked by an agent (assigned to them, or with a step
//! they recorded), each filter optional. What the reports aggregate is kept on the incident
//! row by every change, in the change's own transaction (see `phase_accounting!`): when it was
//! closed, how long it was open or escalated at each level and how long it waited for the user;
//! and who recorded its steps and how many answers of each source they hold (`agents`,
//! `answers_*`, kept by the step insert, see `NOTE_STEP`), so that the agent filter and the
//! automation report read the incident row alone.
//!
//! Percentiles are *nearest-rank* (PostgreSQL's `percentile_disc`): the p-th percentile of n
//! sorted values is the value at 1-based position ceil(p·n). PostgreSQL computes it with
//! `percentile_disc`, SQLite with `ROW_NUMBER()` and integer arithmetic (`(n+1)/2` for the
//! median, `(9n+9)/10` for p90); both give the same value, one of the data (no interpolation).
//!
//! Overridden proposals: an automated check proposes an answer and the agent records one; the
//! record keeps what was proposed (`step_records.proposed`), so an answer that differs from its
//! proposal is an override. Records from before proposals existed count the older way: an
//! agent's answer to a step whose latest answer was automated and different overrides it
//! (`step_records.overrides` holds that automated record's id).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::model::normalize_level;
use crate::store::Pool;
use crate::{Error, Result, Store};
use query::{Col, cohort, pct_cols, percentiles};

mod query;

/// The SQL that inserts a step record, naming the earlier answer to the same step it replaces
/// and, for an agent's answer, the automated one it overrides. Binds: incident, runbook, step,
/// answer, source, evidence, note, actor, at, proposed.
pub(crate) const INSERT_STEP: &str = "INSERT INTO step_records \
     (incident_id, runbook, step, answer, source, evidence, note, actor, at, proposed, replaces, \
     overrides) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, (SELECT p.id FROM step_records p \
     WHERE p.incident_id = $1 AND p.step = $3 ORDER BY p.id DESC LIMIT 1), \
     CASE WHEN $5 = 'agent' THEN (\
     SELECT CASE WHEN p.source = 'automated' AND p.answer <> $4 THEN p.id END \
     FROM step_records p WHERE p.incident_id = $1 AND p.step = $3 \
     ORDER BY p.id DESC LIMIT 1) END) RETURNING id";

/// The SQL that counts a new step record on its incident (see migration 13): its actor joins
/// `agents` (each actor once, between commas, `%` and `,` percent-escaped) and its source's
/// `answers_*` counter grows by one. Binds: incident, actor, source.
pub(crate) const NOTE_STEP: &str = "UPDATE incidents SET agents = CASE \
     WHEN replace(agents, ',' || replace(replace($2, '%', '%25'), ',', '%2C') || ',', '') = agents \
     THEN agents || replace(replace($2, '%', '%25'), ',', '%2C') || ',' ELSE agents END, \
     answers_automated = answers_automated + CASE WHEN $3 = 'automated' THEN 1 ELSE 0 END, \
     answers_agent = answers_agent + CASE WHEN $3 = 'agent' THEN 1 ELSE 0 END, \
     answers_assumed = answers_assumed + CASE WHEN $3 = 'assumed' THEN 1 ELSE 0 END \
     WHERE id = $1";

/// The `SET` items of an incident update that keep the report columns: the time since the
/// phase began goes to the old (level, status)'s counter, the new phase begins now, and
/// `closed_at` follows the status. `$4` is the new status and `$9` now (see `Store::mutate`).
macro_rules! phase_accounting {
    () => {
        "l1_ms = l1_ms + CASE WHEN level = 'L1' AND status IN ('open', 'escalated') \
         AND $9 > COALESCE(phase_at, created_at) THEN $9 - COALESCE(phase_at, created_at) ELSE 0 END, \
         l2_ms = l2_ms + CASE WHEN level = 'L2' AND status IN ('open', 'escalated') \
         AND $9 > COALESCE(phase_at, created_at) THEN $9 - COALESCE(phase_at, created_at) ELSE 0 END, \
         l3_ms = l3_ms + CASE WHEN level = 'L3' AND status IN ('open', 'escalated') \
         AND $9 > COALESCE(phase_at, created_at) THEN $9 - COALESCE(phase_at, created_at) ELSE 0 END, \
         waiting_ms = waiting_ms + CASE WHEN status = 'waiting_user' \
         AND $9 > COALESCE(phase_at, created_at) THEN $9 - COALESCE(phase_at, created_at) ELSE 0 END, \
         phase_at = $9, \
         closed_at = CASE WHEN $4 <> 'closed' THEN NULL WHEN status = 'closed' THEN closed_at ELSE $9 END"
    };
}
pub(crate) use phase_accounting;

/// The reports there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReportKind {
    /// Open → close: median and p90.
    TimeToResolve,
    /// Time open or escalated at each level, and waiting for the user.
    TimeAtLevel,
    /// Share of closed incidents closed at L1 without an escalation.
    FirstLevel,
    /// Escalation rate per step and per escalation kind.
    Escalations,
    /// Outcomes per day or week of opening.
    Outcomes,
    /// Share of step answers by checks, by agents, and assumed.
    Automation,
    /// Steps where agents most often replace an automated answer.
    Overrides,
}

impl ReportKind {
    /// Every report, in the order pages show them.
    pub const ALL: [ReportKind; 7] = [
        ReportKind::TimeToResolve,
        ReportKind::TimeAtLevel,
        ReportKind::FirstLevel,
        ReportKind::Escalations,
        ReportKind::Outcomes,
        ReportKind::Automation,
        ReportKind::Overrides,
    ];

    /// The name used in URLs, the CLI and files: "time-to-resolve"...
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::TimeToResolve => "time-to-resolve",
            ReportKind::TimeAtLevel => "time-at-level",
            ReportKind::FirstLevel => "first-level",
            ReportKind::Escalations => "escalations",
            ReportKind::Outcomes => "outcomes",
            ReportKind::Automation => "automation",
            ReportKind::Overrides => "overrides",
        }
    }

    /// A title for people.
    pub fn title(self) -> &'static str {
        match self {
            ReportKind::TimeToResolve => "Time to resolve (open to close)",
            ReportKind::TimeAtLevel => "Time at each level and waiting for the user",
            ReportKind::FirstLevel => "First-level resolution",
            ReportKind::Escalations => "Escalations per step and per kind",
            ReportKind::Outcomes => "Outcomes over time",
            ReportKind::Automation => "Automation: who answered the steps",
            ReportKind::Overrides => "Automated answers agents override",
        }
    }

    /// What the figures mean, in one or two sentences.
    pub fn explanation(self) -> &'static str {
        match self {
            ReportKind::TimeToResolve => {
                "Closed incidents of the cohort: time from opening to closing. Percentiles are \
                 nearest-rank (the value at position ceil(p*n) in order)."
            }
            ReportKind::TimeAtLevel => {
                "Closed incidents of the cohort: time open or escalated at each level, and time \
                 waiting for the user; each row counts the incidents that spent time there."
            }
            ReportKind::FirstLevel => {
                "Closed incidents of the cohort closed at L1, never escalated, out of all closed."
            }
            ReportKind::Escalations => {
                "Per step: escalations decided right after the step's answer, out of the \
                 incidents that answered it. Per kind: escalations of the kind, out of the \
                 cohort's incidents."
            }
            ReportKind::Outcomes => {
                "Incidents per day (or week, from Monday) of opening and outcome; those not \
                 closed show their status in parentheses."
            }
            ReportKind::Automation => {
                "Step answers in the cohort's incidents by source: automated (a check), agent, \
                 assumed (the runbook's default)."
            }
            ReportKind::Overrides => {
                "Per step: answers an automated check gave or proposed, and how many the \
                 agent answered differently."
            }
        }
    }
}

impl fmt::Display for ReportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReportKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        ReportKind::ALL
            .into_iter()
            .find(|k| k.name() == wanted)
            .ok_or_else(|| {
                let names: Vec<_> = ReportKind::ALL.iter().map(|k| k.name()).collect();
                Error::Invalid(format!(
                    "unknown report {s:?} (expected one of {})",
                    names.join(", ")
                ))
            })
    }
}

/// Buckets of the outcomes report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// Calendar days, UTC.
    #[default]
    Day,
    /// Weeks from Monday, UTC.
    Week,
}

impl FromStr for Bucket {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" => Ok(Bucket::Day),
            "week" => Ok(Bucket::Week),
            _ => Err(Error::Invalid(format!(
                "unknown bucket {s:?} (expected day or week)"
            ))),
        }
    }
}

/// Which incidents a report looks at; every field left `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReportFilter {
    /// Opened at or after.
    pub from: Option<DateTime<Utc>>,
    /// Opened before.
    pub to: Option<DateTime<Utc>>,
    /// Of this runbook.
    pub runbook: Option<String>,
    /// At this level now ("L1"...; case-insensitive).
    pub level: Option<String>,
    /// Assigned to this agent, or with a step this agent recorded.
    pub agent: Option<String>,
    /// Buckets of the outcomes report.
    pub bucket: Bucket,
}

impl ReportFilter {
    fn is_empty(&self) -> bool {
        self.from.is_none()
            && self.to.is_none()
            && self.runbook.is_none()
            && self.level.is_none()
            && self.agent.is_none()
    }
}

/// A computed report: a table of figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which report.
    pub kind: ReportKind,
    /// The filter it was computed with.
    pub filter: ReportFilter,
    /// Column names.
    pub columns: Vec<&'static str>,
    /// Rows of cells (integers, strings, rates as numbers in 0..=1 rounded to 4 decimals,
    /// `null` when there is nothing to compute from).
    pub rows: Vec<Vec<Value>>,
}

impl Report {
    /// The report as one JSON object: `report`, `title`, `filter`, `columns`, `rows` (objects
    /// keyed by column).
    pub fn to_json(&self) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|row| {
                Value::Object(
                    self.columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| ((*c).to_owned(), v.clone()))
                        .collect(),
                )
            })
            .collect();
        json!({
            "report": self.kind.name(),
            "title": self.kind.title(),
            "explanation": self.kind.explanation(),
            "filter": self.filter,
            "columns": self.columns,
            "rows": rows,
        })
    }

    /// The report as CSV (RFC 4180: comma-separated, CRLF, quotes doubled), header first.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |cells: Vec<String>, out: &mut String| {
            let quoted: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&quoted.join(","));
            out.push_str("\r\n");
        };
        line(
            self.columns.iter().map(|c| (*c).to_owned()).collect(),
            &mut out,
        );
        for row in &self.rows {
            line(row.iter().map(cell_text).collect(), &mut out);
        }
        out
    }

    /// The value of `column` in row `row`, if both exist.
    pub fn cell(&self, row: usize, column: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| *c == column)?;
        self.rows.get(row)?.get(i)
    }
}

/// Milliseconds in words: "850 ms", "12m 34s", "3h 05m", "2d 04h".
pub fn duration_words(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms} ms"),
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// A cell as plain text: strings bare, numbers as JSON writes them, null empty.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_cell(s: &str) -> String {
    // A leading =, +, - or @ would be a formula in a spreadsheet: prefix it with a quote.
    let s = if s.starts_with(['=', '+', '@']) || (s.starts_with('-') && s.parse::<f64>().is_err()) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `num / den` rounded to 4 decimals, or null when `den` is 0.
pub fn rate(num: i64, den: i64) -> Value {
    if den == 0 {
        Value::Null
    } else {
        // Integer rounding so the figure is exact: round(num * 10000 / den) / 10000.
        let scaled = (i128::from(num) * 20000 + i128::from(den)) / (2 * i128::from(den));
        json!(scaled as f64 / 10000.0)
    }
}

/// One day in milliseconds.
const DAY_MS: i64 = 86_400_000;

impl Store {
    /// Computes one report over the incidents `filter` selects.
    pub async fn report(&self, kind: ReportKind, filter: &ReportFilter) -> Result<Report> {
        let level = filter.level.as_deref().map(normalize_level).transpose()?;
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from >= to
        {
            return Err(Error::Invalid(format!(
                "the period is empty: from {from} is not before to {to}"
            )));
        }
        let filter = ReportFilter {
            level,
            runbook: filter.runbook.as_deref().map(str::trim).map(str::to_owned),
            agent: filter.agent.as_deref().map(str::trim).map(str::to_owned),
            ..filter.clone()
        };
        let backend = self.backend();
        let cond = cohort(backend);
        // Step-record reports skip the join when every incident counts.
        let steps_of_cohort = if filter.is_empty() {
            "step_records s".to_owned()
        } else {
            format!("step_records s JOIN incidents i ON i.id = s.incident_id AND {cond}")
        };
        let cohort = format!("SELECT i.* FROM incidents i WHERE {cond}");
        let (columns, rows): (Vec<&'static str>, Vec<Vec<Value>>) = match kind {
            ReportKind::TimeToResolve => {
                let values = format!(
                    "SELECT 'all' AS g, c.closed_at - c.created_at AS d FROM ({cohort}) c \
                     WHERE c.closed_at IS NOT NULL"
                );
                let raw = self
                    .report_rows(&percentiles(backend, &values), &filter, &pct_cols())
                    .await?;
                let row = raw.into_iter().next();
                let get = |i: usize| row.as_ref().map_or(Value::Null, |r| r[i].clone());
                let n = row.as_ref().and_then(|r| r[1].as_i64()).unwrap_or(0);
                (
                    vec![
                        "closed",
                        "median_ms",
                        "p90_ms",
                        "min_ms",
                        "max_ms",
                        "total_ms",
                    ],
                    vec![vec![
                        json!(n),
                        get(2),
                        get(3),
                        get(4),
                        get(5),
                        if n == 0 { json!(0) } else { get(6) },
                    ]],
                )
            }
            ReportKind::TimeAtLevel => {
                let sql = if backend == "postgres" {
                    // One pass over the cohort and one sort per phase: each phase's aggregates
                    // filter the incidents that spent time there, then one row per phase.
                    let aggs: Vec<String> = [
                        ("1", "l1_ms"),
                        ("2", "l2_ms"),
                        ("3", "l3_ms"),
                        ("w", "waiting_ms"),
                    ]
                    .iter()
                    .map(|(k, col)| {
                        format!(
                            "COUNT(*) FILTER (WHERE c.{col} > 0) AS n{k}, \
                                 percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY c.{col}) \
                                 FILTER (WHERE c.{col} > 0) AS p{k}, \
                                 MIN(c.{col}) FILTER (WHERE c.{col} > 0) AS lo{k}, \
                                 MAX(c.{col}) FILTER (WHERE c.{col} > 0) AS hi{k}, \
                                 CAST(SUM(c.{col}) FILTER (WHERE c.{col} > 0) AS BIGINT) AS t{k}"
                        )
                    })
                    .collect();
                    let rows: Vec<String> = [
                        ("L1", "1"),
                        ("L2", "2"),
                        ("L3", "3"),
                        ("waiting_user", "w"),
                    ]
                    .iter()
                    .map(|(g, k)| {
                        format!("('{g}', a.n{k}, a.p{k}[1], a.p{k}[2], a.lo{k}, a.hi{k}, a.t{k})")
                    })
                    .collect();
                    format!(
                        "SELECT v.g, v.n, v.p50, v.p90, v.lo, v.hi, v.total FROM (SELECT {} \
                         FROM ({cohort}) c WHERE c.closed_at IS NOT NULL) a CROSS JOIN LATERAL \
                         (VALUES {}) v(g, n, p50, p90, lo, hi, total) WHERE v.n > 0 ORDER BY v.g",
                        aggs.join(", "),
                        rows.join(", ")
                    )
                } else {
                    // One pass over the cohort, each incident crossed with the four phases.
                    let values = format!(
                        "SELECT g, d FROM (SELECT p.g AS g, CASE p.g WHEN 'L1' THEN c.l1_ms \
                         WHEN 'L2' THEN c.l2_ms WHEN 'L3' THEN c.l3_ms ELSE c.waiting_ms END AS d \
                         FROM ({cohort}) c CROSS JOIN (SELECT 'L1' AS g UNION ALL SELECT 'L2' \
                         UNION ALL SELECT 'L3' UNION ALL SELECT 'waiting_user') p \
                         WHERE c.closed_at IS NOT NULL) u WHERE d > 0"
                    );
                    percentiles(backend, &values)
                };
                let raw = self.report_rows(&sql, &filter, &pct_cols()).await?;
                let rows = ["L1", "L2", "L3", "waiting_user"]
                    .iter()
                    .map(
                        |phase| match raw.iter().find(|r| r[0].as_str() == Some(phase)) {
                            Some(r) => vec![
                                r[0].clone(),
                                r[1].clone(),
                                r[2].clone(),
                                r[3].clone(),
                                r[6].clone(),
                            ],
                            None => {
                                vec![json!(phase), json!(0), Value::Null, Value::Null, json!(0)]
                            }
                        },
                    )
                    .collect();
                (
                    vec!["phase", "incidents", "median_ms", "p90_ms", "total_ms"],
                    rows,
                )
            }
            ReportKind::FirstLevel => {
                let sql = format!(
                    "SELECT COUNT(*) AS closed, \
                     COALESCE(SUM(CASE WHEN c.level = 'L1' THEN 1 ELSE 0 END), 0) AS at_l1 \
                     FROM ({cohort}) c WHERE c.closed_at IS NOT NULL"
                );
                let raw = self
                    .report_rows(&sql, &filter, &[Col::Int("closed"), Col::Int("at_l1")])
                    .await?;
                let closed = raw.first().and_then(|r| r[0].as_i64()).unwrap_or(0);
                let at_l1 = raw.first().and_then(|r| r[1].as_i64()).unwrap_or(0);
                (
                    vec!["closed", "closed_at_l1", "escalated_then_closed", "rate"],
                    vec![vec![
                        json!(closed),
                        json!(at_l1),
                        json!(closed - at_l1),
                        rate(at_l1, closed),
                    ]],
                )
            }
            ReportKind::Escalations => {
                let cohort_ids = if filter.is_empty() {
                    "incidents i".to_owned()
                } else {
                    format!("incidents i WHERE {cond}")
                };
                let esc_of_cohort = if filter.is_empty() {
                    "escalations e".to_owned()
                } else {
                    format!("escalations e JOIN incidents i ON i.id = e.incident_id AND {cond}")
                };
                // Three aggregates, each reading its table once: the first answers per step,
                // the escalations per (step before, kind), and the cohort's size.
                let sql = format!(
                    "SELECT 'reached' AS what, s.step AS name, NULL AS kind, COUNT(*) AS n \
                     FROM {steps_of_cohort} WHERE s.replaces IS NULL GROUP BY s.step \
                     UNION ALL \
                     SELECT 'escalated' AS what, e.after_step AS name, e.kind AS kind, \
                     COUNT(*) AS n FROM {esc_of_cohort} GROUP BY e.after_step, e.kind \
                     UNION ALL \
                     SELECT 'cohort' AS what, NULL AS name, NULL AS kind, COUNT(*) AS n \
                     FROM {cohort_ids}"
                );
                let parts = self
                    .report_rows(
                        &sql,
                        &filter,
                        &[
                            Col::Text("what"),
                            Col::Text("name"),
                            Col::Text("kind"),
                            Col::Int("n"),
                        ],
                    )
                    .await?;
                let of = |what: &'static str| {
                    parts
                        .iter()
                        .filter(move |r| r[0].as_str() == Some(what))
                        .map(|r| (r[1].as_str(), r[2].as_str(), r[3].as_i64().unwrap_or(0)))
                };
                let cohort_size: i64 = of("cohort").map(|(_, _, n)| n).sum();
                let mut raw: Vec<Vec<Value>> = of("reached")
                    .map(|(step, _, reached)| {
                        let escalations: i64 = of("escalated")
                            .filter(|(after, _, _)| after.is_some() && *after == step)
                            .map(|(_, _, n)| n)
                            .sum();
                        vec![
                            json!("step"),
                            json!(step),
                            json!(escalations),
                            json!(reached),
                        ]
                    })
                    .collect();
                let mut kinds: std::collections::BTreeMap<&str, i64> = Default::default();
                for (_, kind, n) in of("escalated") {
                    *kinds.entry(kind.unwrap_or("(none)")).or_default() += n;
                }
                raw.extend(kinds.into_iter().map(|(kind, n)| {
                    vec![json!("kind"), json!(kind), json!(n), json!(cohort_size)]
                }));
                // Steps first, most escalations first; then kinds the same way.
                raw.sort_by(|a, b| {
                    let key = |r: &Vec<Value>| {
                        (
                            r[0].as_str() != Some("step"),
                            -r[2].as_i64().unwrap_or(0),
                            r[1].as_str().unwrap_or("").to_owned(),
                        )
                    };
                    key(a).cmp(&key(b))
                });
                let rows = raw
                    .into_iter()
                    .map(|mut r| {
                        let n = r[2].as_i64().unwrap_or(0);
                        let base = r[3].as_i64().unwrap_or(0);
                        r.push(rate(n, base));
                        r
                    })
                    .collect();
                (vec!["by", "name", "escalations", "base", "rate"], rows)
            }
            ReportKind::Outcomes => {
                let bucket = match filter.bucket {
                    Bucket::Day => format!("c.created_at / {DAY_MS}"),
                    // Day 0 (1970-01-01) was a Thursday: day + 3 counts weeks from Monday.
                    Bucket::Week => format!("(c.created_at / {DAY_MS} + 3) / 7"),
                };
                // Grouped by the columns themselves (a hash of a few thousand groups, no text
                // built per incident); the "(status)" labels are written here, in order.
                let sql = format!(
                    "SELECT {bucket} AS bucket, c.outcome AS outcome, \
                     CASE WHEN c.outcome IS NULL THEN c.status END AS status, \
                     COUNT(*) AS incidents FROM ({cohort}) c GROUP BY 1, 2, 3"
                );
                let raw = self
                    .report_rows(
                        &sql,
                        &filter,
                        &[
                            Col::Int("bucket"),
                            Col::Text("outcome"),
                            Col::Text("status"),
                            Col::Int("incidents"),
                        ],
                    )
                    .await?;
                let mut counts: std::collections::BTreeMap<(i64, Option<String>), i64> =
                    Default::default();
                for r in raw {
                    let label = match (&r[1], &r[2]) {
                        (Value::String(outcome), _) => Some(outcome.clone()),
                        (_, Value::String(status)) => Some(format!("({status})")),
                        _ => None,
                    };
                    *counts
                        .entry((r[0].as_i64().unwrap_or(0), label))
                        .or_default() += r[3].as_i64().unwrap_or(0);
                }
                let rows = counts
                    .into_iter()
                    .map(|((b, label), n)| {
                        let day = match filter.bucket {
                            Bucket::Day => b,
                            Bucket::Week => b * 7 - 3,
                        };
                        vec![json!(day_label(day)), json!(label), json!(n)]
                    })
                    .collect();
                (
                    vec![
                        match filter.bucket {
                            Bucket::Day => "day",
                            Bucket::Week => "week",
                        },
                        "outcome",
                        "incidents",
                    ],
                    rows,
                )
            }
            ReportKind::Automation => {
                // The incidents count their step records by source (`answers_*`).
                let sql = format!(
                    "SELECT CAST(COALESCE(SUM(c.answers_automated), 0) AS BIGINT) AS automated, \
                     CAST(COALESCE(SUM(c.answers_agent), 0) AS BIGINT) AS agent, \
                     CAST(COALESCE(SUM(c.answers_assumed), 0) AS BIGINT) AS assumed \
                     FROM ({cohort}) c"
                );
                let sources = ["automated", "agent", "assumed"];
                let raw = self
                    .report_rows(&sql, &filter, &sources.map(Col::Int))
                    .await?;
                let counts: Vec<i64> = (0..sources.len())
                    .map(|k| raw.first().and_then(|r| r[k].as_i64()).unwrap_or(0))
                    .collect();
                let total: i64 = counts.iter().sum();
                let rows = sources
                    .iter()
                    .zip(&counts)
                    .map(|(src, &n)| vec![json!(src), json!(n), rate(n, total)])
                    .collect();
                (vec!["source", "answers", "share"], rows)
            }
            ReportKind::Overrides => {
                // Only the step records an automated check answered or proposed, or that
                // override one, count (a step without an automated answer is left out below):
                // the condition is the predicate of the partial index `step_records_automated`
                // (migration 14), which holds what the aggregate reads, so the join reads that
                // index instead of every step record.
                let sql = format!(
                    "SELECT s.step AS step, \
                     SUM(CASE WHEN s.source = 'automated' OR s.proposed IS NOT NULL \
                     THEN 1 ELSE 0 END) AS automated, \
                     SUM(CASE WHEN s.overrides IS NOT NULL \
                     OR (s.proposed IS NOT NULL AND s.proposed <> s.answer) \
                     THEN 1 ELSE 0 END) AS overridden \
                     FROM {steps_of_cohort} \
                     WHERE s.source = 'automated' OR s.proposed IS NOT NULL OR s.overrides IS NOT NULL \
                     GROUP BY s.step"
                );
                let mut raw = self
                    .report_rows(
                        &sql,
                        &filter,
                        &[
                            Col::Text("step"),
                            Col::Int("automated"),
                            Col::Int("overridden"),
                        ],
                    )
                    .await?;
                raw.retain(|r| r[1].as_i64().unwrap_or(0) > 0);
                raw.sort_by(|a, b| {
                    let key = |r: &Vec<Value>| {
                        (
                            -r[2].as_i64().unwrap_or(0),
                            r[0].as_str().unwrap_or("").to_owned(),
                        )
                    };
                    key(a).cmp(&key(b))
                });
                let rows = raw
                    .into_iter()
                    .map(|mut r| {
                        let n = r[2].as_i64().unwrap_or(0);
                        let base = r[1].as_i64().unwrap_or(0);
                        r.push(rate(n, base));
                        r
                    })
                    .collect();
                (vec!["step", "automated", "overridden", "rate"], rows)
            }
        };
        Ok(Report {
            kind,
            filter,
            columns,
            rows,
        })
    }

    /// Closed incidents by time to resolve, cumulative per upper bound in milliseconds (for a
    /// Prometheus histogram), with the count and sum of all: one aggregate query.
    pub async fn resolve_histogram(&self, bounds_ms: &[i64]) -> Result<ResolveHistogram> {
        let mut items: Vec<String> = bounds_ms
            .iter()
            .map(|b| {
                format!(
                    "COALESCE(SUM(CASE WHEN closed_at - created_at <= {b} THEN 1 ELSE 0 END), 0)"
                )
            })
            .collect();
        items.push("COUNT(*)".to_owned());
        items.push("COALESCE(CAST(SUM(closed_at - created_at) AS BIGINT), 0)".to_owned());
        let sql = format!(
            "SELECT {} FROM incidents WHERE closed_at IS NOT NULL",
            items.join(", ")
        );
        let sql = sqlx::AssertSqlSafe(sql);
        let values: Vec<i64> = match &self.pool {
            Pool::Sqlite(pool) => {
                let row = sqlx::query(sql).fetch_one(pool).await?;
                (0..row.len())
                    .map(|i| row.try_get::<i64, _>(i))
                    .collect::<std::result::Result<_, _>>()?
            }
            Pool::Postgres(pool) => {
                let row = sqlx::query(sql).fetch_one(pool).await?;
                (0..row.len())
                    .map(|i| row.try_get::<i64, _>(i))
                    .collect::<std::result::Result<_, _>>()?
            }
        };
        let n = bounds_ms.len();
        Ok(ResolveHistogram {
            buckets: bounds_ms
                .iter()
                .copied()
                .zip(values[..n].iter().copied())
                .collect(),
            count: values[n],
            sum_ms: values[n + 1],
        })
    }
}

/// "YYYY-MM-DD" of a day number since 1970-01-01.
fn day_label(day: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(day * DAY_MS)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| day.to_string())
}

/// Closed incidents by time to resolve (see [`Store::resolve_histogram`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolveHistogram {
    /// (upper bound in ms, closed incidents resolved within it), cumulative.
    pub buckets: Vec<(i64, i64)>,
    /// Closed incidents.
    pub count: i64,
    /// Sum of their times to resolve, in ms.
    pub sum_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_half_up_exactly() {
        assert_eq!(rate(1, 3), json!(0.3333));
        assert_eq!(rate(2, 3), json!(0.6667));
        assert_eq!(rate(1, 8), json!(0.125));
        assert_eq!(rate(0, 0), Value::Null);
        assert_eq!(rate(5, 5), json!(1.0));
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("-5"), "-5");
        assert_eq!(day_label(0), "1970-01-01");
        assert_eq!(
            "time_to_resolve".parse::<ReportKind>().ok(),
            Some(ReportKind::TimeToResolve)
        );
        assert!("nope".parse::<ReportKind>().is_err());
    }
}
