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

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// How Kamailio answers a wrong password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthMode {
    /// 403 Forbidden with a Warning header (unknown user: 404 with a Warning).
    #[default]
    Forbidden403,
    /// Stock Kamailio: challenge again with 401 (REGISTER) or 407 (INVITE).
    Rechallenge401,
}

/// Digest algorithm the lab challenges with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    /// RFC 2617 MD5.
    #[default]
    Md5,
    /// RFC 7616 SHA-256.
    Sha256,
}

/// Database engine of the lab's Kamailio (`LAB_DB_ENGINE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DbEngine {
    /// A SQLite file in the run directory (today's lab).
    #[default]
    Sqlite,
    /// A fresh database on a MariaDB/MySQL server given by `DIALTONE_TEST_MYSQL_URL`
    /// (or `LAB_MYSQL_ADMIN_URL`); see `scripts/mariadb.sh`.
    Mysql,
}

/// Shape of the accounting tables (`LAB_ACC`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AccSchema {
    /// Stock `acc` plus `src_user src_domain src_ip dst_ouser dst_user dst_domain route`,
    /// `missed_calls`, and `acc_cdrs` with `callid caller callee dialed route`.
    #[default]
    Extras,
    /// The stock `acc` table only: no extra columns, no `missed_calls`, no `acc_cdrs`.
    Stock,
    /// The stock config's commented ALTERs: `src_user src_domain src_ip dst_ouser dst_user
    /// dst_domain` on `acc` and `missed_calls`; no `route`, no `acc_cdrs`.
    Common,
    /// Extras under other names: `orig_user` (From user), `term_user` (callee after alias
    /// lookup), `digits` (dialled number); no `acc_cdrs`.
    Renamed,
}

/// Where SIP messages are traced (`LAB_TRACE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TraceMode {
    /// Into the `sip_trace` table (today's lab).
    #[default]
    Sql,
    /// HEPv3 over UDP to this loopback address; no `sip_trace` table.
    Hep(SocketAddr),
    /// No tracing and no `sip_trace` table.
    None,
}

/// How accounts' secrets are stored (`LAB_AUTH_STORE`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthStore {
    /// Plaintext `password` (and ha1/ha1b filled), `calculate_ha1` on.
    #[default]
    Plain,
    /// `ha1`/`ha1b` only, `password` empty; Kamailio reads the `ha1` column.
    Ha1,
}

/// Where the outgoing trunk lives (`LAB_TRUNKS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TrunkMode {
    /// Dispatcher set 1 (gw1, gw2), probed with OPTIONS.
    #[default]
    Dispatcher,
    /// drouting: `dr_gateways` (gw1, gw2) and a `dr_rules` row for the trunk prefix,
    /// `do_routing()` with failover by `next_routing()`; no probing.
    Drouting,
}

/// How the lab's server is built: the variants of `lab/start.sh` (lab/README.md, "Variants").
/// `Variant::default()` is today's lab.
///
/// ```no_run
/// use testlab::{Lab, LabOptions, TraceMode, Variant};
/// let capture = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// let mut variant = Variant::named("hep-only").expect("known name");
/// variant.trace = TraceMode::Hep(capture.local_addr().unwrap());
/// let lab = Lab::start_with(LabOptions { variant, ..LabOptions::default() })?;
/// assert!(!lab.tables()?.iter().any(|t| t == "sip_trace"));
/// # Ok::<(), testlab::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Variant {
    /// Database engine.
    pub db: DbEngine,
    /// Accounting tables.
    pub acc: AccSchema,
    /// SIP trace.
    pub trace: TraceMode,
    /// usrloc `db_mode`: 1 (write-through, default), 0 (memory only), 2 (write-back).
    pub usrloc_db_mode: u8,
    /// The JSON-RPC management interface is served.
    pub rpc: bool,
    /// Account secrets.
    pub auth_store: AuthStore,
    /// Outgoing trunk.
    pub trunks: TrunkMode,
    /// SIP domains: 1 (default), or 2 (`domain` table, `use_domain=1`, a second domain
    /// `second.dialtone.invalid` with the account `erin`, number 2001). Not among
    /// [`Variant::all_names`]: set it on a variant.
    pub domains: u8,
}

impl Default for Variant {
    fn default() -> Self {
        Self {
            db: DbEngine::default(),
            acc: AccSchema::default(),
            trace: TraceMode::default(),
            usrloc_db_mode: 1,
            rpc: true,
            auth_store: AuthStore::default(),
            trunks: TrunkMode::default(),
            domains: 1,
        }
    }
}

/// Placeholder HEP address of the `hep-only` named variant: the caller sets a real one.
const HEP_PLACEHOLDER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

impl Variant {
    const NAMES: &'static [&'static str] = &[
        "default",
        "stock-acc",
        "common-acc",
        "renamed-acc",
        "mariadb",
        "hep-only",
        "no-trace",
        "usrloc-memory",
        "usrloc-writeback",
        "rpc-down",
        "ha1-only",
        "drouting",
    ];

    /// A named variant (see [`Variant::all_names`]), each differing from the default in one
    /// respect. `hep-only` traces to `127.0.0.1:0`, a placeholder: set
    /// `trace = TraceMode::Hep(addr)` with the address of your capture socket before starting.
    /// `mariadb` needs `DIALTONE_TEST_MYSQL_URL`.
    pub fn named(name: &str) -> Option<Variant> {
        let mut v = Variant::default();
        match name {
            "default" => {}
            "stock-acc" => v.acc = AccSchema::Stock,
            "common-acc" => v.acc = AccSchema::Common,
            "renamed-acc" => v.acc = AccSchema::Renamed,
            "mariadb" => v.db = DbEngine::Mysql,
            "hep-only" => v.trace = TraceMode::Hep(HEP_PLACEHOLDER),
            "no-trace" => v.trace = TraceMode::None,
            "usrloc-memory" => v.usrloc_db_mode = 0,
            "usrloc-writeback" => v.usrloc_db_mode = 2,
            "rpc-down" => v.rpc = false,
            "ha1-only" => v.auth_store = AuthStore::Ha1,
            "drouting" => v.trunks = TrunkMode::Drouting,
            _ => return None,
        }
        Some(v)
    }

    /// The names [`Variant::named`] knows.
    pub fn all_names() -> &'static [&'static str] {
        Self::NAMES
    }

    /// The `LAB_*` variables of lab/start.sh for this variant (the MySQL admin URL aside).
    fn env(&self) -> Result<Vec<(&'static str, String)>> {
        if !(1..=2).contains(&self.domains) {
            return Err(Error::InvalidArgument(format!(
                "domains {} (1 or 2)",
                self.domains
            )));
        }
        if self.usrloc_db_mode > 2 {
            return Err(Error::InvalidArgument(format!(
                "usrloc_db_mode {} (0, 1 or 2)",
                self.usrloc_db_mode
            )));
        }
        let mut env = vec![
            (
                "LAB_DB_ENGINE",
                match self.db {
                    DbEngine::Sqlite => "sqlite",
                    DbEngine::Mysql => "mysql",
                }
                .to_string(),
            ),
            (
                "LAB_ACC",
                match self.acc {
                    AccSchema::Extras => "extras",
                    AccSchema::Stock => "stock",
                    AccSchema::Common => "common",
                    AccSchema::Renamed => "renamed",
                }
                .to_string(),
            ),
            ("LAB_USRLOC", self.usrloc_db_mode.to_string()),
            ("LAB_DOMAINS", self.domains.to_string()),
            ("LAB_RPC", if self.rpc { "on" } else { "off" }.to_string()),
            (
                "LAB_AUTH_STORE",
                match self.auth_store {
                    AuthStore::Plain => "plain",
                    AuthStore::Ha1 => "ha1",
                }
                .to_string(),
            ),
            (
                "LAB_TRUNKS",
                match self.trunks {
                    TrunkMode::Dispatcher => "dispatcher",
                    TrunkMode::Drouting => "drouting",
                }
                .to_string(),
            ),
        ];
        match self.trace {
            TraceMode::Sql => env.push(("LAB_TRACE", "sql".into())),
            TraceMode::None => env.push(("LAB_TRACE", "none".into())),
            TraceMode::Hep(addr) => {
                let ok = matches!(addr, SocketAddr::V4(a) if a.ip().is_loopback() && a.port() != 0);
                if !ok {
                    return Err(Error::InvalidArgument(format!(
                        "HEP address {addr}: set TraceMode::Hep to a loopback IPv4 address with a port \
                         (the hep-only variant's 127.0.0.1:0 is a placeholder)"
                    )));
                }
                env.push(("LAB_TRACE", "hep".into()));
                env.push(("LAB_HEP_ADDR", addr.to_string()));
            }
        }
        Ok(env)
    }
}

/// Environment variable with the MariaDB/MySQL admin URL for mysql labs (`scripts/mariadb.sh`).
pub const MYSQL_URL_VAR: &str = "DIALTONE_TEST_MYSQL_URL";

/// Options for [`Lab::start_with`].
#[derive(Debug, Clone)]
pub struct LabOptions {
    /// Answer to a wrong password.
    pub auth: AuthMode,
    /// Digest algorithm of the challenges.
    pub digest: DigestAlgorithm,
    /// Port blocks tried when start.sh reports a port clash (at least 1).
    pub attempts: u32,
    /// Keep the run directory after the lab stops (its path is printed), for debugging.
    pub keep_run_dir: bool,
    /// Bound on one start.sh run.
    pub start_timeout: Duration,
    /// How the server is built (default: today's lab).
    pub variant: Variant,
}

impl Default for LabOptions {
    fn default() -> Self {
        Self {
            auth: AuthMode::default(),
            digest: DigestAlgorithm::default(),
            attempts: 5,
            keep_run_dir: false,
            start_timeout: Duration::from_secs(20),
            variant: Variant::default(),
        }
    }
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

/// What a SIPp UAC run gave.
#[derive(Debug, Clone)]
pub struct SippOutcome {
    /// SIPp exit code: 0 when the scenario ran to its end.
    pub exit_code: Option<i32>,
    /// True when the scenario succeeded (exit code 0).
    pub success: bool,
    /// Status code of the last response received, if any.
    pub final_status: Option<u16>,
    /// Call-ID of the exchange (to find its acc, acc_cdrs, sip_trace rows).
    pub call_id: Option<String>,
    /// Every response status received, in order (retransmissions included).
    pub statuses: Vec<u16>,
    /// The messages sent and received (SIPp's message trace), digest
    /// responses redacted.
    pub trace: String,
}

/// A SIPp UAS answering calls (see [`Lab::sipp_phone`]); killed on drop.
#[derive(Debug)]
pub struct SippPhone {
    child: Child,
    addr: SocketAddr,
}

impl SippPhone {
    /// Where the phone listens (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A contact URI for `user` at this phone, for [`Lab::sipp_register_contact`].
    pub fn contact(&self, user: &str) -> String {
        format!("sip:{user}@{}", self.addr)
    }
}

impl Drop for SippPhone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

const SIPP_TIMEOUT: Duration = Duration::from_secs(20);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(40);
const RPC_TIMEOUT: Duration = Duration::from_secs(3);

/// Ports used by one lab, from one block of 16 consecutive ports.
#[derive(Debug, Clone, Copy)]
struct PortBlock(u16);

impl PortBlock {
    const LEN: u16 = 16;

    fn env(self) -> [(&'static str, String); 7] {
        let b = self.0;
        [
            ("LAB_SIP_PORT", b.to_string()),
            ("LAB_TLS_PORT", (b + 1).to_string()),
            ("LAB_RPC_PORT", (b + 2).to_string()),
            ("LAB_ECHO_PORT", (b + 3).to_string()),
            ("LAB_GW_PORT", (b + 4).to_string()),
            ("LAB_GW2_PORT", (b + 5).to_string()),
            // base..base+7: echo and gateway RTP (each also uses port+2).
            ("LAB_MEDIA_BASE", (b + 8).to_string()),
        ]
    }
}

/// A cheap process-wide pseudo-random sequence (xorshift) seeded from the
/// clock and pid, so parallel tests and processes pick different ports.
fn next_random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9e37_79b9);
        x = nanos ^ (u64::from(std::process::id()) << 32) | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    STATE.store(x, Ordering::Relaxed);
    x
}

fn port_free(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    UdpSocket::bind(addr).is_ok() && TcpListener::bind(addr).is_ok()
}

/// Picks a block of free ports below the kernel's ephemeral range
/// (32768 and up), where outgoing sockets do not land.
fn pick_port_block() -> Option<PortBlock> {
    const LOW: u64 = 10_000;
    const SLOTS: u64 = (32_768 - LOW) / PortBlock::LEN as u64;
    for _ in 0..64 {
        let base = LOW + (next_random() % SLOTS) * u64::from(PortBlock::LEN);
        let base = u16::try_from(base).ok()?;
        if (base..base + PortBlock::LEN).all(port_free) {
            return Some(PortBlock(base));
        }
    }
    None
}

/// A free UDP port on loopback for a SIPp UAC (from the ephemeral range).
fn free_udp_port() -> Result<u16> {
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io_err("binding a UDP port"))?;
    let port = sock
        .local_addr()
        .map_err(io_err("reading a local address"))?
        .port();
    Ok(port)
}

/// Waits for `child` at most `timeout`, killing it when the bound is hit.
fn wait_bounded(mut child: Child, what: &str, timeout: Duration) -> Result<Output> {
    let deadline = Instant::now() + timeout;
    loop {
        match child
            .try_wait()
            .map_err(io_err(format!("waiting for {what}")))?
        {
            Some(_) => {
                return child
                    .wait_with_output()
                    .map_err(io_err(format!("reading the output of {what}")));
            }
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout {
                    what: what.to_string(),
                    timeout,
                });
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Runs `cmd` with piped output, bounded by `timeout`.
fn run_bounded(cmd: &mut Command, what: &str, timeout: Duration) -> Result<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(io_err(format!("starting {what}")))?;
    // Output is small (scripts and SIPp write their bulk to files), so
    // the pipes cannot fill up while we poll.
    wait_bounded(child, what, timeout)
}

fn status_text(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_string(),
    }
}

/// Parses lab.env: `KEY=VALUE` lines, `#` comments, optional quotes.
fn parse_env(text: &str) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(Error::Env(format!("line {}: no '='", n + 1)));
        };
        let value = value
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
            .unwrap_or(value);
        env.insert(key.trim().to_string(), value.to_string());
    }
    Ok(env)
}

fn accounts_from_env(env: &BTreeMap<String, String>) -> Result<Vec<LabAccount>> {
    let list = env
        .get("LAB_ACCOUNTS")
        .ok_or_else(|| Error::Env("missing LAB_ACCOUNTS".into()))?;
    list.split(',')
        .filter(|u| !u.is_empty())
        .map(|user| {
            let key = |field: &str| format!("LAB_ACCOUNT_{}_{field}", user.to_uppercase());
            let get = |field: &str| {
                env.get(&key(field))
                    .cloned()
                    .ok_or_else(|| Error::Env(format!("missing {}", key(field))))
            };
            Ok(LabAccount {
                user: get("USER")?,
                password: get("PASSWORD")?,
                numbers: get("NUMBERS")?
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The MariaDB/MySQL admin URL for a mysql lab: `DIALTONE_TEST_MYSQL_URL`, else
/// `LAB_MYSQL_ADMIN_URL`, read through `var`.
fn mysql_admin_url(var: impl Fn(&str) -> Option<String>) -> Result<String> {
    [MYSQL_URL_VAR, "LAB_MYSQL_ADMIN_URL"]
        .iter()
        .find_map(|k| var(k).filter(|u| !u.trim().is_empty()))
        .ok_or_else(|| {
            Error::Setup(format!(
                "a mysql lab needs a MariaDB server: export {MYSQL_URL_VAR}=$(scripts/mariadb.sh start) \
                 (or LAB_MYSQL_ADMIN_URL)"
            ))
        })
}

/// Turns `mysql -N -B -r` output into the sqlite3 CLI's: `|` between columns, NULL empty.
fn mysql_to_sqlite_output(text: &str) -> String {
    text.split('\n')
        .map(|line| {
            line.split('\t')
                .map(|f| if f == "NULL" { "" } else { f })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Replaces digest `response="..."` values (RFC 2617 3.2.2) in a SIPp trace.
fn redact_digest(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("response=") {
        let (head, tail) = rest.split_at(pos + "response=".len());
        out.push_str(head);
        let quoted = tail.starts_with('"');
        let body = if quoted { &tail[1..] } else { tail };
        let end = if quoted {
            body.find('"').map(|e| e + 1)
        } else {
            body.find([',', '\r', '\n', ' '])
        }
        .unwrap_or(body.len());
        out.push_str(if quoted {
            "\"<redacted>\""
        } else {
            "<redacted>"
        });
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// Status codes of the responses in a SIPp message trace, in order.
fn response_statuses(trace: &str) -> Vec<u16> {
    trace
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("SIP/2.0 "))
        .filter_map(|rest| rest.get(..3)?.parse().ok())
        .collect()
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
        let out = run_bounded(
            Command::new("bash")
                .arg(self.lab_dir.join("fault.sh"))
                .arg(&self.run_dir)
                .arg(name)
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

    /// Runs SQL on the lab database and returns its output: rows on lines,
    /// columns separated by `|`, NULL as an empty field, no header. SQLite
    /// labs use the `sqlite3` CLI (with a busy timeout), mysql labs the `mysql`
    /// client (batch mode, tabs turned into `|`, `NULL` into an empty field).
    /// The SQL is the engine's own dialect.
    pub fn sql(&self, sql: &str) -> Result<String> {
        let mysql = self.variant.db == DbEngine::Mysql;
        let (tool, out) = if mysql {
            let cnf = self.run_dir.join("mysql-lab.cnf");
            let out = run_bounded(
                Command::new("mysql")
                    .arg(format!("--defaults-file={}", cnf.display()))
                    .args(["-N", "-B", "-r", "-e", sql]),
                "mysql",
                SCRIPT_TIMEOUT,
            )?;
            ("mysql", out)
        } else {
            let out = run_bounded(
                Command::new("sqlite3")
                    .arg("-cmd")
                    .arg(".timeout 3000")
                    .arg(self.db_path())
                    .arg(sql),
                "sqlite3",
                SCRIPT_TIMEOUT,
            )?;
            ("sqlite3", out)
        };
        if !out.status.success() {
            return Err(Error::Command {
                what: format!("{tool} {sql:?}"),
                status: status_text(out.status),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
        while s.ends_with('\n') {
            s.pop();
        }
        if mysql {
            s = mysql_to_sqlite_output(&s);
        }
        Ok(s)
    }

    /// The tables of the lab database, sorted (from the engine's catalogue).
    pub fn tables(&self) -> Result<Vec<String>> {
        let sql = match self.variant.db {
            DbEngine::Mysql => "SHOW TABLES",
            DbEngine::Sqlite => "SELECT name FROM sqlite_master WHERE type='table'",
        };
        let mut t: Vec<String> = self.sql(sql)?.lines().map(str::to_string).collect();
        t.sort();
        Ok(t)
    }

    /// The columns of `table` in the lab database, in table order (empty when it does not exist).
    pub fn columns(&self, table: &str) -> Result<Vec<String>> {
        check_word("table", table)?;
        let sql = match self.variant.db {
            DbEngine::Mysql => format!(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() \
                 AND table_name = '{table}' ORDER BY ordinal_position"
            ),
            DbEngine::Sqlite => format!("SELECT name FROM pragma_table_info('{table}')"),
        };
        Ok(self.sql(&sql)?.lines().map(str::to_string).collect())
    }

    /// Calls a JSON-RPC method and returns its `result`; a JSON-RPC error
    /// becomes [`Error::Rpc`] with Kamailio's message.
    /// On a lab built without the management interface ([`Variant::rpc`] false) this fails
    /// at once.
    pub fn rpc(&self, method: &str, params: serde_json::Value) -> Result<serde_json::Value> {
        let rpc_err = |message: String| Error::Rpc {
            method: method.to_string(),
            message,
        };
        if !self.variant.rpc {
            return Err(rpc_err(
                "this lab runs without a management interface (LAB_RPC=off)".into(),
            ));
        }
        let body =
            serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
                .to_string();
        let port = self.env_port("LAB_RPC_PORT");
        let addr = SocketAddr::from((self.ip(), port));
        let mut stream = TcpStream::connect_timeout(&addr, RPC_TIMEOUT)
            .map_err(|e| rpc_err(format!("connect {addr}: {e}")))?;
        stream
            .set_read_timeout(Some(RPC_TIMEOUT))
            .and_then(|()| stream.set_write_timeout(Some(RPC_TIMEOUT)))
            .map_err(|e| rpc_err(e.to_string()))?;
        let request = format!(
            "POST /RPC HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(request.as_bytes())
            .map_err(|e| rpc_err(format!("send: {e}")))?;
        let mut response = Vec::new();
        // Kamailio closes the connection after each reply (set_reply_close).
        stream
            .take(16 * 1024 * 1024)
            .read_to_end(&mut response)
            .map_err(|e| rpc_err(format!("receive: {e}")))?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| rpc_err("no HTTP header end in the reply".into()))?;
        if !head.starts_with("HTTP/1.") || !head.contains(" 200 ") {
            return Err(rpc_err(format!(
                "HTTP status {}",
                head.lines().next().unwrap_or_default()
            )));
        }
        let json: serde_json::Value =
            serde_json::from_str(body).map_err(|e| rpc_err(format!("bad JSON: {e}")))?;
        if let Some(err) = json.get("error") {
            let message = err
                .get("message")
                .and_then(|m| m.as_str())
                .unwrap_or("unknown error");
            return Err(rpc_err(message.to_string()));
        }
        json.get("result")
            .cloned()
            .ok_or_else(|| rpc_err("reply has neither result nor error".into()))
    }

    /// Registers `user` with SIPp (UDP, digest auth, Expires 300, a contact
    /// on a free loopback port where nothing answers after SIPp exits).
    pub fn sipp_register(&self, user: &str, password: &str) -> Result<SippOutcome> {
        self.run_sipp("register.xml", user, password, &[("expires", "300")], &[])
    }

    /// Registers `user` with the given contact URI, e.g. a [`SippPhone`]'s
    /// [`SippPhone::contact`], so calls to the account are answered.
    pub fn sipp_register_contact(
        &self,
        user: &str,
        password: &str,
        contact: &str,
    ) -> Result<SippOutcome> {
        if !contact.starts_with("sip:") || contact.contains(['<', '>', '\r', '\n', ' ']) {
            return Err(Error::InvalidArgument(format!("contact {contact:?}")));
        }
        self.run_sipp(
            "register.xml",
            user,
            password,
            &[("expires", "300"), ("contact", contact)],
            &[],
        )
    }

    /// Starts a SIPp UAS on a free loopback port that answers every call
    /// (200 with SDP, RTP echoed) until it is dropped: a phone to register.
    pub fn sipp_phone(&self) -> Result<SippPhone> {
        let n = self.sipp_runs.fetch_add(1, Ordering::Relaxed);
        let port = free_udp_port()?;
        let media = free_udp_port()?;
        let out_path = self.run_dir.join(format!("sipp-phone-{n}.out"));
        let out = std::fs::File::create(&out_path)
            .map_err(io_err(format!("creating {}", out_path.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err("duplicating a file handle"))?;
        let child = Command::new("sipp")
            .current_dir(&self.run_dir)
            .arg("-sf")
            .arg(self.lab_dir.join("sipp").join("echo_uas.xml"))
            .args(["-t", "u1", "-nostdin", "-rtp_echo"])
            .args(["-i", &self.ip().to_string(), "-mi", &self.ip().to_string()])
            .args(["-p", &port.to_string(), "-mp", &media.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err("starting the SIPp phone"))?;
        let phone = SippPhone {
            child,
            addr: SocketAddr::from((self.ip(), port)),
        };
        // SIPp binds within milliseconds; wait (bounded) until the port is taken.
        let deadline = Instant::now() + Duration::from_secs(3);
        while UdpSocket::bind(phone.addr).is_ok() {
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    what: "the SIPp phone binding its port".into(),
                    timeout: Duration::from_secs(3),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(phone)
    }

    /// Removes every binding of `user` (Contact: *, Expires: 0).
    pub fn sipp_unregister(&self, user: &str, password: &str) -> Result<SippOutcome> {
        self.run_sipp("unregister.xml", user, password, &[], &[])
    }

    /// Calls `target` (a user, a number, `600`, `9...`) as `user`, holds the
    /// call 500 ms and hangs up.
    pub fn sipp_call(&self, user: &str, password: &str, target: &str) -> Result<SippOutcome> {
        self.sipp_call_for(user, password, target, Duration::from_millis(500))
    }

    /// Like [`Lab::sipp_call`], holding the call for `hold`.
    pub fn sipp_call_for(
        &self,
        user: &str,
        password: &str,
        target: &str,
        hold: Duration,
    ) -> Result<SippOutcome> {
        check_word("target", target)?;
        let hold_ms = hold.as_millis().min(60_000).to_string();
        self.run_sipp(
            "call.xml",
            user,
            password,
            &[("target", target)],
            &["-d", &hold_ms],
        )
    }

    fn run_sipp(
        &self,
        scenario: &str,
        user: &str,
        password: &str,
        keys: &[(&str, &str)],
        extra: &[&str],
    ) -> Result<SippOutcome> {
        check_word("user", user)?;
        if password.is_empty() || password.chars().any(|c| c.is_control()) {
            return Err(Error::InvalidArgument(
                "password is empty or has control characters".into(),
            ));
        }
        // A port picked here may be taken before SIPp binds it: retry.
        let mut last = None;
        for _ in 0..3 {
            let n = self.sipp_runs.fetch_add(1, Ordering::Relaxed);
            let trace_path = self.run_dir.join(format!("sipp-uac-{n}.log"));
            let port = free_udp_port()?.to_string();
            let media = free_udp_port()?.to_string();
            let own_contact = format!("sip:{user}@{}:{port}", self.ip());
            let contact = keys
                .iter()
                .find(|(k, _)| *k == "contact")
                .map_or(own_contact.as_str(), |(_, v)| v);
            let mut cmd = Command::new("sipp");
            cmd.current_dir(&self.run_dir)
                .arg(self.sip_addr().to_string())
                .arg("-sf")
                .arg(self.lab_dir.join("sipp").join(scenario))
                .args(["-t", "u1", "-m", "1", "-nostdin", "-trace_msg"])
                .args(["-i", &self.ip().to_string(), "-mi", &self.ip().to_string()])
                .args(["-p", &port, "-mp", &media])
                .args(["-timeout", "15", "-timeout_error"])
                .arg("-message_file")
                .arg(&trace_path)
                .args([
                    "-key",
                    "user",
                    user,
                    "-key",
                    "domain",
                    self.account_domain(user),
                ])
                .args(["-au", user, "-ap", password]);
            cmd.args(["-key", "contact", contact]);
            for (k, v) in keys.iter().filter(|(k, _)| *k != "contact") {
                cmd.args(["-key", k, v]);
            }
            cmd.args(extra);
            let out = run_bounded(&mut cmd, &format!("sipp {scenario}"), SIPP_TIMEOUT)?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("Unable to bind") {
                last = Some(Error::Command {
                    what: format!("sipp {scenario}"),
                    status: status_text(out.status),
                    stderr: stderr.trim().to_string(),
                });
                continue;
            }
            let trace = std::fs::read(&trace_path)
                .map(|b| redact_digest(&String::from_utf8_lossy(&b)))
                .unwrap_or_default();
            let statuses = response_statuses(&trace);
            let call_id = trace
                .lines()
                .find_map(|l| l.strip_prefix("Call-ID:"))
                .map(|v| v.trim().to_string());
            return Ok(SippOutcome {
                call_id,
                exit_code: out.status.code(),
                success: out.status.success(),
                final_status: statuses.last().copied(),
                statuses,
                trace,
            });
        }
        Err(last.unwrap_or_else(|| Error::InvalidArgument("sipp never ran".into())))
    }

    /// Stops the lab now (also done on drop).
    pub fn stop(&self) -> Result<()> {
        let out = run_bounded(
            Command::new("bash")
                .arg(self.lab_dir.join("stop.sh"))
                .arg(&self.run_dir),
            "lab/stop.sh",
            SCRIPT_TIMEOUT,
        )?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Command {
                what: "lab/stop.sh".into(),
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
    fn env_file_parses_with_quotes_and_comments() {
        let env = parse_env("# c\nA=1\nB='x y'\nC=\"z\"\n\nD=a=b\n").unwrap();
        assert_eq!(env["A"], "1");
        assert_eq!(env["B"], "x y");
        assert_eq!(env["C"], "z");
        assert_eq!(env["D"], "a=b");
        assert!(parse_env("garbage line").is_err());
    }

    #[test]
    fn digest_responses_are_redacted() {
        let t = "Authorization: Digest username=\"a\", response=\"0123abcd\", nc=1\r\nX: response=abc,y\n";
        let r = redact_digest(t);
        assert!(!r.contains("0123abcd") && !r.contains("=abc,"), "{r}");
        assert!(r.contains("response=\"<redacted>\", nc=1") && r.contains("response=<redacted>,y"));
    }

    #[test]
    fn statuses_come_from_status_lines() {
        let t = "SIP/2.0 401 Unauthorized\r\nVia: x\r\n\r\nREGISTER sip:a SIP/2.0\r\n  SIP/2.0 200 OK\r\nSIP/2.0 9\r\n";
        assert_eq!(response_statuses(t), vec![401, 200]);
    }

    #[test]
    fn a_mysql_lab_without_a_server_url_names_the_variable() {
        let err = mysql_admin_url(|_| None).unwrap_err().to_string();
        assert!(err.contains("DIALTONE_TEST_MYSQL_URL"), "{err}");
        let url = mysql_admin_url(|k| {
            (k == "LAB_MYSQL_ADMIN_URL").then(|| "mysql://root@127.0.0.1:1".into())
        });
        assert_eq!(url.unwrap(), "mysql://root@127.0.0.1:1");
    }

    #[test]
    fn mysql_output_looks_like_sqlite_output() {
        assert_eq!(mysql_to_sqlite_output("a\tNULL\t3\nb\tx\t"), "a||3\nb|x|");
    }

    #[test]
    fn every_named_variant_exists_and_differs_from_the_default_but_one() {
        for name in Variant::all_names() {
            let v = Variant::named(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(*name == "default", v == Variant::default(), "{name}");
        }
        assert!(Variant::named("nonsense").is_none());
        let d = Variant::default();
        assert_eq!((d.usrloc_db_mode, d.rpc), (1, true));
        let hep = Variant::named("hep-only").unwrap();
        assert!(hep.env().is_err(), "the placeholder address is refused");
        let bad = Variant {
            usrloc_db_mode: 3,
            ..Variant::default()
        };
        assert!(bad.env().is_err());
    }

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
