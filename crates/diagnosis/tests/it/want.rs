//! A single step's check reads only the sources that check needs.

use diagnosis::decide::Want;
use diagnosis::{Diagnoser, ProbeResults, Prober};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn want_follows_each_check_and_what_its_sources_derive_from() {
    let w = Want::checks(["virtual_number_unique"]);
    assert!(w.has("duplicates") && w.has("account"));
    assert!(!w.has("echo") && !w.has("transports") && !w.has("calls"));
    let w = Want::checks(["trunk_health"]);
    assert!(w.has("trunks") && w.has("calls") && w.has("routes"));
    assert!(!w.has("registrations"));
    assert!(Want::all().has("echo"));
}

/// Remembers which probes it was asked for.
struct Spy(Mutex<Vec<(bool, bool)>>);

#[async_trait::async_trait]
impl Prober for Spy {
    async fn run_all(&self, want: &Want) -> ProbeResults {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((want.has("echo"), want.has("transports")));
        }
        ProbeResults {
            transports: Vec::new(),
            tls: None,
            echo: Err("spy".into()),
            self_test: Err("spy".into()),
            dns: None,
            license: Err("spy".into()),
            timings: Default::default(),
        }
    }

    fn media_window(&self) -> Duration {
        Duration::ZERO
    }
}

#[test]
fn checking_the_connection_status_places_no_echo_call() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data/scenarios/healthy-works-now");
    let cfg = diagnosis::Config::from_toml(
        &format!(
            "[server]\ndomain = \"voip.example.com\"\n[management]\nexport_dir = \"{}\"\n",
            dir.display()
        ),
        &[],
    )
    .expect("config");
    let state = diagnosis::open_state(&cfg).expect("state");
    let spy = Arc::new(Spy(Mutex::new(Vec::new())));
    let d = Diagnoser::new(
        cfg,
        state,
        spy.clone(),
        Arc::new(runbook::RunbookSet::builtin()),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(d.check_step("alice", "l1.connection_status", Vec::new()))
        .expect("check");
    rt.block_on(d.check_step("alice", "l1.echo_call", Vec::new()))
        .expect("check");
    let seen = spy.0.lock().unwrap().clone();
    assert_eq!(seen, vec![(false, false), (true, false)]);
}
