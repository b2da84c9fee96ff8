//! The dependency invariants of ARCHITECTURE.md, checked over our own manifests.
//!
//! `cargo metadata --no-deps` reads only the workspace's `Cargo.toml` files: it needs neither
//! the network nor a package cache (a full `cargo metadata` wants the packages of every target
//! platform, which a fresh cache does not hold), and the rules are about our own crates anyway.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(super::support::repo_root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let mut g = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        let deps: BTreeSet<String> = p["dependencies"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter(|d| d["kind"].is_null()) // normal dependencies only
                    .filter_map(|d| d["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        g.insert(name, deps);
    }
    g
}

/// (crate, dependencies it must never have, directly)
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "sip-message",
        &["tokio", "sqlx", "axum", "hyper", "reqwest"],
    ),
    (
        "runbook",
        &[
            "tokio",
            "sqlx",
            "axum",
            "sip-message",
            "sip-probe",
            "server-state",
            "incidents",
        ],
    ),
    (
        "incidents",
        &[
            "axum",
            "sip-message",
            "sip-probe",
            "runbook",
            "server-state",
            "diagnosis",
        ],
    ),
    (
        "web",
        &["diagnosis", "sip-probe", "captures", "server-state"],
    ),
    ("server-state", &["runbook", "incidents", "axum"]),
    ("sip-probe", &["runbook", "incidents", "axum", "sqlx"]),
    ("captures", &["tokio", "sqlx", "axum", "runbook"]),
    ("diagnosis", &["axum", "incidents"]),
    (
        "sip-events",
        &[
            "runbook",
            "incidents",
            "diagnosis",
            "server-state",
            "web",
            "axum",
        ],
    ),
    (
        "casework",
        &[
            "tokio",
            "sqlx",
            "axum",
            "sip-probe",
            "server-state",
            "diagnosis",
        ],
    ),
];

#[test]
fn crates_never_depend_on_what_the_architecture_forbids() {
    let g = graph();
    let mut broken = Vec::new();
    for (krate, forbidden) in FORBIDDEN {
        let deps = g
            .get(*krate)
            .unwrap_or_else(|| panic!("crate {krate} missing from the workspace"));
        for f in *forbidden {
            if deps.contains(*f) {
                broken.push(format!("{krate} depends on {f}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "ARCHITECTURE.md invariants broken: {broken:?}"
    );
}

#[test]
fn only_diagnosis_knows_both_runbook_and_server() {
    let g = graph();
    let both: Vec<_> = g
        .iter()
        .filter(|(_, d)| {
            d.contains("runbook") && (d.contains("server-state") || d.contains("sip-probe"))
        })
        .map(|(n, _)| n.clone())
        .collect();
    // The CLI wires everything together, so it may see both; no library but diagnosis may.
    let libs: Vec<_> = both.into_iter().filter(|n| n != "dialtone").collect();
    assert_eq!(libs, vec!["diagnosis".to_string()]);
}

/// Only `casework` decides what an incident action writes: the CLI and the web app load the
/// incident, ask the rule book, and hand its decision to `Store::apply`. None of them calls the
/// store's incident writes itself.
#[test]
fn only_casework_decides_what_an_incident_action_writes() {
    let writes = [
        "store.open_incident(",
        "store.open_incident_with_steps(",
        "store.record_step(",
        "store.revise_step(",
        "store.add_note(",
        "store.escalate(",
        "store.close(",
        "store.close_overriding(",
        "store.assign(",
        "store.take(",
        "store.set_status(",
    ];
    let root = crate::support::repo_root();
    let mut found = Vec::new();
    for dir in ["crates/cli/src", "crates/web/src"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("read src") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read");
            // Method chains are split over lines: compare without whitespace.
            let flat: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            for w in writes {
                if flat.contains(w) {
                    found.push(format!("{} calls {w}…)", path.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "incident writes outside the rule book:\n{}",
        found.join("\n")
    );
}
