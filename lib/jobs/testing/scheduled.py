"""``@task`` functions with periodic schedules, for the tests of
`jobs.scheduler`: the section ``do_scheduled`` that `section` writes runs
the ones a test names. No other section of the tests' configuration names
this module, so its schedules enqueue nothing in the other tests, and a
test enqueues only the schedules of the tasks it names.
"""

from __future__ import annotations

__all__ = ["every_second", "note", "section", "tidy"]

import os

from jobs import Cron, current_attempt, task
from jobs.database import get_store



def section(*names: str) -> str:
    """Configuration text: the section ``do_scheduled`` running the tasks
    of this module called `names`."""
    return "\n[do_scheduled]\ndbuser: dofoo\ntasks: %s\n\n" % " ".join(
        "%s.%s" % (__name__, name) for name in names)


def _record() -> None:
    """A ``job_execution`` row for the running attempt (it commits with
    the job's work)."""
    attempt = current_attempt()
    assert attempt is not None
    get_store().execute(
        "INSERT INTO job_execution (job, attempt, pid) VALUES (?, ?, ?)",
        (attempt.job_id, attempt.number, os.getpid()))


@task(section="do_scheduled", schedule=Cron("*/5 * * * *", grace=120),
      database_privileges={"job_execution": ("INSERT",)})
def tidy() -> str:
    """Every 5 minutes: record the attempt."""
    _record()
    return "tidied"


@task(section="do_scheduled", schedule="* * * * * *",
      database_privileges={"job_execution": ("INSERT",)})
def every_second() -> None:
    """Every second (six fields: seconds first): record the attempt."""
    _record()


@task(section="do_scheduled",
      database_privileges={"job_execution": ("INSERT",)})
def note(label: str, times: int = 1) -> str:
    """No schedule of its own: the configuration's schedules call it."""
    _record()
    return label * times
