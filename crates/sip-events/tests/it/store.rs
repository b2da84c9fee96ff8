//! The window's bounds, its persistence across restarts, and the bounded queue.

use chrono::Utc;
use sip_events::events::record_from_hep;
use sip_events::synth::{self, RegOutcome};
use sip_events::{Collector, EventStore, EventWindow, SipRecord, StoreConfig, hep};
use std::net::SocketAddr;
use std::time::Duration;

fn reg_records(tag: &str, n: usize, at: i64) -> Vec<SipRecord> {
    let c: SocketAddr = "127.0.0.1:5098".parse().unwrap();
    let s: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    (0..n)
        .flat_map(|i| {
            synth::wrap(synth::registration(
                &format!("user{}", i % 50),
                "example.test",
                c,
                s,
                &format!("{tag}-{i}"),
                at + i as i64 * 1_000,
                RegOutcome::ChallengeOnly,
            ))
        })
        .map(|p| record_from_hep(&hep::decode(&p).unwrap(), 0).unwrap())
        .collect()
}

#[tokio::test]
async fn the_count_bound_prunes_the_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let mut cfg = StoreConfig::new(&path);
    cfg.max_events = 100;
    let store = EventStore::open(cfg).await.unwrap();
    let t0 = Utc::now().timestamp_micros() - 3_600_000_000;
    // 150 registrations of 2 messages each, in 3 batches.
    let recs = reg_records("a", 150, t0);
    for chunk in recs.chunks(100) {
        store.write_batch(chunk).await.unwrap();
    }
    let removed = store.prune().await.unwrap();
    assert_eq!(removed, 200);
    let w = EventWindow::open(&path).await.unwrap();
    let st = w.stats().await.unwrap();
    assert_eq!(st.events, 100);
    // The newest 50 registrations stay (two messages each), and only them.
    assert_eq!(st.registration_attempts, 50);
    assert_eq!(
        st.oldest_event.unwrap().timestamp_micros(),
        t0 + 100 * 1_000
    );
    assert_eq!(
        st.newest_event.unwrap().timestamp_micros(),
        t0 + 149 * 1_000 + 2_000
    );
    assert!(st.last_received.is_some());
    // Pruning again is a no-op.
    assert_eq!(store.prune().await.unwrap(), 0);
}

#[tokio::test]
async fn the_age_bound_prunes_old_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let mut cfg = StoreConfig::new(&path);
    cfg.max_age = Duration::from_secs(3600);
    let store = EventStore::open(cfg).await.unwrap();
    let now = Utc::now().timestamp_micros();
    store
        .write_batch(&reg_records("old", 10, now - 2 * 3_600_000_000))
        .await
        .unwrap();
    store
        .write_batch(&reg_records("new", 5, now - 60_000_000))
        .await
        .unwrap();
    assert_eq!(store.prune().await.unwrap(), 20);
    let st = EventWindow::open(&path)
        .await
        .unwrap()
        .stats()
        .await
        .unwrap();
    assert_eq!((st.events, st.registration_attempts), (10, 5));
}

#[tokio::test]
async fn committed_events_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/dir/events.sqlite");
    let now = Utc::now().timestamp_micros();
    {
        let store = EventStore::open(StoreConfig::new(&path)).await.unwrap();
        store
            .write_batch(&reg_records("before", 3, now))
            .await
            .unwrap();
        // No close: as if the process died after the commit.
    }
    let store = EventStore::open(StoreConfig::new(&path)).await.unwrap();
    store
        .write_batch(&reg_records("after", 2, now + 10_000_000))
        .await
        .unwrap();
    let w = EventWindow::open(&path).await.unwrap();
    assert_eq!(w.stats().await.unwrap().events, 10);
    let since = Utc::now() - chrono::Duration::hours(1);
    assert_eq!(
        w.registration_attempts("user0", since).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_missing_or_foreign_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = EventWindow::open(&dir.path().join("nope.sqlite"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no events file"), "{e}");
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(
        &junk,
        b"this is not a database at all, not even close........",
    )
    .unwrap();
    let e = EventWindow::open(&junk).await.unwrap_err();
    assert!(e.to_string().contains("junk.sqlite"), "{e}");
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_never_grows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let mut cfg = StoreConfig::new(&path);
    cfg.queue_capacity = 5;
    let c = Collector::bind(None, None, cfg).await.unwrap();
    let ingest = c.ingest();
    let peer: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let packets = synth::wrap(synth::call(
        "alice",
        "bob",
        "example.test",
        "127.0.0.1:5098".parse().unwrap(),
        peer,
        "q-1",
        Utc::now().timestamp_micros(),
        200,
    ));
    // The writer is not running yet: 5 fit, the rest are dropped.
    for _ in 0..4 {
        for p in &packets {
            ingest.offer(p, peer);
        }
    }
    ingest.offer(b"not hep at all", peer);
    let stats = c.stats();
    let s = stats.snapshot();
    assert_eq!(s.received, 29);
    assert_eq!(s.malformed, 1);
    assert_eq!(s.ignored, 4, "the ACKs");
    assert_eq!(s.dropped, 19);
    let done = c.run(async {}).await.unwrap();
    assert_eq!(done.stored, 5, "{done:?}");
    assert_eq!(done.dropped, 19);
    let st = EventWindow::open(&path)
        .await
        .unwrap()
        .stats()
        .await
        .unwrap();
    assert_eq!(st.events, 5);
}

/// Messages reach the store out of capture order (UDP and TCP are read apart): a registration
/// captured before a call but stored after it is not pruned as if it were older than the window.
#[tokio::test]
async fn out_of_order_arrival_keeps_what_is_in_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let store = EventStore::open(StoreConfig::new(&path)).await.unwrap();
    let t = Utc::now().timestamp_micros() - 5_000_000;
    let c: SocketAddr = "127.0.0.1:5098".parse().unwrap();
    let s: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    // The call (captured 1 s later) is stored first, the registration after it.
    let call: Vec<SipRecord> = synth::wrap(synth::call(
        "alice",
        "95551234",
        "example.test",
        c,
        s,
        "late-call",
        t + 1_000_000,
        503,
    ))
    .iter()
    // ACKs are not kept.
    .filter_map(|p| record_from_hep(&hep::decode(p).unwrap(), 0).ok())
    .collect();
    store.write_batch(&call).await.unwrap();
    store
        .write_batch(&reg_records("early", 1, t))
        .await
        .unwrap();
    assert_eq!(store.prune().await.unwrap(), 0);
    let w = EventWindow::open(&path).await.unwrap();
    let st = w.stats().await.unwrap();
    assert_eq!(st.calls, 1);
    assert_eq!(st.registration_attempts, 1, "{st:?}");
}

/// A file written by the first layout (message rows with text method and addresses) is
/// rewritten once on open, keeping every row; a file from a newer layout is refused clearly.
#[tokio::test]
async fn an_older_layout_is_migrated_and_a_newer_one_refused() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.sqlite");
    let raw = |p: &std::path::Path| {
        SqlitePoolOptions::new().max_connections(1).connect_with(
            SqliteConnectOptions::new()
                .filename(p)
                .create_if_missing(true),
        )
    };
    let pool = raw(&path).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, call_id TEXT NOT NULL,
           cseq INTEGER NOT NULL, method TEXT NOT NULL, status INTEGER, src TEXT NOT NULL,
           dst TEXT NOT NULL, transport TEXT NOT NULL);
         INSERT INTO messages (at, call_id, cseq, method, status, src, dst, transport) VALUES
           (1, 'old-1', 1, 'REGISTER', NULL, 'a', 'b', 'udp'),
           (2, 'old-1', 1, 'REGISTER', 401, 'b', 'a', 'udp'),
           (3, 'old-2', 1, 'INVITE', NULL, 'a', 'b', 'udp');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = EventStore::open(StoreConfig::new(&path)).await.unwrap();
    let t = Utc::now().timestamp_micros();
    store.write_batch(&reg_records("new", 1, t)).await.unwrap();
    store.close().await;
    let pool = raw(&path).await.unwrap();
    let rows: Vec<(i64, String, i64)> =
        sqlx::query_as("SELECT id, call_id, method FROM messages ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (1, "old-1".to_owned(), 1),
            (2, "old-1".to_owned(), 1),
            (3, "old-2".to_owned(), 2),
            (4, "new-0".to_owned(), 1),
            (5, "new-0".to_owned(), 1),
        ]
    );
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(version, 2);
    // Opening again does not migrate twice.
    pool.close().await;
    EventStore::open(StoreConfig::new(&path))
        .await
        .unwrap()
        .close()
        .await;
    assert_eq!(
        EventWindow::open(&path)
            .await
            .unwrap()
            .stats()
            .await
            .unwrap()
            .events,
        5
    );

    let newer = dir.path().join("newer.sqlite");
    let pool = raw(&newer).await.unwrap();
    sqlx::raw_sql("PRAGMA user_version = 9")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let err = EventStore::open(StoreConfig::new(&newer))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("has layout 9, newer than this dialtone knows (2)"),
        "{err}"
    );
}
