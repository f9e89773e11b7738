"""Running windows: when a job's code started and ended, written through
a connection of the process's own that commits each statement at once, so
that other processes see a window while it is open. The reliability test
of concurrency limits reads how many windows of one key overlapped
(`max_overlap`): each window lies inside its job's RUNNING time.

The same test also checks each claim where it happens (`check_claims`,
`max_claimed`): a trigger records, for every job that becomes RUNNING,
how many live RUNNING jobs its key then had and whether the claiming
transaction held the section's advisory lock. A window overlap needs the
jobs' code to run at the same instant; a claim over the limit shows here
however short the jobs are.

PostgreSQL only.
"""

__all__ = ["check_claims", "max_claimed", "max_overlap", "running_window"]

import contextlib

import psycopg2

from jobs.database import get_store
from jobs.database.stormext import dsn_of

_connection = None


def _cursor():
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg2.connect(dsn_of(get_store().get_database()))
        _connection.autocommit = True
    return _connection.cursor()


@contextlib.contextmanager
def running_window(job_id, key):
    """Record the window of the code inside the ``with`` block."""
    cursor = _cursor()
    cursor.execute("INSERT INTO job_window (job, key, started) VALUES"
                   " (%s, %s, clock_timestamp())", (job_id, key))
    try:
        yield
    finally:
        cursor.execute("UPDATE job_window SET ended = clock_timestamp()"
                       " WHERE job = %s AND ended IS NULL", (job_id,))


def max_overlap(store):
    """``{key: the most windows of that key open at one instant}``."""
    return dict(store.execute(
        "SELECT s.key, max((SELECT count(*) FROM job_window w WHERE"
        " w.key = s.key AND w.started <= s.started AND w.ended > s.started))"
        " FROM job_window s GROUP BY s.key"))


_CLAIM_CHECK = """
CREATE TABLE job_claim_check (job integer, key text, running integer,
                              locked boolean);
CREATE FUNCTION job_claim_check() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER AS $$
BEGIN
    INSERT INTO job_claim_check SELECT NEW.id, NEW.concurrency_key,
        (SELECT count(*) FROM job WHERE status = NEW.status
         AND concurrency_key = NEW.concurrency_key
         AND lease_expires >= statement_timestamp() AT TIME ZONE 'UTC'),
        EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                AND pid = pg_backend_pid() AND granted);
    RETURN NEW;
END $$;
CREATE TRIGGER job_claim_check AFTER UPDATE OF status ON job FOR EACH ROW
    WHEN (NEW.status = 1 AND OLD.status <> 1
          AND NEW.concurrency_key IS NOT NULL)
    EXECUTE FUNCTION job_claim_check();
"""


def check_claims(store):
    """Record every claim of a job with a concurrency key from now on
    (`max_claimed`); the caller commits."""
    store.execute(_CLAIM_CHECK)


def max_claimed(store):
    """``{key: (the most live RUNNING jobs of that key any claim left,
    how many claims did not hold an advisory lock)}``."""
    return {key: (running, unlocked) for key, running, unlocked in
            store.execute(
                "SELECT key, max(running), count(*) FILTER (WHERE NOT"
                " locked) FROM job_claim_check GROUP BY key")}
