//! The file backend: a directory of CSV/JSON exports (format in EXPORT.md), read once at open and
//! validated row by row, so a bad export fails early with the file and line to fix.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;

use crate::csv::{Record, Table};
use crate::model::{longest_prefix_route, split_user};
use crate::{
    Account, AccountSummary, CallRecord, CheckState, Error, NumberKind, RegAttempt, Registration,
    Result, ServerState, ServiceHealth, Trunk, VirtualNumber,
};

#[derive(Debug, Clone)]
struct AccountRow {
    user: String,
    domain: String,
    numbers: Vec<VirtualNumber>,
}

/// A server known only through its exported files.
#[derive(Debug)]
pub struct FileState {
    dir: PathBuf,
    accounts: Vec<AccountRow>,
    by_user: HashMap<String, usize>,
    by_number: HashMap<String, Vec<usize>>,
    registrations: HashMap<String, Vec<Registration>>,
    /// `None` when the export has no registration_attempts.csv: "unknown", not "none".
    attempts: Option<HashMap<String, Vec<RegAttempt>>>,
    trunks: Option<Vec<Trunk>>,
    calls: Option<Vec<CallRecord>>,
    health: Option<ServiceHealth>,
    has_registrations: bool,
}

impl FileState {
    /// Reads and validates every export in `dir`; only `accounts.csv` is required.
    pub fn open(dir: impl AsRef<Path>) -> Result<FileState> {
        let dir = dir.as_ref().to_path_buf();
        let accounts_path = dir.join("accounts.csv");
        let text = read_required(&accounts_path)?;
        let (accounts, by_user, by_number) = parse_accounts(&accounts_path, &text)?;

        let reg_path = dir.join("registrations.json");
        let has_registrations = reg_path.exists();
        let mut registrations: HashMap<String, Vec<Registration>> = HashMap::new();
        if let Some(list) = read_json::<Vec<Registration>>(&reg_path)? {
            for r in list {
                registrations.entry(r.user.clone()).or_default().push(r);
            }
        }

        let attempts_path = dir.join("registration_attempts.csv");
        let attempts = match read_optional(&attempts_path)? {
            Some(text) => Some(parse_attempts(&attempts_path, &text)?),
            None => None,
        };
        let calls_path = dir.join("calls.csv");
        let calls = match read_optional(&calls_path)? {
            Some(text) => Some(parse_calls(&calls_path, &text)?),
            None => None,
        };
        let trunks = read_json::<Vec<Trunk>>(&dir.join("trunks.json"))?;
        let health = read_json::<ServiceHealth>(&dir.join("health.json"))?;
        Ok(FileState {
            dir,
            accounts,
            by_user,
            by_number,
            registrations,
            attempts,
            trunks,
            calls,
            health,
            has_registrations,
        })
    }

    fn account_at(&self, i: usize) -> Account {
        let row = &self.accounts[i];
        Account {
            user: row.user.clone(),
            domain: row.domain.clone(),
            numbers: row.numbers.clone(),
            exists: true,
        }
    }

    fn missing(&self, file: &str) -> Error {
        Error::Unsupported(format!("{} has no {file}", self.dir.display()))
    }
}

#[async_trait::async_trait]
impl ServerState for FileState {
    async fn account(&self, user: &str) -> Result<Option<Account>> {
        let (user, _) = split_user(user);
        if let Some(&i) = self.by_user.get(user) {
            return Ok(Some(self.account_at(i)));
        }
        // Traces of a user without an account row: report it as existing nowhere but seen.
        let seen = self.registrations.contains_key(user)
            || self.attempts.as_ref().is_some_and(|a| a.contains_key(user));
        Ok(seen.then(|| Account {
            user: user.to_string(),
            domain: String::new(),
            numbers: Vec::new(),
            exists: false,
        }))
    }

    async fn accounts_with_number(&self, number: &str) -> Result<Vec<Account>> {
        Ok(self
            .by_number
            .get(number.trim())
            .map(|ids| ids.iter().map(|&i| self.account_at(i)).collect())
            .unwrap_or_default())
    }

    async fn registrations(&self, user: &str) -> Result<Vec<Registration>> {
        if !self.has_registrations {
            return Err(self.missing("registrations.json"));
        }
        let (user, _) = split_user(user);
        Ok(self.registrations.get(user).cloned().unwrap_or_default())
    }

    async fn registration_attempts(
        &self,
        user: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RegAttempt>> {
        let attempts = self
            .attempts
            .as_ref()
            .ok_or_else(|| self.missing("registration_attempts.csv"))?;
        let (user, _) = split_user(user);
        let mut out: Vec<RegAttempt> = attempts
            .get(user)
            .map(|v| v.iter().filter(|a| a.at >= since).cloned().collect())
            .unwrap_or_default();
        out.sort_by_key(|a| a.at);
        Ok(out)
    }

    async fn trunks(&self) -> Result<Vec<Trunk>> {
        self.trunks
            .clone()
            .ok_or_else(|| self.missing("trunks.json"))
    }

    async fn route_for(&self, dialled: &str) -> Result<Option<String>> {
        let trunks = self
            .trunks
            .as_ref()
            .ok_or_else(|| self.missing("trunks.json"))?;
        Ok(longest_prefix_route(
            trunks
                .iter()
                .map(|t| (t.id.as_str(), t.prefixes.as_slice())),
            dialled.trim(),
        ))
    }

    async fn calls(&self, user: &str, since: DateTime<Utc>, max: usize) -> Result<Vec<CallRecord>> {
        let calls = self
            .calls
            .as_ref()
            .ok_or_else(|| self.missing("calls.csv"))?;
        let (user, _) = split_user(user);
        let mut out: Vec<CallRecord> = calls
            .iter()
            .filter(|c| c.at >= since && (c.caller == user || c.callee == user))
            .cloned()
            .collect();
        out.sort_by_key(|c| std::cmp::Reverse(c.at));
        out.truncate(max);
        Ok(out)
    }

    async fn health(&self) -> Result<ServiceHealth> {
        Ok(self.health.clone().unwrap_or_else(|| ServiceHealth {
            management: CheckState::Unknown("the export has no health.json".into()),
            uptime_s: None,
            version: None,
            sip_listeners: Vec::new(),
            tls_listeners: Vec::new(),
            database: CheckState::Unknown("the export has no health.json".into()),
            services: Vec::new(),
        }))
    }

    async fn all_accounts(&self) -> Result<Vec<AccountSummary>> {
        let accepted: HashSet<&str> = self
            .attempts
            .iter()
            .flat_map(|m| m.iter())
            .filter(|(_, v)| v.iter().any(|a| (200..300).contains(&a.status)))
            .map(|(u, _)| u.as_str())
            .collect();
        Ok(self
            .accounts
            .iter()
            .map(|row| {
                let registered = self
                    .registrations
                    .get(&row.user)
                    .is_some_and(|r| !r.is_empty());
                AccountSummary {
                    user: row.user.clone(),
                    numbers: row.numbers.clone(),
                    registered,
                    ever_registered: registered || accepted.contains(row.user.as_str()),
                }
            })
            .collect())
    }

    fn describe(&self) -> String {
        format!("file export at {}", self.dir.display())
    }
}

fn read_required(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    let Some(text) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::Export {
            file: path.to_path_buf(),
            line: e.line(),
            reason: format!("column {}: {e}", e.column()),
        })
}

type AccountIndex = (
    Vec<AccountRow>,
    HashMap<String, usize>,
    HashMap<String, Vec<usize>>,
);

fn parse_accounts(path: &Path, text: &str) -> Result<AccountIndex> {
    let table = Table::parse(path, text)?;
    let c_user = table.require("user")?;
    let c_domain = table.optional("domain");
    let c_primary = table.optional("primary_number");
    let c_alt = table.optional("alternate_number");
    let mut rows = Vec::with_capacity(table.records.len());
    let mut by_user = HashMap::with_capacity(table.records.len());
    let mut by_number: HashMap<String, Vec<usize>> = HashMap::new();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for rec in &table.records {
        let user = rec.get(c_user);
        if user.is_empty() {
            return Err(table.error(rec.line, "empty `user`"));
        }
        if user.contains(['@', ' ', ':']) {
            return Err(table.error(
                rec.line,
                format!("`user` must be a bare user name, got {user:?}"),
            ));
        }
        if let Some(prev) = first_line.insert(user.to_string(), rec.line) {
            return Err(table.error(
                rec.line,
                format!("account {user:?} is listed twice (first on line {prev})"),
            ));
        }
        let mut numbers = Vec::new();
        for (col, kind) in [
            (c_primary, NumberKind::Primary),
            (c_alt, NumberKind::Alternate),
        ] {
            let n = rec.get_opt(col);
            if n.is_empty() {
                continue;
            }
            check_number(&table, rec, n)?;
            numbers.push(VirtualNumber {
                number: n.to_string(),
                kind,
            });
        }
        let i = rows.len();
        for n in &numbers {
            let ids = by_number.entry(n.number.clone()).or_default();
            if !ids.contains(&i) {
                ids.push(i);
            }
        }
        by_user.insert(user.to_string(), i);
        rows.push(AccountRow {
            user: user.to_string(),
            domain: rec.get_opt(c_domain).to_string(),
            numbers,
        });
    }
    Ok((rows, by_user, by_number))
}

fn check_number(table: &Table, rec: &Record, n: &str) -> Result<()> {
    let digits = n.strip_prefix('+').unwrap_or(n);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(table.error(
            rec.line,
            format!("virtual number {n:?} is not a number (digits, optional leading +)"),
        ));
    }
    Ok(())
}

/// Reads RFC 3339 (`2026-11-26T04:06:00Z`) or unix seconds.
pub(crate) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let secs: f64 = s.parse().ok()?;
    if !secs.is_finite() {
        return None;
    }
    Utc.timestamp_millis_opt((secs * 1000.0).round() as i64)
        .single()
}

fn time_field(table: &Table, rec: &Record, col: usize, name: &str) -> Result<DateTime<Utc>> {
    let v = rec.get(col);
    parse_time(v).ok_or_else(|| {
        table.error(
            rec.line,
            format!("`{name}` {v:?} is not an RFC 3339 time or unix seconds"),
        )
    })
}

fn status_field(table: &Table, rec: &Record, col: usize, allow_zero: bool) -> Result<u16> {
    let v = rec.get(col);
    match v.parse::<u16>() {
        Ok(0) if allow_zero => Ok(0),
        Ok(code) if (100..700).contains(&code) => Ok(code),
        _ => Err(table.error(
            rec.line,
            format!("`status` {v:?} is not a SIP status code (100-699)"),
        )),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn parse_attempts(path: &Path, text: &str) -> Result<HashMap<String, Vec<RegAttempt>>> {
    let table = Table::parse(path, text)?;
    let c_at = table.require("at")?;
    let c_user = table.require("user")?;
    let c_status = table.require("status")?;
    let c_source = table.optional("source");
    let c_reason = table.optional("reason");
    let c_auth = table.optional("auth_user");
    let mut out: HashMap<String, Vec<RegAttempt>> = HashMap::new();
    for rec in &table.records {
        let user = rec.get(c_user);
        if user.is_empty() {
            return Err(table.error(rec.line, "empty `user`"));
        }
        let attempt = RegAttempt {
            at: time_field(&table, rec, c_at, "at")?,
            source: rec.get_opt(c_source).to_string(),
            status: status_field(&table, rec, c_status, true)?,
            reason: rec.get_opt(c_reason).to_string(),
            auth_user: non_empty(rec.get_opt(c_auth)),
        };
        out.entry(user.to_string()).or_default().push(attempt);
    }
    Ok(out)
}

fn parse_calls(path: &Path, text: &str) -> Result<Vec<CallRecord>> {
    let table = Table::parse(path, text)?;
    let c_at = table.require("at")?;
    let c_caller = table.require("caller")?;
    let c_callee = table.require("callee")?;
    let c_status = table.require("status")?;
    let c_dialled = table.optional("dialled");
    let c_reason = table.optional("reason");
    let c_duration = table.optional("duration_s");
    let c_route = table.optional("route");
    let c_call_id = table.optional("call_id");
    let mut out = Vec::with_capacity(table.records.len());
    for rec in &table.records {
        let duration = rec.get_opt(c_duration);
        let duration_s = if duration.is_empty() {
            0.0
        } else {
            match duration.parse::<f64>() {
                Ok(d) if d.is_finite() && d >= 0.0 => d,
                _ => {
                    return Err(table.error(
                        rec.line,
                        format!("`duration_s` {duration:?} is not a number of seconds"),
                    ));
                }
            }
        };
        let callee = rec.get(c_callee).to_string();
        let dialled = rec.get_opt(c_dialled);
        out.push(CallRecord {
            at: time_field(&table, rec, c_at, "at")?,
            caller: rec.get(c_caller).to_string(),
            dialled: if dialled.is_empty() {
                callee.clone()
            } else {
                dialled.to_string()
            },
            callee,
            status: status_field(&table, rec, c_status, false)?,
            reason: rec.get_opt(c_reason).to_string(),
            duration_s,
            route: non_empty(rec.get_opt(c_route)),
            call_id: rec.get_opt(c_call_id).to_string(),
        });
    }
    Ok(out)
}
