"""`Job`: the Storm class for the shared ``job`` table, and its lifecycle.

Every change of status is one conditional UPDATE: it names the status
(and, from RUNNING, the attempt) it moves from, so that two runners can
never both record an outcome for one attempt, and a runner whose lease
expired and whose job was reclaimed cannot overwrite the newer attempt.
"""

__all__ = ["Job"]

from datetime import timedelta

import transaction
from storm.databases.postgres import Returning
from storm.expr import SQL, And, Desc, Or, Select, State, Update
from storm.info import get_obj_info
from storm.store import AutoReload
from storm.locals import Bool, Int, Unicode
from zope.interface import implementer

from jobs.database import (
    JSON,
    DBEnum,
    UTCDateTime,
    UTCNow,
    clock,
    dialect,
)
from jobs.errors import InvalidTransition, LeaseHeld, StaleJob
from jobs.interfaces.job import IJob, JobStatus, PENDING_STATUSES
from jobs.model.jsondata import MAX_JSON_DATA_BYTES, check_json_data
from jobs.model.locking import LockingSelect

WAITING = JobStatus.WAITING
RUNNING = JobStatus.RUNNING
COMPLETED = JobStatus.COMPLETED
FAILED = JobStatus.FAILED
SUSPENDED = JobStatus.SUSPENDED
CANCELLED = JobStatus.CANCELLED

# from status -> the statuses it may move to (DESIGN.md, "lifecycle").
VALID_TRANSITIONS = {
    WAITING: {RUNNING, SUSPENDED, CANCELLED},
    RUNNING: {WAITING, COMPLETED, FAILED, SUSPENDED, CANCELLED},
    COMPLETED: {WAITING},
    FAILED: {WAITING},
    SUSPENDED: {WAITING, CANCELLED},
    CANCELLED: set(),
}


@implementer(IJob)
class Job:
    """See `IJob`."""

    __storm_table__ = "job"

    id = Int(primary=True)
    status = DBEnum(enum=JobStatus, allow_none=False, default=WAITING)
    attempt_count = Int(allow_none=False, default=0)
    max_retries = Int(allow_none=False, default=0)
    scheduled_start = UTCDateTime()
    lease_expires = UTCDateTime()
    date_created = UTCDateTime(allow_none=False, default_factory=UTCNow)
    date_started = UTCDateTime()
    date_finished = UTCDateTime()
    log = Unicode()
    priority = Int(allow_none=False, default=0)
    cancel_requested = Bool(allow_none=False, default=False)
    progress = Unicode()
    base_job_type = Int()
    base_json_data = JSON()
    kind = Unicode()
    unique_key = Unicode()

    # The attempt this process started (rows loaded by find() skip
    # __init__); outcome updates are fenced on it.
    _attempt = None
    # The log tail of the running attempt, written with its outcome.
    _log_tail = None
    # The progress tree of the running attempt (jobs.progress).
    _progress = None
    _progress_unwritten = False
    # True while this process's transaction holds the row's lock (a group
    # commit): progress then goes with the outcome, since a write from
    # another connection would wait for this very transaction.
    _row_locked = False

    def __init__(self, max_retries=0, scheduled_start=None,
                 base_job_type=None, base_json_data=None,
                 max_json_data_bytes=MAX_JSON_DATA_BYTES, kind=None,
                 priority=0):
        """Make a WAITING job row.

        :param kind: the job's type (see `jobs.model.enqueue`); default
            ``job:<base_job_type>`` for a job without a context table.
        :raises InvalidJobData: see `check_json_data` (`JobDataTooLarge`
            beyond `max_json_data_bytes`).
        """
        if base_json_data is not None:
            check_json_data(base_json_data, max_json_data_bytes)
        self.max_retries = max_retries
        self.scheduled_start = scheduled_start
        self.base_job_type = base_job_type
        self.base_json_data = base_json_data
        if kind is None and base_job_type is not None:
            kind = "job:%d" % base_job_type
        self.kind = kind
        self.priority = priority

    def __repr__(self):
        return "<Job %s; status=%s>" % (self.id, self.status.title)

    @property
    def job_id(self):
        """See `IJob`."""
        return self.id

    @property
    def is_pending(self):
        """See `IJob`."""
        return self.status in PENDING_STATUSES

    @property
    def is_runnable(self):
        """See `IJob`."""
        if self.status != WAITING:
            return False
        return self._store().find(
            Job, Job.id == self.id,
            Or(Job.scheduled_start == None,
               Job.scheduled_start <= UTCNow())).any() is not None

    def _store(self):
        from storm.store import Store
        return Store.of(self)

    @classmethod
    def createMultiple(cls, store, count, max_retries=0):
        """Create `count` WAITING jobs at once; return their ids (list).

        Leaves the transaction to the caller.
        """
        jobs = [cls(max_retries=max_retries) for _ in range(count)]
        for job in jobs:
            store.add(job)
        store.flush()
        return [job.id for job in jobs]

    @classmethod
    def claim(cls, store, condition, tables, limit, lease_duration,
              cache_key=None):
        """Claim up to `limit` ready jobs matching `condition`, atomically.

        One statement moves them to RUNNING as a new attempt with a lease
        of `lease_duration` (seconds or timedelta): on PostgreSQL an
        ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
        RETURNING``, so concurrent claimers get disjoint jobs without
        waiting (each of the two kinds of ready job, waiting and orphaned,
        read in index order: the cost does not grow with the queue); on
        SQLite a SELECT and an UPDATE inside the transaction's write lock.
        Highest `priority` first, then oldest (lowest id).
        Orphans (RUNNING, lease expired) are claimed too, as a new attempt,
        unless they have no attempts left (see `lost_condition`).

        :param condition: a Storm expression choosing the source's jobs.
        :param tables: the tables `condition` needs besides ``job``.
        :param cache_key: a hashable value standing for `condition` (the
            source): the statement is then compiled once per key, limit
            and lease (compiling it costs more than running it).
        :return: ``[(job_id, attempt)]`` in claiming order. The caller
            commits to publish the claim.
        """
        if isinstance(lease_duration, timedelta):
            lease_duration = lease_duration.total_seconds()
        order = (Desc(Job.priority), Job.id)
        sets = {Job.status: RUNNING.value,
                Job.attempt_count: Job.attempt_count + 1,
                Job.lease_expires: UTCNow(lease_duration),
                Job.date_started: UTCNow(),
                Job.date_finished: None}
        if dialect(store) == "postgresql":
            key = None
            if cache_key is not None and clock.frozen_at is None:
                key = (cache_key, limit, lease_duration)
            statement = _claim_statements.get(key) if key else None
            if statement is None:
                candidates = _claim_candidates(
                    store, condition, tables, order, limit)
                statement = compiled(store, Returning(
                    Update(sets, where=candidates, table=Job),
                    columns=(Job.id, Job.attempt_count, Job.priority)))
                if key is not None:
                    _claim_statements[key] = statement
            rows = store.execute(*statement).get_all()
        else:
            where = And(condition, ready_condition(), Or(
                Job.status == WAITING, Job.attempt_count <= Job.max_retries))
            ids = [row[0] for row in store.execute(Select(
                Job.id, where=where, tables=[Job] + list(tables),
                order_by=order, limit=limit))]
            if not ids:
                return []
            store.execute(Update(sets, where=Job.id.is_in(ids), table=Job))
            rows = store.execute(Select(
                (Job.id, Job.attempt_count, Job.priority),
                where=Job.id.is_in(ids), tables=Job)).get_all()
        # Objects cached before the UPDATE are stale now.
        store.invalidate()
        rows = sorted(rows, key=lambda row: (-row[2], row[0]))
        return [(job_id, attempt) for job_id, attempt, _ in rows]

    @classmethod
    def lock_claimed(cls, store, job_ids):
        """Lock the rows of `job_ids` until the transaction ends and read
        what a runner must check before running them.

        PostgreSQL: ``SELECT ... FOR UPDATE``, so that no one else changes
        them (a reclaimer skips locked rows) until this transaction
        commits their outcomes; SQLite: the transaction's write lock does
        the same.

        :return: ``{job_id: (status value, attempt_count, cancel_requested)}``.
        """
        if not job_ids:
            return {}
        columns = (Job.id, Job.status, Job.attempt_count,
                   Job.cancel_requested)
        where = Job.id.is_in(job_ids)
        if dialect(store) == "postgresql":
            select = LockingSelect(columns, where=where, tables=Job,
                                   lock="FOR UPDATE")
        else:
            select = Select(columns, where=where, tables=Job)
        return {row[0]: (row[1], row[2], bool(row[3]))
                for row in store.execute(select)}

    @classmethod
    def complete_claimed(cls, store, outcomes):
        """Record COMPLETED for several claimed attempts in one statement.

        The runner's fast path for jobs whose row it never loaded: the same
        change as `complete` (status, ``date_finished``, the log tail),
        fenced the same way on RUNNING and the attempt.

        :param outcomes: ``[(job_id, attempt, log_tail)]``; a `log_tail`
            of None keeps the column as it is.
        :return: how many jobs were recorded; fewer than given means that
            some rows moved on (see `StaleJob`). Leaves the transaction to
            the caller.
        """
        recorded = 0
        now, now_parameters = compiled(store, UTCNow())
        for start in range(0, len(outcomes), 500):
            chunk = outcomes[start:start + 500]
            logs = [(job_id, log_tail) for job_id, _, log_tail in chunk
                    if log_tail is not None]
            sets, params = ["status = %d" % COMPLETED.value,
                            "date_finished = %s" % now], list(now_parameters)
            if logs:
                sets.append("log = CASE id %s ELSE log END" % " ".join(
                    ["WHEN ? THEN ?"] * len(logs)))
                params.extend(value for pair in logs for value in pair)
            where, where_params = _fenced_claims(
                [(job_id, attempt) for job_id, attempt, _ in chunk])
            result = store.execute(
                "UPDATE job SET %s WHERE %s" % (", ".join(sets), where),
                params + where_params)
            recorded += result.rowcount
        return recorded

    @classmethod
    def lost_condition(cls):
        """SQL for orphans with no attempts left: RUNNING, lease expired,
        ``attempt_count > max_retries``. They are failed, not claimed."""
        return And(Job.status == RUNNING, Job.lease_expires < UTCNow(),
                   Job.attempt_count > Job.max_retries)

    @classmethod
    def release_claimed(cls, store, claims):
        """Give back claimed jobs this runner never started running.

        Undoes each claim: WAITING again, the attempt not counted, the
        lease and start date cleared. Fenced like an outcome (RUNNING, the
        claimed attempt), so a claim another runner has taken over since
        — its lease expired — is left alone.

        :param claims: ``[(job_id, attempt)]``.
        :return: how many were given back. Leaves the transaction to the
            caller.
        """
        released = 0
        for start in range(0, len(claims), 500):
            where, params = _fenced_claims(claims[start:start + 500])
            result = store.execute(
                "UPDATE job SET status = %d, lease_expires = NULL,"
                " date_started = NULL, attempt_count = attempt_count - 1"
                " WHERE %s" % (WAITING.value, where), params)
            released += result.rowcount
        # Objects cached before the UPDATE are stale now.
        store.invalidate()
        return released

    def acquireLease(self, duration=300):
        """See `IJob`."""
        if isinstance(duration, timedelta):
            duration = duration.total_seconds()
        store = self._store()
        where = And(Job.id == self.id, ready_condition())
        if dialect(store) == "postgresql":
            # Skip a row another runner is claiming instead of queueing
            # behind its lock: the loser learns at once that it lost.
            where = Job.id == LockingSelect(
                Job.id, where=where, lock="FOR UPDATE SKIP LOCKED")
        result = store.execute(Update(
            {Job.lease_expires: UTCNow(duration)}, where=where, table=Job))
        if result.rowcount != 1:
            raise LeaseHeld()
        store.invalidate(self)
        # A new lease comes before a new attempt: whatever attempt this
        # object last started is over.
        self._attempt = None

    def getTimeout(self):
        """See `IJob`."""
        if self.lease_expires is None:
            return 0.0
        row = self._store().execute(Select(
            UTCNow(), where=Job.id == self.id, tables=Job)).get_one()
        now = UTCDateTime.variable_class(value=row[0], from_db=True).get()
        return max(0.0, (self.lease_expires - now).total_seconds())

    def _transition(self, to, changes, expected_attempt=None):
        """Record the move to `to` with one conditional UPDATE.

        :param changes: {column: value or SQL expression} besides status.
        :param expected_attempt: from RUNNING, the attempt this runner
            started; the UPDATE matches nothing if the row moved on.
        :raises InvalidTransition: when the table forbids the move.
        :raises StaleJob: when the row is not as this runner last saw it.
        """
        store = self._store()
        if self._log_tail is not None or self._progress_unwritten:
            changes = dict(changes)
            if self._log_tail is not None:
                changes[Job.log] = self._log_tail
                self._log_tail = None
            if self._progress_unwritten:
                changes[Job.progress] = self._progress.to_json()
                self._progress_unwritten = False
        if expected_attempt is not None:
            # This runner started the attempt, so the row is RUNNING
            # unless another runner took over: try the fenced UPDATE
            # first, and read the row only to explain a refusal.
            sets = {Job.status: to.value}
            sets.update(changes)
            result = store.execute(Update(sets, where=And(
                Job.id == self.id, Job.status == RUNNING,
                Job.attempt_count == expected_attempt), table=Job))
            if result.rowcount == 1:
                self._reload_columns(sets)
                self._attempt = None
                return
            store.invalidate(self)
        current = self.status
        if expected_attempt is not None and (
                current is not RUNNING
                or self.attempt_count != expected_attempt):
            raise StaleJob(
                "Job %d changed under this runner (attempt %d is now %s,"
                " attempt %d); this attempt's outcome was not recorded."
                % (self.id, expected_attempt, current.title,
                   self.attempt_count))
        # queue() on a WAITING job only clears its lease and dates.
        if to not in VALID_TRANSITIONS[current] and not (
                to is current is WAITING):
            raise InvalidTransition(current, to)
        where = [Job.id == self.id, Job.status == current]
        if expected_attempt is not None:
            where.append(Job.attempt_count == expected_attempt)
        sets = {Job.status: to.value}
        for column, value in changes.items():
            sets[column] = value
        result = store.execute(Update(sets, where=And(*where), table=Job))
        store.invalidate(self)
        if result.rowcount != 1:
            raise StaleJob(
                "Job %d changed under this runner (expected %s, attempt %s);"
                " this attempt's outcome was not recorded." % (
                    self.id, current.title, expected_attempt))
        # The attempt has its outcome: later moves are not fenced on it.
        self._attempt = None

    def _reload_columns(self, columns):
        """Make `columns` (changed by an UPDATE) read the database again.

        Cheaper than ``store.invalidate(self)``, which resets every column
        of the row; the others did not change.
        """
        variables = get_obj_info(self).variables
        for column in columns:
            variables[column].set(AutoReload)

    def start(self, manage_transaction=False):
        """See `IJob`."""
        current = self.status
        if current is RUNNING:
            # Reclaiming an orphan: only with an expired lease, which
            # acquireLease has just replaced with this runner's own.
            pass
        elif RUNNING not in VALID_TRANSITIONS[current]:
            raise InvalidTransition(current, RUNNING)
        attempt = self.attempt_count + 1
        store = self._store()
        where = And(Job.id == self.id, Job.status == current,
                    Job.attempt_count == attempt - 1)
        result = store.execute(Update(
            {Job.status: RUNNING.value,
             Job.attempt_count: attempt,
             Job.date_started: UTCNow(),
             Job.date_finished: None},
            where=where, table=Job))
        store.invalidate(self)
        if result.rowcount != 1:
            raise StaleJob(
                "Job %d changed under this runner before it started."
                % self.id)
        self._attempt = attempt
        if manage_transaction:
            transaction.commit()

    def complete(self, manage_transaction=False):
        """See `IJob`."""
        self._transition(
            COMPLETED, {Job.date_finished: UTCNow()}, self._attempt)
        if manage_transaction:
            # One commit: the job's own work and its COMPLETED status
            # become visible together, or not at all.
            transaction.commit()

    def fail(self, manage_transaction=False):
        """See `IJob`."""
        if manage_transaction:
            # Abort before touching the row: a failed SQL statement
            # poisons the transaction, and the job's work must go anyway.
            transaction.abort()
        self._transition(FAILED, {Job.date_finished: UTCNow()}, self._attempt)
        if manage_transaction:
            transaction.commit()

    def queue(self, manage_transaction=False, abort_transaction=False,
              scheduled_start=None):
        """See `IJob`.

        :param scheduled_start: a datetime or a `UTCNow` expression to
            set as the next start (a retry's delay); None keeps it.
        """
        if manage_transaction and abort_transaction:
            transaction.abort()
        changes = {Job.date_finished: UTCNow(), Job.lease_expires: None}
        if scheduled_start is not None:
            changes[Job.scheduled_start] = scheduled_start
        self._transition(WAITING, changes, self._attempt)
        if manage_transaction:
            transaction.commit()

    def suspend(self, manage_transaction=False):
        """See `IJob`."""
        self._transition(SUSPENDED, {}, self._attempt)
        if manage_transaction:
            transaction.commit()

    def reportProgress(self, current, total, status_line=None, group=()):
        """See `IJob`."""
        from jobs.progress import ProgressTree, write_progress
        if self._progress is None:
            self._progress = ProgressTree()
        self._progress.set(current, total, status_line, tuple(group))
        self._progress_unwritten = not write_progress(
            self, self._progress.to_json())

    def cancel(self):
        """See `IJob`."""
        if self.status is RUNNING:
            self._store().find(Job, Job.id == self.id).set(
                cancel_requested=True)
            return
        if CANCELLED not in VALID_TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, CANCELLED)
        self._transition(CANCELLED, {Job.date_finished: UTCNow(),
                                     Job.lease_expires: None})

    def record_cancelled(self):
        """Record that this runner stopped its RUNNING job on request.

        Fenced on the attempt; leaves the transaction to the caller.
        """
        self._transition(CANCELLED, {Job.date_finished: UTCNow(),
                                     Job.lease_expires: None}, self._attempt)

    def resume(self):
        """See `IJob`."""
        if self.status is not SUSPENDED:
            raise InvalidTransition(self.status, WAITING)
        self._transition(WAITING, {Job.lease_expires: None})


def _fenced_claims(claims):
    """SQL and parameters matching the rows of `claims` (``[(job_id,
    attempt)]``) still in the claimed attempt: RUNNING, same
    ``attempt_count``. For statements that begin with UPDATE (SQLite
    reports no row count for ``WITH … UPDATE``); the id list lets
    PostgreSQL find the rows by the primary key."""
    sql = ("status = %d AND id IN (%s) AND (id, attempt_count) IN (VALUES %s)"
           % (RUNNING.value, ", ".join(["?"] * len(claims)),
              ", ".join(["(?, ?)"] * len(claims))))
    params = [job_id for job_id, _ in claims]
    params.extend(value for claim in claims for value in claim)
    return sql, params


def _claim_candidates(store, condition, tables, order, limit):
    """SQL for ``job.id IN (the ids to claim)``, PostgreSQL.

    Waiting jobs and orphans (RUNNING, lease expired, attempts left) are
    read by two locking sub-selects, each in the order of its index and
    stopping after `limit` rows; the best `limit` of both are claimed.
    One condition with an OR between the two kinds made the planner read,
    join and sort every waiting job at each claim (8 ms with 10,000
    waiting; 0.2 ms this way).
    """
    now = UTCNow()
    kinds = (
        And(condition, Job.status == WAITING,
            Or(Job.lease_expires == None, Job.lease_expires < now),
            Or(Job.scheduled_start == None, Job.scheduled_start <= now)),
        And(condition, Job.status == RUNNING, Job.lease_expires < now,
            Job.attempt_count <= Job.max_retries),
    )
    selects, parameters = [], []
    for where in kinds:
        sql, select_parameters = compiled(store, LockingSelect(
            (Job.id, Job.priority), where=where, tables=[Job] + list(tables),
            order_by=order, limit=limit, lock="FOR UPDATE OF job SKIP LOCKED"))
        selects.append(sql)
        parameters.extend(select_parameters)
    return SQL(
        "job.id IN (SELECT ready.id FROM (SELECT * FROM (%s) AS waiting"
        " UNION ALL SELECT * FROM (%s) AS orphaned) AS ready"
        " ORDER BY ready.priority DESC, ready.id LIMIT %d)"
        % (selects[0], selects[1], limit), parameters)


# (cache_key, limit, lease) -> the claim statement's SQL and parameters.
_claim_statements = {}


def compiled(store, expr):
    """Compile `expr` for `store`'s database: ``(sql, parameters)``, to
    run with ``store.execute(sql, parameters)``. Only for expressions
    whose values do not change between runs (no frozen `UTCNow`)."""
    state = State()
    return store._connection.compile(expr, state), list(state.parameters)


def ready_condition():
    """The SQL condition for a job a runner may take now (see `IJob`)."""
    now = UTCNow()
    # The leading status test, implied by the branches, lets the planner
    # use the (status, id) index however many finished jobs there are.
    return And(Job.status.is_in([WAITING, RUNNING]), Or(
        And(Job.status == WAITING,
            Or(Job.lease_expires == None, Job.lease_expires < now),
            Or(Job.scheduled_start == None, Job.scheduled_start <= now)),
        And(Job.status == RUNNING, Job.lease_expires < now)))


# A reusable sub-select of the ids of ready jobs; every iterReady builds
# on it. UTCNow is compiled when the query runs, not now.
Job.ready_jobs = Select(Job.id, where=ready_condition())
