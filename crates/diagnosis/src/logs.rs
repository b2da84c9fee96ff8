//! The client-logs step: attached logs and captures analysed by the `captures` crate.

use crate::evidence::{LogAnalysis, LogFinding};
use std::path::Path;

/// Analyses one attachment, keeping only `user`'s traffic when that selects anything.
pub fn analyse(name: &str, path: &Path, user: &str) -> LogAnalysis {
    let result = captures::analyze_for_user(|| std::fs::File::open(path), user);
    match result {
        Ok(a) => {
            let findings = captures::causes(&a)
                .into_iter()
                .map(|f| LogFinding {
                    attachment: name.to_string(),
                    outcome_hint: f.outcome.map(|o| o.id().to_string()),
                    cause: if f.count > 1 {
                        format!("{} ({} times)", f.text, f.count)
                    } else {
                        f.text
                    },
                })
                .collect();
            LogAnalysis {
                attachment: name.to_string(),
                calls: a.calls.len(),
                registrations: a.registrations.len(),
                findings,
                warnings: a.warnings,
            }
        }
        Err(e) => LogAnalysis {
            attachment: name.to_string(),
            calls: 0,
            registrations: 0,
            findings: Vec::new(),
            warnings: vec![format!("could not be analysed: {e}")],
        },
    }
}
