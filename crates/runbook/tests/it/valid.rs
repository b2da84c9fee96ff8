//! The shipped runbooks load cleanly and say what the design page says.

use std::collections::BTreeSet;

use runbook::{Level, RunbookSet};

fn sources() -> Vec<(String, String)> {
    runbook::BUILTIN_SOURCES
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect()
}

#[test]
fn builtin_runbooks_load_without_diagnostics() {
    if let Err(diags) = RunbookSet::from_sources(&sources()) {
        let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
        panic!("diagnostics:\n{}", text.join("\n"));
    }
    let set = RunbookSet::builtin();
    let ids: Vec<&str> = set.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "user-cant-call",
            "connection-issues",
            "license-problem",
            "user-not-found"
        ]
    );
}

/// The ids of runbook-user-cant-call.md: steps (with their level), outcomes and entries.
#[test]
fn user_cant_call_has_exactly_the_design_ids() {
    let set = RunbookSet::builtin();
    let rb = set.get("user-cant-call").expect("built-in");
    let steps: Vec<(&str, Level)> = rb.steps.iter().map(|s| (s.id.as_str(), s.level)).collect();
    assert_eq!(
        steps,
        [
            ("gate.operational_requirements", Level::Gate),
            ("gate.client_error", Level::Gate),
            ("l1.connection_status", Level::L1),
            ("l1.force_reconnection", Level::L1),
            ("l1.echo_call", Level::L1),
            ("l1.call_other_user", Level::L1),
            ("l1.outgoing_trunks", Level::L1),
            ("l1.account_registered", Level::L1),
            ("l1.trunk_health", Level::L1),
            ("l2.account_exists", Level::L2),
            ("l2.account_registered", Level::L2),
            ("l2.virtual_number_unique", Level::L2),
            ("l2.server_services", Level::L2),
            ("l2.network_status", Level::L2),
            ("l2.client_logs", Level::L2),
        ]
    );
    let outcomes: BTreeSet<&str> = rb.outcomes.iter().map(|o| o.id.as_str()).collect();
    let want: BTreeSet<&str> = [
        "out_of_scope",
        "temporary_network_problem",
        "not_an_issue_user_not_provisioned",
        "trunk_problem",
        "duplicate_virtual_number",
        "server_service_failure",
        "network_problem",
        "authentication_failure",
        "client_misconfiguration",
        "tls_failure",
    ]
    .into();
    assert_eq!(outcomes, want);
    assert_eq!(rb.start, "gate.operational_requirements");
    assert_eq!(rb.entries["user_configuration_check"], "l2.account_exists");
    assert_eq!(rb.entries["server_status_check"], "l2.server_services");
    // The page's (gap) places carry a note the report shows.
    for gap in [
        "l1.account_registered",
        "l1.trunk_health",
        "l2.account_registered",
    ] {
        let note = rb
            .step(gap)
            .and_then(|s| s.note.as_deref())
            .unwrap_or_default();
        assert!(note.starts_with("(gap)"), "{gap}: {note:?}");
    }
}

#[test]
fn every_automatable_step_names_its_check() {
    let set = RunbookSet::builtin();
    let checks: std::collections::BTreeSet<&str> =
        set.checks().into_iter().map(|c| c.as_str()).collect();
    for name in [
        "registration_lookup",
        "force_reconnection",
        "echo_call",
        "recent_calls_to_others",
        "trunk_inventory",
        "account_and_registration",
        "trunk_health",
        "account_exists",
        "account_registered",
        "virtual_number_unique",
        "server_services",
        "network_status",
        "client_logs",
    ] {
        assert!(checks.contains(&name), "no step uses check {name}");
    }
    let rb = set.get("user-cant-call").expect("built-in");
    let without: Vec<&str> = rb
        .steps
        .iter()
        .filter(|s| s.check.is_none())
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(
        without,
        ["gate.operational_requirements", "gate.client_error"]
    );
}

#[test]
fn an_edited_copy_replaces_the_builtin_and_may_redirect_to_it() {
    // The same file name replaces the shipped file; the redirect to a shipped runbook resolves.
    let text = runbook::BUILTIN_SOURCES[2]
        .1
        .replace("Licence problem", "Licence trouble");
    let set = RunbookSet::from_sources_over_builtin(&[("license-problem.toml".to_owned(), text)])
        .expect("valid");
    assert_eq!(
        set.get("license-problem").map(|r| r.title.as_str()),
        Some("Licence trouble")
    );
    assert_eq!(set.iter().count(), 4);

    // A new runbook under another name, redirecting to a shipped one.
    let new = r#"
id = "one-way-audio"
title = "One-way audio"
start = "owa.media_relay"

[[steps]]
id = "owa.media_relay"
level = "l1"
title = "Media relay"
question = "Does the media relay answer?"

[[steps.answers]]
value = "no"
label = "No"
redirect = "connection-issues"

[[steps.answers]]
value = "yes"
label = "Yes"
escalate = "l3"
tell_user = "Our engineers are looking into it."
"#;
    let set = RunbookSet::from_sources_over_builtin(&[("owa.toml".to_owned(), new.to_owned())])
        .expect("valid");
    assert_eq!(set.iter().count(), 5);
    // The same file alone does not validate: the redirect names no runbook.
    let diags = RunbookSet::from_sources(&[("owa.toml".to_owned(), new.to_owned())])
        .expect_err("redirect to an unknown runbook");
    assert_eq!(diags.len(), 1);
    assert_eq!(
        diags[0].to_string(),
        "owa.toml:15:12: unknown runbook `connection-issues`"
    );
}
