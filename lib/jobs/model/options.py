"""The options every job type takes at creation, checked in one place.

Options (`enqueue_options`):

- ``delay`` (seconds or a `timedelta`, 0 or more) or ``scheduled_start``
  (an aware `datetime`): when the job becomes ready. A delay counts from
  the INSERT, by the database's clock (as leases do).
- ``priority`` (a whole number; higher runs first among ready jobs).
- ``unique_key`` (text): at most one *pending* job (WAITING, RUNNING or
  SUSPENDED) per (kind, key), enforced by a partial unique index. Creating
  a job whose key is taken creates nothing and returns the pending job
  (``INSERT ... ON CONFLICT DO NOTHING``, then a read): race-free across
  connections. A finished job frees its key.
- ``depends_on`` (jobs, or job ids): the job runs once each of them has
  COMPLETED; until then it is BLOCKED (`jobs.model.dependencies`).
- ``on_dependency_failure``: ``"cancel"`` (the default: when a job it
  depends on FAILS or is CANCELLED, this one is CANCELLED too) or
  ``"run"`` (it runs all the same).
- ``concurrency_key`` (text): the section's ``max_running_per_key`` jobs
  with the same key run at once, at most (`jobs.model.limits`).
"""

from __future__ import annotations

__all__ = ["OPTION_NAMES", "EnqueueOptions", "check_max_retries",
           "enqueue_options"]

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

from jobs.bounds import MAX_RETRIES, problem
from jobs.database import UTCNow
from jobs.errors import InvalidJobOption

OPTION_NAMES = ("delay", "scheduled_start", "priority", "unique_key",
                "depends_on", "on_dependency_failure", "concurrency_key")
ON_DEPENDENCY_FAILURE = ("cancel", "run")
# PostgreSQL's integer column.
PRIORITY_RANGE = (-2 ** 31, 2 ** 31 - 1)


@dataclass(frozen=True)
class EnqueueOptions:
    """Checked options of a new job (see `enqueue_options`).

    :ivar delay: seconds after the INSERT, or None.
    :ivar scheduled_start: an aware UTC datetime, or None.
    :ivar priority: the job's priority.
    :ivar unique_key: the key, or None.
    :ivar depends_on: the ids of the jobs it waits for (a tuple).
    :ivar run_if_dependency_fails: ``on_dependency_failure="run"``.
    :ivar concurrency_key: the key, or None.
    """

    delay: Optional[float] = None
    scheduled_start: Optional[datetime] = None
    priority: int = 0
    unique_key: Optional[str] = None
    depends_on: tuple[int, ...] = ()
    run_if_dependency_fails: bool = False
    concurrency_key: Optional[str] = None

    def start_value(self) -> Any:
        """What ``job.scheduled_start`` is set to: None, a datetime, or
        SQL for now plus the delay."""
        if self.delay is not None:
            return UTCNow(self.delay) if self.delay else None
        return self.scheduled_start


def enqueue_options(delay: Any = None, scheduled_start: Any = None,
                    priority: Any = None, unique_key: Any = None,
                    default_priority: int = 0, depends_on: Any = None,
                    on_dependency_failure: Any = None,
                    concurrency_key: Any = None) -> EnqueueOptions:
    """Check the options of a new job.

    :param default_priority: the priority when `priority` is None.
    :raises InvalidJobOption: naming the argument at fault.
    """
    if delay is not None and scheduled_start is not None:
        raise InvalidJobOption(
            "delay and scheduled_start: give one of them, not both.")
    seconds = None
    if delay is not None:
        if isinstance(delay, timedelta):
            seconds = delay.total_seconds()
        elif isinstance(delay, (int, float)) and not isinstance(delay, bool):
            seconds = float(delay)
        else:
            raise InvalidJobOption(
                "delay: %r is not a number of seconds or a timedelta."
                % (delay,))
        if not math.isfinite(seconds):
            raise InvalidJobOption(
                "delay: %r is not a finite number of seconds." % (delay,))
        if seconds < 0:
            raise InvalidJobOption(
                "delay: %r is negative: a job cannot start in the past."
                % (delay,))
        try:
            datetime.now(timezone.utc) + timedelta(seconds=seconds)
        except OverflowError:
            raise InvalidJobOption(
                "delay: %r puts the job's start past the year 9999."
                % (delay,)) from None
    start = None
    if scheduled_start is not None:
        if not isinstance(scheduled_start, datetime):
            raise InvalidJobOption(
                "scheduled_start: %r is not a datetime." % (scheduled_start,))
        if scheduled_start.utcoffset() is None:
            raise InvalidJobOption(
                "scheduled_start: %s has no time zone: give an aware"
                " datetime (tzinfo=timezone.utc)."
                % scheduled_start.isoformat())
        try:
            start = scheduled_start.astimezone(timezone.utc)
        except OverflowError:
            raise InvalidJobOption(
                "scheduled_start: %s is past the year 9999 in UTC."
                % scheduled_start.isoformat()) from None
    if priority is None:
        priority = default_priority
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise InvalidJobOption(
            "priority: %r is not a whole number." % (priority,))
    if not PRIORITY_RANGE[0] <= priority <= PRIORITY_RANGE[1]:
        raise InvalidJobOption(
            "priority: %d is outside %d..%d." % ((priority,) + PRIORITY_RANGE))
    _check_key("unique_key", unique_key)
    _check_key("concurrency_key", concurrency_key)
    if on_dependency_failure is None:
        on_dependency_failure = "cancel"
    if on_dependency_failure not in ON_DEPENDENCY_FAILURE:
        raise InvalidJobOption(
            "on_dependency_failure: %r is not %s." % (
                on_dependency_failure, " or ".join(
                    repr(value) for value in ON_DEPENDENCY_FAILURE)))
    return EnqueueOptions(seconds, start, priority, unique_key,
                          job_ids(depends_on),
                          on_dependency_failure == "run", concurrency_key)


def check_max_retries(max_retries: Any) -> None:
    """A job's ``max_retries`` (its class's policy, or what creation
    gives): a whole number in `jobs.bounds.MAX_RETRIES`.

    :raises InvalidJobOption: naming it and its range.
    """
    if isinstance(max_retries, bool) or not isinstance(max_retries, int):
        raise InvalidJobOption(
            "max_retries: %r is not a whole number." % (max_retries,))
    wrong = problem(MAX_RETRIES, max_retries)
    if wrong is not None:
        raise InvalidJobOption("max_retries: %s" % wrong)


def _check_key(name: str, key: Any) -> None:
    """A key option (`unique_key`, `concurrency_key`): text, or None."""
    if key is None:
        return
    if not isinstance(key, str):
        raise InvalidJobOption("%s: %r is not text." % (name, key))
    if not key:
        raise InvalidJobOption(
            "%s: the empty string: give a key, or None for none." % name)
    if "\x00" in key:
        raise InvalidJobOption("%s: %r holds a NUL character." % (name, key))


def job_ids(jobs: Any) -> tuple[int, ...]:
    """The ids of `jobs` (job objects or ids), sorted, once each.

    :raises InvalidJobOption: for anything else, naming it.
    """
    if jobs is None:
        return ()
    if isinstance(jobs, (str, bytes)) or not hasattr(jobs, "__iter__"):
        jobs = [jobs]
    ids = set()
    for job in jobs:
        job_id = job if isinstance(job, int) and not isinstance(
            job, bool) else getattr(job, "job_id", None)
        if not isinstance(job_id, int) or isinstance(job_id, bool):
            raise InvalidJobOption(
                "depends_on: %r is not a job or a job id." % (job,))
        ids.add(job_id)
    return tuple(sorted(ids))
