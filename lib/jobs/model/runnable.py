"""`BaseRunnableJob`: the defaults every runnable job type starts from."""

__all__ = ["BaseRunnableJob", "BaseRunnableJobSource"]

import contextlib
import logging
from datetime import timedelta

from lazr.delegates import delegate_to
from storm.expr import Desc
from zope.interface import implementer

from jobs.database import UTCNow
from jobs.interfaces.job import IJob, IRunnableJob

logger = logging.getLogger(__name__)


class BaseRunnableJobSource:
    """Defaults for a class that is its own `IJobSource`.

    A source says which jobs are its own with `jobCondition` and how to
    wrap job rows with `getJobs`; `claimReady` and `iterLost` follow.
    """

    memory_limit = None

    @classmethod
    def jobCondition(cls):
        """Return ``(condition, tables)``: SQL choosing this source's jobs."""
        raise NotImplementedError

    @classmethod
    def getJobs(cls, job_ids):
        """Return the runnable jobs for `job_ids`, in that order."""
        raise NotImplementedError

    @classmethod
    def claimReady(cls, limit, lease_duration=None):
        """See `IJobSource`.

        :return: a `ClaimedJobs`: each job is loaded when iteration
            reaches it, fresh in the transaction that runs it.
        """
        return cls._claim(None, limit, lease_duration)

    @classmethod
    def claimJob(cls, job_id, lease_duration=None):
        """See `IJobSource`.

        :return: a `ClaimedJobs` of one job or none.
        """
        return cls._claim(job_id, 1, lease_duration)

    @classmethod
    def _claim(cls, job_id, limit, lease_duration):
        from storm.expr import And
        from jobs.database import get_store
        from jobs.model.job import Job
        condition, tables = cls.jobCondition()
        if job_id is not None:
            condition = And(condition, Job.id == job_id)
        claimed = Job.claim(get_store(), condition, tables, limit,
                            lease_duration or cls.lease_duration)
        return ClaimedJobs(cls, claimed)

    @classmethod
    def after_create(cls, job):
        """Called by ``create`` with each new, flushed job of this source.

        When the job section of this source says ``celery_dispatch:
        true``, the job is sent to Celery when the transaction commits.
        """
        from jobs.dispatch import dispatches_to_celery
        if dispatches_to_celery(cls):
            job.celeryRunOnCommit()

    @classmethod
    def iterReady(cls):
        """See `IJobSource`.

        The ready jobs' ids are read at once (a snapshot); each job is
        loaded (one query) when the caller reaches it, fresh in the
        transaction that runs it: every commit makes Storm revisit every
        object it still holds, so a long queue must not sit in memory.
        """
        for job_id in cls.readyJobIds():
            yield from cls.getJobs([job_id])

    @classmethod
    def readyJobIds(cls, limit=None):
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
    def iterLost(cls):
        """See `IJobSource`."""
        from jobs.database import get_store
        from jobs.model.job import Job
        condition, tables = cls.jobCondition()
        ids = get_store().using(Job, *tables).find(
            Job.id, condition, Job.lost_condition()).order_by(Job.id)
        return cls.getJobs(list(ids))

    @staticmethod
    @contextlib.contextmanager
    def contextManager():
        """See `IJobSource`."""
        yield


class ClaimedJobs:
    """The jobs one `claimReady` call claimed, loaded one by one.

    Every commit makes Storm forget what it loaded, so loading a whole
    batch up front would cost a reload per job anyway; loading each job
    (its context and job row, one query) just before it runs costs one.

    :param source: the source, for `getJobs`.
    :param claimed: ``[(job_id, attempt)]``.
    """

    def __init__(self, source, claimed):
        self.source = source
        self.claimed = list(claimed)
        self._loaded = {}

    def preload(self):
        """Load every claimed job now, in one query.

        For runs that do not commit between jobs (group commit): the
        objects then stay valid until the group's commit.
        """
        jobs = self.source.getJobs([job_id for job_id, _ in self.claimed])
        self._loaded = {job.job.id: job for job in jobs}

    def __len__(self):
        return len(self.claimed)

    def __bool__(self):
        return bool(self.claimed)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ClaimedJobs(self.source, self.claimed[index])
        return self._load(*self.claimed[index])

    def __iter__(self):
        for job_id, attempt in self.claimed:
            job = self._load(job_id, attempt)
            if job is not None:
                yield job

    def _load(self, job_id, attempt):
        job = self._loaded.pop(job_id, None)
        if job is None:
            jobs = self.source.getJobs([job_id])
            if not jobs:
                return None
            job = jobs[0]
        job.job._attempt = attempt
        return job


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
    lease_duration = timedelta(minutes=5)
    task_queue = None

    def __repr__(self):
        return "<%s job %s; status=%s>" % (
            type(self).__name__, self.job.id, self.job.status.title)

    def __eq__(self, other):
        return (type(self) is type(other)
                and self.job.id == other.job.id)

    def __hash__(self):
        return hash((type(self), self.job.id))

    def getOopsVars(self):
        """See `IRunnableJob`."""
        return [("job_id", self.job.id)]

    def getOperationDescription(self):
        """See `IRunnableJob`."""
        return "unspecified operation"

    def notifyOops(self, report):
        """See `IRunnableJob`."""
        logger.info("%r failed with OOPS %s", self, report["id"])

    def notifyUserError(self, error):
        """See `IRunnableJob`."""
        logger.info("%r failed with user error: %s", self, error)

    def celeryRunOnCommit(self):
        """See `IRunnableJob`."""
        from jobs.dispatch import run_on_commit
        run_on_commit(self)

    def acquireLease(self, duration=None):
        """See `IJob`; the default duration is `lease_duration`."""
        if duration is None:
            duration = self.lease_duration
        return self.job.acquireLease(duration)

    def queue(self, manage_transaction=False, abort_transaction=False):
        """See `IJob`; a retry is scheduled `retry_delay` from now.

        The first queueing of a new job (no attempt yet) has no delay.
        """
        scheduled_start = None
        if self.job.attempt_count > 0:
            scheduled_start = UTCNow(self.retry_delay)
        self.job.queue(manage_transaction, abort_transaction,
                       scheduled_start=scheduled_start)
