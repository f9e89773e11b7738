"""`BaseRunnableJob`: the defaults every runnable job type starts from,
and `BaseRunnableJobSource`: how a source's jobs are claimed and loaded.

A source that says which jobs are its own in SQL (`jobCondition`) is
claimed with one statement per batch. A source that only iterates its
ready jobs — the seed's `IJobSource`, with ``iterReady`` and ``get`` — is
claimed job by job, with the same fenced statement narrowed to each id
(`claim_ready`); its jobs are loaded with ``get`` (`load_jobs`). Either
runs in every runner mode.
"""

__all__ = [
    "BaseRunnableJob",
    "BaseRunnableJobSource",
    "UnloadableJob",
    "claim_one",
    "claim_ready",
    "context_of",
    "load_jobs",
    "loads_by_id",
]

import contextlib
import logging
from datetime import timedelta

from lazr.delegates import delegate_to
from storm.expr import Desc
from zope.component import queryUtility
from zope.event import notify
from zope.interface import implementer

from jobs.database import UTCNow, get_store
from jobs.errors import ConfigError, JobLoadError, NotFoundError, UnknownJobType
from jobs.interfaces.job import IJob, IJobDispatcher, IRunnableJob
from jobs.model.events import JobCreated
from jobs.model import claims
from jobs.model.job import Job, ready_condition
from jobs.model.jsondata import MAX_JSON_DATA_BYTES

logger = logging.getLogger(__name__)

# What loading a malformed row raises: Storm's JSON and DBEnum variables
# (ValueError, TypeError), `EnumeratedSubclass.makeSubclass`.
LOAD_ERRORS = (ValueError, TypeError, UnknownJobType)

# A claim's lease when neither the section nor the class says.
DEFAULT_LEASE = timedelta(seconds=60)


def _seconds(lease):
    return lease.total_seconds() if isinstance(lease, timedelta) else lease


class BaseRunnableJobSource:
    """Defaults for a class that is its own `IJobSource`.

    A source says which jobs are its own with `jobCondition` and how to
    wrap job rows with `getJobs`; claiming and loading follow.
    """

    memory_limit = None
    # What run() needs on tables beyond the job's context tables, for
    # `jobs db roles`: {table name: ("SELECT", "INSERT", "UPDATE", ...)}.
    database_privileges = {}

    @classmethod
    def databasePrivileges(cls):
        """See `IJobSource`: SELECT and UPDATE on the context tables that
        `jobCondition` names, plus `database_privileges`."""
        try:
            _, tables = cls.jobCondition()
        except NotImplementedError:
            tables = []
        privileges = {}
        for table in tables:
            name = getattr(table, "__storm_table__", table)
            privileges.setdefault(name, set()).update(("SELECT", "UPDATE"))
        for name, granted in cls.database_privileges.items():
            privileges.setdefault(name, set()).update(granted)
        return privileges

    @classmethod
    def jobCondition(cls):
        """Return ``(condition, tables)``: SQL choosing this source's jobs.

        :raises NotImplementedError: the source has none (it is claimed
            through ``iterReady``).
        """
        raise NotImplementedError

    @classmethod
    def getJobs(cls, job_ids):
        """Return the runnable jobs for `job_ids`, in that order.

        :raises NotImplementedError: the source has none (its jobs are
            loaded one by one with ``get``).
        """
        raise NotImplementedError

    @classmethod
    def loadJobs(cls, job_ids):
        """`getJobs`, except that a row that cannot be loaded — its
        ``json_data`` is not JSON, its job type has no class — comes back
        as an `UnloadableJob`, which fails with an OOPS when run, instead
        of stopping the runner (and every job after it) with a traceback.
        """
        try:
            return cls.getJobs(job_ids)
        except NotImplementedError:
            return _get_each(cls, job_ids)
        except LOAD_ERRORS as e:
            if len(job_ids) > 1:
                return [job for job_id in job_ids
                        for job in cls.loadJobs([job_id])]
            return _unloadable(cls, job_ids[0], e)

    @classmethod
    def claimReady(cls, limit, lease_duration=None):
        """See `IJobSource`."""
        lease = _seconds(lease_duration or cls.lease_duration)
        try:
            condition, tables = cls.jobCondition()
        except NotImplementedError:
            return claim_each(cls.iterReady(), limit, lease)
        return claims.claim(get_store(), condition, tables, limit, lease,
                            cache_key=cls)

    @classmethod
    def claimJob(cls, job_id, lease_duration=None):
        """See `IJobSource`."""
        lease = _seconds(lease_duration or cls.lease_duration)
        try:
            condition, tables = cls.jobCondition()
        except NotImplementedError:
            return claim_each((job for job in cls.iterReady()
                               if job.job_id == job_id), 1, lease)
        # The statement names the job: not one to keep compiled.
        return claims.claim(get_store(), (Job.id == job_id) & condition,
                            tables, 1, lease)

    @classmethod
    def after_create(cls, job):
        """Called by ``create`` with each new, flushed job of this source:
        tells whoever subscribed (Celery dispatch) that it exists."""
        notify(JobCreated(job))

    @classmethod
    def iterReady(cls):
        """See `IJobSource`.

        The ready jobs' ids are read at once (a snapshot); each job is
        loaded (one query) when the caller reaches it: a long queue must
        not sit in memory.
        """
        for job_id in cls.readyJobIds():
            yield from cls.loadJobs([job_id])

    @classmethod
    def readyJobIds(cls, limit=None):
        """The ids of this source's ready jobs, highest priority first."""
        condition, tables = cls.jobCondition()
        ids = get_store().using(Job, *tables).find(
            Job.id, condition, ready_condition()).order_by(
                Desc(Job.priority), Job.id)
        return list(ids if limit is None else ids[:limit])

    @staticmethod
    @contextlib.contextmanager
    def contextManager():
        """See `IJobSource`."""
        yield


def claim_each(jobs, limit, lease_seconds):
    """Claim up to `limit` of `jobs` (runnable jobs, e.g. a source's
    ``iterReady()``), each with the fenced claim narrowed to its id.

    A job another runner took meanwhile is skipped. Each `Claimed` carries
    the job it claimed (``job``), already loaded.
    """
    store = get_store()
    taken = []
    if limit < 1:
        return taken
    for job in jobs:
        claimed = claims.claim(store, Job.id == job.job_id, (), 1,
                               lease_seconds)
        if claimed:
            taken.append(claimed[0]._replace(job=job))
            if len(taken) >= limit:
                break  # before taking another job from `jobs`
        else:
            logger.debug("Could not claim job %d: another runner took it.",
                         job.job_id)
    return taken


def claim_ready(source, limit, lease_seconds):
    """Claim up to `limit` of `source`'s ready jobs: its ``claimReady``,
    or for a source with only ``iterReady`` (the seed's `IJobSource`),
    `claim_each`. Leaves the transaction to the caller (commit it)."""
    claim = getattr(source, "claimReady", None)
    if claim is not None:
        return claim(limit, lease_seconds)
    return claim_each(source.iterReady(), limit, lease_seconds)


def claim_one(source, job_id, lease_seconds):
    """Claim job `job_id` if it is one of `source`'s ready jobs: its
    ``claimJob``, else `claim_each` over ``iterReady``."""
    claim = getattr(source, "claimJob", None)
    if claim is not None:
        return claim(job_id, lease_seconds)
    return claim_each((job for job in source.iterReady()
                       if job.job_id == job_id), 1, lease_seconds)


def context_of(source):
    """`source`'s ``contextManager()``, entered around a whole run (a
    source without one gets a context that does nothing)."""
    make = getattr(source, "contextManager", None)
    return make() if make is not None else contextlib.nullcontext()


def loads_by_id(source):
    """Whether `source` can load a job by its id (``getJobs``/``get``):
    what a child process or a Celery worker needs, given only an id."""
    return any(callable(getattr(source, name, None))
               for name in ("loadJobs", "getJobs", "get"))


def load_jobs(source, job_ids):
    """The runnable jobs of `job_ids` (claimed by this process), in that
    order: `BaseRunnableJobSource.loadJobs`, else ``get`` per id."""
    load = getattr(source, "loadJobs", None)
    if load is not None:
        return load(list(job_ids))
    return _get_each(source, job_ids)


def _get_each(source, job_ids):
    jobs = []
    for job_id in job_ids:
        try:
            jobs.append(source.get(job_id))
        except NotFoundError:
            continue
        except LOAD_ERRORS as e:
            jobs.extend(_unloadable(source, job_id, e))
    return jobs


def _unloadable(source, job_id, error):
    row = get_store().get(Job, job_id)
    if row is None:
        return []
    return [UnloadableJob(row, JobLoadError(
        "Cannot load job %d for %s: %s: %s" % (
            job_id, getattr(source, "__name__", type(source).__name__),
            type(error).__name__, error)))]


@delegate_to(IJob, context="job")
@implementer(IRunnableJob)
class BaseRunnableJob(BaseRunnableJobSource):
    """Forwards every `IJob` name to ``.job`` and supplies the defaults.

    A name defined on the class wins over the forwarded one: a class-level
    ``max_retries = 3`` is the policy (and `DerivedJob` writes it into the
    row at creation, so the two agree).
    """

    user_error_types = ()
    retry_error_types = ()
    retry_delay = timedelta(minutes=10)
    lease_duration = DEFAULT_LEASE
    # The largest json_data a job of this type may be created with
    # (bytes of UTF-8 JSON; see `jobs.model.jsondata`).
    max_json_data_bytes = MAX_JSON_DATA_BYTES
    task_queue = None
    # The `jobs.attempt.Attempt` running this job in this process, set by
    # the runner; None when the job is not running here.
    attempt = None

    @property
    def job(self):
        """See `IRunnableJob`: the row given to the wrapper (table-less
        jobs), else the context row's ``job`` (the seed's pattern: a
        wrapper around a context row)."""
        row = self.__dict__.get("_job_row")
        if row is None:
            row = self.context.job
        return row

    @job.setter
    def job(self, row):
        self.__dict__["_job_row"] = row

    def __repr__(self):
        return "<%s job %s; status=%s>" % (
            type(self).__name__, self.job.id, self.job.status.title)

    def __eq__(self, other):
        return (type(self) is type(other)
                and self.job.id == other.job.id)

    def __hash__(self):
        return hash((type(self), self.job.id))

    @property
    def job_id(self):
        """See `IJob`."""
        return self.job.id

    @property
    def cancel_requested(self):
        """See `IJob`: while this process runs the job, what the lease
        heartbeat last read (it is refreshed every few seconds)."""
        if self.attempt is not None:
            return self.attempt.cancel_requested
        return self.job.cancel_requested

    def check_cancelled(self):
        """See `IRunnableJob`."""
        if self.attempt is not None:
            self.attempt.check_cancelled()

    def reportProgress(self, current, total, status_line=None, group=()):
        """See `IJob`."""
        if self.attempt is not None:
            self.attempt.report_progress(current, total, status_line, group)
        else:
            self.job.reportProgress(current, total, status_line, group)

    def getOopsVars(self):
        """See `IRunnableJob`."""
        return [("job_id", self.job_id)]

    def getOperationDescription(self):
        """See `IRunnableJob`."""
        return "unspecified operation"

    def notifyOops(self, report):
        """See `IRunnableJob`."""
        logger.info("%r failed with OOPS %s", self,
                    report["id"] or "(not written: see the log)")

    def notifyUserError(self, error):
        """See `IRunnableJob`."""
        logger.info("%r failed with user error: %s", self, error)

    def celeryRunOnCommit(self):
        """See `IRunnableJob`."""
        dispatcher = queryUtility(IJobDispatcher)
        if dispatcher is None:
            raise ConfigError(
                "Cannot send %r to Celery: no job dispatcher is registered"
                " (install jobs[celery] and set celery_dispatch: true in"
                " a section)." % (self,))
        dispatcher.runOnCommit(self)

    def acquireLease(self, duration=None):
        """See `IJob`; the default duration is `lease_duration`."""
        if duration is None:
            duration = self.lease_duration
        return self.job.acquireLease(duration)

    def queue(self, manage_transaction=False, abort_transaction=False,
              attempt=None):
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

    Made by `BaseRunnableJobSource.loadJobs` around the bare `Job` row:
    the runner runs it like any job, and `run()` raises the `JobLoadError`,
    so the job ends FAILED with an OOPS that says what is wrong, and the
    jobs after it still run.
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
