//! The store suite: every test here runs on SQLite and on PostgreSQL alike.

use std::sync::Arc;

use incidents::{
    Error, Incident, ListFilter, NewEscalation, NewIncident, NewStepRecord, Status, Store,
};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::support::{on_both_backends, table};

on_both_backends!(
    open_then_get_and_list_with_filters,
    walk_an_incident_to_its_outcome,
    stale_version_is_a_conflict_and_writes_nothing,
    concurrent_answers_one_wins_nothing_lost,
    closed_incident_rejects_steps_until_reopened,
    bad_input_is_refused_with_a_clear_error_and_writes_nothing,
    attachments_round_trip,
    audit_log_is_append_only,
    reopening_the_store_keeps_everything,
    an_unknown_level_is_refused_everywhere,
);

fn new_incident(account: &str, level: &str) -> NewIncident {
    NewIncident {
        account: account.to_owned(),
        reporter: "reporter".to_owned(),
        description: "cannot call".to_owned(),
        runbook: "user-cant-call".to_owned(),
        level: level.to_owned(),
        current_step: Some("gate.operational_requirements".to_owned()),
    }
}

fn answer(step: &str, value: &str) -> NewStepRecord {
    NewStepRecord {
        runbook: "user-cant-call".to_owned(),
        step: step.to_owned(),
        answer: value.to_owned(),
        source: "agent".to_owned(),
        evidence: Value::Null,
        note: None,
        proposed: None,
    }
}

async fn open_then_get_and_list_with_filters(store: &Store, _url: &str) {
    #[derive(Deserialize)]
    struct Row {
        account: String,
        level: String,
        assignee: Option<String>,
        status: Status,
    }
    #[derive(Deserialize)]
    struct Case {
        name: String,
        filter: ListFilter,
        expect: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Table {
        incidents: Vec<Row>,
        cases: Vec<Case>,
    }
    let t: Table = table("list_filters.json");

    for row in &t.incidents {
        let opened = store
            .open_incident(new_incident(&row.account, &row.level), "agent-bob")
            .await
            .expect("open");
        assert_eq!(opened.version, 1);
        assert_eq!(opened.status, Status::Open);
        assert_eq!(opened.level, row.level.to_ascii_uppercase());
        assert_eq!(opened.created_at, opened.updated_at);
        // What was returned is what is stored.
        assert_eq!(store.get(opened.id).await.expect("get"), opened);

        let mut incident = opened;
        if let Some(assignee) = &row.assignee {
            incident = store
                .assign(
                    incident.id,
                    incident.version,
                    Some(assignee.clone()),
                    "lead",
                )
                .await
                .expect("assign");
        }
        incident = match row.status {
            Status::Open => incident,
            Status::Closed => store
                .close(incident.id, incident.version, "not_an_issue", None, "lead")
                .await
                .expect("close"),
            other => store
                .set_status(incident.id, incident.version, other, "lead")
                .await
                .expect("set status"),
        };
        assert_eq!(incident.status, row.status);
    }

    for case in &t.cases {
        let listed = store.list(&case.filter).await.expect(&case.name);
        let accounts: Vec<&str> = listed.iter().map(|i| i.account.as_str()).collect();
        assert_eq!(accounts, case.expect, "{}", case.name);
    }
}

async fn walk_an_incident_to_its_outcome(store: &Store, _url: &str) {
    #[derive(Deserialize)]
    struct Action {
        #[serde(rename = "do")]
        action: String,
        actor: String,
        #[serde(flatten)]
        args: serde_json::Map<String, Value>,
    }
    #[derive(Deserialize)]
    struct Expect {
        level: String,
        status: Status,
        outcome: Option<String>,
        escalation_kind: Option<String>,
        assignee: Option<String>,
        current_step: Option<String>,
        version: i64,
        steps: Vec<String>,
        audit: Vec<String>,
    }
    #[derive(Deserialize)]
    struct Walk {
        open: NewIncident,
        actions: Vec<Action>,
        expect: Expect,
    }
    let walk: Walk = table("walk.json");
    let text = |args: &serde_json::Map<String, Value>, key: &str| {
        args.get(key).and_then(Value::as_str).map(str::to_owned)
    };

    let mut incident = store
        .open_incident(walk.open.clone(), "agent-bob")
        .await
        .expect("open");
    for (n, action) in walk.actions.iter().enumerate() {
        let before = incident.version;
        let (id, v, actor, args) = (incident.id, incident.version, &action.actor, &action.args);
        incident = match action.action.as_str() {
            "assign" => store.assign(id, v, text(args, "assignee"), actor).await,
            "status" => {
                let status = text(args, "status").unwrap_or_default();
                store
                    .set_status(id, v, status.parse().expect("status"), actor)
                    .await
            }
            "step" => {
                let step = NewStepRecord {
                    runbook: walk.open.runbook.clone(),
                    step: text(args, "step").unwrap_or_default(),
                    answer: text(args, "answer").unwrap_or_default(),
                    source: text(args, "source").unwrap_or_default(),
                    evidence: args.get("evidence").cloned().unwrap_or(Value::Null),
                    note: text(args, "note"),
                    proposed: None,
                };
                store
                    .record_step(id, v, step, text(args, "next"), actor)
                    .await
            }
            "escalate" => {
                let escalation = NewEscalation {
                    to_level: text(args, "to_level").unwrap_or_default(),
                    kind: text(args, "kind"),
                    reason: text(args, "reason").unwrap_or_default(),
                };
                store
                    .escalate(id, v, escalation, text(args, "next"), actor)
                    .await
            }
            "close" => {
                let outcome = text(args, "outcome").unwrap_or_default();
                store
                    .close(id, v, &outcome, text(args, "note"), actor)
                    .await
            }
            other => panic!("walk.json action {n}: unknown action {other}"),
        }
        .unwrap_or_else(|err| panic!("walk.json action {n} ({}): {err}", action.action));
        assert_eq!(incident.version, before + 1, "action {n} bumps the version");
        if let Some(next) = args.get("next") {
            assert_eq!(
                incident.current_step.as_deref(),
                next.as_str(),
                "action {n} moves to its next step"
            );
        }
    }

    let e = &walk.expect;
    let stored = store.get(incident.id).await.expect("get");
    assert_eq!(stored, incident);
    assert_eq!(stored.level, e.level);
    assert_eq!(stored.status, e.status);
    assert_eq!(stored.outcome, e.outcome);
    assert_eq!(stored.escalation_kind, e.escalation_kind);
    assert_eq!(stored.assignee, e.assignee);
    assert_eq!(stored.current_step, e.current_step);
    assert_eq!(stored.version, e.version);
    assert!(stored.updated_at >= stored.created_at);

    // Step records: in answer order, with who, source, evidence and note as given.
    let steps = store.steps(incident.id).await.expect("steps");
    let got: Vec<String> = steps
        .iter()
        .map(|s| format!("{}={}", s.step, s.answer))
        .collect();
    assert_eq!(got, e.steps);
    let recorded: Vec<&Action> = walk.actions.iter().filter(|a| a.action == "step").collect();
    for (record, action) in steps.iter().zip(&recorded) {
        assert_eq!(record.incident_id, incident.id);
        assert_eq!(record.runbook, "user-cant-call");
        assert_eq!(&record.actor, &action.actor);
        assert_eq!(Some(record.source.clone()), text(&action.args, "source"));
        assert_eq!(record.note, text(&action.args, "note"));
        let evidence = action.args.get("evidence").cloned().unwrap_or(Value::Null);
        assert_eq!(record.evidence, evidence, "evidence JSON round trip");
    }

    // Escalations: from, to, kind, reason, who.
    let escalations = store.escalations(incident.id).await.expect("escalations");
    assert_eq!(escalations.len(), 1);
    let esc = &escalations[0];
    assert_eq!(
        (
            esc.from_level.as_str(),
            esc.to_level.as_str(),
            esc.kind.as_deref(),
            esc.actor.as_str()
        ),
        ("L1", "L2", Some("user_configuration_check"), "agent-bob")
    );
    assert_eq!(esc.reason, "echo and user calls fail while registered");

    // Audit: one line per change, in order, with who and what.
    let audit = store.audit(incident.id).await.expect("audit");
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(actions, e.audit);
    assert_eq!(audit[0].actor, "agent-bob");
    assert_eq!(audit[0].detail["account"], "alice@voip.example");
    assert_eq!(audit[0].detail["runbook"], "user-cant-call");
    for (entry, action) in audit[1..].iter().zip(&walk.actions) {
        assert_eq!(entry.incident_id, Some(incident.id));
        assert_eq!(&entry.actor, &action.actor);
    }
    for pair in audit.windows(2) {
        assert!(pair[0].id < pair[1].id && pair[0].at <= pair[1].at);
    }
    let step_lines: Vec<&Value> = audit
        .iter()
        .filter(|a| a.action == "step")
        .map(|a| &a.detail)
        .collect();
    for (detail, record) in step_lines.iter().zip(&steps) {
        assert_eq!(detail["step_record_id"], json!(record.id));
        assert_eq!(detail["step"], json!(record.step));
        assert_eq!(detail["answer"], json!(record.answer));
    }
    let escalate = audit
        .iter()
        .find(|a| a.action == "escalate")
        .expect("escalate line");
    assert_eq!(escalate.detail["from_level"], "L1");
    assert_eq!(escalate.detail["to_level"], "L2");
    assert_eq!(escalate.detail["escalation_id"], json!(esc.id));
    let close = audit.last().expect("close line");
    assert_eq!(close.detail["outcome"], "authentication_failure");
    assert_eq!(close.detail["at_step"], Value::Null);
    assert_eq!(close.detail["version"], json!(e.version));
    let status = audit
        .iter()
        .find(|a| a.action == "status")
        .expect("status line");
    assert_eq!(status.detail["from"], "open");
    assert_eq!(status.detail["to"], "waiting_user");

    // The serialized form others show (CLI --json, web API).
    let shown = serde_json::to_value(&stored).expect("serialize");
    assert_eq!(shown["status"], "closed");
    assert_eq!(shown["level"], "L2");
}

async fn stale_version_is_a_conflict_and_writes_nothing(store: &Store, _url: &str) {
    let opened = store
        .open_incident(new_incident("bob@voip.example", "L1"), "a")
        .await
        .expect("open");
    let moved = store
        .record_step(
            opened.id,
            1,
            answer("gate.operational_requirements", "yes"),
            None,
            "a",
        )
        .await
        .expect("first answer");
    assert_eq!(moved.version, 2);

    // Every mutation with the version read before the change is refused the same way.
    let v = opened.version;
    let attempts: Vec<(&str, Result<Incident, Error>)> = vec![
        (
            "record_step",
            store
                .record_step(opened.id, v, answer("gate.client_error", "no"), None, "b")
                .await,
        ),
        (
            "escalate",
            store
                .escalate(
                    opened.id,
                    v,
                    NewEscalation {
                        to_level: "L2".into(),
                        kind: None,
                        reason: "r".into(),
                    },
                    None,
                    "b",
                )
                .await,
        ),
        ("close", store.close(opened.id, v, "x", None, "b").await),
        (
            "assign",
            store.assign(opened.id, v, Some("b".into()), "b").await,
        ),
        (
            "set_status",
            store
                .set_status(opened.id, v, Status::WaitingUser, "b")
                .await,
        ),
    ];
    for (what, result) in attempts {
        match result {
            Err(Error::Conflict {
                id,
                current_version,
            }) => {
                assert_eq!((id, current_version), (opened.id, 2), "{what}");
            }
            other => panic!("{what}: expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.get(opened.id).await.expect("get"), moved);
    assert_eq!(store.steps(opened.id).await.expect("steps").len(), 1);
    assert!(store.escalations(opened.id).await.expect("esc").is_empty());
    assert_eq!(store.audit(opened.id).await.expect("audit").len(), 2);
}

async fn concurrent_answers_one_wins_nothing_lost(store: &Store, url: &str) {
    // Several rounds, because a race that happens to serialize proves little once. Odd rounds
    // give agent-b a store of its own, as a second CLI process on the same database would be.
    const ROUNDS: usize = 8;
    let store = Arc::new(store.clone());
    let second = Arc::new(Store::connect(url).await.expect("second store"));
    let incident = store
        .open_incident(new_incident("race@voip.example", "L1"), "lead")
        .await
        .expect("open");
    let mut version = incident.version;
    for round in 0..ROUNDS {
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for agent in ["agent-a", "agent-b"] {
            let mine = if agent == "agent-b" && round % 2 == 1 {
                &second
            } else {
                &store
            };
            let (store, barrier) = (Arc::clone(mine), Arc::clone(&barrier));
            tasks.push(tokio::spawn(async move {
                let step = answer(&format!("l1.step_{round}"), agent);
                barrier.wait().await;
                let result = store
                    .record_step(incident.id, version, step.clone(), None, agent)
                    .await;
                (agent, step, result)
            }));
        }
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        for task in tasks {
            let (agent, step, result) = task.await.expect("task");
            match result {
                Ok(incident) => winners.push((agent, incident)),
                Err(Error::Conflict {
                    current_version, ..
                }) => losers.push((agent, step, current_version)),
                Err(other) => panic!("round {round}: {agent} got {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one answer wins");
        assert_eq!(losers.len(), 1, "round {round}: the other gets a conflict");
        let (_, won) = &winners[0];
        assert_eq!(won.version, version + 1);
        let (loser, step, current) = losers.pop().expect("loser");
        assert_eq!(current, version + 1, "the conflict names the new version");
        // The loser reloads and answers again: nothing is lost.
        let retried = store
            .record_step(incident.id, current, step, None, loser)
            .await
            .expect("retry after reload");
        version = retried.version;
        assert_eq!(version, incident.version + 2 * (round as i64 + 1));
    }

    let steps = store.steps(incident.id).await.expect("steps");
    assert_eq!(
        steps.len(),
        2 * ROUNDS,
        "every answer is recorded exactly once"
    );
    for round in 0..ROUNDS {
        let mut answers: Vec<&str> = steps
            .iter()
            .filter(|s| s.step == format!("l1.step_{round}"))
            .map(|s| s.answer.as_str())
            .collect();
        answers.sort_unstable();
        assert_eq!(answers, ["agent-a", "agent-b"], "round {round}");
    }
    let audit = store.audit(incident.id).await.expect("audit");
    assert_eq!(
        audit.iter().filter(|a| a.action == "step").count(),
        2 * ROUNDS
    );
    let versions: Vec<i64> = audit
        .iter()
        .filter(|a| a.action == "step")
        .map(|a| a.detail["version"].as_i64().expect("version in detail"))
        .collect();
    let expected: Vec<i64> = (2..2 + 2 * ROUNDS as i64).collect();
    assert_eq!(
        versions, expected,
        "the audit log has one line per version, no gaps"
    );
}

async fn closed_incident_rejects_steps_until_reopened(store: &Store, _url: &str) {
    let opened = store
        .open_incident(new_incident("closed@voip.example", "L1"), "a")
        .await
        .expect("open");
    let closed = store
        .close(
            opened.id,
            opened.version,
            "not_an_issue",
            Some("fine".into()),
            "a",
        )
        .await
        .expect("close");
    assert_eq!(closed.status, Status::Closed);
    assert_eq!(closed.outcome.as_deref(), Some("not_an_issue"));
    assert_eq!(closed.current_step, None);

    let v = closed.version;
    let step = store
        .record_step(opened.id, v, answer("l1.echo_call", "ok"), None, "a")
        .await;
    let escalate = store
        .escalate(
            opened.id,
            v,
            NewEscalation {
                to_level: "L2".into(),
                kind: None,
                reason: "late".into(),
            },
            None,
            "a",
        )
        .await;
    let again = store.close(opened.id, v, "other", None, "a").await;
    for (what, result) in [("step", step), ("escalate", escalate), ("close", again)] {
        match result {
            Err(err @ Error::Closed { .. }) => {
                assert_eq!(err.to_string(), format!("incident {} is closed", opened.id));
            }
            other => panic!("{what} on a closed incident: {other:?}"),
        }
    }
    assert_eq!(store.get(opened.id).await.expect("get"), closed);
    assert!(store.steps(opened.id).await.expect("steps").is_empty());

    // Reopening clears the outcome and takes steps again.
    let reopened = store
        .set_status(opened.id, v, Status::Open, "lead")
        .await
        .expect("reopen");
    assert_eq!(
        (reopened.status, reopened.outcome.clone()),
        (Status::Open, None)
    );
    let audit = store.audit(opened.id).await.expect("audit");
    let last = audit.last().expect("audit line");
    assert_eq!(last.detail["reopened_from_outcome"], "not_an_issue");
    store
        .record_step(
            opened.id,
            reopened.version,
            answer("l1.echo_call", "ok"),
            None,
            "a",
        )
        .await
        .expect("step after reopen");
}

async fn bad_input_is_refused_with_a_clear_error_and_writes_nothing(store: &Store, _url: &str) {
    #[derive(Deserialize)]
    struct Row {
        op: String,
        args: serde_json::Map<String, Value>,
        error: String,
    }
    #[derive(Deserialize)]
    struct Table {
        rows: Vec<Row>,
    }
    let t: Table = table("bad_inputs.json");
    store
        .create_user(
            "existing",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "l1",
        )
        .await
        .expect("user");
    let users_before = store.users().await.expect("users");
    for (n, row) in t.rows.iter().enumerate() {
        let incident = store
            .open_incident(new_incident(&format!("row{n}@voip.example"), "L1"), "a")
            .await
            .expect("open");
        let audit_before = store.audit(incident.id).await.expect("audit");
        let all_before = store.list(&ListFilter::default()).await.expect("list");
        let err = run_op(store, &incident, &row.op, &row.args)
            .await
            .err()
            .unwrap_or_else(|| panic!("row {n} ({} {:?}) should fail", row.op, row.args));
        let message = err.to_string();
        assert!(
            message.contains(&row.error),
            "row {n} ({}): got {message:?}, want it to contain {:?}",
            row.op,
            row.error
        );
        assert!(
            message.starts_with(|c: char| c.is_lowercase()),
            "row {n}: messages start lowercase: {message:?}"
        );
        assert_eq!(
            store.get(incident.id).await.expect("get"),
            incident,
            "row {n}"
        );
        assert_eq!(
            store.audit(incident.id).await.expect("audit"),
            audit_before,
            "row {n}"
        );
        assert_eq!(
            store.list(&ListFilter::default()).await.expect("list"),
            all_before,
            "row {n}"
        );
        assert!(
            store.steps(incident.id).await.expect("steps").is_empty(),
            "row {n}"
        );
    }
    assert_eq!(store.users().await.expect("users"), users_before);
}

/// Runs one operation of the bad-input table: a valid call with `args` overriding fields.
async fn run_op(
    store: &Store,
    incident: &Incident,
    op: &str,
    args: &serde_json::Map<String, Value>,
) -> Result<(), Error> {
    let s = |key: &str, default: &str| -> String {
        args.get(key)
            .and_then(Value::as_str)
            .unwrap_or(default)
            .to_owned()
    };
    let opt = |key: &str, default: Option<&str>| -> Option<String> {
        match args.get(key) {
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => None,
            None => default.map(str::to_owned),
        }
    };
    let id = args
        .get("id")
        .and_then(Value::as_i64)
        .unwrap_or(incident.id);
    let version = args
        .get("version")
        .and_then(Value::as_i64)
        .unwrap_or(incident.version);
    let actor = s("actor", "agent");
    match op {
        "open" => {
            let new = NewIncident {
                account: s("account", "x@voip.example"),
                reporter: s("reporter", "x"),
                description: s("description", ""),
                runbook: s("runbook", "user-cant-call"),
                level: s("level", "L1"),
                current_step: opt("current_step", Some("gate.operational_requirements")),
            };
            store.open_incident(new, &actor).await.map(drop)
        }
        "get" => store.get(id).await.map(drop),
        "steps" => store.steps(id).await.map(drop),
        "audit" => store.audit(id).await.map(drop),
        "record_step" => {
            let step = NewStepRecord {
                runbook: s("runbook", "user-cant-call"),
                step: s("step", "gate.operational_requirements"),
                answer: s("answer", "yes"),
                source: s("source", "agent"),
                evidence: Value::Null,
                note: None,
                proposed: None,
            };
            store
                .record_step(
                    id,
                    version,
                    step,
                    opt("next_step", Some("gate.client_error")),
                    &actor,
                )
                .await
                .map(drop)
        }
        "escalate" => {
            let escalation = NewEscalation {
                to_level: s("to_level", "L2"),
                kind: opt("kind", Some("user_configuration_check")),
                reason: s("reason", "because"),
            };
            store
                .escalate(id, version, escalation, None, &actor)
                .await
                .map(drop)
        }
        "close" => store
            .close(id, version, &s("outcome", "not_an_issue"), None, &actor)
            .await
            .map(drop),
        "assign" => store
            .assign(id, version, opt("assignee", Some("bob")), &actor)
            .await
            .map(drop),
        "set_status" => {
            let status: Status = s("status", "open").parse()?;
            store
                .set_status(id, version, status, &actor)
                .await
                .map(drop)
        }
        "list" => {
            let filter = ListFilter {
                level: opt("level", None),
                limit: args.get("limit").and_then(Value::as_i64),
                ..ListFilter::default()
            };
            store.list(&filter).await.map(drop)
        }
        "add_attachment" => store
            .add_attachment(
                id,
                &s("name", "client.log"),
                &s("content_type", "text/plain"),
                b"log",
                &actor,
            )
            .await
            .map(drop),
        "attachment" => store.attachment(id).await.map(drop),
        "create_user" => store
            .create_user(
                &s("username", "newbie"),
                &s("password_hash", "$argon2id$v=19$x"),
                &s("role", "l1"),
            )
            .await
            .map(drop),
        "create_session" => store
            .create_session(
                "sessionhash",
                &s("username", "existing"),
                chrono::Utc::now() + chrono::Duration::hours(1),
            )
            .await
            .map(drop),
        "create_api_token" => store
            .create_api_token("tokenhash", &s("username", "existing"), "ci", None, "ci")
            .await
            .map(drop),
        "set_user_disabled" => store
            .set_user_disabled(&s("username", "existing"), true, &actor)
            .await
            .map(drop),
        "set_user_role" => store
            .set_user_role(&s("username", "existing"), &s("role", "l2"), &actor)
            .await
            .map(drop),
        other => panic!("bad_inputs.json: unknown op {other}"),
    }
}

async fn attachments_round_trip(store: &Store, _url: &str) {
    let incident = store
        .open_incident(new_incident("files@voip.example", "L1"), "a")
        .await
        .expect("open");
    // Every byte value, a large-ish capture, and an empty file.
    let files: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "all-bytes.bin",
            "application/octet-stream",
            (0..=255u8).collect(),
        ),
        (
            "call.pcap",
            "application/vnd.tcpdump.pcap",
            (0..300_000u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
                .collect(),
        ),
        ("empty.txt", "text/plain", Vec::new()),
    ];
    let mut ids = Vec::new();
    for (name, content_type, bytes) in &files {
        let att = store
            .add_attachment(incident.id, name, content_type, bytes, "agent-bob")
            .await
            .expect("attach");
        assert_eq!(att.size, bytes.len() as i64);
        assert_eq!(
            (att.name.as_str(), att.content_type.as_str()),
            (*name, *content_type)
        );
        ids.push(att.id);
    }
    let listed = store.attachments(incident.id).await.expect("list");
    assert_eq!(listed.iter().map(|a| a.id).collect::<Vec<_>>(), ids);
    for ((name, _, bytes), id) in files.iter().zip(&ids) {
        let (att, content) = store.attachment(*id).await.expect("fetch");
        assert_eq!(&att.name, name);
        assert_eq!(&content, bytes, "{name} comes back byte for byte");
    }
    // Attachments add without changing the incident's version, but are audited.
    assert_eq!(
        store.get(incident.id).await.expect("get").version,
        incident.version
    );
    let audit = store.audit(incident.id).await.expect("audit");
    let lines: Vec<&Value> = audit
        .iter()
        .filter(|a| a.action == "attachment")
        .map(|a| &a.detail)
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["name"], "call.pcap");
    assert_eq!(lines[1]["size"], 300_000);
    // Another incident's list stays empty.
    let other = store
        .open_incident(new_incident("nofiles@voip.example", "L1"), "a")
        .await
        .expect("open");
    assert!(store.attachments(other.id).await.expect("list").is_empty());
}

async fn audit_log_is_append_only(store: &Store, url: &str) {
    let incident = store
        .open_incident(new_incident("audit@voip.example", "L1"), "a")
        .await
        .expect("open");
    // Even someone with SQL access cannot rewrite history: the schema refuses.
    let attempts = [
        "UPDATE audit_log SET actor = 'mallory'",
        "DELETE FROM audit_log",
    ];
    for sql in attempts {
        let result = raw_execute(url, sql).await;
        let err = result.expect_err(sql);
        assert!(err.contains("audit_log is append-only"), "{sql}: {err}");
    }
    let audit = store.audit(incident.id).await.expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, "a");
}

/// Executes SQL on the store's database through a connection of its own.
async fn raw_execute(url: &str, sql: &'static str) -> Result<u64, String> {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let done = sqlx::query(sql).execute(&mut conn).await;
        conn.close().await.ok();
        done.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    } else {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        let done = sqlx::query(sql).execute(&mut conn).await;
        conn.close().await.ok();
        done.map(|r| r.rows_affected()).map_err(|e| e.to_string())
    }
}

async fn reopening_the_store_keeps_everything(store: &Store, url: &str) {
    let incident = store
        .open_incident(new_incident("persist@voip.example", "L1"), "a")
        .await
        .expect("open");
    let incident = store
        .record_step(
            incident.id,
            incident.version,
            answer("gate.operational_requirements", "yes"),
            Some("gate.client_error".into()),
            "a",
        )
        .await
        .expect("step");
    store.shutdown().await;

    // A second open runs the migrations again: they must find nothing to do.
    let again = Store::connect(url).await.expect("reopen");
    assert_eq!(again.get(incident.id).await.expect("get"), incident);
    assert_eq!(again.steps(incident.id).await.expect("steps").len(), 1);
    let third = Store::connect(url).await.expect("reopen twice");
    assert_eq!(third.audit(incident.id).await.expect("audit").len(), 2);
    assert_eq!(
        raw_count(url, "SELECT MAX(version) FROM schema_version").await,
        incidents::SCHEMA_VERSION
    );
}

/// Levels follow one rule everywhere: a level the store does not know is refused with
/// `Error::Invalid` by the store, and the database refuses to hold one at all.
async fn an_unknown_level_is_refused_everywhere(store: &Store, url: &str) {
    let incident = store
        .open_incident(new_incident("oddlevel@voip.example", "L1"), "a")
        .await
        .expect("open");
    raw_execute(
        url,
        "UPDATE incidents SET level = 'L9' WHERE account = 'oddlevel@voip.example'",
    )
    .await
    .expect_err("the database refuses an unknown level");
    for wrong in ["L9", "L0", "", "level 2"] {
        let err = store
            .escalate(
                incident.id,
                incident.version,
                NewEscalation {
                    to_level: wrong.into(),
                    kind: None,
                    reason: "needs more".into(),
                },
                None,
                "a",
            )
            .await
            .expect_err("an unknown level is refused");
        assert!(matches!(err, Error::Invalid(_)), "{wrong:?}: {err:?}");
        assert!(
            err.to_string().contains("unknown level"),
            "{wrong:?}: {err}"
        );
        let err = store
            .open_incident(new_incident("oddlevel@voip.example", wrong), "a")
            .await
            .expect_err("an unknown level is refused");
        assert!(matches!(err, Error::Invalid(_)), "{wrong:?}: {err:?}");
    }
    assert_eq!(store.get(incident.id).await.expect("get"), incident);
    assert!(
        store
            .escalations(incident.id)
            .await
            .expect("escalations")
            .is_empty()
    );
}

/// Runs a `SELECT COUNT(*)` on the store's database through a connection of its own.
async fn raw_count(url: &str, sql: &'static str) -> i64 {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect(sql)
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect(sql)
    }
}
