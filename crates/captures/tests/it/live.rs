//! Captures recorded during the test: tcpdump on loopback while SIPp talks to the lab's
//! Kamailio; the analysis must agree with what SIPp itself saw.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use captures::{Cause, OutcomeHint};

/// tcpdump writing `path`; stopped with SIGTERM (bounded) on drop.
pub struct Tcpdump(Child);

impl Tcpdump {
    pub fn start(path: &std::path::Path, filter: &str) -> Tcpdump {
        let mut child = Command::new("tcpdump")
            // Immediate mode: otherwise libpcap holds packets up to its 1 s buffer timeout and
            // a SIGTERM loses them.
            .args([
                "-i",
                "lo",
                "-n",
                "-U",
                "--immediate-mode",
                "-Z",
                "root",
                "-w",
            ])
            .arg(path)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (apt-get install tcpdump)");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("tcpdump did not start listening within 5 s");
        Tcpdump(child)
    }
}

impl Drop for Tcpdump {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn capture_recorded_from_the_lab_agrees_with_sipp() {
    let lab = testlab::Lab::start().expect("lab");
    let alice = lab.account("alice").expect("alice").clone();
    let bob = lab.account("bob").expect("bob").clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let pcap = dir.path().join("live.pcap");
    let outcomes = {
        let _dump = Tcpdump::start(&pcap, &format!("udp port {}", lab.sip_port()));
        let phone = lab.sipp_phone().expect("phone");
        let mut o = vec![
            (
                "alice wrong password",
                lab.sipp_register("alice", "not-the-password")
                    .expect("sipp"),
            ),
            (
                "alice registers",
                lab.sipp_register("alice", &alice.password).expect("sipp"),
            ),
            (
                "bob's phone",
                lab.sipp_register_contact("bob", &bob.password, &phone.contact("bob"))
                    .expect("sipp"),
            ),
        ];
        o.push((
            "alice calls bob",
            lab.sipp_call("alice", &alice.password, "bob")
                .expect("sipp"),
        ));
        o.push((
            "alice calls nobody",
            lab.sipp_call("alice", &alice.password, "nosuchuser")
                .expect("sipp"),
        ));
        o.push((
            "alice, wrong password, calls echo",
            lab.sipp_call("alice", "wrong", lab.echo_number())
                .expect("sipp"),
        ));
        std::thread::sleep(Duration::from_millis(300));
        o
    };
    let a = captures::analyze_path(&pcap, &captures::AnalyzeOptions::default()).expect("analyze");
    assert!(a.warnings.is_empty(), "{:?}", a.warnings);
    for (what, o) in &outcomes {
        let id = o
            .call_id
            .as_deref()
            .unwrap_or_else(|| panic!("{what}: no Call-ID"));
        let ours = a
            .calls
            .iter()
            .find(|c| c.call_id == id)
            .map(|c| c.final_status)
            .or_else(|| {
                a.registrations
                    .iter()
                    .find(|r| r.call_id == id)
                    .map(|r| r.final_status)
            })
            .unwrap_or_else(|| {
                panic!(
                    "{what}: Call-ID {id} not in the capture: {}",
                    captures::summary_table(&a)
                )
            });
        assert_eq!(ours, o.final_status, "{what}");
    }
    let reg = a
        .registrations
        .iter()
        .find(|r| Some(&r.call_id) == outcomes[0].1.call_id.as_ref())
        .expect("registration");
    assert_eq!(reg.causes[0].cause, Cause::AuthenticationRejected);
    let answered = a
        .calls
        .iter()
        .find(|c| Some(&c.call_id) == outcomes[3].1.call_id.as_ref())
        .expect("call to bob");
    assert!(answered.causes.is_empty() && answered.setup_time_ms.is_some());
    assert_eq!(
        captures::outcome_hint(&a),
        Some(OutcomeHint::AuthenticationFailure)
    );
    let alice_only = captures::analyze_path(
        &pcap,
        &captures::AnalyzeOptions {
            user: Some("bob".into()),
            progress: None,
            ..Default::default()
        },
    )
    .expect("analyze");
    assert!(
        alice_only
            .calls
            .iter()
            .all(|c| c.to_user == "bob" || c.from_user == "bob")
    );
}
