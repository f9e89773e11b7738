"""Running windows: when a job's code started and ended, written through
a connection of the process's own that commits each statement at once, so
that other processes see a window while it is open. The reliability test
of concurrency limits reads how many windows of one key overlapped
(`max_overlap`): each window lies inside its job's RUNNING time.

PostgreSQL only.
"""

__all__ = ["max_overlap", "running_window"]

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
