"""What every fenced statement shares: the condition that matches a row
only while it is RUNNING in the claimed attempt, the chunks long lists
are sent in, and "now" by the database clock."""

__all__ = ["CHUNK", "chunks", "fenced", "fenced_any", "now"]

from jobs.database import UTCNow, dialect
from jobs.database.stormext import IntArray, compile_expr
from jobs.interfaces.job import JobStatus

RUNNING = JobStatus.RUNNING

# Rows per statement when a statement names many claims.
CHUNK = 500


# One claim in VALUES; typed, so that a prepared statement can infer its
# parameters' types (`jobs.database.prepared`).
_PAIR = "(CAST(? AS INTEGER), CAST(? AS INTEGER))"


def fenced(claims):
    """SQL and parameters matching the rows of `claims` (``[(job_id,
    attempt)]``) still in the claimed attempt: RUNNING, same
    ``attempt_count``. For statements that begin with UPDATE (SQLite
    reports no row count for ``WITH … UPDATE``); the id list lets
    PostgreSQL find the rows by the primary key."""
    sql = ("status = %d AND id IN (%s) AND (id, attempt_count) IN (VALUES %s)"
           % (RUNNING.value, ", ".join(["?"] * len(claims)),
              ", ".join([_PAIR] * len(claims))))
    params = [job_id for job_id, _ in claims]
    params.extend(value for pair in claims for value in pair)
    return sql, params


def fenced_any(store, claims):
    """`fenced` in one form for any number of claims where the database
    takes array parameters (PostgreSQL: ids and attempts as two arrays,
    so that one prepared statement serves every batch size), else
    `fenced`. Prefixed with ``job.``: usable beside other tables."""
    if not dialect(store).arrays:
        return fenced(claims)
    ids = IntArray(job_id for job_id, _ in claims)
    return (ANY_FENCE, [ids, ids, IntArray(attempt for _, attempt in claims)])


# `fenced_any` on PostgreSQL.
ANY_FENCE = (
    "job.status = %d AND job.id = ANY(?::integer[]) AND (job.id,"
    " job.attempt_count) IN (SELECT * FROM unnest(?::integer[],"
    " ?::integer[]))" % RUNNING.value)


def chunks(items):
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def now(store, offset=0):
    """SQL and parameters for the database clock's now plus `offset`."""
    return compile_expr(store, UTCNow(offset))
