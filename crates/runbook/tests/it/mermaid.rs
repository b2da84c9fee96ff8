//! The Mermaid rendering shows every step, branch and ending, with distinct shapes per kind.

use runbook::{RunbookSet, Target, to_mermaid};

#[test]
fn every_step_branch_and_ending_is_drawn() {
    let set = RunbookSet::builtin();
    for rb in set.iter() {
        let m = to_mermaid(rb);
        assert!(m.starts_with("flowchart TD\n"), "{}", rb.id);
        for step in &rb.steps {
            let node = format!("s_{}", step.id.replace('.', "_"));
            assert!(
                m.contains(&format!("{node}[\"{}<br/>", step.id)),
                "{}: no node for {}",
                rb.id,
                step.id
            );
            for a in &step.answers {
                let edge = format!("{node} -->|\"{}\"| ", a.value);
                let line = m
                    .lines()
                    .find(|l| l.trim_start().starts_with(&edge))
                    .unwrap_or_else(|| panic!("{}: no edge {}={}", rb.id, step.id, a.value));
                let to = line.rsplit(' ').next().unwrap_or_default();
                // The target node has the shape of its kind.
                let shape = match &a.target {
                    Target::Step(n) => format!("{to}[\"{n}<br/>"),
                    Target::Outcome(o) => format!("{to}([\"{o}<br/>"),
                    Target::Escalate { level, .. } => format!("{to}{{{{\"escalate {level}"),
                    Target::Redirect { runbook } => format!("{to}[[\"redirect: {runbook}\"]]"),
                };
                assert!(
                    m.contains(&shape),
                    "{}: {to} is not drawn as {shape}",
                    rb.id
                );
            }
        }
    }
}

#[test]
fn user_cant_call_graph() {
    let set = RunbookSet::builtin();
    let rb = set.get("user-cant-call").expect("built-in runbook");
    insta::assert_snapshot!(to_mermaid(rb));
}
