"""`BaseRunnableJob`: the defaults every runnable job type starts from."""

from __future__ import annotations

__all__ = ["BaseRunnableJob", "BaseRunnableJobSource", "UnloadableJob"]

import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence, Union

from lazr.delegates import delegate_to
from storm.expr import Desc
from zope.interface import implementer

from jobs.database import UTCNow
from jobs.errors import JobLoadError, UnknownJobType
from jobs.interfaces.job import IJob, IRunnableJob
from jobs.model.jsondata import MAX_JSON_DATA_BYTES

logger = logging.getLogger(__name__)

# A lease's length: seconds or a timedelta; None for the default.
Lease = Union[None, float, timedelta]
# What loading a malformed row raises: Storm's JSON and DBEnum variables
# (ValueError, TypeError), `EnumeratedSubclass.makeSubclass`.
LOAD_ERRORS = (ValueError, TypeError, UnknownJobType)


class BaseRunnableJobSource:
    """Defaults for a class that is its own `IJobSource`.

    A source says which jobs are its own with `jobCondition` and how to
    wrap job rows with `getJobs`; `claimReady` and `iterLost` follow.
    """

    memory_limit: Optional[int] = None
    # What run() needs on tables beyond the job's context tables, for
    # `jobs db roles`: {table name: ("SELECT", "INSERT", "UPDATE", ...)}.
    database_privileges: dict[str, Sequence[str]] = {}

    @classmethod
    def databasePrivileges(cls) -> dict[str, set[str]]:
        """See `IJobSource`: SELECT and UPDATE on the context tables that
        `jobCondition` names, plus `database_privileges`."""
        _, tables = cls.jobCondition()
        privileges: dict[str, set[str]] = {}
        for table in tables:
            name = getattr(table, "__storm_table__", table)
            privileges.setdefault(name, set()).update(("SELECT", "UPDATE"))
        for name, granted in cls.database_privileges.items():
            privileges.setdefault(name, set()).update(granted)
        return privileges

    @classmethod
    def jobCondition(cls) -> tuple[Any, list[Any]]:
        """Return ``(condition, tables)``: SQL choosing this source's jobs."""
        raise NotImplementedError

    @classmethod
    def getJobs(cls, job_ids: Sequence[int]) -> list[Any]:
        """Return the runnable jobs for `job_ids`, in that order."""
        raise NotImplementedError

    @classmethod
    def getClaimedJobs(cls, job_ids: Sequence[int]) -> list[Any]:
        """Return the runnable jobs for `job_ids`, which this process
        claimed, in that order.

        By default `getJobs`; a source may load less (`DerivedJob` loads
        the context rows and leaves each job row until something asks).
        """
        return cls.getJobs(job_ids)

    @classmethod
    def loadJobs(cls, job_ids: Sequence[int], claimed: bool = False) -> list:
        """`getJobs` (`getClaimedJobs` when `claimed`), except that a row
        that cannot be loaded — its ``json_data`` is not JSON, its job type
        has no class — comes back as an `UnloadableJob`, which fails with
        an OOPS when run, instead of stopping the runner (and every job
        after it) with a traceback.
        """
        try:
            if claimed:
                return cls.getClaimedJobs(job_ids)
            return cls.getJobs(job_ids)
        except LOAD_ERRORS as e:
            if len(job_ids) > 1:
                return [job for job_id in job_ids
                        for job in cls.loadJobs([job_id], claimed)]
            from jobs.database import get_store
            from jobs.model.job import Job
            [job_id] = job_ids
            row = get_store().get(Job, job_id)
            if row is None:
                return []
            return [UnloadableJob(row, JobLoadError(
                "Cannot load job %d for %s: %s: %s" % (
                    job_id, cls.__name__, type(e).__name__, e)))]

    @classmethod
    def claimReady(cls, limit: int,
                   lease_duration: Lease = None) -> ClaimedJobs:
        """See `IJobSource`.

        :return: a `ClaimedJobs`: each job is loaded when iteration
            reaches it, fresh in the transaction that runs it.
        """
        return cls._claim_matching(None, limit, lease_duration)

    @classmethod
    def claimJob(cls, job_id: int,
                 lease_duration: Lease = None) -> ClaimedJobs:
        """See `IJobSource`.

        :return: a `ClaimedJobs` of one job or none.
        """
        return cls._claim_matching(job_id, 1, lease_duration)

    @classmethod
    def _claim_matching(cls, job_id, limit, lease_duration):
        from storm.expr import And
        from jobs.database import get_store
        from jobs.model.job import Job
        condition, tables = cls.jobCondition()
        if job_id is not None:
            condition = And(condition, Job.id == job_id)
        # The statement of a one-job claim names the job: not reusable.
        claimed = Job.claim(get_store(), condition, tables, limit,
                            lease_duration or cls.lease_duration,
                            cache_key=cls if job_id is None else None)
        return ClaimedJobs(cls, claimed)

    @classmethod
    def after_create(cls, job: Any) -> None:
        """Called by ``create`` with each new, flushed job of this source.

        When the job section of this source says ``celery_dispatch:
        true``, the job is sent to Celery when the transaction commits.
        """
        from jobs.dispatch import dispatches_to_celery
        if dispatches_to_celery(cls):
            job.celeryRunOnCommit()

    @classmethod
    def iterReady(cls) -> Iterator[Any]:
        """See `IJobSource`.

        The ready jobs' ids are read at once (a snapshot); each job is
        loaded (one query) when the caller reaches it, fresh in the
        transaction that runs it: every commit makes Storm revisit every
        object it still holds, so a long queue must not sit in memory.
        """
        for job_id in cls.readyJobIds():
            yield from cls.loadJobs([job_id])

    @classmethod
    def readyJobIds(cls, limit: Optional[int] = None) -> list[int]:
        """The ids of this source's ready jobs, highest priority first.

        The ready condition is inlined rather than ``id IN (ready_jobs)``:
        the semi-join walked the primary key past every finished job.
        """
        from jobs.database import get_store
        from jobs.model.job import Job, ready_condition
        condition, tables = cls.jobCondition()
        ids = get_store().using(Job, *tables).find(
            Job.id, condition, ready_condition()).order_by(
                Desc(Job.priority), Job.id)
        return list(ids if limit is None else ids[:limit])

    @classmethod
    def iterLost(cls) -> list[Any]:
        """See `IJobSource`."""
        from jobs.database import get_store
        from jobs.model.job import Job
        condition, tables = cls.jobCondition()
        ids = get_store().using(Job, *tables).find(
            Job.id, condition, Job.lost_condition()).order_by(Job.id)
        return cls.getJobs(list(ids))

    @staticmethod
    @contextlib.contextmanager
    def contextManager() -> Iterator[None]:
        """See `IJobSource`."""
        yield


class Claim:
    """What this process knows of a job it claimed.

    :ivar job_id: the job's id.
    :ivar attempt: the attempt the claim started; outcomes are fenced on it.
    :ivar cancel_requested: whether a cancel had been requested when the
        job was loaded (None: not read; ask the job row).
    :ivar row_locked: True when this process's transaction holds the job
        row's lock (a group): nothing else may write the row meanwhile.
    :ivar recorded: True once the attempt's outcome was recorded.
    """

    __slots__ = ("job_id", "attempt", "cancel_requested", "row_locked",
                 "recorded")

    def __init__(self, job_id, attempt, cancel_requested=None,
                 row_locked=False):
        self.job_id = job_id
        self.attempt = attempt
        self.cancel_requested = cancel_requested
        self.row_locked = row_locked
        self.recorded = False

    def bind(self, job_row):
        """Give a loaded job row (`Job`) what the claim knows."""
        if not self.recorded and job_row._attempt is None:
            job_row._attempt = self.attempt
        job_row._row_locked = self.row_locked


def mark_claimed(job, claim):
    """Tell `job` (a runnable job) that this process claimed it.

    A job whose row is not loaded yet (see `DerivedJob`) takes the attempt
    when the row is loaded, if ever; the runner's fast path records the
    outcome without loading it.
    """
    job._claim = claim
    if getattr(job, "job_row_loaded", True):
        claim.bind(job.job)


class ClaimedJobs:
    """The jobs one `claimReady` call claimed, loaded one by one.

    Every commit makes Storm forget what it loaded, so loading a whole
    batch up front would cost a reload per job anyway; loading each job
    (its context, one query) just before it runs costs one.

    :param source: the source, for `getClaimedJobs`.
    :param claimed: ``[(job_id, attempt)]``.
    """

    def __init__(self, source, claimed):
        self.source = source
        self.claimed = list(claimed)
        self._loaded = {}
        self._cancel = {}
        self._locked = False

    def lock(self):
        """Lock the claimed rows and load every claimed job, in two queries.

        For runs that record a group of outcomes in one transaction (group
        commit): the rows stay locked, so the group's outcomes cannot be
        refused, and the loaded objects stay valid, until the commit.

        :return: ``[(job_id, attempt)]`` of the claims that are no longer
            this process's (the row moved on since the claim); they are
            dropped from the batch.
        """
        from jobs.database import get_store
        from jobs.model.job import Job, RUNNING
        rows = Job.lock_claimed(
            get_store(), [job_id for job_id, _ in self.claimed])
        mine, lost = [], []
        for job_id, attempt in self.claimed:
            status, current, cancel = rows.get(job_id, (None, None, None))
            if status == RUNNING.value and current == attempt:
                mine.append((job_id, attempt))
                self._cancel[job_id] = cancel
            else:
                lost.append((job_id, attempt))
        self.claimed = mine
        self._locked = True
        jobs = self.source.loadJobs([job_id for job_id, _ in mine],
                                    claimed=True)
        self._loaded = {job.job_id: job for job in jobs}
        return lost

    def __len__(self):
        return len(self.claimed)

    def __bool__(self):
        return bool(self.claimed)

    def __getitem__(self, index):
        if isinstance(index, slice):
            part = ClaimedJobs(self.source, self.claimed[index])
            part._locked = self._locked
            return part
        return self._load(*self.claimed[index])

    def __iter__(self):
        for job_id, attempt in self.claimed:
            job = self._load(job_id, attempt)
            if job is not None:
                yield job

    def _load(self, job_id, attempt):
        job = self._loaded.pop(job_id, None)
        if job is None:
            jobs = self.source.loadJobs([job_id], claimed=True)
            if not jobs:
                return None
            job = jobs[0]
        cancel = self._cancel.pop(job_id, None)
        if cancel is None:
            cancel = getattr(job, "_cancel_requested", None)
        mark_claimed(job, Claim(job_id, attempt, cancel, self._locked))
        return job


@delegate_to(IJob, context="job")
@implementer(IRunnableJob)
class BaseRunnableJob(BaseRunnableJobSource):
    """Forwards every `IJob` name to ``.job`` and supplies the defaults.

    A name defined on the class wins over the forwarded one: a class-level
    ``max_retries = 3`` is the policy (and `DerivedJob` writes it into the
    row at creation, so the two agree).
    """

    if TYPE_CHECKING:  # `job`: set by each job type; IJob names: from it
        job: Any

        @property
        def job_id(self) -> int: ...

    user_error_types: tuple[type[BaseException], ...] = ()
    retry_error_types: tuple[type[BaseException], ...] = ()
    retry_delay = timedelta(minutes=10)
    lease_duration = timedelta(minutes=5)
    # The largest json_data a job of this type may be created with
    # (bytes of UTF-8 JSON; see `jobs.model.jsondata`).
    max_json_data_bytes = MAX_JSON_DATA_BYTES
    task_queue: Optional[str] = None

    def __repr__(self) -> str:
        return "<%s job %s; status=%s>" % (
            type(self).__name__, self.job.id, self.job.status.title)

    def __eq__(self, other: object) -> bool:
        return (type(self) is type(other)
                and self.job.id == other.job.id)

    def __hash__(self) -> int:
        return hash((type(self), self.job.id))

    def getOopsVars(self) -> list[tuple[str, Any]]:
        """See `IRunnableJob`."""
        return [("job_id", self.job_id)]

    def getOperationDescription(self) -> str:
        """See `IRunnableJob`."""
        return "unspecified operation"

    def notifyOops(self, report: dict[str, Any]) -> None:
        """See `IRunnableJob`."""
        logger.info("%r failed with OOPS %s", self,
                    report["id"] or "(not written: see the log)")

    def notifyUserError(self, error: BaseException) -> None:
        """See `IRunnableJob`."""
        logger.info("%r failed with user error: %s", self, error)

    def celeryRunOnCommit(self) -> None:
        """See `IRunnableJob`."""
        from jobs.dispatch import run_on_commit
        run_on_commit(self)

    def acquireLease(self, duration: Lease = None) -> None:
        """See `IJob`; the default duration is `lease_duration`."""
        if duration is None:
            duration = self.lease_duration
        return self.job.acquireLease(duration)

    def queue(self, manage_transaction: bool = False,
              abort_transaction: bool = False) -> None:
        """See `IJob`; a retry is scheduled `retry_delay` from now.

        The first queueing of a new job (no attempt yet) has no delay.
        """
        scheduled_start = None
        if self.job.attempt_count > 0:
            scheduled_start = UTCNow(self.retry_delay)
        self.job.queue(manage_transaction, abort_transaction,
                       scheduled_start=scheduled_start)


class UnloadableJob(BaseRunnableJob):
    """A ready job whose row could not be loaded; running it fails it.

    Made by `BaseRunnableJobSource.loadJobs` around the bare `Job` row:
    the runner takes its lease and runs it like any job, and `run()`
    raises the `JobLoadError`, so the job ends FAILED with an OOPS that
    says what is wrong, and the jobs after it still run.
    """

    def __init__(self, job, error):
        self.job = job
        self.error = error

    def __repr__(self):
        return "<UnloadableJob %s; status=%s>" % (
            self.job.id, self.job.status.title)

    def getOperationDescription(self):
        """See `IRunnableJob`."""
        return "loading the job"

    def run(self):
        """See `IRunnableJob`."""
        raise self.error
