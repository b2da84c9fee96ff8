//! Loading the server configuration (`--config FILE`, `$DIALTONE_CONFIG`) for diagnose, sweep,
//! probe and serve, with `DIALTONE_CFG_*` environment overrides.

use crate::exit::{self, coded};
use std::path::{Path, PathBuf};

pub const EXAMPLE: &str = diagnosis::EXAMPLE;

/// The file to read: the flag, else `$DIALTONE_CONFIG`, else `./dialtone.toml` when present.
pub fn locate(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    if let Ok(p) = std::env::var("DIALTONE_CONFIG")
        && !p.is_empty()
    {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from("dialtone.toml");
    local.exists().then_some(local)
}

pub fn load(flag: Option<&Path>) -> anyhow::Result<diagnosis::Config> {
    let Some(path) = locate(flag) else {
        return Err(coded(
            exit::CONFIG,
            "no configuration: pass --config FILE or set DIALTONE_CONFIG (`dialtone config-example` prints one)",
        ));
    };
    load_file(&path)
}

pub fn load_file(path: &Path) -> anyhow::Result<diagnosis::Config> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        coded(
            exit::CONFIG,
            format!("cannot read configuration {}: {e}", path.display()),
        )
    })?;
    let env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| k.starts_with("DIALTONE_CFG_"))
        .collect();
    diagnosis::Config::from_toml(&text, &env)
        .map_err(|e| coded(exit::CONFIG, format!("{}: {e}", path.display())))
}
