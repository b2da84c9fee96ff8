//! Labs built differently (lab/README.md, "Variants"): each starts, registers, answers an echo call, and its database has the variant's shape.

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use testlab::{Lab, LabOptions, TraceMode, Variant};

use crate::{env, wait_until};

fn start(variant: Variant) -> Lab {
    Lab::start_with(LabOptions {
        variant,
        ..LabOptions::default()
    })
    .expect("lab starts")
}

fn named(name: &str) -> Lab {
    start(Variant::named(name).expect("known variant"))
}

/// alice registers (200) and calls the echo number (answered); returns the call's Call-ID.
fn register_and_call_echo(lab: &Lab) -> String {
    let alice = lab.account("alice").expect("alice").clone();
    let reg = lab.sipp_register(&alice.user, &alice.password).unwrap();
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);
    let call = lab
        .sipp_call(&alice.user, &alice.password, lab.echo_number())
        .unwrap();
    assert!(call.success, "echo call: {}", call.trace);
    assert!(call.statuses.contains(&200), "{:?}", call.statuses);
    call.call_id.expect("the call has a Call-ID")
}

/// The dialtone configuration scripts/lab-config.sh writes for this lab.
fn lab_config(lab: &Lab) -> String {
    let script = Lab::lab_dir().unwrap().join("../scripts/lab-config.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(lab.run_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn has_table(lab: &Lab, table: &str) -> bool {
    lab.tables().unwrap().iter().any(|t| t == table)
}

#[test]
fn every_variant_value_is_recorded_in_lab_env() {
    let lab = named("no-trace");
    for (key, value) in [
        ("LAB_DB_ENGINE", "sqlite"),
        ("LAB_ACC", "extras"),
        ("LAB_TRACE", "none"),
        ("LAB_USRLOC", "1"),
        ("LAB_RPC", "on"),
        ("LAB_AUTH_STORE", "plain"),
        ("LAB_TRUNKS", "dispatcher"),
        ("LAB_DOMAINS", "1"),
    ] {
        assert_eq!(env(&lab, key), value, "{key}");
    }
    for key in ["LAB_HEP_ADDR", "LAB_DOMAIN2"] {
        assert_eq!(env(&lab, key), "", "{key} is recorded empty when unused");
        assert!(lab.env().contains_key(key), "{key}");
    }
    assert_eq!(lab.variant(), &Variant::named("no-trace").unwrap());
    assert!(lab.db_url().starts_with("sqlite://"), "{}", lab.db_url());
    register_and_call_echo(&lab);
    assert!(!has_table(&lab, "sip_trace"), "{:?}", lab.tables());
    assert!(has_table(&lab, "acc_cdrs"));
}

#[test]
fn stock_acc_has_only_the_stock_columns_and_still_records_the_call() {
    let lab = named("stock-acc");
    let call_id = register_and_call_echo(&lab);
    assert_eq!(
        lab.columns("acc").unwrap(),
        [
            "id",
            "method",
            "from_tag",
            "to_tag",
            "callid",
            "sip_code",
            "sip_reason",
            "time"
        ]
    );
    for t in ["acc_cdrs", "missed_calls"] {
        assert!(!has_table(&lab, t), "{t} exists: {:?}", lab.tables());
    }
    let rows = lab
        .sql(&format!(
            "SELECT method, sip_code FROM acc WHERE callid='{call_id}' ORDER BY id"
        ))
        .unwrap();
    assert_eq!(rows, "INVITE|200\nBYE|200");
}

#[test]
fn common_acc_has_the_stock_configs_extra_columns_without_route_or_cdrs() {
    let lab = named("common-acc");
    let call_id = register_and_call_echo(&lab);
    let cols = lab.columns("acc").unwrap();
    for c in [
        "src_user",
        "src_domain",
        "src_ip",
        "dst_ouser",
        "dst_user",
        "dst_domain",
    ] {
        assert!(cols.iter().any(|x| x == c), "acc lacks {c}: {cols:?}");
    }
    assert!(!cols.iter().any(|x| x == "route"), "{cols:?}");
    assert!(!has_table(&lab, "acc_cdrs"));
    assert!(has_table(&lab, "missed_calls"));
    let row = lab
        .sql(&format!(
            "SELECT src_user, dst_ouser, src_ip FROM acc WHERE callid='{call_id}' AND method='INVITE'"
        ))
        .unwrap();
    assert_eq!(row, "alice|600|127.0.0.1");
}

#[test]
fn renamed_acc_fills_columns_nobody_could_guess_and_the_config_names_them() {
    let lab = named("renamed-acc");
    let call_id = register_and_call_echo(&lab);
    let cols = lab.columns("acc").unwrap();
    for c in ["orig_user", "term_user", "digits"] {
        assert!(cols.iter().any(|x| x == c), "acc lacks {c}: {cols:?}");
    }
    assert!(
        !cols.iter().any(|x| x == "src_user" || x == "dst_user"),
        "{cols:?}"
    );
    assert!(!has_table(&lab, "acc_cdrs"));
    let row = lab
        .sql(&format!(
            "SELECT orig_user, digits FROM acc WHERE callid='{call_id}' AND method='INVITE'"
        ))
        .unwrap();
    assert_eq!(row, "alice|600");
    // A number goes through the alias lookup: term_user is the account (bob is not registered: 480).
    let alice = lab.account("alice").unwrap();
    let call = lab.sipp_call(&alice.user, &alice.password, "1002").unwrap();
    assert_eq!(call.final_status, Some(480), "{}", call.trace);
    // acc writes the failed transaction's row as the transaction ends: poll, bounded.
    let sql = format!(
        "SELECT orig_user, term_user, digits, sip_code FROM acc WHERE callid='{}'",
        call.call_id.unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut row = lab.sql(&sql).unwrap();
    while row.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        row = lab.sql(&sql).unwrap();
    }
    assert_eq!(row, "alice|bob|1002|480");
    let cfg = lab_config(&lab);
    assert!(
        cfg.contains("[management.columns]\ncaller = \"orig_user\"\ncallee = \"term_user\"\ndialled = \"digits\""),
        "{cfg}"
    );
}

#[test]
fn mariadb_lab_keeps_everything_in_its_own_database_and_drops_it_on_stop() {
    let lab = named("mariadb");
    assert_eq!(env(&lab, "LAB_DB_ENGINE"), "mysql");
    assert!(
        lab.db_url().starts_with("mysql://lab_"),
        "{:?}",
        env(&lab, "LAB_DB")
    );
    assert!(lab.db_url().contains("@127.0.0.1:"));
    let call_id = register_and_call_echo(&lab);
    assert_eq!(
        lab.sql("SELECT username FROM subscriber ORDER BY username")
            .unwrap(),
        "alice\nbob\ncarol\ndave\nprobe1\nprobe2"
    );
    assert_eq!(
        lab.sql("SELECT count(*) FROM location WHERE username='alice'")
            .unwrap(),
        "1"
    );
    let rows = lab
        .sql(&format!(
            "SELECT method, sip_code, src_user, dst_ouser, route FROM acc WHERE callid='{call_id}' ORDER BY id"
        ))
        .unwrap();
    assert_eq!(rows, "INVITE|200|alice|600|echo\nBYE|200|alice|600|echo");
    assert!(
        wait_until(Duration::from_secs(3), || lab
            .sql(&format!(
                "SELECT count(*) FROM acc_cdrs WHERE callid='{call_id}'"
            ))
            .unwrap()
            == "1"),
        "no CDR"
    );
    let traced = lab
        .sql("SELECT count(*) FROM sip_trace WHERE traced_user='alice' AND method='REGISTER'")
        .unwrap();
    assert!(traced.parse::<u32>().unwrap() >= 2, "{traced}");
    assert!(lab_config(&lab).contains(&format!("database_url = \"{}\"", lab.db_url())));
    // fault.sh works on MariaDB too.
    lab.fault("remove-account", &["bob"]).unwrap();
    assert_eq!(lab.sql("SELECT count(*) FROM subscriber").unwrap(), "5");
    assert_eq!(
        lab.sql("SELECT count(*) FROM dbaliases WHERE username='bob'")
            .unwrap(),
        "0"
    );
    lab.fault("restore-account", &["bob"]).unwrap();
    let bob = lab.account("bob").unwrap();
    let reg = lab.sipp_register(&bob.user, &bob.password).unwrap();
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);

    // stop.sh drops the database and its user.
    let name = env(&lab, "LAB_DB").to_string();
    lab.stop().unwrap();
    let admin = lab.run_dir().join("mysql-admin.cnf");
    let out = Command::new("mysql")
        .arg(format!("--defaults-file={}", admin.display()))
        .args(["-N", "-B", "-e"])
        .arg(format!(
            "SELECT (SELECT count(*) FROM information_schema.schemata WHERE schema_name='{name}'), \
             (SELECT count(*) FROM mysql.user WHERE user='{name}')"
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0\t0");
}

/// Reads HEP packets on `sock` (bounded: 5 s, 200 packets) until `done` holds for the payloads so far.
fn hep_packets(sock: &UdpSocket, mut done: impl FnMut(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut packets = Vec::new();
    let mut buf = [0u8; 65_536];
    while Instant::now() < deadline && packets.len() < 200 && !done(&packets) {
        if let Ok(n) = sock.recv(&mut buf) {
            packets.push(buf[..n].to_vec());
        }
    }
    packets
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn hep_only_mirrors_registers_and_their_stateless_replies_and_keeps_no_sip_trace_table() {
    let capture = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut variant = Variant::named("hep-only").unwrap();
    variant.trace = TraceMode::Hep(capture.local_addr().unwrap());
    let lab = start(variant);
    assert_eq!(env(&lab, "LAB_TRACE"), "hep");
    assert_eq!(
        env(&lab, "LAB_HEP_ADDR"),
        capture.local_addr().unwrap().to_string()
    );
    let alice = lab.account("alice").unwrap().clone();
    let reg = lab.sipp_register(&alice.user, &alice.password).unwrap();
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);
    let wanted: [&[u8]; 3] = [b"REGISTER sip:", b"SIP/2.0 401 ", b"SIP/2.0 200 "];
    let packets = hep_packets(&capture, |p| {
        wanted.iter().all(|w| p.iter().any(|pk| contains(pk, w)))
    });
    assert!(!packets.is_empty(), "no HEP packet arrived");
    for p in &packets {
        assert_eq!(&p[..4], b"HEP3", "not HEPv3: {:?}", &p[..p.len().min(8)]);
    }
    for w in wanted {
        assert!(
            packets.iter().any(|p| contains(p, w)),
            "no HEP packet carries {:?} ({} packets: {:?})",
            String::from_utf8_lossy(w),
            packets.len(),
            packets
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect::<Vec<_>>()
        );
    }
    // A wrong password: the stateless 403 is mirrored too.
    let bad = lab.sipp_register(&alice.user, "wrong-password").unwrap();
    assert_eq!(bad.final_status, Some(403), "{}", bad.trace);
    let packets = hep_packets(&capture, |p| {
        p.iter().any(|pk| contains(pk, b"SIP/2.0 403 "))
    });
    assert!(packets.iter().any(|p| contains(p, b"SIP/2.0 403 ")));
    let call = lab
        .sipp_call(&alice.user, &alice.password, lab.echo_number())
        .unwrap();
    assert!(call.success, "{}", call.trace);
    let packets = hep_packets(&capture, |p| {
        p.iter().any(|pk| contains(pk, b"INVITE sip:"))
    });
    assert!(packets.iter().any(|p| contains(p, b"INVITE sip:")));
    assert!(!has_table(&lab, "sip_trace"), "{:?}", lab.tables());
}

#[test]
fn usrloc_memory_keeps_registrations_out_of_the_location_table() {
    let lab = named("usrloc-memory");
    register_and_call_echo(&lab);
    let found = lab
        .rpc("ul.lookup", serde_json::json!(["location", "alice"]))
        .expect("ul.lookup finds alice");
    assert!(
        found["Contacts"].as_array().is_some_and(|c| !c.is_empty()),
        "{found}"
    );
    assert!(has_table(&lab, "location"));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(lab.sql("SELECT count(*) FROM location").unwrap(), "0");
    assert!(lab_config(&lab).contains("\nusrloc_db_mode = 0\n"));
}

#[test]
fn usrloc_writeback_writes_the_location_row_only_after_the_timer() {
    let lab = named("usrloc-writeback");
    let alice = lab.account("alice").unwrap().clone();
    let reg = lab.sipp_register(&alice.user, &alice.password).unwrap();
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);
    let registered = Instant::now();
    assert!(
        lab.rpc("ul.lookup", serde_json::json!(["location", "alice"]))
            .is_ok()
    );
    // The flush runs every LAB_USRLOC_TIMER (5 s): right after the 200 the table lags.
    assert_eq!(
        lab.sql("SELECT count(*) FROM location WHERE username='alice'")
            .unwrap(),
        "0"
    );
    let flushed = wait_until(Duration::from_secs(8), || {
        lab.sql("SELECT count(*) FROM location WHERE username='alice'")
            .unwrap()
            == "1"
    });
    assert!(flushed, "no location row within 8 s");
    assert!(registered.elapsed() > Duration::from_millis(100));
    assert!(!lab.kamailio_log().contains("database is locked"));
    assert!(lab_config(&lab).contains("\nusrloc_db_mode = 2\n"));
}

#[test]
fn rpc_down_serves_sip_but_nothing_on_the_rpc_port() {
    let lab = named("rpc-down");
    assert_eq!(env(&lab, "LAB_RPC"), "off");
    register_and_call_echo(&lab);
    let port: u16 = env(&lab, "LAB_RPC_PORT").parse().unwrap();
    let addr = SocketAddr::from((lab.ip(), port));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
    let t0 = Instant::now();
    let err = lab.rpc("core.uptime", serde_json::json!([])).unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert!(err.to_string().contains("LAB_RPC=off"), "{err}");
    let err = lab.fault("stop-rpc", &[]).unwrap_err().to_string();
    assert!(err.contains("LAB_RPC=on"), "{err}");
    assert!(!lab.kamailio_log().contains("xhttp"));
    // dialtone gets the URL anyway and must notice it is down.
    assert!(lab_config(&lab).contains(&format!("rpc_url = \"{}\"", lab.rpc_url())));
}

#[test]
fn ha1_only_stores_no_plaintext_and_still_authenticates() {
    let lab = named("ha1-only");
    assert_eq!(
        lab.sql("SELECT count(*) FROM subscriber WHERE password <> ''")
            .unwrap(),
        "0"
    );
    assert_eq!(
        lab.sql("SELECT count(*) FROM subscriber WHERE length(ha1) = 32 AND length(ha1b) = 32")
            .unwrap(),
        "6"
    );
    register_and_call_echo(&lab);
    let bob = lab.account("bob").unwrap();
    let bad = lab.sipp_register(&bob.user, "not-bobs-password").unwrap();
    assert_eq!(bad.final_status, Some(403), "{}", bad.trace);
}

#[test]
fn drouting_routes_the_trunk_through_dr_rules_with_failover() {
    let lab = named("drouting");
    register_and_call_echo(&lab);
    let gw = env(&lab, "LAB_GW_PORT").to_string();
    let gw2 = env(&lab, "LAB_GW2_PORT").to_string();
    assert_eq!(
        lab.sql("SELECT gwid, address FROM dr_gateways ORDER BY gwid")
            .unwrap(),
        format!("1|127.0.0.1:{gw}\n2|127.0.0.1:{gw2}")
    );
    assert_eq!(
        lab.sql("SELECT prefix, gwlist FROM dr_rules").unwrap(),
        "9|1,2"
    );
    assert_eq!(
        lab.sql("SELECT count(*) FROM dispatcher WHERE setid = 1")
            .unwrap(),
        "0"
    );
    let alice = lab.account("alice").unwrap().clone();
    let call = lab
        .sipp_call(&alice.user, &alice.password, "95551234")
        .unwrap();
    assert!(call.success, "{}", call.trace);
    let row = lab
        .sql(&format!(
            "SELECT sip_code, dst_user, route FROM acc WHERE callid='{}' AND method='INVITE'",
            call.call_id.unwrap()
        ))
        .unwrap();
    assert_eq!(row, "200|5551234|trunk");
    assert!(lab.kamailio_log().contains("(drouting)"));

    // gw1 dead: the call times out on gw1, fails over to gw2 (dead too), then 503.
    lab.fault("kill-gateway", &[]).unwrap();
    let t0 = Instant::now();
    let call = lab
        .sipp_call(&alice.user, &alice.password, "95551234")
        .unwrap();
    assert_eq!(call.final_status, Some(503), "{}", call.trace);
    assert!(t0.elapsed() >= Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(lab.kamailio_log().contains("trunk failover to 127.0.0.1:"));
}

#[test]
fn usrloc_writeback_on_mariadb_lags_then_catches_up() {
    let mut variant = Variant::named("mariadb").unwrap();
    variant.usrloc_db_mode = 2;
    let lab = start(variant);
    let count = || {
        lab.sql("SELECT count(*) FROM location WHERE username='carol'")
            .unwrap()
    };
    let carol = lab.account("carol").unwrap().clone();
    let reg = lab.sipp_register(&carol.user, &carol.password).unwrap();
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);
    assert_eq!(count(), "0", "written before the timer");
    assert!(
        wait_until(Duration::from_secs(8), || count() == "1"),
        "no row within 8 s"
    );
    // An unregistration is flushed the same way.
    let out = lab.sipp_unregister(&carol.user, &carol.password).unwrap();
    assert_eq!(out.final_status, Some(200), "{}", out.trace);
    assert!(
        wait_until(Duration::from_secs(8), || count() == "0"),
        "row still there after 8 s"
    );
}

#[test]
fn two_domains_keep_accounts_and_registrations_apart() {
    let mut variant = Variant::named("default").unwrap();
    variant.domains = 2;
    let lab = start(variant);
    assert_eq!(env(&lab, "LAB_DOMAINS"), "2");
    let second = env(&lab, "LAB_DOMAIN2").to_string();
    assert_eq!(lab.account_domain("erin"), second);
    assert_eq!(lab.account_domain("alice"), lab.domain());
    assert_eq!(
        lab.sql("SELECT domain FROM domain ORDER BY id").unwrap(),
        format!("{}\n{second}", lab.domain())
    );
    register_and_call_echo(&lab);
    let erin = lab.account("erin").expect("erin is seeded").clone();
    let reg = lab.sipp_register(&erin.user, &erin.password).unwrap();
    assert_eq!(reg.final_status, Some(200), "{}", reg.trace);
    let rows = lab
        .sql("SELECT username, domain FROM location ORDER BY username")
        .unwrap();
    assert_eq!(rows, format!("alice|{}\nerin|{second}", lab.domain()));
    // usrloc keys registrations by user@domain now.
    assert!(
        lab.rpc(
            "ul.lookup",
            serde_json::json!(["location", format!("erin@{second}")])
        )
        .is_ok()
    );
    assert!(
        lab.rpc("ul.lookup", serde_json::json!(["location", "erin"]))
            .is_err()
    );
    let call = lab
        .sipp_call(&erin.user, &erin.password, lab.echo_number())
        .unwrap();
    assert!(call.success, "{}", call.trace);
    let row = lab
        .sql(&format!(
            "SELECT src_user, src_domain, sip_code FROM acc WHERE callid='{}' AND method='INVITE'",
            call.call_id.unwrap()
        ))
        .unwrap();
    assert_eq!(row, format!("erin|{second}|200"));
}
