-- A second job family (jobs.testing.bazjob) with a context table of its
-- own, so that tests can show one section's role kept out of another's.
CREATE TABLE baz_job (
    id serial PRIMARY KEY,
    job integer NOT NULL UNIQUE REFERENCES job (id) ON DELETE CASCADE,
    job_type integer NOT NULL,
    json_data jsonb
);
