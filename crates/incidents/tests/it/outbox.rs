//! The webhook outbox on both backends: opening, escalating and closing each write one event in
//! the change's transaction (a refused change writes none); events are due oldest first and one
//! at a time per incident; attempts are logged; a ticket reference lands on the incident; a
//! settled event can be put back for redelivery with the same idempotency key.

use chrono::{Duration, Utc};
use incidents::{Attempt, Error, NewEscalation, NewIncident, Status, Store};

use crate::support::on_both_backends;

on_both_backends!(changes_write_outbox_events_in_their_transaction);

fn new(account: &str) -> NewIncident {
    NewIncident {
        account: account.into(),
        reporter: "r".into(),
        description: "d".into(),
        runbook: "user-cant-call".into(),
        level: "L1".into(),
        current_step: None,
    }
}

async fn changes_write_outbox_events_in_their_transaction(store: &Store, _url: &str) {
    let a = store.open_incident(new("alice"), "ann").await.unwrap();
    let b = store.open_incident(new("bob"), "ann").await.unwrap();
    // Status and assignment changes are not announced.
    let a = store
        .set_status(a.id, a.version, Status::WaitingUser, "ann")
        .await
        .unwrap();
    let a = store
        .assign(a.id, a.version, Some("ann".into()), "ann")
        .await
        .unwrap();
    let esc = NewEscalation {
        to_level: "L2".into(),
        kind: Some("network_check".into()),
        reason: "needs L2".into(),
    };
    let a = store
        .escalate(a.id, a.version, esc.clone(), None, "ann")
        .await
        .unwrap();
    // A stale version is refused and announces nothing.
    let stale = store
        .close(a.id, a.version - 1, "out_of_scope", None, "ann")
        .await;
    assert!(matches!(stale, Err(Error::Conflict { .. })));
    let a = store
        .close(a.id, a.version, "out_of_scope", None, "leo")
        .await
        .unwrap();

    let log = store.outbox_log(100).await.unwrap();
    let seen: Vec<(i64, &str, String)> = log
        .iter()
        .rev()
        .map(|e| (e.incident_id, e.event.as_str(), e.idempotency_key.clone()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (a.id, "open", format!("dialtone-incident-{}-v1-open", a.id)),
            (b.id, "open", format!("dialtone-incident-{}-v1-open", b.id)),
            (
                a.id,
                "escalate",
                format!("dialtone-incident-{}-v{}-escalate", a.id, a.version - 1)
            ),
            (
                a.id,
                "close",
                format!("dialtone-incident-{}-v{}-close", a.id, a.version)
            ),
        ]
    );

    // Due: the oldest undelivered event of each incident only.
    let due = store.outbox_due(10).await.unwrap();
    let due_ids: Vec<(i64, &str)> = due
        .iter()
        .map(|e| (e.incident_id, e.event.as_str()))
        .collect();
    assert_eq!(due_ids, vec![(a.id, "open"), (b.id, "open")]);
    // A failure waits for its retry time and holds the incident's later events back.
    let later = Utc::now() + Duration::seconds(60);
    let first = due[0].id;
    assert!(
        store
            .outbox_attempt(
                first,
                Attempt::Failed {
                    status: Some(500),
                    error: "HTTP 500".into(),
                    retry_at: later
                }
            )
            .await
            .unwrap()
    );
    let due: Vec<i64> = store
        .outbox_due(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(due, vec![due_ids_b(&log, b.id)]);
    // Delivered with a ticket: settled, the ticket kept, the next event of the incident due.
    assert!(
        store
            .outbox_attempt(
                first,
                Attempt::Delivered {
                    status: 201,
                    ticket_ref: Some("RT-4711".into())
                }
            )
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(a.id).await.unwrap().ticket_ref.as_deref(),
        Some("RT-4711")
    );
    assert_eq!(
        store.get(a.id).await.unwrap().version,
        a.version,
        "a ticket bumps no version"
    );
    let due: Vec<(i64, String)> = store
        .outbox_due(10)
        .await
        .unwrap()
        .iter()
        .map(|e| (e.incident_id, e.event.clone()))
        .collect();
    assert_eq!(
        due,
        vec![(b.id, "open".to_owned()), (a.id, "escalate".to_owned())]
    );
    // A settled event is not changed by a late attempt.
    assert!(
        !store
            .outbox_attempt(first, Attempt::Skipped("late".into()))
            .await
            .unwrap()
    );
    let settled = store
        .outbox_log(100)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.id == first)
        .unwrap();
    assert_eq!((settled.attempts, settled.last_status), (2, Some(201)));
    assert!(settled.delivered_at.is_some());
    // Redeliver: due again (first of its incident again), same key.
    let again = store.outbox_redeliver(first, "admin").await.unwrap();
    assert_eq!(again.idempotency_key, settled.idempotency_key);
    assert!(again.delivered_at.is_none());
    let due: Vec<i64> = store
        .outbox_due(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(due[0], first);
    assert!(matches!(
        store.outbox_redeliver(999_999, "admin").await,
        Err(Error::NotFound { .. })
    ));
}

fn due_ids_b(log: &[incidents::OutboxEvent], b: i64) -> i64 {
    log.iter().find(|e| e.incident_id == b).unwrap().id
}
