-- The outbox is claimed before it is sent (lock-step with ../sqlite/0006_outbox_lease_and_idempotency.sql):
-- a worker leases a batch (claimed_until), so several replicas never send the same mail, and a
-- worker that dies mid-send only delays its batch until the lease runs out. A mail that keeps
-- failing is given up (failed_at) after a bounded number of attempts and shown to admins until
-- one of them sends it again or sets it aside (dismissed_at).
ALTER TABLE mail_outbox ADD COLUMN claimed_until TIMESTAMPTZ;
ALTER TABLE mail_outbox ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE mail_outbox ADD COLUMN failed_at TIMESTAMPTZ;
ALTER TABLE mail_outbox ADD COLUMN dismissed_at TIMESTAMPTZ;
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX mail_outbox_failed ON mail_outbox (failed_at) WHERE failed_at IS NOT NULL AND dismissed_at IS NULL;

-- Idempotency keys (a form's hidden key, the API's Idempotency-Key header): a check-out, return,
-- wipe or verification submitted twice with the same key is done once; the repeat gets the first
-- result. Keyed per user: one person's key never answers for another.
CREATE TABLE idempotency_keys (
    user_id      TEXT NOT NULL,
    key          TEXT NOT NULL,
    operation    TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    result_id    TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
