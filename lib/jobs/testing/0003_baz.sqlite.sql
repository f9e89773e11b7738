-- A second job family (jobs.testing.bazjob) with a context table of its
-- own, so that tests can show one section's role kept out of another's.
CREATE TABLE baz_job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job INTEGER NOT NULL UNIQUE REFERENCES job (id) ON DELETE CASCADE,
    job_type INTEGER NOT NULL,
    json_data TEXT
);
