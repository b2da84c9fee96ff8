-- Automated check results the server wrote (only the server writes here, never an upload).
CREATE TABLE check_runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    step         TEXT    NOT NULL,
    answer       TEXT,
    summary      TEXT    NOT NULL,
    evidence     TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    at           INTEGER NOT NULL
);
CREATE INDEX check_runs_incident ON check_runs (incident_id, step, id);
