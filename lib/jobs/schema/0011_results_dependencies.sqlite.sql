-- job.result: what run() returned, as JSON text, written with the
-- COMPLETED outcome in the same UPDATE.
ALTER TABLE job ADD COLUMN result TEXT;
-- Dependencies (jobs.model.dependencies). A job that depends on jobs not
-- yet completed is created BLOCKED (status 6), with waiting_on counting
-- them; each dependency's outcome counts it down, and at 0 the job is
-- WAITING: the ready definition (status 0) and its partial index need no
-- other condition, so dependencies cost the claim nothing.
-- has_dependents tells an outcome whether it has anything to settle;
-- run_if_dependency_fails is on_dependency_failure='run'; cancelled_by
-- names the dependency whose failure cancelled the job (retrying it
-- makes the job pending again).
ALTER TABLE job ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0;
ALTER TABLE job ADD COLUMN has_dependents BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE job ADD COLUMN run_if_dependency_fails BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE job ADD COLUMN cancelled_by INTEGER;
CREATE TABLE job_dependency (
    job INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    depends_on INTEGER NOT NULL REFERENCES job (id) ON DELETE CASCADE,
    PRIMARY KEY (job, depends_on)
);
CREATE INDEX job_dependency__depends_on__idx ON job_dependency (depends_on);
CREATE INDEX job__cancelled_by__idx ON job (cancelled_by) WHERE cancelled_by IS NOT NULL;
-- A BLOCKED job is pending: it holds its unique key.
DROP INDEX job__kind__unique_key__pending__idx;
CREATE UNIQUE INDEX job__kind__unique_key__pending__idx ON job (kind, unique_key) WHERE unique_key IS NOT NULL AND status IN (0, 1, 4, 6);
