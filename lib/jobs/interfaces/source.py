"""The contract of job sources: where a runner finds and claims jobs;
and what happens when a source creates one."""

__all__ = ["IJobCreatedEvent", "IJobDispatcher", "IJobSource",
           "IJobsUnblockedEvent"]

from zope.interface import Attribute, Interface
from zope.interface.interfaces import IObjectEvent


class IJobSource(Interface):
    """The source of one job type's ready jobs, registered as a utility.

    Usually the job class itself (``@provider(IFooJobSource)`` with
    classmethods). Runners find it from a config section's
    ``source_interface`` with ``getUtility``.
    """

    memory_limit = Attribute(
        "Maximum address space in bytes for a job run in a child process "
        "(int), or None for no limit.")

    def iterReady():
        """Iterate over the jobs that are ready to run, oldest first.

        Ready means: WAITING, unleased or lease expired, `scheduled_start`
        None or past; or RUNNING with an expired lease (an orphan whose
        runner died). Read-only: takes no lease, does not commit.
        """

    def get(job_id):
        """Return the runnable job for the `IJob` id `job_id`.

        :raises NotFoundError: when there is no such job of this type.
        """

    def contextManager():
        """Return a context manager the runner enters around a whole batch."""

    def claimJob(job_id, lease_duration=None):
        """Claim the job `job_id` if it is one of this source's ready jobs.

        The same atomic, fenced claim as `claimReady`, narrowed to one
        job: what a Celery worker does with a ``jobs.run_job`` message. A
        job that is taken, finished, not due or not this source's is
        simply not returned, so a duplicate or late message does nothing.

        :return: like `claimReady`: a list of one claim, or empty.
        Leaves the transaction open: the caller commits the claim.
        """

    def claimReady(limit, lease_duration=None):
        """Claim up to `limit` ready jobs and return them.

        Each claimed job is RUNNING as a new attempt with a lease of
        `lease_duration` (seconds or timedelta; default the job class's),
        highest priority first; orphans (RUNNING, lease expired) are
        claimed too. Concurrent claimers never get the same job. Optional:
        a source with only `iterReady` is claimed job by job.

        :return: a list of `jobs.model.claims.Claimed` (job id, attempt
            number, max_retries, cancel_requested, lost).
        Leaves the transaction open: the caller commits the claim.
        """

    def databasePrivileges():
        """Return what this source's jobs need of the database, beyond
        the framework's own needs on ``job``.

        A dict ``{table name: set of privileges}`` (``"SELECT"``,
        ``"INSERT"``, ``"UPDATE"``, ``"DELETE"``): the job's context tables
        and the tables its ``run()`` reads or writes. ``jobs db roles``
        grants exactly this (and the sequences of tables it may INSERT
        into) to the section's ``dbuser``. Touches no database.

        A source used by a section with a ``dbuser`` also says which rows
        of ``job`` are its own, for row security: a class method
        ``jobKindPatterns()`` returning LIKE patterns of ``job.kind``
        (`DerivedJob` and the ``@task`` sections' classes have it).
        """


class IJobCreatedEvent(IObjectEvent):
    """Notified (``zope.event``) when a job source has created a job.

    ``object`` is the new runnable job, flushed (its id exists), in the
    creating transaction. Celery dispatch subscribes to it.
    """


class IJobsUnblockedEvent(Interface):
    """Notified (``zope.event``) when jobs waiting for their dependencies
    became ready (WAITING), in the transaction that settled them. Celery
    dispatch subscribes to it.
    """

    job_ids = Attribute("The ids of the jobs that became ready (list).")


class IJobDispatcher(Interface):
    """Sends jobs to workers elsewhere once their transaction commits.

    A utility, registered by `jobs.celery` when Celery is configured.
    """

    def runOnCommit(job):
        """Send `job` (an `IRunnableJob`) when the transaction commits.

        :raises ConfigError: when the dispatcher's configuration is bad.
        Does not commit; flushes.
        """
