-- Security hardening (issue #16; PostgreSQL; lock-step with ../sqlite/0008_security.sql).

-- API tokens: who created them (the owner, or '' for the command line: such a token is not its
-- owner's own credential, so it cannot verify a wipe) and when they stop working.
ALTER TABLE api_tokens ADD COLUMN created_by TEXT NOT NULL DEFAULT '';
ALTER TABLE api_tokens ADD COLUMN expires_at TIMESTAMPTZ;
CREATE INDEX api_tokens_user ON api_tokens (user_id);

-- Sign-in failures per (account, source address; IPv6 by /64): a guesser holds back only their own
-- attempts on that account, never its owner's from elsewhere. Replaces users.failed_logins and
-- users.locked_until, which any five wrong passwords from anywhere used to set.
CREATE TABLE sign_in_throttle (
    user_id       TEXT NOT NULL REFERENCES users (id),
    source        TEXT NOT NULL,
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  TIMESTAMPTZ,
    updated_at    TIMESTAMPTZ,
    PRIMARY KEY (user_id, source)
);

-- Signed checkpoints of the audit chain: every hour the head (seq, hash) is signed with the
-- institution's Ed25519 key and mailed to the admins, so a chain rewritten as a whole (all hashes
-- recomputed) no longer matches what was signed and sent out.
CREATE TABLE audit_checkpoints (
    seq        BIGINT PRIMARY KEY,
    hash       TEXT NOT NULL,
    at         TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    signature  TEXT NOT NULL
);
