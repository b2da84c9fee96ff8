//! The rule book without any store: each case plans one action on an incident as loaded and
//! names what must come out (a write, or the refusal's kind and words).

use casework::actions::{self, Actor, Answer, Case, Close, RefusalKind};
use chrono::Utc;
use incidents::{Incident, Status, StepRecord, Write};
use runbook::{Level, RunbookSet, Source};

fn incident(level: &str, status: Status) -> Incident {
    Incident {
        id: 7,
        account: "alice".into(),
        reporter: "Alice".into(),
        description: "cannot call".into(),
        level: level.into(),
        status,
        runbook: "user-cant-call".into(),
        current_step: None,
        outcome: None,
        escalation_kind: None,
        assignee: Some("lena".into()),
        ticket_ref: None,
        version: 3,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn record(id: i64, step: &str, answer: &str) -> StepRecord {
    StepRecord {
        id,
        incident_id: 7,
        given: incidents::NewStepRecord {
            runbook: "user-cant-call".into(),
            step: step.into(),
            answer: answer.into(),
            source: "agent".into(),
            evidence: serde_json::Value::Null,
            note: None,
            proposed: None,
        },
        actor: "lena".into(),
        at: Utc::now(),
        superseded_at: None,
        superseded_by: None,
    }
}

/// The gate and the first L1 steps answered so that the runbook asks `l1.echo_call` next.
fn walked() -> Vec<StepRecord> {
    vec![
        record(1, "gate.operational_requirements", "no"),
        record(2, "gate.client_error", "none"),
        record(3, "l1.connection_status", "connected"),
        record(4, "l1.force_reconnection", "fine"),
    ]
}

fn answer(step: Option<&str>, value: &str) -> Answer {
    Answer {
        version: Some(3),
        step: step.map(str::to_owned),
        answer: value.into(),
        source: Source::Agent,
        evidence: serde_json::Value::Null,
        note: None,
        proposed: None,
    }
}

#[test]
fn answers_close_and_levels_follow_one_rule_book() {
    let set = RunbookSet::builtin();
    let lena = Actor {
        name: "lena",
        level: Level::L1,
    };
    let steps = walked();
    let open = incident("L1", Status::Open);
    let case = Case {
        incident: &open,
        steps: &steps,
    };
    // (what, result: Ok(write kind) or Err((kind, words in the refusal)))
    type Want = Result<&'static str, (RefusalKind, &'static str)>;
    let table: Vec<(&str, Result<Write, actions::Refusal>, Want)> = vec![
        (
            "the step asked now",
            actions::answer(&set, &lena, case, answer(None, "works")),
            Ok("answer"),
        ),
        (
            "another step than the one asked",
            actions::answer(&set, &lena, case, answer(Some("l1.trunk_health"), "fine")),
            Err((RefusalKind::Conflict, "the runbook now asks")),
        ),
        (
            "an answer the step does not allow",
            actions::answer(&set, &lena, case, answer(None, "maybe")),
            Err((RefusalKind::Invalid, "maybe")),
        ),
        (
            "a stale version",
            actions::answer(
                &set,
                &lena,
                case,
                Answer {
                    version: Some(2),
                    ..answer(None, "works")
                },
            ),
            Err((RefusalKind::Conflict, "")),
        ),
        (
            "closing before the runbook reached an outcome, without a reason",
            actions::close(
                &set,
                &lena,
                case,
                Close {
                    version: Some(3),
                    outcome: Some("out_of_scope".into()),
                    reason: None,
                    note: None,
                },
            ),
            Err((RefusalKind::Invalid, "needs a reason")),
        ),
        (
            "closing with another outcome and a reason",
            actions::close(
                &set,
                &lena,
                case,
                Close {
                    version: Some(3),
                    outcome: Some("out_of_scope".into()),
                    reason: Some("the user's own PBX".into()),
                    note: None,
                },
            ),
            Ok("close"),
        ),
    ];
    for (what, got, want) in table {
        match (&got, want) {
            (Ok(w), Ok(kind)) => {
                let name = match w {
                    Write::Answer { .. } => "answer",
                    Write::Close { .. } => "close",
                    _ => "other",
                };
                assert_eq!(name, kind, "{what}");
            }
            (Err(r), Err((kind, words))) => {
                assert_eq!(r.kind(), kind, "{what}: {r}");
                assert!(r.to_string().contains(words), "{what}: {r}");
            }
            _ => panic!("{what}: got {got:?}, want {want:?}"),
        }
    }

    // L1 cannot work an L2 incident; a level the store would refuse fails closed (L3).
    let l2 = incident("L2", Status::Escalated);
    assert!(!actions::can_work(&lena, &l2));
    let corrupted = incident("L9", Status::Open);
    assert_eq!(casework::level_of(&corrupted), Level::L3);
    let l2_agent = Actor {
        name: "leo",
        level: Level::L2,
    };
    assert!(actions::can_work(&l2_agent, &l2));
    assert!(!actions::can_work(&l2_agent, &corrupted));
}
