//! Search on both backends: words in descriptions and notes (full text), a number, an account,
//! reporter, outcome, status and dates; the same answers from PostgreSQL and SQLite FTS5.

use incidents::{NewIncident, NewStepRecord, SearchQuery, Store};
use serde_json::Value;

use crate::support::on_both_backends;

on_both_backends!(search_finds_incidents_by_words_numbers_and_filters);

async fn open(store: &Store, account: &str, reporter: &str, description: &str) -> i64 {
    store
        .open_incident(
            NewIncident {
                account: account.into(),
                reporter: reporter.into(),
                description: description.into(),
                runbook: "user-cant-call".into(),
                level: "L1".into(),
                current_step: Some("l1.echo_call".into()),
            },
            "agent-a",
        )
        .await
        .expect("open")
        .id
}

async fn note(store: &Store, id: i64, text: &str) {
    let inc = store.get(id).await.unwrap();
    store
        .record_step(
            id,
            inc.version,
            NewStepRecord {
                runbook: "user-cant-call".into(),
                step: "l1.echo_call".into(),
                answer: "fails".into(),
                source: "agent".into(),
                evidence: Value::Null,
                note: Some(text.into()),
                proposed: None,
            },
            None,
            "agent-a",
        )
        .await
        .expect("step");
}

async fn ids(store: &Store, q: &str) -> Vec<i64> {
    let query = SearchQuery::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    let mut out: Vec<i64> = store
        .search(&query)
        .await
        .unwrap_or_else(|e| panic!("{q}: {e}"))
        .iter()
        .map(|i| i.id)
        .collect();
    out.sort_unstable();
    out
}

async fn search_finds_incidents_by_words_numbers_and_filters(store: &Store, _url: &str) {
    let a = open(
        store,
        "alice@example.org",
        "Alice Rossi",
        "cannot call the office",
    )
    .await;
    let b = open(
        store,
        "390655512345",
        "Bob",
        "calls to 0655 fail with busy tone",
    )
    .await;
    let c = open(store, "carol", "helpdesk", "no audio on calls").await;
    note(store, a, "user said the trunk to Milano was down yesterday").await;
    note(store, c, "Packet capture shows one-way audio (NAT)").await;
    let inc = store.get(b).await.unwrap();
    store
        .close(b, inc.version, "trunk_problem", None, "agent-a")
        .await
        .unwrap();

    // A word in a description; in a note; a prefix; case does not matter.
    assert_eq!(ids(store, "office").await, [a]);
    assert_eq!(ids(store, "milano").await, [a]);
    assert_eq!(ids(store, "Trun").await, [a]);
    assert_eq!(ids(store, "audio").await, [c]);
    // An internal note (added on its own, not with an answer) is searched too.
    store
        .add_note(b, "caller reached the Zurich gateway voicemail", "agent-a")
        .await
        .unwrap();
    assert_eq!(ids(store, "zurich").await, [b]);
    assert_eq!(ids(store, "voicemail busy").await, [b]);
    // Several words must all match, each in the description or a note.
    assert_eq!(ids(store, "audio nat").await, [c]);
    assert_eq!(ids(store, "audio milano").await, Vec::<i64>::new());
    // A number: by its digits, in the account or in the description.
    assert_eq!(ids(store, "number:390655512345").await, [b]);
    assert_eq!(ids(store, "0655").await, [b]);
    // An address's parts are words.
    assert_eq!(ids(store, "example").await, [a]);
    // Filters alone and with words.
    assert_eq!(ids(store, "account:CAR").await, [c]);
    assert_eq!(ids(store, "reporter:rossi").await, [a]);
    assert_eq!(ids(store, "outcome:trunk_problem").await, [b]);
    assert_eq!(ids(store, "status:open").await, [a, c]);
    assert_eq!(ids(store, "status:open audio").await, [c]);
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    assert_eq!(
        ids(store, &format!("from:{today} to:{tomorrow}")).await,
        [a, b, c]
    );
    assert_eq!(
        ids(store, &format!("from:{tomorrow}")).await,
        Vec::<i64>::new()
    );
    // Query syntax of either engine is just text here.
    assert_eq!(ids(store, "\"trunk\" OR * NEAR(").await, Vec::<i64>::new());
    // Nothing to look for is a clear error, not every incident.
    let empty = SearchQuery::parse("% --").unwrap();
    assert!(store.search(&empty).await.is_err());
}
