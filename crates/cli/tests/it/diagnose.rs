//! `dialtone diagnose` against a real lab: each fault reaches its runbook outcome, with the
//! evidence that proves it in the report.

use super::support::{Cli, Run, repo_root};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use testlab::Lab;

struct Stand {
    lab: Lab,
    cli: Cli,
    config: PathBuf,
}

impl Stand {
    fn start() -> Stand {
        let lab = Lab::start().expect("lab starts");
        let cli = Cli::sqlite();
        let config = cli.dir.path().join("dialtone.toml");
        let out = std::process::Command::new(repo_root().join("scripts/lab-config.sh"))
            .arg(lab.run_dir())
            .output()
            .expect("lab-config.sh");
        assert!(
            out.status.success(),
            "lab-config.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&config, &out.stdout).unwrap();
        Stand { lab, cli, config }
    }

    fn password(&self, user: &str) -> String {
        self.lab
            .account(user)
            .unwrap_or_else(|| panic!("lab account {user}"))
            .password
            .clone()
    }

    fn register(&self, user: &str) {
        let r = self
            .lab
            .sipp_register(user, &self.password(user))
            .expect("sipp register");
        assert_eq!(
            r.final_status,
            Some(200),
            "REGISTER {user}: {:?}",
            r.statuses
        );
    }

    fn call(&self, user: &str, target: &str) -> Option<u16> {
        self.lab
            .sipp_call(user, &self.password(user), target)
            .expect("sipp call")
            .final_status
    }

    fn diagnose(&self, account: &str, extra: &[&str]) -> (Run, Value) {
        let config = self.config.to_str().unwrap().to_string();
        let mut args = vec!["--json", "diagnose", account, "--config", &config];
        args.extend_from_slice(extra);
        let r = self.cli.run(&args);
        assert_eq!(r.code, 0, "diagnose failed:\n{}\n{}", r.stdout, r.stderr);
        let v = r.json();
        (r, v)
    }

    /// Waits (bounded) until the dispatcher's OPTIONS probing marks `uri` inactive.
    fn wait_destination_inactive(&self, uri_part: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self
                .lab
                .rpc("dispatcher.list", serde_json::json!([]))
                .expect("dispatcher.list");
            let text = list.to_string();
            let inactive = list["RECORDS"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["SET"]["TARGETS"].as_array().cloned().unwrap_or_default())
                .any(|t| {
                    t["DEST"]["URI"]
                        .as_str()
                        .is_some_and(|u| u.contains(uri_part))
                        && t["DEST"]["FLAGS"]
                            .as_str()
                            .is_some_and(|f| f.starts_with('I'))
                });
            if inactive {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "destination {uri_part} never became inactive: {text}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["path"]
        .as_array()
        .and_then(|p| p.iter().find(|s| s["step"] == id))
        .unwrap_or_else(|| panic!("step {id} not on the path: {report:#}"))
}

fn assert_outcome(report: &Value, outcome: &str) {
    assert_eq!(report["outcome"], outcome, "report: {report:#}");
    // Every report names the runbook and the account, and the path has sources and timings.
    assert!(report["path"].as_array().is_some_and(|p| !p.is_empty()));
    for s in report["path"].as_array().unwrap() {
        let src = s["source"].as_str().unwrap_or_default();
        assert!(["automated", "agent", "assumed"].contains(&src), "{s}");
        assert!(s["duration_ms"].is_u64(), "{s}");
    }
}

fn no_secrets(stand: &Stand, r: &Run) {
    for a in stand.lab.accounts() {
        assert!(
            !r.stdout.contains(&a.password) && !r.stderr.contains(&a.password),
            "{}'s password leaked",
            a.user
        );
    }
}

#[test]
fn healthy_account_it_works_now() {
    let s = Stand::start();
    s.register("alice");
    let phone = s.lab.sipp_phone().expect("phone");
    let r = s
        .lab
        .sipp_register_contact("bob", &s.password("bob"), &phone.contact("bob"))
        .expect("register bob");
    assert_eq!(r.final_status, Some(200));
    assert_eq!(s.call("alice", "600"), Some(200));
    assert_eq!(s.call("alice", "1002"), Some(200));
    let (run, v) = s.diagnose("alice", &[]);
    assert_outcome(&v, "temporary_network_problem");
    assert_eq!(step(&v, "l1.connection_status")["answer"], "connected");
    assert_eq!(step(&v, "l1.connection_status")["source"], "automated");
    assert_eq!(step(&v, "l1.echo_call")["answer"], "works");
    let echo = &step(&v, "l1.echo_call")["evidence"]["synthetic_echo_call"];
    assert_eq!(echo["category"], "ok", "{echo}");
    assert_eq!(echo["media"]["loss_percent"], 0.0, "{echo}");
    assert!(
        step(&v, "l1.call_other_user")["summary"]
            .as_str()
            .unwrap()
            .contains("1002")
    );
    // The gate steps nobody answered are assumed, and the report says so.
    assert!(
        v["assumed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a.as_str().unwrap().starts_with("gate."))
    );
    no_secrets(&s, &run);
}

#[test]
fn account_missing_is_not_an_issue() {
    let s = Stand::start();
    s.lab.fault("remove-account", &["carol"]).expect("fault");
    let (_, v) = s.diagnose("carol", &["--answer", "gate.client_error=none"]);
    assert_outcome(&v, "not_an_issue_user_not_provisioned");
    assert_eq!(step(&v, "ci.account_exists")["answer"], "no");
    assert_eq!(v["redirects"][0], "connection-issues");
}

#[test]
fn account_never_registered_is_not_an_issue() {
    let s = Stand::start();
    let (_, v) = s.diagnose("dave", &[]);
    assert_outcome(&v, "not_an_issue_user_not_provisioned");
    assert_eq!(step(&v, "ci.account_exists")["answer"], "yes");
    assert_eq!(step(&v, "ci.register_seen")["answer"], "none_seen");
    assert_eq!(step(&v, "ci.client_server")["answer"], "never_set_up");
}

#[test]
fn wrong_password_on_the_client_is_an_authentication_failure() {
    let s = Stand::start();
    let r = s
        .lab
        .sipp_register("carol", "not-her-password")
        .expect("sipp");
    assert_eq!(r.final_status, Some(403), "{:?}", r.statuses);
    let (_, v) = s.diagnose("carol", &[]);
    assert_outcome(&v, "authentication_failure");
    assert_eq!(
        step(&v, "l1.force_reconnection")["answer"],
        "connection_problem"
    );
    assert!(
        step(&v, "ci.register_result")["summary"]
            .as_str()
            .unwrap()
            .contains("403"),
        "{v:#}"
    );
}

#[test]
fn duplicate_virtual_number_names_the_other_account() {
    let s = Stand::start();
    s.lab
        .fault("duplicate-number", &["bob", "1001"])
        .expect("fault");
    s.register("alice");
    assert_eq!(s.call("alice", "600"), Some(200));
    assert_eq!(s.call("alice", "carol"), Some(480)); // carol is not registered
    let (_, v) = s.diagnose("alice", &[]);
    assert_outcome(&v, "duplicate_virtual_number");
    assert_eq!(step(&v, "l1.trunk_health")["answer"], "fine");
    let dup = step(&v, "l2.virtual_number_unique");
    assert!(dup["summary"].as_str().unwrap().contains("bob"), "{dup}");
}

#[test]
fn outgoing_trunk_down_is_a_trunk_problem() {
    let s = Stand::start();
    s.register("alice");
    s.lab.fault("kill-gateway", &[]).expect("fault");
    s.wait_destination_inactive(&s.lab.env()["LAB_GW_PORT"]);
    assert_eq!(s.call("alice", "600"), Some(200));
    let status = s.call("alice", "95551234");
    assert!(status.is_some_and(|c| c >= 500), "trunk call: {status:?}");
    let (_, v) = s.diagnose("alice", &[]);
    assert_outcome(&v, "trunk_problem");
    let t = step(&v, "l1.trunk_health");
    assert!(
        t["summary"]
            .as_str()
            .unwrap()
            .contains("no usable destination"),
        "{t}"
    );
}

#[test]
fn echo_service_down_is_a_server_service_failure() {
    let s = Stand::start();
    s.register("alice");
    s.lab.fault("stop-echo", &[]).expect("fault");
    let (_, v) = s.diagnose("alice", &[]);
    assert_outcome(&v, "server_service_failure");
    assert_eq!(step(&v, "l1.echo_call")["answer"], "fails");
    assert!(
        step(&v, "l2.server_services")["summary"]
            .as_str()
            .unwrap()
            .contains("echo"),
        "{v:#}"
    );
    // The self-test call between the two probe accounts still works: only the echo is down.
    let services = &step(&v, "l2.server_services")["evidence"];
    assert_eq!(services["self_test"]["category"], "ok", "{services:#}");
    assert!(
        services["self_test"]["media"]["echoed"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{services:#}"
    );
}

#[test]
fn expired_server_certificate_is_a_tls_failure() {
    let s = Stand::start();
    s.lab.fault("tls-expired", &[]).expect("fault");
    let (_, v) = s.diagnose("alice", &[]);
    assert_outcome(&v, "tls_failure");
    let tls = step(&v, "ci.tls_handshake");
    assert!(
        tls["summary"].as_str().unwrap().contains("expired"),
        "{tls}"
    );
}

#[test]
fn a_blocked_transport_makes_the_server_unreachable() {
    let s = Stand::start();
    s.lab.fault("block-transport", &["tcp"]).expect("fault");
    let (_, v) = s.diagnose("alice", &[]);
    assert_outcome(&v, "server_unreachable");
    assert!(
        step(&v, "ci.transport_reachability")["summary"]
            .as_str()
            .unwrap()
            .contains("TCP"),
        "{v:#}"
    );
}

#[test]
fn management_interface_down_still_ends_with_that_finding() {
    let s = Stand::start();
    s.register("alice");
    s.lab.fault("stop-rpc", &[]).expect("fault");
    let (_, v) = s.diagnose("alice", &[]);
    let findings = v["findings"].to_string();
    assert!(findings.contains("management interface"), "{v:#}");
    assert!(v["summary"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["duration_ms"].as_u64().unwrap() < 30_000);
}

#[test]
fn diagnose_records_its_steps_into_the_incident() {
    let s = Stand::start();
    s.lab.fault("remove-account", &["carol"]).expect("fault");
    let id = s
        .cli
        .ok(&["--json", "incident", "open", "--account", "carol"])
        .json()["incident"]["id"]
        .as_i64()
        .unwrap();
    let (_, v) = s.diagnose("carol", &["--incident", &id.to_string()]);
    assert_outcome(&v, "not_an_issue_user_not_provisioned");
    // The dossier carries the path, the evidence and the analysed attachment.
    let capture = repo_root().join("crates/captures/test_data/baresip_wrong_password.log");
    s.cli.ok(&[
        "incident",
        "attach",
        &id.to_string(),
        capture.to_str().unwrap(),
        "--content-type",
        "text/plain",
    ]);
    let dossier = s.cli.ok(&["incident", "dossier", &id.to_string()]).stdout;
    for words in [
        "# Incident",
        "ci.account_exists",
        "## Evidence",
        "## Attachments",
        "baresip_wrong_password.log",
        "## Audit trail",
    ] {
        assert!(
            dossier.contains(words),
            "dossier lacks {words:?}:\n{dossier}"
        );
    }
    assert!(
        dossier.contains("403") || dossier.contains("credentials"),
        "{dossier}"
    );
    let shown_run = s.cli.ok(&["--json", "incident", "show", &id.to_string()]);
    // The incident record holds evidence, never a secret.
    no_secrets(&s, &shown_run);
    let shown = shown_run.json();
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), v["path"].as_array().unwrap().len());
    assert!(steps.iter().any(|st| st["step"] == "ci.account_exists"
        && st["source"] == "automated"
        && !st["evidence"].is_null()));
    assert_eq!(
        shown["evaluation"]["status"]["outcome"],
        "not_an_issue_user_not_provisioned"
    );
}

#[test]
fn watch_sees_the_forced_reconnection() {
    let s = Stand::start();
    // The user is offline when the agent starts watching; then the app reconnects.
    let config = s.config.to_str().unwrap().to_string();
    let child = s
        .cli
        .command(&[
            "--json", "diagnose", "alice", "--config", &config, "--watch", "12s",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn diagnose --watch");
    std::thread::sleep(Duration::from_secs(2));
    s.register("alice");
    let out = child.wait_with_output().expect("diagnose --watch");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let step = step(&v, "l1.force_reconnection");
    assert_eq!(step["answer"], "fine", "{v:#}");
    assert!(
        step["summary"].as_str().unwrap().contains("fresh REGISTER"),
        "{step}"
    );
    // It stopped watching as soon as the REGISTER was accepted, not at the end of the window.
    assert!(
        v["duration_ms"].as_u64().unwrap() < 11_000,
        "{}",
        v["duration_ms"]
    );
}

#[test]
fn watch_reports_silence_as_a_connection_problem() {
    let s = Stand::start();
    let (_, v) = s.diagnose("bob", &["--watch", "2s"]);
    let step = step(&v, "l1.force_reconnection");
    assert_eq!(step["answer"], "connection_problem", "{v:#}");
    assert!(
        step["summary"]
            .as_str()
            .unwrap()
            .contains("no REGISTER reached the server"),
        "{step}"
    );
}

#[test]
fn the_whole_sip_server_down_is_unreachable() {
    let s = Stand::start();
    s.register("alice");
    let pid = std::fs::read_to_string(s.lab.run_dir().join("kamailio.pid")).expect("kamailio.pid");
    // Kamailio runs in its own session (setsid): kill its whole process group, children too.
    let killed = std::process::Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", pid.trim())])
        .status()
        .expect("kill");
    assert!(killed.success());
    // Wait (bounded) until SIP is refused.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::net::TcpStream::connect(s.lab.sip_addr()).is_ok() {
        assert!(Instant::now() < deadline, "Kamailio still listens");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, v) = s.diagnose("alice", &[]);
    assert_outcome(&v, "server_unreachable");
    assert_eq!(
        step(&v, "l1.force_reconnection")["answer"],
        "connection_problem"
    );
    assert!(
        v["findings"].to_string().contains("management interface"),
        "{v:#}"
    );
}

#[test]
fn callee_offline_when_the_client_says_user_offline() {
    let s = Stand::start();
    s.register("alice");
    assert_eq!(s.call("alice", "1003"), Some(480)); // carol is not registered
    let (_, v) = s.diagnose("alice", &["--answer", "gate.client_error=user_offline"]);
    assert_outcome(&v, "callee_offline");
    assert_eq!(v["redirects"][0], "user-not-found");
    assert_eq!(step(&v, "gate.client_error")["source"], "agent");
    assert!(
        step(&v, "unf.callee_registered")["summary"]
            .as_str()
            .unwrap()
            .contains("carol"),
        "{v:#}"
    );
}

#[test]
fn sweep_lists_what_is_wrong_across_the_server() {
    let s = Stand::start();
    s.register("alice");
    s.lab
        .fault("duplicate-number", &["bob", "1001"])
        .expect("fault");
    s.lab.fault("kill-gateway", &[]).expect("fault");
    let config = s.config.to_str().unwrap().to_string();
    let r = s.cli.run(&["--json", "sweep", "--config", &config]);
    assert_eq!(r.code, 10, "problems found: {} {}", r.stdout, r.stderr);
    let v = r.json();
    assert_eq!(v["accounts"], 6, "{v:#}");
    let never = v["never_registered"].to_string();
    assert!(
        never.contains("carol") && never.contains("dave") && !never.contains("alice"),
        "{v:#}"
    );
    // dialtone's own probe accounts are not users who never registered.
    assert!(
        !never.contains("probe1") && !never.contains("probe2"),
        "{v:#}"
    );
    let shared = v["shared_numbers"].to_string();
    assert!(
        shared.contains("1001") && shared.contains("bob") && shared.contains("alice"),
        "{v:#}"
    );
    assert!(v["trunks_down"].to_string().contains("pstn"), "{v:#}");
    let text = s.cli.run(&["sweep", "--config", &config]).stdout;
    assert!(
        text.contains("6 accounts read") && text.contains("trunks down: pstn"),
        "{text}"
    );
}
