//! The configuration of a diagnosis: which server, how to reach its state, which probe accounts.
//!
//! One TOML file (see [`EXAMPLE`]) plus environment overrides `DIALTONE_CFG_<SECTION>_<KEY>`
//! (e.g. `DIALTONE_CFG_PROBE_PASSWORD`). Every problem names the key it is about.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::{Error, Result};

/// A complete example, also printed by `dialtone config-example`.
pub const EXAMPLE: &str = include_str!("../dialtone.example.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    #[serde(default)]
    pub management: ManagementConfig,
    #[serde(default)]
    pub probe: Option<ProbeConfig>,
    #[serde(default)]
    pub diagnosis: DiagnosisConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// The SIP domain of the accounts (their realm), e.g. `voip.example.com`.
    pub domain: String,
    /// Probe this host instead of resolving the domain (NAPTR/SRV/A); an IP or a name.
    #[serde(default)]
    pub host: Option<String>,
    /// Transports the clients use: any of udp, tcp, tls.
    #[serde(default = "default_transports")]
    pub transports: Vec<String>,
    #[serde(default)]
    pub udp_port: Option<u16>,
    #[serde(default)]
    pub tcp_port: Option<u16>,
    #[serde(default)]
    pub tls_port: Option<u16>,
    /// PEM files with the CA certificates the server's TLS certificate must chain to.
    #[serde(default)]
    pub tls_ca: Vec<PathBuf>,
    /// The number (or user) of the echo service.
    #[serde(default = "default_echo")]
    pub echo_number: String,
    /// Dialled prefixes that leave through an outgoing trunk, by trunk id (dispatcher set).
    #[serde(default)]
    pub trunk_prefixes: BTreeMap<String, Vec<String>>,
    /// Optional URL of the licence service the clients use (https://host:port/…); checked by
    /// connecting to it.
    #[serde(default)]
    pub license_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagementConfig {
    /// Kamailio JSON-RPC endpoint (xhttp + jsonrpcs), e.g. `http://127.0.0.1:5071/RPC`.
    #[serde(default)]
    pub rpc_url: Option<String>,
    /// The server's database, read-only: `sqlite:///path`, `postgres://user:pw@host/db`.
    #[serde(default)]
    pub database_url: Option<String>,
    /// Instead of the two above: a directory of exports (see server-state's EXPORT.md).
    #[serde(default)]
    pub export_dir: Option<PathBuf>,
    /// Bound on each management request, e.g. "5s".
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
    /// usrloc's `db_mode` on this server (0 memory only, 1 write-through, 2 write-back, 3 DB
    /// only): how far the `location` table can stand in for the management interface.
    #[serde(default)]
    pub usrloc_db_mode: Option<u8>,
    /// The event window `dialtone collect --hep` keeps (its `events.sqlite`): the SIP trace of a
    /// server that sends it over HEP instead of into `sip_trace`.
    #[serde(default)]
    pub events_db: Option<PathBuf>,
    /// `acc` columns with unusual names.
    #[serde(default)]
    pub columns: ColumnsConfig,
}

/// `[management.columns]`: which `acc` column holds each part of a call record, for names that
/// cannot be guessed (the usual ones, src_user/dst_user/dst_ouser/route, are found by themselves).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnsConfig {
    /// The calling user (From user), e.g. "src_user".
    #[serde(default)]
    pub caller: Option<String>,
    /// The called user after alias resolution, e.g. "dst_user".
    #[serde(default)]
    pub callee: Option<String>,
    /// What the caller dialled, e.g. "dst_ouser".
    #[serde(default)]
    pub dialled: Option<String>,
    /// The route taken (echo, trunk, local).
    #[serde(default)]
    pub route: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// dialtone's own service account on the server (like PrivateServer's self-test accounts).
    pub user: String,
    pub password: SecretString,
    /// A second service account, for a call between two probe accounts.
    #[serde(default)]
    pub peer_user: Option<String>,
    #[serde(default)]
    pub peer_password: Option<SecretString>,
    /// How long the echo call sends audio, e.g. "2s".
    #[serde(default, with = "opt_duration")]
    pub media_window: Option<Duration>,
    /// Bound on one probe, e.g. "8s".
    #[serde(default, with = "opt_duration")]
    pub timeout: Option<Duration>,
}

impl std::fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeConfig")
            .field("user", &self.user)
            .field("password", &"***")
            .field("peer_user", &self.peer_user)
            .field("media_window", &self.media_window)
            .field("timeout", &self.timeout)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagnosisConfig {
    /// How far back call records and REGISTER attempts count, e.g. "24h".
    #[serde(default = "default_window", with = "duration")]
    pub window: Duration,
    /// Bound on the whole run, e.g. "60s".
    #[serde(default = "default_total", with = "duration")]
    pub total_timeout: Duration,
    /// OPTIONS sent per transport to measure round trip and loss.
    #[serde(default = "default_burst")]
    pub network_burst: u32,
    /// Round trip above which the network path is a problem, e.g. "300ms".
    #[serde(default = "default_rtt", with = "duration")]
    pub max_rtt: Duration,
    /// Loss (percent) above which the network path is a problem.
    #[serde(default = "default_loss")]
    pub max_loss_percent: f64,
}

impl Default for DiagnosisConfig {
    fn default() -> Self {
        DiagnosisConfig {
            window: default_window(),
            total_timeout: default_total(),
            network_burst: default_burst(),
            max_rtt: default_rtt(),
            max_loss_percent: default_loss(),
        }
    }
}

fn default_transports() -> Vec<String> {
    vec!["udp".into(), "tcp".into(), "tls".into()]
}
fn default_echo() -> String {
    "echo".into()
}
fn default_window() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_total() -> Duration {
    Duration::from_secs(60)
}
fn default_burst() -> u32 {
    5
}
fn default_rtt() -> Duration {
    Duration::from_millis(300)
}
fn default_loss() -> f64 {
    20.0
}

impl Config {
    /// Parses the TOML text, then applies `DIALTONE_CFG_<SECTION>_<KEY>` overrides from `env`.
    pub fn from_toml(text: &str, env: &[(String, String)]) -> Result<Config> {
        let mut value: toml::Table =
            toml::from_str(text).map_err(|e| Error::Config(with_line(text, &e)))?;
        for (key, val) in env {
            let Some(rest) = key.strip_prefix("DIALTONE_CFG_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, field)) = rest.split_once('_') else {
                return Err(Error::Config(format!(
                    "{key}: expected DIALTONE_CFG_<SECTION>_<KEY>"
                )));
            };
            if !["server", "management", "probe", "diagnosis"].contains(&section) {
                return Err(Error::Config(format!("{key}: unknown section `{section}`")));
            }
            let table = value
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(t) = table else {
                return Err(Error::Config(format!("`{section}` must be a table")));
            };
            // Numbers stay numbers so that ports can be overridden too.
            let parsed = val
                .parse::<i64>()
                .map(toml::Value::Integer)
                .unwrap_or_else(|_| toml::Value::String(val.clone()));
            t.insert(field.to_string(), parsed);
        }
        let cfg: Config = value
            .try_into()
            .map_err(|e: toml::de::Error| Error::Config(toml_message(&e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        if self.server.domain.trim().is_empty() {
            return Err(Error::Config("server.domain: must not be empty".into()));
        }
        for t in &self.server.transports {
            if !["udp", "tcp", "tls"].contains(&t.as_str()) {
                return Err(Error::Config(format!(
                    "server.transports: unknown transport `{t}` (expected udp, tcp or tls)"
                )));
            }
        }
        let m = &self.management;
        if m.export_dir.is_none() && m.database_url.is_none() {
            return Err(Error::Config(
                "management: set database_url (and rpc_url when the management interface is reachable) for Kamailio, or export_dir (file exports)".into(),
            ));
        }
        if let Some(mode) = m.usrloc_db_mode
            && mode > 3
        {
            return Err(Error::Config(format!(
                "management.usrloc_db_mode: {mode} is not a usrloc db_mode (0 memory only, 1 write-through, 2 write-back, 3 database only)"
            )));
        }
        if let Some(p) = &self.probe {
            if p.user.trim().is_empty() {
                return Err(Error::Config("probe.user: must not be empty".into()));
            }
            if p.password.expose_secret().is_empty() {
                return Err(Error::Config("probe.password: must not be empty".into()));
            }
            if p.peer_user.is_some() != p.peer_password.is_some() {
                return Err(Error::Config(
                    "probe.peer_user and probe.peer_password go together".into(),
                ));
            }
        }
        if self.diagnosis.total_timeout.is_zero() {
            return Err(Error::Config(
                "diagnosis.total_timeout: must be greater than zero".into(),
            ));
        }
        Ok(())
    }

    /// The port of a transport: configured, or the SIP default (5060, 5061 for TLS).
    pub fn port(&self, transport: &str) -> u16 {
        let s = &self.server;
        match transport {
            "udp" => s.udp_port.unwrap_or(5060),
            "tcp" => s.tcp_port.or(s.udp_port).unwrap_or(5060),
            _ => s.tls_port.unwrap_or(5061),
        }
    }

    pub fn management_timeout(&self) -> Duration {
        self.management.timeout.unwrap_or(Duration::from_secs(5))
    }

    /// What the configuration says, without secrets (for reports and the admin page).
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({
            "server": {
                "domain": self.server.domain,
                "host": self.server.host,
                "transports": self.server.transports,
                "ports": { "udp": self.port("udp"), "tcp": self.port("tcp"), "tls": self.port("tls") },
                "tls_ca": self.server.tls_ca,
                "echo_number": self.server.echo_number,
                "trunk_prefixes": self.server.trunk_prefixes,
                "license_url": self.server.license_url,
            },
            "management": {
                "rpc_url": self.management.rpc_url.as_deref().map(redact_url),
                "database_url": self.management.database_url.as_deref().map(redact_url),
                "export_dir": self.management.export_dir,
                "usrloc_db_mode": self.management.usrloc_db_mode,
                "events_db": self.management.events_db,
                "columns": {
                    "caller": self.management.columns.caller,
                    "callee": self.management.columns.callee,
                    "dialled": self.management.columns.dialled,
                    "route": self.management.columns.route,
                },
            },
            "probe": self.probe.as_ref().map(|p| serde_json::json!({
                "user": p.user, "peer_user": p.peer_user, "password": "***",
            })),
            "diagnosis": {
                "window_s": self.diagnosis.window.as_secs(),
                "total_timeout_s": self.diagnosis.total_timeout.as_secs(),
            },
        })
    }
}

/// Hides the password of a URL (`scheme://user:***@host`).
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.rsplit_once('@')
    {
        let user = auth.split(':').next().unwrap_or("");
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

/// The parser's message with the line it points at.
fn with_line(text: &str, e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {}", toml_message(e))
        }
        None => toml_message(e),
    }
}

fn toml_message(e: &toml::de::Error) -> String {
    // toml's message names the key ("missing field `domain`", "unknown field `x`, expected …");
    // its span points into the file, which the caller names.
    e.message().trim().replace('\n', " ")
}

/// "500ms", "5s", "2m", "24h" or a plain number of seconds.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (use e.g. 500ms, 5s, 2m, 24h)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} in {s:?} (use ms, s, m, h, d)"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("not a duration: {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

mod duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

mod opt_duration {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| super::parse_duration(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}
