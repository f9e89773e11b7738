"""`BaseRunnableJob`: the defaults every runnable job type starts from,
and `BaseRunnableJobSource`: a source that says which jobs are its own in
SQL (`jobCondition`), so that a runner claims a batch of them with one
statement. (A source without it — the seed's `IJobSource`, with only
``iterReady`` — is claimed job by job: `jobs.claiming`.)
"""

__all__ = [
    "BaseRunnableJob",
    "BaseRunnableJobSource",
    "LOAD_ERRORS",
    "UnloadableJob",
]

import contextlib
import logging
from datetime import timedelta
from typing import Any, Iterator, Optional, Sequence, Union

from lazr.delegates import delegate_to
from storm.expr import Desc
from zope.component import queryUtility
from zope.event import notify
from zope.interface import implementer

from jobs.database import UTCNow, get_store
from jobs.errors import ConfigError, UnknownJobType
from jobs.interfaces.job import IJob, IJobDispatcher, IRunnableJob
from jobs.model.events import JobCreated
from jobs.model import claims, dependencies
from jobs.model.job import Job, first_ready, ready_condition
from jobs.model.jsondata import MAX_JSON_DATA_BYTES

logger = logging.getLogger(__name__)

# A lease's length: seconds or a timedelta; None for the default.
Lease = Union[None, float, timedelta]
# What loading a malformed row raises: Storm's JSON and DBEnum variables
# (ValueError, TypeError), `EnumeratedSubclass.makeSubclass`.
LOAD_ERRORS = (ValueError, TypeError, UnknownJobType)

# A claim's lease when neither the section nor the class says.
DEFAULT_LEASE = timedelta(seconds=60)


def _seconds(lease: Lease) -> Optional[float]:
    return lease.total_seconds() if isinstance(lease, timedelta) else lease


class BaseRunnableJobSource:
    """Defaults for a class that is its own `IJobSource`.

    A source says which jobs are its own with `jobCondition` and how to
    wrap job rows with `getJobs`; claiming and loading follow.
    """

    memory_limit: Optional[int] = None
    # The lease of a claim of this source's jobs, unless the section says.
    lease_duration: timedelta = DEFAULT_LEASE
    # What run() needs on tables beyond the job's context tables, for
    # `jobs db roles`: {table name: ("SELECT", "INSERT", "UPDATE", ...)}.
    database_privileges: dict[str, Sequence[str]] = {}

    @classmethod
    def databasePrivileges(cls) -> dict[str, set[str]]:
        """See `IJobSource`: SELECT and UPDATE on the context tables that
        `jobCondition` names, plus `database_privileges`."""
        try:
            _, tables = cls.jobCondition()
        except NotImplementedError:
            tables = []
        privileges: dict[str, set[str]] = {}
        for table in tables:
            name = getattr(table, "__storm_table__", table)
            privileges.setdefault(name, set()).update(("SELECT", "UPDATE"))
        for name, granted in cls.database_privileges.items():
            privileges.setdefault(name, set()).update(granted)
        return privileges

    @classmethod
    def jobCondition(cls) -> tuple[Any, list[Any]]:
        """Return ``(condition, tables)``: SQL choosing this source's jobs.

        :raises NotImplementedError: the source has none (it is claimed
            through ``iterReady``).
        """
        raise NotImplementedError

    @classmethod
    def _once(cls, build: Any) -> tuple[Any, list[Any]]:
        """``build()``'s ``(condition, tables)``, built once for this very
        class (a claim asks for it every time; building it cost a tenth
        of a job committed on its own): for a `jobCondition` that depends
        on the class alone."""
        made = cls.__dict__.get("_job_condition")
        if made is None:
            made = build()
            setattr(cls, "_job_condition", made)
        condition, tables = made
        return condition, list(tables)

    @classmethod
    def getJobs(cls, job_ids: Sequence[int]) -> list[Any]:
        """Return the runnable jobs for `job_ids`, in that order.

        :raises NotImplementedError: the source has none (its jobs are
            loaded one by one with ``get``).
        """
        raise NotImplementedError

    @classmethod
    def claimReady(cls, limit: int, lease_duration: Lease = None,
                   started: bool = False, limits: Any = None,
                   completing: Any = None) -> list[claims.Claimed]:
        """See `IJobSource`.

        :param limits: the section's `jobs.model.limits.Limits`, if any.
        :param completing: a `jobs.model.records.Completion` the claim
            records in its statement where it can (see
            `jobs.model.claims.claim`).
        :raises NotImplementedError: the source has no `jobCondition`
            (`jobs.claiming.claim_ready` then claims through iterReady).
        """
        condition, tables = cls.jobCondition()
        return claims.claim(get_store(), condition, tables, limit,
                            _seconds(lease_duration or cls.lease_duration),
                            cache_key=cls, started=started, limits=limits,
                            load=cls.claimLoad(), completing=completing)

    @classmethod
    def claimLoad(cls) -> Any:
        """What a claim of this source's jobs reads with them (see
        `jobs.model.claims.claim`'s `load`); None: nothing, the runner
        loads them with `getJobs`."""
        return None

    @classmethod
    def claimJob(cls, job_id: int, lease_duration: Lease = None,
                 started: bool = False,
                 limits: Any = None) -> list[claims.Claimed]:
        """See `IJobSource`.

        :param limits: as `claimReady`'s (the job is not claimed when
            they do not allow it now).
        :raises NotImplementedError: as `claimReady`.
        """
        condition, tables = cls.jobCondition()
        # The statement names the job: not one to keep compiled. Limits
        # count the source's RUNNING jobs, not just this one.
        return claims.claim(get_store(), condition, tables, 1,
                            _seconds(lease_duration or cls.lease_duration),
                            started=started, limits=limits, only=job_id)

    @classmethod
    def after_create(cls, job: Any) -> None:
        """Called by ``create`` with each new, flushed job of this source:
        tells whoever subscribed (Celery dispatch) that it exists."""
        notify(JobCreated(job))

    @classmethod
    def iterReady(cls) -> Iterator[Any]:
        """See `IJobSource`.

        The ready jobs' ids are read at once (a snapshot); each job is
        loaded (one query) when the caller reaches it: a long queue must
        not sit in memory.
        """
        for job_id in cls.readyJobIds():
            try:
                yield from cls.getJobs([job_id])
            except LOAD_ERRORS:
                # Runners claim by `jobCondition`, and fail such a job
                # with a JobLoadError OOPS (`jobs.claiming.load_jobs`).
                continue

    @classmethod
    def readyJobIds(cls, limit: Optional[int] = None) -> list[int]:
        """The ids of this source's ready jobs, highest priority first."""
        condition, tables = cls.jobCondition()
        store = get_store()
        if limit is not None:
            sql, parameters = first_ready(
                store, (Job.id, Job.priority), condition, tables, limit)
            return [row[0] for row in store.execute(sql, parameters)]
        ids = store.using(Job, *tables).find(
            Job.id, condition, ready_condition()).order_by(
                Desc(Job.priority), Job.id)
        return list(ids)

    @staticmethod
    @contextlib.contextmanager
    def contextManager() -> Iterator[None]:
        """See `IJobSource`."""
        yield


@delegate_to(IJob, context="job")
@implementer(IRunnableJob)
class BaseRunnableJob(BaseRunnableJobSource):
    """Forwards every `IJob` name to ``.job`` and supplies the defaults.

    A name defined on the class wins over the forwarded one: a class-level
    ``max_retries = 3`` is the policy (and `DerivedJob` writes it into the
    row at creation, so the two agree).
    """

    user_error_types: tuple[type[BaseException], ...] = ()
    retry_error_types: tuple[type[BaseException], ...] = ()
    retry_delay = timedelta(minutes=10)
    # The largest json_data a job of this type may be created with
    # (bytes of UTF-8 JSON; see `jobs.model.jsondata`).
    max_json_data_bytes = MAX_JSON_DATA_BYTES
    task_queue: Optional[str] = None
    # The context row the job wraps (a job type with a context table).
    context: Any
    # The `jobs.attempt.Attempt` running this job in this process, set by
    # the runner; None when the job is not running here.
    attempt: Any = None

    @property
    def job(self) -> Any:
        """See `IRunnableJob`: the row given to the wrapper (table-less
        jobs), else the context row's ``job`` (the seed's pattern: a
        wrapper around a context row)."""
        row = self.__dict__.get("_job_row")
        if row is None:
            row = self.context.job
        return row

    @job.setter
    def job(self, row: Any) -> None:
        self.__dict__["_job_row"] = row

    def __repr__(self) -> str:
        return "<%s job %s; status=%s>" % (
            type(self).__name__, self.job.id, self.job.status.title)

    def __eq__(self, other: object) -> bool:
        return (type(self) is type(other)
                and self.job.id == other.job.id)

    def __hash__(self) -> int:
        return hash((type(self), self.job.id))

    def dependency_results(self) -> dict[int, Any]:
        """``{job id: result}`` of the jobs this one depends on (what
        JobControl's ``!retval`` gives; a ``@task`` gets them as its
        arguments through `jobs.result_of`), read in one query."""
        store = get_store()
        depends_on, _ = dependencies.dependency_ids(store, self.job_id)
        return dependencies.results_of(store, depends_on)

    @property
    def job_id(self) -> int:
        """See `IJob`."""
        return self.job.id

    @property
    def cancel_requested(self) -> bool:
        """See `IJob`: while this process runs the job, what the lease
        heartbeat last read (it is refreshed every few seconds)."""
        if self.attempt is not None:
            return self.attempt.cancel_requested
        return self.job.cancel_requested

    def check_cancelled(self) -> None:
        """See `IRunnableJob`."""
        if self.attempt is not None:
            self.attempt.check_cancelled()

    def reportProgress(self, current: int, total: int,
                       status_line: Optional[str] = None,
                       group: Sequence[str] = ()) -> None:
        """See `IJob`."""
        if self.attempt is not None:
            self.attempt.report_progress(current, total, status_line, group)
        else:
            self.job.reportProgress(current, total, status_line, group)

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
        dispatcher = queryUtility(IJobDispatcher)
        if dispatcher is None:
            raise ConfigError(
                "Cannot send %r to Celery: no job dispatcher is registered"
                " (install jobs[celery] and set celery_dispatch: true in"
                " a section)." % (self,))
        dispatcher.runOnCommit(self)

    def acquireLease(self, duration: Lease = None) -> None:
        """See `IJob`; the default duration is `lease_duration`."""
        if duration is None:
            duration = self.lease_duration
        return self.job.acquireLease(duration)

    def queue(self, manage_transaction: bool = False,
              abort_transaction: bool = False,
              attempt: Optional[int] = None) -> None:
        """See `IJob`; a retry is scheduled `retry_delay` from now.

        The first queueing of a new job (no attempt yet) has no delay.
        """
        scheduled_start = None
        if self.job.attempt_count > 0:
            scheduled_start = UTCNow(self.retry_delay)
        self.job.queue(manage_transaction, abort_transaction,
                       scheduled_start=scheduled_start, attempt=attempt)


class UnloadableJob(BaseRunnableJob):
    """A ready job whose row could not be loaded; running it fails it.

    Made by `jobs.claiming.load_jobs` around the bare `Job` row:
    the runner runs it like any job, and `run()` raises the `JobLoadError`,
    so the job ends FAILED with an OOPS that says what is wrong, and the
    jobs after it still run.
    """

    def __init__(self, job: Any, error: BaseException):
        self.job = job
        self.error = error

    def __repr__(self) -> str:
        return "<UnloadableJob %s; status=%s>" % (
            self.job.id, self.job.status.title)

    def getOperationDescription(self) -> str:
        """See `IRunnableJob`."""
        return "loading the job"

    def run(self) -> None:
        """See `IRunnableJob`."""
        raise self.error
