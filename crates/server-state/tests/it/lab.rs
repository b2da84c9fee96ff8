//! The Kamailio backend against the real lab (Kamailio + SIPp on loopback): each test starts its
//! own lab, makes real traffic or injects a real fault, and checks what the backend reports.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::Utc;
use server_state::{
    CheckState, DestinationState, KamailioConfig, KamailioState, NumberKind, ServerState,
    Transport, Trunk,
};
use testlab::Lab;

fn state_for(lab: &Lab) -> KamailioState {
    KamailioState::new(KamailioConfig {
        rpc_url: lab.rpc_url().to_string(),
        db_url: lab.db_path().display().to_string(),
        domain: lab.domain().to_string(),
        trunk_prefixes: BTreeMap::from([(1, vec![lab.trunk_prefix().to_string()])]),
        echo_numbers: vec![lab.echo_number().to_string(), "echo".into()],
        timeout: Duration::from_secs(2),
        // The lab's usrloc writes the location table through.
        usrloc_db_mode: Some(1),
        ..KamailioConfig::new("", "")
    })
    .unwrap()
}

fn password(lab: &Lab, user: &str) -> String {
    lab.account(user).unwrap().password.clone()
}

/// Polls `probe` until it returns `Some`, at most `limit`.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn dest_states(trunks: &[Trunk], id: &str) -> Vec<(String, DestinationState)> {
    trunks
        .iter()
        .filter(|t| t.id == id)
        .flat_map(|t| t.destinations.iter().map(|d| (d.name.clone(), d.state)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_attempts_calls_and_sweep_from_real_traffic() {
    let lab = Lab::start().unwrap();
    let state = state_for(&lab);
    let start = Utc::now() - chrono::Duration::seconds(2);

    let ok = lab
        .sipp_register("alice", &password(&lab, "alice"))
        .unwrap();
    assert!(ok.success, "{ok:?}");
    let bad = lab.sipp_register("bob", "not-bobs-password").unwrap();
    assert!(!bad.success);

    let regs = state.registrations("alice").await.unwrap();
    assert_eq!(regs.len(), 1, "{regs:?}");
    let r = &regs[0];
    assert_eq!(r.transport, Transport::Udp);
    assert_eq!(r.user_agent, "dialtone-lab sipp");
    assert!(r.source.starts_with("127.0.0.1:"), "{r:?}");
    assert_eq!(Some(r.call_id.clone()), ok.call_id);
    let left = r.expires_at - Utc::now();
    assert!(
        left > chrono::Duration::seconds(250) && left <= chrono::Duration::seconds(300),
        "{left}"
    );
    assert!(
        (Utc::now() - r.registered_at) < chrono::Duration::seconds(30),
        "{r:?}"
    );
    assert!(state.registrations("bob").await.unwrap().is_empty());
    assert!(state.registrations("nobody").await.unwrap().is_empty());

    // The trace: alice 401 then 200; bob 401 then 403 with his auth user.
    let alice: Vec<u16> = state
        .registration_attempts("alice", start)
        .await
        .unwrap()
        .iter()
        .map(|a| a.status)
        .collect();
    assert_eq!(alice, vec![401, 200]);
    let bob = state.registration_attempts("bob", start).await.unwrap();
    let statuses: Vec<u16> = bob.iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![401, 403], "{bob:?}");
    assert_eq!(bob[1].auth_user.as_deref(), Some("bob"));
    assert_eq!(bob[1].reason, "Forbidden");
    assert!(bob[1].source.starts_with("udp:127.0.0.1:"), "{bob:?}");
    assert!(
        state
            .registration_attempts("alice", Utc::now() + chrono::Duration::seconds(5))
            .await
            .unwrap()
            .is_empty()
    );

    // Calls: echo (answered), bob (not registered: 480), an unknown user (404).
    let pw = password(&lab, "alice");
    assert_eq!(
        lab.sipp_call("alice", &pw, lab.echo_number())
            .unwrap()
            .final_status,
        Some(200)
    );
    lab.sipp_call("alice", &pw, "1002").unwrap();
    lab.sipp_call("alice", &pw, "nosuchuser").unwrap();
    let calls = wait_for("3 call records", Duration::from_secs(10), || async {
        let c = state.calls("alice", start, 10).await.unwrap();
        (c.len() >= 3).then_some(c)
    })
    .await;
    let got: Vec<(u16, &str, &str, Option<&str>)> = calls
        .iter()
        .map(|c| {
            (
                c.status,
                c.dialled.as_str(),
                c.callee.as_str(),
                c.route.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (404, "nosuchuser", "nosuchuser", Some("local")),
            (480, "1002", "bob", Some("local")),
            (200, lab.echo_number(), lab.echo_number(), Some("echo")),
        ]
    );
    assert!(calls[2].duration_s > 0.3, "{:?}", calls[2]);
    assert!(
        calls
            .iter()
            .all(|c| c.caller == "alice" && !c.call_id.is_empty())
    );
    // bob sees the missed call too (as callee).
    assert_eq!(state.calls("bob", start, 10).await.unwrap().len(), 1);

    // The sweep: alice registered, bob never accepted, carol never tried.
    let all = state.all_accounts().await.unwrap();
    let by: BTreeMap<&str, (bool, bool)> = all
        .iter()
        .map(|a| (a.user.as_str(), (a.registered, a.ever_registered)))
        .collect();
    assert_eq!(by.get("alice"), Some(&(true, true)));
    assert_eq!(by.get("bob"), Some(&(false, false)));
    assert_eq!(by.get("carol"), Some(&(false, false)));
    assert_eq!(all.len(), lab.accounts().len());
    let alice_numbers = &all.iter().find(|a| a.user == "alice").unwrap().numbers;
    assert_eq!(alice_numbers[0].kind, NumberKind::Primary);
    assert_eq!(
        alice_numbers[0].number,
        lab.account("alice").unwrap().numbers[0]
    );

    // Unregistered now, but registered before.
    assert!(lab.sipp_unregister("alice", &pw).unwrap().success);
    assert!(state.registrations("alice").await.unwrap().is_empty());
    let all = state.all_accounts().await.unwrap();
    let alice = all.iter().find(|a| a.user == "alice").unwrap();
    assert_eq!((alice.registered, alice.ever_registered), (false, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trunk_states_follow_probing_and_a_killed_gateway() {
    let lab = Lab::start().unwrap();
    let state = state_for(&lab);
    // After the first OPTIONS rounds: gw1 answers, gw2 (nothing listens) does not.
    let trunks = wait_for(
        "gw1 active and gw2 inactive",
        Duration::from_secs(15),
        || async {
            let t = state.trunks().await.unwrap();
            (dest_states(&t, "1")
                == vec![
                    ("pstn-gw1".to_string(), DestinationState::Active),
                    ("pstn-gw2".to_string(), DestinationState::Inactive),
                ])
            .then_some(t)
        },
    )
    .await;
    let gw = trunks.iter().find(|t| t.id == "1").unwrap();
    assert!(gw.is_up());
    assert_eq!(gw.prefixes, vec![lab.trunk_prefix().to_string()]);
    assert!(
        gw.destinations[0]
            .last_probe
            .as_deref()
            .unwrap()
            .contains("answered"),
        "{gw:?}"
    );
    assert_eq!(
        state.route_for("95551234").await.unwrap().as_deref(),
        Some("1")
    );
    assert_eq!(state.route_for("1002").await.unwrap(), None);
    let echo = trunks.iter().find(|t| t.id == "2").unwrap();
    assert_eq!(echo.name, "echo");

    // A call out through the trunk is answered by gw1 and recorded with its route.
    let start = Utc::now() - chrono::Duration::seconds(2);
    let pw = password(&lab, "alice");
    assert_eq!(
        lab.sipp_call("alice", &pw, "95551234")
            .unwrap()
            .final_status,
        Some(200)
    );

    lab.fault("kill-gateway", &[]).unwrap();
    let trunks = wait_for("gw1 inactive", Duration::from_secs(15), || async {
        let t = state.trunks().await.unwrap();
        (!t.iter().find(|t| t.id == "1").unwrap().is_up()).then_some(t)
    })
    .await;
    assert!(
        dest_states(&trunks, "1")
            .iter()
            .all(|(_, s)| *s != DestinationState::Active)
    );
    let failed = lab.sipp_call("alice", &pw, "95551234").unwrap();
    assert_eq!(failed.final_status, Some(503), "{failed:?}");
    let calls = wait_for("2 trunk calls", Duration::from_secs(10), || async {
        let c = state.calls("alice", start, 10).await.unwrap();
        (c.len() >= 2).then_some(c)
    })
    .await;
    let got: Vec<(u16, &str, Option<&str>)> = calls
        .iter()
        .map(|c| (c.status, c.callee.as_str(), c.route.as_deref()))
        .collect();
    assert_eq!(
        got,
        vec![
            (503, "5551234", Some("trunk")),
            (200, "5551234", Some("trunk"))
        ]
    );

    let health = state.health().await.unwrap();
    let down: Vec<&str> = health
        .services
        .iter()
        .filter(|(_, s)| !s.is_up())
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(
        down.iter().any(|n| n.contains("pstn-gw1")) && down.iter().any(|n| n.contains("pstn-gw2")),
        "{health:?}"
    );
    assert!(
        health
            .services
            .iter()
            .any(|(n, s)| n.contains("echo") && s.is_up()),
        "{health:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_number_and_missing_account_faults() {
    let lab = Lab::start().unwrap();
    let state = state_for(&lab);
    let alice_primary = lab.account("alice").unwrap().numbers[0].clone();
    let owners = state.accounts_with_number(&alice_primary).await.unwrap();
    assert_eq!(
        owners.iter().map(|a| a.user.as_str()).collect::<Vec<_>>(),
        vec!["alice"]
    );

    lab.fault("duplicate-number", &["bob", &alice_primary])
        .unwrap();
    let owners = state.accounts_with_number(&alice_primary).await.unwrap();
    assert_eq!(
        owners.iter().map(|a| a.user.as_str()).collect::<Vec<_>>(),
        vec!["alice", "bob"]
    );
    let bob = state.account("bob").await.unwrap().unwrap();
    let kinds: Vec<(&str, NumberKind)> = bob
        .numbers
        .iter()
        .map(|n| (n.number.as_str(), n.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("1002", NumberKind::Primary),
            (alice_primary.as_str(), NumberKind::Alternate)
        ]
    );

    // Echo service down: its dispatcher set loses its only destination, calls to it get 503.
    lab.fault("stop-echo", &[]).unwrap();
    let trunks = state.trunks().await.unwrap();
    let echo = trunks.iter().find(|t| t.name == "echo").unwrap();
    assert!(!echo.is_up(), "{echo:?}");
    let health = state.health().await.unwrap();
    assert!(
        health
            .services
            .iter()
            .any(|(n, s)| n.starts_with("echo ") && !s.is_up()),
        "{health:?}"
    );
    let start = Utc::now() - chrono::Duration::seconds(2);
    let pw = password(&lab, "carol");
    assert_eq!(
        lab.sipp_call("carol", &pw, lab.echo_number())
            .unwrap()
            .final_status,
        Some(503)
    );
    let calls = wait_for("the failed echo call", Duration::from_secs(10), || async {
        let c = state.calls("carol", start, 5).await.unwrap();
        (!c.is_empty()).then_some(c)
    })
    .await;
    assert_eq!(
        (calls[0].status, calls[0].route.as_deref()),
        (503, Some("echo")),
        "{calls:?}"
    );

    let alice = state.account("alice").await.unwrap().unwrap();
    assert!(alice.exists && alice.domain == lab.domain());
    lab.fault("remove-account", &["alice"]).unwrap();
    assert_eq!(state.account("alice").await.unwrap(), None);
    assert!(
        state
            .accounts_with_number(&alice_primary)
            .await
            .unwrap()
            .iter()
            .all(|a| a.user != "alice")
    );
    assert!(
        state
            .all_accounts()
            .await
            .unwrap()
            .iter()
            .all(|a| a.user != "alice")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_version_tls_and_management_down() {
    let lab = Lab::start().unwrap();
    let state = state_for(&lab);
    let h = state.health().await.unwrap();
    assert_eq!(h.management, CheckState::Up);
    assert_eq!(h.database, CheckState::Up);
    assert!(
        h.version
            .as_deref()
            .unwrap_or("")
            .starts_with("kamailio 5."),
        "{h:?}"
    );
    assert!(h.uptime_s.is_some());
    let tls = h
        .tls_listeners
        .first()
        .unwrap_or_else(|| panic!("no TLS listener: {h:?}"));
    assert_eq!(tls.address, format!("127.0.0.1:{}", lab.tls_port()));
    assert!(tls.not_after.unwrap() > Utc::now(), "{tls:?}");
    assert!(state.describe().contains(lab.rpc_url()));

    let sip = &h.sip_listeners;
    for proto in ["udp", "tcp"] {
        assert!(
            sip.contains(&format!("{proto}:127.0.0.1:{}", lab.sip_port())),
            "{sip:?}"
        );
    }
    assert!(
        sip.contains(&format!("tls:127.0.0.1:{}", lab.tls_port())),
        "{sip:?}"
    );
    assert!(
        !sip.iter()
            .any(|l| lab.rpc_url().contains(l.rsplit(':').next().unwrap())),
        "{sip:?}"
    );

    lab.fault("block-transport", &["tcp"]).unwrap();
    let h = state.health().await.unwrap();
    assert!(
        !h.sip_listeners.iter().any(|l| l.starts_with("tcp:")),
        "{h:?}"
    );
    assert!(
        h.sip_listeners.iter().any(|l| l.starts_with("udp:")),
        "{h:?}"
    );

    lab.fault("tls-expired", &[]).unwrap();
    let h = state.health().await.unwrap();
    assert!(h.tls_listeners[0].not_after.unwrap() < Utc::now(), "{h:?}");

    lab.fault("stop-rpc", &[]).unwrap();
    let t0 = Instant::now();
    // Without the management interface the database stands in: nobody registered in the
    // write-through location table, trunks from the dispatcher table with their state unknown.
    let r = state.registrations("alice").await;
    assert!(matches!(&r, Ok(v) if v.is_empty()), "{r:?}");
    let trunks = state.trunks().await.unwrap();
    assert!(
        !trunks.is_empty() && trunks.iter().all(|t| t.state_unknown()),
        "{trunks:?}"
    );
    let h = state.health().await.unwrap();
    assert!(matches!(h.management, CheckState::Down(_)), "{h:?}");
    assert_eq!(h.database, CheckState::Up);
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    // The database half still answers.
    assert!(state.account("alice").await.unwrap().unwrap().exists);
}
