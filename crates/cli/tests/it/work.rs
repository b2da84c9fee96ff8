//! `dialtone incident work` driven through a pseudo-terminal, as an agent would use it.

use super::support::{Cli, bin};
use rexpect::session::spawn_command;

#[test]
fn work_walks_an_incident_interactively_to_its_outcome() {
    let cli = Cli::sqlite();
    let id = cli
        .ok(&["--json", "incident", "open", "--account", "erin"])
        .json()["incident"]["id"]
        .as_i64()
        .unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--data-dir")
        .arg(cli.dir.path().join("data"))
        .env("DIALTONE_USER", "agent-ann")
        .env_remove("DIALTONE_CONFIG")
        .current_dir(cli.dir.path())
        .args(["incident", "work", &id.to_string()]);
    let mut p = spawn_command(cmd, Some(20_000)).expect("spawn in a pty");
    p.exp_string("gate.operational_requirements").unwrap();
    p.exp_string("Answer (number or value").unwrap();
    p.send_line("2").unwrap(); // no
    p.exp_string("Note (optional)").unwrap();
    p.send_line("").unwrap();
    p.exp_string("gate.client_error").unwrap();
    p.exp_string("Answer").unwrap();
    p.send_line("purple").unwrap(); // not an answer: asked again
    p.exp_string("is not one of the answers").unwrap();
    p.exp_string("Answer").unwrap();
    p.send_line("none").unwrap();
    p.exp_string("Note (optional)").unwrap();
    p.send_line("no error shown").unwrap();
    p.exp_string("l1.connection_status").unwrap();
    p.exp_string("Tell the user").unwrap();
    p.exp_string("Answer").unwrap();
    p.send_line("connected").unwrap();
    p.exp_string("Note").unwrap();
    p.send_line("").unwrap();
    p.exp_string("l1.force_reconnection").unwrap();
    p.exp_string("Answer").unwrap();
    p.send_line("fine").unwrap();
    p.exp_string("Note").unwrap();
    p.send_line("").unwrap();
    p.exp_string("l1.echo_call").unwrap();
    p.exp_string("Answer").unwrap();
    p.send_line("works").unwrap();
    p.exp_string("Note").unwrap();
    p.send_line("").unwrap();
    p.exp_string("l1.call_other_user").unwrap();
    p.exp_string("Answer").unwrap();
    p.send_line("yes").unwrap();
    p.exp_string("Note").unwrap();
    p.send_line("works again").unwrap();
    p.exp_string("Outcome: temporary_network_problem").unwrap();
    p.exp_string("Close the incident with this outcome? [y/N]")
        .unwrap();
    p.send_line("y").unwrap();
    p.exp_string("Closed.").unwrap();
    p.exp_eof().unwrap();

    let shown = cli
        .ok(&["--json", "incident", "show", &id.to_string()])
        .json();
    assert_eq!(shown["incident"]["status"], "closed");
    assert_eq!(shown["incident"]["outcome"], "temporary_network_problem");
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 6);
    assert!(
        steps
            .iter()
            .all(|s| s["actor"] == "agent-ann" && s["source"] == "agent")
    );
    assert_eq!(steps[1]["note"], "no error shown");
}

/// With a configuration, `work` runs a step's automated check on "c" and records its answer.
#[test]
fn work_runs_the_automated_check_of_a_step() {
    let cli = Cli::sqlite();
    // A server known through its exports (the file backend): alice is registered.
    let export = cli.dir.path().join("export");
    std::fs::create_dir_all(&export).unwrap();
    std::fs::write(
        export.join("accounts.csv"),
        "user,domain,primary_number,alternate_number\nalice,voip.example.com,1001,\n",
    )
    .unwrap();
    // Times relative to now: the check looks at a recent window, and this test runs on any day.
    let now = chrono::Utc::now();
    let registered = (now - chrono::Duration::minutes(10)).to_rfc3339();
    let expires = (now + chrono::Duration::minutes(50)).to_rfc3339();
    std::fs::write(
        export.join("registrations.json"),
        format!(
            r#"[{{"user":"alice","contact":"sip:alice@198.51.100.7:5060","source":"198.51.100.7:5060","transport":"tls",
            "user_agent":"PrivateGSM 4.2","expires_at":"{expires}","registered_at":"{registered}","call_id":"r1"}}]"#
        ),
    )
    .unwrap();
    std::fs::write(
        export.join("registration_attempts.csv"),
        format!(
            "at,user,source,status,reason,auth_user\n{registered},alice,tls:198.51.100.7:5060,200,OK,alice\n"
        ),
    )
    .unwrap();
    let config = cli.dir.path().join("dialtone.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndomain = \"voip.example.com\"\nhost = \"127.0.0.1\"\ntransports = [\"udp\"]\nudp_port = 9\n[management]\nexport_dir = \"{}\"\n",
            export.display()
        ),
    )
    .unwrap();
    let id = cli
        .ok(&[
            "--json",
            "incident",
            "open",
            "--account",
            "alice",
            "--answer",
            "gate.operational_requirements=no",
            "--answer",
            "gate.client_error=none",
        ])
        .json()["incident"]["id"]
        .as_i64()
        .unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--data-dir")
        .arg(cli.dir.path().join("data"))
        .env("DIALTONE_USER", "agent-ann")
        .args([
            "incident",
            "work",
            &id.to_string(),
            "--config",
            config.to_str().unwrap(),
        ]);
    let mut p = spawn_command(cmd, Some(30_000)).expect("spawn in a pty");
    p.exp_string("l1.connection_status").unwrap();
    p.exp_string("c to run the automated check").unwrap();
    p.send_line("c").unwrap();
    p.exp_string("registered from 198.51.100.7:5060 over tls")
        .unwrap();
    p.exp_string("Record \"connected\" from the check? [Y/n]")
        .unwrap();
    p.send_line("").unwrap();
    p.exp_string("l1.force_reconnection").unwrap();
    p.exp_string("c to run the automated check").unwrap();
    p.send_line("c").unwrap();
    p.exp_string("the latest REGISTER was accepted").unwrap();
    p.exp_string("[Y/n]").unwrap();
    p.send_line("y").unwrap();
    p.exp_string("l1.echo_call").unwrap();
    p.exp_string("c to run the automated check").unwrap();
    p.send_line("c").unwrap();
    // No probe account and no call records: the check says so and leaves the step to the agent.
    p.exp_string("Not conclusive").unwrap();
    p.exp_string("Answer").unwrap();
    p.send_line("q").unwrap();
    p.exp_eof().unwrap();

    let shown = cli
        .ok(&["--json", "incident", "show", &id.to_string()])
        .json();
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[2]["step"], "l1.connection_status");
    assert_eq!(steps[2]["source"], "automated");
    assert_eq!(steps[2]["answer"], "connected");
    assert!(
        steps[2]["evidence"]["summary"]
            .as_str()
            .unwrap()
            .contains("198.51.100.7")
    );
    assert_eq!(steps[3]["answer"], "fine");
    assert_eq!(shown["incident"]["current_step"], "l1.echo_call");
}
