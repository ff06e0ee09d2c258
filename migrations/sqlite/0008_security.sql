-- Security hardening (issue #16; SQLite; lock-step with ../postgres/0008_security.sql).

-- API tokens: who created them (the owner, or '' for the command line: such a token is not its
-- owner's own credential, so it cannot verify a wipe) and when they stop working.
ALTER TABLE api_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
