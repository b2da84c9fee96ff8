//! A single step's check reads only the sources that check needs.

use diagnosis::decide::{Source, Want};
use diagnosis::{Diagnoser, ProbeResults, Prober};
use runbook::Check;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn want_follows_each_check_and_what_its_sources_derive_from() {
    let w = Want::checks([Check::VirtualNumberUnique]);
    assert!(w.has(Source::Duplicates) && w.has(Source::Account));
    assert!(!w.has(Source::Echo) && !w.has(Source::Transports) && !w.has(Source::Calls));
    let w = Want::checks([Check::TrunkHealth]);
    assert!(w.has(Source::Trunks) && w.has(Source::Calls) && w.has(Source::Routes));
    assert!(!w.has(Source::Registrations));
    assert!(Want::all().has(Source::Echo));
}

/// Remembers which probes it was asked for.
struct Spy(Mutex<Vec<(bool, bool)>>);

#[async_trait::async_trait]
impl Prober for Spy {
    async fn run_all(&self, want: &Want) -> ProbeResults {
        if let Ok(mut seen) = self.0.lock() {
            seen.push((want.has(Source::Echo), want.has(Source::Transports)));
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
