//! The Kamailio backend's database half on the genuine Kamailio 5.6 schema, seeded with the same
//! rows on SQLite (Julian-day timestamps) and PostgreSQL (real timestamps), with the management
//! interface down (nothing listens on its port): SQL answers still come, RPC answers fail fast.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use server_state::generate::{
    POSTGRES_SCHEMA_DIR, SQLITE_SCHEMA_DIR, create_kamailio_schema, run_seed_sql,
};
use server_state::{Error, KamailioConfig, KamailioState, ServerState};
use sqlx::Connection;

use crate::expect::{Expect, check};

pub const PG_ENV: &str = "DIALTONE_TEST_PG_URL";

/// A TCP port on loopback where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn config(rpc_url: String, db_url: String) -> KamailioConfig {
    KamailioConfig {
        domain: "127.0.0.1".into(),
        trunk_prefixes: BTreeMap::from([(1, vec!["9".to_string()])]),
        echo_numbers: vec!["600".into(), "echo".into()],
        ..KamailioConfig::new(rpc_url, db_url)
    }
}

/// A fresh PostgreSQL database, dropped when this value goes away.
pub struct PgDb {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDb {
    pub async fn create() -> PgDb {
        let admin = std::env::var(PG_ENV).unwrap_or_else(|_| {
            panic!("{PG_ENV} is not set: start PostgreSQL with `scripts/pg.sh start` and export {PG_ENV}=$(scripts/pg.sh url)")
        });
        let name = format!(
            "dialtone_ss_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000
        );
        let mut conn = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV}: {e}"));
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.ok();
        let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
        PgDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop needs async work: run it on a thread with its own runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            })
        })
        .join();
    }
}

fn test_data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name)
}

async fn seeded(db_url: &str, schema_dir: &str) {
    create_kamailio_schema(db_url, Path::new(schema_dir))
        .await
        .unwrap();
    let seed = std::fs::read_to_string(test_data("kamailio/seed.sql")).unwrap();
    run_seed_sql(db_url, &seed).await.unwrap();
}

/// The shared suite: the expect-*.json scenarios plus the management-down behaviour.
async fn suite(db_url: &str, backend: &str) {
    let rpc_url = format!("http://127.0.0.1:{}/RPC", closed_port());
    let state = KamailioState::new(config(rpc_url, db_url.to_string())).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(test_data("kamailio"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("expect-")
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 4);
    for path in names {
        let e: Expect = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let label = format!("{backend} {}", path.file_name().unwrap().to_string_lossy());
        check(&state, &e, &label).await;
    }

    // Timestamps: the same instant on both databases (Julian days vs timestamps).
    let since = "2026-11-26T04:00:00Z".parse().unwrap();
    let calls = state.calls("alice", since, 10).await.unwrap();
    let echo = calls
        .iter()
        .find(|c| c.call_id == "call-echo")
        .expect("echo call");
    assert_eq!(
        echo.at.to_rfc3339(),
        "2026-11-26T04:06:10+00:00",
        "{backend}"
    );
    assert_eq!(
        (echo.dialled.as_str(), echo.route.as_deref()),
        ("600", Some("echo"))
    );
    assert!(
        (echo.duration_s - 2.007).abs() < 1e-3,
        "{backend}: {echo:?}"
    );
    let limited = state.calls("alice", since, 2).await.unwrap();
    assert_eq!(limited.len(), 2);
    let attempts = state.registration_attempts("alice", since).await.unwrap();
    assert_eq!(
        attempts[1].at.timestamp_millis() % 1000,
        300,
        "{backend}: time_us kept: {attempts:?}"
    );
    assert_eq!(attempts[1].auth_user.as_deref(), Some("alice"));
    assert_eq!(attempts[0].auth_user, None);
    assert_eq!(attempts[0].source, "udp:127.0.0.1:5098");
    // The digest response in the trace never leaks into what we return.
    assert!(
        !format!("{attempts:?}").contains("00112233"),
        "{attempts:?}"
    );

    // Management down and nothing in the location or dispatcher tables: each says what is
    // missing and why, promptly.
    let t0 = Instant::now();
    for (what, r, why) in [
        (
            "registrations",
            state.registrations("alice").await.map(|_| ()),
            "location table is empty for every user",
        ),
        ("trunks", state.trunks().await.map(|_| ()), "hold no trunk"),
        (
            "all_accounts",
            state.all_accounts().await.map(|_| ()),
            "location table is empty for every user",
        ),
    ] {
        match r {
            Err(e @ Error::Missing { .. }) => {
                let text = e.to_string();
                assert!(
                    text.starts_with("missing because the management interface is unreachable")
                        && text.contains(why),
                    "{backend}: {what}: {text}"
                );
            }
            other => panic!("{backend}: {what}: {other:?}"),
        }
    }
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "{backend}: took {:?}",
        t0.elapsed()
    );
    // usrloc writing the location table and trunks in the dispatcher table: the database
    // stands in for the management interface, and says so.
    // Times from this process's clock (the one dialtone judges by), as Kamailio stores them.
    let ts = |d: chrono::Duration| {
        format!(
            "TS('{}')",
            (chrono::Utc::now() + d).format("%Y-%m-%d %H:%M:%S")
        )
    };
    let (in_an_hour, an_hour_ago) = (
        ts(chrono::Duration::hours(1)),
        ts(chrono::Duration::minutes(-1)),
    );
    run_seed_sql(
        db_url,
        &format!(
            "INSERT INTO location (ruid, username, contact, received, expires, user_agent, last_modified, socket, callid) \
             VALUES ('r1', 'alice', 'sip:alice@10.0.0.5:5060', 'sip:198.51.100.7:40000', {in_an_hour}, 'PrivateGSM 4.2', {an_hour_ago}, 'tls:127.0.0.1:5061', 'loc-1');\n\
             INSERT INTO dispatcher (setid, destination, flags, priority, attrs, description) \
             VALUES (1, 'sip:127.0.0.1:5092', 0, 0, 'name=pstn-gw1', 'gateway');"
        ),
    )
    .await
    .unwrap();
    let regs = state.registrations("alice").await.unwrap();
    assert_eq!(regs.len(), 1, "{backend}: {regs:?}");
    assert_eq!(regs[0].source, "198.51.100.7:40000");
    assert_eq!(regs[0].transport, server_state::Transport::Tls);
    let origin = regs[0].origin.as_deref().unwrap_or_default();
    assert!(
        origin.starts_with(
            "read from the location table because the management interface is unreachable"
        ) && origin.contains("usrloc's db_mode is not configured"),
        "{backend}: {origin}"
    );
    let trunks = state.trunks().await.unwrap();
    assert_eq!(trunks.len(), 1, "{backend}: {trunks:?}");
    assert!(trunks[0].state_unknown(), "{backend}: {trunks:?}");
    assert_eq!(trunks[0].destinations[0].name, "pstn-gw1");
    let all = state.all_accounts().await.unwrap();
    assert!(
        all.iter().any(|a| a.user == "alice" && a.registered),
        "{backend}: {all:?}"
    );
    let health = state.health().await.unwrap();
    assert!(
        health.database.is_up() && !health.management.is_up(),
        "{health:?}"
    );
    assert!(health.uptime_s.is_none() && health.version.is_none());
}

#[tokio::test]
async fn sqlite_database_answers_with_management_down() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kamailio.sqlite");
    let url = format!("sqlite://{}", db.display());
    seeded(&url, SQLITE_SCHEMA_DIR).await;
    suite(&url, "sqlite").await;
    // A bare path works as well as a sqlite:// URL.
    let state = KamailioState::new(config(
        "http://127.0.0.1:1/RPC".into(),
        db.display().to_string(),
    ))
    .unwrap();
    assert!(state.account("alice").await.unwrap().is_some());
}

#[tokio::test]
async fn postgresql_database_answers_like_sqlite() {
    let pg = PgDb::create().await;
    seeded(&pg.url, POSTGRES_SCHEMA_DIR).await;
    suite(&pg.url, "postgresql").await;
}

#[tokio::test]
async fn database_down_is_a_clear_bounded_error() {
    let pg_url = format!(
        "postgres://dialtone:not-the-password@127.0.0.1:{}/kamailio",
        closed_port()
    );
    let state = KamailioState::new(config(
        format!("http://127.0.0.1:{}/RPC", closed_port()),
        pg_url,
    ))
    .unwrap();
    let t0 = Instant::now();
    let err = state.account("alice").await.unwrap_err();
    assert!(matches!(err, Error::Database(_)), "{err:?}");
    let health = state.health().await.unwrap();
    assert!(
        !health.database.is_up() && !health.management.is_up(),
        "{health:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // No secret in what a user sees.
    for text in [
        err.to_string(),
        format!("{health:?}"),
        state.describe(),
        format!("{state:?}"),
    ] {
        assert!(!text.contains("not-the-password"), "{text}");
    }
    let missing = KamailioState::new(config(
        "http://127.0.0.1:1/RPC".into(),
        "/nonexistent/dir/k.sqlite".into(),
    ))
    .unwrap();
    assert!(matches!(
        missing.all_accounts().await,
        Err(Error::Database(_) | Error::Management(_))
    ));
    assert!(matches!(
        missing.account("alice").await,
        Err(Error::Database(_))
    ));
}

#[test]
fn bad_configuration_is_refused_with_the_key() {
    let cases = [
        ("https://127.0.0.1/RPC", "/tmp/x.sqlite", "rpc_url"),
        (
            "http://127.0.0.1:5071/RPC",
            "mysql://k:pw@h:notaport/kamailio",
            "db_url",
        ),
        ("http://127.0.0.1:5071/RPC", "redis://h", "db_url"),
        ("127.0.0.1:5071", "/tmp/x.sqlite", "rpc_url"),
    ];
    for (rpc, db, key) in cases {
        let err = KamailioState::new(config(rpc.into(), db.into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{rpc} {db}: {err}");
        assert!(!err.contains(":pw@"), "{err}");
    }
    let mut zero = config("http://127.0.0.1:5071/RPC".into(), "/tmp/x.sqlite".into());
    zero.timeout = Duration::ZERO;
    assert!(
        KamailioState::new(zero)
            .unwrap_err()
            .to_string()
            .contains("timeout")
    );
}

#[tokio::test]
async fn a_silent_management_interface_is_bounded_by_the_timeout() {
    // A peer that accepts connections and never answers (a hung Kamailio, a firewall that
    // swallows packets after the handshake).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("k.sqlite");
    seeded(&format!("sqlite://{}", db.display()), SQLITE_SCHEMA_DIR).await;
    let mut cfg = config(
        format!("http://127.0.0.1:{port}/RPC"),
        db.display().to_string(),
    );
    cfg.timeout = Duration::from_millis(400);
    let state = KamailioState::new(cfg).unwrap();
    let t0 = Instant::now();
    let err = state.registrations("alice").await.unwrap_err();
    assert!(
        matches!(&err, Error::Missing { why, .. } if why.contains("within 400 ms")),
        "{err:?}"
    );
    let health = state.health().await.unwrap();
    assert!(
        matches!(&health.management, server_state::CheckState::Down(m) if m.contains("no answer")),
        "{health:?}"
    );
    assert!(health.database.is_up());
    assert!(
        t0.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
    holder.abort();
}
