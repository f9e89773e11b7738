"""The sane range of every number a configuration or a new job may give.

One place for them all: configuration loading (`jobs.settings`), ``@task``
(`jobs.tasks`), the creation of a job (`jobs.model.derived`,
`jobs.model.enqueue`) and the runner's retry decision (`jobs.outcome`)
check against the bounds below, and each refusal is one line naming the
key and the range it must be in.

A value outside its range is nonsense that would otherwise be stored: a
``retry_delay`` of 9,500 years writes the year 11533 into
``scheduled_start``, a negative one retries at once in a loop, a
``lease_seconds`` of a millisecond lets two runners run the same job.
"""

from __future__ import annotations

__all__ = ["Bound", "CONFIG_SECONDS", "LATEST_START", "LEASE_SECONDS",
           "MAX_RETRIES", "RETRY_DELAY", "YEAR", "problem", "seconds_of"]

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

# Seconds in a (365-day) year: the longest delay, lease or timeout.
YEAR = 365 * 24 * 3600
# The last instant a job may be scheduled for (datetime's own limit).
LATEST_START = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Bound:
    """An allowed range: `low` (excluded when `low_open`) to `high`.

    :ivar unit: what the numbers count ("seconds"), or "" for a count.
    """

    low: float
    high: float
    low_open: bool = False
    unit: str = "seconds"

    def holds(self, value: float) -> bool:
        """Whether `value` (a finite number) is in the range."""
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def describe(self) -> str:
        """The range in words: ``1 to 31,536,000 seconds (a year)``."""
        high = _number(self.high)
        if self.unit:
            high += " " + self.unit
            if self.high == YEAR:
                high += " (a year)"
        if self.low_open:
            return "more than %s and at most %s" % (_number(self.low), high)
        return "%s to %s" % (_number(self.low), high)


def _number(value: float) -> str:
    if float(value).is_integer():
        return "{:,}".format(int(value))
    return repr(value)


def problem(bound: Bound, value: Any) -> Optional[str]:
    """What is wrong with `value` (a number, or a `timedelta` of seconds)
    against `bound`: "-5 is outside more than 0 and ...", or None when it
    is in range. Text and booleans are not numbers."""
    number = seconds_of(value)
    if number is None:
        return "%r is not a number." % (value,)
    if not math.isfinite(number) or not bound.holds(number):
        shown = ("%s seconds" % _number(number)
                 if isinstance(value, timedelta) and math.isfinite(number)
                 else repr(value))
        return "%s is outside its range: %s." % (shown, bound.describe())
    return None


def seconds_of(value: Any) -> Optional[float]:
    """`value` as a float: a `timedelta`'s seconds, a number as it is;
    None for anything else (text, a bool)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


# A job's policies and creation options.
RETRY_DELAY = Bound(0, YEAR, low_open=True)
LEASE_SECONDS = Bound(1, YEAR)
MAX_RETRIES = Bound(0, 1000, unit="")

# Configuration keys that are seconds: ``[job section]`` and
# ``[workers]`` keys (their lowest values are what a runner can honour).
CONFIG_SECONDS = {
    "lease_seconds": LEASE_SECONDS,
    "max_runtime": Bound(1, YEAR),
    "statement_timeout": Bound(0.001, YEAR),
    "poll_interval": Bound(0.01, 24 * 3600),
    "grace_period": Bound(0, 24 * 3600),
    "rate_period": Bound(0.001, YEAR),
    "celery_sweep_grace": Bound(0, YEAR),
    "beat_seconds": Bound(0.05, 24 * 3600),
    "command_statement_timeout": Bound(0.001, YEAR),
}
