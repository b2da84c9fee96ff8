//! The shipped runbooks load cleanly and say what the design page says.

use runbook::RunbookSet;

#[test]
fn builtin_runbooks_load_without_diagnostics() {
    let sources: Vec<(String, String)> = runbook::BUILTIN_SOURCES
        .iter()
        .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
        .collect();
    if let Err(diags) = RunbookSet::from_sources(&sources) {
        let text: Vec<String> = diags.iter().map(ToString::to_string).collect();
        panic!("diagnostics:\n{}", text.join("\n"));
    }
    let set = RunbookSet::builtin();
    let ids: Vec<&str> = set.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "user-cant-call",
            "connection-issues",
            "license-problem",
            "user-not-found"
        ]
    );
}
