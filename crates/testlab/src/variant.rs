//! How a lab's server is built ([`Variant`]) and how a lab is started ([`LabOptions`]).

use super::{Error, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

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
    pub(crate) fn env(&self) -> Result<Vec<(&'static str, String)>> {
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

/// Options for [`Lab::start_with`](crate::Lab::start_with).
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
