"""What every fenced statement shares: the condition that matches a row
only while it is RUNNING in the claimed attempt, the chunks long lists
are sent in, and "now" by the database clock."""

__all__ = ["CHUNK", "chunks", "fenced", "now"]

from jobs.database import UTCNow
from jobs.database.stormext import compile_expr
from jobs.interfaces.job import JobStatus

RUNNING = JobStatus.RUNNING

# Rows per statement when a statement names many claims.
CHUNK = 500


def fenced(claims):
    """SQL and parameters matching the rows of `claims` (``[(job_id,
    attempt)]``) still in the claimed attempt: RUNNING, same
    ``attempt_count``. For statements that begin with UPDATE (SQLite
    reports no row count for ``WITH … UPDATE``); the id list lets
    PostgreSQL find the rows by the primary key."""
    sql = ("status = %d AND id IN (%s) AND (id, attempt_count) IN (VALUES %s)"
           % (RUNNING.value, ", ".join(["?"] * len(claims)),
              ", ".join(["(?, ?)"] * len(claims))))
    params = [job_id for job_id, _ in claims]
    params.extend(value for pair in claims for value in pair)
    return sql, params


def chunks(items):
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def now(store, offset=0):
    """SQL and parameters for the database clock's now plus `offset`."""
    return compile_expr(store, UTCNow(offset))
