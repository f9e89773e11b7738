-- Where DoFooJob records its running window ("window" behaviour); the
-- reliability tests of concurrency limits run on PostgreSQL.
CREATE TABLE job_window (
    job INTEGER NOT NULL,
    key TEXT NOT NULL,
    started TIMESTAMP NOT NULL,
    ended TIMESTAMP
);
