"""Events the model notifies through ``zope.event``."""

__all__ = ["JobCreated", "JobsUnblocked", "creation_watched"]

from zope.component import getSiteManager
from zope.interface import implementer
from zope.interface.interfaces import ObjectEvent

from jobs.interfaces.job import IJobCreatedEvent, IJobsUnblockedEvent


@implementer(IJobCreatedEvent)
class JobCreated(ObjectEvent):
    """See `IJobCreatedEvent`."""


@implementer(IJobsUnblockedEvent)
class JobsUnblocked:
    """See `IJobsUnblockedEvent`."""

    def __init__(self, job_ids):
        self.job_ids = list(job_ids)


def creation_watched():
    """Whether anything subscribed to `JobCreated` (Celery dispatch, when
    a section sends its jobs to Celery): bulk creation loads its new jobs
    to notify them only then."""
    return bool(getSiteManager().adapters.subscriptions(
        (IJobCreatedEvent,), None))
