//! Rendering a runbook as a Mermaid flowchart, so a support lead can look at it.
//!
//! Node shapes tell the kinds apart: steps are rectangles, outcomes stadiums, escalations
//! hexagons, redirects subroutine boxes.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::model::{Runbook, Target};

/// A `flowchart TD` of `rb`: every step, every answer as a labelled edge, and each distinct
/// ending once. Escalation entries are drawn as dotted edges from a small entry node.
pub fn to_mermaid(rb: &Runbook) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = writeln!(out, "flowchart TD");
    let _ = writeln!(
        out,
        "  start((\"{}\")) --> {}",
        text(&rb.id),
        node_id("s", &rb.start)
    );
    for step in &rb.steps {
        let _ = writeln!(
            out,
            "  {}[\"{}<br/>{}\"]",
            node_id("s", &step.id),
            text(&step.id),
            text(&step.title)
        );
    }
    let mut endings = BTreeSet::new();
    for step in &rb.steps {
        for a in &step.answers {
            let (to, shape) = match &a.target {
                Target::Step(n) => (node_id("s", n), None),
                Target::Outcome(o) => {
                    let title = rb.outcome(o).map_or(o.as_str(), |d| d.title.as_str());
                    let id = node_id("o", o);
                    let shape = format!("{id}([\"{}<br/>{}\"])", text(o), text(title));
                    (id, Some(shape))
                }
                Target::Escalate { level, kind } => {
                    let k = kind.as_deref().unwrap_or("");
                    let id = if k.is_empty() {
                        node_id("e", level.as_str())
                    } else {
                        node_id("e", &format!("{}_{k}", level.as_str()))
                    };
                    let label = if k.is_empty() {
                        format!("escalate {level}")
                    } else {
                        format!("escalate {level}<br/>{}", text(k))
                    };
                    (id.clone(), Some(format!("{id}{{{{\"{label}\"}}}}")))
                }
                Target::Redirect { runbook } => {
                    let id = node_id("r", runbook);
                    let shape = format!("{id}[[\"redirect: {}\"]]", text(runbook));
                    (id, Some(shape))
                }
            };
            if let Some(shape) = shape {
                endings.insert(shape);
            }
            let _ = writeln!(
                out,
                "  {} -->|\"{}\"| {}",
                node_id("s", &step.id),
                text(&a.value),
                to
            );
        }
    }
    for shape in endings {
        let _ = writeln!(out, "  {shape}");
    }
    for (kind, step) in &rb.entries {
        let id = node_id("entry", kind);
        let _ = writeln!(
            out,
            "  {id}>\"entry: {}\"] -.-> {}",
            text(kind),
            node_id("s", step)
        );
    }
    out
}

/// Mermaid node ids allow letters, digits and underscores only.
fn node_id(prefix: &str, name: &str) -> String {
    let mut id = format!("{prefix}_");
    id.extend(
        name.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    id
}

/// Text inside a quoted Mermaid label: quotes and angle brackets become entities.
fn text(s: &str) -> String {
    s.replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
}
