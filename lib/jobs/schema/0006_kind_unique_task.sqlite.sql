-- job.kind: what type of job a row is, set at creation by every job type
-- the framework creates: "<context table>:<job_type value>" (DerivedJob,
-- e.g. foo_job:0), "job:<base_job_type>" (jobs without a context table),
-- "task:<dotted path>" (jobs.tasks functions). NULL for rows made before
-- this migration, or by hand. Indexed with the status: counts per kind,
-- and the per-kind row security and limits to come, read it.
ALTER TABLE job ADD COLUMN kind TEXT;
CREATE INDEX job__kind__status__idx ON job (kind, status);
-- job.unique_key: at most one PENDING job (WAITING, RUNNING or SUSPENDED)
-- per (kind, key). Once that job is finished (COMPLETED, FAILED,
-- CANCELLED), the key is free again. Creating a job whose key is taken
-- returns the pending one (INSERT ... ON CONFLICT DO NOTHING, then a
-- read).
ALTER TABLE job ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX job__kind__unique_key__pending__idx ON job (kind, unique_key) WHERE unique_key IS NOT NULL AND status IN (0, 1, 4);
-- The context table of every function job (jobs.tasks): the function's
-- dotted path and its JSON arguments; one row per job, keyed by it.
CREATE TABLE task_job (
    job INTEGER PRIMARY KEY REFERENCES job (id) ON DELETE CASCADE,
    task TEXT NOT NULL,
    args TEXT NOT NULL,
    kwargs TEXT NOT NULL
);
