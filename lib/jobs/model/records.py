"""The fenced statements about a claimed attempt after its claim: renew
its lease (the heartbeat), write its progress, record its outcome.

Each matches the job's row only while it is RUNNING in the claimed
attempt (`jobs.model.fencing.fenced`): a runner whose job was taken over
changes nothing, and learns it from the row count.
"""

__all__ = ["Completion", "end_lost_session", "progress_update", "record",
           "record_completed", "renew"]

from jobs.database import dialect, prepared
from jobs.database.stormext import IntArray
from jobs.interfaces.job import JobStatus
from jobs.model import dependencies
from jobs.model.fencing import chunks, fenced, fenced_any
from jobs.model.fencing import now as now_sql

RUNNING = JobStatus.RUNNING
# The outcomes that settle a job's dependents (`jobs.model.dependencies`).
FINISHED = frozenset((JobStatus.COMPLETED, JobStatus.FAILED,
                      JobStatus.CANCELLED))


def _recorded(store, sql, parameters, expected):
    """Run an outcome UPDATE of `expected` rows; return ``(rows updated,
    the ids among them that have dependents)``. PostgreSQL reads the flag
    from the UPDATE itself (a dependent attached meanwhile locked the row,
    so the flag is current); SQLite, whose one writer is this transaction,
    reads it after."""
    if dialect(store).returning:
        # One row back, whatever the number of jobs: a group's 200 rows
        # read one by one were a µs a job of the client's time.
        updated, flagged = prepared.execute(
            store, "WITH updated AS (%s RETURNING job.id,"
            " job.has_dependents) SELECT count(*), array_agg(id) FILTER"
            " (WHERE has_dependents) FROM updated" % sql,
            parameters).get_one()
        return updated, flagged or []
    updated = store.execute(sql, parameters).rowcount
    ids = expected
    flagged = [row[0] for chunk in chunks(ids) for row in store.execute(
        "SELECT id FROM job WHERE has_dependents = ? AND id IN (%s)"
        % ", ".join(["?"] * len(chunk)), [True] + chunk)]
    return updated, flagged


def record(store, job_id, attempt, status, retry_delay=None, log=None,
           progress=None, uncount=False, result=None, made_ready=None):
    """Record the outcome of attempt `attempt` of job `job_id`.

    One fenced UPDATE: `status` (a `JobStatus`), ``date_finished``, no
    lease; for a retry (`retry_delay`, seconds or timedelta) the next
    ``scheduled_start``; the log tail, progress tree and result (JSON
    text) when given. A finished job's dependents are settled in the same
    transaction (`jobs.model.dependencies.settle`).

    :param uncount: the attempt never ran (a claim that found its job's
        last runner lost): it is not counted.
    :param made_ready: a list to extend with the ids of the dependents
        that became ready.
    :return: True if recorded; False when the row moved on (another
        runner took the job over): the caller must drop its outcome.
        Leaves the transaction to the caller.
    """
    now, now_parameters = now_sql(store)
    sets = ["status = %d" % status.value, "date_finished = %s" % now,
            "lease_expires = NULL"]
    parameters = list(now_parameters)
    if retry_delay is not None:
        due, due_parameters = now_sql(store, retry_delay)
        sets.append("scheduled_start = %s" % due)
        parameters += due_parameters
    if log is not None:
        sets.append("log = ?")
        parameters.append(log)
    if progress is not None:
        sets.append("progress = ?")
        parameters.append(progress)
    if result is not None:
        sets.append("result = ?")
        parameters.append(result)
    if uncount:
        sets.append("attempt_count = attempt_count - 1")
    where, where_parameters = fenced([(job_id, attempt)])
    sql = "UPDATE job SET %s WHERE %s" % (", ".join(sets), where)
    if status not in FINISHED:
        return prepared.execute(
            store, sql, parameters + where_parameters).rowcount == 1
    updated, flagged = _recorded(store, sql, parameters + where_parameters,
                                 [job_id])
    if updated == 1 and flagged:
        ready = dependencies.settle(store, [(job_id, status)])
        if made_ready is not None:
            made_ready.extend(ready)
    return updated == 1


class Completion:
    """A COMPLETED outcome that the next claim records in its own
    statement (`jobs.model.claims.claim`'s `completing`): a job committed
    on its own then costs one round trip for its outcome and the next
    claim, and none for a COMMIT when its code sent no SQL (the statement
    is a transaction of its own).

    After the claim, `recorded` says whether it was recorded. It is not
    when the claim could not carry it (SQLite, limits, a source that
    takes no `completing`), when the job has dependents (they are settled
    in the outcome's transaction: `record`), or when the row moved on:
    the runner then records it with `record`, which tells these apart.
    `committed` says whether the claim's statement committed by itself.
    """

    __slots__ = ("job_id", "attempt", "log", "progress", "result",
                 "recorded", "committed")

    def __init__(self, job_id, attempt, log=None, progress=None,
                 result=None):
        self.job_id = job_id
        self.attempt = attempt
        self.log = log
        self.progress = progress
        self.result = result
        self.recorded = False
        self.committed = False

    @staticmethod
    def update(store):
        """``(sql, parameters)`` of the UPDATE that records a completion
        (PostgreSQL, in a WITH), returning the job's id; a completion's
        `values` follow `parameters`."""
        now, parameters = now_sql(store)
        where, _ = fenced([(0, 0)])
        return ("UPDATE job SET status = %d, date_finished = %s,"
                " lease_expires = NULL, log = coalesce(?, job.log),"
                " progress = coalesce(?, job.progress), result ="
                " coalesce(?, job.result) WHERE %s AND NOT"
                " job.has_dependents RETURNING job.id"
                % (JobStatus.COMPLETED.value, now, where), parameters)

    def values(self):
        """The parameters of `update` for this completion."""
        return [self.log, self.progress, self.result, self.job_id,
                self.job_id, self.attempt]

    def carried(self, store, sql, head, parameters):
        """Send `sql`, a statement that begins with `update` (whose
        parameters are `head`, then this completion's `values`, then
        `parameters`), by itself when no transaction is open; note
        whether it recorded this completion (the first column of its
        first row: 1 or 0) and whether it committed. Return its rows."""
        result = prepared.execute(store, sql, head + self.values()
                                  + parameters, alone=True)
        rows = result.get_all()
        self.recorded = bool(rows[0][0])
        self.committed = getattr(result, "committed", False)
        return rows


def record_completed(store, outcomes, made_ready=None):
    """Record COMPLETED for several attempts in one statement a chunk.

    :param outcomes: ``[(job_id, attempt, log_tail, progress, result)]``;
        a `log_tail`, `progress` or `result` of None keeps the column as
        it is.
    :param made_ready: see `record`.
    :return: how many were recorded; fewer than given means that some
        rows moved on. Their dependents are settled. Leaves the
        transaction to the caller.
    """
    if dialect(store).arrays:
        return _record_completed_arrays(store, outcomes, made_ready)
    recorded = 0
    now, now_parameters = now_sql(store)
    for chunk in chunks(outcomes):
        sets = ["status = %d" % JobStatus.COMPLETED.value,
                "date_finished = %s" % now, "lease_expires = NULL"]
        parameters = list(now_parameters)
        for index, column in ((2, "log"), (3, "progress"), (4, "result")):
            given = [(row[0], row[index]) for row in chunk
                     if row[index] is not None]
            if given:
                sets.append("%s = CASE id %s ELSE %s END" % (
                    column, " ".join(["WHEN ? THEN ?"] * len(given)),
                    column))
                parameters.extend(value for pair in given for value in pair)
        where, where_parameters = fenced(
            [(row[0], row[1]) for row in chunk])
        updated, flagged = _recorded(
            store, "UPDATE job SET %s WHERE %s" % (", ".join(sets), where),
            parameters + where_parameters, [row[0] for row in chunk])
        recorded += _settled(store, updated, flagged, made_ready)
    return recorded


def _settled(store, updated, flagged, made_ready):
    """Settle the dependents of the COMPLETED jobs `flagged`; return
    `updated`."""
    if flagged:
        ready = dependencies.settle(
            store, [(job_id, JobStatus.COMPLETED) for job_id in flagged])
        if made_ready is not None:
            made_ready.extend(ready)
    return updated


def _record_completed_arrays(store, outcomes, made_ready):
    """`record_completed` in one statement of one form, whatever the
    number of outcomes (PostgreSQL: arrays, a prepared statement)."""
    if not outcomes:
        return 0
    now, parameters = now_sql(store)
    columns = list(zip(*outcomes))
    parameters = list(parameters) + [IntArray(columns[0]),
                                     IntArray(columns[1])] + [
        list(values) for values in columns[2:5]]
    updated, flagged = _recorded(store, (
        "UPDATE job SET status = %d, date_finished = %s, lease_expires ="
        " NULL, log = coalesce(given.log_tail, job.log), progress ="
        " coalesce(given.progress_tree, job.progress), result ="
        " coalesce(given.returned, job.result) FROM unnest(?::integer[],"
        " ?::integer[], ?::text[], ?::text[], ?::text[]) AS given(job_id,"
        " attempt, log_tail, progress_tree, returned) WHERE job.id ="
        " given.job_id AND job.attempt_count = given.attempt AND"
        " job.status = %d" % (JobStatus.COMPLETED.value, now,
                              RUNNING.value)), parameters, None)
    return _settled(store, updated, flagged, made_ready)


def renew(store, claims, lease_seconds=None):
    """Renew the leases of `claims` (``[(job_id, attempt)]``) for
    `lease_seconds` (None: renew nothing, only read), and read what the
    runner must know of each.

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
    ids = [job_id for job_id, _ in claims]
    renewed = set()
    arrays = dialect(store).arrays
    if lease_seconds is not None:
        expires, parameters = now_sql(store, lease_seconds)
        where, where_parameters = fenced_any(store, claims)
        parameters += where_parameters
        if dialect(store).row_locks:
            renewed.update(row[0] for row in prepared.execute(
                store, "UPDATE job SET lease_expires = %s WHERE id IN"
                " (SELECT id FROM job WHERE %s FOR NO KEY UPDATE SKIP"
                " LOCKED) RETURNING id" % (expires, where), parameters))
        else:
            store.execute("UPDATE job SET lease_expires = %s WHERE %s" % (
                expires, where), parameters)
            renewed.update(ids)
    attempts = dict(claims)
    found = {}
    if arrays:
        rows = prepared.execute(
            store, "SELECT id, status, attempt_count, cancel_requested"
            " FROM job WHERE id = ANY(?::integer[])", [IntArray(ids)])
    else:
        rows = store.execute(
            "SELECT id, status, attempt_count, cancel_requested FROM job"
            " WHERE id IN (%s)" % ", ".join(["?"] * len(ids)), ids)
    for job_id, status, current, cancel in rows:
        mine = status == RUNNING.value and current == attempts[job_id]
        found[job_id] = (mine and job_id in renewed, mine, bool(cancel))
    return found


def progress_update(store, job_id, attempt, text):
    """Write `text` as the progress of attempt `attempt` of job `job_id`,
    unless the row is locked (then the caller writes it with the
    outcome).

    :return: True if written. Leaves the transaction to the caller.
    """
    where, parameters = fenced([(job_id, attempt)])
    if dialect(store).row_locks:
        sql = ("UPDATE job SET progress = ? WHERE id IN (SELECT id FROM job"
               " WHERE %s FOR NO KEY UPDATE SKIP LOCKED)" % where)
    else:
        sql = "UPDATE job SET progress = ? WHERE %s" % where
    return prepared.execute(store, sql, [text] + parameters).rowcount == 1


def end_lost_session(store, claimed_by):
    """End the database session of a lost runner (``claimed_by`` of the
    claim it lost) if it still sits in a transaction: a runner that froze
    in a job holds that job's locks, which would block the runner that
    took the job over for as long as it stays frozen. A session that has
    moved on (another backend with that pid, or one not in a transaction)
    is left alone.

    :return: True if a session was ended. Leaves the transaction to the
        caller. PostgreSQL only.
    """
    try:
        _, backend, started = claimed_by.split("/")
        backend, started = int(backend), float(started)
    except (AttributeError, ValueError):
        return False
    row = store.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE"
        " pid = ? AND abs(extract(epoch FROM backend_start) - ?) < 0.000002"
        " AND state IN ('idle in transaction',"
        " 'idle in transaction (aborted)')", (backend, started)).get_one()
    return bool(row and row[0])
