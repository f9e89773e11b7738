"""Periodic schedules: what a schedule is, and which of its ticks are due.

A schedule runs a ``@task`` (`jobs.tasks`) at the times of a cron
expression read in a time zone: each such time is a *tick*, and each tick
is one job. Schedules come from the configuration (``[schedule.NAME]``
sections, `jobs.settings.config_schedules`) or from code (``@task(schedule=
"*/5 * * * *")``); `jobs.scheduler` enqueues their due ticks, once each.

This module is pure: it decides, from the last tick enqueued and the
database's "now", which ticks to enqueue (`Cron.due`):

- a tick is *due* once its time has come and it was not enqueued;
- every due tick but the latest was *missed* (a later one came since),
  and so was the latest when it is noticed more than ``grace`` seconds
  late (the runners were down, or all busy);
- ``catch_up`` says what happens to missed ticks: ``latest`` enqueues the
  latest due tick only (one job stands for the missed ones), ``all``
  enqueues each (at most `MAX_CATCH_UP` per pass; the next pass goes on),
  ``none`` enqueues none of them and waits for the next tick;
- a schedule never enqueued before starts with its latest tick if that
  is within ``grace`` of now, else with its next one: nothing before the
  schedule existed is caught up.

Cron expressions are read by cronsim (Debian cron's rules, including a
day-of-month and a day-of-week that both restrict: either matches; five
fields, or six with seconds first); time zones by zoneinfo. Across a
daylight-saving change a tick in the skipped hour runs at the first time
after it, and one in the repeated hour runs once.
"""

from __future__ import annotations

__all__ = [
    "CATCH_UP",
    "Cron",
    "DEFAULT_GRACE",
    "MAX_CATCH_UP",
    "Schedule",
]

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobs.errors import ScheduleError

UTC = timezone.utc
CATCH_UP = ("latest", "all", "none")
# Seconds after its time within which a tick is not late.
DEFAULT_GRACE = 300.0
# Ticks one pass enqueues for a schedule whose catch_up is "all".
MAX_CATCH_UP = 1000
ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Cron:
    """When a schedule ticks, and what it does about missed ticks.

    :param expr: a cron expression (``0 3 * * *``; five fields, or six
        with seconds first).
    :param timezone: the IANA time zone the expression is read in.
    :param catch_up: ``latest``, ``all`` or ``none`` (see the module).
    :param grace: seconds after its time within which a tick is on time.
    :raises ScheduleError: naming the value at fault.
    """

    expr: str
    timezone: str = "UTC"
    catch_up: str = "latest"
    grace: float = DEFAULT_GRACE
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expr, str) or not self.expr.strip():
            raise ScheduleError("%r is not a cron expression." % (self.expr,))
        object.__setattr__(self, "expr", " ".join(self.expr.split()))
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ScheduleError("%r is not a time zone (use an IANA name:"
                                " UTC, Europe/Rome)." % (self.timezone,)
                                ) from None
        object.__setattr__(self, "zone", zone)
        try:
            CronSim(self.expr, datetime(2000, 1, 1, tzinfo=zone))
        except CronSimError as e:
            raise ScheduleError("%r is not a cron expression: %s." % (
                self.expr, str(e).rstrip(".") or "cannot be read")) from None
        if self.catch_up not in CATCH_UP:
            raise ScheduleError("catch_up %r is not one of %s." % (
                self.catch_up, ", ".join(CATCH_UP)))
        if isinstance(self.grace, bool) or not isinstance(
                self.grace, (int, float)) or not math.isfinite(
                self.grace) or self.grace < 0:
            raise ScheduleError("grace %r is not 0 seconds or more."
                                % (self.grace,))

    def ticks_after(self, when: datetime) -> Iterator[datetime]:
        """The ticks after `when` (aware), in order, as aware UTC times."""
        local = when.astimezone(self.zone).replace(microsecond=0)
        for tick in CronSim(self.expr, local):
            yield tick.astimezone(UTC)

    def latest_at(self, when: datetime) -> Optional[datetime]:
        """The last tick at or before `when` (aware), in UTC."""
        local = when.astimezone(self.zone).replace(microsecond=0)
        for tick in CronSim(self.expr, local + ONE_MICROSECOND, reverse=True):
            return tick.astimezone(UTC)
        return None

    def late(self, tick: datetime, now: datetime) -> bool:
        """True when `tick` is noticed at `now` more than `grace` late."""
        return (now - tick).total_seconds() > self.grace

    def due(self, last: Optional[datetime],
            now: datetime) -> list[datetime]:
        """The ticks to enqueue at `now`, in order (see the module).

        :param last: the last tick enqueued (aware), or None for a
            schedule never enqueued.
        :param now: the database's now (aware).
        """
        latest = self.latest_at(now)
        if latest is None or (last is not None and latest <= last):
            return []
        if last is None or self.catch_up != "all":
            if self.late(latest, now) and (
                    last is None or self.catch_up == "none"):
                return []
            return [latest]
        ticks: list[datetime] = []
        for tick in self.ticks_after(last):
            if tick > now or len(ticks) == MAX_CATCH_UP:
                break
            ticks.append(tick)
        return ticks

    def next_after(self, when: datetime) -> datetime:
        """The first tick after `when`, in UTC."""
        return next(self.ticks_after(when))


@dataclass(frozen=True)
class Schedule:
    """A named schedule: which ``@task`` to call, with what, and when.

    :ivar name: the configuration's ``[schedule.NAME]``, or the task's
        dotted name for a schedule given in code.
    :ivar task: the dotted name of the ``@task``.
    :ivar cron: its `Cron`.
    :ivar args: the positional arguments of each tick's call.
    :ivar kwargs: its keyword arguments.
    :ivar origin: where it is defined (a config file, or ``@task``).
    """

    name: str
    task: str
    cron: Cron
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    origin: str = "@task"
