//! The arguments of `dialtone incident …`.

use crate::util::parse_kv;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Open an incident for an account.
    Open {
        /// The account (SIP user) of the user who can't call.
        #[arg(long)]
        account: String,
        /// Who reported it (the user's name or phone); defaults to the account.
        #[arg(long)]
        reporter: Option<String>,
        /// What the user said.
        #[arg(long, default_value = "User can't call")]
        description: String,
        /// The runbook to follow.
        #[arg(long, default_value = "user-cant-call")]
        runbook: String,
        /// Gate answers known at opening, e.g. gate.client_error=none (repeatable).
        #[arg(long = "answer", value_parser = parse_kv)]
        answers: Vec<(String, String)>,
    },
    /// List incidents.
    List {
        #[arg(long)]
        level: Option<String>,
        /// open, waiting_user, escalated or closed.
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        assignee: Option<String>,
        /// Only accounts containing this text.
        #[arg(long)]
        account: Option<String>,
        /// Only incidents this agent escalated.
        #[arg(long)]
        escalated_by: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// Find incidents: words in accounts, descriptions and notes; account:, reporter:, number:,
    /// outcome:, status:, from:YYYY-MM-DD, to:YYYY-MM-DD.
    Search(crate::search_cmd::SearchArgs),
    /// Show an incident: its steps, escalations, what comes next.
    Show { id: i64 },
    /// Answer a step of an incident.
    Answer {
        id: i64,
        /// The step id (e.g. l1.echo_call); defaults to the step the incident waits for.
        #[arg(long)]
        step: Option<String>,
        /// The answer (one of the step's allowed answers).
        value: String,
        #[arg(long)]
        note: Option<String>,
        /// Evidence as JSON, stored with the answer.
        #[arg(long)]
        evidence: Option<String>,
        /// Fail with a conflict unless the incident is still at this version.
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Change the answer of an earlier step: that answer and the ones after it are kept but
    /// marked replaced, and the runbook is walked again from the new answer.
    Revise {
        id: i64,
        /// The step whose answer changes (e.g. gate.client_error).
        #[arg(long)]
        step: String,
        /// The new answer.
        value: String,
        /// Why it changes (kept with the new record).
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Add an internal note (any time, by anyone following the incident).
    Note { id: i64, text: String },
    /// Escalate an incident to level 2 (with its kind) or level 3.
    Escalate {
        id: i64,
        /// l2 or l3; defaults to what the runbook says.
        #[arg(long)]
        to: Option<String>,
        /// user_configuration_check or server_status_check (level 2); defaults to the runbook's.
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Close an incident with the outcome the runbook reached, or another one with --reason.
    Close {
        id: i64,
        #[arg(long)]
        outcome: Option<String>,
        /// Why another outcome than the one the runbook reached (required then).
        #[arg(long)]
        reason: Option<String>,
        #[arg(long)]
        note: Option<String>,
        #[arg(long)]
        expect_version: Option<i64>,
    },
    /// Assign an incident (no name: unassign).
    Assign { id: i64, assignee: Option<String> },
    /// Set an incident's status: open, waiting_user (waiting for the user) or escalated.
    Status { id: i64, status: String },
    /// Attach a client log or a capture to an incident.
    Attach {
        id: i64,
        file: PathBuf,
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        /// Largest file accepted, in bytes (the web app's default upload limit).
        #[arg(long, env = "DIALTONE_MAX_UPLOAD", default_value_t = 20 * 1024 * 1024)]
        max_size: u64,
    },
    /// Show the audit trail of an incident.
    Audit { id: i64 },
    /// The escalation dossier: path, evidence, escalations, analysed attachments (Markdown).
    Dossier {
        id: i64,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Walk an incident interactively: the question, what to tell the user, the choices, and
    /// (with a configuration) the step's automated check.
    Work {
        id: i64,
        /// Server configuration: offers "c" to run a step's automated check.
        #[arg(long, env = "DIALTONE_CONFIG")]
        config: Option<PathBuf>,
    },
}
