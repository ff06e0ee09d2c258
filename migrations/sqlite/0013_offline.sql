-- Offline check-out and return on an enrolled phone (SPEC §10; lock-step with the other folder's 0013).
--
-- A phone is enrolled by its nurse (the browser makes a non-extractable key pair and sends the
-- public key), approved by an admin, and may be revoked; records it signed while offline are
-- checked against that key on sync.
CREATE TABLE phone_enrolments (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    label         TEXT NOT NULL,
    -- ES256 (ECDSA P-256, SEC1 uncompressed point) or Ed25519 (32 bytes); base64url.
    algorithm     TEXT NOT NULL CHECK (algorithm IN ('ES256', 'Ed25519')),
    public_key    TEXT NOT NULL UNIQUE,
    requested_at  TEXT NOT NULL,
    approved_at   TEXT,
    approved_by   TEXT NOT NULL DEFAULT '',
    revoked_at    TEXT,
    revoked_by    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX phone_enrolments_user ON phone_enrolments (user_id);

-- Every offline record the server accepted for processing, once per (user, key): what the phone
-- signed (payload and signature, kept as evidence), the phone's clock and the server's, and how
-- it ended (synced, or a conflict a person must resolve). A second sync reads the answer here.
CREATE TABLE offline_records (
    user_id           TEXT NOT NULL,
    key               TEXT NOT NULL,
    enrolment_id      TEXT NOT NULL,
    kind              TEXT NOT NULL CHECK (kind IN ('check_out', 'return')),
    payload           TEXT NOT NULL,
    phone_signature   TEXT NOT NULL,
    phone_time        TEXT NOT NULL,
    server_time       TEXT NOT NULL,
    outcome           TEXT NOT NULL CHECK (outcome IN ('synced', 'conflict')),
    -- The loan written (check-out) or returned (return); empty for a conflict.
    loan_id           TEXT NOT NULL DEFAULT '',
    conflict_id       TEXT NOT NULL DEFAULT '',
    -- The institution's Ed25519 signature over the phone's record and the server time.
    countersignature  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (user_id, key)
);

-- Offline records that could not be written as they were: shown to the nurse and counted in the
-- admins' digest until someone resolves them (never last-write-wins).
CREATE TABLE offline_conflicts (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users(id),
    record_key    TEXT NOT NULL,
    enrolment_id  TEXT NOT NULL,
    kind          TEXT NOT NULL,
    record_kind   TEXT NOT NULL,
    detail_ja     TEXT NOT NULL,
    detail_en     TEXT NOT NULL,
    patient_id    TEXT NOT NULL DEFAULT '',
    created_at    TEXT NOT NULL,
    resolved_at   TEXT,
    resolved_by   TEXT NOT NULL DEFAULT '',
    resolution    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX offline_conflicts_open ON offline_conflicts (user_id) WHERE resolved_at IS NULL;
