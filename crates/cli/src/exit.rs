//! Exit codes of the `dialtone` command, and how errors map to them.

use std::fmt::Write as _;

pub const OK: u8 = 0;
/// An unexpected failure.
pub const INTERNAL: u8 = 1;
// 2 is clap's usage error.
/// The incident, step, runbook, account or file named does not exist.
pub const NOT_FOUND: u8 = 3;
/// Someone else changed the incident first; nothing was written.
pub const CONFLICT: u8 = 4;
/// The input was refused (an answer not allowed at that step, a closed incident, a bad runbook file).
pub const INVALID: u8 = 5;
/// The database could not be reached or read.
pub const STORAGE: u8 = 6;
/// The configuration file or a setting is wrong.
pub const CONFIG: u8 = 7;
/// A probe or diagnosis ran and found a problem (the verdict is not ok).
pub const FINDING: u8 = 10;

pub const EXIT_CODES_HELP: &str = "Exit codes:
  0  success
  1  unexpected failure
  2  usage error (bad arguments)
  3  not found (incident, step, runbook, file)
  4  conflict: someone else changed the incident first; nothing was written
  5  invalid input (answer not allowed at this step, closed incident, broken runbook file)
  6  database unreachable or unreadable
  7  configuration error (the message names the key)
 10  a probe, diagnosis or sweep ran and found a problem";

/// A CLI-level error that already knows its exit code.
#[derive(Debug)]
pub struct Coded {
    pub code: u8,
    pub message: String,
}

impl std::fmt::Display for Coded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Coded {}

pub fn coded(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        message: message.into(),
    })
}

pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(c) = cause.downcast_ref::<Coded>() {
            return c.code;
        }
        if let Some(e) = cause.downcast_ref::<incidents::Error>() {
            return match e {
                incidents::Error::NotFound { .. } => NOT_FOUND,
                incidents::Error::Conflict { .. } => CONFLICT,
                incidents::Error::Closed { .. }
                | incidents::Error::Invalid(_)
                | incidents::Error::AlreadyExists { .. } => INVALID,
                incidents::Error::Config(_) => CONFIG,
                _ => STORAGE,
            };
        }
        if cause.is::<runbook::Error>() {
            return INVALID;
        }
    }
    INTERNAL
}

/// The error chain in one line: "what we were doing: why".
pub fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            out.push_str(": ");
        }
        let _ = write!(out, "{cause}");
    }
    out
}
