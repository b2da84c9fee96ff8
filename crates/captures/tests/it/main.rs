//! Integration tests of the captures crate: one binary, one module per feature.

mod files;
mod live;
mod media;
mod media_live;
mod pcapgen;
mod render;
mod robustness;
mod scanner;
mod sdp;
mod snapshots;
mod traffic;

use std::path::{Path, PathBuf};

/// `crates/captures/test_data/<name>`.
pub fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data")
        .join(name)
}

/// Analyse a test file with an optional user filter; bad files are test failures.
pub fn analyze(name: &str, user: Option<&str>) -> captures::Analysis {
    let opts = captures::AnalyzeOptions {
        user: user.map(str::to_owned),
        progress: None,
        ..Default::default()
    };
    match captures::analyze_path(&data(name), &opts) {
        Ok(a) => a,
        Err(e) => panic!("{name}: {e}"),
    }
}
