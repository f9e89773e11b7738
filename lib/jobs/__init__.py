"""jobs: durable, database-backed jobs in the Zope/Launchpad tradition.

The short public API, imported on first use (so that ``import jobs.errors``
stays cheap):

- `setup` (`jobs.config.setup`): load the configuration, register the
  job sources, connect the ``main`` store;
- `get_store` and `connect` (`jobs.database`): the store application code
  creates jobs with, in the current ``transaction``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_API = {
    "setup": "jobs.config",
    "connect": "jobs.database",
    "get_store": "jobs.database",
}

__all__ = sorted(_API)

if TYPE_CHECKING:
    from jobs.config import setup
    from jobs.database import connect, get_store


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError("module 'jobs' has no attribute %r" % name)
