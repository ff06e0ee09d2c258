-- A consent page sent after the idle lock (lock-step with the other folder's 0011): what was
-- entered and drawn is kept for its user, who signs in again (R27) and sends it from the draft.
-- A draft lives no longer than the session it was made in could have.
CREATE TABLE consent_drafts (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id),
    form        TEXT NOT NULL,
    saved_at    TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX consent_drafts_user ON consent_drafts (user_id, expires_at);
