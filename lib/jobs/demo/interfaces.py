"""The demo job's source interface."""

__all__ = ["IDemoJobSource"]

from jobs.interfaces.job import IJobSource


class IDemoJobSource(IJobSource):
    """The source of demo jobs (section ``[demo]``)."""

    def create(action, message):
        """Create a demo job that will `action` ("complete", "retry" or
        "fail"); leaves the transaction to the caller."""
