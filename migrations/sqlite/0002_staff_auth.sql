-- Staff sign-in (SQLite; lock-step with ../postgres/0002_staff_auth.sql): sessions, recovery codes,
-- password history. Session ids and codes are stored as SHA-256 hashes only.

ALTER TABLE users ADD COLUMN totp_enrolled_at TEXT;
ALTER TABLE users ADD COLUMN password_changed_at TEXT;

CREATE TABLE sessions (
    id_hash       TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    -- 'password': password accepted, second factor or forced set-up still to do; 'full': signed in.
    stage         TEXT NOT NULL CHECK (stage IN ('password', 'full')),
    csrf_token    TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    source        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE recovery_codes (
    user_id     TEXT NOT NULL REFERENCES users (id),
    code_hash   TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    used_at     TEXT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE password_history (
    user_id        TEXT NOT NULL REFERENCES users (id),
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, created_at);
