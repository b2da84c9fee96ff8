-- Revised answers are kept, marked superseded (when and by whom), never deleted; an answer
-- records the answer an automated check proposed for its step, if any, so overrides can be
-- counted; internal notes are an action of their own, at any time.
ALTER TABLE step_records ADD COLUMN superseded_at BIGINT;
ALTER TABLE step_records ADD COLUMN superseded_by TEXT;
ALTER TABLE step_records ADD COLUMN proposed TEXT;

CREATE TABLE notes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    text         TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    at           BIGINT  NOT NULL
);
CREATE INDEX notes_incident ON notes (incident_id, id);
CREATE INDEX escalations_actor ON escalations (actor, incident_id);
