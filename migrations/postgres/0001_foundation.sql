-- Foundation schema (PostgreSQL). Kept in lock-step with ../sqlite/0001_foundation.sql:
-- same tables, columns, constraints and triggers; only types and trigger syntax differ.
-- Times are timestamptz (audit times are text: they are hashed as written); ids are random UUIDs (text).

CREATE TABLE institution (
    id               SMALLINT PRIMARY KEY CHECK (id = 1),
    name             TEXT NOT NULL,
    name_en          TEXT NOT NULL DEFAULT '',
    day_phone        TEXT NOT NULL,
    day_hours        TEXT NOT NULL DEFAULT '',
    day_hours_en     TEXT NOT NULL DEFAULT '',
    night_phone      TEXT NOT NULL,
    night_hours      TEXT NOT NULL DEFAULT '',
    night_hours_en   TEXT NOT NULL DEFAULT '',
    email            TEXT NOT NULL DEFAULT '',
    address          TEXT NOT NULL DEFAULT '',
    public_base_url  TEXT NOT NULL DEFAULT '',
    updated_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    login                 TEXT NOT NULL UNIQUE,
    name                  TEXT NOT NULL,
    role                  TEXT NOT NULL CHECK (role IN ('nurse', 'admin', 'auditor')),
    site                  TEXT NOT NULL DEFAULT '',
    email                 TEXT NOT NULL DEFAULT '',
    password_hash         TEXT,
    must_change_password  BOOLEAN NOT NULL DEFAULT TRUE,
    totp_secret_enc       TEXT,
    totp_last_step        BIGINT,
    disabled              BOOLEAN NOT NULL DEFAULT FALSE,
    failed_logins         INTEGER NOT NULL DEFAULT 0,
    locked_until          TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_tokens (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    token_hash    TEXT NOT NULL UNIQUE,
    created_at    TIMESTAMPTZ NOT NULL,
    last_used_at  TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ
);

CREATE TABLE vendors (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    support_phone         TEXT NOT NULL DEFAULT '',
    support_hours         TEXT NOT NULL DEFAULT '',
    support_hours_en      TEXT NOT NULL DEFAULT '',
    email                 TEXT NOT NULL DEFAULT '',
    contract_ref          TEXT NOT NULL DEFAULT '',
    responsibility_notes  TEXT NOT NULL DEFAULT '',
    may_access_data       BOOLEAN NOT NULL DEFAULT FALSE,
    review_date           DATE,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE TABLE device_models (
    id                    TEXT PRIMARY KEY,
    vendor_id             TEXT REFERENCES vendors (id),
    manufacturer          TEXT NOT NULL,
    model_name            TEXT NOT NULL,
    model_name_en         TEXT NOT NULL DEFAULT '',
    kind                  TEXT NOT NULL CHECK (kind IN ('wearable', 'home_iot', 'other')),
    connectivity          TEXT NOT NULL DEFAULT '',
    data_on_device        TEXT NOT NULL DEFAULT '[]',
    security_limitations  TEXT NOT NULL DEFAULT '',
    latest_firmware       TEXT NOT NULL DEFAULT '',
    support_ends          DATE,
    wipe_steps            TEXT NOT NULL DEFAULT '[]',
    summary_ja            TEXT NOT NULL DEFAULT '',
    summary_en            TEXT NOT NULL DEFAULT '',
    troubleshooting_ja    TEXT NOT NULL DEFAULT '[]',
    troubleshooting_en    TEXT NOT NULL DEFAULT '[]',
    alarms_ja             TEXT NOT NULL DEFAULT '',
    alarms_en             TEXT NOT NULL DEFAULT '',
    if_lost_ja            TEXT NOT NULL DEFAULT '',
    if_lost_en            TEXT NOT NULL DEFAULT '',
    returning_ja          TEXT NOT NULL DEFAULT '',
    returning_en          TEXT NOT NULL DEFAULT '',
    data_protection_ja    TEXT NOT NULL DEFAULT '',
    data_protection_en    TEXT NOT NULL DEFAULT '',
    current_document_id   TEXT,
    created_at            TIMESTAMPTZ NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL
);

-- 説明文書: insert-only. A new version is a new row; signed consents keep theirs.
CREATE TABLE explanation_documents (
    id          TEXT PRIMARY KEY,
    model_id    TEXT NOT NULL REFERENCES device_models (id),
    version     INTEGER NOT NULL CHECK (version > 0),
    title_ja    TEXT NOT NULL,
    title_en    TEXT NOT NULL DEFAULT '',
    body_ja     TEXT NOT NULL,
    body_en     TEXT NOT NULL DEFAULT '',
    sha256      TEXT NOT NULL,
    created_by  TEXT REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (model_id, version)
);

CREATE TABLE devices (
    id                   TEXT PRIMARY KEY,
    asset_tag            TEXT NOT NULL UNIQUE,
    serial               TEXT NOT NULL DEFAULT '',
    model_id             TEXT NOT NULL REFERENCES device_models (id),
    firmware_version     TEXT NOT NULL DEFAULT '',
    firmware_updated_on  DATE,
    status               TEXT NOT NULL DEFAULT 'available'
        CHECK (status IN ('available', 'on_loan', 'awaiting_wipe', 'lost', 'maintenance', 'retired')),
    status_changed_at    TIMESTAMPTZ NOT NULL,
    qr_token             TEXT NOT NULL UNIQUE,
    site                 TEXT NOT NULL DEFAULT '',
    location             TEXT NOT NULL DEFAULT '',
    notes                TEXT NOT NULL DEFAULT '',
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX devices_status ON devices (status);
CREATE INDEX devices_model ON devices (model_id);

-- Labels whose token was rotated: their page says the label is no longer valid.
CREATE TABLE retired_qr_tokens (
    token       TEXT PRIMARY KEY,
    device_id   TEXT NOT NULL REFERENCES devices (id),
    retired_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE patients (
    id          TEXT PRIMARY KEY,
    number      TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    kana        TEXT NOT NULL DEFAULT '',
    phone       TEXT NOT NULL DEFAULT '',
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- A loan and its consent reference each other; both foreign keys are checked at commit,
-- so neither row can exist without the other.
CREATE TABLE loans (
    id           TEXT PRIMARY KEY,
    patient_id   TEXT NOT NULL REFERENCES patients (id),
    consent_id   TEXT NOT NULL UNIQUE,
    lent_by      TEXT NOT NULL REFERENCES users (id),
    lent_at      TIMESTAMPTZ NOT NULL,
    due_on       DATE NOT NULL,
    purpose      TEXT NOT NULL DEFAULT '',
    site         TEXT NOT NULL DEFAULT '',
    closed_at    TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX loans_open_due ON loans (due_on) WHERE closed_at IS NULL;
CREATE INDEX loans_patient ON loans (patient_id);

CREATE TABLE loan_devices (
    loan_id      TEXT NOT NULL REFERENCES loans (id),
    device_id    TEXT NOT NULL REFERENCES devices (id),
    ended_at     TIMESTAMPTZ,
    end_reason   TEXT CHECK (end_reason IN ('returned', 'lost')),
    PRIMARY KEY (loan_id, device_id),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- The rule that matters most: a device is never on two open loans.
CREATE UNIQUE INDEX loan_devices_one_open_loan ON loan_devices (device_id) WHERE ended_at IS NULL;

CREATE TABLE consents (
    id                     TEXT PRIMARY KEY,
    loan_id                TEXT NOT NULL UNIQUE REFERENCES loans (id) DEFERRABLE INITIALLY DEFERRED,
    patient_id             TEXT NOT NULL REFERENCES patients (id),
    -- SHA-256 of document_text: every explanation document shown, exactly as shown.
    document_sha256        TEXT NOT NULL,
    document_text          TEXT NOT NULL,
    signer_name            TEXT NOT NULL,
    relationship           TEXT NOT NULL CHECK (relationship IN ('self', 'family', 'agent')),
    relationship_note      TEXT NOT NULL DEFAULT '',
    signature_svg          TEXT NOT NULL,
    explained_by           TEXT NOT NULL REFERENCES users (id),
    signed_at              TIMESTAMPTZ NOT NULL,
    receipt_signature      TEXT NOT NULL DEFAULT '',
    verification_code      TEXT NOT NULL DEFAULT ''
);

-- The explanation documents (one per device model in the kit) a consent was given on.
CREATE TABLE consent_documents (
    consent_id   TEXT NOT NULL REFERENCES consents (id),
    document_id  TEXT NOT NULL REFERENCES explanation_documents (id),
    version      INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (consent_id, document_id)
);

-- 同意の撤回: a new record; the consent itself never changes.
CREATE TABLE consent_withdrawals (
    id            TEXT PRIMARY KEY,
    consent_id    TEXT NOT NULL UNIQUE REFERENCES consents (id),
    withdrawn_at  TIMESTAMPTZ NOT NULL,
    recorded_by   TEXT NOT NULL REFERENCES users (id),
    signer_name   TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT ''
);

CREATE TABLE returns (
    id                     TEXT PRIMARY KEY,
    loan_id                TEXT NOT NULL REFERENCES loans (id),
    device_id              TEXT NOT NULL REFERENCES devices (id),
    returned_at            TIMESTAMPTZ NOT NULL,
    received_by            TEXT NOT NULL REFERENCES users (id),
    damaged                BOOLEAN NOT NULL DEFAULT FALSE,
    accessories_complete   BOOLEAN NOT NULL DEFAULT TRUE,
    cleaned                BOOLEAN NOT NULL DEFAULT FALSE,
    condition_notes        TEXT NOT NULL DEFAULT '',
    returned_by_name       TEXT NOT NULL DEFAULT '',
    signature_svg          TEXT,
    UNIQUE (loan_id, device_id)
);

CREATE TABLE wipes (
    id              TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL REFERENCES devices (id),
    loan_id         TEXT REFERENCES loans (id),
    method          TEXT NOT NULL CHECK (method IN ('clear', 'purge', 'destroy')),
    tool            TEXT NOT NULL DEFAULT '',
    tool_version    TEXT NOT NULL DEFAULT '',
    checklist       TEXT NOT NULL DEFAULT '[]',
    performed_by    TEXT NOT NULL REFERENCES users (id),
    performed_at    TIMESTAMPTZ NOT NULL,
    verified_by     TEXT REFERENCES users (id),
    verified_at     TIMESTAMPTZ,
    evidence_ref    TEXT NOT NULL DEFAULT '',
    result          TEXT NOT NULL CHECK (result IN ('passed', 'failed')),
    destination     TEXT NOT NULL DEFAULT '',
    notes           TEXT NOT NULL DEFAULT '',
    -- Verification is by a second person (four-eyes), enforced here too.
    CHECK (verified_by IS NULL OR verified_by <> performed_by)
);
CREATE INDEX wipes_device ON wipes (device_id);

CREATE TABLE custody_checks (
    id          TEXT PRIMARY KEY,
    loan_id     TEXT NOT NULL REFERENCES loans (id),
    device_id   TEXT NOT NULL REFERENCES devices (id),
    checked_at  TIMESTAMPTZ NOT NULL,
    checked_by  TEXT NOT NULL REFERENCES users (id),
    method      TEXT NOT NULL CHECK (method IN ('phone', 'visit', 'other')),
    confirmed   BOOLEAN NOT NULL,
    notes       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX custody_checks_device ON custody_checks (device_id, checked_at);

CREATE TABLE problem_reports (
    id              TEXT PRIMARY KEY,
    device_id       TEXT NOT NULL REFERENCES devices (id),
    category        TEXT NOT NULL
        CHECK (category IN ('not_working', 'alarm', 'damaged', 'lost', 'strange', 'other')),
    body            TEXT NOT NULL DEFAULT '' CHECK (length(body) <= 2000),
    callback_phone  TEXT NOT NULL DEFAULT '' CHECK (length(callback_phone) <= 30),
    created_at      TIMESTAMPTZ NOT NULL,
    status          TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'acknowledged', 'resolved')),
    resolved_by     TEXT REFERENCES users (id),
    resolved_at     TIMESTAMPTZ,
    resolution      TEXT NOT NULL DEFAULT ''
);

CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (id),
    loan_id      TEXT REFERENCES loans (id),
    report_id    TEXT REFERENCES problem_reports (id),
    kind         TEXT NOT NULL CHECK (kind IN ('lost', 'stolen', 'damaged', 'security', 'other')),
    status       TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    description  TEXT NOT NULL DEFAULT '',
    opened_by    TEXT REFERENCES users (id),
    opened_at    TIMESTAMPTZ NOT NULL,
    resolved_by  TEXT REFERENCES users (id),
    resolved_at  TIMESTAMPTZ,
    resolution   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE mail_outbox (
    id               TEXT PRIMARY KEY,
    dedupe_key       TEXT NOT NULL UNIQUE,
    recipient        TEXT NOT NULL,
    subject          TEXT NOT NULL,
    body_text        TEXT NOT NULL,
    body_html        TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    sent_at          TIMESTAMPTZ,
    last_error       TEXT NOT NULL DEFAULT ''
);

-- Audit chain. seq is assigned by the application under the audit_head lock, so the chain never forks.
CREATE TABLE audit_events (
    seq          BIGINT PRIMARY KEY,
    at           TEXT NOT NULL,
    actor_id     TEXT NOT NULL DEFAULT '',
    actor_login  TEXT NOT NULL DEFAULT '',
    role         TEXT NOT NULL DEFAULT '',
    action       TEXT NOT NULL,
    target_type  TEXT NOT NULL DEFAULT '',
    target_id    TEXT NOT NULL DEFAULT '',
    patient_id   TEXT NOT NULL DEFAULT '',
    details      TEXT NOT NULL DEFAULT '{}',
    source       TEXT NOT NULL DEFAULT '',
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_patient ON audit_events (patient_id) WHERE patient_id <> '';

CREATE TABLE audit_head (
    id    SMALLINT PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
-- Forward references (PostgreSQL checks that the referenced table exists).
ALTER TABLE device_models ADD CONSTRAINT device_models_current_document_fk
    FOREIGN KEY (current_document_id) REFERENCES explanation_documents (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE loans ADD CONSTRAINT loans_consent_fk
    FOREIGN KEY (consent_id) REFERENCES consents (id) DEFERRABLE INITIALLY DEFERRED;

-- Append-only and immutable records, refused by the database itself.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only/immutable', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER consents_no_change BEFORE UPDATE OR DELETE ON consents
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER consent_documents_no_change BEFORE UPDATE OR DELETE ON consent_documents
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER explanation_documents_no_change BEFORE UPDATE OR DELETE ON explanation_documents
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The device lifecycle (SPEC §4), enforced under the application as well.
CREATE FUNCTION devices_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status <> NEW.status AND (OLD.status || '>' || NEW.status) NOT IN (
        'available>on_loan',
        'on_loan>awaiting_wipe', 'on_loan>lost',
        'lost>awaiting_wipe', 'lost>retired',
        'awaiting_wipe>available', 'awaiting_wipe>maintenance', 'awaiting_wipe>retired',
        'maintenance>awaiting_wipe', 'maintenance>available') THEN
        RAISE EXCEPTION 'illegal device status transition';
    END IF;
    IF NEW.status = 'on_loan' AND OLD.status <> 'on_loan' AND NOT EXISTS (
        SELECT 1 FROM loan_devices WHERE device_id = NEW.id AND ended_at IS NULL) THEN
        RAISE EXCEPTION 'on_loan needs an open loan';
    END IF;
    IF NEW.status = 'available' AND OLD.status <> 'available' AND NOT EXISTS (
        SELECT 1 FROM wipes
        WHERE device_id = NEW.id AND verified_by IS NOT NULL AND result = 'passed'
          AND method <> 'destroy' AND performed_at >= OLD.status_changed_at) THEN
        RAISE EXCEPTION 'available needs a verified wipe';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER devices_lifecycle BEFORE UPDATE OF status ON devices
    FOR EACH ROW EXECUTE FUNCTION devices_lifecycle();
