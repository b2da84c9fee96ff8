-- Tamper evidence: each audit row carries the hash of the row before it and of its own content
-- (SHA-256, hex). The store fills both for existing rows right after this script, in the same
-- transaction, and then puts the no-update trigger back.
DROP TRIGGER audit_log_no_update;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN row_hash TEXT;
