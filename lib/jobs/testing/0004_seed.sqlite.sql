-- The seed-style job family (jobs.testing.seedjob): a context table
-- written as Launchpad's guide writes one.
CREATE TABLE seed_job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job INTEGER NOT NULL UNIQUE REFERENCES job (id) ON DELETE CASCADE,
    job_type INTEGER NOT NULL,
    json_data TEXT
);
