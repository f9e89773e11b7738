-- The seed-style job family (jobs.testing.seedjob): a context table
-- written as Launchpad's guide writes one.
CREATE TABLE seed_job (
    id serial PRIMARY KEY,
    job integer NOT NULL UNIQUE REFERENCES job (id) ON DELETE CASCADE,
    job_type integer NOT NULL,
    json_data jsonb
);
