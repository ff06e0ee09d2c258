-- Corrections to a loan (SPEC §9), lock-step with ../sqlite/0010_loan_corrections.sql. History is
-- never rewritten: an extension and a void are new, immutable records.

-- A due date moved later, with the reason. loans.due_on holds the current date (reminders and the
-- dashboard read it); the first row's old_due_on is the date the consent receipt was signed with.
CREATE TABLE loan_extensions (
    id           TEXT PRIMARY KEY,
    loan_id      TEXT NOT NULL REFERENCES loans (id),
    old_due_on   DATE NOT NULL,
    new_due_on   DATE NOT NULL,
    reason       TEXT NOT NULL,
    extended_by  TEXT NOT NULL,
    extended_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX loan_extensions_loan ON loan_extensions (loan_id);

-- A mistaken check-out voided within the window: the loan is closed, its consent kept as evidence.
CREATE TABLE loan_voids (
    loan_id      TEXT PRIMARY KEY REFERENCES loans (id),
    voided_by    TEXT NOT NULL,
    voided_at    TIMESTAMPTZ NOT NULL,
    reason       TEXT NOT NULL
);

CREATE TRIGGER loan_extensions_no_change BEFORE UPDATE OR DELETE ON loan_extensions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER loan_voids_no_change BEFORE UPDATE OR DELETE ON loan_voids
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- A voided device's part in its loan ends with end_reason 'voided'.
ALTER TABLE loan_devices DROP CONSTRAINT loan_devices_end_reason_check;
ALTER TABLE loan_devices ADD CONSTRAINT loan_devices_end_reason_check
    CHECK (end_reason IN ('returned', 'lost', 'voided'));

-- The device lifecycle (SPEC §4). on_loan → available only when the device's loan was voided
-- after it went out; a voided device never left the nurse's hands, so it needs no wipe.
CREATE OR REPLACE FUNCTION devices_lifecycle() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    voided BOOLEAN := OLD.status = 'on_loan' AND NEW.status = 'available' AND EXISTS (
        SELECT 1 FROM loan_devices ld JOIN loan_voids v ON v.loan_id = ld.loan_id
        WHERE ld.device_id = NEW.id AND ld.end_reason = 'voided' AND ld.ended_at >= OLD.status_changed_at);
BEGIN
    IF OLD.status <> NEW.status AND (OLD.status || '>' || NEW.status) NOT IN (
        'available>on_loan',
        'on_loan>awaiting_wipe', 'on_loan>lost',
        'lost>awaiting_wipe', 'lost>retired',
        'awaiting_wipe>available', 'awaiting_wipe>maintenance', 'awaiting_wipe>retired',
        'maintenance>awaiting_wipe', 'maintenance>available') AND NOT voided THEN
        RAISE EXCEPTION 'illegal device status transition';
    END IF;
    IF NEW.status = 'on_loan' AND OLD.status <> 'on_loan' AND NOT EXISTS (
        SELECT 1 FROM loan_devices WHERE device_id = NEW.id AND ended_at IS NULL) THEN
        RAISE EXCEPTION 'on_loan needs an open loan';
    END IF;
    IF NEW.status = 'available' AND OLD.status <> 'available' AND NOT voided AND NOT EXISTS (
        SELECT 1 FROM wipes
        WHERE device_id = NEW.id AND verified_by IS NOT NULL AND result = 'passed'
          AND method <> 'destroy' AND performed_at >= OLD.status_changed_at) THEN
        RAISE EXCEPTION 'available needs a verified wipe';
    END IF;
    RETURN NEW;
END $$;
