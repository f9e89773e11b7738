"""Reference ``@task`` functions (`jobs.tasks`) for tests: a section with
``tasks: jobs.testing.tasks.*`` runs them.

`behave` does what its keyword arguments ask (the way `DoFooJob` does what
its ``json_data`` asks, with the same errors), so that tests can make a
function job succeed, record, fail, retry or suspend. `not_a_task` is a plain function of this
module: a job naming it must fail, never run.
"""

from __future__ import annotations

__all__ = [
    "RetryError",
    "SECTION",
    "UserError",
    "add",
    "behave",
    "charge",
    "charge_in_chunks",
    "make_foo",
    "not_a_task",
]

import os
import time
from typing import Any, Optional

from jobs import current_attempt, task
from jobs.database import get_store
from jobs.testing.foojob import Foo, RetryError, UserError, raise_as_asked

# The section of the tests' configuration that runs these tasks.
SECTION = """
[do_tasks]
dbuser: dofoo
tasks: jobs.testing.tasks.*
"""


@task(section="do_tasks", max_retries=1, retry_delay=60,
      retry_error_types=(RetryError,), user_error_types=(UserError,),
      database_privileges={"job_execution": ("INSERT",)})
def behave(record: Optional[int] = None, raise_: Optional[str] = None,
           sleep: float = 0, return_: Any = None) -> Any:
    """Do what the arguments ask: ``record`` a row in ``job_execution``
    (``job`` = the number given; it commits with the job's work),
    ``sleep`` (seconds), ``raise_`` ("retry", "user", "suspend",
    "error"), then return ``return_``."""
    if record is not None:
        get_store().execute(
            "INSERT INTO job_execution (job, attempt, pid) VALUES (?, ?, ?)",
            (record, 0, os.getpid()))
    if sleep:
        time.sleep(sleep)
    raise_as_asked(raise_)
    return return_


@task(section="do_tasks", priority=1)
def add(a: int, b: int) -> int:
    """Return ``a + b``."""
    return a + b


@task(section="do_tasks", database_privileges={"foo": ("INSERT",)})
def make_foo(name: str) -> int:
    """Add a `Foo` row with ``store.add()``; return its id."""
    foo = Foo(name)
    get_store().add(foo)
    get_store().flush()
    return foo.id


@task(section="do_tasks",
      database_privileges={"job_execution": ("INSERT",)})
def charge_in_chunks(order_id: int, chunks: int, pause: float = 0) -> int:
    """Charge an order chunk by chunk: a long job that stops when it is
    cancelled, shows its progress, and charges with an idempotency key
    that a repeated attempt shares."""
    attempt = current_attempt()
    for chunk in range(1, chunks + 1):
        attempt.check_cancelled()
        charge(order_id, chunk, idempotency_key=attempt.key)
        attempt.report_progress(chunk, chunks, "charged chunk %d" % chunk)
        time.sleep(pause)
    return chunks


def charge(order_id: int, chunk: int, idempotency_key: tuple) -> None:
    """Stands for a payment API: one ``job_execution`` row a charge, with
    the key's job id and attempt number (and the chunk as ``pid``)."""
    job_id, number = idempotency_key
    get_store().execute(
        "INSERT INTO job_execution (job, attempt, pid) VALUES (?, ?, ?)",
        (job_id, number, chunk))


def not_a_task() -> str:
    """A plain function: no job may run it."""
    raise AssertionError("not_a_task ran")
