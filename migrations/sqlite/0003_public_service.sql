-- The public service's window onto the database (SQLite; lock-step with ../postgres/0003_public_service.sql).
-- mobile-api reads only these views and inserts only problem reports; on PostgreSQL its role is
-- granted exactly that (server migrate creates the role). No patient, loan or consent column is here.

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
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO public_version (id, version) VALUES (1, 1);

CREATE TRIGGER public_version_devices_ins AFTER INSERT ON devices BEGIN UPDATE public_version SET version = version + 1; END;
-- Status changes between lending states do not change the public page; only these do.
CREATE TRIGGER public_version_devices_upd AFTER UPDATE ON devices
WHEN OLD.qr_token <> NEW.qr_token OR OLD.asset_tag <> NEW.asset_tag OR OLD.model_id <> NEW.model_id
    OR (OLD.status = 'retired') <> (NEW.status = 'retired')
BEGIN UPDATE public_version SET version = version + 1; END;
CREATE TRIGGER public_version_models_ins AFTER INSERT ON device_models BEGIN UPDATE public_version SET version = version + 1; END;
CREATE TRIGGER public_version_models_upd AFTER UPDATE ON device_models BEGIN UPDATE public_version SET version = version + 1; END;
CREATE TRIGGER public_version_vendors_ins AFTER INSERT ON vendors BEGIN UPDATE public_version SET version = version + 1; END;
CREATE TRIGGER public_version_vendors_upd AFTER UPDATE ON vendors BEGIN UPDATE public_version SET version = version + 1; END;
CREATE TRIGGER public_version_institution_ins AFTER INSERT ON institution BEGIN UPDATE public_version SET version = version + 1; END;
CREATE TRIGGER public_version_institution_upd AFTER UPDATE ON institution BEGIN UPDATE public_version SET version = version + 1; END;
CREATE TRIGGER public_version_retired_ins AFTER INSERT ON retired_qr_tokens BEGIN UPDATE public_version SET version = version + 1; END;

-- Reports are picked up by the staff service, which alerts staff through the mail outbox.
ALTER TABLE problem_reports ADD COLUMN alerted_at TEXT;
CREATE INDEX problem_reports_unalerted ON problem_reports (created_at) WHERE alerted_at IS NULL;
