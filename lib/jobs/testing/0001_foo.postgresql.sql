-- The reference job type's tables (jobs.testing.foojob).
CREATE TABLE foo (
    id serial PRIMARY KEY,
    name text NOT NULL,
    note text
);
CREATE TABLE foo_job (
    id serial PRIMARY KEY,
    job integer NOT NULL UNIQUE REFERENCES job (id) ON DELETE CASCADE,
    foo integer NOT NULL REFERENCES foo (id) ON DELETE CASCADE,
    job_type integer NOT NULL,
    json_data jsonb
);
CREATE INDEX foo_job__foo__job_type__idx ON foo_job (foo, job_type);
