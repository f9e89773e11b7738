"""jobs: durable, database-backed jobs in the Zope/Launchpad tradition.

The short public API, imported on first use (so that ``import jobs.errors``
stays cheap):

- `task` (`jobs.tasks.task`): a function as a job type, ``@task(...)``;
- `setup` (`jobs.registration.setup`): load the configuration, register the
  job sources, connect the ``main`` store;
- `get_store` and `connect` (`jobs.database`): the store application code
  creates jobs with, in the current ``transaction``;
- `current_attempt` (`jobs.attempt`): in a running job's code, its
  `jobs.attempt.Attempt` (``key``, ``check_cancelled()``);
- `Cron` (`jobs.schedule`): a periodic schedule's cron expression, time
  zone and catch-up policy, for ``@task(schedule=Cron(...))``;
- `result_of` (`jobs.model.resultof`): a ``@task`` argument replaced by
  another job's result when the job runs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any, Callable

# public name -> the module that defines it
_API = {
    "Cron": "jobs.schedule",
    "current_attempt": "jobs.attempt",
    "result_of": "jobs.model.resultof",
    "task": "jobs.tasks",
    "setup": "jobs.registration",
    "connect": "jobs.database",
    "get_store": "jobs.database",
}

__all__ = sorted(_API)

if TYPE_CHECKING:
    from jobs.attempt import current_attempt
    from jobs.schedule import Cron
    from jobs.registration import setup
    from jobs.database import connect, get_store
    from jobs.model.resultof import result_of
    from jobs.tasks import task


def _lazy_exports(package: str, api: dict[str, str]
                  ) -> Callable[[str], Any]:
    """A module ``__getattr__`` importing each name of `api` (``{name:
    defining module}``) on first use."""
    def __getattr__(name: str) -> Any:
        if name in api:
            return getattr(import_module(api[name]), name)
        raise AttributeError(
            "module %r has no attribute %r" % (package, name))
    return __getattr__


__getattr__ = _lazy_exports(__name__, _API)
