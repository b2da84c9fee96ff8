//! SQL on the lab database, with the `sqlite3` CLI or the `mysql` client.

use super::process::{SCRIPT_TIMEOUT, run_bounded, status_text};
use super::variant::DbEngine;
use super::{Error, Lab, Result, check_word};
use std::process::Command;

/// Turns `mysql -N -B -r` output into the sqlite3 CLI's: `|` between columns, NULL empty.
pub(super) fn mysql_to_sqlite_output(text: &str) -> String {
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

impl Lab {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_output_looks_like_sqlite_output() {
        assert_eq!(mysql_to_sqlite_output("a\tNULL\t3\nb\tx\t"), "a||3\nb|x|");
    }
}
