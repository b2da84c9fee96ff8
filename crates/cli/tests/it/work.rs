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
