//! The lab's `lab.env` file, the accounts it seeds, and the MySQL server a mysql lab uses.

use super::{Error, LabAccount, Result};
use std::collections::BTreeMap;

/// Environment variable with the MariaDB/MySQL admin URL for mysql labs (`scripts/mariadb.sh`).
pub const MYSQL_URL_VAR: &str = "DIALTONE_TEST_MYSQL_URL";

/// Parses lab.env: `KEY=VALUE` lines, `#` comments, optional quotes.
pub(super) fn parse_env(text: &str) -> Result<BTreeMap<String, String>> {
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

pub(super) fn accounts_from_env(env: &BTreeMap<String, String>) -> Result<Vec<LabAccount>> {
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
pub(super) fn mysql_admin_url(var: impl Fn(&str) -> Option<String>) -> Result<String> {
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
    fn a_mysql_lab_without_a_server_url_names_the_variable() {
        let err = mysql_admin_url(|_| None).unwrap_err().to_string();
        assert!(err.contains("DIALTONE_TEST_MYSQL_URL"), "{err}");
        let url = mysql_admin_url(|k| {
            (k == "LAB_MYSQL_ADMIN_URL").then(|| "mysql://root@127.0.0.1:1".into())
        });
        assert_eq!(url.unwrap(), "mysql://root@127.0.0.1:1");
    }
}
