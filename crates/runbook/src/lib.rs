//! Runbooks as data: the TOML format, its validation, and the engine that walks a runbook from
//! the facts known so far to the next question or to an outcome.
//!
//! This crate is pure: no IO beyond the files embedded at build time, no async, no knowledge of
//! SIP, of the server or of incidents. Loading never panics on input; it returns every problem
//! as a [`Diagnostic`] with file, line and column.
//!
//! ```
//! use runbook::{evaluate, EvalOptions, Fact, Facts, RunbookSet, Status};
//! let set = RunbookSet::builtin();
//! let mut facts = Facts::new();
//! facts.insert("gate.operational_requirements", Fact::agent("yes"));
//! let ev = evaluate(&set, "user-cant-call", &facts, &EvalOptions::default()).unwrap();
//! assert!(matches!(ev.status, Status::Finished(_)));
//! ```

mod engine;
mod load;
mod mermaid;
mod model;

pub use engine::{
    Ending, EvalOptions, Evaluation, Fact, Facts, PathEntry, Source, Status, evaluate,
    evaluate_from_entry, evaluate_from_step,
};
pub use load::{Diagnostic, Rule};
pub use mermaid::to_mermaid;
pub use model::{
    AnswerDef, BUILTIN_SOURCES, Check, Disposition, EscalationDef, Level, OutcomeDef, Runbook,
    RunbookSet, Step, Target, allowed_answers,
};

/// Errors of the engine (loading reports [`Diagnostic`]s instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("unknown runbook `{0}`")]
    UnknownRunbook(String),
    #[error("unknown step `{0}`")]
    UnknownStep(String),
    #[error("runbook `{runbook}` has no entry for escalation kind `{kind}`")]
    UnknownEntry { runbook: String, kind: String },
    #[error("`{value}` is not an allowed answer at step `{step}` (allowed: {})", allowed.join(", "))]
    InvalidAnswer {
        step: String,
        value: String,
        allowed: Vec<String>,
    },
    #[error("unknown level `{0}` (expected gate, l1, l2 or l3)")]
    UnknownLevel(String),
    #[error("unknown answer source `{0}` (expected agent, automated or assumed)")]
    UnknownSource(String),
    #[error("unknown automated check `{0}`")]
    UnknownCheck(String),
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
