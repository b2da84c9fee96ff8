//! Test fixtures: a fresh store per test, on SQLite in a temp dir or on a fresh PostgreSQL
//! database that is dropped again when the test ends (even when it fails).

use std::sync::atomic::{AtomicU32, Ordering};

use incidents::Store;
use sqlx::Connection;

/// The environment variable naming the PostgreSQL cluster the tests may create databases in.
pub const PG_ENV: &str = "DIALTONE_TEST_PG_URL";

/// A store for one test and what is needed to clean up after it.
pub struct TestDb {
    pub store: Store,
    /// The URL the store was opened with (to reconnect or to poke at the tables directly).
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// Declared after `store`, so the pool is closed before the database is dropped.
    _pg: Option<DropDatabase>,
}

/// Drops a test database when it goes out of scope.
struct DropDatabase {
    admin: String,
    name: String,
}

/// A fresh SQLite store in its own temp dir.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}/data/dialtone.sqlite", dir.path().display());
    let store = Store::connect(&url).await.expect("open sqlite store");
    TestDb {
        store,
        url,
        _dir: Some(dir),
        _pg: None,
    }
}

/// The admin URL of the test cluster; fails the test with instructions when unset.
pub fn pg_admin_url() -> String {
    match std::env::var(PG_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{PG_ENV} is not set: the PostgreSQL half of the store suite needs a server. \
             Start one with `scripts/pg.sh start` and run \
             `{PG_ENV}=$(scripts/pg.sh url) cargo test -p incidents`"
        ),
    }
}

/// A fresh PostgreSQL database `dialtone_test_<unique>` and a store on it.
pub async fn postgres() -> TestDb {
    let admin = pg_admin_url();
    let name = unique_name();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|err| panic!("cannot reach {PG_ENV} ({err}); try `scripts/pg.sh start`"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    let url = with_database(&admin, &name);
    // The guard exists before connecting, so the database is dropped even if that fails.
    let guard = DropDatabase { admin, name };
    let store = Store::connect(&url).await.expect("open postgres store");
    TestDb {
        store,
        url,
        _dir: None,
        _pg: Some(guard),
    }
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{name}{query}")
}

fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "dialtone_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; use a thread with
        // its own small runtime. FORCE ends the store's pooled connections.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .map_err(|err| err.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .map_err(|err| err.to_string())?;
                conn.close().await.map_err(|err| err.to_string())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("could not drop test database: {err}");
        }
    }
}

/// Declares each listed `async fn name(store: &Store, url: &str)` as two tests,
/// `name::sqlite` and `name::postgres`, so the same body runs on both backends.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::support::sqlite().await;
                super::$name(&db.store, &db.url).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::support::postgres().await;
                super::$name(&db.store, &db.url).await;
            }
        }
    )*};
}
pub(crate) use on_both_backends;

/// Reads a JSON table from the crate's `test_data/`.
pub fn table<T: serde::de::DeserializeOwned>(file: &str) -> T {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("parse {}: {err}", path.display()))
}
