-- Patients may have a date of birth (lock-step with ../postgres/0009_patient_birth_date.sql): the
-- pick lists show name, kana and date of birth together so the right patient is chosen (SPEC §9).
ALTER TABLE patients ADD COLUMN birth_date TEXT;
