//! Every fault of lab/fault.sh does what it says, and its restore action undoes it.

use std::net::TcpStream;
use std::time::Duration;

use testlab::Lab;

use crate::{dispatcher_flags, env, sipsak_options, tls_verify};

fn register_status(lab: &Lab, user: &str) -> Option<u16> {
    let acc = lab.account(user).unwrap();
    lab.sipp_register(&acc.user, &acc.password)
        .unwrap()
        .final_status
}

fn call_status(lab: &Lab, caller: &str, target: &str) -> Option<u16> {
    let acc = lab.account(caller).unwrap();
    lab.sipp_call(&acc.user, &acc.password, target)
        .unwrap()
        .final_status
}

fn connects(lab: &Lab, port: u16) -> bool {
    TcpStream::connect_timeout(&(lab.ip(), port).into(), Duration::from_secs(2)).is_ok()
}

#[test]
fn account_and_number_faults() {
    let lab = Lab::start().unwrap();
    assert_eq!(register_status(&lab, "alice"), Some(200));

    lab.fault("remove-account", &["alice"]).unwrap();
    assert_eq!(register_status(&lab, "alice"), Some(404));
    assert_eq!(call_status(&lab, "bob", "1001"), Some(404));
    assert!(
        lab.rpc("ul.lookup", serde_json::json!(["location", "alice"]))
            .is_err()
    );
    assert!(
        lab.fault("remove-account", &["alice"]).is_err(),
        "removing twice is an error"
    );

    lab.fault("restore-account", &["alice"]).unwrap();
    assert_eq!(register_status(&lab, "alice"), Some(200));

    lab.fault("duplicate-number", &["bob", "1001"]).unwrap();
    let owners = lab
        .sql("SELECT group_concat(username) FROM (SELECT username FROM dbaliases WHERE alias_username='1001' ORDER BY id)")
        .unwrap();
    assert_eq!(owners, "alice,bob");
    assert!(
        lab.fault("duplicate-number", &["bob", "7777"]).is_err(),
        "unassigned number"
    );
    lab.fault("remove-number", &["1001", "bob"]).unwrap();
    assert_eq!(
        lab.sql("SELECT group_concat(username) FROM dbaliases WHERE alias_username='1001'")
            .unwrap(),
        "alice"
    );

    let err = lab.fault("no-such-fault", &[]).unwrap_err();
    assert!(err.to_string().contains("usage"), "{err}");
    assert!(
        lab.fault("remove-account", &["x'; DROP TABLE subscriber; --"])
            .is_err()
    );
    assert_eq!(lab.sql("SELECT count(*) FROM subscriber").unwrap(), "6");
}

#[test]
fn echo_and_gateway_faults() {
    let lab = Lab::start().unwrap();
    assert_eq!(call_status(&lab, "alice", "600"), Some(200));
    lab.fault("stop-echo", &[]).unwrap();
    assert!(dispatcher_flags(&lab)[env(&lab, "LAB_ECHO_URI")].starts_with('I'));
    assert_eq!(call_status(&lab, "alice", "600"), Some(503));
    lab.fault("start-echo", &[]).unwrap();
    assert_eq!(call_status(&lab, "alice", "600"), Some(200));

    assert_eq!(call_status(&lab, "alice", "95551234"), Some(200));
    lab.fault("kill-gateway", &[]).unwrap();
    assert!(dispatcher_flags(&lab)[env(&lab, "LAB_GW_URI")].starts_with('I'));
    assert_eq!(call_status(&lab, "alice", "95551234"), Some(503));
    assert!(
        lab.kamailio_log()
            .contains("LAB: no trunk gateway available for 5551234")
    );
    lab.fault("start-gateway", &[]).unwrap();
    assert_eq!(call_status(&lab, "alice", "95551234"), Some(200));
}

#[test]
fn tls_certificate_faults() {
    let lab = Lab::start().unwrap();
    assert_eq!(tls_verify(&lab), "0 (ok)");
    lab.fault("tls-expired", &[]).unwrap();
    assert_eq!(tls_verify(&lab), "10 (certificate has expired)");
    lab.fault("tls-untrusted", &[]).unwrap();
    let v = tls_verify(&lab);
    assert!(v.starts_with("21 ") || v.starts_with("20 "), "{v}");
    lab.fault("tls-restore", &[]).unwrap();
    assert_eq!(tls_verify(&lab), "0 (ok)");
}

#[test]
fn transport_and_rpc_faults_keep_registrations() {
    let lab = Lab::start().unwrap();
    assert_eq!(register_status(&lab, "alice"), Some(200));

    lab.fault("block-transport", &["udp"]).unwrap();
    assert!(!sipsak_options(&lab, "udp"));
    assert!(sipsak_options(&lab, "tcp"));
    lab.fault("unblock-transport", &["udp"]).unwrap();
    assert!(sipsak_options(&lab, "udp"));

    lab.fault("block-transport", &["tcp"]).unwrap();
    assert!(!connects(&lab, lab.sip_port()));
    assert!(sipsak_options(&lab, "udp"));
    assert!(connects(&lab, lab.tls_port()));
    lab.fault("unblock-transport", &["tcp"]).unwrap();
    assert!(sipsak_options(&lab, "tcp"));

    lab.fault("block-transport", &["tls"]).unwrap();
    assert!(!connects(&lab, lab.tls_port()));
    assert!(sipsak_options(&lab, "udp"));
    assert!(lab.fault("block-transport", &["sctp"]).is_err());
    lab.fault("unblock-transport", &["tls"]).unwrap();
    assert_eq!(tls_verify(&lab), "0 (ok)");

    lab.fault("stop-rpc", &[]).unwrap();
    assert!(lab.rpc("core.uptime", serde_json::json!([])).is_err());
    assert!(sipsak_options(&lab, "udp"));
    lab.fault("start-rpc", &[]).unwrap();
    // usrloc reloads the location table (write-through) after each restart.
    let lookup = lab
        .rpc("ul.lookup", serde_json::json!(["location", "alice"]))
        .unwrap();
    assert!(lookup.to_string().contains("sip:alice@"), "{lookup}");
}
