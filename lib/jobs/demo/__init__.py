"""The demo job type of README's first command: a table-less job that
completes, retries or fails as its data says."""

from jobs.demo.interfaces import IDemoJobSource


def register(registry):
    """Register the demo source as a utility in `registry`."""
    from jobs.demo.model import DemoJob
    registry.registerUtility(DemoJob, IDemoJobSource)


__all__ = ["IDemoJobSource", "register"]
