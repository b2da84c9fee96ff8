-- Webhook receivers configured in the admin page (src/webhook_targets.rs), beside those of the
-- webhook file given to `dialtone serve --webhooks`: one row per scope, '*' for every runbook
-- without its own receiver, else a runbook id. The secret signs the bodies (HMAC-SHA256); it is
-- never shown again once saved.
CREATE TABLE webhook_targets (
    scope       TEXT    PRIMARY KEY,
    url         TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    timeout_ms  BIGINT  NOT NULL,
    actor       TEXT    NOT NULL,
    at          BIGINT  NOT NULL
);
