"""Events the model notifies through ``zope.event``."""

__all__ = ["JobCreated"]

from zope.interface import implementer
from zope.interface.interfaces import ObjectEvent

from jobs.interfaces.job import IJobCreatedEvent


@implementer(IJobCreatedEvent)
class JobCreated(ObjectEvent):
    """See `IJobCreatedEvent`."""
