-- The reference job type's tables (jobs.testing.foojob).
CREATE TABLE foo (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    note TEXT
);
CREATE TABLE foo_job (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job INTEGER NOT NULL UNIQUE REFERENCES job (id) ON DELETE CASCADE,
    foo INTEGER NOT NULL REFERENCES foo (id) ON DELETE CASCADE,
    job_type INTEGER NOT NULL,
    json_data TEXT
);
CREATE INDEX foo_job__foo__job_type__idx ON foo_job (foo, job_type);
