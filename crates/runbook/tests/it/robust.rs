//! Loading never panics on a damaged runbook file, and every diagnostic points inside it.

use proptest::prelude::*;
use runbook::{BUILTIN_SOURCES, RunbookSet};

/// A shipped file with a byte range replaced by arbitrary text (kept on char boundaries).
fn damaged() -> impl Strategy<Value = String> {
    (
        0..BUILTIN_SOURCES.len(),
        any::<prop::sample::Index>(),
        0..40usize,
        ".{0,12}",
    )
        .prop_map(|(file, at, len, insert)| {
            let text = BUILTIN_SOURCES[file].1;
            let mut start = at.index(text.len());
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}{insert}{}", &text[..start], &text[end..])
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn damaged_files_give_diagnostics_not_panics(text in damaged()) {
        let lines = text.lines().count().max(1);
        if let Err(diags) = RunbookSet::from_sources_over_builtin(&[("damaged.toml".to_owned(), text.clone())]) {
            prop_assert!(!diags.is_empty());
            for d in &diags {
                prop_assert!(d.line >= 1 && d.column >= 1, "{}", d);
                if d.file == "damaged.toml" {
                    prop_assert!(d.line <= lines + 1, "{} (file has {} lines)", d, lines);
                }
            }
        }
    }
}
