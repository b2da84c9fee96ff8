//! `dialtone diagnose` on servers built the ways operators build them (`deployments.md`): the
//! lab in each variant (stock `acc`, other extra names, MariaDB, trace over HEP only, no trace,
//! usrloc in memory or write-back, no management interface, ha1-only accounts, drouting trunks).
//! Every scenario reaches the outcome it reaches on the default lab, with no agent answer beyond
//! the gate, wherever the evidence exists in some form; where a variant removes the only evidence
//! for a step, the report says exactly what is missing and why.

use super::support::{Cli, bin, repo_root};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testlab::{Lab, LabOptions, TraceMode, Variant};

struct Stand {
    lab: Lab,
    cli: Cli,
    config: PathBuf,
    collector: Option<Child>,
}

impl Drop for Stand {
    fn drop(&mut self) {
        if let Some(c) = &mut self.collector {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts `dialtone collect` on a free loopback port; returns it with its address.
fn start_collector(cli: &Cli) -> (Child, std::net::SocketAddr, PathBuf) {
    let events = cli.dir.path().join("events.sqlite");
    let mut child = Command::new(bin())
        .args(["collect", "--hep", "127.0.0.1:0", "--events"])
        .arg(&events)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("dialtone collect");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(15))
        .expect("collect prints its address");
    // "dialtone collecting HEP on udp 127.0.0.1:PORT and tcp ... into ..."
    let addr = line
        .split_whitespace()
        .nth(5)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    (child, addr, events)
}

impl Stand {
    fn start(mut variant: Variant) -> Stand {
        let cli = Cli::sqlite();
        let mut collector = None;
        let mut events = None;
        if matches!(variant.trace, TraceMode::Hep(_)) {
            let (child, addr, path) = start_collector(&cli);
            variant.trace = TraceMode::Hep(addr);
            collector = Some(child);
            events = Some(path);
        }
        let lab = Lab::start_with(LabOptions {
            variant: variant.clone(),
            ..LabOptions::default()
        })
        .unwrap_or_else(|e| panic!("lab {variant:?} starts: {e}"));
        let out = Command::new(repo_root().join("scripts/lab-config.sh"))
            .arg(lab.run_dir())
            .output()
            .expect("lab-config.sh");
        assert!(out.status.success(), "lab-config.sh failed");
        let mut text = String::from_utf8(out.stdout).unwrap();
        if let Some(e) = &events {
            text = text.replacen(
                "[management]\n",
                &format!("[management]\nevents_db = \"{}\"\n", e.display()),
                1,
            );
        }
        let config = cli.dir.path().join("dialtone.toml");
        std::fs::write(&config, text).unwrap();
        Stand {
            lab,
            cli,
            config,
            collector,
        }
    }

    fn password(&self, user: &str) -> String {
        self.lab.account(user).unwrap().password.clone()
    }

    fn register(&self, user: &str) {
        // A loaded CI machine can make one SIPp REGISTER time out: one more try, bounded.
        let mut status = None;
        for _ in 0..2 {
            status = self
                .lab
                .sipp_register(user, &self.password(user))
                .expect("sipp register")
                .final_status;
            if status.is_some() {
                break;
            }
        }
        assert_eq!(status, Some(200), "REGISTER {user}");
    }

    fn call(&self, user: &str, target: &str) -> Option<u16> {
        let before = self.acc_rows();
        let status = self
            .lab
            .sipp_call(user, &self.password(user), target)
            .expect("sipp call")
            .final_status;
        // Kamailio writes a failed call's acc row after the reply has left (TM's reply-out
        // callback): on a loaded machine the diagnosis could look before it lands. Wait for it,
        // bounded, as an operator's report would come a moment later anyway.
        if let Some(before) = before {
            let deadline = Instant::now() + Duration::from_secs(3);
            while self.acc_rows().is_some_and(|n| n <= before) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        status
    }

    /// Rows in the lab's acc table (`None` when it has none).
    fn acc_rows(&self) -> Option<u64> {
        self.lab
            .sql("SELECT count(*) FROM acc")
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Lets the HEP collector commit what it received (it writes in batches).
    fn settle(&self) {
        if self.collector.is_some() {
            std::thread::sleep(Duration::from_millis(600));
        }
    }

    fn diagnose(&self, account: &str) -> Value {
        self.settle();
        let config = self.config.to_str().unwrap().to_string();
        let t0 = Instant::now();
        let r = self
            .cli
            .run(&["--json", "diagnose", account, "--config", &config]);
        assert_eq!(r.code, 0, "diagnose failed:\n{}\n{}", r.stdout, r.stderr);
        let v = r.json();
        // Each scenario within 5 s outside the echo media window.
        let outside = t0.elapsed().as_millis() as u64 - v["media_window_ms"].as_u64().unwrap_or(0);
        assert!(outside < 5000, "{outside} ms outside the media window");
        for a in self.lab.accounts() {
            assert!(
                !r.stdout.contains(&a.password),
                "{}'s password leaked",
                a.user
            );
        }
        v
    }
}

fn step<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["path"]
        .as_array()
        .and_then(|p| p.iter().find(|s| s["step"] == id))
        .unwrap_or_else(|| panic!("step {id} not on the path: {report:#}"))
}

/// The outcome, reached with no agent answer: every non-gate step automated.
fn reached(report: &Value, outcome: &str, label: &str) {
    assert_eq!(report["outcome"], outcome, "{label}: {report:#}");
    for s in report["path"].as_array().unwrap() {
        let id = s["step"].as_str().unwrap();
        if !id.starts_with("gate.") {
            assert_eq!(
                s["source"], "automated",
                "{label}: {id} not automated: {s:#}"
            );
        }
    }
}

/// The run stops at `step` and says exactly why.
fn asks(report: &Value, step: &str, why: &str, label: &str) {
    assert_eq!(report["needs_agent"]["step"], step, "{label}: {report:#}");
    let said = report["needs_agent"]["why"].as_str().unwrap_or_default();
    assert!(said.contains(why), "{label}: {said:?} lacks {why:?}");
}

/// The four scenarios whose evidence is calls, attempts, numbers and trunks, one after the
/// other on one lab: healthy, wrong password, shared number, trunk down.
fn scenarios(name: &str, variant: Variant) {
    let s = Stand::start(variant);
    let label = |what: &str| format!("{name}: {what}");

    // Healthy: registered, echo works, a call to another user was answered.
    s.register("alice");
    let phone = s.lab.sipp_phone().expect("phone");
    let r = s
        .lab
        .sipp_register_contact("bob", &s.password("bob"), &phone.contact("bob"))
        .expect("register bob");
    assert_eq!(r.final_status, Some(200));
    assert_eq!(s.call("alice", "600"), Some(200));
    assert_eq!(s.call("alice", "1002"), Some(200));
    let v = s.diagnose("alice");
    reached(&v, "temporary_network_problem", &label("healthy"));
    assert!(
        step(&v, "l1.call_other_user")["summary"]
            .as_str()
            .unwrap()
            .contains("1002"),
        "{v:#}"
    );

    // A wrong password: the 403 is in the trace (table or HEP window)…
    let r = s.lab.sipp_register("carol", "not-her-password").unwrap();
    assert_eq!(r.final_status, Some(403));
    let v = s.diagnose("carol");
    if name == "no-trace" {
        // …except on a server that traces nothing: the report says what is missing.
        asks(
            &v,
            "ci.register_seen",
            "REGISTER attempts unavailable: missing because REGISTER attempts are not recorded: there is no sip_trace table and no HEP event window is configured ([management] events_db)",
            &label("wrong password"),
        );
        assert_eq!(v["redirects"][0], "connection-issues");
    } else {
        reached(&v, "authentication_failure", &label("wrong password"));
        assert!(
            step(&v, "ci.register_result")["summary"]
                .as_str()
                .unwrap()
                .contains("403"),
            "{v:#}"
        );
    }

    // dave's number given to bob too; dave's call to an offline user fails (dave, whose calls
    // to others never succeeded, so that the walk gets past "can the user call others").
    s.register("dave");
    s.lab.fault("duplicate-number", &["bob", "1004"]).unwrap();
    assert_eq!(s.call("dave", "600"), Some(200));
    assert_eq!(s.call("dave", "carol"), Some(480));
    let v = s.diagnose("dave");
    reached(&v, "duplicate_virtual_number", &label("shared number"));
    assert!(
        step(&v, "l2.virtual_number_unique")["summary"]
            .as_str()
            .unwrap()
            .contains("bob")
    );

    // The trunk's gateway dies: dave's calls out fail at the trunk (the trunk step comes before
    // the number's, at the first level).
    s.lab.fault("kill-gateway", &[]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let status = s.call("dave", "95551234");
        if status.is_some_and(|c| c >= 500) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{name}: trunk call got {status:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let v = s.diagnose("dave");
    reached(&v, "trunk_problem", &label("trunk down"));
}

macro_rules! variant_tests {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                scenarios($name, Variant::named($name).expect($name));
            }
        )*
    };
}

variant_tests! {
    stock_acc_reaches_every_outcome => "stock-acc",
    common_acc_reaches_every_outcome => "common-acc",
    renamed_acc_reaches_every_outcome => "renamed-acc",
    mariadb_reaches_every_outcome => "mariadb",
    hep_only_reaches_every_outcome => "hep-only",
    no_trace_reaches_what_it_can_and_says_what_is_missing => "no-trace",
    usrloc_memory_reaches_every_outcome => "usrloc-memory",

    rpc_down_reaches_every_outcome => "rpc-down",
    ha1_only_reaches_every_outcome => "ha1-only",
    drouting_reaches_every_outcome => "drouting",
}

/// No management interface and usrloc in memory only: nothing says who is registered, and the
/// report says so; the probes still run.
#[test]
fn registrations_without_any_source_are_named_missing() {
    let mut v = Variant::named("rpc-down").unwrap();
    v.usrloc_db_mode = 0;
    let s = Stand::start(v);
    s.register("alice");
    let r = s.diagnose("alice");
    // Connection status has a default (unknown); the reconnection step is where it stops.
    asks(
        &r,
        "l1.force_reconnection",
        "registration lookup failed: missing because the management interface is unreachable (cannot connect to",
        "rpc down, usrloc memory",
    );
    let why = r["needs_agent"]["why"].as_str().unwrap();
    assert!(
        why.contains("and usrloc keeps registrations in memory only (db_mode 0), so no source says who is registered"),
        "{why}"
    );
    assert!(
        r["findings"].to_string().contains("management interface"),
        "{r:#}"
    );
}

/// Stock `acc` and no trace at all: nothing says whose calls the records are.
#[test]
fn calls_without_parties_are_named_missing() {
    let mut v = Variant::named("stock-acc").unwrap();
    v.trace = TraceMode::None;
    let s = Stand::start(v);
    s.register("alice");
    assert_eq!(s.call("alice", "600"), Some(200));
    let r = s.diagnose("alice");
    asks(
        &r,
        "l1.call_other_user",
        "call records unavailable: missing because acc has no column naming the caller or callee (it has callid, from_tag, id, method, sip_code, sip_reason, time, to_tag) and there is no SIP trace to tell whose calls they are (there is no sip_trace table, no HEP event window configured)",
        "stock acc, no trace",
    );
}

/// `dialtone doctor` on a server with stock `acc` and no trace: the steps that need whose calls
/// they are, or REGISTER attempts, are named with what is missing and the fix; the schema found
/// is printed.
#[test]
fn doctor_names_each_gap_with_its_fix() {
    let mut v = Variant::named("stock-acc").unwrap();
    v.trace = TraceMode::None;
    let s = Stand::start(v);
    let config = s.config.to_str().unwrap().to_string();
    let r = s.cli.run(&["--json", "doctor", "--config", &config]);
    assert_eq!(r.code, 10, "gaps are a finding: {}\n{}", r.stdout, r.stderr);
    let d = r.json();
    let src = |ev: &str| {
        d["capabilities"]["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["evidence"] == ev)
            .cloned()
            .unwrap_or_else(|| panic!("{ev} missing: {d:#}"))
    };
    assert_eq!(src("registrations")["available"], true);
    assert_eq!(src("calls")["available"], false);
    assert!(
        src("calls")["missing"]
            .as_str()
            .unwrap()
            .contains("acc has no caller or callee column"),
        "{d:#}"
    );
    assert!(
        src("calls")["fix"]
            .as_str()
            .unwrap()
            .contains("[management.columns]")
    );
    assert_eq!(src("attempts")["available"], false);
    let step = |id: &str| {
        d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["step"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(step("l1.connection_status")["ready"], true);
    assert_eq!(step("l1.call_other_user")["ready"], false);
    assert_eq!(step("ci.register_result")["ready"], false);
    let acc: Vec<&str> = d["capabilities"]["schema"]["acc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        acc.contains(&"callid") && !acc.contains(&"src_user"),
        "{acc:?}"
    );
    assert!(d["capabilities"]["schema"]["sip_trace"].is_null());

    // The text form says the same for a person.
    let text = s.cli.run(&["doctor", "--config", &config]).stdout;
    assert!(text.contains("GAP  l1.call_other_user"), "{text}");
    assert!(text.contains("Schema found:"), "{text}");
    assert!(
        text.contains("OK") || text.contains("ok   l1.connection_status"),
        "{text}"
    );
}

/// A server that traces over HEP only: `dialtone events` shows the account's timeline from the
/// window the collector keeps, REGISTERs and calls with their results.
#[test]
fn events_show_the_accounts_timeline_from_hep() {
    let s = Stand::start(Variant::named("hep-only").unwrap());
    s.register("alice");
    assert_eq!(s.call("alice", "600"), Some(200));
    let r = s.lab.sipp_register("carol", "not-her-password").unwrap();
    assert_eq!(r.final_status, Some(403));
    s.settle();
    let events = s.cli.dir.path().join("events.sqlite");
    let events = events.to_str().unwrap();
    let r = s.cli.run(&["events", "alice", "--events", events]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("REGISTER"), "{}", r.stdout);
    assert!(r.stdout.contains("200"), "{}", r.stdout);
    assert!(r.stdout.contains("600"), "the echo call: {}", r.stdout);
    let r = s
        .cli
        .run(&["events", "carol", "--events", events, "--json"]);
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("403"), "{}", r.stdout);
    assert!(!r.stdout.contains("not-her-password"));
}

/// Two SIP domains (use_domain=1): an account of the second domain is diagnosed as
/// user@domain.
#[test]
fn an_account_of_a_second_domain_is_diagnosed() {
    let mut v = Variant::default();
    v.domains = 2;
    let s = Stand::start(v);
    s.register("erin");
    s.register("alice");
    assert_eq!(s.call("erin", "600"), Some(200));
    let account = format!("erin@{}", s.lab.account_domain("erin"));
    let r = s.diagnose(&account);
    assert_eq!(
        step(&r, "l1.connection_status")["answer"],
        "connected",
        "{r:#}"
    );
    assert_eq!(step(&r, "l1.echo_call")["answer"], "works", "{r:#}");
    // alice of the first domain is still found with the configured domain.
    let r = s.diagnose("alice");
    assert_eq!(
        step(&r, "l1.connection_status")["answer"],
        "connected",
        "{r:#}"
    );
}

/// Stock `acc` and the trace over HEP only: the window tells whose calls the records are.
#[test]
fn stock_acc_with_hep_reaches_every_outcome() {
    let mut v = Variant::named("stock-acc").unwrap();
    v.trace = TraceMode::Hep(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    scenarios("stock-acc+hep", v);
}

/// usrloc writing back, on MariaDB: write-back's flush on SQLite has no busy timeout
/// (lab-notes pitfall 5), and operators who write back use a server database anyway.
#[test]
fn usrloc_writeback_reaches_every_outcome() {
    let mut v = Variant::named("usrloc-writeback").unwrap();
    v.db = testlab::DbEngine::Mysql;
    scenarios("usrloc-writeback", v);
}

/// usrloc writing back and no management interface: the registration comes from the
/// `location` table, and the report says it may lag.
#[test]
fn writeback_location_says_how_fresh_it_is() {
    let mut v = Variant::named("rpc-down").unwrap();
    v.usrloc_db_mode = 2;
    v.db = testlab::DbEngine::Mysql;
    let s = Stand::start(v);
    s.register("alice");
    // Write-back flushes on usrloc's timer (5 s in the lab): wait for the row, bounded.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !s
        .lab
        .sql("SELECT username FROM location")
        .unwrap_or_default()
        .contains("alice")
    {
        assert!(Instant::now() < deadline, "location never written back");
        std::thread::sleep(Duration::from_millis(300));
    }
    let r = s.diagnose("alice");
    let st = step(&r, "l1.connection_status");
    assert_eq!(st["answer"], "connected", "{r:#}");
    let origin = st["evidence"]["registrations"][0]["origin"]
        .as_str()
        .unwrap_or_default();
    assert!(
        origin.starts_with(
            "read from the location table because the management interface is unreachable"
        ) && origin.contains("writes it back on its timer (db_mode 2")
            && origin.contains("may lag"),
        "{origin}"
    );
}

/// The web app reads the same HEP window (`[management] events_db`): the step page and the API
/// show the incident account's recent REGISTERs with their results.
#[test]
fn the_step_page_shows_the_accounts_sip_events() {
    let s = Stand::start(Variant::named("hep-only").unwrap());
    let r = s.lab.sipp_register("carol", "not-her-password").unwrap();
    assert_eq!(r.final_status, Some(403));
    s.settle();
    let add = s.cli.run_with_stdin(
        &["user", "add", "ann", "--role", "l1"],
        "a long enough password\n",
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    let token = s
        .cli
        .run(&["user", "token", "ann"])
        .stdout
        .trim()
        .to_owned();
    let config = s.config.to_str().unwrap().to_string();
    let server = super::serve::Server::start_with(&s.cli, &["--config", &config]);
    let (status, _, body) = server.request(
        "POST",
        "/api/incidents",
        &token,
        Some("application/json"),
        br#"{"account":"carol","reporter":"carol","description":"can't call"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap()["incident"]["id"]
        .as_i64()
        .unwrap();
    let (status, _, body) = server.request(
        "GET",
        &format!("/api/incidents/{id}/events"),
        &token,
        None,
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let lines: Value = serde_json::from_str(&body).unwrap();
    let lines = lines.as_array().unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l["text"].as_str().unwrap().contains("REGISTER")
                && l["text"].as_str().unwrap().contains("403")
                && l["failed"] == true),
        "{body}"
    );
    let (status, _, page) = server.request("GET", &format!("/incidents/{id}"), &token, None, b"");
    assert_eq!(status, 200);
    assert!(page.contains("Recent SIP events"), "{page}");
    assert!(page.contains("403 Forbidden"), "{page}");
    assert!(!page.contains("not-her-password"));
}
