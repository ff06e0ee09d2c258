-- What the admin dashboard and the auditors' log viewer filter on (lock-step with ../postgres/0005_oversight.sql).
-- Each audit index ends in seq so "newest first, 50 at a time" reads the index in order and stops early.
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_target ON audit_events (target_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_patient_seq ON audit_events (patient_id, seq);
DROP INDEX audit_events_patient;

-- Custody checks of one loan, and open loans by nurse for the per-nurse counts.
CREATE INDEX custody_checks_loan ON custody_checks (loan_id, device_id, confirmed, checked_at);
CREATE INDEX loans_open_lent_by ON loans (lent_by) WHERE closed_at IS NULL;
-- Firmware behind the model's latest: counted from the index alone.
CREATE INDEX devices_model_firmware ON devices (model_id, firmware_version, status);

-- Devices counted by model, firmware and status, kept by triggers in the same transaction as the
-- change: the dashboard's counts read a few dozen rows instead of every device.
CREATE TABLE device_counts (
    model_id          TEXT NOT NULL,
    firmware_version  TEXT NOT NULL,
    status            TEXT NOT NULL,
    n                 BIGINT NOT NULL,
    PRIMARY KEY (model_id, firmware_version, status)
);
INSERT INTO device_counts (model_id, firmware_version, status, n)
SELECT model_id, firmware_version, status, COUNT(*) FROM devices GROUP BY model_id, firmware_version, status;
CREATE TRIGGER device_counts_ins AFTER INSERT ON devices BEGIN
    INSERT INTO device_counts (model_id, firmware_version, status, n) VALUES (NEW.model_id, NEW.firmware_version, NEW.status, 1)
    ON CONFLICT (model_id, firmware_version, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER device_counts_upd AFTER UPDATE OF model_id, firmware_version, status ON devices BEGIN
    UPDATE device_counts SET n = n - 1
    WHERE model_id = OLD.model_id AND firmware_version = OLD.firmware_version AND status = OLD.status;
    INSERT INTO device_counts (model_id, firmware_version, status, n) VALUES (NEW.model_id, NEW.firmware_version, NEW.status, 1)
    ON CONFLICT (model_id, firmware_version, status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER device_counts_del AFTER DELETE ON devices BEGIN
    UPDATE device_counts SET n = n - 1
    WHERE model_id = OLD.model_id AND firmware_version = OLD.firmware_version AND status = OLD.status;
END;
