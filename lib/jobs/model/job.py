"""`Job`: the Storm class for the shared ``job`` table, its lifecycle, and
the one definition of a *ready* job.

Every change of status is one conditional UPDATE that names the status it
moves from, so that two writers can never both make one move. Runners do
not use these methods: they claim and record outcomes through
`jobs.model.claims`, fenced on the attempt. The methods here are the
lifecycle API of `IJob` (Launchpad's, kept for its callers) and what the
``jobs`` command uses (retry, cancel, suspend, resume).
"""

__all__ = ["Job", "VALID_TRANSITIONS", "ready_condition", "ready_kinds",
           "waiting_parts"]

from datetime import timedelta

import transaction
from storm.expr import SQL, And, Desc, Or, Select, Update
from storm.locals import Bool, Int, Unicode
from storm.store import Store
from zope.interface import implementer

from jobs.database import JSON, DBEnum, UTCDateTime, UTCNow, dialect
from jobs.database.stormext import compile_expr
from jobs.errors import InvalidTransition, LeaseHeld, StaleJob
from jobs.interfaces.job import IJob, JobStatus, PENDING_STATUSES
from jobs.model import dependencies
from jobs.model.jsondata import MAX_JSON_DATA_BYTES, check_json_data
from jobs.model.locking import LockingSelect
from jobs.progress import ProgressTree

WAITING = JobStatus.WAITING
RUNNING = JobStatus.RUNNING
COMPLETED = JobStatus.COMPLETED
FAILED = JobStatus.FAILED
SUSPENDED = JobStatus.SUSPENDED
CANCELLED = JobStatus.CANCELLED
BLOCKED = JobStatus.BLOCKED

# from status -> the statuses it may move to (DESIGN.md, "lifecycle").
# BLOCKED -> WAITING, and CANCELLED -> BLOCKED or WAITING when the failed
# dependency that cancelled a job is retried, are the dependencies' own
# moves (`jobs.model.dependencies`).
VALID_TRANSITIONS = {
    WAITING: {RUNNING, SUSPENDED, CANCELLED},
    RUNNING: {WAITING, COMPLETED, FAILED, SUSPENDED, CANCELLED},
    COMPLETED: {WAITING},
    FAILED: {WAITING},
    SUSPENDED: {WAITING, CANCELLED},
    CANCELLED: set(),
    BLOCKED: {CANCELLED},
}
# The statuses a job ends in: its dependents are settled when it gets one.
FINISHED = frozenset((COMPLETED, FAILED, CANCELLED))


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
    claimed_by = Unicode()
    result = JSON()
    waiting_on = Int(allow_none=False, default=0)
    has_dependents = Bool(allow_none=False, default=False)
    run_if_dependency_fails = Bool(allow_none=False, default=False)
    cancelled_by = Int()
    concurrency_key = Unicode()

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
        return Store.of(self).find(
            Job, Job.id == self.id,
            Or(Job.scheduled_start == None,  # noqa: E711
               Job.scheduled_start <= UTCNow())).any() is not None

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

    def acquireLease(self, duration=60):
        """See `IJob`."""
        if isinstance(duration, timedelta):
            duration = duration.total_seconds()
        store = Store.of(self)
        where = And(Job.id == self.id, ready_condition())
        if dialect(store).row_locks:
            # Skip a row another runner is claiming instead of queueing
            # behind its lock: the loser learns at once that it lost.
            where = Job.id == LockingSelect(
                Job.id, where=where, lock="FOR NO KEY UPDATE SKIP LOCKED")
        result = store.execute(Update(
            {Job.lease_expires: UTCNow(duration)}, where=where, table=Job))
        if result.rowcount != 1:
            raise LeaseHeld()
        store.invalidate(self)

    def getTimeout(self):
        """See `IJob`."""
        if self.lease_expires is None:
            return 0.0
        row = Store.of(self).execute(Select(
            UTCNow(), where=Job.id == self.id, tables=Job)).get_one()
        now = UTCDateTime.variable_class(value=row[0], from_db=True).get()
        return max(0.0, (self.lease_expires - now).total_seconds())

    def _transition(self, to, changes, attempt=None):
        """Record the move to `to` with one conditional UPDATE.

        :param changes: {column: value or SQL expression} besides status.
        :param attempt: from RUNNING, the attempt the caller started; the
            UPDATE then matches only that attempt.
        :raises InvalidTransition: when the table forbids the move.
        :raises StaleJob: when the row is not as this caller last saw it.
        """
        store = Store.of(self)
        current = self.status
        if attempt is not None and (current is not RUNNING
                                    or self.attempt_count != attempt):
            raise StaleJob(
                "Job %d changed under this runner (attempt %d is now %s,"
                " attempt %d); this attempt's outcome was not recorded."
                % (self.id, attempt, current.title, self.attempt_count))
        # queue() on a WAITING job only clears its lease and dates.
        if to not in VALID_TRANSITIONS[current] and not (
                to is current is WAITING):
            raise InvalidTransition(current, to)
        where = [Job.id == self.id, Job.status == current]
        if attempt is not None:
            where.append(Job.attempt_count == attempt)
        sets = {Job.status: to.value}
        sets.update(changes)
        result = store.execute(Update(sets, where=And(*where), table=Job))
        store.invalidate(self)
        if result.rowcount != 1:
            raise StaleJob(
                "Job %d changed under this runner (expected %s, attempt %s);"
                " this attempt's outcome was not recorded." % (
                    self.id, current.title, attempt))
        if to in FINISHED or current in (FAILED, CANCELLED):
            # Read after the UPDATE, which locked the row: current.
            if self.has_dependents:
                if to in FINISHED:
                    dependencies.settle(store, [(self.id, to)])
                else:
                    dependencies.reenable(store, [self.id])

    def start(self, manage_transaction=False):
        """See `IJob`."""
        current = self.status
        if current is not RUNNING and \
                RUNNING not in VALID_TRANSITIONS[current]:
            raise InvalidTransition(current, RUNNING)
        # From RUNNING: reclaiming an orphan, whose expired lease
        # acquireLease has just replaced with the caller's own.
        attempt = self.attempt_count + 1
        store = Store.of(self)
        result = store.execute(Update(
            {Job.status: RUNNING.value,
             Job.attempt_count: attempt,
             Job.date_started: UTCNow(),
             Job.date_finished: None},
            where=And(Job.id == self.id, Job.status == current,
                      Job.attempt_count == attempt - 1), table=Job))
        store.invalidate(self)
        if result.rowcount != 1:
            raise StaleJob(
                "Job %d changed under this runner before it started."
                % self.id)
        if manage_transaction:
            transaction.commit()
        return attempt

    def complete(self, manage_transaction=False, attempt=None):
        """See `IJob`."""
        self._transition(COMPLETED, {Job.date_finished: UTCNow()}, attempt)
        if manage_transaction:
            # One commit: the job's own work and its COMPLETED status
            # become visible together, or not at all.
            transaction.commit()

    def fail(self, manage_transaction=False, attempt=None):
        """See `IJob`."""
        if manage_transaction:
            # Abort before touching the row: a failed SQL statement
            # poisons the transaction, and the job's work must go anyway.
            transaction.abort()
        self._transition(FAILED, {Job.date_finished: UTCNow()}, attempt)
        if manage_transaction:
            transaction.commit()

    def queue(self, manage_transaction=False, abort_transaction=False,
              scheduled_start=None, attempt=None):
        """See `IJob`.

        :param scheduled_start: a datetime or a `UTCNow` expression to
            set as the next start (a retry's delay); None keeps it.
        """
        if manage_transaction and abort_transaction:
            transaction.abort()
        changes = {Job.date_finished: UTCNow(), Job.lease_expires: None}
        if scheduled_start is not None:
            changes[Job.scheduled_start] = scheduled_start
        self._transition(WAITING, changes, attempt)
        if manage_transaction:
            transaction.commit()

    def suspend(self, manage_transaction=False, attempt=None):
        """See `IJob`."""
        self._transition(SUSPENDED, {}, attempt)
        if manage_transaction:
            transaction.commit()

    def reportProgress(self, current, total, status_line=None, group=()):
        """See `IJob`: outside a runner's attempt, the tree is written in
        the caller's transaction."""
        tree = ProgressTree()
        tree.root = _progress_root(self.progress)
        tree.set(current, total, status_line, tuple(group))
        self.progress = tree.to_json()

    def cancel(self):
        """See `IJob`."""
        if self.status is RUNNING:
            Store.of(self).find(Job, Job.id == self.id).set(
                cancel_requested=True)
            return
        if CANCELLED not in VALID_TRANSITIONS[self.status]:
            raise InvalidTransition(self.status, CANCELLED)
        self._transition(CANCELLED, {Job.date_finished: UTCNow(),
                                     Job.lease_expires: None})

    def resume(self):
        """See `IJob`."""
        if self.status is not SUSPENDED:
            raise InvalidTransition(self.status, WAITING)
        self._transition(WAITING, {Job.lease_expires: None})


def _progress_root(text):
    import json
    if not text:
        return {}
    try:
        tree = json.loads(text)
    except ValueError:
        return {}
    return tree if isinstance(tree, dict) else {}


def ready_kinds():
    """The two kinds of ready job, each a condition an index serves:

    - waiting: WAITING, no live lease, due (``scheduled_start`` null or
      past);
    - orphaned: RUNNING with an expired lease: its runner died (or froze)
      and stopped renewing it.

    Times are the database's (`UTCNow`). This is the one definition of
    "ready"; everything that needs it builds on this function.
    """
    now = UTCNow()
    waiting = And(_status_is(WAITING),
                  Or(Job.lease_expires == None,  # noqa: E711
                     Job.lease_expires < now),
                  Or(Job.scheduled_start == None,  # noqa: E711
                     Job.scheduled_start <= now))
    orphaned = And(_status_is(RUNNING), Job.lease_expires < now)
    return waiting, orphaned


def _status_is(status):
    """``job.status = <status>``, a constant in the SQL: the ready kinds'
    partial indexes (``WHERE status = 0 ...``) match no parameter, so the
    generic plan of the prepared claim read the whole queue (7 ms at 10k
    jobs) and PostgreSQL planned it at every run instead (0.6 ms)."""
    return Job.status == SQL(str(status.value))


def waiting_parts():
    """The waiting kind of `ready_kinds`, in the two parts an index each
    serves (the claim reads them apart, `jobs.model.claims`):

    - undelayed: WAITING, no live lease, no ``scheduled_start``;
    - due: WAITING, no live lease, ``scheduled_start`` past.

    Spelt without an OR, so that the planner estimates the due part from
    ``scheduled_start``'s statistics (a million jobs scheduled for
    tomorrow: none due).
    """
    now = UTCNow()
    free = Or(Job.lease_expires == None,  # noqa: E711
              Job.lease_expires < now)
    return (And(_status_is(WAITING), free,
                Job.scheduled_start == None),  # noqa: E711
            And(_status_is(WAITING), free, Job.scheduled_start <= now))


def first_ready(store, columns, condition, tables, limit, lock=None):
    """``(SQL, parameters)``: `columns` of the first `limit` ready jobs
    matching `condition` (over the job table and `tables`), highest
    priority first, then oldest. `columns` name ``job.id`` and
    ``job.priority`` (the result's columns are their names). `lock`: a
    row-locking clause for each part (the claim's ``FOR NO KEY UPDATE OF
    job SKIP LOCKED``).

    Each kind of ready job (`waiting_parts`, then the orphaned kind of
    `ready_kinds`) is read apart in its index's order and limited, then
    the parts are merged: one condition over them all made PostgreSQL
    join every ready job with its context row to sort them (0.8-1.4 s at
    a million ready jobs), or walk past the jobs scheduled for later.
    """
    parts, parameters = [], []
    for kind in waiting_parts() + ready_kinds()[1:]:
        select = dict(where=And(condition, kind), tables=[Job] + list(tables),
                      order_by=(Desc(Job.priority), Job.id), limit=limit)
        sql, part_parameters = compile_expr(store, LockingSelect(
            columns, lock=lock, **select) if lock else Select(
                columns, **select))
        parts.append("SELECT * FROM (%s) AS kind%d" % (sql, len(parts)))
        parameters += part_parameters
    return ("SELECT * FROM (%s) AS ready ORDER BY ready.priority DESC,"
            " ready.id LIMIT %d" % (" UNION ALL ".join(parts), limit),
            parameters)


def ready_condition():
    """The SQL condition for a job a runner may take now (`ready_kinds`)."""
    # The leading status test, implied by the branches, lets the planner
    # use the (status, id) index however many finished jobs there are.
    return And(Job.status.is_in([WAITING, RUNNING]), Or(*ready_kinds()))


# A reusable sub-select of the ids of ready jobs; iterReady methods build
# on it (Launchpad's name). UTCNow is compiled when the query runs.
Job.ready_jobs = Select(Job.id, where=ready_condition())
