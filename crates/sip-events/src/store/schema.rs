//! The file's layout: its version, the tables, the migration from the first layout, and how
//! the messages table codes methods.

/// The layout's version (`PRAGMA user_version`): 2 since message rows are compact (method as a
/// code, no addresses: those are in the registration and call rows).
pub(super) const LAYOUT: i64 = 2;
pub(super) const SET_LAYOUT: &str = "PRAGMA user_version = 2";

/// The message row's method code: 1 REGISTER, 2 INVITE, 3 BYE, 4 CANCEL (0 for anything else).
pub(super) fn method_code(m: &str) -> i64 {
    match m {
        "REGISTER" => 1,
        "INVITE" => 2,
        "BYE" => 3,
        "CANCEL" => 4,
        _ => 0,
    }
}

/// The messages table's columns, in both layouts' statements.
macro_rules! messages_columns {
    () => {
        "(id INTEGER PRIMARY KEY, at INTEGER NOT NULL, call_id TEXT NOT NULL, cseq INTEGER NOT NULL,
  method INTEGER NOT NULL, status INTEGER);"
    };
}

/// Version 1 files (message rows with text method and addresses) are rewritten once, keeping
/// every row.
pub(super) const MIGRATE_V1: &str = concat!(
    "CREATE TABLE messages_v2 ",
    messages_columns!(),
    "
INSERT INTO messages_v2 (id, at, call_id, cseq, method, status)
    SELECT id, at, call_id, cseq,
           CASE method WHEN 'REGISTER' THEN 1 WHEN 'INVITE' THEN 2 WHEN 'BYE' THEN 3 WHEN 'CANCEL' THEN 4 ELSE 0 END,
           status
    FROM messages;
DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;
"
);

pub(super) const SCHEMA: &str = concat!(
    "CREATE TABLE IF NOT EXISTS messages ",
    messages_columns!(),
    "
CREATE TABLE IF NOT EXISTS registrations (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL,
    cseq INTEGER NOT NULL,
    at INTEGER NOT NULL,
    user TEXT NOT NULL,
    source TEXT NOT NULL,
    transport TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    auth_user TEXT NOT NULL,
    from_request INTEGER NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    challenge INTEGER NOT NULL,
    UNIQUE (call_id, cseq)
);
CREATE INDEX IF NOT EXISTS registrations_user_at ON registrations (user, at);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL UNIQUE,
    at INTEGER NOT NULL,
    caller TEXT NOT NULL,
    callee TEXT NOT NULL,
    dialled TEXT NOT NULL,
    source TEXT NOT NULL,
    from_request INTEGER NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    rank INTEGER NOT NULL,
    answered_at INTEGER,
    ended_at INTEGER
);
CREATE INDEX IF NOT EXISTS calls_caller_at ON calls (caller, at);
CREATE INDEX IF NOT EXISTS calls_callee_at ON calls (callee, at);
CREATE INDEX IF NOT EXISTS calls_dialled_at ON calls (dialled, at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"
);
