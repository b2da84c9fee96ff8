//! Test helper that starts a private dialtone SIP lab (Kamailio + SIPp, see `lab/`) on free loopback ports.
//!
//! Each [`Lab`] gets its own temporary run directory and its own block of
//! ports, so tests run in parallel, each against its own server. Dropping the
//! `Lab` stops it. Everything is driven through the lab's shell scripts and
//! the `sipp` and `sqlite3` programs; every wait is bounded.
//!
//! ```no_run
//! let lab = testlab::Lab::start()?;
//! let alice = lab.account("alice").expect("seeded");
//! let outcome = lab.sipp_register(&alice.user, &alice.password)?;
//! assert_eq!(outcome.final_status, Some(200));
//! # Ok::<(), testlab::Error>(())
//! ```

mod db;
mod env;
mod process;
mod rpc;
mod sipp;
mod variant;

pub use env::MYSQL_URL_VAR;
use env::{accounts_from_env, mysql_admin_url, parse_env};
use process::{SCRIPT_TIMEOUT, pick_port_block, run_bounded, status_text};
pub use sipp::{SippOutcome, SippPhone};
use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
pub use variant::{
    AccSchema, AuthMode, AuthStore, DbEngine, DigestAlgorithm, LabOptions, TraceMode, TrunkMode,
    Variant,
};

/// Everything that can go wrong while driving the lab.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `lab/start.sh` failed on every attempt.
    #[error("the lab did not start after {attempts} attempt(s): {stderr}")]
    Start {
        /// How many port blocks were tried.
        attempts: u32,
        /// The last error output of start.sh.
        stderr: String,
    },
    /// A lab script (fault.sh, stop.sh) or a tool exited with an error.
    #[error("{what} failed ({status}): {stderr}")]
    Command {
        /// The command, without secrets.
        what: String,
        /// Its exit status.
        status: String,
        /// Its error output.
        stderr: String,
    },
    /// A command did not finish within its bound.
    #[error("{what} did not finish within {timeout:?}")]
    Timeout {
        /// The command, without secrets.
        what: String,
        /// The bound.
        timeout: Duration,
    },
    /// `lab.env` lacks a key or has a malformed value.
    #[error("lab.env: {0}")]
    Env(String),
    /// The JSON-RPC interface answered with an error or garbage.
    #[error("rpc {method}: {message}")]
    Rpc {
        /// The RPC method called.
        method: String,
        /// The error message from Kamailio, or what was wrong with the answer.
        message: String,
    },
    /// An argument was rejected before anything was run.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Something the lab needs from the environment is missing (e.g. the MariaDB URL).
    #[error("lab setup: {0}")]
    Setup(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// A seeded account of the lab.
#[derive(Clone, PartialEq, Eq)]
pub struct LabAccount {
    /// SIP user name (also the digest user name).
    pub user: String,
    /// Digest password.
    pub password: String,
    /// Virtual numbers, primary first.
    pub numbers: Vec<String>,
}

impl fmt::Debug for LabAccount {
    // The password never appears in Debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabAccount")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("numbers", &self.numbers)
            .finish()
    }
}

/// A running lab. Dropping it stops the lab and removes its run directory.
pub struct Lab {
    run_dir: PathBuf,
    // Held for its Drop: removes the directory (None when kept).
    _tmp: Option<tempfile::TempDir>,
    lab_dir: PathBuf,
    env: BTreeMap<String, String>,
    accounts: Vec<LabAccount>,
    sipp_runs: AtomicU64,
    variant: Variant,
}

impl fmt::Debug for Lab {
    // lab.env holds passwords: show only where the lab is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lab")
            .field("run_dir", &self.run_dir)
            .field("sip_port", &self.sip_port())
            .field("tls_port", &self.tls_port())
            .field("rpc_url", &self.rpc_url())
            .finish_non_exhaustive()
    }
}

fn check_word(what: &str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.+-*#".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!("{what} {value:?}")))
    }
}

impl Lab {
    /// Starts a lab with default options on free ports.
    pub fn start() -> Result<Lab> {
        Self::start_with(LabOptions::default())
    }

    /// Starts a lab with `options`. Retries on a port clash with another
    /// block of ports, at most `options.attempts` times.
    pub fn start_with(options: LabOptions) -> Result<Lab> {
        let variant_env = options.variant.env()?;
        let mysql_url = if options.variant.db == DbEngine::Mysql {
            Some(mysql_admin_url(|k| std::env::var(k).ok())?)
        } else {
            None
        };
        let lab_dir = Self::lab_dir()?;
        let tmp = tempfile::Builder::new()
            .prefix("dialtone-lab-")
            .tempdir()
            .map_err(io_err("creating the run directory"))?;
        let run_dir = tmp.path().to_path_buf();
        let attempts = options.attempts.max(1);
        let mut last_err = String::new();
        for _ in 0..attempts {
            let Some(block) = pick_port_block() else {
                last_err = "no free block of 16 ports found".into();
                continue;
            };
            let mut cmd = Command::new("bash");
            cmd.arg(lab_dir.join("start.sh")).arg(&run_dir);
            for (k, v) in block.env() {
                cmd.env(k, v);
            }
            cmd.env("LAB_IP", "127.0.0.1");
            cmd.env_remove("LAB_DOMAIN").env_remove("LAB_KEEP_DB");
            for k in [
                "LAB_HEP_ADDR",
                "LAB_USRLOC_TIMER",
                "LAB_DOMAIN2",
                "LAB_SEED_ACCOUNTS",
                "LAB_SEED_ACCOUNTS2",
            ] {
                cmd.env_remove(k);
            }
            for (k, v) in &variant_env {
                cmd.env(k, v);
            }
            match &mysql_url {
                Some(url) => cmd.env("LAB_MYSQL_ADMIN_URL", url),
                None => cmd.env_remove("LAB_MYSQL_ADMIN_URL"),
            };
            cmd.env(
                "LAB_AUTH",
                match options.auth {
                    AuthMode::Forbidden403 => "403",
                    AuthMode::Rechallenge401 => "401",
                },
            );
            cmd.env(
                "LAB_DIGEST_ALGORITHM",
                match options.digest {
                    DigestAlgorithm::Md5 => "MD5",
                    DigestAlgorithm::Sha256 => "SHA-256",
                },
            );
            let out = run_bounded(&mut cmd, "lab/start.sh", options.start_timeout)?;
            if out.status.success() {
                let env_path = run_dir.join("lab.env");
                let text = std::fs::read_to_string(&env_path)
                    .map_err(io_err(format!("reading {}", env_path.display())))?;
                let env = parse_env(&text)?;
                let accounts = accounts_from_env(&env)?;
                let tmp = if options.keep_run_dir {
                    eprintln!("testlab: keeping run directory {}", run_dir.display());
                    let _ = tmp.keep();
                    None
                } else {
                    Some(tmp)
                };
                return Ok(Lab {
                    run_dir,
                    _tmp: tmp,
                    lab_dir,
                    env,
                    accounts,
                    sipp_runs: AtomicU64::new(0),
                    variant: options.variant,
                });
            }
            last_err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            // A port clash is worth another block, and so is Kamailio 5.6 aborting at start in
            // its TLS module (a double free seen about once in a few hundred starts under load);
            // anything else would only repeat.
            let crashed = last_err.contains("Aborted") || last_err.contains("did not become ready");
            if !last_err.contains("ports already in use") && !crashed {
                return Err(Error::Start {
                    attempts: 1,
                    stderr: last_err,
                });
            }
        }
        Err(Error::Start {
            attempts,
            stderr: last_err,
        })
    }

    /// The `lab/` directory of this checkout.
    pub fn lab_dir() -> Result<PathBuf> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../lab");
        dir.canonicalize().map_err(io_err(format!(
            "locating the lab directory {}",
            dir.display()
        )))
    }

    fn env_value(&self, key: &str) -> &str {
        self.env.get(key).map(String::as_str).unwrap_or_default()
    }

    fn env_port(&self, key: &str) -> u16 {
        self.env_value(key).parse().unwrap_or(0)
    }

    /// Every `lab.env` value (see lab/README.md for the keys).
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The run directory (logs, database, certificates, lab.env).
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Loopback address Kamailio listens on.
    pub fn ip(&self) -> Ipv4Addr {
        self.env_value("LAB_IP")
            .parse()
            .unwrap_or(Ipv4Addr::LOCALHOST)
    }

    /// Kamailio's SIP port for UDP and TCP.
    pub fn sip_port(&self) -> u16 {
        self.env_port("LAB_SIP_PORT")
    }

    /// Kamailio's SIP-over-TLS port.
    pub fn tls_port(&self) -> u16 {
        self.env_port("LAB_TLS_PORT")
    }

    /// UDP/TCP address of Kamailio.
    pub fn sip_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip(), self.sip_port()))
    }

    /// TLS address of Kamailio.
    pub fn tls_addr(&self) -> SocketAddr {
        SocketAddr::from((self.ip(), self.tls_port()))
    }

    /// JSON-RPC URL (`POST`, one request per connection).
    pub fn rpc_url(&self) -> &str {
        self.env_value("LAB_RPC_URL")
    }

    /// The SQLite database file (acc, acc_cdrs, missed_calls, location, sip_trace, ...).
    /// On a mysql lab this is the database's name (`LAB_DB`), not a file: use [`Lab::db_url`].
    pub fn db_path(&self) -> PathBuf {
        PathBuf::from(self.env_value("LAB_DB"))
    }

    /// Kamailio's database URL (`LAB_DB_URL`): `sqlite:///RUN_DIR/lab.sqlite`, or
    /// `mysql://user:password@127.0.0.1:port/dbname` on a mysql lab (it holds a password).
    pub fn db_url(&self) -> &str {
        self.env_value("LAB_DB_URL")
    }

    /// How this lab's server is built.
    pub fn variant(&self) -> &Variant {
        &self.variant
    }

    /// PEM file of the lab CA that signs the good TLS certificate.
    pub fn ca_cert(&self) -> PathBuf {
        PathBuf::from(self.env_value("LAB_CA_CERT"))
    }

    /// SIP domain and digest realm of the accounts.
    pub fn domain(&self) -> &str {
        self.env_value("LAB_DOMAIN")
    }

    /// The echo service number (`600`; the user `echo` works too).
    pub fn echo_number(&self) -> &str {
        self.env_value("LAB_ECHO_NUMBER")
    }

    /// Dialled prefix of the outgoing trunk (`9`).
    pub fn trunk_prefix(&self) -> &str {
        self.env_value("LAB_TRUNK_PREFIX")
    }

    /// A seeded account by user name.
    pub fn account(&self, name: &str) -> Option<&LabAccount> {
        self.accounts.iter().find(|a| a.user == name)
    }

    /// All seeded accounts.
    pub fn accounts(&self) -> &[LabAccount] {
        &self.accounts
    }

    /// The SIP domain (and digest realm) of account `user`: [`Lab::domain`], or the second
    /// domain for its accounts on a lab with `domains = 2`. SIPp runs use it for From/To.
    pub fn account_domain(&self, user: &str) -> &str {
        self.env
            .get(&format!("LAB_ACCOUNT_{}_DOMAIN", user.to_uppercase()))
            .map(String::as_str)
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| self.domain())
    }

    /// Kamailio's log so far.
    pub fn kamailio_log(&self) -> String {
        std::fs::read(self.run_dir.join("kamailio.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Injects a fault: `lab/fault.sh RUN_DIR name args...` (see lab/README.md).
    pub fn fault(&self, name: &str, args: &[&str]) -> Result<()> {
        check_word("fault", name)?;
        for a in args {
            check_word("fault argument", a)?;
        }
        let what = format!("fault.sh {name} {}", args.join(" "));
        let mut all = vec![name];
        all.extend_from_slice(args);
        self.script("fault.sh", &all, what)
    }

    /// Stops the lab now (also done on drop).
    pub fn stop(&self) -> Result<()> {
        self.script("stop.sh", &[], "lab/stop.sh".to_owned())
    }

    /// Runs `lab/SCRIPT RUN_DIR ARGS…` (bounded); its stderr is the error when it fails.
    fn script(&self, script: &str, args: &[&str], what: String) -> Result<()> {
        let out = run_bounded(
            Command::new("bash")
                .arg(self.lab_dir.join(script))
                .arg(&self.run_dir)
                .args(args),
            &what,
            SCRIPT_TIMEOUT,
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Command {
                what,
                status: status_text(out.status),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!(
                "testlab: stopping the lab in {}: {e}",
                self.run_dir.display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_debug_hides_the_password() {
        let a = LabAccount {
            user: "u".into(),
            password: "s3cret".into(),
            numbers: vec![],
        };
        assert!(!format!("{a:?}").contains("s3cret"));
    }
}
