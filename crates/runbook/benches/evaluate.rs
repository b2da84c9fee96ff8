//! Benchmark: runbook evaluation time per step, on the longest walks of the shipped runbooks.
//!
//! Prints, besides criterion's figures, the time per walked step for each walk, so the figure
//! the issue asks for ("evaluation time per step") is read directly.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use runbook::{EvalOptions, Fact, Facts, Level, RunbookSet, evaluate};

/// (name, runbook, answers, options): long walks, so per-step cost dominates set-up.
fn walks() -> Vec<(&'static str, &'static str, Facts, EvalOptions)> {
    let l1 = [
        ("gate.operational_requirements", "no"),
        ("gate.client_error", "none"),
        ("l1.connection_status", "connected"),
        ("l1.force_reconnection", "fine"),
        ("l1.echo_call", "works"),
        ("l1.call_other_user", "no"),
        ("l1.outgoing_trunks", "some"),
        ("l1.trunk_health", "fine"),
    ];
    let l2 = [
        ("l2.account_exists", "yes"),
        ("l2.account_registered", "yes"),
        ("l2.virtual_number_unique", "unique"),
    ];
    let ci = [
        ("gate.operational_requirements", "no"),
        ("gate.client_error", "none"),
        ("l1.connection_status", "connected"),
        ("l1.force_reconnection", "connection_problem"),
        ("ci.account_exists", "yes"),
        ("ci.dns_resolution", "resolves"),
        ("ci.transport_reachability", "reachable"),
        ("ci.tls_handshake", "ok"),
        ("ci.register_seen", "seen"),
        ("ci.register_result", "accepted"),
        ("ci.nat_keepalive", "fine"),
        ("l2.server_services", "fine"),
        ("l2.network_status", "fine"),
        ("l2.client_logs", "nothing_found"),
    ];
    let facts = |pairs: &[(&str, &str)]| -> Facts {
        pairs.iter().map(|(s, v)| (*s, Fact::agent(*v))).collect()
    };
    let all: Vec<(&str, &str)> = l1.iter().chain(l2.iter()).copied().collect();
    vec![
        (
            "l1_to_escalation",
            "user-cant-call",
            facts(&l1),
            EvalOptions::default(),
        ),
        (
            "l1_through_l2_to_l3",
            "user-cant-call",
            facts(&all),
            EvalOptions {
                max_level: Level::L2,
                ..EvalOptions::default()
            },
        ),
        (
            "redirect_and_escalation",
            "user-cant-call",
            facts(&ci),
            EvalOptions {
                max_level: Level::L2,
                follow_redirects: true,
                use_defaults: false,
            },
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let set = RunbookSet::builtin();
    let mut group = c.benchmark_group("evaluate");
    for (name, runbook, facts, opts) in walks() {
        let steps = match evaluate(&set, runbook, &facts, &opts) {
            Ok(ev) => ev.path.len(),
            Err(e) => panic!("{name}: {e}"),
        };
        group.bench_function(name, |b| {
            b.iter(|| evaluate(black_box(&set), runbook, black_box(&facts), &opts))
        });
        // A plain timing loop for the per-step figure criterion does not print.
        let rounds = 20_000u32;
        let t = Instant::now();
        for _ in 0..rounds {
            let _ = black_box(evaluate(&set, runbook, black_box(&facts), &opts));
        }
        let per_walk = t.elapsed() / rounds;
        println!(
            "evaluate/{name}: {steps} steps, {per_walk:?} per walk, {:?} per step",
            per_walk / u32::try_from(steps).unwrap_or(1)
        );
    }
    group.finish();

    c.bench_function("load/builtin_from_sources", |b| {
        let sources: Vec<(String, String)> = runbook::BUILTIN_SOURCES
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        b.iter(|| RunbookSet::from_sources(black_box(&sources)).map(|s| s.iter().count()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
