//! Shared plumbing of the commands: the store, the runbooks, who acts, output helpers.

use crate::exit;
use anyhow::Context as _;
use std::path::PathBuf;

pub fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into a log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

pub struct Ctx {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub json: bool,
    pub actor: String,
    pub runbooks_dir: Option<PathBuf>,
}

impl Ctx {
    pub fn from_cli(cli: &crate::Cli) -> anyhow::Result<Ctx> {
        let actor = cli
            .actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "cli".to_string());
        Ok(Ctx {
            data_dir: cli.data_dir.clone(),
            database: cli.database.clone(),
            json: cli.json,
            actor,
            runbooks_dir: cli.runbooks.clone(),
        })
    }

    /// Where the embedded database lives when no URL is given.
    pub fn default_data_dir(&self) -> PathBuf {
        if let Some(d) = &self.data_dir {
            return d.clone();
        }
        if let Ok(x) = std::env::var("XDG_DATA_HOME") {
            return PathBuf::from(x).join("dialtone");
        }
        if let Ok(h) = std::env::var("HOME") {
            return PathBuf::from(h).join(".local/share/dialtone");
        }
        PathBuf::from(".dialtone")
    }

    pub async fn store(&self) -> anyhow::Result<incidents::Store> {
        match &self.database {
            Some(url) => incidents::Store::connect(url).await.with_context(|| {
                format!("while opening the database {}", incidents::redact_url(url))
            }),
            None => {
                let dir = self.default_data_dir();
                incidents::Store::open_data_dir(&dir)
                    .await
                    .with_context(|| format!("while opening the database in {}", dir.display()))
            }
        }
    }

    pub fn runbooks(&self) -> anyhow::Result<runbook::RunbookSet> {
        match &self.runbooks_dir {
            None => Ok(runbook::RunbookSet::builtin()),
            Some(dir) => load_runbook_dir(dir),
        }
    }
}

/// Reads every `*.toml` runbook of a directory; problems come back with file and line.
pub fn load_runbook_dir(dir: &std::path::Path) -> anyhow::Result<runbook::RunbookSet> {
    let mut sources = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| {
        exit::coded(
            exit::NOT_FOUND,
            format!("cannot read runbook directory {}: {e}", dir.display()),
        )
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(exit::coded(
            exit::NOT_FOUND,
            format!("no runbook files (*.toml) in {}", dir.display()),
        ));
    }
    for p in paths {
        let text = std::fs::read_to_string(&p)
            .map_err(|e| exit::coded(exit::INVALID, format!("cannot read {}: {e}", p.display())))?;
        sources.push((p.display().to_string(), text));
    }
    runbook::RunbookSet::from_sources(&sources).map_err(|diags| {
        let lines: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
        exit::coded(
            exit::INVALID,
            format!("invalid runbooks:\n{}", lines.join("\n")),
        )
    })
}

pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub fn fmt_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Parses `STEP=VALUE`.
pub fn parse_kv(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim().to_string()))
        }
        _ => Err(format!("expected STEP=VALUE, got {s:?}")),
    }
}

/// Writes attachments (name, bytes) into `dir` for analysis by path, under safe file names;
/// returns (original name, path) pairs.
pub fn write_attachments<'a>(
    dir: &std::path::Path,
    items: impl IntoIterator<Item = (&'a str, &'a [u8])>,
) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for (i, (name, bytes)) in items.into_iter().enumerate() {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("{i}-{safe}"));
        std::fs::write(&path, bytes)?;
        out.push((name.to_string(), path));
    }
    Ok(out)
}
