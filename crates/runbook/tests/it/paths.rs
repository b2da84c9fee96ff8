//! Walks every branch of every shipped runbook from the tables in `test_data/paths/`, and fails
//! when a (step, answer) pair of a runbook has no row that walks it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use runbook::{
    Ending, EvalOptions, Evaluation, Fact, Facts, Level, RunbookSet, Source, Status, evaluate,
    evaluate_from_entry, evaluate_from_step,
};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    runbook: String,
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    /// Overrides the table's runbook.
    runbook: Option<String>,
    /// Start at this step instead of the runbook's start.
    start: Option<String>,
    /// Start at the runbook's entry for this escalation kind.
    entry: Option<String>,
    max_level: Option<String>,
    #[serde(default)]
    follow_redirects: bool,
    #[serde(default)]
    use_defaults: bool,
    answers: Vec<String>,
    path: Option<Vec<String>>,
    expect: String,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/paths")
}

/// "step=value" or "step=value@source".
fn parse_answer(s: &str) -> (String, Fact) {
    let (step, rest) = s
        .split_once('=')
        .unwrap_or_else(|| panic!("bad answer `{s}`"));
    let (value, source) = match rest.split_once('@') {
        Some((v, src)) => (v, src.parse::<Source>().unwrap()),
        None => (rest, Source::Agent),
    };
    (step.to_owned(), Fact::new(value, source))
}

fn show_path(ev: &Evaluation) -> Vec<String> {
    ev.path
        .iter()
        .map(|p| match p.source {
            Source::Agent => format!("{}={}", p.step, p.answer),
            s => format!("{}={}@{s}", p.step, p.answer),
        })
        .collect()
}

fn show_status(status: &Status) -> String {
    match status {
        Status::NeedsAnswer { runbook, step } => format!("needs {runbook}/{step}"),
        Status::Finished(Ending::Outcome { runbook, outcome }) => {
            format!("outcome {runbook}/{outcome}")
        }
        Status::Finished(Ending::Escalated { level, kind }) => match kind {
            Some(k) => format!("escalated {level} {k}"),
            None => format!("escalated {level}"),
        },
        Status::Finished(Ending::Redirected { runbook }) => format!("redirected {runbook}"),
    }
}

/// Runs one case; returns the problem, if any, and every (runbook, step, answer) it walked.
fn run_case(
    set: &RunbookSet,
    default_runbook: &str,
    case: &Case,
    walked: &mut BTreeSet<(String, String, String)>,
) -> Option<String> {
    let runbook = case.runbook.as_deref().unwrap_or(default_runbook);
    let facts: Facts = case.answers.iter().map(|a| parse_answer(a)).collect();
    let opts = EvalOptions {
        max_level: case
            .max_level
            .as_deref()
            .map_or(Level::L1, |l| l.parse().unwrap()),
        follow_redirects: case.follow_redirects,
        use_defaults: case.use_defaults,
    };
    let result = match (&case.start, &case.entry) {
        (Some(step), _) => evaluate_from_step(set, step, &facts, &opts),
        (None, Some(kind)) => evaluate_from_entry(set, runbook, kind, &facts, &opts),
        (None, None) => evaluate(set, runbook, &facts, &opts),
    };
    let (got_path, got) = match result {
        Ok(ev) => {
            for p in &ev.path {
                // The path names the runbook that holds each step.
                match set.step(&p.step) {
                    Some((rb, _)) if rb.id == p.runbook => {}
                    _ => return Some(format!("path entry {p:?} names the wrong runbook")),
                }
                walked.insert((p.runbook.clone(), p.step.clone(), p.answer.clone()));
            }
            (show_path(&ev), show_status(&ev.status))
        }
        Err(e) => (Vec::new(), format!("error: {e}")),
    };
    let want_path = match (&case.path, got.starts_with("error: ")) {
        (Some(p), _) => p.clone(),
        (None, true) => Vec::new(),
        (None, false) => case.answers.clone(),
    };
    if got != case.expect || got_path != want_path {
        return Some(format!(
            "case `{}`:\n  expected {}\n       got {}\n  expected path {want_path:?}\n       got path {got_path:?}",
            case.name, case.expect, got
        ));
    }
    None
}

#[test]
fn every_branch_of_every_runbook_is_walked() {
    let set = RunbookSet::builtin();
    let mut walked = BTreeSet::new();
    let mut failures = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut cases = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let table: Table =
            toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for case in &table.case {
            cases += 1;
            if let Some(problem) = run_case(&set, &table.runbook, case, &mut walked) {
                failures.push(format!("{}: {problem}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    let missing: Vec<String> = set
        .iter()
        .flat_map(|rb| {
            rb.steps.iter().flat_map(move |s| {
                s.answers
                    .iter()
                    .map(move |a| (rb.id.clone(), s.id.clone(), a.value.clone()))
            })
        })
        .filter(|pair| !walked.contains(pair))
        .map(|(r, s, a)| format!("{r}: {s}={a}"))
        .collect();
    assert!(
        missing.is_empty(),
        "no row walks these branches:\n{}",
        missing.join("\n")
    );
    // Every runbook has its own table, so a new runbook without one fails here.
    for rb in set.iter() {
        assert!(
            files
                .iter()
                .any(|f| f.file_stem().is_some_and(|s| s == rb.id.as_str())),
            "runbook `{}` has no table in test_data/paths/",
            rb.id
        );
    }
    assert!(cases >= 50, "only {cases} cases");
}
