"""The statements a runner sends about the jobs it runs.

The fenced claim takes ready jobs as new attempts; every later statement
about a claimed job — renewing its lease, writing its progress, recording
its outcome, giving it back — is *fenced*: it matches the row only while
it is RUNNING in the claimed attempt (``attempt_count``). A runner whose
job was taken over (its lease expired: it died, froze or lost its
database) therefore changes nothing, and learns it from the row count.

Each statement exists once, here, and takes plain values (job ids,
attempt numbers, statuses): the runner's `jobs.attempt.Attempt` and
`jobs.outcome.Outcome` are turned into them by the runner.
"""

__all__ = [
    "Claimed",
    "claim",
    "lock",
    "progress_update",
    "record",
    "record_completed",
    "release",
    "renew",
]

from collections import namedtuple
from datetime import timedelta

from storm.expr import And, Desc, Or, Select, Update

from jobs.database import UTCNow, clock, dialect
from jobs.database.stormext import compile_expr
from jobs.interfaces.job import JobStatus
from jobs.model.job import Job, ready_kinds
from jobs.model.locking import LockingSelect

RUNNING = JobStatus.RUNNING
WAITING = JobStatus.WAITING

# Rows per statement when a statement names many claims.
CHUNK = 500


class Claimed(namedtuple(
        "Claimed", "job_id attempt max_retries cancel_requested lost job",
        defaults=(None,))):
    """One job a claim took: its id, the new attempt's number, its
    ``max_retries``, whether a cancel was requested, whether the claim
    took it over from a lost runner (it was RUNNING, lease expired), and
    the runnable job when the claimer had it loaded already (else None)."""


# (cache_key, limit, lease) -> the claim statement's SQL and parameters.
_claim_statements = {}


def claim(store, condition, tables, limit, lease_seconds, cache_key=None):
    """Claim up to `limit` ready jobs matching `condition`, atomically.

    One statement moves them to RUNNING as a new attempt with a lease of
    `lease_seconds`: on PostgreSQL an ``UPDATE ... FROM (SELECT ... FOR
    UPDATE SKIP LOCKED) RETURNING``, so concurrent claimers get disjoint
    jobs without waiting (each kind of ready job, waiting and orphaned,
    read in its index's order: the cost does not grow with the queue); on
    SQLite a SELECT and an UPDATE inside the transaction's write lock.
    Highest `priority` first, then oldest (lowest id). Orphans are
    claimed whatever their attempts: the outcome policy decides whether
    the new attempt runs (`jobs.outcome.decide_lost`).

    :param condition: a Storm expression choosing the source's jobs.
    :param tables: the tables `condition` needs besides ``job``.
    :param cache_key: a hashable value standing for `condition`: the
        statement is then compiled once per key, limit and lease
        (compiling it costs more than running it).
    :return: a list of `Claimed`, in claiming order. The caller commits
        to publish the claim.
    """
    if isinstance(lease_seconds, timedelta):
        lease_seconds = lease_seconds.total_seconds()
    if dialect(store).returning:
        rows = _claim_returning(store, condition, tables, limit,
                                lease_seconds, cache_key)
    else:
        rows = _claim_select_update(store, condition, tables, limit,
                                    lease_seconds)
    # Objects cached before the UPDATE are stale now.
    store.invalidate()
    rows.sort(key=lambda row: (-row[5], row[0]))
    return [Claimed(job_id, attempt, max_retries, bool(cancel),
                    previous == RUNNING.value)
            for job_id, attempt, max_retries, cancel, previous, _ in rows]


def _claim_sets(lease_seconds):
    return {Job.status: RUNNING.value,
            Job.attempt_count: Job.attempt_count + 1,
            Job.lease_expires: UTCNow(lease_seconds),
            Job.date_started: UTCNow(),
            Job.date_finished: None}


def _claim_returning(store, condition, tables, limit, lease_seconds,
                     cache_key):
    key = None
    if cache_key is not None and clock.frozen_at is None:
        key = (cache_key, limit, lease_seconds)
    statement = _claim_statements.get(key) if key else None
    if statement is None:
        candidates, parameters = _candidates(store, condition, tables, limit)
        sets, set_parameters = [], []
        for column, value in _claim_sets(lease_seconds).items():
            sql, params = compile_expr(store, value) if value is not None \
                else ("NULL", [])
            sets.append("%s = %s" % (column.name, sql))
            set_parameters += params
        statement = (
            "UPDATE job SET %s FROM (%s) AS claimed WHERE job.id = claimed.id"
            " RETURNING job.id, job.attempt_count, job.max_retries,"
            " job.cancel_requested, claimed.status, job.priority"
            % (", ".join(sets), candidates), set_parameters + parameters)
        if key is not None:
            _claim_statements[key] = statement
    return store.execute(*statement).get_all()


def _candidates(store, condition, tables, limit):
    """SQL selecting ``(id, priority, status)`` of the jobs to claim.

    Waiting jobs and orphans are read by two locking sub-selects, each in
    the order of its index and stopping after `limit` rows; the best
    `limit` of both are claimed. One condition with an OR between the two
    kinds makes the planner read, join and sort every waiting job at each
    claim (BENCHMARKS.md, "scale").
    """
    selects, parameters = [], []
    for kind in ready_kinds():
        sql, select_parameters = compile_expr(store, LockingSelect(
            (Job.id, Job.priority, Job.status), where=And(condition, kind),
            tables=[Job] + list(tables), order_by=(Desc(Job.priority),
                                                    Job.id),
            limit=limit, lock="FOR UPDATE OF job SKIP LOCKED"))
        selects.append(sql)
        parameters.extend(select_parameters)
    return ("SELECT ready.id, ready.status FROM (SELECT * FROM (%s) AS"
            " waiting UNION ALL SELECT * FROM (%s) AS orphaned) AS ready"
            " ORDER BY ready.priority DESC, ready.id LIMIT %d"
            % (selects[0], selects[1], limit)), parameters


def _claim_select_update(store, condition, tables, limit, lease_seconds):
    """SQLite: the transaction holds the database's write lock, so a
    SELECT then an UPDATE are as atomic as one statement."""
    rows = store.execute(Select(
        (Job.id, Job.attempt_count, Job.max_retries, Job.cancel_requested,
         Job.status, Job.priority),
        where=And(condition, Or(*ready_kinds())),
        tables=[Job] + list(tables),
        order_by=(Desc(Job.priority), Job.id), limit=limit)).get_all()
    if not rows:
        return []
    store.execute(Update(_claim_sets(lease_seconds),
                         where=Job.id.is_in([row[0] for row in rows]),
                         table=Job))
    return [(job_id, attempt + 1, max_retries, cancel, status, priority)
            for job_id, attempt, max_retries, cancel, status, priority
            in rows]


def _fenced(claims):
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


def _chunks(items):
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


def lock(store, claims):
    """Lock the rows of `claims` (``[(job_id, attempt)]``) until the
    transaction ends: on PostgreSQL ``SELECT ... FOR UPDATE`` (a reclaimer
    skips locked rows, so none can be taken over until this transaction
    records their outcomes); on SQLite the transaction's write lock does
    the same.

    :return: ``(mine, lost)``: the claims still in their attempt, each as
        ``(job_id, attempt, cancel_requested)``, and the claims whose row
        moved on since the claim, as ``(job_id, attempt)``.
    """
    if not claims:
        return [], []
    columns = (Job.id, Job.status, Job.attempt_count, Job.cancel_requested)
    where = Job.id.is_in([job_id for job_id, _ in claims])
    if dialect(store).row_locks:
        select = LockingSelect(columns, where=where, tables=Job,
                               lock="FOR UPDATE")
    else:
        select = Select(columns, where=where, tables=Job)
    rows = {row[0]: row[1:] for row in store.execute(select)}
    mine, lost = [], []
    for job_id, attempt in claims:
        status, current, cancel = rows.get(job_id, (None, None, None))
        if status == RUNNING.value and current == attempt:
            mine.append((job_id, attempt, bool(cancel)))
        else:
            lost.append((job_id, attempt))
    return mine, lost


def record(store, job_id, attempt, status, retry_delay=None, log=None,
           progress=None, uncount=False):
    """Record the outcome of attempt `attempt` of job `job_id`.

    One fenced UPDATE: `status` (a `JobStatus`), ``date_finished``, no
    lease; for a retry (`retry_delay`, seconds or timedelta) the next
    ``scheduled_start``; the log tail and progress tree when given.

    :param uncount: the attempt never ran (a claim that found its job's
        last runner lost): it is not counted.
    :return: True if recorded; False when the row moved on (another
        runner took the job over): the caller must drop its outcome.
        Leaves the transaction to the caller.
    """
    now, now_parameters = _now(store)
    sets = ["status = %d" % status.value, "date_finished = %s" % now,
            "lease_expires = NULL"]
    parameters = list(now_parameters)
    if retry_delay is not None:
        due, due_parameters = _now(store, retry_delay)
        sets.append("scheduled_start = %s" % due)
        parameters += due_parameters
    if log is not None:
        sets.append("log = ?")
        parameters.append(log)
    if progress is not None:
        sets.append("progress = ?")
        parameters.append(progress)
    if uncount:
        sets.append("attempt_count = attempt_count - 1")
    where, where_parameters = _fenced([(job_id, attempt)])
    result = store.execute("UPDATE job SET %s WHERE %s" % (
        ", ".join(sets), where), parameters + where_parameters)
    return result.rowcount == 1


def record_completed(store, outcomes):
    """Record COMPLETED for several attempts in one statement a chunk.

    :param outcomes: ``[(job_id, attempt, log_tail, progress)]``; a
        `log_tail` or `progress` of None keeps the column as it is.
    :return: how many were recorded; fewer than given means that some
        rows moved on. Leaves the transaction to the caller.
    """
    recorded = 0
    now, now_parameters = _now(store)
    for chunk in _chunks(outcomes):
        sets = ["status = %d" % JobStatus.COMPLETED.value,
                "date_finished = %s" % now, "lease_expires = NULL"]
        parameters = list(now_parameters)
        for index, column in ((2, "log"), (3, "progress")):
            given = [(row[0], row[index]) for row in chunk
                     if row[index] is not None]
            if given:
                sets.append("%s = CASE id %s ELSE %s END" % (
                    column, " ".join(["WHEN ? THEN ?"] * len(given)),
                    column))
                parameters.extend(value for pair in given for value in pair)
        where, where_parameters = _fenced(
            [(row[0], row[1]) for row in chunk])
        result = store.execute("UPDATE job SET %s WHERE %s" % (
            ", ".join(sets), where), parameters + where_parameters)
        recorded += result.rowcount
    return recorded


def release(store, claims):
    """Give back claimed jobs whose attempts never started.

    Undoes each claim: WAITING again, the attempt not counted, the lease
    and start date cleared. Fenced, so a claim another runner has taken
    over since is left alone.

    :param claims: ``[(job_id, attempt)]``.
    :return: how many were given back. Leaves the transaction to the
        caller.
    """
    released = 0
    for chunk in _chunks(claims):
        where, parameters = _fenced(chunk)
        result = store.execute(
            "UPDATE job SET status = %d, lease_expires = NULL,"
            " date_started = NULL, attempt_count = attempt_count - 1"
            " WHERE %s" % (WAITING.value, where), parameters)
        released += result.rowcount
    # Objects cached before the UPDATE are stale now.
    store.invalidate()
    return released


def renew(store, claims, lease_seconds):
    """Renew the leases of `claims` (``[(job_id, attempt)]``) for
    `lease_seconds`, and read what the runner must know of each.

    On PostgreSQL rows locked by another transaction are skipped, not
    waited for: the runner's own open transaction may hold them (a group
    commit, a job that updated its own row), and such a row cannot be
    taken over while locked anyway.

    :return: ``{job_id: (renewed, current, cancel_requested)}`` where
        `current` says whether the row is still RUNNING in the claimed
        attempt; a claim whose row is gone is missing. Leaves the
        transaction to the caller (commit it at once).
    """
    if not claims:
        return {}
    expires, expires_parameters = _now(store, lease_seconds)
    where, where_parameters = _fenced(claims)
    ids = [job_id for job_id, _ in claims]
    marks = ", ".join(["?"] * len(ids))
    renewed = set()
    if dialect(store).row_locks:
        renewed.update(row[0] for row in store.execute(
            "UPDATE job SET lease_expires = %s WHERE id IN (SELECT id FROM"
            " job WHERE %s FOR UPDATE SKIP LOCKED) RETURNING id"
            % (expires, where), expires_parameters + where_parameters))
    else:
        store.execute("UPDATE job SET lease_expires = %s WHERE %s" % (
            expires, where), expires_parameters + where_parameters)
        renewed.update(ids)
    attempts = dict(claims)
    found = {}
    for job_id, status, current, cancel in store.execute(
            "SELECT id, status, attempt_count, cancel_requested FROM job"
            " WHERE id IN (%s)" % marks, ids):
        mine = status == RUNNING.value and current == attempts[job_id]
        found[job_id] = (mine and job_id in renewed, mine, bool(cancel))
    return found


def progress_update(store, job_id, attempt, text):
    """Write `text` as the progress of attempt `attempt` of job `job_id`,
    unless the row is locked (then the caller writes it with the
    outcome).

    :return: True if written. Leaves the transaction to the caller.
    """
    where, parameters = _fenced([(job_id, attempt)])
    if dialect(store).row_locks:
        sql = ("UPDATE job SET progress = ? WHERE id IN (SELECT id FROM job"
               " WHERE %s FOR UPDATE SKIP LOCKED)" % where)
    else:
        sql = "UPDATE job SET progress = ? WHERE %s" % where
    return store.execute(sql, [text] + parameters).rowcount == 1


def _now(store, offset=0):
    """SQL and parameters for the database clock's now plus `offset`."""
    return compile_expr(store, UTCNow(offset))
