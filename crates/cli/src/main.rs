//! The `dialtone` command line: incidents, runbooks, probes, diagnosis, captures, SIP events and the web app.
//!
//! This is the edge of the system: it alone reads arguments, the environment and
//! configuration files, sets up logging, and maps errors to exit codes.

mod capture_cmd;
mod config;
mod diagnose_cmd;
mod doctor_cmd;
mod dossier;
mod events_cmd;
mod exit;
mod incident_cmd;
mod probe_cmd;
mod report_cmd;
mod runbook_cmd;
mod search_cmd;
mod serve_cmd;
mod store_cmd;
mod util;
mod webhook;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Find out why a user can't call, fast, with proof; close or escalate the incident the right way.
#[derive(Parser, Debug)]
#[command(name = "dialtone", version, about, long_about = None)]
#[command(after_help = exit::EXIT_CODES_HELP)]
pub struct Cli {
    /// Directory holding the embedded SQLite database (dialtone.sqlite).
    #[arg(long, global = true, env = "DIALTONE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (sqlite://… or postgres://…); overrides --data-dir.
    #[arg(long, global = true, env = "DIALTONE_DATABASE")]
    pub database: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Who is acting (recorded in the audit log); defaults to $USER.
    #[arg(long = "as", global = true, env = "DIALTONE_USER")]
    pub actor: Option<String>,
    /// Directory of runbook files to use instead of the built-in ones.
    #[arg(long, global = true, env = "DIALTONE_RUNBOOKS")]
    pub runbooks: Option<PathBuf>,
    /// Log filter (e.g. "info", "dialtone=debug"); logs go to stderr.
    #[arg(long, global = true, env = "DIALTONE_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Open, list, show, answer, escalate, close and work incidents.
    #[command(subcommand)]
    Incident(incident_cmd::IncidentCmd),
    /// List, show, check and draw runbooks.
    #[command(subcommand)]
    Runbook(runbook_cmd::RunbookCmd),
    /// Probe a SIP server as a client would: OPTIONS, REGISTER, a call, an echo call.
    #[command(subcommand)]
    Probe(probe_cmd::ProbeCmd),
    /// Walk "User can't call" for an account from evidence gathered automatically.
    Diagnose(diagnose_cmd::DiagnoseArgs),
    /// Check every account of the server at once.
    Sweep(diagnose_cmd::SweepArgs),
    /// Show what dialtone can read on the configured server, step by step, and what is missing.
    Doctor(doctor_cmd::DoctorArgs),
    /// Analyse client logs and packet captures.
    #[command(subcommand)]
    Capture(capture_cmd::CaptureCmd),
    /// Run the agents' web app.
    Serve(serve_cmd::ServeArgs),
    /// Receive SIP traces over HEPv3 and keep a window of SIP events per account.
    Collect(events_cmd::CollectArgs),
    /// An account's recent SIP events (registrations, calls) from the HEP window.
    Events(events_cmd::EventsArgs),
    /// The support lead's reports: time to resolve, escalations, automation... (`all` for every one).
    Report(report_cmd::ReportArgs),
    /// The webhooks' delivery log, redelivery, and checking a webhook file.
    #[command(subcommand)]
    Webhook(webhook::WebhookCmd),
    /// Manage the web app's users.
    #[command(subcommand)]
    User(serve_cmd::UserCmd),
    /// Check the audit log's hash chain.
    #[command(subcommand)]
    Audit(store_cmd::AuditCmd),
    /// Copy the SQLite store into FILE, consistently, while it is in use (restore: use FILE as
    /// the database, e.g. --database sqlite:///path/FILE).
    Backup { file: PathBuf },
    /// Print a complete example configuration file.
    ConfigExample,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    util::init_logging(&cli.log);
    // Capture analysis is CPU-bound file work with nothing async in it: it runs on the main
    // thread without starting the runtime and its worker threads.
    let cli = match cli {
        Cli {
            command: Command::Capture(cmd),
            json,
            ..
        } => return exit_code(capture_cmd::run_blocking(json, cmd)),
        other => other,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dialtone: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    exit_code(runtime.block_on(run(cli)))
}

fn exit_code(result: anyhow::Result<u8>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            let code = exit::code_for(&err);
            eprintln!("dialtone: {}", exit::describe(&err));
            ExitCode::from(code)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let ctx = util::Ctx::from_cli(&cli)?;
    match cli.command {
        Command::Incident(cmd) => incident_cmd::run(&ctx, cmd).await,
        Command::Runbook(cmd) => runbook_cmd::run(&ctx, cmd).await,
        Command::Probe(cmd) => probe_cmd::run(&ctx, cmd).await,
        Command::Diagnose(args) => diagnose_cmd::diagnose(&ctx, args).await,
        Command::Sweep(args) => diagnose_cmd::sweep(&ctx, args).await,
        Command::Doctor(args) => doctor_cmd::doctor(&ctx, args).await,
        Command::Capture(cmd) => capture_cmd::run_blocking(ctx.json, cmd),
        Command::Serve(args) => serve_cmd::serve(&ctx, args).await,
        Command::Collect(args) => events_cmd::collect(&ctx, args).await,
        Command::Events(args) => events_cmd::events(&ctx, args).await,
        Command::Report(args) => report_cmd::report(&ctx, args).await,
        Command::Webhook(cmd) => webhook::command(&ctx, cmd).await,
        Command::User(cmd) => serve_cmd::user(&ctx, cmd).await,
        Command::Audit(cmd) => store_cmd::audit(&ctx, cmd).await,
        Command::Backup { file } => store_cmd::backup(&ctx, file).await,
        Command::ConfigExample => {
            print!("{}", config::EXAMPLE);
            Ok(exit::OK)
        }
    }
}
