//! Store throughput: incidents opened, walked through 6 answered steps and closed, per second,
//! on SQLite (a WAL file in a temp dir) and on PostgreSQL (when `DIALTONE_TEST_PG_URL` is set).
//!
//! Each incident is 8 transactions (open, 6 steps, close), each with its audit line. Run with
//! `DIALTONE_TEST_PG_URL=$(scripts/pg.sh url) cargo bench -p incidents --bench store`;
//! criterion's `thrpt` line is incidents per second.

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use incidents::{NewIncident, NewStepRecord, Store};
use serde_json::json;
use sqlx::Connection;

/// The steps one bench incident answers, as in a user-cant-call walk to an L1 outcome.
const STEPS: [(&str, &str); 6] = [
    ("gate.operational_requirements", "yes"),
    ("gate.client_error", "no"),
    ("l1.connection_status", "connected"),
    ("l1.force_reconnection", "no"),
    ("l1.echo_call", "ok"),
    ("l1.call_other_user", "fails"),
];

/// Walkers running at once in the parallel variant (agents working different incidents).
const PARALLEL: usize = 4;

async fn walk(store: &Store, n: usize) -> incidents::Result<()> {
    let mut incident = store
        .open_incident(
            NewIncident {
                account: format!("bench{n}@voip.example"),
                reporter: "bench".into(),
                description: "cannot call".into(),
                runbook: "user-cant-call".into(),
                level: "L1".into(),
                current_step: Some(STEPS[0].0.into()),
            },
            "bench",
        )
        .await?;
    for (i, (step, answer)) in STEPS.iter().enumerate() {
        let record = NewStepRecord {
            runbook: "user-cant-call".into(),
            step: (*step).into(),
            answer: (*answer).into(),
            source: "automated".into(),
            evidence: json!({ "check": step, "elapsed_ms": 12 }),
            note: None,
            proposed: None,
        };
        let next = STEPS.get(i + 1).map(|(s, _)| (*s).to_owned());
        incident = store
            .record_step(incident.id, incident.version, record, next, "bench")
            .await?;
    }
    store
        .close(
            incident.id,
            incident.version,
            "trunk_problem",
            None,
            "bench",
        )
        .await?;
    Ok(())
}

fn bench_backend(c: &mut Criterion, rt: &tokio::runtime::Runtime, name: &str, store: &Store) {
    let mut group = c.benchmark_group("incident open+6 steps+close");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));

    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("{name}/sequential"), |b| {
        let mut n = 0;
        b.iter(|| {
            n += 1;
            rt.block_on(walk(store, n)).expect("walk");
        });
    });

    group.throughput(Throughput::Elements(PARALLEL as u64));
    group.bench_function(format!("{name}/{PARALLEL} agents in parallel"), |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            rt.block_on(async {
                for i in 0..iters as usize {
                    let walkers = (0..PARALLEL).map(|k| {
                        let store = store.clone();
                        tokio::spawn(async move { walk(&store, i * PARALLEL + k).await })
                    });
                    for walker in walkers.collect::<Vec<_>>() {
                        walker.await.expect("join").expect("walk");
                    }
                }
            });
            started.elapsed()
        });
    });
    group.finish();
}

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite = rt
        .block_on(Store::open_data_dir(dir.path()))
        .expect("sqlite store");
    bench_backend(c, &rt, "sqlite", &sqlite);
    rt.block_on(sqlite.shutdown());

    match std::env::var("DIALTONE_TEST_PG_URL") {
        Ok(admin) if !admin.trim().is_empty() => {
            let name = format!("dialtone_bench_{}", std::process::id());
            rt.block_on(admin_sql(&admin, &format!("CREATE DATABASE {name}")));
            let url = with_database(&admin, &name);
            let pg = rt.block_on(Store::connect(&url)).expect("postgres store");
            bench_backend(c, &rt, "postgres", &pg);
            rt.block_on(pg.shutdown());
            rt.block_on(admin_sql(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ));
        }
        _ => eprintln!(
            "DIALTONE_TEST_PG_URL is not set: PostgreSQL figures skipped \
             (start one with scripts/pg.sh start)"
        ),
    }
}

async fn admin_sql(admin: &str, sql: &str) {
    let mut conn = sqlx::PgConnection::connect(admin)
        .await
        .expect("connect to DIALTONE_TEST_PG_URL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut conn)
        .await
        .expect(sql);
    conn.close().await.ok();
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let authority = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = base[authority..]
        .find('/')
        .map(|slash| &base[..authority + slash])
        .unwrap_or(base);
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
