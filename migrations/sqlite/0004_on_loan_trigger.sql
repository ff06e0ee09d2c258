-- Align the SQLite on_loan check with PostgreSQL's: it applies when a device becomes on_loan,
-- not on every update of a device that already is.
DROP TRIGGER devices_on_loan_needs_open_loan;
CREATE TRIGGER devices_on_loan_needs_open_loan BEFORE UPDATE OF status ON devices
WHEN NEW.status = 'on_loan' AND OLD.status <> 'on_loan' AND NOT EXISTS (
    SELECT 1 FROM loan_devices WHERE device_id = NEW.id AND ended_at IS NULL)
BEGIN SELECT RAISE(ABORT, 'on_loan needs an open loan'); END;
