-- What the admin dashboard and the auditors' log viewer filter on (lock-step with ../sqlite/0005_oversight.sql).
-- Each audit index ends in seq so "newest first, 50 at a time" reads the index in order and stops early.
CREATE INDEX audit_events_actor ON audit_events (actor_id, seq);
CREATE INDEX audit_events_target ON audit_events (target_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_patient_seq ON audit_events (patient_id, seq);
DROP INDEX audit_events_patient;

-- Custody checks of one loan, and open loans by nurse for the per-nurse counts.
CREATE INDEX custody_checks_loan ON custody_checks (loan_id, device_id, checked_at);
CREATE INDEX loans_open_lent_by ON loans (lent_by) WHERE closed_at IS NULL;
-- Firmware behind the model's latest: counted from the index alone.
CREATE INDEX devices_model_firmware ON devices (model_id, firmware_version, status);
