-- The public service's window onto the database (PostgreSQL; lock-step with ../sqlite/0003_public_service.sql).
-- mobile-api reads only these views and inserts only problem reports; its role is granted exactly
-- that (server migrate creates the role). No patient, loan or consent column is here.

CREATE VIEW public_institution AS
SELECT name, name_en, day_phone, day_hours, day_hours_en, night_phone, night_hours, night_hours_en
FROM institution WHERE id = 1;

CREATE VIEW public_device_help AS
SELECT d.qr_token AS token, d.id AS device_id, d.asset_tag,
       m.model_name, m.model_name_en, m.kind, m.summary_ja, m.summary_en,
       m.troubleshooting_ja, m.troubleshooting_en, m.alarms_ja, m.alarms_en, m.if_lost_ja, m.if_lost_en,
       m.returning_ja, m.returning_en, m.data_protection_ja, m.data_protection_en, m.data_on_device,
       COALESCE(v.name, '') AS vendor_name, COALESCE(v.support_phone, '') AS vendor_phone,
       COALESCE(v.support_hours, '') AS vendor_hours, COALESCE(v.support_hours_en, '') AS vendor_hours_en
FROM devices d
JOIN device_models m ON m.id = d.model_id
LEFT JOIN vendors v ON v.id = m.vendor_id
WHERE d.status <> 'retired';

-- Labels that no longer lead anywhere: rotated tokens and retired devices.
CREATE VIEW public_revoked_tokens AS
SELECT token FROM retired_qr_tokens
UNION ALL
SELECT qr_token AS token FROM devices WHERE status = 'retired';

-- Bumped whenever public help data may have changed; mobile-api drops its cache when it moves.
CREATE TABLE public_version (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO public_version (id, version) VALUES (1, 1);

CREATE FUNCTION bump_public_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE public_version SET version = version + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER public_version_devices_ins AFTER INSERT ON devices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version();
-- Status changes between lending states do not change the public page; only these do.
CREATE TRIGGER public_version_devices_upd AFTER UPDATE ON devices FOR EACH ROW
    WHEN (OLD.qr_token <> NEW.qr_token OR OLD.asset_tag <> NEW.asset_tag OR OLD.model_id <> NEW.model_id
    OR (OLD.status = 'retired') <> (NEW.status = 'retired'))
    EXECUTE FUNCTION bump_public_version();
CREATE TRIGGER public_version_models AFTER INSERT OR UPDATE ON device_models
    FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version();
CREATE TRIGGER public_version_vendors AFTER INSERT OR UPDATE ON vendors
    FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version();
CREATE TRIGGER public_version_institution AFTER INSERT OR UPDATE ON institution
    FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version();
CREATE TRIGGER public_version_retired AFTER INSERT ON retired_qr_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION bump_public_version();

-- Reports are picked up by the staff service, which alerts staff through the mail outbox.
ALTER TABLE problem_reports ADD COLUMN alerted_at TIMESTAMPTZ;
CREATE INDEX problem_reports_unalerted ON problem_reports (created_at) WHERE alerted_at IS NULL;
