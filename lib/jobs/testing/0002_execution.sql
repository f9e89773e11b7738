-- Where DoFooJob records each run ("record" behaviour), inside the job's
-- own transaction: a committed row is a committed execution.
CREATE TABLE job_execution (
    job integer NOT NULL,
    attempt integer NOT NULL,
    pid integer NOT NULL
);
CREATE INDEX job_execution__job__idx ON job_execution (job);
