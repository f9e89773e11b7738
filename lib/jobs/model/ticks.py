"""The statements about periodic schedules' ticks (``schedule_tick``).

A tick is enqueued once, whatever the number of runners that look: the
runner that enqueues it first inserts its ``(schedule, tick)`` row —
``INSERT ... ON CONFLICT DO NOTHING``, on PostgreSQL and SQLite — and
creates its job in the same transaction only when that insert took a row.
A concurrent insert of the same tick waits for that transaction (the
primary key's lock on PostgreSQL, the write lock on SQLite) and then
inserts nothing. Plain values in, plain values out: names and aware UTC
datetimes.
"""

__all__ = [
    "forget_before",
    "insert",
    "last_ticks",
    "set_job",
]

from datetime import datetime
from typing import Any, Iterable, Optional

from jobs.database.columns import UTCDateTimeVariable


def _utc(value: Any) -> datetime:
    """An aware UTC datetime from a raw timestamp read back."""
    variable = UTCDateTimeVariable()
    variable.set(value, from_db=True)
    result: datetime = variable.get()
    return result


def _param(tick: datetime) -> UTCDateTimeVariable:
    return UTCDateTimeVariable(tick)


def insert(store: Any, schedule: str, tick: datetime) -> bool:
    """Take `schedule`'s `tick`: True when this transaction inserted its
    row (and must create its job), False when another runner has."""
    result = store.execute(
        "INSERT INTO schedule_tick (schedule, tick) VALUES (?, ?)"
        " ON CONFLICT DO NOTHING", (schedule, _param(tick)), noresult=False)
    return result.rowcount == 1


def set_job(store: Any, schedule: str, tick: datetime, job_id: int) -> None:
    """Record the job that `schedule`'s `tick` created."""
    store.execute(
        "UPDATE schedule_tick SET job = ? WHERE schedule = ? AND tick = ?",
        (job_id, schedule, _param(tick)), noresult=True)


def forget_before(store: Any, schedule: str, before: datetime) -> None:
    """Delete `schedule`'s ticks older than `before` (never its last)."""
    store.execute(
        "DELETE FROM schedule_tick WHERE schedule = ? AND tick < ? AND tick"
        " < (SELECT max(tick) FROM schedule_tick WHERE schedule = ?)",
        (schedule, _param(before), schedule), noresult=True)


def last_ticks(store: Any, schedules: Iterable[str]
               ) -> dict[str, tuple[datetime, Optional[int],
                                    Optional[int]]]:
    """``{schedule: (last tick, its job id, that job's status value)}``
    for the schedules of `schedules` that have a tick (the job id and
    status are None once the job is pruned)."""
    names = list(schedules)
    if not names:
        return {}
    rows = store.execute(
        "SELECT t.schedule, t.tick, t.job, job.status"
        " FROM schedule_tick t LEFT JOIN job ON job.id = t.job"
        " WHERE t.schedule IN (%s) AND t.tick = (SELECT max(tick)"
        " FROM schedule_tick WHERE schedule = t.schedule)"
        % ", ".join("?" * len(names)), names)
    return {name: (_utc(tick), job_id, status)
            for name, tick, job_id, status in rows}
