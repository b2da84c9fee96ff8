-- API tokens expire and can be revoked; tokens made before this get the default 90 days.
ALTER TABLE api_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE api_tokens ADD COLUMN revoked_at BIGINT;
UPDATE api_tokens SET expires_at = created_at + 7776000000 WHERE expires_at IS NULL;
