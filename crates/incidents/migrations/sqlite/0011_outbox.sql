-- Webhooks (src/outbox.rs): one event per opening, escalation and closing, written in the same
-- transaction as the change; delivered by the worker of `dialtone serve`, each attempt logged.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id      BIGINT  NOT NULL REFERENCES incidents (id),
    event            TEXT    NOT NULL CHECK (event IN ('open', 'escalate', 'close')),
    runbook          TEXT    NOT NULL,
    version          BIGINT  NOT NULL,
    idempotency_key  TEXT    NOT NULL UNIQUE,
    created_at       BIGINT  NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT  NOT NULL,
    delivered_at     BIGINT,
    last_status      BIGINT,
    last_error       TEXT
);
CREATE INDEX outbox_pending ON outbox (incident_id, id) WHERE delivered_at IS NULL;
CREATE TABLE outbox_attempts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    outbox_id  BIGINT  NOT NULL REFERENCES outbox (id),
    at         BIGINT  NOT NULL,
    status     BIGINT,
    error      TEXT
);
CREATE INDEX outbox_attempts_event ON outbox_attempts (outbox_id, id);
-- The reference of the ticket a receiver filed for the incident (its answer's "ticket" field).
ALTER TABLE incidents ADD COLUMN ticket_ref TEXT;
