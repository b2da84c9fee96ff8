//! Running the built `dialtone` binary in a private data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `dialtone` binary under test: `DIALTONE_BIN` when set (a copy made for a run), else the
/// one cargo built for these tests.
pub fn bin() -> PathBuf {
    std::env::var_os("DIALTONE_BIN")
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_dialtone")))
}

pub struct Cli {
    pub dir: tempfile::TempDir,
    pub database: Option<String>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Cli {
    pub fn sqlite() -> Cli {
        Cli {
            dir: tempfile::tempdir().expect("tempdir"),
            database: None,
        }
    }

    pub fn with_database(url: String) -> Cli {
        Cli {
            dir: tempfile::tempdir().expect("tempdir"),
            database: Some(url),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.env_remove("DIALTONE_CONFIG")
            .env_remove("DIALTONE_DATABASE")
            .env("DIALTONE_USER", "agent-ann")
            .current_dir(self.dir.path());
        match &self.database {
            Some(url) => c.arg("--database").arg(url),
            None => c.arg("--data-dir").arg(self.dir.path().join("data")),
        };
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn dialtone");
        {
            use std::io::Write;
            let mut input = child.stdin.take().expect("stdin");
            let _ = input.write_all(stdin.as_bytes());
        }
        let out: Output = child.wait_with_output().expect("wait dialtone");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(
            r.code, 0,
            "dialtone {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r
    }
}

/// A fresh PostgreSQL database on the test server (DIALTONE_TEST_PG_URL), dropped on drop.
pub struct PgDb {
    pub url: String,
    admin: String,
    name: String,
}

impl PgDb {
    pub fn create() -> PgDb {
        let admin = std::env::var("DIALTONE_TEST_PG_URL").expect(
            "DIALTONE_TEST_PG_URL is not set: start PostgreSQL with `scripts/pg.sh start` and export its URL (./run test does both)",
        );
        let name = format!("dialtone_cli_{}_{}", std::process::id(), rand_suffix());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin
            .rsplit_once('/')
            .map(|(b, _)| b.to_string())
            .unwrap_or(admin.clone());
        PgDb {
            url: format!("{base}/{name}"),
            admin,
            name,
        }
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        psql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0)
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .arg(url)
        .arg("-qc")
        .arg(sql)
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}
