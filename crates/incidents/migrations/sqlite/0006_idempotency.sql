-- Answers of write API calls by Idempotency-Key, per credential, so a retried call is answered
-- the same instead of being done twice. `status` is NULL while the first call runs.
CREATE TABLE idempotency (
    scope        TEXT    NOT NULL,
    key          TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,
    status       INTEGER,
    body         TEXT,
    created_at   BIGINT  NOT NULL,
    PRIMARY KEY (scope, key)
);
