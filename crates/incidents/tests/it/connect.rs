//! Opening a store: URLs, data directories, and the ways it fails (unreachable server,
//! silent server, corrupt file, newer schema) — each a clear error within a time bound.

use std::time::{Duration, Instant};

use incidents::{Error, NewIncident, Store};
use tokio::net::TcpListener;

fn incident() -> NewIncident {
    NewIncident {
        account: "alice@voip.example".into(),
        reporter: "alice".into(),
        description: String::new(),
        runbook: "user-cant-call".into(),
        level: "L1".into(),
        current_step: None,
    }
}

#[tokio::test]
async fn urls_that_cannot_work_are_refused_clearly() {
    // (url, expected error text, text that must not appear)
    let table = [
        (
            "mysql://root:pw@127.0.0.1/db",
            "store configuration: unsupported database URL \"mysql://root:***@127.0.0.1/db\"",
            "pw@",
        ),
        ("", "unsupported database URL \"\"", "\u{0}"),
        (
            "/var/lib/dialtone.sqlite",
            "expected sqlite:///path/file.sqlite",
            "\u{0}",
        ),
        (
            "postgres://bob:hunter2@127.0.0.1:notaport/db",
            "cannot open database postgres://bob:***@127.0.0.1:notaport/db",
            "hunter2",
        ),
    ];
    for (url, expected, secret) in table {
        let err = Store::connect(url).await.expect_err(url);
        let message = err.to_string();
        assert!(message.contains(expected), "{url}: {message}");
        assert!(!message.contains(secret), "{url}: leaks: {message}");
        assert!(!format!("{err:?}").contains(secret), "{url}: Debug leaks");
    }
}

#[tokio::test]
async fn unreachable_postgres_is_a_clear_error_fast() {
    // A port nobody listens on: the connection is refused at once.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("postgres://dialtone:s3cret@127.0.0.1:{port}/dialtone");
    let started = Instant::now();
    let err = Store::connect(&url).await.expect_err("nothing listens");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        message.starts_with(&format!(
            "cannot open database postgres://dialtone:***@127.0.0.1:{port}/dialtone: "
        )),
        "{message}"
    );
    assert!(!message.contains("s3cret") && !format!("{err:?}").contains("s3cret"));
}

#[tokio::test]
async fn silent_postgres_times_out_within_the_bound() {
    // A server that accepts TCP but never speaks: only the connect timeout ends the wait.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        // Bounded: sqlx retries a few times within its timeout; keep at most 64 sockets.
        while held.len() < 64 {
            match listener.accept().await {
                Ok((socket, _)) => held.push(socket),
                Err(_) => break,
            }
        }
        held
    });
    let started = Instant::now();
    let err = Store::connect(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .await
        .expect_err("silent server");
    let waited = started.elapsed();
    holder.abort();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "gave up after {waited:?}, want about {:?}",
        incidents::CONNECT_TIMEOUT
    );
}

#[tokio::test]
async fn corrupt_sqlite_file_is_a_clear_error_and_is_left_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(incidents::DATA_FILE);
    let garbage: Vec<u8> = b"this is a client log, not a database\n".repeat(200);
    std::fs::write(&path, &garbage).expect("write");
    let err = Store::open_data_dir(dir.path()).await.expect_err("corrupt");
    let message = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert_eq!(
        message,
        format!(
            "cannot open database {}: the file is not a SQLite database (corrupt or another kind of file)",
            path.display()
        )
    );
    assert_eq!(
        std::fs::read(&path).expect("read"),
        garbage,
        "file untouched"
    );
}

#[tokio::test]
async fn data_dir_and_file_urls_are_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b/c");
    let store = Store::open_data_dir(&nested).await.expect("open");
    assert_eq!(store.backend(), "sqlite");
    assert!(nested.join(incidents::DATA_FILE).is_file());
    let opened = store
        .open_incident(incident(), "a")
        .await
        .expect("open incident");
    store.shutdown().await;
    let again = Store::open_data_dir(&nested).await.expect("reopen");
    assert_eq!(again.get(opened.id).await.expect("get"), opened);

    let url_path = dir.path().join("x/y.sqlite");
    let by_url = Store::connect(&format!("sqlite://{}", url_path.display()))
        .await
        .expect("url");
    assert!(url_path.is_file());
    assert!(format!("{by_url:?}").contains("sqlite"));
}

#[tokio::test]
async fn in_memory_store_keeps_its_data_across_calls() {
    let store = Store::connect("sqlite::memory:").await.expect("memory");
    let opened = store.open_incident(incident(), "a").await.expect("open");
    // Idle time must not lose the database (it lives only as long as its connection).
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.get(opened.id).await.expect("get"), opened);
    let other = Store::connect("sqlite::memory:").await.expect("memory 2");
    assert!(
        matches!(other.get(opened.id).await, Err(Error::NotFound { .. })),
        "separate databases"
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused_not_touched() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/d.sqlite", dir.path().display());
    Store::connect(&url).await.expect("create").shutdown().await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("raw");
    sqlx::query("INSERT INTO schema_version (version, name, applied_at) VALUES (99, 'future', 0)")
        .execute(&mut conn)
        .await
        .expect("insert");
    conn.close().await.expect("close");
    let err = Store::connect(&url).await.expect_err("newer schema");
    assert_eq!(
        err.to_string(),
        format!(
            "database migration failed: the database has schema version 99, newer than this \
             program knows ({}); upgrade dialtone",
            incidents::SCHEMA_VERSION
        )
    );
}
