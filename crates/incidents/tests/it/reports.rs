//! The lead's reports over a generated history of 100k incidents with known answers (every
//! figure asserted exactly, on both backends), and the write-time bookkeeping they rely on.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use incidents::{
    Bucket, NewEscalation, NewIncident, NewStepRecord, ReportFilter, ReportKind, Status, Store,
    rate,
};
use serde_json::{Value, json};

use crate::support::on_both_backends;

on_both_backends!(
    reports_over_100k_generated_incidents_are_exact,
    changes_keep_the_report_columns,
);

/// Incidents generated; the issue asks for 100k.
const N: i64 = 100_000;
/// 2026-01-05T00:00:00Z (a Monday), in ms: the history's first minute.
const BASE: i64 = 1_767_571_200_000;

/// The generator's SQL for `n` incidents from `base` (shared with bench/reports.sh).
pub fn history_sql(n: i64, base: i64) -> String {
    include_str!("../../test_data/report_history.sql")
        .replace("{N}", &n.to_string())
        .replace("{BASE}", &base.to_string())
}

/// Writes the generated history into the store's database with bulk INSERTs.
pub async fn generate(url: &str, n: i64, base: i64) {
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(history_sql(n, base));
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("sqlite");
        let mut tx = conn.begin().await.expect("begin");
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .expect("generate");
        tx.commit().await.expect("commit");
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("postgres");
        sqlx::raw_sql(sql)
            .execute(&mut conn)
            .await
            .expect("generate");
        for table in ["incidents", "step_records", "escalations"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                 (SELECT MAX(id) FROM {table}))"
            )))
            .execute(&mut conn)
            .await
            .expect("setval");
        }
        sqlx::raw_sql("ANALYZE")
            .execute(&mut conn)
            .await
            .expect("analyze");
    }
}

/// One generated incident, by the rules in `test_data/report_history.sql`.
struct Inc {
    i: i64,
    runbook: &'static str,
    level: &'static str,
    status: &'static str,
    outcome: Option<&'static str>,
    assignee: String,
    created: i64,
    l1: i64,
    l2: i64,
    l3: i64,
    w: i64,
    closed: bool,
    /// (step, source, actor, overrides something)
    steps: Vec<(&'static str, &'static str, String, bool)>,
    /// (after_step, kind)
    escalations: Vec<(&'static str, &'static str)>,
}

fn model(i: i64) -> Inc {
    let esc = if i % 12 == 0 {
        2
    } else if i % 4 == 0 {
        1
    } else {
        0
    };
    let closed = i % 5 != 0;
    let status = if closed {
        "closed"
    } else if i % 3 == 0 {
        "waiting_user"
    } else if esc > 0 {
        "escalated"
    } else {
        "open"
    };
    let outcome = closed.then(|| {
        ["not_an_issue", "trunk_problem", "client_config", "license"][((i / 3) % 4) as usize]
    });
    const STEPS: [&str; 5] = ["gate.a", "l1.b", "l1.c", "l1.d", "l1.e"];
    let mut steps: Vec<_> = (0..3 + i % 3)
        .map(|j| {
            let source = match (i + j) % 4 {
                0 => "assumed",
                1 => "agent",
                _ => "automated",
            };
            (
                STEPS[j as usize],
                source,
                format!("agent{}", (i + j) % 9),
                false,
            )
        })
        .collect();
    if i % 11 == 0 {
        let overrides = i % 22 != 0 && (i + 1) % 4 >= 2;
        steps.push(("l1.b", "agent", "agent0".to_owned(), overrides));
    }
    let mut escalations = Vec::new();
    if esc >= 1 {
        let kind = if i % 8 == 0 && i % 12 != 0 {
            "network_check"
        } else {
            "user_configuration_check"
        };
        escalations.push((if i % 8 == 0 { "l1.c" } else { "l1.b" }, kind));
    }
    if esc == 2 {
        escalations.push(("gate.a", "l3_check"));
    }
    Inc {
        i,
        runbook: if i % 10 == 0 {
            "connection-issues"
        } else {
            "user-cant-call"
        },
        level: ["L1", "L2", "L3"][esc as usize],
        status,
        outcome,
        assignee: format!("agent{}", i % 7),
        created: BASE + i * 60_000,
        l1: 60_000 * (1 + i % 17) + i % 1000,
        l2: if esc >= 1 { 120_000 * (1 + i % 13) } else { 0 },
        l3: if esc == 2 { 300_000 * (1 + i % 7) } else { 0 },
        w: if i % 6 == 0 { 30_000 * (i % 23) } else { 0 },
        closed,
        steps,
        escalations,
    }
}

/// Nearest-rank percentile rows: [n, p50, p90, min, max, total] of `v`.
fn pct(mut v: Vec<i64>) -> (i64, Value, Value, Value, Value, i64) {
    v.sort_unstable();
    let n = v.len();
    if n == 0 {
        return (0, Value::Null, Value::Null, Value::Null, Value::Null, 0);
    }
    let at = |rank: usize| json!(v[rank - 1]);
    (
        n as i64,
        at(n.div_ceil(2)),
        at((9 * n).div_ceil(10)),
        json!(v[0]),
        json!(v[n - 1]),
        v.iter().sum(),
    )
}

/// The rows each report must have for the incidents `cohort` keeps.
fn expected(kind: ReportKind, cohort: &[&Inc], bucket: Bucket) -> Vec<Vec<Value>> {
    let closed: Vec<&&Inc> = cohort.iter().filter(|c| c.closed).collect();
    match kind {
        ReportKind::TimeToResolve => {
            let (n, p50, p90, lo, hi, total) =
                pct(closed.iter().map(|c| c.l1 + c.l2 + c.l3 + c.w).collect());
            vec![vec![json!(n), p50, p90, lo, hi, json!(total)]]
        }
        ReportKind::TimeAtLevel => {
            type Phase = (&'static str, fn(&Inc) -> i64);
            let phases: [Phase; 4] = [
                ("L1", |c| c.l1),
                ("L2", |c| c.l2),
                ("L3", |c| c.l3),
                ("waiting_user", |c| c.w),
            ];
            phases
                .iter()
                .map(|(name, get)| {
                    let (n, p50, p90, _, _, total) =
                        pct(closed.iter().map(|c| get(c)).filter(|d| *d > 0).collect());
                    vec![json!(name), json!(n), p50, p90, json!(total)]
                })
                .collect()
        }
        ReportKind::FirstLevel => {
            let n = closed.len() as i64;
            let l1 = closed.iter().filter(|c| c.level == "L1").count() as i64;
            vec![vec![json!(n), json!(l1), json!(n - l1), rate(l1, n)]]
        }
        ReportKind::Escalations => {
            let mut reached: BTreeMap<&str, i64> = BTreeMap::new();
            let mut by_step: BTreeMap<&str, i64> = BTreeMap::new();
            let mut by_kind: BTreeMap<&str, i64> = BTreeMap::new();
            for c in cohort {
                let mut seen: Vec<&str> = c.steps.iter().map(|s| s.0).collect();
                seen.sort_unstable();
                seen.dedup();
                for s in seen {
                    *reached.entry(s).or_default() += 1;
                }
                for (step, kind) in &c.escalations {
                    *by_step.entry(step).or_default() += 1;
                    *by_kind.entry(kind).or_default() += 1;
                }
            }
            let mut steps: Vec<Vec<Value>> = reached
                .iter()
                .map(|(s, base)| {
                    let n = by_step.get(s).copied().unwrap_or(0);
                    vec![
                        json!("step"),
                        json!(s),
                        json!(n),
                        json!(base),
                        rate(n, *base),
                    ]
                })
                .collect();
            steps.sort_by_key(|r| (-r[2].as_i64().unwrap(), r[1].as_str().unwrap().to_owned()));
            let base = cohort.len() as i64;
            let mut kinds: Vec<Vec<Value>> = by_kind
                .iter()
                .map(|(k, n)| {
                    vec![
                        json!("kind"),
                        json!(k),
                        json!(n),
                        json!(base),
                        rate(*n, base),
                    ]
                })
                .collect();
            kinds.sort_by_key(|r| (-r[2].as_i64().unwrap(), r[1].as_str().unwrap().to_owned()));
            steps.extend(kinds);
            steps
        }
        ReportKind::Outcomes => {
            let mut counts: BTreeMap<(i64, String), i64> = BTreeMap::new();
            for c in cohort {
                let day = c.created / 86_400_000;
                let b = match bucket {
                    Bucket::Day => day,
                    Bucket::Week => (day + 3) / 7 * 7 - 3,
                };
                let o = c
                    .outcome
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("({})", c.status));
                *counts.entry((b, o)).or_default() += 1;
            }
            counts
                .into_iter()
                .map(|((day, o), n)| {
                    let label = DateTime::<Utc>::from_timestamp_millis(day * 86_400_000)
                        .unwrap()
                        .format("%Y-%m-%d")
                        .to_string();
                    vec![json!(label), json!(o), json!(n)]
                })
                .collect()
        }
        ReportKind::Automation => {
            let all: Vec<&str> = cohort
                .iter()
                .flat_map(|c| c.steps.iter().map(|s| s.1))
                .collect();
            let total = all.len() as i64;
            ["automated", "agent", "assumed"]
                .iter()
                .map(|src| {
                    let n = all.iter().filter(|s| *s == src).count() as i64;
                    vec![json!(src), json!(n), rate(n, total)]
                })
                .collect()
        }
        ReportKind::Overrides => {
            let mut per: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
            for c in cohort {
                for (step, source, _, overrides) in &c.steps {
                    let e = per.entry(step).or_default();
                    if *source == "automated" {
                        e.0 += 1;
                    }
                    if *overrides {
                        e.1 += 1;
                    }
                }
            }
            let mut rows: Vec<Vec<Value>> = per
                .into_iter()
                .filter(|(_, (auto, _))| *auto > 0)
                .map(|(s, (auto, over))| vec![json!(s), json!(auto), json!(over), rate(over, auto)])
                .collect();
            rows.sort_by_key(|r| (-r[2].as_i64().unwrap(), r[0].as_str().unwrap().to_owned()));
            rows
        }
    }
}

fn ms(t: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(t).unwrap()
}

async fn reports_over_100k_generated_incidents_are_exact(store: &Store, url: &str) {
    generate(url, N, BASE).await;
    let all: Vec<Inc> = (1..=N).map(model).collect();
    // Each filter with the incidents it keeps.
    type Keep = Box<dyn Fn(&Inc) -> bool>;
    let cases: Vec<(&str, ReportFilter, Keep)> = vec![
        ("everything", ReportFilter::default(), Box::new(|_| true)),
        (
            "period",
            ReportFilter {
                from: Some(ms(BASE + 1_000 * 60_000)),
                to: Some(ms(BASE + 50_000 * 60_000)),
                ..ReportFilter::default()
            },
            Box::new(|c| (1_000..50_000).contains(&c.i)),
        ),
        (
            "runbook",
            ReportFilter {
                runbook: Some("connection-issues".into()),
                ..ReportFilter::default()
            },
            Box::new(|c| c.runbook == "connection-issues"),
        ),
        (
            "level",
            ReportFilter {
                level: Some("l2".into()),
                ..ReportFilter::default()
            },
            Box::new(|c| c.level == "L2"),
        ),
        (
            "agent, weekly",
            ReportFilter {
                agent: Some("agent3".into()),
                bucket: Bucket::Week,
                ..ReportFilter::default()
            },
            Box::new(|c| c.assignee == "agent3" || c.steps.iter().any(|s| s.2 == "agent3")),
        ),
    ];
    for (name, filter, keep) in &cases {
        let cohort: Vec<&Inc> = all.iter().filter(|c| keep(c)).collect();
        assert!(!cohort.is_empty(), "{name}: the filter keeps nothing");
        for kind in ReportKind::ALL {
            let started = std::time::Instant::now();
            let report = store.report(kind, filter).await.expect("report");
            let took = started.elapsed();
            let want = expected(kind, &cohort, filter.bucket);
            assert_eq!(report.rows.len(), want.len(), "{name}: {kind}: row count");
            for (got, want) in report.rows.iter().zip(&want) {
                assert_eq!(got, want, "{name}: {kind}");
            }
            eprintln!("{} {name}: {kind} in {took:?}", store.backend());
        }
    }
    // Spot figures a reader can check by hand: 80% of incidents are closed; L1 resolves
    // those closed that were never escalated (i % 4 != 0), i.e. 60k of 80k.
    let flr = store
        .report(ReportKind::FirstLevel, &ReportFilter::default())
        .await
        .unwrap();
    assert_eq!(flr.cell(0, "closed"), Some(&json!(80_000)));
    assert_eq!(flr.cell(0, "closed_at_l1"), Some(&json!(60_000)));
    assert_eq!(flr.cell(0, "rate"), Some(&json!(0.75)));
    // CSV and JSON carry the same figures.
    let csv = flr.to_csv();
    assert_eq!(
        csv,
        "closed,closed_at_l1,escalated_then_closed,rate\r\n80000,60000,20000,0.75\r\n"
    );
    assert_eq!(flr.to_json()["rows"][0]["closed_at_l1"], json!(60_000));
    // The /metrics histogram: cumulative, from the same columns.
    let h = store
        .resolve_histogram(&[300_000, 3_600_000])
        .await
        .unwrap();
    let durations: Vec<i64> = all
        .iter()
        .filter(|c| c.closed)
        .map(|c| c.l1 + c.l2 + c.l3 + c.w)
        .collect();
    assert_eq!(h.count, durations.len() as i64);
    assert_eq!(h.sum_ms, durations.iter().sum::<i64>());
    assert_eq!(
        h.buckets,
        vec![
            (
                300_000,
                durations.iter().filter(|d| **d <= 300_000).count() as i64
            ),
            (
                3_600_000,
                durations.iter().filter(|d| **d <= 3_600_000).count() as i64
            ),
        ]
    );
    // A bad filter is a clear error, not an empty report.
    let bad = ReportFilter {
        level: Some("L9".into()),
        ..ReportFilter::default()
    };
    assert!(store.report(ReportKind::Outcomes, &bad).await.is_err());
    let empty = ReportFilter {
        from: Some(ms(BASE + 10)),
        to: Some(ms(BASE)),
        ..ReportFilter::default()
    };
    assert!(store.report(ReportKind::Outcomes, &empty).await.is_err());
}

fn answer(step: &str, value: &str, source: &str) -> NewStepRecord {
    NewStepRecord {
        runbook: "user-cant-call".into(),
        step: step.into(),
        answer: value.into(),
        source: source.into(),
        evidence: Value::Null,
        note: None,
        proposed: None,
    }
}

/// Through the store's own methods: the phase times add up to the time to resolve, an agent's
/// different answer after a check's is an override, and an escalation names the step before it.
async fn changes_keep_the_report_columns(store: &Store, _url: &str) {
    use sqlx::Connection;
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(15));
    let inc = store
        .open_incident(
            NewIncident {
                account: "alice".into(),
                reporter: "alice".into(),
                description: "cannot call".into(),
                runbook: "user-cant-call".into(),
                level: "L1".into(),
                current_step: Some("l1.echo_call".into()),
            },
            "agent-a",
        )
        .await
        .unwrap();
    pause().await;
    let inc = store
        .record_step(
            inc.id,
            inc.version,
            answer("l1.echo_call", "works", "automated"),
            None,
            "agent-a",
        )
        .await
        .unwrap();
    let inc = store
        .record_step(
            inc.id,
            inc.version,
            answer("l1.echo_call", "fails", "agent"),
            None,
            "agent-a",
        )
        .await
        .unwrap();
    let inc = store
        .record_step(
            inc.id,
            inc.version,
            answer("l1.trunks", "fine", "automated"),
            None,
            "agent-a",
        )
        .await
        .unwrap();
    let inc = store
        .record_step(
            inc.id,
            inc.version,
            answer("l1.trunks", "fine", "agent"),
            None,
            "agent-a",
        )
        .await
        .unwrap();
    // A second agent, whose name holds the agents column's separator and escape.
    let inc = store
        .record_step(
            inc.id,
            inc.version,
            answer("l1.trunks", "fine", "agent"),
            None,
            "50%,ops",
        )
        .await
        .unwrap();
    let inc = store
        .set_status(inc.id, inc.version, Status::WaitingUser, "agent-a")
        .await
        .unwrap();
    pause().await;
    let inc = store
        .set_status(inc.id, inc.version, Status::Open, "agent-a")
        .await
        .unwrap();
    pause().await;
    let inc = store
        .escalate(
            inc.id,
            inc.version,
            NewEscalation {
                to_level: "L2".into(),
                kind: Some("network_check".into()),
                reason: "needs L2".into(),
            },
            None,
            "agent-a",
        )
        .await
        .unwrap();
    pause().await;
    let inc = store
        .close(inc.id, inc.version, "trunk_problem", None, "agent-b")
        .await
        .unwrap();
    // Read the columns directly.
    let url = _url;
    let q = "SELECT created_at, closed_at, l1_ms, l2_ms, l3_ms, waiting_ms FROM incidents WHERE id = $1";
    let row: (i64, Option<i64>, i64, i64, i64, i64) = if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::query_as(q)
            .bind(inc.id)
            .fetch_one(&mut c)
            .await
            .unwrap()
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::query_as(q)
            .bind(inc.id)
            .fetch_one(&mut c)
            .await
            .unwrap()
    };
    let (created, closed, l1, l2, l3, waiting) = row;
    let closed = closed.expect("closed_at set");
    assert_eq!(
        l1 + l2 + l3 + waiting,
        closed - created,
        "phases add up to the time to resolve"
    );
    assert!(
        l1 >= 15 && l2 >= 15 && waiting >= 15,
        "l1 {l1} l2 {l2} waiting {waiting}"
    );
    assert_eq!(l3, 0);
    let filter = ReportFilter::default();
    let over = store.report(ReportKind::Overrides, &filter).await.unwrap();
    assert_eq!(
        over.rows,
        vec![
            vec![json!("l1.echo_call"), json!(1), json!(1), json!(1.0)],
            vec![json!("l1.trunks"), json!(1), json!(0), json!(0.0)],
        ]
    );
    let esc = store
        .report(ReportKind::Escalations, &filter)
        .await
        .unwrap();
    assert_eq!(
        esc.rows[0],
        vec![
            json!("step"),
            json!("l1.trunks"),
            json!(1),
            json!(1),
            json!(1.0)
        ]
    );
    let ttr = store
        .report(ReportKind::TimeToResolve, &filter)
        .await
        .unwrap();
    assert_eq!(ttr.cell(0, "median_ms"), Some(&json!(closed - created)));
    // The step inserts counted the answers by source on the incident.
    let auto = store.report(ReportKind::Automation, &filter).await.unwrap();
    assert_eq!(
        auto.rows,
        vec![
            vec![json!("automated"), json!(2), json!(0.4)],
            vec![json!("agent"), json!(3), json!(0.6)],
            vec![json!("assumed"), json!(0), json!(0.0)],
        ]
    );
    // The agent filter: agent-a and "50%,ops" recorded steps; agent-b only closed it; names
    // that merely contain one another, or a separator, match nothing else.
    for (agent, closed) in [
        ("agent-a", 1),
        ("agent-b", 0),
        ("agent", 0),
        ("a", 0),
        ("50%,ops", 1),
        ("50%", 0),
        ("ops", 0),
        ("%", 0),
        (",", 0),
    ] {
        let by_agent = ReportFilter {
            agent: Some(agent.into()),
            ..ReportFilter::default()
        };
        let ttr = store
            .report(ReportKind::TimeToResolve, &by_agent)
            .await
            .unwrap();
        assert_eq!(
            ttr.cell(0, "closed"),
            Some(&json!(closed)),
            "agent {agent:?}"
        );
    }
    // Reopening clears closed_at and counts the time again from then on.
    let inc = store
        .set_status(inc.id, inc.version, Status::Open, "agent-b")
        .await
        .unwrap();
    assert_eq!(inc.status, Status::Open);
    let ttr = store
        .report(ReportKind::TimeToResolve, &filter)
        .await
        .unwrap();
    assert_eq!(ttr.cell(0, "closed"), Some(&json!(0)));
    assert_eq!(ttr.cell(0, "median_ms"), Some(&Value::Null));
    // A lead can be created now (the migration widened the role check).
    store
        .create_user("lead1", "$argon2id$x", "lead")
        .await
        .expect("lead role");
}
