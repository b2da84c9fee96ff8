//! `dialtone capture …`: analyse client logs and packet captures, draw call ladders.

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum CaptureCmd {
    /// Find the calls and registrations in logs or captures, and why they failed.
    Analyze {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only this account's or number's traffic.
        #[arg(long)]
        user: Option<String>,
        /// Print the Markdown section for an incident dossier instead of the table.
        #[arg(long)]
        markdown: bool,
    },
    /// Draw the ladder diagram of one call.
    Ladder {
        file: PathBuf,
        /// The Call-ID of the call (see `capture analyze`).
        #[arg(long)]
        call: String,
        /// Also write the ladder as SVG to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

fn analyze_one(
    path: &std::path::Path,
    user: Option<String>,
    show_progress: bool,
) -> anyhow::Result<captures::Analysis> {
    if !path.exists() {
        return Err(coded(
            exit::NOT_FOUND,
            format!("cannot read {}: no such file", path.display()),
        ));
    }
    let bar = if show_progress {
        let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b.set_message(path.display().to_string());
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress = |done: u64, _total: u64| bar.set_position(done);
    let opts = captures::AnalyzeOptions {
        user,
        progress: Some(&progress),
    };
    let result = captures::analyze_path(path, &opts);
    bar.finish_and_clear();
    result.map_err(|e| coded(exit::INVALID, format!("{}: {e}", path.display())))
}

pub async fn run(ctx: &Ctx, cmd: CaptureCmd) -> anyhow::Result<u8> {
    let json = ctx.json;
    // Analysis is CPU-bound file work; it runs on a blocking thread.
    tokio::task::spawn_blocking(move || run_blocking(json, cmd)).await?
}

fn run_blocking(json: bool, cmd: CaptureCmd) -> anyhow::Result<u8> {
    let interactive = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cmd {
        CaptureCmd::Analyze {
            files,
            user,
            markdown,
        } => {
            let mut all = Vec::new();
            for f in &files {
                let a = analyze_one(f, user.clone(), interactive)?;
                all.push((f.display().to_string(), a));
            }
            if json {
                let out: Vec<_> = all
                    .iter()
                    .map(|(f, a)| serde_json::json!({"file": f, "analysis": a, "findings": captures::causes(a)}))
                    .collect();
                print_json(&out)?;
            } else {
                for (f, a) in &all {
                    if all.len() > 1 {
                        println!("== {f}");
                    }
                    if markdown {
                        print!("{}", captures::markdown_section(a));
                    } else {
                        print!("{}", captures::summary_table(a));
                    }
                }
            }
            let failed = all.iter().any(|(_, a)| captures::outcome_hint(a).is_some());
            Ok(if failed { exit::FINDING } else { exit::OK })
        }
        CaptureCmd::Ladder { file, call, svg } => {
            let a = analyze_one(&file, None, interactive)?;
            let text = captures::ladder_text(&a, &call).ok_or_else(|| {
                coded(
                    exit::NOT_FOUND,
                    format!("no call with Call-ID {call:?} in {}", file.display()),
                )
            })?;
            if let Some(out) = svg {
                let s = captures::ladder_svg(&a, &call).unwrap_or_default();
                std::fs::write(&out, s).map_err(|e| {
                    coded(
                        exit::INVALID,
                        format!("cannot write {}: {e}", out.display()),
                    )
                })?;
            }
            if json {
                print_json(&serde_json::json!({"call_id": call, "ladder": text}))?;
            } else {
                print!("{text}");
            }
            Ok(exit::OK)
        }
    }
}
