-- Concurrency and rate limits (jobs.model.limits), enforced by the claim
-- statement of a section that sets them.
-- job.concurrency_key: at most the section's max_running_per_key RUNNING
-- jobs share one key, across all runners.
ALTER TABLE job ADD COLUMN concurrency_key TEXT;
CREATE INDEX job__concurrency_key__running__idx ON job (concurrency_key) WHERE status = 1 AND concurrency_key IS NOT NULL;
-- job_rate: each rate-limited section's current window (its start by the
-- database's clock) and how many jobs were claimed in it.
CREATE TABLE job_rate (
    section TEXT PRIMARY KEY,
    window_start TIMESTAMP NOT NULL,
    started INTEGER NOT NULL
);
