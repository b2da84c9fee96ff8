//! The file backend over the scenario directories in test_data/files (each with an expect.json)
//! and the malformed exports in test_data/files-bad (each with the error it must produce).

use std::path::{Path, PathBuf};

use server_state::{FileState, ServerState};

use crate::expect::{Expect, check};

fn data_dirs(kind: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(kind);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(!dirs.is_empty(), "no scenarios in {}", root.display());
    dirs
}

#[tokio::test]
async fn scenarios_answer_as_expected() {
    let dirs = data_dirs("files");
    for dir in &dirs {
        let label = dir.file_name().unwrap().to_string_lossy().to_string();
        let expect: Expect =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap())
                .unwrap_or_else(|e| panic!("{label}/expect.json: {e}"));
        let state = FileState::open(dir).unwrap_or_else(|e| panic!("{label}: open: {e}"));
        check(&state, &expect, &label).await;
        assert!(state.describe().contains(&label), "{}", state.describe());
    }
    assert!(dirs.len() >= 8, "scenarios: {dirs:?}");
}

#[test]
fn malformed_exports_name_file_and_line() {
    for dir in data_dirs("files-bad") {
        let label = dir.file_name().unwrap().to_string_lossy().to_string();
        let want = std::fs::read_to_string(dir.join("expect-error.txt")).unwrap();
        let err = FileState::open(&dir).expect_err(&label).to_string();
        let want = want.trim();
        // Errors start with the file's path; compare from its file name on.
        let from_name = err.rsplit('/').next().unwrap_or(&err);
        assert!(
            from_name.starts_with(want) || err.contains(want),
            "{label}: got {err:?}, want it to start with {want:?}"
        );
    }
}

#[tokio::test]
async fn dialled_numbers_route_by_longest_prefix() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("accounts.csv"), "user\nalice\n").unwrap();
    std::fs::write(
        dir.path().join("trunks.json"),
        r#"[{"id":"intl","name":"i","prefixes":["900"],"destinations":[]},
            {"id":"national","name":"n","prefixes":["9"],"destinations":[]}]"#,
    )
    .unwrap();
    let state = FileState::open(dir.path()).unwrap();
    for (dialled, want) in [
        ("90044", Some("intl")),
        ("95551234", Some("national")),
        ("1002", None),
        ("", None),
    ] {
        assert_eq!(
            state.route_for(dialled).await.unwrap().as_deref(),
            want,
            "{dialled}"
        );
    }
}
