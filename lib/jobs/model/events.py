"""Events the model notifies through ``zope.event``."""

__all__ = ["JobCreated", "creation_watched"]

from zope.component import getSiteManager
from zope.interface import implementer
from zope.interface.interfaces import ObjectEvent

from jobs.interfaces.job import IJobCreatedEvent


@implementer(IJobCreatedEvent)
class JobCreated(ObjectEvent):
    """See `IJobCreatedEvent`."""


def creation_watched():
    """Whether anything subscribed to `JobCreated` (Celery dispatch, when
    a section sends its jobs to Celery): bulk creation loads its new jobs
    to notify them only then."""
    return bool(getSiteManager().adapters.subscriptions(
        (IJobCreatedEvent,), None))
