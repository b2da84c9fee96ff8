//! `dialtone doctor`: what dialtone can read on the configured server, step by step, and what
//! would fill each gap. The first command a new operator runs.

use crate::exit::{self, coded};
use crate::util::{Ctx, print_json};
use clap::Args;
use diagnosis::Diagnoser;
use diagnosis::doctor::DoctorReport;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The configuration file (server, management interface, probe accounts).
    #[arg(long, env = "DIALTONE_CONFIG")]
    pub config: Option<PathBuf>,
}

pub async fn doctor(ctx: &Ctx, args: DoctorArgs) -> anyhow::Result<u8> {
    let cfg = crate::config::load(args.config.as_deref())?;
    let set = Arc::new(ctx.runbooks()?);
    let diag = Diagnoser::from_config(cfg, set).map_err(|e| coded(exit::CONFIG, e.to_string()))?;
    let report = diag.doctor().await;
    if ctx.json {
        print_json(&report)?;
    } else {
        print!("{}", render(&report));
    }
    Ok(if report.gaps().next().is_some() {
        exit::FINDING
    } else {
        exit::OK
    })
}

fn mark(ok: bool) -> &'static str {
    if ok { "ok  " } else { "GAP " }
}

/// The report as text: sources, steps, then the schema.
pub fn render(r: &DoctorReport) -> String {
    let mut out = String::new();
    out.push_str(&format!("Server state: {}\n", r.backend));
    for n in &r.capabilities.notes {
        out.push_str(&format!("  note: {n}\n"));
    }
    out.push_str("\nEvidence sources:\n");
    for s in r.capabilities.sources.iter().chain(r.probes.iter()) {
        out.push_str(&format!("  {} {:<16} ", mark(s.available), s.evidence));
        if s.available {
            out.push_str(&format!("from {}\n", s.from));
        } else {
            out.push_str(&format!(
                "missing: {}\n{:22}fix: {}\n",
                s.missing.as_deref().unwrap_or("unknown"),
                "",
                s.fix.as_deref().unwrap_or("-")
            ));
        }
    }
    out.push_str("\nRunbook steps with an automated check:\n");
    for st in &r.steps {
        out.push_str(&format!(
            "  {} {:<34} {}\n",
            mark(st.ready),
            st.step,
            st.title
        ));
        if st.sources.is_empty() {
            out.push_str(&format!(
                "{:9}no automated check `{}` exists: an agent answers this step\n",
                "", st.check
            ));
        }
        for s in st.sources.iter().filter(|s| !s.available) {
            out.push_str(&format!(
                "{:9}{}: missing: {} (fix: {})\n",
                "",
                s.evidence,
                s.missing.as_deref().unwrap_or("unknown"),
                s.fix.as_deref().unwrap_or("-")
            ));
        }
    }
    let gaps = r.gaps().count();
    out.push_str(&format!(
        "\n{} of {} steps can be answered from evidence on this server; {gaps} need a fix or an agent.\n",
        r.steps.len() - gaps,
        r.steps.len()
    ));
    if !r.capabilities.schema.is_empty() {
        out.push_str("\nSchema found:\n");
        for (t, cols) in &r.capabilities.schema {
            out.push_str(&format!("  {t}: {}\n", cols.join(", ")));
        }
    }
    out
}
