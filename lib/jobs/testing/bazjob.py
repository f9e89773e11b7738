"""A second reference job family: `DoBazJob`, over its own ``baz_job``
context table.

It exists so that tests can run two sections whose jobs touch different
tables, each in a role of its own (`jobs db roles`), and show that one
section's role cannot read or write the other's tables. ``run()`` marks
its context row done (an UPDATE of its own context, which its role may
make) and runs the SQL its ``json_data`` names, if any.
"""

__all__ = [
    "BazJob",
    "BazJobType",
    "DoBazJob",
    "IDoBazJobSource",
    "register",
]

from lazr.enum import DBEnumeratedType, DBItem
from storm.locals import Int, Reference
from zope.interface import implementer, provider

from jobs.database import JSON, DBEnum, get_store
from jobs.interfaces.job import IJobSource, IRunnableJob
from jobs.model.derived import DerivedJob
from jobs.model.job import Job


class BazJobType(DBEnumeratedType):
    """The job types of the baz family."""

    DO_BAZ = DBItem(0, """
        Do baz

        Marks its context row done.
        """)


class BazJob:
    """The context row of a baz job."""

    __storm_table__ = "baz_job"

    id = Int(primary=True)
    job_id = Int(name="job", allow_none=False)
    job = Reference(job_id, Job.id)
    job_type = DBEnum(enum=BazJobType, allow_none=False)
    json_data = JSON()

    def __init__(self, job, job_type, json_data=None):
        self.job = job
        self.job_type = job_type
        self.json_data = json_data or {}


class IDoBazJobSource(IJobSource):
    """The source of `DoBazJob` jobs."""

    def create(**behaviour):
        """Create a baz job; leaves the transaction to the caller."""


@implementer(IRunnableJob)
@provider(IDoBazJobSource)
class DoBazJob(DerivedJob):
    """Marks its context row done (and runs ``json_data["sql"]``)."""

    context_class = BazJob
    class_job_type = BazJobType.DO_BAZ

    def __repr__(self):
        return "<DoBazJob %s; status=%s>" % (self.job_id,
                                             self.job.status.title)

    @classmethod
    def create(cls, **behaviour):
        """See `IDoBazJobSource`."""
        return cls._create(json_data=dict(behaviour))

    def run(self):
        """See `IRunnableJob`."""
        data = dict(self.context.json_data)
        if data.get("sql"):
            get_store().execute(data["sql"])
        data["done"] = True
        self.context.json_data = data


def register(registry):
    """Register the baz family's source as a utility in `registry`."""
    registry.registerUtility(DoBazJob, IDoBazJobSource)
