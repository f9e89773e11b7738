-- The OOPS index: one row per OOPS report, written when the report file
-- is (jobs.oopsindex), so that `jobs oops list/summary/show`, `jobs show`
-- and the dashboard list reports from every host. The file on its host
-- stays the full report; a row is its id, when, which job and section,
-- the exception, the fingerprint reports are grouped by, and the host
-- holding the file. No foreign key to job: `jobs prune` deletes a job's
-- rows (and its local files) with the job, and a report about no job
-- (a log record) has none.
CREATE TABLE oops_report (
    id text PRIMARY KEY,
    reported timestamp without time zone NOT NULL,
    job_id integer,
    section text,
    exception_type text,
    exception_value text,
    fingerprint text NOT NULL,
    host text NOT NULL
);
CREATE INDEX oops_report__job_id__idx ON oops_report (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX oops_report__fingerprint__reported__idx ON oops_report (fingerprint, reported);
CREATE INDEX oops_report__reported__idx ON oops_report (reported);
-- The dashboard's job list, newest first, filtered by type (kind):
-- keyset pagination on id within a kind.
CREATE INDEX job__kind__id__idx ON job (kind, id);
-- Throughput (jobs completed and failed per minute): an index-only
-- range scan of the finished jobs of the last hour or day.
CREATE INDEX job__finished__idx ON job (date_finished, status) WHERE status IN (2, 3);
-- Per (kind, status) estimates for the counts too large to count at each
-- scrape (jobs.metrics.counts): a multivariate MCV list, kept by ANALYZE.
CREATE STATISTICS job__kind__status__stats (mcv) ON kind, status FROM job;
