//! The audit log's hash chain: intact after ordinary work, and a row changed or removed behind
//! the store's back (triggers dropped, as a DBA can) is named by `verify_audit`; databases from
//! before the chain get it computed when they are migrated.

use incidents::{NewIncident, Store};
use sqlx::Connection;

use crate::support::on_both_backends;

on_both_backends!(a_changed_or_removed_audit_row_is_named);

fn new_incident(account: &str) -> NewIncident {
    NewIncident {
        account: account.into(),
        reporter: "r".into(),
        description: String::new(),
        runbook: "user-cant-call".into(),
        level: "L1".into(),
        current_step: None,
    }
}

/// Runs statements on the store's database behind its back.
async fn raw(url: &str, sql: &str) {
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await.expect("raw");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .expect(sql);
        c.close().await.ok();
    } else {
        let mut c = sqlx::PgConnection::connect(url).await.expect("raw");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut c)
            .await
            .expect(sql);
        c.close().await.ok();
    }
}

async fn a_changed_or_removed_audit_row_is_named(store: &Store, url: &str) {
    for n in 0..3 {
        let i = store
            .open_incident(new_incident(&format!("acc{n}")), "ann")
            .await
            .expect("open");
        store
            .assign(i.id, i.version, Some("bob".into()), "ann")
            .await
            .expect("assign");
    }
    let v = store.verify_audit().await.expect("verify");
    assert_eq!((v.rows, v.first_broken.clone()), (6, None));
    let ids: Vec<i64> = {
        let mut all = Vec::new();
        for inc in store
            .list(&incidents::ListFilter::default())
            .await
            .expect("list")
        {
            all.extend(
                store
                    .audit(inc.id)
                    .await
                    .expect("audit")
                    .iter()
                    .map(|a| a.id),
            );
        }
        all.sort_unstable();
        all
    };
    let (third, fifth) = (ids[2], ids[4]);
    let (drop_trigger, restore) = if url.starts_with("sqlite:") {
        (
            "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;",
            "",
        )
    } else {
        (
            "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only;",
            "ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only;",
        )
    };
    // Changing the actor of the fifth row: that row is named.
    raw(
        url,
        &format!(
            "{drop_trigger} UPDATE audit_log SET actor = 'mallory' WHERE id = {fifth}; {restore}"
        ),
    )
    .await;
    let v = store.verify_audit().await.expect("verify");
    let broken = v.first_broken.expect("the edit is found");
    assert_eq!(broken.id, fifth, "{}", broken.reason);
    assert!(broken.reason.contains("changed"), "{}", broken.reason);
    // Removing the third row: the row after it is named, before the later edit.
    let drop_again = if url.starts_with("sqlite:") {
        ""
    } else {
        drop_trigger
    };
    raw(
        url,
        &format!("{drop_again} DELETE FROM audit_log WHERE id = {third}; {restore}"),
    )
    .await;
    let v = store.verify_audit().await.expect("verify");
    let broken = v.first_broken.expect("the removal is found");
    assert_eq!(broken.id, ids[3], "{}", broken.reason);
}

#[tokio::test]
async fn a_database_from_before_the_chain_gets_it_on_migration() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}/old.sqlite?mode=rwc", dir.path().display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("raw");
    sqlx::raw_sql(include_str!("../../migrations/sqlite/0001_init.sql"))
        .execute(&mut c)
        .await
        .expect("schema 1");
    sqlx::raw_sql(
        "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, name TEXT NOT NULL, \
         applied_at BIGINT NOT NULL); \
         INSERT INTO schema_version VALUES (1, 'init', 0); \
         INSERT INTO incidents (account, reporter, description, level, status, runbook, version, \
         created_at, updated_at) VALUES ('a', 'r', '', 'L1', 'open', 'user-cant-call', 1, 1, 1); \
         INSERT INTO audit_log (incident_id, actor, at, action, detail) VALUES \
         (1, 'ann', 1, 'open', '{}'), (1, 'bob', 2, 'assign', '{}'), \
         (NULL, 'system', 3, 'user.create', '{\"username\":\"x\"}');",
    )
    .execute(&mut c)
    .await
    .expect("old rows");
    c.close().await.ok();
    let store = Store::connect(&url).await.expect("migrate");
    let v = store.verify_audit().await.expect("verify");
    assert_eq!((v.rows, v.first_broken), (3, None));
    // New rows chain on, and the append-only trigger is back.
    store
        .assign(1, 1, Some("carl".into()), "ann")
        .await
        .expect("assign");
    assert_eq!(store.verify_audit().await.expect("verify").rows, 4);
    let mut c = sqlx::SqliteConnection::connect(&url).await.expect("raw");
    let refused = sqlx::query("UPDATE audit_log SET actor = 'x' WHERE id = 1")
        .execute(&mut c)
        .await;
    assert!(refused.is_err(), "the no-update trigger is gone");
}
