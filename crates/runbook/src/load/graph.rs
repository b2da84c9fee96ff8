//! Graph properties over the whole set: reachability, and loops with no way out.

use std::collections::{HashMap, HashSet};

use super::{Diagnostic, Parsed, Rule, StepSite};
use crate::model::{Runbook, Step, Target};

/// Reachability and "loop with no way out", over `next` edges (which never leave a runbook).
pub(super) fn check_graph(
    parsed: &[Parsed<'_>],
    runbooks: &[Runbook],
    steps: &HashMap<&str, StepSite<'_>>,
    diags: &mut Vec<Diagnostic>,
) {
    // Roots: every start and every entry of every runbook (an entry may point into another
    // runbook, and escalations arrive there).
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo: Vec<&str> = Vec::new();
    for rb in runbooks {
        todo.push(&rb.start);
        todo.extend(rb.entries.values().map(String::as_str));
    }
    // The first definition of a duplicated id wins, as in `steps`.
    let mut by_id: HashMap<&str, &Step> = HashMap::new();
    for s in runbooks.iter().flat_map(|r| r.steps.iter()) {
        by_id.entry(s.id.as_str()).or_insert(s);
    }
    while let Some(id) = todo.pop() {
        let Some(step) = by_id.get(id) else { continue };
        if !seen.insert(id) {
            continue;
        }
        for a in &step.answers {
            if let Target::Step(n) = &a.target {
                todo.push(n);
            }
        }
    }

    // A step "exits" when some answer ends the runbook, or leads to a step that exits.
    // Fixed point over all steps; the graph is small.
    let mut exits: HashSet<&str> = HashSet::new();
    loop {
        let before = exits.len();
        for step in by_id.values() {
            if exits.contains(step.id.as_str()) {
                continue;
            }
            // A step without answers has its own diagnostic; counting it as an exit keeps
            // the steps before it from being reported as a loop too.
            let out = step.answers.is_empty()
                || step.answers.iter().any(|a| match &a.target {
                    Target::Step(n) => exits.contains(n.as_str()),
                    _ => true,
                });
            if out {
                exits.insert(step.id.as_str());
            }
        }
        if exits.len() == before {
            break;
        }
    }

    for (ri, rb) in runbooks.iter().enumerate() {
        let loc = &parsed[ri].loc;
        let raw_steps = &parsed[ri].raw.steps;
        let mut reported: HashSet<&str> = HashSet::new();
        for (si, step) in rb.steps.iter().enumerate() {
            // Only the first definition of a duplicated id is checked (the others already
            // have their own diagnostic).
            if steps.get(step.id.as_str()).is_none_or(|s| s.runbook != ri)
                || steps[step.id.as_str()].span != raw_steps[si].id.span()
            {
                continue;
            }
            let span = raw_steps[si].id.span();
            if !seen.contains(step.id.as_str()) {
                diags.push(loc.diag(
                    &span,
                    Rule::UnreachableStep,
                    format!(
                        "step `{}` is unreachable (not reached from the start or any entry)",
                        step.id
                    ),
                ));
            }
            if step.answers.is_empty()
                || exits.contains(step.id.as_str())
                || reported.contains(step.id.as_str())
            {
                continue;
            }
            // Follow the first answer until a step repeats: that is the loop to name.
            let mut cycle: Vec<&str> = vec![&step.id];
            let mut at: &Step = step;
            loop {
                let next = at.answers.iter().find_map(|a| match &a.target {
                    Target::Step(n) => by_id.get(n.as_str()).copied(),
                    _ => None,
                });
                let Some(next) = next else { break };
                cycle.push(&next.id);
                if cycle[..cycle.len() - 1].contains(&next.id.as_str()) {
                    break;
                }
                at = next;
            }
            // Everything reachable from here is also stuck: report the loop once.
            let mut stack = vec![step.id.as_str()];
            while let Some(id) = stack.pop() {
                if reported.insert(id)
                    && let Some(s) = by_id.get(id)
                {
                    stack.extend(s.answers.iter().filter_map(|a| match &a.target {
                        Target::Step(n) => Some(n.as_str()),
                        _ => None,
                    }));
                }
            }
            diags.push(loc.diag(
                &span,
                Rule::LoopWithoutExit,
                format!(
                    "loop with no way out: {} never reaches an outcome, escalation or redirect",
                    cycle.join(" -> ")
                ),
            ));
        }
    }
}
