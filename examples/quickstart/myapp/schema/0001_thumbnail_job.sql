-- One row per thumbnail job, keyed by its job.
CREATE TABLE thumbnail_job (
    job integer PRIMARY KEY REFERENCES job (id) ON DELETE CASCADE,
    job_type integer NOT NULL,
    path text NOT NULL
);
