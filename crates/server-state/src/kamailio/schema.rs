//! The schema a Kamailio database really has, read from its own catalogue, and the mapping from
//! what diagnosis needs (who called whom, what was dialled) to the columns that hold it.
//!
//! Servers differ: the stock `acc` table has no caller or callee column at all, `db_extra` names
//! whatever the operator chose, `acc_cdrs` exists only with `cdr_enable`, `sip_trace` only when
//! tracing goes to the database. Queries are built from what is here; what is not here costs
//! only the evidence that needs it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use super::db::Db;
use crate::Result;

/// The tables dialtone reads, in the order `doctor` prints them.
pub const TABLES: &[&str] = &[
    "subscriber",
    "domain",
    "dbaliases",
    "location",
    "acc",
    "acc_cdrs",
    "missed_calls",
    "sip_trace",
    "dispatcher",
    "dr_gateways",
    "dr_rules",
];

/// Columns named in `[management.columns]` for what cannot be guessed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ColumnMap {
    /// `acc` column with the calling user (From user).
    pub caller: Option<String>,
    /// `acc` column with the called user after alias resolution.
    pub callee: Option<String>,
    /// `acc` column with what the caller dialled (Request-URI/To user before rewriting).
    pub dialled: Option<String>,
    /// `acc` column with the route taken (echo, trunk, local).
    pub route: Option<String>,
}

/// The usual names, best first, for each piece of a call record (stock config's commented
/// ALTERs, kamailio-docs examples, this project's lab).
const CALLER: &[&str] = &[
    "src_user",
    "caller",
    "from_user",
    "src_ouser",
    "calling_user",
];
const CALLEE: &[&str] = &["dst_user", "callee", "dst_ruser", "called_user", "to_user"];
const DIALLED: &[&str] = &[
    "dst_ouser",
    "dialed",
    "dialled",
    "dialed_number",
    "ruri_user",
];
const ROUTE: &[&str] = &["route", "call_route"];

/// What the catalogue says: each table that exists with its columns.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Schema {
    pub tables: BTreeMap<String, BTreeSet<String>>,
}

impl Schema {
    /// Reads the catalogue for every table of [`TABLES`] at once.
    pub(crate) async fn discover(db: &Db, timeout: Duration) -> Result<Schema> {
        let lookups = TABLES.iter().map(|t| async move {
            let cols = db.columns(t, timeout).await?;
            Ok::<_, crate::Error>((t.to_string(), cols))
        });
        let mut tables = BTreeMap::new();
        for r in futures::future::join_all(lookups).await {
            let (t, cols) = r?;
            if let Some(cols) = cols {
                tables.insert(t, cols);
            }
        }
        Ok(Schema { tables })
    }

    pub fn has(&self, table: &str) -> bool {
        self.tables.contains_key(table)
    }

    pub fn has_col(&self, table: &str, col: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|c| c.contains(&col.to_ascii_lowercase()))
    }

    /// The configured column when it exists, else the first usual name that does.
    fn pick(&self, table: &str, configured: Option<&str>, usual: &[&str]) -> Pick {
        if let Some(c) = configured.filter(|c| !c.trim().is_empty()) {
            return if self.has_col(table, c) {
                Pick::Found(c.to_ascii_lowercase())
            } else {
                Pick::ConfiguredMissing(c.to_string())
            };
        }
        match usual.iter().find(|c| self.has_col(table, c)) {
            Some(c) => Pick::Found(c.to_string()),
            None => Pick::None,
        }
    }

    /// Where each piece of a call record comes from on this server.
    pub fn acc_columns(&self, map: &ColumnMap) -> AccColumns {
        let mut notes = Vec::new();
        let mut get = |what: &str, key: &str, configured: &Option<String>, usual: &[&str]| {
            match self.pick("acc", configured.as_deref(), usual) {
                Pick::Found(c) => Some(c),
                Pick::ConfiguredMissing(c) => {
                    notes.push(format!(
                        "[management.columns] {key} = \"{c}\" but acc has no column {c} ({what} unknown)"
                    ));
                    None
                }
                Pick::None => None,
            }
        };
        let caller = get("caller", "caller", &map.caller, CALLER);
        let callee = get("callee", "callee", &map.callee, CALLEE);
        let dialled = get("dialled number", "dialled", &map.dialled, DIALLED);
        let route = get("route", "route", &map.route, ROUTE);
        let cdr_route = self.has_col("acc_cdrs", "callid") && self.has_col("acc_cdrs", "route");
        let cdr_duration =
            self.has_col("acc_cdrs", "callid") && self.has_col("acc_cdrs", "duration");
        AccColumns {
            present: self.has("acc"),
            caller,
            callee,
            dialled,
            route,
            cdr_route,
            cdr_duration,
            notes,
        }
    }
}

enum Pick {
    Found(String),
    ConfiguredMissing(String),
    None,
}

/// The `acc` columns this server has for each piece of a call record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AccColumns {
    /// The `acc` table exists.
    pub present: bool,
    pub caller: Option<String>,
    pub callee: Option<String>,
    pub dialled: Option<String>,
    pub route: Option<String>,
    /// `acc_cdrs` has `callid` and `route`.
    pub cdr_route: bool,
    /// `acc_cdrs` has `callid` and `duration`.
    pub cdr_duration: bool,
    /// Configured columns that do not exist.
    pub notes: Vec<String>,
}

impl AccColumns {
    /// The table alone tells whose call each row is.
    pub fn has_parties(&self) -> bool {
        self.caller.is_some() || self.callee.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(acc: &[&str]) -> Schema {
        Schema {
            tables: BTreeMap::from([(
                "acc".to_string(),
                acc.iter().map(|s| s.to_string()).collect(),
            )]),
        }
    }

    const STOCK: &[&str] = &[
        "id",
        "method",
        "from_tag",
        "to_tag",
        "callid",
        "sip_code",
        "sip_reason",
        "time",
    ];

    #[test]
    fn stock_acc_names_no_party() {
        let c = schema(STOCK).acc_columns(&ColumnMap::default());
        assert!(c.present);
        assert!(!c.has_parties());
        assert_eq!(c.dialled, None);
    }

    #[test]
    fn common_extras_are_guessed() {
        let mut cols = STOCK.to_vec();
        cols.extend(crate::generate::COMMON_ACC_EXTRAS);
        let c = schema(&cols).acc_columns(&ColumnMap::default());
        assert_eq!(c.caller.as_deref(), Some("src_user"));
        assert_eq!(c.callee.as_deref(), Some("dst_user"));
        assert_eq!(c.dialled.as_deref(), Some("dst_ouser"));
        assert_eq!(c.route, None);
    }

    #[test]
    fn configured_names_win_and_missing_ones_are_noted() {
        let mut cols = STOCK.to_vec();
        cols.extend(["orig_user", "term_user", "digits", "src_user"]);
        let map = ColumnMap {
            caller: Some("orig_user".into()),
            callee: Some("term_user".into()),
            dialled: Some("digits".into()),
            route: Some("nope".into()),
        };
        let c = schema(&cols).acc_columns(&map);
        assert_eq!(c.caller.as_deref(), Some("orig_user"));
        assert_eq!(c.callee.as_deref(), Some("term_user"));
        assert_eq!(c.dialled.as_deref(), Some("digits"));
        assert_eq!(c.route, None);
        assert_eq!(
            c.notes,
            vec![
                "[management.columns] route = \"nope\" but acc has no column nope (route unknown)"
            ]
        );
    }
}
