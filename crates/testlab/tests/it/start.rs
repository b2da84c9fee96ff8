//! Starting and stopping labs: readiness, lab.env, side-by-side labs, refusals.

use std::net::UdpSocket;
use std::process::Command;
use std::time::{Duration, Instant};

use testlab::Lab;

use crate::{data_lines, dispatcher_flags, env, sipsak_options, tls_verify, wait_until};

#[test]
fn a_started_lab_answers_on_every_interface_and_describes_itself() {
    let t0 = Instant::now();
    let lab = Lab::start().expect("lab starts");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(5), "start took {took:?}");

    for key in data_lines("env_keys.txt") {
        assert!(!env(&lab, &key).is_empty(), "lab.env lacks {key}");
    }
    assert_eq!(lab.domain(), "127.0.0.1");
    assert_eq!(lab.echo_number(), "600");
    assert_eq!(lab.trunk_prefix(), "9");
    assert!(lab.db_path().is_file());
    assert!(lab.ca_cert().is_file());
    let alice = lab.account("alice").expect("alice is seeded");
    assert_eq!(alice.numbers, ["1001", "391001"]);
    for user in ["bob", "carol", "dave", "probe1", "probe2"] {
        assert!(lab.account(user).is_some(), "{user} is seeded");
    }
    assert!(lab.account("mallory").is_none());

    assert!(sipsak_options(&lab, "udp"), "OPTIONS over UDP");
    assert!(sipsak_options(&lab, "tcp"), "OPTIONS over TCP");
    assert_eq!(tls_verify(&lab), "0 (ok)");
    let uptime = lab
        .rpc("core.uptime", serde_json::json!([]))
        .expect("core.uptime");
    assert!(uptime["uptime"].is_u64(), "{uptime}");
    let err = lab
        .rpc("no.such.method", serde_json::json!([]))
        .unwrap_err();
    assert!(err.to_string().contains("Method Not Found"), "{err}");
    assert_eq!(
        lab.sql("SELECT username FROM subscriber ORDER BY username")
            .unwrap(),
        "alice\nbob\ncarol\ndave\nprobe1\nprobe2"
    );
    // Nothing of the lab listens beyond loopback.
    let cfg = std::fs::read_to_string(env(&lab, "LAB_KAMAILIO_CFG")).unwrap();
    for line in cfg.lines().filter(|l| l.starts_with("listen=")) {
        assert!(line.contains(":127.0.0.1:"), "{line}");
    }
    assert!(!format!("{lab:?}").contains(&alice.password));
}

#[test]
fn dispatcher_probing_marks_the_live_gateway_active_and_the_dead_one_inactive() {
    let lab = Lab::start().expect("lab starts");
    let gw1 = env(&lab, "LAB_GW_URI").to_string();
    let gw2 = env(&lab, "LAB_GW2_URI").to_string();
    let echo = env(&lab, "LAB_ECHO_URI").to_string();
    let settled = wait_until(Duration::from_secs(10), || {
        let f = dispatcher_flags(&lab);
        f.get(&gw1).map(String::as_str) == Some("AP")
            && f.get(&gw2).map(String::as_str) == Some("IP")
            && f.get(&echo).map(String::as_str) == Some("AP")
    });
    assert!(settled, "dispatcher flags: {:?}", dispatcher_flags(&lab));
}

#[test]
fn two_labs_run_side_by_side_without_sharing_state() {
    let a = Lab::start().expect("lab a starts");
    let b = Lab::start().expect("lab b starts");
    assert_ne!(a.sip_port(), b.sip_port());
    assert_ne!(a.run_dir(), b.run_dir());
    assert!(sipsak_options(&a, "udp") && sipsak_options(&b, "udp"));
    let alice = a.account("alice").unwrap().clone();
    let reg = a.sipp_register(&alice.user, &alice.password).unwrap();
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);
    assert!(
        a.rpc("ul.lookup", serde_json::json!(["location", "alice"]))
            .is_ok()
    );
    assert!(
        b.rpc("ul.lookup", serde_json::json!(["location", "alice"]))
            .is_err()
    );

    // Dropping a lab stops its processes and frees its ports.
    let pid: u32 = std::fs::read_to_string(a.run_dir().join("kamailio.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let port = a.sip_port();
    drop(a);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "kamailio {pid} still runs"
    );
    assert!(
        UdpSocket::bind(("127.0.0.1", port)).is_ok(),
        "port {port} still taken"
    );
    assert!(sipsak_options(&b, "udp"), "lab b survives lab a");
}

fn start_script(envs: &[(&str, String)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(Lab::lab_dir().unwrap().join("start.sh"))
        .arg(dir.path());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    // A start that unexpectedly worked must not leak processes.
    if out.status.success() {
        let _ = Command::new("bash")
            .arg(Lab::lab_dir().unwrap().join("stop.sh"))
            .arg(dir.path())
            .status();
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn start_refuses_non_loopback_addresses_and_busy_ports_with_a_clear_message() {
    for ip in [
        "0.0.0.0",
        "10.1.2.3",
        "192.168.1.1",
        "::1",
        "127.0.0.256",
        "localhost",
    ] {
        let (ok, err) = start_script(&[("LAB_IP", ip.to_string())]);
        assert!(!ok, "LAB_IP={ip} accepted");
        assert!(
            err.contains("refused") && err.contains("loopback"),
            "LAB_IP={ip}: {err}"
        );
    }
    let holder = UdpSocket::bind(("127.0.0.1", 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    let (ok, err) = start_script(&[("LAB_SIP_PORT", port.to_string())]);
    assert!(!ok);
    assert!(
        err.contains("ports already in use") && err.contains(&port.to_string()),
        "{err}"
    );
    let (ok, err) = start_script(&[("LAB_RPC_PORT", "70000".to_string())]);
    assert!(!ok && err.contains("LAB_RPC_PORT"), "{err}");
}
