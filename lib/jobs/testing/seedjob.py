"""A job family in the seed's style: Launchpad's pattern, as its guide
writes it, with nothing of `jobs.model.derived.DerivedJob`.

The family's base class extends `BaseRunnableJob` (``jobs.runner``, the
seed's import path) with the `EnumeratedSubclass` metaclass, takes the
context row in its own ``__init__``, and provides ``create``,
``iterReady`` and ``get`` itself; ``job`` comes from the context row. The
runners claim such a source's jobs one by one as ``iterReady`` yields
them and load them with ``get``: it runs in every mode.
"""

__all__ = [
    "IPingJob",
    "IPingJobSource",
    "PingJob",
    "SeedJob",
    "SeedJobDerived",
    "SeedJobType",
    "register",
]

import os

from lazr.enum import DBEnumeratedType, DBItem
from storm.locals import Int, Reference
from zope.interface import implementer, provider

from jobs.database import JSON, DBEnum, get_store
from jobs.errors import NotFoundError
from jobs.interfaces.job import IJobSource, IRunnableJob
from jobs.model.enumeratedsubclass import EnumeratedSubclass
from jobs.model.job import Job
from jobs.runner import BaseRunnableJob


class SeedJobType(DBEnumeratedType):
    """The job types of the seed family."""

    PING = DBItem(0, """
        Ping

        Records that it ran.
        """)


class SeedJob:
    """The context row: which job does what."""

    __storm_table__ = "seed_job"

    id = Int(primary=True)
    job_id = Int(name="job", allow_none=False)
    job = Reference(job_id, Job.id)
    job_type = DBEnum(enum=SeedJobType, allow_none=False)
    json_data = JSON()

    def __init__(self, job_type, json_data):
        self.job = Job()
        self.job_type = job_type
        self.json_data = json_data


class IPingJob(IRunnableJob):
    """A job that records that it ran."""


class IPingJobSource(IJobSource):
    """The source of `IPingJob` jobs."""

    def create(message):
        """Create a ping job; leaves the transaction to the caller."""


class SeedJobDerived(BaseRunnableJob, metaclass=EnumeratedSubclass):
    """The base of the seed family's job classes."""

    def __init__(self, context):
        self.context = context

    def __repr__(self):
        return "<%s %s; status=%s>" % (
            type(self).__name__, self.context.id, self.job.status.title)

    @classmethod
    def create(cls, message):
        context = SeedJob(cls.class_job_type, {"message": message})
        store = get_store()
        store.add(context)
        store.flush()
        return cls(context)

    @classmethod
    def iterReady(cls):
        rows = get_store().find(
            SeedJob, SeedJob.job_type == cls.class_job_type,
            SeedJob.job_id.is_in(Job.ready_jobs)).order_by(SeedJob.id)
        return (cls.makeSubclass(row) for row in rows)

    @classmethod
    def get(cls, job_id):
        row = get_store().find(
            SeedJob, SeedJob.job_id == job_id,
            SeedJob.job_type == cls.class_job_type).one()
        if row is None:
            raise NotFoundError("No %s job %s." % (cls.__name__, job_id))
        return cls.makeSubclass(row)

    def getOopsVars(self):
        return super().getOopsVars() + [("seed_job_id", self.context.id)]


@implementer(IPingJob)
@provider(IPingJobSource)
class PingJob(SeedJobDerived):
    """Records that it ran (a row in ``job_execution``)."""

    class_job_type = SeedJobType.PING

    def run(self):
        if self.context.json_data.get("message") == "fail":
            raise ValueError("asked to fail")
        get_store().execute(
            "INSERT INTO job_execution (job, attempt, pid) VALUES (?, ?, ?)",
            (self.job.id, self.job.attempt_count, os.getpid()))


def register(registry):
    """Register the seed family's source as a utility in `registry`."""
    registry.registerUtility(PingJob, IPingJobSource)
