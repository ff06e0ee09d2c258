-- Corrections to a loan (SPEC §9), lock-step with ../postgres/0010_loan_corrections.sql. History is
-- never rewritten: an extension and a void are new, immutable records.

-- A due date moved later, with the reason. loans.due_on holds the current date (reminders and the
-- dashboard read it); the first row's old_due_on is the date the consent receipt was signed with.
CREATE TABLE loan_extensions (
    id           TEXT PRIMARY KEY,
    loan_id      TEXT NOT NULL REFERENCES loans (id),
    old_due_on   TEXT NOT NULL,
    new_due_on   TEXT NOT NULL,
    reason       TEXT NOT NULL,
    extended_by  TEXT NOT NULL,
    extended_at  TEXT NOT NULL
);
CREATE INDEX loan_extensions_loan ON loan_extensions (loan_id);

-- A mistaken check-out voided within the window: the loan is closed, its consent kept as evidence.
CREATE TABLE loan_voids (
    loan_id      TEXT PRIMARY KEY REFERENCES loans (id),
    voided_by    TEXT NOT NULL,
    voided_at    TEXT NOT NULL,
    reason       TEXT NOT NULL
);

CREATE TRIGGER loan_extensions_no_update BEFORE UPDATE ON loan_extensions
BEGIN SELECT RAISE(ABORT, 'loan extensions are immutable'); END;
CREATE TRIGGER loan_extensions_no_delete BEFORE DELETE ON loan_extensions
BEGIN SELECT RAISE(ABORT, 'loan extensions are immutable'); END;
CREATE TRIGGER loan_voids_no_update BEFORE UPDATE ON loan_voids
BEGIN SELECT RAISE(ABORT, 'loan voids are immutable'); END;
CREATE TRIGGER loan_voids_no_delete BEFORE DELETE ON loan_voids
BEGIN SELECT RAISE(ABORT, 'loan voids are immutable'); END;

-- A voided device's part in its loan ends with end_reason 'voided'. SQLite cannot change a CHECK in
-- place, so loan_devices is rebuilt; the device triggers that read it are dropped first and made
-- again below (with the one new transition).
DROP TRIGGER devices_lifecycle;
DROP TRIGGER devices_on_loan_needs_open_loan;
DROP TRIGGER devices_available_needs_verified_wipe;

CREATE TABLE loan_devices_new (
    loan_id      TEXT NOT NULL REFERENCES loans (id),
    device_id    TEXT NOT NULL REFERENCES devices (id),
    ended_at     TEXT,
    end_reason   TEXT CHECK (end_reason IN ('returned', 'lost', 'voided')),
    PRIMARY KEY (loan_id, device_id),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
INSERT INTO loan_devices_new (loan_id, device_id, ended_at, end_reason)
    SELECT loan_id, device_id, ended_at, end_reason FROM loan_devices;
DROP TABLE loan_devices;
ALTER TABLE loan_devices_new RENAME TO loan_devices;
CREATE UNIQUE INDEX loan_devices_one_open_loan ON loan_devices (device_id) WHERE ended_at IS NULL;

-- The device lifecycle (SPEC §4). on_loan → available only when the device's loan was voided
-- after it went out (a void record exists and its part in the loan ended as 'voided').
CREATE TRIGGER devices_lifecycle BEFORE UPDATE OF status ON devices
WHEN OLD.status <> NEW.status AND (OLD.status || '>' || NEW.status) NOT IN (
    'available>on_loan',
    'on_loan>awaiting_wipe', 'on_loan>lost',
    'lost>awaiting_wipe', 'lost>retired',
    'awaiting_wipe>available', 'awaiting_wipe>maintenance', 'awaiting_wipe>retired',
    'maintenance>awaiting_wipe', 'maintenance>available')
AND NOT (OLD.status = 'on_loan' AND NEW.status = 'available' AND EXISTS (
    SELECT 1 FROM loan_devices ld JOIN loan_voids v ON v.loan_id = ld.loan_id
    WHERE ld.device_id = NEW.id AND ld.end_reason = 'voided' AND ld.ended_at >= OLD.status_changed_at))
BEGIN SELECT RAISE(ABORT, 'illegal device status transition'); END;

CREATE TRIGGER devices_on_loan_needs_open_loan BEFORE UPDATE OF status ON devices
WHEN NEW.status = 'on_loan' AND OLD.status <> 'on_loan' AND NOT EXISTS (
    SELECT 1 FROM loan_devices WHERE device_id = NEW.id AND ended_at IS NULL)
BEGIN SELECT RAISE(ABORT, 'on_loan needs an open loan'); END;

-- A voided device never left the nurse's hands: no wipe is needed for it.
CREATE TRIGGER devices_available_needs_verified_wipe BEFORE UPDATE OF status ON devices
WHEN NEW.status = 'available' AND OLD.status <> 'available' AND NOT EXISTS (
    SELECT 1 FROM wipes
    WHERE device_id = NEW.id AND verified_by IS NOT NULL AND result = 'passed'
      AND method <> 'destroy' AND performed_at >= OLD.status_changed_at)
AND NOT (OLD.status = 'on_loan' AND EXISTS (
    SELECT 1 FROM loan_devices ld JOIN loan_voids v ON v.loan_id = ld.loan_id
    WHERE ld.device_id = NEW.id AND ld.end_reason = 'voided' AND ld.ended_at >= OLD.status_changed_at))
BEGIN SELECT RAISE(ABORT, 'available needs a verified wipe'); END;
