-- 代筆 (lock-step with the other folder's 0012): when someone else wrote the signature for the
-- signer, who wrote it, for whom and why, stored with the consent (and covered by its receipt).
-- Empty for a consent the signer wrote themselves, and for every consent signed before.
ALTER TABLE consents ADD COLUMN proxy_writer TEXT NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN proxy_written_for TEXT NOT NULL DEFAULT '';
ALTER TABLE consents ADD COLUMN proxy_reason TEXT NOT NULL DEFAULT '';
