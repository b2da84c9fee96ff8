//! Broken runbook files, one per validation rule (`test_data/invalid/*.toml`): each must give
//! exactly the diagnostics its comments announce, at the right file, line and column.
//!
//! Comment lines in a file: `# rule: RULE` (the rule of the first diagnostic),
//! `# expect: FILE:LINE:COL: MESSAGE` (one per diagnostic, in order), and `# with-builtin`
//! (load the file next to the shipped runbooks, for rules that cross files).

use std::path::Path;

use runbook::{BUILTIN_SOURCES, RunbookSet};

fn check(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let directive = |prefix: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .map(|s| s.trim().to_owned())
            .collect()
    };
    let expected = directive("# expect:");
    let rule = directive("# rule:");
    let with_builtin = text.lines().any(|l| l.trim() == "# with-builtin");

    let mut sources: Vec<(String, String)> = Vec::new();
    if with_builtin {
        sources.extend(
            BUILTIN_SOURCES
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned())),
        );
    }
    sources.push((name.clone(), text.clone()));
    let diags = match RunbookSet::from_sources(&sources) {
        Ok(_) => return Some(format!("{name}: loaded without diagnostics")),
        Err(d) => d,
    };
    let got: Vec<String> = diags.iter().map(ToString::to_string).collect();
    if got != expected {
        return Some(format!(
            "{name}:\n  expected:\n    {}\n  got:\n    {}",
            expected.join("\n    "),
            got.join("\n    ")
        ));
    }
    let [rule] = rule.as_slice() else {
        return Some(format!("{name}: needs exactly one `# rule:` line"));
    };
    // The first diagnostic is the one the file demonstrates; later ones are consequences.
    let got_rule = serde_json::to_value(diags[0].rule).unwrap();
    if got_rule.as_str() != Some(rule.as_str()) {
        return Some(format!(
            "{name}: `{}` comes from rule {got_rule}, not {rule}",
            diags[0]
        ));
    }
    None
}

#[test]
fn each_broken_file_gives_its_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let failures: Vec<String> = files.iter().filter_map(|f| check(f)).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // One file per rule: every rule of the validator has its broken example.
    let mut rules: Vec<String> = files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter_map(|l| l.strip_prefix("# rule:").map(|r| r.trim().to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    rules.sort();
    rules.dedup();
    let all = [
        "syntax",
        "duplicate_runbook",
        "duplicate_step",
        "duplicate_answer",
        "duplicate_outcome",
        "unknown_level",
        "unknown_disposition",
        "unknown_step",
        "unknown_runbook",
        "unknown_outcome",
        "unknown_entry_step",
        "unknown_escalation_kind",
        "invalid_escalation",
        "unknown_default",
        "no_answers",
        "answer_no_branch",
        "answer_many_branches",
        "unreachable_step",
        "loop_without_exit",
        "missing_guidance",
    ];
    let missing: Vec<&str> = all
        .iter()
        .copied()
        .filter(|r| !rules.iter().any(|x| x == r))
        .collect();
    assert!(missing.is_empty(), "no broken file for rules {missing:?}");
}

#[test]
fn diagnostics_survive_bad_bytes_and_odd_positions() {
    // Loading never panics: empty text, a lone key, multi-byte characters before an error.
    for text in [
        "",
        "id =",
        "titlé = \"é\"\nid = 3",
        "[[steps]]\n[[steps]]",
        "\u{feff}id = \"x\"",
    ] {
        let r = RunbookSet::from_sources(&[("x.toml".to_owned(), text.to_owned())]);
        let diags = r.expect_err(text);
        assert!(
            diags.iter().all(|d| d.line >= 1 && d.column >= 1),
            "{diags:?}"
        );
    }
}
