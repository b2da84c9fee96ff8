//! `dialtone runbook …`: list, show, check and draw runbooks.

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};
use clap::Subcommand;
use runbook::{RunbookSet, Target};
use serde_json::json;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum RunbookCmd {
    /// List the runbooks.
    List,
    /// Show a runbook's steps, answers and outcomes.
    Show { id: String },
    /// Validate runbook files (each problem with file, line and column).
    Check {
        /// Files to check together with the built-in runbooks they may refer to.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a runbook as a Mermaid flowchart.
    Graph { id: String },
}

pub async fn run(ctx: &Ctx, cmd: RunbookCmd) -> anyhow::Result<u8> {
    match cmd {
        RunbookCmd::List => {
            let set = ctx.runbooks()?;
            if ctx.json {
                let list: Vec<_> = set
                    .iter()
                    .map(|r| json!({"id": r.id, "title": r.title, "steps": r.steps.len(), "outcomes": r.outcomes.len()}))
                    .collect();
                print_json(&list)?;
            } else {
                for r in set.iter() {
                    println!(
                        "{:<20} {:>3} steps {:>3} outcomes  {}",
                        r.id,
                        r.steps.len(),
                        r.outcomes.len(),
                        r.title
                    );
                }
            }
            Ok(exit::OK)
        }
        RunbookCmd::Show { id } => {
            let set = ctx.runbooks()?;
            let rb = get(&set, &id)?;
            if ctx.json {
                print_json(rb)?;
                return Ok(exit::OK);
            }
            println!("{} — {}\n{}\n", rb.id, rb.title, rb.description.trim());
            println!("starts at {}", rb.start);
            for (kind, step) in &rb.entries {
                println!("escalation {kind} starts at {step}");
            }
            for st in &rb.steps {
                println!("\n[{}] {} — {}", st.level, st.id, st.title);
                println!("  Q: {}", st.question);
                if let Some(i) = &st.instruction {
                    println!("  tell the user: {i}");
                }
                if let Some(c) = &st.check {
                    println!("  automated check: {c}");
                }
                if let Some(n) = &st.note {
                    println!("  note: {n}");
                }
                for a in &st.answers {
                    println!("  - {:<24} {}", a.value, describe_target(&a.target));
                }
            }
            println!("\nOutcomes:");
            for o in &rb.outcomes {
                println!("  {:<36} {} ({})", o.id, o.title, o.disposition.as_str());
            }
            Ok(exit::OK)
        }
        RunbookCmd::Check { files } => {
            let mut sources = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    coded(exit::NOT_FOUND, format!("cannot read {}: {e}", f.display()))
                })?;
                sources.push((f.display().to_string(), text));
            }
            match RunbookSet::from_sources_over_builtin(&sources) {
                Ok(set) => {
                    if ctx.json {
                        print_json(
                            &json!({"ok": true, "problems": [], "runbooks": set.iter().map(|r| r.id.clone()).collect::<Vec<_>>()}),
                        )?;
                    } else {
                        println!("ok: {} file(s) valid", files.len());
                    }
                    Ok(exit::OK)
                }
                Err(diags) => {
                    if ctx.json {
                        let problems: Vec<_> = diags
                            .iter()
                            .map(|d| json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message}))
                            .collect();
                        print_json(&json!({"ok": false, "problems": problems}))?;
                    } else {
                        for d in &diags {
                            eprintln!("{d}");
                        }
                        eprintln!("{} problem(s)", diags.len());
                    }
                    Ok(exit::INVALID)
                }
            }
        }
        RunbookCmd::Graph { id } => {
            let set = ctx.runbooks()?;
            let rb = get(&set, &id)?;
            print!("{}", runbook::to_mermaid(rb));
            Ok(exit::OK)
        }
    }
}

fn get<'a>(set: &'a RunbookSet, id: &str) -> anyhow::Result<&'a runbook::Runbook> {
    set.get(id).ok_or_else(|| {
        let known: Vec<_> = set.iter().map(|r| r.id.clone()).collect();
        coded(
            exit::NOT_FOUND,
            format!("unknown runbook {id:?} (known: {})", known.join(", ")),
        )
    })
}

pub fn describe_target(t: &Target) -> String {
    match t {
        Target::Step(s) => format!("-> {s}"),
        Target::Outcome(o) => format!("=> outcome {o}"),
        Target::Escalate { level, kind } => {
            format!(
                "=> escalate to {level}{}",
                kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default()
            )
        }
        Target::Redirect { runbook } => format!("=> continue in runbook {runbook}"),
    }
}
