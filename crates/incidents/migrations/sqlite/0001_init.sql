-- dialtone incident store, SQLite schema 1.
-- Timestamps are unix milliseconds (INTEGER) and JSON is TEXT, the same as on PostgreSQL,
-- so both backends hold identical data.

CREATE TABLE incidents (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account          TEXT    NOT NULL CHECK (account <> ''),
    reporter         TEXT    NOT NULL,
    description      TEXT    NOT NULL,
    level            TEXT    NOT NULL CHECK (level IN ('L1', 'L2', 'L3')),
    status           TEXT    NOT NULL CHECK (status IN ('open', 'waiting_user', 'escalated', 'closed')),
    runbook          TEXT    NOT NULL,
    current_step     TEXT,
    outcome          TEXT,
    escalation_kind  TEXT,
    assignee         TEXT,
    version          INTEGER NOT NULL DEFAULT 1,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX incidents_status ON incidents (status);
CREATE INDEX incidents_assignee ON incidents (assignee);

CREATE TABLE step_records (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    runbook      TEXT    NOT NULL,
    step         TEXT    NOT NULL,
    answer       TEXT    NOT NULL,
    source       TEXT    NOT NULL CHECK (source IN ('agent', 'automated', 'assumed')),
    evidence     TEXT    NOT NULL,
    note         TEXT,
    actor        TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX step_records_incident ON step_records (incident_id, id);

CREATE TABLE escalations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    from_level   TEXT    NOT NULL,
    to_level     TEXT    NOT NULL,
    kind         TEXT,
    reason       TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX escalations_incident ON escalations (incident_id, id);

-- Append-only: the store never updates or deletes rows here; triggers make sure.
CREATE TABLE audit_log (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER REFERENCES incidents (id),
    actor        TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    action       TEXT    NOT NULL,
    detail       TEXT    NOT NULL
);
CREATE INDEX audit_log_incident ON audit_log (incident_id, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE attachments (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id   INTEGER NOT NULL REFERENCES incidents (id),
    name          TEXT    NOT NULL,
    content_type  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    content       BLOB    NOT NULL,
    actor         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX attachments_incident ON attachments (incident_id, id);

CREATE TABLE users (
    username       TEXT    PRIMARY KEY,
    password_hash  TEXT    NOT NULL,
    role           TEXT    NOT NULL CHECK (role IN ('l1', 'l2', 'admin')),
    disabled       BOOLEAN NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash  TEXT    PRIMARY KEY,
    username    TEXT    NOT NULL REFERENCES users (username),
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX sessions_username ON sessions (username);

CREATE TABLE api_tokens (
    token_hash  TEXT    PRIMARY KEY,
    username    TEXT    NOT NULL REFERENCES users (username),
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
