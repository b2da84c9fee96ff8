//! `dialtone capture …`: analyse client logs and packet captures, draw call ladders.

use crate::exit::{self, coded};
use crate::util::print_json;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum CaptureCmd {
    /// Find the calls and registrations in logs or captures, and why they failed.
    ///
    /// Several capture files, a directory or a glob (a rotated ring buffer) are read as one
    /// capture in the time order of their first packets; .gz and .zst files are read as they
    /// are. A text log is analysed on its own. With --json the output is NDJSON: one object
    /// per call, registration and finding, then one summary object per input. RTP and RTCP
    /// are followed from each call's SDP: every answered call gets a media verdict (audio both
    /// ways, one way, none) with its reason and per-stream loss, jitter and gaps.
    Analyze {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Only this account's or number's traffic.
        #[arg(long)]
        user: Option<String>,
        /// Print the Markdown section for an incident dossier instead of the table.
        #[arg(long)]
        markdown: bool,
        /// List at most this many calls and registrations in the table (findings still count
        /// them all); --json streams every one whatever this limit.
        #[arg(long, default_value_t = 10_000)]
        keep: usize,
        /// Threads that read several capture files (0: one per core). The result does not
        /// depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
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

/// One input of `capture analyze`: the capture files read together, or one text log.
struct Group {
    name: String,
    files: Vec<PathBuf>,
    capture: bool,
}

/// Expand directories and globs, then put every capture file into one group and each text log
/// into a group of its own.
fn groups(paths: &[PathBuf]) -> anyhow::Result<Vec<Group>> {
    for p in paths {
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let pattern = name.is_some_and(|n| n.contains('*') || n.contains('?'));
        if !p.exists() && !pattern {
            return Err(coded(
                exit::NOT_FOUND,
                format!("cannot read {}: no such file", p.display()),
            ));
        }
    }
    let files =
        captures::input::expand(paths).map_err(|e| coded(exit::NOT_FOUND, e.to_string()))?;
    let mut caps = Vec::new();
    let mut out = Vec::new();
    for f in files {
        let kind =
            first_bytes(&f).map_err(|e| coded(exit::INVALID, format!("{}: {e}", f.display())))?;
        if captures::detect_kind(&kind).is_some_and(captures::InputKind::is_capture) {
            caps.push(f);
        } else {
            out.push(Group {
                name: f.display().to_string(),
                files: vec![f],
                capture: false,
            });
        }
    }
    if !caps.is_empty() {
        let name = if caps.len() == 1 {
            caps[0].display().to_string()
        } else {
            format!("{} capture files", caps.len())
        };
        out.insert(
            0,
            Group {
                name,
                files: caps,
                capture: true,
            },
        );
    }
    if out.is_empty() {
        return Err(coded(exit::NOT_FOUND, "no input file (empty directory?)"));
    }
    Ok(out)
}

fn first_bytes(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let (r, _, _) = captures::input::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    r.take(4096).read_to_end(&mut buf)?;
    Ok(buf)
}

fn progress_bar(show: bool, name: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let b = indicatif::ProgressBar::new(0);
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    b.set_message(name.to_owned());
    b
}

fn analyze_group(
    g: &Group,
    user: Option<String>,
    keep: Option<usize>,
    show_progress: bool,
    on_summary: Option<&dyn Fn(captures::Summary<'_>)>,
    threads: usize,
) -> anyhow::Result<captures::Analysis> {
    let bar = progress_bar(show_progress, &g.name);
    let progress = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let opts = captures::AnalyzeOptions {
        user,
        progress: show_progress.then_some(&progress as &dyn Fn(u64, u64)),
        keep,
        on_summary,
        cancel: None,
        threads,
    };
    let result = captures::analyze_paths(&g.files, &opts);
    bar.finish_and_clear();
    result.map_err(|e| coded(exit::INVALID, format!("{}: {e}", g.name)))
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
    let g = Group {
        name: path.display().to_string(),
        files: vec![path.to_owned()],
        capture: true,
    };
    analyze_group(&g, user, None, show_progress, None, 0)
}

/// NDJSON lines to stdout through one buffer; the first write error (a closed pipe) stops it.
struct Lines {
    out: std::sync::Mutex<(std::io::BufWriter<std::io::Stdout>, Option<std::io::Error>)>,
}

impl Lines {
    fn new() -> Self {
        Lines {
            out: std::sync::Mutex::new((
                std::io::BufWriter::with_capacity(1 << 16, std::io::stdout()),
                None,
            )),
        }
    }

    fn line<T: serde::Serialize + ?Sized>(&self, value: &T) {
        use std::io::Write;
        let Ok(mut g) = self.out.lock() else { return };
        let (w, err) = &mut *g;
        if err.is_some() {
            return;
        }
        let r = serde_json::to_writer(&mut *w, value)
            .map_err(std::io::Error::other)
            .and_then(|()| w.write_all(b"\n"));
        if let Err(e) = r {
            *err = Some(e);
        }
    }

    fn finish(self) -> anyhow::Result<()> {
        use std::io::Write;
        let (mut w, err) = self
            .out
            .into_inner()
            .map_err(|_| anyhow::anyhow!("output lock poisoned"))?;
        match err {
            Some(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            Some(e) => Err(e.into()),
            None => match w.flush() {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            },
        }
    }
}

pub fn run_blocking(json: bool, cmd: CaptureCmd) -> anyhow::Result<u8> {
    let interactive = !json && std::io::IsTerminal::is_terminal(&std::io::stderr());
    match cmd {
        CaptureCmd::Analyze {
            files,
            user,
            markdown,
            keep,
            threads,
        } => {
            let groups = groups(&files)?;
            let mut failed = false;
            if json {
                let lines = Lines::new();
                for g in &groups {
                    let emit = |s: captures::Summary<'_>| lines.line(&s);
                    // Captures stream every summary as it ends and keep none in memory; a log
                    // (small, and fixed up after reading) is listed from the kept summaries.
                    let a = if g.capture {
                        analyze_group(g, user.clone(), Some(0), false, Some(&emit), threads)?
                    } else {
                        let a = analyze_group(g, user.clone(), None, false, None, threads)?;
                        for r in &a.registrations {
                            emit(captures::Summary::Registration(r));
                        }
                        for c in &a.calls {
                            emit(captures::Summary::Call(c));
                        }
                        a
                    };
                    let findings = captures::causes(&a);
                    for f in &findings {
                        lines.line(
                            &serde_json::json!({"type": "finding", "input": g.name, "finding": f}),
                        );
                    }
                    failed |= findings.iter().any(|f| f.outcome.is_some());
                    lines.line(&serde_json::json!({
                        "type": "summary",
                        "input": g.name,
                        "files": g.files,
                        "input_kind": a.input_kind,
                        "stats": a.stats,
                        "users": a.users,
                        "log_events": a.log_events,
                        "warnings": a.warnings,
                        "unsignalled_streams": a.unsignalled_streams,
                        "outcome": captures::outcome_hint(&a).map(|o| o.id()),
                    }));
                }
                lines.finish()?;
            } else {
                use std::io::Write;
                let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
                for g in &groups {
                    let a = analyze_group(g, user.clone(), Some(keep), interactive, None, threads)?;
                    if groups.len() > 1 {
                        writeln!(out, "== {}", g.name)?;
                    }
                    if markdown {
                        write!(out, "{}", captures::markdown_section(&a))?;
                    } else {
                        write!(out, "{}", captures::summary_table(&a))?;
                    }
                    failed |= captures::outcome_hint(&a).is_some();
                    // The process ends right after: freeing every summary one by one is wasted work.
                    std::mem::forget(a);
                }
                match out.flush() {
                    Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                    _ => {}
                }
            }
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
