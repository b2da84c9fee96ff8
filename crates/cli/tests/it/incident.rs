//! Incidents through the CLI: a full walk on SQLite and PostgreSQL, and bad input.

use super::support::{Cli, PgDb};

/// Open, answer through L1 to an escalation, escalate to L2, answer L2, close.
fn full_walk(cli: &Cli) {
    let open = cli.ok(&[
        "--json",
        "incident",
        "open",
        "--account",
        "alice",
        "--reporter",
        "Alice (mobile)",
        "--description",
        "can't call anyone since this morning",
        "--answer",
        "gate.operational_requirements=no",
        "--answer",
        "gate.client_error=none",
    ]);
    let v = open.json();
    let id = v["incident"]["id"].as_i64().expect("incident id");
    assert_eq!(v["incident"]["level"], "L1");
    assert_eq!(v["incident"]["current_step"], "l1.connection_status");
    let id_s = id.to_string();

    for (step, answer) in [
        ("l1.connection_status", "connected"),
        ("l1.force_reconnection", "fine"),
        ("l1.echo_call", "works"),
        ("l1.call_other_user", "no"),
        ("l1.outgoing_trunks", "some"),
        ("l1.trunk_health", "fine"),
    ] {
        let r = cli.ok(&[
            "--json",
            "incident",
            "answer",
            &id_s,
            answer,
            "--step",
            step,
            "--note",
            "asked the user",
        ]);
        assert_eq!(r.json()["incident"]["status"], "open");
    }
    // The runbook now says: escalate to L2 for a user configuration check.
    let shown = cli.ok(&["--json", "incident", "show", &id_s]).json();
    assert_eq!(shown["evaluation"]["status"]["status"], "finished");
    assert_eq!(shown["evaluation"]["status"]["ending"], "escalated");
    assert_eq!(shown["evaluation"]["status"]["level"], "l2");
    assert_eq!(shown["steps"].as_array().map(|a| a.len()), Some(8));

    let esc = cli
        .ok(&[
            "--json",
            "incident",
            "escalate",
            &id_s,
            "--reason",
            "trunks fine, still can't call",
        ])
        .json();
    assert_eq!(esc["incident"]["level"], "L2");
    assert_eq!(esc["incident"]["status"], "escalated");
    assert_eq!(
        esc["incident"]["escalation_kind"],
        "user_configuration_check"
    );
    assert_eq!(esc["incident"]["current_step"], "l2.account_exists");

    cli.ok(&["incident", "answer", &id_s, "yes"]);
    cli.ok(&["incident", "answer", &id_s, "yes"]);
    let last = cli
        .ok(&["--json", "incident", "answer", &id_s, "duplicate"])
        .json();
    assert_eq!(last["evaluation"]["status"]["ending"], "outcome");
    assert_eq!(
        last["evaluation"]["status"]["outcome"],
        "duplicate_virtual_number"
    );

    let waiting = cli
        .ok(&["--json", "incident", "status", &id_s, "waiting_user"])
        .json();
    assert_eq!(waiting["incident"]["status"], "waiting_user");
    let listed = cli
        .ok(&["--json", "incident", "list", "--status", "waiting_user"])
        .json();
    assert_eq!(listed.as_array().map(|a| a.len()), Some(1));
    let closed = cli
        .ok(&[
            "--json",
            "incident",
            "close",
            &id_s,
            "--note",
            "bob's number fixed",
        ])
        .json();
    assert_eq!(closed["incident"]["status"], "closed");
    assert_eq!(closed["incident"]["outcome"], "duplicate_virtual_number");

    // The audit trail has every change, with who did it.
    let audit = cli.ok(&["--json", "incident", "audit", &id_s]).json();
    let actions: Vec<&str> = audit
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(actions.len() >= 13, "audit: {actions:?}");
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["actor"] == "agent-ann")
    );

    let text = cli.ok(&["incident", "show", &id_s]).stdout;
    assert!(
        text.contains("closed with outcome duplicate_virtual_number"),
        "{text}"
    );
    let list = cli
        .ok(&["--json", "incident", "list", "--status", "closed"])
        .json();
    assert_eq!(list.as_array().map(|a| a.len()), Some(1));
}

#[test]
fn full_walk_on_sqlite() {
    full_walk(&Cli::sqlite());
}

#[test]
fn full_walk_on_postgres() {
    let db = PgDb::create();
    full_walk(&Cli::with_database(db.url.clone()));
}

/// Each bad input: its exit code, a message naming the problem, and nothing written.
#[test]
fn bad_input_is_refused_with_a_clear_message_and_nothing_written() {
    let cli = Cli::sqlite();
    let id = cli
        .ok(&["--json", "incident", "open", "--account", "bob"])
        .json()["incident"]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    // (args, exit code, words the message must contain)
    let cases: &[(&[&str], i32, &str)] = &[
        (&["incident", "show", "9999"], 3, "incident 9999 not found"),
        (&["incident", "answer", "9999", "yes"], 3, "not found"),
        (
            &[
                "incident",
                "answer",
                &id,
                "maybe",
                "--step",
                "gate.operational_requirements",
            ],
            5,
            "is not an answer of",
        ),
        (
            &["incident", "answer", &id, "yes", "--step", "l9.nowhere"],
            3,
            "unknown step",
        ),
        (
            &["incident", "answer", &id, "no", "--expect-version", "0"],
            4,
            "someone else changed this incident",
        ),
        (&["incident", "close", &id], 5, "no outcome yet"),
        (
            &["incident", "close", &id, "--outcome", "made_up"],
            5,
            "unknown outcome",
        ),
        (
            &[
                "incident", "escalate", &id, "--to", "l2", "--kind", "nonsense", "--reason", "x",
            ],
            5,
            "unknown escalation kind",
        ),
        (
            &[
                "incident",
                "open",
                "--account",
                "carol",
                "--answer",
                "gate.client_error=purple",
            ],
            5,
            "is not an answer of",
        ),
        (
            &["runbook", "show", "no-such-runbook"],
            3,
            "unknown runbook",
        ),
        (
            &[
                "--database",
                "postgres://nobody:secret-pw@127.0.0.1:1/none",
                "incident",
                "list",
            ],
            6,
            "cannot open database",
        ),
    ];
    for (args, code, words) in cases {
        let r = cli.run(args);
        assert_eq!(
            r.code, *code,
            "dialtone {args:?}: stdout {} stderr {}",
            r.stdout, r.stderr
        );
        assert!(
            r.stderr.contains(words),
            "dialtone {args:?}: expected {words:?} in {:?}",
            r.stderr
        );
        assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
        assert!(
            !r.stderr.contains("secret-pw"),
            "password leaked: {}",
            r.stderr
        );
    }
    // Nothing was written by any of them: still one incident, no steps.
    let shown = cli.ok(&["--json", "incident", "show", &id]).json();
    assert_eq!(shown["steps"].as_array().map(|a| a.len()), Some(0));
    assert_eq!(shown["incident"]["version"], 1);
    assert_eq!(
        cli.ok(&["--json", "incident", "list"])
            .json()
            .as_array()
            .map(|a| a.len()),
        Some(1)
    );
}

#[test]
fn a_corrupt_database_file_is_an_error_not_a_panic() {
    let cli = Cli::sqlite();
    let data = cli.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("dialtone.sqlite"),
        b"this is not a database, just text",
    )
    .unwrap();
    let r = cli.run(&["incident", "list"]);
    assert_eq!(r.code, 6, "{} {}", r.stdout, r.stderr);
    assert!(r.stderr.contains("database"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn a_closed_incident_takes_no_more_answers() {
    let cli = Cli::sqlite();
    let id = cli
        .ok(&[
            "--json",
            "incident",
            "open",
            "--account",
            "dave",
            "--answer",
            "gate.operational_requirements=yes",
        ])
        .json()["incident"]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let closed = cli.ok(&["--json", "incident", "close", &id]).json();
    assert_eq!(closed["incident"]["outcome"], "out_of_scope");
    let r = cli.run(&[
        "incident",
        "answer",
        &id,
        "no",
        "--step",
        "gate.operational_requirements",
    ]);
    assert_eq!(r.code, 5);
    assert!(r.stderr.contains("closed"), "{}", r.stderr);
}

#[test]
fn runbook_commands_list_check_and_draw() {
    let cli = Cli::sqlite();
    let list = cli.ok(&["--json", "runbook", "list"]).json();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["id"].as_str())
        .collect();
    for id in ["user-cant-call", "connection-issues", "license-problem"] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    let graph = cli.ok(&["runbook", "graph", "user-cant-call"]).stdout;
    assert!(graph.starts_with("flowchart"), "{graph}");
    assert!(
        graph.contains("l1.trunk_health") || graph.contains("l1_trunk_health"),
        "{graph}"
    );

    let good = super::support::repo_root().join("runbooks/user-cant-call.toml");
    cli.ok(&["runbook", "check", good.to_str().unwrap()]);
    let bad = cli.dir.path().join("broken.toml");
    let text = std::fs::read_to_string(&good)
        .unwrap()
        .replace("next = \"l1.echo_call\"", "next = \"l1.echo_cal\"");
    std::fs::write(&bad, text).unwrap();
    let r = cli.run(&["runbook", "check", bad.to_str().unwrap()]);
    assert_eq!(r.code, 5);
    assert!(
        r.stderr.contains("broken.toml:") && r.stderr.contains("l1.echo_cal"),
        "{}",
        r.stderr
    );
}
