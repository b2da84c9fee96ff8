//! Scenario expectations (`expect.json`) checked the same way against any backend.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use server_state::{CheckState, Error, ServerState};

/// What a scenario says the server knows. Absent fields are not checked; `"unsupported"` means
/// the backend must answer `Error::Unsupported` (the export lacks that file).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub account: String,
    /// `true`, `false` (seen but no subscriber) or `null` (no trace at all).
    #[serde(default = "absent")]
    pub exists: Value,
    pub numbers: Option<Vec<String>>,
    pub registrations: Option<Value>,
    pub transports: Option<Vec<String>>,
    pub attempts_since: Option<DateTime<Utc>>,
    pub attempt_statuses: Option<Value>,
    pub number: Option<String>,
    pub number_owners: Option<Vec<String>>,
    pub trunks_up: Option<Value>,
    pub routes: Option<BTreeMap<String, Option<String>>>,
    pub calls_since: Option<DateTime<Utc>>,
    pub call_statuses: Option<Vec<u16>>,
    pub last_call_route: Option<String>,
    pub management: Option<String>,
    pub database: Option<String>,
    /// user -> `registered` | `was` (not now, but before) | `never`.
    pub sweep: Option<BTreeMap<String, String>>,
}

fn absent() -> Value {
    Value::String("unchecked".into())
}

fn state_word(s: &CheckState) -> &'static str {
    match s {
        CheckState::Up => "up",
        CheckState::Down(_) => "down",
        CheckState::Unknown(_) => "unknown",
    }
}

fn unsupported(v: &Value) -> bool {
    v.as_str() == Some("unsupported")
}

fn assert_unsupported<T: std::fmt::Debug>(label: &str, what: &str, r: server_state::Result<T>) {
    match r {
        Err(Error::Unsupported(_)) => {}
        other => panic!("{label}: {what}: expected Unsupported, got {other:?}"),
    }
}

/// Checks every expectation of `e` against `state`; `label` names the scenario in failures.
pub async fn check(state: &dyn ServerState, e: &Expect, label: &str) {
    let user = e.account.as_str();
    let account = state
        .account(user)
        .await
        .unwrap_or_else(|err| panic!("{label}: account: {err}"));
    match &e.exists {
        Value::Null => assert!(
            account.is_none(),
            "{label}: expected no account, got {account:?}"
        ),
        Value::Bool(b) => {
            let a = account
                .as_ref()
                .unwrap_or_else(|| panic!("{label}: account {user} missing"));
            assert_eq!(a.exists, *b, "{label}: exists");
        }
        _ => {}
    }
    if let Some(numbers) = &e.numbers {
        let got: Vec<String> = account
            .iter()
            .flat_map(|a| a.numbers.iter())
            .map(|n| {
                format!(
                    "{} {}",
                    n.number,
                    serde_json::to_value(n.kind).unwrap().as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(&got, numbers, "{label}: numbers");
    }
    if let Some(expected) = &e.registrations {
        let r = state.registrations(user).await;
        if unsupported(expected) {
            assert_unsupported(label, "registrations", r);
        } else {
            let regs = r.unwrap_or_else(|err| panic!("{label}: registrations: {err}"));
            assert_eq!(
                Some(regs.len() as u64),
                expected.as_u64(),
                "{label}: registrations {regs:?}"
            );
            if let Some(t) = &e.transports {
                let got: Vec<&str> = regs.iter().map(|r| r.transport.as_str()).collect();
                assert_eq!(&got, t, "{label}: transports");
            }
        }
    }
    if let Some(expected) = &e.attempt_statuses {
        let since = e.attempts_since.unwrap_or(DateTime::UNIX_EPOCH);
        let r = state.registration_attempts(user, since).await;
        if unsupported(expected) {
            assert_unsupported(label, "registration_attempts", r);
        } else {
            let got: Vec<u16> = r
                .unwrap_or_else(|err| panic!("{label}: attempts: {err}"))
                .iter()
                .map(|a| a.status)
                .collect();
            let want: Vec<u16> = serde_json::from_value(expected.clone()).unwrap();
            assert_eq!(got, want, "{label}: attempt statuses");
        }
    }
    if let (Some(number), Some(owners)) = (&e.number, &e.number_owners) {
        let mut got: Vec<String> = state
            .accounts_with_number(number)
            .await
            .unwrap_or_else(|err| panic!("{label}: accounts_with_number: {err}"))
            .into_iter()
            .map(|a| a.user)
            .collect();
        got.sort();
        assert_eq!(&got, owners, "{label}: owners of {number}");
    }
    if let Some(expected) = &e.trunks_up {
        let r = state.trunks().await;
        if unsupported(expected) {
            assert_unsupported(label, "trunks", r);
        } else {
            let trunks = r.unwrap_or_else(|err| panic!("{label}: trunks: {err}"));
            let want: BTreeMap<String, bool> = serde_json::from_value(expected.clone()).unwrap();
            let got: BTreeMap<String, bool> = trunks
                .iter()
                .filter(|t| want.contains_key(&t.id))
                .map(|t| (t.id.clone(), t.is_up()))
                .collect();
            assert_eq!(got, want, "{label}: trunks up {trunks:?}");
        }
    }
    if let Some(routes) = &e.routes {
        for (dialled, want) in routes {
            let got = state
                .route_for(dialled)
                .await
                .unwrap_or_else(|err| panic!("{label}: route_for: {err}"));
            assert_eq!(&got, want, "{label}: route for {dialled}");
        }
    }
    if let Some(statuses) = &e.call_statuses {
        let since = e.calls_since.unwrap_or(DateTime::UNIX_EPOCH);
        let calls = state
            .calls(user, since, 50)
            .await
            .unwrap_or_else(|err| panic!("{label}: calls: {err}"));
        let got: Vec<u16> = calls.iter().map(|c| c.status).collect();
        assert_eq!(
            &got, statuses,
            "{label}: call statuses (newest first) {calls:?}"
        );
        if let Some(route) = &e.last_call_route {
            assert_eq!(
                calls.first().and_then(|c| c.route.as_deref()),
                Some(route.as_str()),
                "{label}: route"
            );
        }
    }
    if e.management.is_some() || e.database.is_some() {
        let h = state
            .health()
            .await
            .unwrap_or_else(|err| panic!("{label}: health: {err}"));
        if let Some(m) = &e.management {
            assert_eq!(state_word(&h.management), m, "{label}: management {h:?}");
        }
        if let Some(d) = &e.database {
            assert_eq!(state_word(&h.database), d, "{label}: database {h:?}");
        }
    }
    if let Some(sweep) = &e.sweep {
        let all = state
            .all_accounts()
            .await
            .unwrap_or_else(|err| panic!("{label}: all_accounts: {err}"));
        let got: BTreeMap<String, String> = all
            .iter()
            .filter(|a| sweep.contains_key(&a.user))
            .map(|a| {
                let w = match (a.registered, a.ever_registered) {
                    (true, _) => "registered",
                    (false, true) => "was",
                    (false, false) => "never",
                };
                (a.user.clone(), w.to_string())
            })
            .collect();
        assert_eq!(&got, sweep, "{label}: sweep");
    }
}
