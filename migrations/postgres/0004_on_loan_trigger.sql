-- Lock-step with ../sqlite/0004_on_loan_trigger.sql, which aligns SQLite's on_loan check with the
-- one PostgreSQL has had since 0001 (devices_lifecycle()); nothing to change here.
SELECT 1;
